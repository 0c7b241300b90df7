//! What to do after a failure: the one place that decides whether a finding
//! or a whole request is retried, and how long to wait first.
//!
//! Two pure, table-tested functions make every decision:
//! [`classify_unprocessed`] for the per-finding codes that come back inside a
//! successful `BatchUpdateFindings` response, and [`classify_call`] for
//! failures of a whole request. [`Backoff`] turns a retry class and an attempt
//! number into a delay (exponential, capped, full jitter). Nothing here sends
//! requests or sleeps; the engine acts on the decisions.

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

/// The decision for one unprocessed finding or one failed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Try again after a backoff of the given class.
    Retry(RetryClass),
    /// Send the finding again, alone (a `DuplicatedFindingIdentifier` we did
    /// not expect: the engine never puts one identifier twice in a request).
    ResendAlone,
    /// The request was rejected as a whole as invalid: split it until the
    /// offending findings are isolated.
    Split,
    /// Final failure for the finding(s) concerned.
    Permanent,
    /// Stop the whole run: nothing else will succeed (access denied, bad credentials).
    Abort,
}

/// Classifies a per-finding `ErrorCode` from `UnprocessedFindings` (reference §2.4).
pub fn classify_unprocessed(code: &str) -> Disposition {
    match code {
        "ConcurrentUpdateError" => Disposition::Retry(RetryClass::Conflict),
        "InternalFailure" => Disposition::Retry(RetryClass::Transient),
        "DuplicatedFindingIdentifier" => Disposition::ResendAlone,
        "FindingNotFound" | "InvalidInput" | "FindingSizeExceeded" => Disposition::Permanent,
        // An undocumented code: retrying blindly could loop; record it with its code.
        _ => Disposition::Permanent,
    }
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
    pub transport: Option<Transport>,
}

/// Failures without an HTTP response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
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

/// Error codes every SDK treats as throttling (reference §4.3), plus the V2 one.
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

/// Classifies a failed request (reference §3, §4).
pub fn classify_call(f: &CallFailure) -> Disposition {
    if let Some(t) = f.transport {
        return match t {
            Transport::Io | Transport::Timeout => Disposition::Retry(RetryClass::Transient),
            Transport::Credentials => Disposition::Abort,
            Transport::Other => Disposition::Abort,
        };
    }
    let code = f.code.as_deref().unwrap_or("");
    if THROTTLING_CODES.contains(&code) || (f.status == Some(429)) {
        // A bare 429 is throttling too, whatever its body says.
        return Disposition::Retry(RetryClass::Throttle);
    }
    if ACCESS_CODES.contains(&code) || matches!(f.status, Some(401 | 403)) {
        return Disposition::Abort;
    }
    if code == "InvalidInputException" || code == "ValidationException" {
        return Disposition::Split;
    }
    match f.status {
        Some(500..=599) => Disposition::Retry(RetryClass::Transient),
        Some(408) => Disposition::Retry(RetryClass::Transient),
        _ if code == "RequestTimeout" || code == "RequestTimeoutException" => {
            Disposition::Retry(RetryClass::Transient)
        }
        // Any other 4xx: the request as built is wrong and will stay wrong.
        _ => Disposition::Permanent,
    }
}

/// Exponential backoff with a cap and full jitter, one curve per [`RetryClass`].
#[derive(Clone, Debug)]
pub struct Backoff {
    /// First-retry ceiling for conflicts.
    pub conflict_base: Duration,
    /// First-retry ceiling for transient failures.
    pub transient_base: Duration,
    /// First-retry ceiling for throttled requests.
    pub throttle_base: Duration,
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
    pub fn ceiling(&self, class: RetryClass, retry: u32) -> Duration {
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
    pub fn delay(&self, class: RetryClass, retry: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling(class, retry);
        let nanos = ceiling.as_nanos().min(u128::from(u64::MAX)) as u64;
        Duration::from_nanos(rng.random_range(0..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn unprocessed_codes_table() {
        use Disposition::*;
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

    fn http(status: u16, code: Option<&str>) -> CallFailure {
        CallFailure {
            status: Some(status),
            code: code.map(str::to_owned),
            transport: None,
        }
    }

    #[test]
    fn call_failures_table() {
        use Disposition::*;
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
}
