//! Property tests: arbitrary input never panics; random well-formed CSV agrees with a naive
//! reference computed from the values the generator produced.

use std::collections::HashSet;
use std::io::{self, Read};
use std::ops::ControlFlow;

use csv_profile::{ColumnProfile, ColumnType, ProfileOptions, Scalar, profile};
use proptest::prelude::*;

fn tight_limits() -> ProfileOptions {
    // Small limits so that short random inputs reach every limit and the prefix/stream seam.
    ProfileOptions {
        sniff_bytes: 37,
        max_columns: 8,
        max_field_bytes: 24,
        max_record_bytes: 64,
        progress_interval_bytes: 16,
        ..ProfileOptions::default()
    }
}

/// Bytes that matter to a CSV parser, so random inputs get past the first check.
fn csv_ish_bytes() -> impl Strategy<Value = Vec<u8>> {
    let alphabet: &[u8] = b"a1.-e,;\t|\"\n\r \x00\xEF\xBB\xBF\xC3\xA9\xFFNt";
    prop::collection::vec(prop::sample::select(alphabet), 0..600)
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(input in prop::collection::vec(any::<u8>(), 0..2000)) {
        for options in [ProfileOptions::default(), tight_limits()] {
            check_invariants(&input, &options);
        }
    }

    #[test]
    fn never_panics_on_csv_like_bytes(input in csv_ish_bytes()) {
        for options in [ProfileOptions::default(), tight_limits()] {
            check_invariants(&input, &options);
        }
    }
}

fn check_invariants(input: &[u8], options: &ProfileOptions) {
    let mut last = 0;
    let result = profile(input, options, &mut |bytes| {
        assert!(bytes >= last && bytes <= input.len() as u64);
        last = bytes;
        ControlFlow::Continue(())
    });
    if let Ok(p) = result {
        assert_eq!(p.bytes, input.len() as u64);
        assert_eq!(p.columns, p.column_profiles.len());
        for c in &p.column_profiles {
            assert_eq!(c.count + c.nulls, p.rows);
            assert!(c.distinct <= c.count);
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Int,
    Float,
    Bool,
    Date,
    Text,
}

#[derive(Debug, Clone)]
enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Date(String),
    Text(String),
}

impl Value {
    fn to_field(&self) -> String {
        match self {
            Value::Int(i) => i.to_string(),
            // `{:?}` always writes a fraction or exponent, so the value stays a float.
            Value::Float(x) => format!("{x:?}"),
            Value::Bool(b) => b.to_string(),
            Value::Date(s) | Value::Text(s) => s.clone(),
        }
    }
}

fn value_of(kind: Kind) -> BoxedStrategy<Value> {
    match kind {
        Kind::Int => any::<i64>().prop_map(Value::Int).boxed(),
        Kind::Float => (-1e6f64..1e6).prop_map(Value::Float).boxed(),
        Kind::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Kind::Date => (1970u32..2100, 1u32..=12, 1u32..=28)
            .prop_map(|(y, m, d)| Value::Date(format!("{y:04}-{m:02}-{d:02}")))
            .boxed(),
        // Starts with `s` and ends with `x` so that no value reads as a number, boolean,
        // date or null token, and trimming never changes it; the middle exercises quoting.
        Kind::Text => "s[a-zé,;|\"\n\t ]{0,6}x".prop_map(Value::Text).boxed(),
    }
}

/// A generated column: the kind its values were drawn from, and one cell per row.
type Column = (Kind, Vec<Option<Value>>);

fn column_of(rows: usize) -> impl Strategy<Value = Column> {
    prop_oneof![
        Just(Kind::Int),
        Just(Kind::Float),
        Just(Kind::Bool),
        Just(Kind::Date),
        Just(Kind::Text)
    ]
    .prop_flat_map(move |kind| {
        let cell = prop::option::weighted(0.8, value_of(kind));
        (Just(kind), prop::collection::vec(cell, rows))
    })
}

/// How the generated table is written out.
#[derive(Debug, Clone)]
struct Dialect {
    delimiter: u8,
    crlf: bool,
    bom: bool,
    /// A sniff window this small cuts the prefix/stream seam through the data; the dialect
    /// is then given rather than sniffed from a few bytes.
    sniff_bytes: Option<usize>,
}

fn dialect() -> impl Strategy<Value = Dialect> {
    (
        prop::sample::select(vec![b',', b';', b'\t', b'|']),
        any::<bool>(),
        any::<bool>(),
        prop::option::weighted(0.3, 0usize..200),
    )
        .prop_map(|(delimiter, crlf, bom, sniff_bytes)| Dialect {
            delimiter,
            crlf,
            bom,
            sniff_bytes,
        })
}

fn table() -> impl Strategy<Value = (Dialect, Vec<Column>)> {
    (0usize..40, 2usize..6)
        .prop_flat_map(|(rows, width)| (dialect(), prop::collection::vec(column_of(rows), width)))
}

fn write_csv(dialect: &Dialect, columns: &[Column]) -> Vec<u8> {
    let terminator = if dialect.crlf {
        csv::Terminator::CRLF
    } else {
        csv::Terminator::Any(b'\n')
    };
    let start = if dialect.bom {
        b"\xEF\xBB\xBF".to_vec()
    } else {
        Vec::new()
    };
    let mut writer = csv::WriterBuilder::new()
        .delimiter(dialect.delimiter)
        .terminator(terminator)
        .from_writer(start);
    let header: Vec<String> = (0..columns.len()).map(|i| format!("c{i}")).collect();
    writer.write_record(&header).unwrap();
    let rows = columns[0].1.len();
    for row in 0..rows {
        let fields = columns.iter().map(|(_, cells)| {
            cells[row]
                .as_ref()
                .map_or_else(String::new, Value::to_field)
        });
        writer.write_record(fields).unwrap();
    }
    writer.into_inner().unwrap()
}

fn options_for(dialect: &Dialect) -> ProfileOptions {
    match dialect.sniff_bytes {
        None => ProfileOptions::default(),
        Some(sniff_bytes) => ProfileOptions {
            sniff_bytes,
            delimiter: Some(dialect.delimiter),
            has_header: Some(true),
            ..ProfileOptions::default()
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn agrees_with_a_naive_reference((dialect, columns) in table()) {
        let input = write_csv(&dialect, &columns);
        let p = profile(&input[..], &options_for(&dialect), &mut |_| ControlFlow::Continue(()))
            .unwrap();
        prop_assert_eq!(p.delimiter.as_bytes(), &[dialect.delimiter]);
        prop_assert!(p.has_header);
        prop_assert_eq!(p.bom, dialect.bom);
        prop_assert_eq!(p.bytes, input.len() as u64);
        prop_assert_eq!(p.rows, columns[0].1.len() as u64);
        prop_assert_eq!(p.columns, columns.len());
        for (i, ((kind, cells), got)) in columns.iter().zip(&p.column_profiles).enumerate() {
            prop_assert_eq!(&got.name, &format!("c{i}"));
            check_column(*kind, cells, got)?;
        }
    }
}

fn check_column(
    kind: Kind,
    cells: &[Option<Value>],
    got: &ColumnProfile,
) -> Result<(), TestCaseError> {
    let values: Vec<&Value> = cells.iter().flatten().collect();
    prop_assert_eq!(got.count, values.len() as u64);
    prop_assert_eq!(got.nulls, (cells.len() - values.len()) as u64);

    let texts: Vec<String> = values.iter().map(|v| v.to_field()).collect();
    let exact_distinct = texts.iter().collect::<HashSet<_>>().len() as u64;
    // The sketch keeps 25-bit hash prefixes even for few values, so a rare collision may
    // merge two of them.
    let tolerance = 1 + exact_distinct / 50;
    prop_assert!(
        got.distinct.abs_diff(exact_distinct) <= tolerance,
        "distinct {} vs {}",
        got.distinct,
        exact_distinct
    );
    let lengths = texts.iter().map(|t| t.chars().count() as u64);
    prop_assert_eq!(got.min_length, lengths.clone().min());
    prop_assert_eq!(got.max_length, lengths.max());

    if values.is_empty() {
        prop_assert_eq!(got.column_type, ColumnType::Empty);
        prop_assert_eq!(&got.min, &None);
        return Ok(());
    }
    let numbers: Vec<f64> = values
        .iter()
        .filter_map(|v| match v {
            Value::Int(i) => Some(*i as f64),
            Value::Float(x) => Some(*x),
            _ => None,
        })
        .collect();
    let (expected_type, min, max) = match kind {
        Kind::Int => {
            let ints = values.iter().filter_map(|v| match v {
                Value::Int(i) => Some(*i),
                _ => None,
            });
            (
                ColumnType::Integer,
                ints.clone().min().map(Scalar::Integer),
                ints.max().map(Scalar::Integer),
            )
        }
        Kind::Float => (
            ColumnType::Float,
            numbers.iter().copied().reduce(f64::min).map(Scalar::Float),
            numbers.iter().copied().reduce(f64::max).map(Scalar::Float),
        ),
        Kind::Bool => {
            let bools = values.iter().filter_map(|v| match v {
                Value::Bool(b) => Some(*b),
                _ => None,
            });
            (
                ColumnType::Boolean,
                bools.clone().min().map(Scalar::Boolean),
                bools.max().map(Scalar::Boolean),
            )
        }
        // ISO dates of one format order as text the way they order as dates.
        Kind::Date | Kind::Text => (
            if matches!(kind, Kind::Date) {
                ColumnType::DateTime
            } else {
                ColumnType::String
            },
            texts.iter().min().cloned().map(Scalar::Text),
            texts.iter().max().cloned().map(Scalar::Text),
        ),
    };
    prop_assert_eq!(got.column_type, expected_type);
    prop_assert_eq!(&got.min, &min);
    prop_assert_eq!(&got.max, &max);

    if numbers.is_empty() {
        prop_assert_eq!(got.mean, None);
        prop_assert_eq!(got.std_dev, None);
    } else {
        // Two-pass textbook formulas, in the widest float we have.
        let n = numbers.len() as f64;
        let mean = numbers.iter().sum::<f64>() / n;
        let variance = numbers.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let scale = numbers.iter().fold(1.0f64, |m, x| m.max(x.abs()));
        let got_mean = got.mean.unwrap_or(f64::NAN);
        let got_std = got.std_dev.unwrap_or(f64::NAN);
        prop_assert!(
            (got_mean - mean).abs() <= 1e-9 * scale,
            "mean {} vs {}",
            got_mean,
            mean
        );
        prop_assert!(
            (got_std - variance.sqrt()).abs() <= 1e-6 * scale,
            "std {} vs {}",
            got_std,
            variance.sqrt()
        );
    }
    Ok(())
}

/// Hands out the input in the given chunk sizes (cycling), with an `Interrupted` error
/// before every chunk, as a network stream might.
struct Chunked<'a> {
    input: &'a [u8],
    sizes: Vec<usize>,
    next: usize,
    interrupt: bool,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.interrupt = !self.interrupt;
        if self.interrupt {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let size = self.sizes[self.next % self.sizes.len()];
        self.next += 1;
        let n = size.min(buf.len()).min(self.input.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    #[test]
    fn the_result_does_not_depend_on_how_the_stream_is_chunked(
        (dialect, columns) in table(),
        sizes in prop::collection::vec(1usize..300, 1..8),
    ) {
        let input = write_csv(&dialect, &columns);
        let options = options_for(&dialect);
        let whole = profile(&input[..], &options, &mut |_| ControlFlow::Continue(())).unwrap();
        let chunked = Chunked { input: &input, sizes, next: 0, interrupt: false };
        let streamed = profile(chunked, &options, &mut |_| ControlFlow::Continue(())).unwrap();
        prop_assert_eq!(streamed, whole);
    }
}
