//! Why a file could not be profiled, with where (1-based line and column numbers).

use serde::{Serialize, Serializer};

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ProfileError {
    #[error("the file is empty (no CSV records)")]
    Empty,
    #[error("not a CSV file: binary data (a NUL byte) on line {line}")]
    Binary { line: u64 },
    #[error("invalid UTF-8 on line {line}, column {column}; save the file as UTF-8")]
    InvalidUtf8 { line: u64, column: usize },
    #[error(
        "line {line} has {found} fields, but line {first_line} has {expected}; \
         every row needs the same number of fields (quote values that contain the delimiter)"
    )]
    RaggedRow {
        line: u64,
        expected: usize,
        found: usize,
        first_line: u64,
    },
    #[error("line {line} has {found} columns; at most {max} are supported")]
    TooManyColumns { line: u64, found: usize, max: usize },
    #[error("the field on line {line}, column {column} is longer than {max} bytes")]
    FieldTooLong {
        line: u64,
        column: usize,
        max: usize,
    },
    #[error(
        "no complete record within {max} bytes from line {line} \
         (an unclosed quote, or not a CSV file)"
    )]
    RecordTooLarge { line: u64, max: u64 },
    #[error("reading the file failed after {bytes} bytes: {message}")]
    Io { bytes: u64, message: String },
    #[error("cancelled after {bytes} bytes")]
    Cancelled { bytes: u64 },
}

impl ProfileError {
    /// A stable machine-readable name for the variant.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::Binary { .. } => "binary",
            Self::InvalidUtf8 { .. } => "invalid_utf8",
            Self::RaggedRow { .. } => "ragged_row",
            Self::TooManyColumns { .. } => "too_many_columns",
            Self::FieldTooLong { .. } => "field_too_long",
            Self::RecordTooLarge { .. } => "record_too_large",
            Self::Io { .. } => "io",
            Self::Cancelled { .. } => "cancelled",
        }
    }

    pub fn line(&self) -> Option<u64> {
        match self {
            Self::Binary { line }
            | Self::InvalidUtf8 { line, .. }
            | Self::RaggedRow { line, .. }
            | Self::TooManyColumns { line, .. }
            | Self::FieldTooLong { line, .. }
            | Self::RecordTooLarge { line, .. } => Some(*line),
            Self::Empty | Self::Io { .. } | Self::Cancelled { .. } => None,
        }
    }

    pub fn column(&self) -> Option<usize> {
        match self {
            Self::InvalidUtf8 { column, .. } | Self::FieldTooLong { column, .. } => Some(*column),
            _ => None,
        }
    }
}

/// Serialized as `{"kind", "message", "line"?, "column"?}` so a stored failure reads on its
/// own and can still be matched on.
impl Serialize for ProfileError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Report {
            kind: &'static str,
            message: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            line: Option<u64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            column: Option<usize>,
        }
        Report {
            kind: self.kind(),
            message: self.to_string(),
            line: self.line(),
            column: self.column(),
        }
        .serialize(serializer)
    }
}
