//! The plan of a run: what `update` would do with its inputs, and whether
//! its guardrails let it happen, computed without sending anything.
//!
//! [`make`] takes the records through the engine's own read side
//! ([`Intake`]: duplicates, per-row decisions, note policy, run tag,
//! `--skip-unchanged`) and its Region routing ([`route`]), so the counts are
//! those a run would record. It reports findings by account, Region,
//! product and decision group, notes, the fewest requests per Region and
//! the time they take at the configured quota, rejected rows and
//! duplicates (with the first few of each), and warnings (see
//! [`WarningCode`]). [`Plan::guard`] applies the guardrails
//! (`--max-findings`, confirmation above a threshold, a run tag).
//!
//! A plan depends only on the inputs and the settings: no clock, no
//! network, no credentials, so the same files give the same plan, text or
//! JSON, wherever it is made, and it can be reviewed in a pull request.
//!
//! What it does not do: read files (the caller hands it the input stream),
//! ask for confirmation or print (the CLI does), or know the live state of
//! findings: "already in the requested state" comes from the export.

use std::borrow::Cow;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::Serialize;

use crate::decision::{Decision, NoteAction, NoteMode, WorkflowStatus};
use crate::engine::{
    Admitted, DuplicatePolicy, EngineConfig, Input, Intake, MAX_CHUNK, RUN_TAG_KEY, route,
};
use crate::journal::Prior;
use crate::model::{CurrentState, FindingKey, InvalidRecord, Location, SourceRecord};

/// How many examples a plan lists for each kind of problem.
pub(crate) const DEFAULT_SAMPLES: usize = 10;
/// How many examples a plan lists for each warning, at most.
pub(crate) const WARNING_SAMPLES: usize = 5;
/// How many decision groups a plan lists (the rest are summed up).
pub(crate) const MAX_LISTED_GROUPS: usize = 50;
/// Default `--confirm-above`.
pub(crate) const DEFAULT_CONFIRM_ABOVE: u64 = 1000;
/// The account or Region of a finding the input does not tell.
pub(crate) const UNKNOWN: &str = "(unknown)";

/// What the plan expects of the inputs' scope (`--expect-accounts`,
/// `--expect-regions`): at most a number, or only the listed names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Expectation {
    /// At most this many distinct values.
    AtMost(usize),
    /// Only these values.
    Only(BTreeSet<String>),
}

/// Why an `--expect-*` value is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ExpectationError(String);

impl Expectation {
    /// Parses `N` (a count) or a comma-separated list. For accounts, a
    /// 12-digit value is an account id, never a count.
    pub(crate) fn parse(s: &str, what: &str) -> Result<Self, ExpectationError> {
        let s = s.trim();
        if !s.is_empty() && s.len() < 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse()
                .map(Expectation::AtMost)
                .map_err(|_| ExpectationError(format!("{s:?} is not a number of {what}")));
        }
        let names: BTreeSet<String> = s
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect();
        if names.is_empty() {
            return Err(ExpectationError(format!(
                "expected a number of {what} or a comma-separated list, got {s:?}"
            )));
        }
        Ok(Expectation::Only(names))
    }

    /// What is outside the expectation, as a sentence fragment, if anything.
    fn violation(&self, seen: &BTreeMap<String, u64>, what: &str) -> Option<(String, u64)> {
        match self {
            Expectation::AtMost(n) => (seen.len() > *n).then(|| {
                (
                    format!(
                        "findings from {} {what}, expected at most {n}: {}",
                        seen.len(),
                        join_counts(seen)
                    ),
                    seen.values().sum(),
                )
            }),
            Expectation::Only(names) => {
                let outside: BTreeMap<String, u64> = seen
                    .iter()
                    .filter(|(k, _)| !names.contains(*k))
                    .map(|(k, v)| (k.clone(), *v))
                    .collect();
                (!outside.is_empty()).then(|| {
                    (
                        format!(
                            "findings from {what} not in the expected list: {}",
                            join_counts(&outside)
                        ),
                        outside.values().sum(),
                    )
                })
            }
        }
    }
}

fn join_counts(m: &BTreeMap<String, u64>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k} ({v})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a plan is made with besides the job's decision.
#[derive(Clone, Debug)]
pub struct PlanSettings {
    /// The run's settings: quota, `--region`, `--skip-unchanged`,
    /// `--note-mode`, `--run-tag`.
    pub engine: EngineConfig,
    /// The inputs as the user named them (shown in the plan).
    pub inputs: Vec<String>,
    /// `--expect-accounts`.
    pub(crate) expect_accounts: Option<Expectation>,
    /// `--expect-regions`.
    pub(crate) expect_regions: Option<Expectation>,
    /// Examples listed per problem.
    pub samples: usize,
    /// `--resume`: the rows earlier runs settled (skipped, as the run
    /// skips them), so that counts and guardrails cover what is left.
    pub prior: Option<Arc<crate::journal::Done>>,
}

impl Default for PlanSettings {
    fn default() -> Self {
        PlanSettings {
            engine: EngineConfig::default(),
            inputs: Vec::new(),
            expect_accounts: None,
            expect_regions: None,
            samples: DEFAULT_SAMPLES,
            prior: None,
        }
    }
}

/// One example record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// Where it is (`file: row N (line M)`).
    pub location: String,
    /// The finding's Id, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The column at fault, for rejected rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// What is notable about it.
    pub detail: String,
}

impl Sample {
    fn of(location: &Location, key: Option<&FindingKey>, detail: impl Into<String>) -> Self {
        Sample {
            location: location.to_string(),
            id: key.map(|k| k.id.clone()),
            column: None,
            detail: detail.into(),
        }
    }
}

/// A count with its first examples.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counted {
    /// How many.
    pub count: u64,
    /// The first ones, in input order.
    pub samples: Vec<Sample>,
}

impl Counted {
    fn add(&mut self, limit: usize, sample: impl FnOnce() -> Sample) {
        self.count += 1;
        if self.samples.len() < limit {
            self.samples.push(sample());
        }
    }
}

/// The kinds of warning, in the order a plan lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WarningCode {
    /// RESOLVED on control findings that still fail: the service sets them
    /// back to NEW at the next evaluation.
    ResolvedFailingControls,
    /// `replace` over existing, different notes.
    NoteOverwrite,
    /// `replace`, and the input does not record notes: any may be overwritten.
    NoteUnknown,
    /// `append`/`keep`, and the input does not record notes: not written.
    NoteWithheld,
    /// `append` had to cut the new text (or drop it).
    NoteCut,
    /// [`Self::NoteOverwrite`] for a `BatchUpdateFindingsV2` comment.
    CommentOverwrite,
    /// [`Self::NoteUnknown`] for a comment.
    CommentUnknown,
    /// [`Self::NoteWithheld`] for a comment.
    CommentWithheld,
    /// [`Self::NoteCut`] for a comment.
    CommentCut,
    /// More accounts than `--expect-accounts` allows.
    UnexpectedAccounts,
    /// More Regions than `--expect-regions` allows.
    UnexpectedRegions,
    /// Findings already in the requested state that would be sent anyway.
    AlreadyInState,
    /// Records that say something will not be done (a revert that cannot
    /// restore every field).
    NotRestorable,
    /// Fields that become customer-owned when written (Severity,
    /// Confidence, Criticality, Types): the provider's later changes to
    /// them are ignored.
    OwnershipChange,
    /// Per-row decisions (`--row-decisions`) that override a value the
    /// command line sets.
    RowOverride,
    /// `--region` names a Region of another partition than the finding's
    /// ProductArn: the finding cannot be found there.
    CrossPartition,
    /// Rows naming one finding with different decisions (refuses the run
    /// unless `--duplicates first` or `last`).
    DuplicateConflict,
    /// `--duplicates first`: such rows, the first row's decision applied.
    DuplicateFirst,
    /// `--duplicates last`: such rows, the last row's decision applied.
    DuplicateLast,
    /// `revert` of a campaign that did not finish: rows that may have been
    /// applied (`unknown`, `not_attempted` after a request) are restored.
    UnfinishedCampaign,
    /// Rows of one finding record different states and the input does not
    /// tell which is newer: the finding's state is unknown.
    StateUnknown,
}

impl WarningCode {
    /// Whether a run refuses to start with this warning (the user stated
    /// the scope, and the inputs leave it).
    pub fn refuses(self) -> bool {
        matches!(
            self,
            WarningCode::UnexpectedAccounts
                | WarningCode::UnexpectedRegions
                | WarningCode::CrossPartition
                | WarningCode::DuplicateConflict
        )
    }
}

/// One warning.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// What kind.
    pub code: WarningCode,
    /// Findings concerned.
    pub count: u64,
    /// What it means and what to do.
    pub message: String,
    /// The first findings concerned.
    pub samples: Vec<Sample>,
}

/// One decision group: findings whose decision (job, per-row fields and
/// run tag, before the note policy) is the same.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DecisionGroup {
    /// The decision, as the request body's JSON.
    pub decision: String,
    /// Findings to update with it.
    pub findings: u64,
    /// Findings not sent (already in state, or nothing left after the note policy).
    pub unchanged: u64,
}

/// The requests of one Region.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RegionRequests {
    /// Findings sent to this Region.
    pub findings: u64,
    /// Distinct decisions sent (a request carries one).
    pub decisions: u64,
    /// The fewest requests: per decision, findings / 100 rounded up.
    pub requests: u64,
    /// Seconds those requests take at the quota (burst first, then the rate).
    pub seconds: f64,
}

/// Requests and time at the quota.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RequestPlan {
    /// Requests per second per Region.
    pub rate: f64,
    /// Burst per Region.
    pub burst: u32,
    /// Every request in the run (fewest possible; retries add more).
    pub requests: u64,
    /// The run's time at the quota: the slowest Region (Regions run in parallel).
    pub seconds: f64,
    /// By the Region the requests go to.
    pub by_region: BTreeMap<String, RegionRequests>,
}

/// What the run's findings come to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Records read (every one ends as exactly one of the next four).
    pub records: u64,
    /// Findings the run would send.
    pub to_update: u64,
    /// Not sent: already in the requested state (`--skip-unchanged`) or
    /// nothing left to send after the note policy.
    pub unchanged: u64,
    /// Repeats of an earlier record.
    pub duplicates: u64,
    /// Rejected rows.
    pub rejected: u64,
    /// Of `to_update`: the export shows them already in the requested state.
    pub(crate) already_in_state: u64,
    /// `--resume`: rows an earlier run settled (not among `records`).
    pub already_done: u64,
}

/// What the guardrails say about the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GuardReport {
    /// `--max-findings`.
    pub(crate) max_findings: Option<u64>,
    /// `--confirm-above`.
    pub(crate) confirm_above: u64,
    /// The run tag findings will carry, if any (`UserDefinedFields.<key>=<tag>`
    /// or `Note.UpdatedBy=<name>`).
    pub(crate) run_tag: Option<String>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why the run would be refused, or why it needs confirmation.
    pub reasons: Vec<String>,
}

/// Whether a run may start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// It may.
    Proceed,
    /// Only after the user confirms (interactively, or `--yes`).
    Confirm,
    /// It may not.
    Refuse,
}

/// The guardrails' settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Guardrails {
    /// `--max-findings`: refuse a run that would update more.
    pub(crate) max_findings: Option<u64>,
    /// `--confirm-above`: a larger run needs confirmation and a run tag.
    pub(crate) confirm_above: u64,
    /// `--yes`: confirmation given in advance.
    pub yes: bool,
}

impl Default for Guardrails {
    fn default() -> Self {
        Guardrails {
            max_findings: None,
            confirm_above: DEFAULT_CONFIRM_ABOVE,
            yes: false,
        }
    }
}

/// The plan of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    /// The update operation the run sends: `BatchUpdateFindings` (Security
    /// Hub CSPM; left out of the JSON, as before V2 existed) or
    /// [`BATCH_UPDATE_FINDINGS_V2`] (the new Security Hub).
    #[serde(skip_serializing_if = "is_v1_operation")]
    pub operation: &'static str,
    /// The inputs, as named.
    pub inputs: Vec<String>,
    /// `--note-mode`.
    pub(crate) note_mode: NoteMode,
    /// `--skip-unchanged`.
    pub skip_unchanged: bool,
    /// `--region`, when every request goes to one Region.
    pub(crate) region_override: Option<String>,
    /// The counts.
    pub totals: Totals,
    /// Findings to update by account (`AwsAccountId` from the export, else
    /// the account in an ARN-shaped finding Id, else `(unknown)`).
    pub by_account: BTreeMap<String, u64>,
    /// Findings to update by the Region of their ProductArn.
    pub by_region: BTreeMap<String, u64>,
    /// Findings to update by product (`company/product` from the ProductArn).
    pub by_product: BTreeMap<String, u64>,
    /// Decision groups, largest first.
    pub decisions: Vec<DecisionGroup>,
    /// Groups beyond [`MAX_LISTED_GROUPS`], not listed.
    pub(crate) decisions_not_listed: u64,
    /// Every field the run writes, with the findings it writes it on
    /// (`Workflow.Status`, `Note`, `Severity.Label`, `UserDefinedFields.<key>`, ...).
    pub fields_written: BTreeMap<String, u64>,
    /// What the note policy does, by action (`written`, `overwritten`, ...).
    pub notes: BTreeMap<String, u64>,
    /// Requests and time.
    pub requests: RequestPlan,
    /// Rejected rows.
    pub rejected: Counted,
    /// Duplicates.
    pub duplicates: Counted,
    /// Warnings.
    pub warnings: Vec<Warning>,
    /// A fatal input error: the inputs could not be read to the end, so
    /// the plan covers only what came before.
    pub input_error: Option<String>,
    /// The guardrails' verdict, once [`Plan::guard`] ran.
    pub guardrails: Option<GuardReport>,
}

/// The Id's account when the Id is an ARN with a 12-digit account field.
fn account_in_id(id: &str) -> Option<&str> {
    let mut parts = id.splitn(6, ':');
    if parts.next() != Some("arn") {
        return None;
    }
    let account = parts.nth(3)?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}

fn account_of(r: &SourceRecord) -> &str {
    r.current
        .as_deref()
        .and_then(|c| c.account_id.as_deref())
        .filter(|a| !a.is_empty())
        .or_else(|| account_in_id(&r.key.id))
        .unwrap_or(UNKNOWN)
}

/// `company/product` from a product ARN (`product/aws/guardduty` gives
/// `aws/guardduty`), or the whole value when it is not one.
pub(crate) fn product_of(product_arn: &str) -> &str {
    match crate::arn::parse_product_arn(product_arn) {
        Ok(a) => a
            .resource
            .split_once('/')
            .map_or(a.resource, |(_, rest)| rest),
        Err(_) => product_arn,
    }
}

/// Whether a finding is a Security Hub control finding: its generator is a
/// control (`security-control/IAM.1`, a standard's `.../v/1.0.0/IAM.1` or a
/// CIS `ruleset/.../rule/1.1`), or, without a generator, its product is
/// Security Hub itself.
pub(crate) fn is_control_finding(key: &FindingKey, cur: &CurrentState) -> bool {
    match cur.generator_id.as_deref() {
        Some(g) => {
            g.starts_with("security-control/")
                || g.contains("ruleset/")
                || g.contains("/rule/")
                || g.split('/').nth(1) == Some("v")
        }
        None => product_of(&key.product_arn) == "aws/securityhub",
    }
}

fn still_failing(cur: &CurrentState) -> bool {
    matches!(
        cur.compliance_status.as_deref(),
        Some("FAILED") | Some("WARNING")
    )
}

fn fingerprint(d: &Decision) -> u64 {
    let mut h = DefaultHasher::new();
    d.hash(&mut h);
    h.finish()
}

fn excerpt(s: &str, max: usize) -> Cow<'_, str> {
    if s.chars().count() <= max {
        Cow::Borrowed(s)
    } else {
        let head: String = s.chars().take(max).collect();
        Cow::Owned(format!("{head}…"))
    }
}

/// The plan's name for what the note policy did; `comment`: in the terms
/// of the comment policy (a `BatchUpdateFindingsV2` decision).
fn note_action_name(a: NoteAction, comment: bool) -> Option<&'static str> {
    if comment {
        return Some(match a {
            NoteAction::None => return None,
            NoteAction::Written => "written (no comment before)",
            NoteAction::Same => "written (same text)",
            NoteAction::Overwritten => "overwritten",
            NoteAction::WrittenUnknown => "written (existing comment unknown)",
            NoteAction::Appended { cut: 0, .. } => "appended",
            NoteAction::Appended { cut, chars } if cut >= chars => "not appended (no room)",
            NoteAction::Appended { .. } => "appended (cut)",
            NoteAction::AlreadyAppended => "already appended",
            NoteAction::Kept => "kept",
            NoteAction::Withheld => "not written (existing comment unknown)",
        });
    }
    Some(match a {
        NoteAction::None => return None,
        NoteAction::Written => "written (no note before)",
        NoteAction::Same => "written (same text)",
        NoteAction::Overwritten => "overwritten",
        NoteAction::WrittenUnknown => "written (existing note unknown)",
        NoteAction::Appended { cut: 0, .. } => "appended",
        NoteAction::Appended { cut, chars } if cut >= chars => "not appended (no room)",
        NoteAction::Appended { .. } => "appended (cut)",
        NoteAction::AlreadyAppended => "already appended",
        NoteAction::Kept => "kept",
        NoteAction::Withheld => "not written (existing note unknown)",
    })
}

/// Distinct decisions whose written fields [`Builder`] keeps at once.
const FIELDS_OF_MAX: usize = 4096;

/// Counts while reading.
struct Builder<'s> {
    settings: &'s PlanSettings,
    /// The job is the new Security Hub's: the note policy is over comments.
    v2: bool,
    totals: Totals,
    by_account: BTreeMap<String, u64>,
    by_region: BTreeMap<String, u64>,
    by_product: BTreeMap<String, u64>,
    /// Findings (sent, unchanged), first-seen order and decision text per
    /// decision group, by the group's fingerprint: at most
    /// [`spill::SPILL_CAP`] groups in memory, the rest in sorted runs on
    /// disk (a million rows with a note each are a million groups).
    groups: spill::Groups,
    /// Findings per (request Region, decision fingerprint), the Region as
    /// an index into `chunk_regions` in the key's high 64 bits; bounded
    /// like `groups`.
    chunks: spill::SpillTable<u64>,
    /// The request Regions seen.
    chunk_regions: Vec<Arc<str>>,
    notes: BTreeMap<String, u64>,
    rejected: Counted,
    duplicates: Counted,
    warn: BTreeMap<WarningCode, Counted>,
    /// Fields written, counted per finding.
    fields: BTreeMap<String, u64>,
    /// Fields written, by decision sent (most findings share a handful; at
    /// most [`FIELDS_OF_MAX`] kept).
    fields_of: HashMap<Arc<Decision>, Vec<String>>,
    /// The command line's decision (for the override warning).
    job: Decision,
}

impl Builder<'_> {
    /// Counts a row not sent because another row names its finding, with
    /// a sample saying why.
    fn duplicate(&mut self, r: &SourceRecord, why: &'static str) {
        self.totals.duplicates += 1;
        let limit = self.settings.samples;
        self.duplicates
            .add(limit, || Sample::of(&r.location, Some(&r.key), why));
    }

    fn warn(&mut self, code: WarningCode, sample: impl FnOnce() -> Sample) {
        let limit = self.settings.samples.min(WARNING_SAMPLES);
        self.warn.entry(code).or_default().add(limit, sample);
    }

    fn group(&mut self, group: &Arc<Decision>, sent: bool) {
        // A revert's job decision is empty; its rows' decisions say which
        // operation (and so whether the policy is over notes or comments).
        if !self.v2 && group.is_v2() {
            self.v2 = true;
        }
        self.groups.count(fingerprint(group), sent, || {
            serde_json::to_string(&**group).unwrap_or_default()
        });
    }

    fn note(&mut self, r: &SourceRecord, action: NoteAction, mode: NoteMode) {
        if let Some(name) = note_action_name(action, self.v2) {
            *self.notes.entry(name.to_owned()).or_default() += 1;
        }
        let what = if self.v2 { "comment" } else { "note" };
        // The comment policy's warnings have their own codes.
        let code = |note: WarningCode, comment: WarningCode| if self.v2 { comment } else { note };
        let cur = r.current.as_deref();
        match action {
            NoteAction::Overwritten => {
                let detail = if self.v2 {
                    let old = cur.and_then(|c| c.comment.as_deref()).unwrap_or_default();
                    format!("existing comment: {:?}", excerpt(old, 80))
                } else {
                    let old = cur.and_then(|c| c.note_text.as_deref()).unwrap_or_default();
                    format!("existing note: {:?}", excerpt(old, 80))
                };
                self.warn(
                    code(WarningCode::NoteOverwrite, WarningCode::CommentOverwrite),
                    || Sample::of(&r.location, Some(&r.key), detail),
                );
            }
            NoteAction::WrittenUnknown => self.warn(
                code(WarningCode::NoteUnknown, WarningCode::CommentUnknown),
                || {
                    Sample::of(
                        &r.location,
                        Some(&r.key),
                        format!("the input does not record the {what}"),
                    )
                },
            ),
            NoteAction::Withheld => self.warn(
                code(WarningCode::NoteWithheld, WarningCode::CommentWithheld),
                || {
                    Sample::of(
                        &r.location,
                        Some(&r.key),
                        format!("the input does not record the {what}"),
                    )
                },
            ),
            NoteAction::Appended { cut, .. } if cut > 0 => {
                let detail = action
                    .remark(mode, self.v2)
                    .unwrap_or_default()
                    .into_owned();
                self.warn(code(WarningCode::NoteCut, WarningCode::CommentCut), || {
                    Sample::of(&r.location, Some(&r.key), detail)
                });
            }
            _ => {}
        }
    }

    fn admitted(&mut self, a: Admitted, mode: NoteMode) {
        self.totals.records += 1;
        match a {
            Admitted::Invalid(i) => self.rejected_row(i),
            Admitted::Duplicate(r) => {
                self.duplicate(&r, "same Id and ProductArn as an earlier record");
            }
            Admitted::Conflict(r) => {
                self.duplicate(
                    &r,
                    "same Id and ProductArn as an earlier record, with a different decision",
                );
                // `Last` sees no conflict once the last rows are known; a
                // conflict then means they were not, and is refused.
                let code = match self.settings.engine.duplicates {
                    DuplicatePolicy::Refuse | DuplicatePolicy::Last => {
                        WarningCode::DuplicateConflict
                    }
                    DuplicatePolicy::First => WarningCode::DuplicateFirst,
                };
                self.warn(code, || {
                    Sample::of(
                        &r.location,
                        Some(&r.key),
                        "asks for another decision than an earlier row of this finding",
                    )
                });
            }
            Admitted::OlderState(r) => {
                self.duplicate(
                    &r,
                    "same Id and ProductArn as a record whose recorded state is newer",
                );
            }
            Admitted::StateUnknown(r) => {
                self.duplicate(
                    &r,
                    "same Id and ProductArn as an earlier record recording another state",
                );
                self.warn(WarningCode::StateUnknown, || {
                    Sample::of(
                        &r.location,
                        Some(&r.key),
                        "records another state than an earlier row of this finding, and the input \
                         does not tell which is newer",
                    )
                });
            }
            Admitted::Superseded(r) => {
                self.duplicate(
                    &r,
                    "same Id and ProductArn as a later record, with different decisions among them",
                );
                self.warn(WarningCode::DuplicateLast, || {
                    Sample::of(
                        &r.location,
                        Some(&r.key),
                        "a later row of this finding asks for another decision and is the one applied",
                    )
                });
            }
            Admitted::Unchanged {
                record,
                group,
                note,
                message: _,
            } => {
                self.totals.unchanged += 1;
                self.group(&group, false);
                self.note(&record, note, mode);
            }
            Admitted::Send {
                record: r,
                group,
                decision,
                note,
                holds,
            } => {
                let override_region = self.settings.engine.region_override.as_deref();
                let Some(region) = route(override_region, &r.key) else {
                    let (column, reason) = crate::engine::unknown_region(&r.key);
                    self.rejected_row(InvalidRecord {
                        location: r.location,
                        column: Some(column.into()),
                        reason: reason.into(),
                        key: Some(r.key),
                    });
                    return;
                };
                if let Some(to) = override_region
                    && let Some(from) = crate::arn::region_of(&r.key.product_arn)
                    && partition_of(to) != partition_of(from)
                {
                    let detail = format!(
                        "ProductArn in {from} ({}), --region {to} ({})",
                        partition_of(from),
                        partition_of(to)
                    );
                    self.warn(WarningCode::CrossPartition, || {
                        Sample::of(&r.location, Some(&r.key), detail)
                    });
                }
                let region_idx = match self.chunk_regions.iter().position(|r| &**r == region) {
                    Some(i) => i,
                    None => {
                        self.chunk_regions.push(region.into());
                        self.chunk_regions.len() - 1
                    }
                } as u32;
                self.totals.to_update += 1;
                // A cache, bounded: a file whose every row has its own note
                // has as many distinct decisions as rows, which must not be
                // kept (whole, notes included) one by one.
                if self.fields_of.len() >= FIELDS_OF_MAX && !self.fields_of.contains_key(&decision)
                {
                    self.fields_of.clear();
                }
                let fields = self
                    .fields_of
                    .entry(decision.clone())
                    .or_insert_with(|| fields_written(&decision))
                    .clone();
                for f in &fields {
                    *self.fields.entry(f.clone()).or_default() += 1;
                }
                let owned: Vec<&str> = fields
                    .iter()
                    .map(String::as_str)
                    .filter(|f| OWNERSHIP_FIELDS.iter().any(|o| f.starts_with(o)))
                    .collect();
                if !owned.is_empty() {
                    let detail = format!("writes {}", owned.join(", "));
                    self.warn(WarningCode::OwnershipChange, || {
                        Sample::of(&r.location, Some(&r.key), detail)
                    });
                }
                if let Some(own) = r.decision.as_deref() {
                    let over = overrides(&self.job, own);
                    if !over.is_empty() {
                        let detail =
                            format!("the row's {} over the command line's", over.join(", "));
                        self.warn(WarningCode::RowOverride, || {
                            Sample::of(&r.location, Some(&r.key), detail)
                        });
                    }
                }
                self.chunks.add(
                    (u128::from(region_idx) << 64) | u128::from(fingerprint(&decision)),
                    1,
                );
                self.group(&group, true);
                self.note(&r, note, mode);
                *self
                    .by_account
                    .entry(account_of(&r).to_owned())
                    .or_default() += 1;
                let own_region = crate::arn::region_of(&r.key.product_arn).unwrap_or(UNKNOWN);
                *self.by_region.entry(own_region.to_owned()).or_default() += 1;
                *self
                    .by_product
                    .entry(product_of(&r.key.product_arn).to_owned())
                    .or_default() += 1;
                if let Some(remark) = &r.remark {
                    let detail = remark.to_string();
                    self.warn(WarningCode::NotRestorable, || {
                        Sample::of(&r.location, Some(&r.key), detail)
                    });
                }
                if holds {
                    self.totals.already_in_state += 1;
                    self.warn(WarningCode::AlreadyInState, || {
                        Sample::of(&r.location, Some(&r.key), "already in the requested state")
                    });
                }
                let resolves = decision
                    .workflow
                    .as_ref()
                    .is_some_and(|w| w.status == WorkflowStatus::Resolved);
                if resolves
                    && let Some(cur) = r.current.as_deref()
                    && still_failing(cur)
                    && is_control_finding(&r.key, cur)
                {
                    let detail = format!(
                        "Compliance.Status {}, generator {}",
                        cur.compliance_status.as_deref().unwrap_or_default(),
                        cur.generator_id.as_deref().unwrap_or(UNKNOWN)
                    );
                    self.warn(WarningCode::ResolvedFailingControls, || {
                        Sample::of(&r.location, Some(&r.key), detail)
                    });
                }
            }
        }
    }

    fn rejected_row(&mut self, i: InvalidRecord) {
        self.totals.rejected += 1;
        let limit = self.settings.samples;
        self.rejected.add(limit, || Sample {
            location: i.location.to_string(),
            id: i.key.as_ref().map(|k| k.id.clone()),
            column: i.column.clone(),
            detail: i.reason.clone(),
        });
    }

    fn finish(self, input_error: Option<String>) -> Plan {
        let s = self.settings;
        let rate = s.engine.rate;
        let mut requests = RequestPlan {
            rate: rate.rate,
            burst: rate.burst,
            ..RequestPlan::default()
        };
        let mut input_error = input_error;
        let mut read_back = |what: &str, e: std::io::Error| {
            // The counts are in a temporary file that cannot be read: the
            // plan cannot say what the run does, so the run is refused.
            input_error.get_or_insert_with(|| {
                format!("cannot read back the plan's {what} from its temporary file: {e}")
            });
        };
        let regions = &self.chunk_regions;
        let drained = self.chunks.drain(|key, n| {
            let region = &regions[(key >> 64) as usize];
            let r = requests.by_region.entry(region.to_string()).or_default();
            r.findings += n;
            r.decisions += 1;
            r.requests += n.div_ceil(MAX_CHUNK as u64);
        });
        if let Err(e) = drained {
            read_back("request counts", e);
        }
        for r in requests.by_region.values_mut() {
            // A full bucket sends `burst` at once; the rest at the rate.
            let queued = r.requests.saturating_sub(u64::from(rate.burst));
            r.seconds = round1(queued as f64 / rate.rate);
            requests.requests += r.requests;
            requests.seconds = requests.seconds.max(r.seconds);
        }

        // Largest first; ties in first-seen order, so the order is stable.
        let (decisions, not_listed) = match self.groups.finish(MAX_LISTED_GROUPS) {
            Ok(listed) => (
                listed
                    .largest
                    .into_iter()
                    .map(|(decision, findings, unchanged)| DecisionGroup {
                        decision,
                        findings,
                        unchanged,
                    })
                    .collect(),
                listed.groups.saturating_sub(MAX_LISTED_GROUPS as u64),
            ),
            Err(e) => {
                read_back("decision groups", e);
                (Vec::new(), 0)
            }
        };

        let mut warnings = Vec::new();
        for (code, c) in self.warn {
            warnings.push(Warning {
                code,
                count: c.count,
                message: warning_message(code, c.count, s, self.v2),
                samples: c.samples,
            });
        }
        let scope = [
            (
                &s.expect_accounts,
                &self.by_account,
                "accounts",
                WarningCode::UnexpectedAccounts,
                "--expect-accounts",
            ),
            (
                &s.expect_regions,
                &self.by_region,
                "Regions",
                WarningCode::UnexpectedRegions,
                "--expect-regions",
            ),
        ];
        for (expect, seen, what, code, flag) in scope {
            if let Some((text, count)) = expect.as_ref().and_then(|e| e.violation(seen, what)) {
                warnings.push(Warning {
                    code,
                    count,
                    message: format!(
                        "{text} ({flag}); check the export's scope, or widen {flag}: `update` refuses to run"
                    ),
                    samples: Vec::new(),
                });
            }
        }
        warnings.sort_by_key(|w| w.code);

        Plan {
            operation: if self.v2 {
                BATCH_UPDATE_FINDINGS_V2
            } else {
                BATCH_UPDATE_FINDINGS
            },
            inputs: s.inputs.clone(),
            note_mode: s.engine.note_mode,
            skip_unchanged: s.engine.skip_unchanged,
            region_override: s.engine.region_override.clone(),
            totals: self.totals,
            by_account: self.by_account,
            by_region: self.by_region,
            by_product: self.by_product,
            decisions,
            decisions_not_listed: not_listed,
            fields_written: self.fields,
            notes: self.notes,
            requests,
            rejected: self.rejected,
            duplicates: self.duplicates,
            warnings,
            input_error,
            guardrails: None,
        }
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).ceil() / 10.0
}

/// A warning's text; `v2`: a `BatchUpdateFindingsV2` plan, whose policy is
/// over comments (its codes are the `comment-*` ones).
fn warning_message(code: WarningCode, n: u64, s: &PlanSettings, v2: bool) -> String {
    let mode = s.engine.note_mode;
    match code {
        WarningCode::CommentOverwrite => format!(
            "{n} findings have a different comment that the new comment replaces (--note-mode \
             replace); --note-mode append keeps it and adds the new text, --note-mode keep leaves it"
        ),
        WarningCode::CommentUnknown => format!(
            "{n} findings: the input does not record their comments, so any comment they have is \
             overwritten (--note-mode replace); plan from an OCSF export (or GetFindingsV2 output) \
             to know, or use --note-mode keep"
        ),
        WarningCode::CommentWithheld => format!(
            "{n} findings: the input does not record their comments, so the comment is not written \
             to them (--note-mode {mode}: writing could destroy a comment); plan from an OCSF \
             export (or GetFindingsV2 output) to write it where there is none"
        ),
        WarningCode::CommentCut => format!(
            "{n} findings: the appended text does not fit in the 512-character comment and was \
             cut (the existing comment is never cut)"
        ),
        WarningCode::NotRestorable if v2 => format!(
            "{n} findings cannot be fully restored through the API (a comment where there was \
             none, a value the input did not record); the rest of each is restored and the \
             results say what was not"
        ),
        WarningCode::ResolvedFailingControls => format!(
            "RESOLVED on {n} control findings that still fail (Compliance.Status FAILED or WARNING): \
             Security Hub sets them back to NEW when the control is evaluated again; \
             use --workflow Status=SUPPRESSED to keep them closed"
        ),
        WarningCode::NoteOverwrite => format!(
            "{n} findings have a different note that the new note replaces (--note-mode replace); \
             --note-mode append keeps it and adds the new text, --note-mode keep leaves it"
        ),
        WarningCode::NoteUnknown => format!(
            "{n} findings: the input does not record their notes, so any note they have is \
             overwritten (--note-mode replace); plan from an ASFF or OCSF export to know, or use \
             --note-mode keep"
        ),
        WarningCode::NoteWithheld => format!(
            "{n} findings: the input does not record their notes, so the note is not written to \
             them (--note-mode {mode}: writing could destroy a note); plan from an ASFF or OCSF \
             export to write it where there is none"
        ),
        WarningCode::NoteCut => format!(
            "{n} findings: the appended text does not fit in the 512-character note and was cut \
             (the existing note is never cut)"
        ),
        WarningCode::AlreadyInState => {
            if s.engine.skip_unchanged {
                format!("{n} findings already in the requested state")
            } else {
                format!(
                    "{n} findings are already in the requested state according to the export and \
                     would be sent again; --skip-unchanged skips them"
                )
            }
        }
        WarningCode::NotRestorable => format!(
            "{n} findings cannot be fully restored through the API (a note where there was none, an \
             added user-defined field, a value the input did not record); the rest of each is restored \
             and the results say what was not"
        ),
        WarningCode::OwnershipChange => format!(
            "{n} findings get a field the provider owns until a customer writes it (Severity, \
             Confidence, Criticality, Types): once written, the provider's later changes to this \
             field will be ignored (a re-import raising the severity does not show), and a revert \
             cannot hand it back"
        ),
        WarningCode::RowOverride => format!(
            "{n} findings: a per-row decision (--row-decisions) overrides a value the command line \
             sets; check that the columns hold decisions, not the findings' current state"
        ),
        WarningCode::CrossPartition => format!(
            "{n} findings are in another partition than --region: a Region sees only its own \
             partition (aws, aws-cn, aws-us-gov), so every one would fail FindingNotFound; \
             run each partition separately, with a Region of it, or without --region"
        ),
        WarningCode::DuplicateConflict => format!(
            "{n} rows name a finding that an earlier row names with a different decision: which one \
             is meant would be a guess, so the run is refused; fix the inputs, or choose with \
             --duplicates first (the first row of each finding wins) or --duplicates last (the last \
             row wins)"
        ),
        WarningCode::DuplicateFirst => format!(
            "{n} rows name a finding that an earlier row names with a different decision; \
             --duplicates first: the first row's decision is applied, these are not sent"
        ),
        WarningCode::DuplicateLast => format!(
            "{n} rows name a finding that another row names with a different decision; \
             --duplicates last: the last row's decision is applied, the earlier rows are not sent"
        ),
        WarningCode::StateUnknown => format!(
            "{n} rows record another state of a finding than an earlier row, and the input does not \
             tell which is newer (no modification time, or the same one): those findings are sent from \
             their first row with their state unknown, so they are never skipped as unchanged, never \
             appended to, and cannot be reverted; export one row per finding, or with \
             finding_info.modified_time"
        ),
        WarningCode::UnexpectedAccounts
        | WarningCode::UnexpectedRegions
        | WarningCode::UnfinishedCampaign => String::new(),
    }
}

/// Fields that change ownership when written (docs/service-facts.md §5).
pub(crate) const OWNERSHIP_FIELDS: [&str; 4] = ["Severity", "Confidence", "Criticality", "Types"];

/// The partition of a Region name.
pub(crate) fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else {
        "aws"
    }
}

/// Every member a decision writes, as ASFF paths (OCSF paths for the new
/// Security Hub's fields: `status_id`, `severity_id`, `comment`).
pub fn fields_written(d: &Decision) -> Vec<String> {
    let mut f = Vec::new();
    if d.status_id.is_some() {
        f.push("status_id".to_owned());
    }
    if d.severity_id.is_some() {
        f.push("severity_id".to_owned());
    }
    if d.comment.is_some() {
        f.push("comment".to_owned());
    }
    if d.workflow.is_some() {
        f.push("Workflow.Status".to_owned());
    }
    if d.note.is_some() {
        f.push("Note".to_owned());
    }
    if let Some(s) = &d.severity {
        if s.label.is_some() {
            f.push("Severity.Label".to_owned());
        }
        if s.normalized.is_some() {
            f.push("Severity.Normalized".to_owned());
        }
        if s.product.is_some() {
            f.push("Severity.Product".to_owned());
        }
    }
    if d.verification_state.is_some() {
        f.push("VerificationState".to_owned());
    }
    if d.confidence.is_some() {
        f.push("Confidence".to_owned());
    }
    if d.criticality.is_some() {
        f.push("Criticality".to_owned());
    }
    if d.types.is_some() {
        f.push("Types".to_owned());
    }
    if let Some(m) = &d.user_defined_fields {
        f.extend(m.keys().map(|k| format!("UserDefinedFields.{k}")));
    }
    if d.related_findings.is_some() {
        f.push("RelatedFindings".to_owned());
    }
    f
}

/// The fields a row's own decision sets to something else than the
/// command line's `job` sets them to.
fn overrides(job: &Decision, own: &Decision) -> Vec<String> {
    let mine = fields_written(own);
    let theirs = fields_written(job);
    let mut out = Vec::new();
    for f in mine.iter().filter(|f| theirs.contains(f)) {
        let differs = match f.as_str() {
            "Workflow.Status" => own.workflow != job.workflow,
            "Note" => own.note != job.note,
            "Severity.Label" | "Severity.Normalized" | "Severity.Product" => {
                own.severity != job.severity
            }
            "VerificationState" => own.verification_state != job.verification_state,
            "Confidence" => own.confidence != job.confidence,
            "Criticality" => own.criticality != job.criticality,
            "Types" => own.types != job.types,
            "RelatedFindings" => own.related_findings != job.related_findings,
            udf => {
                let key = udf.trim_start_matches("UserDefinedFields.");
                own.user_defined_fields.as_ref().and_then(|m| m.get(key))
                    != job.user_defined_fields.as_ref().and_then(|m| m.get(key))
            }
        };
        if differs {
            out.push(f.clone());
        }
    }
    out
}

/// `BatchUpdateFindings`, the operation of Security Hub CSPM.
pub(crate) const BATCH_UPDATE_FINDINGS: &str = "BatchUpdateFindings";
/// `BatchUpdateFindingsV2`, the operation of the new Security Hub.
pub(crate) const BATCH_UPDATE_FINDINGS_V2: &str = "BatchUpdateFindingsV2";

fn is_v1_operation(op: &&'static str) -> bool {
    *op == BATCH_UPDATE_FINDINGS
}

/// Makes the plan of a run applying `job` to `input`: reads the input to
/// its end (or its first fatal error) and sends nothing. A V2 decision's
/// plan names `BatchUpdateFindingsV2`.
pub fn make(job: &Decision, input: Input, settings: &PlanSettings) -> Plan {
    make_capped(job, input, settings, spill::SPILL_CAP)
}

/// [`make`], holding at most `cap` decision groups (and as many
/// (Region, decision) counts) in memory.
/// The operation follows the job's decision, else the rows' ([`Builder`]'s
/// `v2`).
fn make_capped(job: &Decision, input: Input, settings: &PlanSettings, cap: usize) -> Plan {
    let mut intake = Intake::new(job, &settings.engine);
    let mode = settings.engine.note_mode;
    let mut b = Builder {
        settings,
        v2: job.is_v2(),
        totals: Totals::default(),
        by_account: BTreeMap::new(),
        by_region: BTreeMap::new(),
        by_product: BTreeMap::new(),
        groups: spill::Groups::new(cap),
        chunks: spill::SpillTable::new(cap, "request counts"),
        chunk_regions: Vec::new(),
        notes: BTreeMap::new(),
        rejected: Counted::default(),
        duplicates: Counted::default(),
        warn: BTreeMap::new(),
        fields: BTreeMap::new(),
        fields_of: HashMap::new(),
        job: job.clone(),
    };
    let mut input_error = None;
    for item in input {
        // `--resume`: as the run does (engine `read_input`), rows settled
        // earlier are skipped and their findings count as seen.
        if let (Some(prior), Ok(item)) = (&settings.prior, &item) {
            let (location, key) = item.location_and_key();
            let record_key = item.record_key();
            match prior.check(location, key) {
                Prior::New => {}
                Prior::Done(_) => {
                    if let Some(k) = record_key {
                        intake.mark_seen(k);
                    }
                    b.totals.already_done += 1;
                    continue;
                }
                Prior::FindingDone => {
                    if let Some(k) = record_key {
                        intake.mark_seen(k);
                    }
                }
                // The run stops at this row and says why (its summary's
                // input error); the plan reads on, so that it counts every
                // record the run may read.
                Prior::Changed => {}
            }
        }
        match item {
            Ok(item) => b.admitted(intake.admit(item), mode),
            Err(e) => {
                input_error = Some(crate::submission::error_chain(&*e));
                break;
            }
        }
    }
    b.finish(input_error)
}

/// The run tag findings carry: the `UserDefinedFields` key [`RUN_TAG_KEY`]
/// (from `--run-tag` or the decision), or, with `--note-mode replace`, the
/// note's `UpdatedBy` (with `append` and `keep` some findings may not get
/// the note, so it does not count).
///
/// The new Security Hub has no `UserDefinedFields`: a V2 campaign is
/// found again by its comment (`Comment=...`, with `--note-mode replace`,
/// the comment policy).
pub(crate) fn run_tag(job: &Decision, config: &EngineConfig) -> Option<String> {
    if job.is_v2() {
        return match (&job.comment, config.note_mode) {
            (Some(c), NoteMode::Replace) => Some(format!("Comment={c}")),
            _ => None,
        };
    }
    if let Some(tag) = &config.run_tag {
        return Some(format!("UserDefinedFields.{RUN_TAG_KEY}={tag}"));
    }
    if let Some(tag) = job
        .user_defined_fields
        .as_ref()
        .and_then(|m| m.get(RUN_TAG_KEY))
    {
        return Some(format!("UserDefinedFields.{RUN_TAG_KEY}={tag}"));
    }
    match (&job.note, config.note_mode) {
        (Some(n), NoteMode::Replace) => Some(format!("Note.UpdatedBy={}", n.updated_by)),
        _ => None,
    }
}

impl Plan {
    /// Applies the guardrails, records the verdict in the plan and returns it.
    /// `run_tag` is what [`run_tag`] found.
    pub fn guard(&mut self, g: &Guardrails, run_tag: Option<String>) -> Verdict {
        let n = self.totals.to_update;
        let mut refusals = Vec::new();
        let mut confirm = Vec::new();
        if let Some(e) = &self.input_error {
            refusals.push(format!("the inputs cannot be read to the end: {e}"));
        }
        if let Some(max) = g.max_findings
            && n > max
        {
            refusals.push(format!(
                "{n} findings to update is more than --max-findings {max}"
            ));
        }
        for w in &self.warnings {
            if w.code.refuses() {
                refusals.push(w.message.clone());
            }
        }
        if n > g.confirm_above {
            if run_tag.is_none() {
                refusals.push(if self.operation == BATCH_UPDATE_FINDINGS_V2 {
                    format!(
                        "{n} findings to update is more than --confirm-above {}, and such a \
                         campaign must carry a run tag so that its changes can be found and owned \
                         later: the new Security Hub has no UserDefinedFields, so give a --comment \
                         (with --note-mode replace) that names the campaign",
                        g.confirm_above
                    )
                } else {
                    format!(
                        "{n} findings to update is more than --confirm-above {}, and such a \
                         campaign must carry a run tag so that its changes can be found and owned \
                         later: give --run-tag TAG (written as UserDefinedFields.{RUN_TAG_KEY}), or \
                         a --note with UpdatedBy and --note-mode replace",
                        g.confirm_above
                    )
                });
            }
            if !g.yes {
                confirm.push(format!(
                    "{n} findings to update is more than --confirm-above {}",
                    g.confirm_above
                ));
            }
        }
        let verdict = if !refusals.is_empty() {
            Verdict::Refuse
        } else if !confirm.is_empty() {
            Verdict::Confirm
        } else {
            Verdict::Proceed
        };
        self.guardrails = Some(GuardReport {
            max_findings: g.max_findings,
            confirm_above: g.confirm_above,
            run_tag,
            verdict,
            reasons: if refusals.is_empty() {
                confirm
            } else {
                refusals
            },
        });
        verdict
    }

    /// The plan as stable JSON (maps sorted, fields in a fixed order).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The plan as text for people.
    pub(crate) fn to_text(&self) -> String {
        let mut o = String::new();
        let t = &self.totals;
        let _ = writeln!(
            o,
            "Plan (nothing sent): {} input(s), --note-mode {}{}{}",
            self.inputs.len(),
            self.note_mode,
            if self.skip_unchanged {
                ", --skip-unchanged"
            } else {
                ""
            },
            match &self.region_override {
                Some(r) => format!(", every request to {r} (--region)"),
                None => String::new(),
            }
        );
        for i in &self.inputs {
            let _ = writeln!(o, "  {i}");
        }
        if self.operation == BATCH_UPDATE_FINDINGS_V2 {
            let _ = writeln!(
                o,
                "Operation: {BATCH_UPDATE_FINDINGS_V2} (the new Security Hub; OCSF findings, \
                 DescribeSecurityHubV2 checked per Region before any update)"
            );
        }
        let _ = writeln!(o);
        let _ = writeln!(o, "Findings");
        if t.already_done > 0 {
            let _ = writeln!(
                o,
                "  already done      {:>9}   (settled by earlier runs: --resume skips them)",
                t.already_done
            );
        }
        let _ = writeln!(o, "  records read      {:>9}", t.records);
        let _ = writeln!(o, "  to update         {:>9}", t.to_update);
        if t.already_in_state > 0 {
            let _ = writeln!(
                o,
                "    of which already in the requested state: {}",
                t.already_in_state
            );
        }
        let _ = writeln!(o, "  unchanged         {:>9}   (not sent)", t.unchanged);
        let _ = writeln!(o, "  duplicates        {:>9}", t.duplicates);
        let _ = writeln!(o, "  rejected          {:>9}", t.rejected);
        if let Some(e) = &self.input_error {
            let _ = writeln!(
                o,
                "  INPUT ERROR: {e} (the plan covers the records before it)"
            );
        }

        let r = &self.requests;
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "Requests (fewest possible) at {} requests/s, burst {}, per Region",
            r.rate, r.burst
        );
        let _ = writeln!(
            o,
            "  {:<16} {:>9} {:>9} {:>9} {:>10}",
            "Region", "findings", "decisions", "requests", "time"
        );
        for (name, x) in &r.by_region {
            let _ = writeln!(
                o,
                "  {:<16} {:>9} {:>9} {:>9} {:>10}",
                name,
                x.findings,
                x.decisions,
                x.requests,
                duration(x.seconds)
            );
        }
        let _ = writeln!(
            o,
            "  {:<16} {:>9} {:>9} {:>9} {:>10}   (Regions run in parallel)",
            "total",
            t.to_update,
            "",
            r.requests,
            duration(r.seconds)
        );

        for (title, map) in [
            ("Findings to update by account", &self.by_account),
            ("Findings to update by Region", &self.by_region),
            ("Findings to update by product", &self.by_product),
        ] {
            let _ = writeln!(o);
            let _ = writeln!(o, "{title}");
            if map.is_empty() {
                let _ = writeln!(o, "  (none)");
            }
            for (k, v) in map {
                let _ = writeln!(o, "  {k:<40} {v:>9}");
            }
        }

        let _ = writeln!(o);
        let _ = writeln!(o, "Decision groups (findings to update, unchanged)");
        if self.decisions.is_empty() {
            let _ = writeln!(o, "  (none)");
        }
        for g in &self.decisions {
            let _ = writeln!(o, "  {:>9} {:>9}  {}", g.findings, g.unchanged, g.decision);
        }
        if self.decisions_not_listed > 0 {
            let _ = writeln!(o, "  ... and {} more groups", self.decisions_not_listed);
        }
        let _ = writeln!(o);
        let _ = writeln!(o, "Fields written (findings)");
        if self.fields_written.is_empty() {
            let _ = writeln!(o, "  (none)");
        }
        for (k, v) in &self.fields_written {
            let _ = writeln!(o, "  {k:<40} {v:>9}");
        }
        if !self.notes.is_empty() {
            let _ = writeln!(o);
            if self.operation == BATCH_UPDATE_FINDINGS_V2 {
                let _ = writeln!(
                    o,
                    "Comments (--note-mode {}, the comment policy)",
                    self.note_mode
                );
            } else {
                let _ = writeln!(o, "Notes (--note-mode {})", self.note_mode);
            }
            for (k, v) in &self.notes {
                let _ = writeln!(o, "  {k:<40} {v:>9}");
            }
        }

        for (title, c) in [
            ("Rejected rows", &self.rejected),
            ("Duplicates", &self.duplicates),
        ] {
            if c.count == 0 {
                continue;
            }
            let _ = writeln!(o);
            let _ = writeln!(o, "{title}: {} (first {} shown)", c.count, c.samples.len());
            write_samples(&mut o, &c.samples);
        }

        let _ = writeln!(o);
        if self.warnings.is_empty() {
            let _ = writeln!(o, "Warnings: none");
        } else {
            let _ = writeln!(o, "Warnings");
            for w in &self.warnings {
                let _ = writeln!(o, "  ! [{}] {}", code_name(w.code), w.message);
                write_samples(&mut o, &w.samples);
            }
        }

        if let Some(g) = &self.guardrails {
            let _ = writeln!(o);
            let _ = writeln!(
                o,
                "Guardrails: --max-findings {}, --confirm-above {}, run tag {}",
                g.max_findings
                    .map_or_else(|| "(none)".to_owned(), |m| m.to_string()),
                g.confirm_above,
                g.run_tag.as_deref().unwrap_or("(none)")
            );
            let verdict = match g.verdict {
                Verdict::Proceed => "the run may start",
                Verdict::Confirm => "the run needs confirmation (interactively, or --yes)",
                Verdict::Refuse => "the run would be REFUSED",
            };
            let _ = writeln!(o, "  {verdict}");
            for r in &g.reasons {
                let _ = writeln!(o, "  - {r}");
            }
        }
        o
    }
}

fn code_name(c: WarningCode) -> String {
    serde_json::to_value(c)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn write_samples(o: &mut String, samples: &[Sample]) {
    for s in samples {
        let _ = write!(o, "      {}", s.location);
        if let Some(c) = &s.column {
            let _ = write!(o, " [{c}]");
        }
        if let Some(id) = &s.id {
            let _ = write!(o, " {id}");
        }
        let _ = writeln!(o, ": {}", s.detail);
    }
}

/// Seconds as `0s`, `12.5s`, `3m 20s`, `1h 02m`.
fn duration(seconds: f64) -> String {
    let s = seconds.ceil() as u64;
    if seconds < 60.0 {
        if seconds.fract() == 0.0 {
            format!("{s}s")
        } else {
            format!("{seconds:.1}s")
        }
    } else if s < 3600 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    }
}

pub mod markdown;
mod spill;

#[cfg(test)]
mod tests;
