//! Stopping a run early: a graceful stop (signal or time budget, through a
//! [`StopHandle`]) and an abort (an access or credential error). Both stop
//! new requests and write off every waiting finding through one drain.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::chunker::Item;
use super::dispatch::Dispatcher;
use super::intake::ReaderMsg;
use super::operation::UpdateOperation;
use super::{EngineError, LOG_TARGET};
use crate::events::Event;
use crate::journal::Done;

/// The error code recorded for findings a stop left unsent.
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

    pub(super) fn subscribe(&self) -> watch::Receiver<Option<StopRequest>> {
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

/// A graceful stop under way.
pub(super) struct Stopping {
    pub(super) reason: String,
    /// The results message of findings written off.
    pub(super) message: String,
    /// Requests still in flight then are written off.
    pub(super) deadline: Instant,
    /// Work was left undone: input unread, or findings not sent.
    pub(super) left_work: bool,
}

impl<O: UpdateOperation> Dispatcher<O> {
    /// Starts a graceful stop: nothing more is read or sent; what was read
    /// and not sent is recorded `not_attempted`; requests in flight have
    /// until the grace period ends.
    pub(super) fn begin_stop(
        &mut self,
        req: StopRequest,
        rx: &mut mpsc::Receiver<Vec<ReaderMsg>>,
        pending: &mut VecDeque<ReaderMsg>,
        channel_open: &mut bool,
    ) -> Result<(), EngineError> {
        tracing::info!(
            target: LOG_TARGET,
            reason = %req.reason,
            grace_s = req.grace.as_secs_f64(),
            "stopping"
        );
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
        for (idx, item) in self.drain_waiting() {
            self.write_off(idx, item, None)?;
        }
        Ok(())
    }

    /// Records a finding as `not_attempted` because of the stop.
    pub(super) fn write_off(
        &mut self,
        region: usize,
        item: Item<O>,
        message: Option<String>,
    ) -> Result<(), EngineError> {
        let Some(s) = self.stopping.as_mut() else {
            return Ok(());
        };
        s.left_work = true;
        let message = message.unwrap_or_else(|| s.message.clone());
        let name = self.regions[region].name.clone();
        let kind = super::complete::resumable_kind(&item);
        self.finish_item(
            item,
            &name,
            kind,
            Some(STOPPED_CODE.to_owned()),
            Some(message),
        )
    }

    /// The grace period is over: findings of requests still in flight are
    /// recorded `not_attempted` (their answers are not waited for).
    pub(super) fn write_off_in_flight(&mut self) -> Result<(), EngineError> {
        let reason = self
            .stopping
            .as_ref()
            .map_or_else(String::new, |s| s.reason.clone());
        let message = format!(
            "still in flight when the grace period ended ({reason}): it may or may not have been \
             applied; resume to send it again"
        );
        let in_flight: Vec<(usize, Vec<Item<O>>)> =
            self.in_flight.drain().map(|(_, v)| v).collect();
        for (region, items) in in_flight {
            self.regions[region].in_flight -= 1;
            for mut item in items {
                // Sent, never answered: it may have been applied.
                item.tries.maybe_applied = true;
                self.write_off(region, item, Some(message.clone()))?;
            }
        }
        Ok(())
    }

    /// Takes every finding that is waiting (in a Region's queues or the
    /// timer heap, not in flight) out of the pipeline, with its Region
    /// number: what a stop and an abort both write off.
    fn drain_waiting(&mut self) -> Vec<(usize, Item<O>)> {
        let mut out = Vec::new();
        for (idx, rs) in self.regions.iter_mut().enumerate() {
            out.extend(rs.drain().into_iter().map(|i| (idx, i)));
            rs.delayed = 0;
        }
        out.extend(self.delayed.drain());
        out
    }

    /// Why no new request may leave, if none may: an abort, or a stop.
    /// Gives the code and message for findings recorded `not_attempted`.
    pub(super) fn halted(&self) -> Option<(Option<String>, String)> {
        if let Some(reason) = &self.aborted {
            return Some((None, reason.clone()));
        }
        self.stopping
            .as_ref()
            .map(|s| (Some(STOPPED_CODE.to_owned()), s.message.clone()))
    }

    /// Stops the run: everything not in flight is recorded as not attempted.
    pub(super) fn abort(&mut self, reason: String) -> Result<(), EngineError> {
        if self.aborted.is_some() {
            return Ok(());
        }
        tracing::warn!(target: LOG_TARGET, reason = %reason, "run aborting: no new requests");
        self.events.emit(&Event::Aborting {
            reason: reason.clone(),
        });
        self.aborted = Some(reason.clone());
        let reason = format!("run aborted: {reason}");
        for (idx, item) in self.drain_waiting() {
            let name = self.regions[idx].name.clone();
            let kind = super::complete::resumable_kind(&item);
            self.finish_item(item, &name, kind, None, Some(reason.clone()))?;
        }
        self.aborted = Some(reason);
        Ok(())
    }
}

/// The next stop request; `None` when no stop can come any more (the
/// handle is gone), so that the caller stops watching.
pub(super) async fn stop_changed(
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
