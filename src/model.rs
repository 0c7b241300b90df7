//! Core value types shared by every pipeline stage.
//!
//! Nothing here knows about files, HTTP or the SDK: these are the nouns the
//! stages pass to each other.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The identity of one finding, exactly as `BatchUpdateFindings` takes it,
/// or as `BatchUpdateFindingsV2` (the new Security Hub) does.
///
/// For `BatchUpdateFindings`: `{Id, ProductArn}`, `account_uid` unset.
/// For `BatchUpdateFindingsV2`, one of its two forms:
/// - the OCSF triple `{CloudAccountUid, FindingInfoUid, MetadataProductUid}`:
///   `account_uid` set, `id` the `finding_info.uid`, `product_arn` the
///   `metadata.product.uid` (`::productv2/` form);
/// - `metadata.uid`: `account_uid` unset, `id` the `metadata.uid`,
///   `product_arn` the `metadata.product.uid` when the input has it (it
///   names the Region), else empty.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FindingKey {
    /// The finding's `Id` (ASFF) / `finding_info.uid` (OCSF) / `metadata.uid`
    /// (a `BatchUpdateFindingsV2` key without `account_uid`).
    #[serde(rename = "Id")]
    pub id: String,
    /// The finding's `ProductArn` (ASFF) / `metadata.product.uid` (OCSF,
    /// `::product/` form for `BatchUpdateFindings`, `::productv2/` for V2).
    #[serde(rename = "ProductArn")]
    pub product_arn: String,
    /// `cloud.account.uid`: set only on a `BatchUpdateFindingsV2` key of the
    /// triple form.
    #[serde(
        rename = "CloudAccountUid",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) account_uid: Option<Arc<str>>,
}

impl FindingKey {
    /// Builds a key from its two parts.
    pub fn new(id: impl Into<String>, product_arn: impl Into<String>) -> Self {
        FindingKey {
            id: id.into(),
            product_arn: product_arn.into(),
            account_uid: None,
        }
    }

    /// A `BatchUpdateFindingsV2` key of the triple form.
    pub fn ocsf(
        cloud_account_uid: impl Into<Arc<str>>,
        finding_info_uid: impl Into<String>,
        metadata_product_uid: impl Into<String>,
    ) -> Self {
        FindingKey {
            id: finding_info_uid.into(),
            product_arn: metadata_product_uid.into(),
            account_uid: Some(cloud_account_uid.into()),
        }
    }
}

impl fmt::Display for FindingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.account_uid {
            Some(a) => write!(f, "{} ({}, account {a})", self.id, self.product_arn),
            None => write!(f, "{} ({})", self.id, self.product_arn),
        }
    }
}

/// Where an input record came from, precise enough for a user to find it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    /// The input's name as the user gave it (`-` for standard input).
    pub file: Arc<str>,
    /// 1-based data record number within the file, not counting a header
    /// (the n-th finding the file holds). Unique per file.
    pub row: u64,
    /// Format-specific detail: `line 17` for text formats (the line the record
    /// starts on), `row group 3, row 12` for Parquet. `None` when there is
    /// nothing more useful than the row number.
    pub detail: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.detail {
            Some(d) => write!(f, "{}: row {} ({})", self.file, self.row, d),
            None => write!(f, "{}: row {}", self.file, self.row),
        }
    }
}

/// One record read from an input.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceRecord {
    /// Where the record is.
    pub location: Location,
    /// The finding it names.
    pub key: FindingKey,
    /// Decision fields the record sets itself (per-row decision columns).
    /// For this record they win over the job's decision, field by field.
    pub decision: Option<Arc<crate::decision::Decision>>,
    /// The finding's state as the export recorded it, when it does
    /// (used by `--skip-unchanged`).
    pub current: Option<Arc<CurrentState>>,
    /// Something the results should say about this record once it is
    /// updated (a revert that cannot restore every field says which).
    pub(crate) remark: Option<Arc<str>>,
}

impl SourceRecord {
    /// A record with no per-row decision and no recorded state.
    pub fn new(location: Location, key: FindingKey) -> Self {
        SourceRecord {
            location,
            key,
            decision: None,
            current: None,
            remark: None,
        }
    }
}

/// The updatable fields of a finding as an export recorded them. `None`
/// means "not in the export", never "empty".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CurrentState {
    /// `Workflow.Status`.
    pub workflow_status: Option<String>,
    /// `Note.Text`.
    pub note_text: Option<String>,
    /// `Note.UpdatedBy`.
    pub note_updated_by: Option<String>,
    /// Whether the export records the finding's note at all (an ASFF or OCSF
    /// finding document does; a CSV with only an account column does not),
    /// so that `note_text: None` means "the finding has no note" rather than
    /// "not known". `--note-mode keep|append` never writes a note whose
    /// absence is not known.
    pub note_recorded: bool,
    /// `Severity.Label`.
    pub severity_label: Option<String>,
    /// `Severity.Normalized` (0-100), so that a revert restores it exactly.
    pub severity_normalized: Option<i32>,
    /// `VerificationState`.
    pub verification_state: Option<String>,
    /// `Confidence`.
    pub confidence: Option<i32>,
    /// `Criticality`.
    pub criticality: Option<i32>,
    /// `Types`.
    pub types: Option<Vec<String>>,
    /// `UserDefinedFields`.
    pub user_defined_fields: Option<BTreeMap<String, String>>,
    /// `user_defined_fields` holds only the keys the input has columns for
    /// (`UserDefinedFields.Owner`, the CSV Manager's `CustomerOwner`): a key
    /// missing from it is not known, rather than known to be absent.
    pub user_defined_fields_partial: bool,
    /// The input is a whole finding document (ASFF or OCSF JSON): a field it
    /// does not have is unset on the finding, not merely unrecorded. A table
    /// of a few columns says nothing about the fields it has no column for.
    pub complete: bool,
    /// When the finding was last modified, as the input says (Security
    /// Lake's `finding_info.modified_time`, ASFF `UpdatedAt`), in
    /// milliseconds since the epoch: of several records of one finding, the
    /// newest tells its state.
    pub modified_ms: Option<i64>,
    /// Context, not updatable: the finding's `AwsAccountId` (OCSF `cloud.account.uid`).
    pub account_id: Option<String>,
    /// Context: `Compliance.Status` (`PASSED`, `FAILED`, ...; OCSF `compliance.status`
    /// upper-cased). Set on control findings.
    pub compliance_status: Option<String>,
    /// Context: `GeneratorId`; control findings have `security-control/...` or
    /// a standard's `.../rule/...` path.
    pub generator_id: Option<String>,
    /// Context: `RecordState` (`ACTIVE`, `ARCHIVED`).
    pub record_state: Option<String>,
    /// OCSF `status_id` (the new Security Hub's state, what `StatusId` sets).
    pub status_id: Option<i32>,
    /// OCSF `severity_id` (what `SeverityId` sets).
    pub severity_id: Option<i32>,
    /// OCSF `comment` (what `Comment` sets).
    pub comment: Option<String>,
    /// Whether the input records the OCSF `comment` at all (a whole OCSF
    /// document does), so that `comment: None` means "no comment".
    pub comment_recorded: bool,
    /// OCSF `metadata.uid`: the finding's other name in `BatchUpdateFindingsV2`.
    pub metadata_uid: Option<String>,
    /// The record came from an OCSF input (document, columns or Parquet);
    /// `false` for ASFF and plain identifier lists.
    pub ocsf: bool,
}

/// A record that cannot be used, with the reason. It is reported in the
/// results as `invalid` and the run goes on.
#[derive(Clone, Debug, PartialEq)]
pub struct InvalidRecord {
    /// Where the record is.
    pub location: Location,
    /// The column (or JSON path) at fault, when one is.
    pub column: Option<String>,
    /// What was wrong, as a lowercase sentence fragment.
    pub reason: String,
    /// Whatever identifiers could be read, so that the results still name them.
    pub key: Option<FindingKey>,
}

/// What a reader yields for each record of its input.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceItem {
    /// A usable record.
    Record(SourceRecord),
    /// A record rejected as invalid.
    Invalid(InvalidRecord),
}

impl SourceItem {
    /// Where the item is and the finding it names, if known (what a
    /// resumed run matches against the journal).
    pub(crate) fn location_and_key(&self) -> (&Location, Option<&FindingKey>) {
        match self {
            SourceItem::Record(r) => (&r.location, Some(&r.key)),
            SourceItem::Invalid(i) => (&i.location, i.key.as_ref()),
        }
    }

    /// The finding a usable record names (none for an invalid one).
    pub(crate) fn record_key(&self) -> Option<&FindingKey> {
        match self {
            SourceItem::Record(r) => Some(&r.key),
            SourceItem::Invalid(_) => None,
        }
    }
}

/// The final outcome of one input record. Every input record ends in exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// The service reported the finding as processed.
    Updated,
    /// The finding was not updated: a permanent error, or retries exhausted.
    Failed,
    /// The record was rejected before any call (bad identifiers, bad row).
    Invalid,
    /// `--skip-unchanged`: the export shows the finding already holds the
    /// decision, so it was not sent.
    Unchanged,
    /// The same finding appeared earlier in the input; it was sent once.
    Duplicate,
    /// The run was aborted (access denied, bad credentials) or stopped
    /// before this finding was done, or its requests failed for reasons
    /// that say nothing about the finding (the connection, the service)
    /// and were never answered: resumable, `--resume` sends it again.
    NotAttempted,
    /// A request carrying this finding may have been applied but its answer
    /// never came (a timeout or a dropped connection after it was sent).
    /// Resumable like `NotAttempted` (`--resume` sends it again, which is
    /// harmless: the same fields set to the same values), and a revert
    /// treats it as possibly applied.
    Unknown,
}

impl OutcomeKind {
    /// All kinds, in the order summaries print them.
    pub const ALL: [OutcomeKind; 7] = [
        OutcomeKind::Updated,
        OutcomeKind::Failed,
        OutcomeKind::Invalid,
        OutcomeKind::Unchanged,
        OutcomeKind::Duplicate,
        OutcomeKind::NotAttempted,
        OutcomeKind::Unknown,
    ];

    /// The snake_case name used in results files and JSON summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Updated => "updated",
            OutcomeKind::Failed => "failed",
            OutcomeKind::Invalid => "invalid",
            OutcomeKind::Unchanged => "unchanged",
            OutcomeKind::Duplicate => "duplicate",
            OutcomeKind::NotAttempted => "not_attempted",
            OutcomeKind::Unknown => "unknown",
        }
    }
}

impl fmt::Display for OutcomeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
