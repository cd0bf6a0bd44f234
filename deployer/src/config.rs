//! `deploy/deployer.toml`: the model, per-environment overrides and validation.
//!
//! Every error names where the bad value came from (file and line, or the environment variable)
//! and the field, on one line, and is raised before any AWS call.

mod locate;
mod model;
pub mod refs;
mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub use model::*;
pub use refs::StackOutputs;

/// Environment variables `DEPLOYER__SECTION__FIELD=value` override single fields, e.g.
/// `DEPLOYER__AUTOSCALING__MAX=10`. The value is read as a TOML value, else as a string.
pub const ENV_PREFIX: &str = "DEPLOYER__";

#[derive(Debug, thiserror::Error)]
#[error("{origin}: {field}: {message}")]
pub struct ConfigError {
    /// `path/to/deployer.toml:LINE`, or `environment variable NAME`.
    pub origin: String,
    /// Dotted field path, e.g. `autoscaling.max` (or `syntax` for a parse error).
    pub field: String,
    pub message: String,
}

impl ConfigError {
    fn at_file(
        file: &Path,
        line: usize,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            origin: format!("{}:{line}", file.display()),
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Loads `file`, applies `[env.NAME]` (when `env` is given) and then `DEPLOYER__*` variables
/// from `vars`, and validates the result. A file that refers to stack outputs needs
/// [`read`] and [`Draft::resolve`] instead.
pub fn load(
    file: &Path,
    env: Option<&str>,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    read(file, env, vars)?.resolve(&StackOutputs::new())
}

/// Reads `file` and applies the overrides, without resolving `${STACK.OUTPUT}` references.
pub fn read(
    file: &Path,
    env: Option<&str>,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Draft, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
        origin: file.display().to_string(),
        field: "file".into(),
        message: format!("cannot read it ({e}); pass --config PATH or set DEPLOYER_CONFIG"),
    })?;
    draft(file, &text, env, vars)
}

/// [`load`] for text already in memory; `file` is only used in messages.
pub fn parse(
    file: &Path,
    text: &str,
    env: Option<&str>,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    draft(file, text, env, vars)?.resolve(&StackOutputs::new())
}

/// [`read`] for text already in memory.
pub fn draft(
    file: &Path,
    text: &str,
    env: Option<&str>,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Draft, ConfigError> {
    let located = locate::Locator::new(file.to_path_buf(), text)?;
    let mut table: toml::Table = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| located.line_of(s.start)).unwrap_or(1);
        ConfigError::at_file(file, line, "syntax", e.message().trim())
    })?;

    let envs = match table.remove("env") {
        Some(toml::Value::Table(envs)) => envs,
        Some(_) => {
            return Err(located.error(
                &["env".into()],
                "env",
                "must be a table of [env.NAME] sections",
            ));
        }
        None => toml::Table::new(),
    };
    let mut origins = Origins {
        file: file.to_path_buf(),
        env: None,
        vars: BTreeMap::new(),
    };
    if let Some(name) = env {
        match envs.get(name) {
            Some(toml::Value::Table(overrides)) => merge(&mut table, overrides.clone()),
            _ => {
                let known: Vec<&str> = envs.keys().map(String::as_str).collect();
                return Err(ConfigError {
                    origin: file.display().to_string(),
                    field: format!("env.{name}"),
                    message: format!(
                        "no [env.{name}] section; known environments: {}",
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    ),
                });
            }
        }
        origins.env = Some(name.to_string());
    }
    for (var, raw) in vars {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let path = override_path(rest);
        if path.iter().any(String::is_empty) {
            return Err(ConfigError {
                origin: format!("environment variable {var}"),
                field: rest.to_ascii_lowercase(),
                message: "empty path segment; use DEPLOYER__SECTION__FIELD".into(),
            });
        }
        set_path(&mut table, &path, parse_env_value(&raw));
        origins.vars.insert(path.join("."), var);
    }
    Ok(Draft {
        table,
        located,
        origins,
    })
}

/// The config with its overrides applied and its `${STACK.OUTPUT}` references not yet
/// resolved: enough for `deployer infra`, which creates the stacks the rest refers to.
pub struct Draft {
    table: toml::Table,
    located: locate::Locator,
    origins: Origins,
}

impl Draft {
    /// `[aws]` alone (the region and retries the stack reads need).
    pub fn aws(&self) -> Result<AwsSection, ConfigError> {
        let aws: AwsSection = self.section("aws").map(Option::unwrap_or_default)?;
        validate::aws(&aws).map_err(|v| self.error(&v.path, &v.message))?;
        Ok(aws)
    }

    /// `[infra]` alone, checked; `${...}` in its parameters are left for `infra up`.
    pub fn infra(&self) -> Result<Option<InfraSection>, ConfigError> {
        let infra: Option<InfraSection> = self.section("infra")?;
        if let Some(infra) = &infra {
            validate::infra(infra).map_err(|v| self.error(&v.path, &v.message))?;
        }
        Ok(infra)
    }

    /// Stacks whose outputs the file refers to outside `[infra]`, in name order.
    pub fn referenced_stacks(&self) -> Result<BTreeSet<String>, ConfigError> {
        let mut stacks = BTreeSet::new();
        self.visit_references(&mut |_, s| {
            stacks.extend(refs::parse(s)?.into_iter().map(|r| r.stack));
            Ok(())
        })
        .map_err(|(path, m)| self.error(&path, &m))?;
        Ok(stacks)
    }

    /// An error at the first place that refers to `stack`'s outputs.
    pub fn reference_error(&self, stack: &str, message: &str) -> ConfigError {
        let mut first: Option<Vec<String>> = None;
        let _ = self.visit_references(&mut |path, s| {
            let names = refs::parse(s).unwrap_or_default();
            if first.is_none() && names.iter().any(|r| r.stack == stack) {
                first = Some(path.to_vec());
            }
            Ok(())
        });
        self.error(&first.unwrap_or_default(), message)
    }

    /// Walks every string outside `[infra]` (whose references `infra up` resolves itself),
    /// on a copy: the draft stays as read.
    fn visit_references(&self, f: &mut refs::Visit<'_>) -> Result<(), (Vec<String>, String)> {
        for (key, value) in self.table.iter().filter(|(k, _)| *k != "infra") {
            refs::visit_strings(&mut value.clone(), &mut vec![key.clone()], &mut |p, s| {
                f(p, s)
            })?;
        }
        Ok(())
    }

    /// Replaces the references with `outputs`, then deserializes and validates the whole file.
    pub fn resolve(mut self, outputs: &StackOutputs) -> Result<Config, ConfigError> {
        for (key, value) in self.table.iter_mut().filter(|(k, _)| *k != "infra") {
            refs::expand_lists(value, outputs);
            refs::visit_strings(value, &mut vec![key.clone()], &mut |_, s| {
                *s = refs::substitute(s, outputs)?;
                Ok(())
            })
            .map_err(|(path, m)| self.origins.error(&self.located, &path, &m))?;
        }
        let Draft {
            table,
            located,
            origins,
        } = self;
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let path = serde_error_path(&e);
                origins.error(&located, &path, e.inner().message().trim())
            })?;
        validate::validate(&config).map_err(|v| origins.error(&located, &v.path, &v.message))?;
        Ok(config)
    }

    fn section<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, ConfigError> {
        let Some(value) = self.table.get(name) else {
            return Ok(None);
        };
        serde_path_to_error::deserialize(value.clone())
            .map(Some)
            .map_err(|e| {
                let mut path = vec![name.to_string()];
                path.extend(serde_error_path(&e));
                self.error(&path, e.inner().message().trim())
            })
    }

    fn error(&self, path: &[String], message: &str) -> ConfigError {
        self.origins.error(&self.located, path, message)
    }
}

/// serde's path to the bad value; some paths stop at the parent of an unknown key, so the key
/// is appended to point at it.
fn serde_error_path(e: &serde_path_to_error::Error<toml::de::Error>) -> Vec<String> {
    let mut path = to_segments(e.path());
    let message = e.inner().message().trim();
    if let Some(unknown) = message
        .strip_prefix("unknown field `")
        .and_then(|m| m.split('`').next())
        && path.last().map(String::as_str) != Some(unknown)
    {
        path.push(unknown.to_string());
    }
    path
}

/// Where each value came from, to name it in an error.
struct Origins {
    file: PathBuf,
    env: Option<String>,
    vars: BTreeMap<String, String>,
}

impl Origins {
    fn error(&self, located: &locate::Locator, path: &[String], message: &str) -> ConfigError {
        let field = path.join(".");
        if let Some(var) = self.vars.get(&field) {
            return ConfigError {
                origin: format!("environment variable {var}"),
                field,
                message: message.to_string(),
            };
        }
        if let Some(env) = &self.env {
            let mut in_env = vec!["env".to_string(), env.clone()];
            in_env.extend(path.iter().cloned());
            if let Some(line) = located.exact_line(&in_env) {
                return ConfigError::at_file(&self.file, line, field, message);
            }
        }
        located.error(path, &field, message)
    }
}

fn to_segments(path: &serde_path_to_error::Path) -> Vec<String> {
    path.iter()
        .filter_map(|seg| match seg {
            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
            serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
            serde_path_to_error::Segment::Enum { variant } => Some(variant.clone()),
            serde_path_to_error::Segment::Unknown => None,
        })
        .collect()
}

/// Deep merge: tables merge key by key, anything else is replaced.
fn merge(base: &mut toml::Table, overrides: toml::Table) {
    for (key, value) in overrides {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(inner) = entry {
                set_path(inner, rest, value);
            }
        }
    }
}

/// `TASK__ENVIRONMENT__STORAGE_URL` -> `task.environment.STORAGE_URL`: field names are
/// lowercase, but the keys of the maps of variable names keep the case they are written in.
fn override_path(rest: &str) -> Vec<String> {
    let mut path: Vec<String> = Vec::new();
    for segment in rest.split("__") {
        let keeps_case = matches!(
            path.iter().map(String::as_str).collect::<Vec<_>>()[..],
            ["task", "environment"] | ["task", "secrets"]
        );
        path.push(if keeps_case {
            segment.to_string()
        } else {
            segment.to_ascii_lowercase()
        });
    }
    path
}

fn parse_env_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_are_toml_or_strings() {
        assert_eq!(parse_env_value("10"), toml::Value::Integer(10));
        assert_eq!(parse_env_value("true"), toml::Value::Boolean(true));
        assert_eq!(
            parse_env_value("127.0.0.1:5000"),
            toml::Value::String("127.0.0.1:5000".into())
        );
    }

    #[test]
    fn variable_names_in_overrides_keep_their_case() {
        assert_eq!(
            override_path("TASK__ENVIRONMENT__STORAGE_URL"),
            ["task", "environment", "STORAGE_URL"]
        );
        assert_eq!(
            override_path("TASK__SECRETS__DATABASE_URL"),
            ["task", "secrets", "DATABASE_URL"]
        );
        assert_eq!(override_path("AUTOSCALING__MAX"), ["autoscaling", "max"]);
    }

    #[test]
    fn merge_is_deep() {
        let mut base: toml::Table = toml::from_str("[a]\nx = 1\ny = 2").unwrap();
        let over: toml::Table = toml::from_str("[a]\ny = 3").unwrap();
        merge(&mut base, over);
        assert_eq!(base["a"]["x"].as_integer(), Some(1));
        assert_eq!(base["a"]["y"].as_integer(), Some(3));
    }
}
