//! De-duplication by resource type and id, keeping the newest `meta.lastUpdated`, over the
//! whole run. A streaming run cannot take back a resource it has written, so dedupe takes two
//! passes: the first runs the same workers (checks, unbundle, types, where) without sinks and
//! offers every candidate to a [`DedupeIndex`] in input order; the second emits a candidate
//! only if it is its key's winner, and counts the others as filtered `duplicate`.
//!
//! A candidate's position is `(chunk sequence << 32) | index among the chunk's candidates`,
//! the same in both passes because chunking is a function of the input and the chunk size.
//! Keys are a 64-bit SipHash of (type, id); two different (type, id) pairs sharing a hash
//! would be treated as one (about 3 × 10⁻⁸ for a million ids, 3 × 10⁻⁶ for ten million).
//!
//! Winner: the greatest `meta.lastUpdated` (as an instant, so time zones compare correctly);
//! a resource without one is older than any with one; ties go to the later one in input
//! order (files sorted by path, then lines, then Bundle entries).

use crate::fhir::TypeIdx;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// The dedupe key of a resource: a 64-bit hash of type and id (deterministic across runs).
pub fn key(type_idx: TypeIdx, id: &str) -> u64 {
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new_with_keys(0x6668_6972, 0x7069_7065);
    type_idx.hash(&mut h);
    id.hash(&mut h);
    h.finish()
}

/// The position of a candidate in the run (see the module docs).
pub fn position(seq: u64, index: u32) -> u64 {
    (seq << 32) | u64::from(index)
}

/// The keys are already hashes: use them as they are.
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[derive(Debug, Clone, Copy)]
struct Winner {
    last_updated: i64,
    position: u64,
}

/// The newest candidate per key: 24 bytes per entry in a hash table (see ARCHITECTURE.md for
/// the measured bytes per million ids).
#[derive(Default)]
pub struct DedupeIndex {
    winners: HashMap<u64, Winner, BuildHasherDefault<KeyHasher>>,
    offered: u64,
}

impl DedupeIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Offers a candidate; must be called in input order (increasing `position`).
    pub fn offer(&mut self, key: u64, last_updated: Option<i64>, position: u64) {
        self.offered += 1;
        let lu = last_updated.unwrap_or(i64::MIN);
        let w = self.winners.entry(key).or_insert(Winner {
            last_updated: lu,
            position,
        });
        if lu >= w.last_updated {
            *w = Winner {
                last_updated: lu,
                position,
            };
        }
    }

    /// Is the candidate at `position` its key's winner?
    pub fn is_winner(&self, key: u64, position: u64) -> bool {
        self.winners.get(&key).map(|w| w.position) == Some(position)
    }

    /// Distinct keys.
    pub fn len(&self) -> usize {
        self.winners.len()
    }

    /// No candidates.
    pub fn is_empty(&self) -> bool {
        self.winners.is_empty()
    }

    /// Candidates offered (distinct or not).
    pub fn offered(&self) -> u64 {
        self.offered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_wins_missing_is_oldest_and_ties_go_to_the_later() {
        let mut ix = DedupeIndex::new();
        let a = key(1, "a");
        let b = key(1, "b");
        let c = key(1, "c");
        assert_ne!(a, key(2, "a"), "type is part of the key");
        ix.offer(a, Some(20), 1);
        ix.offer(a, Some(10), 2); // older: loses
        ix.offer(b, None, 3);
        ix.offer(b, Some(5), 4); // any lastUpdated beats none
        ix.offer(b, None, 5);
        ix.offer(c, Some(7), 6);
        ix.offer(c, Some(7), 7); // tie: the later wins
        assert!(ix.is_winner(a, 1) && !ix.is_winner(a, 2));
        assert!(ix.is_winner(b, 4) && !ix.is_winner(b, 3) && !ix.is_winner(b, 5));
        assert!(ix.is_winner(c, 7) && !ix.is_winner(c, 6));
        assert!(!ix.is_winner(key(1, "zz"), 1));
        assert_eq!((ix.len(), ix.offered()), (3, 7));
        assert_eq!(position(3, 5), (3 << 32) | 5);
    }
}
