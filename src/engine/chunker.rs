//! The chunker: each Region's waiting findings, grouped by effective
//! decision, and the choice of what a Region sends next (a pinned chunk, a
//! full group, or a partial group once its linger is over).

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::operation::UpdateOperation;
use crate::limits::{RateConfig, RegionLimiter};
use crate::model::{CurrentState, Location};
use crate::retry::Tries;

/// One finding on its way through the pipeline.
pub(super) struct Item<O: UpdateOperation> {
    pub(super) location: Location,
    pub(super) key: O::Key,
    /// Its effective decision (shared by every finding that has it).
    pub(super) decision: Arc<O::Decision>,
    /// Requests that carried it, failures and throttles so far.
    pub(super) tries: Tries,
    /// What the results say about it once updated (the note policy's doing).
    pub(super) remark: Option<Cow<'static, str>>,
    /// The finding's state as the input recorded it: once updated, the
    /// results keep what its decision's fields held before, so that the run
    /// can be reverted.
    pub(super) current: Option<Arc<CurrentState>>,
}

/// What findings must share to travel in one request: one decision, one
/// kind of key ([`UpdateOperation::key_kind`]).
pub(super) type GroupKey<O> = (Arc<<O as UpdateOperation>::Decision>, u8);

/// Findings of one Region waiting to be sent with one decision.
pub(super) struct Group<O: UpdateOperation> {
    pub(super) fresh: VecDeque<Item<O>>,
    pub(super) ready: VecDeque<Item<O>>,
    /// Since when findings have been waiting for this group's chunk to fill.
    pub(super) waiting_since: Option<Instant>,
}

impl<O: UpdateOperation> Default for Group<O> {
    fn default() -> Self {
        Group {
            fresh: VecDeque::new(),
            ready: VecDeque::new(),
            waiting_since: None,
        }
    }
}

impl<O: UpdateOperation> Group<O> {
    pub(super) fn available(&self) -> usize {
        self.fresh.len() + self.ready.len()
    }
}

pub(super) struct RegionState<O: UpdateOperation> {
    pub(super) name: Arc<str>,
    pub(super) limiter: RegionLimiter,
    /// Waiting findings by effective decision: a request carries one
    /// decision, so findings are chunked within their group.
    pub(super) groups: HashMap<GroupKey<O>, Group<O>>,
    /// Findings in `groups`.
    pub(super) available: usize,
    /// Chunks that must travel exactly as they are (halves of a request
    /// rejected as invalid, lone resends).
    pub(super) pinned: VecDeque<Vec<Item<O>>>,
    pub(super) in_flight: usize,
    /// Findings of this Region in the timer heap.
    pub(super) delayed: usize,
    /// Requests in a row that failed for reasons that say nothing about
    /// their findings (reset by any answered request).
    pub(super) failing: u32,
}

/// What a Region can send next.
pub(super) enum Next<O: UpdateOperation> {
    /// A pinned chunk, or a group's chunk (`None` = pinned).
    Send(Option<GroupKey<O>>),
    /// Nothing yet; look again at this time (if any).
    Wait(Option<Instant>),
}

impl<O: UpdateOperation> RegionState<O> {
    pub(super) fn new(name: Arc<str>, rate: RateConfig) -> Self {
        RegionState {
            name,
            limiter: RegionLimiter::new(rate),
            groups: HashMap::new(),
            available: 0,
            pinned: VecDeque::new(),
            in_flight: 0,
            delayed: 0,
            failing: 0,
        }
    }

    pub(super) fn has_work(&self) -> bool {
        !self.pinned.is_empty() || self.available > 0
    }

    /// Queues a finding in its decision group (retries go first in line).
    pub(super) fn push(&mut self, item: Item<O>, retry: bool, now: Instant) {
        let key = (item.decision.clone(), O::key_kind(&item.key));
        let group = self.groups.entry(key).or_default();
        if group.available() == 0 {
            group.waiting_since = Some(now);
        }
        if retry {
            group.ready.push_back(item);
        } else {
            group.fresh.push_back(item);
        }
        self.available += 1;
    }

    /// Picks what to send: a pinned chunk, else a full group, else the
    /// group waiting longest once its linger is over, or at once when
    /// nothing more can join it, or when too many groups are open.
    pub(super) fn next(
        &self,
        now: Instant,
        linger: Duration,
        more_may_join: bool,
        max_open: usize,
    ) -> Next<O> {
        if !self.pinned.is_empty() {
            return Next::Send(None);
        }
        let mut oldest: Option<(&GroupKey<O>, Instant)> = None;
        for (d, g) in &self.groups {
            if g.available() >= O::MAX_CHUNK {
                return Next::Send(Some(d.clone()));
            }
            let since = g.waiting_since.unwrap_or(now);
            if oldest.is_none_or(|(_, t)| since < t) {
                oldest = Some((d, since));
            }
        }
        match oldest {
            None => Next::Wait(None),
            Some((d, since)) => {
                if !more_may_join || since + linger <= now || self.groups.len() >= max_open {
                    Next::Send(Some(d.clone()))
                } else {
                    Next::Wait(Some(since + linger))
                }
            }
        }
    }

    /// Takes up to 100 findings of one group (retries first), or a pinned chunk.
    pub(super) fn take(&mut self, which: Option<&GroupKey<O>>, now: Instant) -> Vec<Item<O>> {
        let Some(d) = which else {
            return self.pinned.pop_front().unwrap_or_default();
        };
        let Some(group) = self.groups.get_mut(d) else {
            return Vec::new();
        };
        let mut chunk = Vec::with_capacity(O::MAX_CHUNK.min(group.available()));
        while chunk.len() < O::MAX_CHUNK {
            match group.ready.pop_front().or_else(|| group.fresh.pop_front()) {
                Some(item) => chunk.push(item),
                None => break,
            }
        }
        self.available -= chunk.len();
        if group.available() == 0 {
            self.groups.remove(d);
        } else {
            group.waiting_since = Some(now);
        }
        chunk
    }

    /// Everything still waiting, for an abort.
    pub(super) fn drain(&mut self) -> Vec<Item<O>> {
        let mut out: Vec<Item<O>> = self.pinned.drain(..).flatten().collect();
        for (_, g) in self.groups.drain() {
            out.extend(g.ready);
            out.extend(g.fresh);
        }
        self.available = 0;
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::decision::Decision;
    use crate::engine::MAX_CHUNK;
    use crate::model::FindingKey;
    use crate::submission::BatchUpdateFindings;

    type Item = super::Item<BatchUpdateFindings>;
    type RegionState = super::RegionState<BatchUpdateFindings>;
    use crate::decision::{DecisionField, parse_flag};
    use crate::engine::{DEFAULT_LINGER, DEFAULT_MAX_OPEN_GROUPS};
    use proptest::prelude::*;

    fn decision(flag: DecisionField, v: &str) -> Arc<Decision> {
        Arc::new(parse_flag(flag, &[v.to_owned()]).unwrap())
    }

    fn item_with(i: usize, d: &Arc<Decision>) -> Item {
        Item {
            location: Location {
                file: "t".into(),
                row: i as u64 + 1,
                detail: None,
            },
            key: FindingKey::new(
                format!("f{i}"),
                "arn:aws:securityhub:us-east-1::product/aws/guardduty",
            ),
            decision: d.clone(),
            tries: Tries::default(),
            remark: None,
            current: None,
        }
    }

    fn item(i: usize) -> Item {
        item_with(i, &decision(DecisionField::Workflow, "Status=SUPPRESSED"))
    }

    fn region() -> RegionState {
        RegionState::new("us-east-1".into(), RateConfig::DOCUMENTED)
    }

    /// Drains a Region as the dispatcher would when nothing more can join.
    fn drain_chunks(r: &mut RegionState) -> Vec<Vec<Item>> {
        let now = Instant::now();
        let mut out = Vec::new();
        while r.has_work() {
            match r.next(now, DEFAULT_LINGER, false, DEFAULT_MAX_OPEN_GROUPS) {
                Next::Send(which) => out.push(r.take(which.as_ref(), now)),
                Next::Wait(_) => panic!("nothing can join: must send"),
            }
        }
        out
    }

    #[test]
    fn pinned_chunks_travel_as_they_are_and_first() {
        let mut r = region();
        let now = Instant::now();
        for i in 0..150 {
            r.push(item(i), false, now);
        }
        r.pinned.push_back(vec![item(1000), item(1001), item(1002)]);
        let chunks = drain_chunks(&mut r);
        let sizes: Vec<usize> = chunks.iter().map(Vec::len).collect();
        assert_eq!(sizes, [3, 100, 50]);
        assert_eq!(chunks[0][0].key.id, "f1000");
    }

    #[test]
    fn partial_groups_wait_for_the_linger_while_more_may_join() {
        let mut r = region();
        let t0 = Instant::now();
        for i in 0..10 {
            r.push(item(i), false, t0);
        }
        match r.next(t0, DEFAULT_LINGER, true, DEFAULT_MAX_OPEN_GROUPS) {
            Next::Wait(Some(due)) => assert_eq!(due, t0 + DEFAULT_LINGER),
            _ => panic!("a partial chunk must wait while more may join"),
        }
        assert!(matches!(
            r.next(
                t0 + DEFAULT_LINGER,
                DEFAULT_LINGER,
                true,
                DEFAULT_MAX_OPEN_GROUPS
            ),
            Next::Send(Some(_))
        ));
        // Too many open groups: flush at once.
        assert!(matches!(
            r.next(t0, DEFAULT_LINGER, true, 1),
            Next::Send(Some(_))
        ));
    }

    #[test]
    fn findings_with_different_decisions_never_share_a_chunk() {
        let mut r = region();
        let now = Instant::now();
        let a = decision(DecisionField::Workflow, "Status=SUPPRESSED");
        let b = decision(DecisionField::Workflow, "Status=RESOLVED");
        // An equal decision built separately is the same group.
        let a2 = decision(DecisionField::Workflow, "Status=SUPPRESSED");
        for i in 0..130 {
            let d = [&a, &b, &a2][i % 3];
            r.push(item_with(i, d), false, now);
        }
        assert_eq!(r.groups.len(), 2);
        let chunks = drain_chunks(&mut r);
        for c in &chunks {
            assert!(c.iter().all(|i| i.decision == c[0].decision));
        }
        let mut sizes: Vec<usize> = chunks.iter().map(Vec::len).collect();
        sizes.sort_unstable();
        // 87 SUPPRESSED (a and a2), 43 RESOLVED: the fewest requests possible.
        assert_eq!(sizes, [43, 87]);
    }

    /// An operation shaped like `BatchUpdateFindingsV2`: two kinds of
    /// key that never share a request, and a smaller chunk. It is never
    /// sent; the chunker alone is under test.
    struct TwoKinds;

    impl UpdateOperation for TwoKinds {
        /// (kind, identifier)
        type Key = (u8, String);
        type Decision = u32;
        const NAME: &'static str = "TwoKinds";
        const MAX_CHUNK: usize = 10;

        fn send(
            &self,
            _region: &str,
            _decision: &u32,
            _keys: &[(u8, String)],
        ) -> impl Future<
            Output = Result<
                crate::submission::BatchResult<(u8, String)>,
                crate::submission::CallError,
            >,
        > + Send {
            std::future::pending()
        }
        fn classify_entry(_code: &str) -> crate::retry::EntryDisposition {
            crate::retry::EntryDisposition::Permanent
        }
        fn key_kind(key: &(u8, String)) -> u8 {
            key.0
        }
        fn admit(_key: FindingKey, _decision: Arc<Decision>) -> ((u8, String), Arc<u32>) {
            unreachable!("the chunker test builds items directly")
        }
        fn report(
            _key: (u8, String),
            _decision: Arc<u32>,
            _current: Option<&CurrentState>,
            _updated: bool,
        ) -> crate::engine::Reported {
            unreachable!("the chunker test records no outcome")
        }
    }

    #[test]
    fn keys_of_different_kinds_never_share_a_chunk() {
        let mut r = super::RegionState::<TwoKinds>::new("us-east-1".into(), RateConfig::DOCUMENTED);
        let now = Instant::now();
        let decision = Arc::new(7u32);
        for i in 0..35u64 {
            r.push(
                super::Item {
                    location: Location {
                        file: "t".into(),
                        row: i + 1,
                        detail: None,
                    },
                    key: ((i % 2) as u8, format!("f{i}")),
                    decision: decision.clone(),
                    tries: Tries::default(),
                    remark: None,
                    current: None,
                },
                false,
                now,
            );
        }
        let mut sizes = Vec::new();
        while r.has_work() {
            match r.next(now, DEFAULT_LINGER, false, DEFAULT_MAX_OPEN_GROUPS) {
                Next::Send(which) => {
                    let c = r.take(which.as_ref(), now);
                    assert!(c.iter().all(|i| i.key.0 == c[0].key.0), "kinds mixed");
                    sizes.push(c.len());
                }
                Next::Wait(_) => panic!("nothing can join: must send"),
            }
        }
        sizes.sort_unstable();
        // 18 of kind 0 and 17 of kind 1, in chunks of at most 10.
        assert_eq!(sizes, [7, 8, 10, 10]);
    }

    proptest! {
        /// Chunks never exceed 100, never repeat a finding, never mix
        /// decisions, take retries before fresh findings, and together hold
        /// every finding once.
        #[test]
        fn chunking_invariants(fresh in 0usize..450, ready in 0usize..250, groups in 1usize..4) {
            let ds: Vec<Arc<Decision>> = (0..groups).map(|g| decision(DecisionField::Confidence, &g.to_string())).collect();
            let mut r = region();
            let now = Instant::now();
            for i in 0..fresh {
                r.push(item_with(i, &ds[i % groups]), false, now);
            }
            for i in 10_000..10_000 + ready {
                r.push(item_with(i, &ds[i % groups]), true, now);
            }
            let mut all = Vec::new();
            for c in drain_chunks(&mut r) {
                prop_assert!(!c.is_empty() && c.len() <= MAX_CHUNK);
                let distinct: HashSet<_> = c.iter().map(|i| &i.key).collect();
                prop_assert_eq!(distinct.len(), c.len());
                prop_assert!(c.iter().all(|i| i.decision == c[0].decision));
                // Within a chunk, retries (rows > 10,000) come first.
                let first_fresh = c.iter().position(|i| i.location.row <= 10_000).unwrap_or(c.len());
                prop_assert!(c[first_fresh..].iter().all(|i| i.location.row <= 10_000));
                all.extend(c.into_iter().map(|i| i.location.row));
            }
            all.sort_unstable();
            all.dedup();
            prop_assert_eq!(all.len(), fresh + ready);
        }
    }
}
