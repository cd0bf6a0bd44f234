//! Approximate quantiles of a numeric column in bounded memory (DDSketch).
//!
//! DDSketch buckets values by `ceil(log_γ |x|)` with `γ = (1 + α) / (1 − α)`, so a bucket
//! holds values within a factor γ of each other and its representative value is within
//! relative error α of every value in it. Merging two sketches adds their bucket counts,
//! which is exact: a sketch merged from chunks equals the sketch of the whole column.
//!
//! Memory: at most `MAX_BINS` counters per sign (16 KiB each), allocated only over the
//! range of keys the column actually uses.

use sketches_ddsketch::{Config, DDSketch};

use crate::report::Quantiles;

/// Relative accuracy α. 1% keeps the bucket range of realistic columns well inside
/// `MAX_BINS` (see below), and the update cost does not depend on α.
pub const RELATIVE_ERROR: f64 = 0.01;
/// With α = 1%, 2048 buckets per sign cover magnitudes within a factor γ^2048 ≈ 6·10^17 of
/// each other; a column spanning more (say 1e-9 to 1e9) merges its smallest magnitudes
/// into one bucket, and only quantiles falling among those lose the bound.
const MAX_BINS: u32 = 2048;
/// Magnitudes at or below this count as zero (absolute error at most this much).
pub const ZERO_THRESHOLD: f64 = 1e-9;

#[derive(Clone)]
pub struct Sketch(DDSketch);

impl Sketch {
    pub fn new() -> Self {
        Self(DDSketch::new(Config::new(
            RELATIVE_ERROR,
            MAX_BINS,
            ZERO_THRESHOLD,
        )))
    }

    pub fn push(&mut self, x: f64) {
        // An infinite value (`1e400` parses as one) has no bucket: its key would overflow
        // the store's index arithmetic. Quantiles are over the finite values.
        if x.is_finite() {
            self.0.add(x);
        }
    }

    pub fn merge(&mut self, other: &Self) {
        // Both sides are built by `new` with the same config, the only failure `merge` has.
        let merged = self.0.merge(&other.0);
        debug_assert!(merged.is_ok());
    }

    pub fn quantiles(&self) -> Option<Quantiles> {
        let q = |p: f64| self.0.quantile(p).ok().flatten().map(round);
        Some(Quantiles {
            p25: q(0.25)?,
            p50: q(0.5)?,
            p75: q(0.75)?,
            p95: q(0.95)?,
        })
    }
}

/// The estimate to 10 significant digits. Its error is 1% anyway, and a short decimal reads
/// better (`0.99`, not `0.9900000000000001`) and parses back to the same `f64` (a JSON
/// reader without exact float parsing can be an ulp off on 17 digits).
fn round(x: f64) -> f64 {
    format!("{x:.9e}").parse().unwrap_or(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    const QS: [f64; 4] = [0.25, 0.5, 0.75, 0.95];

    fn estimates(q: &Quantiles) -> [f64; 4] {
        [q.p25, q.p50, q.p75, q.p95]
    }

    /// The documented bound: within 1% of `sorted[floor(q * (n - 1))]`, values at or below
    /// the zero threshold read as 0 (plus the 10-digit rounding).
    fn assert_within_bound(name: &str, values: &[f64]) {
        let mut sketch = Sketch::new();
        values.iter().for_each(|&x| sketch.push(x));
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let got = estimates(&sketch.quantiles().expect("non-empty"));
        for (q, estimate) in QS.into_iter().zip(got) {
            let exact = sorted[(q * (sorted.len() - 1) as f64) as usize];
            let allowed = RELATIVE_ERROR * exact.abs() * (1.0 + 1e-6) + ZERO_THRESHOLD;
            assert!(
                (estimate - exact).abs() <= allowed,
                "{name}: q{q} estimate {estimate}, exact {exact}"
            );
        }
    }

    #[test]
    fn quantiles_are_within_one_percent_on_many_distributions() {
        let mut rng = fastrand::Rng::with_seed(7);
        let n = 20_001;
        let mut cases: Vec<(&str, Vec<f64>)> = vec![
            ("uniform", (0..n).map(|_| rng.f64() * 1000.0).collect()),
            (
                "negatives and positives",
                (0..n).map(|_| rng.f64() * 2000.0 - 1000.0).collect(),
            ),
            (
                "all negative",
                (0..n).map(|_| -1.0 - rng.f64() * 50.0).collect(),
            ),
            (
                "mostly zero",
                (0..n)
                    .map(|_| if rng.u8(0..10) < 7 { 0.0 } else { rng.f64() })
                    .collect(),
            ),
            ("constant", vec![42.5; 1000]),
            ("constant negative", vec![-3.0; 1000]),
            ("constant zero", vec![0.0; 1000]),
            ("one value", vec![7.0]),
            ("integers", (0..n).map(|i| f64::from(i % 1000)).collect()),
        ];
        // Heavy tails: Pareto (shape 1.1, infinite variance) and log-normal-ish.
        cases.push((
            "pareto",
            (0..n).map(|_| (1.0 - rng.f64()).powf(-1.0 / 1.1)).collect(),
        ));
        cases.push((
            "log-uniform over 12 decades",
            (0..n).map(|_| 10f64.powf(rng.f64() * 12.0 - 6.0)).collect(),
        ));
        cases.push((
            "signed pareto",
            (0..n)
                .map(|_| {
                    let x = (1.0 - rng.f64()).powf(-1.0 / 1.5);
                    if rng.bool() { x } else { -x }
                })
                .collect(),
        ));
        for (name, values) in &cases {
            assert_within_bound(name, values);
        }
    }

    #[test]
    fn merged_parts_give_the_quantiles_of_the_whole() {
        let mut rng = fastrand::Rng::with_seed(11);
        let values: Vec<f64> = (0..10_000)
            .map(|_| (rng.f64() - 0.3) * 10f64.powi(rng.i32(-3..6)))
            .collect();
        let mut whole = Sketch::new();
        values.iter().for_each(|&x| whole.push(x));
        let mut merged = Sketch::new();
        for part in values.chunks(777).rev() {
            let mut sketch = Sketch::new();
            part.iter().for_each(|&x| sketch.push(x));
            merged.merge(&sketch);
        }
        assert_eq!(merged.quantiles(), whole.quantiles());
    }

    #[test]
    fn infinite_values_are_left_out_and_empty_has_none() {
        let mut sketch = Sketch::new();
        assert_eq!(sketch.quantiles(), None);
        sketch.push(f64::INFINITY);
        assert_eq!(sketch.quantiles(), None);
        sketch.push(2.0);
        sketch.push(f64::NEG_INFINITY);
        let q = sketch.quantiles().expect("one finite value");
        assert!((q.p50 - 2.0).abs() <= 0.02, "{q:?}");
    }
}
