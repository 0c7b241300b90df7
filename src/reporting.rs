//! Where outcomes go: the per-finding results file, the `--failed` file
//! (re-usable as input), and the run summary.
//!
//! Every input record produces exactly one [`Outcome`]; the engine hands each
//! to an [`OutcomeSink`]. [`Tally`] counts them into a [`RunSummary`], whose
//! totals therefore add up to the records read by construction, and which
//! the tests check against the results file and the emulator's counters.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::model::{FindingKey, Location, OutcomeKind};

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
}

/// Results file layout, chosen by file name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultsFormat {
    /// CSV with a header (`.csv` and anything else).
    Csv,
    /// One JSON object per line (`.jsonl`, `.ndjson`).
    JsonLines,
}

impl ResultsFormat {
    /// JSON Lines when the name ends in `.jsonl` or `.ndjson`, CSV otherwise.
    pub fn for_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("jsonl") || e.eq_ignore_ascii_case("ndjson") => {
                ResultsFormat::JsonLines
            }
            _ => ResultsFormat::Csv,
        }
    }
}

/// The columns of a results row, shared by the CSV and JSON Lines layouts.
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
        }
    }
}

enum RowWriter {
    Csv(Box<csv::Writer<File>>),
    Json(BufWriter<File>),
}

/// Writes one row per outcome to a file (`--results`, `--failed`).
pub struct ResultsWriter {
    path: PathBuf,
    writer: RowWriter,
    /// Only outcomes of these kinds are written (all when `None`).
    only: Option<Vec<OutcomeKind>>,
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
            only: None,
        })
    }

    /// A `--failed` file: findings that were not updated (failed, or not
    /// attempted because the run aborted), in a layout `update` reads back
    /// (it finds the `Id` and `ProductArn` columns by name).
    pub fn create_failed(path: &Path) -> io::Result<Self> {
        let mut w = Self::create(path)?;
        w.only = Some(vec![OutcomeKind::Failed, OutcomeKind::NotAttempted]);
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
        let res = match &mut self.writer {
            RowWriter::Csv(w) => w.serialize(&row).map_err(|e| e.to_string()),
            RowWriter::Json(w) => serde_json::to_writer(&mut *w, &row)
                .map_err(|e| e.to_string())
                .and_then(|()| w.write_all(b"\n").map_err(|e| e.to_string())),
        };
        res.map_err(|e| self.wrap(e))
    }

    fn checkpoint(&mut self) -> io::Result<()> {
        let res = match &mut self.writer {
            RowWriter::Csv(w) => w.flush(),
            RowWriter::Json(w) => w.flush(),
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
    pub findings_per_second: f64,
    /// Why the run was aborted, if it was.
    pub aborted: Option<String>,
    /// A fatal input error that stopped reading early, if any.
    pub input_error: Option<String>,
}

fn ser_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

impl RunSummary {
    /// Records with this outcome.
    pub fn count(&self, kind: OutcomeKind) -> u64 {
        self.outcomes.get(&kind).copied().unwrap_or(0)
    }

    /// Human-readable summary, several lines.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "records read:      {}", self.records);
        for kind in OutcomeKind::ALL {
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
        if let Some(why) = &self.input_error {
            let _ = writeln!(s, "input error:       {why}");
        }
        if let Some(why) = &self.aborted {
            let _ = writeln!(s, "ABORTED:           {why}");
        }
        s
    }
}

/// Counts outcomes; forwards them to any number of other sinks.
pub struct Tally {
    summary: RunSummary,
    sinks: Vec<Box<dyn OutcomeSink>>,
}

impl Tally {
    /// A tally forwarding to `sinks`.
    pub fn new(sinks: Vec<Box<dyn OutcomeSink>>) -> Self {
        Tally {
            summary: RunSummary::default(),
            sinks,
        }
    }

    /// The totals so far (the engine fills in request counters and timing).
    pub fn summary_mut(&mut self) -> &mut RunSummary {
        &mut self.summary
    }

    /// Ends the tally and returns the summary.
    pub fn into_summary(self) -> RunSummary {
        self.summary
    }
}

impl OutcomeSink for Tally {
    fn record(&mut self, outcome: &Outcome) -> io::Result<()> {
        self.summary.records += 1;
        *self.summary.outcomes.entry(outcome.kind).or_default() += 1;
        if matches!(
            outcome.kind,
            OutcomeKind::Failed | OutcomeKind::Invalid | OutcomeKind::NotAttempted
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
