//! Maps a field path to its line in the file, so that errors found after parsing (serde's, or
//! validation's) still name the line. toml's own deserializer loses spans once values are merged
//! with environment overrides, so the lines come from a toml_edit parse of the same text.

use std::path::PathBuf;

use toml_edit::{ImDocument, Item, Value};

use super::ConfigError;

pub struct Locator {
    file: PathBuf,
    doc: ImDocument<String>,
    newlines: Vec<usize>,
}

impl Locator {
    pub fn new(file: PathBuf, text: &str) -> Result<Self, ConfigError> {
        let newlines = text.match_indices('\n').map(|(i, _)| i).collect();
        match ImDocument::parse(text.to_string()) {
            Ok(doc) => Ok(Self {
                file,
                doc,
                newlines,
            }),
            Err(e) => {
                let line = e
                    .span()
                    .map(|s| newlines.partition_point(|&n| n < s.start) + 1)
                    .unwrap_or(1);
                let message = e.message().trim().to_string();
                Err(ConfigError::at_file(&file, line, "syntax", message))
            }
        }
    }

    pub fn line_of(&self, offset: usize) -> usize {
        self.newlines.partition_point(|&n| n < offset) + 1
    }

    /// The line of `path`'s key, if the file spells out exactly that path.
    pub fn exact_line(&self, path: &[String]) -> Option<usize> {
        let (found, complete) = self.walk(path);
        complete.then_some(found).flatten().map(|o| self.line_of(o))
    }

    /// An error at the line of `path`, or of its nearest ancestor the file has.
    pub fn error(&self, path: &[String], field: &str, message: &str) -> ConfigError {
        let line = self.walk(path).0.map(|o| self.line_of(o)).unwrap_or(1);
        ConfigError::at_file(&self.file, line, field, message)
    }

    /// Offset of the deepest key found along `path`, and whether the whole path was found.
    fn walk(&self, path: &[String]) -> (Option<usize>, bool) {
        let mut node = Node::Item(self.doc.as_item());
        let mut offset = None;
        for segment in path {
            match node.child(segment) {
                Some((o, child)) => {
                    offset = o.or(offset);
                    node = child;
                }
                None => return (offset, false),
            }
        }
        (offset, true)
    }
}

/// Tables hold `Item`s, inline tables and arrays hold `Value`s.
#[derive(Clone, Copy)]
enum Node<'a> {
    Item(&'a Item),
    Table(&'a toml_edit::Table),
    Value(&'a Value),
}

impl<'a> Node<'a> {
    /// The child at `segment` (a key, or an index into an array), with the offset of its key.
    fn child(self, segment: &str) -> Option<(Option<usize>, Node<'a>)> {
        let index = || segment.parse::<usize>().ok();
        match self {
            Node::Item(Item::Table(t)) | Node::Table(t) => {
                let key = t.key(segment)?.span().map(|s| s.start);
                Some((key, Node::Item(t.get(segment)?)))
            }
            Node::Item(Item::ArrayOfTables(a)) => {
                let t = a.get(index()?)?;
                Some((t.span().map(|s| s.start), Node::Table(t)))
            }
            Node::Item(Item::Value(v)) | Node::Value(v) => match v {
                Value::InlineTable(t) => {
                    let key = t.key(segment)?.span().map(|s| s.start);
                    Some((key, Node::Value(t.get(segment)?)))
                }
                Value::Array(a) => {
                    let v = a.get(index()?)?;
                    Some((v.span().map(|s| s.start), Node::Value(v)))
                }
                _ => None,
            },
            Node::Item(Item::None) => None,
        }
    }
}
