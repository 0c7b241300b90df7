//! A small cache of values by text key, for what readers see over and over
//! (a handful of product ARNs, decisions and finding states across millions
//! of rows).
//!
//! Direct-mapped: a key's slot is a hash of its bytes, and a new value
//! evicts whatever the slot held. Constant work per lookup whatever the
//! input, unlike a map that a file full of colliding keys could slow down,
//! and bounded memory.

/// Slots in each cache.
const SLOTS: usize = 64;

/// Values by text key. Look up a borrowed key with [`Recent::get_or`], or
/// build a composite key in [`Recent::start`]'s buffer (no allocation) and
/// look it up with [`Recent::get_or_built`].
pub(crate) struct Recent<V> {
    slots: Vec<Option<(String, V)>>,
    /// The key being built.
    key: String,
}

impl<V: Clone> Recent<V> {
    pub(crate) fn new() -> Self {
        Recent {
            slots: (0..SLOTS).map(|_| None).collect(),
            key: String::new(),
        }
    }

    /// Starts a new composite key and returns its buffer.
    pub(crate) fn start(&mut self) -> &mut String {
        self.key.clear();
        &mut self.key
    }

    /// The value for the key built since [`Recent::start`].
    pub(crate) fn get_or_built(&mut self, build: impl FnOnce() -> V) -> V {
        let key = std::mem::take(&mut self.key);
        let value = self.get_or(&key, build);
        self.key = key;
        value
    }

    /// The value for `key`, from the cache or from `build`.
    pub(crate) fn get_or(&mut self, key: &str, build: impl FnOnce() -> V) -> V {
        let slot = slot_of(key.as_bytes());
        if let Some((held, value)) = &self.slots[slot]
            && held == key
        {
            return value.clone();
        }
        let value = build();
        match &mut self.slots[slot] {
            Some((held, v)) => {
                held.clear();
                held.push_str(key);
                *v = value.clone();
            }
            empty => *empty = Some((key.to_owned(), value.clone())),
        }
        value
    }

    /// Keys held (for tests).
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.slots.iter().flatten().count()
    }
}

/// A fast, non-cryptographic hash of the key bytes (FxHash's mixing, eight
/// bytes at a time); the cache does not need more.
fn slot_of(bytes: &[u8]) -> usize {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mix = |h: u64, w: u64| (h.rotate_left(5) ^ w).wrapping_mul(K);
    let mut h = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        h = mix(h, u64::from_le_bytes(word));
    }
    for &b in chunks.remainder() {
        h = mix(h, u64::from(b));
    }
    (h >> 58) as usize % SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_rebuild_nothing_and_evictions_rebuild() {
        let mut r: Recent<usize> = Recent::new();
        let mut builds = 0;
        for round in 0..3 {
            for i in 0..10 {
                let key = format!("key-{i}");
                let v = r.get_or(&key, || {
                    builds += 1;
                    i
                });
                assert_eq!(v, i, "round {round}");
            }
        }
        // Ten keys in 64 slots may share a slot, but each key is built at
        // least once and the cache never returns another key's value.
        assert!((10..=30).contains(&builds), "{builds}");
        r.start().push_str("a\u{0}b");
        assert_eq!(r.get_or_built(|| 99), 99);
        r.start().push_str("a\u{0}b");
        assert_eq!(
            r.get_or_built(|| 1),
            99,
            "a built key hits like a borrowed one"
        );
    }
}
