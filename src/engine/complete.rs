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
use super::operation::UpdateOperation;
use crate::events::Event;
use crate::model::OutcomeKind;
use crate::retry::{
    Action, CallDisposition, EntryDisposition, MISSING_FROM_RESPONSE_CODE,
    MISSING_FROM_RESPONSE_MESSAGE, RequestAction, RetryClass,
};
use crate::submission::{BatchResult, CallError, may_have_been_applied};

use super::stop::StopRequest;

/// The outcome of a finding left undone by the connection, the service, a
/// stop or an abort: `unknown` when a request carrying it may have been
/// applied, else `not_attempted`. Both are resumable.
pub(super) fn resumable_kind<O: UpdateOperation>(item: &Item<O>) -> OutcomeKind {
    if item.tries.maybe_applied {
        OutcomeKind::Unknown
    } else {
        OutcomeKind::NotAttempted
    }
}

impl<O: UpdateOperation> Dispatcher<O> {
    /// Handles a finished request.
    pub(super) fn complete(&mut self, c: Completion<O>) -> Result<(), EngineError> {
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
        items: Vec<Item<O>>,
        result: BatchResult<O::Key>,
    ) -> Result<(), EngineError> {
        let processed: HashSet<&O::Key> = result.processed.iter().collect();
        let unprocessed: HashMap<&O::Key, (&str, &str)> = result
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
                let disposition = O::classify_entry(code);
                self.after_entry(region, item, disposition, code, message.to_string())?;
            } else if processed.contains(&item.key) {
                let name = self.regions[region].name.clone();
                let remark = item.remark.clone().map(Cow::into_owned);
                self.finish_item(item, &name, OutcomeKind::Updated, None, remark)?;
            } else {
                self.after_entry(
                    region,
                    item,
                    EntryDisposition::MISSING_FROM_RESPONSE,
                    MISSING_FROM_RESPONSE_CODE,
                    MISSING_FROM_RESPONSE_MESSAGE.to_owned(),
                )?;
            }
        }
        Ok(())
    }

    fn complete_err(
        &mut self,
        region: usize,
        sent_at: Instant,
        items: Vec<Item<O>>,
        err: CallError,
    ) -> Result<(), EngineError> {
        let disposition = O::classify_call(&err.failure);
        let mut items = items;
        if may_have_been_applied(&err) {
            for item in &mut items {
                item.tries.maybe_applied = true;
            }
        }
        let detail = match &err.request_id {
            Some(id) => format!("{} (request id {id})", err.message),
            None => err.message.clone(),
        };
        if let CallDisposition::Retry(class) = disposition
            && class != RetryClass::Throttle
        {
            // The connection or the service failed, not the findings.
            self.count_failing(region, &err.code, &detail);
        }
        let halted = self.halted().is_some();
        let (throttled, abort) =
            match self
                .policy
                .on_call(disposition, &err.code, &detail, items.len(), halted)
            {
                RequestAction::Split => {
                    let mut first = items;
                    let second = first.split_off(first.len() / 2);
                    let rs = &mut self.regions[region];
                    rs.pinned.push_front(second);
                    rs.pinned.push_front(first);
                    return Ok(());
                }
                RequestAction::Each { throttled, abort } => (throttled, abort),
            };
        if throttled {
            self.throttled += 1;
            let rs = &mut self.regions[region];
            if rs.limiter.on_throttled(sent_at, Instant::now()) {
                self.events.emit(&Event::Throttled {
                    region: rs.name.clone(),
                    rate: rs.limiter.current_rate(),
                });
            }
        }
        for mut item in items {
            let action = self.policy.after_call(
                disposition,
                &err.code,
                &detail,
                &mut item.tries,
                &mut self.rng,
            );
            self.carry_out(region, item, action, &err.code)?;
        }
        if let Some(reason) = abort {
            self.abort(reason)?;
        }
        Ok(())
    }

    /// Acts on the policy's word about one unprocessed finding.
    fn after_entry(
        &mut self,
        region: usize,
        mut item: Item<O>,
        disposition: EntryDisposition,
        code: &str,
        message: String,
    ) -> Result<(), EngineError> {
        let halted = self.halted().is_some();
        let action =
            self.policy
                .after_entry(disposition, &mut item.tries, message, halted, &mut self.rng);
        self.carry_out(region, item, action, code)
    }

    /// Carries out what the retry policy decided for one finding whose
    /// request failed with `code`.
    fn carry_out(
        &mut self,
        region: usize,
        item: Item<O>,
        action: Action,
        code: &str,
    ) -> Result<(), EngineError> {
        match action {
            Action::Schedule(delay) => self.schedule(region, item, delay),
            Action::ResendAlone => {
                self.regions[region].pinned.push_back(vec![item]);
                Ok(())
            }
            Action::Fail(message) => self.fail(region, item, code.to_owned(), message),
            Action::Resumable(message) => {
                let name = self.regions[region].name.clone();
                let kind = resumable_kind(&item);
                self.finish_item(item, &name, kind, Some(code.to_owned()), Some(message))
            }
        }
    }

    pub(super) fn schedule(
        &mut self,
        region: usize,
        item: Item<O>,
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
        tracing::warn!(
            target: super::LOG_TARGET,
            region = %rs.name,
            failures = limit,
            "stopping: requests keep failing"
        );
        self.tripped = Some(StopRequest {
            reason,
            grace: self.config.breaker_grace,
        });
    }

    pub(super) fn fail(
        &mut self,
        region: usize,
        item: Item<O>,
        code: String,
        message: String,
    ) -> Result<(), EngineError> {
        let name = self.regions[region].name.clone();
        self.finish_item(item, &name, OutcomeKind::Failed, Some(code), Some(message))
    }
}
