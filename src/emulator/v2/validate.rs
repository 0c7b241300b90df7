//! Server-side validation of the V2 requests, with messages that name the
//! member. Every failure is a request-level HTTP 400 `ValidationException`.
//! JSON `null` counts as absent and unknown members are ignored (as restJson1
//! services do); wrong JSON types are errors.

use serde_json::{Map, Value};

use super::config::V2Semantics;
use super::ocsf::{OcsfTriple, SEVERITY, STATUS, allowed, name_of};
use super::store::{Ident, Update};

/// A validation failure: the message of the 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid(pub String);

fn bad<T>(m: impl Into<String>) -> Result<T, Invalid> {
    Err(Invalid(m.into()))
}

/// Longest `Comment` (API reference: 1–512 characters).
pub(crate) const MAX_COMMENT_CHARS: usize = 512;

fn object(body: &[u8]) -> Result<Map<String, Value>, Invalid> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => bad("the request body must be a JSON object"),
        Err(e) => bad(format!("the request body is not valid JSON: {e}")),
    }
}

fn member<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a Value> {
    m.get(k).filter(|v| !v.is_null())
}

/// A `NonEmptyString`: at least one non-space character.
fn non_empty(v: &Value, name: &str) -> Result<String, Invalid> {
    match v {
        Value::String(s) if s.chars().any(|c| !c.is_whitespace()) => Ok(s.clone()),
        Value::String(_) => bad(format!("{name}: must contain a non-space character")),
        other => bad(format!("{name}: expected a string, got {other}")),
    }
}

fn enum_id(v: &Value, name: &str, table: &[(i64, &'static str)]) -> Result<i64, Invalid> {
    match v.as_i64() {
        Some(i) if name_of(table, i).is_some() => Ok(i),
        _ if v.is_number() => bad(format!(
            "{name}: {v} is not an allowed value (allowed: {})",
            allowed(table)
        )),
        _ => bad(format!("{name}: expected an integer, got {v}")),
    }
}

/// Which identifier form a request used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    MetadataUids,
    FindingIdentifiers,
}

/// A valid `BatchUpdateFindingsV2` request.
#[derive(Debug)]
pub(crate) struct UpdateRequest {
    pub form: Form,
    pub ids: Vec<Ident>,
    pub update: Update,
}

/// Parses and validates a `BatchUpdateFindingsV2` body.
pub(crate) fn parse_batch_update_v2(
    body: &[u8],
    sem: &V2Semantics,
) -> Result<UpdateRequest, Invalid> {
    let m = object(body)?;
    let uids = member(&m, "MetadataUids");
    let triples = member(&m, "FindingIdentifiers");
    let (form, list, name) = match (uids, triples) {
        (Some(_), Some(_)) => {
            return bad(
                "MetadataUids and FindingIdentifiers cannot be used together in one request; \
                 send one of them",
            );
        }
        (Some(v), None) => (Form::MetadataUids, Some(v), "MetadataUids"),
        (None, Some(v)) => (Form::FindingIdentifiers, Some(v), "FindingIdentifiers"),
        (None, None) => (Form::MetadataUids, None, "MetadataUids"),
    };
    let items: &[Value] = match list {
        None => &[],
        Some(Value::Array(a)) => a,
        Some(other) => return bad(format!("{name}: expected a list, got {other}")),
    };
    if items.is_empty() && !sem.allow_empty_identifiers {
        return bad(format!(
            "one of MetadataUids or FindingIdentifiers is required, with 1 to {} entries",
            sem.max_identifiers
        ));
    }
    if items.len() > sem.max_identifiers {
        return bad(format!(
            "{name}: at most {} entries are allowed, got {}",
            sem.max_identifiers,
            items.len()
        ));
    }
    let mut ids = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("{name}[{i}]");
        ids.push(match form {
            Form::MetadataUids => Ident::Uid(non_empty(item, &at)?),
            Form::FindingIdentifiers => {
                let Value::Object(o) = item else {
                    return bad(format!("{at}: expected an object, got {item}"));
                };
                let get = |k: &str| match member(o, k) {
                    None => bad(format!("{at}.{k}: required member is missing")),
                    Some(v) => non_empty(v, &format!("{at}.{k}")),
                };
                Ident::Triple(OcsfTriple {
                    cloud_account_uid: get("CloudAccountUid")?,
                    finding_info_uid: get("FindingInfoUid")?,
                    metadata_product_uid: get("MetadataProductUid")?,
                })
            }
        });
    }
    let mut update = Update::default();
    if let Some(v) = member(&m, "Comment") {
        let c = non_empty(v, "Comment")?;
        let n = c.chars().count();
        if n > MAX_COMMENT_CHARS {
            return bad(format!(
                "Comment: at most {MAX_COMMENT_CHARS} characters are allowed, got {n}"
            ));
        }
        update.comment = Some(c);
    }
    if let Some(v) = member(&m, "SeverityId") {
        update.severity_id = Some(enum_id(v, "SeverityId", SEVERITY)?);
    }
    if let Some(v) = member(&m, "StatusId") {
        update.status_id = Some(enum_id(v, "StatusId", STATUS)?);
    }
    if update.is_empty() && sem.reject_no_update_fields {
        return bad("at least one of Comment, SeverityId or StatusId is required");
    }
    Ok(UpdateRequest { form, ids, update })
}

/// A valid `GetFindingsV2` request (filters still to compile).
#[derive(Debug)]
pub(crate) struct GetRequest {
    pub filters: Option<Value>,
    pub max_results: usize,
    pub next_token: Option<String>,
}

/// Parses and validates a `GetFindingsV2` body. `SortCriteria` and
/// `Scopes` are refused (the emulator does not implement them).
pub(crate) fn parse_get_findings_v2(body: &[u8]) -> Result<GetRequest, Invalid> {
    let m = object(body)?;
    let max_results = match member(&m, "MaxResults") {
        None => 100,
        Some(v) => match v.as_i64() {
            Some(n @ 1..=100) => n as usize,
            _ => {
                return bad(format!(
                    "MaxResults: must be an integer from 1 to 100, got {v}"
                ));
            }
        },
    };
    let next_token = match member(&m, "NextToken") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return bad(format!("NextToken: expected a string, got {other}")),
    };
    match member(&m, "SortCriteria") {
        None => {}
        Some(Value::Array(a)) if a.is_empty() => {}
        Some(_) => {
            return bad(
                "SortCriteria: the emulator does not support sorting (findings come in insertion order)",
            );
        }
    }
    if member(&m, "Scopes").is_some() {
        return bad("Scopes: the emulator does not support organisation-wide queries");
    }
    let filters = match member(&m, "Filters") {
        None => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(other) => return bad(format!("Filters: expected an object, got {other}")),
    };
    Ok(GetRequest {
        filters,
        max_results,
        next_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<UpdateRequest, String> {
        parse_batch_update_v2(v.to_string().as_bytes(), &V2Semantics::default()).map_err(|e| e.0)
    }

    fn triple() -> Value {
        json!({"CloudAccountUid": "1", "FindingInfoUid": "f", "MetadataProductUid": "p"})
    }

    #[test]
    fn identifier_forms_and_limits() {
        let r = parse(json!({"MetadataUids": ["a", "b"], "StatusId": 4})).unwrap();
        assert_eq!(r.form, Form::MetadataUids);
        assert_eq!(r.ids.len(), 2);
        assert_eq!(r.update.status_id, Some(4));
        let r = parse(json!({"FindingIdentifiers": [triple()], "Comment": "x"})).unwrap();
        assert_eq!(r.form, Form::FindingIdentifiers);
        assert_eq!(r.update.comment.as_deref(), Some("x"));
        assert!(r.update.status_id.is_none());
        assert!(
            parse(json!({"MetadataUids": ["a"], "FindingIdentifiers": [triple()]}))
                .unwrap_err()
                .contains("cannot be used together")
        );
        assert!(
            parse(json!({"StatusId": 1}))
                .unwrap_err()
                .contains("is required")
        );
        assert!(parse(json!({"MetadataUids": [], "StatusId": 1})).is_err());
        let many: Vec<String> = (0..101).map(|i| i.to_string()).collect();
        assert_eq!(
            parse(json!({"MetadataUids": many, "StatusId": 1})).unwrap_err(),
            "MetadataUids: at most 100 entries are allowed, got 101"
        );
        assert_eq!(
            parse(json!({"FindingIdentifiers": [{"CloudAccountUid": "1", "FindingInfoUid": "f"}]}))
                .unwrap_err(),
            "FindingIdentifiers[0].MetadataProductUid: required member is missing"
        );
        assert!(parse(json!({"MetadataUids": [" "]})).is_err());
        assert!(parse(json!({"MetadataUids": [1]})).is_err());
        // null is absent
        assert!(parse(json!({"MetadataUids": ["a"], "FindingIdentifiers": null})).is_ok());
    }

    #[test]
    fn field_values() {
        let ok = |f: Value| {
            let mut v = json!({"MetadataUids": ["a"]});
            v.as_object_mut()
                .unwrap()
                .extend(f.as_object().unwrap().clone());
            parse(v)
        };
        for s in [0, 1, 2, 3, 4, 5, 99] {
            assert!(ok(json!({ "StatusId": s })).is_ok());
        }
        for s in [0, 1, 2, 3, 4, 5, 6, 99] {
            assert!(ok(json!({ "SeverityId": s })).is_ok());
        }
        assert_eq!(
            ok(json!({"StatusId": 6})).unwrap_err(),
            "StatusId: 6 is not an allowed value (allowed: 0, 1, 2, 3, 4, 5, 99)"
        );
        assert!(ok(json!({"SeverityId": 7})).is_err());
        assert!(ok(json!({"SeverityId": "4"})).is_err());
        assert!(ok(json!({"Comment": "é".repeat(512)})).is_ok());
        assert_eq!(
            ok(json!({"Comment": "x".repeat(513)})).unwrap_err(),
            "Comment: at most 512 characters are allowed, got 513"
        );
        assert!(ok(json!({"Comment": ""})).is_err());
        // No field: accepted by default, refused when configured.
        assert!(ok(json!({})).is_ok());
        let strict = V2Semantics {
            reject_no_update_fields: true,
            ..V2Semantics::default()
        };
        assert!(parse_batch_update_v2(br#"{"MetadataUids":["a"]}"#, &strict).is_err());
    }

    #[test]
    fn get_request() {
        let r = parse_get_findings_v2(b"").unwrap();
        assert_eq!((r.max_results, r.next_token, r.filters), (100, None, None));
        assert!(parse_get_findings_v2(br#"{"MaxResults":0}"#).is_err());
        assert!(parse_get_findings_v2(br#"{"MaxResults":101}"#).is_err());
        assert!(parse_get_findings_v2(br#"{"SortCriteria":[{"Field":"x"}]}"#).is_err());
        assert!(parse_get_findings_v2(br#"{"Scopes":{}}"#).is_err());
        assert!(parse_get_findings_v2(b"[1]").is_err());
    }
}
