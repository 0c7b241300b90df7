//! The triage decision: the nine `BatchUpdateFindings` fields one run applies
//! to every finding of a list.
//!
//! What it does:
//! - holds the decision as plain values ([`Decision`]) whose serde form is
//!   exactly the decision part of the request body (PascalCase members);
//! - parses each field from the AWS CLI's own flags and syntaxes
//!   ([`parse_flag`]: shorthand, JSON, `file://`), and `--cli-input-json`
//!   ([`parse_cli_input_json`]), so that an existing
//!   `aws securityhub batch-update-findings` command line carries over;
//! - checks the decision against the service's rules before any call
//!   ([`Decision::validate`]), with messages that name the field, the rule
//!   and the value;
//! - sets the fields on an SDK request builder ([`Decision::apply`]);
//! - applies the note policy (`--note-mode`, [`apply_note_mode`]): what the
//!   decision's note becomes for a finding that already has one.
//!
//! What it does not do: it reads no finding lists, makes no calls, and knows
//! nothing about clap (the CLI hands it the raw flag values). It does not
//! follow `http://`/`https://` parameter URLs (AWS CLI v1's remote
//! parameter files): a value that starts with one is taken literally.

mod error;
mod holds;
mod note;
mod parse;
mod sdk;
mod shorthand;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::FindingKey;

pub use error::DecisionError;
pub use error::DecisionErrorKind;
pub(crate) use holds::decision_holds_but;
pub(crate) use note::NoteAction;
pub use note::NoteMode;
pub(crate) use note::apply_note_mode;
pub(crate) use parse::parse_cli_input_json_with;
pub use parse::parse_flag;
pub(crate) use parse::parse_flag_with;
/// Refuses a decision that sets fields of both `BatchUpdateFindings` and
/// `BatchUpdateFindingsV2` ([`DecisionErrorKind::MixedOperations`]).
pub(crate) fn check_not_mixed(d: &Decision) -> Result<(), DecisionError> {
    validate::mixed(d)
}

pub(crate) use validate::NOTE_TEXT_MAX_CHARS;
pub(crate) use validate::RATIO_SCALE_MAX;
pub(crate) use validate::RATIO_SCALE_MIN;
pub use validate::Rules;

/// The nine updatable fields of `BatchUpdateFindings`; every one optional.
///
/// `serde_json::to_string(&decision)` is the decision part of the request
/// body. `Eq` and `Hash` let callers group findings whose effective
/// decisions are identical (maps are ordered, `Severity.Product` compares by
/// bits).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Decision {
    /// `Note`: replaces the finding's note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<NoteUpdate>,
    /// `Severity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<SeverityUpdate>,
    /// `VerificationState`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_state: Option<VerificationState>,
    /// `Confidence`, 0–100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<i32>,
    /// `Criticality`, 0–100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criticality: Option<i32>,
    /// `Types`, each `namespace/category/classifier`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<Vec<String>>,
    /// `UserDefinedFields`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_defined_fields: Option<BTreeMap<String, String>>,
    /// `Workflow`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<WorkflowUpdate>,
    /// `RelatedFindings`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_findings: Option<Vec<FindingKey>>,
    /// `Comment` (the new Security Hub, `BatchUpdateFindingsV2`): 1–512
    /// characters, replaces the finding's `comment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// `SeverityId` (`BatchUpdateFindingsV2`): OCSF `severity_id`, one of
    /// 0–6 or 99.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity_id: Option<i32>,
    /// `StatusId` (`BatchUpdateFindingsV2`): OCSF `status_id`, one of 0–5 or 99.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_id: Option<i32>,
}

/// `NoteUpdate`: both members are required by the API.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct NoteUpdate {
    /// `Text`, 1–512 characters.
    pub text: String,
    /// `UpdatedBy`.
    pub updated_by: String,
}

/// `SeverityUpdate`: no member is required by the API, but at least one
/// must be given for the update to mean anything (see [`Decision::validate`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct SeverityUpdate {
    /// `Label`, the preferred member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<SeverityLabel>,
    /// `Normalized`, 0–100 (deprecated by AWS in favour of `Label`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalized: Option<i32>,
    /// `Product`, the provider's native score (deprecated by AWS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<FiniteF64>,
}

/// `WorkflowUpdate`.
///
/// The API model makes `Status` optional, but a `Workflow` without it would
/// change nothing, which in a bulk run is a mistake: it is required here.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct WorkflowUpdate {
    /// `Status`.
    pub status: WorkflowStatus,
}

/// A finite `f64` that compares and hashes by its bits, so that a decision
/// holding one can be `Eq` and `Hash`. `0.0` and `-0.0` are different
/// values here, as they are different JSON.
#[derive(Clone, Copy, Debug)]
pub struct FiniteF64(f64);

impl FiniteF64 {
    /// `None` for NaN and infinities, which JSON cannot carry.
    pub fn new(value: f64) -> Option<Self> {
        value.is_finite().then_some(FiniteF64(value))
    }

    /// The value.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl PartialEq for FiniteF64 {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for FiniteF64 {}

impl Hash for FiniteF64 {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

impl fmt::Display for FiniteF64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for FiniteF64 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.0)
    }
}

impl<'de> Deserialize<'de> for FiniteF64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(deserializer)?;
        FiniteF64::new(value).ok_or_else(|| serde::de::Error::custom("not a finite number"))
    }
}

/// Defines a string enum of the API with its wire names.
macro_rules! api_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $wire)] $variant),+
        }

        impl $name {
            /// Every value, in the API's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The wire names, in the API's order.
            pub(crate) const NAMES: &'static [&'static str] = &[$($wire),+];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }

            /// The value with this exact wire name (the API is case-sensitive).
            pub(crate) fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($wire => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

api_enum!(
    /// `VerificationState`.
    VerificationState {
        /// `UNKNOWN`
        Unknown = "UNKNOWN",
        /// `TRUE_POSITIVE`
        TruePositive = "TRUE_POSITIVE",
        /// `FALSE_POSITIVE`
        FalsePositive = "FALSE_POSITIVE",
        /// `BENIGN_POSITIVE`
        BenignPositive = "BENIGN_POSITIVE",
    }
);

api_enum!(
    /// `Workflow.Status`.
    WorkflowStatus {
        /// `NEW`
        New = "NEW",
        /// `NOTIFIED`
        Notified = "NOTIFIED",
        /// `RESOLVED`
        Resolved = "RESOLVED",
        /// `SUPPRESSED`
        Suppressed = "SUPPRESSED",
    }
);

api_enum!(
    /// `Severity.Label`.
    SeverityLabel {
        /// `INFORMATIONAL`
        Informational = "INFORMATIONAL",
        /// `LOW`
        Low = "LOW",
        /// `MEDIUM`
        Medium = "MEDIUM",
        /// `HIGH`
        High = "HIGH",
        /// `CRITICAL`
        Critical = "CRITICAL",
    }
);

impl SeverityLabel {
    /// The label the service derives from a `Normalized` score
    /// (docs/service-facts.md §8.1: 0 informational, 1–39 low, 40–69 medium,
    /// 70–89 high, 90–100 critical); `None` outside 0–100.
    pub(crate) fn from_normalized(normalized: i32) -> Option<Self> {
        match normalized {
            0 => Some(SeverityLabel::Informational),
            1..=39 => Some(SeverityLabel::Low),
            40..=69 => Some(SeverityLabel::Medium),
            70..=89 => Some(SeverityLabel::High),
            90..=100 => Some(SeverityLabel::Critical),
            _ => None,
        }
    }

    /// The `Normalized` score documented for a label given alone
    /// (informational 0, low 1, medium 40, high 70, critical 90).
    pub fn normalized(self) -> i32 {
        match self {
            SeverityLabel::Informational => 0,
            SeverityLabel::Low => 1,
            SeverityLabel::Medium => 40,
            SeverityLabel::High => 70,
            SeverityLabel::Critical => 90,
        }
    }
}

/// One of the nine fields, with its AWS CLI flag and API member names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DecisionField {
    /// `--note` / `Note`
    Note,
    /// `--severity` / `Severity`
    Severity,
    /// `--verification-state` / `VerificationState`
    VerificationState,
    /// `--confidence` / `Confidence`
    Confidence,
    /// `--criticality` / `Criticality`
    Criticality,
    /// `--types` / `Types`
    Types,
    /// `--user-defined-fields` / `UserDefinedFields`
    UserDefinedFields,
    /// `--workflow` / `Workflow`
    Workflow,
    /// `--related-findings` / `RelatedFindings`
    RelatedFindings,
    /// `--comment` / `Comment` (`BatchUpdateFindingsV2`)
    Comment,
    /// `--severity-id` / `SeverityId` (`BatchUpdateFindingsV2`)
    SeverityId,
    /// `--status-id` / `StatusId` (`BatchUpdateFindingsV2`)
    StatusId,
}

impl DecisionField {
    /// Every field: `BatchUpdateFindings`' nine in the AWS CLI's synopsis
    /// order, then `BatchUpdateFindingsV2`'s three.
    pub const ALL: [DecisionField; 12] = [
        DecisionField::Note,
        DecisionField::Severity,
        DecisionField::VerificationState,
        DecisionField::Confidence,
        DecisionField::Criticality,
        DecisionField::Types,
        DecisionField::UserDefinedFields,
        DecisionField::Workflow,
        DecisionField::RelatedFindings,
        DecisionField::Comment,
        DecisionField::SeverityId,
        DecisionField::StatusId,
    ];

    /// Whether the field belongs to `BatchUpdateFindingsV2` (the new
    /// Security Hub) rather than `BatchUpdateFindings` (Security Hub CSPM).
    pub(crate) fn is_v2(self) -> bool {
        matches!(
            self,
            DecisionField::Comment | DecisionField::SeverityId | DecisionField::StatusId
        )
    }

    /// The AWS CLI flag, e.g. `--note`.
    pub fn flag(self) -> &'static str {
        match self {
            DecisionField::Note => "--note",
            DecisionField::Severity => "--severity",
            DecisionField::VerificationState => "--verification-state",
            DecisionField::Confidence => "--confidence",
            DecisionField::Criticality => "--criticality",
            DecisionField::Types => "--types",
            DecisionField::UserDefinedFields => "--user-defined-fields",
            DecisionField::Workflow => "--workflow",
            DecisionField::RelatedFindings => "--related-findings",
            DecisionField::Comment => "--comment",
            DecisionField::SeverityId => "--severity-id",
            DecisionField::StatusId => "--status-id",
        }
    }

    /// The API member name, e.g. `Note`.
    pub fn member(self) -> &'static str {
        match self {
            DecisionField::Note => "Note",
            DecisionField::Severity => "Severity",
            DecisionField::VerificationState => "VerificationState",
            DecisionField::Confidence => "Confidence",
            DecisionField::Criticality => "Criticality",
            DecisionField::Types => "Types",
            DecisionField::UserDefinedFields => "UserDefinedFields",
            DecisionField::Workflow => "Workflow",
            DecisionField::RelatedFindings => "RelatedFindings",
            DecisionField::Comment => "Comment",
            DecisionField::SeverityId => "SeverityId",
            DecisionField::StatusId => "StatusId",
        }
    }

    /// The field with this API member name.
    #[cfg(test)]
    pub(crate) fn from_member(member: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.member() == member)
    }

    /// The field with this flag (with its leading `--`).
    #[cfg(test)]
    pub(crate) fn from_flag(flag: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.flag() == flag)
    }
}

impl fmt::Display for DecisionField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.member())
    }
}

impl Decision {
    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        self.fields().is_empty()
    }

    /// Whether `field` is set.
    pub fn has(&self, field: DecisionField) -> bool {
        match field {
            DecisionField::Note => self.note.is_some(),
            DecisionField::Severity => self.severity.is_some(),
            DecisionField::VerificationState => self.verification_state.is_some(),
            DecisionField::Confidence => self.confidence.is_some(),
            DecisionField::Criticality => self.criticality.is_some(),
            DecisionField::Types => self.types.is_some(),
            DecisionField::UserDefinedFields => self.user_defined_fields.is_some(),
            DecisionField::Workflow => self.workflow.is_some(),
            DecisionField::RelatedFindings => self.related_findings.is_some(),
            DecisionField::Comment => self.comment.is_some(),
            DecisionField::SeverityId => self.severity_id.is_some(),
            DecisionField::StatusId => self.status_id.is_some(),
        }
    }

    /// Whether the decision sets a field of `BatchUpdateFindingsV2` (the new
    /// Security Hub): such a decision is sent with that operation. A valid
    /// decision never sets fields of both operations.
    pub(crate) fn is_v2(&self) -> bool {
        self.comment.is_some() || self.severity_id.is_some() || self.status_id.is_some()
    }

    /// Whether the decision sets a field of `BatchUpdateFindings` (Security
    /// Hub CSPM).
    #[cfg(test)]
    pub(crate) fn is_v1(&self) -> bool {
        self.fields().iter().any(|f| !f.is_v2())
    }

    /// The fields that are set, in [`DecisionField::ALL`] order.
    pub fn fields(&self) -> Vec<DecisionField> {
        DecisionField::ALL
            .into_iter()
            .filter(|f| self.has(*f))
            .collect()
    }

    /// Takes every field `other` sets, replacing this decision's value
    /// whole: a `--note` flag replaces the `Note` of `--cli-input-json`, it
    /// is not merged member by member (the AWS CLI does the same).
    pub(crate) fn merge_from(&mut self, other: Decision) {
        let Decision {
            note,
            severity,
            verification_state,
            confidence,
            criticality,
            types,
            user_defined_fields,
            workflow,
            related_findings,
            comment,
            severity_id,
            status_id,
        } = other;
        if note.is_some() {
            self.note = note;
        }
        if severity.is_some() {
            self.severity = severity;
        }
        if verification_state.is_some() {
            self.verification_state = verification_state;
        }
        if confidence.is_some() {
            self.confidence = confidence;
        }
        if criticality.is_some() {
            self.criticality = criticality;
        }
        if types.is_some() {
            self.types = types;
        }
        if user_defined_fields.is_some() {
            self.user_defined_fields = user_defined_fields;
        }
        if workflow.is_some() {
            self.workflow = workflow;
        }
        if related_findings.is_some() {
            self.related_findings = related_findings;
        }
        if comment.is_some() {
            self.comment = comment;
        }
        if severity_id.is_some() {
            self.severity_id = severity_id;
        }
        if status_id.is_some() {
            self.status_id = status_id;
        }
    }

    /// Checks every rule of the service (docs/service-facts.md §2.2, §2.3, §8) with the
    /// default [`Rules`], and that at least one field is set. Errors name the
    /// API member path (`Note.Text`), the rule and the value.
    pub(crate) fn validate(&self) -> Result<(), DecisionError> {
        self.validate_with(&Rules::default())
    }

    /// [`Decision::validate`] with explicit [`Rules`].
    ///
    /// A decision that sets fields of both `BatchUpdateFindings` and
    /// `BatchUpdateFindingsV2` is refused
    /// ([`DecisionErrorKind::MixedOperations`]).
    pub(crate) fn validate_with(&self, rules: &Rules) -> Result<(), DecisionError> {
        validate::check(self, rules)
    }

    /// Sets every present field on an SDK request, through the SDK's own
    /// types. Fields this decision does not set are left as they are on
    /// `builder`.
    pub fn apply(
        &self,
        builder: aws_sdk_securityhub::operation::batch_update_findings::builders::BatchUpdateFindingsFluentBuilder,
    ) -> aws_sdk_securityhub::operation::batch_update_findings::builders::BatchUpdateFindingsFluentBuilder
    {
        sdk::apply(self, builder)
    }
}

#[cfg(test)]
mod tests;
