//! The `recorded_state` of a `--failed` file: the state a record came with,
//! written as an ASFF fragment so that the file fed back carries it exactly
//! (and a later run on it can still be reverted).
//!
//! The fragment follows the results' `prior` convention: a member with a
//! value is what the input recorded, a member set to `null` says the finding
//! had none, a missing member was not recorded. Members: `Workflow`
//! (`{"Status":...}`), `Note` (`{"Text":...,"UpdatedBy":...}`), `Severity`
//! (`{"Label":...,"Normalized":...}`), `VerificationState`, `Confidence`,
//! `Criticality`, `Types`, `UserDefinedFields` (the whole map), and the
//! context `AwsAccountId`, `Compliance` (`{"Status":...}`), `GeneratorId`,
//! `RecordState`, `UpdatedAt`; the new Security Hub's state under the
//! `BatchUpdateFindingsV2` names, `StatusId`, `SeverityId` and `Comment`
//! (`null`: recorded, none), and `MetadataUid` (the finding's V2 name when
//! it has no account). Any of the first three marks the state as OCSF's. Two dotted members say what a table of a
//! few columns knew: `UserDefinedFields.<key>` (only that key is known, the
//! rest of the map is not) and `Note.UpdatedBy` (the author is known, the
//! text is not). A fragment with all eight updatable members is a whole
//! finding's state (a field it sets to `null` is unset on the finding).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::model::CurrentState;

/// The updatable members a whole finding's state always has.
const WHOLE: [&str; 8] = [
    "Workflow",
    "Note",
    "Severity",
    "VerificationState",
    "Confidence",
    "Criticality",
    "Types",
    "UserDefinedFields",
];

/// `cur` as an ASFF fragment (see the module's documentation).
pub(crate) fn to_json(cur: &CurrentState) -> Value {
    let mut m = Map::new();
    let whole = cur.complete;
    let put = |m: &mut Map<String, Value>, name: &str, v: Option<Value>| match v {
        Some(v) => {
            m.insert(name.to_owned(), v);
        }
        None if whole => {
            m.insert(name.to_owned(), Value::Null);
        }
        None => {}
    };
    put(
        &mut m,
        "Workflow",
        cur.workflow_status.as_ref().map(|s| json!({ "Status": s })),
    );
    match (&cur.note_text, &cur.note_updated_by) {
        (Some(t), Some(by)) => put(&mut m, "Note", Some(json!({ "Text": t, "UpdatedBy": by }))),
        (Some(t), None) => put(&mut m, "Note", Some(json!({ "Text": t }))),
        (None, _) if cur.note_recorded || whole => {
            m.insert("Note".into(), Value::Null);
        }
        (None, Some(by)) => {
            m.insert("Note.UpdatedBy".into(), json!(by));
        }
        (None, None) => {}
    }
    let mut sev = Map::new();
    if let Some(l) = &cur.severity_label {
        sev.insert("Label".into(), json!(l));
    }
    if let Some(n) = cur.severity_normalized {
        sev.insert("Normalized".into(), json!(n));
    }
    put(
        &mut m,
        "Severity",
        (!sev.is_empty()).then_some(Value::Object(sev)),
    );
    put(
        &mut m,
        "VerificationState",
        cur.verification_state.as_ref().map(|v| json!(v)),
    );
    put(&mut m, "Confidence", cur.confidence.map(|v| json!(v)));
    put(&mut m, "Criticality", cur.criticality.map(|v| json!(v)));
    put(&mut m, "Types", cur.types.as_ref().map(|v| json!(v)));
    match &cur.user_defined_fields {
        Some(map) if cur.user_defined_fields_partial && !whole => {
            for (k, v) in map {
                m.insert(format!("UserDefinedFields.{k}"), json!(v));
            }
        }
        other => put(
            &mut m,
            "UserDefinedFields",
            other.as_ref().map(|v| json!(v)),
        ),
    }
    let mut context = |name: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(name.to_owned(), v);
        }
    };
    context("AwsAccountId", cur.account_id.as_ref().map(|v| json!(v)));
    context(
        "Compliance",
        cur.compliance_status
            .as_ref()
            .map(|s| json!({ "Status": s })),
    );
    context("GeneratorId", cur.generator_id.as_ref().map(|v| json!(v)));
    context("RecordState", cur.record_state.as_ref().map(|v| json!(v)));
    // The new Security Hub's state (OCSF), under the BatchUpdateFindingsV2
    // names, and the finding's `metadata.uid` when it is its V2 name.
    context("StatusId", cur.status_id.map(|v| json!(v)));
    context("SeverityId", cur.severity_id.map(|v| json!(v)));
    match &cur.comment {
        Some(c) => context("Comment", Some(json!(c))),
        None if cur.comment_recorded => context("Comment", Some(Value::Null)),
        None => {}
    }
    context("MetadataUid", cur.metadata_uid.as_ref().map(|v| json!(v)));
    context(
        "UpdatedAt",
        cur.modified_ms.and_then(|ms| {
            let t = std::time::UNIX_EPOCH
                .checked_add(std::time::Duration::from_millis(u64::try_from(ms).ok()?))?;
            Some(json!(humantime::format_rfc3339_millis(t).to_string()))
        }),
    );
    Value::Object(m)
}

/// The state an ASFF fragment written by [`to_json`] records; `None` when
/// `v` is no object or records nothing. A member of an unexpected shape is
/// not known (it never makes the record invalid).
pub(crate) fn from_json(v: &Value) -> Option<CurrentState> {
    let m = v.as_object()?;
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let pct = |v: &Value| {
        v.as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .filter(|n| (0..=100).contains(n))
    };
    let status = |v: &Value| v.get("Status").and_then(Value::as_str).map(str::to_owned);
    let mut cur = CurrentState {
        complete: WHOLE.iter().all(|k| m.contains_key(*k)),
        ..CurrentState::default()
    };
    for (name, v) in m {
        match name.as_str() {
            "Workflow" => cur.workflow_status = status(v),
            "Note" => {
                cur.note_recorded = v.is_null() || v.is_object();
                cur.note_text = v.get("Text").and_then(text);
                cur.note_updated_by = v.get("UpdatedBy").and_then(text);
            }
            "Note.UpdatedBy" if !m.contains_key("Note") => cur.note_updated_by = text(v),
            "Severity" => {
                cur.severity_label = v.get("Label").and_then(text);
                cur.severity_normalized = v.get("Normalized").and_then(pct);
            }
            "VerificationState" => cur.verification_state = text(v),
            "Confidence" => cur.confidence = pct(v),
            "Criticality" => cur.criticality = pct(v),
            "Types" => cur.types = serde_json::from_value(v.clone()).ok(),
            "UserDefinedFields" => {
                cur.user_defined_fields =
                    serde_json::from_value::<BTreeMap<String, String>>(v.clone()).ok();
            }
            "AwsAccountId" => cur.account_id = text(v),
            "Compliance" => cur.compliance_status = status(v),
            "GeneratorId" => cur.generator_id = text(v),
            "RecordState" => cur.record_state = text(v),
            "StatusId" => {
                cur.status_id = v.as_i64().and_then(|n| i32::try_from(n).ok());
                cur.ocsf = true;
            }
            "SeverityId" => {
                cur.severity_id = v.as_i64().and_then(|n| i32::try_from(n).ok());
                cur.ocsf = true;
            }
            "Comment" => {
                cur.comment_recorded = v.is_null() || v.is_string();
                cur.comment = text(v);
                cur.ocsf = true;
            }
            "MetadataUid" => cur.metadata_uid = text(v),
            "UpdatedAt" => {
                cur.modified_ms = v.as_str().and_then(|s| {
                    let t = humantime::parse_rfc3339_weak(s.trim_end_matches('Z')).ok()?;
                    let ms = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
                    i64::try_from(ms).ok()
                });
            }
            other => {
                if let Some(key) = other.strip_prefix("UserDefinedFields.")
                    && !m.contains_key("UserDefinedFields")
                    && let Some(value) = text(v)
                {
                    cur.user_defined_fields
                        .get_or_insert_default()
                        .insert(key.to_owned(), value);
                    cur.user_defined_fields_partial = true;
                }
            }
        }
    }
    (cur != CurrentState::default()).then_some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(cur: &CurrentState) -> Option<CurrentState> {
        let text = to_json(cur).to_string();
        from_json(&serde_json::from_str(&text).unwrap())
    }

    #[test]
    fn a_whole_findings_state_comes_back_whole() {
        let cur = CurrentState {
            workflow_status: Some("NEW".into()),
            note_text: Some("old, \"quoted\"\nnote".into()),
            note_updated_by: Some("alice".into()),
            note_recorded: true,
            severity_label: Some("HIGH".into()),
            severity_normalized: Some(70),
            types: Some(vec!["Software and Configuration Checks/x".into()]),
            user_defined_fields: Some(BTreeMap::from([("Owner".into(), "bob".into())])),
            complete: true,
            modified_ms: Some(1_700_000_000_123),
            account_id: Some("123456789012".into()),
            compliance_status: Some("FAILED".into()),
            generator_id: Some("security-control/S3.1".into()),
            record_state: Some("ACTIVE".into()),
            ..CurrentState::default()
        };
        let v = to_json(&cur);
        // Unset fields of a whole finding are written as null.
        assert_eq!(v["Confidence"], Value::Null);
        assert!(v.as_object().unwrap().contains_key("Confidence"));
        assert_eq!(round_trip(&cur), Some(cur));
    }

    #[test]
    fn what_a_table_did_not_record_stays_unknown() {
        // Only a workflow column and one user-defined field column.
        let cur = CurrentState {
            workflow_status: Some("NOTIFIED".into()),
            user_defined_fields: Some(BTreeMap::from([("Ticket".into(), "T-1".into())])),
            user_defined_fields_partial: true,
            ..CurrentState::default()
        };
        let v = to_json(&cur);
        assert_eq!(
            v,
            json!({"Workflow": {"Status": "NOTIFIED"}, "UserDefinedFields.Ticket": "T-1"})
        );
        assert_eq!(round_trip(&cur), Some(cur));
        // A note column that was empty: the finding has no note.
        let no_note = CurrentState {
            note_recorded: true,
            ..CurrentState::default()
        };
        assert_eq!(to_json(&no_note), json!({"Note": null}));
        assert_eq!(round_trip(&no_note), Some(no_note));
        // Only the author known.
        let by = CurrentState {
            note_updated_by: Some("x".into()),
            ..CurrentState::default()
        };
        assert_eq!(round_trip(&by), Some(by));
        assert_eq!(round_trip(&CurrentState::default()), None);
    }

    #[test]
    fn the_new_security_hubs_state_comes_back() {
        let cur = CurrentState {
            status_id: Some(2),
            severity_id: Some(4),
            comment: Some("seen, \"quoted\"".into()),
            comment_recorded: true,
            account_id: Some("123456789012".into()),
            ocsf: true,
            ..CurrentState::default()
        };
        let v = to_json(&cur);
        assert_eq!(
            v,
            json!({"StatusId": 2, "SeverityId": 4, "Comment": "seen, \"quoted\"",
                   "AwsAccountId": "123456789012"})
        );
        assert_eq!(round_trip(&cur), Some(cur));
        // No comment, recorded as such; a metadata.uid name.
        let none = CurrentState {
            status_id: Some(1),
            comment_recorded: true,
            metadata_uid: Some("meta-1".into()),
            ocsf: true,
            ..CurrentState::default()
        };
        assert_eq!(
            to_json(&none),
            json!({"StatusId": 1, "Comment": null, "MetadataUid": "meta-1"})
        );
        assert_eq!(round_trip(&none), Some(none));
    }

    #[test]
    fn members_of_other_shapes_are_not_known() {
        let v = json!({"Workflow": "NEW", "Confidence": "high", "Severity": {"Label": "LOW"}});
        let cur = from_json(&v).unwrap();
        assert_eq!(cur.workflow_status, None);
        assert_eq!(cur.confidence, None);
        assert_eq!(cur.severity_label.as_deref(), Some("LOW"));
        assert_eq!(from_json(&json!([1, 2])), None);
    }
}
