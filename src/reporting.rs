//! Where outcomes go: the per-finding results file, the `--failed` file
//! (re-usable as input), and the run summary.
//!
//! Every input record produces exactly one [`Outcome`]; the engine hands each
//! to an [`OutcomeSink`]. [`Tally`] counts them into a [`RunSummary`], whose
//! totals therefore add up to the records read by construction, and which
//! the tests check against the results file and the emulator's counters.
//!
//! A results file written with [`ResultsWriter::journal`] is the run's
//! journal: appended to and synced at every checkpoint, so that a resumed
//! run (`crate::journal`) knows what an interrupted one recorded. A resumed
//! run does not record again what earlier runs did; the summary counts those
//! rows apart ([`RunSummary::already_done`]) and adds them up over all runs.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::decision::Decision;
use crate::model::{CurrentState, FindingKey, Location, OutcomeKind};

/// The final outcome of one input record.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The record it is about.
    pub location: Location,
    /// The finding, when its identifiers could be read.
    pub key: Option<FindingKey>,
    /// The Region it was (or would have been) sent to.
    pub region: Option<Arc<str>>,
    /// What happened.
    pub kind: OutcomeKind,
    /// The error code (`FindingNotFound`, `ConcurrentUpdateError`, ...) for
    /// failures; the column for invalid records.
    pub code: Option<String>,
    /// Details for humans.
    pub message: Option<String>,
    /// Requests that carried this finding (0 for invalid/duplicate/not attempted).
    pub attempts: u32,
    /// For updated findings: the decision applied. For findings not
    /// updated (failed, not attempted, unknown): the effective decision
    /// meant for them, when known, which the `--failed` file carries as
    /// per-row decision columns.
    pub applied: Option<Arc<Decision>>,
    /// For findings that were or may have been applied ([`maybe_applied`])
    /// whose input recorded their state: the values the applied fields held
    /// before (an ASFF fragment, see [`crate::revert`]).
    pub prior: Option<Arc<serde_json::Value>>,
    /// The finding's state as the input recorded it, when it did: the
    /// `--failed` file carries it (`recorded_state`), so that the file fed
    /// back knows what its findings held and the next run stays revertible.
    pub state: Option<Arc<CurrentState>>,
}

/// Receives every outcome, once.
pub trait OutcomeSink: Send {
    /// Records one outcome.
    fn record(&mut self, outcome: &Outcome) -> io::Result<()>;
    /// Called after each completed request: a good moment to flush.
    fn checkpoint(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// Called once at the end.
    fn finish(&mut self) -> io::Result<()> {
        self.checkpoint()
    }
    /// Whether [`OutcomeSink::sending`] is wanted (computing what it is
    /// given costs a little per finding).
    fn wants_sending(&self) -> bool {
        false
    }
    /// Called as a request leaves, before it is sent, with each of its
    /// findings on its first attempt, as an `unknown` outcome carrying the
    /// decision and the prior values: what a run killed before the answer
    /// leaves behind (the journal's in-flight log, which `revert` reads).
    fn sending(&mut self, _findings: &[Outcome]) -> io::Result<()> {
        Ok(())
    }
}

/// Results file layout, chosen by file name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ResultsFormat {
    /// CSV with a header (`.csv` and anything else).
    Csv,
    /// One JSON object per line (`.jsonl`, `.ndjson`).
    JsonLines,
}

impl ResultsFormat {
    /// JSON Lines when the name ends in `.jsonl` or `.ndjson`, CSV otherwise.
    pub(crate) fn for_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("jsonl") || e.eq_ignore_ascii_case("ndjson") => {
                ResultsFormat::JsonLines
            }
            _ => ResultsFormat::Csv,
        }
    }
}

/// The columns of a results file, in order: the CSV header, and the keys of
/// each JSON Lines object.
pub(crate) const RESULT_COLUMNS: [&str; 11] = [
    "file",
    "row",
    "Id",
    "ProductArn",
    "region",
    "outcome",
    "error_code",
    "error_message",
    "attempts",
    "applied",
    "prior",
];

/// The column a `BatchUpdateFindingsV2` run's CSV results file has after
/// [`RESULT_COLUMNS`]: the `cloud.account.uid` of a triple key (empty for a
/// `metadata.uid` key), without which `revert` could not name the finding
/// again. A `BatchUpdateFindings` run's CSV keeps the 11 columns; JSON Lines
/// rows carry the member only when it is set.
pub(crate) const ACCOUNT_COLUMN: &str = "CloudAccountUid";

/// The columns of a results row, shared by the CSV and JSON Lines layouts
/// (in the order of [`RESULT_COLUMNS`]).
#[derive(Serialize)]
struct ResultRow<'a> {
    file: &'a str,
    row: u64,
    #[serde(rename = "Id")]
    id: &'a str,
    #[serde(rename = "ProductArn")]
    product_arn: &'a str,
    region: &'a str,
    outcome: &'static str,
    error_code: &'a str,
    error_message: &'a str,
    attempts: u32,
    /// The decision applied, as the `BatchUpdateFindings` members in JSON
    /// (empty unless updated).
    applied: String,
    /// What the applied fields held before, as JSON (empty when unknown).
    prior: String,
    /// `cloud.account.uid` of a `BatchUpdateFindingsV2` triple: in JSON
    /// Lines only when set; in CSV, the last column ([`ACCOUNT_COLUMN`]) of
    /// a V2 run's file only (written by hand there).
    #[serde(rename = "CloudAccountUid", skip_serializing_if = "str::is_empty")]
    cloud_account_uid: &'a str,
}

impl<'a> ResultRow<'a> {
    fn new(o: &'a Outcome) -> Self {
        ResultRow {
            file: &o.location.file,
            row: o.location.row,
            id: o.key.as_ref().map_or("", |k| &k.id),
            product_arn: o.key.as_ref().map_or("", |k| &k.product_arn),
            region: o.region.as_deref().unwrap_or(""),
            outcome: o.kind.as_str(),
            error_code: o.code.as_deref().unwrap_or(""),
            error_message: o.message.as_deref().unwrap_or(""),
            attempts: o.attempts,
            // An updated finding had its decision applied; an `unknown`
            // one, or a `not_attempted` one a request carried, may have
            // (`revert` restores them). Other outcomes may carry the
            // decision meant (for `--failed`), never written here.
            applied: o
                .applied
                .as_ref()
                .filter(|_| maybe_applied(o))
                .and_then(|d| serde_json::to_string(&**d).ok())
                .unwrap_or_default(),
            prior: o.prior.as_ref().map(|v| v.to_string()).unwrap_or_default(),
            cloud_account_uid: o
                .key
                .as_ref()
                .and_then(|k| k.account_uid.as_deref())
                .unwrap_or(""),
        }
    }
}

/// Whether the CSV results file `path` (not empty) begins with the header
/// of a `BatchUpdateFindingsV2` run's results ([`ACCOUNT_COLUMN`] last).
fn has_account_column(path: &Path) -> io::Result<bool> {
    let file = File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display())))?;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(io::Read::take(file, 4096));
    let mut header = csv::ByteRecord::new();
    // A header cut short (or unreadable) is refused by the journal's own
    // scan before any writer opens the file.
    Ok(rdr.read_byte_record(&mut header).unwrap_or(false)
        && header.len() == RESULT_COLUMNS.len() + 1
        && header.get(RESULT_COLUMNS.len()) == Some(ACCOUNT_COLUMN.as_bytes()))
}

/// Whether an outcome's finding was or may have been changed: `updated`,
/// `unknown`, or `not_attempted` after a request carried it.
pub fn maybe_applied(o: &Outcome) -> bool {
    match o.kind {
        OutcomeKind::Updated | OutcomeKind::Unknown => true,
        OutcomeKind::NotAttempted => o.attempts > 0,
        _ => false,
    }
}

enum RowWriter {
    Csv(Box<csv::Writer<File>>),
    Json(BufWriter<File>),
}

/// The per-row decision columns of a CSV `--failed` file, after
/// [`RESULT_COLUMNS`]: each row's effective decision under the ASFF names
/// the readers take as per-row decisions (`--row-decisions`), so that the
/// file fed back re-applies exactly what was not applied. An empty cell:
/// the decision does not set that field.
///
/// The last three are the `BatchUpdateFindingsV2` members (the new
/// Security Hub), set on the rows of a V2 run and empty otherwise.
pub(crate) const FAILED_DECISION_COLUMNS: [&str; 15] = [
    "Workflow.Status",
    "Note.Text",
    "Note.UpdatedBy",
    "Severity.Label",
    "Severity.Normalized",
    "Severity.Product",
    "VerificationState",
    "Confidence",
    "Criticality",
    "Types",
    "UserDefinedFields",
    "RelatedFindings",
    "StatusId",
    "SeverityId",
    "Comment",
];

/// The last column of a CSV `--failed` file (and a member of each JSON
/// Lines `--failed` row): the state the row came with, as the input
/// recorded it, an ASFF fragment in JSON (`{"Workflow":{"Status":"NEW"},
/// "Note":null,...}`; see `docs/outputs.md`). The readers take a column or
/// member of this name as the record's whole state, never as a decision.
pub(crate) const RECORDED_STATE_COLUMN: &str = "recorded_state";

/// A JSON Lines `--failed` row: the results columns, then the decision
/// meant for the finding as the `BatchUpdateFindings` members (`decision`,
/// which the JSON reader takes with `--row-decisions`), then the state it
/// came with (`recorded_state`).
#[derive(Serialize)]
struct FailedJsonRow<'a> {
    #[serde(flatten)]
    row: ResultRow<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decision: Option<&'a Decision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recorded_state: Option<serde_json::Value>,
}

/// The `recorded_state` of an outcome, if its input recorded any. The
/// account of a `BatchUpdateFindingsV2` triple key is written as
/// `AwsAccountId` when the state does not have it, so that the file fed
/// back names the same finding (the readers make the triple from `Id`,
/// `ProductArn` and the recorded account).
fn recorded_state(o: &Outcome) -> Option<serde_json::Value> {
    let mut v = o
        .state
        .as_deref()
        .map(crate::source::recorded::to_json)
        .unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new()));
    if let (Some(account), Some(m)) = (
        o.key.as_ref().and_then(|k| k.account_uid.as_deref()),
        v.as_object_mut(),
    ) {
        m.entry("AwsAccountId")
            .or_insert_with(|| serde_json::json!(account));
    }
    Some(v).filter(|v| v.as_object().is_some_and(|m| !m.is_empty()))
}

/// The cells of [`FAILED_DECISION_COLUMNS`] for one decision.
fn decision_cells(d: Option<&Decision>) -> [String; 15] {
    let Some(d) = d else {
        return Default::default();
    };
    let name = |v: serde_json::Value| match v {
        serde_json::Value::String(s) => s,
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    let json = |v: Option<serde_json::Value>| v.map(|v| v.to_string()).unwrap_or_default();
    let sev = d.severity.as_ref();
    [
        d.workflow
            .as_ref()
            .map(|w| name(serde_json::to_value(w.status).unwrap_or_default()))
            .unwrap_or_default(),
        d.note.as_ref().map(|n| n.text.clone()).unwrap_or_default(),
        d.note
            .as_ref()
            .map(|n| n.updated_by.clone())
            .unwrap_or_default(),
        sev.and_then(|s| s.label)
            .map(|l| name(serde_json::to_value(l).unwrap_or_default()))
            .unwrap_or_default(),
        sev.and_then(|s| s.normalized)
            .map(|n| n.to_string())
            .unwrap_or_default(),
        sev.and_then(|s| s.product.as_ref())
            .map(|p| name(serde_json::to_value(p).unwrap_or_default()))
            .unwrap_or_default(),
        d.verification_state
            .map(|v| name(serde_json::to_value(v).unwrap_or_default()))
            .unwrap_or_default(),
        d.confidence.map(|n| n.to_string()).unwrap_or_default(),
        d.criticality.map(|n| n.to_string()).unwrap_or_default(),
        json(d.types.as_ref().map(|t| serde_json::json!(t))),
        json(d.user_defined_fields.as_ref().map(|m| serde_json::json!(m))),
        json(
            d.related_findings
                .as_ref()
                .and_then(|r| serde_json::to_value(r).ok()),
        ),
        d.status_id.map(|n| n.to_string()).unwrap_or_default(),
        d.severity_id.map(|n| n.to_string()).unwrap_or_default(),
        d.comment.clone().unwrap_or_default(),
    ]
}

/// Writes one row per outcome to a file (`--results`, `--failed`).
pub struct ResultsWriter {
    path: PathBuf,
    writer: RowWriter,
    /// A `--failed` file: the results columns, then each row's decision
    /// ([`FAILED_DECISION_COLUMNS`], in JSON Lines `decision`) and the
    /// state it came with ([`RECORDED_STATE_COLUMN`]).
    with_decisions: bool,
    /// Only outcomes of these kinds are written (all when `None`).
    only: Option<Vec<OutcomeKind>>,
    /// Checkpoints sync the file to disk, not only flush it (a journal).
    durable: bool,
    /// A journal's in-flight log ([`crate::journal::in_flight_path`]).
    in_flight: Option<Box<ResultsWriter>>,
    /// CSV rows end with [`ACCOUNT_COLUMN`] (a `BatchUpdateFindingsV2`
    /// run's results).
    account_column: bool,
    /// A journal's log of failed rows with their decisions and recorded
    /// state ([`crate::journal::failed_log_path`]).
    failed_log: Option<Box<ResultsWriter>>,
}

impl ResultsWriter {
    /// Creates (truncates) `path`; the layout follows its extension.
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = File::create(path).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display()))
        })?;
        let writer = match ResultsFormat::for_path(path) {
            ResultsFormat::Csv => RowWriter::Csv(Box::new(csv::Writer::from_writer(file))),
            ResultsFormat::JsonLines => RowWriter::Json(BufWriter::new(file)),
        };
        Ok(ResultsWriter {
            path: path.to_owned(),
            writer,
            with_decisions: false,
            only: None,
            durable: false,
            in_flight: None,
            account_column: false,
            failed_log: None,
        })
    }

    /// A results file kept as a journal: opened for appending (created if
    /// missing; emptied first when `fresh`), with the CSV header written
    /// only into an empty file, and synced to disk (`fdatasync`) at every
    /// checkpoint so that what was recorded survives a crash. Beside it,
    /// its in-flight log ([`crate::journal::in_flight_path`]) receives each
    /// finding as its first request leaves ([`OutcomeSink::sending`]), and
    /// its failed log ([`crate::journal::failed_log_path`]) each `failed`
    /// row as a `--failed` file writes it (flushed at checkpoints, not
    /// synced), for the `--failed` file of a later `--resume`.
    ///
    /// `v2`: a `BatchUpdateFindingsV2` run, whose CSV rows end with
    /// [`ACCOUNT_COLUMN`]. A file that has its header already keeps the
    /// layout the header says (a resumed run of an earlier release).
    pub fn journal(path: &Path, fresh: bool, v2: bool) -> io::Result<Self> {
        let mut journal = Self::append_to(path, fresh, v2)?;
        journal.durable = true;
        let log = crate::journal::in_flight_path(path);
        journal.in_flight = Some(Box::new(Self::append_to(&log, fresh, v2)?));
        let mut failed = Self::append_to(&crate::journal::failed_log_path(path), fresh, v2)?;
        failed.only = Some(vec![OutcomeKind::Failed]);
        failed.with_decisions = true;
        journal.failed_log = Some(Box::new(failed));
        Ok(journal)
    }

    /// `path` for appending (created, or truncated when `fresh`), with the
    /// header row only when it is empty; `v2` as for [`Self::journal`].
    fn append_to(path: &Path, fresh: bool, v2: bool) -> io::Result<Self> {
        let mut opts = OpenOptions::new();
        if fresh {
            opts.write(true).create(true).truncate(true);
        } else {
            opts.append(true).create(true);
        }
        let file = opts.open(path).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display()))
        })?;
        let empty = file.metadata()?.len() == 0;
        let format = ResultsFormat::for_path(path);
        let account_column =
            format == ResultsFormat::Csv && if empty { v2 } else { has_account_column(path)? };
        let writer = match format {
            ResultsFormat::Csv if account_column => {
                // Rows are written by hand: so is the header.
                let mut w = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(file);
                if empty {
                    w.write_record(RESULT_COLUMNS.iter().chain([&ACCOUNT_COLUMN]))
                        .map_err(|e| {
                            io::Error::other(format!("cannot write {}: {e}", path.display()))
                        })?;
                }
                RowWriter::Csv(Box::new(w))
            }
            ResultsFormat::Csv => RowWriter::Csv(Box::new(
                csv::WriterBuilder::new()
                    .has_headers(empty)
                    .from_writer(file),
            )),
            ResultsFormat::JsonLines => RowWriter::Json(BufWriter::new(file)),
        };
        Ok(ResultsWriter {
            path: path.to_owned(),
            writer,
            with_decisions: false,
            only: None,
            durable: false,
            in_flight: None,
            account_column,
            failed_log: None,
        })
    }

    /// A `--failed` file: findings that were not updated (failed, or not
    /// attempted because the run aborted), in a layout `update` reads back
    /// (it finds the `Id` and `ProductArn` columns by name).
    pub(crate) fn create_failed(path: &Path) -> io::Result<Self> {
        let mut w = Self::create(path)?;
        w.only = Some(vec![
            OutcomeKind::Failed,
            OutcomeKind::NotAttempted,
            OutcomeKind::Unknown,
        ]);
        if let RowWriter::Csv(csv) = &mut w.writer {
            // The header by hand: the rows are written as plain records.
            let header: Vec<&str> = RESULT_COLUMNS
                .iter()
                .chain(FAILED_DECISION_COLUMNS.iter())
                .chain(std::iter::once(&RECORDED_STATE_COLUMN))
                .copied()
                .collect();
            csv.write_record(&header)
                .map_err(|e| io::Error::other(format!("cannot write {}: {e}", path.display())))?;
        }
        w.with_decisions = true;
        Ok(w)
    }

    fn wrap(&self, e: impl std::fmt::Display) -> io::Error {
        io::Error::other(format!("cannot write {}: {e}", self.path.display()))
    }
}

impl OutcomeSink for ResultsWriter {
    fn record(&mut self, outcome: &Outcome) -> io::Result<()> {
        if let Some(only) = &self.only
            && (!only.contains(&outcome.kind) || outcome.key.is_none())
        {
            return Ok(());
        }
        let row = ResultRow::new(outcome);
        let with_decisions = self.with_decisions;
        let account_column = self.account_column;
        let res = match &mut self.writer {
            RowWriter::Csv(w) if with_decisions => {
                let mut cells = vec![
                    row.file.to_owned(),
                    row.row.to_string(),
                    row.id.to_owned(),
                    row.product_arn.to_owned(),
                    row.region.to_owned(),
                    row.outcome.to_owned(),
                    row.error_code.to_owned(),
                    row.error_message.to_owned(),
                    row.attempts.to_string(),
                    row.applied.clone(),
                    row.prior.clone(),
                ];
                cells.extend(decision_cells(outcome.applied.as_deref()));
                cells.push(
                    recorded_state(outcome)
                        .map(|v| v.to_string())
                        .unwrap_or_default(),
                );
                w.write_record(&cells).map_err(|e| e.to_string())
            }
            RowWriter::Csv(w) if account_column => w
                .write_record([
                    row.file,
                    &row.row.to_string(),
                    row.id,
                    row.product_arn,
                    row.region,
                    row.outcome,
                    row.error_code,
                    row.error_message,
                    &row.attempts.to_string(),
                    &row.applied,
                    &row.prior,
                    row.cloud_account_uid,
                ])
                .map_err(|e| e.to_string()),
            RowWriter::Csv(w) => w
                .serialize(ResultRow {
                    cloud_account_uid: "",
                    ..row
                })
                .map_err(|e| e.to_string()),
            RowWriter::Json(w) if with_decisions => serde_json::to_writer(
                &mut *w,
                &crate::schema::VersionedLast {
                    inner: &FailedJsonRow {
                        row,
                        decision: outcome.applied.as_deref(),
                        recorded_state: recorded_state(outcome),
                    },
                    schema_version: crate::schema::RESULTS,
                },
            )
            .map_err(|e| e.to_string())
            .and_then(|()| w.write_all(b"\n").map_err(|e| e.to_string())),
            RowWriter::Json(w) => serde_json::to_writer(
                &mut *w,
                &crate::schema::VersionedLast {
                    inner: &row,
                    schema_version: crate::schema::RESULTS,
                },
            )
            .map_err(|e| e.to_string())
            .and_then(|()| w.write_all(b"\n").map_err(|e| e.to_string())),
        };
        res.map_err(|e| self.wrap(e))?;
        if let Some(log) = &mut self.failed_log {
            log.record(outcome)?;
        }
        Ok(())
    }

    fn wants_sending(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Written and flushed (handed to the kernel: it survives `kill -9`)
    /// before the request leaves; synced with the journal's checkpoints.
    fn sending(&mut self, findings: &[Outcome]) -> io::Result<()> {
        let Some(log) = &mut self.in_flight else {
            return Ok(());
        };
        for o in findings {
            log.record(o)?;
        }
        log.checkpoint()
    }

    fn checkpoint(&mut self) -> io::Result<()> {
        if let Some(log) = &mut self.failed_log {
            log.checkpoint()?;
        }
        if self.durable
            && let Some(log) = &mut self.in_flight
        {
            log.durable = true;
            let synced = log.checkpoint();
            log.durable = false;
            synced?;
        }
        let durable = self.durable;
        let res = match &mut self.writer {
            RowWriter::Csv(w) => w.flush().and_then(|()| {
                if durable {
                    w.get_ref().sync_data()
                } else {
                    Ok(())
                }
            }),
            RowWriter::Json(w) => w.flush().and_then(|()| {
                if durable {
                    w.get_ref().sync_data()
                } else {
                    Ok(())
                }
            }),
        };
        res.map_err(|e| self.wrap(e))
    }
}

/// Run totals. `records` always equals the sum of `outcomes`.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct RunSummary {
    /// Input records read.
    pub records: u64,
    /// Records per outcome.
    pub outcomes: BTreeMap<OutcomeKind, u64>,
    /// Failed findings per error code (and invalid records per reason column).
    pub errors_by_code: BTreeMap<String, u64>,
    /// Requests sent (every attempt).
    pub requests: u64,
    /// Requests answered with throttling.
    pub throttled: u64,
    /// Findings sent again after a failure or throttle.
    pub retries: u64,
    /// Per-finding error codes seen in responses, retried or not.
    pub unprocessed_by_code: BTreeMap<String, u64>,
    /// Wall-clock time of the run.
    #[serde(serialize_with = "ser_secs")]
    pub elapsed: Duration,
    /// Findings updated per second of wall-clock time.
    pub(crate) findings_per_second: f64,
    /// Why the run was aborted, if it was.
    pub aborted: Option<String>,
    /// A fatal input error that stopped reading early, if any.
    pub input_error: Option<String>,
    /// Why the run stopped early (a signal, the time budget) leaving work
    /// to do: findings recorded `not_attempted` with code `Stopped`, or
    /// input not read. Resuming finishes it.
    pub stopped: Option<String>,
    /// Input rows skipped because an earlier run on the same journal
    /// recorded their final outcome (`--resume`); not in `records`.
    pub already_done: u64,
    /// Those rows by the outcome recorded for them.
    pub earlier_outcomes: BTreeMap<OutcomeKind, u64>,
    /// Outcomes over every run on the journal: `outcomes` plus
    /// `earlier_outcomes`. Adds up to `records + already_done`.
    pub all_runs: BTreeMap<OutcomeKind, u64>,
}

fn ser_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

impl RunSummary {
    /// Records with this outcome.
    pub fn count(&self, kind: OutcomeKind) -> u64 {
        self.outcomes.get(&kind).copied().unwrap_or(0)
    }

    /// Rows with this outcome over every run on the journal (this run's
    /// and the rows an earlier run had settled).
    pub(crate) fn count_all_runs(&self, kind: OutcomeKind) -> u64 {
        self.count(kind) + self.earlier_outcomes.get(&kind).copied().unwrap_or(0)
    }

    /// Fills `all_runs` from `outcomes` and `earlier_outcomes`.
    pub(crate) fn add_up_runs(&mut self) {
        let mut all = self.outcomes.clone();
        for (k, n) in &self.earlier_outcomes {
            *all.entry(*k).or_default() += n;
        }
        self.all_runs = all;
    }

    /// Human-readable summary, several lines.
    pub(crate) fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "records read:      {}", self.records);
        for kind in OutcomeKind::ALL {
            // `unknown` is rare: shown only when it happened.
            if kind == OutcomeKind::Unknown && self.count(kind) == 0 {
                continue;
            }
            let _ = writeln!(s, "  {:<16} {}", format!("{kind}:"), self.count(kind));
        }
        if !self.errors_by_code.is_empty() {
            let _ = writeln!(s, "not updated, by code:");
            for (code, n) in &self.errors_by_code {
                let _ = writeln!(s, "  {code:<32} {n}");
            }
        }
        if !self.unprocessed_by_code.is_empty() {
            let _ = writeln!(s, "unprocessed responses, by code (before retries):");
            for (code, n) in &self.unprocessed_by_code {
                let _ = writeln!(s, "  {code:<32} {n}");
            }
        }
        let _ = writeln!(
            s,
            "requests:          {} ({} throttled, {} findings retried)",
            self.requests, self.throttled, self.retries
        );
        let _ = writeln!(
            s,
            "elapsed:           {:.1} s ({:.0} findings updated/s)",
            self.elapsed.as_secs_f64(),
            self.findings_per_second
        );
        if self.already_done > 0 {
            let by_kind = |m: &BTreeMap<OutcomeKind, u64>| {
                OutcomeKind::ALL
                    .iter()
                    .filter_map(|k| m.get(k).filter(|n| **n > 0).map(|n| format!("{n} {k}")))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                s,
                "already done in earlier runs: {} rows ({})",
                self.already_done,
                by_kind(&self.earlier_outcomes)
            );
            let all: u64 = self.all_runs.values().sum();
            let _ = writeln!(
                s,
                "all runs:          {all} rows ({})",
                by_kind(&self.all_runs)
            );
        }
        if let Some(why) = &self.input_error {
            let _ = writeln!(s, "input error:       {why}");
        }
        if let Some(why) = &self.stopped {
            let _ = writeln!(
                s,
                "STOPPED:           {why}; run again with --resume to finish"
            );
        }
        if let Some(why) = &self.aborted {
            let _ = writeln!(s, "ABORTED:           {why}");
        }
        s
    }
}

/// Counts outcomes; forwards them to any number of other sinks.
pub(crate) struct Tally {
    summary: RunSummary,
    sinks: Vec<Box<dyn OutcomeSink>>,
}

impl Tally {
    /// A tally forwarding to `sinks`.
    pub(crate) fn new(sinks: Vec<Box<dyn OutcomeSink>>) -> Self {
        Tally {
            summary: RunSummary::default(),
            sinks,
        }
    }

    /// The totals so far (the engine fills in request counters and timing).
    pub(crate) fn summary_mut(&mut self) -> &mut RunSummary {
        &mut self.summary
    }

    /// Counts a row skipped because an earlier run recorded its final
    /// outcome `kind` (nothing is forwarded: it is recorded already).
    pub(crate) fn already_done(&mut self, kind: OutcomeKind) {
        self.summary.already_done += 1;
        *self.summary.earlier_outcomes.entry(kind).or_default() += 1;
    }

    /// Ends the tally and returns the summary.
    pub(crate) fn into_summary(mut self) -> RunSummary {
        self.summary.add_up_runs();
        self.summary
    }
}

impl OutcomeSink for Tally {
    fn record(&mut self, outcome: &Outcome) -> io::Result<()> {
        self.summary.records += 1;
        *self.summary.outcomes.entry(outcome.kind).or_default() += 1;
        if matches!(
            outcome.kind,
            OutcomeKind::Failed
                | OutcomeKind::Invalid
                | OutcomeKind::NotAttempted
                | OutcomeKind::Unknown
        ) {
            let code = match (outcome.kind, &outcome.code) {
                (OutcomeKind::Invalid, _) => "invalid record".to_owned(),
                (_, Some(c)) => c.clone(),
                (_, None) => outcome.kind.as_str().to_owned(),
            };
            *self.summary.errors_by_code.entry(code).or_default() += 1;
        }
        for s in &mut self.sinks {
            s.record(outcome)?;
        }
        Ok(())
    }

    fn wants_sending(&self) -> bool {
        self.sinks.iter().any(|s| s.wants_sending())
    }

    fn sending(&mut self, findings: &[Outcome]) -> io::Result<()> {
        for s in &mut self.sinks {
            s.sending(findings)?;
        }
        Ok(())
    }

    fn checkpoint(&mut self) -> io::Result<()> {
        for s in &mut self.sinks {
            s.checkpoint()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        for s in &mut self.sinks {
            s.finish()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(row: u64, kind: OutcomeKind) -> Outcome {
        Outcome {
            location: Location {
                file: "in.csv".into(),
                row,
                detail: None,
            },
            key: Some(FindingKey::new("f", "p")),
            region: Some("us-east-1".into()),
            kind,
            code: None,
            message: None,
            attempts: 1,
            applied: None,
            prior: None,
            state: None,
        }
    }

    #[test]
    fn result_columns_are_the_serialized_row() {
        let o = outcome(1, OutcomeKind::Updated);
        let v = serde_json::to_value(ResultRow::new(&o)).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = RESULT_COLUMNS.to_vec();
        want.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, want);
    }

    #[test]
    fn a_journal_appends_with_one_header_and_checkpoints_reach_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut w = ResultsWriter::journal(&path, true, false).unwrap();
        w.record(&outcome(1, OutcomeKind::Updated)).unwrap();
        w.checkpoint().unwrap();
        // Visible before the writer is dropped: a kill -9 now loses nothing.
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        drop(w);
        let mut w = ResultsWriter::journal(&path, false, false).unwrap();
        w.record(&outcome(2, OutcomeKind::Failed)).unwrap();
        w.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], RESULT_COLUMNS.join(","));
        assert!(lines[2].starts_with("in.csv,2,"));
        // Fresh empties it.
        drop(w);
        let w = ResultsWriter::journal(&path, true, false).unwrap();
        drop(w);
        assert_eq!(std::fs::read(&path).unwrap(), b"");
    }

    #[test]
    fn a_v2_runs_csv_journal_carries_the_account_and_keeps_the_layout_it_began_with() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.csv");
        let mut triple = outcome(1, OutcomeKind::Updated);
        triple.key = Some(FindingKey::ocsf("111122223333", "f", "p"));
        let by_uid = outcome(2, OutcomeKind::Failed);
        let mut w = ResultsWriter::journal(&path, true, true).unwrap();
        w.record(&triple).unwrap();
        w.finish().unwrap();
        drop(w);
        // Resumed by a V1 run's writer, it stays a V2 file.
        let mut w = ResultsWriter::journal(&path, false, false).unwrap();
        w.record(&by_uid).unwrap();
        w.finish().unwrap();
        drop(w);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            format!("{},{ACCOUNT_COLUMN}", RESULT_COLUMNS.join(","))
        );
        assert!(lines[1].ends_with(",111122223333"), "{text}");
        assert!(lines[2].ends_with(','), "{text}");
        // The journal's own scan reads it back, account included.
        let mut outcomes = Vec::new();
        crate::journal::earlier_failed(&path, &mut |o| {
            outcomes.push(o.clone());
            Ok(())
        })
        .unwrap();
        assert_eq!(outcomes.len(), 1);
        assert_eq!(outcomes[0].key, Some(FindingKey::new("f", "p")));
        assert!(crate::journal::check_results(&path, None).is_ok());
        // A V1 file resumed by a V2 run's writer keeps its 11 columns.
        let v1 = dir.path().join("v1.csv");
        let mut w = ResultsWriter::journal(&v1, true, false).unwrap();
        w.record(&outcome(1, OutcomeKind::Updated)).unwrap();
        w.finish().unwrap();
        drop(w);
        let mut w = ResultsWriter::journal(&v1, false, true).unwrap();
        w.record(&triple).unwrap();
        w.finish().unwrap();
        drop(w);
        let text = std::fs::read_to_string(&v1).unwrap();
        assert!(text.lines().all(|l| !l.contains("111122223333")), "{text}");
        assert!(crate::journal::check_results(&v1, None).is_ok());
    }

    #[test]
    fn summary_adds_up_over_runs() {
        let mut t = Tally::new(Vec::new());
        t.record(&outcome(3, OutcomeKind::Updated)).unwrap();
        t.already_done(OutcomeKind::Updated);
        t.already_done(OutcomeKind::Duplicate);
        let s = t.into_summary();
        assert_eq!(s.records, 1);
        assert_eq!(s.already_done, 2);
        assert_eq!(s.count_all_runs(OutcomeKind::Updated), 2);
        assert_eq!(s.all_runs.values().sum::<u64>(), s.records + s.already_done);
        let text = s.to_text();
        assert!(
            text.contains("already done in earlier runs: 2 rows (1 updated, 1 duplicate)"),
            "{text}"
        );
        assert!(
            text.contains("all runs:          3 rows (2 updated, 1 duplicate)"),
            "{text}"
        );
    }
}
