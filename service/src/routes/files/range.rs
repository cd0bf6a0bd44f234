//! Which bytes a download sends, from the `Range` and `If-Range` headers (RFC 9110 §14).
//! One range is served as 206; several are served whole (a server may ignore Range), as is a
//! malformed header; a range that misses the file is 416.

use std::ops::RangeInclusive;

use axum::http::{HeaderMap, header};

#[derive(Debug, PartialEq, Eq)]
pub enum Requested {
    Whole,
    Part(RangeInclusive<u64>),
    Unsatisfiable,
}

/// `etag` is the file's current strong ETag, for `If-Range`.
pub fn requested(headers: &HeaderMap, size: u64, etag: &str) -> Requested {
    let Some(range) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Requested::Whole;
    };
    // The client holds another version than ours: it needs all of it.
    if let Some(if_range) = headers.get(header::IF_RANGE)
        && if_range.as_bytes() != etag.as_bytes()
    {
        return Requested::Whole;
    }
    let Ok(parsed) = http_range_header::parse_range_header(range) else {
        return Requested::Whole;
    };
    match parsed.validate(size) {
        Ok(ranges) => match ranges.as_slice() {
            [one] => Requested::Part(one.clone()),
            _ => Requested::Whole,
        },
        Err(_) => Requested::Unsatisfiable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(range: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, range.parse().unwrap());
        headers
    }

    #[test]
    fn single_ranges_in_all_three_forms() {
        assert_eq!(
            requested(&with("bytes=0-9"), 100, "\"e\""),
            Requested::Part(0..=9)
        );
        assert_eq!(
            requested(&with("bytes=90-"), 100, "\"e\""),
            Requested::Part(90..=99)
        );
        assert_eq!(
            requested(&with("bytes=-5"), 100, "\"e\""),
            Requested::Part(95..=99)
        );
        assert_eq!(
            requested(&with("bytes=50-500"), 100, "\"e\""),
            Requested::Part(50..=99)
        );
    }

    #[test]
    fn unsatisfiable_malformed_and_multiple() {
        assert_eq!(
            requested(&with("bytes=100-"), 100, "\"e\""),
            Requested::Unsatisfiable
        );
        assert_eq!(
            requested(&with("bytes=0-0"), 0, "\"e\""),
            Requested::Unsatisfiable
        );
        assert_eq!(
            requested(&with("bytes=x-y"), 100, "\"e\""),
            Requested::Whole
        );
        assert_eq!(
            requested(&with("lines=1-2"), 100, "\"e\""),
            Requested::Whole
        );
        assert_eq!(
            requested(&with("bytes=0-1,5-6"), 100, "\"e\""),
            Requested::Whole
        );
        assert_eq!(requested(&HeaderMap::new(), 100, "\"e\""), Requested::Whole);
    }

    #[test]
    fn if_range_with_another_etag_gets_the_whole_file() {
        let mut headers = with("bytes=0-9");
        headers.insert(header::IF_RANGE, "\"old\"".parse().unwrap());
        assert_eq!(requested(&headers, 100, "\"new\""), Requested::Whole);
        headers.insert(header::IF_RANGE, "\"new\"".parse().unwrap());
        assert_eq!(requested(&headers, 100, "\"new\""), Requested::Part(0..=9));
    }
}
