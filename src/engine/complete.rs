//! Completion handling: what the dispatcher does with a request's answer.
//! Every finding of the request gets its final outcome or goes back to the
//! retry queue (a backoff), a pinned chunk (split, resend alone), or is
//! written off (abort, stop).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::EngineError;
use super::chunker::Item;
use super::dispatch::{Completion, Dispatcher};
use crate::events::Event;
use crate::model::{FindingKey, OutcomeKind};
use crate::retry::{Disposition, RetryClass, classify_call, classify_unprocessed};
use crate::submission::{BatchResult, CallError, may_have_been_applied};

use super::stop::StopRequest;

/// The outcome of a finding left undone by the connection, the service, a
/// stop or an abort: `unknown` when a request carrying it may have been
/// applied, else `not_attempted`. Both are resumable.
pub(super) fn resumable_kind(item: &Item) -> OutcomeKind {
    if item.maybe_applied {
        OutcomeKind::Unknown
    } else {
        OutcomeKind::NotAttempted
    }
}

impl Dispatcher {
    /// Handles a finished request.
    pub(super) fn complete(&mut self, c: Completion) -> Result<(), EngineError> {
        // Absent only if written off at the end of a stop's grace period.
        let Some((region, items)) = self.in_flight.remove(&c.id) else {
            return Ok(());
        };
        self.regions[region].in_flight -= 1;
        match c.result {
            Ok(result) => {
                self.regions[region].limiter.on_success();
                self.regions[region].failing = 0;
                self.complete_ok(region, items, result)
            }
            Err(err) => self.complete_err(region, c.sent_at, items, err),
        }
    }

    fn complete_ok(
        &mut self,
        region: usize,
        items: Vec<Item>,
        result: BatchResult,
    ) -> Result<(), EngineError> {
        let processed: HashSet<&FindingKey> = result.processed.iter().collect();
        let unprocessed: HashMap<&FindingKey, (&str, &str)> = result
            .unprocessed
            .iter()
            .map(|(k, c, m)| (k, (c.as_str(), m.as_str())))
            .collect();
        for (_, code, _) in &result.unprocessed {
            *self
                .tally
                .summary_mut()
                .unprocessed_by_code
                .entry(code.clone())
                .or_default() += 1;
        }
        for item in items {
            if let Some((code, message)) = unprocessed.get(&item.key) {
                let (code, message) = (code.to_string(), message.to_string());
                match classify_unprocessed(&code) {
                    Disposition::Retry(class) => self.retry(region, item, class, code, message)?,
                    Disposition::ResendAlone => self.resend_alone(region, item, code, message)?,
                    _ => self.fail(region, item, code, message)?,
                }
            } else if processed.contains(&item.key) {
                let name = self.regions[region].name.clone();
                let remark = item.remark.clone().map(Cow::into_owned);
                self.finish_item(item, &name, OutcomeKind::Updated, None, remark)?;
            } else {
                // Neither processed nor unprocessed: the service said nothing
                // about it, so it may or may not be updated. Send it again.
                let msg = "the response did not mention this finding".to_owned();
                self.retry(
                    region,
                    item,
                    RetryClass::Transient,
                    "MissingFromResponse".into(),
                    msg,
                )?;
            }
        }
        Ok(())
    }

    fn complete_err(
        &mut self,
        region: usize,
        sent_at: Instant,
        items: Vec<Item>,
        err: CallError,
    ) -> Result<(), EngineError> {
        let disposition = classify_call(&err.failure);
        let detail = match &err.request_id {
            Some(id) => format!("{} (request id {id})", err.message),
            None => err.message.clone(),
        };
        let mut items = items;
        if may_have_been_applied(&err) {
            for item in &mut items {
                item.maybe_applied = true;
            }
        }
        match disposition {
            Disposition::Retry(RetryClass::Throttle) => {
                self.throttled += 1;
                let rs = &mut self.regions[region];
                if rs.limiter.on_throttled(sent_at, Instant::now()) {
                    self.events.emit(&Event::Throttled {
                        region: rs.name.clone(),
                        rate: rs.limiter.current_rate(),
                    });
                }
                for mut item in items {
                    item.throttles += 1;
                    if item.throttles > self.config.max_throttled {
                        // The quota, not the finding: resumable.
                        self.give_up_resumable(
                            region,
                            item,
                            err.code.clone(),
                            format!(
                                "still throttled after {} attempts: {detail}",
                                self.config.max_throttled
                            ),
                        )?;
                    } else {
                        let delay = self.config.backoff.delay(
                            RetryClass::Throttle,
                            item.throttles,
                            &mut self.rng,
                        );
                        self.schedule(region, item, delay)?;
                    }
                }
            }
            Disposition::Retry(class) => {
                // The connection or the service failed, not the findings.
                self.count_failing(region, &err.code, &detail);
                for item in items {
                    self.retry_request(region, item, class, err.code.clone(), detail.clone())?;
                }
            }
            Disposition::Split => {
                if items.len() > 1 && self.halted().is_none() {
                    let mut first = items;
                    let second = first.split_off(first.len() / 2);
                    let rs = &mut self.regions[region];
                    rs.pinned.push_front(second);
                    rs.pinned.push_front(first);
                } else {
                    for item in items {
                        self.fail(region, item, err.code.clone(), detail.clone())?;
                    }
                }
            }
            Disposition::Permanent | Disposition::ResendAlone => {
                for item in items {
                    self.fail(region, item, err.code.clone(), detail.clone())?;
                }
            }
            Disposition::Abort => {
                // Access denied, bad credentials: nothing about these
                // findings, so they stay resumable (`not_attempted` with the
                // code), like every finding the abort leaves unsent.
                let reason = format!("{}: {detail}", err.code);
                for item in items {
                    let name = self.regions[region].name.clone();
                    let message = format!("run aborted: {reason}");
                    let kind = resumable_kind(&item);
                    self.finish_item(item, &name, kind, Some(err.code.clone()), Some(message))?;
                }
                self.abort(reason)?;
            }
        }
        Ok(())
    }

    /// Schedules a retry, or records the final failure if attempts are used up.
    fn retry(
        &mut self,
        region: usize,
        mut item: Item,
        class: RetryClass,
        code: String,
        message: String,
    ) -> Result<(), EngineError> {
        item.failures += 1;
        if item.failures >= self.config.max_attempts {
            let message = format!("{message} (gave up after {} attempts)", item.attempts);
            return self.fail(region, item, code, message);
        }
        let delay = self
            .config
            .backoff
            .delay(class, item.failures, &mut self.rng);
        self.schedule(region, item, delay)
    }

    /// [`Self::retry`] for a request that failed as a whole for reasons
    /// that say nothing about its findings: once attempts are used up, the
    /// finding is resumable (`not_attempted`, or `unknown` if a request
    /// carrying it may have been applied), never `failed`.
    fn retry_request(
        &mut self,
        region: usize,
        mut item: Item,
        class: RetryClass,
        code: String,
        message: String,
    ) -> Result<(), EngineError> {
        item.failures += 1;
        if item.failures >= self.config.max_attempts {
            let message = format!("{message} (gave up after {} attempts)", item.attempts);
            return self.give_up_resumable(region, item, code, message);
        }
        let delay = self
            .config
            .backoff
            .delay(class, item.failures, &mut self.rng);
        self.schedule(region, item, delay)
    }

    /// Records a finding its requests could not get through (the
    /// connection, the service, the quota): `unknown` if one may have been
    /// applied, else `not_attempted`; `--resume` sends it again.
    fn give_up_resumable(
        &mut self,
        region: usize,
        item: Item,
        code: String,
        message: String,
    ) -> Result<(), EngineError> {
        let name = self.regions[region].name.clone();
        let kind = resumable_kind(&item);
        let message =
            format!("{message}; the request failed, not the finding: resume to send it again");
        self.finish_item(item, &name, kind, Some(code), Some(message))
    }

    /// Counts a request that failed for reasons that say nothing about its
    /// findings; at [`super::EngineConfig::breaker`] in a row in one Region,
    /// the run is stopped (resume later).
    fn count_failing(&mut self, region: usize, code: &str, detail: &str) {
        let rs = &mut self.regions[region];
        rs.failing += 1;
        let limit = self.config.breaker;
        if limit == 0 || rs.failing < limit || self.tripped.is_some() {
            return;
        }
        let reason = format!(
            "{limit} requests in a row failed in {} (last: {code}: {detail}): the endpoint or the \
             network is down; resume later",
            rs.name
        );
        tracing::warn!(region = %rs.name, failures = limit, "stopping: requests keep failing");
        self.tripped = Some(StopRequest {
            reason,
            grace: self.config.breaker_grace,
        });
    }

    fn resend_alone(
        &mut self,
        region: usize,
        mut item: Item,
        code: String,
        message: String,
    ) -> Result<(), EngineError> {
        item.failures += 1;
        if item.failures >= self.config.max_attempts {
            return self.fail(region, item, code, message);
        }
        if self.halted().is_some() {
            return self.schedule(region, item, Duration::ZERO);
        }
        self.regions[region].pinned.push_back(vec![item]);
        Ok(())
    }

    pub(super) fn schedule(
        &mut self,
        region: usize,
        item: Item,
        delay: Duration,
    ) -> Result<(), EngineError> {
        if self.aborted.is_none() && self.stopping.is_some() {
            return self.write_off(region, item, None);
        }
        if let Some(reason) = self.aborted.clone() {
            let name = self.regions[region].name.clone();
            let kind = resumable_kind(&item);
            return self.finish_item(item, &name, kind, None, Some(reason));
        }
        self.regions[region].delayed += 1;
        self.delayed.push(region, item, Instant::now() + delay);
        Ok(())
    }

    pub(super) fn fail(
        &mut self,
        region: usize,
        item: Item,
        code: String,
        message: String,
    ) -> Result<(), EngineError> {
        let name = self.regions[region].name.clone();
        self.finish_item(item, &name, OutcomeKind::Failed, Some(code), Some(message))
    }
}
