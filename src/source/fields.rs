//! Columns beyond the identifiers: the finding's recorded state and, only
//! when asked, per-row decisions; shared by the CSV and Parquet readers.
//!
//! The rule (README, "What gets written"): **an export column records what
//! a finding holds now**. Every column named after a finding field, in any
//! layout (ASFF dotted names, Steampipe/CloudQuery/Athena snake_case and
//! lower-case, JSON-valued and Athena struct-valued cells, OCSF paths, the
//! CSV Manager's columns), is read as the finding's recorded state
//! (`SourceRecord::current`): it feeds the results' `prior` (so the run can
//! be reverted), `--skip-unchanged` and the note policy, and is never
//! written. A state cell in a shape the reader does not know leaves that
//! field unknown; it never makes the row invalid.
//!
//! A column is a per-row decision only when the user says so:
//! `--row-decisions` takes every decision-named column, `--row-decisions=
//! COL,COL` only those ([`RowDecisions`]). A decision cell that does not
//! parse makes the record `invalid`, naming the column as the file spells
//! it. OCSF columns (`status`, `severity`, `message`, `confidence`) and the
//! CSV Manager's read-only columns (`Types`, `ProductSeverity`) are never
//! decisions. Nothing here validates a decision against the service's
//! rules: the engine validates the merged decision of each record, once.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::decision::{
    Decision, FiniteF64, NoteUpdate, SeverityLabel, SeverityUpdate, VerificationState,
    WorkflowStatus, WorkflowUpdate,
};
use crate::model::{CurrentState, FindingKey, InvalidRecord, SourceItem, SourceRecord};

use super::RowDecisions;
use super::error::SourceErrorKind;
use super::ident::normalize;
use super::recent::Recent;

/// The `BatchUpdateFindings` fields a per-row decision column can set, as
/// the README's layouts table names them.
pub(crate) const DECISION_FIELDS: [&str; 9] = [
    "Workflow.Status",
    "Note",
    "Severity",
    "VerificationState",
    "Confidence",
    "Criticality",
    "Types",
    "UserDefinedFields",
    "RelatedFindings",
];

/// One cell of a planned column.
#[derive(Clone, Copy, Debug)]
pub(crate) enum FieldCell<'a> {
    /// Absent, null, or a short row.
    Missing,
    /// Text (for CSV, every cell).
    Text(&'a str),
    /// An integer column (Parquet).
    Int(i64),
    /// A value of a type the column cannot hold, named.
    Unusable(&'static str),
}

impl<'a> FieldCell<'a> {
    /// Interprets raw bytes (a CSV field).
    pub(crate) fn from_bytes(bytes: &'a [u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(s) => FieldCell::Text(s),
            Err(_) => FieldCell::Unusable("not valid UTF-8"),
        }
    }

    /// The cell's text, `None` when it is empty or blank: an empty cell
    /// means "no override" / "not known".
    fn text(self) -> Option<&'a str> {
        match self {
            FieldCell::Text(s) if !s.trim().is_empty() => Some(s),
            _ => None,
        }
    }

    fn is_blank(self) -> bool {
        match self {
            FieldCell::Missing => true,
            FieldCell::Text(s) => s.trim().is_empty() || s.trim() == "null",
            _ => false,
        }
    }

    /// The cell as an integer, if it is one.
    fn int(self) -> Option<i64> {
        match self {
            FieldCell::Int(n) => Some(n),
            FieldCell::Text(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

/// What a planned column holds.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    /// `Workflow.Status`, `workflow_status`, the CSV Manager's `Workflow`,
    /// or CloudQuery's/Athena's `workflow` object (`{"Status":"NEW"}`,
    /// `{status=NEW}`).
    Workflow,
    NoteText,
    NoteUpdatedBy,
    /// A whole `Note` object (`note`: JSON or Athena struct).
    Note,
    SeverityLabel,
    SeverityNormalized,
    SeverityProduct,
    /// A whole `Severity` object (`severity` outside OCSF).
    Severity,
    Verification,
    Confidence,
    Criticality,
    Types,
    /// One `UserDefinedFields` key.
    UserField(String),
    /// A JSON object of `UserDefinedFields`.
    UserFields,
    Related,
    /// `StatusId` (a `BatchUpdateFindingsV2` member; in an input with OCSF
    /// identifiers, `status_id` is the finding's state, [`Target::OcsfStatus`]).
    StatusId,
    /// `SeverityId` (likewise; OCSF inputs: [`Target::OcsfSeverity`]).
    SeverityId,
    /// `Comment` (likewise; OCSF inputs: [`Target::OcsfComment`]).
    Comment,
    // State and context only.
    Account,
    Compliance,
    Generator,
    RecordState,
    OcsfStatus,
    OcsfSeverity,
    OcsfMessage,
    /// OCSF `comment` (what `BatchUpdateFindingsV2` sets).
    OcsfComment,
    /// OCSF `metadata.uid`.
    MetadataUid,
    /// OCSF `cloud.account.uid` (ASFF's `AwsAccountId`).
    OcsfAccount,
    /// OCSF `confidence`: an integer in OCSF 1.0, a caption ("High") in
    /// 1.1 (then unknown: a caption is no ASFF `Confidence`).
    OcsfConfidence,
    /// Security Lake's modified time (`finding_info.modified_time`).
    ModifiedTime,
    /// A `--failed` file's `recorded_state`: the whole recorded state as an
    /// ASFF fragment ([`super::recorded`]). Where it is, it is the state:
    /// the file's decision-named columns are decisions (with
    /// `--row-decisions`) or nothing, never state.
    RecordedState,
}

impl Target {
    /// Whether the column is named after a `BatchUpdateFindings` field.
    fn is_decision_like(&self) -> bool {
        !matches!(
            self,
            Target::Account
                | Target::Compliance
                | Target::Generator
                | Target::RecordState
                | Target::OcsfStatus
                | Target::OcsfSeverity
                | Target::OcsfMessage
                | Target::OcsfComment
                | Target::MetadataUid
                | Target::OcsfAccount
                | Target::OcsfConfidence
                | Target::ModifiedTime
                | Target::RecordedState
        )
    }
}

/// Which target a column name stands for, if any. `ocsf` when the input's
/// identifiers are OCSF paths: there `status`/`severity`/`message`/
/// `confidence` are the finding's state.
fn target_of(raw: &str, ocsf: bool) -> Option<Target> {
    let raw = raw.trim_start_matches('\u{feff}').trim();
    for prefix in ["UserDefinedFields.", "user_defined_fields."] {
        if raw.len() > prefix.len()
            && raw.is_char_boundary(prefix.len())
            && raw[..prefix.len()].eq_ignore_ascii_case(prefix)
        {
            return Some(Target::UserField(raw[prefix.len()..].to_owned()));
        }
    }
    Some(match normalize(raw).as_str() {
        "status" | "statusid" | "state" | "stateid" if ocsf => Target::OcsfStatus,
        "severity" | "severityid" if ocsf => Target::OcsfSeverity,
        "message" if ocsf => Target::OcsfMessage,
        "comment" if ocsf => Target::OcsfComment,
        "metadatauid" if ocsf => Target::MetadataUid,
        "cloudaccountuid" if ocsf => Target::OcsfAccount,
        "confidence" | "confidencescore" if ocsf => Target::OcsfConfidence,
        "findinginfomodifiedtime"
        | "findinginfomodifiedtimedt"
        | "findingmodifiedtime"
        | "findingmodifiedtimedt"
            if ocsf =>
        {
            Target::ModifiedTime
        }
        "workflowstatus" | "workflow" => Target::Workflow,
        "notetext" => Target::NoteText,
        "noteupdatedby" => Target::NoteUpdatedBy,
        "note" => Target::Note,
        "severitylabel" => Target::SeverityLabel,
        "severitynormalized" | "normalizedseverity" => Target::SeverityNormalized,
        "severityproduct" | "productseverity" => Target::SeverityProduct,
        "severity" => Target::Severity,
        "verificationstate" => Target::Verification,
        "confidence" => Target::Confidence,
        "criticality" => Target::Criticality,
        "types" => Target::Types,
        "userdefinedfields" => Target::UserFields,
        "relatedfindings" => Target::Related,
        // The `BatchUpdateFindingsV2` members, as a `--failed` file of a V2
        // run names them (OCSF inputs matched these names above, as state).
        "statusid" => Target::StatusId,
        "severityid" => Target::SeverityId,
        "comment" => Target::Comment,
        // The CSV Manager's custom columns (docs/service-facts.md §9).
        "customerowner" => Target::UserField("Owner".into()),
        "customerissue" => Target::UserField("Issue".into()),
        "customerticket" => Target::UserField("Ticket".into()),
        "awsaccountid" | "accountid" | "cloudaccountuid" | "cloudaccountuid2" => Target::Account,
        "compliancestatus" | "compliance" => Target::Compliance,
        "generatorid" | "metadataproductfeatureuid" => Target::Generator,
        "recordstate" => Target::RecordState,
        "updatedat" => Target::ModifiedTime,
        "recordedstate" => Target::RecordedState,
        _ => return None,
    })
}

/// Whether an identifier column name is an OCSF path.
pub(crate) fn is_ocsf_id(name: &str) -> bool {
    matches!(normalize(name).as_str(), "findinginfouid" | "findinguid")
}

/// Whether `names` look like the CSV Manager for Security Hub's sheet,
/// whose `Types` and `ProductSeverity` columns are read-only.
fn is_csv_manager(names: &[String]) -> bool {
    names.iter().any(|n| {
        matches!(
            normalize(n).as_str(),
            "updateversion" | "customerowner" | "customerissue" | "customerticket"
        )
    })
}

/// The CSV Manager's read-only columns among the decision-named ones.
fn read_only(t: &Target) -> bool {
    matches!(t, Target::Types | Target::SeverityProduct)
}

struct Planned {
    /// Index into the names the plan was made from.
    index: usize,
    /// The name as the input spells it.
    name: Arc<str>,
    target: Target,
    /// A per-row decision (else recorded state).
    decision: bool,
}

/// The columns to read besides the identifiers, and what each holds.
pub(crate) struct FieldPlan {
    columns: Vec<Planned>,
    /// Decision-named columns read as state (for the refusal's message).
    decision_like: Vec<String>,
    /// Decisions and states built recently, by their cells' text: a file of
    /// millions of rows holds a handful of distinct decisions (and often of
    /// states), which should cost one allocation each, not one per row.
    decisions: Recent<RowDecision>,
    states: Recent<Option<Arc<CurrentState>>>,
}

/// A row's own decision (`None`: it sets none), or the column at fault and why.
type RowDecision = Result<Option<Arc<Decision>>, (Arc<str>, String)>;

/// Appends one cell to a cache key, with a separator no text contains.
fn push_cell(key: &mut String, cell: FieldCell<'_>) {
    use std::fmt::Write as _;
    match cell {
        FieldCell::Text(s) => key.push_str(s),
        FieldCell::Int(n) => {
            let _ = write!(key, "{n}");
        }
        FieldCell::Missing => {}
        FieldCell::Unusable(what) => key.push_str(what),
    }
    key.push('\u{0}');
}

/// Plans the extra columns of an input with these column `names`.
/// `identifiers` are the identifier columns' indices (never planned);
/// `mode` says which decision-named columns are per-row decisions.
/// Fails when `--row-decisions=COL` names a column that cannot be one.
pub(crate) fn plan(
    names: &[String],
    identifiers: &[usize],
    ocsf: bool,
    mode: &RowDecisions,
) -> Result<FieldPlan, SourceErrorKind> {
    let manager = is_csv_manager(names);
    let wanted = |name: &str| match mode {
        RowDecisions::Off => false,
        RowDecisions::All => true,
        RowDecisions::Only(list) => list
            .iter()
            .any(|w| w.trim() == name || normalize(w) == normalize(name)),
    };
    if let RowDecisions::Only(list) = mode {
        for w in list {
            let Some((i, name)) = names
                .iter()
                .enumerate()
                .find(|(_, n)| n.trim() == w.trim() || normalize(n) == normalize(w))
            else {
                continue;
            };
            let why = if identifiers.contains(&i) {
                Some("holds the finding's identifier".to_owned())
            } else {
                match target_of(name, ocsf) {
                    None => Some(format!(
                        "is not named after a decision field ({})",
                        DECISION_FIELDS.join(", ")
                    )),
                    Some(t) if !t.is_decision_like() => Some(
                        "records the finding's state or context (OCSF and context columns are never decisions)"
                            .to_owned(),
                    ),
                    Some(t) if manager && read_only(&t) => {
                        Some("is read-only in the CSV Manager's sheet".to_owned())
                    }
                    Some(_) => None,
                }
            };
            if let Some(why) = why {
                return Err(SourceErrorKind::NotADecisionColumn {
                    column: name.trim().to_owned(),
                    why,
                });
            }
        }
    }
    let mut columns: Vec<Planned> = Vec::new();
    let mut decision_like = Vec::new();
    // A `--failed` file records the state in one column: every other
    // column is a decision or nothing.
    let recorded = names.iter().enumerate().any(|(i, n)| {
        !identifiers.contains(&i) && target_of(n, ocsf) == Some(Target::RecordedState)
    });
    for (index, name) in names.iter().enumerate() {
        if identifiers.contains(&index) {
            continue;
        }
        let Some(target) = target_of(name, ocsf) else {
            continue;
        };
        let spelled: Arc<str> = name.trim_start_matches('\u{feff}').trim().into();
        let can_decide = target.is_decision_like() && !(manager && read_only(&target));
        let decision = can_decide && wanted(&spelled);
        if can_decide && !decision {
            decision_like.push(spelled.to_string());
        }
        if recorded && !decision && target != Target::RecordedState {
            continue;
        }
        // The first column for a target wins (a file with both `Workflow`
        // and `workflow_status` is ambiguous; take the earlier).
        if columns
            .iter()
            .any(|c| c.target == target && c.decision == decision)
        {
            continue;
        }
        columns.push(Planned {
            index,
            name: spelled,
            target,
            decision,
        });
    }
    Ok(FieldPlan {
        columns,
        decision_like,
        decisions: Recent::new(),
        states: Recent::new(),
    })
}

impl FieldPlan {
    /// The indices (into the planned names) of the columns to read, in the
    /// order [`FieldPlan::fill`] wants their cells.
    pub(crate) fn indices(&self) -> Vec<usize> {
        self.columns.iter().map(|c| c.index).collect()
    }

    /// The columns taken as per-row decisions, as the input names them.
    pub(crate) fn decision_columns(&self) -> Vec<&str> {
        self.columns
            .iter()
            .filter(|c| c.decision)
            .map(|c| &*c.name)
            .collect()
    }

    /// The decision-named columns read as state (not taken as decisions).
    pub(crate) fn decision_like_columns(&self) -> &[String] {
        &self.decision_like
    }

    /// Sets `record`'s decision and state from `cells` (one per index of
    /// [`FieldPlan::indices`]); a bad decision cell makes it invalid.
    pub(crate) fn fill(&mut self, mut record: SourceRecord, cells: &[FieldCell<'_>]) -> SourceItem {
        match self.decision(cells) {
            Ok(d) => record.decision = d,
            Err((column, reason)) => {
                return SourceItem::Invalid(InvalidRecord {
                    location: record.location,
                    column: Some(column.to_string()),
                    reason,
                    key: Some(record.key),
                });
            }
        }
        let key = self.states.start();
        for (c, &cell) in self.columns.iter().zip(cells) {
            if !c.decision {
                push_cell(key, cell);
            }
        }
        let columns = &self.columns;
        record.current = self
            .states
            .get_or_built(|| state(columns, cells).map(Arc::new));
        SourceItem::Record(record)
    }

    fn decision(&mut self, cells: &[FieldCell<'_>]) -> RowDecision {
        let any = self
            .columns
            .iter()
            .zip(cells)
            .any(|(c, cell)| c.decision && !cell.is_blank());
        if !any {
            return Ok(None);
        }
        let key = self.decisions.start();
        for (c, &cell) in self.columns.iter().zip(cells) {
            if c.decision {
                push_cell(key, cell);
            }
        }
        let columns = &self.columns;
        self.decisions
            .get_or_built(|| build_decision(columns, cells).map(|d| Some(Arc::new(d))))
    }
}

/// Key/value pairs of an object cell: JSON (`{"Status":"NEW"}`, as
/// Steampipe and CloudQuery export) or an Athena struct (`{status=NEW,
/// label=HIGH}`), keys normalised. `None` when it is neither.
fn object_cell(s: &str) -> Option<BTreeMap<String, Value>> {
    let t = s.trim();
    if !t.starts_with('{') || !t.ends_with('}') {
        return None;
    }
    if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(t) {
        return Some(m.into_iter().map(|(k, v)| (normalize(&k), v)).collect());
    }
    // Athena: `{k=v, k=v}`; a value may hold ", " unless what follows
    // looks like the next `key=`.
    let inner = &t[1..t.len() - 1];
    let mut out = BTreeMap::new();
    let mut rest = inner;
    while !rest.trim().is_empty() {
        let eq = rest.find('=')?;
        let key = rest[..eq].trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        let after = &rest[eq + 1..];
        // The next ", key=" boundary.
        let mut end = after.len();
        let mut search = 0;
        while let Some(p) = after[search..].find(", ") {
            let at = search + p;
            let next = &after[at + 2..];
            if let Some(e) = next.find('=')
                && e > 0
                && next[..e]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                end = at;
                break;
            }
            search = at + 2;
        }
        let value = after[..end].trim();
        let v = if value == "null" {
            Value::Null
        } else if let Ok(n) = value.parse::<i64>() {
            Value::from(n)
        } else {
            Value::String(value.to_owned())
        };
        out.insert(normalize(key), v);
        rest = if end < after.len() {
            &after[end + 2..]
        } else {
            ""
        };
    }
    Some(out)
}

fn str_member<'v>(m: &'v BTreeMap<String, Value>, key: &str) -> Option<&'v str> {
    m.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

fn int_member(m: &BTreeMap<String, Value>, key: &str) -> Option<i64> {
    match m.get(key)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A workflow status cell: `NEW` or an object with `Status`.
fn workflow_cell(cell: FieldCell<'_>) -> Option<WorkflowStatus> {
    let s = cell.text()?.trim();
    let name = match object_cell(s) {
        Some(m) => str_member(&m, "status")?.to_owned(),
        None => s.to_owned(),
    };
    WorkflowStatus::from_name(&name.trim().to_ascii_uppercase())
}

/// A severity cell: a label, or an object with `Label`/`Normalized`.
fn severity_cell(cell: FieldCell<'_>) -> Option<(Option<SeverityLabel>, Option<i32>)> {
    let s = cell.text()?.trim();
    match object_cell(s) {
        Some(m) => {
            let label = str_member(&m, "label")
                .and_then(|l| SeverityLabel::from_name(&l.trim().to_ascii_uppercase()));
            let normalized = int_member(&m, "normalized").and_then(|n| i32::try_from(n).ok());
            (label.is_some() || normalized.is_some()).then_some((label, normalized))
        }
        None => SeverityLabel::from_name(&s.to_ascii_uppercase()).map(|l| (Some(l), None)),
    }
}

/// A note object cell: `(text, updated_by)`; `Some((None, None))` for a
/// `null`/empty object (no note).
fn note_cell(s: &str) -> Option<(Option<String>, Option<String>)> {
    let t = s.trim();
    if t == "null" || t == "{}" {
        return Some((None, None));
    }
    let m = object_cell(t)?;
    Some((
        str_member(&m, "text").map(str::to_owned),
        str_member(&m, "updatedby").map(str::to_owned),
    ))
}

/// A list cell: JSON, Athena `[a, b]`, or `;`-separated values.
fn list_cell(s: &str) -> Result<Vec<String>, String> {
    let t = s.trim();
    if t.starts_with('[') {
        if let Ok(list) = serde_json::from_str::<Vec<String>>(t) {
            return Ok(list);
        }
        if t.ends_with(']') && !t.contains('"') {
            return Ok(t[1..t.len() - 1]
                .split(", ")
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect());
        }
        return Err("expected a JSON list of text or values separated by ';'".into());
    }
    Ok(t.split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect())
}

/// A `UserDefinedFields` object cell (JSON or Athena struct/map).
fn user_fields_cell(s: &str) -> Option<BTreeMap<String, String>> {
    let t = s.trim();
    if let Ok(m) = serde_json::from_str::<BTreeMap<String, String>>(t) {
        return Some(m);
    }
    // Athena map `{k=v}`: keys as they are (not normalised).
    let inner = t.strip_prefix('{')?.strip_suffix('}')?;
    if inner.trim().is_empty() {
        return Some(BTreeMap::new());
    }
    let mut out = BTreeMap::new();
    for part in inner.split(", ") {
        let (k, v) = part.split_once('=')?;
        out.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    Some(out)
}

/// Milliseconds since the epoch of a time cell: an integer (OCSF
/// `modified_time` is milliseconds) or RFC 3339 text.
fn time_cell(cell: FieldCell<'_>) -> Option<i64> {
    if let Some(n) = cell.int() {
        return Some(n);
    }
    let s = cell.text()?.trim();
    let t =
        humantime::parse_rfc3339_weak(s.trim_end_matches('Z').trim_end_matches("+00:00")).ok()?;
    let ms = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
    i64::try_from(ms).ok()
}

/// The state a row's state cells record, if any. A cell in a shape this
/// does not know leaves its field unknown.
fn state(columns: &[Planned], cells: &[FieldCell<'_>]) -> Option<CurrentState> {
    if let Some((_, cell)) = columns
        .iter()
        .zip(cells)
        .find(|(c, _)| c.target == Target::RecordedState)
    {
        let v: Value = serde_json::from_str(cell.text()?).ok()?;
        return super::recorded::from_json(&v);
    }
    let mut cur = CurrentState::default();
    let mut any = false;
    let mut note_text: Option<Option<String>> = None;
    let mut note_by: Option<Option<String>> = None;
    for (c, &cell) in columns.iter().zip(cells) {
        if c.decision {
            continue;
        }
        let text = || cell.text().map(|s| s.trim().to_owned());
        let pct = || {
            cell.int()
                .and_then(|n| i32::try_from(n).ok())
                .filter(|n| (0..=100).contains(n))
        };
        let set = match &c.target {
            Target::Account => text().map(|v| cur.account_id = Some(v)),
            Target::OcsfAccount => {
                cur.ocsf = true;
                text().map(|v| cur.account_id = Some(v))
            }
            Target::MetadataUid => {
                cur.ocsf = true;
                text().map(|v| cur.metadata_uid = Some(v))
            }
            Target::OcsfComment => {
                cur.ocsf = true;
                // The column is there: an empty cell means "no comment".
                if !matches!(cell, FieldCell::Unusable(_)) {
                    cur.comment_recorded = true;
                    cur.comment = cell.text().map(str::to_owned).filter(|s| !s.is_empty());
                }
                Some(())
            }
            Target::Compliance => {
                let v = cell.text().and_then(|s| match object_cell(s) {
                    Some(m) => str_member(&m, "status").map(str::to_owned),
                    None => Some(s.trim().to_owned()),
                });
                v.map(|v| cur.compliance_status = Some(v.to_uppercase()))
            }
            Target::Generator => text().map(|v| cur.generator_id = Some(v)),
            Target::RecordState => text().map(|v| cur.record_state = Some(v.to_uppercase())),
            Target::OcsfStatus => {
                cur.ocsf = true;
                cur.status_id = ocsf_id_cell(cell, ocsf_status_id);
                ocsf_status(cell)
                    .map(|v| cur.workflow_status = Some(v.into()))
                    .or(cur.status_id.map(drop))
            }
            Target::OcsfSeverity => {
                cur.ocsf = true;
                cur.severity_id = ocsf_id_cell(cell, ocsf_severity_id);
                ocsf_severity(cell)
                    .map(|v| cur.severity_label = Some(v.into()))
                    .or(cur.severity_id.map(drop))
            }
            Target::OcsfMessage => {
                // The column is there: an empty cell means "no note".
                if !matches!(cell, FieldCell::Unusable(_)) {
                    note_text = Some(cell.text().map(str::to_owned));
                }
                Some(())
            }
            Target::OcsfConfidence | Target::Confidence => pct().map(|v| cur.confidence = Some(v)),
            Target::Criticality => pct().map(|v| cur.criticality = Some(v)),
            Target::ModifiedTime => time_cell(cell).map(|v| cur.modified_ms = Some(v)),
            Target::Workflow => {
                workflow_cell(cell).map(|w| cur.workflow_status = Some(w.as_str().to_owned()))
            }
            Target::NoteText => {
                if !matches!(cell, FieldCell::Unusable(_)) {
                    note_text = Some(cell.text().map(str::to_owned));
                }
                Some(())
            }
            Target::NoteUpdatedBy => {
                if !matches!(cell, FieldCell::Unusable(_)) {
                    note_by = Some(cell.text().map(|s| s.trim().to_owned()));
                }
                Some(())
            }
            Target::Note => match cell {
                FieldCell::Missing => None,
                FieldCell::Text(s) if s.trim().is_empty() => {
                    note_text = Some(None);
                    note_by = Some(None);
                    Some(())
                }
                FieldCell::Text(s) => note_cell(s).map(|(t, by)| {
                    note_text = Some(t);
                    note_by = Some(by);
                }),
                _ => None,
            },
            Target::SeverityLabel => text()
                .and_then(|s| SeverityLabel::from_name(&s.to_ascii_uppercase()))
                .map(|l| cur.severity_label = Some(l.as_str().to_owned())),
            Target::SeverityNormalized => pct().map(|n| cur.severity_normalized = Some(n)),
            Target::Severity => severity_cell(cell).map(|(label, normalized)| {
                if let Some(l) = label {
                    cur.severity_label = Some(l.as_str().to_owned());
                }
                if let Some(n) = normalized.filter(|n| (0..=100).contains(n)) {
                    cur.severity_normalized = Some(n);
                }
            }),
            Target::Verification => text()
                .and_then(|s| VerificationState::from_name(&s.to_ascii_uppercase()))
                .map(|v| cur.verification_state = Some(v.as_str().to_owned())),
            Target::Types => cell
                .text()
                .and_then(|s| list_cell(s).ok())
                .map(|l| cur.types = Some(l)),
            Target::UserFields => cell.text().and_then(user_fields_cell).map(|m| {
                let have = cur.user_defined_fields.get_or_insert_default();
                have.extend(m);
                cur.user_defined_fields_partial = false;
            }),
            Target::UserField(key) => {
                // One key known; the rest of the map is not.
                let have = cur.user_defined_fields.is_some();
                let map = cur.user_defined_fields.get_or_insert_default();
                if let Some(v) = cell.text() {
                    map.insert(key.clone(), v.trim().to_owned());
                }
                if !have {
                    cur.user_defined_fields_partial = true;
                }
                Some(())
            }
            // Named after decisions, and no state of an input without OCSF
            // identifiers (as before these names were known).
            Target::SeverityProduct
            | Target::Related
            | Target::RecordedState
            | Target::StatusId
            | Target::SeverityId
            | Target::Comment => None,
        };
        any |= set.is_some();
    }
    if let Some(t) = note_text {
        cur.note_recorded = true;
        cur.note_text = t;
        cur.note_updated_by = note_by.flatten();
    } else if let Some(by) = note_by {
        // Only the author: the text is not known.
        cur.note_updated_by = by;
    }
    any.then_some(cur)
}

/// OCSF `status` (caption) or `status_id` as a workflow status. The ASR
/// mapping (docs/service-facts.md §7.1) pairs NOTIFIED with "In Progress" (2).
pub(crate) fn ocsf_status(cell: FieldCell<'_>) -> Option<&'static str> {
    let id = match cell {
        FieldCell::Int(n) => n,
        FieldCell::Text(s) => match normalize(s).as_str() {
            "new" | "1" => 1,
            "inprogress" | "notified" | "2" => 2,
            "suppressed" | "3" => 3,
            "resolved" | "4" => 4,
            _ => return None,
        },
        _ => return None,
    };
    Some(match id {
        1 => "NEW",
        2 => "NOTIFIED",
        3 => "SUPPRESSED",
        4 => "RESOLVED",
        _ => return None,
    })
}

/// An OCSF `*_id` cell: the integer, or its caption through `caption`.
fn ocsf_id_cell(cell: FieldCell<'_>, caption: fn(&str) -> Option<i32>) -> Option<i32> {
    match cell {
        FieldCell::Int(n) => i32::try_from(n).ok(),
        FieldCell::Text(s) => s.trim().parse().ok().or_else(|| caption(s)),
        _ => None,
    }
}

/// OCSF `status` caption as its `status_id` (0 Unknown, 1 New, 2 In
/// Progress, 3 Suppressed, 4 Resolved, 5 Archived, 99 Other).
pub(crate) fn ocsf_status_id(caption: &str) -> Option<i32> {
    Some(match normalize(caption).as_str() {
        "unknown" => 0,
        "new" => 1,
        "inprogress" => 2,
        "suppressed" => 3,
        "resolved" => 4,
        "archived" => 5,
        "other" => 99,
        _ => return None,
    })
}

/// OCSF `severity` caption as its `severity_id` (0 Unknown, 1
/// Informational, 2 Low, 3 Medium, 4 High, 5 Critical, 6 Fatal, 99 Other).
pub(crate) fn ocsf_severity_id(caption: &str) -> Option<i32> {
    Some(match normalize(caption).as_str() {
        "unknown" => 0,
        "informational" => 1,
        "low" => 2,
        "medium" => 3,
        "high" => 4,
        "critical" => 5,
        "fatal" => 6,
        "other" => 99,
        _ => return None,
    })
}

/// OCSF `severity` (caption) or `severity_id` as a severity label. Fatal,
/// Other and Unknown have no ASFF label and stay unknown.
pub(crate) fn ocsf_severity(cell: FieldCell<'_>) -> Option<&'static str> {
    let id = match cell {
        FieldCell::Int(n) => n,
        FieldCell::Text(s) => match normalize(s).as_str() {
            "informational" | "1" => 1,
            "low" | "2" => 2,
            "medium" | "3" => 3,
            "high" | "4" => 4,
            "critical" | "5" => 5,
            _ => return None,
        },
        _ => return None,
    };
    Some(match id {
        1 => "INFORMATIONAL",
        2 => "LOW",
        3 => "MEDIUM",
        4 => "HIGH",
        5 => "CRITICAL",
        _ => return None,
    })
}

/// Builds the decision a row's cells ask for. Only syntax is checked here
/// (is it a number, a known status); the service's rules are checked by the
/// engine on the merged decision.
fn build_decision(
    columns: &[Planned],
    cells: &[FieldCell<'_>],
) -> Result<Decision, (Arc<str>, String)> {
    let mut d = Decision::default();
    let mut note_text: Option<String> = None;
    let mut note_by: Option<String> = None;
    let mut severity = SeverityUpdate::default();
    let mut has_severity = false;
    for (c, &cell) in columns.iter().zip(cells) {
        if !c.decision || cell.is_blank() {
            continue;
        }
        let bad = |reason: String| (c.name.clone(), reason);
        let text = match cell {
            FieldCell::Text(s) => Some(s),
            FieldCell::Unusable(what) => return Err(bad(format!("the value is {what}"))),
            _ => None,
        };
        let int = |what: &str| -> Result<i32, (Arc<str>, String)> {
            match cell {
                FieldCell::Int(n) => i32::try_from(n)
                    .map_err(|_| bad(format!("{what} {n} is out of range (0-100 allowed)"))),
                _ => {
                    let s = text.unwrap_or_default().trim();
                    s.parse::<i32>()
                        .map_err(|_| bad(format!("{what} must be a whole number, got {s:?}")))
                }
            }
        };
        match &c.target {
            Target::Workflow => {
                let s = text.unwrap_or_default().trim();
                let status = workflow_cell(cell).ok_or_else(|| {
                    bad(format!(
                        "unknown workflow status {s:?} (expected one of {})",
                        WorkflowStatus::NAMES.join(", ")
                    ))
                })?;
                d.workflow = Some(WorkflowUpdate { status });
            }
            Target::NoteText => note_text = text.map(str::to_owned),
            Target::Note => {
                let (t, by) = note_cell(text.unwrap_or_default()).ok_or_else(|| {
                    bad(format!(
                        "expected a note object like {{\"Text\":\"...\",\"UpdatedBy\":\"...\"}}, got {:?}",
                        text.unwrap_or_default()
                    ))
                })?;
                if t.is_some() {
                    note_text = t;
                }
                if by.is_some() {
                    note_by = by;
                }
            }
            Target::Severity => {
                let (label, normalized) = severity_cell(cell).ok_or_else(|| {
                    bad(format!(
                        "expected a severity label ({}) or an object with Label/Normalized, got {:?}",
                        SeverityLabel::NAMES.join(", "),
                        text.unwrap_or_default()
                    ))
                })?;
                if label.is_some() {
                    severity.label = label;
                }
                if normalized.is_some() {
                    severity.normalized = normalized;
                }
                has_severity = true;
            }
            Target::NoteUpdatedBy => note_by = text.map(|s| s.trim().to_owned()),
            Target::SeverityLabel => {
                let s = text.unwrap_or_default().trim();
                severity.label = Some(
                    SeverityLabel::from_name(&s.to_ascii_uppercase()).ok_or_else(|| {
                        bad(format!(
                            "unknown severity label {s:?} (expected one of {})",
                            SeverityLabel::NAMES.join(", ")
                        ))
                    })?,
                );
                has_severity = true;
            }
            Target::SeverityNormalized => {
                severity.normalized = Some(int("normalized severity")?);
                has_severity = true;
            }
            Target::SeverityProduct => {
                let value = match cell {
                    FieldCell::Int(n) => Some(n as f64),
                    _ => text.and_then(|s| s.trim().parse::<f64>().ok()),
                };
                severity.product = Some(value.and_then(FiniteF64::new).ok_or_else(|| {
                    bad(format!(
                        "product severity must be a number, got {:?}",
                        text.unwrap_or_default()
                    ))
                })?);
                has_severity = true;
            }
            Target::Verification => {
                let s = text.unwrap_or_default().trim();
                d.verification_state = Some(
                    VerificationState::from_name(&s.to_ascii_uppercase()).ok_or_else(|| {
                        bad(format!(
                            "unknown verification state {s:?} (expected one of {})",
                            VerificationState::NAMES.join(", ")
                        ))
                    })?,
                );
            }
            Target::Confidence => d.confidence = Some(int("confidence")?),
            Target::Criticality => d.criticality = Some(int("criticality")?),
            Target::Types => d.types = Some(list_cell(text.unwrap_or_default()).map_err(bad)?),
            Target::UserField(key) => {
                d.user_defined_fields
                    .get_or_insert_with(BTreeMap::new)
                    .insert(key.clone(), text.unwrap_or_default().to_owned());
            }
            Target::UserFields => {
                let map = user_fields_cell(text.unwrap_or_default()).ok_or_else(|| {
                    bad("expected a JSON object of text values, like {\"Owner\":\"alice\"}".into())
                })?;
                d.user_defined_fields
                    .get_or_insert_with(BTreeMap::new)
                    .extend(map);
            }
            Target::Related => {
                let list: Vec<FindingKey> = serde_json::from_str(text.unwrap_or_default())
                    .map_err(|e| {
                        bad(format!(
                            "expected a JSON list like [{{\"ProductArn\":\"...\",\"Id\":\"...\"}}] ({e})"
                        ))
                    })?;
                d.related_findings = Some(list);
            }
            Target::StatusId => d.status_id = Some(int("status id")?),
            Target::SeverityId => d.severity_id = Some(int("severity id")?),
            Target::Comment => d.comment = text.map(str::to_owned),
            _ => {}
        }
    }
    if has_severity {
        d.severity = Some(severity);
    }
    if note_text.is_some() || note_by.is_some() {
        // A row may give only one half of the note; the engine completes it
        // from the command line's `--note`, or rejects the row.
        d.note = Some(NoteUpdate {
            text: note_text.unwrap_or_default(),
            updated_by: note_by.unwrap_or_default(),
        });
    }
    Ok(d)
}

/// The columns among `names` (not identifiers) that are named after a
/// decision field, as spelled: what `--row-decisions` would take.
#[cfg(test)]
pub(crate) fn decision_like(names: &[String], ocsf: bool) -> Vec<String> {
    let manager = is_csv_manager(names);
    names
        .iter()
        .filter(|n| {
            target_of(n, ocsf).is_some_and(|t| t.is_decision_like() && !(manager && read_only(&t)))
        })
        .map(|n| n.trim_start_matches('\u{feff}').trim().to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Location;
    use crate::source::RowDecisions;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn record() -> SourceRecord {
        SourceRecord::new(
            Location {
                file: "t.csv".into(),
                row: 1,
                detail: None,
            },
            FindingKey::new(
                "f-1",
                "arn:aws:securityhub:us-east-1::product/aws/guardduty",
            ),
        )
    }

    fn fill(plan: &mut FieldPlan, cells: &[&str]) -> SourceItem {
        let cells: Vec<FieldCell<'_>> = cells.iter().map(|s| FieldCell::Text(s)).collect();
        plan.fill(record(), &cells)
    }

    #[test]
    fn decision_columns_in_every_spelling() {
        let n = names(&[
            "Id",
            "ProductArn",
            "Workflow.Status",
            "Note.Text",
            "note_updated_by",
            "SeverityLabel",
            "VerificationState",
            "Confidence",
            "Criticality",
            "Types",
            "UserDefinedFields.Ticket",
            "UserDefinedFields.Owner",
            "AwsAccountId",
            "Title",
        ]);
        let mut plan = plan(&n, &[0, 1], false, &RowDecisions::All).unwrap();
        assert_eq!(plan.indices(), (2..13).collect::<Vec<_>>());
        assert_eq!(plan.decision_columns().len(), 10);
        let item = fill(
            &mut plan,
            &[
                "suppressed",
                "known",
                "secops",
                "low",
                "BENIGN_POSITIVE",
                "80",
                "5",
                "a/b/c; d/e/f",
                "T-1",
                "alice",
                "123456789012",
            ],
        );
        let SourceItem::Record(r) = item else {
            panic!("{item:?}")
        };
        let d = r.decision.expect("a decision");
        assert_eq!(
            d.workflow.as_ref().unwrap().status,
            WorkflowStatus::Suppressed
        );
        let note = d.note.as_ref().unwrap();
        assert_eq!(
            (note.text.as_str(), note.updated_by.as_str()),
            ("known", "secops")
        );
        assert_eq!(d.severity.as_ref().unwrap().label, Some(SeverityLabel::Low));
        assert_eq!(d.confidence, Some(80));
        assert_eq!(d.criticality, Some(5));
        assert_eq!(d.types.as_deref().unwrap(), ["a/b/c", "d/e/f"]);
        let udf = d.user_defined_fields.as_ref().unwrap();
        assert_eq!(udf.get("Ticket").map(String::as_str), Some("T-1"));
        assert_eq!(udf.get("Owner").map(String::as_str), Some("alice"));
        assert_eq!(
            r.current.unwrap().account_id.as_deref(),
            Some("123456789012")
        );
    }

    #[test]
    fn empty_cells_override_nothing_and_repeated_decisions_are_shared() {
        let n = names(&["Id", "ProductArn", "workflow_status", "note_text"]);
        let mut plan = plan(&n, &[0, 1], false, &RowDecisions::All).unwrap();
        let SourceItem::Record(r) = fill(&mut plan, &["", " "]) else {
            panic!()
        };
        assert!(r.decision.is_none());
        let a = fill(&mut plan, &["RESOLVED", "fixed"]);
        let b = fill(&mut plan, &["RESOLVED", "fixed"]);
        let (SourceItem::Record(a), SourceItem::Record(b)) = (a, b) else {
            panic!()
        };
        assert!(Arc::ptr_eq(
            a.decision.as_ref().unwrap(),
            b.decision.as_ref().unwrap()
        ));
        // Only the text is given: UpdatedBy is left for the engine to fill.
        assert_eq!(a.decision.unwrap().note.as_ref().unwrap().updated_by, "");
    }

    #[test]
    fn bad_cells_name_the_column() {
        let n = names(&["Id", "ProductArn", "Confidence", "Workflow"]);
        let mut plan = plan(&n, &[0, 1], false, &RowDecisions::All).unwrap();
        let SourceItem::Invalid(bad) = fill(&mut plan, &["high", ""]) else {
            panic!()
        };
        assert_eq!(bad.column.as_deref(), Some("Confidence"));
        assert!(bad.reason.contains("whole number"), "{}", bad.reason);
        assert!(bad.key.is_some());
        let SourceItem::Invalid(bad) = fill(&mut plan, &["", "CLOSED"]) else {
            panic!()
        };
        assert_eq!(bad.column.as_deref(), Some("Workflow"));
        assert!(bad.reason.contains("NEW, NOTIFIED"), "{}", bad.reason);
    }

    #[test]
    fn without_row_decisions_decision_columns_are_state() {
        let n = names(&["Id", "ProductArn", "Workflow.Status", "ComplianceStatus"]);
        let mut plan = plan(&n, &[0, 1], false, &RowDecisions::Off).unwrap();
        assert!(plan.decision_columns().is_empty());
        assert_eq!(plan.decision_like_columns(), ["Workflow.Status"]);
        let SourceItem::Record(r) = fill(&mut plan, &["SUPPRESSED", "failed"]) else {
            panic!()
        };
        assert!(r.decision.is_none());
        let cur = r.current.unwrap();
        assert_eq!(cur.compliance_status.as_deref(), Some("FAILED"));
        assert_eq!(cur.workflow_status.as_deref(), Some("SUPPRESSED"));
    }

    #[test]
    fn a_recorded_state_column_is_the_state_and_decision_columns_never_are() {
        // A `--failed` file's layout: decisions under their ASFF names, the
        // state the row came with in `recorded_state`.
        let n = names(&[
            "Id",
            "ProductArn",
            "Workflow.Status",
            "Note.Text",
            "Note.UpdatedBy",
            "recorded_state",
        ]);
        let state = r#"{"Workflow":{"Status":"NEW"},"Note":{"Text":"old","UpdatedBy":"bob"}}"#;
        let cells = ["SUPPRESSED", "new note", "alice", state];
        for mode in [
            RowDecisions::All,
            RowDecisions::from_flag("Workflow.Status,Note.Text,Note.UpdatedBy"),
        ] {
            let mut plan = plan(&n, &[0, 1], false, &mode).unwrap();
            assert_eq!(plan.decision_columns().len(), 3, "{mode:?}");
            let SourceItem::Record(r) = fill(&mut plan, &cells) else {
                panic!()
            };
            let d = r.decision.unwrap();
            assert_eq!(
                d.workflow.as_ref().unwrap().status,
                WorkflowStatus::Suppressed
            );
            assert_eq!(d.note.as_ref().unwrap().text, "new note");
            let cur = r.current.unwrap();
            assert_eq!(cur.workflow_status.as_deref(), Some("NEW"));
            assert_eq!(cur.note_text.as_deref(), Some("old"));
            assert_eq!(cur.note_updated_by.as_deref(), Some("bob"));
        }
        // Without --row-decisions the decision columns are not read as
        // state either: the state is the recorded one.
        let mut plan = plan(&n, &[0, 1], false, &RowDecisions::Off).unwrap();
        assert!(plan.decision_columns().is_empty());
        assert_eq!(plan.decision_like_columns().len(), 3);
        // Only `recorded_state` is read.
        assert_eq!(plan.indices(), [5]);
        let SourceItem::Record(r) = fill(&mut plan, &[state]) else {
            panic!()
        };
        assert!(r.decision.is_none());
        assert_eq!(r.current.unwrap().workflow_status.as_deref(), Some("NEW"));
        // An empty or unreadable recorded state: nothing known, row valid.
        for bad in ["", "not json", "[1]"] {
            let SourceItem::Record(r) = fill(&mut plan, &[bad]) else {
                panic!()
            };
            assert!(r.current.is_none(), "{bad}");
        }
        // It is never a decision.
        let err = plan_err(&n, RowDecisions::from_flag("recorded_state"));
        assert!(err.contains("state or context"), "{err}");
    }

    fn plan_err(n: &[String], mode: RowDecisions) -> String {
        match plan(n, &[0, 1], false, &mode) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("planned"),
        }
    }

    fn state_of(names_: &[&str], cells: &[&str], ocsf: bool) -> CurrentState {
        let n = names(names_);
        let mut plan = plan(&n, &[0, 1], ocsf, &RowDecisions::Off).unwrap();
        assert!(plan.decision_columns().is_empty());
        match fill(&mut plan, cells) {
            SourceItem::Record(r) => {
                assert!(r.decision.is_none());
                (*r.current.expect("state")).clone()
            }
            other => panic!("a state cell made the row invalid: {other:?}"),
        }
    }

    #[test]
    fn every_layout_is_read_as_state() {
        // Steampipe.
        let s = state_of(
            &[
                "id",
                "product_arn",
                "workflow_status",
                "severity_label",
                "note",
                "aws_account_id",
            ],
            &[
                "NEW",
                "MEDIUM",
                r#"{"Text":"JIRA-1","UpdatedBy":"alice"}"#,
                "111",
            ],
            false,
        );
        assert_eq!(s.workflow_status.as_deref(), Some("NEW"));
        assert_eq!(s.severity_label.as_deref(), Some("MEDIUM"));
        assert_eq!(s.note_text.as_deref(), Some("JIRA-1"));
        assert_eq!(s.note_updated_by.as_deref(), Some("alice"));
        assert!(s.note_recorded);
        // Steampipe select * / CloudQuery: JSON-valued cells.
        let s = state_of(
            &[
                "id",
                "product_arn",
                "workflow",
                "severity",
                "confidence",
                "criticality",
                "types",
                "user_defined_fields",
                "verification_state",
                "related_findings",
                "note",
            ],
            &[
                r#"{"Status":"NOTIFIED"}"#,
                r#"{"Label":"HIGH","Normalized":75,"Original":"8"}"#,
                "80",
                "40",
                r#"["Software and Configuration Checks/AWS Security Best Practices"]"#,
                r#"{"Owner":"alice"}"#,
                "TRUE_POSITIVE",
                r#"[{"ProductArn":"arn:aws:securityhub:us-east-1::product/aws/guardduty","Id":"x"}]"#,
                "",
            ],
            false,
        );
        assert_eq!(s.workflow_status.as_deref(), Some("NOTIFIED"));
        assert_eq!(s.severity_label.as_deref(), Some("HIGH"));
        assert_eq!(s.severity_normalized, Some(75));
        assert_eq!((s.confidence, s.criticality), (Some(80), Some(40)));
        assert_eq!(s.types.as_ref().unwrap().len(), 1);
        assert_eq!(s.verification_state.as_deref(), Some("TRUE_POSITIVE"));
        assert_eq!(s.user_defined_fields.as_ref().unwrap()["Owner"], "alice");
        assert!(!s.user_defined_fields_partial);
        assert!(
            s.note_recorded && s.note_text.is_none(),
            "empty note cell: no note"
        );
        // Athena over ASFF: lower-case names, struct cells.
        let s = state_of(
            &[
                "id",
                "productarn",
                "workflow",
                "severity",
                "note",
                "confidence",
                "verificationstate",
                "types",
            ],
            &[
                "{status=SUPPRESSED}",
                "{label=LOW, normalized=30, original=LOW}",
                "{text=see JIRA-7, then close, updatedby=bob, updatedat=2026-01-01T00:00:00Z}",
                "90",
                "BENIGN_POSITIVE",
                "[a/b/c, d/e/f]",
            ],
            false,
        );
        assert_eq!(s.workflow_status.as_deref(), Some("SUPPRESSED"));
        assert_eq!(s.severity_label.as_deref(), Some("LOW"));
        assert_eq!(s.severity_normalized, Some(30));
        assert_eq!(s.note_text.as_deref(), Some("see JIRA-7, then close"));
        assert_eq!(s.note_updated_by.as_deref(), Some("bob"));
        assert_eq!(s.confidence, Some(90));
        assert_eq!(s.types.as_deref().unwrap(), ["a/b/c", "d/e/f"]);
        // Flattened get-findings (pandas json_normalize).
        let s = state_of(
            &[
                "Id",
                "ProductArn",
                "Workflow.Status",
                "Severity.Label",
                "Severity.Normalized",
                "Note.Text",
                "Note.UpdatedBy",
            ],
            &["RESOLVED", "CRITICAL", "90", "old", "carol"],
            false,
        );
        assert_eq!(s.workflow_status.as_deref(), Some("RESOLVED"));
        assert_eq!(s.severity_normalized, Some(90));
        assert_eq!(s.note_text.as_deref(), Some("old"));
        assert_eq!(s.note_updated_by.as_deref(), Some("carol"));
        // Security Lake OCSF 1.0 (integer confidence) and 1.1 (caption).
        let s = state_of(
            &[
                "finding.uid",
                "metadata.product.uid",
                "state",
                "confidence",
                "finding.modified_time",
            ],
            &["Suppressed", "85", "1796342400000"],
            true,
        );
        assert_eq!(s.workflow_status.as_deref(), Some("SUPPRESSED"));
        assert_eq!(s.confidence, Some(85));
        assert_eq!(s.modified_ms, Some(1_796_342_400_000));
        let s = state_of(
            &[
                "finding_info.uid",
                "metadata.product.uid",
                "status",
                "confidence",
                "finding_info.modified_time_dt",
            ],
            &["New", "High", "2026-12-04T00:00:00Z"],
            true,
        );
        assert_eq!(s.workflow_status.as_deref(), Some("NEW"));
        assert_eq!(
            s.confidence, None,
            "a caption is no ASFF Confidence: unknown"
        );
        assert_eq!(s.modified_ms, Some(1_796_342_400_000));
    }

    #[test]
    fn a_state_cell_in_an_unknown_shape_is_unknown_never_invalid() {
        let s = state_of(
            &[
                "id",
                "product_arn",
                "workflow",
                "severity",
                "confidence",
                "note",
                "user_defined_fields",
                "aws_account_id",
            ],
            &[
                "<<struct>>",
                "{weird",
                "high",
                "{not a note",
                "[1,2]",
                "111",
            ],
            false,
        );
        assert_eq!(s.account_id.as_deref(), Some("111"));
        assert_eq!(s.workflow_status, None);
        assert_eq!(s.severity_label, None);
        assert_eq!(s.confidence, None);
        assert!(!s.note_recorded, "an unreadable note is not known");
        assert_eq!(s.user_defined_fields, None);
    }

    #[test]
    fn only_the_named_columns_are_decisions() {
        let n = names(&[
            "Id",
            "ProductArn",
            "Workflow.Status",
            "Note.Text",
            "Severity.Label",
        ]);
        let only = RowDecisions::from_flag("workflow_status");
        let mut p = plan(&n, &[0, 1], false, &only).unwrap();
        assert_eq!(p.decision_columns(), ["Workflow.Status"]);
        let SourceItem::Record(r) = fill(&mut p, &["RESOLVED", "old note", "HIGH"]) else {
            panic!()
        };
        let d = r.decision.unwrap();
        assert_eq!(
            d.workflow.as_ref().unwrap().status,
            WorkflowStatus::Resolved
        );
        assert!(d.note.is_none() && d.severity.is_none(), "{d:?}");
        let cur = r.current.unwrap();
        assert_eq!(cur.note_text.as_deref(), Some("old note"));
        assert_eq!(cur.severity_label.as_deref(), Some("HIGH"));
        // A state column cannot be named.
        let n = names(&["finding_info.uid", "metadata.product.uid", "status"]);
        let e = plan(&n, &[0, 1], true, &RowDecisions::from_flag("status"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("status"), "{e}");
    }

    #[test]
    fn the_csv_managers_read_only_columns_are_never_decisions() {
        let n = names(&[
            "Id",
            "ProductArn",
            "Criticality",
            "Confidence",
            "NoteText",
            "NoteUpdatedBy",
            "CustomerOwner",
            "ProductSeverity",
            "NormalizedSeverity",
            "SeverityLabel",
            "VerificationState",
            "Workflow",
            "UpdateVersion",
            "Types",
        ]);
        let mut p = plan(&n, &[0, 1], false, &RowDecisions::All).unwrap();
        let cols = p.decision_columns();
        assert!(
            !cols.contains(&"Types") && !cols.contains(&"ProductSeverity"),
            "{cols:?}"
        );
        assert_eq!(cols.len(), 9, "{cols:?}");
        let SourceItem::Record(r) = fill(
            &mut p,
            &["", "", "", "", "", "3.5", "", "", "", "SUPPRESSED", "a/b/c"],
        ) else {
            panic!()
        };
        let d = r.decision.unwrap();
        assert!(d.types.is_none() && d.severity.is_none(), "{d:?}");
        assert_eq!(r.current.unwrap().types.as_deref().unwrap(), ["a/b/c"]);
        let e = plan(&n, &[0, 1], false, &RowDecisions::from_flag("Types"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("read-only"), "{e}");
        assert_eq!(decision_like(&n, false).len(), 9);
    }

    #[test]
    fn ocsf_columns_are_state() {
        let n = names(&[
            "finding_info.uid",
            "metadata.product.uid",
            "status",
            "severity",
            "message",
            "cloud.account.uid",
        ]);
        assert!(is_ocsf_id(&n[0]));
        let mut plan = plan(&n, &[0, 1], true, &RowDecisions::All).unwrap();
        assert!(plan.decision_columns().is_empty());
        let SourceItem::Record(r) = fill(&mut plan, &["Suppressed", "High", "ticket 7", "111"])
        else {
            panic!()
        };
        assert!(r.decision.is_none());
        let cur = r.current.unwrap();
        assert_eq!(cur.workflow_status.as_deref(), Some("SUPPRESSED"));
        assert_eq!(cur.severity_label.as_deref(), Some("HIGH"));
        assert_eq!(cur.note_text.as_deref(), Some("ticket 7"));
        assert_eq!(cur.account_id.as_deref(), Some("111"));
        assert_eq!(ocsf_status(FieldCell::Int(2)), Some("NOTIFIED"));
        assert_eq!(ocsf_severity(FieldCell::Int(6)), None, "Fatal has no label");
    }
}
