//! The result of profiling, as stored (JSON) next to the file.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Data rows, not counting the header.
    pub rows: u64,
    pub columns: usize,
    /// Bytes read from the input, BOM included.
    pub bytes: u64,
    /// The field delimiter, as a one-character string (`","`, `";"`, `"\t"`, `"|"`).
    pub delimiter: String,
    pub has_header: bool,
    /// Whether the input started with a UTF-8 byte order mark (which is not part of the data).
    pub bom: bool,
    pub column_profiles: Vec<ColumnProfile>,
}

/// Statistics of one column. All of them ignore nulls, and see values trimmed of
/// surrounding spaces and tabs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnProfile {
    /// The header's field, or `column_N` (1-based) without a header or for an empty one.
    pub name: String,
    #[serde(rename = "type")]
    pub column_type: ColumnType,
    /// Non-null values. `count + nulls == rows`.
    pub count: u64,
    pub nulls: u64,
    /// Approximate number of distinct non-null values (HyperLogLog, 0.6% standard error; exact
    /// below a few hundred). Values are compared as text: `1.0` and `1.00` are distinct.
    pub distinct: u64,
    /// Smallest and largest value in the column's type: numbers for numeric columns,
    /// booleans for boolean ones, the original text for date/time (ordered as instants)
    /// and string columns (ordered by bytes, i.e. by code point).
    pub min: Option<Scalar>,
    pub max: Option<Scalar>,
    /// Numeric columns only. `null` when undefined or not finite.
    pub mean: Option<f64>,
    /// Population standard deviation, numeric columns only.
    pub std_dev: Option<f64>,
    /// Length in characters (Unicode scalar values) of the shortest and longest value.
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    /// Approximate quantiles of a numeric column's finite values; `null` for other types,
    /// an empty numeric column, or with `ProfileOptions::quantiles` off. See [`Quantiles`]
    /// for the error bound.
    #[serde(default)]
    pub quantiles: Option<Quantiles>,
}

/// Quantiles from a DDSketch. With the `n` finite values sorted as `x[0] <= … <= x[n-1]`,
/// the quantile `q` estimates `x[floor(q * (n - 1))]` within a relative error of 1%:
/// `|estimate - x| <= 0.01 * |x|`. Values with `|x| <= 1e-9` count as 0. The bound holds
/// while the column's non-zero magnitudes span less than a factor of about 10^17 (beyond
/// that the smallest magnitudes share one bucket). Estimates are rounded to 10 significant
/// digits. Parallel and single-thread runs give the
/// same values: merging sketches is exact.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    pub p25: f64,
    /// The median.
    pub p50: f64,
    pub p75: f64,
    pub p95: f64,
}

/// A column's type: the narrowest type that every non-null value fits, tried in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// Every value is an optionally signed decimal integer that fits in an i64.
    Integer,
    /// Every value is a decimal number (`1`, `-2.5`, `.5`, `1e-3`), at least one not an i64.
    Float,
    /// Every value is `true`/`false`/`yes`/`no` (any case).
    Boolean,
    /// Every value is an ISO 8601 date or date-time in extended format (`2024-06-19`,
    /// `2024-06-19 15:22:45`, `2024-06-19T15:22:45+02:00`).
    #[serde(rename = "datetime")]
    DateTime,
    /// Anything else.
    String,
    /// No non-null value at all (or no rows).
    Empty,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Integer(i64),
    Float(f64),
    Boolean(bool),
    Text(String),
}
