//! The engine: from a stream of input records to one outcome per record.
//!
//! Stages and where they run:
//! 1. **Reading** (a dedicated OS thread): pulls [`SourceItem`]s from the
//!    input iterator (blocking I/O), drops duplicate identifiers (a 64-bit
//!    fingerprint per finding, see [`DedupIndex`]) and feeds a bounded channel,
//!    so backpressure reaches the file.
//! 2. **Dispatching** (one async task, [`run`]): owns every finding in memory.
//!    Findings are queued per Region (taken from the ProductArn, or
//!    `--region`); each Region has its own [`RegionLimiter`] and queues.
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

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::{mpsc, watch};

use crate::decision::{Decision, NoteAction, NoteMode, apply_note_mode};
use crate::events::{Event, EventSink};
use crate::journal::{Done, Prior, RowChanged};
use crate::limits::{RateConfig, RegionLimiter};
use crate::model::{
    CurrentState, FindingKey, InvalidRecord, Location, OutcomeKind, SourceItem, SourceRecord,
};
use crate::reporting::{Outcome, OutcomeSink, RunSummary, Tally};
use crate::retry::{Backoff, Disposition, RetryClass, classify_call, classify_unprocessed};
use crate::submission::{BatchResult, CallError, Submitter};

/// The most identifiers `BatchUpdateFindings` takes in one call.
pub const MAX_CHUNK: usize = 100;
/// Default attempts per finding before a retryable error becomes final.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;
/// Default throttled responses a finding may see before it is given up.
pub const DEFAULT_MAX_THROTTLED: u32 = 50;
/// Default number of findings held in memory (queued, waiting or in flight).
pub const DEFAULT_READ_AHEAD: usize = 20_000;
/// Default bound on partially filled decision groups per Region.
pub const DEFAULT_MAX_OPEN_GROUPS: usize = 256;
/// How long a partial chunk may wait for more findings (fresh ones from the
/// input, or retries coming out of their backoff) before it is sent: a
/// request is the scarce resource, so it should leave full.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(250);

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
}

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
        }
    }
}

/// Enough requests in flight that the quota, not latency, is the limit: the
/// whole burst at once, plus two seconds of the sustained rate.
pub fn default_concurrency(rate: RateConfig) -> usize {
    (rate.burst as usize + (rate.rate * 2.0).ceil() as usize).clamp(1, 1000)
}

/// Why a run could not happen at all.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Writing an outcome failed; the run stops because outcomes would be lost.
    #[error("cannot record outcomes")]
    Output(#[source] std::io::Error),
}

/// The error code of findings a graceful stop left unsent (`not_attempted`).
pub const STOPPED_CODE: &str = "Stopped";

/// A request to stop a run early: why, and how long requests in flight may
/// take to finish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StopRequest {
    /// For the summary and the results (`SIGTERM received`, ...).
    pub reason: String,
    /// Requests in flight have this long to come back; findings of those
    /// still out then are recorded `not_attempted` (they may have been
    /// applied: a resumed run sends them again, which is harmless).
    pub grace: Duration,
}

/// Stops a running engine gracefully: no new request leaves, findings not
/// yet sent are recorded `not_attempted` with code [`STOPPED_CODE`], input
/// not yet read stays unread, and requests in flight get a grace period.
/// Cheap to clone; the first stop wins.
#[derive(Clone, Debug)]
pub struct StopHandle(Arc<watch::Sender<Option<StopRequest>>>);

impl Default for StopHandle {
    fn default() -> Self {
        StopHandle(Arc::new(watch::channel(None).0))
    }
}

impl StopHandle {
    /// A handle no one has stopped yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the run to stop. Returns false if a stop was already asked.
    pub fn stop(&self, reason: impl Into<String>, grace: Duration) -> bool {
        let req = StopRequest {
            reason: reason.into(),
            grace,
        };
        self.0.send_if_modified(|cur| {
            if cur.is_some() {
                return false;
            }
            *cur = Some(req);
            true
        })
    }

    /// The stop asked for, if any.
    pub fn requested(&self) -> Option<StopRequest> {
        self.0.borrow().clone()
    }

    fn subscribe(&self) -> watch::Receiver<Option<StopRequest>> {
        self.0.subscribe()
    }
}

/// What a run takes besides its configuration: a way to stop it, and what
/// earlier runs on the same journal already settled (`--resume`).
#[derive(Clone, Debug, Default)]
pub struct RunControls {
    /// Stops the run gracefully.
    pub stop: Option<StopHandle>,
    /// Rows with a final outcome in the journal: skipped, not recorded again.
    pub prior: Option<Arc<Done>>,
}

pub use crate::dedup::DedupIndex;

/// What the reading thread sends to the dispatcher.
enum ReaderMsg {
    /// A record to send, with its effective decision and what to say about
    /// its note in the results.
    Record(SourceRecord, Arc<Decision>, Option<Cow<'static, str>>),
    Duplicate(SourceRecord),
    /// Not sent: nothing to change (see [`Admitted::Unchanged`]).
    Unchanged(SourceRecord, Cow<'static, str>),
    Invalid(InvalidRecord),
    Error(InputError),
    /// `--resume`: an earlier run recorded this row's final outcome.
    AlreadyDone(OutcomeKind),
}

/// What the read side decided about one input item.
#[derive(Debug)]
pub enum Admitted {
    /// To be sent.
    Send {
        /// The record.
        record: SourceRecord,
        /// The job's decision with the record's own fields over it, before
        /// the note policy: the decision group a plan reports.
        group: Arc<Decision>,
        /// What is sent: `group` after the note policy.
        decision: Arc<Decision>,
        /// What the note policy did.
        note: NoteAction,
        /// The export shows the finding already holds `decision` (it is sent
        /// anyway: `--skip-unchanged` is off).
        holds: bool,
    },
    /// Not sent: the export shows the finding already holds the decision
    /// (`--skip-unchanged`), or the note policy left nothing to send.
    Unchanged {
        /// The record.
        record: SourceRecord,
        /// As in [`Admitted::Send`].
        group: Arc<Decision>,
        /// What the note policy did.
        note: NoteAction,
        /// Why, for the results.
        message: Cow<'static, str>,
    },
    /// The same finding came earlier in the input.
    Duplicate(SourceRecord),
    /// Rejected: a bad row, or a per-row decision the service would refuse.
    Invalid(InvalidRecord),
}

/// The read side of a run, shared by [`run`] and by the plan
/// (`crate::plan`), so that a plan counts exactly what a run would do:
/// duplicate detection, each record's effective decision (job decision,
/// per-row fields, note policy) and `--skip-unchanged`. Pure: no I/O.
pub struct Intake {
    dedup: DedupIndex,
    interner: Interner,
    job: Arc<Decision>,
    skip_unchanged: bool,
    note_mode: NoteMode,
    run_tag: Option<String>,
}

/// The `UserDefinedFields` key of the run tag (`--run-tag`).
pub const RUN_TAG_KEY: &str = "sechub-triage-run";

/// `decision` with the run tag in its `UserDefinedFields`.
pub fn with_run_tag(mut decision: Decision, tag: &str) -> Decision {
    decision
        .user_defined_fields
        .get_or_insert_default()
        .insert(RUN_TAG_KEY.to_owned(), tag.to_owned());
    decision
}

impl Intake {
    /// The read side of a run of `config` applying `job`.
    pub fn new(job: &Decision, config: &EngineConfig) -> Self {
        let mut interner = Interner::default();
        let job = match &config.run_tag {
            Some(tag) => with_run_tag(job.clone(), tag),
            None => job.clone(),
        };
        let job = interner.intern(job);
        Intake {
            dedup: DedupIndex::default(),
            interner,
            job,
            skip_unchanged: config.skip_unchanged,
            note_mode: config.note_mode,
            run_tag: config.run_tag.clone(),
        }
    }

    /// Puts the run tag back into a decision whose `UserDefinedFields` a
    /// per-row decision replaced (fields merge whole).
    fn tag(
        &mut self,
        r: &SourceRecord,
        group: Arc<Decision>,
    ) -> Result<Arc<Decision>, Box<InvalidRecord>> {
        let Some(tag) = &self.run_tag else {
            return Ok(group);
        };
        let udf = group.user_defined_fields.as_ref();
        if udf.and_then(|m| m.get(RUN_TAG_KEY)) == Some(tag) {
            return Ok(group);
        }
        let d = with_run_tag((*group).clone(), tag);
        if let Err(e) = d.validate() {
            return Err(rejected_decision(
                r,
                "per-row decision with the run tag",
                &e,
            ));
        }
        Ok(self.interner.intern(d))
    }

    /// Decides what happens to one input item.
    pub fn admit(&mut self, item: SourceItem) -> Admitted {
        let r = match item {
            SourceItem::Record(r) => r,
            SourceItem::Invalid(i) => return Admitted::Invalid(i),
        };
        if !self.dedup.insert(&r.key) {
            return Admitted::Duplicate(r);
        }
        let group = match effective_decision(&self.job, &r, &mut self.interner) {
            Ok(d) => d,
            Err(invalid) => return Admitted::Invalid(*invalid),
        };
        let group = match self.tag(&r, group) {
            Ok(d) => d,
            Err(invalid) => return Admitted::Invalid(*invalid),
        };
        let current = r.current.as_deref();
        let (decision, note) = match apply_note_mode(&group, self.note_mode, current) {
            (None, note) => (group.clone(), note),
            (Some(d), note) if d.is_empty() => {
                let why = note.remark(self.note_mode).unwrap_or_default();
                return Admitted::Unchanged {
                    record: r,
                    group,
                    note,
                    message: Cow::Owned(format!(
                        "not sent: {why}, and the decision sets nothing else"
                    )),
                };
            }
            (Some(d), note) => (self.interner.intern(d), note),
        };
        let tag = self.run_tag.as_ref().map(|_| RUN_TAG_KEY);
        let holds = current.is_some_and(|c| decision_holds_but(&decision, c, tag));
        if holds && self.skip_unchanged {
            return Admitted::Unchanged {
                record: r,
                group,
                note,
                message: Cow::Borrowed(
                    "the export shows the finding already holds the decision; not sent",
                ),
            };
        }
        Admitted::Send {
            record: r,
            group,
            decision,
            note,
            holds,
        }
    }

    /// Counts `key` as seen, so that a later record of it is a duplicate
    /// (a resumed run skips rows that earlier runs settled, but their
    /// findings still come first).
    pub fn mark_seen(&mut self, key: &FindingKey) {
        self.dedup.insert(key);
    }

    /// The note policy in force.
    pub fn note_mode(&self) -> NoteMode {
        self.note_mode
    }
}

/// Why a record whose Region cannot be known is invalid.
pub const UNKNOWN_REGION: &str =
    "ProductArn is not a Security Hub product ARN, so its Region is unknown (give --region)";

/// The Region a finding's request goes to: `region_override` (`--region`),
/// else the Region of its ProductArn; `None` when neither is known.
pub fn route<'a>(region_override: Option<&'a str>, key: &'a FindingKey) -> Option<&'a str> {
    region_override.or_else(|| crate::arn::region_of(&key.product_arn))
}

/// Shares one `Arc` among records with equal effective decisions, so that a
/// file of a million rows carrying a handful of decisions holds a handful of
/// decisions. Bounded: it starts over when full (sharing is an optimisation;
/// grouping compares decisions by value).
#[derive(Default)]
struct Interner {
    map: HashMap<Decision, Arc<Decision>>,
}

impl Interner {
    const MAX: usize = 4096;

    fn intern(&mut self, d: Decision) -> Arc<Decision> {
        if let Some(a) = self.map.get(&d) {
            return a.clone();
        }
        if self.map.len() >= Self::MAX {
            self.map.clear();
        }
        let a = Arc::new(d.clone());
        self.map.insert(d, a.clone());
        a
    }
}

/// One finding on its way through the pipeline.
struct Item {
    location: Location,
    key: FindingKey,
    /// Its effective decision (shared by every finding that has it).
    decision: Arc<Decision>,
    /// Requests that carried it.
    attempts: u32,
    /// Retryable failures so far (throttles not included).
    failures: u32,
    /// Throttled responses so far.
    throttles: u32,
    /// What the results say about it once updated (the note policy's doing).
    remark: Option<Cow<'static, str>>,
    /// The finding's state as the input recorded it: once updated, the
    /// results keep what its decision's fields held before, so that the run
    /// can be reverted.
    current: Option<Arc<CurrentState>>,
}

/// Findings of one Region waiting to be sent with one decision.
#[derive(Default)]
struct Group {
    fresh: VecDeque<Item>,
    ready: VecDeque<Item>,
    /// Since when findings have been waiting for this group's chunk to fill.
    waiting_since: Option<Instant>,
}

impl Group {
    fn available(&self) -> usize {
        self.fresh.len() + self.ready.len()
    }
}

struct RegionState {
    name: Arc<str>,
    limiter: RegionLimiter,
    /// Waiting findings by effective decision: a request carries one
    /// decision, so findings are chunked within their group.
    groups: HashMap<Arc<Decision>, Group>,
    /// Findings in `groups`.
    available: usize,
    /// Chunks that must travel exactly as they are (halves of a request
    /// rejected as invalid, lone resends).
    pinned: VecDeque<Vec<Item>>,
    in_flight: usize,
    /// Findings of this Region in the timer heap.
    delayed: usize,
}

/// What a Region can send next.
enum Next {
    /// A pinned chunk, or a group's chunk (`None` = pinned).
    Send(Option<Arc<Decision>>),
    /// Nothing yet; look again at this time (if any).
    Wait(Option<Instant>),
}

impl RegionState {
    fn new(name: Arc<str>, rate: RateConfig) -> Self {
        RegionState {
            name,
            limiter: RegionLimiter::new(rate),
            groups: HashMap::new(),
            available: 0,
            pinned: VecDeque::new(),
            in_flight: 0,
            delayed: 0,
        }
    }

    fn has_work(&self) -> bool {
        !self.pinned.is_empty() || self.available > 0
    }

    /// Queues a finding in its decision group (retries go first in line).
    fn push(&mut self, item: Item, retry: bool, now: Instant) {
        let group = self.groups.entry(item.decision.clone()).or_default();
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
    fn next(&self, now: Instant, linger: Duration, more_may_join: bool, max_open: usize) -> Next {
        if !self.pinned.is_empty() {
            return Next::Send(None);
        }
        let mut oldest: Option<(&Arc<Decision>, Instant)> = None;
        for (d, g) in &self.groups {
            if g.available() >= MAX_CHUNK {
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
    fn take(&mut self, which: Option<&Arc<Decision>>, now: Instant) -> Vec<Item> {
        let Some(d) = which else {
            return self.pinned.pop_front().unwrap_or_default();
        };
        let Some(group) = self.groups.get_mut(d) else {
            return Vec::new();
        };
        let mut chunk = Vec::with_capacity(MAX_CHUNK.min(group.available()));
        while chunk.len() < MAX_CHUNK {
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
    fn drain(&mut self) -> Vec<Item> {
        let mut out: Vec<Item> = self.pinned.drain(..).flatten().collect();
        for (_, g) in self.groups.drain() {
            out.extend(g.ready);
            out.extend(g.fresh);
        }
        self.available = 0;
        out
    }
}

struct Delayed {
    at: Instant,
    seq: u64,
    region: usize,
    item: Item,
}

impl PartialEq for Delayed {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Delayed {}
impl PartialOrd for Delayed {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Delayed {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

struct Completion {
    /// The request number (the dispatcher holds its findings).
    id: u64,
    sent_at: Instant,
    result: Result<BatchResult, CallError>,
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
    let started = Instant::now();
    tracing::info!(
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

    let mut d = Dispatcher {
        config: config.clone(),
        submitter,
        events,
        tally: Tally::new(sinks),
        regions: Vec::new(),
        region_index: HashMap::new(),
        delayed: BinaryHeap::new(),
        seq: 0,
        held: 0,
        records_read: 0,
        input_done: false,
        aborted: None,
        rng: match config.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_os_rng(),
        },
        requests: 0,
        throttled: 0,
        retries: 0,
        stop: controls.stop.as_ref().map(StopHandle::subscribe),
        stopping: None,
        in_flight: HashMap::new(),
        next_request: 0,
    };
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

/// A record whose merged decision breaks a rule of the service: invalid,
/// naming the member at fault.
fn rejected_decision(
    r: &SourceRecord,
    what: &str,
    e: &crate::decision::DecisionError,
) -> Box<InvalidRecord> {
    Box::new(InvalidRecord {
        location: r.location.clone(),
        column: Some(e.path().to_owned()),
        reason: format!("{what}: {e}"),
        key: Some(r.key.clone()),
    })
}

/// The job's decision with the record's own decision fields over it.
fn effective_decision(
    job: &Arc<Decision>,
    r: &SourceRecord,
    interner: &mut Interner,
) -> Result<Arc<Decision>, Box<InvalidRecord>> {
    let Some(own) = &r.decision else {
        if job.is_empty() {
            return Err(Box::new(InvalidRecord {
                location: r.location.clone(),
                column: None,
                reason: "nothing to update: the command line sets no decision (--workflow, --note, ...) \
                         and this row has no per-row decision values"
                    .into(),
                key: Some(r.key.clone()),
            }));
        }
        return Ok(job.clone());
    };
    let mut d = (**job).clone();
    let mut own = (**own).clone();
    // A row may give only Note.Text or only Note.UpdatedBy: the other half
    // comes from the command line's note, or the row cannot be sent.
    if let Some(note) = &mut own.note
        && (note.text.is_empty() || note.updated_by.is_empty())
    {
        let (missing, column) = if note.text.is_empty() {
            ("text", "Note.Text")
        } else {
            ("UpdatedBy", "Note.UpdatedBy")
        };
        let Some(job_note) = &job.note else {
            return Err(Box::new(InvalidRecord {
                location: r.location.clone(),
                column: Some(column.to_owned()),
                reason: format!(
                    "per-row decision: the row sets a note but not its {missing}, and the command line has no \
                     --note to take it from (add a {column} column, or give --note)"
                ),
                key: Some(r.key.clone()),
            }));
        };
        if note.text.is_empty() {
            note.text.clone_from(&job_note.text);
        } else {
            note.updated_by.clone_from(&job_note.updated_by);
        }
    }
    d.merge_from(own);
    if let Err(e) = d.validate() {
        return Err(rejected_decision(r, "per-row decision", &e));
    }
    Ok(interner.intern(d))
}

/// Whether the recorded state already holds every field the decision sets.
/// A field the export did not record counts as "not known to hold".
pub fn decision_holds(d: &Decision, cur: &CurrentState) -> bool {
    decision_holds_but(d, cur, None)
}

/// [`decision_holds`], not counting the `UserDefinedFields` key `ignore`
/// (the run tag: a finding already in the requested state is not sent
/// just to be tagged).
pub fn decision_holds_but(d: &Decision, cur: &CurrentState, ignore: Option<&str>) -> bool {
    fn eq<T: PartialEq>(want: Option<T>, have: Option<T>) -> bool {
        want.is_none() || (have.is_some() && want == have)
    }
    let note_holds = d.note.as_ref().is_none_or(|n| {
        cur.note_text.as_deref() == Some(n.text.as_str())
            && cur.note_updated_by.as_deref() == Some(n.updated_by.as_str())
    });
    let severity_holds = d.severity.as_ref().is_none_or(|s| {
        let label = s.label.or_else(|| {
            s.normalized
                .and_then(crate::decision::SeverityLabel::from_normalized)
        });
        s.product.is_none()
            && label.is_some()
            && cur.severity_label.as_deref() == label.map(|l| l.as_str())
    });
    let udf_holds = d.user_defined_fields.as_ref().is_none_or(|want| {
        let mut wanted = want
            .iter()
            .filter(|(k, _)| Some(k.as_str()) != ignore)
            .peekable();
        if !want.is_empty() && wanted.peek().is_none() {
            // Only the ignored key.
            return true;
        }
        cur.user_defined_fields
            .as_ref()
            .is_some_and(|have| wanted.all(|(k, v)| have.get(k) == Some(v)))
    });
    note_holds
        && severity_holds
        && udf_holds
        && eq(
            d.workflow.as_ref().map(|w| w.status.as_str()),
            cur.workflow_status.as_deref(),
        )
        && eq(d.verification_state.map(|v| v.as_str()), cur.verification_state.as_deref())
        && eq(d.confidence, cur.confidence)
        && eq(d.criticality, cur.criticality)
        && eq(d.types.as_ref(), cur.types.as_ref())
        // The export never records RelatedFindings in a comparable form.
        && d.related_findings.is_none()
}

/// Runs on the reading thread: takes each item through the [`Intake`] and
/// sends the messages in batches.
fn read_input(
    input: Input,
    tx: mpsc::Sender<Vec<ReaderMsg>>,
    mut intake: Intake,
    prior: Option<Arc<Done>>,
) {
    const BATCH: usize = 256;
    let mode = intake.note_mode();
    let mut batch = Vec::with_capacity(BATCH);
    for item in input {
        // `--resume`: rows an earlier run settled are skipped, but their
        // findings count as seen, so later records of them stay duplicates.
        if let (Some(prior), Ok(item)) = (&prior, &item) {
            let (location, key) = match item {
                SourceItem::Record(r) => (&r.location, Some(&r.key)),
                SourceItem::Invalid(i) => (&i.location, i.key.as_ref()),
            };
            let record_key = matches!(item, SourceItem::Record(_))
                .then_some(key)
                .flatten();
            match prior.check(location, key) {
                Prior::New => {}
                Prior::Done(kind) => {
                    if let Some(k) = record_key {
                        intake.mark_seen(k);
                    }
                    batch.push(ReaderMsg::AlreadyDone(kind));
                    if batch.len() >= BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                        if tx.blocking_send(full).is_err() {
                            return;
                        }
                    }
                    continue;
                }
                Prior::FindingDone => {
                    if let Some(k) = record_key {
                        intake.mark_seen(k);
                    }
                }
                Prior::Changed => {
                    let location = location.clone();
                    batch.push(ReaderMsg::Error(Box::new(RowChanged { location })));
                    break;
                }
            }
        }
        let msg = match item {
            Ok(item) => match intake.admit(item) {
                Admitted::Send {
                    record,
                    decision,
                    note,
                    ..
                } => ReaderMsg::Record(record, decision, note.remark(mode)),
                Admitted::Unchanged {
                    record, message, ..
                } => ReaderMsg::Unchanged(record, message),
                Admitted::Duplicate(r) => ReaderMsg::Duplicate(r),
                Admitted::Invalid(i) => ReaderMsg::Invalid(i),
            },
            Err(e) => {
                batch.push(ReaderMsg::Error(e));
                break;
            }
        };
        batch.push(msg);
        if batch.len() >= BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            if tx.blocking_send(full).is_err() {
                return;
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(batch);
    }
}

struct Dispatcher {
    config: EngineConfig,
    submitter: Arc<Submitter>,
    events: Arc<dyn EventSink>,
    tally: Tally,
    regions: Vec<RegionState>,
    region_index: HashMap<Arc<str>, usize>,
    delayed: BinaryHeap<Reverse<Delayed>>,
    seq: u64,
    /// Findings in queues, timers or requests.
    held: usize,
    records_read: u64,
    input_done: bool,
    aborted: Option<String>,
    rng: StdRng,
    requests: u64,
    throttled: u64,
    retries: u64,
    /// Where a stop request comes from (`None` once the sender is gone).
    stop: Option<watch::Receiver<Option<StopRequest>>>,
    /// Set once a stop was asked for.
    stopping: Option<Stopping>,
    /// The findings of each request in flight, by request number: a
    /// finding in flight is here, in exactly one entry.
    in_flight: HashMap<u64, (usize, Vec<Item>)>,
    next_request: u64,
}

/// A graceful stop under way.
struct Stopping {
    reason: String,
    /// The results message of findings written off.
    message: String,
    /// Requests still in flight then are written off.
    deadline: Instant,
    /// Work was left undone: input unread, or findings not sent.
    left_work: bool,
}

impl Dispatcher {
    async fn run_loop(
        &mut self,
        mut rx: mpsc::Receiver<Vec<ReaderMsg>>,
    ) -> Result<(), EngineError> {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Completion>();
        let mut pending_batches: VecDeque<ReaderMsg> = VecDeque::new();
        let mut channel_open = true;
        // A stop asked before the run began applies at once.
        let early = self
            .stop
            .as_mut()
            .and_then(|s| s.borrow_and_update().clone());
        if let Some(req) = early {
            self.begin_stop(req, &mut rx, &mut pending_batches, &mut channel_open)?;
        }
        loop {
            // Take in input while there is room.
            while self.has_room() {
                if let Some(msg) = pending_batches.pop_front() {
                    self.accept(msg)?;
                    continue;
                }
                if !channel_open {
                    break;
                }
                match rx.try_recv() {
                    Ok(batch) => pending_batches.extend(batch),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        channel_open = false;
                    }
                }
            }
            if !channel_open && pending_batches.is_empty() && !self.input_done {
                self.input_done = true;
                self.events.emit(&Event::InputFinished {
                    records: self.records_read,
                });
            }

            let now = Instant::now();
            self.release_due(now);
            let next_wake = self.dispatch(now, &done_tx);

            if self.input_done && self.held == 0 {
                return Ok(());
            }
            let want_input = channel_open && pending_batches.is_empty() && self.has_room();
            let watch_stop = self.stopping.is_none() && self.stop.is_some();
            let deadline = self.stopping.as_ref().map(|s| s.deadline);
            tokio::select! {
                Some(c) = done_rx.recv() => {
                    self.complete(c)?;
                    // Drain what else finished, then checkpoint once.
                    while let Ok(c) = done_rx.try_recv() {
                        self.complete(c)?;
                    }
                    self.tally.checkpoint().map_err(EngineError::Output)?;
                }
                batch = rx.recv(), if want_input => match batch {
                    Some(b) => pending_batches.extend(b),
                    None => channel_open = false,
                },
                _ = sleep_until(next_wake), if next_wake.is_some() => {}
                changed = stop_changed(&mut self.stop), if watch_stop => match changed {
                    Some(req) => {
                        self.begin_stop(req, &mut rx, &mut pending_batches, &mut channel_open)?;
                    }
                    None => self.stop = None,
                },
                _ = sleep_until(deadline), if deadline.is_some() => self.write_off_in_flight()?,
            }
        }
    }

    /// Starts a graceful stop: nothing more is read or sent; what was read
    /// and not sent is recorded `not_attempted`; requests in flight have
    /// until the grace period ends.
    fn begin_stop(
        &mut self,
        req: StopRequest,
        rx: &mut mpsc::Receiver<Vec<ReaderMsg>>,
        pending: &mut VecDeque<ReaderMsg>,
        channel_open: &mut bool,
    ) -> Result<(), EngineError> {
        tracing::info!(reason = %req.reason, grace_s = req.grace.as_secs_f64(), "stopping");
        self.events.emit(&Event::Aborting {
            reason: format!("stopping: {}", req.reason),
        });
        let input_left = !self.input_done;
        self.stopping = Some(Stopping {
            message: format!(
                "stopped before it was sent ({}); resume to send it",
                req.reason
            ),
            reason: req.reason,
            deadline: Instant::now() + req.grace,
            left_work: input_left,
        });
        // What the reader already handed over is recorded; the rest of the
        // input stays unread (a resumed run reads it).
        rx.close();
        while let Ok(batch) = rx.try_recv() {
            pending.extend(batch);
        }
        *channel_open = false;
        while let Some(msg) = pending.pop_front() {
            self.accept(msg)?;
        }
        self.input_done = true;
        let mut leftovers = Vec::new();
        for (idx, rs) in self.regions.iter_mut().enumerate() {
            leftovers.extend(rs.drain().into_iter().map(|i| (idx, i)));
            rs.delayed = 0;
        }
        leftovers.extend(self.delayed.drain().map(|Reverse(d)| (d.region, d.item)));
        for (idx, item) in leftovers {
            self.write_off(idx, item, None)?;
        }
        Ok(())
    }

    /// Records a finding as `not_attempted` because of the stop.
    fn write_off(
        &mut self,
        region: usize,
        item: Item,
        message: Option<String>,
    ) -> Result<(), EngineError> {
        let Some(s) = self.stopping.as_mut() else {
            return Ok(());
        };
        s.left_work = true;
        let message = message.unwrap_or_else(|| s.message.clone());
        let name = self.regions[region].name.clone();
        self.finish_item(
            item,
            &name,
            OutcomeKind::NotAttempted,
            Some(STOPPED_CODE.to_owned()),
            Some(message),
        )
    }

    /// The grace period is over: findings of requests still in flight are
    /// recorded `not_attempted` (their answers are not waited for).
    fn write_off_in_flight(&mut self) -> Result<(), EngineError> {
        let reason = self
            .stopping
            .as_ref()
            .map_or_else(String::new, |s| s.reason.clone());
        let message = format!(
            "still in flight when the grace period ended ({reason}): it may or may not have been \
             applied; resume to send it again"
        );
        let in_flight: Vec<(usize, Vec<Item>)> = self.in_flight.drain().map(|(_, v)| v).collect();
        for (region, items) in in_flight {
            self.regions[region].in_flight -= 1;
            for item in items {
                self.write_off(region, item, Some(message.clone()))?;
            }
        }
        Ok(())
    }

    /// Why no new request may leave, if none may: an abort, or a stop.
    /// Gives the code and message for findings recorded `not_attempted`.
    fn halted(&self) -> Option<(Option<String>, String)> {
        if let Some(reason) = &self.aborted {
            return Some((None, reason.clone()));
        }
        self.stopping
            .as_ref()
            .map(|s| (Some(STOPPED_CODE.to_owned()), s.message.clone()))
    }

    /// Whether more input may be taken in: memory bound (`read_ahead`)
    /// and open decision groups bound (`max_open_groups`).
    fn has_room(&self) -> bool {
        self.held < self.config.read_ahead
            && self
                .regions
                .iter()
                .all(|r| r.groups.len() < self.config.max_open_groups)
    }

    /// Takes one message from the reader.
    fn accept(&mut self, msg: ReaderMsg) -> Result<(), EngineError> {
        match msg {
            ReaderMsg::Record(r, decision, remark) => {
                self.count_read();
                let Some(region) =
                    route(self.config.region_override.as_deref(), &r.key).map(str::to_owned)
                else {
                    // Readers validate ARNs; this is a second line of defence.
                    return self.record(Outcome {
                        location: r.location,
                        key: Some(r.key),
                        region: None,
                        kind: OutcomeKind::Invalid,
                        code: Some("ProductArn".into()),
                        message: Some(UNKNOWN_REGION.into()),
                        attempts: 0,
                        applied: None,
                        prior: None,
                    });
                };
                let idx = self.region(&region);
                let remark = match (r.remark, remark) {
                    (Some(own), Some(note)) => Some(Cow::Owned(format!("{own}; {note}"))),
                    (Some(own), None) => Some(Cow::Owned(own.to_string())),
                    (None, note) => note,
                };
                let item = Item {
                    location: r.location,
                    key: r.key,
                    decision,
                    attempts: 0,
                    failures: 0,
                    throttles: 0,
                    remark,
                    current: r.current,
                };
                if let Some((code, reason)) = self.halted() {
                    // Never held: record directly.
                    if let Some(s) = self.stopping.as_mut() {
                        s.left_work = true;
                    }
                    let region = Some(self.regions[idx].name.clone());
                    return self.record(Outcome {
                        location: item.location,
                        key: Some(item.key),
                        region,
                        kind: OutcomeKind::NotAttempted,
                        code,
                        message: Some(reason),
                        attempts: 0,
                        applied: None,
                        prior: None,
                    });
                }
                self.regions[idx].push(item, false, Instant::now());
                self.held += 1;
            }
            ReaderMsg::Unchanged(r, message) => {
                self.count_read();
                self.record(Outcome {
                    location: r.location,
                    key: Some(r.key),
                    region: None,
                    kind: OutcomeKind::Unchanged,
                    code: None,
                    message: Some(message.into_owned()),
                    attempts: 0,
                    applied: None,
                    prior: None,
                })?;
            }
            ReaderMsg::Duplicate(r) => {
                self.count_read();
                self.record(Outcome {
                    location: r.location,
                    key: Some(r.key),
                    region: None,
                    kind: OutcomeKind::Duplicate,
                    code: None,
                    message: Some("same Id and ProductArn as an earlier record; sent once".into()),
                    attempts: 0,
                    applied: None,
                    prior: None,
                })?;
            }
            ReaderMsg::Invalid(i) => {
                self.count_read();
                self.record(Outcome {
                    location: i.location,
                    key: i.key,
                    region: None,
                    kind: OutcomeKind::Invalid,
                    code: i.column,
                    message: Some(i.reason),
                    attempts: 0,
                    applied: None,
                    prior: None,
                })?;
            }
            ReaderMsg::AlreadyDone(kind) => self.tally.already_done(kind),
            ReaderMsg::Error(e) => {
                let text = crate::submission::error_chain(&*e);
                tracing::warn!(error = %text, "input error: reading stopped");
                self.tally.summary_mut().input_error = Some(text.clone());
                self.events.emit(&Event::Aborting {
                    reason: format!("input error: {text}"),
                });
            }
        }
        Ok(())
    }

    fn count_read(&mut self) {
        self.records_read += 1;
        if self.records_read.is_multiple_of(1000) {
            self.events.emit(&Event::InputRead {
                records: self.records_read,
            });
        }
    }

    fn region(&mut self, name: &str) -> usize {
        if let Some(i) = self.region_index.get(name) {
            return *i;
        }
        let name: Arc<str> = name.into();
        let idx = self.regions.len();
        self.regions
            .push(RegionState::new(name.clone(), self.config.rate));
        self.region_index.insert(name, idx);
        idx
    }

    /// Moves findings whose backoff has elapsed back to their Region's queue.
    fn release_due(&mut self, now: Instant) {
        while self.delayed.peek().is_some_and(|d| d.0.at <= now) {
            let Some(Reverse(d)) = self.delayed.pop() else {
                break;
            };
            let rs = &mut self.regions[d.region];
            rs.delayed -= 1;
            rs.push(d.item, true, now);
        }
    }

    /// Sends every request that may leave now; returns when to look again.
    fn dispatch(
        &mut self,
        now: Instant,
        done: &mpsc::UnboundedSender<Completion>,
    ) -> Option<Instant> {
        let mut wake = self.delayed.peek().map(|d| d.0.at);
        let mut at = |t: Instant| wake = Some(wake.map_or(t, |w| w.min(t)));
        if self.halted().is_some() {
            return wake;
        }
        // A partial chunk waits (up to the linger) while more findings may
        // still join it: fresh ones from the input, or retries from the
        // timer heap or from requests in flight. Only when nothing can join
        // does it leave at once.
        let input_may_come = !self.input_done && self.has_room();
        for idx in 0..self.regions.len() {
            loop {
                let rs = &mut self.regions[idx];
                if rs.in_flight >= self.config.concurrency || !rs.has_work() {
                    break;
                }
                let more_may_join = input_may_come || rs.in_flight > 0 || rs.delayed > 0;
                let which = match rs.next(
                    now,
                    self.config.linger,
                    more_may_join,
                    self.config.max_open_groups,
                ) {
                    Next::Send(which) => which,
                    Next::Wait(due) => {
                        if let Some(due) = due {
                            at(due);
                        }
                        break;
                    }
                };
                if let Err(wait) = rs.limiter.try_acquire(now) {
                    at(now + wait);
                    break;
                }
                let chunk = rs.take(which.as_ref(), now);
                if chunk.is_empty() {
                    break;
                }
                rs.in_flight += 1;
                self.send(idx, chunk, done);
            }
        }
        wake
    }

    fn send(
        &mut self,
        region: usize,
        mut items: Vec<Item>,
        done: &mpsc::UnboundedSender<Completion>,
    ) {
        self.requests += 1;
        for it in &mut items {
            if it.attempts > 0 {
                self.retries += 1;
            }
            it.attempts += 1;
        }
        let name = self.regions[region].name.clone();
        self.events.emit(&Event::RequestSent {
            region: name.clone(),
            findings: items.len(),
        });
        let submitter = self.submitter.clone();
        // Every finding of a chunk has the same decision (chunks are cut from one group).
        let Some(decision) = items.first().map(|i| i.decision.clone()) else {
            return;
        };
        let done = done.clone();
        let events = self.events.clone();
        let keys: Vec<FindingKey> = items.iter().map(|i| i.key.clone()).collect();
        // The findings of a chunk may be on different attempts (retries
        // are rebatched with fresh findings): log the highest.
        let attempt = items.iter().map(|i| i.attempts).max().unwrap_or(1);
        let id = self.next_request;
        self.next_request += 1;
        self.in_flight.insert(id, (region, items));
        tokio::spawn(async move {
            let started = Instant::now();
            let result = submitter.send(&name, &decision, &keys).await;
            let latency = started.elapsed();
            match &result {
                Ok(r) => tracing::debug!(
                    region = %name,
                    request_id = r.request_id.as_deref().unwrap_or("-"),
                    chunk = keys.len(),
                    processed = r.processed.len(),
                    unprocessed = r.unprocessed.len(),
                    latency_ms = latency.as_millis() as u64,
                    attempt,
                    "BatchUpdateFindings answered"
                ),
                Err(e) => tracing::debug!(
                    region = %name,
                    request_id = e.request_id.as_deref().unwrap_or("-"),
                    chunk = keys.len(),
                    error_code = %e.code,
                    status = e.failure.status,
                    error = %e.message,
                    latency_ms = latency.as_millis() as u64,
                    attempt,
                    "BatchUpdateFindings failed"
                ),
            }
            events.emit(&Event::RequestFinished {
                region: name,
                findings: keys.len(),
                latency,
                error: result.as_ref().err().map(|e| e.code.clone()),
            });
            // The dispatcher outlives every request it spawned.
            let _ = done.send(Completion {
                id,
                sent_at: started,
                result,
            });
        });
    }

    /// Handles a finished request.
    fn complete(&mut self, c: Completion) -> Result<(), EngineError> {
        // Absent only if written off at the end of a stop's grace period.
        let Some((region, items)) = self.in_flight.remove(&c.id) else {
            return Ok(());
        };
        self.regions[region].in_flight -= 1;
        match c.result {
            Ok(result) => {
                self.regions[region].limiter.on_success();
                self.complete_ok(region, items, result)
            }
            Err(err) => self.complete_err(region, c.sent_at, items, err),
        }
    }

    fn complete_ok(
        &mut self,
        region: usize,
        items: Vec<Item>,
        result: BatchResult,
    ) -> Result<(), EngineError> {
        let processed: HashSet<&FindingKey> = result.processed.iter().collect();
        let unprocessed: HashMap<&FindingKey, (&str, &str)> = result
            .unprocessed
            .iter()
            .map(|(k, c, m)| (k, (c.as_str(), m.as_str())))
            .collect();
        for (_, code, _) in &result.unprocessed {
            *self
                .tally
                .summary_mut()
                .unprocessed_by_code
                .entry(code.clone())
                .or_default() += 1;
        }
        for item in items {
            if let Some((code, message)) = unprocessed.get(&item.key) {
                let (code, message) = (code.to_string(), message.to_string());
                match classify_unprocessed(&code) {
                    Disposition::Retry(class) => self.retry(region, item, class, code, message)?,
                    Disposition::ResendAlone => self.resend_alone(region, item, code, message)?,
                    _ => self.fail(region, item, code, message)?,
                }
            } else if processed.contains(&item.key) {
                let name = self.regions[region].name.clone();
                let remark = item.remark.clone().map(Cow::into_owned);
                self.finish_item(item, &name, OutcomeKind::Updated, None, remark)?;
            } else {
                // Neither processed nor unprocessed: the service said nothing
                // about it, so it may or may not be updated. Send it again.
                let msg = "the response did not mention this finding".to_owned();
                self.retry(
                    region,
                    item,
                    RetryClass::Transient,
                    "MissingFromResponse".into(),
                    msg,
                )?;
            }
        }
        Ok(())
    }

    fn complete_err(
        &mut self,
        region: usize,
        sent_at: Instant,
        items: Vec<Item>,
        err: CallError,
    ) -> Result<(), EngineError> {
        let disposition = classify_call(&err.failure);
        let detail = match &err.request_id {
            Some(id) => format!("{} (request id {id})", err.message),
            None => err.message.clone(),
        };
        match disposition {
            Disposition::Retry(RetryClass::Throttle) => {
                self.throttled += 1;
                let rs = &mut self.regions[region];
                if rs.limiter.on_throttled(sent_at, Instant::now()) {
                    self.events.emit(&Event::Throttled {
                        region: rs.name.clone(),
                        rate: rs.limiter.current_rate(),
                    });
                }
                for mut item in items {
                    item.throttles += 1;
                    if item.throttles > self.config.max_throttled {
                        self.fail(
                            region,
                            item,
                            err.code.clone(),
                            format!(
                                "still throttled after {} attempts: {detail}",
                                self.config.max_throttled
                            ),
                        )?;
                    } else {
                        let delay = self.config.backoff.delay(
                            RetryClass::Throttle,
                            item.throttles,
                            &mut self.rng,
                        );
                        self.schedule(region, item, delay)?;
                    }
                }
            }
            Disposition::Retry(class) => {
                for item in items {
                    self.retry(region, item, class, err.code.clone(), detail.clone())?;
                }
            }
            Disposition::Split => {
                if items.len() > 1 && self.halted().is_none() {
                    let mut first = items;
                    let second = first.split_off(first.len() / 2);
                    let rs = &mut self.regions[region];
                    rs.pinned.push_front(second);
                    rs.pinned.push_front(first);
                } else {
                    for item in items {
                        self.fail(region, item, err.code.clone(), detail.clone())?;
                    }
                }
            }
            Disposition::Permanent | Disposition::ResendAlone => {
                for item in items {
                    self.fail(region, item, err.code.clone(), detail.clone())?;
                }
            }
            Disposition::Abort => {
                // No HTTP status: the request never reached the service (no
                // credentials, bad configuration), so its findings were not
                // attempted; with a status, the service refused them.
                let reached_service = err.failure.status.is_some();
                let reason = format!("{}: {detail}", err.code);
                for item in items {
                    if reached_service {
                        self.fail(region, item, err.code.clone(), detail.clone())?;
                    } else {
                        let name = self.regions[region].name.clone();
                        let message = format!("run aborted: {reason}");
                        self.finish_item(
                            item,
                            &name,
                            OutcomeKind::NotAttempted,
                            Some(err.code.clone()),
                            Some(message),
                        )?;
                    }
                }
                self.abort(reason)?;
            }
        }
        Ok(())
    }

    /// Schedules a retry, or records the final failure if attempts are used up.
    fn retry(
        &mut self,
        region: usize,
        mut item: Item,
        class: RetryClass,
        code: String,
        message: String,
    ) -> Result<(), EngineError> {
        item.failures += 1;
        if item.failures >= self.config.max_attempts {
            let message = format!("{message} (gave up after {} attempts)", item.attempts);
            return self.fail(region, item, code, message);
        }
        let delay = self
            .config
            .backoff
            .delay(class, item.failures, &mut self.rng);
        self.schedule(region, item, delay)
    }

    fn resend_alone(
        &mut self,
        region: usize,
        mut item: Item,
        code: String,
        message: String,
    ) -> Result<(), EngineError> {
        item.failures += 1;
        if item.failures >= self.config.max_attempts {
            return self.fail(region, item, code, message);
        }
        if self.halted().is_some() {
            return self.schedule(region, item, Duration::ZERO);
        }
        self.regions[region].pinned.push_back(vec![item]);
        Ok(())
    }

    fn schedule(&mut self, region: usize, item: Item, delay: Duration) -> Result<(), EngineError> {
        if self.aborted.is_none() && self.stopping.is_some() {
            return self.write_off(region, item, None);
        }
        if let Some(reason) = self.aborted.clone() {
            let name = self.regions[region].name.clone();
            return self.finish_item(item, &name, OutcomeKind::NotAttempted, None, Some(reason));
        }
        self.seq += 1;
        self.regions[region].delayed += 1;
        self.delayed.push(Reverse(Delayed {
            at: Instant::now() + delay,
            seq: self.seq,
            region,
            item,
        }));
        Ok(())
    }

    fn fail(
        &mut self,
        region: usize,
        item: Item,
        code: String,
        message: String,
    ) -> Result<(), EngineError> {
        let name = self.regions[region].name.clone();
        self.finish_item(item, &name, OutcomeKind::Failed, Some(code), Some(message))
    }

    /// Stops the run: everything not in flight is recorded as not attempted.
    fn abort(&mut self, reason: String) -> Result<(), EngineError> {
        if self.aborted.is_some() {
            return Ok(());
        }
        tracing::warn!(reason = %reason, "run aborting: no new requests");
        self.events.emit(&Event::Aborting {
            reason: reason.clone(),
        });
        self.aborted = Some(reason.clone());
        let reason = format!("run aborted: {reason}");
        let mut leftovers = Vec::new();
        for (idx, rs) in self.regions.iter_mut().enumerate() {
            leftovers.extend(rs.drain().into_iter().map(|i| (idx, i)));
        }
        leftovers.extend(self.delayed.drain().map(|Reverse(d)| (d.region, d.item)));
        for rs in &mut self.regions {
            rs.delayed = 0;
        }
        for (idx, item) in leftovers {
            let name = self.regions[idx].name.clone();
            self.finish_item(
                item,
                &name,
                OutcomeKind::NotAttempted,
                None,
                Some(reason.clone()),
            )?;
        }
        self.aborted = Some(reason);
        Ok(())
    }

    /// Records the final outcome of a finding that was held (queued, waiting
    /// or in flight).
    fn finish_item(
        &mut self,
        item: Item,
        region: &Arc<str>,
        kind: OutcomeKind,
        code: Option<String>,
        message: Option<String>,
    ) -> Result<(), EngineError> {
        self.held -= 1;
        // What the decision's fields held before is worked out only now,
        // and only for updated findings: most records never need it.
        let (applied, prior) = if kind == OutcomeKind::Updated {
            let prior = crate::revert::prior_fragment(&item.decision, item.current.as_deref());
            (Some(item.decision), prior.map(Arc::new))
        } else {
            (None, None)
        };
        self.record(Outcome {
            location: item.location,
            key: Some(item.key),
            region: Some(region.clone()),
            kind,
            code,
            message,
            attempts: item.attempts,
            applied,
            prior,
        })
    }

    fn record(&mut self, outcome: Outcome) -> Result<(), EngineError> {
        self.events.emit(&Event::FindingsFinished {
            kind: outcome.kind,
            count: 1,
        });
        self.tally.record(&outcome).map_err(EngineError::Output)
    }
}

/// The next stop request; `None` when no stop can come any more (the
/// handle is gone), so that the caller stops watching.
async fn stop_changed(
    rx: &mut Option<watch::Receiver<Option<StopRequest>>>,
) -> Option<StopRequest> {
    let rx = rx.as_mut()?;
    loop {
        rx.changed().await.ok()?;
        if let Some(req) = rx.borrow_and_update().clone() {
            return Some(req);
        }
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{DecisionField, parse_flag};
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
            attempts: 0,
            failures: 0,
            throttles: 0,
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
    fn dedup_index_reports_repeats_only() {
        let mut d = DedupIndex::default();
        let a = FindingKey::new("a", "p");
        assert!(d.insert(&a));
        assert!(!d.insert(&a));
        assert!(d.insert(&FindingKey::new("a", "q")));
        // The boundary between Id and ProductArn matters.
        assert!(d.insert(&FindingKey::new("ab", "c")));
        assert!(d.insert(&FindingKey::new("a", "bc")));
        assert_eq!(d.len(), 4);
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

    #[test]
    fn unchanged_means_every_set_field_is_recorded_equal() {
        let d = {
            let mut d = (*decision(DecisionField::Workflow, "Status=SUPPRESSED")).clone();
            d.merge_from((*decision(DecisionField::Note, "Text=known,UpdatedBy=secops")).clone());
            d
        };
        let mut cur = CurrentState {
            workflow_status: Some("SUPPRESSED".into()),
            note_text: Some("known".into()),
            note_updated_by: Some("secops".into()),
            ..CurrentState::default()
        };
        assert!(decision_holds(&d, &cur));
        cur.note_updated_by = Some("someone-else".into());
        assert!(
            !decision_holds(&d, &cur),
            "a note by someone else is a change"
        );
        cur.note_updated_by = Some("secops".into());
        cur.workflow_status = Some("NEW".into());
        assert!(!decision_holds(&d, &cur));
        // A field the export did not record is not known to hold.
        cur.workflow_status = None;
        assert!(!decision_holds(&d, &cur));
        let conf = decision(DecisionField::Confidence, "80");
        assert!(!decision_holds(&conf, &CurrentState::default()));
        assert!(decision_holds(
            &conf,
            &CurrentState {
                confidence: Some(80),
                ..CurrentState::default()
            }
        ));
        let sev = decision(DecisionField::Severity, "Normalized=75");
        let high = CurrentState {
            severity_label: Some("HIGH".into()),
            ..CurrentState::default()
        };
        assert!(decision_holds(&sev, &high), "Normalized 75 is HIGH");
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
