//! A fast, non-cryptographic hasher for maps whose keys are not chosen by an attacker who
//! could profit from collisions: names of the R4 model, FHIR type names, tape addresses, and
//! the name words the recognizer takes from the run's own person resources (colliding names
//! there could only slow the owner's own run, never change a result).
//! SipHash (std's default) cost a measurable share of the de-identification stage (issue 6
//! item 7); this is the multiply-rotate mix of rustc's FxHasher, over 8-byte words.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// The hasher (see the module docs).
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

const K: u64 = 0x517c_c1b7_2722_0a95;

impl FastHasher {
    #[inline]
    fn add(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(K);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.add(u64::from_le_bytes(b));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b));
        }
    }
    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }
    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
}

/// A `HashMap` with [`FastHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// A `HashSet` with [`FastHasher`].
pub type FastSet<K> = HashSet<K, BuildHasherDefault<FastHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_differ_hash_apart_and_equal_names_alike() {
        let h = |s: &str| {
            let mut x = FastHasher::default();
            x.write(s.as_bytes());
            x.finish()
        };
        assert_eq!(h("valueQuantity"), h("valueQuantity"));
        // Differences in the tail word and in the length-padding are seen.
        assert_ne!(h("valueQuantity"), h("valueQuantitz"));
        assert_ne!(h("abcdefgh"), h("abcdefgh\0"));
        let mut m: FastMap<&str, u32> = FastMap::default();
        for (i, n) in ["Patient", "Observation", "HumanName", "string"]
            .iter()
            .enumerate()
        {
            m.insert(n, i as u32);
        }
        assert_eq!(m.get("HumanName"), Some(&2));
        assert_eq!(m.get("Humanname"), None);
    }
}
