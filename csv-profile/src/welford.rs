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
    fn empty_has_no_mean() {
        let w = Welford::default();
        assert_eq!(w.mean(), None);
        assert_eq!(w.std_dev(), None);
    }
}
