//! Emulator configuration: throttling, fault injection and the behaviours
//! `docs/service-facts.md` marks unverified (each one a documented,
//! switchable choice).
//!
//! These are plain values; they do not act by themselves. The state applies
//! them per request, and throttling, faults and semantics can be replaced
//! while the emulator runs.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::v2::V2Config;

/// Why a configuration value cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ConfigError {
    /// A probability outside 0..=1 (or not a number).
    #[error("{name} must be a probability between 0 and 1, got {value}")]
    Probability {
        /// The option's name.
        name: &'static str,
        /// The value given.
        value: f64,
    },
    /// A rate that is negative, infinite or not a number.
    #[error("{name} rate must be a finite number of requests per second >= 0, got {value}")]
    Rate {
        /// The operation whose bucket is wrong.
        name: &'static str,
        /// The value given.
        value: f64,
    },
    /// A maximum identifier count of zero.
    #[error("max_identifiers must be at least 1")]
    MaxIdentifiers,
}

/// Everything the emulator can be told at start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmulatorConfig {
    /// Rate limiting (on by default, with the documented quotas).
    pub throttle: ThrottleConfig,
    /// Fault injection (all off by default).
    pub faults: FaultConfig,
    /// Choices for behaviours docs/service-facts.md marks unverified (§12).
    pub semantics: Semantics,
    /// Seed of the random generator behind every injected fault and jitter,
    /// so that a run with the same seed and the same request sequence gives
    /// the same outcomes.
    pub random_seed: u64,
    /// The caller's account, used in `AccessDeniedException` and
    /// `InvalidAccessException` messages (the emulator has no IAM).
    pub account_id: String,
    /// Largest request body accepted; larger ones get HTTP 413. The default
    /// is the documented 6 MB `BatchImportFindings` request limit.
    pub max_body_bytes: usize,
    /// The new Security Hub (V2, OCSF) operations.
    pub v2: V2Config,
}

/// Default for [`EmulatorConfig::account_id`].
pub(crate) const DEFAULT_ACCOUNT_ID: &str = "123456789012";
/// Default for [`EmulatorConfig::max_body_bytes`]: 6 MiB (docs/service-facts.md §4.1).
pub(crate) const DEFAULT_MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            throttle: ThrottleConfig::default(),
            faults: FaultConfig::default(),
            semantics: Semantics::default(),
            random_seed: 0,
            account_id: DEFAULT_ACCOUNT_ID.to_owned(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            v2: V2Config::default(),
        }
    }
}

impl EmulatorConfig {
    /// The documented defaults with throttling turned off: what capacity
    /// benchmarks and most functional tests want.
    pub fn unthrottled() -> Self {
        let mut c = EmulatorConfig::default();
        c.throttle.enabled = false;
        c
    }

    /// Checks every part.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        self.throttle.validate()?;
        self.faults.validate()?;
        self.semantics.validate()?;
        self.v2.validate()
    }
}

/// One token bucket: `rate` tokens per second, at most `burst` stored.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    /// Sustained requests per second (refill rate). 0 means no refill.
    pub rate: f64,
    /// Requests allowed back to back from a full bucket. 0 throttles everything.
    pub burst: u32,
}

impl Bucket {
    /// A bucket of `rate` per second and `burst`.
    pub const fn new(rate: f64, burst: u32) -> Self {
        Bucket { rate, burst }
    }
}

/// Which error code a throttled request gets (docs/service-facts.md §4.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ThrottleCode {
    /// The modelled V1 error (`LimitExceededException`, HTTP 429).
    #[default]
    LimitExceededException,
    /// The API Gateway throttle seen in the wild (`TooManyRequestsException`,
    /// HTTP 429), unmodelled: the Rust SDK surfaces it as `Unhandled`.
    TooManyRequestsException,
}

impl ThrottleCode {
    /// The code as sent in `x-amzn-ErrorType` and the body.
    pub fn as_str(self) -> &'static str {
        match self {
            ThrottleCode::LimitExceededException => "LimitExceededException",
            ThrottleCode::TooManyRequestsException => "TooManyRequestsException",
        }
    }
}

/// Rate limiting per (access key, Region, operation), like the service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Off means every request passes.
    pub enabled: bool,
    /// `BatchUpdateFindings`: documented 10/s, burst 30.
    pub batch_update: Bucket,
    /// `GetFindings`: documented 3/s, burst 6.
    pub get_findings: Bucket,
    /// `BatchImportFindings`: documented 10/s, burst 30.
    pub batch_import: Bucket,
    /// The error code of a throttled request.
    pub code: ThrottleCode,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            enabled: true,
            batch_update: Bucket::new(10.0, 30),
            get_findings: Bucket::new(3.0, 6),
            batch_import: Bucket::new(10.0, 30),
            code: ThrottleCode::default(),
        }
    }
}

impl ThrottleConfig {
    /// Checks that every rate is usable.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        for (name, b) in [
            ("batch_update", self.batch_update),
            ("get_findings", self.get_findings),
            ("batch_import", self.batch_import),
        ] {
            if !(b.rate.is_finite() && b.rate >= 0.0) {
                return Err(ConfigError::Rate {
                    name,
                    value: b.rate,
                });
            }
        }
        Ok(())
    }
}

/// Fault injection. Everything defaults to zero / off. Probabilities are
/// drawn from the emulator's seeded generator.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Per-finding probability of `ConcurrentUpdateError` in `BatchUpdateFindings`.
    pub concurrent_update_error: f64,
    /// Per-finding probability of `InternalFailure` in `BatchUpdateFindings`.
    pub internal_failure: f64,
    /// Per-request probability of HTTP 500 `InternalException` (nothing applied).
    pub http_500: f64,
    /// Per-request probability of HTTP 503 `ServiceUnavailableException`
    /// (nothing applied).
    pub http_503: f64,
    /// Per-request probability of closing the connection without answering
    /// (nothing applied).
    pub drop_connection: f64,
    /// Per-request probability of applying a `BatchUpdateFindings` request,
    /// then closing the connection without answering: the client cannot
    /// know that it was applied (its findings end `unknown`).
    pub drop_after_apply: f64,
    /// Fixed delay added before answering any API request that passed
    /// throttling and validation.
    #[serde(with = "duration_serde")]
    pub latency: Duration,
    /// Extra delay drawn uniformly from `0..=latency_jitter`.
    #[serde(with = "duration_serde")]
    pub latency_jitter: Duration,
    /// Every API request gets HTTP 403 `AccessDeniedException` (an IAM denial).
    pub access_denied: bool,
    /// Every API request gets HTTP 401 `InvalidAccessException`
    /// ("Account `<id>` is not subscribed to AWS Security Hub").
    pub invalid_access: bool,
}

impl FaultConfig {
    /// Checks that every probability is within 0..=1.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        for (name, value) in [
            ("concurrent_update_error", self.concurrent_update_error),
            ("internal_failure", self.internal_failure),
            ("http_500", self.http_500),
            ("http_503", self.http_503),
            ("drop_connection", self.drop_connection),
            ("drop_after_apply", self.drop_after_apply),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(ConfigError::Probability { name, value });
            }
        }
        Ok(())
    }

    /// The same configuration with every probability forced into 0..=1
    /// (NaN becomes 0), for callers that skipped [`FaultConfig::validate`].
    pub(crate) fn sanitized(mut self) -> Self {
        for p in [
            &mut self.concurrent_update_error,
            &mut self.internal_failure,
            &mut self.http_500,
            &mut self.http_503,
            &mut self.drop_connection,
            &mut self.drop_after_apply,
        ] {
            *p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        }
        self
    }
}

/// What to do with an identifier that appears more than once in one
/// `BatchUpdateFindings` request (docs/service-facts.md §2.4; exact behaviour UNVERIFIED).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DuplicatePolicy {
    /// The first occurrence is processed; each later one is reported as
    /// `DuplicatedFindingIdentifier`.
    #[default]
    FirstProcessed,
    /// Every occurrence is reported as `DuplicatedFindingIdentifier` and the
    /// finding is not updated.
    AllRejected,
}

/// How a `UserDefinedFields` update combines with the finding's map
/// (docs/service-facts.md §8.3; UNDOCUMENTED).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum UdfPolicy {
    /// Supplied keys are added or overwritten; other keys stay.
    #[default]
    Merge,
    /// The supplied map replaces the whole map.
    Replace,
}

/// Which findings a request may see, by the Region of its endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegionScope {
    /// Like the service: a request sees only findings of its own Region (plus,
    /// in the home Region, those of the same partition; see
    /// [`Semantics::home_region`]). Others are `FindingNotFound`.
    #[default]
    Strict,
    /// Any request sees every finding.
    Any,
}

/// How `GetFindings` and `GetFindingsV2` page (docs/service-facts.md §6,
/// §13: the real service's paging under concurrent updates is UNVERIFIED).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Paging {
    /// The token holds the last finding returned: a finding that stops
    /// matching the filter never shifts the next page.
    #[default]
    Cursor,
    /// The token holds how many matching findings were returned; the filter
    /// is evaluated again for every page, so a finding that stops matching
    /// (updated on the filtered field) shifts later findings onto pages
    /// already read: a client that updates while paging skips findings.
    Offset,
}

/// Choices for behaviours no source pins down (docs/service-facts.md §12).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Semantics {
    /// Duplicated identifiers in one request.
    pub duplicates: DuplicatePolicy,
    /// `UserDefinedFields` merge or replace.
    pub user_defined_fields: UdfPolicy,
    /// Most identifiers one `BatchUpdateFindings` accepts; more is a
    /// request-level `InvalidInputException` (documented limit 100; the real
    /// response to 101 is UNVERIFIED).
    pub max_identifiers: usize,
    /// Whether an empty `FindingIdentifiers` list is answered with empty
    /// results (true) or rejected as `InvalidInputException` (false, default).
    pub allow_empty_identifiers: bool,
    /// Whether a `BatchUpdateFindings` naming no field to update is rejected
    /// as `InvalidInputException` (UNVERIFIED; default: accepted, and each
    /// finding is reported processed).
    pub reject_no_update_fields: bool,
    /// Region isolation.
    pub region_scope: RegionScope,
    /// Cross-Region aggregation home Region: requests to it see the findings
    /// of every Region of its partition (docs/service-facts.md §8.7).
    pub home_region: Option<String>,
    /// How `GetFindings` and `GetFindingsV2` page.
    pub get_findings_paging: Paging,
}

impl Default for Semantics {
    fn default() -> Self {
        Semantics {
            duplicates: DuplicatePolicy::default(),
            user_defined_fields: UdfPolicy::default(),
            max_identifiers: 100,
            allow_empty_identifiers: false,
            reject_no_update_fields: false,
            region_scope: RegionScope::default(),
            home_region: None,
            get_findings_paging: Paging::default(),
        }
    }
}

impl Semantics {
    /// Checks the values.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_identifiers == 0 {
            return Err(ConfigError::MaxIdentifiers);
        }
        Ok(())
    }
}

/// Durations in JSON: written as humantime strings ("250ms"), read from such
/// a string or from a number of milliseconds.
mod duration_serde {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Millis(u64),
        Text(String),
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Millis(ms) => Ok(Duration::from_millis(ms)),
            Repr::Text(t) => humantime::parse_duration(&t)
                .map_err(|e| D::Error::custom(format!("invalid duration {t:?}: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_quotas() {
        let c = EmulatorConfig::default();
        assert!(c.throttle.enabled);
        assert_eq!(c.throttle.batch_update, Bucket::new(10.0, 30));
        assert_eq!(c.throttle.get_findings, Bucket::new(3.0, 6));
        assert_eq!(c.throttle.batch_import, Bucket::new(10.0, 30));
        assert_eq!(c.faults, FaultConfig::default());
        assert_eq!(c.semantics.max_identifiers, 100);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn faults_round_trip_through_json_with_durations() {
        let f: FaultConfig =
            serde_json::from_str(r#"{"http_500":0.25,"latency":"150ms","latency_jitter":20}"#)
                .unwrap();
        assert_eq!(f.http_500, 0.25);
        assert_eq!(f.latency, Duration::from_millis(150));
        assert_eq!(f.latency_jitter, Duration::from_millis(20));
        let back: FaultConfig = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
        assert_eq!(back, f);
        assert!(serde_json::from_str::<FaultConfig>(r#"{"latency":"soon"}"#).is_err());
        assert!(serde_json::from_str::<FaultConfig>(r#"{"no_such":1}"#).is_err());
    }

    #[test]
    fn out_of_range_values_are_rejected_or_clamped() {
        let f = FaultConfig {
            http_503: 1.5,
            ..FaultConfig::default()
        };
        assert!(matches!(
            f.validate(),
            Err(ConfigError::Probability {
                name: "http_503",
                ..
            })
        ));
        let s = FaultConfig {
            http_503: 1.5,
            drop_connection: f64::NAN,
            internal_failure: -1.0,
            ..FaultConfig::default()
        }
        .sanitized();
        assert_eq!(
            (s.http_503, s.drop_connection, s.internal_failure),
            (1.0, 0.0, 0.0)
        );
        let mut t = ThrottleConfig::default();
        t.get_findings.rate = f64::INFINITY;
        assert!(t.validate().is_err());
        let sem = Semantics {
            max_identifiers: 0,
            ..Semantics::default()
        };
        assert_eq!(sem.validate(), Err(ConfigError::MaxIdentifiers));
    }
}
