//! The service's rules for a decision, checked before any call.
//!
//! Sources: docs/service-facts.md §2.2/§2.3 (model constraints: enums, 0–100 ranges,
//! `NonEmptyString` = pattern `.*\S.*`) and the ASFF documentation limits the
//! model does not encode (Note.Text 1–512, Types at most 50,
//! UserDefinedFields at most 50 pairs with keys up to 128 and values up to
//! 1024 characters, RelatedFindings 1–10). Where the service's behaviour is
//! unverified (unknown type namespaces, Label and Normalized that disagree)
//! the check refuses rather than guesses; [`Rules`] can relax the namespace
//! check.
//!
//! Lengths are counted in Unicode code points: the service's validation
//! messages ("should NOT be longer than 512 characters") are those of a JSON
//! Schema validator, which counts code points.
//!
//! Choices where the documentation is silent: an empty `Severity` is refused
//! (it would change nothing); an empty `Types` list or `UserDefinedFields`
//! map is allowed, as the model sets no minimum (what the service does with
//! one is unverified: replace with nothing, or ignore); `FindingIdentifiers`
//! from `--cli-input-json` get the `NonEmptyString` check only, since the
//! finding-list readers own identifier checks.

use std::collections::BTreeMap;

use super::error::{DecisionError, DecisionErrorKind, quote};
use super::{Decision, DecisionField, NoteUpdate, SeverityLabel, SeverityUpdate};
use crate::model::FindingKey;

/// Smallest `Confidence`, `Criticality` and `Severity.Normalized` (the model's `RatioScale`).
pub(crate) const RATIO_SCALE_MIN: i32 = 0;
/// Largest `Confidence`, `Criticality` and `Severity.Normalized`.
pub(crate) const RATIO_SCALE_MAX: i32 = 100;
/// Longest `Note.Text` (ASFF documentation).
pub(crate) const NOTE_TEXT_MAX_CHARS: usize = 512;
/// Longest `Note.UpdatedBy`. The ASFF documentation gives no limit; 512, as
/// for the text, keeps a runaway value from reaching the service.
pub(crate) const NOTE_UPDATED_BY_MAX_CHARS: usize = 512;
/// Most `Types` entries (ASFF documentation).
pub(crate) const TYPES_MAX: usize = 50;
/// Most `UserDefinedFields` pairs (ASFF documentation).
pub(crate) const USER_DEFINED_FIELDS_MAX: usize = 50;
/// Longest `UserDefinedFields` key (ASFF documentation).
pub(crate) const USER_DEFINED_KEY_MAX_CHARS: usize = 128;
/// Longest `UserDefinedFields` value (ASFF documentation).
pub(crate) const USER_DEFINED_VALUE_MAX_CHARS: usize = 1024;
/// Fewest `RelatedFindings` entries (ASFF documentation).
pub(crate) const RELATED_FINDINGS_MIN: usize = 1;
/// Most `RelatedFindings` entries (ASFF documentation).
pub(crate) const RELATED_FINDINGS_MAX: usize = 10;

/// The five documented finding-type namespaces (docs/service-facts.md §8.5).
pub(crate) const TYPE_NAMESPACES: [&str; 5] = [
    "Software and Configuration Checks",
    "TTPs",
    "Effects",
    "Unusual Behaviors",
    "Sensitive Data Identifications",
];

/// Choices for rules whose server-side behaviour is unverified.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rules {
    /// Accept a `Types` entry whose namespace is not one of
    /// [`TYPE_NAMESPACES`]. Off by default: whether Security Hub rejects such
    /// a type in `BatchUpdateFindings` is unverified, and a type the console
    /// does not group is almost always a typo.
    pub(crate) allow_unknown_type_namespaces: bool,
}

impl Rules {
    /// These rules, with unknown type namespaces accepted or not.
    pub(crate) fn allow_unknown_type_namespaces(mut self, allow: bool) -> Self {
        self.allow_unknown_type_namespaces = allow;
        self
    }
}

/// Longest `Comment` (`BatchUpdateFindingsV2`, API reference: 1–512).
pub(crate) const COMMENT_MAX_CHARS: usize = 512;
/// `SeverityId` values `BatchUpdateFindingsV2` accepts (OCSF: Unknown,
/// Informational, Low, Medium, High, Critical, Fatal, Other).
pub(crate) const SEVERITY_IDS: [i32; 8] = [0, 1, 2, 3, 4, 5, 6, 99];
/// `StatusId` values `BatchUpdateFindingsV2` accepts (OCSF: Unknown, New,
/// In Progress, Suppressed, Resolved, Archived, Other).
pub(crate) const STATUS_IDS: [i32; 7] = [0, 1, 2, 3, 4, 5, 99];

const SEVERITY_ID_TEXT: &str = "0 (Unknown), 1 (Informational), 2 (Low), 3 (Medium), 4 (High), \
                                5 (Critical), 6 (Fatal), 99 (Other)";
const STATUS_ID_TEXT: &str = "0 (Unknown), 1 (New), 2 (In Progress), 3 (Suppressed), \
                              4 (Resolved), 5 (Archived), 99 (Other)";

/// Checks the whole decision, including that it sets something and that it
/// does not mix the two operations' fields.
pub(crate) fn check(d: &Decision, rules: &Rules) -> Result<(), DecisionError> {
    if d.is_empty() {
        return Err(DecisionError::new("", DecisionErrorKind::NothingToUpdate));
    }
    mixed(d)?;
    for field in DecisionField::ALL {
        check_field(d, field, rules)?;
    }
    Ok(())
}

/// Checks one field, if it is set.
pub(crate) fn check_field(
    d: &Decision,
    field: DecisionField,
    rules: &Rules,
) -> Result<(), DecisionError> {
    let member = field.member();
    match field {
        DecisionField::Note => d.note.as_ref().map_or(Ok(()), note),
        DecisionField::Severity => d.severity.as_ref().map_or(Ok(()), severity),
        DecisionField::Confidence => d.confidence.map_or(Ok(()), |v| ratio(member, v)),
        DecisionField::Criticality => d.criticality.map_or(Ok(()), |v| ratio(member, v)),
        DecisionField::Types => d.types.as_deref().map_or(Ok(()), |t| types(t, rules)),
        DecisionField::UserDefinedFields => d
            .user_defined_fields
            .as_ref()
            .map_or(Ok(()), user_defined_fields),
        DecisionField::RelatedFindings => d
            .related_findings
            .as_deref()
            .map_or(Ok(()), related_findings),
        // Enums: the type admits only valid values.
        DecisionField::VerificationState | DecisionField::Workflow => Ok(()),
        DecisionField::Comment => d.comment.as_deref().map_or(Ok(()), |c| {
            non_empty(member, c)?;
            max_chars(member, c, COMMENT_MAX_CHARS)
        }),
        DecisionField::SeverityId => d.severity_id.map_or(Ok(()), |v| {
            ocsf_id(member, v, &SEVERITY_IDS, SEVERITY_ID_TEXT)
        }),
        DecisionField::StatusId => d
            .status_id
            .map_or(Ok(()), |v| ocsf_id(member, v, &STATUS_IDS, STATUS_ID_TEXT)),
    }
}

/// Refuses a decision that sets fields of both `BatchUpdateFindings` and
/// `BatchUpdateFindingsV2`.
pub(crate) fn mixed(d: &Decision) -> Result<(), DecisionError> {
    let fields = d.fields();
    let (v2, v1): (Vec<DecisionField>, Vec<DecisionField>) =
        fields.into_iter().partition(|f| f.is_v2());
    if v1.is_empty() || v2.is_empty() {
        return Ok(());
    }
    let flags = |fs: &[DecisionField]| fs.iter().map(|f| f.flag()).collect::<Vec<_>>().join(", ");
    Err(DecisionError::new(
        "",
        DecisionErrorKind::MixedOperations {
            v1: flags(&v1),
            v2: flags(&v2),
        },
    ))
}

fn ocsf_id(path: &str, v: i32, allowed: &[i32], text: &'static str) -> Result<(), DecisionError> {
    if !allowed.contains(&v) {
        return Err(DecisionError::new(
            path,
            DecisionErrorKind::NotAnOcsfId {
                value: v.into(),
                allowed: text,
            },
        ));
    }
    Ok(())
}

/// `NonEmptyString`'s `\S`: JavaScript's whitespace is Unicode White_Space
/// plus the byte-order mark.
pub(super) fn is_blank(s: &str) -> bool {
    s.chars().all(|c| c.is_whitespace() || c == '\u{feff}')
}

fn non_empty(path: &str, s: &str) -> Result<(), DecisionError> {
    if is_blank(s) {
        return Err(DecisionError::new(
            path,
            DecisionErrorKind::Blank {
                value: s.to_owned(),
            },
        ));
    }
    Ok(())
}

fn max_chars(path: &str, s: &str, max: usize) -> Result<(), DecisionError> {
    let length = s.chars().count();
    if length > max {
        return Err(DecisionError::new(
            path,
            DecisionErrorKind::TooLong {
                value: s.to_owned(),
                length,
                max,
            },
        ));
    }
    Ok(())
}

fn ratio(path: &str, v: i32) -> Result<(), DecisionError> {
    if !(RATIO_SCALE_MIN..=RATIO_SCALE_MAX).contains(&v) {
        return Err(DecisionError::new(
            path,
            DecisionErrorKind::OutOfRange {
                value: v.to_string(),
                min: RATIO_SCALE_MIN.into(),
                max: RATIO_SCALE_MAX.into(),
            },
        ));
    }
    Ok(())
}

fn note(n: &NoteUpdate) -> Result<(), DecisionError> {
    non_empty("Note.Text", &n.text)?;
    max_chars("Note.Text", &n.text, NOTE_TEXT_MAX_CHARS)?;
    non_empty("Note.UpdatedBy", &n.updated_by)?;
    max_chars("Note.UpdatedBy", &n.updated_by, NOTE_UPDATED_BY_MAX_CHARS)
}

fn severity(s: &SeverityUpdate) -> Result<(), DecisionError> {
    if s.label.is_none() && s.normalized.is_none() && s.product.is_none() {
        return Err(DecisionError::new(
            "Severity",
            DecisionErrorKind::EmptySeverity,
        ));
    }
    if let Some(n) = s.normalized {
        ratio("Severity.Normalized", n)?;
        if let (Some(label), Some(implied)) = (s.label, SeverityLabel::from_normalized(n))
            && label != implied
        {
            return Err(DecisionError::new(
                "Severity",
                DecisionErrorKind::SeverityMismatch {
                    label: label.as_str(),
                    normalized: n,
                    implied: implied.as_str(),
                },
            ));
        }
    }
    // Product is a FiniteF64: finite by construction.
    Ok(())
}

fn types(list: &[String], rules: &Rules) -> Result<(), DecisionError> {
    if list.len() > TYPES_MAX {
        return Err(DecisionError::new(
            "Types",
            DecisionErrorKind::TooManyEntries {
                count: list.len(),
                max: TYPES_MAX,
            },
        ));
    }
    for (i, t) in list.iter().enumerate() {
        let path = format!("Types[{i}]");
        non_empty(&path, t)?;
        let parts: Vec<&str> = t.split('/').collect();
        let bad = |reason: String| {
            DecisionError::new(
                &path,
                DecisionErrorKind::BadTypeFormat {
                    value: t.clone(),
                    reason,
                },
            )
        };
        if parts.len() > 3 {
            return Err(bad(format!("it has {} parts", parts.len())));
        }
        if let Some(empty) = parts.iter().position(|p| is_blank(p)) {
            return Err(bad(format!("part {} is empty", empty + 1)));
        }
        if !rules.allow_unknown_type_namespaces && !TYPE_NAMESPACES.contains(&parts[0]) {
            return Err(DecisionError::new(
                &path,
                DecisionErrorKind::UnknownTypeNamespace {
                    namespace: parts[0].to_owned(),
                },
            ));
        }
    }
    Ok(())
}

/// The member path of one user-defined field, readable even for odd keys.
pub(crate) fn user_defined_path(key: &str) -> String {
    let plain = !key.is_empty()
        && key.chars().count() <= 40
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '/' | '#'));
    if plain {
        format!("UserDefinedFields.{key}")
    } else {
        format!("UserDefinedFields[{}]", quote(key))
    }
}

fn user_defined_fields(map: &BTreeMap<String, String>) -> Result<(), DecisionError> {
    if map.len() > USER_DEFINED_FIELDS_MAX {
        return Err(DecisionError::new(
            "UserDefinedFields",
            DecisionErrorKind::TooManyEntries {
                count: map.len(),
                max: USER_DEFINED_FIELDS_MAX,
            },
        ));
    }
    for (k, v) in map {
        let path = user_defined_path(k);
        // A bad key is reported against the key itself, not its value.
        let key_path = format!("{path} key");
        if is_blank(k) {
            return Err(DecisionError::new(
                key_path,
                DecisionErrorKind::Blank { value: k.clone() },
            ));
        }
        if k.chars().count() > USER_DEFINED_KEY_MAX_CHARS {
            return Err(DecisionError::new(
                key_path,
                DecisionErrorKind::TooLong {
                    value: k.clone(),
                    length: k.chars().count(),
                    max: USER_DEFINED_KEY_MAX_CHARS,
                },
            ));
        }
        non_empty(&path, v)?;
        max_chars(&path, v, USER_DEFINED_VALUE_MAX_CHARS)?;
    }
    Ok(())
}

fn related_findings(list: &[FindingKey]) -> Result<(), DecisionError> {
    let count = list.len();
    if count < RELATED_FINDINGS_MIN {
        return Err(DecisionError::new(
            "RelatedFindings",
            DecisionErrorKind::TooFewEntries {
                count,
                min: RELATED_FINDINGS_MIN,
            },
        ));
    }
    if count > RELATED_FINDINGS_MAX {
        return Err(DecisionError::new(
            "RelatedFindings",
            DecisionErrorKind::TooManyEntries {
                count,
                max: RELATED_FINDINGS_MAX,
            },
        ));
    }
    for (i, key) in list.iter().enumerate() {
        non_empty(&format!("RelatedFindings[{i}].Id"), &key.id)?;
        non_empty(
            &format!("RelatedFindings[{i}].ProductArn"),
            &key.product_arn,
        )?;
    }
    Ok(())
}

/// Checks the identifiers of `--cli-input-json`'s `FindingIdentifiers`.
pub(crate) fn finding_identifiers(list: &[FindingKey]) -> Result<(), DecisionError> {
    for (i, key) in list.iter().enumerate() {
        non_empty(&format!("FindingIdentifiers[{i}].Id"), &key.id)?;
        non_empty(
            &format!("FindingIdentifiers[{i}].ProductArn"),
            &key.product_arn,
        )?;
    }
    Ok(())
}
