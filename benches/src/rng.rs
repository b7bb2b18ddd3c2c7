//! A small, fast pseudo-random generator for the workloads (xorshift64*).
//!
//! Benchmarks need cheap, reproducible, per-thread randomness, not cryptographic quality:
//! Vigna's xorshift64* (one state word, three shifts and a multiply per draw) is plenty, and it
//! keeps `rand` out of the dependency tree.

/// Marsaglia's xorshift with Vigna's multiplicative output scrambling (xorshift64*).
///
/// # Examples
///
/// ```
/// use commute_benches::rng::XorShift;
///
/// let mut rng = XorShift::new(42);
/// let roll = rng.below(6);
/// assert!(roll < 6);
/// let u = rng.next_f64();
/// assert!((0.0..1.0).contains(&u));
/// ```
#[derive(Clone, Debug)]
pub struct XorShift {
    state: u64,
}

impl XorShift {
    /// A generator seeded from `seed` (any value, zero included: the seed is scrambled with
    /// splitmix64 first, so nearby seeds give unrelated streams).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_benches::rng::XorShift;
    ///
    /// assert_ne!(XorShift::new(1).next_u64(), XorShift::new(2).next_u64());
    /// ```
    pub fn new(seed: u64) -> Self {
        // splitmix64 of the seed; never zero, which xorshift could not leave.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        XorShift {
            state: if z == 0 { 0x2545_F491_4F6C_DD1D } else { z },
        }
    }

    /// The next 64 random bits.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut rng = commute_benches::rng::XorShift::new(7);
    /// let (a, b) = (rng.next_u64(), rng.next_u64());
    /// assert_ne!(a, b);
    /// ```
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (Lemire's multiply-high reduction; the bias is below 2^-32 for the
    /// sizes used here).
    ///
    /// # Panics
    ///
    /// If `n` is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut rng = commute_benches::rng::XorShift::new(7);
    /// assert!((0..100).all(|_| rng.below(10) < 10));
    /// ```
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0) has no possible value");
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `[0, 1)` with 53 random bits.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut rng = commute_benches::rng::XorShift::new(7);
    /// assert!(rng.next_f64() < 1.0);
    /// ```
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}
