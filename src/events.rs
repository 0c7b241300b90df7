//! What the engine tells the outside world while it runs.
//!
//! The engine emits [`Event`]s through an [`EventSink`]; it never draws
//! anything. The CLI turns events into a progress bar, tests count them.
//! Sinks are called synchronously from the engine's dispatch loop, so they
//! must be quick (an indicatif bar update, an atomic add).

use std::sync::Arc;
use std::time::Duration;

use crate::model::OutcomeKind;

/// Something that happened during a run. Names are past tense.
#[derive(Clone, Debug)]
pub enum Event {
    /// More input records were read (running total).
    InputRead {
        /// Records read so far, all inputs together.
        records: u64,
    },
    /// All input has been read.
    InputFinished {
        /// Records read in all.
        records: u64,
    },
    /// A request left.
    RequestSent {
        /// The Region it went to.
        region: Arc<str>,
        /// Findings in it.
        findings: usize,
    },
    /// A request came back (successfully or not).
    RequestFinished {
        /// The Region it went to.
        region: Arc<str>,
        /// Findings in it.
        findings: usize,
        /// How long it took.
        latency: Duration,
        /// `None` on HTTP success, else the error code (or a transport description).
        error: Option<String>,
    },
    /// The service throttled a request; the Region's pace dropped to `rate`.
    Throttled {
        /// The Region.
        region: Arc<str>,
        /// New requests/s allowed.
        rate: f64,
    },
    /// Findings reached their final outcome.
    FindingsFinished {
        /// Which outcome.
        kind: OutcomeKind,
        /// How many.
        count: u64,
    },
    /// A `--filters` query read one more page in a Region (running totals
    /// for that Region).
    QueryPageRead {
        /// The Region queried.
        region: Arc<str>,
        /// Pages read there so far.
        pages: u64,
        /// Findings selected there so far (each once).
        findings: u64,
    },
    /// A `--filters` query read its last page in a Region.
    QueryRegionFinished {
        /// The Region queried.
        region: Arc<str>,
        /// Pages read there.
        pages: u64,
        /// Findings selected there.
        findings: u64,
    },
    /// The run is aborting; no new requests will be sent.
    Aborting {
        /// Why, for a human.
        reason: String,
    },
}

/// Receives events. Implementations must not block.
pub trait EventSink: Send + Sync {
    /// Called for every event, in order.
    fn emit(&self, event: &Event);
}

/// A sink that drops everything.
pub struct NullSink;

impl EventSink for NullSink {
    fn emit(&self, _event: &Event) {}
}

impl<F: Fn(&Event) + Send + Sync> EventSink for F {
    fn emit(&self, event: &Event) {
        self(event);
    }
}
