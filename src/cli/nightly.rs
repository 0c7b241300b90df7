//! What an unattended run needs around the engine: the `--results` file as
//! a journal (`--resume`, `--force-resume`), the run lock, a graceful stop
//! on SIGINT/SIGTERM, and `--time-budget`.
//!
//! [`Session::open`] sets these up before the engine starts and hands it
//! its sinks and [`RunControls`]; [`Session::close`] puts them away. The
//! journal format and the lock are `crate::journal`'s; the stop itself is
//! the engine's ([`StopHandle`]). This module only wires them to flags,
//! signals and the clock, and tells the user what happened on stderr.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

use super::OutputArgs;
use super::exit;
use crate::decision::Decision;
use crate::engine::{Input, RunControls, StopHandle};
use crate::journal::lock::{LockOwner, RunLock, lock_path};
use crate::journal::{self, InputFingerprint, Journal, ResumeMode, RunEntry, RunIdentity};
use crate::model::SourceItem;
use crate::reporting::{OutcomeSink, ResultsWriter, RunSummary};

/// Time kept between the end of a budget stop's grace period and the end
/// of the budget, to record the last outcomes, sync and exit.
pub(crate) const BUDGET_SLACK: Duration = Duration::from_secs(2);

/// Default `--grace`.
pub(crate) const DEFAULT_GRACE: Duration = Duration::from_secs(10);

static PROCESS_START: OnceLock<Instant> = OnceLock::new();

/// Marks the start of the process: `--time-budget` counts from here (call
/// it first thing in `main`), so that time spent before the run (reading
/// a plan, hashing inputs) is inside the budget too.
pub(crate) fn mark_process_start() {
    PROCESS_START.get_or_init(Instant::now);
}

/// Flags of unattended runs.
#[derive(Args, Debug, Clone)]
pub struct NightlyArgs {
    /// Carry on with an interrupted run: rows the --results journal already
    /// records with a final outcome are skipped, the rest are sent. Starts a
    /// new journal when there is none, so it is safe to always give (cron).
    #[arg(long, help_heading = "Nightly runs")]
    pub resume: bool,
    /// Like --resume, even if the inputs or the decision are not those the
    /// journal was written for (findings already settled are still skipped).
    #[arg(long, help_heading = "Nightly runs")]
    pub(crate) force_resume: bool,
    /// After SIGINT/SIGTERM, how long requests in flight may take to come
    /// back before the run records them as not attempted and exits.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration, help_heading = "Nightly runs")]
    pub grace: Duration,
    /// Wall-clock limit, e.g. 45m: new requests stop at the budget minus
    /// max(--grace, --request-timeout) minus 2 s, so that requests in flight
    /// are back and the results synced before it ends. Exits with status 4
    /// if work remains (resume later).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, help_heading = "Nightly runs")]
    pub(crate) time_budget: Option<Duration>,
}

impl Default for NightlyArgs {
    fn default() -> Self {
        NightlyArgs {
            resume: false,
            force_resume: false,
            grace: DEFAULT_GRACE,
            time_budget: None,
        }
    }
}

impl NightlyArgs {
    fn resume_mode(&self) -> ResumeMode {
        if self.force_resume {
            ResumeMode::Force
        } else if self.resume {
            ResumeMode::Resume
        } else {
            ResumeMode::Refuse
        }
    }
}

/// What a job knows about itself that the journal records: its inputs as
/// named on the command line, and how long one request may take.
#[derive(Clone, Debug)]
pub(crate) struct JobContext {
    /// The inputs, as given (`-` for standard input).
    pub inputs: Vec<String>,
    /// Saved copies of inputs that can be read only once (pipes, FIFOs),
    /// by input position: their fingerprints are the copies'.
    pub(crate) copies: Vec<Option<PathBuf>>,
    /// `--request-timeout`.
    pub request_timeout: Duration,
    /// The absolute query of a `--filters` selection (input `query:...`).
    pub(crate) query: Option<serde_json::Value>,
}

impl Default for JobContext {
    fn default() -> Self {
        JobContext {
            inputs: Vec::new(),
            copies: Vec::new(),
            request_timeout: crate::submission::DEFAULT_REQUEST_TIMEOUT,
            query: None,
        }
    }
}

/// The nightly-run parts of one job, from before the engine starts until it ends.
pub(crate) struct Session {
    lock: Option<RunLock>,
    journal: Option<Journal>,
    stop: StopHandle,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Records read from standard input, when it is an input.
    stdin_rows: Option<Arc<AtomicU64>>,
}

/// What the engine gets from a [`Session`].
pub(crate) struct Prepared {
    /// The session, to close after the run.
    pub session: Session,
    /// Where outcomes go (the journal, the failed file).
    pub(crate) sinks: Vec<Box<dyn OutcomeSink>>,
    /// Stop handle and the rows earlier runs settled.
    pub controls: RunControls,
    /// The input, counted where it is standard input.
    pub input: Input,
}

impl Session {
    /// Checks the flags, takes the lock, opens (or takes up) the journal and
    /// the failed file, and starts listening for signals and the budget.
    /// `v2`: the run sends `BatchUpdateFindingsV2` (its CSV results carry
    /// each triple's account).
    pub(crate) async fn open(
        output: &OutputArgs,
        ctx: &JobContext,
        decision: &Decision,
        v2: bool,
        duplicates: crate::engine::DuplicatePolicy,
        input: Input,
    ) -> anyhow::Result<Prepared> {
        let started = *PROCESS_START.get_or_init(Instant::now);
        let args = &output.nightly;
        let mode = args.resume_mode();
        // The flags were checked before the plan pass (`settings`); this
        // is for callers that did not go through it.
        super::settings::check_nightly(output, ctx.request_timeout)?;
        // Requests in flight at a budget stop need their timeout at most.
        let in_flight_grace = args.grace.max(ctx.request_timeout);
        let budget_stop = args.time_budget.map(|budget| {
            let margin = in_flight_grace + BUDGET_SLACK;
            (budget, started + (budget - margin))
        });

        let run = RunEntry::now();
        let stop = StopHandle::new();
        let mut session = Session {
            lock: None,
            journal: None,
            stop: stop.clone(),
            tasks: Vec::new(),
            stdin_rows: None,
        };
        if let Some(results) = &output.results {
            let owner = LockOwner {
                pid: run.pid,
                host: run.host.clone(),
                started: run.started.clone(),
                run_id: run.run_id.clone(),
            };
            let got = RunLock::acquire(&lock_path(results), owner)?;
            if let Some(previous) = &got.took_over {
                let who = previous
                    .as_ref()
                    .map_or_else(|| "an unknown owner".to_owned(), |o| o.to_string());
                eprintln!(
                    "sechub-triage: warning: took over the stale lock {} left by {who}, which no longer \
                     holds it (it ended without removing it)",
                    got.lock.path().display()
                );
            }
            session.lock = Some(got.lock);
        }
        // From here on, SIGINT/SIGTERM stop the run gracefully.
        session.tasks.push(listen_for_signals(
            stop.clone(),
            args.grace,
            session.lock.as_ref().map(|l| l.path().to_owned()),
        ));
        if let Some((budget, at)) = budget_stop {
            let stop = stop.clone();
            session.tasks.push(tokio::spawn(async move {
                tokio::time::sleep_until(at.into()).await;
                let reason = format!(
                    "time budget of {} nearly used",
                    humantime::format_duration(budget)
                );
                if stop.stop(reason, in_flight_grace) {
                    eprintln!(
                        "sechub-triage: time budget of {} nearly used: no new requests; those in flight \
                         have {} to finish",
                        humantime::format_duration(budget),
                        humantime::format_duration(in_flight_grace)
                    );
                }
            }));
        }

        let mut sinks: Vec<Box<dyn OutcomeSink>> = Vec::new();
        let mut controls = RunControls {
            stop: Some(stop),
            prior: None,
        };
        if let Some(results) = &output.results {
            let names = ctx.inputs.clone();
            let copies = ctx.copies.clone();
            let query = ctx.query.clone();
            // Hashing reads every input once: off the async threads.
            let inputs = tokio::task::spawn_blocking(move || {
                names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| match copies.get(i).and_then(Option::as_deref) {
                        _ if journal::is_query_input(n) && query.is_some() => Ok(
                            InputFingerprint::of_query(n, query.clone().unwrap_or_default()),
                        ),
                        Some(copy) if n != "-" => InputFingerprint::of_copy(n, copy),
                        _ => InputFingerprint::of(n),
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .await
            .context("fingerprinting the inputs")??;
            let identity = RunIdentity {
                inputs,
                decision: serde_json::to_value(decision)?,
                duplicates,
            };
            let opened = journal::open(results, &identity, mode, run, v2)?;
            for note in &opened.notes {
                eprintln!("sechub-triage: {note}");
            }
            sinks.push(Box::new(opened.writer));
            if let Some(failed) = &output.failed {
                let mut w = ResultsWriter::create_failed(failed)
                    .map_err(|e| exit::LocalIo::new("cannot write --failed", e))?;
                if opened.done.is_some() {
                    // The failed file lists the failures of every run.
                    journal::earlier_failed(results, &mut |o| w.record(o))?;
                }
                sinks.push(Box::new(w));
            }
            controls.prior = opened.done;
            session.journal = Some(opened.journal);
        } else if let Some(failed) = &output.failed {
            sinks
                .push(Box::new(ResultsWriter::create_failed(failed).map_err(
                    |e| exit::LocalIo::new("cannot write --failed", e),
                )?));
        }

        let input = if ctx.inputs.iter().any(|i| i == "-") {
            let count = Arc::new(AtomicU64::new(0));
            session.stdin_rows = Some(count.clone());
            Box::new(input.inspect(move |item| {
                let file = match item {
                    Ok(SourceItem::Record(r)) => &r.location.file,
                    Ok(SourceItem::Invalid(i)) => &i.location.file,
                    Err(_) => return,
                };
                if &**file == "-" {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })) as Input
        } else {
            input
        };
        Ok(Prepared {
            session,
            sinks,
            controls,
            input,
        })
    }

    /// After the run: records what standard input held (once read to its
    /// end), stops listening, and releases the lock.
    pub(crate) fn close(mut self, summary: &RunSummary) -> anyhow::Result<()> {
        let complete =
            summary.stopped.is_none() && summary.aborted.is_none() && summary.input_error.is_none();
        if let (Some(rows), Some(journal), true) = (&self.stdin_rows, &mut self.journal, complete) {
            journal.record_stdin_rows(rows.load(Ordering::Relaxed))?;
        }
        if self.stop.requested().is_some() && summary.stopped.is_none() {
            eprintln!(
                "sechub-triage: the stop came after the last finding was done: nothing left to resume"
            );
        }
        for t in self.tasks.drain(..) {
            t.abort();
        }
        if let Some(lock) = self.lock.take() {
            lock.release();
        }
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        // The lock's own drop removes the file.
    }
}

/// First SIGINT/SIGTERM: a graceful stop. Second: exit at once, with the
/// lock file removed; the journal holds everything up to the last
/// completed request (a cut-off last line is dropped on resume).
fn listen_for_signals(
    stop: StopHandle,
    grace: Duration,
    lock: Option<PathBuf>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Some(mut signals) = Signals::new() else {
            return;
        };
        let mut seen = 0u32;
        loop {
            let name = signals.next().await;
            seen += 1;
            if seen == 1 {
                stop.stop(format!("{name} received"), grace);
                eprintln!(
                    "sechub-triage: {name}: stopping: no new requests; waiting up to {} for those in \
                     flight ({name} again exits at once)",
                    humantime::format_duration(grace)
                );
            } else {
                eprintln!(
                    "sechub-triage: {name} again: exiting now; the results hold every outcome up to the \
                     last completed request: run again with --resume"
                );
                if let Some(lock) = &lock {
                    let _ = std::fs::remove_file(lock);
                }
                // The report must not stay "running": it ends here too.
                if let Err(e) = super::report::finish(
                    exit::STOPPED,
                    Some(format!(
                        "{name} received twice: exited at once; the results hold every outcome up \
                         to the last completed request"
                    )),
                ) {
                    eprintln!("sechub-triage: error: {e}");
                }
                std::process::exit(exit::STOPPED);
            }
        }
    })
}

/// The next SIGINT or SIGTERM (never, where signals cannot be listened to).
pub(crate) async fn next_signal() -> &'static str {
    match Signals::new() {
        Some(mut s) => s.next().await,
        None => std::future::pending().await,
    }
}

/// The signals that stop a run, listened to from creation on (so that
/// none is missed between two waits).
#[cfg(unix)]
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn new() -> Option<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Some(Signals {
            int: signal(SignalKind::interrupt()).ok()?,
            term: signal(SignalKind::terminate()).ok()?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn new() -> Option<Self> {
        Some(Signals)
    }

    async fn next(&mut self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
