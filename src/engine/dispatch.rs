//! The dispatcher: one async task that owns every finding the engine holds.
//! It takes records from the reader, forms chunks when a request may leave
//! now, sends them (one spawned task per request) and handles each
//! completion: a final outcome, or a retry through the [`RetryQueue`].

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::{mpsc, watch};

use super::chunker::{Item, Next, RegionState};
use super::intake::{ReaderMsg, route, unknown_region};
use super::operation::UpdateOperation;
use super::queue::RetryQueue;
use super::stop::{RunControls, StopHandle, StopRequest, Stopping, stop_changed};
use super::{EngineConfig, EngineError, LOG_TARGET, outcome};
use crate::events::{Event, EventSink};
use crate::model::OutcomeKind;
use crate::reporting::{Outcome, OutcomeSink, Tally};
use crate::retry::{RetryPolicy, Tries};
use crate::submission::{BatchResult, CallError};

/// A request's answer, back from its task.
pub(super) struct Completion<O: UpdateOperation> {
    /// The request number (the dispatcher holds its findings).
    pub(super) id: u64,
    pub(super) sent_at: Instant,
    pub(super) result: Result<BatchResult<O::Key>, CallError>,
}

/// The dispatcher's state (see the module documentation).
pub(super) struct Dispatcher<O: UpdateOperation> {
    pub(super) config: EngineConfig,
    /// Budgets and backoff, from `config`.
    pub(super) policy: RetryPolicy,
    /// The update operation driven (and its clients).
    pub(super) operation: Arc<O>,
    pub(super) events: Arc<dyn EventSink>,
    pub(super) tally: Tally,
    pub(super) regions: Vec<RegionState<O>>,
    pub(super) region_index: HashMap<Arc<str>, usize>,
    /// Findings waiting out a backoff.
    pub(super) delayed: RetryQueue<O>,
    /// Findings in queues, timers or requests.
    pub(super) held: usize,
    pub(super) records_read: u64,
    pub(super) input_done: bool,
    pub(super) aborted: Option<String>,
    pub(super) rng: StdRng,
    pub(super) requests: u64,
    pub(super) throttled: u64,
    pub(super) retries: u64,
    /// Where a stop request comes from (`None` once the sender is gone).
    pub(super) stop: Option<watch::Receiver<Option<StopRequest>>>,
    /// Set once a stop was asked for.
    pub(super) stopping: Option<Stopping>,
    /// The findings of each request in flight, by request number: a
    /// finding in flight is here, in exactly one entry.
    pub(super) in_flight: HashMap<u64, (usize, Vec<Item<O>>)>,
    pub(super) next_request: u64,
    /// Set when a Region's requests kept failing ([`EngineConfig::breaker`]):
    /// the stop the dispatcher begins next.
    pub(super) tripped: Option<StopRequest>,
}

impl<O: UpdateOperation> Dispatcher<O> {
    pub(super) fn new(
        config: &EngineConfig,
        operation: Arc<O>,
        events: Arc<dyn EventSink>,
        sinks: Vec<Box<dyn OutcomeSink>>,
        controls: &RunControls,
    ) -> Self {
        Dispatcher {
            config: config.clone(),
            policy: RetryPolicy {
                max_attempts: config.max_attempts,
                max_throttled: config.max_throttled,
                backoff: config.backoff.clone(),
            },
            operation,
            events,
            tally: Tally::new(sinks),
            regions: Vec::new(),
            region_index: HashMap::new(),
            delayed: RetryQueue::default(),
            held: 0,
            records_read: 0,
            input_done: false,
            aborted: None,
            rng: match config.seed {
                Some(s) => StdRng::seed_from_u64(s),
                None => StdRng::from_os_rng(),
            },
            requests: 0,
            throttled: 0,
            retries: 0,
            stop: controls.stop.as_ref().map(StopHandle::subscribe),
            stopping: None,
            in_flight: HashMap::new(),
            next_request: 0,
            tripped: None,
        }
    }

    pub(super) async fn run_loop(
        &mut self,
        mut rx: mpsc::Receiver<Vec<ReaderMsg>>,
    ) -> Result<(), EngineError> {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Completion<O>>();
        let mut pending_batches: VecDeque<ReaderMsg> = VecDeque::new();
        let mut channel_open = true;
        // A stop asked before the run began applies at once.
        let early = self
            .stop
            .as_mut()
            .and_then(|s| s.borrow_and_update().clone());
        if let Some(req) = early {
            self.begin_stop(req, &mut rx, &mut pending_batches, &mut channel_open)?;
        }
        loop {
            // Take in input while there is room.
            while self.has_room() {
                if let Some(msg) = pending_batches.pop_front() {
                    self.accept(msg)?;
                    continue;
                }
                if !channel_open {
                    break;
                }
                match rx.try_recv() {
                    Ok(batch) => pending_batches.extend(batch),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        channel_open = false;
                    }
                }
            }
            if !channel_open && pending_batches.is_empty() && !self.input_done {
                self.input_done = true;
                self.events.emit(&Event::InputFinished {
                    records: self.records_read,
                });
            }

            let now = Instant::now();
            self.release_due(now);
            let next_wake = self.dispatch(now, &done_tx)?;

            if self.input_done && self.held == 0 {
                return Ok(());
            }
            let want_input = channel_open && pending_batches.is_empty() && self.has_room();
            let watch_stop = self.stopping.is_none() && self.stop.is_some();
            let deadline = self.stopping.as_ref().map(|s| s.deadline);
            tokio::select! {
                Some(c) = done_rx.recv() => {
                    self.complete(c)?;
                    // Drain what else finished, then checkpoint once.
                    while let Ok(c) = done_rx.try_recv() {
                        self.complete(c)?;
                    }
                    self.tally.checkpoint().map_err(EngineError::Output)?;
                    // A Region whose requests keep failing stops the run:
                    // the findings stay resumable instead of burning
                    // through their attempts against a dead endpoint.
                    if let Some(req) = self.tripped.take()
                        && self.stopping.is_none()
                        && self.aborted.is_none()
                    {
                        self.begin_stop(req, &mut rx, &mut pending_batches, &mut channel_open)?;
                    }
                }
                batch = rx.recv(), if want_input => match batch {
                    Some(b) => pending_batches.extend(b),
                    None => channel_open = false,
                },
                _ = sleep_until(next_wake), if next_wake.is_some() => {}
                changed = stop_changed(&mut self.stop), if watch_stop => match changed {
                    Some(req) => {
                        self.begin_stop(req, &mut rx, &mut pending_batches, &mut channel_open)?;
                    }
                    None => self.stop = None,
                },
                _ = sleep_until(deadline), if deadline.is_some() => self.write_off_in_flight()?,
            }
        }
    }

    /// Whether more input may be taken in: memory bound (`read_ahead`)
    /// and open decision groups bound (`max_open_groups`).
    pub(super) fn has_room(&self) -> bool {
        self.held < self.config.read_ahead
            && self
                .regions
                .iter()
                .all(|r| r.groups.len() < self.config.max_open_groups)
    }

    /// Takes one message from the reader.
    pub(super) fn accept(&mut self, msg: ReaderMsg) -> Result<(), EngineError> {
        match msg {
            ReaderMsg::Record(r, decision, remark) => {
                self.count_read();
                let Some(region) =
                    route(self.config.region_override.as_deref(), &r.key).map(str::to_owned)
                else {
                    // Readers validate ARNs; this is a second line of
                    // defence, and a metadata.uid may come without a product.
                    let (column, reason) = unknown_region(&r.key);
                    return self.record(outcome(
                        r.location,
                        Some(r.key),
                        None,
                        OutcomeKind::Invalid,
                        Some(column.into()),
                        Some(reason.into()),
                    ));
                };
                let idx = self.region(&region);
                let remark = match (r.remark, remark) {
                    (Some(own), Some(note)) => Some(Cow::Owned(format!("{own}; {note}"))),
                    (Some(own), None) => Some(Cow::Owned(own.to_string())),
                    (None, note) => note,
                };
                if let Some((code, reason)) = self.halted() {
                    // Never held: record directly.
                    if let Some(s) = self.stopping.as_mut() {
                        s.left_work = true;
                    }
                    let region = Some(self.regions[idx].name.clone());
                    // The decision meant and the state recorded go with it
                    // (the `--failed` file re-applies them).
                    return self.record(Outcome {
                        applied: Some(decision),
                        state: r.current,
                        ..outcome(
                            r.location,
                            Some(r.key),
                            region,
                            OutcomeKind::NotAttempted,
                            code,
                            Some(reason),
                        )
                    });
                }
                let (key, decision) = O::admit(r.key, decision);
                let item = Item {
                    location: r.location,
                    key,
                    decision,
                    tries: Tries::default(),
                    remark,
                    current: r.current,
                };
                self.regions[idx].push(item, false, Instant::now());
                self.held += 1;
            }
            ReaderMsg::Unchanged(r, message) => {
                self.count_read();
                self.record(outcome(
                    r.location,
                    Some(r.key),
                    None,
                    OutcomeKind::Unchanged,
                    None,
                    Some(message.into_owned()),
                ))?;
            }
            ReaderMsg::Duplicate(r, message) => {
                self.count_read();
                self.record(outcome(
                    r.location,
                    Some(r.key),
                    None,
                    OutcomeKind::Duplicate,
                    None,
                    Some(message.into()),
                ))?;
            }
            ReaderMsg::Invalid(i) => {
                self.count_read();
                self.record(outcome(
                    i.location,
                    i.key,
                    None,
                    OutcomeKind::Invalid,
                    i.column,
                    Some(i.reason),
                ))?;
            }
            ReaderMsg::AlreadyDone(kind) => self.tally.already_done(kind),
            ReaderMsg::Error(e) => {
                let text = crate::submission::error_chain(&*e);
                tracing::warn!(target: LOG_TARGET, error = %text, "input error: reading stopped");
                self.tally.summary_mut().input_error = Some(text.clone());
                self.events.emit(&Event::Aborting {
                    reason: format!("input error: {text}"),
                });
            }
        }
        Ok(())
    }

    fn count_read(&mut self) {
        self.records_read += 1;
        if self.records_read.is_multiple_of(1000) {
            self.events.emit(&Event::InputRead {
                records: self.records_read,
            });
        }
    }

    fn region(&mut self, name: &str) -> usize {
        if let Some(i) = self.region_index.get(name) {
            return *i;
        }
        let name: Arc<str> = name.into();
        let idx = self.regions.len();
        self.regions
            .push(RegionState::new(name.clone(), self.config.rate));
        self.region_index.insert(name, idx);
        idx
    }

    /// Moves findings whose backoff has elapsed back to their Region's queue.
    fn release_due(&mut self, now: Instant) {
        while let Some((region, item)) = self.delayed.pop_due(now) {
            let rs = &mut self.regions[region];
            rs.delayed -= 1;
            rs.push(item, true, now);
        }
    }

    /// Sends every request that may leave now; returns when to look again.
    fn dispatch(
        &mut self,
        now: Instant,
        done: &mpsc::UnboundedSender<Completion<O>>,
    ) -> Result<Option<Instant>, EngineError> {
        let mut wake = self.delayed.next_due();
        let mut at = |t: Instant| wake = Some(wake.map_or(t, |w| w.min(t)));
        if self.halted().is_some() {
            return Ok(wake);
        }
        // A partial chunk waits (up to the linger) while more findings may
        // still join it: fresh ones from the input, or retries from the
        // timer heap or from requests in flight. Only when nothing can join
        // does it leave at once.
        let input_may_come = !self.input_done && self.has_room();
        for idx in 0..self.regions.len() {
            loop {
                let rs = &mut self.regions[idx];
                if rs.in_flight >= self.config.concurrency || !rs.has_work() {
                    break;
                }
                let more_may_join = input_may_come || rs.in_flight > 0 || rs.delayed > 0;
                let which = match rs.next(
                    now,
                    self.config.linger,
                    more_may_join,
                    self.config.max_open_groups,
                ) {
                    Next::Send(which) => which,
                    Next::Wait(due) => {
                        if let Some(due) = due {
                            at(due);
                        }
                        break;
                    }
                };
                if let Err(wait) = rs.limiter.try_acquire(now) {
                    at(now + wait);
                    break;
                }
                let chunk = rs.take(which.as_ref(), now);
                if chunk.is_empty() {
                    break;
                }
                rs.in_flight += 1;
                self.send(idx, chunk, done)?;
            }
        }
        Ok(wake)
    }

    fn send(
        &mut self,
        region: usize,
        mut items: Vec<Item<O>>,
        done: &mpsc::UnboundedSender<Completion<O>>,
    ) -> Result<(), EngineError> {
        // The journal's in-flight log learns of each finding before its
        // first request leaves: a run killed before the answer leaves
        // that record, which `revert` reads.
        if self.tally.wants_sending() {
            let name = self.regions[region].name.clone();
            let first: Vec<Outcome> = items
                .iter()
                .filter(|it| it.tries.attempts == 0)
                .map(|it| {
                    let reported = O::report(
                        it.key.clone(),
                        it.decision.clone(),
                        it.current.as_deref(),
                        true,
                    );
                    Outcome {
                        attempts: 1,
                        applied: reported.applied,
                        prior: reported.prior,
                        ..outcome(
                            it.location.clone(),
                            Some(reported.key),
                            Some(name.clone()),
                            OutcomeKind::Unknown,
                            Some(crate::journal::IN_FLIGHT_CODE.to_owned()),
                            Some("sent; its outcome was not recorded yet".to_owned()),
                        )
                    }
                })
                .collect();
            if !first.is_empty() {
                self.tally.sending(&first).map_err(EngineError::Output)?;
            }
        }
        self.requests += 1;
        for it in &mut items {
            if it.tries.attempts > 0 {
                self.retries += 1;
            }
            it.tries.attempts += 1;
        }
        let name = self.regions[region].name.clone();
        self.events.emit(&Event::RequestSent {
            region: name.clone(),
            findings: items.len(),
        });
        let operation = self.operation.clone();
        // Every finding of a chunk has the same decision (chunks are cut from one group).
        let Some(decision) = items.first().map(|i| i.decision.clone()) else {
            return Ok(());
        };
        let done = done.clone();
        let events = self.events.clone();
        let keys: Vec<O::Key> = items.iter().map(|i| i.key.clone()).collect();
        // The findings of a chunk may be on different attempts (retries
        // are rebatched with fresh findings): log the highest.
        let attempt = items.iter().map(|i| i.tries.attempts).max().unwrap_or(1);
        let id = self.next_request;
        self.next_request += 1;
        self.in_flight.insert(id, (region, items));
        tokio::spawn(async move {
            let started = Instant::now();
            let result = operation.send(&name, &decision, &keys).await;
            let latency = started.elapsed();
            match &result {
                Ok(r) => tracing::debug!(
                    target: LOG_TARGET,
                    region = %name,
                    request_id = r.request_id.as_deref().unwrap_or("-"),
                    chunk = keys.len(),
                    processed = r.processed.len(),
                    unprocessed = r.unprocessed.len(),
                    latency_ms = latency.as_millis() as u64,
                    attempt,
                    "{} answered",
                    O::NAME
                ),
                Err(e) => tracing::debug!(
                    target: LOG_TARGET,
                    region = %name,
                    request_id = e.request_id.as_deref().unwrap_or("-"),
                    chunk = keys.len(),
                    error_code = %e.code,
                    status = e.failure.status,
                    error = %e.message,
                    latency_ms = latency.as_millis() as u64,
                    attempt,
                    "{} failed",
                    O::NAME
                ),
            }
            events.emit(&Event::RequestFinished {
                region: name,
                findings: keys.len(),
                latency,
                error: result.as_ref().err().map(|e| e.code.clone()),
            });
            // The dispatcher outlives every request it spawned.
            let _ = done.send(Completion {
                id,
                sent_at: started,
                result,
            });
        });
        Ok(())
    }

    /// Records the final outcome of a finding that was held (queued, waiting
    /// or in flight).
    pub(super) fn finish_item(
        &mut self,
        item: Item<O>,
        region: &Arc<str>,
        kind: OutcomeKind,
        code: Option<String>,
        message: Option<String>,
    ) -> Result<(), EngineError> {
        self.held -= 1;
        let updated = kind == OutcomeKind::Updated;
        // Updated, or maybe applied: `unknown`, or `not_attempted` after a
        // request carried it. Those rows record what `revert` needs.
        let maybe_applied = match kind {
            OutcomeKind::Updated | OutcomeKind::Unknown => true,
            OutcomeKind::NotAttempted => item.tries.attempts > 0,
            _ => false,
        };
        let reported = O::report(
            item.key,
            item.decision,
            item.current.as_deref(),
            maybe_applied,
        );
        self.record(Outcome {
            attempts: item.tries.attempts,
            applied: reported.applied,
            prior: reported.prior,
            // What a finding not updated came with, for the `--failed` file.
            state: if updated { None } else { item.current },
            ..outcome(
                item.location,
                Some(reported.key),
                Some(region.clone()),
                kind,
                code,
                message,
            )
        })
    }

    pub(super) fn record(&mut self, outcome: Outcome) -> Result<(), EngineError> {
        self.events.emit(&Event::FindingsFinished {
            kind: outcome.kind,
            count: 1,
        });
        self.tally.record(&outcome).map_err(EngineError::Output)
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}
