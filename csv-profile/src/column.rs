//! Per-column accumulator: O(1) state plus one HyperLogLog sketch (and optionally one
//! quantile sketch), whatever the row count.
//!
//! The type is only known at the end, so statistics for every type the column could still
//! be are kept side by side; a candidate type is dropped at its first misfit value and its
//! statistics stop being updated.
//!
//! States of disjoint parts of a column merge into the state of the whole (see
//! [`ColumnState::merge`]), in any order: every statistic is a commutative combination,
//! and ties between different texts of the same date/time are broken by the text.

use cardinality_estimator::CardinalityEstimator;
use jiff::civil::DateTime;

use crate::infer;
use crate::quantile::Sketch;
use crate::report::{ColumnProfile, ColumnType, Scalar};
use crate::welford::Welford;

/// 2^15 registers: standard error 1.04/181 = 0.57%, so the 2% promise is 3.5 standard
/// errors. (2^14 measured up to 1.9% off at 50k distinct values: too close.) Dense size is
/// 24 KiB per column; low cardinalities use far less.
const HLL_PRECISION: usize = 15;
const HLL_REGISTER_BITS: usize = 6;
const HASH_SEED: u64 = 0x5EED;
type Distinct = CardinalityEstimator<str, wyhash::WyHash, HLL_PRECISION, HLL_REGISTER_BITS>;

pub struct ColumnState {
    name: String,
    nulls: u64,
    values: u64,
    may_be_integer: bool,
    may_be_float: bool,
    may_be_boolean: bool,
    may_be_datetime: bool,
    int_min: i64,
    int_max: i64,
    float_min: f64,
    float_max: f64,
    numbers: Welford,
    bool_seen: [bool; 2],
    datetime_min: Option<(DateTime, String)>,
    datetime_max: Option<(DateTime, String)>,
    text_min: String,
    text_max: String,
    min_chars: u64,
    max_chars: u64,
    distinct: Distinct,
    quantiles: Option<Sketch>,
}

impl ColumnState {
    /// `quantiles` says whether to keep a quantile sketch (the cost is one logarithm per
    /// numeric value).
    pub fn new(name: String, quantiles: bool) -> Self {
        Self {
            name,
            nulls: 0,
            values: 0,
            may_be_integer: true,
            may_be_float: true,
            may_be_boolean: true,
            may_be_datetime: true,
            int_min: i64::MAX,
            int_max: i64::MIN,
            float_min: f64::INFINITY,
            float_max: f64::NEG_INFINITY,
            numbers: Welford::default(),
            bool_seen: [false; 2],
            datetime_min: None,
            datetime_max: None,
            text_min: String::new(),
            text_max: String::new(),
            min_chars: u64::MAX,
            max_chars: 0,
            distinct: Distinct::new(),
            quantiles: quantiles.then(Sketch::new),
        }
    }

    /// `ascii` says the whole record is ASCII, so byte length is the character count.
    pub fn observe(&mut self, field: &str, ascii: bool) {
        let value = infer::trim(field);
        if infer::is_null(value) {
            self.nulls += 1;
            return;
        }
        self.values += 1;
        self.observe_number(value);
        if self.may_be_boolean {
            match infer::parse_bool(value) {
                Some(b) => self.bool_seen[usize::from(b)] = true,
                None => self.may_be_boolean = false,
            }
        }
        if self.may_be_datetime {
            self.observe_datetime(value);
        }
        self.observe_text(value, ascii);
        // One-shot hashing of the bytes is cheaper than the streaming `Hasher` that
        // `insert` goes through; the estimator only needs a well-mixed 64-bit hash.
        self.distinct
            .insert_hash(wyhash::wyhash(value.as_bytes(), HASH_SEED));
    }

    fn observe_number(&mut self, value: &str) {
        if self.may_be_integer {
            match infer::parse_int(value) {
                Some(i) => {
                    self.int_min = self.int_min.min(i);
                    self.int_max = self.int_max.max(i);
                    self.push_float(i as f64);
                    return;
                }
                None => self.may_be_integer = false,
            }
        }
        if self.may_be_float {
            match infer::parse_float(value) {
                Some(x) => self.push_float(x),
                None => self.may_be_float = false,
            }
        }
    }

    fn push_float(&mut self, x: f64) {
        self.float_min = self.float_min.min(x);
        self.float_max = self.float_max.max(x);
        self.numbers.push(x);
        if let Some(sketch) = &mut self.quantiles {
            sketch.push(x);
        }
    }

    fn observe_datetime(&mut self, value: &str) {
        let Some(instant) = infer::parse_datetime(value) else {
            self.may_be_datetime = false;
            return;
        };
        // Equal instants written differently (`2024-01-01` and `2024-01-01T00:00Z`) are
        // ordered by their text, so the result does not depend on which came first.
        let key = (instant, value);
        if self
            .datetime_min
            .as_ref()
            .is_none_or(|(m, text)| key < (*m, text.as_str()))
        {
            self.datetime_min = Some((instant, value.to_owned()));
        }
        if self
            .datetime_max
            .as_ref()
            .is_none_or(|(m, text)| key > (*m, text.as_str()))
        {
            self.datetime_max = Some((instant, value.to_owned()));
        }
    }

    /// Folds in the state of another part of the same column, as if its values had been
    /// observed here. The column name stays this one's.
    pub fn merge(&mut self, other: Self) {
        if other.values > 0 {
            if self.values == 0 {
                self.text_min = other.text_min;
                self.text_max = other.text_max;
            } else {
                if less(&other.text_min, &self.text_min) {
                    self.text_min = other.text_min;
                }
                if less(&self.text_max, &other.text_max) {
                    self.text_max = other.text_max;
                }
            }
        }
        self.nulls += other.nulls;
        self.values += other.values;
        self.may_be_integer &= other.may_be_integer;
        self.may_be_float &= other.may_be_float;
        self.may_be_boolean &= other.may_be_boolean;
        self.may_be_datetime &= other.may_be_datetime;
        self.int_min = self.int_min.min(other.int_min);
        self.int_max = self.int_max.max(other.int_max);
        self.float_min = self.float_min.min(other.float_min);
        self.float_max = self.float_max.max(other.float_max);
        self.numbers.merge(&other.numbers);
        self.bool_seen[0] |= other.bool_seen[0];
        self.bool_seen[1] |= other.bool_seen[1];
        self.datetime_min = match (self.datetime_min.take(), other.datetime_min) {
            (Some(a), Some(b)) => Some(if instant_key(&b) < instant_key(&a) {
                b
            } else {
                a
            }),
            (a, b) => a.or(b),
        };
        self.datetime_max = match (self.datetime_max.take(), other.datetime_max) {
            (Some(a), Some(b)) => Some(if instant_key(&b) > instant_key(&a) {
                b
            } else {
                a
            }),
            (a, b) => a.or(b),
        };
        self.min_chars = self.min_chars.min(other.min_chars);
        self.max_chars = self.max_chars.max(other.max_chars);
        self.distinct.merge(&other.distinct);
        if let (Some(mine), Some(theirs)) = (&mut self.quantiles, &other.quantiles) {
            mine.merge(theirs);
        }
    }

    fn observe_text(&mut self, value: &str, ascii: bool) {
        let chars = if ascii {
            value.len() as u64
        } else {
            value.chars().count() as u64
        };
        self.min_chars = self.min_chars.min(chars);
        self.max_chars = self.max_chars.max(chars);
        if self.values == 1 {
            value.clone_into(&mut self.text_min);
            value.clone_into(&mut self.text_max);
        } else if less(value, &self.text_min) {
            value.clone_into(&mut self.text_min);
        } else if less(&self.text_max, value) {
            value.clone_into(&mut self.text_max);
        }
    }

    fn column_type(&self) -> ColumnType {
        if self.values == 0 {
            ColumnType::Empty
        } else if self.may_be_integer {
            ColumnType::Integer
        } else if self.may_be_float {
            ColumnType::Float
        } else if self.may_be_boolean {
            ColumnType::Boolean
        } else if self.may_be_datetime {
            ColumnType::DateTime
        } else {
            ColumnType::String
        }
    }

    pub fn finish(self) -> ColumnProfile {
        let column_type = self.column_type();
        let (min, max) = match column_type {
            ColumnType::Integer => (
                Some(Scalar::Integer(self.int_min)),
                Some(Scalar::Integer(self.int_max)),
            ),
            ColumnType::Float => (finite(self.float_min), finite(self.float_max)),
            ColumnType::Boolean => (
                Some(Scalar::Boolean(!self.bool_seen[0])),
                Some(Scalar::Boolean(self.bool_seen[1])),
            ),
            ColumnType::DateTime => (
                self.datetime_min.map(|(_, text)| Scalar::Text(text)),
                self.datetime_max.map(|(_, text)| Scalar::Text(text)),
            ),
            ColumnType::String => (
                Some(Scalar::Text(self.text_min)),
                Some(Scalar::Text(self.text_max)),
            ),
            ColumnType::Empty => (None, None),
        };
        let numeric = matches!(column_type, ColumnType::Integer | ColumnType::Float);
        let has_values = self.values > 0;
        ColumnProfile {
            name: self.name,
            column_type,
            count: self.values,
            nulls: self.nulls,
            // The sketch can overshoot slightly; more distinct values than values is nonsense.
            distinct: (self.distinct.estimate() as u64).min(self.values),
            min,
            max,
            mean: numeric
                .then(|| self.numbers.mean())
                .flatten()
                .filter(|m| m.is_finite()),
            std_dev: numeric
                .then(|| self.numbers.std_dev())
                .flatten()
                .filter(|s| s.is_finite()),
            min_length: has_values.then_some(self.min_chars),
            max_length: has_values.then_some(self.max_chars),
            quantiles: numeric
                .then(|| self.quantiles.as_ref().and_then(Sketch::quantiles))
                .flatten(),
        }
    }
}

/// Byte-wise `a < b`, deciding on the first byte when it differs: most comparisons
/// against the running min/max end there, and `str`'s `<` always calls `memcmp`.
fn less(a: &str, b: &str) -> bool {
    match (a.as_bytes().first(), b.as_bytes().first()) {
        (Some(x), Some(y)) if x != y => x < y,
        _ => a < b,
    }
}

/// The order of date/time values: by instant, then by text.
fn instant_key(value: &(DateTime, String)) -> (DateTime, &str) {
    (value.0, value.1.as_str())
}

fn finite(x: f64) -> Option<Scalar> {
    x.is_finite().then_some(Scalar::Float(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile_of(values: &[&str]) -> ColumnProfile {
        let mut column = ColumnState::new("c".into(), true);
        for v in values {
            column.observe(v, v.is_ascii());
        }
        column.finish()
    }

    #[test]
    fn integer_column_when_every_value_is_an_i64() {
        let p = profile_of(&["3", "-1", "", "NA", " 10 "]);
        assert_eq!(p.column_type, ColumnType::Integer);
        assert_eq!((p.count, p.nulls), (3, 2));
        assert_eq!(p.min, Some(Scalar::Integer(-1)));
        assert_eq!(p.max, Some(Scalar::Integer(10)));
        assert_eq!(p.mean, Some(4.0));
        assert_eq!(p.distinct, 3);
    }

    #[test]
    fn float_column_when_one_value_has_a_fraction() {
        let p = profile_of(&["1", "2.5", "-3e1", "null"]);
        assert_eq!(p.column_type, ColumnType::Float);
        assert_eq!(p.min, Some(Scalar::Float(-30.0)));
        assert_eq!(p.max, Some(Scalar::Float(2.5)));
        assert_eq!(p.mean, Some(-26.5 / 3.0));
    }

    #[test]
    fn integers_beyond_i64_make_a_float_column() {
        let p = profile_of(&["1", "99999999999999999999"]);
        assert_eq!(p.column_type, ColumnType::Float);
    }

    #[test]
    fn boolean_column_of_words() {
        let p = profile_of(&["true", "False", "YES", ""]);
        assert_eq!(p.column_type, ColumnType::Boolean);
        assert_eq!(p.min, Some(Scalar::Boolean(false)));
        assert_eq!(p.max, Some(Scalar::Boolean(true)));
        assert_eq!(p.mean, None);
        let only_true = profile_of(&["true", "yes"]);
        assert_eq!(only_true.min, Some(Scalar::Boolean(true)));
        assert_eq!(only_true.max, Some(Scalar::Boolean(true)));
    }

    #[test]
    fn datetime_column_orders_by_instant_not_text() {
        let p = profile_of(&[
            "2024-01-02T00:30:00+02:00",
            "2024-01-01T23:00:00Z",
            "2023-12-31",
        ]);
        assert_eq!(p.column_type, ColumnType::DateTime);
        assert_eq!(p.min, Some(Scalar::Text("2023-12-31".into())));
        assert_eq!(p.max, Some(Scalar::Text("2024-01-01T23:00:00Z".into())));
    }

    #[test]
    fn one_word_makes_a_string_column() {
        let p = profile_of(&["1", "2", "x", "héllo"]);
        assert_eq!(p.column_type, ColumnType::String);
        assert_eq!(p.min, Some(Scalar::Text("1".into())));
        assert_eq!(p.max, Some(Scalar::Text("x".into())));
        assert_eq!((p.min_length, p.max_length), (Some(1), Some(5)));
        assert_eq!(p.mean, None);
    }

    #[test]
    fn first_byte_shortcut_orders_like_str() {
        for (a, b) in [
            ("a", "b"),
            ("ab", "a"),
            ("", "a"),
            ("a", ""),
            ("x1", "x2"),
            ("é", "z"),
        ] {
            assert_eq!(less(a, b), a < b, "{a:?} < {b:?}");
        }
    }

    #[test]
    fn all_null_column_is_empty() {
        let p = profile_of(&["", "NULL"]);
        assert_eq!(p.column_type, ColumnType::Empty);
        assert_eq!((p.count, p.nulls, p.distinct), (0, 2, 0));
        assert_eq!((p.min, p.max, p.min_length), (None, None, None));
    }

    #[test]
    fn distinct_estimate_is_within_two_percent_for_many_value_shapes() {
        let shapes: [fn(u64) -> String; 3] = [
            |i| i.to_string(),
            |i| format!("user-{:x}@example.com", i * 2_654_435_761),
            |i| format!("{}.{:02}", i / 100, i % 100),
        ];
        for (shape, value) in shapes.iter().enumerate() {
            for n in [50_000u64, 1_000_000] {
                let mut column = ColumnState::new("c".into(), true);
                for i in 0..n {
                    column.observe(&value(i), true);
                }
                let estimate = column.finish().distinct as f64;
                let error = (estimate - n as f64).abs() / n as f64;
                assert!(
                    error < 0.02,
                    "shape {shape}, n {n}: {estimate} ({error:.4})"
                );
            }
        }
    }

    #[test]
    fn equal_instants_are_ordered_by_text_whatever_comes_first() {
        let values = ["2024-01-01T00:00:00Z", "2024-01-01", "2024-01-01T00:00:00"];
        let forward = profile_of(&values);
        let mut reversed = values;
        reversed.reverse();
        let backward = profile_of(&reversed);
        assert_eq!(forward.min, Some(Scalar::Text("2024-01-01".into())));
        assert_eq!(
            forward.max,
            Some(Scalar::Text("2024-01-01T00:00:00Z".into()))
        );
        assert_eq!((forward.min, forward.max), (backward.min, backward.max));
    }

    #[test]
    fn merged_parts_equal_one_pass_for_every_split() {
        let columns: [&[&str]; 6] = [
            &["3", "", "-7", "12", "NA", "0", "5"],
            &["1", "2.5", "", "-1e3", "7", "0.25", "3"],
            &["yes", "no", "", "true", "TRUE", "false", "no"],
            &[
                "2024-01-02",
                "2024-01-01T00:00Z",
                "",
                "2024-01-01",
                "2023-06-30 12:00",
                "2024-01-01",
                "2025-01-01",
            ],
            &["b", "1", "", "héllo", "a", "zz", "2024-01-01"],
            &["1", "2", "3", "x", "4", "", "5"],
        ];
        for values in columns {
            let whole = profile_of(values);
            for split in 0..=values.len() {
                let (left, right) = values.split_at(split);
                // Right part first: merging must not depend on order either.
                let mut merged = ColumnState::new("c".into(), true);
                let mut part = ColumnState::new(String::new(), true);
                right.iter().for_each(|v| merged.observe(v, v.is_ascii()));
                left.iter().for_each(|v| part.observe(v, v.is_ascii()));
                merged.merge(part);
                let merged = merged.finish();
                assert_eq!(
                    (
                        merged.column_type,
                        merged.count,
                        merged.nulls,
                        merged.distinct
                    ),
                    (whole.column_type, whole.count, whole.nulls, whole.distinct),
                    "{values:?} split at {split}"
                );
                assert_eq!(
                    (&merged.min, &merged.max),
                    (&whole.min, &whole.max),
                    "{values:?} at {split}"
                );
                assert_eq!(
                    (merged.min_length, merged.max_length),
                    (whole.min_length, whole.max_length)
                );
                assert_eq!(merged.quantiles, whole.quantiles, "{values:?} at {split}");
                let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
                    (Some(a), Some(b)) => (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                    (a, b) => a == b,
                };
                assert!(close(merged.mean, whole.mean), "{values:?} at {split}");
                assert!(
                    close(merged.std_dev, whole.std_dev),
                    "{values:?} at {split}"
                );
            }
        }
    }

    #[test]
    fn mixed_numbers_and_booleans_are_strings() {
        assert_eq!(profile_of(&["1", "true"]).column_type, ColumnType::String);
        assert_eq!(
            profile_of(&["2024-01-01", "5"]).column_type,
            ColumnType::String
        );
    }
}
