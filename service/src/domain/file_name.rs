//! The name a client gives an uploaded file. It is metadata only (the object key never contains
//! it), but it is shown back and sent in `Content-Disposition`, so it holds no control
//! characters or path separators and has a sane length.

use std::fmt;

pub const MAX_LEN: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FileNameError {
    #[error("the file name is empty")]
    Empty,
    #[error("the file name is longer than {MAX_LEN} bytes")]
    TooLong,
    #[error("the file name contains a control character, '/' or '\\'")]
    Characters,
    #[error("the file name may not be '.' or '..'")]
    Dots,
}

impl FileName {
    pub fn parse(raw: &str) -> Result<Self, FileNameError> {
        if raw.trim().is_empty() {
            return Err(FileNameError::Empty);
        }
        if raw.len() > MAX_LEN {
            return Err(FileNameError::TooLong);
        }
        if raw.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
            return Err(FileNameError::Characters);
        }
        if raw == "." || raw == ".." {
            return Err(FileNameError::Dots);
        }
        Ok(Self(raw.to_owned()))
    }

    /// The last segment of what a browser sent as a form field's file name (some send a path).
    pub fn from_client_path(raw: &str) -> Result<Self, FileNameError> {
        Self::parse(raw.rsplit(['/', '\\']).next().unwrap_or(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for name in [
            "report.csv",
            "Zahlen 2026 (final).xlsx",
            "данные.txt",
            ".env",
        ] {
            assert_eq!(FileName::parse(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn refuses_names_that_are_paths_or_carry_control_characters() {
        assert_eq!(FileName::parse(""), Err(FileNameError::Empty));
        assert_eq!(FileName::parse("  "), Err(FileNameError::Empty));
        assert_eq!(FileName::parse(".."), Err(FileNameError::Dots));
        assert_eq!(FileName::parse("a/b"), Err(FileNameError::Characters));
        assert_eq!(FileName::parse("a\r\nb"), Err(FileNameError::Characters));
        assert_eq!(
            FileName::parse(&"x".repeat(MAX_LEN + 1)),
            Err(FileNameError::TooLong)
        );
    }

    #[test]
    fn keeps_the_last_segment_of_a_client_path() {
        assert_eq!(
            FileName::from_client_path("C:\\Users\\me\\data.csv")
                .unwrap()
                .as_str(),
            "data.csv"
        );
    }
}
