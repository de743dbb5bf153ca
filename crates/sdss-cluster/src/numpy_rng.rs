//! NumPy's legacy `RandomState`: MT19937 and the polar Box-Muller `standard_normal`.
//!
//! Affinity propagation breaks ties with `RandomState(seed).standard_normal((n, n))` noise in
//! scikit-learn; reproducing the exact stream makes our tie-breaking identical to theirs.

/// MT19937 state seeded like `numpy.random.RandomState(seed)` with an integer seed.
pub(crate) struct LegacyRandomState {
    mt: [u32; 624],
    pos: usize,
    gauss: Option<f64>,
}

impl LegacyRandomState {
    /// `RandomState(seed)` (`init_genrand`).
    pub(crate) fn new(seed: u32) -> Self {
        let mut mt = [0u32; 624];
        mt[0] = seed;
        for i in 1..624 {
            mt[i] = 1_812_433_253u32
                .wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        Self {
            mt,
            pos: 624,
            gauss: None,
        }
    }

    fn twist(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        const MATRIX_A: u32 = 0x9908_b0df;
        for i in 0..624 {
            let y = (self.mt[i] & UPPER) | (self.mt[(i + 1) % 624] & LOWER);
            let mut v = self.mt[(i + 397) % 624] ^ (y >> 1);
            if y & 1 != 0 {
                v ^= MATRIX_A;
            }
            self.mt[i] = v;
        }
        self.pos = 0;
    }

    /// Next tempered 32-bit output.
    #[inline]
    pub(crate) fn next_u32(&mut self) -> u32 {
        if self.pos >= 624 {
            self.twist();
        }
        let mut y = self.mt[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// 53-bit uniform double in [0, 1) (`random_sample`).
    #[inline]
    pub(crate) fn next_f64(&mut self) -> f64 {
        let a = f64::from(self.next_u32() >> 5);
        let b = f64::from(self.next_u32() >> 6);
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// `standard_normal()`: the legacy polar method, which caches its second value.
    #[inline]
    pub(crate) fn standard_normal(&mut self) -> f64 {
        if let Some(g) = self.gauss.take() {
            return g;
        }
        loop {
            let x1 = 2.0 * self.next_f64() - 1.0;
            let x2 = 2.0 * self.next_f64() - 1.0;
            let r2 = x1 * x1 + x2 * x2;
            if r2 < 1.0 && r2 != 0.0 {
                let f = (-2.0 * r2.ln() / r2).sqrt();
                self.gauss = Some(f * x1);
                return f * x2;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_numpy_random_state_0() {
        // numpy.random.RandomState(0).standard_normal(6) and RandomState(0).random_sample(2)
        let expected = [
            1.764052345967664,
            0.4001572083672233,
            0.9787379841057392,
            2.240893199201458,
            1.8675579901499675,
            -0.977277879876411,
        ];
        let mut rs = LegacyRandomState::new(0);
        for e in expected {
            assert_eq!(rs.standard_normal(), e);
        }
        let mut rs = LegacyRandomState::new(0);
        assert_eq!(rs.next_f64(), 0.5488135039273248);
        assert_eq!(rs.next_f64(), 0.7151893663724195);
    }
}
