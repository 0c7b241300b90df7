//! Turns engine and query events into progress bars on stderr. The only
//! place that draws anything during a run. Every bar of the process is
//! drawn through one [`MultiProgress`], so that a query's bars and the
//! run's bar, drawn at once when reading and updating overlap, do not
//! garble each other.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::events::{Event, EventSink};

/// The process's bars, on stderr.
fn multi() -> &'static MultiProgress {
    static MULTI: OnceLock<MultiProgress> = OnceLock::new();
    MULTI.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
}

/// Whether bars are drawn at all: stderr is a terminal, `--no-progress`
/// was not given and no log lines at `info` share the terminal.
fn drawing(no_progress: bool) -> bool {
    use std::io::IsTerminal;
    !no_progress && !tracing::enabled!(tracing::Level::INFO) && std::io::stderr().is_terminal()
}

/// One spinner per queried Region: pages and findings read so far (a
/// query's size is not known before its last page). Off a terminal
/// nothing is drawn; the command prints the query's totals when it ends,
/// as the rest of the CLI prints its summary.
pub(crate) struct QueryProgress {
    bars: Mutex<HashMap<std::sync::Arc<str>, ProgressBar>>,
}

impl QueryProgress {
    /// Bars on stderr, or `None` when nothing is drawn (see [`drawing`]).
    pub(crate) fn stderr_if_terminal(no_progress: bool) -> Option<Self> {
        drawing(no_progress).then(|| QueryProgress {
            bars: Mutex::new(HashMap::new()),
        })
    }

    fn bar(&self, region: &std::sync::Arc<str>) -> ProgressBar {
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        bars.entry(region.clone())
            .or_insert_with(|| {
                let bar = multi().add(ProgressBar::new_spinner());
                let style = ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] query {prefix}: {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
                bar.set_style(style);
                bar.set_prefix(region.to_string());
                bar.enable_steady_tick(std::time::Duration::from_millis(200));
                bar
            })
            .clone()
    }

    /// Removes the bars.
    pub(crate) fn finish(&self) {
        let bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        for b in bars.values() {
            b.finish_and_clear();
        }
    }
}

impl EventSink for QueryProgress {
    fn emit(&self, event: &Event) {
        match event {
            Event::QueryPageRead {
                region,
                pages,
                findings,
            } => {
                self.bar(region)
                    .set_message(format!("{pages} page(s), {findings} finding(s) read"));
            }
            Event::QueryRegionFinished { region, .. } => {
                // Gone once read: a line left drawn would be overwritten by
                // (and garble) the run's summary; the totals are printed at
                // the end.
                self.bar(region).finish_and_clear();
            }
            _ => {}
        }
    }
}

/// A progress bar fed by engine events: findings finished out of records
/// read (the total grows while the input streams in), with rate and ETA.
pub(super) struct Progress {
    bar: ProgressBar,
    throttled: AtomicU64,
    read: AtomicU64,
}

impl Progress {
    /// A bar on stderr, or `None` when nothing is drawn (see [`drawing`]).
    pub(crate) fn stderr_if_terminal(no_progress: bool) -> Option<Self> {
        if !drawing(no_progress) {
            return None;
        }
        let bar = multi().add(ProgressBar::new(0));
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} findings  {per_sec}  ETA {eta}  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        Some(Progress {
            bar,
            throttled: AtomicU64::new(0),
            read: AtomicU64::new(0),
        })
    }

    /// Removes the bar before the summary is printed.
    pub(super) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl EventSink for Progress {
    fn emit(&self, event: &Event) {
        match event {
            Event::InputRead { records } | Event::InputFinished { records } => {
                self.read.store(*records, Ordering::Relaxed);
                self.bar.set_length((*records).max(self.bar.position()));
            }
            Event::FindingsFinished { count, .. } => {
                self.bar.inc(*count);
                let len = self.bar.length().unwrap_or(0);
                if self.bar.position() > len {
                    self.bar.set_length(self.bar.position());
                }
            }
            Event::Throttled { region, rate } => {
                let n = self.throttled.fetch_add(1, Ordering::Relaxed) + 1;
                self.bar
                    .set_message(format!("{n} throttled; {region} pace {rate:.1} req/s"));
            }
            Event::Aborting { reason } => {
                self.bar.println(format!("aborting: {reason}"));
            }
            _ => {}
        }
    }
}
