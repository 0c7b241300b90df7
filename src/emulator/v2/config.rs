//! Configuration of the new Security Hub (V2) half of the emulator: where
//! it is enabled, its throttle buckets, its own fault kinds, and the
//! choices for behaviours the reference marks UNVERIFIED.
//!
//! Shared with V1 (not repeated here): `throttle.enabled`, the per-finding
//! fault probabilities (`concurrent_update_error` → `ConflictException`,
//! `internal_failure` → `InternalServerException`), `http_500`, `http_503`,
//! `drop_connection`, latency, `access_denied`, `random_seed` and the
//! Region visibility rules (`semantics.region_scope`, `home_region`).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::emulator::config::{Bucket, ConfigError, DuplicatePolicy};

/// Everything V2-specific.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct V2Config {
    /// Whether the new Security Hub is enabled at all (default true).
    pub enabled: bool,
    /// Regions where it is not enabled: `DescribeSecurityHubV2` answers 404
    /// `ResourceNotFoundException` there, and the other V2 operations get
    /// [`V2Config::disabled_error`].
    pub disabled_regions: BTreeSet<String>,
    /// Token buckets of the V2 operations (no documented rate; "all other
    /// operations" is 10/s burst 30, docs/service-facts.md §13). Off when
    /// `throttle.enabled` is false.
    pub throttle: V2Throttle,
    /// V2-only fault kinds.
    pub faults: V2Faults,
    /// UNVERIFIED behaviours.
    pub semantics: V2Semantics,
}

impl Default for V2Config {
    fn default() -> Self {
        V2Config {
            enabled: true,
            disabled_regions: BTreeSet::new(),
            throttle: V2Throttle::default(),
            faults: V2Faults::default(),
            semantics: V2Semantics::default(),
        }
    }
}

impl V2Config {
    /// Whether the new Security Hub is enabled in `region`.
    pub(crate) fn enabled_in(&self, region: &str) -> bool {
        self.enabled && !self.disabled_regions.contains(region)
    }

    /// Checks every value.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        for (name, b) in [
            ("batch_update_v2", self.throttle.batch_update_v2),
            ("get_findings_v2", self.throttle.get_findings_v2),
            ("describe_hub_v2", self.throttle.describe_hub_v2),
        ] {
            if !(b.rate.is_finite() && b.rate >= 0.0) {
                return Err(ConfigError::Rate {
                    name,
                    value: b.rate,
                });
            }
        }
        for (name, value) in [
            ("v2.faults.request_conflict", self.faults.request_conflict),
            ("v2.faults.omit_result", self.faults.omit_result),
            (
                "v2.faults.unknown_error_code",
                self.faults.unknown_error_code,
            ),
            (
                "v2.faults.missing_error_code",
                self.faults.missing_error_code,
            ),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(ConfigError::Probability { name, value });
            }
        }
        if self.semantics.max_identifiers == 0 {
            return Err(ConfigError::MaxIdentifiers);
        }
        Ok(())
    }

    /// The same configuration with probabilities forced into 0..=1.
    pub(crate) fn sanitized(mut self) -> Self {
        for p in [
            &mut self.faults.request_conflict,
            &mut self.faults.omit_result,
            &mut self.faults.unknown_error_code,
            &mut self.faults.missing_error_code,
        ] {
            *p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        }
        self
    }
}

/// Token buckets per (access key, Region, operation) for the V2 operations.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct V2Throttle {
    /// `BatchUpdateFindingsV2`.
    pub batch_update_v2: Bucket,
    /// `GetFindingsV2`.
    pub get_findings_v2: Bucket,
    /// `DescribeSecurityHubV2`.
    pub(crate) describe_hub_v2: Bucket,
}

impl Default for V2Throttle {
    fn default() -> Self {
        V2Throttle {
            batch_update_v2: Bucket::new(10.0, 30),
            get_findings_v2: Bucket::new(10.0, 30),
            describe_hub_v2: Bucket::new(10.0, 30),
        }
    }
}

/// Fault kinds only V2 has. Drawn from the emulator's one seeded generator.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct V2Faults {
    /// Per-request probability of HTTP 409 `ConflictException` on
    /// `BatchUpdateFindingsV2` (nothing applied).
    pub request_conflict: f64,
    /// Per-finding probability that a `BatchUpdateFindingsV2` entry is left
    /// out of both `ProcessedFindings` and `UnprocessedFindings` (and not
    /// applied): the model makes no member required, so a client must cope.
    pub omit_result: f64,
    /// Per-finding probability that an entry is unprocessed with an
    /// `ErrorCode` the model does not know (`ServiceUnavailableException`,
    /// "Service Unavailable"; the Rust SDK's `Unknown` variant). Not applied.
    pub unknown_error_code: f64,
    /// Per-finding probability that an entry is unprocessed with neither
    /// `ErrorCode` nor `ErrorMessage` (both optional in the model). Not applied.
    pub missing_error_code: f64,
}

/// Where the V2 operations find it not enabled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DisabledError {
    /// HTTP 403 `AccessDeniedException` (modelled for both operations).
    #[default]
    AccessDeniedException,
    /// HTTP 400 `ValidationException`.
    ValidationException,
}

/// How a real conflict (a finding held by another request in flight) is
/// reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConflictScope {
    /// Per entry: `UnprocessedFindings` with `ConflictException`; the rest of
    /// the request is applied.
    #[default]
    PerFinding,
    /// The whole request gets HTTP 409 `ConflictException`, nothing applied.
    WholeRequest,
}

/// Which identifier forms an entry of the response carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResultIdentifiers {
    /// The form the request used (`MetadataUid` or `FindingIdentifier`).
    #[default]
    AsRequested,
    /// Both forms for findings that exist; the requested form for others.
    Both,
}

/// Choices for V2 behaviours the reference does not pin down.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct V2Semantics {
    /// Most findings one `BatchUpdateFindingsV2` accepts (model: 100); more
    /// is a request-level `ValidationException`.
    pub max_identifiers: usize,
    /// An empty or absent identifier list: empty results (true) or a 400
    /// `ValidationException` (false, default).
    pub allow_empty_identifiers: bool,
    /// A request setting none of `Comment`, `SeverityId`, `StatusId`: 400
    /// `ValidationException` (true) or accepted with every finding reported
    /// processed and counted updated (false, default; as V1).
    pub reject_no_update_fields: bool,
    /// The same finding twice in one request: the first is processed and
    /// later ones are `ValidationException` entries (`FirstProcessed`), or
    /// every occurrence is (`AllRejected`).
    pub duplicates: DuplicatePolicy,
    /// Real conflicts per entry or for the whole request.
    pub conflict_scope: ConflictScope,
    /// Which identifier forms result entries carry.
    pub result_identifiers: ResultIdentifiers,
    /// The error of `BatchUpdateFindingsV2`/`GetFindingsV2` in a Region where
    /// the new Security Hub is not enabled.
    pub disabled_error: DisabledError,
}

impl Default for V2Semantics {
    fn default() -> Self {
        V2Semantics {
            max_identifiers: 100,
            allow_empty_identifiers: false,
            reject_no_update_fields: false,
            duplicates: DuplicatePolicy::FirstProcessed,
            conflict_scope: ConflictScope::PerFinding,
            result_identifiers: ResultIdentifiers::AsRequested,
            disabled_error: DisabledError::AccessDeniedException,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_round_trip() {
        let c = V2Config::default();
        assert!(c.enabled_in("us-east-1"));
        assert_eq!(c.throttle.batch_update_v2, Bucket::new(10.0, 30));
        assert!(c.validate().is_ok());
        let parsed: V2Config = serde_json::from_str(
            r#"{"disabled_regions":["eu-west-1"],"faults":{"omit_result":0.5},
                "semantics":{"conflict_scope":"WholeRequest"}}"#,
        )
        .unwrap();
        assert!(!parsed.enabled_in("eu-west-1"));
        assert!(parsed.enabled_in("us-east-1"));
        assert_eq!(parsed.semantics.conflict_scope, ConflictScope::WholeRequest);
        let back: V2Config =
            serde_json::from_str(&serde_json::to_string(&parsed).unwrap()).unwrap();
        assert_eq!(back, parsed);
        assert!(serde_json::from_str::<V2Config>(r#"{"nope":1}"#).is_err());
        let bad = V2Config {
            faults: V2Faults {
                omit_result: 2.0,
                ..V2Faults::default()
            },
            ..V2Config::default()
        };
        assert!(bad.validate().is_err());
        assert_eq!(bad.sanitized().faults.omit_result, 1.0);
    }
}
