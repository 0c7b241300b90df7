//! Selecting findings by query (`--filters`): the AWS CLI `get-findings`
//! filter document, run against `GetFindings` in each Region asked for,
//! under its own pace (3 requests/s burst 6 per Region by default),
//! retrying throttles and transient errors with backoff.
//!
//! Each page's findings are handed on as JSON Lines of ASFF documents: to
//! a snapshot file that the engine reads like any export once every page
//! of every Region is read, or, when the run's updates cannot change the
//! result set (the decision writes no field the filter matches on), straight
//! to the run's input as they are read. The choice, and why a
//! snapshot is safe where an update changes a field the filter matches on
//! (`WorkflowStatus = NEW` → `SUPPRESSED`) however the service pages, is in
//! docs/design/pipeline.md, "Selecting by query". Each finding is handed on
//! once (a finding returned twice, by an aggregation Region and its own
//! Region or after a paging restart, is dropped the second time). The
//! module draws nothing: it emits [`Event`]s.

pub(crate) mod asff;
pub(crate) mod filters;
pub(crate) mod ocsf;

use std::collections::HashSet;
use std::hash::Hasher;
use std::io::Write;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Map, Value};

use crate::events::{Event, EventSink};
use crate::limits::{RateConfig, RegionLimiter};
use crate::retry::{Backoff, CallDisposition, classify_call};
use crate::submission::{Submitter, call_error};

/// `--filters` and the pace of the query.
#[derive(Args, Debug, Default, Clone)]
pub struct QueryArgs {
    /// Select findings by query instead of input files: the AWS CLI
    /// `get-findings --filters` JSON document, or file://PATH. Relative
    /// dates (DateRange) are made absolute once, at the start.
    #[arg(long, value_name = "JSON", help_heading = "Query")]
    pub filters: Option<String>,
    /// Select findings of the new Security Hub by query (with --status-id,
    /// --severity-id, --comment): the AWS CLI `get-findings-v2 --filters`
    /// JSON document, or file://PATH.
    #[arg(
        long,
        value_name = "JSON",
        help_heading = "Query",
        conflicts_with = "filters"
    )]
    pub ocsf_filters: Option<String>,
    /// Regions to query, comma-separated [default: --region, else the
    /// configured Region]. An aggregation Region returns its linked Regions'
    /// findings too.
    #[arg(
        long,
        value_name = "REGION,REGION",
        value_delimiter = ',',
        help_heading = "Query"
    )]
    pub(crate) query_regions: Vec<String>,
    /// GetFindings requests per second per Region (documented quota: 3;
    /// GetFindingsV2's is not documented: 3 by default too).
    #[arg(long, value_name = "N", help_heading = "Query")]
    pub(crate) query_rate: Option<f64>,
    /// GetFindings (and GetFindingsV2) burst per Region (documented: 6).
    #[arg(long, value_name = "N", help_heading = "Query")]
    pub(crate) query_burst: Option<u32>,
    /// `update`: read the whole selection before the first update, even
    /// when the decision writes no field the filter matches on (then
    /// reading and updating otherwise overlap).
    #[arg(long, help_heading = "Query")]
    pub(crate) query_snapshot: bool,
}

/// The documented `GetFindings` quota: 3 requests/s, burst 6.
pub(crate) const GET_FINDINGS_QUOTA: RateConfig = RateConfig {
    rate: 3.0,
    burst: 6,
};

/// Most attempts for one page before the query fails (loudly).
pub(crate) const MAX_PAGE_ATTEMPTS: u32 = 12;
/// Most paging restarts after a rejected `NextToken`, per Region.
pub(crate) const MAX_RESTARTS: u32 = 3;

/// A query with its dates made absolute: what is asked, and where.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// The filter document as given (relative dates left relative).
    pub given: Map<String, Value>,
    /// The filter document, absolute.
    pub filters: Map<String, Value>,
    /// Regions queried, in order.
    pub regions: Vec<String>,
    /// When relative dates were resolved (RFC 3339).
    pub(crate) resolved_at: String,
    /// The pace per Region.
    pub rate: RateConfig,
    /// `GetFindingsV2` with an OCSF filter document (`--ocsf-filters`),
    /// else `GetFindings`.
    pub(crate) v2: bool,
}

impl Query {
    /// Reads and checks `args` (every filter, before any request); `region`
    /// is `--region`, `configured` the SDK's configured Region.
    pub(crate) fn prepare(
        args: &QueryArgs,
        region: Option<&str>,
        configured: Option<&str>,
        now: SystemTime,
    ) -> anyhow::Result<Option<Query>> {
        let v2 = args.ocsf_filters.is_some();
        let (given, filters) = match (&args.filters, &args.ocsf_filters) {
            (Some(_), Some(_)) => bail!("--filters and --ocsf-filters: give one"),
            (None, Some(doc)) => ocsf::prepare_filters(doc, now)?,
            (Some(doc), None) => {
                let given = filters::load(doc)?;
                let mut filters = given.clone();
                filters::absolutize(&mut filters, now)?;
                filters::to_sdk(&filters)?;
                (given, filters)
            }
            (None, None) => {
                if !args.query_regions.is_empty() {
                    bail!("--query-regions needs --filters or --ocsf-filters");
                }
                return Ok(None);
            }
        };
        let regions: Vec<String> = if !args.query_regions.is_empty() {
            args.query_regions.clone()
        } else if let Some(r) = region.or(configured) {
            vec![r.to_owned()]
        } else {
            bail!("a query needs a Region: give --region, --query-regions or AWS_REGION");
        };
        let rate = RateConfig {
            rate: args.query_rate.unwrap_or(GET_FINDINGS_QUOTA.rate),
            burst: args.query_burst.unwrap_or(GET_FINDINGS_QUOTA.burst),
        };
        if !(rate.rate.is_finite() && rate.rate >= 0.01) || rate.burst == 0 {
            bail!("--query-rate must be at least 0.01 and --query-burst at least 1");
        }
        Ok(Some(Query {
            given,
            filters,
            regions,
            resolved_at: humantime::format_rfc3339_seconds(now).to_string(),
            rate,
            v2,
        }))
    }

    /// The query as recorded (the journal, the report, the plan).
    pub(crate) fn describe(&self) -> Value {
        let mut v = serde_json::json!({
            "Given": self.given,
            "Filters": self.filters,
            "Regions": self.regions,
            "ResolvedAt": self.resolved_at,
        });
        if self.v2 {
            v["Operation"] = Value::from(ocsf::OPERATION);
        }
        v
    }

    /// On resume: the journal's recorded query, if it is this one as given
    /// (same document, same Regions), replaces the dates made absolute now
    /// by those of the first run, so that the resumed run asks the same
    /// question. Returns whether it did.
    pub(crate) fn adopt(&mut self, recorded: &Value) -> bool {
        let same = recorded.get("Given") == Some(&Value::Object(self.given.clone()))
            && recorded.get("Regions") == Some(&serde_json::json!(self.regions))
            && (recorded.get("Operation").and_then(Value::as_str) == Some(ocsf::OPERATION))
                == self.v2;
        let (Some(Value::Object(filters)), Some(Value::String(at))) =
            (recorded.get("Filters"), recorded.get("ResolvedAt"))
        else {
            return false;
        };
        let valid = if self.v2 {
            ocsf::to_sdk(filters).is_ok()
        } else {
            filters::to_sdk(filters).is_ok()
        };
        if !same || !valid {
            return false;
        }
        self.filters = filters.clone();
        self.resolved_at = at.clone();
        true
    }

    /// The name a snapshot of this query goes by in results rows.
    pub(crate) fn label(&self) -> String {
        format!("query:{}", self.regions.join(","))
    }
}

/// What a query did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct QueryStats {
    /// GetFindings requests answered.
    pub pages: u64,
    /// Findings written (each once).
    pub findings: u64,
    /// Findings returned again (aggregation overlap, paging restart) and dropped.
    pub(crate) repeated: u64,
    /// Requests throttled.
    pub throttled: u64,
    /// Requests retried after another error.
    pub retried: u64,
    /// Paging restarts after a rejected NextToken.
    pub(crate) restarts: u64,
}

fn key_hash(id: &str, arn: &str) -> u64 {
    let mut h = twox_hash::XxHash3_64::new();
    h.write(id.as_bytes());
    h.write(&[0]);
    h.write(arn.as_bytes());
    h.finish()
}

/// A query that could not be read to its end for a reason that says
/// nothing about the selection: the service kept failing, or refused the
/// caller. Its exit status is "resume later" or "aborted", not a usage
/// error (`cli::exit`).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct QueryFailed {
    /// Why.
    pub kind: QueryFailure,
    /// What happened, naming the operation and Region.
    pub message: String,
}

/// The kinds of [`QueryFailed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueryFailure {
    /// Throttled, 5xx or a broken connection past every retry: run again
    /// later (`--resume` skips what is settled).
    Unavailable,
    /// Access denied or bad credentials.
    Denied,
}

/// The query operation a [`Query`] runs, with its filters in SDK form.
enum Operation {
    /// `GetFindings` (ASFF findings).
    V1(Box<aws_sdk_securityhub::types::AwsSecurityFindingFilters>),
    /// `GetFindingsV2` (OCSF findings).
    V2(aws_sdk_securityhub::types::OcsfFindingFilters),
}

/// One page: each finding as JSON with its identity for dropping repeats
/// (`None`: no identity, written for the reader to report), and the
/// next token.
struct Page {
    findings: Vec<(Option<u64>, Value)>,
    next_token: Option<String>,
}

impl Operation {
    fn of(q: &Query) -> anyhow::Result<Self> {
        Ok(if q.v2 {
            Self::V2(ocsf::to_sdk(&q.filters)?)
        } else {
            Self::V1(Box::new(filters::to_sdk(&q.filters)?))
        })
    }

    fn name(&self) -> &'static str {
        match self {
            Self::V1(_) => "GetFindings",
            Self::V2(_) => ocsf::OPERATION,
        }
    }

    async fn fetch(
        &self,
        client: &aws_sdk_securityhub::Client,
        token: Option<String>,
    ) -> Result<Page, crate::submission::CallError> {
        match self {
            Self::V1(f) => {
                let page = client
                    .get_findings()
                    .set_filters(Some((**f).clone()))
                    .max_results(100)
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(call_error)?;
                let findings = page
                    .findings()
                    .iter()
                    .filter_map(|f| {
                        let (id, arn) = (f.id()?, f.product_arn()?);
                        Some((Some(key_hash(id, arn)), asff::to_json(f)))
                    })
                    .collect();
                Ok(Page {
                    findings,
                    next_token: page.next_token,
                })
            }
            Self::V2(f) => {
                let page = client
                    .get_findings_v2()
                    .filters(f.clone())
                    .max_results(100)
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(call_error)?;
                let findings = page
                    .findings()
                    .iter()
                    .map(|d| {
                        let v = ocsf::to_json(d);
                        (ocsf::identity(&v), v)
                    })
                    .collect();
                Ok(Page {
                    findings,
                    next_token: page.next_token,
                })
            }
        }
    }

    /// The service rejected a `NextToken` (stale, or the query changed).
    fn stale_token(&self, e: &crate::submission::CallError) -> bool {
        let codes: &[&str] = match self {
            Self::V1(_) => &["InvalidInputException"],
            Self::V2(_) => &["ValidationException", "InvalidInputException"],
        };
        codes.contains(&e.code.as_str()) && e.message.contains("NextToken")
    }
}

/// Where a query's findings go, one page at a time (JSON Lines bytes of
/// that page's new findings): a file ([`WritePages`]) or, when reading and
/// updating overlap, the run's input ([`stream`]). Operation-agnostic: the
/// lines may be ASFF or OCSF documents.
pub(crate) trait Pages {
    /// Takes one page's findings; an error stops the query.
    fn page(&mut self, lines: Vec<u8>) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// [`Pages`] into a writer (a snapshot file, an export).
pub(crate) struct WritePages<'a>(pub &'a mut dyn Write);

impl Pages for WritePages<'_> {
    fn page(&mut self, lines: Vec<u8>) -> impl Future<Output = anyhow::Result<()>> + Send {
        let r = self
            .0
            .write_all(&lines)
            .context("writing the query's findings");
        std::future::ready(r)
    }
}

/// Runs the query, handing every finding once to `out` as one ASFF JSON
/// object per line, a page at a time, and telling `events` of every page
/// read ([`Event::QueryPageRead`], [`Event::QueryRegionFinished`]; the
/// query module never draws anything). Throttles and transient errors are
/// retried with backoff; a rejected `NextToken` restarts the Region's
/// paging (findings already handed on are not handed on again); anything
/// else, or a page that keeps failing, is an error: the query never stops
/// silently short.
pub(crate) async fn read<P: Pages, F: FnMut(&QueryStats) + ?Sized>(
    q: &Query,
    submitter: &Submitter,
    out: &mut P,
    events: &dyn EventSink,
    progress: &mut F,
) -> anyhow::Result<QueryStats> {
    let op = Operation::of(q)?;
    let name = op.name();
    let mut stats = QueryStats::default();
    // 8 bytes per finding: the run's memory stays small however many match.
    let mut seen: HashSet<u64> = HashSet::new();
    let backoff = Backoff::default();
    for region in &q.regions {
        let client = submitter.client(region);
        let mut limiter = RegionLimiter::new(q.rate);
        let mut token: Option<String> = None;
        let mut restarts = 0;
        let label: Arc<str> = Arc::from(region.as_str());
        let (mut region_pages, mut region_findings) = (0u64, 0u64);
        loop {
            let mut attempt = 0u32;
            let page = loop {
                loop {
                    match limiter.try_acquire(Instant::now()) {
                        Ok(()) => break,
                        Err(wait) => tokio::time::sleep(wait).await,
                    }
                }
                attempt += 1;
                let sent = Instant::now();
                match op.fetch(&client, token.clone()).await {
                    Ok(page) => {
                        limiter.on_success();
                        break Some(page);
                    }
                    Err(e) => {
                        let stale_token = token.is_some() && op.stale_token(&e);
                        if stale_token {
                            if restarts >= MAX_RESTARTS {
                                bail!(
                                    "{name} in {region}: NextToken rejected {} times ({}); stopping rather than reading a partial selection",
                                    restarts + 1,
                                    e.message
                                );
                            }
                            restarts += 1;
                            stats.restarts += 1;
                            tracing::warn!(
                                region,
                                "{name} rejected the NextToken ({}): paging again from the start; findings already read are not read twice",
                                e.message
                            );
                            break None;
                        }
                        let class = match classify_call(&e.failure) {
                            CallDisposition::Retry(class) => class,
                            CallDisposition::Abort => {
                                return Err(QueryFailed {
                                    kind: QueryFailure::Denied,
                                    message: format!(
                                        "{name} in {region} failed, and no request can succeed: {}: {}",
                                        e.code, e.message
                                    ),
                                }
                                .into());
                            }
                            CallDisposition::Split | CallDisposition::Permanent => {
                                bail!("{name} in {region} failed: {}: {}", e.code, e.message)
                            }
                        };
                        if attempt >= MAX_PAGE_ATTEMPTS {
                            return Err(QueryFailed {
                                kind: QueryFailure::Unavailable,
                                message: format!(
                                    "{name} in {region} failed {attempt} times in a row (last: {}: {}); stopping rather than reading a partial selection",
                                    e.code, e.message
                                ),
                            }
                            .into());
                        }
                        if matches!(class, crate::retry::RetryClass::Throttle) {
                            stats.throttled += 1;
                            limiter.on_throttled(sent, Instant::now());
                        } else {
                            stats.retried += 1;
                        }
                        let delay = backoff.delay(class, attempt, &mut rand::rng());
                        tracing::debug!(region, code = %e.code, ?delay, "{name} retried");
                        tokio::time::sleep(delay).await;
                    }
                }
            };
            let Some(page) = page else {
                token = None;
                continue;
            };
            stats.pages += 1;
            region_pages += 1;
            let mut lines = Vec::new();
            for (identity, doc) in page.findings {
                if let Some(id) = identity
                    && !seen.insert(id)
                {
                    stats.repeated += 1;
                    continue;
                }
                serde_json::to_writer(&mut lines, &doc).context("writing the query's findings")?;
                lines.push(b'\n');
                stats.findings += 1;
                region_findings += 1;
            }
            if !lines.is_empty() {
                out.page(lines).await?;
            }
            events.emit(&Event::QueryPageRead {
                region: label.clone(),
                pages: region_pages,
                findings: region_findings,
            });
            progress(&stats);
            match page.next_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
        events.emit(&Event::QueryRegionFinished {
            region: label,
            pages: region_pages,
            findings: region_findings,
        });
    }
    Ok(stats)
}

/// A query's findings saved to a private temporary file (JSON Lines of
/// ASFF) for the plan and the run to read; removed when dropped.
#[derive(Debug)]
pub(crate) struct Snapshot {
    path: std::path::PathBuf,
    /// What the query did.
    pub(crate) stats: QueryStats,
}

impl Snapshot {
    /// Runs `q` into a new temporary file, telling `events` of every page.
    pub(crate) async fn take(
        q: &Query,
        submitter: &Submitter,
        events: &dyn EventSink,
    ) -> anyhow::Result<Snapshot> {
        let path = std::env::temp_dir().join(format!(
            "sechub-triage-query-{}-{:016x}.jsonl",
            std::process::id(),
            rand::random::<u64>()
        ));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut snap = Snapshot {
            path,
            stats: QueryStats::default(),
        };
        let mut w = std::io::BufWriter::new(file);
        snap.stats = read(q, submitter, &mut WritePages(&mut w), events, &mut |_| {}).await?;
        w.flush().context("writing the query's findings")?;
        tracing::info!(
            findings = snap.stats.findings,
            pages = snap.stats.pages,
            throttled = snap.stats.throttled,
            "query read"
        );
        Ok(snap)
    }

    /// The file.
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// How many pages a query streamed into a run may read ahead of the run's
/// input thread (100 findings each), which itself holds at most the
/// engine's `read_ahead` findings: memory stays bounded, and a run that
/// falls that far behind (throttled updates) slows the query with it.
const PAGES_AHEAD: usize = 8;

/// Why a streamed query stopped when the run stopped reading it.
pub(crate) const STOPPED_READING: &str = "the run stopped reading the query's findings";

/// One piece of a streamed query.
enum Piece {
    Page(Vec<u8>),
    End,
    Failed(String),
}

/// [`Pages`] into a channel the run's reader drains ([`PageReader`]).
struct ChannelPages(tokio::sync::mpsc::Sender<Piece>);

impl Pages for ChannelPages {
    fn page(&mut self, lines: Vec<u8>) -> impl Future<Output = anyhow::Result<()>> + Send {
        let tx = self.0.clone();
        async move {
            tx.send(Piece::Page(lines))
                .await
                .map_err(|_| anyhow::anyhow!(STOPPED_READING))
        }
    }
}

/// The findings of a query being read, as JSON Lines bytes, for a reader
/// on a blocking thread (the engine's input thread): each page as soon as
/// it is read. The end of the selection is an explicit mark: a query that
/// fails, or is stopped, ends the stream with an error, never with a
/// silent end of input.
pub(crate) struct PageReader {
    rx: tokio::sync::mpsc::Receiver<Piece>,
    cur: Vec<u8>,
    pos: usize,
    ended: bool,
    failed: Option<String>,
}

impl std::io::Read for PageReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.pos < self.cur.len() {
                let n = buf.len().min(self.cur.len() - self.pos);
                buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if let Some(m) = &self.failed {
                return Err(std::io::Error::other(m.clone()));
            }
            if self.ended {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Piece::Page(v)) => {
                    self.cur = v;
                    self.pos = 0;
                }
                Some(Piece::End) => self.ended = true,
                Some(Piece::Failed(m)) => self.failed = Some(m),
                None => {
                    self.failed = Some(
                        "the query stopped before its last page: the selection was not read whole"
                            .into(),
                    );
                }
            }
        }
    }
}

/// Starts reading `q` on the runtime, each page handed to the returned
/// reader as soon as it is read (at most [`PAGES_AHEAD`] pages ahead of
/// it). `progress` sees the running totals; the task's result is the
/// query's totals, or why it failed (which the reader reports too).
pub(crate) fn stream(
    q: Query,
    submitter: Arc<Submitter>,
    events: Arc<dyn EventSink>,
    mut progress: impl FnMut(&QueryStats) + Send + 'static,
) -> (
    PageReader,
    tokio::task::JoinHandle<anyhow::Result<QueryStats>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(PAGES_AHEAD);
    let task = tokio::spawn(async move {
        let mut pages = ChannelPages(tx.clone());
        let r = read(&q, &submitter, &mut pages, &*events, &mut progress).await;
        let last = match &r {
            Ok(_) => Piece::End,
            Err(e) => Piece::Failed(format!("{e:#}")),
        };
        // The reader may be gone (the run stopped): nothing to tell it.
        let _ = tx.send(last).await;
        r
    });
    let reader = PageReader {
        rx,
        cur: Vec::new(),
        pos: 0,
        ended: false,
        failed: None,
    };
    (reader, task)
}

/// The filter names a filter document matches on: a `get-findings`
/// document's members (`WorkflowStatus`, `NoteText`, …) and, for the
/// nested documents of the V2 query APIs, every `FieldName` (`status_id`,
/// `comment`, …) and sort field.
pub(crate) fn filter_fields(doc: &Map<String, Value>) -> std::collections::BTreeSet<String> {
    fn walk(v: &Value, out: &mut std::collections::BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    if matches!(k.as_str(), "FieldName" | "Field")
                        && let Value::String(s) = v
                    {
                        out.insert(s.clone());
                    }
                    walk(v, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out: std::collections::BTreeSet<String> = doc
        .keys()
        .filter(|k| {
            !matches!(
                k.as_str(),
                "CompositeFilters" | "CompositeOperator" | "SortCriteria"
            )
        })
        .cloned()
        .collect();
    doc.values().for_each(|v| walk(v, &mut out));
    out
}

/// The filter names whose values a decision can change: the fields it
/// writes, and those the service derives from them
/// (docs/design/pipeline.md, "Selecting by query"). `UpdatedAt` is not
/// among them: `BatchUpdateFindings` does not change it. `run_tag` writes
/// `UserDefinedFields` too. Whether a change on one service's copy of a
/// finding reaches the other's is not documented (securityhub-api.md §13),
/// so each field counts with its twin of the other service (`Workflow` with
/// `status`, `StatusId` with `WorkflowStatus`, …): unsure means snapshot.
pub(crate) fn filters_moved_by(
    decision: &crate::decision::Decision,
    run_tag: bool,
) -> Vec<&'static str> {
    const WORKFLOW: [&str; 4] = ["WorkflowStatus", "WorkflowState", "status_id", "status"];
    const NOTE: [&str; 4] = ["NoteText", "NoteUpdatedAt", "NoteUpdatedBy", "comment"];
    const SEVERITY: [&str; 5] = [
        "SeverityLabel",
        "SeverityNormalized",
        "SeverityProduct",
        "severity_id",
        "severity",
    ];
    let mut f: Vec<&'static str> = Vec::new();
    if decision.workflow.is_some() || decision.status_id.is_some() {
        f.extend(WORKFLOW);
    }
    if decision.note.is_some() || decision.comment.is_some() {
        f.extend(NOTE);
    }
    if decision.severity.is_some() || decision.severity_id.is_some() {
        f.extend(SEVERITY);
    }
    if decision.types.is_some() {
        f.push("Type");
    }
    if decision.verification_state.is_some() {
        f.push("VerificationState");
    }
    if decision.confidence.is_some() {
        f.push("Confidence");
    }
    if decision.criticality.is_some() {
        f.push("Criticality");
    }
    if decision.user_defined_fields.is_some() || run_tag {
        f.push("UserDefinedFields");
    }
    if decision.related_findings.is_some() {
        f.extend(["RelatedFindingsId", "RelatedFindingsProductArn"]);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Decision;

    fn reader(pieces: Vec<Piece>) -> PageReader {
        let (tx, rx) = tokio::sync::mpsc::channel(pieces.len().max(1));
        for p in pieces {
            tx.blocking_send(p).unwrap();
        }
        PageReader {
            rx,
            cur: Vec::new(),
            pos: 0,
            ended: false,
            failed: None,
        }
    }

    #[test]
    fn a_streamed_selection_ends_only_at_its_mark() {
        use std::io::Read;
        let page = |s: &str| Piece::Page(s.as_bytes().to_vec());
        // Whole: every page, then the end.
        let mut s = String::new();
        reader(vec![page("a\n"), page("b\n"), Piece::End])
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "a\nb\n");
        // The query failed: its pages, then its error.
        let mut s = String::new();
        let e = reader(vec![
            page("a\n"),
            Piece::Failed("GetFindings failed".into()),
        ])
        .read_to_string(&mut s)
        .unwrap_err();
        assert_eq!(e.to_string(), "GetFindings failed");
        // The query stopped without a word (aborted): an error, not an end.
        let mut s = String::new();
        let e = reader(vec![page("a\n")])
            .read_to_string(&mut s)
            .unwrap_err();
        assert!(e.to_string().contains("not read whole"), "{e}");
    }

    #[test]
    fn a_query_failing_mid_stream_ends_the_run_s_input_with_its_error() {
        use crate::emulator::{EmulatorConfig, LocalEmulator, Paging, SyntheticSpec};
        use crate::submission::AwsSettings;
        use std::io::BufRead;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (emu, submitter) = rt.block_on(async {
            let mut config = EmulatorConfig::unthrottled();
            config.semantics.get_findings_paging = Paging::Offset;
            let emu = LocalEmulator::start(config).await.unwrap();
            emu.state().seed_synthetic(&SyntheticSpec {
                count: 250,
                seed: 1,
                regions: vec!["us-east-1".into()],
                ..SyntheticSpec::default()
            });
            let sdk = emu.sdk_config("AKIDTEST", "test-secret").await;
            let submitter = Submitter::from_sdk_config(
                sdk,
                &AwsSettings {
                    endpoint_url: Some(emu.url()),
                    ..AwsSettings::default()
                },
            );
            (emu, submitter)
        });
        // One page now, the next two seconds later.
        let q = Query {
            given: Map::new(),
            filters: Map::new(),
            regions: vec!["us-east-1".into()],
            resolved_at: "2026-12-04T00:00:00Z".into(),
            rate: RateConfig {
                rate: 0.5,
                burst: 1,
            },
            v2: false,
        };
        let (reader, task) = {
            let _in = rt.enter();
            stream(
                q,
                Arc::new(submitter),
                Arc::new(crate::events::NullSink),
                |_| {},
            )
        };
        let mut lines = std::io::BufReader::new(reader).lines();
        let first = lines.next().unwrap().unwrap();
        assert!(first.contains("\"Id\""), "{first}");
        // Denied from now on: the second page fails, for good.
        let mut faults = emu.state().faults();
        faults.access_denied = true;
        emu.state().set_faults(faults);
        // The first page's 99 other lines, then the error (which stays:
        // the reader never turns it into an end).
        let mut ok = 0;
        let e = loop {
            match lines.next() {
                Some(Ok(_)) => ok += 1,
                Some(Err(e)) => break e.to_string(),
                None => panic!("the selection ended without the query's error"),
            }
        };
        assert_eq!(ok, 99);
        assert!(lines.next().is_some_and(|l| l.is_err()));
        assert!(e.contains("AccessDeniedException"), "{e}");
        let r = rt.block_on(task).unwrap();
        assert!(r.is_err());
    }

    #[test]
    fn the_fields_a_decision_moves_are_found_in_the_filter() {
        let doc: Map<String, Value> = serde_json::from_str(
            r#"{"WorkflowStatus":[{"Value":"NEW","Comparison":"EQUALS"}],
                "ComplianceStatus":[{"Value":"FAILED","Comparison":"EQUALS"}]}"#,
        )
        .unwrap();
        let fields = filter_fields(&doc);
        assert!(fields.contains("WorkflowStatus") && fields.contains("ComplianceStatus"));
        let workflow: Decision =
            serde_json::from_str(r#"{"Workflow":{"Status":"SUPPRESSED"}}"#).unwrap();
        let moved = filters_moved_by(&workflow, false);
        assert!(moved.iter().any(|f| fields.contains(*f)));
        let note: Decision =
            serde_json::from_str(r#"{"Note":{"Text":"t","UpdatedBy":"u"}}"#).unwrap();
        assert!(
            !filters_moved_by(&note, false)
                .iter()
                .any(|f| fields.contains(*f))
        );
        // The run tag writes UserDefinedFields.
        assert!(filters_moved_by(&note, true).contains(&"UserDefinedFields"));
        // V2 documents name their fields in FieldName, nested.
        let v2: Map<String, Value> = serde_json::from_str(
            r#"{"CompositeFilters":[{"StringFilters":[{"FieldName":"status","Filter":{"Value":"New","Comparison":"EQUALS"}}]}],
                "CompositeOperator":"AND"}"#,
        )
        .unwrap();
        let v2_fields = filter_fields(&v2);
        assert!(v2_fields.contains("status"), "{v2_fields:?}");
        assert!(!v2_fields.contains("CompositeFilters"));
        let status: Decision = serde_json::from_str(r#"{"StatusId":3}"#).unwrap();
        assert!(
            filters_moved_by(&status, false)
                .iter()
                .any(|f| v2_fields.contains(*f))
        );
    }
}
