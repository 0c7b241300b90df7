//! Columns beyond the identifiers: per-row decision columns and the
//! finding's exported state, shared by the CSV and Parquet readers.
//!
//! A column plan is made once per input from its column names ([`plan`]);
//! each row then hands the planned columns' cells to [`FieldPlan::fill`],
//! which sets the record's `decision` (values the row asks for) and
//! `current` (what the export says the finding holds now). A decision cell
//! that does not parse makes the record `invalid`, naming the column as the
//! file spells it; a state cell that does not parse is simply not known.
//!
//! Which columns are decisions and which are state follows the issue's
//! naming: in ASFF-style layouts (`Workflow.Status`, `workflow_status`, the
//! CSV Manager's `Workflow`, `Note.Text`, ...) they are decisions; OCSF
//! layouts' `status`, `severity` and `message` are state. Context columns
//! (account, compliance status, generator, record state) are state in every
//! layout. Nothing here validates a decision against the service's rules:
//! the engine validates the merged decision of each record, once.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::decision::{
    Decision, FiniteF64, NoteUpdate, SeverityLabel, SeverityUpdate, VerificationState,
    WorkflowStatus, WorkflowUpdate,
};
use crate::model::{CurrentState, FindingKey, InvalidRecord, SourceItem, SourceRecord};

use super::ident::normalize;
use super::recent::Recent;

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
            FieldCell::Text(s) => s.trim().is_empty(),
            _ => false,
        }
    }
}

/// What a planned column holds.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    Workflow,
    NoteText,
    NoteUpdatedBy,
    SeverityLabel,
    SeverityNormalized,
    SeverityProduct,
    Verification,
    Confidence,
    Criticality,
    Types,
    /// One `UserDefinedFields` key.
    UserField(String),
    /// A JSON object of `UserDefinedFields`.
    UserFields,
    Related,
    // State and context.
    Account,
    Compliance,
    Generator,
    RecordState,
    OcsfStatus,
    OcsfSeverity,
    OcsfMessage,
}

impl Target {
    fn is_decision(&self) -> bool {
        !matches!(
            self,
            Target::Account
                | Target::Compliance
                | Target::Generator
                | Target::RecordState
                | Target::OcsfStatus
                | Target::OcsfSeverity
                | Target::OcsfMessage
        )
    }
}

/// Which target a column name stands for, if any. `ocsf` when the input's
/// identifiers are OCSF paths: there `status`/`severity`/`message` are the
/// finding's state.
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
        "workflowstatus" | "workflow" => Target::Workflow,
        "notetext" => Target::NoteText,
        "noteupdatedby" => Target::NoteUpdatedBy,
        "severitylabel" => Target::SeverityLabel,
        "severitynormalized" | "normalizedseverity" => Target::SeverityNormalized,
        "severityproduct" | "productseverity" => Target::SeverityProduct,
        "verificationstate" => Target::Verification,
        "confidence" => Target::Confidence,
        "criticality" => Target::Criticality,
        "types" => Target::Types,
        "userdefinedfields" => Target::UserFields,
        "relatedfindings" => Target::Related,
        // The CSV Manager's custom columns (docs/service-facts.md §9).
        "customerowner" => Target::UserField("Owner".into()),
        "customerissue" => Target::UserField("Issue".into()),
        "customerticket" => Target::UserField("Ticket".into()),
        "awsaccountid" | "accountid" | "cloudaccountuid" => Target::Account,
        "compliancestatus" => Target::Compliance,
        "generatorid" | "metadataproductfeatureuid" => Target::Generator,
        "recordstate" => Target::RecordState,
        "status" | "statusid" if ocsf => Target::OcsfStatus,
        "severity" | "severityid" if ocsf => Target::OcsfSeverity,
        "message" if ocsf => Target::OcsfMessage,
        _ => return None,
    })
}

/// Whether an identifier column name is an OCSF path.
pub(crate) fn is_ocsf_id(name: &str) -> bool {
    matches!(normalize(name).as_str(), "findinginfouid" | "findinguid")
}

struct Planned {
    /// Index into the names the plan was made from.
    index: usize,
    /// The name as the input spells it.
    name: Arc<str>,
    target: Target,
}

/// The columns to read besides the identifiers, and what each holds.
pub(crate) struct FieldPlan {
    columns: Vec<Planned>,
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
/// `row_decisions` false ignores decision columns (`--no-row-decisions`).
pub(crate) fn plan(
    names: &[String],
    identifiers: &[usize],
    ocsf: bool,
    row_decisions: bool,
) -> FieldPlan {
    let mut columns: Vec<Planned> = Vec::new();
    for (index, name) in names.iter().enumerate() {
        if identifiers.contains(&index) {
            continue;
        }
        let Some(target) = target_of(name, ocsf) else {
            continue;
        };
        if target.is_decision() && !row_decisions {
            continue;
        }
        // The first column for a target wins (a file with both `Workflow`
        // and `workflow_status` is ambiguous; take the earlier, say which).
        if columns.iter().any(|c| c.target == target) {
            continue;
        }
        columns.push(Planned {
            index,
            name: name.trim_start_matches('\u{feff}').trim().into(),
            target,
        });
    }
    FieldPlan {
        columns,
        decisions: Recent::new(),
        states: Recent::new(),
    }
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
            .filter(|c| c.target.is_decision())
            .map(|c| &*c.name)
            .collect()
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
            if !c.target.is_decision() {
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
            .any(|(c, cell)| c.target.is_decision() && !cell.is_blank());
        if !any {
            return Ok(None);
        }
        let key = self.decisions.start();
        for (c, &cell) in self.columns.iter().zip(cells) {
            if c.target.is_decision() {
                push_cell(key, cell);
            }
        }
        let columns = &self.columns;
        self.decisions
            .get_or_built(|| build_decision(columns, cells).map(|d| Some(Arc::new(d))))
    }
}

/// The state a row's state cells record, if any.
fn state(columns: &[Planned], cells: &[FieldCell<'_>]) -> Option<CurrentState> {
    let mut cur = CurrentState::default();
    let mut any = false;
    for (c, cell) in columns.iter().zip(cells) {
        let text = || cell.text().map(|s| s.trim().to_owned());
        let set = match c.target {
            Target::Account => text().map(|v| cur.account_id = Some(v)),
            Target::Compliance => text().map(|v| cur.compliance_status = Some(v.to_uppercase())),
            Target::Generator => text().map(|v| cur.generator_id = Some(v)),
            Target::RecordState => text().map(|v| cur.record_state = Some(v.to_uppercase())),
            Target::OcsfStatus => ocsf_status(*cell).map(|v| cur.workflow_status = Some(v.into())),
            Target::OcsfSeverity => {
                ocsf_severity(*cell).map(|v| cur.severity_label = Some(v.into()))
            }
            Target::OcsfMessage => {
                // The column is there: an empty cell means "no note".
                cur.note_recorded = true;
                cur.note_text = cell.text().map(str::to_owned);
                Some(())
            }
            _ => None,
        };
        any |= set.is_some();
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
        if !c.target.is_decision() || cell.is_blank() {
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
                let status =
                    WorkflowStatus::from_name(&s.to_ascii_uppercase()).ok_or_else(|| {
                        bad(format!(
                            "unknown workflow status {s:?} (expected one of {})",
                            WorkflowStatus::NAMES.join(", ")
                        ))
                    })?;
                d.workflow = Some(WorkflowUpdate { status });
            }
            Target::NoteText => note_text = text.map(str::to_owned),
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
                let map: BTreeMap<String, String> = serde_json::from_str(text.unwrap_or_default())
                    .map_err(|e| {
                        bad(format!(
                            "expected a JSON object of text values, like {{\"Owner\":\"alice\"}} ({e})"
                        ))
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

/// `Types` as a JSON list or `;`-separated values.
fn list_cell(s: &str) -> Result<Vec<String>, String> {
    let t = s.trim();
    if t.starts_with('[') {
        return serde_json::from_str(t)
            .map_err(|e| format!("expected a JSON list of text or values separated by ';' ({e})"));
    }
    Ok(t.split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Location;

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
            "CustomerOwner",
            "AwsAccountId",
            "Title",
        ]);
        let mut plan = plan(&n, &[0, 1], false, true);
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
        let mut plan = plan(&n, &[0, 1], false, true);
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
        let mut plan = plan(&n, &[0, 1], false, true);
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
    fn no_row_decisions_ignores_decision_columns_but_keeps_context() {
        let n = names(&["Id", "ProductArn", "Workflow.Status", "ComplianceStatus"]);
        let mut plan = plan(&n, &[0, 1], false, false);
        assert!(plan.decision_columns().is_empty());
        let SourceItem::Record(r) = fill(&mut plan, &["failed"]) else {
            panic!()
        };
        assert!(r.decision.is_none());
        assert_eq!(
            r.current.unwrap().compliance_status.as_deref(),
            Some("FAILED")
        );
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
        let mut plan = plan(&n, &[0, 1], true, true);
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
