//! From the AWS CLI's flag values and `--cli-input-json` to a [`Decision`].
//!
//! The AWS CLI decides per flag how to read a value, and so does this module:
//! - `file://path` is replaced by the file's text first (a leading `~/` is the
//!   home directory, as in the CLI);
//! - integer flags (`--confidence`, `--criticality`) take an integer, enum
//!   flags (`--verification-state`) the bare value; surrounding whitespace is
//!   ignored (a file's trailing newline);
//! - structure and map flags (`--note`, `--severity`, `--workflow`,
//!   `--user-defined-fields`) take JSON when the value starts with `{` (or
//!   `[`, which is then a type error), shorthand otherwise;
//! - list flags take several values: `--types` each value one type (or one
//!   JSON array), `--related-findings` each value one finding in shorthand
//!   or as a JSON object (or one JSON array of them).
//!
//! JSON is typed strictly, as botocore checks it (`"Confidence": "80"` is an
//! error); shorthand scalars are strings converted to the member's type, as
//! the AWS CLI does. Nothing here checks value rules: that is
//! [`super::validate`], which the public functions run on what they parse.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::num::IntErrorKind;
use std::path::PathBuf;

use serde_json::{Map, Value};

use super::error::{DecisionError, DecisionErrorKind, quote};
use super::shorthand::{self, Node};
use super::validate::{self, Rules, user_defined_path};
use super::{
    Decision, DecisionField, FiniteF64, NoteUpdate, SeverityLabel, SeverityUpdate,
    VerificationState, WorkflowStatus, WorkflowUpdate,
};
use crate::model::FindingKey;

/// The flag name used in errors about `--cli-input-json`.
const CLI_INPUT_JSON: &str = "--cli-input-json";

/// What `--cli-input-json` holds: the decision, and the findings it names
/// (which join the findings read from the input files).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CliInput {
    /// The decision members of the document.
    pub decision: Decision,
    /// `FindingIdentifiers`, in document order (empty when absent); in a
    /// `batch-update-findings-v2` document, OCSF triples (keys with
    /// [`FindingKey::account_uid`] set).
    pub finding_identifiers: Vec<FindingKey>,
    /// `MetadataUids` of a `batch-update-findings-v2` document, in order.
    pub metadata_uids: Vec<String>,
}

/// Parses one flag's values the way the AWS CLI does, and checks the field
/// against the service's rules with the default [`Rules`].
///
/// `values` are the flag's arguments after shell unquoting: one for scalar,
/// structure and map flags, one or more for `--types` and
/// `--related-findings`. The result has only `field` set.
pub fn parse_flag(field: DecisionField, values: &[String]) -> Result<Decision, DecisionError> {
    parse_flag_with(field, values, &Rules::default())
}

/// [`parse_flag`] with explicit [`Rules`].
pub(crate) fn parse_flag_with(
    field: DecisionField,
    values: &[String],
    rules: &Rules,
) -> Result<Decision, DecisionError> {
    let flag = field.flag();
    let decision = flag_value(field, values).map_err(|e| e.with_flag(flag))?;
    validate::check_field(&decision, field, rules).map_err(|e| e.with_flag(flag))?;
    Ok(decision)
}

/// Parses `--cli-input-json` (JSON text or `file://path`): the AWS CLI's
/// document for `batch-update-findings`, with PascalCase members. Unknown
/// members are errors; `null` members count as absent, as in the AWS CLI.
/// The decision's fields are checked with the default [`Rules`]; the
/// decision may be empty (flags may add to it).
#[cfg(test)]
pub(crate) fn parse_cli_input_json(s: &str) -> Result<CliInput, DecisionError> {
    parse_cli_input_json_with(s, &Rules::default())
}

/// [`parse_cli_input_json`] with explicit [`Rules`].
pub(crate) fn parse_cli_input_json_with(s: &str, rules: &Rules) -> Result<CliInput, DecisionError> {
    let input = cli_input(s).map_err(|e| e.with_flag(CLI_INPUT_JSON))?;
    validate::mixed(&input.decision).map_err(|e| e.with_flag(CLI_INPUT_JSON))?;
    for field in DecisionField::ALL {
        validate::check_field(&input.decision, field, rules)
            .map_err(|e| e.with_flag(CLI_INPUT_JSON))?;
    }
    validate::finding_identifiers(&input.finding_identifiers)
        .map_err(|e| e.with_flag(CLI_INPUT_JSON))?;
    Ok(input)
}

type Result<T, E = DecisionError> = std::result::Result<T, E>;

/// Which syntax a value came in, which decides how scalars convert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Syntax {
    Json,
    Shorthand,
}

fn err(path: impl Into<String>, kind: DecisionErrorKind) -> DecisionError {
    DecisionError::new(path, kind)
}

/// Replaces `file://path` by the file's text.
fn resolve_file<'a>(value: &'a str, path_for_errors: &str) -> Result<Cow<'a, str>> {
    let Some(rest) = value.strip_prefix("file://") else {
        return Ok(Cow::Borrowed(value));
    };
    let path = match rest.strip_prefix("~/") {
        Some(tail) => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(tail),
            None => PathBuf::from(rest),
        },
        None => PathBuf::from(rest),
    };
    let bytes = std::fs::read(&path).map_err(|source| {
        err(
            path_for_errors,
            DecisionErrorKind::ReadFile {
                path: path.clone(),
                source,
            },
        )
    })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| err(path_for_errors, DecisionErrorKind::NotUtf8 { path }))?;
    // Editors on Windows write a byte-order mark that JSON does not allow.
    Ok(Cow::Owned(match text.strip_prefix('\u{feff}') {
        Some(t) => t.to_owned(),
        None => text,
    }))
}

fn flag_value(field: DecisionField, values: &[String]) -> Result<Decision> {
    let member = field.member();
    if values.is_empty() {
        return Err(err(member, DecisionErrorKind::NoValue));
    }
    let texts = values
        .iter()
        .map(|v| resolve_file(v, member))
        .collect::<Result<Vec<_>>>()?;
    let mut d = Decision::default();
    match field {
        DecisionField::Confidence => {
            d.confidence = Some(int_text(member, one(member, &texts)?.trim())?);
        }
        DecisionField::Criticality => {
            d.criticality = Some(int_text(member, one(member, &texts)?.trim())?);
        }
        DecisionField::SeverityId => {
            d.severity_id = Some(int_text(member, one(member, &texts)?.trim())?);
        }
        DecisionField::StatusId => {
            d.status_id = Some(int_text(member, one(member, &texts)?.trim())?);
        }
        // A string member: taken as is, as the AWS CLI does.
        DecisionField::Comment => d.comment = Some(one(member, &texts)?.to_string()),
        DecisionField::VerificationState => {
            d.verification_state = Some(enum_text(
                member,
                one(member, &texts)?.trim(),
                VerificationState::from_name,
                VerificationState::NAMES,
            )?);
        }
        DecisionField::Note => {
            let (v, _) = structured(member, one(member, &texts)?)?;
            d.note = Some(note(&v)?);
        }
        DecisionField::Severity => {
            let (v, syntax) = structured(member, one(member, &texts)?)?;
            d.severity = Some(severity(&v, syntax)?);
        }
        DecisionField::Workflow => {
            let (v, _) = structured(member, one(member, &texts)?)?;
            d.workflow = Some(workflow(&v)?);
        }
        DecisionField::UserDefinedFields => {
            let (v, _) = structured(member, one(member, &texts)?)?;
            d.user_defined_fields = Some(user_defined_fields(&v)?);
        }
        DecisionField::Types => {
            d.types = Some(match json_array(member, &texts)? {
                Some(v) => string_list(member, &v)?,
                // The CLI's space-separated list: each value is one type, as is.
                None => texts.iter().map(|t| t.to_string()).collect(),
            });
        }
        DecisionField::RelatedFindings => {
            d.related_findings = Some(match json_array(member, &texts)? {
                Some(v) => related_findings(&v)?,
                None => texts
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        let path = format!("{member}[{i}]");
                        let (v, _) = structured(&path, t)?;
                        finding_key(&path, &v)
                    })
                    .collect::<Result<Vec<_>>>()?,
            });
        }
    }
    Ok(d)
}

/// The single value of a single-valued flag.
fn one<'a>(path: &str, texts: &'a [Cow<'a, str>]) -> Result<&'a str> {
    match texts {
        [only] => Ok(only),
        _ => Err(err(
            path,
            DecisionErrorKind::TooManyValues { count: texts.len() },
        )),
    }
}

/// A list flag given as one JSON array, as the AWS CLI detects it.
fn json_array(path: &str, texts: &[Cow<'_, str>]) -> Result<Option<Value>> {
    match texts {
        [only] if only.trim_start().starts_with('[') => Ok(Some(json(path, only)?)),
        _ => Ok(None),
    }
}

/// A structure or map value: JSON when it looks like JSON, else shorthand.
fn structured(path: &str, text: &str) -> Result<(Value, Syntax)> {
    let t = text.trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        Ok((json(path, text)?, Syntax::Json))
    } else {
        Ok((shorthand_value(path, text)?, Syntax::Shorthand))
    }
}

fn json(path: &str, text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| {
        err(
            path,
            DecisionErrorKind::Json {
                message: e.to_string(),
            },
        )
    })
}

fn shorthand_value(path: &str, text: &str) -> Result<Value> {
    match shorthand::parse(text) {
        Ok(pairs) => Ok(node_to_value(Node::Map(pairs))),
        Err(e) => Err(err(
            path,
            DecisionErrorKind::Shorthand {
                message: e.message,
                position: e.position + 1,
                input: excerpt(text, e.position),
            },
        )),
    }
}

/// The input around `position` (in characters), quoted, for a syntax error.
fn excerpt(text: &str, position: usize) -> String {
    const SIDE: usize = 30;
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= 2 * SIDE {
        return format!("{text:?}");
    }
    let start = position.saturating_sub(SIDE);
    let end = (position + SIDE).min(chars.len());
    let window: String = chars[start..end].iter().collect();
    format!(
        "{}{window:?}{}",
        if start > 0 { "…" } else { "" },
        if end < chars.len() { "…" } else { "" }
    )
}

fn node_to_value(node: Node) -> Value {
    match node {
        Node::Str(s) => Value::String(s),
        Node::List(items) => Value::Array(items.into_iter().map(node_to_value).collect()),
        Node::Map(pairs) => Value::Object(
            pairs
                .into_iter()
                .map(|(k, v)| (k, node_to_value(v)))
                .collect(),
        ),
    }
}

/// Describes a value for a type error: its kind and a short rendering.
fn describe(v: &Value) -> String {
    let kind = match v {
        Value::Null => return "null".to_owned(),
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "the number",
        Value::String(_) => "the string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    let text = match v {
        Value::String(s) => quote(s),
        other => {
            let s = other.to_string();
            if s.chars().count() > 60 {
                let head: String = s.chars().take(59).collect();
                format!("{head}…")
            } else {
                s
            }
        }
    };
    format!("{kind} {text}")
}

fn wrong_type(path: &str, expected: &'static str, v: &Value) -> DecisionError {
    err(
        path,
        DecisionErrorKind::WrongType {
            expected,
            found: describe(v),
        },
    )
}

fn string(path: &str, v: &Value) -> Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        // Shorthand makes a list of `a,b`; say how to keep the comma.
        Value::Array(_) => Err(err(
            path,
            DecisionErrorKind::WrongType {
                expected: "a string (in shorthand, quote a value that contains commas)",
                found: describe(v),
            },
        )),
        _ => Err(wrong_type(path, "a string", v)),
    }
}

/// An integer written as text (`--confidence 80`, shorthand `Normalized=40`).
fn int_text(path: &str, text: &str) -> Result<i32> {
    let out_of_range = || {
        err(
            path,
            DecisionErrorKind::OutOfRange {
                value: text.to_owned(),
                min: super::RATIO_SCALE_MIN.into(),
                max: super::RATIO_SCALE_MAX.into(),
            },
        )
    };
    match text.parse::<i64>() {
        Ok(n) => i32::try_from(n).map_err(|_| out_of_range()),
        Err(e)
            if matches!(
                e.kind(),
                IntErrorKind::PosOverflow | IntErrorKind::NegOverflow
            ) =>
        {
            Err(out_of_range())
        }
        Err(_) => Err(err(
            path,
            DecisionErrorKind::NotAnInteger {
                value: text.to_owned(),
            },
        )),
    }
}

/// An integer member (`Severity.Normalized`).
fn int(path: &str, v: &Value, syntax: Syntax) -> Result<i32> {
    match (v, syntax) {
        (Value::String(s), Syntax::Shorthand) => int_text(path, s.trim()),
        (Value::Number(n), _) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i32::try_from(i).map_err(|_| {
                err(
                    path,
                    DecisionErrorKind::OutOfRange {
                        value: n.to_string(),
                        min: super::RATIO_SCALE_MIN.into(),
                        max: super::RATIO_SCALE_MAX.into(),
                    },
                )
            }),
            (None, Some(_)) => Err(err(
                path,
                DecisionErrorKind::OutOfRange {
                    value: n.to_string(),
                    min: super::RATIO_SCALE_MIN.into(),
                    max: super::RATIO_SCALE_MAX.into(),
                },
            )),
            (None, None) => Err(wrong_type(path, "an integer", v)),
        },
        _ => Err(wrong_type(path, "an integer", v)),
    }
}

/// A double member (`Severity.Product`): finite, as JSON requires.
fn double(path: &str, v: &Value, syntax: Syntax) -> Result<FiniteF64> {
    let (value, shown) = match (v, syntax) {
        (Value::String(s), Syntax::Shorthand) => {
            let t = s.trim();
            let parsed = t
                .parse::<f64>()
                .map_err(|_| err(path, DecisionErrorKind::NotANumber { value: s.clone() }))?;
            (parsed, t.to_owned())
        }
        (Value::Number(n), _) => match n.as_f64() {
            Some(f) => (f, n.to_string()),
            None => return Err(wrong_type(path, "a number", v)),
        },
        _ => return Err(wrong_type(path, "a number", v)),
    };
    FiniteF64::new(value).ok_or_else(|| err(path, DecisionErrorKind::NotFinite { value: shown }))
}

fn enum_text<E>(
    path: &str,
    text: &str,
    from_name: fn(&str) -> Option<E>,
    names: &'static [&'static str],
) -> Result<E> {
    from_name(text).ok_or_else(|| {
        err(
            path,
            DecisionErrorKind::NotOneOf {
                value: text.to_owned(),
                allowed: names,
                hint: names
                    .iter()
                    .copied()
                    .find(|n| n.eq_ignore_ascii_case(text.trim())),
            },
        )
    })
}

fn enum_value<E>(
    path: &str,
    v: &Value,
    from_name: fn(&str) -> Option<E>,
    names: &'static [&'static str],
) -> Result<E> {
    let s = string(path, v)?;
    enum_text(path, &s, from_name, names)
}

/// The members of a structure, checked against the shape's member names.
fn members<'v>(
    path: &str,
    v: &'v Value,
    allowed: &'static [&'static str],
) -> Result<&'v Map<String, Value>> {
    let Value::Object(map) = v else {
        return Err(wrong_type(path, "an object", v));
    };
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(err(
            path,
            DecisionErrorKind::UnknownMember {
                member: unknown.clone(),
                allowed,
            },
        ));
    }
    Ok(map)
}

fn required<'v>(
    path: &str,
    map: &'v Map<String, Value>,
    member: &'static str,
) -> Result<&'v Value> {
    map.get(member)
        .ok_or_else(|| err(path, DecisionErrorKind::MissingMember { member }))
}

fn note(v: &Value) -> Result<NoteUpdate> {
    let map = members("Note", v, &["Text", "UpdatedBy"])?;
    Ok(NoteUpdate {
        text: string("Note.Text", required("Note", map, "Text")?)?,
        updated_by: string("Note.UpdatedBy", required("Note", map, "UpdatedBy")?)?,
    })
}

fn severity(v: &Value, syntax: Syntax) -> Result<SeverityUpdate> {
    let map = members("Severity", v, &["Label", "Normalized", "Product"])?;
    Ok(SeverityUpdate {
        label: map
            .get("Label")
            .map(|l| {
                enum_value(
                    "Severity.Label",
                    l,
                    SeverityLabel::from_name,
                    SeverityLabel::NAMES,
                )
            })
            .transpose()?,
        normalized: map
            .get("Normalized")
            .map(|n| int("Severity.Normalized", n, syntax))
            .transpose()?,
        product: map
            .get("Product")
            .map(|p| double("Severity.Product", p, syntax))
            .transpose()?,
    })
}

fn workflow(v: &Value) -> Result<WorkflowUpdate> {
    let map = members("Workflow", v, &["Status"])?;
    Ok(WorkflowUpdate {
        status: enum_value(
            "Workflow.Status",
            required("Workflow", map, "Status")?,
            WorkflowStatus::from_name,
            WorkflowStatus::NAMES,
        )?,
    })
}

fn user_defined_fields(v: &Value) -> Result<BTreeMap<String, String>> {
    let Value::Object(map) = v else {
        return Err(wrong_type("UserDefinedFields", "an object", v));
    };
    map.iter()
        .map(|(k, v)| Ok((k.clone(), string(&user_defined_path(k), v)?)))
        .collect()
}

fn string_list(path: &str, v: &Value) -> Result<Vec<String>> {
    let Value::Array(items) = v else {
        return Err(wrong_type(path, "a list", v));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| string(&format!("{path}[{i}]"), item))
        .collect()
}

/// `{Id, ProductArn}`, as in `RelatedFindings` and `FindingIdentifiers`.
fn finding_key(path: &str, v: &Value) -> Result<FindingKey> {
    let map = members(path, v, &["Id", "ProductArn"])?;
    Ok(FindingKey::new(
        string(&format!("{path}.Id"), required(path, map, "Id")?)?,
        string(
            &format!("{path}.ProductArn"),
            required(path, map, "ProductArn")?,
        )?,
    ))
}

/// An `OcsfFindingIdentifier` of a `batch-update-findings-v2` document.
fn ocsf_finding_key(path: &str, v: &Value) -> Result<FindingKey> {
    const MEMBERS: &[&str] = &["CloudAccountUid", "FindingInfoUid", "MetadataProductUid"];
    let map = members(path, v, MEMBERS)?;
    let get = |m: &'static str| string(&format!("{path}.{m}"), required(path, map, m)?);
    Ok(FindingKey::ocsf(
        get("CloudAccountUid")?,
        get("FindingInfoUid")?,
        get("MetadataProductUid")?,
    ))
}

fn related_findings(v: &Value) -> Result<Vec<FindingKey>> {
    let Value::Array(items) = v else {
        return Err(wrong_type("RelatedFindings", "a list", v));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| finding_key(&format!("RelatedFindings[{i}]"), item))
        .collect()
}

/// The members `--cli-input-json` may hold.
const CLI_INPUT_MEMBERS: &[&str] = &[
    "FindingIdentifiers",
    "MetadataUids",
    "Comment",
    "SeverityId",
    "StatusId",
    "Note",
    "Severity",
    "VerificationState",
    "Confidence",
    "Criticality",
    "Types",
    "UserDefinedFields",
    "Workflow",
    "RelatedFindings",
];

fn cli_input(s: &str) -> Result<CliInput> {
    let text = resolve_file(s, "")?;
    let doc = json("", &text)?;
    let map = members("", &doc, CLI_INPUT_MEMBERS)?;
    let mut out = CliInput::default();
    // The batch-update-findings-v2 document: its FindingIdentifiers are
    // OCSF triples, and it may name findings by MetadataUids instead.
    let v2 = ["MetadataUids", "Comment", "SeverityId", "StatusId"]
        .iter()
        .any(|m| map.iter().any(|(k, v)| k == m && !v.is_null()));
    let d = &mut out.decision;
    let j = Syntax::Json;
    for (member, v) in map {
        if v.is_null() {
            continue;
        }
        match member.as_str() {
            "FindingIdentifiers" => {
                let Value::Array(items) = v else {
                    return Err(wrong_type(member, "a list", v));
                };
                out.finding_identifiers.extend(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| {
                            let path = format!("FindingIdentifiers[{i}]");
                            if v2 {
                                ocsf_finding_key(&path, item)
                            } else {
                                finding_key(&path, item)
                            }
                        })
                        .collect::<Result<Vec<_>>>()?,
                );
            }
            "MetadataUids" => {
                let uids = string_list(member, v)?;
                out.metadata_uids = uids;
            }
            "Comment" => d.comment = Some(string(member, v)?),
            "SeverityId" => d.severity_id = Some(int(member, v, j)?),
            "StatusId" => d.status_id = Some(int(member, v, j)?),
            "Note" => d.note = Some(note(v)?),
            "Severity" => d.severity = Some(severity(v, j)?),
            "VerificationState" => {
                d.verification_state = Some(enum_value(
                    member,
                    v,
                    VerificationState::from_name,
                    VerificationState::NAMES,
                )?);
            }
            "Confidence" => d.confidence = Some(int(member, v, j)?),
            "Criticality" => d.criticality = Some(int(member, v, j)?),
            "Types" => d.types = Some(string_list(member, v)?),
            "UserDefinedFields" => d.user_defined_fields = Some(user_defined_fields(v)?),
            "Workflow" => d.workflow = Some(workflow(v)?),
            "RelatedFindings" => d.related_findings = Some(related_findings(v)?),
            // `members` has already refused anything else.
            _ => {}
        }
    }
    Ok(out)
}
