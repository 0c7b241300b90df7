//! `--report FILE`: a JSON document about one run, for monitoring unattended
//! jobs: the counts, the pacing achieved (overall and per Region), throttles,
//! retries by error code, start and end times, and the exit status the
//! process ended with.
//!
//! The report is written when the run begins, once it holds the results
//! file's lock (`"state": "running"`, so a monitor sees a job that died
//! without a trace, e.g. on `kill -9`, as one that never finished), and
//! again at the very end, after the exit status is known, whether the run
//! succeeded, failed, aborted, was stopped, or never started because of an
//! error. The one exception is a run refused because another run holds the
//! lock (status 5): the report is the other run's, and is left alone. Each
//! write goes to a temporary file that is then renamed over the report, so a
//! reader never sees half a document.
//!
//! What it does not do: count outcomes (that is [`RunSummary`], embedded
//! whole) or decide the exit status (that is the CLI's `main`). It learns
//! about requests from the engine's [`Event`]s, like the progress bar.
//!
//! One report per process: the CLI commands that run the engine share it
//! through a process-wide slot ([`register`], [`start`], [`active`],
//! [`finish`]), so that `main`, which alone knows the final exit status, can
//! write it last.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::events::{Event, EventSink};
use crate::reporting::RunSummary;
use crate::retry::{CallFailure, Disposition, RetryClass, classify_call};

/// Bumped when a field changes meaning or disappears (new fields may appear
/// at any time).
pub(crate) const REPORT_FORMAT_VERSION: u32 = crate::schema::REPORT;

/// Requests seen for one Region.
#[derive(Debug, Default)]
struct RegionStats {
    requests: u64,
    findings_sent: u64,
    throttled: u64,
    pace_reductions: u64,
    errors_by_code: BTreeMap<String, u64>,
    latency_total: Duration,
    latency_max: Duration,
    answered: u64,
    first_sent: Option<Instant>,
    last_answered: Option<Instant>,
}

#[derive(Debug, Default)]
struct Stats {
    regions: BTreeMap<String, RegionStats>,
    /// Findings carried by failed requests, per error code.
    request_errors_findings: BTreeMap<String, u64>,
    /// Failed requests, per error code.
    request_errors: BTreeMap<String, u64>,
    summary: Option<RunSummary>,
    revert: Option<RevertDoc>,
}

/// What a `revert` says about the campaign it undoes (see
/// [`RunReport::record_revert`]).
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct RevertDoc {
    /// The campaign did not finish: some of its rows are `unknown` or
    /// `not_attempted`, or a run of it was killed with requests out.
    pub unfinished_campaign: bool,
    /// Rows the campaign recorded `unknown`, or `not_attempted` after a
    /// request carried them: maybe applied, so restored like `updated` rows.
    pub maybe_applied: u64,
    /// `not_attempted` rows no request ever carried: nothing to restore.
    pub never_sent: u64,
    /// Findings whose change could be restored only in part (the revert's
    /// results say what, per finding).
    pub partially_restored: u64,
    /// Rows whose change cannot be restored at all (recorded `invalid` in
    /// the revert's results, with the reason).
    pub(crate) not_restorable: u64,
    /// Findings of the campaign's in-flight log that its results do not
    /// settle: out when a run was killed, maybe applied, restored.
    pub in_flight_at_crash: u64,
}

/// The report of this process's run. Feed it events; [`finish`] writes it.
#[derive(Debug)]
pub(crate) struct RunReport {
    path: PathBuf,
    command: String,
    campaign: Option<PathBuf>,
    inputs: Vec<String>,
    started_wall: SystemTime,
    started: Instant,
    stats: Mutex<Stats>,
}

/// Whether a request-level error code means throttling (a bare 429 is
/// recorded as `HTTP429`).
fn is_throttle(code: &str) -> bool {
    let failure = CallFailure {
        status: (code == "HTTP429").then_some(429),
        code: Some(code.to_owned()),
        transport: None,
    };
    classify_call(&failure) == Disposition::Retry(RetryClass::Throttle)
}

impl RunReport {
    fn new(path: PathBuf, command: &str, campaign: Option<PathBuf>, inputs: Vec<String>) -> Self {
        RunReport {
            path,
            command: command.to_owned(),
            campaign,
            inputs,
            started_wall: SystemTime::now(),
            started: Instant::now(),
            stats: Mutex::new(Stats::default()),
        }
    }

    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        // A panic elsewhere while holding the lock leaves plain counters:
        // still worth reporting.
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps the run's totals for the final report.
    pub(crate) fn record_summary(&self, summary: &RunSummary) {
        self.stats().summary = Some(summary.clone());
    }

    /// Keeps what a `revert` says about the campaign it undoes.
    pub(crate) fn record_revert(&self, revert: RevertDoc) {
        self.stats().revert = Some(revert);
    }

    /// The document, as of now.
    fn document(&self, ended: Option<(i32, Option<String>)>) -> ReportDoc {
        let now_wall = SystemTime::now();
        let elapsed = self.started.elapsed();
        let stats = self.stats();
        let summary = stats.summary.clone();
        let secs = elapsed.as_secs_f64().max(1e-9);
        let requests: u64 = stats.regions.values().map(|r| r.requests).sum();
        let regions = stats
            .regions
            .iter()
            .map(|(name, r)| {
                // The Region's own window: from its first request to its last
                // answer, so that a Region with little work is not shown as
                // slow because the run was long.
                let active = match (r.first_sent, r.last_answered) {
                    (Some(a), Some(b)) if b > a => b - a,
                    _ => Duration::ZERO,
                };
                let doc = RegionDoc {
                    requests: r.requests,
                    findings_sent: r.findings_sent,
                    active_seconds: round3(active.as_secs_f64()),
                    requests_per_second: if active.is_zero() {
                        None
                    } else {
                        Some(round3(r.requests as f64 / active.as_secs_f64()))
                    },
                    throttled_requests: r.throttled,
                    pace_reductions: r.pace_reductions,
                    request_errors_by_code: r.errors_by_code.clone(),
                    mean_latency_ms: (r.answered > 0).then(|| {
                        round3(r.latency_total.as_secs_f64() * 1000.0 / r.answered as f64)
                    }),
                    max_latency_ms: round3(r.latency_max.as_secs_f64() * 1000.0),
                };
                (name.clone(), doc)
            })
            .collect();
        let retries_by_code = summary
            .as_ref()
            .map(|s| retries_by_code(&stats.request_errors_findings, s))
            .unwrap_or_default();
        let (exit_status, error) = match ended {
            Some((code, error)) => (Some(code), error),
            None => (None, None),
        };
        ReportDoc {
            schema_version: crate::schema::REPORT,
            report_format: REPORT_FORMAT_VERSION,
            tool: "sechub-triage",
            version: env!("CARGO_PKG_VERSION"),
            command: self.command.clone(),
            campaign: self.campaign.as_ref().map(|p| p.display().to_string()),
            inputs: self.inputs.clone(),
            pid: std::process::id(),
            state: if exit_status.is_some() {
                "finished"
            } else {
                "running"
            },
            exit_status,
            error,
            started_at: rfc3339(self.started_wall),
            ended_at: exit_status.map(|_| rfc3339(now_wall)),
            elapsed_seconds: round3(elapsed.as_secs_f64()),
            pacing: PacingDoc {
                requests,
                requests_per_second: round3(requests as f64 / secs),
                findings_updated_per_second: summary
                    .as_ref()
                    .map(|s| round3(s.count(crate::model::OutcomeKind::Updated) as f64 / secs)),
                regions,
            },
            throttled_requests: summary.as_ref().map(|s| s.throttled),
            retried_findings: summary.as_ref().map(|s| s.retries),
            retries_by_code,
            request_errors_by_code: stats.request_errors.clone(),
            summary,
            revert: stats.revert.clone(),
        }
    }

    fn write(&self, ended: Option<(i32, Option<String>)>) -> io::Result<()> {
        let doc = self.document(ended);
        write_atomically(&self.path, &doc)
    }
}

/// Findings sent again (or scheduled to be) because of each error code: every
/// time a finding met a code, it was either retried or ended with that code,
/// so the retries are the meetings minus the final failures. Meetings are
/// the findings of failed requests plus the per-finding codes of
/// `UnprocessedFindings`.
fn retries_by_code(
    request_error_findings: &BTreeMap<String, u64>,
    summary: &RunSummary,
) -> BTreeMap<String, u64> {
    let mut met = request_error_findings.clone();
    for (code, n) in &summary.unprocessed_by_code {
        *met.entry(code.clone()).or_default() += n;
    }
    met.into_iter()
        .filter_map(|(code, n)| {
            let ended = summary.errors_by_code.get(&code).copied().unwrap_or(0);
            let retried = n.saturating_sub(ended);
            (retried > 0).then_some((code, retried))
        })
        .collect()
}

impl EventSink for RunReport {
    fn emit(&self, event: &Event) {
        match event {
            Event::RequestSent { region, findings } => {
                let mut s = self.stats();
                let r = s.regions.entry(region.to_string()).or_default();
                r.requests += 1;
                r.findings_sent += *findings as u64;
                r.first_sent.get_or_insert_with(Instant::now);
            }
            Event::RequestFinished {
                region,
                findings,
                latency,
                error,
            } => {
                let mut s = self.stats();
                if let Some(code) = error {
                    *s.request_errors.entry(code.clone()).or_default() += 1;
                    *s.request_errors_findings.entry(code.clone()).or_default() += *findings as u64;
                }
                let r = s.regions.entry(region.to_string()).or_default();
                r.answered += 1;
                r.latency_total += *latency;
                r.latency_max = r.latency_max.max(*latency);
                r.last_answered = Some(Instant::now());
                if let Some(code) = error {
                    *r.errors_by_code.entry(code.clone()).or_default() += 1;
                    if is_throttle(code) {
                        r.throttled += 1;
                    }
                }
            }
            Event::Throttled { region, .. } => {
                let mut s = self.stats();
                s.regions
                    .entry(region.to_string())
                    .or_default()
                    .pace_reductions += 1;
            }
            _ => {}
        }
    }
}

#[derive(Serialize)]
struct ReportDoc {
    schema_version: u32,
    /// The same number under its earlier name, for readers of earlier releases.
    report_format: u32,
    tool: &'static str,
    version: &'static str,
    command: String,
    campaign: Option<String>,
    inputs: Vec<String>,
    pid: u32,
    /// `running` until the process is about to exit, then `finished`.
    state: &'static str,
    exit_status: Option<i32>,
    /// The error that ended the run early, if one did.
    error: Option<String>,
    started_at: String,
    ended_at: Option<String>,
    elapsed_seconds: f64,
    pacing: PacingDoc,
    throttled_requests: Option<u64>,
    retried_findings: Option<u64>,
    retries_by_code: BTreeMap<String, u64>,
    request_errors_by_code: BTreeMap<String, u64>,
    /// The run's totals (absent when the run never started), the same
    /// document as `--output json` prints, `schema_version` included.
    #[serde(serialize_with = "versioned_summary")]
    summary: Option<RunSummary>,
    /// `revert` only: what it says about the campaign it undoes.
    #[serde(skip_serializing_if = "Option::is_none")]
    revert: Option<RevertDoc>,
}

#[derive(Serialize)]
struct PacingDoc {
    requests: u64,
    /// Over the whole run's wall-clock time.
    requests_per_second: f64,
    findings_updated_per_second: Option<f64>,
    regions: BTreeMap<String, RegionDoc>,
}

#[derive(Serialize)]
struct RegionDoc {
    requests: u64,
    findings_sent: u64,
    active_seconds: f64,
    requests_per_second: Option<f64>,
    throttled_requests: u64,
    pace_reductions: u64,
    request_errors_by_code: BTreeMap<String, u64>,
    mean_latency_ms: Option<f64>,
    max_latency_ms: f64,
}

fn versioned_summary<S: serde::Serializer>(
    summary: &Option<RunSummary>,
    s: S,
) -> Result<S::Ok, S::Error> {
    summary
        .as_ref()
        .map(|inner| crate::schema::Versioned::new(crate::schema::SUMMARY, inner))
        .serialize(s)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-21T03:42:42.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Writes `doc` next to `path` and renames it over `path`.
fn write_atomically(path: &Path, doc: &impl Serialize) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        serde_json::to_writer_pretty(&mut f, doc)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display())))
}

static ACTIVE: Mutex<Option<Arc<RunReport>>> = Mutex::new(None);

fn slot() -> std::sync::MutexGuard<'static, Option<Arc<RunReport>>> {
    ACTIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Declares this process's report at `path`, starting its clock; nothing is
/// written yet. A second call is ignored: the first caller knows the most
/// (a campaign knows its file and inputs; `run_job` only the path).
pub(crate) fn register(path: &Path, command: &str, campaign: Option<&Path>, inputs: &[String]) {
    let mut slot = slot();
    if slot.is_some() {
        return;
    }
    *slot = Some(Arc::new(RunReport::new(
        path.to_owned(),
        command,
        campaign.map(Path::to_owned),
        inputs.to_vec(),
    )));
}

/// Writes the report's first version (`"state": "running"`), once the run
/// holds its lock and before any request, so that an unwritable path stops
/// the run before it does anything.
pub fn start() -> io::Result<()> {
    match active() {
        Some(r) => r.write(None),
        None => Ok(()),
    }
}

/// The report being collected, if `--report` was given.
pub(crate) fn active() -> Option<Arc<RunReport>> {
    slot().clone()
}

/// Drops the report registered so far without writing anything: its path
/// clashes with an input or another output, so writing it would destroy
/// that file.
pub(crate) fn forget() {
    slot().take();
}

/// Writes the final report, with the status the process is about to exit
/// with and the error that ended it, if any. Does nothing without a report,
/// or when another run holds the lock (the report is that run's).
pub fn finish(exit_status: i32, error: Option<String>) -> io::Result<()> {
    let Some(report) = slot().take() else {
        return Ok(());
    };
    if exit_status == super::exit::LOCKED {
        return Ok(());
    }
    report.write(Some((exit_status, error)))
}

/// Sends every event to several sinks (the progress bar and the report).
pub(crate) struct Tee(pub Vec<Arc<dyn EventSink>>);

impl EventSink for Tee {
    fn emit(&self, event: &Event) {
        for s in &self.0 {
            s.emit(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::OutcomeKind;

    #[test]
    fn retries_are_meetings_minus_final_failures() {
        let mut summary = RunSummary::default();
        summary
            .unprocessed_by_code
            .insert("ConcurrentUpdateError".into(), 7);
        summary
            .unprocessed_by_code
            .insert("FindingNotFound".into(), 3);
        summary.errors_by_code.insert("FindingNotFound".into(), 3);
        summary
            .errors_by_code
            .insert("ConcurrentUpdateError".into(), 1);
        summary.errors_by_code.insert("not_attempted".into(), 4);
        let mut req = BTreeMap::new();
        req.insert("ThrottlingException".into(), 250);
        req.insert("HTTP500".into(), 100);
        let r = retries_by_code(&req, &summary);
        let want: BTreeMap<String, u64> = [
            ("ConcurrentUpdateError".to_owned(), 6),
            ("HTTP500".to_owned(), 100),
            ("ThrottlingException".to_owned(), 250),
        ]
        .into();
        assert_eq!(r, want);
    }

    #[test]
    fn throttle_codes_are_recognised() {
        assert!(is_throttle("ThrottlingException"));
        assert!(is_throttle("TooManyRequestsException"));
        assert!(is_throttle("HTTP429"));
        assert!(!is_throttle("HTTP500"));
        assert!(!is_throttle("AccessDeniedException"));
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn the_document_follows_events_and_carries_the_final_status() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        let r = RunReport::new(path.clone(), "update", None, vec!["a.csv".into()]);
        r.write(None).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["state"], "running");
        assert!(v["exit_status"].is_null());
        let region: Arc<str> = "eu-west-1".into();
        for error in [None, Some("ThrottlingException".to_owned())] {
            r.emit(&Event::RequestSent {
                region: region.clone(),
                findings: 100,
            });
            r.emit(&Event::RequestFinished {
                region: region.clone(),
                findings: 100,
                latency: Duration::from_millis(40),
                error,
            });
        }
        let mut summary = RunSummary::default();
        summary.outcomes.insert(OutcomeKind::Updated, 100);
        summary.records = 100;
        summary.throttled = 1;
        r.record_summary(&summary);
        r.write(Some((4, Some("stopped".into())))).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["state"], "finished");
        assert_eq!(v["exit_status"], 4);
        assert_eq!(v["error"], "stopped");
        assert_eq!(v["inputs"][0], "a.csv");
        let eu = &v["pacing"]["regions"]["eu-west-1"];
        assert_eq!(eu["requests"], 2);
        assert_eq!(eu["findings_sent"], 200);
        assert_eq!(eu["throttled_requests"], 1);
        assert_eq!(eu["request_errors_by_code"]["ThrottlingException"], 1);
        assert_eq!(v["retries_by_code"]["ThrottlingException"], 100);
        assert_eq!(v["summary"]["outcomes"]["updated"], 100);
        assert!(v["ended_at"].as_str().unwrap().ends_with('Z'));
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
