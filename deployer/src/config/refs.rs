//! `${STACK.OUTPUT}` in a string value: the output `OUTPUT` of the CloudFormation stack `STACK`,
//! so that ARNs and names created by `deployer infra up` are never copied by hand. A value may
//! hold several references and text around them (`"s3://${data-processor.BucketName}/data"`).

use std::collections::BTreeMap;

/// Outputs of the stacks that were read: stack name -> output key -> value.
pub type StackOutputs = BTreeMap<String, BTreeMap<String, String>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub stack: String,
    pub output: String,
}

/// The references in `value`, in order, or what is wrong with one.
pub fn parse(value: &str) -> Result<Vec<Reference>, String> {
    let mut found = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed reference in {value:?}: write ${{STACK.OUTPUT}}"))?;
        let inner = &after[..end];
        let (stack, output) = inner.rsplit_once('.').ok_or_else(|| {
            format!("reference ${{{inner}}} names no output: write ${{STACK.OUTPUT}}")
        })?;
        let valid_stack = !stack.is_empty()
            && stack.starts_with(|c: char| c.is_ascii_alphabetic())
            && stack.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        let valid_output = !output.is_empty() && output.chars().all(|c| c.is_ascii_alphanumeric());
        if !valid_stack || !valid_output {
            return Err(format!(
                "reference ${{{inner}}} is not ${{STACK.OUTPUT}} (a stack name, a dot, an output key)"
            ));
        }
        found.push(Reference {
            stack: stack.to_string(),
            output: output.to_string(),
        });
        rest = &after[end + 1..];
    }
    Ok(found)
}

/// `value` with every reference replaced by its output's value.
pub fn substitute(value: &str, outputs: &StackOutputs) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    for reference in parse(value)? {
        let token = format!("${{{}.{}}}", reference.stack, reference.output);
        let Some(at) = rest.find(&token) else {
            break;
        };
        out.push_str(&rest[..at]);
        let stack = outputs.get(&reference.stack).ok_or_else(|| {
            format!(
                "refers to stack {} (${{{}.{}}}), which was not read",
                reference.stack, reference.stack, reference.output
            )
        })?;
        let resolved = stack.get(&reference.output).ok_or_else(|| {
            let known: Vec<&str> = stack.keys().map(String::as_str).collect();
            format!(
                "stack {} has no output {}; its outputs: {}",
                reference.stack,
                reference.output,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )
        })?;
        out.push_str(resolved);
        rest = &rest[at + token.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

/// In every array of `value`, an element that is exactly one reference to a comma-separated
/// output (a `CommaDelimitedList`, e.g. subnet ids) becomes one element per item.
pub fn expand_lists(value: &mut toml::Value, outputs: &StackOutputs) {
    match value {
        toml::Value::Array(items) => {
            let mut expanded = Vec::with_capacity(items.len());
            for mut item in items.drain(..) {
                let list = item.as_str().and_then(|s| whole_reference(s, outputs));
                match list.filter(|v| v.contains(',')) {
                    Some(list) => expanded.extend(
                        list.split(',')
                            .map(|part| toml::Value::String(part.trim().to_string())),
                    ),
                    None => {
                        expand_lists(&mut item, outputs);
                        expanded.push(item);
                    }
                }
            }
            *items = expanded;
        }
        toml::Value::Table(table) => {
            for (_, item) in table.iter_mut() {
                expand_lists(item, outputs);
            }
        }
        _ => {}
    }
}

/// The output `value` names when it is nothing but one reference.
fn whole_reference<'o>(value: &str, outputs: &'o StackOutputs) -> Option<&'o str> {
    let refs = parse(value).ok()?;
    let [r] = refs.as_slice() else {
        return None;
    };
    (value == format!("${{{}.{}}}", r.stack, r.output))
        .then(|| outputs.get(&r.stack)?.get(&r.output).map(String::as_str))
        .flatten()
}

/// What [`visit_strings`] calls for each string: its path and value, which it may change.
pub type Visit<'a> = dyn FnMut(&[String], &mut String) -> Result<(), String> + 'a;

/// Calls `f` on every string in `value` (array indexes as path segments); the first error stops
/// the walk and comes back with its path.
pub fn visit_strings(
    value: &mut toml::Value,
    path: &mut Vec<String>,
    f: &mut Visit<'_>,
) -> Result<(), (Vec<String>, String)> {
    match value {
        toml::Value::String(s) => f(path, s).map_err(|m| (path.clone(), m)),
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                visit_strings(item, path, f)?;
                path.pop();
            }
            Ok(())
        }
        toml::Value::Table(table) => {
            for (key, item) in table.iter_mut() {
                path.push(key.clone());
                visit_strings(item, path, f)?;
                path.pop();
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs() -> StackOutputs {
        let mut stack = BTreeMap::new();
        stack.insert("BucketName".to_string(), "files-123".to_string());
        stack.insert("ClusterName".to_string(), "prod".to_string());
        BTreeMap::from([("data-processor".to_string(), stack)])
    }

    #[test]
    fn references_are_found_with_text_around_them() {
        let refs = parse("s3://${data-processor.BucketName}/data/${other.Prefix}").unwrap();
        assert_eq!(
            refs,
            vec![
                Reference {
                    stack: "data-processor".into(),
                    output: "BucketName".into()
                },
                Reference {
                    stack: "other".into(),
                    output: "Prefix".into()
                }
            ]
        );
        assert!(parse("no reference, $HOME {}").unwrap().is_empty());
    }

    #[test]
    fn malformed_references_say_how_to_write_one() {
        for bad in ["${stack}", "${data-processor.Bucket", "${.Out}", "${a.b-c}"] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains("${STACK.OUTPUT}"), "{bad}: {e}");
        }
    }

    #[test]
    fn substitution_replaces_each_reference() {
        assert_eq!(
            substitute("s3://${data-processor.BucketName}/data", &outputs()).unwrap(),
            "s3://files-123/data"
        );
        assert_eq!(
            substitute(
                "${data-processor.ClusterName}-${data-processor.ClusterName}",
                &outputs()
            )
            .unwrap(),
            "prod-prod"
        );
    }

    #[test]
    fn a_list_element_naming_a_comma_separated_output_becomes_its_items() {
        let mut outputs = outputs();
        outputs
            .get_mut("data-processor")
            .unwrap()
            .insert("Subnets".into(), "subnet-a,subnet-b".into());
        let mut value = toml::Value::Table(
            toml::from_str(
                "subnets = [\"${data-processor.Subnets}\", \"subnet-c\"]\nname = \"${data-processor.Subnets}\"",
            )
            .unwrap(),
        );
        expand_lists(&mut value, &outputs);
        assert_eq!(
            value["subnets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect::<Vec<_>>(),
            ["subnet-a", "subnet-b", "subnet-c"]
        );
        // Outside a list the value stays one string (substitution handles it).
        assert_eq!(value["name"].as_str(), Some("${data-processor.Subnets}"));
    }

    #[test]
    fn an_unknown_output_names_the_known_ones() {
        let e = substitute("${data-processor.Nope}", &outputs()).unwrap_err();
        assert_eq!(
            e,
            "stack data-processor has no output Nope; its outputs: BucketName, ClusterName"
        );
    }
}
