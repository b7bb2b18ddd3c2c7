//! A Zipf sampler: precomputed cumulative distribution plus binary search.
//!
//! Rank `k` (0-based) is drawn with probability proportional to `1 / (k + 1)^s`. Building the
//! table costs `O(n)` once per run; each draw is one uniform number and a `log2(n)` binary
//! search, with no floating-point powers on the hot path (YCSB's generator needs `powf` per draw).

use crate::rng::XorShift;

/// Draws ranks `0..n` following Zipf's law with exponent `s` (rank 0 the most frequent).
///
/// # Examples
///
/// ```
/// use commute_benches::{rng::XorShift, zipf::Zipf};
///
/// let zipf = Zipf::new(1000, 0.99);
/// let mut rng = XorShift::new(1);
/// let k = zipf.sample(&mut rng);
/// assert!(k < 1000);
/// ```
#[derive(Clone, Debug)]
pub struct Zipf {
    /// `cdf[k]` is the probability of drawing a rank `<= k`; the last entry is exactly 1.
    cdf: Vec<f64>,
}

impl Zipf {
    /// The distribution over `n` ranks with exponent `s` (`s = 0` is uniform; YCSB's default
    /// skew is 0.99).
    ///
    /// # Panics
    ///
    /// If `n` is zero or `s` is negative or not finite.
    ///
    /// # Examples
    ///
    /// ```
    /// let zipf = commute_benches::zipf::Zipf::new(10, 1.0);
    /// assert_eq!(zipf.len(), 10);
    /// assert!(zipf.probability(0) > zipf.probability(9));
    /// ```
    pub fn new(n: usize, s: f64) -> Self {
        assert!(n > 0, "a Zipf distribution needs at least one rank");
        assert!(
            s.is_finite() && s >= 0.0,
            "the Zipf exponent must be finite and >= 0, got {s}"
        );
        let mut cdf = Vec::with_capacity(n);
        let mut total = 0.0;
        for k in 1..=n {
            total += 1.0 / (k as f64).powf(s);
            cdf.push(total);
        }
        for p in &mut cdf {
            *p /= total;
        }
        // Rounding must not leave a gap above the last rank.
        *cdf.last_mut().expect("n > 0") = 1.0;
        Zipf { cdf }
    }

    /// The number of ranks.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(commute_benches::zipf::Zipf::new(3, 0.5).len(), 3);
    /// ```
    #[allow(clippy::len_without_is_empty)] // never empty: `new` refuses n = 0
    pub fn len(&self) -> usize {
        self.cdf.len()
    }

    /// The probability of drawing rank `k`.
    ///
    /// # Panics
    ///
    /// If `k >= self.len()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let uniform = commute_benches::zipf::Zipf::new(4, 0.0);
    /// assert!((uniform.probability(2) - 0.25).abs() < 1e-12);
    /// ```
    pub fn probability(&self, k: usize) -> f64 {
        if k == 0 {
            self.cdf[0]
        } else {
            self.cdf[k] - self.cdf[k - 1]
        }
    }

    /// Draws one rank in `0..self.len()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_benches::{rng::XorShift, zipf::Zipf};
    ///
    /// let zipf = Zipf::new(5, 0.99);
    /// let mut rng = XorShift::new(3);
    /// assert!((0..100).all(|_| zipf.sample(&mut rng) < 5));
    /// ```
    #[inline]
    pub fn sample(&self, rng: &mut XorShift) -> usize {
        let u = rng.next_f64();
        // The first rank whose cumulative probability exceeds u; u < 1 = cdf[n-1] bounds it.
        self.cdf
            .partition_point(|&p| p <= u)
            .min(self.cdf.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_follow_the_power_law_and_sum_to_one() {
        let zipf = Zipf::new(100, 0.99);
        let sum: f64 = (0..100).map(|k| zipf.probability(k)).sum();
        assert!((sum - 1.0).abs() < 1e-9);
        // p(k) / p(0) = 1 / (k + 1)^s
        for k in [1usize, 9, 99] {
            let ratio = zipf.probability(k) / zipf.probability(0);
            assert!(
                (ratio - 1.0 / ((k + 1) as f64).powf(0.99)).abs() < 1e-9,
                "rank {k}"
            );
        }
    }

    #[test]
    fn sampled_frequencies_match_the_distribution() {
        let zipf = Zipf::new(1000, 0.99);
        let mut rng = XorShift::new(12345);
        let draws = 400_000;
        let mut counts = vec![0u32; 1000];
        for _ in 0..draws {
            counts[zipf.sample(&mut rng)] += 1;
        }
        for k in [0usize, 1, 2, 10, 100] {
            let expected = zipf.probability(k) * draws as f64;
            let got = f64::from(counts[k]);
            // Well inside 5 standard deviations of a binomial count.
            let tolerance = 5.0 * expected.sqrt() + 1.0;
            assert!(
                (got - expected).abs() < tolerance,
                "rank {k}: {got} vs {expected:.0}"
            );
        }
        // The head is hot: rank 0 alone takes about 13% of draws over 1000 ranks at s = 0.99.
        assert!(counts[0] > counts[999] * 100);
    }

    #[test]
    fn exponent_zero_is_uniform_and_every_rank_is_reachable() {
        let zipf = Zipf::new(8, 0.0);
        let mut rng = XorShift::new(9);
        let mut seen = [false; 8];
        for _ in 0..1000 {
            seen[zipf.sample(&mut rng)] = true;
        }
        assert!(seen.iter().all(|&s| s));
        let one = Zipf::new(1, 0.99);
        assert_eq!(one.sample(&mut rng), 0);
    }
}
