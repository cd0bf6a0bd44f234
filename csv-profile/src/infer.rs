//! How a single field is read: null tokens, numbers, booleans and date/times.
//!
//! These rules decide a column's type (see `ColumnType`), so they are deliberately strict:
//! anything ambiguous is a string.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

/// Tokens (compared ASCII case-insensitively, after trimming) that mean "no value".
/// `nan` is here rather than in the float grammar so that a float column with gaps is
/// still a float column and its mean stays finite.
pub const NULL_TOKENS: [&str; 6] = ["null", "na", "n/a", "nan", "none", "#n/a"];

/// Spaces and tabs around a value carry no meaning for its type or statistics.
pub fn trim(field: &str) -> &str {
    let blank = |b: &u8| matches!(b, b' ' | b'\t');
    let bytes = field.as_bytes();
    // Nearly every field has nothing to trim; skip the char-pattern machinery for those.
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) if blank(first) || blank(last) => field.trim_matches([' ', '\t']),
        _ => field,
    }
}

/// `value` must already be trimmed.
pub fn is_null(value: &str) -> bool {
    value.is_empty()
        || (value.len() <= 4 && NULL_TOKENS.iter().any(|t| t.eq_ignore_ascii_case(value)))
}

/// An optional sign and decimal digits that fit in an `i64`.
pub fn parse_int(value: &str) -> Option<i64> {
    value.parse().ok()
}

/// A decimal number with optional fraction and exponent (`-1.5`, `.5`, `2.`, `1e-3`).
/// Rust's float grammar also accepts `inf`/`NaN`/`infinity`; those are rejected here
/// (they end in a letter) so that words never turn a column into numbers.
pub fn parse_float(value: &str) -> Option<f64> {
    let bytes = value.as_bytes();
    let first = *bytes.first()?;
    let last = *bytes.last()?;
    let starts_like_number = first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.');
    let ends_like_number = last.is_ascii_digit() || last == b'.';
    if !(starts_like_number && ends_like_number) {
        return None;
    }
    value.parse().ok()
}

/// `true`/`false`/`yes`/`no`, ASCII case-insensitive. `0`/`1` are integers, not booleans.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.len() {
        2 if value.eq_ignore_ascii_case("no") => Some(false),
        3 if value.eq_ignore_ascii_case("yes") => Some(true),
        4 if value.eq_ignore_ascii_case("true") => Some(true),
        5 if value.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// An ISO 8601 date or date-time in extended format, as read by `jiff`:
/// `2024-06-19`, `2024-06-19T15:22`, `2024-06-19 15:22:45.123`, or an RFC 3339 instant
/// with `Z` or a numeric offset (`2024-06-19T15:22:45+02:00`).
///
/// Returns the value as a UTC civil date-time, used only to order values: a value
/// without an offset is taken to be in UTC, a date alone to be midnight.
pub fn parse_datetime(value: &str) -> Option<DateTime> {
    let bytes = value.as_bytes();
    // Cheap gate: `YYYY-` up front. This keeps jiff's parser away from numbers and words
    // and refuses the ISO "basic" format (20240619), which would steal integer columns.
    if bytes.len() < 10 || !bytes[..4].iter().all(u8::is_ascii_digit) || bytes[4] != b'-' {
        return None;
    }
    let has_offset = bytes[10..]
        .iter()
        .any(|b| matches!(b, b'Z' | b'z' | b'+' | b'-'));
    if has_offset {
        let instant: Timestamp = value.parse().ok()?;
        Some(TimeZone::UTC.to_datetime(instant))
    } else {
        value.parse().ok()
    }
}

/// What one value looks like on its own; used to sniff whether the first row is a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    Integer,
    Float,
    Boolean,
    DateTime,
    Text,
}

pub fn classify(field: &str) -> Kind {
    let value = trim(field);
    if is_null(value) {
        Kind::Null
    } else if parse_int(value).is_some() {
        Kind::Integer
    } else if parse_float(value).is_some() {
        Kind::Float
    } else if parse_bool(value).is_some() {
        Kind::Boolean
    } else if parse_datetime(value).is_some() {
        Kind::DateTime
    } else {
        Kind::Text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_tokens_are_case_insensitive_and_trimmed() {
        for v in [
            "", "  ", "\t", "NULL", "null", "Null", "NA", "n/a", "N/A", "NaN", "None", "#N/A",
        ] {
            assert!(is_null(trim(v)), "{v:?} should be null");
        }
        for v in ["0", "-", "nil", "nulls", "n", "Nana", " x "] {
            assert!(!is_null(trim(v)), "{v:?} should not be null");
        }
    }

    #[test]
    fn trim_removes_only_outer_spaces_and_tabs() {
        assert_eq!(trim(" a b\t"), "a b");
        assert_eq!(trim("a b"), "a b");
        assert_eq!(trim("\u{a0}x"), "\u{a0}x");
        assert_eq!(trim(" \t "), "");
    }

    #[test]
    fn integers_are_signed_decimal_i64() {
        assert_eq!(parse_int("42"), Some(42));
        assert_eq!(parse_int("-7"), Some(-7));
        assert_eq!(parse_int("+7"), Some(7));
        assert_eq!(parse_int("007"), Some(7));
        assert_eq!(parse_int("9223372036854775807"), Some(i64::MAX));
        for v in [
            "9223372036854775808",
            "1.0",
            "1e3",
            "1_000",
            "0x10",
            "",
            "-",
            " 1",
        ] {
            assert_eq!(parse_int(v), None, "{v:?}");
        }
    }

    #[test]
    fn floats_are_decimal_numbers_without_words() {
        assert_eq!(parse_float("1.5"), Some(1.5));
        assert_eq!(parse_float("-.5"), Some(-0.5));
        assert_eq!(parse_float("2."), Some(2.0));
        assert_eq!(parse_float("1e-3"), Some(0.001));
        assert_eq!(parse_float("12"), Some(12.0));
        assert_eq!(
            parse_float("9223372036854775808"),
            Some(9.223372036854776e18)
        );
        for v in [
            "inf", "-inf", "NaN", "infinity", "+nan", "1e", "1.2.3", "abc", "", "1,5",
        ] {
            assert_eq!(parse_float(v), None, "{v:?}");
        }
    }

    #[test]
    fn booleans_are_words_not_digits() {
        assert_eq!(parse_bool("true"), Some(true));
        assert_eq!(parse_bool("FALSE"), Some(false));
        assert_eq!(parse_bool("Yes"), Some(true));
        assert_eq!(parse_bool("no"), Some(false));
        for v in ["1", "0", "t", "f", "y", "n", "truth", ""] {
            assert_eq!(parse_bool(v), None, "{v:?}");
        }
    }

    #[test]
    fn datetimes_are_extended_iso_8601() {
        let key = |v| parse_datetime(v).map(|d| d.to_string());
        assert_eq!(key("2024-06-19").as_deref(), Some("2024-06-19T00:00:00"));
        assert_eq!(
            key("2024-06-19T15:22").as_deref(),
            Some("2024-06-19T15:22:00")
        );
        assert_eq!(
            key("2024-06-19 15:22:45").as_deref(),
            Some("2024-06-19T15:22:45")
        );
        assert_eq!(
            key("2024-06-19T15:22:45.5").as_deref(),
            Some("2024-06-19T15:22:45.5")
        );
        assert_eq!(
            key("2024-06-19T15:22:45Z").as_deref(),
            Some("2024-06-19T15:22:45")
        );
        assert_eq!(
            key("2024-06-19T15:22:45+02:00").as_deref(),
            Some("2024-06-19T13:22:45")
        );
        for v in [
            "20240619",
            "2024-13-01",
            "2024-02-30",
            "19/06/2024",
            "2024",
            "2024-06-19x",
        ] {
            assert_eq!(key(v), None, "{v:?}");
        }
    }

    #[test]
    fn classify_prefers_the_narrowest_kind() {
        assert_eq!(classify(" 1 "), Kind::Integer);
        assert_eq!(classify("1.0"), Kind::Float);
        assert_eq!(classify("true"), Kind::Boolean);
        assert_eq!(classify("2024-01-01"), Kind::DateTime);
        assert_eq!(classify("NA"), Kind::Null);
        assert_eq!(classify("name"), Kind::Text);
    }
}
