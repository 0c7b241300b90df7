//! The results file as a crash-safe journal, and what a resumed run takes
//! from it.
//!
//! With `--results`, every outcome is appended to the results file, and the
//! file is flushed and synced after each completed request
//! ([`ResultsWriter::journal`]), so whatever was recorded survives `kill -9`
//! or a power cut. Beside it, `<results>.journal.json` (the journal's
//! header, see [`JournalHeader`]) identifies what the rows are about: the
//! inputs (path, size and xxh3 hash of each file; the row count for
//! standard input), the decision, the format version, and one entry per run
//! that wrote to the journal. The header is a separate file so that the
//! results file stays a plain table with one row per outcome, readable as is
//! by any CSV or JSON Lines tool.
//!
//! [`open`] starts a journal or takes one up again: a last line cut short by
//! a crash is cut off, the header is compared with this run's inputs and
//! decision, and the rows that already have a final outcome become a
//! [`Done`] set, which the engine's reader consults to skip them.
//!
//! This module does not decide what to send, does not handle signals, and
//! does not print anything: it returns notes for the caller to show. The run
//! lock lives in [`lock`].

pub mod lock;

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::engine::DuplicatePolicy;
use crate::model::{FindingKey, Location, OutcomeKind};
use crate::reporting::{ACCOUNT_COLUMN, Outcome, RESULT_COLUMNS, ResultsFormat, ResultsWriter};

/// The `format` member of every journal header.
pub(crate) const FORMAT: &str = "sechub-triage journal";
/// The journal format this build writes and reads.
pub const VERSION: u32 = 1;

/// Errors of [`open`] and of header updates.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Reading or writing a journal file failed.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The results file already holds outcomes and `--resume` was not given.
    #[error(
        "{path} already holds {rows} outcomes of an earlier run: give --resume to carry on where it \
         stopped, or remove it (or name another --results file) to start over"
    )]
    ResumeRequired {
        /// The results file.
        path: PathBuf,
        /// Rows it holds.
        rows: u64,
    },
    /// The input or the decision is not the one the journal was written for.
    #[error("cannot resume {path}: {what}; give --force-resume to resume anyway")]
    Mismatch {
        /// The results file.
        path: PathBuf,
        /// What differs, for a human.
        what: String,
    },
    /// The results file has rows but its header file is missing.
    #[error(
        "cannot resume {path}: its header {header} is missing, so the input cannot be checked; \
         give --force-resume to resume anyway"
    )]
    HeaderMissing {
        /// The results file.
        path: PathBuf,
        /// The missing header file.
        header: PathBuf,
    },
    /// The header file cannot be used.
    #[error("{path}: not a sechub-triage journal header: {reason}")]
    BadHeader {
        /// The header file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A line other than the last is not a results row.
    #[error(
        "{path}: line {line}: not a results row ({reason}); the file is not a results file, or it was damaged"
    )]
    Damaged {
        /// The results file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
}

impl JournalError {
    fn io(path: &Path, source: io::Error) -> Self {
        JournalError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// What identifies one input of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFingerprint {
    /// The name as given on the command line (`-` for standard input); the
    /// results rows name their file the same way.
    pub name: String,
    /// Size in bytes (files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// xxh3-64 of the whole content, hex (files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) xxh3: Option<String>,
    /// Records read from standard input, once a run has read it to the end
    /// (it cannot be hashed before it is read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// For a `--filters` selection (named `query:REGIONS`): the query, with
    /// its dates absolute. Its findings change as they are updated, so the
    /// query, not the content, identifies the input; its rows are matched
    /// by finding on resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<serde_json::Value>,
}

/// Whether a row comes from a `--filters` selection (see
/// [`InputFingerprint::query`]).
pub(crate) fn is_query_input(name: &str) -> bool {
    name.starts_with("query:")
}

/// The query a journal's run recorded, if its input was a `--filters` selection.
pub(crate) fn recorded_query(results: &Path) -> Result<Option<serde_json::Value>, JournalError> {
    Ok(
        read_header(&header_path(results))?
            .and_then(|h| h.inputs.into_iter().find_map(|i| i.query)),
    )
}

impl InputFingerprint {
    /// The fingerprint of a `--filters` selection: its name and query.
    pub(crate) fn of_query(name: &str, query: serde_json::Value) -> Self {
        InputFingerprint {
            name: name.to_owned(),
            size: None,
            xxh3: None,
            rows: None,
            query: Some(query),
        }
    }

    /// Fingerprints one input: size and xxh3 of a file (read once, in
    /// full), or a placeholder for standard input (`-`).
    pub fn of(name: &str) -> Result<Self, JournalError> {
        if name == "-" {
            return Ok(InputFingerprint {
                name: name.to_owned(),
                size: None,
                xxh3: None,
                rows: None,
                query: None,
            });
        }
        Self::of_copy(name, Path::new(name))
    }

    /// Fingerprints the input named `name` from the bytes at `path`: the
    /// file itself, or the copy of an input that can be read only once (a
    /// pipe, a FIFO, process substitution), saved before the plan pass.
    pub(crate) fn of_copy(name: &str, path: &Path) -> Result<Self, JournalError> {
        let mut file = File::open(path).map_err(|e| JournalError::io(path, e))?;
        let mut hasher = twox_hash::XxHash3_64::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(JournalError::io(path, e)),
            };
            hasher.write(&buf[..n]);
            size += n as u64;
        }
        Ok(InputFingerprint {
            name: name.to_owned(),
            size: Some(size),
            xxh3: Some(format!("{:016x}", hasher.finish())),
            rows: None,
            query: None,
        })
    }

    fn is_stdin(&self) -> bool {
        self.name == "-" && self.size.is_none()
    }
}

/// One run that wrote to a journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunEntry {
    /// Random, unique per run.
    pub run_id: String,
    /// RFC 3339, UTC, to the second.
    pub started: String,
    /// Process id.
    pub pid: u32,
    /// Host name (`unknown` when it cannot be read).
    pub host: String,
    /// Whether it took up an existing journal.
    pub resumed: bool,
}

impl RunEntry {
    /// An entry for the current process, starting now, with a new run id.
    pub fn now() -> Self {
        RunEntry {
            run_id: format!("{:016x}", rand::random::<u64>()),
            started: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            pid: std::process::id(),
            host: host_name(),
            resumed: false,
        }
    }
}

/// This machine's host name, read from the kernel where it says (Linux),
/// else from `HOSTNAME`; `unknown` otherwise. Informational only.
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// What a run's rows are about: compared on resume.
#[derive(Clone, Debug, PartialEq)]
pub struct RunIdentity {
    /// Every input, in order.
    pub inputs: Vec<InputFingerprint>,
    /// The job's decision as JSON (the `BatchUpdateFindings` members).
    pub decision: serde_json::Value,
    /// `--duplicates`: which of several rows naming one finding is applied
    /// (a resumed run must choose the same rows as the run it carries on).
    pub(crate) duplicates: DuplicatePolicy,
}

/// The journal's header, `<results>.journal.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JournalHeader {
    /// Always [`FORMAT`].
    pub format: String,
    /// The format version ([`VERSION`]).
    pub version: u32,
    /// The results file's row layout ([`crate::schema::RESULTS`]; absent,
    /// so read as 1, in journals of earlier releases).
    #[serde(default = "first_results_schema")]
    pub schema_version: u32,
    /// The inputs the rows come from.
    pub inputs: Vec<InputFingerprint>,
    /// The job's decision.
    pub decision: serde_json::Value,
    /// `--duplicates` (`refuse` when not given); absent in journals of
    /// earlier releases, which are not checked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) duplicates: Option<DuplicatePolicy>,
    /// Every run that wrote to the journal, oldest first.
    pub runs: Vec<RunEntry>,
}

impl JournalHeader {
    fn new(identity: &RunIdentity, run: RunEntry) -> Self {
        JournalHeader {
            format: FORMAT.to_owned(),
            version: VERSION,
            schema_version: crate::schema::RESULTS,
            inputs: identity.inputs.clone(),
            decision: identity.decision.clone(),
            duplicates: Some(identity.duplicates),
            runs: vec![run],
        }
    }
}

fn first_results_schema() -> u32 {
    1
}

/// Where the header of the journal `results` lives.
pub(crate) fn header_path(results: &Path) -> PathBuf {
    let mut name = results.as_os_str().to_owned();
    name.push(".journal.json");
    PathBuf::from(name)
}

/// Where the in-flight log of the journal `results` lives:
/// `<results>.inflight.csv` (`.inflight.jsonl` beside a JSON Lines
/// journal). Each finding is written there, in the results layout (outcome
/// `unknown`, code [`IN_FLIGHT_CODE`], with the decision and the prior
/// values), as its first request leaves; `revert` reads the entries whose
/// input row the results file does not settle (a run killed while the
/// request was out). Started afresh with the journal, appended to on
/// resume; it is never needed by `--resume` itself.
pub(crate) fn in_flight_path(results: &Path) -> PathBuf {
    let mut name = results.as_os_str().to_owned();
    name.push(match ResultsFormat::for_path(results) {
        ResultsFormat::Csv => ".inflight.csv",
        ResultsFormat::JsonLines => ".inflight.jsonl",
    });
    PathBuf::from(name)
}

/// Where the failed log of the journal `results` lives:
/// `<results>.failed-rows.jsonl` (JSON Lines whatever the journal's
/// layout). Each `failed` row is written there as a JSON Lines `--failed`
/// file writes it (the results columns, `CloudAccountUid`, the decision
/// meant and the recorded state), right after its results row, and flushed
/// at each checkpoint. A `--resume` run's `--failed` file takes the
/// decision and state of earlier runs' failures from it
/// ([`earlier_failed`]); a row it lacks (a crash between the two writes)
/// is listed without them, as the journal has it. Started afresh with the
/// journal, appended to on resume.
pub(crate) fn failed_log_path(results: &Path) -> PathBuf {
    let mut name = results.as_os_str().to_owned();
    name.push(".failed-rows.jsonl");
    PathBuf::from(name)
}

/// A failed log entry, as read back: what the journal's row lacks.
#[derive(Deserialize)]
struct FailedLogRow {
    file: String,
    row: u64,
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "ProductArn")]
    product_arn: String,
    #[serde(rename = "CloudAccountUid", default)]
    account_uid: Option<String>,
    #[serde(default)]
    decision: Option<crate::decision::Decision>,
    #[serde(default)]
    recorded_state: Option<serde_json::Value>,
}

impl FailedLogRow {
    /// Gives `o` (a journal row of the same input row and finding) the
    /// entry's decision, recorded state and V2 account.
    fn complete(self, o: &mut Outcome) {
        let Some(key) = &mut o.key else { return };
        if key.id != self.id || key.product_arn != self.product_arn {
            return;
        }
        if let Some(account) = self.account_uid {
            key.account_uid = Some(account.into());
        }
        o.applied = self.decision.map(Arc::new);
        o.state = self
            .recorded_state
            .as_ref()
            .and_then(crate::source::recorded::from_json)
            .map(Arc::new);
    }
}

/// The failed log's entries by input row ([`row_key`]): where each starts.
/// Lines that do not parse (a torn last line) are left out. Empty when
/// there is no log (a journal written before it existed).
fn index_failed_log(log: &Path) -> HashMap<u64, u64> {
    let mut index = HashMap::new();
    let Ok(file) = File::open(log) else {
        return index;
    };
    let mut rdr = BufReader::new(file);
    let mut buf = Vec::new();
    let mut at = 0u64;
    loop {
        buf.clear();
        match rdr.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                #[derive(Deserialize)]
                struct Where {
                    file: String,
                    row: u64,
                }
                if buf.last() == Some(&b'\n')
                    && let Ok(w) = serde_json::from_slice::<Where>(&buf)
                {
                    index.insert(row_key(&w.file, w.row), at);
                }
                at += n as u64;
            }
        }
    }
    index
}

/// The failed log entry at `at` for the journal row `(file, row)`, if it is one.
fn failed_log_entry(log: &mut BufReader<File>, at: u64) -> Option<FailedLogRow> {
    log.seek(SeekFrom::Start(at)).ok()?;
    let mut line = Vec::new();
    log.read_until(b'\n', &mut line).ok()?;
    serde_json::from_slice(&line).ok()
}

/// The error code of in-flight log entries.
pub(crate) const IN_FLIGHT_CODE: &str = "InFlight";

/// Whether an outcome is final: a resumed run skips the rows that have one.
/// `not_attempted` (an abort, a stop, a connection that failed) and
/// `unknown` (sent, but no answer came) are not: those findings are sent
/// again.
pub(crate) fn is_final(kind: OutcomeKind) -> bool {
    !matches!(kind, OutcomeKind::NotAttempted | OutcomeKind::Unknown)
}

/// What to do with a results file that already holds rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResumeMode {
    /// Refuse ([`JournalError::ResumeRequired`]): never overwrite recorded outcomes.
    #[default]
    Refuse,
    /// `--resume`: carry on, if the inputs and decision are the same.
    Resume,
    /// `--force-resume`: carry on whatever changed.
    Force,
}

/// The last line of a results file, cut short by an interrupted run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// Its 1-based line number.
    pub line: u64,
    /// Bytes removed.
    pub bytes: u64,
}

/// A journal ready for this run.
pub struct Opened {
    /// Appends this run's outcomes (checkpoints sync to disk).
    pub writer: ResultsWriter,
    /// Rows already final, when the run took up an existing journal.
    pub done: Option<Arc<Done>>,
    /// The header, for updates during the run.
    pub journal: Journal,
    /// Rows read from the existing journal (0 on a fresh start).
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "checked by the journal's tests")
    )]
    pub(crate) earlier_rows: u64,
    /// A cut-off last line that was removed.
    pub torn: Option<TornTail>,
    /// What the caller should tell the user (resumed, forced, ...).
    pub notes: Vec<String>,
}

/// A journal's header, as this run wrote it.
#[derive(Debug)]
pub struct Journal {
    /// The header.
    pub header: JournalHeader,
    /// Where it is.
    pub(crate) header_path: PathBuf,
}

impl Journal {
    /// Records, once a run has read standard input to its end, how many
    /// records it held (the only fingerprint standard input has).
    pub(crate) fn record_stdin_rows(&mut self, rows: u64) -> Result<(), JournalError> {
        let mut changed = false;
        for input in &mut self.header.inputs {
            if input.is_stdin() && input.rows != Some(rows) {
                input.rows = Some(rows);
                changed = true;
            }
        }
        if changed {
            write_header(&self.header_path, &self.header)?;
        }
        Ok(())
    }
}

/// Starts the journal `results` for this run, or takes it up again.
///
/// A missing or empty results file (or one holding only its header) starts
/// fresh. One holding rows is refused unless `mode` resumes; on resume, the
/// header must match `identity` (unless forced) and a torn last line is cut
/// off. Nothing is written before those checks pass. `run` is this run's
/// entry for the header (its `resumed` is set here). `v2`: a
/// `BatchUpdateFindingsV2` run, whose new CSV results file carries each
/// triple's account ([`ResultsWriter::journal`]).
pub fn open(
    results: &Path,
    identity: &RunIdentity,
    mode: ResumeMode,
    mut run: RunEntry,
    v2: bool,
) -> Result<Opened, JournalError> {
    let header_path = header_path(results);
    let mut done = Done {
        rows: HashMap::new(),
        findings: HashSet::new(),
        force: mode == ResumeMode::Force,
    };
    let scan = match File::open(results) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Scan::default(),
        Err(e) => return Err(JournalError::io(results, e)),
        Ok(file) => {
            let layout = ResultsFormat::for_path(results);
            scan_file(results, file, layout, &mut |row| {
                done.add(&row.into_outcome());
            })?
        }
    };
    let resumed = scan.rows > 0;
    let mut notes = Vec::new();
    run.resumed = resumed;
    let header = if resumed {
        if mode == ResumeMode::Refuse {
            return Err(JournalError::ResumeRequired {
                path: results.to_owned(),
                rows: scan.rows,
            });
        }
        let forced = mode == ResumeMode::Force;
        let mut header = match read_header(&header_path)? {
            Some(h) => h,
            None if forced => {
                notes.push(format!(
                    "{} is missing: resuming without checking the input (--force-resume)",
                    header_path.display()
                ));
                JournalHeader::new(identity, run.clone())
            }
            None => {
                return Err(JournalError::HeaderMissing {
                    path: results.to_owned(),
                    header: header_path,
                });
            }
        };
        if let Some(what) = mismatch(&header, identity) {
            if !forced {
                return Err(JournalError::Mismatch {
                    path: results.to_owned(),
                    what,
                });
            }
            notes.push(format!(
                "resuming although {what} (--force-resume); findings already settled are still skipped"
            ));
            header.inputs = identity.inputs.clone();
            header.decision = identity.decision.clone();
            header.duplicates = Some(identity.duplicates);
        }
        header.runs.push(run);
        notes.push(format!(
            "resuming {}: {} rows recorded by {} earlier run(s); rows with a final outcome are skipped",
            results.display(),
            scan.rows,
            header.runs.len() - 1
        ));
        header
    } else {
        if mode != ResumeMode::Refuse {
            notes.push(format!(
                "nothing to resume in {}: starting a new journal",
                results.display()
            ));
        }
        JournalHeader::new(identity, run)
    };

    // Checks passed: from here on, files change.
    if let (true, Some(torn)) = (resumed, &scan.torn) {
        let f = OpenOptions::new()
            .write(true)
            .open(results)
            .map_err(|e| JournalError::io(results, e))?;
        f.set_len(scan.valid_len)
            .and_then(|()| f.sync_all())
            .map_err(|e| JournalError::io(results, e))?;
        notes.push(format!(
            "{}: line {} was cut short by an interrupted run; removed it ({} bytes): its finding is sent again",
            results.display(),
            torn.line,
            torn.bytes
        ));
    }
    // The header reaches the disk before the first row of this run.
    write_header(&header_path, &header)?;
    let writer =
        ResultsWriter::journal(results, !resumed, v2).map_err(|e| JournalError::io(results, e))?;
    Ok(Opened {
        writer,
        done: resumed.then(|| Arc::new(done)),
        journal: Journal {
            header,
            header_path,
        },
        earlier_rows: scan.rows,
        torn: if resumed { scan.torn } else { None },
        notes,
    })
}

/// The rows of the journal `results` that have a final outcome, read
/// without opening the journal for writing (the plan of a `--resume` run
/// covers only what is left). `None` when there is no journal or it holds
/// no row.
pub(crate) fn read_done(results: &Path, force: bool) -> Result<Option<Done>, JournalError> {
    let mut done = Done {
        rows: HashMap::new(),
        findings: HashSet::new(),
        force,
    };
    let file = match File::open(results) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(JournalError::io(results, e)),
        Ok(f) => f,
    };
    let scan = scan_file(
        results,
        file,
        ResultsFormat::for_path(results),
        &mut |row| done.add(&row.into_outcome()),
    )?;
    Ok((scan.rows > 0).then_some(done))
}

/// A results file checked the way `--resume` checks it, for a reader that
/// must not skip damaged rows (`revert`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Checked {
    /// Bytes of complete rows: read no further.
    pub(crate) valid_len: u64,
    /// A last line cut short by an interrupted run, left out.
    pub torn: Option<TornTail>,
}

/// Reads the results file `results` through the journal's own scan, so
/// that a damaged row (a line that is not a results row, an unbalanced
/// quote) is refused exactly as `--resume` refuses it, naming the line.
/// Changes nothing (a torn last line is reported, not cut off).
///
/// With `settled`, gathers the input rows ([`row_key`]) the file settles:
/// those with a row of any outcome but `not_attempted` no request carried
/// (so that a revert knows which in-flight log entries are still open).
pub(crate) fn check_results(
    results: &Path,
    mut settled: Option<&mut HashSet<u64>>,
) -> Result<Checked, JournalError> {
    let file = File::open(results).map_err(|e| JournalError::io(results, e))?;
    let scan = scan_file(
        results,
        file,
        ResultsFormat::for_path(results),
        &mut |row| {
            if let Some(set) = settled.as_deref_mut()
                && !(row.outcome == OutcomeKind::NotAttempted && row.attempts == 0)
            {
                set.insert(row_key(&row.file, row.row));
            }
        },
    )?;
    Ok(Checked {
        valid_len: scan.valid_len,
        torn: scan.torn,
    })
}

/// Passes every `failed` row of the journal `results` to `each` (for a
/// resumed run's `--failed` file, which lists the failures of every run),
/// with the decision meant for it and the state its input recorded, from
/// the journal's failed log ([`failed_log_path`]) when it has the row.
/// Call it after [`open`], which cut off any torn line. Returns the count.
///
/// Memory: an index of the failed log, 16 bytes and the hash table's
/// slack per earlier failure.
pub(crate) fn earlier_failed(
    results: &Path,
    each: &mut dyn FnMut(&Outcome) -> io::Result<()>,
) -> Result<u64, JournalError> {
    let file = File::open(results).map_err(|e| JournalError::io(results, e))?;
    let log_path = failed_log_path(results);
    let index = index_failed_log(&log_path);
    let mut log = if index.is_empty() {
        None
    } else {
        File::open(&log_path).ok().map(BufReader::new)
    };
    let mut n = 0u64;
    let mut error = None;
    scan_file(
        results,
        file,
        ResultsFormat::for_path(results),
        &mut |row| {
            if row.outcome == OutcomeKind::Failed && error.is_none() {
                n += 1;
                let at = index.get(&row_key(&row.file, row.row)).copied();
                let mut o = row.into_outcome();
                if let (Some(at), Some(log)) = (at, log.as_mut())
                    && let Some(entry) = failed_log_entry(log, at)
                    && entry.file == *o.location.file
                    && entry.row == o.location.row
                {
                    entry.complete(&mut o);
                }
                if let Err(e) = each(&o) {
                    error = Some(e);
                }
            }
        },
    )?;
    match error {
        Some(e) => Err(JournalError::io(results, e)),
        None => Ok(n),
    }
}

/// What differs between the journal's header and this run, if anything.
fn mismatch(h: &JournalHeader, now: &RunIdentity) -> Option<String> {
    if h.inputs.len() != now.inputs.len() {
        let names = |v: &[InputFingerprint]| {
            v.iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Some(format!(
            "the journal's run read {} input(s) ({}), this run names {} ({})",
            h.inputs.len(),
            names(&h.inputs),
            now.inputs.len(),
            names(&now.inputs)
        ));
    }
    for (i, (then, now)) in h.inputs.iter().zip(&now.inputs).enumerate() {
        let n = i + 1;
        if then.name != now.name {
            return Some(format!(
                "input {n} was {} and is now {}",
                then.name, now.name
            ));
        }
        if then.is_stdin() != now.is_stdin() {
            return Some(format!(
                "input {n} ({}) changed kind (file / standard input)",
                now.name
            ));
        }
        if then.size != now.size {
            return Some(format!(
                "input {n} ({}) changed: {} bytes then, {} now",
                now.name,
                then.size.unwrap_or(0),
                now.size.unwrap_or(0)
            ));
        }
        if then.query != now.query {
            let show = |q: &Option<serde_json::Value>| {
                q.as_ref()
                    .map_or_else(|| "none".to_owned(), ToString::to_string)
            };
            return Some(format!(
                "input {n} ({}): the query changed: {} then, {} now",
                now.name,
                show(&then.query),
                show(&now.query)
            ));
        }
        if then.xxh3 != now.xxh3 {
            return Some(format!(
                "input {n} ({}) changed: same size, different content (xxh3 {} then, {} now)",
                now.name,
                then.xxh3.as_deref().unwrap_or("-"),
                now.xxh3.as_deref().unwrap_or("-")
            ));
        }
    }
    if h.decision != now.decision {
        return Some(format!(
            "the decision changed: {} then, {} now",
            h.decision, now.decision
        ));
    }
    if let Some(then) = h.duplicates
        && then != now.duplicates
    {
        let name = |p: DuplicatePolicy| match p {
            DuplicatePolicy::Refuse => "none (conflicting rows refuse the run)",
            DuplicatePolicy::First => "first",
            DuplicatePolicy::Last => "last",
        };
        return Some(format!(
            "the --duplicates policy changed: {} then, {} now (it chooses which row of a finding \
             is applied; resume {})",
            name(then),
            name(now.duplicates),
            match then {
                DuplicatePolicy::Refuse => "without --duplicates",
                DuplicatePolicy::First => "with --duplicates first",
                DuplicatePolicy::Last => "with --duplicates last",
            }
        ));
    }
    None
}

fn read_header(path: &Path) -> Result<Option<JournalHeader>, JournalError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(JournalError::io(path, e)),
    };
    let bad = |reason: String| JournalError::BadHeader {
        path: path.to_owned(),
        reason,
    };
    let h: JournalHeader = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if h.format != FORMAT {
        return Err(bad(format!("format is {:?}", h.format)));
    }
    if h.version > VERSION {
        return Err(bad(format!(
            "format version {} is newer than this build reads ({VERSION}): use a newer sechub-triage",
            h.version
        )));
    }
    Ok(Some(h))
}

/// Writes the header so that a crash leaves either the old or the new one:
/// a temporary file, synced, renamed over the old one, and the directory synced.
fn write_header(path: &Path, header: &JournalHeader) -> Result<(), JournalError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let io_err = |e| JournalError::io(path, e);
    let mut text = serde_json::to_vec_pretty(header).map_err(|e| io_err(io::Error::other(e)))?;
    text.push(b'\n');
    let mut f = File::create(&tmp).map_err(|e| JournalError::io(&tmp, e))?;
    f.write_all(&text)
        .and_then(|()| f.sync_all())
        .map_err(|e| JournalError::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io_err)?;
    sync_parent_dir(path);
    Ok(())
}

/// Makes a rename durable. Best effort: not every platform can open a directory.
fn sync_parent_dir(path: &Path) {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The rows of a journal that already have a final outcome, for a resumed
/// run's reader. A 64-bit fingerprint per row and per settled finding:
/// with the hash tables' slack, under 100 bytes a row (a resume over
/// 500,000 recorded rows measured 57 MB more than one over 5,000, the
/// reader's duplicate index included).
#[derive(Debug)]
pub struct Done {
    /// Fingerprint of (file, row) → fingerprint of its finding, and its outcome.
    rows: HashMap<u64, (u64, OutcomeKind)>,
    /// Findings settled in an earlier run (updated, failed, unchanged).
    findings: HashSet<u64>,
    force: bool,
}

/// What [`Done::check`] says about a row of this run's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prior {
    /// Not recorded as final: process it.
    New,
    /// Recorded as final with this outcome: skip it (do not record it again).
    Done(OutcomeKind),
    /// This row is new, but its finding was settled in an earlier run (at
    /// another row): not to be sent again; it counts as a duplicate.
    FindingDone,
    /// The journal recorded another finding for this row: the input changed.
    Changed,
}

impl Done {
    fn add(&mut self, o: &Outcome) {
        if !is_final(o.kind) {
            return;
        }
        let key = key_print(o.key.as_ref());
        self.rows.insert(row_print(&o.location), (key, o.kind));
        if matches!(
            o.kind,
            OutcomeKind::Updated | OutcomeKind::Failed | OutcomeKind::Unchanged
        ) {
            self.findings.insert(key);
        }
    }

    /// Rows recorded as final.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// No row recorded as final.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// What to do with a row read by this run. With `--force-resume`, a
    /// changed row is treated as new (its finding is still skipped if
    /// settled).
    pub fn check(&self, location: &Location, key: Option<&FindingKey>) -> Prior {
        let k = key_print(key);
        if let Some(&(recorded, kind)) = self.rows.get(&row_print(location)) {
            if recorded == k {
                return Prior::Done(kind);
            }
            // A query's selection is read again on resume: its rows move as
            // findings are updated, so they are matched by finding.
            if !self.force && !is_query_input(&location.file) {
                return Prior::Changed;
            }
        }
        if key.is_some() && self.findings.contains(&k) {
            Prior::FindingDone
        } else {
            Prior::New
        }
    }
}

/// The reader's error when a resumed run meets a row the journal recorded
/// for another finding.
#[derive(Debug, thiserror::Error)]
#[error(
    "{location}: the journal recorded another finding for this row, so the input changed since the \
     run being resumed (give --force-resume to carry on anyway)"
)]
pub(crate) struct RowChanged {
    /// The row.
    pub location: Location,
}

fn row_print(l: &Location) -> u64 {
    row_key(&l.file, l.row)
}

/// A 64-bit fingerprint of an input row (file as named, row number).
pub(crate) fn row_key(file: &str, row: u64) -> u64 {
    let mut h = DefaultHasher::new();
    file.hash(&mut h);
    row.hash(&mut h);
    h.finish()
}

/// `None` and an empty pair print the same: both are written as two empty columns.
fn key_print(k: Option<&FindingKey>) -> u64 {
    let mut h = DefaultHasher::new();
    k.map_or("", |k| &k.id).hash(&mut h);
    k.map_or("", |k| &k.product_arn).hash(&mut h);
    h.finish()
}

/// One row of a results file, as read back.
#[derive(Debug, Deserialize)]
struct JournalRow {
    file: String,
    row: u64,
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "ProductArn")]
    product_arn: String,
    region: String,
    outcome: OutcomeKind,
    error_code: String,
    error_message: String,
    attempts: u32,
    /// A `BatchUpdateFindingsV2` triple's account (empty otherwise).
    #[serde(rename = "CloudAccountUid", default)]
    cloud_account_uid: String,
}

impl JournalRow {
    fn into_outcome(self) -> Outcome {
        let opt = |s: String| (!s.is_empty()).then_some(s);
        let key = if self.id.is_empty() && self.product_arn.is_empty() {
            None
        } else if self.cloud_account_uid.is_empty() {
            Some(FindingKey::new(self.id, self.product_arn))
        } else {
            Some(FindingKey::ocsf(
                self.cloud_account_uid,
                self.id,
                self.product_arn,
            ))
        };
        Outcome {
            location: Location {
                file: self.file.into(),
                row: self.row,
                detail: None,
            },
            key,
            region: opt(self.region).map(Into::into),
            kind: self.outcome,
            code: opt(self.error_code),
            message: opt(self.error_message),
            attempts: self.attempts,
            applied: None,
            prior: None,
            state: None,
        }
    }

    /// A row of a file whose header has [`ACCOUNT_COLUMN`] last when
    /// `account_column` (a `BatchUpdateFindingsV2` run's results).
    fn from_csv(rec: &csv::ByteRecord, account_column: bool) -> Result<Self, String> {
        let want = RESULT_COLUMNS.len() + usize::from(account_column);
        if rec.len() != want {
            return Err(format!("{} fields, expected {want}", rec.len()));
        }
        let text = |i: usize| {
            std::str::from_utf8(&rec[i])
                .map(str::to_owned)
                .map_err(|_| format!("{} is not UTF-8", RESULT_COLUMNS[i]))
        };
        let num = |i: usize| {
            text(i)?
                .parse::<u64>()
                .map_err(|_| format!("{} is not a number", RESULT_COLUMNS[i]))
        };
        let outcome = text(5)?;
        let outcome = OutcomeKind::ALL
            .into_iter()
            .find(|k| k.as_str() == outcome)
            .ok_or_else(|| format!("unknown outcome {outcome:?}"))?;
        Ok(JournalRow {
            file: text(0)?,
            row: num(1)?,
            id: text(2)?,
            product_arn: text(3)?,
            region: text(4)?,
            outcome,
            error_code: text(6)?,
            error_message: text(7)?,
            attempts: u32::try_from(num(8)?).map_err(|_| "attempts is out of range".to_owned())?,
            cloud_account_uid: if account_column {
                std::str::from_utf8(&rec[RESULT_COLUMNS.len()])
                    .map(str::to_owned)
                    .map_err(|_| format!("{ACCOUNT_COLUMN} is not UTF-8"))?
            } else {
                String::new()
            },
        })
    }
}

/// What a scan of a results file found.
#[derive(Default)]
struct Scan {
    /// Complete rows (the header not counted).
    rows: u64,
    /// Bytes up to the end of the last complete line.
    valid_len: u64,
    /// The cut-off last line, if any.
    torn: Option<TornTail>,
}

fn scan_file(
    path: &Path,
    file: File,
    layout: ResultsFormat,
    on_row: &mut dyn FnMut(JournalRow),
) -> Result<Scan, JournalError> {
    match layout {
        ResultsFormat::Csv => scan_csv(path, file, on_row),
        ResultsFormat::JsonLines => scan_jsonl(path, file, on_row),
    }
}

/// Whether the file's last byte is a newline (true for an empty file). The
/// writer ends every row with one, so a last line without it was cut short,
/// even if what is left of it still parses (`attempts` 12 cut to 1).
fn ends_with_newline(path: &Path, file: &mut File) -> Result<(bool, u64), JournalError> {
    let len = file
        .metadata()
        .map_err(|e| JournalError::io(path, e))?
        .len();
    if len == 0 {
        return Ok((true, 0));
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1))
        .and_then(|_| file.read_exact(&mut last))
        .and_then(|()| file.seek(SeekFrom::Start(0)).map(|_| ()))
        .map_err(|e| JournalError::io(path, e))?;
    Ok((last[0] == b'\n', len))
}

/// One record of a CSV results file, classified, not yet applied: the last
/// record is applied only if the file ends with a newline.
enum CsvItem {
    Header,
    Row(JournalRow),
    Bad(String),
}

fn scan_csv(
    path: &Path,
    mut file: File,
    on_row: &mut dyn FnMut(JournalRow),
) -> Result<Scan, JournalError> {
    let (complete, len) = ends_with_newline(path, &mut file)?;
    let header_line = RESULT_COLUMNS.join(",");
    // A `BatchUpdateFindingsV2` run's results have one more column.
    let v2_header_line = format!("{header_line},{ACCOUNT_COLUMN}");
    let v2_header = || RESULT_COLUMNS.iter().chain([&ACCOUNT_COLUMN]);
    let mut account_column = false;
    // Only the bytes there when the scan began: a run still appending to
    // the file (the plan of a `--resume` refused by the lock later) must
    // not make the scan read past what it measured.
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(BufReader::with_capacity(1 << 16, file.take(len)));
    let mut rec = csv::ByteRecord::new();
    let mut scan = Scan::default();
    let mut seen_header = false;
    // The previous record: (item, start byte, line).
    let mut prev: Option<(CsvItem, u64, u64)> = None;
    let mut apply = |item: CsvItem, line: u64, scan: &mut Scan| -> Result<(), JournalError> {
        match item {
            CsvItem::Header => Ok(()),
            CsvItem::Row(r) => {
                scan.rows += 1;
                on_row(r);
                Ok(())
            }
            CsvItem::Bad(reason) => Err(JournalError::Damaged {
                path: path.to_owned(),
                line,
                reason,
            }),
        }
    };
    loop {
        let more = rdr.read_byte_record(&mut rec).map_err(|e| {
            JournalError::io(
                path,
                io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
            )
        })?;
        if !more {
            break;
        }
        let (start, line) = rec.position().map_or((0, 0), |p| (p.byte(), p.line()));
        if let Some((item, _, l)) = prev.take() {
            apply(item, l, &mut scan)?;
        }
        let item = if !seen_header {
            seen_header = true;
            if rec.iter().eq(RESULT_COLUMNS.iter().map(|c| c.as_bytes())) {
                CsvItem::Header
            } else if rec.iter().eq(v2_header().map(|c| c.as_bytes())) {
                account_column = true;
                CsvItem::Header
            } else {
                CsvItem::Bad(format!(
                    "the first line is not the results header {header_line} (or \
                     {v2_header_line})"
                ))
            }
        } else {
            match JournalRow::from_csv(&rec, account_column) {
                Ok(r) => CsvItem::Row(r),
                Err(reason) => CsvItem::Bad(reason),
            }
        };
        prev = Some((item, start, line));
    }
    scan.valid_len = len;
    if let Some((item, start, line)) = prev {
        let torn = !complete || matches!(item, CsvItem::Bad(_));
        if !torn {
            apply(item, line, &mut scan)?;
        } else {
            // Only what this program writes is ever cut: a partial header
            // must be the start of ours, a row must follow our header.
            let ours = if matches!(item, CsvItem::Header) || start > 0 {
                true
            } else {
                let mut f = File::open(path).map_err(|e| JournalError::io(path, e))?;
                let mut head = Vec::new();
                f.read_to_end(&mut head)
                    .map_err(|e| JournalError::io(path, e))?;
                header_line.as_bytes().starts_with(&head)
                    || v2_header_line.as_bytes().starts_with(&head)
            };
            if !ours {
                return apply(item, line, &mut scan).map(|()| scan);
            }
            scan.valid_len = start;
            scan.torn = Some(TornTail {
                line,
                bytes: len - start,
            });
        }
    }
    Ok(scan)
}

fn scan_jsonl(
    path: &Path,
    file: File,
    on_row: &mut dyn FnMut(JournalRow),
) -> Result<Scan, JournalError> {
    const START: &[u8] = b"{\"file\":";
    let mut rdr = BufReader::with_capacity(1 << 16, file);
    let mut buf = Vec::new();
    let mut scan = Scan::default();
    let mut offset = 0u64;
    let mut line = 0u64;
    // A complete line that did not parse: fatal unless nothing but a torn
    // line follows it. (line, start byte, reason)
    let mut bad: Option<(u64, u64, String)> = None;
    loop {
        buf.clear();
        let n = rdr
            .read_until(b'\n', &mut buf)
            .map_err(|e| JournalError::io(path, e))?;
        if n == 0 {
            break;
        }
        line += 1;
        if buf.last() != Some(&b'\n') {
            // The last line, cut short. Ours only if it starts like our rows.
            let ours = START.starts_with(&buf) || buf.starts_with(START);
            if !ours {
                let reason = "not a JSON results row".to_owned();
                return Err(JournalError::Damaged {
                    path: path.to_owned(),
                    line,
                    reason,
                });
            }
            let (line, start) = match &bad {
                Some((l, s, _)) => (*l, *s),
                None => (line, offset),
            };
            scan.torn = Some(TornTail {
                line,
                bytes: offset + n as u64 - start,
            });
            scan.valid_len = start;
            return Ok(scan);
        }
        if let Some((l, _, reason)) = bad.take() {
            return Err(JournalError::Damaged {
                path: path.to_owned(),
                line: l,
                reason,
            });
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            offset += n as u64;
            continue;
        }
        match serde_json::from_slice::<JournalRow>(&buf) {
            Ok(r) => {
                scan.rows += 1;
                on_row(r);
            }
            Err(e) => bad = Some((line, offset, e.to_string())),
        }
        offset += n as u64;
    }
    scan.valid_len = offset;
    if let Some((l, start, reason)) = bad {
        // A complete last line that does not parse: cut it only if it
        // starts like one of ours (a crash cannot produce anything else).
        let mut f = File::open(path).map_err(|e| JournalError::io(path, e))?;
        let mut head = vec![0u8; START.len()];
        f.seek(SeekFrom::Start(start))
            .and_then(|_| f.read_exact(&mut head))
            .map_err(|e| JournalError::io(path, e))?;
        if head != START {
            return Err(JournalError::Damaged {
                path: path.to_owned(),
                line: l,
                reason,
            });
        }
        scan.torn = Some(TornTail {
            line: l,
            bytes: offset - start,
        });
        scan.valid_len = start;
    }
    Ok(scan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reporting::OutcomeSink;

    fn outcome(row: u64, id: &str, kind: OutcomeKind) -> Outcome {
        Outcome {
            location: Location {
                file: "in.csv".into(),
                row,
                detail: None,
            },
            key: Some(FindingKey::new(
                id,
                "arn:aws:securityhub:us-east-1::product/aws/guardduty",
            )),
            region: Some("us-east-1".into()),
            kind,
            code: (kind == OutcomeKind::Failed).then(|| "FindingNotFound".to_owned()),
            message: Some("a message, with a comma\nand a newline".into()),
            attempts: 12,
            applied: None,
            prior: None,
            state: None,
        }
    }

    fn identity() -> RunIdentity {
        RunIdentity {
            inputs: vec![InputFingerprint {
                name: "in.csv".into(),
                size: Some(10),
                xxh3: Some("00".into()),
                rows: None,
                query: None,
            }],
            decision: serde_json::json!({"Workflow": {"Status": "SUPPRESSED"}}),
            duplicates: DuplicatePolicy::Refuse,
        }
    }

    /// Writes `rows` through a fresh journal and returns the results path.
    fn journal_with(dir: &Path, name: &str, rows: &[Outcome]) -> PathBuf {
        let path = dir.join(name);
        let mut opened = open(
            &path,
            &identity(),
            ResumeMode::Refuse,
            RunEntry::now(),
            false,
        )
        .unwrap();
        for o in rows {
            opened.writer.record(o).unwrap();
        }
        opened.writer.finish().unwrap();
        path
    }

    fn rows() -> Vec<Outcome> {
        vec![
            outcome(1, "a", OutcomeKind::Updated),
            outcome(2, "b", OutcomeKind::NotAttempted),
            outcome(3, "c", OutcomeKind::Failed),
            outcome(4, "a", OutcomeKind::Duplicate),
        ]
    }

    #[test]
    fn a_journal_resumes_with_final_rows_done_and_the_rest_new() {
        for name in ["r.csv", "r.jsonl"] {
            let dir = tempfile::tempdir().unwrap();
            let path = journal_with(dir.path(), name, &rows());
            let opened = open(
                &path,
                &identity(),
                ResumeMode::Resume,
                RunEntry::now(),
                false,
            )
            .unwrap();
            assert_eq!(opened.earlier_rows, 4, "{name}");
            assert_eq!(opened.torn, None);
            assert_eq!(opened.journal.header.runs.len(), 2);
            let done = opened.done.unwrap();
            let r = rows();
            assert_eq!(
                done.check(&r[0].location, r[0].key.as_ref()),
                Prior::Done(OutcomeKind::Updated)
            );
            // not_attempted is not final.
            assert_eq!(done.check(&r[1].location, r[1].key.as_ref()), Prior::New);
            assert_eq!(
                done.check(&r[3].location, r[3].key.as_ref()),
                Prior::Done(OutcomeKind::Duplicate)
            );
            // Another finding at a recorded row: the input changed.
            let other = FindingKey::new("zzz", "p");
            assert_eq!(done.check(&r[0].location, Some(&other)), Prior::Changed);
            // A new row naming a settled finding.
            let mut l = r[0].location.clone();
            l.row = 99;
            assert_eq!(done.check(&l, r[0].key.as_ref()), Prior::FindingDone);
            // Earlier failures are handed over for the --failed file, as written.
            let mut failed = Vec::new();
            let n = earlier_failed(&path, &mut |o: &Outcome| {
                failed.push(o.clone());
                Ok(())
            })
            .unwrap();
            assert_eq!(n, 1);
            assert_eq!(failed.len(), 1);
            assert_eq!(failed[0].key, r[2].key);
            assert_eq!(failed[0].message, r[2].message);
            assert_eq!(failed[0].attempts, 12);
        }
    }

    #[test]
    fn existing_rows_are_refused_without_resume_and_an_empty_file_starts_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = journal_with(dir.path(), "r.csv", &rows());
        let before = std::fs::read(&path).unwrap();
        let err = open(
            &path,
            &identity(),
            ResumeMode::Refuse,
            RunEntry::now(),
            false,
        )
        .err()
        .unwrap();
        assert!(
            matches!(err, JournalError::ResumeRequired { rows: 4, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("--resume"));
        // Untouched.
        assert_eq!(std::fs::read(&path).unwrap(), before);
        // A journal with its header line only starts over.
        let only_header = journal_with(dir.path(), "h.csv", &[]);
        let o = open(
            &only_header,
            &identity(),
            ResumeMode::Refuse,
            RunEntry::now(),
            false,
        )
        .unwrap();
        assert!(o.done.is_none());
    }

    #[test]
    fn a_different_input_or_decision_is_refused_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let path = journal_with(dir.path(), "r.jsonl", &rows());
        let mut changed = identity();
        changed.inputs[0].size = Some(11);
        let err = open(&path, &changed, ResumeMode::Resume, RunEntry::now(), false)
            .err()
            .unwrap();
        let text = err.to_string();
        assert!(
            text.contains("in.csv") && text.contains("10 bytes then, 11 now"),
            "{text}"
        );
        assert!(text.contains("--force-resume"), "{text}");
        let mut other_decision = identity();
        other_decision.decision = serde_json::json!({"Confidence": 5});
        let text = open(
            &path,
            &other_decision,
            ResumeMode::Resume,
            RunEntry::now(),
            false,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(text.contains("decision changed"), "{text}");
        let forced = open(&path, &changed, ResumeMode::Force, RunEntry::now(), false).unwrap();
        assert!(forced.notes.iter().any(|n| n.contains("--force-resume")));
        assert_eq!(
            forced.journal.header.inputs, changed.inputs,
            "the journal now describes the new input"
        );
        // A forced resume treats a changed row as new.
        let done = forced.done.unwrap();
        let r = rows();
        assert_eq!(
            done.check(&r[0].location, Some(&FindingKey::new("zzz", "p"))),
            Prior::New
        );
    }

    #[test]
    fn query_rows_are_matched_by_finding_and_the_query_is_compared() {
        let mut done = Done {
            rows: HashMap::new(),
            findings: HashSet::new(),
            force: false,
        };
        let mut o = outcome(1, "a", OutcomeKind::Updated);
        o.location.file = "query:us-east-1".into();
        done.add(&o);
        let at = |row: u64| Location {
            file: "query:us-east-1".into(),
            row,
            detail: None,
        };
        let key =
            |id: &str| FindingKey::new(id, "arn:aws:securityhub:us-east-1::product/aws/guardduty");
        // The selection moved: another finding at row 1 is new, not a
        // changed input; the settled finding at another row is not sent again.
        assert_eq!(done.check(&at(1), Some(&key("b"))), Prior::New);
        assert_eq!(done.check(&at(2), Some(&key("a"))), Prior::FindingDone);
        assert_eq!(
            done.check(&at(1), Some(&key("a"))),
            Prior::Done(OutcomeKind::Updated)
        );
        // The query is what identifies the input.
        let q = |f: &str| RunIdentity {
            inputs: vec![InputFingerprint::of_query(
                "query:us-east-1",
                serde_json::json!({"Filters": {"Id": [{"Value": f, "Comparison": "EQUALS"}]}}),
            )],
            decision: serde_json::json!({}),
            duplicates: DuplicatePolicy::First,
        };
        let mut then = JournalHeader::new(&q("x"), RunEntry::now());
        assert_eq!(mismatch(&then, &q("x")), None);
        // Another --duplicates policy chooses other rows: refused, naming
        // the one to resume with; a journal of an earlier release has none
        // recorded and is not checked for it.
        let mut last = q("x");
        last.duplicates = DuplicatePolicy::Last;
        let what = mismatch(&then, &last).unwrap();
        assert!(
            what.contains("--duplicates policy changed: first then, last now")
                && what.contains("resume with --duplicates first"),
            "{what}"
        );
        then.duplicates = None;
        assert_eq!(mismatch(&then, &last), None);
        then.duplicates = Some(DuplicatePolicy::First);
        assert!(
            mismatch(&then, &q("y"))
                .unwrap()
                .contains("the query changed")
        );
    }

    #[test]
    fn a_missing_header_is_refused_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let path = journal_with(dir.path(), "r.csv", &rows());
        std::fs::remove_file(header_path(&path)).unwrap();
        let err = open(
            &path,
            &identity(),
            ResumeMode::Resume,
            RunEntry::now(),
            false,
        )
        .err()
        .unwrap();
        assert!(matches!(err, JournalError::HeaderMissing { .. }), "{err}");
        let o = open(
            &path,
            &identity(),
            ResumeMode::Force,
            RunEntry::now(),
            false,
        )
        .unwrap();
        assert_eq!(o.earlier_rows, 4);
        assert!(header_path(&path).exists());
    }

    #[test]
    fn a_torn_last_line_is_cut_off_and_appending_goes_on_after_it() {
        for name in ["r.csv", "r.jsonl"] {
            let dir = tempfile::tempdir().unwrap();
            let path = journal_with(dir.path(), name, &rows());
            let full = std::fs::read(&path).unwrap();
            // Every cut inside the last row (even one that leaves a
            // parsable line) is detected.
            let last_start = {
                let body = &full[..full.len() - 1];
                // The last row's message holds a newline: find the row start.
                let marker: &[u8] = if name.ends_with(".csv") {
                    b"\nin.csv,4,"
                } else {
                    b"\n{\"file\""
                };
                body.windows(marker.len())
                    .rposition(|w| w == marker)
                    .unwrap()
                    + 1
            };
            for cut in [
                last_start + 1,
                last_start + 8,
                full.len() - 2,
                full.len() - 1,
            ] {
                std::fs::write(&path, &full[..cut]).unwrap();
                let o = open(
                    &path,
                    &identity(),
                    ResumeMode::Resume,
                    RunEntry::now(),
                    false,
                )
                .unwrap();
                assert_eq!(o.earlier_rows, 3, "{name} cut at {cut}");
                assert_eq!(
                    o.torn.as_ref().map(|t| t.bytes),
                    Some((cut - last_start) as u64)
                );
                assert!(o.notes.iter().any(|n| n.contains("cut short")));
                assert_eq!(std::fs::read(&path).unwrap(), &full[..last_start]);
                let done = o.done.as_ref().unwrap();
                let r = rows();
                // Not recorded: row 4 is a new row again (whose finding,
                // "a", row 1 settled: a duplicate).
                assert_eq!(
                    done.check(&r[3].location, r[3].key.as_ref()),
                    Prior::FindingDone,
                    "the torn row counts as not recorded"
                );
                // Appending resumes on a clean line boundary.
                let mut w = o.writer;
                w.record(&r[3]).unwrap();
                w.finish().unwrap();
                let again = open(
                    &path,
                    &identity(),
                    ResumeMode::Resume,
                    RunEntry::now(),
                    false,
                )
                .unwrap();
                assert_eq!(again.earlier_rows, 4);
                assert_eq!(again.torn, None);
                std::fs::write(&path, &full).unwrap();
            }
        }
    }

    #[test]
    fn a_torn_header_starts_over_and_a_foreign_file_is_never_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        std::fs::write(&path, "file,row,I").unwrap();
        let o = open(
            &path,
            &identity(),
            ResumeMode::Resume,
            RunEntry::now(),
            false,
        )
        .unwrap();
        assert!(o.done.is_none());
        assert_eq!(std::fs::read(&path).unwrap(), b"");
        // Someone else's CSV: an error, and the file is left alone.
        std::fs::write(&path, "name,age\nbob,4").unwrap();
        let err = open(
            &path,
            &identity(),
            ResumeMode::Resume,
            RunEntry::now(),
            false,
        )
        .err()
        .unwrap();
        assert!(
            matches!(err, JournalError::Damaged { line: 1, .. }),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"name,age\nbob,4");
        let jl = dir.path().join("r.jsonl");
        std::fs::write(&jl, "{\"name\":1}\n{\"na").unwrap();
        assert!(open(&jl, &identity(), ResumeMode::Resume, RunEntry::now(), false).is_err());
        assert_eq!(std::fs::read(&jl).unwrap(), b"{\"name\":1}\n{\"na");
    }

    #[test]
    fn a_damaged_line_in_the_middle_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = journal_with(dir.path(), "r.jsonl", &rows());
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.insert_str(0, "{\"file\": garbage}\n");
        std::fs::write(&path, &text).unwrap();
        let err = open(
            &path,
            &identity(),
            ResumeMode::Resume,
            RunEntry::now(),
            false,
        )
        .err()
        .unwrap();
        assert!(
            matches!(err, JournalError::Damaged { line: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn stdin_rows_are_recorded_in_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut id = identity();
        id.inputs.push(InputFingerprint::of("-").unwrap());
        let mut o = open(&path, &id, ResumeMode::Refuse, RunEntry::now(), false).unwrap();
        o.journal.record_stdin_rows(42).unwrap();
        let h = read_header(&header_path(&path)).unwrap().unwrap();
        assert_eq!(h.inputs[1].rows, Some(42));
        assert_eq!(h.version, VERSION);
    }

    #[test]
    fn fingerprints_tell_content_apart() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, "Id,ProductArn\n1,2\n").unwrap();
        let fa = InputFingerprint::of(a.to_str().unwrap()).unwrap();
        assert_eq!(fa.size, Some(18));
        std::fs::write(&a, "Id,ProductArn\n1,3\n").unwrap();
        let fb = InputFingerprint::of(a.to_str().unwrap()).unwrap();
        assert_eq!(fa.size, fb.size);
        assert_ne!(fa.xxh3, fb.xxh3);
        let missing = InputFingerprint::of(dir.path().join("nope").to_str().unwrap());
        assert!(missing.is_err());
    }
}
