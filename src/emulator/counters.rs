//! Request bookkeeping for assertions: counts by operation and outcome,
//! per-finding outcome codes, requests in flight, and the arrival time of
//! every API request (for rate checks over any window).
//!
//! It records what the HTTP layer reports; it makes no decisions.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The emulated operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Operation {
    /// `PATCH /findings/batchupdate`.
    BatchUpdateFindings,
    /// `POST /findings`.
    GetFindings,
    /// `POST /findings/import`.
    BatchImportFindings,
    /// `PATCH /findingsv2/batchupdatev2` (new Security Hub).
    BatchUpdateFindingsV2,
    /// `POST /findingsv2` (new Security Hub).
    GetFindingsV2,
    /// `GET /hubv2` (new Security Hub).
    DescribeSecurityHubV2,
}

impl Operation {
    /// All operations.
    pub const ALL: [Operation; 6] = [
        Operation::BatchUpdateFindings,
        Operation::GetFindings,
        Operation::BatchImportFindings,
        Operation::BatchUpdateFindingsV2,
        Operation::GetFindingsV2,
        Operation::DescribeSecurityHubV2,
    ];

    /// The operation's API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::BatchUpdateFindings => "BatchUpdateFindings",
            Operation::GetFindings => "GetFindings",
            Operation::BatchImportFindings => "BatchImportFindings",
            Operation::BatchUpdateFindingsV2 => "BatchUpdateFindingsV2",
            Operation::GetFindingsV2 => "GetFindingsV2",
            Operation::DescribeSecurityHubV2 => "DescribeSecurityHubV2",
        }
    }

    /// Parses an API name.
    pub(crate) fn from_name(s: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|op| op.as_str() == s)
    }

    /// Whether the operation belongs to the new Security Hub (OCSF).
    pub(crate) fn is_v2(self) -> bool {
        matches!(
            self,
            Operation::BatchUpdateFindingsV2
                | Operation::GetFindingsV2
                | Operation::DescribeSecurityHubV2
        )
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A snapshot of the counters (JSON at `GET /_emulator/counters`).
///
/// Outcome keys are `"200"` for success, `"<status> <ErrorCode>"` for an
/// error (e.g. `"429 LimitExceededException"`), `"dropped"` for an injected
/// dropped connection and `"cancelled"` when the client went away first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// API requests received, by operation (throttled ones included).
    pub requests: BTreeMap<Operation, u64>,
    /// Responses by operation and outcome.
    pub outcomes: BTreeMap<Operation, BTreeMap<String, u64>>,
    /// Error responses by error code, all operations together.
    pub error_codes: BTreeMap<String, u64>,
    /// Requests answered with HTTP 429.
    pub throttled: u64,
    /// `BatchUpdateFindings` per-finding outcomes: `Processed` or the
    /// `UnprocessedFindings` error code.
    pub finding_outcomes: BTreeMap<String, u64>,
    /// `BatchUpdateFindingsV2` per-finding outcomes: `Processed`, the
    /// `UnprocessedFindings` error code, `Omitted` (left out of both lists
    /// by fault injection) or `NoErrorCode` (an entry without a code, injected).
    pub(crate) v2_finding_outcomes: BTreeMap<String, u64>,
    /// `BatchImportFindings` per-finding outcomes: `Created`, `Updated`,
    /// `Ignored` (not newer than the stored finding) or the failure code.
    pub import_outcomes: BTreeMap<String, u64>,
    /// Requests to paths that are neither an operation nor the admin API.
    pub unknown_routes: u64,
    /// API requests being handled at the moment of the snapshot.
    pub in_flight: u64,
    /// The most API requests ever handled at once.
    pub max_in_flight: u64,
    /// Requests received in each whole second since the last reset, by
    /// operation (index 0 is the first second).
    pub requests_per_second: BTreeMap<Operation, Vec<u64>>,
    /// Seconds since the counters were last reset.
    pub(crate) elapsed_seconds: f64,
}

impl Counters {
    /// Requests received for `op`.
    pub fn requests_for(&self, op: Operation) -> u64 {
        self.requests.get(&op).copied().unwrap_or(0)
    }

    /// Responses to `op` with outcome `key` (`"200"`, `"429 LimitExceededException"`, ...).
    pub fn outcome(&self, op: Operation, key: &str) -> u64 {
        self.outcomes
            .get(&op)
            .and_then(|m| m.get(key))
            .copied()
            .unwrap_or(0)
    }

    /// Per-finding `BatchUpdateFindings` outcomes with this code (`Processed`, ...).
    pub fn finding_outcome(&self, code: &str) -> u64 {
        self.finding_outcomes.get(code).copied().unwrap_or(0)
    }

    /// Per-finding `BatchUpdateFindingsV2` outcomes with this code.
    pub fn v2_finding_outcome(&self, code: &str) -> u64 {
        self.v2_finding_outcomes.get(code).copied().unwrap_or(0)
    }

    /// Error responses with this code.
    pub fn error_code(&self, code: &str) -> u64 {
        self.error_codes.get(code).copied().unwrap_or(0)
    }
}

#[derive(Default)]
struct Inner {
    requests: [u64; N_OPS],
    outcomes: [BTreeMap<String, u64>; N_OPS],
    error_codes: BTreeMap<String, u64>,
    throttled: u64,
    finding_outcomes: BTreeMap<String, u64>,
    v2_finding_outcomes: BTreeMap<String, u64>,
    import_outcomes: BTreeMap<String, u64>,
    unknown_routes: u64,
    /// Arrival offsets from `epoch` in nanoseconds, per operation, ascending
    /// (appended under the lock, so ordered).
    arrivals: [Vec<u64>; N_OPS],
}

const N_OPS: usize = Operation::ALL.len();

/// The live counters.
pub(crate) struct CounterState {
    inner: Mutex<(Instant, Inner)>,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
}

impl CounterState {
    pub(crate) fn new() -> Self {
        CounterState {
            inner: Mutex::new((Instant::now(), Inner::default())),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Instant, Inner)> {
        // A panic elsewhere while holding the lock leaves plain counters
        // behind, which are still fine to read and update.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an arrival and marks the request in flight.
    pub(crate) fn arrived(&self, op: Operation) {
        {
            let mut g = self.lock();
            let (epoch, inner) = &mut *g;
            let at = epoch.elapsed().as_nanos() as u64;
            inner.requests[op.index()] += 1;
            inner.arrivals[op.index()].push(at);
        }
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
    }

    /// Records how a request ended and marks it no longer in flight.
    pub(crate) fn finished(&self, op: Operation, outcome: &str, error_code: Option<&str>) {
        {
            let mut g = self.lock();
            let inner = &mut g.1;
            *inner.outcomes[op.index()]
                .entry(outcome.to_owned())
                .or_default() += 1;
            if let Some(code) = error_code {
                *inner.error_codes.entry(code.to_owned()).or_default() += 1;
            }
            if outcome.starts_with("429") {
                inner.throttled += 1;
            }
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    /// Adds per-finding outcomes of one `BatchUpdateFindings`.
    pub(crate) fn finding_outcomes<'a>(&self, codes: impl IntoIterator<Item = (&'a str, u64)>) {
        let mut g = self.lock();
        for (code, n) in codes {
            if n > 0 {
                *g.1.finding_outcomes.entry(code.to_owned()).or_default() += n;
            }
        }
    }

    /// Adds per-finding outcomes of one `BatchUpdateFindingsV2`.
    pub(crate) fn v2_finding_outcomes<'a>(&self, codes: impl IntoIterator<Item = (&'a str, u64)>) {
        let mut g = self.lock();
        for (code, n) in codes {
            if n > 0 {
                *g.1.v2_finding_outcomes.entry(code.to_owned()).or_default() += n;
            }
        }
    }

    /// Adds per-finding outcomes of one `BatchImportFindings`.
    pub(crate) fn import_outcomes<'a>(&self, codes: impl IntoIterator<Item = (&'a str, u64)>) {
        let mut g = self.lock();
        for (code, n) in codes {
            if n > 0 {
                *g.1.import_outcomes.entry(code.to_owned()).or_default() += n;
            }
        }
    }

    pub(crate) fn unknown_route(&self) {
        self.lock().1.unknown_routes += 1;
    }

    pub(crate) fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Zeroes everything except the in-flight gauge (requests being handled
    /// now will still finish and decrement it).
    pub(crate) fn reset(&self) {
        let mut g = self.lock();
        *g = (Instant::now(), Inner::default());
        self.max_in_flight
            .store(self.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    pub(crate) fn snapshot(&self) -> Counters {
        let g = self.lock();
        let (epoch, inner) = &*g;
        let elapsed = epoch.elapsed();
        let mut c = Counters {
            error_codes: inner.error_codes.clone(),
            throttled: inner.throttled,
            finding_outcomes: inner.finding_outcomes.clone(),
            v2_finding_outcomes: inner.v2_finding_outcomes.clone(),
            import_outcomes: inner.import_outcomes.clone(),
            unknown_routes: inner.unknown_routes,
            in_flight: self.in_flight.load(Ordering::SeqCst),
            max_in_flight: self.max_in_flight.load(Ordering::SeqCst),
            elapsed_seconds: elapsed.as_secs_f64(),
            ..Counters::default()
        };
        for op in Operation::ALL {
            let i = op.index();
            if inner.requests[i] > 0 {
                c.requests.insert(op, inner.requests[i]);
                c.outcomes.insert(op, inner.outcomes[i].clone());
                c.requests_per_second
                    .insert(op, per_second(&inner.arrivals[i], elapsed));
            }
        }
        c
    }

    /// Arrival offsets (since the last reset) of every request for `op`.
    pub(crate) fn arrivals(&self, op: Operation) -> Vec<Duration> {
        self.lock().1.arrivals[op.index()]
            .iter()
            .map(|&n| Duration::from_nanos(n))
            .collect()
    }

    pub(crate) fn max_in_window(&self, op: Operation, window: Duration) -> u64 {
        let g = self.lock();
        max_in_window(&g.1.arrivals[op.index()], window.as_nanos() as u64)
    }
}

fn per_second(arrivals: &[u64], elapsed: Duration) -> Vec<u64> {
    let mut v = vec![0u64; elapsed.as_secs() as usize + 1];
    for &a in arrivals {
        let s = (a / 1_000_000_000) as usize;
        if s >= v.len() {
            v.resize(s + 1, 0);
        }
        v[s] += 1;
    }
    v
}

/// The largest number of arrivals within any half-open window `[t, t + w)`.
fn max_in_window(sorted: &[u64], window: u64) -> u64 {
    let mut best = 0usize;
    let mut lo = 0usize;
    for hi in 0..sorted.len() {
        while sorted[hi] - sorted[lo] >= window {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_maximum_counts_half_open_windows() {
        let s = [0, 100, 200, 1_000, 1_050, 1_099, 5_000];
        assert_eq!(max_in_window(&s, 100), 3); // 1000, 1050, 1099
        assert_eq!(max_in_window(&s, 101), 3);
        assert_eq!(max_in_window(&s, 900), 4); // [200, 1100)
        assert_eq!(max_in_window(&s, 1_000), 5); // [100, 1100)
        assert_eq!(max_in_window(&s, 10_000), 7);
        assert_eq!(max_in_window(&[], 10), 0);
    }

    #[test]
    fn per_second_buckets_cover_elapsed_time() {
        let v = per_second(
            &[0, 999_999_999, 1_000_000_000, 3_500_000_000],
            Duration::from_secs(4),
        );
        assert_eq!(v, vec![2, 1, 0, 1, 0]);
    }

    #[test]
    fn snapshot_reports_outcomes_and_in_flight() {
        let c = CounterState::new();
        c.arrived(Operation::GetFindings);
        c.arrived(Operation::GetFindings);
        assert_eq!(c.snapshot().in_flight, 2);
        c.finished(Operation::GetFindings, "200", None);
        c.finished(
            Operation::GetFindings,
            "429 LimitExceededException",
            Some("LimitExceededException"),
        );
        let s = c.snapshot();
        assert_eq!(s.requests_for(Operation::GetFindings), 2);
        assert_eq!(s.outcome(Operation::GetFindings, "200"), 1);
        assert_eq!(s.throttled, 1);
        assert_eq!(s.error_code("LimitExceededException"), 1);
        assert_eq!((s.in_flight, s.max_in_flight), (0, 2));
        c.reset();
        assert_eq!(c.snapshot().requests_for(Operation::GetFindings), 0);
        assert_eq!(c.snapshot().max_in_flight, 0);
    }
}
