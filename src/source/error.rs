//! The fatal error of the input readers.
//!
//! A [`SourceError`] ends reading: the input is missing, is not the format it
//! claims, is truncated, or lacks an identifier column. Problems with a single
//! record are not errors; they are `SourceItem::Invalid` items.

use std::fmt;
use std::sync::Arc;

/// Boxed cause kept for `source()`, so error chains show the underlying
/// I/O, csv or Parquet error without repeating it in our own message.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A fatal problem with an input: after it the [`Source`](super::Source) ends.
///
/// Its `Display` names the input, the position where relevant, what was
/// wrong and what to do; the underlying cause, if any, is in `source()`.
///
/// Boxed, so that `Result<SourceItem, SourceError>` stays small.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SourceError(Box<Inner>);

#[derive(Debug, thiserror::Error)]
#[error("{}{}: {kind}", DisplayFile(.file), DisplayAt(.at))]
struct Inner {
    file: Option<Arc<str>>,
    at: Option<String>,
    kind: SourceErrorKind,
    #[source]
    cause: Option<BoxError>,
}

impl SourceError {
    pub(crate) fn new(file: &Arc<str>, kind: SourceErrorKind) -> Self {
        SourceError(Box::new(Inner {
            file: Some(file.clone()),
            at: None,
            kind,
            cause: None,
        }))
    }

    /// An error about the input list as a whole, not one input.
    pub(crate) fn general(kind: SourceErrorKind) -> Self {
        SourceError(Box::new(Inner {
            file: None,
            at: None,
            kind,
            cause: None,
        }))
    }

    pub(crate) fn at(mut self, at: impl Into<String>) -> Self {
        self.0.at = Some(at.into());
        self
    }

    pub(crate) fn caused_by(mut self, cause: impl Into<BoxError>) -> Self {
        self.0.cause = Some(cause.into());
        self
    }

    /// The input the error is about (`-` for standard input), if any.
    pub fn file(&self) -> Option<&str> {
        self.0.file.as_deref()
    }

    /// Where in the input, e.g. `line 17` or `row group 2`, when known.
    pub fn position(&self) -> Option<&str> {
        self.0.at.as_deref()
    }

    /// What went wrong.
    pub fn kind(&self) -> &SourceErrorKind {
        &self.0.kind
    }
}

/// What made an input unreadable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SourceErrorKind {
    /// No input was given at all.
    #[error("no input given: name at least one file, or - for standard input")]
    NoInput,
    /// Standard input was named more than once.
    #[error("standard input (-) is named more than once: it can only be read once")]
    StdinTwice,
    /// The file does not exist.
    #[error("no such file: check the path")]
    NotFound,
    /// The file exists but cannot be opened.
    #[error("cannot open the file: check that it is readable")]
    CannotOpen,
    /// The path names a directory.
    #[error("is a directory: name the files inside it instead")]
    IsDirectory,
    /// Reading failed at the operating-system level.
    #[error("read failed")]
    Read,
    /// A gzip or zstd stream ended early or is corrupt.
    #[error("the {0} data is truncated or corrupt: download or export the file again")]
    BadCompression(&'static str),
    /// The format could not be detected.
    #[error("cannot tell the input format: pass --format csv, parquet or json")]
    UnknownFormat,
    /// The content is not of the format the name or `--format` claims.
    #[error("not a {expected} file ({found}): pass --format to say what it is")]
    WrongFormat {
        /// The format that was expected.
        expected: &'static str,
        /// What the content looks like instead.
        found: String,
    },
    /// A CSV input has no header row.
    #[error("empty file: a CSV input needs a header row naming the Id and ProductArn columns")]
    NoHeader,
    /// An identifier column is missing.
    #[error("no {what} column (columns found: {found}): name the column with {flag} <NAME>{hint}")]
    MissingColumn {
        /// `finding Id` or `product ARN`.
        what: &'static str,
        /// The columns the input does have, comma-separated (possibly shortened).
        found: String,
        /// The flag that would fix it (`--id-column`, `--product-arn-column`).
        flag: &'static str,
        /// Extra advice, starting with `; ` when present.
        hint: String,
    },
    /// The content is malformed beyond a single record.
    #[error("malformed {format}: {detail}")]
    Malformed {
        /// `CSV`, `JSON` or `Parquet`.
        format: &'static str,
        /// What is wrong, as a lowercase fragment.
        detail: String,
    },
    /// Two header cells name the same column, so which one holds the value
    /// would be a guess.
    #[error(
        "the header names \"{name}\" more than once (columns {positions}): which one holds the \
         value would be a guess; rename or remove all but one"
    )]
    DuplicateColumn {
        /// The name, as in the header (made printable and cut).
        name: String,
        /// 1-based column positions, e.g. `1 and 2`.
        positions: String,
    },
    /// The command line sets no decision and per-row decisions are off.
    #[error("{}", no_decision_message(.columns))]
    NoDecision {
        /// The columns that look like decisions (read as state), as spelled.
        columns: Vec<String>,
    },
    /// `--row-decisions=COL` names a column that cannot be a decision.
    #[error("--row-decisions names column {column:?}, which {why}")]
    NotADecisionColumn {
        /// The column as the input spells it.
        column: String,
        /// Why it cannot be a decision.
        why: String,
    },
    /// One record is larger than the reader accepts.
    #[error(
        "a single record is larger than {limit} bytes, which no finding is: the file is malformed \
         (in CSV, typically an unterminated quote; in JSON, a layout this tool does not read)"
    )]
    RecordTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
}

/// Longest piece of input (a header cell, a value) quoted in a message.
pub(crate) const QUOTED_MAX_CHARS: usize = 80;

/// `s` made safe to print in a message: control characters (terminal
/// escape sequences, newlines) escaped as `\u{1b}`, and cut after `max`
/// characters with a note of how many more there were.
pub(crate) fn printable(s: &str, max: usize) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    for (n, c) in chars.by_ref().enumerate() {
        if n == max {
            let rest = 1 + chars.count();
            out.push_str(&format!("… ({rest} more characters)"));
            return out;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn no_decision_message(columns: &[String]) -> String {
    let mut m = String::from(
        "nothing to update: the command line sets no decision (--workflow, --note, --severity, ...)",
    );
    if columns.is_empty() {
        m.push_str(
            " and per-row decisions are off; give a decision on the command line, or \
             --row-decisions for an input that carries its own (a --failed file)",
        );
    } else {
        m.push_str(&format!(
            ". Columns that look like decisions: {}. They are read as the findings' current state \
             (beside a recorded_state column, as in a --failed file: ignored), never written, unless \
             you say so: --row-decisions takes every such column as a per-row \
             decision, --row-decisions={} only the ones named",
            columns.join(", "),
            columns[0]
        ));
    }
    m
}

struct DisplayFile<'a>(&'a Option<Arc<str>>);

impl fmt::Display for DisplayFile<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(file) => f.write_str(file),
            None => f.write_str("input"),
        }
    }
}

struct DisplayAt<'a>(&'a Option<String>);

impl fmt::Display for DisplayAt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(at) => write!(f, " ({at})"),
            None => Ok(()),
        }
    }
}
