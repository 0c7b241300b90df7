//! Undo: what a finding held before a run changed it, and the decision that
//! puts it back.
//!
//! When an input records the findings' state (ASFF and OCSF exports do), the
//! results file keeps, for each updated finding, the decision applied
//! (`applied`, the `BatchUpdateFindings` members as JSON) and the prior
//! values of exactly those fields (`prior`, an ASFF fragment: `{"Workflow":
//! {"Status":"NEW"}, "Note": null, ...}`). In `prior` a member set to `null`
//! means "the finding had none" and a missing member means "not known".
//!
//! [`restoring`] turns a results row back into the decision that restores
//! it, and lists, field by field, what cannot be restored through the API
//! (a note where there was none: notes cannot be deleted; a user-defined
//! field that was added; a value the export did not record). The revert run
//! records the campaign's values as its own prior values
//! ([`state_after`]), so reverting a revert re-applies the campaign.
//!
//! This module does no I/O and sends nothing: `sechub-triage revert` reads
//! the results file and runs the engine with these decisions.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::decision::{
    Decision, NoteUpdate, SeverityLabel, SeverityUpdate, VerificationState, WorkflowStatus,
    WorkflowUpdate,
};
use crate::model::CurrentState;

/// The prior values of the fields `applied` sets, as an ASFF fragment, or
/// `None` when the input recorded no state for the finding at all.
pub(crate) fn prior_fragment(applied: &Decision, cur: Option<&CurrentState>) -> Option<Value> {
    let cur = cur?;
    let mut m = Map::new();
    // A full finding document records every field it has, so a missing
    // one was unset; a table of a few columns says nothing about the rest.
    let known_absent = cur.complete;
    let mut put = |name: &str, value: Option<Value>| match value {
        Some(v) => {
            m.insert(name.to_owned(), v);
        }
        None if known_absent => {
            m.insert(name.to_owned(), Value::Null);
        }
        None => {}
    };
    // The new Security Hub's fields, under their request member names.
    if applied.status_id.is_some() {
        put("StatusId", cur.status_id.map(|v| json!(v)));
    }
    if applied.severity_id.is_some() {
        put("SeverityId", cur.severity_id.map(|v| json!(v)));
    }
    if applied.comment.is_some() {
        match &cur.comment {
            Some(c) => put("Comment", Some(json!(c))),
            None if cur.comment_recorded => put("Comment", Some(Value::Null)),
            None => put("Comment", None),
        }
    }
    if applied.workflow.is_some() {
        put(
            "Workflow",
            cur.workflow_status.as_ref().map(|s| json!({ "Status": s })),
        );
    }
    if applied.note.is_some() {
        let note = match (&cur.note_text, &cur.note_updated_by) {
            (Some(t), Some(by)) => Some(json!({ "Text": t, "UpdatedBy": by })),
            (Some(t), None) => Some(json!({ "Text": t })),
            _ => None,
        };
        match note {
            Some(n) => put("Note", Some(n)),
            // The input records the note column: an empty one is no note.
            None if cur.note_recorded => put("Note", Some(Value::Null)),
            None => put("Note", None),
        }
    }
    if applied.severity.is_some() {
        let mut sev = Map::new();
        if let Some(l) = &cur.severity_label {
            sev.insert("Label".into(), json!(l));
        }
        if let Some(n) = cur.severity_normalized {
            sev.insert("Normalized".into(), json!(n));
        }
        put("Severity", (!sev.is_empty()).then_some(Value::Object(sev)));
    }
    if applied.verification_state.is_some() {
        put(
            "VerificationState",
            cur.verification_state.as_ref().map(|v| json!(v)),
        );
    }
    if applied.confidence.is_some() {
        put("Confidence", cur.confidence.map(|v| json!(v)));
    }
    if applied.criticality.is_some() {
        put("Criticality", cur.criticality.map(|v| json!(v)));
    }
    if applied.types.is_some() {
        put("Types", cur.types.as_ref().map(|v| json!(v)));
    }
    if let Some(udf) = &applied.user_defined_fields {
        match &cur.user_defined_fields {
            Some(have) => {
                // A partial map (one column per key) knows only its keys.
                let prior: Map<String, Value> = udf
                    .keys()
                    .filter_map(|k| match have.get(k) {
                        Some(v) => Some((k.clone(), json!(v))),
                        None if cur.user_defined_fields_partial => None,
                        None => Some((k.clone(), Value::Null)),
                    })
                    .collect();
                if !prior.is_empty() {
                    m.insert("UserDefinedFields".into(), Value::Object(prior));
                }
            }
            None => put("UserDefinedFields", None),
        }
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

/// Why a field written by a run stays the customer's after a revert.
pub(crate) const OWNERSHIP_LOST: &str = "ownership cannot be handed back: if the provider owned this \
     field before the run, its later changes to it are still ignored after the revert";

/// What [`restoring`] makes of one results row.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Restore {
    /// The decision that puts back what can be put back (may be empty).
    pub decision: Decision,
    /// What cannot be restored, one phrase per field.
    pub lost: Vec<String>,
}

/// The decision that restores the prior values of what `applied` changed.
pub(crate) fn restoring(applied: &Decision, prior: Option<&Value>) -> Restore {
    let empty = Map::new();
    let prior = prior.and_then(Value::as_object).unwrap_or(&empty);
    let mut r = Restore::default();
    let mut lost = |field: &str, why: &str| r.lost.push(format!("{field}: {why}"));
    let not_recorded = "the input did not record its value before the run";
    // Each member: Some(Some(v)) = a value, Some(None) = known to be unset,
    // None = not known.
    let member = |name: &str| prior.get(name).map(|v| (!v.is_null()).then_some(v));

    if applied.workflow.is_some() {
        match member("Workflow")
            .flatten()
            .and_then(|w| w.get("Status"))
            .and_then(Value::as_str)
            .and_then(WorkflowStatus::from_name)
        {
            Some(status) => r.decision.workflow = Some(WorkflowUpdate { status }),
            None => lost("Workflow.Status", not_recorded),
        }
    }
    if applied.note.is_some() {
        match member("Note") {
            Some(Some(n)) => {
                let text = n.get("Text").and_then(Value::as_str);
                let by = n.get("UpdatedBy").and_then(Value::as_str);
                match (text, by) {
                    (Some(t), Some(by)) if !t.trim().is_empty() => {
                        r.decision.note = Some(NoteUpdate {
                            text: t.to_owned(),
                            updated_by: by.to_owned(),
                        });
                    }
                    _ => lost("Note", "its earlier text or author was not recorded"),
                }
            }
            Some(None) => lost(
                "Note",
                "the finding had no note before the run, and a note cannot be deleted through the API",
            ),
            None => lost("Note", not_recorded),
        }
    }
    if let Some(applied_severity) = &applied.severity {
        let sev = member("Severity").flatten();
        let label = sev
            .and_then(|s| s.get("Label"))
            .and_then(Value::as_str)
            .and_then(SeverityLabel::from_name);
        let normalized = sev
            .and_then(|s| s.get("Normalized"))
            .and_then(Value::as_i64)
            .and_then(|n| i32::try_from(n).ok());
        if label.is_none() && normalized.is_none() {
            lost("Severity", not_recorded);
        } else {
            // Both members as recorded: the label alone would set
            // Normalized to the label's default (e.g. 30 comes back as 1).
            r.decision.severity = Some(SeverityUpdate {
                label,
                normalized,
                ..SeverityUpdate::default()
            });
            if normalized.is_none() {
                lost(
                    "Severity.Normalized",
                    "the input did not record it; the service sets the label's default",
                );
            }
        }
        if applied_severity.product.is_some() {
            lost("Severity.Product", not_recorded);
        }
    }
    if applied.verification_state.is_some() {
        match member("VerificationState") {
            Some(Some(v)) => match v.as_str().and_then(VerificationState::from_name) {
                Some(v) => r.decision.verification_state = Some(v),
                None => lost("VerificationState", not_recorded),
            },
            // Writing UNKNOWN is not "unset": say so, write nothing.
            Some(None) => lost(
                "VerificationState",
                "it was unset before the run, and the API cannot unset it",
            ),
            None => lost("VerificationState", not_recorded),
        }
    }
    // The new Security Hub's fields.
    for (field, applied_value, slot) in [
        ("StatusId", applied.status_id, &mut r.decision.status_id),
        (
            "SeverityId",
            applied.severity_id,
            &mut r.decision.severity_id,
        ),
    ] {
        if applied_value.is_none() {
            continue;
        }
        match member(field).flatten().and_then(Value::as_i64) {
            Some(n) => *slot = i32::try_from(n).ok(),
            None => r.lost.push(format!("{field}: {not_recorded}")),
        }
    }
    if applied.comment.is_some() {
        match member("Comment") {
            Some(Some(c)) => match c.as_str() {
                Some(t) if !t.trim().is_empty() => r.decision.comment = Some(t.to_owned()),
                _ => r.lost.push(format!("Comment: {not_recorded}")),
            },
            Some(None) => r.lost.push(
                "Comment: the finding had no comment before the run, and a comment cannot be \
                 cleared through the API"
                    .into(),
            ),
            None => r.lost.push(format!("Comment: {not_recorded}")),
        }
    }
    for (field, applied_value, slot) in [
        ("Confidence", applied.confidence, &mut r.decision.confidence),
        (
            "Criticality",
            applied.criticality,
            &mut r.decision.criticality,
        ),
    ] {
        if applied_value.is_none() {
            continue;
        }
        match member(field) {
            Some(Some(v)) => match v.as_i64().and_then(|n| i32::try_from(n).ok()) {
                Some(n) => *slot = Some(n),
                None => r.lost.push(format!("{field}: {not_recorded}")),
            },
            Some(None) => r.lost.push(format!(
                "{field}: it was unset before the run, and the API cannot unset it"
            )),
            None => r.lost.push(format!("{field}: {not_recorded}")),
        }
    }
    if applied.types.is_some() {
        match member("Types") {
            Some(Some(v)) => match serde_json::from_value::<Vec<String>>(v.clone()) {
                Ok(list) if !list.is_empty() => r.decision.types = Some(list),
                _ => r.lost.push(
                    "Types: the finding had no types before the run, and the API cannot empty them"
                        .into(),
                ),
            },
            Some(None) => r.lost.push(
                "Types: the finding had no types before the run, and the API cannot empty them"
                    .into(),
            ),
            None => r.lost.push(format!("Types: {not_recorded}")),
        }
    }
    if let Some(udf) = &applied.user_defined_fields {
        let had = member("UserDefinedFields");
        let mut restore = BTreeMap::new();
        for key in udf.keys() {
            match had {
                Some(Some(map)) => match map.get(key) {
                    Some(Value::String(v)) => {
                        restore.insert(key.clone(), v.clone());
                    }
                    // `null`: known not to be there; missing: not known.
                    Some(Value::Null) if map.is_object() => r.lost.push(format!(
                        "UserDefinedFields.{key}: the key was added by the run, and a key cannot be removed \
                         through the API"
                    )),
                    _ => r.lost.push(format!("UserDefinedFields.{key}: {not_recorded}")),
                },
                Some(None) => r.lost.push(format!(
                    "UserDefinedFields.{key}: the key was added by the run, and a key cannot be removed \
                     through the API"
                )),
                None => r
                    .lost
                    .push(format!("UserDefinedFields.{key}: {not_recorded}")),
            }
        }
        if !restore.is_empty() {
            r.decision.user_defined_fields = Some(restore);
        }
    }
    // Fields the provider owns until a customer writes them (reference
    // §5): after the run they are customer-owned, and writing the old value
    // back does not hand them back.
    for (field, set) in [
        ("Severity", applied.severity.is_some()),
        ("Confidence", applied.confidence.is_some()),
        ("Criticality", applied.criticality.is_some()),
        ("Types", applied.types.is_some()),
    ] {
        if set {
            r.lost.push(format!("{field}: {OWNERSHIP_LOST}"));
        }
    }
    if applied.related_findings.is_some() {
        r.lost.push(
            "RelatedFindings: earlier related findings are not recorded, and the list cannot be emptied".into(),
        );
    }
    r
}

/// The state a finding is in after `applied` was applied: what a revert
/// records as its own prior values (so that a revert can be reverted).
pub(crate) fn state_after(applied: &Decision) -> CurrentState {
    CurrentState {
        workflow_status: applied
            .workflow
            .as_ref()
            .map(|w| w.status.as_str().to_owned()),
        note_text: applied.note.as_ref().map(|n| n.text.clone()),
        note_updated_by: applied.note.as_ref().map(|n| n.updated_by.clone()),
        note_recorded: applied.note.is_some(),
        severity_label: applied.severity.as_ref().and_then(|s| {
            s.label
                .or_else(|| s.normalized.and_then(SeverityLabel::from_normalized))
                .map(|l| l.as_str().to_owned())
        }),
        severity_normalized: applied.severity.as_ref().and_then(|s| s.normalized),
        verification_state: applied.verification_state.map(|v| v.as_str().to_owned()),
        confidence: applied.confidence,
        criticality: applied.criticality,
        types: applied.types.clone(),
        user_defined_fields: applied.user_defined_fields.clone(),
        status_id: applied.status_id,
        severity_id: applied.severity_id,
        comment: applied.comment.clone(),
        comment_recorded: applied.comment.is_some(),
        ..CurrentState::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{DecisionField, parse_flag};

    fn decision(parts: &[(DecisionField, &str)]) -> Decision {
        let mut d = Decision::default();
        for (f, v) in parts {
            d.merge_from(parse_flag(*f, &[v.to_string()]).unwrap());
        }
        d
    }

    #[test]
    fn a_v2_campaign_is_restored_from_its_prior_values_but_a_comment_cannot_be_cleared() {
        let applied = decision(&[
            (DecisionField::StatusId, "3"),
            (DecisionField::Comment, "campaign q4"),
        ]);
        let prior: Value =
            serde_json::from_str(r#"{"StatusId":1,"Comment":"seen by bob"}"#).unwrap();
        let r = restoring(&applied, Some(&prior));
        assert_eq!(r.decision.status_id, Some(1));
        assert_eq!(r.decision.comment.as_deref(), Some("seen by bob"));
        assert!(r.lost.is_empty(), "{:?}", r.lost);
        let prior: Value = serde_json::from_str(r#"{"StatusId":2,"Comment":null}"#).unwrap();
        let r = restoring(&applied, Some(&prior));
        assert_eq!(r.decision.status_id, Some(2));
        assert_eq!(r.decision.comment, None);
        assert_eq!(r.lost.len(), 1);
        assert!(r.lost[0].contains("cannot be cleared"), "{:?}", r.lost);
        // Prior values recorded at the run: the round trip.
        let cur = CurrentState {
            status_id: Some(1),
            comment_recorded: true,
            complete: true,
            ..CurrentState::default()
        };
        let fragment = prior_fragment(&applied, Some(&cur)).unwrap();
        assert_eq!(
            fragment,
            serde_json::json!({"StatusId": 1, "Comment": null})
        );
        let after = state_after(&applied);
        assert_eq!(
            (after.status_id, after.comment.as_deref()),
            (Some(3), Some("campaign q4"))
        );
    }

    fn campaign() -> Decision {
        decision(&[
            (DecisionField::Workflow, "Status=SUPPRESSED"),
            (DecisionField::Note, "Text=accepted,UpdatedBy=campaign-7"),
            (DecisionField::Severity, "Label=LOW"),
            (DecisionField::UserDefinedFields, "run=campaign-7,owner=bob"),
        ])
    }

    fn exported() -> CurrentState {
        CurrentState {
            workflow_status: Some("NEW".into()),
            note_text: Some("JIRA-12".into()),
            note_updated_by: Some("alice".into()),
            note_recorded: true,
            severity_label: Some("HIGH".into()),
            user_defined_fields: Some([("owner".to_owned(), "alice".to_owned())].into()),
            ..CurrentState::default()
        }
    }

    #[test]
    fn restores_what_the_export_recorded() {
        let applied = campaign();
        let prior = prior_fragment(&applied, Some(&exported())).unwrap();
        assert_eq!(
            prior,
            json!({
                "Workflow": {"Status": "NEW"},
                "Note": {"Text": "JIRA-12", "UpdatedBy": "alice"},
                "Severity": {"Label": "HIGH"},
                "UserDefinedFields": {"run": null, "owner": "alice"}
            })
        );
        let r = restoring(&applied, Some(&prior));
        assert_eq!(r.decision.workflow.unwrap().status, WorkflowStatus::New);
        assert_eq!(r.decision.note.unwrap().text, "JIRA-12");
        assert_eq!(
            r.decision.severity.unwrap().label,
            Some(SeverityLabel::High)
        );
        assert_eq!(
            r.decision.user_defined_fields.unwrap(),
            BTreeMap::from([("owner".to_owned(), "alice".to_owned())])
        );
        // The key the run added, the normalized severity the export did not
        // record, and Severity's ownership: each reported.
        assert_eq!(r.lost.len(), 3, "{:?}", r.lost);
        assert!(
            r.lost
                .iter()
                .any(|l| l.starts_with("UserDefinedFields.run: the key was added"))
        );
        assert!(
            r.lost
                .iter()
                .any(|l| l.starts_with("Severity.Normalized: the input did not record"))
        );
        assert!(
            r.lost
                .iter()
                .any(|l| l.starts_with("Severity: ownership cannot be handed back"))
        );
    }

    #[test]
    fn a_note_where_there_was_none_is_reported() {
        let applied = campaign();
        let mut cur = exported();
        cur.note_text = None;
        cur.note_updated_by = None;
        let prior = prior_fragment(&applied, Some(&cur)).unwrap();
        assert_eq!(prior["Note"], Value::Null);
        let r = restoring(&applied, Some(&prior));
        assert!(r.decision.note.is_none());
        assert!(
            r.lost
                .iter()
                .any(|l| l.starts_with("Note: the finding had no note")),
            "{:?}",
            r.lost
        );
    }

    #[test]
    fn unknown_prior_values_are_not_guessed() {
        let applied = campaign();
        // A CSV with only an account column: nothing known.
        let cur = CurrentState {
            account_id: Some("1".into()),
            ..CurrentState::default()
        };
        assert_eq!(prior_fragment(&applied, Some(&cur)), None);
        assert_eq!(prior_fragment(&applied, None), None);
        let r = restoring(&applied, None);
        assert!(r.decision.is_empty());
        // Five values not recorded, and Severity's ownership.
        assert_eq!(r.lost.len(), 6, "{:?}", r.lost);
    }

    #[test]
    fn severity_normalized_and_unset_verification_state_are_exact() {
        let applied = decision(&[
            (DecisionField::Severity, "Label=LOW"),
            (DecisionField::VerificationState, "BENIGN_POSITIVE"),
        ]);
        let cur = CurrentState {
            severity_label: Some("LOW".into()),
            severity_normalized: Some(30),
            complete: true,
            ..CurrentState::default()
        };
        let prior = prior_fragment(&applied, Some(&cur)).unwrap();
        assert_eq!(
            prior,
            json!({"Severity": {"Label": "LOW", "Normalized": 30}, "VerificationState": null})
        );
        let r = restoring(&applied, Some(&prior));
        let sev = r.decision.severity.as_ref().unwrap();
        assert_eq!(
            (sev.label, sev.normalized),
            (Some(SeverityLabel::Low), Some(30))
        );
        assert!(
            r.decision.verification_state.is_none(),
            "never UNKNOWN for unset"
        );
        assert!(
            r.lost
                .iter()
                .any(|l| l.starts_with("VerificationState: it was unset")),
            "{:?}",
            r.lost
        );
        assert!(r.lost.iter().any(|l| l.starts_with("Severity: ownership")));
    }

    #[test]
    fn a_partial_user_defined_fields_map_knows_only_its_keys() {
        let applied = decision(&[(DecisionField::UserDefinedFields, "Owner=bob,Ticket=T-2")]);
        let cur = CurrentState {
            user_defined_fields: Some([("Owner".to_owned(), "alice".to_owned())].into()),
            user_defined_fields_partial: true,
            ..CurrentState::default()
        };
        let prior = prior_fragment(&applied, Some(&cur)).unwrap();
        assert_eq!(prior, json!({"UserDefinedFields": {"Owner": "alice"}}));
        let r = restoring(&applied, Some(&prior));
        assert_eq!(r.decision.user_defined_fields.unwrap()["Owner"], "alice");
        assert!(
            r.lost
                .iter()
                .any(|l| l.starts_with("UserDefinedFields.Ticket: the input did not record")),
            "{:?}",
            r.lost
        );
    }

    #[test]
    fn a_revert_of_a_revert_is_the_campaign() {
        let applied = campaign();
        let prior = prior_fragment(&applied, Some(&exported())).unwrap();
        let undo = restoring(&applied, Some(&prior)).decision;
        // The revert run's own prior values are the campaign's.
        let again = prior_fragment(&undo, Some(&state_after(&applied))).unwrap();
        let redo = restoring(&undo, Some(&again)).decision;
        let mut expected = applied.clone();
        // Only the user-defined key that existed before comes back.
        expected.user_defined_fields = Some(BTreeMap::from([("owner".into(), "bob".into())]));
        assert_eq!(redo, expected);
    }
}
