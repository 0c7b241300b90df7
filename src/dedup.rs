//! Duplicate detection for the whole input in a fixed, small cost per
//! finding: a 64-bit fingerprint of (Id, ProductArn) in an open-addressing
//! table of bare `u64` slots.
//!
//! Why not `HashSet<u64>`: its table doubles, so just past a doubling it
//! holds 16 slots of 9 bytes for every 7 findings (20.6 bytes per finding).
//! This table grows by half instead and maps fingerprints to slots by
//! multiplication (no power-of-two size needed), so between growths it
//! holds 10.0 to 15.0 bytes per finding, whatever the count. While growing
//! it briefly holds the old and the new table.
//!
//! Two different findings share a fingerprint with probability about
//! n²/2⁶⁵ (≈3·10⁻⁶ for ten million findings); such a finding would be
//! reported as a duplicate, never silently dropped.

use std::hash::{DefaultHasher, Hash, Hasher};

use crate::model::FindingKey;

/// The slot value meaning "empty"; a fingerprint equal to it is stored as
/// [`ZERO_STANDIN`] (a one-in-2⁶⁴ merge, far below the fingerprint's own
/// collision rate).
const EMPTY: u64 = 0;
const ZERO_STANDIN: u64 = 1;
/// Grow when more than this share of slots is taken: linear probing stays
/// short (about 3 probes for a hit, 13 for a miss at the limit).
const MAX_LOAD: f64 = 0.8;
const FIRST_SLOTS: usize = 1024;

/// The set of findings seen so far, each with an optional 32-bit tag (the
/// intake's fingerprint of the finding's decision, so that a later record
/// of it asking for something else is a conflict, not a silent drop). Tags
/// cost 4 bytes a slot, and only once [`DedupIndex::insert_tagged`] is used:
/// 15.0 to 22.5 bytes per finding instead of 10.0 to 15.0.
///
/// The tag type is `u32` unless another is named (the pass that finds each
/// finding's chosen row keeps its recorded state and time in one).
pub struct DedupIndex<T: Copy + Default = u32> {
    slots: Vec<u64>,
    /// Parallel to `slots` when tags are in use, else empty.
    tags: Vec<T>,
    len: usize,
}

impl<T: Copy + Default> Default for DedupIndex<T> {
    fn default() -> Self {
        DedupIndex {
            slots: vec![EMPTY; FIRST_SLOTS],
            tags: Vec::new(),
            len: 0,
        }
    }
}

/// The fingerprint of a finding's identity.
pub(crate) fn key_print(key: &FindingKey) -> u64 {
    let mut h = DefaultHasher::new();
    key.id.hash(&mut h);
    key.product_arn.hash(&mut h);
    // Only V2 triples have an account: V1 fingerprints are unchanged.
    if let Some(a) = &key.account_uid {
        a.hash(&mut h);
    }
    h.finish()
}

impl<T: Copy + Default> DedupIndex<T> {
    /// Records `key`; false if it was seen before.
    pub fn insert(&mut self, key: &FindingKey) -> bool {
        self.insert_fingerprint(key_print(key))
    }

    /// Records `key` with `tag`; `None` if it is new, else the tag it was
    /// first recorded with (the default, 0, for a key recorded by
    /// [`DedupIndex::insert`]).
    pub fn insert_tagged(&mut self, key: &FindingKey, tag: T) -> Option<T> {
        self.insert_with(key, tag).map(|t| *t)
    }

    /// [`DedupIndex::insert_tagged`], giving the recorded tag of a key seen
    /// before to change.
    pub(crate) fn insert_with(&mut self, key: &FindingKey, tag: T) -> Option<&mut T> {
        if self.tags.is_empty() {
            self.tags = vec![T::default(); self.slots.len()];
        }
        let fp = key_print(key);
        let fp = if fp == EMPTY { ZERO_STANDIN } else { fp };
        if (self.len + 1) as f64 > self.slots.len() as f64 * MAX_LOAD {
            self.grow();
        }
        let (i, new) = place_at(&mut self.slots, fp);
        if new {
            self.len += 1;
            self.tags[i] = tag;
            None
        } else {
            Some(&mut self.tags[i])
        }
    }

    fn insert_fingerprint(&mut self, fp: u64) -> bool {
        let fp = if fp == EMPTY { ZERO_STANDIN } else { fp };
        if (self.len + 1) as f64 > self.slots.len() as f64 * MAX_LOAD {
            self.grow();
        }
        if place(&mut self.slots, fp) {
            self.len += 1;
            true
        } else {
            false
        }
    }

    fn grow(&mut self) {
        let n = self.slots.len() + self.slots.len() / 2;
        let mut bigger = vec![EMPTY; n];
        let mut tags = if self.tags.is_empty() {
            Vec::new()
        } else {
            vec![T::default(); n]
        };
        for (j, &fp) in self.slots.iter().enumerate().filter(|(_, s)| **s != EMPTY) {
            let (i, _) = place_at(&mut bigger, fp);
            if !tags.is_empty() {
                tags[i] = self.tags[j];
            }
        }
        self.slots = bigger;
        self.tags = tags;
    }

    /// Findings seen.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No finding seen yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of memory the index holds.
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<u64>() + self.tags.capacity() * size_of::<T>()
    }
}

/// [`place`], returning the slot and whether `fp` was new.
fn place_at(slots: &mut [u64], fp: u64) -> (usize, bool) {
    let n = slots.len();
    let mut i = ((u128::from(fp) * n as u128) >> 64) as usize;
    loop {
        match slots[i] {
            EMPTY => {
                slots[i] = fp;
                return (i, true);
            }
            s if s == fp => return (i, false),
            _ => i = if i + 1 == n { 0 } else { i + 1 },
        }
    }
}

/// Puts `fp` in its slot or the next free one (linear probing); false if
/// it is already there. The home slot is `fp · n / 2⁶⁴`, uniform for a
/// uniform fingerprint whatever `n`.
fn place(slots: &mut [u64], fp: u64) -> bool {
    let n = slots.len();
    let mut i = ((u128::from(fp) * n as u128) >> 64) as usize;
    loop {
        match slots[i] {
            EMPTY => {
                slots[i] = fp;
                return true;
            }
            s if s == fp => return false,
            _ => i = if i + 1 == n { 0 } else { i + 1 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_duplicates_across_growth() {
        let mut d: DedupIndex = DedupIndex::default();
        let key = |i: usize| {
            FindingKey::new(
                format!("f-{i}"),
                "arn:aws:securityhub:us-east-1::product/aws/guardduty",
            )
        };
        for i in 0..50_000 {
            assert!(d.insert(&key(i)), "{i} is new");
        }
        for i in (0..50_000).step_by(7) {
            assert!(!d.insert(&key(i)), "{i} was seen");
        }
        assert_eq!(d.len(), 50_000);
        // Same Id, other product: another finding.
        assert!(d.insert(&FindingKey::new(
            "f-1",
            "arn:aws:securityhub:us-east-1::product/aws/inspector"
        )));
    }

    #[test]
    fn zero_fingerprint_and_wraparound() {
        let mut slots = vec![EMPTY; 4];
        // u64::MAX's home slot is the last one; the next goes round to 0.
        assert!(place(&mut slots, u64::MAX));
        assert!(place(&mut slots, u64::MAX - 1));
        assert_eq!(slots[0], u64::MAX - 1);
        assert!(!place(&mut slots, u64::MAX - 1));
        let mut d: DedupIndex = DedupIndex::default();
        assert!(d.insert_fingerprint(0));
        assert!(!d.insert_fingerprint(0));
    }

    #[test]
    fn tags_survive_growth_and_cost_a_bounded_four_bytes_a_slot() {
        let mut d: DedupIndex = DedupIndex::default();
        let key = |i: u32| {
            FindingKey::new(
                format!("f-{i}"),
                "arn:aws:securityhub:us-east-1::product/aws/guardduty",
            )
        };
        let mut worst: f64 = 0.0;
        for i in 1..=100_000u32 {
            assert_eq!(d.insert_tagged(&key(i), i % 7 + 1), None);
            if i >= 10_000 {
                worst = worst.max(d.heap_bytes() as f64 / f64::from(i));
            }
        }
        for i in (1..=100_000u32).step_by(13) {
            assert_eq!(d.insert_tagged(&key(i), 99), Some(i % 7 + 1), "{i}");
        }
        assert!(worst <= 22.51, "worst {worst:.2} bytes per finding");
    }

    #[test]
    fn bytes_per_finding_stay_within_bounds_at_every_size() {
        let mut d: DedupIndex = DedupIndex::default();
        let mut worst: f64 = 0.0;
        for i in 1..=300_000u64 {
            // Uniform fingerprints, like SipHash outputs.
            d.insert_fingerprint(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            if i >= 10_000 {
                worst = worst.max(d.heap_bytes() as f64 / i as f64);
            }
        }
        assert!(worst <= 15.01, "worst {worst:.2} bytes per finding");
    }
}
