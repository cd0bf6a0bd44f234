//! Whole-file behaviour of `profile`: dialect, errors with positions, limits, progress.

use std::io::{self, Read};
use std::ops::ControlFlow;

use csv_profile::{ColumnType, Profile, ProfileError, ProfileOptions, Scalar, profile};

fn run(input: &[u8]) -> Result<Profile, ProfileError> {
    run_with(input, &ProfileOptions::default())
}

fn run_with(input: &[u8], options: &ProfileOptions) -> Result<Profile, ProfileError> {
    profile(input, options, &mut |_| ControlFlow::Continue(()))
}

#[test]
fn profiles_a_small_file_with_a_header() {
    let input =
        b"id,price,name,active,day\n1,2.5,ann,true,2024-01-02\n2,,bob,no,2024-01-01\n3,4.5,,yes,\n";
    let p = run(input).unwrap();
    assert_eq!((p.rows, p.columns, p.bytes), (3, 5, input.len() as u64));
    assert!(p.has_header);
    assert!(!p.bom);
    assert_eq!(p.delimiter, ",");
    let names: Vec<_> = p.column_profiles.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "price", "name", "active", "day"]);
    let types: Vec<_> = p.column_profiles.iter().map(|c| c.column_type).collect();
    assert_eq!(
        types,
        [
            ColumnType::Integer,
            ColumnType::Float,
            ColumnType::String,
            ColumnType::Boolean,
            ColumnType::DateTime
        ]
    );
    let price = &p.column_profiles[1];
    assert_eq!((price.count, price.nulls), (2, 1));
    assert_eq!(price.mean, Some(3.5));
    assert_eq!(price.std_dev, Some(1.0));
    assert_eq!(price.min, Some(Scalar::Float(2.5)));
    let day = &p.column_profiles[4];
    assert_eq!(day.min, Some(Scalar::Text("2024-01-01".into())));
    assert_eq!(day.max, Some(Scalar::Text("2024-01-02".into())));
}

#[test]
fn detects_each_delimiter() {
    for (sep, name) in [(',', ","), (';', ";"), ('\t', "\t"), ('|', "|")] {
        // The quoted value holds every candidate; only the real delimiter is consistent.
        let text = format!("a{sep}b{sep}c\n1{sep}\"x,y;z|w\tv\"{sep}3\n4{sep}z{sep}6\n");
        let p = run(text.as_bytes()).unwrap();
        assert_eq!(p.delimiter, name, "{sep:?}");
        assert_eq!((p.rows, p.columns), (2, 3), "{sep:?}");
    }
}

#[test]
fn without_a_header_the_first_row_is_data() {
    let p = run(b"1,2\n3,4\n").unwrap();
    assert!(!p.has_header);
    assert_eq!(p.rows, 2);
    assert_eq!(p.column_profiles[0].name, "column_1");
    assert_eq!(p.column_profiles[0].min, Some(Scalar::Integer(1)));
}

#[test]
fn options_override_sniffing() {
    let options = ProfileOptions {
        delimiter: Some(b';'),
        has_header: Some(false),
        ..ProfileOptions::default()
    };
    let p = run_with(b"a,b;c\n1,2;3\n", &options).unwrap();
    assert_eq!(
        (p.delimiter.as_str(), p.has_header, p.rows, p.columns),
        (";", false, 2, 2)
    );
}

#[test]
fn strips_a_utf8_bom() {
    let p = run(b"\xEF\xBB\xBFname,n\nx,1\n").unwrap();
    assert!(p.bom);
    assert_eq!(p.bytes, 14);
    assert_eq!(p.column_profiles[0].name, "name");
}

#[test]
fn quoted_fields_may_hold_delimiters_quotes_and_newlines() {
    let p = run(b"k,v\n\"a,b\",\"say \"\"hi\"\"\nthere\"\nc,d\n").unwrap();
    assert_eq!(p.rows, 2);
    assert_eq!(p.column_profiles[0].max, Some(Scalar::Text("c".into())));
    assert_eq!(p.column_profiles[1].max_length, Some(14));
}

#[test]
fn ragged_row_names_its_line() {
    let err = run(b"a,b,c\n1,2,3\n4,5\n7,8,9\n").unwrap_err();
    assert_eq!(
        err,
        ProfileError::RaggedRow {
            line: 3,
            expected: 3,
            found: 2,
            first_line: 1
        }
    );
    assert!(err.to_string().contains("line 3"), "{err}");
}

#[test]
fn line_numbers_count_newlines_inside_quotes() {
    let err = run(b"a,b\n\"x\ny\",1\n1,2,3\n").unwrap_err();
    assert_eq!(err.line(), Some(4), "{err}");
}

#[test]
fn invalid_utf8_names_line_and_column() {
    let err = run(b"a,b,c\n1,2,3\n4,5,\xff\xfe\n").unwrap_err();
    assert_eq!(err, ProfileError::InvalidUtf8 { line: 3, column: 3 });
    assert!(err.to_string().contains("line 3, column 3"), "{err}");
}

#[test]
fn invalid_utf8_inside_a_multi_line_field_names_its_own_line() {
    let err = run(b"a,b\n1,\"first\nsecond\nthird \xff\"\n").unwrap_err();
    assert_eq!(err, ProfileError::InvalidUtf8 { line: 4, column: 2 });
}

#[test]
fn a_character_split_by_the_delimiter_is_invalid_utf8() {
    // 0xC3 0xA9 is "é"; with a comma between them each field is broken on its own.
    let err = run(b"a,b\n\xC3,\xA9\n").unwrap_err();
    assert_eq!(err.kind(), "invalid_utf8", "{err}");
}

#[test]
fn invalid_utf8_in_the_header_is_line_1() {
    let options = ProfileOptions {
        has_header: Some(true),
        ..ProfileOptions::default()
    };
    let err = run_with(b"a,\xC3,\xA9\n1,2,3\n", &options).unwrap_err();
    assert_eq!(err.kind(), "invalid_utf8", "{err}");
    assert_eq!(err.line(), Some(1));
}

#[test]
fn binary_input_is_not_csv() {
    let err = run(b"PK\x03\x04\x14\x00\x00\x00\x08\x00").unwrap_err();
    assert_eq!(err, ProfileError::Binary { line: 1 });
    assert!(err.to_string().contains("not a CSV file"), "{err}");
}

#[test]
fn a_nul_after_the_sniffed_prefix_is_found_too() {
    let mut text = b"a,b\n".repeat(100);
    text.extend_from_slice(b"x,\0\n");
    let options = ProfileOptions {
        sniff_bytes: 16,
        ..ProfileOptions::default()
    };
    assert_eq!(
        run_with(&text, &options).unwrap_err(),
        ProfileError::Binary { line: 101 }
    );
}

#[test]
fn empty_inputs_are_refused() {
    for input in [&b""[..], b"\xEF\xBB\xBF", b"\n\n\r\n"] {
        assert_eq!(run(input).unwrap_err(), ProfileError::Empty, "{input:?}");
    }
}

#[test]
fn header_only_file_has_no_rows() {
    let p = run(b"a,b\n").unwrap();
    assert_eq!((p.rows, p.columns), (0, 2));
    assert_eq!(p.column_profiles[0].column_type, ColumnType::Empty);
}

#[test]
fn too_many_columns_are_refused() {
    let options = ProfileOptions {
        max_columns: 3,
        ..ProfileOptions::default()
    };
    let err = run_with(b"a,b,c,d\n1,2,3,4\n", &options).unwrap_err();
    assert_eq!(
        err,
        ProfileError::TooManyColumns {
            line: 1,
            found: 4,
            max: 3
        }
    );
}

#[test]
fn a_field_over_the_limit_is_refused() {
    let options = ProfileOptions {
        max_field_bytes: 8,
        ..ProfileOptions::default()
    };
    let err = run_with(b"a,b\n1,2\n3,123456789\n", &options).unwrap_err();
    assert_eq!(
        err,
        ProfileError::FieldTooLong {
            line: 3,
            column: 2,
            max: 8
        }
    );
}

#[test]
fn an_unclosed_quote_stops_at_the_record_limit_not_at_the_end_of_the_stream() {
    let options = ProfileOptions {
        max_record_bytes: 1024 * 1024,
        ..ProfileOptions::default()
    };
    // An endless stream: only the record limit can end this.
    let input = io::Cursor::new(b"a,b\n1,\"open".to_vec()).chain(io::repeat(b'x'));
    let err = profile(input, &options, &mut |_| ControlFlow::Continue(())).unwrap_err();
    assert_eq!(
        err,
        ProfileError::RecordTooLarge {
            line: 2,
            max: 1024 * 1024
        }
    );
}

#[test]
fn endless_blank_lines_end_with_an_error() {
    let options = ProfileOptions {
        max_record_bytes: 1024 * 1024,
        ..ProfileOptions::default()
    };
    let input = io::Cursor::new(b"a,b\n".to_vec()).chain(io::repeat(b'\n'));
    let err = profile(input, &options, &mut |_| ControlFlow::Continue(())).unwrap_err();
    assert_eq!(err.kind(), "record_too_large", "{err}");
}

/// Yields `1,2\n` forever.
struct EndlessRows;

impl Read for EndlessRows {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = b"1,2\n"[i % 4];
        }
        Ok(buf.len() / 4 * 4)
    }
}

#[test]
fn progress_can_cancel() {
    let mut calls = 0;
    let err = profile(EndlessRows, &ProfileOptions::default(), &mut |bytes| {
        calls += 1;
        if bytes >= 5 * 1024 * 1024 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .unwrap_err();
    let ProfileError::Cancelled { bytes } = err else {
        panic!("{err}")
    };
    assert!(bytes >= 5 * 1024 * 1024);
    assert!(calls <= 6, "{calls} calls");
}

#[test]
fn progress_is_reported_at_a_bounded_rate_and_at_the_end() {
    let input = b"n,m\n"
        .iter()
        .chain(b"12345,6\n".repeat(400_000).iter())
        .copied()
        .collect::<Vec<u8>>();
    let mut seen = Vec::new();
    let p = profile(&input[..], &ProfileOptions::default(), &mut |bytes| {
        seen.push(bytes);
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(p.rows, 400_000);
    assert_eq!(seen.last(), Some(&(input.len() as u64)));
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    let mib = input.len() / (1024 * 1024);
    assert!(seen.len() >= mib && seen.len() <= mib + 2, "{seen:?}");
}

#[test]
fn distinct_count_is_within_two_percent_on_a_million_values() {
    let mut input = b"id,half\n".to_vec();
    for i in 0..1_000_000u32 {
        // A hex id keeps the column a string; `half` repeats every value twice.
        input.extend_from_slice(format!("k{i:x},{}\n", i / 2).as_bytes());
    }
    let p = run(&input).unwrap();
    for (column, exact) in [(0, 1_000_000.0), (1, 500_000.0)] {
        let estimate = p.column_profiles[column].distinct as f64;
        let error = (estimate - exact).abs() / exact;
        assert!(
            error < 0.02,
            "column {column}: {estimate} vs {exact} ({error:.4})"
        );
    }
}

#[test]
fn distinct_count_is_exact_for_few_values() {
    let p = run(b"c\na\nb\na\nc\n").unwrap();
    assert_eq!(p.column_profiles[0].distinct, 3);
}

#[test]
fn serializes_to_the_stored_json_shape() {
    let p = run(b"n,s\n1,x\n").unwrap();
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["rows"], 1);
    assert_eq!(json["delimiter"], ",");
    assert_eq!(json["column_profiles"][0]["type"], "integer");
    assert_eq!(json["column_profiles"][0]["min"], 1);
    assert_eq!(json["column_profiles"][1]["type"], "string");
    assert_eq!(json["column_profiles"][1]["mean"], serde_json::Value::Null);

    let err = run(b"a,b\n1\n").unwrap_err();
    let json = serde_json::to_value(&err).unwrap();
    assert_eq!(json["kind"], "ragged_row");
    assert_eq!(json["line"], 2);
    assert!(json["message"].as_str().unwrap().contains("line 2"));
}

#[test]
fn the_stored_json_reads_back_as_the_same_profile() {
    let p = run(b"i,f,b,d,s,e\n1,2.5,true,2024-01-01,x,\n2,3,no,2024-01-02,y,\n").unwrap();
    let json = serde_json::to_string(&p).unwrap();
    let back: Profile = serde_json::from_str(&json).unwrap();
    assert_eq!(back, p);
}

#[test]
fn an_empty_header_field_gets_a_positional_name() {
    let p = run(b",price\n0,1.5\n1,2.5\n").unwrap();
    assert!(p.has_header);
    assert_eq!(p.column_profiles[0].name, "column_1");
    assert_eq!(p.column_profiles[1].name, "price");
}

#[test]
fn a_tiny_sniff_window_still_reads_the_whole_file() {
    let options = ProfileOptions {
        sniff_bytes: 0,
        has_header: Some(true),
        ..ProfileOptions::default()
    };
    let p = run_with(b"\xEF\xBB\xBFa,b\n1,2\n3,4\n", &options).unwrap();
    assert!(p.bom);
    assert_eq!((p.rows, p.columns), (2, 2));
}
