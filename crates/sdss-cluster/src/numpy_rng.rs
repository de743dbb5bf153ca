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
        const N: usize = 624;
        const M: usize = 397;
        #[inline(always)]
        fn mix(cur: u32, next: u32, far: u32) -> u32 {
            let y = (cur & 0x8000_0000) | (next & 0x7fff_ffff);
            // Branch-free `if y odd { ^ MATRIX_A }`.
            far ^ (y >> 1) ^ ((y & 1).wrapping_neg() & 0x9908_b0df)
        }
        let mt = &mut self.mt;
        for i in 0..N - M {
            mt[i] = mix(mt[i], mt[i + 1], mt[i + M]);
        }
        for i in N - M..N - 1 {
            mt[i] = mix(mt[i], mt[i + 1], mt[i + M - N]);
        }
        mt[N - 1] = mix(mt[N - 1], mt[0], mt[M - 1]);
        self.pos = 0;
    }

    /// Fills `out` with the next tempered outputs, a block of the state at a time.
    fn fill_u32(&mut self, out: &mut [u32]) {
        let mut done = 0;
        while done < out.len() {
            if self.pos >= 624 {
                self.twist();
            }
            let take = (624 - self.pos).min(out.len() - done);
            for (o, &m) in out[done..done + take]
                .iter_mut()
                .zip(&self.mt[self.pos..self.pos + take])
            {
                *o = temper(m);
            }
            self.pos += take;
            done += take;
        }
    }

    /// Feeds the next `total` values of `standard_normal()` to `apply(offset, values)` in
    /// consecutive chunks, in NumPy's order, consuming the generator.
    ///
    /// Every attempt of the polar method consumes exactly four 32-bit outputs, accepted or
    /// not, so only MT19937 itself is sequential: one thread draws the next block of outputs
    /// while the others turn the current block into normals and hand them to `apply`.
    pub(crate) fn standard_normals_chunked(
        mut self,
        total: usize,
        mut apply: impl FnMut(usize, &[f64]) + Send,
    ) {
        const ATTEMPTS: usize = 1 << 17;
        const PART: usize = 1 << 13;
        let mut produced = 0;
        if total == 0 {
            return;
        }
        if let Some(g) = self.gauss.take() {
            apply(0, &[g]);
            produced = 1;
        }
        let mut raw = vec![0u32; 4 * ATTEMPTS];
        let mut next = vec![0u32; 4 * ATTEMPTS];
        self.fill_u32(&mut raw);
        while produced < total {
            let (_, made) = rayon::join(
                || self.fill_u32(&mut next),
                || {
                    use rayon::prelude::*;
                    let parts: Vec<Vec<f64>> =
                        raw.par_chunks(4 * PART).map(polar_attempts).collect();
                    let mut at = produced;
                    for part in &parts {
                        if at >= total {
                            break;
                        }
                        let take = part.len().min(total - at);
                        apply(at, &part[..take]);
                        at += take;
                    }
                    at - produced
                },
            );
            produced += made;
            std::mem::swap(&mut raw, &mut next);
        }
    }
    /// Next tempered 32-bit output.
    #[cfg(test)]
    #[inline]
    pub(crate) fn next_u32(&mut self) -> u32 {
        if self.pos >= 624 {
            self.twist();
        }
        let y = self.mt[self.pos];
        self.pos += 1;
        temper(y)
    }

    /// 53-bit uniform double in [0, 1) (`random_sample`).
    #[cfg(test)]
    #[inline]
    pub(crate) fn next_f64(&mut self) -> f64 {
        let hi = self.next_u32();
        uniform(hi, self.next_u32())
    }

    /// `standard_normal()`: the legacy polar method, which caches its second value.
    #[cfg(test)]
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

#[inline(always)]
fn temper(mut y: u32) -> u32 {
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c_5680;
    y ^= (y << 15) & 0xefc6_0000;
    y ^ (y >> 18)
}

/// `random_sample()` from two tempered outputs.
#[inline(always)]
fn uniform(hi: u32, lo: u32) -> f64 {
    let a = f64::from(hi >> 5);
    let b = f64::from(lo >> 6);
    (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
}

/// The normals of consecutive polar-method attempts (four outputs each), in NumPy's order:
/// an accepted attempt yields `f x2` first, then the cached `f x1`.
fn polar_attempts(raw: &[u32]) -> Vec<f64> {
    let mut out = Vec::with_capacity(raw.len() / 2);
    for u in raw.chunks_exact(4) {
        let x1 = 2.0 * uniform(u[0], u[1]) - 1.0;
        let x2 = 2.0 * uniform(u[2], u[3]) - 1.0;
        let r2 = x1 * x1 + x2 * x2;
        if r2 < 1.0 && r2 != 0.0 {
            let f = (-2.0 * r2.ln() / r2).sqrt();
            out.push(f * x2);
            out.push(f * x1);
        }
    }
    out
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

    #[test]
    fn chunked_normals_equal_the_sequential_stream() {
        // Long enough to cross several blocks, odd so the last pair is split.
        let total = 700_001;
        let mut rs = LegacyRandomState::new(7);
        let expected: Vec<f64> = (0..total).map(|_| rs.standard_normal()).collect();
        let mut got = vec![f64::NAN; total];
        LegacyRandomState::new(7).standard_normals_chunked(total, |at, v| {
            got[at..at + v.len()].copy_from_slice(v);
        });
        assert_eq!(got, expected);
    }
}
