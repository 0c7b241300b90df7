//! Setting a [`Decision`] on an SDK `BatchUpdateFindings` request.
//!
//! Only builds the request; the caller adds the identifiers and sends it.

use std::collections::HashMap;

use aws_sdk_securityhub::operation::batch_update_findings::builders::BatchUpdateFindingsFluentBuilder;
use aws_sdk_securityhub::types as sdk;

use super::{Decision, SeverityLabel, VerificationState, WorkflowStatus};

pub(crate) fn apply(
    d: &Decision,
    mut b: BatchUpdateFindingsFluentBuilder,
) -> BatchUpdateFindingsFluentBuilder {
    if let Some(note) = &d.note {
        b = b.note(
            sdk::NoteUpdate::builder()
                .text(&note.text)
                .updated_by(&note.updated_by)
                .build(),
        );
    }
    if let Some(severity) = &d.severity {
        b = b.severity(
            sdk::SeverityUpdate::builder()
                .set_label(severity.label.map(severity_label))
                .set_normalized(severity.normalized)
                .set_product(severity.product.map(|p| p.get()))
                .build(),
        );
    }
    if let Some(state) = d.verification_state {
        b = b.verification_state(verification_state(state));
    }
    if let Some(confidence) = d.confidence {
        b = b.confidence(confidence);
    }
    if let Some(criticality) = d.criticality {
        b = b.criticality(criticality);
    }
    if let Some(types) = &d.types {
        b = b.set_types(Some(types.clone()));
    }
    if let Some(fields) = &d.user_defined_fields {
        let map: HashMap<String, String> =
            fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        b = b.set_user_defined_fields(Some(map));
    }
    if let Some(workflow) = &d.workflow {
        b = b.workflow(
            sdk::WorkflowUpdate::builder()
                .status(workflow_status(workflow.status))
                .build(),
        );
    }
    if let Some(related) = &d.related_findings {
        b = b.set_related_findings(Some(
            related
                .iter()
                .map(|k| {
                    sdk::RelatedFinding::builder()
                        .id(&k.id)
                        .product_arn(&k.product_arn)
                        .build()
                })
                .collect(),
        ));
    }
    b
}

fn severity_label(l: SeverityLabel) -> sdk::SeverityLabel {
    match l {
        SeverityLabel::Informational => sdk::SeverityLabel::Informational,
        SeverityLabel::Low => sdk::SeverityLabel::Low,
        SeverityLabel::Medium => sdk::SeverityLabel::Medium,
        SeverityLabel::High => sdk::SeverityLabel::High,
        SeverityLabel::Critical => sdk::SeverityLabel::Critical,
    }
}

fn verification_state(v: VerificationState) -> sdk::VerificationState {
    match v {
        VerificationState::Unknown => sdk::VerificationState::UnknownValue,
        VerificationState::TruePositive => sdk::VerificationState::TruePositive,
        VerificationState::FalsePositive => sdk::VerificationState::FalsePositive,
        VerificationState::BenignPositive => sdk::VerificationState::BenignPositive,
    }
}

fn workflow_status(s: WorkflowStatus) -> sdk::WorkflowStatus {
    match s {
        WorkflowStatus::New => sdk::WorkflowStatus::New,
        WorkflowStatus::Notified => sdk::WorkflowStatus::Notified,
        WorkflowStatus::Resolved => sdk::WorkflowStatus::Resolved,
        WorkflowStatus::Suppressed => sdk::WorkflowStatus::Suppressed,
    }
}
