//! Streaming input readers: turn exported finding lists (CSV, Parquet, JSON
//! flavours, optionally gzip/zstd-compressed) into one [`SourceItem`] per
//! finding record.
//!
//! Reading is blocking and streaming: memory stays flat however large the
//! input (except Parquet read from standard input or from a compressed file,
//! which needs random access and is buffered whole). Every record is checked
//! by the same identifier rules (see `ident`), so a bad Id is rejected the
//! same way in every format.
//!
//! This module does not deduplicate, chunk, or call Security Hub: that is the
//! engine's job. Besides the identifiers, readers fill each record's
//! per-row decision (`SourceRecord::decision`, from CSV and flat Parquet
//! columns named after decision fields, see `fields`) and the finding's
//! exported state (`SourceRecord::current`: from ASFF and OCSF JSON, OCSF
//! columns, and context columns such as the account). The Region comes from
//! the product ARN, not from a Region column. Each reader resolves its
//! columns once into a column plan (CSV header indices, the Parquet
//! projection mask of leaf columns, the JSON field struct).

mod csv;
mod error;
mod fields;
mod ident;
mod input;
mod json;
mod parquet;
mod recent;
pub(crate) mod recorded;
mod v2keys;

use std::collections::VecDeque;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

pub use self::error::SourceError;
pub use self::error::SourceErrorKind;
pub(crate) use self::error::printable;
pub use self::v2keys::v2_keys;
pub use crate::model::{FindingKey, InvalidRecord, Location, SourceItem, SourceRecord};

/// An input format. `Json` covers every JSON flavour (the `get-findings`
/// document, JSON Lines, EventBridge events, Firehose concatenated records,
/// a bare array), told apart by sniffing the content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Comma- (or otherwise) separated values with a header row.
    Csv,
    /// Apache Parquet, flat or with OCSF nested struct columns.
    Parquet,
    /// Any of the JSON flavours.
    Json,
}

impl Format {
    /// The lowercase name used by `--format`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
            Format::Json => "json",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error of [`Format::from_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format {0:?}: expected csv, tsv, parquet, json, jsonl or ndjson")]
pub struct ParseFormatError(String);

impl FromStr for Format {
    type Err = ParseFormatError;

    /// Accepts `csv`/`tsv`, `parquet`, `json`/`jsonl`/`ndjson`, ignoring case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "csv" | "tsv" => Ok(Format::Csv),
            "parquet" => Ok(Format::Parquet),
            "json" | "jsonl" | "ndjson" => Ok(Format::Json),
            _ => Err(ParseFormatError(s.to_owned())),
        }
    }
}

/// How to read the inputs; every field is optional and defaults to detection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceOptions {
    /// `--format`: overrides detection by extension and content.
    pub format: Option<Format>,
    /// `--delimiter` (CSV). Without it: tab for `.tsv`, otherwise sniffed
    /// from the header line among `,` `\t` `;` `|`, defaulting to `,`.
    pub delimiter: Option<u8>,
    /// `--id-column`: CSV/Parquet column name, or dotted path for nested
    /// columns (Parquet structs, JSON objects).
    pub id_column: Option<String>,
    /// `--product-arn-column`, like `id_column`.
    pub product_arn_column: Option<String>,
    /// `--region`: when set, a ProductArn that is not a Security Hub product
    /// ARN is accepted (the caller knows which Region to call).
    pub region: Option<String>,
    /// `--row-decisions`: which columns named after a decision field are
    /// per-row decisions. By default none: every such column is read as the
    /// finding's recorded state (exports record what a finding holds now).
    pub row_decisions: RowDecisions,
    /// The command line sets no decision: without per-row decisions there
    /// is nothing to write, so opening an input is refused with a message
    /// naming the columns that look like decisions and the flag to take them.
    pub no_decision: bool,
    /// Where readers report what they decided about an input that the user
    /// should know (which columns they take as per-row decisions).
    pub notices: Notices,
    /// The run sends `BatchUpdateFindingsV2`: a CSV that names findings by
    /// `metadata.uid` alone (the V2 export job's CSV with that column
    /// selected) is read; for `BatchUpdateFindings` it is refused, saying
    /// why.
    pub v2: bool,
}

/// Which columns are per-row decisions (`--row-decisions`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RowDecisions {
    /// None: every column named after a finding field is recorded state.
    #[default]
    Off,
    /// `--row-decisions`: every decision-named column.
    All,
    /// `--row-decisions=COL,COL`: only these columns (matched ignoring case
    /// and `.`/`_`/`-`/spaces, so `Workflow.Status` names `workflow_status`).
    Only(Vec<String>),
}

impl RowDecisions {
    /// Parses the flag's value: empty is every column, else a comma list.
    pub(crate) fn from_flag(value: &str) -> Self {
        let cols: Vec<String> = value
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect();
        if cols.is_empty() {
            RowDecisions::All
        } else {
            RowDecisions::Only(cols)
        }
    }

    /// Whether any column may be a decision.
    pub(crate) fn is_on(&self) -> bool {
        !matches!(self, RowDecisions::Off)
    }
}

/// Something a reader decided about an input that the user should know.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// These columns of `input` are taken as per-row decisions.
    DecisionColumns {
        /// The input's name.
        input: Arc<str>,
        /// The columns, as the input spells them.
        columns: Vec<String>,
    },
    /// ASFF identifiers of `input` are used with the new Security Hub's
    /// decision flags: mapped to OCSF triples.
    AsffForV2 {
        /// The input's name.
        input: Arc<str>,
    },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::DecisionColumns { input, columns } => write!(
                f,
                "{input}: per-row decision columns (--row-decisions): {} (a row's non-empty values \
                 override the command line's decision for that row)",
                columns.join(", ")
            ),
            Notice::AsffForV2 { input } => write!(
                f,
                "{input}: ASFF findings with new Security Hub decision flags: AwsAccountId, Id and \
                 ProductArn are sent as CloudAccountUid, FindingInfoUid and MetadataProductUid \
                 (product/ becomes productv2/); a finding missing from the new Security Hub is \
                 recorded ResourceNotFoundException"
            ),
        }
    }
}

/// A callback for [`Notice`]s. The CLI prints them on standard error; the
/// default drops them.
#[derive(Clone, Default)]
pub struct Notices(Option<Arc<NoticeFn>>);

type NoticeFn = dyn Fn(&Notice) + Send + Sync;

impl Notices {
    /// Sends every notice to `f`.
    pub fn to(f: impl Fn(&Notice) + Send + Sync + 'static) -> Self {
        Notices(Some(Arc::new(f)))
    }

    pub(crate) fn send(&self, notice: Notice) {
        if let Some(f) = &self.0 {
            f(&notice);
        }
    }
}

impl fmt::Debug for Notices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Notices(..)"
        } else {
            "Notices(none)"
        })
    }
}

/// Notice callbacks never make two option sets differ.
impl PartialEq for Notices {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Notices {}

/// Tells the user which columns of `name` are taken as per-row decisions.
fn announce_decision_columns(name: &Arc<str>, plan: &fields::FieldPlan, opts: &SourceOptions) {
    let columns = plan.decision_columns();
    if !columns.is_empty() {
        opts.notices.send(Notice::DecisionColumns {
            input: name.clone(),
            columns: columns.into_iter().map(str::to_owned).collect(),
        });
    }
}

/// Refuses an input when the command line sets no decision and no column
/// is taken as a per-row decision: naming the columns that look like
/// decisions (read as state) and the flag that takes them.
fn check_decision(
    name: &Arc<str>,
    plan: &fields::FieldPlan,
    opts: &SourceOptions,
) -> Result<(), SourceError> {
    if opts.no_decision && plan.decision_columns().is_empty() {
        return Err(SourceError::new(
            name,
            SourceErrorKind::NoDecision {
                columns: plan.decision_like_columns().to_vec(),
            },
        ));
    }
    Ok(())
}

/// One input: a file, or standard input.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum InputSpec {
    /// A file path.
    Path(PathBuf),
    /// Standard input (`-` on the command line).
    Stdin,
}

impl InputSpec {
    /// `-` means standard input; anything else is a path.
    pub fn parse(s: &str) -> Self {
        if s == "-" {
            InputSpec::Stdin
        } else {
            InputSpec::Path(PathBuf::from(s))
        }
    }

    /// The name used in locations and messages: the path as given, or `-`.
    pub(crate) fn display_name(&self) -> Arc<str> {
        match self {
            InputSpec::Path(p) => Arc::from(p.to_string_lossy().as_ref()),
            InputSpec::Stdin => Arc::from("-"),
        }
    }
}

/// A reader of one input: yields items until the input ends or a fatal error.
pub(crate) type RecordIter = Box<dyn Iterator<Item = Result<SourceItem, SourceError>> + Send>;

/// Opens every input in order and yields one item per finding record.
///
/// Blocking I/O: run it on its own thread. The first input is opened (and
/// its header or schema checked) here, and every named file must exist, so
/// that mistakes surface before anything is sent. Fatal problems later on
/// (a truncated file, a missing column in the third file) are `Err` items,
/// after which the iterator ends. Per-record problems are
/// `Ok(SourceItem::Invalid)` and reading goes on.
pub fn open(inputs: &[InputSpec], opts: &SourceOptions) -> Result<Source, SourceError> {
    if inputs.is_empty() {
        return Err(SourceError::general(SourceErrorKind::NoInput));
    }
    if inputs.iter().filter(|i| **i == InputSpec::Stdin).count() > 1 {
        return Err(SourceError::general(SourceErrorKind::StdinTwice));
    }
    for spec in inputs {
        if let InputSpec::Path(path) = spec {
            input::check_exists(path, &spec.display_name())?;
        }
    }
    let mut pending: VecDeque<InputSpec> = inputs.iter().cloned().collect();
    let first = pending
        .pop_front()
        .map(|spec| input::open_input(&spec, opts));
    let current = match first {
        Some(result) => Some(result?),
        None => None,
    };
    Ok(Source {
        pending,
        opts: opts.clone(),
        current,
        finished: false,
    })
}

/// Like [`open`] for one input that is already a byte stream (an object
/// body, a pipe, bytes in memory). `name` is used in locations and errors,
/// and its extension, if any, like a file's. Parquet is buffered whole,
/// since it needs random access.
pub(crate) fn open_reader(
    name: &str,
    reader: impl std::io::Read + Send + 'static,
    opts: &SourceOptions,
) -> Result<Source, SourceError> {
    let current = input::open_named_stream(name, Box::new(reader), opts)?;
    Ok(Source {
        pending: VecDeque::new(),
        opts: opts.clone(),
        current: Some(current),
        finished: false,
    })
}

/// The stream of records of all inputs, in order. See [`open`].
pub struct Source {
    pending: VecDeque<InputSpec>,
    opts: SourceOptions,
    current: Option<RecordIter>,
    finished: bool,
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("pending", &self.pending)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl Iterator for Source {
    type Item = Result<SourceItem, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.finished {
                return None;
            }
            if let Some(current) = &mut self.current {
                match current.next() {
                    Some(Ok(item)) => return Some(Ok(item)),
                    Some(Err(e)) => {
                        self.finished = true;
                        self.current = None;
                        return Some(Err(e));
                    }
                    None => self.current = None,
                }
            }
            let Some(spec) = self.pending.pop_front() else {
                self.finished = true;
                return None;
            };
            match input::open_input(&spec, &self.opts) {
                Ok(reader) => self.current = Some(reader),
                Err(e) => {
                    self.finished = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl std::iter::FusedIterator for Source {}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn source_is_send_and_errors_are_send_sync() {
        assert_send::<Source>();
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<SourceError>();
    }

    #[test]
    fn input_spec_parsing() {
        assert_eq!(InputSpec::parse("-"), InputSpec::Stdin);
        assert_eq!(InputSpec::parse("a.csv"), InputSpec::Path("a.csv".into()));
        assert_eq!(&*InputSpec::Stdin.display_name(), "-");
        assert_eq!(&*InputSpec::parse("dir/a.csv").display_name(), "dir/a.csv");
    }

    #[test]
    fn format_names() {
        assert_eq!("NDJSON".parse::<Format>(), Ok(Format::Json));
        assert_eq!("tsv".parse::<Format>(), Ok(Format::Csv));
        assert!("xml".parse::<Format>().is_err());
    }

    #[test]
    fn open_reader_detects_like_a_file() {
        let data = "Id,ProductArn\nr-1,arn:aws:securityhub:us-east-1::product/aws/guardduty\n";
        let items: Vec<_> =
            open_reader("mem", std::io::Cursor::new(data), &SourceOptions::default())
                .unwrap()
                .collect();
        assert_eq!(items.len(), 1);
        let Ok(SourceItem::Record(r)) = &items[0] else {
            panic!("{items:?}")
        };
        assert_eq!(&*r.location.file, "mem");
        assert_eq!(r.key.id, "r-1");
    }

    #[test]
    fn open_rejects_empty_and_double_stdin() {
        let e = open(&[], &SourceOptions::default()).unwrap_err();
        assert_eq!(e.kind(), &SourceErrorKind::NoInput);
        let e = open(
            &[InputSpec::Stdin, InputSpec::Stdin],
            &SourceOptions::default(),
        )
        .unwrap_err();
        assert_eq!(e.kind(), &SourceErrorKind::StdinTwice);
    }
}
