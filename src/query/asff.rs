//! A queried finding as an ASFF document: every field the tool reads back
//! as recorded state (the nine updatable fields, the workflow, the
//! identifiers) and the context people review (title, resources,
//! compliance, dates). Fields the finding does not have are left out, so a
//! reader of the document knows they are unset, as with an export.

use aws_sdk_securityhub::types::AwsSecurityFinding;
use serde_json::{Map, Value, json};

/// The finding as an ASFF JSON object.
pub(crate) fn to_json(f: &AwsSecurityFinding) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.to_owned(), v);
        }
    };
    let s = |v: Option<&str>| v.map(|s| Value::String(s.to_owned()));
    put("SchemaVersion", s(f.schema_version()));
    put("Id", s(f.id()));
    put("ProductArn", s(f.product_arn()));
    put("ProductName", s(f.product_name()));
    put("CompanyName", s(f.company_name()));
    put("Region", s(f.region()));
    put("GeneratorId", s(f.generator_id()));
    put("AwsAccountId", s(f.aws_account_id()));
    put("Types", (!f.types().is_empty()).then(|| json!(f.types())));
    put("FirstObservedAt", s(f.first_observed_at()));
    put("LastObservedAt", s(f.last_observed_at()));
    put("CreatedAt", s(f.created_at()));
    put("UpdatedAt", s(f.updated_at()));
    put(
        "Severity",
        f.severity().map(|sev| {
            let mut o = Map::new();
            if let Some(l) = sev.label() {
                o.insert("Label".into(), json!(l.as_str()));
            }
            if let Some(n) = sev.normalized() {
                o.insert("Normalized".into(), json!(n));
            }
            if let Some(x) = sev.original() {
                o.insert("Original".into(), json!(x));
            }
            Value::Object(o)
        }),
    );
    put("Confidence", f.confidence().map(|c| json!(c)));
    put("Criticality", f.criticality().map(|c| json!(c)));
    put("Title", s(f.title()));
    put("Description", s(f.description()));
    put(
        "UserDefinedFields",
        f.user_defined_fields().map(|u| {
            let sorted: std::collections::BTreeMap<_, _> = u.iter().collect();
            json!(sorted)
        }),
    );
    put(
        "Resources",
        (!f.resources().is_empty()).then(|| {
            Value::Array(
                f.resources()
                    .iter()
                    .map(|r| {
                        let mut o = Map::new();
                        if let Some(t) = r.r#type() {
                            o.insert("Type".into(), json!(t));
                        }
                        if let Some(i) = r.id() {
                            o.insert("Id".into(), json!(i));
                        }
                        if let Some(p) = r.partition() {
                            o.insert("Partition".into(), json!(p.as_str()));
                        }
                        if let Some(g) = r.region() {
                            o.insert("Region".into(), json!(g));
                        }
                        Value::Object(o)
                    })
                    .collect(),
            )
        }),
    );
    put(
        "Compliance",
        f.compliance().and_then(|c| {
            let mut o = Map::new();
            if let Some(st) = c.status() {
                o.insert("Status".into(), json!(st.as_str()));
            }
            if let Some(id) = c.security_control_id() {
                o.insert("SecurityControlId".into(), json!(id));
            }
            (!o.is_empty()).then_some(Value::Object(o))
        }),
    );
    put(
        "VerificationState",
        f.verification_state().map(|v| json!(v.as_str())),
    );
    put(
        "WorkflowState",
        f.workflow_state().map(|v| json!(v.as_str())),
    );
    put(
        "Workflow",
        f.workflow()
            .and_then(|w| w.status())
            .map(|st| json!({"Status": st.as_str()})),
    );
    put("RecordState", f.record_state().map(|v| json!(v.as_str())));
    put(
        "RelatedFindings",
        (!f.related_findings().is_empty()).then(|| {
            Value::Array(
                f.related_findings()
                    .iter()
                    .map(|r| json!({"ProductArn": r.product_arn(), "Id": r.id()}))
                    .collect(),
            )
        }),
    );
    put(
        "Note",
        f.note().map(
            |n| json!({"Text": n.text(), "UpdatedBy": n.updated_by(), "UpdatedAt": n.updated_at()}),
        ),
    );
    Value::Object(m)
}
