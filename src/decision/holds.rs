//! Comparisons between a decision and a finding's recorded state (the
//! export's columns): whether the finding already holds what the decision
//! sets (`--skip-unchanged`, the plan's "already holds" count).

use super::Decision;
use crate::model::CurrentState;

/// Whether the recorded state already holds every field the decision sets.
/// A field the export did not record counts as "not known to hold".
#[cfg(test)]
pub(crate) fn decision_holds(d: &Decision, cur: &CurrentState) -> bool {
    decision_holds_but(d, cur, None)
}

/// [`decision_holds`], not counting the `UserDefinedFields` key `ignore`
/// (the run tag: a finding already in the requested state is not sent
/// just to be tagged).
pub(crate) fn decision_holds_but(d: &Decision, cur: &CurrentState, ignore: Option<&str>) -> bool {
    fn eq<T: PartialEq>(want: Option<T>, have: Option<T>) -> bool {
        want.is_none() || (have.is_some() && want == have)
    }
    let note_holds = d.note.as_ref().is_none_or(|n| {
        cur.note_text.as_deref() == Some(n.text.as_str())
            && cur.note_updated_by.as_deref() == Some(n.updated_by.as_str())
    });
    let severity_holds = d.severity.as_ref().is_none_or(|s| {
        let label = s
            .label
            .or_else(|| s.normalized.and_then(super::SeverityLabel::from_normalized));
        s.product.is_none()
            && label.is_some()
            && cur.severity_label.as_deref() == label.map(|l| l.as_str())
    });
    let udf_holds = d.user_defined_fields.as_ref().is_none_or(|want| {
        let mut wanted = want
            .iter()
            .filter(|(k, _)| Some(k.as_str()) != ignore)
            .peekable();
        if !want.is_empty() && wanted.peek().is_none() {
            // Only the ignored key.
            return true;
        }
        cur.user_defined_fields
            .as_ref()
            .is_some_and(|have| wanted.all(|(k, v)| have.get(k) == Some(v)))
    });
    // The new Security Hub's fields: only against OCSF state.
    let comment_holds = d
        .comment
        .as_ref()
        .is_none_or(|c| cur.comment.as_ref() == Some(c));
    note_holds
        && comment_holds
        && eq(d.status_id, cur.status_id)
        && eq(d.severity_id, cur.severity_id)
        && severity_holds
        && udf_holds
        && eq(
            d.workflow.as_ref().map(|w| w.status.as_str()),
            cur.workflow_status.as_deref(),
        )
        && eq(d.verification_state.map(|v| v.as_str()), cur.verification_state.as_deref())
        && eq(d.confidence, cur.confidence)
        && eq(d.criticality, cur.criticality)
        && eq(d.types.as_ref(), cur.types.as_ref())
        // The export never records RelatedFindings in a comparable form.
        && d.related_findings.is_none()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::decision::{DecisionField, parse_flag};

    fn decision(flag: DecisionField, v: &str) -> Arc<Decision> {
        Arc::new(parse_flag(flag, &[v.to_owned()]).unwrap())
    }

    #[test]
    fn unchanged_means_every_set_field_is_recorded_equal() {
        let d = {
            let mut d = (*decision(DecisionField::Workflow, "Status=SUPPRESSED")).clone();
            d.merge_from((*decision(DecisionField::Note, "Text=known,UpdatedBy=secops")).clone());
            d
        };
        let mut cur = CurrentState {
            workflow_status: Some("SUPPRESSED".into()),
            note_text: Some("known".into()),
            note_updated_by: Some("secops".into()),
            ..CurrentState::default()
        };
        assert!(decision_holds(&d, &cur));
        cur.note_updated_by = Some("someone-else".into());
        assert!(
            !decision_holds(&d, &cur),
            "a note by someone else is a change"
        );
        cur.note_updated_by = Some("secops".into());
        cur.workflow_status = Some("NEW".into());
        assert!(!decision_holds(&d, &cur));
        // A field the export did not record is not known to hold.
        cur.workflow_status = None;
        assert!(!decision_holds(&d, &cur));
        let conf = decision(DecisionField::Confidence, "80");
        assert!(!decision_holds(&conf, &CurrentState::default()));
        assert!(decision_holds(
            &conf,
            &CurrentState {
                confidence: Some(80),
                ..CurrentState::default()
            }
        ));
        let sev = decision(DecisionField::Severity, "Normalized=75");
        let high = CurrentState {
            severity_label: Some("HIGH".into()),
            ..CurrentState::default()
        };
        assert!(decision_holds(&sev, &high), "Normalized 75 is HIGH");
    }
}
