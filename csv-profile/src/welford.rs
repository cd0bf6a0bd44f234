//! Running mean and variance in one pass (Welford's algorithm).
//!
//! The naive `sum(x^2) - n*mean^2` loses every significant digit when the values are large
//! and close together (timestamps, ids); Welford's update keeps the error near one ulp.

#[derive(Debug, Default, Clone)]
pub struct Welford {
    count: u64,
    mean: f64,
    m2: f64,
}

impl Welford {
    pub fn push(&mut self, x: f64) {
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Combines two partial states as if every value had been pushed into one (Chan, Golub
    /// and LeVeque's pairwise formula), so chunks profiled apart add up to the whole column.
    pub fn merge(&mut self, other: &Self) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = other.clone();
            return;
        }
        let count = self.count + other.count;
        let (n_a, n_b, n) = (self.count as f64, other.count as f64, count as f64);
        let delta = other.mean - self.mean;
        // `n_b / n` rather than `delta * n_b / n`: the product could overflow for huge deltas.
        self.mean += delta * (n_b / n);
        self.m2 += other.m2 + delta * delta * (n_a * (n_b / n));
        self.count = count;
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then_some(self.mean)
    }

    /// Population standard deviation (divides by n, as `xsv stats` does).
    pub fn std_dev(&self) -> Option<f64> {
        (self.count > 0).then(|| (self.m2 / self.count as f64).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_textbook_values() {
        let mut w = Welford::default();
        for x in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
            w.push(x);
        }
        assert_eq!(w.mean(), Some(5.0));
        assert_eq!(w.std_dev(), Some(2.0));
    }

    #[test]
    fn stays_accurate_with_a_large_offset() {
        let mut w = Welford::default();
        for x in [4.0, 7.0, 13.0, 16.0] {
            w.push(1e9 + x);
        }
        let variance = w.std_dev().map(|s| s * s).unwrap_or_default();
        assert!((variance - 22.5).abs() < 1e-6, "variance {variance}");
    }

    #[test]
    fn merged_halves_match_one_pass() {
        let values: Vec<f64> = (0..1000).map(|i| 1e6 + f64::from(i % 37) * 0.25).collect();
        let mut whole = Welford::default();
        values.iter().for_each(|&x| whole.push(x));
        for split in [0, 1, 500, 999, 1000] {
            let (mut a, mut b) = (Welford::default(), Welford::default());
            values[..split].iter().for_each(|&x| a.push(x));
            values[split..].iter().for_each(|&x| b.push(x));
            a.merge(&b);
            assert_eq!(a.count, whole.count);
            let close = |x: Option<f64>, y: Option<f64>| {
                let (x, y) = (x.unwrap_or(f64::NAN), y.unwrap_or(f64::NAN));
                (x - y).abs() <= 1e-9 * y.abs().max(1.0)
            };
            assert!(close(a.mean(), whole.mean()), "split {split}: mean");
            assert!(
                close(a.std_dev(), whole.std_dev()),
                "split {split}: std_dev"
            );
        }
    }

    #[test]
    fn empty_has_no_mean() {
        let w = Welford::default();
        assert_eq!(w.mean(), None);
        assert_eq!(w.std_dev(), None);
    }
}
