//! The engine: from a stream of input records to one outcome per record.
//!
//! Stages and where they run:
//! 1. **Reading** (a dedicated OS thread): pulls [`SourceItem`]s from the
//!    input iterator (blocking I/O), drops duplicate identifiers (a 64-bit
//!    fingerprint per finding, see [`crate::dedup::DedupIndex`]) and feeds a bounded channel,
//!    so backpressure reaches the file.
//! 2. **Dispatching** (one async task, [`run`]): owns every finding in memory.
//!    Findings are queued per Region (taken from the ProductArn, or
//!    `--region`); each Region has its own
//!    [`RegionLimiter`](crate::limits::RegionLimiter) and queues.
//!    Chunks of at most 100 distinct findings are formed only when a request
//!    can leave *now* (a concurrency slot is free and the limiter granted a
//!    token), so retried findings that became ready meanwhile are rebatched
//!    with fresh ones instead of travelling as tiny requests.
//! 3. **Requests** (one spawned task each): [`Submitter::send`], then the
//!    result goes back to the dispatcher, which classifies every finding
//!    ([`crate::retry`]) and either records its final outcome or schedules
//!    it again after a backoff. Nothing sleeps holding a slot: backoffs are
//!    entries in a timer heap, not sleeping tasks.
//!
//! Invariants (tested): a finding is in exactly one place at a time (a queue,
//! the timer heap, or one request), so it is never in two requests in flight
//! at once; every record read ends in exactly one outcome.
//!
//! One file per stage: `intake` (the read side: duplicates, effective
//! decisions, note policy, `--skip-unchanged`), `chunker` (per-Region
//! queues and decision groups), `queue` (the retry timer heap), `dispatch`
//! (the dispatcher loop and sending), `complete` (handling a request's
//! answer) and `stop` (graceful stop and abort, one drain for both). This
//! file holds the configuration and [`run`].

mod chunker;
mod complete;
mod dispatch;
mod intake;
mod operation;
mod queue;
mod stop;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::decision::{Decision, NoteMode};
use crate::events::EventSink;
use crate::limits::RateConfig;
use crate::model::{FindingKey, Location, OutcomeKind, SourceItem};
use crate::reporting::{Outcome, OutcomeSink, RunSummary};
use crate::retry::Backoff;
use crate::submission::{BatchUpdateFindings, Submitter};

pub(crate) use intake::Admitted;
pub(crate) use intake::Intake;
pub(crate) use intake::RUN_TAG_KEY;
pub use intake::RowChoices;
#[cfg(test)]
pub(crate) use intake::UNKNOWN_REGION;
pub(crate) use intake::route;
pub(crate) use intake::unknown_region;
pub(crate) use intake::with_run_tag;
pub use operation::Reported;
pub use operation::UpdateOperation;
pub use stop::RunControls;
pub use stop::STOPPED_CODE;
pub use stop::StopHandle;
pub use stop::StopRequest;

use dispatch::Dispatcher;
use intake::{ReaderMsg, read_input};

/// The target of the engine's log events, whichever file emits them (logs
/// are filtered and read by it).
const LOG_TARGET: &str = "sechub_triage::engine";

/// The most identifiers `BatchUpdateFindings` takes in one call.
pub(crate) const MAX_CHUNK: usize = 100;
/// Default attempts per finding before a retryable error becomes final.
pub(crate) const DEFAULT_MAX_ATTEMPTS: u32 = 8;
/// Default throttled responses a finding may see before it is given up.
pub(crate) const DEFAULT_MAX_THROTTLED: u32 = 50;
/// Default number of findings held in memory (queued, waiting or in flight).
pub(crate) const DEFAULT_READ_AHEAD: usize = 20_000;
/// Default bound on partially filled decision groups per Region.
pub(crate) const DEFAULT_MAX_OPEN_GROUPS: usize = 256;
/// How long a partial chunk may wait for more findings (fresh ones from the
/// input, or retries coming out of their backoff) before it is sent: a
/// request is the scarce resource, so it should leave full.
pub(crate) const DEFAULT_LINGER: Duration = Duration::from_millis(250);

/// Errors from the input, as the engine sees them.
pub type InputError = Box<dyn std::error::Error + Send + Sync + 'static>;
/// The input: any iterator of records (run on its own thread).
pub type Input = Box<dyn Iterator<Item = Result<SourceItem, InputError>> + Send + 'static>;

/// How the engine paces and retries.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Quota per Region.
    pub rate: RateConfig,
    /// Requests in flight per Region at most.
    pub concurrency: usize,
    /// Attempts per finding for retryable errors.
    pub max_attempts: u32,
    /// Throttled responses per finding before giving up on it.
    pub max_throttled: u32,
    /// Findings held in memory at once.
    pub read_ahead: usize,
    /// Backoff curves.
    pub backoff: Backoff,
    /// Send everything to this Region (the aggregation Region case).
    pub region_override: Option<String>,
    /// Seed for backoff jitter (reproducible runs); random when `None`.
    pub seed: Option<u64>,
    /// Partial-chunk linger.
    pub linger: Duration,
    /// Skip findings whose recorded state already holds the decision.
    pub skip_unchanged: bool,
    /// What a decision's note does to a finding that already has one.
    pub note_mode: NoteMode,
    /// `--run-tag`: written into every finding's `UserDefinedFields` under
    /// [`RUN_TAG_KEY`], whatever per-row decisions say.
    pub run_tag: Option<String>,
    /// Decision groups a Region may hold partially filled at once; reading
    /// pauses above it until the oldest groups are flushed.
    pub max_open_groups: usize,
    /// What to do with rows naming one finding with different decisions.
    pub duplicates: DuplicatePolicy,
    /// The rows chosen for findings that several rows name: the last row
    /// of a conflicting finding under `--duplicates last`, the row with the
    /// newest recorded state. Found by a pass over the whole input before
    /// the plan ([`RowChoices::find`]). Without it, `Last` cannot be
    /// applied (the plan refuses such rows as conflicts) and a finding's
    /// first row gives its recorded state.
    pub row_choices: Option<Arc<RowChoices>>,
    /// Consecutive requests in one Region that may fail for reasons that
    /// say nothing about their findings (connection refused or reset,
    /// timeouts, 5xx after the SDK's answer) before the run stops with
    /// work left (exit status 4, "resume later"); 0 never stops.
    pub breaker: u32,
    /// How long requests in flight have to come back after the breaker
    /// stops the run.
    pub breaker_grace: Duration,
    /// Validation rules for every effective decision
    /// (`--allow-unknown-type-namespaces`).
    pub rules: crate::decision::Rules,
}

/// `--duplicates`: rows that name one finding with different effective
/// decisions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DuplicatePolicy {
    /// A conflict: the plan refuses the run, naming the rows (the engine on
    /// its own sends the first and records the others as not sent).
    #[default]
    Refuse,
    /// The first row's decision is applied; the others are not sent.
    First,
    /// The last row's decision is applied; the earlier ones are not sent
    /// (needs [`EngineConfig::row_choices`]).
    Last,
}

/// Default [`EngineConfig::breaker`]: this many requests in a row failing
/// in one Region means the endpoint or the network is down, not that a
/// few requests were unlucky (each was already retried with backoff).
pub(crate) const DEFAULT_BREAKER: u32 = 10;

impl Default for EngineConfig {
    fn default() -> Self {
        let rate = RateConfig::DOCUMENTED;
        EngineConfig {
            rate,
            concurrency: default_concurrency(rate),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            max_throttled: DEFAULT_MAX_THROTTLED,
            read_ahead: DEFAULT_READ_AHEAD,
            backoff: Backoff::default(),
            region_override: None,
            seed: None,
            linger: DEFAULT_LINGER,
            skip_unchanged: false,
            note_mode: NoteMode::Replace,
            run_tag: None,
            max_open_groups: DEFAULT_MAX_OPEN_GROUPS,
            duplicates: DuplicatePolicy::Refuse,
            row_choices: None,
            breaker: DEFAULT_BREAKER,
            breaker_grace: Duration::from_secs(5),
            rules: crate::decision::Rules::default(),
        }
    }
}

/// Enough requests in flight that the quota, not latency, is the limit: the
/// whole burst at once, plus two seconds of the sustained rate.
pub(crate) fn default_concurrency(rate: RateConfig) -> usize {
    (rate.burst as usize + (rate.rate * 2.0).ceil() as usize).clamp(1, 1000)
}

/// Why a run could not happen at all.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Writing an outcome failed; the run stops because outcomes would be lost.
    #[error("cannot record outcomes")]
    Output(#[source] std::io::Error),
}

/// Runs a whole job: reads `input`, applies `decision` to every finding, and
/// records one outcome per record into every sink. Returns the totals.
pub async fn run(
    config: &EngineConfig,
    input: Input,
    decision: Arc<Decision>,
    submitter: Arc<Submitter>,
    sinks: Vec<Box<dyn OutcomeSink>>,
    events: Arc<dyn EventSink>,
) -> Result<RunSummary, EngineError> {
    run_with(
        config,
        input,
        decision,
        submitter,
        sinks,
        events,
        RunControls::default(),
    )
    .await
}

/// [`run`], stoppable, and skipping what earlier runs settled (`controls`).
pub async fn run_with(
    config: &EngineConfig,
    input: Input,
    decision: Arc<Decision>,
    submitter: Arc<Submitter>,
    sinks: Vec<Box<dyn OutcomeSink>>,
    events: Arc<dyn EventSink>,
    controls: RunControls,
) -> Result<RunSummary, EngineError> {
    let operation = Arc::new(BatchUpdateFindings::new(submitter));
    run_operation(config, input, decision, operation, sinks, events, controls).await
}

/// [`run_with`] for any update operation: the job's `decision` and the
/// input's records, as the intake reads them, are turned into `O`'s
/// requests by `O` ([`UpdateOperation::admit`]).
pub async fn run_operation<O: UpdateOperation>(
    config: &EngineConfig,
    input: Input,
    decision: Arc<Decision>,
    operation: Arc<O>,
    sinks: Vec<Box<dyn OutcomeSink>>,
    events: Arc<dyn EventSink>,
    controls: RunControls,
) -> Result<RunSummary, EngineError> {
    let started = Instant::now();
    tracing::info!(
        target: LOG_TARGET,
        rate = config.rate.rate,
        burst = config.rate.burst,
        concurrency = config.concurrency,
        max_attempts = config.max_attempts,
        region = config
            .region_override
            .as_deref()
            .unwrap_or("from ProductArn"),
        "run started"
    );
    let (tx, rx) = mpsc::channel::<Vec<ReaderMsg>>(64);
    let reader = std::thread::Builder::new()
        .name("sechub-triage-reader".into())
        .spawn({
            let intake = Intake::new(&decision, config);
            let prior = controls.prior.clone();
            move || read_input(input, tx, intake, prior)
        })
        .map_err(EngineError::Output)?;

    let mut d = Dispatcher::new(config, operation, events, sinks, &controls);
    let result = d.run_loop(rx).await;
    // The reader ends by itself once the channel is dropped (it was, with
    // `rx`). After a stop it is not waited for: it may be blocked reading
    // a slow pipe, and what it reads now is not used.
    if d.stopping.is_none() {
        let _ = reader.join();
    }
    result?;
    d.tally.finish().map_err(EngineError::Output)?;
    let mut summary = d.tally.into_summary();
    summary.requests = d.requests;
    summary.throttled = d.throttled;
    summary.retries = d.retries;
    summary.elapsed = started.elapsed();
    summary.findings_per_second =
        summary.count(OutcomeKind::Updated) as f64 / summary.elapsed.as_secs_f64().max(1e-9);
    summary.aborted = d.aborted;
    summary.stopped = d.stopping.filter(|s| s.left_work).map(|s| s.reason);
    tracing::info!(
        target: LOG_TARGET,
        records = summary.records,
        updated = summary.count(OutcomeKind::Updated),
        failed = summary.count(OutcomeKind::Failed),
        invalid = summary.count(OutcomeKind::Invalid),
        unchanged = summary.count(OutcomeKind::Unchanged),
        duplicate = summary.count(OutcomeKind::Duplicate),
        not_attempted = summary.count(OutcomeKind::NotAttempted),
        requests = summary.requests,
        throttled = summary.throttled,
        retries = summary.retries,
        elapsed_s = summary.elapsed.as_secs_f64(),
        aborted = summary.aborted.as_deref().unwrap_or(""),
        stopped = summary.stopped.as_deref().unwrap_or(""),
        "run finished"
    );
    Ok(summary)
}

/// An outcome with nothing sent: no attempts, no decision applied. The one
/// place an engine outcome is built ([`dispatch`] adds what a sent finding
/// carries).
fn outcome(
    location: Location,
    key: Option<FindingKey>,
    region: Option<Arc<str>>,
    kind: OutcomeKind,
    code: Option<String>,
    message: Option<String>,
) -> Outcome {
    Outcome {
        location,
        key,
        region,
        kind,
        code,
        message,
        attempts: 0,
        applied: None,
        prior: None,
        state: None,
    }
}

#[cfg(test)]
mod tests {
    use crate::dedup::DedupIndex;
    use crate::model::FindingKey;

    #[test]
    fn dedup_index_reports_repeats_only() {
        let mut d: DedupIndex = DedupIndex::default();
        let a = FindingKey::new("a", "p");
        assert!(d.insert(&a));
        assert!(!d.insert(&a));
        assert!(d.insert(&FindingKey::new("a", "q")));
        // The boundary between Id and ProductArn matters.
        assert!(d.insert(&FindingKey::new("ab", "c")));
        assert!(d.insert(&FindingKey::new("a", "bc")));
        assert_eq!(d.len(), 4);
    }
}
