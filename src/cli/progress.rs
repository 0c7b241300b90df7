//! Turns engine events into a progress bar on stderr. The only place that
//! draws anything during a run.

use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::events::{Event, EventSink};

/// A progress bar fed by engine events: findings finished out of records
/// read (the total grows while the input streams in), with rate and ETA.
pub(super) struct Progress {
    bar: ProgressBar,
    throttled: AtomicU64,
    read: AtomicU64,
}

impl Progress {
    /// A bar on stderr, or `None` when stderr is not a terminal.
    pub(crate) fn stderr_if_terminal() -> Option<Self> {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
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
