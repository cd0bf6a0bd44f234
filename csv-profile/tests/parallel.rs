//! Parallel profiling gives the single-thread result: random CSVs (quoted fields holding
//! delimiters, quotes and line breaks, empty fields, columns of mixed types) and random
//! CSV-like bytes (malformed quoting, ragged rows, bad UTF-8), cut into chunks of a few
//! bytes so that almost every record boundary is also a chunk boundary.

use std::io::Read;
use std::ops::ControlFlow;

use csv_profile::{Profile, ProfileError, ProfileOptions, profile};
use proptest::prelude::*;

fn run(input: &[u8], options: &ProfileOptions) -> Result<Profile, ProfileError> {
    profile(input, options, &mut |_| ControlFlow::Continue(()))
}

/// The stated tolerances: exact for counts, types, min/max and lengths; float rounding for
/// mean and standard deviation; 2% for distinct counts; the quantile bound (1%) for
/// quantiles.
fn assert_same(
    parallel: &Result<Profile, ProfileError>,
    single: &Result<Profile, ProfileError>,
) -> Result<(), TestCaseError> {
    let (p, s) = match (parallel, single) {
        (Ok(p), Ok(s)) => (p, s),
        (p, s) => {
            prop_assert_eq!(p, s);
            return Ok(());
        }
    };
    prop_assert_eq!(
        (
            p.rows,
            p.columns,
            p.bytes,
            &p.delimiter,
            p.has_header,
            p.bom
        ),
        (
            s.rows,
            s.columns,
            s.bytes,
            &s.delimiter,
            s.has_header,
            s.bom
        )
    );
    for (a, b) in p.column_profiles.iter().zip(&s.column_profiles) {
        prop_assert_eq!(
            (&a.name, a.column_type, a.count, a.nulls, &a.min, &a.max),
            (&b.name, b.column_type, b.count, b.nulls, &b.min, &b.max)
        );
        prop_assert_eq!((a.min_length, a.max_length), (b.min_length, b.max_length));
        let close = |x: Option<f64>, y: Option<f64>, tolerance: f64| match (x, y) {
            (Some(x), Some(y)) => (x - y).abs() <= tolerance * y.abs().max(1.0),
            (x, y) => x == y,
        };
        prop_assert!(
            close(a.mean, b.mean, 1e-9),
            "mean {:?} vs {:?}",
            a.mean,
            b.mean
        );
        prop_assert!(
            close(a.std_dev, b.std_dev, 1e-6),
            "std_dev {:?} vs {:?}",
            a.std_dev,
            b.std_dev
        );
        prop_assert!(
            a.distinct.abs_diff(b.distinct) as f64 <= 0.02 * b.distinct as f64,
            "distinct {} vs {}",
            a.distinct,
            b.distinct
        );
        match (&a.quantiles, &b.quantiles) {
            (Some(x), Some(y)) => {
                for (u, v) in [
                    (x.p25, y.p25),
                    (x.p50, y.p50),
                    (x.p75, y.p75),
                    (x.p95, y.p95),
                ] {
                    prop_assert!((u - v).abs() <= 0.01 * v.abs() + 1e-9, "{x:?} vs {y:?}");
                }
            }
            (x, y) => prop_assert_eq!(x, y),
        }
    }
    Ok(())
}

/// A cell of a column whose values may be of any type, or null, or awkward text.
fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<i32>().prop_map(|i| i.to_string()),
        2 => (-1e4f64..1e4).prop_map(|x| format!("{x:?}")),
        1 => any::<bool>().prop_map(|b| b.to_string()),
        1 => (2000u32..2030, 1u32..=12, 1u32..=28, 0u32..24)
            .prop_map(|(y, m, d, h)| format!("{y:04}-{m:02}-{d:02}T{h:02}:00:00Z")),
        // Same instant as the one above at midnight, written differently.
        1 => (2000u32..2030, 1u32..=12, 1u32..=28)
            .prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
        2 => Just(String::new()),
        1 => Just("NA".to_owned()),
        3 => "[a-c1 ,;\"\n\r\t]{0,8}",
    ]
}

/// A column biased to one kind of value (so typed columns occur), with stray other cells.
fn column(rows: usize) -> impl Strategy<Value = Vec<String>> {
    (0usize..4).prop_flat_map(move |kind| {
        let typed = match kind {
            0 => any::<i16>().prop_map(|i| i.to_string()).boxed(),
            1 => (-100f64..100.0).prop_map(|x| format!("{x:.3}")).boxed(),
            2 => (2020u32..2022, 1u32..=12, 1u32..=28)
                .prop_map(|(y, m, d)| format!("{y}-{m:02}-{d:02}"))
                .boxed(),
            _ => cell().boxed(),
        };
        let cells = prop_oneof![9 => typed, 1 => cell()];
        prop::collection::vec(cells, rows)
    })
}

#[derive(Debug, Clone)]
struct Shape {
    delimiter: u8,
    crlf: bool,
    quote_always: bool,
    header: bool,
}

fn table() -> impl Strategy<Value = (Shape, Vec<Vec<String>>)> {
    let shape = (
        prop::sample::select(vec![b',', b';', b'\t', b'|']),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(delimiter, crlf, quote_always, header)| Shape {
            delimiter,
            crlf,
            quote_always,
            header,
        });
    (shape, 0usize..60, 1usize..6).prop_flat_map(|(shape, rows, width)| {
        (Just(shape), prop::collection::vec(column(rows), width))
    })
}

fn write_csv(shape: &Shape, columns: &[Vec<String>]) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .delimiter(shape.delimiter)
        .terminator(if shape.crlf {
            csv::Terminator::CRLF
        } else {
            csv::Terminator::Any(b'\n')
        })
        .quote_style(if shape.quote_always {
            csv::QuoteStyle::Always
        } else {
            csv::QuoteStyle::Necessary
        })
        .from_writer(Vec::new());
    if shape.header {
        let names: Vec<String> = (0..columns.len()).map(|i| format!("col{i}")).collect();
        writer.write_record(&names).unwrap();
    }
    for row in 0..columns[0].len() {
        writer
            .write_record(columns.iter().map(|c| c[row].as_str()))
            .unwrap();
    }
    writer.into_inner().unwrap()
}

fn parallel_options(threads: usize, chunk_bytes: usize, shape: Option<&Shape>) -> ProfileOptions {
    ProfileOptions {
        threads,
        chunk_bytes,
        // Given rather than sniffed: sniffing random text may guess another delimiter,
        // which is fine but not what this test is about.
        delimiter: shape.map(|s| s.delimiter),
        has_header: shape.map(|s| s.header),
        ..ProfileOptions::default()
    }
}

/// Bytes that matter to the parser and to the boundary scanner.
fn csv_ish_bytes() -> impl Strategy<Value = Vec<u8>> {
    let alphabet: &[u8] = b"a1.-,;\"\"\"\n\n\r \xC3\xA9\xFF2024-01-";
    prop::collection::vec(prop::sample::select(alphabet), 0..400)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn parallel_equals_single_thread_on_random_tables(
        (shape, columns) in table(),
        threads in 2usize..5,
        chunk_bytes in 1usize..200,
    ) {
        let input = write_csv(&shape, &columns);
        let options = parallel_options(threads, chunk_bytes, Some(&shape));
        let single = run(&input, &ProfileOptions { threads: 1, ..options.clone() });
        let parallel = run(&input, &options);
        // Only an empty table (no header, no rows) is not a CSV.
        prop_assert!(single.is_ok() || input.is_empty(), "{:?}", single);
        assert_same(&parallel, &single)?;
    }

    #[test]
    fn parallel_equals_single_thread_on_csv_like_bytes(
        input in csv_ish_bytes(),
        threads in 2usize..4,
        chunk_bytes in 1usize..64,
    ) {
        // Sniffed here: both paths share the sniffing, and must agree on what follows.
        let options = parallel_options(threads, chunk_bytes, None);
        let single = run(&input, &ProfileOptions { threads: 1, ..options.clone() });
        let parallel = run(&input, &options);
        assert_same(&parallel, &single)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Tight limits make the record limit and the blank-line limit fire; the two paths may
    /// then stop at different bytes, so only the invariants are compared.
    #[test]
    fn never_panics_and_reports_sane_progress_under_tight_limits(
        input in csv_ish_bytes(),
        chunk_bytes in 1usize..64,
    ) {
        let options = ProfileOptions {
            sniff_bytes: 37,
            max_columns: 8,
            max_field_bytes: 24,
            max_record_bytes: 64,
            progress_interval_bytes: 16,
            threads: 2,
            chunk_bytes,
            ..ProfileOptions::default()
        };
        let mut last = 0;
        let result = profile(&input[..], &options, &mut |bytes| {
            assert!(bytes >= last && bytes <= input.len() as u64);
            last = bytes;
            ControlFlow::Continue(())
        });
        if let Ok(p) = result {
            prop_assert_eq!(p.bytes, input.len() as u64);
            for c in &p.column_profiles {
                prop_assert_eq!(c.count + c.nulls, p.rows);
            }
        }
    }
}

#[test]
fn a_large_file_profiles_the_same_on_four_threads() {
    let mut rng = fastrand::Rng::with_seed(3);
    let mut input = b"id,amount,note,day\n".to_vec();
    for i in 0..200_000 {
        let note = match rng.u8(0..10) {
            0 => "\"multi\nline, \"\"quoted\"\"\"".to_owned(),
            1 => String::new(),
            _ => format!("n{}", rng.u16(..)),
        };
        let line = format!(
            "{i},{}.{:02},{note},2024-{:02}-{:02}\n",
            rng.i32(-5000..5000),
            rng.u8(0..100),
            rng.u8(1..=12),
            rng.u8(1..=28)
        );
        input.extend_from_slice(line.as_bytes());
    }
    let single = run(&input, &ProfileOptions::default());
    let parallel = run(
        &input,
        &ProfileOptions {
            threads: 4,
            chunk_bytes: 64 * 1024,
            ..ProfileOptions::default()
        },
    );
    assert_same(&parallel, &single).unwrap();
    let p = parallel.unwrap();
    assert_eq!(p.rows, 200_000);
    assert!(p.column_profiles[1].quantiles.is_some());
}

#[test]
fn parallel_errors_name_the_same_line() {
    let mut input = b"a,b\n".to_vec();
    for i in 0..10_000 {
        input.extend_from_slice(format!("{i},\"x\ny\"\n").as_bytes());
    }
    input.extend_from_slice(b"1,2,3\n4,5\n");
    let options = ProfileOptions {
        threads: 2,
        chunk_bytes: 1000,
        ..ProfileOptions::default()
    };
    let err = run(&input, &options).unwrap_err();
    assert_eq!(
        err,
        ProfileError::RaggedRow {
            line: 20_002,
            expected: 2,
            found: 3,
            first_line: 1
        }
    );
    assert_eq!(run(&input, &ProfileOptions::default()).unwrap_err(), err);
}

#[test]
fn parallel_profiling_can_be_cancelled_and_stops_at_the_record_limit() {
    let options = ProfileOptions {
        threads: 2,
        max_record_bytes: 1024 * 1024,
        ..ProfileOptions::default()
    };
    let endless = std::io::Cursor::new(b"a,b\n".to_vec()).chain(std::io::repeat(b'\n'));
    let err = profile(endless, &options, &mut |_| ControlFlow::Continue(())).unwrap_err();
    assert_eq!(err.kind(), "record_too_large", "{err}");

    let open_quote = std::io::Cursor::new(b"a,b\n1,\"open".to_vec()).chain(std::io::repeat(b'x'));
    let err = profile(open_quote, &options, &mut |_| ControlFlow::Continue(())).unwrap_err();
    assert_eq!(
        err,
        ProfileError::RecordTooLarge {
            line: 2,
            max: 1024 * 1024
        }
    );

    let rows = EndlessRows;
    let err = profile(rows, &options, &mut |bytes| {
        if bytes >= 5 * 1024 * 1024 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .unwrap_err();
    assert!(matches!(err, ProfileError::Cancelled { bytes } if bytes >= 5 * 1024 * 1024));
}

/// Yields `1,2\n` forever.
struct EndlessRows;

impl std::io::Read for EndlessRows {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = b"1,2\n"[i % 4];
        }
        Ok(buf.len() / 4 * 4)
    }
}
