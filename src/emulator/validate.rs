//! Server-side validation of the three requests (docs/service-facts.md §2.2–2.3, §5, §6):
//! required members, JSON types, enums, 0–100 ranges, the `NonEmptyString`
//! pattern and the ASFF length limits. SDKs check almost none of this
//! (docs/service-facts.md §2.6), so the emulator must.
//!
//! Request-level problems become [`InvalidInput`] (HTTP 400
//! `InvalidInputException`); a finding in `BatchImportFindings` that breaks
//! ASFF becomes a per-finding [`ImportFailure`], as the service reports it.
//! Nothing here touches the store.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::asff::{
    ComplianceStatus, RecordState, SeverityLabel, VerificationState, WorkflowState, WorkflowStatus,
    is_non_empty, parse_timestamp,
};
use super::config::Semantics;
use crate::model::FindingKey;

/// A request-level validation failure: the message of an
/// `InvalidInputException`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvalidInput(pub String);

impl InvalidInput {
    fn at(path: &str, what: impl std::fmt::Display) -> Self {
        if path.is_empty() {
            InvalidInput(what.to_string())
        } else {
            InvalidInput(format!("{path}: {what}"))
        }
    }
}

/// Most members a `UserDefinedFields` map may hold (ASFF doc).
pub(crate) const MAX_USER_DEFINED_FIELDS: usize = 50;
/// The documented per-finding size limit.
pub(crate) const MAX_FINDING_BYTES: usize = 240 * 1024;

/// The `Note` of an update: the service stamps `UpdatedAt`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NoteUpdate {
    pub text: String,
    pub updated_by: String,
}

/// The `Severity` of an update.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SeverityUpdate {
    pub label: Option<SeverityLabel>,
    pub normalized: Option<u8>,
    pub product: Option<f64>,
}

/// The fields a `BatchUpdateFindings` sets, validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct UpdateFields {
    pub note: Option<NoteUpdate>,
    pub severity: Option<SeverityUpdate>,
    pub(crate) verification_state: Option<VerificationState>,
    pub confidence: Option<u8>,
    pub criticality: Option<u8>,
    pub types: Option<Vec<String>>,
    pub user_defined_fields: Option<BTreeMap<String, String>>,
    pub workflow_status: Option<WorkflowStatus>,
    pub(crate) related_findings: Option<Vec<FindingKey>>,
}

impl UpdateFields {
    /// True when the request names no field at all.
    pub(crate) fn is_empty(&self) -> bool {
        *self == UpdateFields::default()
    }
}

/// A validated `BatchUpdateFindings` request.
#[derive(Debug, Clone)]
pub(crate) struct BatchUpdateRequest {
    pub identifiers: Vec<FindingKey>,
    pub fields: UpdateFields,
}

/// Parses the body as a JSON object (an empty body counts as `{}`, as
/// restJson1 servers treat it).
fn parse_object(body: &[u8]) -> Result<Map<String, Value>, InvalidInput> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(InvalidInput(format!(
            "request body must be a JSON object, got {}",
            type_name(&other)
        ))),
        Err(e) => Err(InvalidInput(format!("request body is not valid JSON: {e}"))),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn expect_object(v: Value, path: &str) -> Result<Map<String, Value>, InvalidInput> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(InvalidInput::at(
            path,
            format!("expected an object, got {}", type_name(&other)),
        )),
    }
}

fn expect_array(v: Value, path: &str) -> Result<Vec<Value>, InvalidInput> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(InvalidInput::at(
            path,
            format!("expected an array, got {}", type_name(&other)),
        )),
    }
}

/// A `NonEmptyString` with an optional ASFF maximum length (in characters).
fn non_empty_string(v: Value, path: &str, max: Option<usize>) -> Result<String, InvalidInput> {
    let Value::String(s) = v else {
        return Err(InvalidInput::at(
            path,
            format!("expected a string, got {}", type_name(&v)),
        ));
    };
    if !is_non_empty(&s) {
        return Err(InvalidInput::at(
            path,
            "must contain a non-whitespace character (pattern .*\\S.*)",
        ));
    }
    if let Some(max) = max {
        let n = s.chars().count();
        if n > max {
            return Err(InvalidInput::at(
                path,
                format!("must be at most {max} characters long, got {n}"),
            ));
        }
    }
    Ok(s)
}

fn ratio(v: Value, path: &str) -> Result<u8, InvalidInput> {
    match v.as_i64() {
        Some(n @ 0..=100) => Ok(n as u8),
        Some(n) => Err(InvalidInput::at(
            path,
            format!("must be between 0 and 100, got {n}"),
        )),
        None if v.is_number() => Err(InvalidInput::at(
            path,
            format!("must be an integer between 0 and 100, got {v}"),
        )),
        None => Err(InvalidInput::at(
            path,
            format!("expected an integer, got {}", type_name(&v)),
        )),
    }
}

fn double(v: Value, path: &str) -> Result<f64, InvalidInput> {
    // restJson1 sends non-finite doubles as these strings.
    match &v {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| InvalidInput::at(path, "is not a double")),
        Value::String(s) if s == "NaN" => Ok(f64::NAN),
        Value::String(s) if s == "Infinity" => Ok(f64::INFINITY),
        Value::String(s) if s == "-Infinity" => Ok(f64::NEG_INFINITY),
        _ => Err(InvalidInput::at(
            path,
            format!("expected a number, got {}", type_name(&v)),
        )),
    }
}

fn enum_value<T>(
    v: Value,
    path: &str,
    parse: fn(&str) -> Option<T>,
    allowed: fn() -> String,
) -> Result<T, InvalidInput> {
    let Value::String(s) = v else {
        return Err(InvalidInput::at(
            path,
            format!("expected a string, got {}", type_name(&v)),
        ));
    };
    parse(&s).ok_or_else(|| {
        InvalidInput::at(
            path,
            format!("{s:?} is not one of the allowed values ({})", allowed()),
        )
    })
}

/// Removes a member, treating JSON `null` as absent (what SDKs mean by it).
fn take(m: &mut Map<String, Value>, key: &str) -> Option<Value> {
    match m.remove(key) {
        None | Some(Value::Null) => None,
        some => some,
    }
}

fn required(m: &mut Map<String, Value>, key: &str, path: &str) -> Result<Value, InvalidInput> {
    take(m, key).ok_or_else(|| {
        InvalidInput(format!(
            "{}{key}: required member is missing",
            if path.is_empty() {
                String::new()
            } else {
                format!("{path}.")
            }
        ))
    })
}

/// An `AwsSecurityFindingIdentifier` (also `RelatedFinding`): both members
/// required, with the ASFF length limits (Id 1–512, ProductArn 12–2048).
fn identifier(v: Value, list: &str, index: usize) -> Result<FindingKey, InvalidInput> {
    // Fast path for a well-formed identifier: no path strings are built
    // unless there is an error to report (this runs 100 times per request).
    if let Value::Object(mut m) = v {
        let good = |s: &str, min: usize, max: usize| {
            (min..=max).contains(&s.chars().count()) && is_non_empty(s)
        };
        match (m.remove("Id"), m.remove("ProductArn")) {
            (Some(Value::String(id)), Some(Value::String(product_arn)))
                if good(&id, 1, 512) && good(&product_arn, 12, 2048) =>
            {
                return Ok(FindingKey::new(id, product_arn));
            }
            (id, arn) => {
                // Put them back for the detailed report.
                if let Some(id) = id {
                    m.insert("Id".to_owned(), id);
                }
                if let Some(arn) = arn {
                    m.insert("ProductArn".to_owned(), arn);
                }
                return identifier_slow(Value::Object(m), &format!("{list}[{index}]"));
            }
        }
    }
    identifier_slow(v, &format!("{list}[{index}]"))
}

fn identifier_slow(v: Value, path: &str) -> Result<FindingKey, InvalidInput> {
    let mut m = expect_object(v, path)?;
    let id = non_empty_string(
        required(&mut m, "Id", path)?,
        &format!("{path}.Id"),
        Some(512),
    )?;
    let arn_path = format!("{path}.ProductArn");
    let product_arn =
        non_empty_string(required(&mut m, "ProductArn", path)?, &arn_path, Some(2048))?;
    if product_arn.chars().count() < 12 {
        return Err(InvalidInput::at(
            &arn_path,
            "must be at least 12 characters long",
        ));
    }
    Ok(FindingKey::new(id, product_arn))
}

/// Validates a `BatchUpdateFindings` body.
pub(crate) fn parse_batch_update(
    body: &[u8],
    semantics: &Semantics,
) -> Result<BatchUpdateRequest, InvalidInput> {
    let mut m = parse_object(body)?;
    let ids = expect_array(
        required(&mut m, "FindingIdentifiers", "")?,
        "FindingIdentifiers",
    )?;
    // Counted before anything else so a huge list costs nothing more.
    let min = usize::from(!semantics.allow_empty_identifiers);
    if ids.len() < min || ids.len() > semantics.max_identifiers {
        return Err(InvalidInput(format!(
            "FindingIdentifiers: must hold {min} to {} identifiers, got {}",
            semantics.max_identifiers,
            ids.len()
        )));
    }
    let identifiers = ids
        .into_iter()
        .enumerate()
        .map(|(i, v)| identifier(v, "FindingIdentifiers", i))
        .collect::<Result<Vec<_>, _>>()?;

    let mut f = UpdateFields::default();
    if let Some(v) = take(&mut m, "Note") {
        let mut n = expect_object(v, "Note")?;
        let text = non_empty_string(required(&mut n, "Text", "Note")?, "Note.Text", Some(512))?;
        let updated_by = non_empty_string(
            required(&mut n, "UpdatedBy", "Note")?,
            "Note.UpdatedBy",
            Some(512),
        )?;
        f.note = Some(NoteUpdate { text, updated_by });
    }
    if let Some(v) = take(&mut m, "Severity") {
        let mut s = expect_object(v, "Severity")?;
        let mut u = SeverityUpdate::default();
        if let Some(v) = take(&mut s, "Normalized") {
            u.normalized = Some(ratio(v, "Severity.Normalized")?);
        }
        if let Some(v) = take(&mut s, "Product") {
            u.product = Some(double(v, "Severity.Product")?);
        }
        if let Some(v) = take(&mut s, "Label") {
            u.label = Some(enum_value(
                v,
                "Severity.Label",
                SeverityLabel::parse,
                SeverityLabel::allowed,
            )?);
        }
        f.severity = Some(u);
    }
    if let Some(v) = take(&mut m, "VerificationState") {
        f.verification_state = Some(enum_value(
            v,
            "VerificationState",
            VerificationState::parse,
            VerificationState::allowed,
        )?);
    }
    if let Some(v) = take(&mut m, "Confidence") {
        f.confidence = Some(ratio(v, "Confidence")?);
    }
    if let Some(v) = take(&mut m, "Criticality") {
        f.criticality = Some(ratio(v, "Criticality")?);
    }
    if let Some(v) = take(&mut m, "Types") {
        let items = expect_array(v, "Types")?;
        if items.len() > 50 {
            return Err(InvalidInput(format!(
                "Types: must hold at most 50 items, got {}",
                items.len()
            )));
        }
        f.types = Some(
            items
                .into_iter()
                .enumerate()
                .map(|(i, t)| non_empty_string(t, &format!("Types[{i}]"), Some(128)))
                .collect::<Result<_, _>>()?,
        );
    }
    if let Some(v) = take(&mut m, "UserDefinedFields") {
        f.user_defined_fields = Some(user_defined_fields(v, "UserDefinedFields")?);
    }
    if let Some(v) = take(&mut m, "Workflow") {
        let mut w = expect_object(v, "Workflow")?;
        if let Some(v) = take(&mut w, "Status") {
            f.workflow_status = Some(enum_value(
                v,
                "Workflow.Status",
                WorkflowStatus::parse,
                WorkflowStatus::allowed,
            )?);
        }
    }
    if let Some(v) = take(&mut m, "RelatedFindings") {
        let items = expect_array(v, "RelatedFindings")?;
        if items.len() > 10 {
            return Err(InvalidInput(format!(
                "RelatedFindings: must hold at most 10 items, got {}",
                items.len()
            )));
        }
        f.related_findings = Some(
            items
                .into_iter()
                .enumerate()
                .map(|(i, r)| identifier(r, "RelatedFindings", i))
                .collect::<Result<_, _>>()?,
        );
    }
    if semantics.reject_no_update_fields && f.is_empty() {
        return Err(InvalidInput(
            "at least one field to update must be given (Note, Severity, VerificationState, \
             Confidence, Criticality, Types, UserDefinedFields, Workflow, RelatedFindings)"
                .to_owned(),
        ));
    }
    Ok(BatchUpdateRequest {
        identifiers,
        fields: f,
    })
}

fn user_defined_fields(v: Value, path: &str) -> Result<BTreeMap<String, String>, InvalidInput> {
    let m = expect_object(v, path)?;
    if m.len() > MAX_USER_DEFINED_FIELDS {
        return Err(InvalidInput::at(
            path,
            format!(
                "must hold at most {MAX_USER_DEFINED_FIELDS} pairs, got {}",
                m.len()
            ),
        ));
    }
    let mut out = BTreeMap::new();
    for (k, v) in m {
        if !is_non_empty(&k) || k.chars().count() > 128 {
            return Err(InvalidInput::at(
                path,
                format!("key {k:?} must be 1 to 128 characters with a non-whitespace character"),
            ));
        }
        let value = non_empty_string(v, &format!("{path}.{k}"), Some(1024))?;
        out.insert(k, value);
    }
    Ok(out)
}

/// A validated `BatchImportFindings` request: each element is either a
/// finding ready to store or the per-finding failure to report.
pub(crate) fn parse_batch_import(
    body: &[u8],
) -> Result<Vec<Result<ImportedFinding, ImportFailure>>, InvalidInput> {
    let mut m = parse_object(body)?;
    let findings = expect_array(required(&mut m, "Findings", "")?, "Findings")?;
    if findings.is_empty() || findings.len() > 100 {
        return Err(InvalidInput(format!(
            "Findings: must hold 1 to 100 findings, got {}",
            findings.len()
        )));
    }
    findings
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let m = expect_object(v, &format!("Findings[{i}]"))?;
            Ok(check_finding(m))
        })
        .collect()
}

/// A finding that passed ASFF validation, with the fields the store indexes.
#[derive(Debug, Clone)]
pub(crate) struct ImportedFinding {
    pub key: FindingKey,
    pub account: String,
    pub region: Option<String>,
    pub(crate) updated_at_ms: i64,
    pub workflow_status: WorkflowStatus,
    pub severity_label: Option<SeverityLabel>,
    pub record_state: Option<RecordState>,
    pub compliance_status: Option<ComplianceStatus>,
    /// The whole document, as sent.
    pub doc: Map<String, Value>,
}

/// A finding `BatchImportFindings` reports in `FailedFindings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImportFailure {
    /// The finding's `Id` when it had a string one, else empty.
    pub id: String,
    pub code: &'static str,
    pub message: String,
}

/// The prefix of the service's ASFF validation messages (docs/service-facts.md §5).
const ASFF_PREFIX: &str = "Finding does not adhere to Amazon Finding Format.";

/// Checks one finding against the ASFF rules docs/service-facts.md §5 lists, with
/// messages in the service's (JSON-schema) style, e.g.
/// `data.Title should NOT be longer than 256 characters.`
pub(crate) fn check_finding(doc: Map<String, Value>) -> Result<ImportedFinding, ImportFailure> {
    let id_for_report = doc
        .get("Id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let fail = |msg: String| ImportFailure {
        id: id_for_report.clone(),
        code: "InvalidInput",
        message: format!("{ASFF_PREFIX} {msg}."),
    };
    // Required members, in the order the service's schema lists them.
    for key in [
        "SchemaVersion",
        "Id",
        "ProductArn",
        "GeneratorId",
        "AwsAccountId",
        "CreatedAt",
        "UpdatedAt",
        "Title",
        "Description",
        "Resources",
    ] {
        if doc.get(key).is_none_or(Value::is_null) {
            return Err(fail(format!("data should have required property '{key}'")));
        }
    }
    let str_field = |key: &str, min: usize, max: usize| -> Result<Option<&str>, ImportFailure> {
        match doc.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => {
                let n = s.chars().count();
                if n < min {
                    Err(fail(format!(
                        "data.{key} should NOT be shorter than {min} characters"
                    )))
                } else if n > max {
                    Err(fail(format!(
                        "data.{key} should NOT be longer than {max} characters"
                    )))
                } else if !is_non_empty(s) {
                    Err(fail(format!("data.{key} should match pattern \".*\\S.*\"")))
                } else {
                    Ok(Some(s))
                }
            }
            Some(_) => Err(fail(format!("data.{key} should be string"))),
        }
    };
    if doc.get("SchemaVersion").and_then(Value::as_str) != Some("2018-10-08") {
        return Err(fail(
            "data.SchemaVersion should be equal to one of the allowed values (2018-10-08)".into(),
        ));
    }
    let id = str_field("Id", 1, 512)?.unwrap_or_default().to_owned();
    let product_arn = str_field("ProductArn", 12, 2048)?
        .unwrap_or_default()
        .to_owned();
    str_field("GeneratorId", 1, 512)?;
    let account = str_field("AwsAccountId", 12, 12)?
        .unwrap_or_default()
        .to_owned();
    if !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(fail(
            "data.AwsAccountId should match pattern \"^[0-9]{12}$\"".into(),
        ));
    }
    str_field("Title", 1, 256)?;
    str_field("Description", 1, 1024)?;
    str_field("ProductName", 1, 128)?;
    str_field("CompanyName", 1, 128)?;
    str_field("AwsAccountName", 1, 50)?;
    let region = str_field("Region", 1, 16)?.map(str::to_owned);
    let mut updated_at_ms = 0;
    for key in [
        "CreatedAt",
        "UpdatedAt",
        "FirstObservedAt",
        "LastObservedAt",
        "ProcessedAt",
    ] {
        match doc.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => match parse_timestamp(s) {
                Some(ms) if key == "UpdatedAt" => updated_at_ms = ms,
                Some(_) => {}
                None => {
                    return Err(fail(format!(
                        "data.{key} should match format \"date-time\""
                    )));
                }
            },
            Some(_) => return Err(fail(format!("data.{key} should be string"))),
        }
    }
    let list_len =
        |key: &str, min: usize, max: usize| -> Result<Option<&Vec<Value>>, ImportFailure> {
            match doc.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(a)) if a.len() < min => Err(fail(format!(
                    "data.{key} should NOT have fewer than {min} items"
                ))),
                Some(Value::Array(a)) if a.len() > max => Err(fail(format!(
                    "data.{key} should NOT have more than {max} items"
                ))),
                Some(Value::Array(a)) => Ok(Some(a)),
                Some(_) => Err(fail(format!("data.{key} should be array"))),
            }
        };
    if let Some(types) = list_len("Types", 0, 50)?
        && types.iter().any(|t| !t.as_str().is_some_and(is_non_empty))
    {
        return Err(fail("data.Types items should be non-empty strings".into()));
    }
    list_len("RelatedFindings", 1, 10)?;
    list_len("Malware", 0, 5)?;
    list_len("Threats", 1, 32)?;
    list_len("ThreatIntelIndicators", 1, 5)?;
    let resources = list_len("Resources", 1, 32)?
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, r) in resources.iter().enumerate() {
        let Some(r) = r.as_object() else {
            return Err(fail(format!("data.Resources[{i}] should be object")));
        };
        for key in ["Type", "Id"] {
            match r.get(key) {
                Some(Value::String(s)) if is_non_empty(s) => {
                    if key == "Type" && s.chars().count() > 256 {
                        return Err(fail(format!(
                            "data.Resources[{i}].Type should NOT be longer than 256 characters"
                        )));
                    }
                }
                Some(Value::String(_)) => {
                    return Err(fail(format!(
                        "data.Resources[{i}].{key} should match pattern \".*\\S.*\""
                    )));
                }
                Some(_) => return Err(fail(format!("data.Resources[{i}].{key} should be string"))),
                None => {
                    return Err(fail(format!(
                        "data.Resources[{i}] should have required property '{key}'"
                    )));
                }
            }
        }
        if let Some(reg) = r.get("Region").and_then(Value::as_str)
            && reg.chars().count() > 16
        {
            return Err(fail(format!(
                "data.Resources[{i}].Region should NOT be longer than 16 characters"
            )));
        }
    }
    let map_check = |key: &str, max_pairs: usize, max_value: usize| -> Result<(), ImportFailure> {
        match doc.get(key) {
            None | Some(Value::Null) => Ok(()),
            Some(Value::Object(m)) => {
                if m.len() > max_pairs {
                    return Err(fail(format!(
                        "data.{key} should NOT have more than {max_pairs} properties"
                    )));
                }
                for (k, v) in m {
                    if k.chars().count() > 128 {
                        return Err(fail(format!(
                            "data.{key} property name should NOT be longer than 128 characters"
                        )));
                    }
                    match v.as_str() {
                        Some(s) if s.chars().count() > max_value => {
                            return Err(fail(format!(
                                "data.{key}['{k}'] should NOT be longer than {max_value} characters"
                            )));
                        }
                        Some(_) => {}
                        None => return Err(fail(format!("data.{key}['{k}'] should be string"))),
                    }
                }
                Ok(())
            }
            Some(_) => Err(fail(format!("data.{key} should be object"))),
        }
    };
    map_check("ProductFields", 50, 2048)?;
    map_check("UserDefinedFields", MAX_USER_DEFINED_FIELDS, 1024)?;

    let mut severity_label = None;
    if let Some(sev) = doc.get("Severity").filter(|v| !v.is_null()) {
        let Some(sev) = sev.as_object() else {
            return Err(fail("data.Severity should be object".into()));
        };
        let label = match sev.get("Label") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_str().and_then(SeverityLabel::parse).ok_or_else(|| {
                fail("data.Severity.Label should be equal to one of the allowed values".into())
            })?),
        };
        let normalized = match sev.get("Normalized") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_i64() {
                Some(n @ 0..=100) => Some(n as u8),
                _ => {
                    return Err(fail(
                        "data.Severity.Normalized should be an integer between 0 and 100".into(),
                    ));
                }
            },
        };
        if let Some(Value::String(o)) = sev.get("Original")
            && (o.is_empty() || o.chars().count() > 64)
        {
            return Err(fail(
                "data.Severity.Original should be 1 to 64 characters long".into(),
            ));
        }
        severity_label = match (label, normalized) {
            (Some(l), _) => Some(l),
            (None, Some(n)) => Some(SeverityLabel::from_normalized(n)),
            (None, None) => {
                return Err(fail(
                    "data.Severity should have required property 'Label' or 'Normalized'".into(),
                ));
            }
        };
    }
    for key in ["Confidence", "Criticality"] {
        if let Some(v) = doc.get(key).filter(|v| !v.is_null())
            && !matches!(v.as_i64(), Some(0..=100))
        {
            return Err(fail(format!(
                "data.{key} should be an integer between 0 and 100"
            )));
        }
    }
    let enum_field =
        |v: Option<&Value>, path: &str, ok: fn(&str) -> bool| -> Result<(), ImportFailure> {
            match v {
                None | Some(Value::Null) => Ok(()),
                Some(Value::String(s)) if ok(s) => Ok(()),
                Some(_) => Err(fail(format!(
                    "data.{path} should be equal to one of the allowed values"
                ))),
            }
        };
    let workflow = doc.get("Workflow").filter(|v| !v.is_null());
    if workflow.is_some_and(|w| !w.is_object()) {
        return Err(fail("data.Workflow should be object".into()));
    }
    let workflow_status_value = workflow.and_then(|w| w.get("Status"));
    enum_field(workflow_status_value, "Workflow.Status", |s| {
        WorkflowStatus::parse(s).is_some()
    })?;
    enum_field(doc.get("WorkflowState"), "WorkflowState", |s| {
        WorkflowState::parse(s).is_some()
    })?;
    enum_field(doc.get("RecordState"), "RecordState", |s| {
        RecordState::parse(s).is_some()
    })?;
    enum_field(doc.get("VerificationState"), "VerificationState", |s| {
        VerificationState::parse(s).is_some()
    })?;
    let compliance = doc.get("Compliance").filter(|v| !v.is_null());
    if compliance.is_some_and(|c| !c.is_object()) {
        return Err(fail("data.Compliance should be object".into()));
    }
    let compliance_value = compliance.and_then(|c| c.get("Status"));
    enum_field(compliance_value, "Compliance.Status", |s| {
        ComplianceStatus::parse(s).is_some()
    })?;
    if let Some(note) = doc.get("Note").filter(|v| !v.is_null()) {
        let Some(note) = note.as_object() else {
            return Err(fail("data.Note should be object".into()));
        };
        for key in ["Text", "UpdatedBy", "UpdatedAt"] {
            if !note
                .get(key)
                .and_then(Value::as_str)
                .is_some_and(is_non_empty)
            {
                return Err(fail(format!(
                    "data.Note should have required property '{key}'"
                )));
            }
        }
        if note
            .get("Text")
            .and_then(Value::as_str)
            .is_some_and(|t| t.chars().count() > 512)
        {
            return Err(fail(
                "data.Note.Text should NOT be longer than 512 characters".into(),
            ));
        }
    }
    let workflow_status = workflow_status_value
        .and_then(Value::as_str)
        .and_then(WorkflowStatus::parse)
        .unwrap_or(WorkflowStatus::New);
    let record_state = doc
        .get("RecordState")
        .and_then(Value::as_str)
        .and_then(RecordState::parse);
    let compliance_status = compliance_value
        .and_then(Value::as_str)
        .and_then(ComplianceStatus::parse);

    // The size check serialises the document, so it comes last.
    let size = serde_json::to_vec(&doc)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_FINDING_BYTES {
        return Err(ImportFailure {
            id: id_for_report,
            code: "FindingSizeExceeded",
            message: "Finding size exceeded 240 KB".to_owned(),
        });
    }
    Ok(ImportedFinding {
        key: FindingKey::new(id, product_arn),
        account,
        region,
        updated_at_ms,
        workflow_status,
        severity_label,
        record_state,
        compliance_status,
        doc,
    })
}

/// A validated `GetFindings` request (filters still as JSON; compiled by
/// the filter module).
#[derive(Debug)]
pub(crate) struct GetFindingsRequest {
    pub filters: Option<Map<String, Value>>,
    pub max_results: usize,
    pub next_token: Option<String>,
}

/// Page size when `MaxResults` is absent (UNDOCUMENTED; we pick the maximum).
pub(crate) const DEFAULT_PAGE_SIZE: usize = 100;

/// Validates a `GetFindings` body.
pub(crate) fn parse_get_findings(body: &[u8]) -> Result<GetFindingsRequest, InvalidInput> {
    let mut m = parse_object(body)?;
    let filters = take(&mut m, "Filters")
        .map(|v| expect_object(v, "Filters"))
        .transpose()?;
    if let Some(v) = take(&mut m, "SortCriteria")
        && !expect_array(v, "SortCriteria")?.is_empty()
    {
        return Err(InvalidInput(
            "SortCriteria: sorting is not supported by the emulator (findings come back in \
                 insertion order)"
                .to_owned(),
        ));
    }
    let max_results = match take(&mut m, "MaxResults") {
        None => DEFAULT_PAGE_SIZE,
        Some(v) => match v.as_i64() {
            Some(n @ 1..=100) => n as usize,
            Some(n) => {
                return Err(InvalidInput(format!(
                    "MaxResults: must be between 1 and 100, got {n}"
                )));
            }
            None => {
                return Err(InvalidInput(format!(
                    "MaxResults: expected an integer, got {}",
                    type_name(&v)
                )));
            }
        },
    };
    let next_token = match take(&mut m, "NextToken") {
        None => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s),
        Some(v) => {
            return Err(InvalidInput(format!(
                "NextToken: expected a string, got {}",
                type_name(&v)
            )));
        }
    };
    Ok(GetFindingsRequest {
        filters,
        max_results,
        next_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn update(v: Value) -> Result<BatchUpdateRequest, InvalidInput> {
        parse_batch_update(&serde_json::to_vec(&v).unwrap(), &Semantics::default())
    }

    fn ids(n: usize) -> Vec<Value> {
        (0..n)
            .map(|i| json!({"Id": format!("f-{i}"), "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty"}))
            .collect()
    }

    #[test]
    fn accepts_a_full_update() {
        let r = update(json!({
            "FindingIdentifiers": ids(2),
            "Note": {"Text": "t", "UpdatedBy": "me"},
            "Severity": {"Normalized": 75, "Product": 7.5},
            "VerificationState": "TRUE_POSITIVE",
            "Confidence": 0, "Criticality": 100,
            "Types": ["TTPs/Discovery"],
            "UserDefinedFields": {"Owner": "team-a"},
            "Workflow": {"Status": "RESOLVED"},
            "RelatedFindings": [{"Id": "x", "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/inspector"}],
            "SomethingNew": 1
        }))
        .unwrap();
        assert_eq!(r.identifiers.len(), 2);
        assert_eq!(r.fields.workflow_status, Some(WorkflowStatus::Resolved));
        assert_eq!(r.fields.severity.as_ref().unwrap().normalized, Some(75));
        assert_eq!(
            r.fields.user_defined_fields.as_ref().unwrap()["Owner"],
            "team-a"
        );
        assert!(!r.fields.is_empty());
    }

    #[test]
    fn rejects_each_kind_of_bad_input_with_a_path() {
        let base = || json!({"FindingIdentifiers": ids(1)});
        let cases: Vec<(Value, &str)> = vec![
            (json!({}), "FindingIdentifiers: required member is missing"),
            (
                json!({"FindingIdentifiers": []}),
                "must hold 1 to 100 identifiers, got 0",
            ),
            (json!({"FindingIdentifiers": ids(101)}), "got 101"),
            (
                json!({"FindingIdentifiers": {"Id": "x"}}),
                "FindingIdentifiers: expected an array",
            ),
            (
                json!({"FindingIdentifiers": [{"Id": "x"}]}),
                "FindingIdentifiers[0].ProductArn: required member is missing",
            ),
            (
                json!({"FindingIdentifiers": [{"Id": " ", "ProductArn": "arn:aws:securityhub:us-east-1::product/a/b"}]}),
                "FindingIdentifiers[0].Id: must contain a non-whitespace",
            ),
            (
                json!({"FindingIdentifiers": [{"Id": "x".repeat(513), "ProductArn": "arn:aws:securityhub:us-east-1::product/a/b"}]}),
                "at most 512 characters",
            ),
            (
                json!({"FindingIdentifiers": [{"Id": "x", "ProductArn": "arn:aws"}]}),
                "at least 12",
            ),
            (
                json!({"FindingIdentifiers": [{"Id": 5, "ProductArn": "arn:aws:securityhub:us-east-1::product/a/b"}]}),
                "expected a string, got a number",
            ),
        ];
        for (body, want) in cases {
            let err = update(body.clone()).unwrap_err().0;
            assert!(err.contains(want), "{body}: {err}");
        }
        let field_cases: Vec<(&str, Value, &str)> = vec![
            (
                "Confidence",
                json!(101),
                "Confidence: must be between 0 and 100, got 101",
            ),
            ("Confidence", json!(-1), "got -1"),
            ("Criticality", json!(50.5), "must be an integer"),
            (
                "Criticality",
                json!("50"),
                "expected an integer, got a string",
            ),
            (
                "Severity",
                json!({"Normalized": 101}),
                "Severity.Normalized",
            ),
            (
                "Severity",
                json!({"Label": "SEVERE"}),
                "Severity.Label: \"SEVERE\" is not one of",
            ),
            (
                "Severity",
                json!({"Product": "high"}),
                "Severity.Product: expected a number",
            ),
            ("Workflow", json!({"Status": "BOGUS"}), "Workflow.Status"),
            (
                "Workflow",
                json!("RESOLVED"),
                "Workflow: expected an object",
            ),
            ("VerificationState", json!("MAYBE"), "VerificationState"),
            (
                "Note",
                json!({"Text": "t"}),
                "Note.UpdatedBy: required member is missing",
            ),
            (
                "Note",
                json!({"Text": "\n\t", "UpdatedBy": "me"}),
                "Note.Text: must contain",
            ),
            (
                "Note",
                json!({"Text": "x".repeat(513), "UpdatedBy": "me"}),
                "Note.Text: must be at most 512",
            ),
            ("Types", json!(["ok", ""]), "Types[1]"),
            ("Types", json!(vec!["t"; 51]), "at most 50 items"),
            ("UserDefinedFields", json!({"k": ""}), "UserDefinedFields.k"),
            ("UserDefinedFields", json!({"k": 1}), "expected a string"),
            (
                "UserDefinedFields",
                json!({"k": "x".repeat(1025)}),
                "at most 1024",
            ),
            (
                "RelatedFindings",
                json!([{"Id": "x"}]),
                "RelatedFindings[0].ProductArn",
            ),
        ];
        for (field, value, want) in field_cases {
            let mut body = base();
            body[field] = value;
            let err = update(body.clone()).unwrap_err().0;
            assert!(err.contains(want), "{body}: {err}");
        }
        let too_many: Map<String, Value> = (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
        let mut body = base();
        body["UserDefinedFields"] = Value::Object(too_many);
        assert!(update(body).unwrap_err().0.contains("at most 50 pairs"));
    }

    #[test]
    fn body_level_errors() {
        let sem = Semantics::default();
        assert!(
            parse_batch_update(b"{not json", &sem)
                .unwrap_err()
                .0
                .starts_with("request body is not valid JSON")
        );
        assert!(
            parse_batch_update(b"[1]", &sem)
                .unwrap_err()
                .0
                .contains("must be a JSON object, got an array")
        );
        assert!(
            parse_batch_update(b"", &sem)
                .unwrap_err()
                .0
                .contains("FindingIdentifiers")
        );
        assert!(parse_get_findings(b"").is_ok());
        assert!(parse_get_findings(b"  ").is_ok());
    }

    #[test]
    fn semantics_change_limits() {
        let sem = Semantics {
            max_identifiers: 200,
            allow_empty_identifiers: true,
            reject_no_update_fields: true,
            ..Semantics::default()
        };
        let body = |n| {
            serde_json::to_vec(&json!({"FindingIdentifiers": ids(n), "Confidence": 1})).unwrap()
        };
        assert!(parse_batch_update(&body(0), &sem).is_ok());
        assert!(parse_batch_update(&body(150), &sem).is_ok());
        assert!(parse_batch_update(&body(201), &sem).is_err());
        let none = serde_json::to_vec(&json!({"FindingIdentifiers": ids(1)})).unwrap();
        assert!(
            parse_batch_update(&none, &sem)
                .unwrap_err()
                .0
                .contains("at least one field")
        );
        assert!(parse_batch_update(&none, &Semantics::default()).is_ok());
    }

    fn finding() -> Map<String, Value> {
        json!({
            "SchemaVersion": "2018-10-08",
            "Id": "f-1",
            "ProductArn": "arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default",
            "GeneratorId": "gen",
            "AwsAccountId": "123456789012",
            "CreatedAt": "2026-01-01T00:00:00Z",
            "UpdatedAt": "2026-01-02T00:00:00.5Z",
            "Severity": {"Normalized": 45},
            "Title": "t",
            "Description": "d",
            "Resources": [{"Type": "Other", "Id": "r"}],
            "Compliance": {"Status": "FAILED"},
            "RecordState": "ACTIVE"
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn import_check_accepts_and_indexes() {
        let f = check_finding(finding()).unwrap();
        assert_eq!(f.key.id, "f-1");
        assert_eq!(f.severity_label, Some(SeverityLabel::Medium));
        assert_eq!(f.workflow_status, WorkflowStatus::New);
        assert_eq!(f.compliance_status, Some(ComplianceStatus::Failed));
        assert_eq!(f.record_state, Some(RecordState::Active));
        assert_eq!(
            f.updated_at_ms,
            parse_timestamp("2026-01-02T00:00:00.5Z").unwrap()
        );
    }

    #[test]
    fn import_check_reports_like_the_service() {
        let cases: Vec<(&str, Option<Value>, &str)> = vec![
            ("Title", None, "data should have required property 'Title'"),
            (
                "Title",
                Some(json!("x".repeat(257))),
                "data.Title should NOT be longer than 256 characters",
            ),
            ("SchemaVersion", Some(json!("2019-01-01")), "SchemaVersion"),
            (
                "AwsAccountId",
                Some(json!("12345")),
                "data.AwsAccountId should NOT be shorter than 12",
            ),
            ("AwsAccountId", Some(json!("12345678901x")), "pattern"),
            (
                "CreatedAt",
                Some(json!("yesterday")),
                "data.CreatedAt should match format \"date-time\"",
            ),
            (
                "Severity",
                Some(json!({"Original": "5"})),
                "'Label' or 'Normalized'",
            ),
            ("Severity", Some(json!({"Label": "BAD"})), "Severity.Label"),
            (
                "Resources",
                Some(json!([])),
                "data.Resources should NOT have fewer than 1 items",
            ),
            (
                "Resources",
                Some(json!([{"Type": "Other"}])),
                "data.Resources[0] should have required property 'Id'",
            ),
            ("Types", Some(json!(vec!["a/b"; 51])), "more than 50 items"),
            (
                "Workflow",
                Some(json!({"Status": "DONE"})),
                "Workflow.Status",
            ),
            ("RecordState", Some(json!("GONE")), "RecordState"),
            ("Confidence", Some(json!(200)), "Confidence"),
            (
                "Note",
                Some(json!({"Text": "t", "UpdatedBy": "u"})),
                "'UpdatedAt'",
            ),
            (
                "ProductFields",
                Some(json!({"k": "x".repeat(2049)})),
                "ProductFields['k']",
            ),
            ("Id", Some(json!(7)), "data.Id should be string"),
        ];
        for (key, value, want) in cases {
            let mut f = finding();
            match value {
                Some(v) => f.insert(key.to_owned(), v),
                None => f.remove(key),
            };
            let err = check_finding(f).unwrap_err();
            assert_eq!(err.code, "InvalidInput");
            assert!(err.message.starts_with(ASFF_PREFIX), "{}", err.message);
            assert!(err.message.contains(want), "{key}: {}", err.message);
        }
        let mut big = finding();
        big.insert(
            "ProductFields".into(),
            Value::Object(
                (0..50)
                    .map(|i| (format!("k{i}"), json!("x".repeat(2048))))
                    .collect(),
            ),
        );
        big.insert(
            "UserDefinedFields".into(),
            Value::Object(
                (0..50)
                    .map(|i| (format!("k{i}"), json!("x".repeat(1024))))
                    .collect(),
            ),
        );
        big.insert("Resources".into(), json!(vec![json!({"Type": "Other", "Id": "r", "Details": {"Other": {"blob": "y".repeat(2048)}}}); 32]));
        big.insert(
            "Threats".into(),
            json!(vec![json!({"Name": "z".repeat(3000)}); 32]),
        );
        let err = check_finding(big).unwrap_err();
        assert_eq!((err.code, err.id.as_str()), ("FindingSizeExceeded", "f-1"));
    }

    #[test]
    fn import_request_limits() {
        assert!(
            parse_batch_import(br#"{"Findings": []}"#)
                .unwrap_err()
                .0
                .contains("1 to 100")
        );
        assert!(
            parse_batch_import(br#"{"Findings": [1]}"#)
                .unwrap_err()
                .0
                .contains("Findings[0]: expected an object")
        );
        let ok = parse_batch_import(
            &serde_json::to_vec(&json!({"Findings": [finding(), {"Id": "bad"}]})).unwrap(),
        )
        .unwrap();
        assert!(ok[0].is_ok());
        assert_eq!(ok[1].as_ref().unwrap_err().id, "bad");
    }

    #[test]
    fn get_findings_members() {
        let r =
            parse_get_findings(br#"{"MaxResults": 7, "NextToken": "abc", "Filters": {}}"#).unwrap();
        assert_eq!((r.max_results, r.next_token.as_deref()), (7, Some("abc")));
        assert_eq!(
            parse_get_findings(b"{}").unwrap().max_results,
            DEFAULT_PAGE_SIZE
        );
        for (body, want) in [
            (r#"{"MaxResults": 0}"#, "between 1 and 100"),
            (r#"{"MaxResults": 101}"#, "between 1 and 100"),
            (r#"{"MaxResults": "5"}"#, "expected an integer"),
            (r#"{"NextToken": 5}"#, "NextToken"),
            (r#"{"Filters": []}"#, "Filters: expected an object"),
            (r#"{"SortCriteria": [{"Field": "Id"}]}"#, "not supported"),
        ] {
            assert!(
                parse_get_findings(body.as_bytes())
                    .unwrap_err()
                    .0
                    .contains(want),
                "{body}"
            );
        }
    }
}
