//! Small deterministic pseudo-random generators for the sample generator.
//!
//! Owns: SplitMix64 (seeding, UUID-shaped ids) and xoshiro256** (all other draws), plus
//! the derivation of independent streams from `(seed, stream, index)`, so patient `i` is
//! generated from its own stream whatever the thread count or the number of patients.
//! Only integer arithmetic and IEEE `+ - * / sqrt` are used, so every platform draws the
//! same numbers.

/// Stream tag for the shared Organization/Practitioner pool.
pub(crate) const STREAM_POOL: u64 = 0x504F_4F4C; // "POOL"
/// Stream tag for the ids of the shared pool.
pub(crate) const STREAM_POOL_IDS: u64 = 0x504F_4944; // "POID"
/// Stream tag for a patient's clinical content.
pub(crate) const STREAM_PATIENT: u64 = 0x5041_5449; // "PATI"
/// Stream tag for a patient's resource ids.
pub(crate) const STREAM_PATIENT_IDS: u64 = 0x5049_4453; // "PIDS"

/// The SplitMix64 finalizer: a bijective 64-bit mixer.
#[inline]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Derives the 64-bit seed of stream `stream`, element `index`, from the run seed.
pub(crate) fn derive_seed(seed: u64, stream: u64, index: u64) -> u64 {
    mix64(
        seed ^ mix64(
            stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ mix64(index.wrapping_add(0x632B_E59B_D9B4_E019)),
        ),
    )
}

/// SplitMix64: used to seed xoshiro and to draw ids (its outputs never repeat within
/// 2^64 draws of one stream).
#[derive(Clone, Debug)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }
}

/// xoshiro256** with convenience draws.
#[derive(Clone, Debug)]
pub(crate) struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// Seeds the four state words from SplitMix64 (never all zero in practice; guarded anyway).
    pub(crate) fn new(seed: u64) -> Self {
        let mut sm = SplitMix64::new(seed);
        let mut s = [sm.next_u64(), sm.next_u64(), sm.next_u64(), sm.next_u64()];
        if s == [0; 4] {
            s[0] = 1;
        }
        Rng { s }
    }

    /// The generator of stream `stream`, element `index`, of run `seed`.
    pub(crate) fn derive(seed: u64, stream: u64, index: u64) -> Self {
        Rng::new(derive_seed(seed, stream, index))
    }

    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (`n == 0` gives 0). Lemire's multiply-high reduction.
    #[inline]
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform index into a collection of `len` elements.
    #[inline]
    pub(crate) fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// Uniform in `lo..=hi` (returns `lo` when `hi < lo`).
    #[inline]
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub(crate) fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `true` with probability `p`.
    #[inline]
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// A uniformly chosen element (the slice must not be empty; an empty slice panics
    /// only on programmer error, all tables are non-empty constants).
    #[inline]
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// Index chosen with the given non-negative integer weights (0 if all are zero).
    pub(crate) fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        if total == 0 {
            return 0;
        }
        let mut x = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            let w = u64::from(w);
            if x < w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }

    /// Approximately normal (Irwin–Hall of 4 uniforms, rescaled; tails cut at ±3.46 sd).
    pub(crate) fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let s = self.f64() + self.f64() + self.f64() + self.f64();
        mean + (s - 2.0) * 1.732_050_807_568_877_2 * sd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoshiro_reference_vector() {
        // xoshiro256** reference: state {1, 2, 3, 4} gives 11520, 0, 1509978240, 1215971899390074240.
        let mut r = Rng { s: [1, 2, 3, 4] };
        assert_eq!(r.next_u64(), 11520);
        assert_eq!(r.next_u64(), 0);
        assert_eq!(r.next_u64(), 1_509_978_240);
        assert_eq!(r.next_u64(), 1_215_971_899_390_074_240);
    }

    #[test]
    fn splitmix_reference_vector() {
        // SplitMix64 seeded with 1234567: first outputs from the reference implementation.
        let mut s = SplitMix64::new(1_234_567);
        assert_eq!(s.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(s.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn draws_stay_in_range() {
        let mut r = Rng::derive(7, STREAM_PATIENT, 3);
        for _ in 0..10_000 {
            assert!(r.below(10) < 10);
            let v = r.range(-3, 3);
            assert!((-3..=3).contains(&v));
            let f = r.f64();
            assert!((0.0..1.0).contains(&f));
            assert!(r.weighted(&[0, 5, 0, 1]) % 2 == 1);
        }
        assert_eq!(r.range(5, 5), 5);
        assert_eq!(r.below(0), 0);
    }

    #[test]
    fn streams_differ() {
        let a = Rng::derive(1, STREAM_PATIENT, 0).next_u64();
        let b = Rng::derive(1, STREAM_PATIENT, 1).next_u64();
        let c = Rng::derive(2, STREAM_PATIENT, 0).next_u64();
        let d = Rng::derive(1, STREAM_PATIENT_IDS, 0).next_u64();
        assert!(a != b && a != c && a != d && b != c);
    }
}
