//! Guessing the dialect from a bounded prefix of the file: delimiter and header.

use csv::{ByteRecord, ReaderBuilder};

use crate::infer::{self, Kind};

pub const CANDIDATE_DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Records looked at; enough to see a pattern, few enough to stay cheap.
const SAMPLE_RECORDS: usize = 100;

/// `sample` is the start of the file (after the BOM); `complete` says it is the whole file,
/// otherwise its last record may be cut short and is ignored.
pub fn sample_records(sample: &[u8], delimiter: u8, complete: bool) -> Vec<ByteRecord> {
    let mut reader = ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(sample);
    let mut records = Vec::new();
    let mut record = ByteRecord::new();
    // A slice reader cannot fail, and ByteRecords skip UTF-8 checks: errors cannot happen,
    // but stopping at one is the safe reading anyway.
    while records.len() <= SAMPLE_RECORDS
        && matches!(reader.read_byte_record(&mut record), Ok(true))
    {
        records.push(record.clone());
    }
    let cut_short = !complete && records.len() <= SAMPLE_RECORDS;
    if cut_short && records.len() > 1 {
        records.pop();
    }
    records.truncate(SAMPLE_RECORDS);
    records
}

/// The candidate under which most sampled records have the same number of fields (more
/// than one); ties go to more fields, then to the order of `CANDIDATE_DELIMITERS`.
/// Falls back to `,` (a one-column file).
pub fn delimiter(sample: &[u8], complete: bool) -> u8 {
    let mut best: Option<(usize, usize, u8)> = None;
    for candidate in CANDIDATE_DELIMITERS {
        let records = sample_records(sample, candidate, complete);
        let Some((fields, agreeing)) = modal_field_count(&records) else {
            continue;
        };
        if fields < 2 {
            continue;
        }
        // Compare agreement as a share of the sample (x1000 to stay in integers).
        let share = agreeing * 1000 / records.len();
        if best.is_none_or(|(s, f, _)| (share, fields) > (s, f)) {
            best = Some((share, fields, candidate));
        }
    }
    best.map_or(b',', |(_, _, d)| d)
}

fn modal_field_count(records: &[ByteRecord]) -> Option<(usize, usize)> {
    let mut counts: Vec<(usize, usize)> = Vec::new();
    for record in records {
        match counts.iter_mut().find(|(len, _)| *len == record.len()) {
            Some((_, n)) => *n += 1,
            None => counts.push((record.len(), 1)),
        }
    }
    counts.into_iter().max_by_key(|&(len, n)| (n, len))
}

/// Votes column by column, like Python's `csv.Sniffer.has_header`: a first-row text over
/// typed values (numbers, booleans, dates) votes for a header; a first-row value of the
/// same type as the rest votes against; for text columns whose values all have the same
/// length, a first-row value of another length votes for. Without a verdict, the first
/// row is a header when its values are distinct non-null text (as column names are).
pub fn has_header(sample: &[u8], delimiter: u8, complete: bool) -> bool {
    let records = sample_records(sample, delimiter, complete);
    let Some((first, rest)) = records.split_first() else {
        return false;
    };
    let first: Vec<String> = first
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    let rest: Vec<&ByteRecord> = rest.iter().filter(|r| r.len() == first.len()).collect();
    let mut votes = 0i32;
    for (column, head) in first.iter().enumerate() {
        let values: Vec<String> = rest
            .iter()
            .filter_map(|r| r.get(column))
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .filter(|v| infer::classify(v) != Kind::Null)
            .collect();
        votes += column_vote(head, &values);
    }
    match votes.signum() {
        1 => true,
        -1 => false,
        _ => looks_like_names(&first),
    }
}

fn column_vote(head: &str, values: &[String]) -> i32 {
    let Some(rest_kind) = common_kind(values) else {
        return 0;
    };
    match (infer::classify(head), rest_kind) {
        (Kind::Null, _) => 0,
        (Kind::Text, Kind::Text) => {
            let len = |v: &str| infer::trim(v).chars().count();
            let first_len = values.first().map(|v| len(v));
            let same_length = values.iter().all(|v| Some(len(v)) == first_len);
            i32::from(same_length && first_len != Some(len(head)))
        }
        (Kind::Text, _) => 1,
        _ => -1,
    }
}

/// The kind shared by all values (integers count as floats among floats); `Text` if mixed.
fn common_kind(values: &[String]) -> Option<Kind> {
    values
        .iter()
        .map(|v| infer::classify(v))
        .reduce(|a, b| match (a, b) {
            _ if a == b => a,
            (Kind::Integer, Kind::Float) | (Kind::Float, Kind::Integer) => Kind::Float,
            _ => Kind::Text,
        })
}

fn looks_like_names(first: &[String]) -> bool {
    let all_text = first.iter().all(|v| infer::classify(v) == Kind::Text);
    let distinct = first
        .iter()
        .enumerate()
        .all(|(i, v)| !first[..i].contains(v));
    all_text && distinct
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_candidate_delimiter() {
        for d in CANDIDATE_DELIMITERS {
            let sep = char::from(d);
            let text = format!("a{sep}b{sep}c\n1{sep}2{sep}3\n4{sep}5{sep}6\n");
            assert_eq!(delimiter(text.as_bytes(), true), d, "{sep:?}");
        }
    }

    #[test]
    fn commas_inside_values_do_not_win_over_a_consistent_semicolon() {
        let text = "name;price\nfoo, bar;1,5\nbaz;2\nqux, a, b;3\n";
        assert_eq!(delimiter(text.as_bytes(), true), b';');
    }

    #[test]
    fn quoted_delimiters_are_not_counted() {
        let text = "a,b\n\"x;y;z\",1\n\"p;q;r\",2\n";
        assert_eq!(delimiter(text.as_bytes(), true), b',');
    }

    #[test]
    fn one_column_falls_back_to_comma() {
        assert_eq!(delimiter(b"alpha\nbeta\n", true), b',');
    }

    #[test]
    fn a_truncated_last_line_is_ignored() {
        // The cut-off last line would have 2 fields instead of 3.
        let text = "a|b|c\n1|2|3\n4|5|6\n7|8";
        assert_eq!(delimiter(text.as_bytes(), false), b'|');
    }

    #[test]
    fn header_over_numbers() {
        assert!(has_header(b"id,price\n1,2.5\n2,3.5\n", b',', true));
    }

    #[test]
    fn numbers_in_the_first_row_mean_no_header() {
        assert!(!has_header(b"1,2.5\n2,3.5\n", b',', true));
    }

    #[test]
    fn all_text_table_with_distinct_names_has_a_header() {
        assert!(has_header(
            b"name,city\nalice,paris\nbob,rome\n",
            b',',
            true
        ));
    }

    #[test]
    fn repeated_or_empty_first_row_values_are_data() {
        assert!(!has_header(b"x,x\ny,z\n", b',', true));
        assert!(!has_header(b"x,\ny,z\n", b',', true));
    }

    #[test]
    fn fixed_length_codes_under_a_longer_name() {
        assert!(has_header(b"code\nAB1\nXY2\n", b',', true));
    }

    #[test]
    fn header_only_file() {
        assert!(has_header(b"a,b,c\n", b',', true));
        assert!(!has_header(b"1,2,3\n", b',', true));
    }
}
