//! OCSF finding documents as the new Security Hub stores them: the
//! `status_id`/`severity_id` enums and their string siblings, the typed
//! record the store keeps for identifiers, filters and updates, and the
//! mapping of an ASFF finding to its OCSF form (used by the synthetic
//! generator; it follows what AWS's Automated Security Response assumes:
//! `finding_info.uid` = ASFF `Id`, `metadata.product.uid` = the `ProductArn`
//! with `::product/` replaced by `::productv2/`, docs/service-facts.md §7.1).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::emulator::rng::SplitMix64;

/// `status_id` values and their names (schema.ocsf.io, docs/service-facts.md §7.1).
pub(crate) const STATUS: &[(i64, &str)] = &[
    (0, "Unknown"),
    (1, "New"),
    (2, "In Progress"),
    (3, "Suppressed"),
    (4, "Resolved"),
    (5, "Archived"),
    (99, "Other"),
];

/// `severity_id` values and their names.
pub(crate) const SEVERITY: &[(i64, &str)] = &[
    (0, "Unknown"),
    (1, "Informational"),
    (2, "Low"),
    (3, "Medium"),
    (4, "High"),
    (5, "Critical"),
    (6, "Fatal"),
    (99, "Other"),
];

pub(crate) fn name_of(table: &[(i64, &'static str)], id: i64) -> Option<&'static str> {
    table.iter().find(|(i, _)| *i == id).map(|(_, n)| *n)
}

pub(crate) fn allowed(table: &[(i64, &str)]) -> String {
    table
        .iter()
        .map(|(i, _)| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `{cloud.account.uid, finding_info.uid, metadata.product.uid}`, as the
/// API's `OcsfFindingIdentifier`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OcsfTriple {
    /// `cloud.account.uid`.
    pub cloud_account_uid: String,
    /// `finding_info.uid`.
    pub finding_info_uid: String,
    /// `metadata.product.uid`.
    pub metadata_product_uid: String,
}

/// What the store knows about a finding without parsing its document:
/// identifiers, the fields filters read, and the three triage fields
/// (current values: seeded, then whatever `BatchUpdateFindingsV2` set).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Record {
    pub metadata_uid: String,
    pub triple: OcsfTriple,
    pub region: String,
    pub(crate) product_name: Option<String>,
    pub title: Option<String>,
    pub compliance_status: Option<String>,
    pub(crate) compliance_control: Option<String>,
    pub status_id: Option<i64>,
    /// The `status` string; for `status_id` 99 the provider's own word.
    pub status: Option<String>,
    pub severity_id: Option<i64>,
    pub severity: Option<String>,
    pub comment: Option<String>,
}

fn path<'a>(doc: &'a Map<String, Value>, dotted: &str) -> Option<&'a Value> {
    let mut parts = dotted.split('.');
    let mut cur = doc.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

fn opt_str(doc: &Map<String, Value>, dotted: &str) -> Result<Option<String>, String> {
    match path(doc, dotted) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("{dotted}: expected a string, got {other}")),
    }
}

fn req_str(doc: &Map<String, Value>, dotted: &str) -> Result<String, String> {
    match opt_str(doc, dotted)? {
        Some(s) if !s.trim().is_empty() => Ok(s),
        Some(_) => Err(format!("{dotted}: must not be empty")),
        None => Err(format!("{dotted}: required field is missing")),
    }
}

fn opt_enum(
    doc: &Map<String, Value>,
    name: &str,
    table: &[(i64, &'static str)],
) -> Result<Option<i64>, String> {
    match doc.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) if name_of(table, i).is_some() => Ok(Some(i)),
            _ => Err(format!("{name}: {n} is not one of {}", allowed(table))),
        },
        Some(other) => Err(format!("{name}: expected an integer, got {other}")),
    }
}

/// The id a string names (case-insensitive), for documents that carry only
/// the string.
fn id_of_name(table: &[(i64, &str)], s: &str) -> Option<i64> {
    table
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(s))
        .map(|(i, _)| *i)
}

impl Record {
    /// Reads and checks a provider document. Required: `metadata.uid`,
    /// `finding_info.uid`, `cloud.account.uid`, `metadata.product.uid`
    /// (non-empty strings). `cloud.region` defaults to the Region of the
    /// product ARN, else `us-east-1`. `status_id`/`severity_id`, when
    /// present, must be OCSF values; when absent they are taken from a
    /// `status`/`severity` string that names one.
    pub(crate) fn from_doc(doc: &Map<String, Value>) -> Result<Record, String> {
        let triple = OcsfTriple {
            cloud_account_uid: req_str(doc, "cloud.account.uid")?,
            finding_info_uid: req_str(doc, "finding_info.uid")?,
            metadata_product_uid: req_str(doc, "metadata.product.uid")?,
        };
        let region = match opt_str(doc, "cloud.region")? {
            Some(r) if !r.is_empty() => r,
            _ => crate::arn::region_of(&triple.metadata_product_uid)
                .unwrap_or("us-east-1")
                .to_owned(),
        };
        let status = opt_str(doc, "status")?;
        let severity = opt_str(doc, "severity")?;
        let status_id = opt_enum(doc, "status_id", STATUS)?
            .or_else(|| status.as_deref().and_then(|s| id_of_name(STATUS, s)));
        let severity_id = opt_enum(doc, "severity_id", SEVERITY)?
            .or_else(|| severity.as_deref().and_then(|s| id_of_name(SEVERITY, s)));
        Ok(Record {
            metadata_uid: req_str(doc, "metadata.uid")?,
            triple,
            region,
            product_name: opt_str(doc, "metadata.product.name")?,
            title: opt_str(doc, "finding_info.title")?,
            compliance_status: opt_str(doc, "compliance.status")?,
            compliance_control: opt_str(doc, "compliance.control")?,
            status: fill(STATUS, status_id, status),
            status_id,
            severity: fill(SEVERITY, severity_id, severity),
            severity_id,
            comment: opt_str(doc, "comment")?,
        })
    }

    /// Applies the record's current triage values to `doc` (the service
    /// fills the strings from the ids).
    pub(crate) fn overlay(&self, doc: &mut Map<String, Value>) {
        let mut set = |k: &str, v: Option<Value>| match v {
            Some(v) => {
                doc.insert(k.to_owned(), v);
            }
            None => {
                doc.remove(k);
            }
        };
        set("status_id", self.status_id.map(Value::from));
        set("status", self.status.clone().map(Value::from));
        set("severity_id", self.severity_id.map(Value::from));
        set("severity", self.severity.clone().map(Value::from));
        set("comment", self.comment.clone().map(Value::from));
    }
}

/// The string sibling of an id: its name, except that for 99 ("Other") a
/// provider's own word is kept.
pub(crate) fn fill(
    table: &[(i64, &'static str)],
    id: Option<i64>,
    given: Option<String>,
) -> Option<String> {
    match id {
        Some(99) => given.or(Some("Other".to_owned())),
        Some(i) => name_of(table, i).map(str::to_owned),
        None => given,
    }
}

/// The `productv2` form of a product ARN (docs/service-facts.md §7.1: `::product/` →
/// `::productv2/`; custom products with an account in the ARN alike).
pub(crate) fn product_v2(product_arn: &str) -> String {
    product_arn.replacen(":product/", ":productv2/", 1)
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

fn time_ms(ts: Option<&str>) -> Option<i64> {
    ts.and_then(crate::emulator::asff::parse_timestamp)
}

/// An OCSF 1.6 finding for an ASFF finding, shaped like the new Security
/// Hub's CSPM findings: Compliance Finding (2003) for findings with
/// `Compliance`, Vulnerability Finding (2002) for Inspector, Detection
/// Finding (2004) otherwise. `metadata.uid` is a UUID derived from the ASFF
/// key, so the two identifier forms of a finding never coincide.
pub(crate) fn from_asff(a: &Value) -> Value {
    let id = s(a, "Id").unwrap_or_default();
    let product_arn = s(a, "ProductArn").unwrap_or_default();
    let account = s(a, "AwsAccountId").unwrap_or_default();
    let region = s(a, "Region").unwrap_or_default();
    let hash = {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in id.bytes().chain([0xFF]).chain(product_arn.bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        h
    };
    let metadata_uid = SplitMix64::for_index(hash, 0).uuid();
    let label = a
        .pointer("/Severity/Label")
        .and_then(Value::as_str)
        .unwrap_or("INFORMATIONAL");
    let severity_id = match label {
        "INFORMATIONAL" => 1,
        "LOW" => 2,
        "MEDIUM" => 3,
        "HIGH" => 4,
        "CRITICAL" => 5,
        _ => 0,
    };
    let archived = s(a, "RecordState") == Some("ARCHIVED");
    let status_id = match a.pointer("/Workflow/Status").and_then(Value::as_str) {
        _ if archived => 5,
        Some("NEW") => 1,
        Some("NOTIFIED") => 2,
        Some("SUPPRESSED") => 3,
        Some("RESOLVED") => 4,
        _ => 0,
    };
    let compliance = a.get("Compliance");
    let (class_uid, class_name) = if compliance.is_some() {
        (2003, "Compliance Finding")
    } else if product_arn.contains("/inspector") {
        (2002, "Vulnerability Finding")
    } else {
        (2004, "Detection Finding")
    };
    let created = s(a, "CreatedAt");
    let updated = s(a, "UpdatedAt");
    let mut doc = json!({
        "activity_id": 1,
        "activity_name": "Create",
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": class_uid,
        "class_name": class_name,
        "type_uid": class_uid * 100 + 1,
        "type_name": format!("{class_name}: Create"),
        "cloud": {
            "account": {"type": "AWS Account", "type_id": 10, "uid": account},
            "provider": "AWS",
            "region": region,
        },
        "finding_info": {
            "uid": id,
            "title": s(a, "Title"),
            "desc": s(a, "Description"),
            "types": a.get("Types").cloned().unwrap_or(Value::Array(vec![])),
            "created_time_dt": created,
            "created_time": time_ms(created),
            "modified_time_dt": updated,
            "modified_time": time_ms(updated),
            "first_seen_time_dt": s(a, "FirstObservedAt"),
            "last_seen_time_dt": s(a, "LastObservedAt"),
        },
        "metadata": {
            "uid": metadata_uid,
            "version": "1.6.0",
            "profiles": ["cloud", "datetime"],
            "product": {
                "uid": product_v2(product_arn),
                "name": s(a, "ProductName"),
                "vendor_name": s(a, "CompanyName"),
            },
        },
        "resources": a.get("Resources").and_then(Value::as_array).map(|rs| rs.iter().map(|r| json!({
            "type": s(r, "Type"),
            "uid": s(r, "Id"),
            "region": s(r, "Region"),
            "cloud_partition": s(r, "Partition"),
        })).collect::<Vec<_>>()),
        "severity_id": severity_id,
        "status_id": status_id,
        "time_dt": updated,
        "time": time_ms(updated),
    });
    let Value::Object(map) = &mut doc else {
        return doc;
    };
    if let Some(c) = compliance {
        let status = match s(c, "Status") {
            Some("PASSED") => "Pass",
            Some("FAILED") => "Fail",
            Some("WARNING") => "Warning",
            _ => "Unknown",
        };
        map.insert(
            "compliance".into(),
            json!({
                "control": s(c, "SecurityControlId"),
                "status": status,
                "standards": c.get("AssociatedStandards").and_then(Value::as_array).map(|v| v
                    .iter()
                    .filter_map(|x| s(x, "StandardsId").map(str::to_owned))
                    .collect::<Vec<_>>()),
            }),
        );
    }
    if let Some(text) = a.pointer("/Remediation/Recommendation/Text") {
        map.insert("remediation".into(), json!({"desc": text}));
    }
    if let Some(text) = a.pointer("/Note/Text").and_then(Value::as_str) {
        map.insert("comment".into(), Value::from(text));
    }
    map.insert(
        "severity".into(),
        Value::from(name_of(SEVERITY, severity_id).unwrap_or("Unknown")),
    );
    map.insert(
        "status".into(),
        Value::from(name_of(STATUS, status_id).unwrap_or("Unknown")),
    );
    strip_nulls(&mut doc);
    doc
}

/// Drops `null` members (OCSF omits absent attributes).
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_reads_identifiers_and_fills_strings() {
        let doc = json!({
            "metadata": {"uid": "m-1", "product": {"uid": "arn:aws:securityhub:eu-west-1::productv2/aws/guardduty"}},
            "finding_info": {"uid": "f-1"},
            "cloud": {"account": {"uid": "111122223333"}},
            "status_id": 2, "status": "whatever", "severity": "high",
        });
        let r = Record::from_doc(doc.as_object().unwrap()).unwrap();
        assert_eq!(r.metadata_uid, "m-1");
        assert_eq!(r.region, "eu-west-1");
        assert_eq!(
            (r.status_id, r.status.as_deref()),
            (Some(2), Some("In Progress"))
        );
        assert_eq!(
            (r.severity_id, r.severity.as_deref()),
            (Some(4), Some("High"))
        );
        let mut bad = doc.clone();
        bad["status_id"] = json!(7);
        assert_eq!(
            Record::from_doc(bad.as_object().unwrap()).unwrap_err(),
            "status_id: 7 is not one of 0, 1, 2, 3, 4, 5, 99"
        );
        let mut bad = doc.clone();
        bad["finding_info"] = json!({});
        assert_eq!(
            Record::from_doc(bad.as_object().unwrap()).unwrap_err(),
            "finding_info.uid: required field is missing"
        );
        let mut other = doc;
        other["status_id"] = json!(99);
        other["status"] = json!("Deferred");
        let r = Record::from_doc(other.as_object().unwrap()).unwrap();
        assert_eq!(r.status.as_deref(), Some("Deferred"));
    }

    #[test]
    fn asff_maps_to_the_triple_with_productv2() {
        let a = json!({
            "Id": "arn:aws:securityhub:us-east-1:111122223333:security-control/EC2.19/finding/x",
            "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/securityhub",
            "AwsAccountId": "111122223333", "Region": "us-east-1",
            "Severity": {"Label": "HIGH"}, "Workflow": {"Status": "NOTIFIED"},
            "RecordState": "ACTIVE", "Compliance": {"Status": "FAILED", "SecurityControlId": "EC2.19"},
            "Note": {"Text": "n", "UpdatedBy": "u", "UpdatedAt": "2026-01-01T00:00:00.000Z"},
        });
        let o = from_asff(&a);
        let r = Record::from_doc(o.as_object().unwrap()).unwrap();
        assert_eq!(
            r.triple.metadata_product_uid,
            "arn:aws:securityhub:us-east-1::productv2/aws/securityhub"
        );
        assert_eq!(r.triple.finding_info_uid, a["Id"].as_str().unwrap());
        assert_eq!((r.severity_id, r.status_id), (Some(4), Some(2)));
        assert_eq!(r.compliance_control.as_deref(), Some("EC2.19"));
        assert_eq!(r.compliance_status.as_deref(), Some("Fail"));
        assert_eq!(r.comment.as_deref(), Some("n"));
        assert_eq!(r.metadata_uid.len(), 36);
        assert_eq!(o["class_uid"], 2003);
    }
}
