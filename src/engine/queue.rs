//! The retry queue: findings waiting out a backoff, in a timer heap.
//!
//! A backoff is an entry here, never a sleeping task, so no concurrency slot
//! is held while a finding waits. The dispatcher moves due entries back into
//! their Region's queue ([`RetryQueue::pop_due`]) before it forms chunks.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::chunker::Item;
use super::operation::UpdateOperation;

/// One finding waiting until `at` (ties broken by insertion order).
struct Delayed<O: UpdateOperation> {
    at: Instant,
    seq: u64,
    region: usize,
    item: Item<O>,
}

impl<O: UpdateOperation> PartialEq for Delayed<O> {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl<O: UpdateOperation> Eq for Delayed<O> {}
impl<O: UpdateOperation> PartialOrd for Delayed<O> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<O: UpdateOperation> Ord for Delayed<O> {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// Findings of every Region waiting out their backoff, earliest first.
pub(super) struct RetryQueue<O: UpdateOperation> {
    heap: BinaryHeap<Reverse<Delayed<O>>>,
    seq: u64,
}

impl<O: UpdateOperation> Default for RetryQueue<O> {
    fn default() -> Self {
        RetryQueue {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }
}

impl<O: UpdateOperation> RetryQueue<O> {
    /// Holds `item` (of Region number `region`) until `at`.
    pub(super) fn push(&mut self, region: usize, item: Item<O>, at: Instant) {
        self.seq += 1;
        self.heap.push(Reverse(Delayed {
            at,
            seq: self.seq,
            region,
            item,
        }));
    }

    /// When the earliest finding is due, if any waits.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|d| d.0.at)
    }

    /// Takes out the earliest finding if it is due at `now`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<(usize, Item<O>)> {
        if self.heap.peek().is_some_and(|d| d.0.at <= now) {
            self.heap.pop().map(|Reverse(d)| (d.region, d.item))
        } else {
            None
        }
    }

    /// Takes out every finding, due or not (a stop or an abort).
    pub(super) fn drain(&mut self) -> impl Iterator<Item = (usize, Item<O>)> + '_ {
        self.heap.drain().map(|Reverse(d)| (d.region, d.item))
    }
}
