//! The error a bad decision produces: which field, which rule, which value.
//!
//! Every message names the field the way the user wrote it (the flag, such
//! as `--confidence`, plus the API member path, such as `Note.Text`, when it
//! is nested) and the rule that was broken. Offending values are quoted and
//! cut to a readable length. Decision values are notes and labels, never
//! credentials, so they may appear in messages.

use std::fmt;
use std::path::PathBuf;

/// Longest value (in characters) quoted in full in an error message.
const MAX_QUOTED_CHARS: usize = 60;

/// Quotes `s` for an error message, cut to [`MAX_QUOTED_CHARS`] characters.
pub(crate) fn quote(s: &str) -> String {
    if s.chars().count() <= MAX_QUOTED_CHARS {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX_QUOTED_CHARS - 1).collect();
        format!("{head:?}… ({} characters)", s.chars().count())
    }
}

/// A decision that cannot be sent: bad syntax, a wrong type, or a value the
/// service would reject.
#[derive(Debug)]
pub struct DecisionError {
    flag: Option<&'static str>,
    path: String,
    kind: DecisionErrorKind,
}

impl DecisionError {
    pub(crate) fn new(path: impl Into<String>, kind: DecisionErrorKind) -> Self {
        DecisionError {
            flag: None,
            path: path.into(),
            kind,
        }
    }

    /// Attributes the error to a command-line flag (`--note`, `--cli-input-json`).
    pub(crate) fn with_flag(mut self, flag: &'static str) -> Self {
        self.flag = Some(flag);
        self
    }

    /// The flag the bad value came from, when it came from one.
    pub fn flag(&self) -> Option<&'static str> {
        self.flag
    }

    /// The API member path of the bad value, e.g. `Note.Text`,
    /// `RelatedFindings[1].Id`; empty when the error is about the whole input.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What was wrong.
    pub fn kind(&self) -> &DecisionErrorKind {
        &self.kind
    }
}

impl fmt::Display for DecisionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The flag alone says enough when the path is just the flag's own
        // member (`--confidence` is `Confidence`).
        let path_is_the_flag = self.flag.is_some_and(|flag| {
            super::DecisionField::ALL
                .iter()
                .any(|d| d.flag() == flag && d.member() == self.path)
        });
        match (self.flag, self.path.is_empty() || path_is_the_flag) {
            (Some(flag), true) => write!(f, "{flag}: {}", self.kind),
            (Some(flag), false) => write!(f, "{flag} ({}): {}", self.path, self.kind),
            (None, false) => write!(f, "{}: {}", self.path, self.kind),
            (None, true) => write!(f, "{}", self.kind),
        }
    }
}

impl std::error::Error for DecisionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
}

/// The rule a decision broke. Display strings are lowercase fragments that
/// follow the field name.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecisionErrorKind {
    /// No field at all: a bulk update must change something.
    #[error(
        "nothing to update: give at least one of --note, --severity, --verification-state, \
         --confidence, --criticality, --types, --user-defined-fields, --workflow, \
         --related-findings (Security Hub CSPM) or --status-id, --severity-id, --comment \
         (the new Security Hub), or the same members in --cli-input-json"
    )]
    NothingToUpdate,
    /// Fields of `BatchUpdateFindings` and of `BatchUpdateFindingsV2` in one
    /// decision: they are two operations on two services' copies of a
    /// finding, and one run sends one of them.
    #[error(
        "{v1} (Security Hub CSPM, BatchUpdateFindings) and {v2} (the new Security Hub, \
         BatchUpdateFindingsV2) cannot be mixed: they are different operations on different \
         copies of a finding; run them as two separate updates"
    )]
    MixedOperations {
        /// The `BatchUpdateFindings` fields given, as flags.
        v1: String,
        /// The `BatchUpdateFindingsV2` fields given, as flags.
        v2: String,
    },
    /// An OCSF id outside its documented list.
    #[error("{value} is not a valid value: must be one of {allowed}")]
    NotAnOcsfId {
        /// The value given.
        value: i64,
        /// The allowed values, with their meanings.
        allowed: &'static str,
    },
    /// A flag was given no value.
    #[error("expected a value")]
    NoValue,
    /// A single-valued flag was given several values.
    #[error("takes one value, got {count}")]
    TooManyValues {
        /// How many were given.
        count: usize,
    },
    /// `file://` could not be read.
    #[error("cannot read {}", path.display())]
    ReadFile {
        /// The path after `file://`.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `file://` content is not UTF-8.
    #[error("{} is not valid UTF-8 text", path.display())]
    NotUtf8 {
        /// The path after `file://`.
        path: PathBuf,
    },
    /// Shorthand syntax that does not parse.
    #[error("shorthand syntax error: {message} at character {position} of {input}")]
    Shorthand {
        /// What was expected or wrong.
        message: String,
        /// 1-based character position.
        position: usize,
        /// The input around the position, quoted.
        input: String,
    },
    /// JSON that does not parse.
    #[error("invalid JSON: {message}")]
    Json {
        /// serde_json's description, with line and column.
        message: String,
    },
    /// A value of the wrong JSON or shorthand type.
    #[error("expected {expected}, got {found}")]
    WrongType {
        /// What the API wants, e.g. `a string`.
        expected: &'static str,
        /// What was given, e.g. `a list ["a", "b"]`.
        found: String,
    },
    /// A member the API shape does not have.
    #[error("unknown member {}: must be one of {}", quote(member), allowed.join(", "))]
    UnknownMember {
        /// The member given.
        member: String,
        /// The shape's members.
        allowed: &'static [&'static str],
    },
    /// A required member is absent.
    #[error("missing required member {member}")]
    MissingMember {
        /// The member's name.
        member: &'static str,
    },
    /// Not an integer.
    #[error("{} is not an integer", quote(value))]
    NotAnInteger {
        /// The text given.
        value: String,
    },
    /// Not a number.
    #[error("{} is not a number", quote(value))]
    NotANumber {
        /// The text given.
        value: String,
    },
    /// NaN or infinite.
    #[error("{value} is not a finite number")]
    NotFinite {
        /// The value given.
        value: String,
    },
    /// An integer outside its range.
    #[error("{value} is out of range: must be {min} to {max}")]
    OutOfRange {
        /// The value given (as written when it does not fit an integer).
        value: String,
        /// Smallest allowed.
        min: i64,
        /// Largest allowed.
        max: i64,
    },
    /// Not one of an enum's values.
    #[error("{} is not a valid value: must be one of {}{}", quote(value), allowed.join(", "), hint_suffix(hint))]
    NotOneOf {
        /// The value given.
        value: String,
        /// The enum's values.
        allowed: &'static [&'static str],
        /// The allowed value it matches ignoring case, if any.
        hint: Option<&'static str>,
    },
    /// A NonEmptyString with no non-whitespace character.
    #[error("{} must contain a non-whitespace character", quote(value))]
    Blank {
        /// The value given.
        value: String,
    },
    /// A string longer than its documented limit.
    #[error("{} is {length} characters long: must be at most {max}", quote(value))]
    TooLong {
        /// The value given.
        value: String,
        /// Its length in characters (Unicode code points).
        length: usize,
        /// The limit.
        max: usize,
    },
    /// A string shorter than its documented limit.
    #[error("{} is {length} characters long: must be at least {min}", quote(value))]
    TooShort {
        /// The value given.
        value: String,
        /// Its length in characters.
        length: usize,
        /// The limit.
        min: usize,
    },
    /// A list or map with more entries than allowed.
    #[error("has {count} entries: at most {max} are allowed")]
    TooManyEntries {
        /// Entries given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A list with fewer entries than allowed.
    #[error("has {count} entries: at least {min} required")]
    TooFewEntries {
        /// Entries given.
        count: usize,
        /// The limit.
        min: usize,
    },
    /// A finding type that is not `namespace/category/classifier`.
    #[error(
        "{} is not a valid finding type: {reason} (the format is namespace/category/classifier, \
         with 1 to 3 non-empty parts)",
        quote(value)
    )]
    BadTypeFormat {
        /// The type given.
        value: String,
        /// Which part is wrong.
        reason: String,
    },
    /// A finding type outside the five documented namespaces.
    #[error(
        "{} is not a documented type namespace: must be one of {} (whether Security Hub \
         accepts other namespaces is unverified, so they are refused unless \
         --allow-unknown-type-namespaces (campaign files: allow_unknown_type_namespaces) is given)",
        quote(namespace),
        super::validate::TYPE_NAMESPACES.join(", ")
    )]
    UnknownTypeNamespace {
        /// The first part of the type.
        namespace: String,
    },
    /// `Severity` with no member.
    #[error("is empty: give at least one of Label, Normalized, Product")]
    EmptySeverity,
    /// `Severity.Label` and `Severity.Normalized` that the documented mapping
    /// says disagree.
    #[error(
        "Label {label} disagrees with Normalized {normalized}, which the documented mapping \
         makes {implied}; how Security Hub handles a disagreeing pair is undocumented, so give \
         only one of them or make them agree"
    )]
    SeverityMismatch {
        /// The label given.
        label: &'static str,
        /// The normalized score given.
        normalized: i32,
        /// The label the score maps to.
        implied: &'static str,
    },
}

fn hint_suffix(hint: &Option<&'static str>) -> String {
    match hint {
        Some(h) => format!(" (did you mean {h}?)"),
        None => String::new(),
    }
}
