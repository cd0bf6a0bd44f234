//! Usernames: 3 to 32 characters from ASCII letters, digits, `.`, `_` and `-`, starting with a
//! letter or digit. Unique case-insensitively (`Alice` and `alice` are the same account); the
//! spelling given at registration is kept for display.

use std::fmt;

pub const MIN_LEN: usize = 3;
pub const MAX_LEN: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UsernameError {
    #[error("username must be {MIN_LEN} to {MAX_LEN} characters long")]
    Length,
    #[error("username may contain only ASCII letters, digits, '.', '_' and '-'")]
    Characters,
    #[error("username must start with a letter or a digit")]
    Start,
}

impl Username {
    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        if !(MIN_LEN..=MAX_LEN).contains(&raw.len()) {
            return Err(UsernameError::Length);
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(UsernameError::Characters);
        }
        if !raw.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(UsernameError::Start);
        }
        Ok(Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form uniqueness and lookups use.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// The lookup key for whatever a client typed at login (which need not be a valid username):
/// lower-cased and bounded, so throttling rows stay small.
pub fn login_key(raw: &str) -> String {
    raw.chars()
        .take(MAX_LEN + 1)
        .collect::<String>()
        .to_lowercase()
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_names_and_keys_them_case_insensitively() {
        let name = Username::parse("Alice.B-2_x").expect("valid");
        assert_eq!(name.as_str(), "Alice.B-2_x");
        assert_eq!(name.key(), "alice.b-2_x");
    }

    #[test]
    fn rejects_invalid_names() {
        assert_eq!(Username::parse("ab"), Err(UsernameError::Length));
        assert_eq!(Username::parse(&"a".repeat(33)), Err(UsernameError::Length));
        assert_eq!(Username::parse("al ice"), Err(UsernameError::Characters));
        assert_eq!(Username::parse("älice"), Err(UsernameError::Characters));
        assert_eq!(Username::parse("_alice"), Err(UsernameError::Start));
    }
}
