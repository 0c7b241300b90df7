//! What to do after a failure: the one place that decides whether a finding
//! or a whole request is retried, how long to wait first, and when to give
//! up.
//!
//! Classification is two pure, table-tested functions:
//! [`classify_unprocessed`] for the per-finding codes that come back inside a
//! successful `BatchUpdateFindings` response ([`EntryDisposition`]), and
//! [`classify_call`] for failures of a whole request ([`CallDisposition`]).
//! Policy is [`RetryPolicy`]: the attempt budgets, the throttle ceiling, the
//! [`Backoff`] curves (exponential, capped, full jitter), splitting a
//! rejected request, resending alone, and abort versus not attempted. It
//! turns a disposition and a finding's [`Tries`] into an [`Action`] (and a
//! whole request's failure into a [`RequestAction`]) that the engine's
//! dispatcher only carries out. Nothing here sends requests or sleeps.

use std::time::Duration;

use rand::Rng;

/// Why something is being retried; each class has its own backoff curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetryClass {
    /// `ConcurrentUpdateError`: another writer raced us; short waits suffice.
    Conflict,
    /// `InternalFailure`, HTTP 5xx, timeouts, dropped connections.
    Transient,
    /// The whole request was throttled; the Region's pace also backs off.
    Throttle,
}

/// The decision for one entry a successful response reported as not
/// processed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryDisposition {
    /// Try again after a backoff of the given class.
    Retry(RetryClass),
    /// Send the finding again, alone (a `DuplicatedFindingIdentifier` we did
    /// not expect: the engine never puts one identifier twice in a request).
    ResendAlone,
    /// Final failure for the finding.
    Permanent,
}

impl EntryDisposition {
    /// A finding the response mentioned neither as processed nor as
    /// unprocessed: it may or may not be updated, so it is sent again.
    pub(crate) const MISSING_FROM_RESPONSE: EntryDisposition =
        EntryDisposition::Retry(RetryClass::Transient);
}

/// The code recorded for a finding the response did not mention.
pub(crate) const MISSING_FROM_RESPONSE_CODE: &str = "MissingFromResponse";
/// The message recorded for a finding the response did not mention.
pub(crate) const MISSING_FROM_RESPONSE_MESSAGE: &str = "the response did not mention this finding";

/// The decision for a request that failed as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallDisposition {
    /// Try again after a backoff of the given class.
    Retry(RetryClass),
    /// The request was rejected as a whole as invalid: split it until the
    /// offending findings are isolated.
    Split,
    /// Final failure for the findings concerned.
    Permanent,
    /// Stop the whole run: nothing else will succeed (access denied, bad credentials).
    Abort,
}

/// The former name of [`CallDisposition`] (the only one with `Retry`,
/// `Split` and `Abort`), kept so that callers keep compiling.
pub(crate) type Disposition = CallDisposition;

/// Classifies a per-finding `ErrorCode` from `UnprocessedFindings` (docs/service-facts.md §2.4).
pub(crate) fn classify_unprocessed(code: &str) -> EntryDisposition {
    match code {
        "ConcurrentUpdateError" => EntryDisposition::Retry(RetryClass::Conflict),
        "InternalFailure" => EntryDisposition::Retry(RetryClass::Transient),
        "DuplicatedFindingIdentifier" => EntryDisposition::ResendAlone,
        "FindingNotFound" | "InvalidInput" | "FindingSizeExceeded" => EntryDisposition::Permanent,
        // An undocumented code: retrying blindly could loop; record it with its code.
        _ => EntryDisposition::Permanent,
    }
}

/// Classifies a per-finding `ErrorCode` of `BatchUpdateFindingsV2`'s
/// `UnprocessedFindings` (docs/service-facts.md §7.1): `ConflictException` and
/// `InternalServerException` are retried with backoff,
/// `ResourceNotFoundException` and `ValidationException` recorded. A code
/// the model does not know, or none at all, is recorded with it: retrying
/// blindly could loop.
pub(crate) fn classify_unprocessed_v2(code: &str) -> EntryDisposition {
    match code {
        "ConflictException" => EntryDisposition::Retry(RetryClass::Conflict),
        "InternalServerException" => EntryDisposition::Retry(RetryClass::Transient),
        "ResourceNotFoundException" | "ValidationException" => EntryDisposition::Permanent,
        _ => EntryDisposition::Permanent,
    }
}

/// Classifies a `BatchUpdateFindingsV2` request that failed as a whole: the
/// shared table, plus the operation's own request-level
/// `ConflictException` (409), retried like a per-finding conflict.
pub(crate) fn classify_call_v2(f: &CallFailure) -> CallDisposition {
    if f.transport.is_none()
        && (f.code.as_deref() == Some("ConflictException") || f.status == Some(409))
    {
        return CallDisposition::Retry(RetryClass::Conflict);
    }
    classify_call(f)
}

/// The facts about a failed request that classification needs, extracted from
/// the SDK error by the submission stage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallFailure {
    /// HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// Error code (`x-amzn-ErrorType` as the SDK parsed it), when there is one.
    pub code: Option<String>,
    /// What happened below HTTP, when no response arrived.
    pub(crate) transport: Option<Transport>,
}

/// Failures without an HTTP response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    /// Connection refused, reset or dropped; I/O error.
    Io,
    /// The attempt timed out.
    Timeout,
    /// Credentials could not be loaded or are invalid.
    Credentials,
    /// The request could not be built or dispatched for another reason
    /// (configuration): retrying will not help.
    Other,
}

/// Error codes every SDK treats as throttling (docs/service-facts.md §4.3), plus the V2 one.
const THROTTLING_CODES: &[&str] = &[
    "LimitExceededException",
    "TooManyRequestsException",
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestThrottledException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "SlowDown",
];

/// Codes that mean this caller may not update findings here at all.
const ACCESS_CODES: &[&str] = &[
    "AccessDeniedException",
    "InvalidAccessException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "MissingAuthenticationTokenException",
];

/// Classifies a failed request (docs/service-facts.md §3, §4).
pub(crate) fn classify_call(f: &CallFailure) -> CallDisposition {
    if let Some(t) = f.transport {
        return match t {
            Transport::Io | Transport::Timeout => CallDisposition::Retry(RetryClass::Transient),
            Transport::Credentials => CallDisposition::Abort,
            Transport::Other => CallDisposition::Abort,
        };
    }
    let code = f.code.as_deref().unwrap_or("");
    if THROTTLING_CODES.contains(&code) || (f.status == Some(429)) {
        // A bare 429 is throttling too, whatever its body says.
        return CallDisposition::Retry(RetryClass::Throttle);
    }
    if ACCESS_CODES.contains(&code) || matches!(f.status, Some(401 | 403)) {
        return CallDisposition::Abort;
    }
    if code == "InvalidInputException" || code == "ValidationException" {
        return CallDisposition::Split;
    }
    match f.status {
        Some(500..=599) => CallDisposition::Retry(RetryClass::Transient),
        Some(408) => CallDisposition::Retry(RetryClass::Transient),
        _ if code == "RequestTimeout" || code == "RequestTimeoutException" => {
            CallDisposition::Retry(RetryClass::Transient)
        }
        // Any other 4xx: the request as built is wrong and will stay wrong.
        _ => CallDisposition::Permanent,
    }
}

/// Exponential backoff with a cap and full jitter, one curve per [`RetryClass`].
#[derive(Clone, Debug)]
pub struct Backoff {
    /// First-retry ceiling for conflicts.
    pub(crate) conflict_base: Duration,
    /// First-retry ceiling for transient failures.
    pub(crate) transient_base: Duration,
    /// First-retry ceiling for throttled requests.
    pub(crate) throttle_base: Duration,
    /// No delay ever exceeds this.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            conflict_base: Duration::from_millis(200),
            transient_base: Duration::from_millis(500),
            throttle_base: Duration::from_millis(500),
            cap: Duration::from_secs(20),
        }
    }
}

impl Backoff {
    /// The ceiling of the delay before retry number `retry` (1 = first retry).
    pub(crate) fn ceiling(&self, class: RetryClass, retry: u32) -> Duration {
        let base = match class {
            RetryClass::Conflict => self.conflict_base,
            RetryClass::Transient => self.transient_base,
            RetryClass::Throttle => self.throttle_base,
        };
        let exp = retry.saturating_sub(1).min(20);
        base.saturating_mul(1u32 << exp).min(self.cap)
    }

    /// A delay drawn uniformly from `[0, ceiling]` ("full jitter"), so that
    /// findings that failed together do not come back together.
    pub(crate) fn delay(&self, class: RetryClass, retry: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling(class, retry);
        let nanos = ceiling.as_nanos().min(u128::from(u64::MAX)) as u64;
        Duration::from_nanos(rng.random_range(0..=nanos))
    }
}

/// Said of findings left resumable by a request-level failure.
const RESUME_HINT: &str = "the request failed, not the finding: resume to send it again";

/// A finding's counters, kept with it from its first request to its outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tries {
    /// Requests that carried it.
    pub attempts: u32,
    /// Retryable failures so far (throttles not included).
    pub failures: u32,
    /// Throttled responses so far.
    pub(crate) throttles: u32,
    /// A request carrying it may have been applied though no answer came
    /// (a timeout, a connection lost after sending): if it ends without a
    /// definite answer, its outcome is `unknown`.
    pub(crate) maybe_applied: bool,
}

/// What the dispatcher does with one finding after a failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Send it again once this backoff has passed (the timer heap).
    Schedule(Duration),
    /// Send it again at once, in a request of its own.
    ResendAlone,
    /// Record it `failed`, with the error's code and this message.
    Fail(String),
    /// Record it resumable (`not_attempted`, or `unknown` if a request
    /// carrying it may have been applied) with the error's code and this
    /// message: the request failed for reasons that say nothing about the
    /// finding (the connection, the quota, access), so `--resume` sends it
    /// again.
    Resumable(String),
}

/// What the dispatcher does with a request that failed as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RequestAction {
    /// Send its findings again as two pinned halves (counters unchanged).
    Split,
    /// Act on each of its findings as [`RetryPolicy::after_call`] says.
    /// `throttled`: count the throttle and let the Region's pace react
    /// first; `abort`: stop the run afterwards, with this reason.
    Each {
        /// The service throttled the request.
        throttled: bool,
        /// The run stops afterwards, for this reason.
        abort: Option<String>,
    },
}

/// The retry policy: budgets, throttle ceiling and backoff curves.
#[derive(Clone, Debug)]
pub(crate) struct RetryPolicy {
    /// Attempts per finding for retryable errors.
    pub max_attempts: u32,
    /// Throttled responses per finding before giving up on it.
    pub(crate) max_throttled: u32,
    /// Backoff curves.
    pub backoff: Backoff,
}

impl RetryPolicy {
    /// What to do with a finding a successful response reported as not
    /// processed (`disposition` from the operation's code table), with the
    /// service's `message`. `halted`: no new request may leave (a stop or an
    /// abort), so nothing is pinned.
    pub(crate) fn after_entry(
        &self,
        disposition: EntryDisposition,
        tries: &mut Tries,
        message: String,
        halted: bool,
        rng: &mut impl Rng,
    ) -> Action {
        match disposition {
            EntryDisposition::Retry(class) => self.retry(class, tries, message, rng),
            EntryDisposition::ResendAlone => {
                tries.failures += 1;
                if tries.failures >= self.max_attempts {
                    Action::Fail(message)
                } else if halted {
                    // Not sent again: scheduling a halted run writes it off.
                    Action::Schedule(Duration::ZERO)
                } else {
                    Action::ResendAlone
                }
            }
            EntryDisposition::Permanent => Action::Fail(message),
        }
    }

    /// What happens to a request that failed as a whole with `disposition`
    /// (error `code`, `detail` for humans), carrying `findings` findings.
    pub(crate) fn on_call(
        &self,
        disposition: CallDisposition,
        code: &str,
        detail: &str,
        findings: usize,
        halted: bool,
    ) -> RequestAction {
        match disposition {
            CallDisposition::Split if findings > 1 && !halted => RequestAction::Split,
            CallDisposition::Retry(RetryClass::Throttle) => RequestAction::Each {
                throttled: true,
                abort: None,
            },
            CallDisposition::Abort => RequestAction::Each {
                throttled: false,
                abort: Some(format!("{code}: {detail}")),
            },
            _ => RequestAction::Each {
                throttled: false,
                abort: None,
            },
        }
    }

    /// What to do with each finding of a request that failed as a whole
    /// ([`RequestAction::Each`]). A failure of the request that says nothing
    /// about its findings (throttling past the ceiling, the connection or
    /// the service after the attempts, access) leaves them resumable, never
    /// `failed`.
    pub(crate) fn after_call(
        &self,
        disposition: CallDisposition,
        code: &str,
        detail: &str,
        tries: &mut Tries,
        rng: &mut impl Rng,
    ) -> Action {
        match disposition {
            CallDisposition::Retry(RetryClass::Throttle) => {
                tries.throttles += 1;
                if tries.throttles > self.max_throttled {
                    // The quota, not the finding: resumable.
                    Action::Resumable(format!(
                        "still throttled after {} attempts: {detail}; {RESUME_HINT}",
                        self.max_throttled
                    ))
                } else {
                    let delay = self
                        .backoff
                        .delay(RetryClass::Throttle, tries.throttles, rng);
                    Action::Schedule(delay)
                }
            }
            CallDisposition::Retry(class) => {
                // The connection or the service failed, not the findings:
                // once the attempts are used up they stay resumable.
                match self.retry(class, tries, detail.to_owned(), rng) {
                    Action::Fail(message) => Action::Resumable(format!("{message}; {RESUME_HINT}")),
                    other => other,
                }
            }
            CallDisposition::Split | CallDisposition::Permanent => Action::Fail(detail.to_owned()),
            // Access denied, bad credentials: nothing about these findings,
            // so they stay resumable (with the code), like every finding the
            // abort leaves unsent.
            CallDisposition::Abort => Action::Resumable(format!("run aborted: {code}: {detail}")),
        }
    }

    /// A retryable failure: a backoff, or the final failure once the
    /// attempts are used up.
    fn retry(
        &self,
        class: RetryClass,
        tries: &mut Tries,
        message: String,
        rng: &mut impl Rng,
    ) -> Action {
        tries.failures += 1;
        if tries.failures >= self.max_attempts {
            return Action::Fail(format!(
                "{message} (gave up after {} attempts)",
                tries.attempts
            ));
        }
        Action::Schedule(self.backoff.delay(class, tries.failures, rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn unprocessed_codes_table() {
        use EntryDisposition::*;
        let table = [
            ("ConcurrentUpdateError", Retry(RetryClass::Conflict)),
            ("InternalFailure", Retry(RetryClass::Transient)),
            ("DuplicatedFindingIdentifier", ResendAlone),
            ("FindingNotFound", Permanent),
            ("InvalidInput", Permanent),
            ("FindingSizeExceeded", Permanent),
            ("SomethingNew", Permanent),
            ("", Permanent),
        ];
        for (code, want) in table {
            assert_eq!(classify_unprocessed(code), want, "code {code:?}");
        }
    }

    #[test]
    fn unprocessed_codes_table_v2() {
        use EntryDisposition::*;
        let table = [
            ("ConflictException", Retry(RetryClass::Conflict)),
            ("InternalServerException", Retry(RetryClass::Transient)),
            ("ResourceNotFoundException", Permanent),
            ("ValidationException", Permanent),
            ("SomethingNew", Permanent),
            ("", Permanent),
            // V1's codes mean nothing here.
            ("ConcurrentUpdateError", Permanent),
        ];
        for (code, want) in table {
            assert_eq!(classify_unprocessed_v2(code), want, "code {code:?}");
        }
    }

    #[test]
    fn call_failures_table_v2() {
        use CallDisposition::*;
        let table = [
            (
                http(409, Some("ConflictException")),
                Retry(RetryClass::Conflict),
            ),
            (http(400, Some("ValidationException")), Split),
            (http(403, Some("AccessDeniedException")), Abort),
            (
                http(429, Some("ThrottlingException")),
                Retry(RetryClass::Throttle),
            ),
            (
                http(500, Some("InternalServerException")),
                Retry(RetryClass::Transient),
            ),
            (http(404, Some("ResourceNotFoundException")), Permanent),
        ];
        for (f, want) in table {
            assert_eq!(classify_call_v2(&f), want, "{f:?}");
        }
        // The shared table does not know a request-level conflict.
        assert_eq!(
            classify_call(&http(409, Some("ConflictException"))),
            Permanent
        );
    }

    fn http(status: u16, code: Option<&str>) -> CallFailure {
        CallFailure {
            status: Some(status),
            code: code.map(str::to_owned),
            transport: None,
        }
    }

    #[test]
    fn call_failures_table() {
        use CallDisposition::*;
        let throttle = Retry(RetryClass::Throttle);
        let transient = Retry(RetryClass::Transient);
        let table = [
            (http(429, Some("LimitExceededException")), throttle),
            (http(429, Some("TooManyRequestsException")), throttle),
            (http(429, Some("ThrottlingException")), throttle),
            (http(429, None), throttle),
            // Throttling code on an unusual status is still throttling.
            (http(400, Some("ThrottlingException")), throttle),
            (http(500, Some("InternalException")), transient),
            (http(502, None), transient),
            (http(503, Some("ServiceUnavailable")), transient),
            (http(504, None), transient),
            (http(400, Some("InvalidInputException")), Split),
            (http(401, Some("InvalidAccessException")), Abort),
            (http(403, Some("AccessDeniedException")), Abort),
            (http(403, None), Abort),
            (http(400, Some("UnrecognizedClientException")), Abort),
            (http(404, Some("ResourceNotFoundException")), Permanent),
            (http(409, Some("ConflictException")), Permanent),
        ];
        for (failure, want) in table {
            assert_eq!(classify_call(&failure), want, "{failure:?}");
        }
        let transport = |t| CallFailure {
            transport: Some(t),
            ..Default::default()
        };
        assert_eq!(classify_call(&transport(Transport::Io)), transient);
        assert_eq!(classify_call(&transport(Transport::Timeout)), transient);
        assert_eq!(classify_call(&transport(Transport::Credentials)), Abort);
        assert_eq!(classify_call(&transport(Transport::Other)), Abort);
    }

    #[test]
    fn backoff_grows_exponentially_and_is_capped() {
        let b = Backoff::default();
        assert_eq!(
            b.ceiling(RetryClass::Conflict, 1),
            Duration::from_millis(200)
        );
        assert_eq!(
            b.ceiling(RetryClass::Conflict, 2),
            Duration::from_millis(400)
        );
        assert_eq!(
            b.ceiling(RetryClass::Conflict, 4),
            Duration::from_millis(1600)
        );
        assert_eq!(
            b.ceiling(RetryClass::Transient, 1),
            Duration::from_millis(500)
        );
        assert_eq!(b.ceiling(RetryClass::Transient, 30), b.cap);
        assert_eq!(b.ceiling(RetryClass::Throttle, u32::MAX), b.cap);
        assert_eq!(
            b.ceiling(RetryClass::Throttle, 0),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn jitter_stays_within_ceiling_and_spreads() {
        let b = Backoff::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let ceiling = b.ceiling(RetryClass::Transient, 3);
        let delays: Vec<_> = (0..2000)
            .map(|_| b.delay(RetryClass::Transient, 3, &mut rng))
            .collect();
        assert!(delays.iter().all(|d| *d <= ceiling));
        // Full jitter: both halves of the range are used.
        let low = delays.iter().filter(|d| **d < ceiling / 2).count();
        assert!(low > 800 && low < 1200, "low half count {low}");
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            max_throttled: 2,
            backoff: Backoff::default(),
        }
    }

    fn tries(attempts: u32, failures: u32, throttles: u32) -> Tries {
        Tries {
            attempts,
            failures,
            throttles,
            maybe_applied: false,
        }
    }

    /// What an action is, without the random delay.
    #[derive(Debug, PartialEq, Eq)]
    enum Kind {
        Schedule,
        ScheduleNow,
        ResendAlone,
        Fail(&'static str),
        Resumable(&'static str),
    }

    fn kind(a: &Action) -> Kind {
        match a {
            Action::Schedule(d) if d.is_zero() => Kind::ScheduleNow,
            Action::Schedule(_) => Kind::Schedule,
            Action::ResendAlone => Kind::ResendAlone,
            Action::Fail(m) => Kind::Fail(m.clone().leak()),
            Action::Resumable(m) => Kind::Resumable(m.clone().leak()),
        }
    }

    #[test]
    fn entry_policy_table() {
        use EntryDisposition::*;
        let conflict = Retry(RetryClass::Conflict);
        // (disposition, tries before, halted, action, tries after)
        let table = [
            (
                conflict,
                tries(1, 0, 0),
                false,
                Kind::Schedule,
                tries(1, 1, 0),
            ),
            (
                conflict,
                tries(2, 1, 0),
                false,
                Kind::Schedule,
                tries(2, 2, 0),
            ),
            // The third failure uses up max_attempts = 3.
            (
                conflict,
                tries(3, 2, 0),
                false,
                Kind::Fail("busy (gave up after 3 attempts)"),
                tries(3, 3, 0),
            ),
            // Throttles do not count against the attempts budget.
            (
                conflict,
                tries(9, 0, 7),
                false,
                Kind::Schedule,
                tries(9, 1, 7),
            ),
            (
                ResendAlone,
                tries(1, 0, 0),
                false,
                Kind::ResendAlone,
                tries(1, 1, 0),
            ),
            // A halted run pins nothing: scheduling writes the finding off.
            (
                ResendAlone,
                tries(1, 0, 0),
                true,
                Kind::ScheduleNow,
                tries(1, 1, 0),
            ),
            (
                ResendAlone,
                tries(3, 2, 0),
                false,
                Kind::Fail("busy"),
                tries(3, 3, 0),
            ),
            (
                Permanent,
                tries(1, 0, 0),
                false,
                Kind::Fail("busy"),
                tries(1, 0, 0),
            ),
            (
                EntryDisposition::MISSING_FROM_RESPONSE,
                tries(1, 0, 0),
                false,
                Kind::Schedule,
                tries(1, 1, 0),
            ),
        ];
        let p = policy();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for (d, before, halted, want, after) in table {
            let mut t = before;
            let a = p.after_entry(d, &mut t, "busy".into(), halted, &mut rng);
            assert_eq!(kind(&a), want, "{d:?} {before:?} halted={halted}");
            assert_eq!(t, after, "{d:?} {before:?}");
            if let Action::Schedule(delay) = a
                && let Retry(class) = d
            {
                assert!(delay <= p.backoff.ceiling(class, t.failures));
            }
        }
    }

    #[test]
    fn request_policy_table() {
        use CallDisposition::*;
        let p = policy();
        let each = |throttled, abort: Option<&str>| RequestAction::Each {
            throttled,
            abort: abort.map(str::to_owned),
        };
        // (disposition, findings, halted, what happens to the request)
        let table = [
            (Split, 10, false, RequestAction::Split),
            (Split, 2, false, RequestAction::Split),
            // One finding cannot be split; a halted run sends nothing more.
            (Split, 1, false, each(false, None)),
            (Split, 10, true, each(false, None)),
            (Retry(RetryClass::Throttle), 10, false, each(true, None)),
            (Retry(RetryClass::Transient), 10, false, each(false, None)),
            (Permanent, 10, false, each(false, None)),
            (Abort, 10, false, each(false, Some("AccessDenied: no"))),
        ];
        for (d, n, halted, want) in table {
            assert_eq!(
                p.on_call(d, "AccessDenied", "no", n, halted),
                want,
                "{d:?} n={n}"
            );
        }

        let throttle = Retry(RetryClass::Throttle);
        // (disposition, tries before, action, tries after)
        let table = [
            (throttle, tries(1, 0, 0), Kind::Schedule, tries(1, 0, 1)),
            (throttle, tries(2, 2, 1), Kind::Schedule, tries(2, 2, 2)),
            // Past max_throttled = 2.
            (
                throttle,
                tries(3, 0, 2),
                Kind::Resumable(
                    "still throttled after 2 attempts: no; the request failed, not the finding: \
                     resume to send it again",
                ),
                tries(3, 0, 3),
            ),
            (
                Retry(RetryClass::Transient),
                tries(1, 0, 0),
                Kind::Schedule,
                tries(1, 1, 0),
            ),
            (
                Retry(RetryClass::Transient),
                tries(4, 2, 0),
                Kind::Resumable(
                    "no (gave up after 4 attempts); the request failed, not the finding: resume \
                     to send it again",
                ),
                tries(4, 3, 0),
            ),
            (Split, tries(1, 0, 0), Kind::Fail("no"), tries(1, 0, 0)),
            (Permanent, tries(1, 0, 0), Kind::Fail("no"), tries(1, 0, 0)),
            // Access denied says nothing about the findings: resumable.
            (
                Abort,
                tries(1, 0, 0),
                Kind::Resumable("run aborted: AccessDenied: no"),
                tries(1, 0, 0),
            ),
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        for (d, before, want, after) in table {
            let mut t = before;
            let a = p.after_call(d, "AccessDenied", "no", &mut t, &mut rng);
            assert_eq!(kind(&a), want, "{d:?} {before:?}");
            assert_eq!(t, after, "{d:?} {before:?}");
        }
    }
}
