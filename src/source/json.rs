//! The JSON reader, for every JSON flavour findings are exported in:
//!
//! - the output of `aws securityhub get-findings` (`{"Findings":[...]}`,
//!   also GetFindingsV2's OCSF list), streamed element by element;
//! - JSON Lines of ASFF or OCSF findings (the V2 export job's `OCSF_JSON`);
//! - EventBridge "Security Hub Findings - Imported" events (`detail.findings[]`);
//! - Firehose's concatenated records with no delimiter between them;
//! - a bare array of findings (`get-findings --query Findings`).
//!
//! A small hand-written scanner walks the structure and cuts out one
//! element at a time (only its bytes are buffered, so a gigabyte
//! `get-findings` file is never loaded whole); each element is then
//! deserialized into a struct that holds only the identifier fields and the
//! finding's recorded state (workflow status, note, severity, ...: the
//! finding's `current` state, never a decision), serde skipping the rest.
//! With `--id-column`/`--product-arn-column` paths the element is read as a
//! generic value and only the identifiers are taken. The scanner checks structure only; anything it lets
//! through that is not valid JSON is caught by serde and reported as an
//! invalid record, and reading goes on.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::io::{BufRead, BufReader};
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use super::error::{SourceError, SourceErrorKind};
use super::fields::{self, FieldCell};
use super::ident::{self, Cell, Checker, IdentColumns};
use super::input::{InputInfo, Stream};
use super::recent::Recent;
use super::{RecordIter, RowDecisions, SourceOptions};
use crate::decision::{Decision, SeverityLabel};
use crate::model::{CurrentState, InvalidRecord, Location, SourceItem};

/// Opens a JSON input. `limit` bounds the size of one element.
pub(crate) fn open(
    stream: Stream,
    info: InputInfo,
    opts: &SourceOptions,
    limit: u64,
) -> Result<RecordIter, SourceError> {
    let custom =
        (opts.id_column.is_some() || opts.product_arn_column.is_some()).then(|| CustomPaths {
            id: opts.id_column.as_deref().map(split_path),
            arn: opts.product_arn_column.as_deref().map(split_path),
            cols: IdentColumns {
                id: opts.id_column.as_deref().unwrap_or("Id").into(),
                product_arn: opts
                    .product_arn_column
                    .as_deref()
                    .unwrap_or("ProductArn")
                    .into(),
            },
        });
    if opts.no_decision {
        // Finding documents carry state, never decisions.
        return Err(SourceError::new(
            &info.name,
            SourceErrorKind::NoDecision {
                columns: Vec::new(),
            },
        ));
    }
    // Per-row decisions are each record's `decision` member (a `--failed`
    // file's); a list of columns cannot name anything else in JSON.
    let takes_decisions = match &opts.row_decisions {
        RowDecisions::Off => false,
        RowDecisions::All => true,
        RowDecisions::Only(list) => {
            if let Some(other) = list.iter().find(|c| ident::normalize(c) != "decision") {
                return Err(SourceError::new(
                    &info.name,
                    SourceErrorKind::NotADecisionColumn {
                        column: other.trim().to_owned(),
                        why: "is not how a JSON input carries per-row decisions: each record's \
                              `decision` member (the BatchUpdateFindings members) is, taken with \
                              --row-decisions or --row-decisions=decision"
                            .into(),
                    },
                ));
            }
            true
        }
    };
    let checker = Checker::new(info.any_arn);
    Ok(Box::new(JsonRecords {
        checker,
        scanner: Scanner::new(BufReader::with_capacity(64 * 1024, stream), limit),
        state: State::Top,
        buf: Vec::new(),
        pending: VecDeque::new(),
        info,
        custom,
        row: 0,
        done: false,
        columns: Columns::new(opts.v2),
        caches: Caches {
            states: Recent::new(),
            decisions: takes_decisions.then(Recent::new),
        },
    }))
}

fn split_path(p: &str) -> Vec<String> {
    p.split('.').map(str::to_owned).collect()
}

/// A structural problem the scanner met.
enum ScanError {
    Io(std::io::Error),
    /// The input ended inside a value that started on this line.
    Truncated(u64),
    TooLarge,
    /// Bytes that cannot start or continue the expected structure.
    Unexpected {
        line: u64,
        found: String,
        expected: &'static str,
        /// The offending byte starts the next record: resume there instead
        /// of skipping its line.
        resume_here: bool,
    },
}

impl From<std::io::Error> for ScanError {
    fn from(e: std::io::Error) -> Self {
        ScanError::Io(e)
    }
}

struct Scanner<R> {
    reader: R,
    /// The 1-based line of the next unconsumed byte.
    line: u64,
    limit: u64,
    at_start: bool,
    /// Between top-level values (JSON Lines, concatenated records): a raw
    /// line break inside a string ends the (then malformed) record, so a
    /// truncated line cannot swallow the next one.
    lines_mode: bool,
    /// The last `skip_ws` crossed a line break.
    newline_before: bool,
}

impl<R: BufRead> Scanner<R> {
    fn new(reader: R, limit: u64) -> Self {
        Scanner {
            reader,
            line: 1,
            limit,
            at_start: true,
            lines_mode: false,
            newline_before: false,
        }
    }

    /// Skips whitespace (and a leading BOM) and peeks at the next byte.
    fn skip_ws(&mut self) -> Result<Option<u8>, ScanError> {
        if self.at_start {
            self.at_start = false;
            let buf = self.reader.fill_buf()?;
            if buf.starts_with(b"\xef\xbb\xbf") {
                self.reader.consume(3);
            }
        }
        self.newline_before = false;
        loop {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                return Ok(None);
            }
            let skip = buf
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(buf.len());
            let newlines = count_newlines(&buf[..skip]);
            self.newline_before |= newlines > 0;
            self.line += newlines;
            let next = buf.get(skip).copied();
            self.reader.consume(skip);
            if next.is_some() {
                return Ok(next);
            }
        }
    }

    fn bump(&mut self) {
        self.reader.consume(1);
    }

    fn unexpected(&self, found: u8, expected: &'static str) -> ScanError {
        // An object or array opening a new line, right after a record that
        // was cut short, is where the next record starts.
        let resume_here = self.newline_before && matches!(found, b'{' | b'[');
        let found = match found {
            b'\n' => "a line break".to_owned(),
            b if b.is_ascii_graphic() => format!("{:?}", b as char),
            b => format!("byte 0x{b:02x}"),
        };
        ScanError::Unexpected {
            line: self.line,
            found,
            expected,
            resume_here,
        }
    }

    /// Appends one complete JSON value (the next byte starts it) to `out`.
    /// Only structure is tracked: strings, escapes, nesting.
    fn capture(&mut self, out: &mut Vec<u8>) -> Result<(), ScanError> {
        let start_line = self.line;
        let start_len = out.len();
        let Some(&first) = self.reader.fill_buf()?.first() else {
            return Err(ScanError::Truncated(start_line));
        };
        let scalar = !matches!(first, b'{' | b'[' | b'"');
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
        let mut started = false;
        loop {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                if scalar && started {
                    return Ok(());
                }
                return Err(ScanError::Truncated(start_line));
            }
            let mut end = None;
            let mut i = 0;
            if scalar {
                // A number or literal ends at the first byte that cannot be
                // part of it; serde judges the rest.
                end = buf.iter().position(|b| {
                    matches!(
                        b,
                        b',' | b']' | b'}' | b' ' | b'\t' | b'\r' | b'\n' | b'{' | b'[' | b'"'
                    )
                });
            } else {
                if escaped {
                    // The escaped byte was the first of this buffer.
                    escaped = false;
                    i = 1;
                }
                while i < buf.len() {
                    if in_string {
                        // Most of a finding is string content: jump to the
                        // next quote or backslash a word at a time.
                        let Some(k) = find_string_stop(&buf[i..], self.lines_mode) else {
                            break;
                        };
                        i += k;
                        if buf[i] == b'\n' {
                            // Only searched for in lines mode: keep what
                            // precedes the line break, leave the rest.
                            out.extend_from_slice(&buf[..i]);
                            self.line += count_newlines(&buf[..i]);
                            self.reader.consume(i);
                            self.newline_before = false;
                            return Err(self.unexpected(b'\n', "the end of a string"));
                        }
                        if buf[i] == b'\\' {
                            if i + 1 >= buf.len() {
                                escaped = true;
                            }
                            i += 2;
                            continue;
                        }
                        in_string = false;
                        i += 1;
                        if depth == 0 {
                            end = Some(i);
                            break;
                        }
                        continue;
                    }
                    match buf[i] {
                        b'"' => in_string = true,
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                end = Some(i + 1);
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
            let take = end.unwrap_or(buf.len()).min(buf.len());
            let taken = &buf[..take];
            // Counted separately (and vectorised) so the scan above can skip
            // string content; raw line breaks only occur there in invalid
            // JSON, but the line numbers after it must still be right.
            self.line += count_newlines(taken);
            out.extend_from_slice(taken);
            self.reader.consume(take);
            started = true;
            if (out.len() - start_len) as u64 > self.limit {
                return Err(ScanError::TooLarge);
            }
            if end.is_some() {
                return Ok(());
            }
        }
    }

    /// Skips to just past the next line break (to resynchronise after a
    /// malformed line of JSON Lines).
    fn skip_line(&mut self) -> Result<(), ScanError> {
        loop {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                return Ok(());
            }
            if let Some(i) = buf.iter().position(|&b| b == b'\n') {
                self.reader.consume(i + 1);
                self.line += 1;
                return Ok(());
            }
            let n = buf.len();
            self.reader.consume(n);
        }
    }
}

/// The offset of the first byte that can end a run of string content: `"`,
/// `\\`, and (when `newline`) a raw `\n`. Eight bytes at a time (the "has
/// zero byte" bit trick; the lowest flagged byte is always exact).
fn find_string_stop(s: &[u8], newline: bool) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const QUOTE: u64 = LO * b'"' as u64;
    const BACKSLASH: u64 = LO * b'\\' as u64;
    const NEWLINE: u64 = LO * b'\n' as u64;
    let zero_bytes = |x: u64| x.wrapping_sub(LO) & !x & HI;
    let mut chunks = s.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let mut found = zero_bytes(w ^ QUOTE) | zero_bytes(w ^ BACKSLASH);
        if newline {
            found |= zero_bytes(w ^ NEWLINE);
        }
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || (newline && b == b'\n'))
        .map(|k| offset + k)
}

/// Counts `\n` bytes, summing into `u8` lanes so that it vectorises.
fn count_newlines(bytes: &[u8]) -> u64 {
    bytes
        .chunks(255)
        .map(|chunk| u64::from(chunk.iter().fold(0u8, |n, &b| n + u8::from(b == b'\n'))))
        .sum()
}

/// Where the scanner is in the document structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Between top-level values.
    Top,
    /// Inside an array of findings; `wrapper` when it is the `Findings`
    /// member of a `get-findings` object (whose other members follow).
    InArray { wrapper: bool, need_comma: bool },
    /// Inside a `get-findings` object, after its `Findings` array.
    AfterArray,
}

/// What [`JsonRecords::next_element`] produced.
enum Element {
    /// A value to decode is in `buf`; it starts on this line.
    Value(u64),
    /// A malformed line was skipped.
    Skipped { line: u64, reason: String },
}

/// The identifier paths a user named with `--id-column`/`--product-arn-column`.
struct CustomPaths {
    id: Option<Vec<String>>,
    arn: Option<Vec<String>>,
    cols: IdentColumns,
}

/// Column names used in invalid records, per flavour.
struct Columns {
    asff: IdentColumns,
    ocsf: IdentColumns,
    ocsf_v1: IdentColumns,
    lower: IdentColumns,
    /// An OCSF finding named by `metadata.uid` alone (no `finding_info`).
    metadata_uid: IdentColumns,
    /// The run sends `BatchUpdateFindingsV2`, which takes such a finding
    /// ([`SourceOptions::v2`]).
    v2: bool,
}

impl Columns {
    fn new(v2: bool) -> Self {
        let cols = |id: &str, arn: &str| IdentColumns {
            id: id.into(),
            product_arn: arn.into(),
        };
        Columns {
            asff: cols("Id", "ProductArn"),
            ocsf: cols("finding_info.uid", "metadata.product.uid"),
            ocsf_v1: cols("finding.uid", "metadata.product.uid"),
            lower: cols("id", "productarn"),
            metadata_uid: cols("metadata.uid", "metadata.product.uid"),
            v2,
        }
    }
}

struct JsonRecords {
    scanner: Scanner<BufReader<Stream>>,
    state: State,
    /// The current element's bytes (reused).
    buf: Vec<u8>,
    /// Items decoded but not yet returned (an event can hold several findings).
    pending: VecDeque<SourceItem>,
    info: InputInfo,
    custom: Option<CustomPaths>,
    row: u64,
    done: bool,
    columns: Columns,
    checker: Checker,
    caches: Caches,
}

impl JsonRecords {
    fn fatal(&self, e: ScanError) -> SourceError {
        let malformed = |detail: String| SourceErrorKind::Malformed {
            format: "JSON",
            detail,
        };
        match e {
            ScanError::Io(io) => self.info.io_error(io),
            ScanError::TooLarge => SourceError::new(
                &self.info.name,
                SourceErrorKind::RecordTooLarge {
                    limit: self.scanner.limit,
                },
            )
            .at(format!("line {}", self.scanner.line)),
            ScanError::Truncated(line) => SourceError::new(
                &self.info.name,
                malformed(format!(
                    "the input ends inside the value that starts on line {line}: the file is truncated or a bracket is unbalanced"
                )),
            )
            .at(format!("line {line}")),
            ScanError::Unexpected {
                line,
                found,
                expected,
                ..
            } => SourceError::new(
                &self.info.name,
                malformed(format!("found {found} where {expected} was expected")),
            )
            .at(format!("line {line}")),
        }
    }

    /// Walks the structure to the next element to decode.
    fn next_element(&mut self) -> Result<Option<Element>, ScanError> {
        let s = &mut self.scanner;
        loop {
            match self.state {
                State::Top => {
                    let Some(b) = s.skip_ws()? else {
                        return Ok(None);
                    };
                    let line = s.line;
                    match b {
                        b'[' => {
                            s.bump();
                            self.state = State::InArray {
                                wrapper: false,
                                need_comma: false,
                            };
                        }
                        b'{' => {
                            self.buf.clear();
                            s.lines_mode = true;
                            let head = read_object_head(s, &mut self.buf);
                            s.lines_mode = false;
                            match head {
                                Ok(true) => {
                                    self.state = State::InArray {
                                        wrapper: true,
                                        need_comma: false,
                                    };
                                }
                                Ok(false) => return Ok(Some(Element::Value(line))),
                                // A malformed JSON Lines record: report it,
                                // skip the rest of its line (unless the next
                                // record already starts here) and go on.
                                Err(ScanError::Unexpected {
                                    found,
                                    expected,
                                    resume_here,
                                    ..
                                }) => {
                                    if !resume_here {
                                        s.skip_line()?;
                                    }
                                    return Ok(Some(Element::Skipped {
                                        line,
                                        reason: format!(
                                            "malformed JSON: found {found} where {expected} was expected"
                                        ),
                                    }));
                                }
                                Err(e) => return Err(e),
                            }
                        }
                        b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                            self.buf.clear();
                            s.capture(&mut self.buf)?;
                            return Ok(Some(Element::Value(line)));
                        }
                        other => return Err(s.unexpected(other, "a JSON object or array")),
                    }
                }
                State::InArray {
                    wrapper,
                    need_comma,
                } => {
                    let Some(b) = s.skip_ws()? else {
                        return Err(ScanError::Truncated(s.line));
                    };
                    match b {
                        b']' => {
                            s.bump();
                            self.state = if wrapper {
                                State::AfterArray
                            } else {
                                State::Top
                            };
                        }
                        b',' if need_comma => {
                            s.bump();
                            self.state = State::InArray {
                                wrapper,
                                need_comma: false,
                            };
                        }
                        b',' => return Err(s.unexpected(b, "an array element")),
                        _ if need_comma => return Err(s.unexpected(b, "',' or ']'")),
                        _ => {
                            let line = s.line;
                            self.buf.clear();
                            s.capture(&mut self.buf)?;
                            self.state = State::InArray {
                                wrapper,
                                need_comma: true,
                            };
                            return Ok(Some(Element::Value(line)));
                        }
                    }
                }
                State::AfterArray => {
                    let Some(b) = s.skip_ws()? else {
                        return Err(ScanError::Truncated(s.line));
                    };
                    match b {
                        b'}' => {
                            s.bump();
                            self.state = State::Top;
                        }
                        b',' => {
                            s.bump();
                            // Another member (NextToken, ...): skip it, unless
                            // it is a second Findings array.
                            self.buf.clear();
                            if read_member(s, &mut self.buf)? {
                                self.state = State::InArray {
                                    wrapper: true,
                                    need_comma: false,
                                };
                            }
                        }
                        other => return Err(s.unexpected(other, "',' or '}'")),
                    }
                }
            }
        }
    }

    /// Decodes the element in `buf` into items.
    fn decode(&mut self, line: u64) {
        let location = |row| Location {
            file: self.info.name.clone(),
            row,
            detail: Some(ident::line_detail(line)),
        };
        if let Some(custom) = &self.custom {
            let value: Value = match serde_json::from_slice(&self.buf) {
                Ok(v) => v,
                Err(e) => {
                    self.row += 1;
                    self.pending
                        .push_back(invalid(location(self.row), None, json_reason(&e)));
                    return;
                }
            };
            let findings: Vec<&Value> = match value.pointer("/detail/findings") {
                Some(Value::Array(f)) => f.iter().collect(),
                _ => vec![&value],
            };
            for finding in findings {
                self.row += 1;
                let id = match &custom.id {
                    Some(path) => cell_at(finding, path),
                    None => first_cell(
                        finding,
                        &[&["Id"], &["finding_info", "uid"], &["finding", "uid"]],
                    ),
                };
                let arn = match &custom.arn {
                    Some(path) => cell_at(finding, path),
                    None => {
                        first_cell(finding, &[&["ProductArn"], &["metadata", "product", "uid"]])
                    }
                };
                self.pending.push_back(self.checker.check(
                    id,
                    arn,
                    &custom.cols,
                    location(self.row),
                ));
            }
            return;
        }
        let element: Finding<'_> = match serde_json::from_slice(&self.buf) {
            Ok(f) => f,
            Err(e) => {
                self.row += 1;
                self.pending
                    .push_back(invalid(location(self.row), None, json_reason(&e)));
                return;
            }
        };
        match element.detail {
            Some(Detail {
                findings: Some(findings),
            }) => {
                if findings.is_empty() {
                    self.row += 1;
                    self.pending.push_back(invalid(
                        location(self.row),
                        Some("detail.findings"),
                        "the event's detail.findings is empty".into(),
                    ));
                }
                for finding in &findings {
                    self.row += 1;
                    let item = finding.read(
                        &self.columns,
                        location(self.row),
                        &mut self.checker,
                        &mut self.caches,
                    );
                    self.pending.push_back(item);
                }
            }
            _ => {
                self.row += 1;
                let item = element.read(
                    &self.columns,
                    location(self.row),
                    &mut self.checker,
                    &mut self.caches,
                );
                self.pending.push_back(item);
            }
        }
    }
}

fn invalid(location: Location, column: Option<&str>, reason: String) -> SourceItem {
    SourceItem::Invalid(InvalidRecord {
        location,
        column: column.map(str::to_owned),
        reason,
        key: None,
    })
}

fn json_reason(e: &serde_json::Error) -> String {
    // serde_json's line/column are relative to the element, which would
    // mislead; its message without them is enough.
    let msg = e.to_string();
    let msg = msg.split(" at line ").next().unwrap_or(&msg);
    match e.classify() {
        serde_json::error::Category::Data => format!("not a finding object ({msg})"),
        _ => format!("malformed JSON: {msg}"),
    }
}

/// `"Findings"` (the API's spelling) or `"findings"` (what some tools write).
fn is_findings_key(quoted: &[u8]) -> bool {
    quoted == b"\"Findings\"" || quoted == b"\"findings\""
}

/// Reads the head of a top-level object into `buf`. Returns `true` if a
/// `Findings` array member was reached (its `[` consumed: the object is a
/// `get-findings` wrapper), `false` once the whole object is in `buf`.
fn read_object_head<R: BufRead>(s: &mut Scanner<R>, buf: &mut Vec<u8>) -> Result<bool, ScanError> {
    let start_line = s.line;
    s.bump();
    buf.push(b'{');
    loop {
        match s.skip_ws()? {
            None => return Err(ScanError::Truncated(start_line)),
            Some(b'}') => {
                s.bump();
                buf.push(b'}');
                return Ok(false);
            }
            Some(b'"') => {}
            Some(other) => return Err(s.unexpected(other, "a member name")),
        }
        let key_start = buf.len();
        s.capture(buf)?;
        let is_findings = is_findings_key(&buf[key_start..]);
        match s.skip_ws()? {
            Some(b':') => {
                s.bump();
                buf.push(b':');
            }
            Some(other) => return Err(s.unexpected(other, "':'")),
            None => return Err(ScanError::Truncated(start_line)),
        }
        match s.skip_ws()? {
            Some(b'[') if is_findings => {
                s.bump();
                return Ok(true);
            }
            Some(_) => s.capture(buf)?,
            None => return Err(ScanError::Truncated(start_line)),
        }
        if buf.len() as u64 > s.limit {
            return Err(ScanError::TooLarge);
        }
        match s.skip_ws()? {
            Some(b',') => {
                s.bump();
                buf.push(b',');
            }
            Some(b'}') => {
                s.bump();
                buf.push(b'}');
                return Ok(false);
            }
            Some(other) => return Err(s.unexpected(other, "',' or '}'")),
            None => return Err(ScanError::Truncated(start_line)),
        }
    }
}

/// Reads one `"name": value` member, discarding it, unless it is another
/// `Findings` array (returns `true` with its `[` consumed).
fn read_member<R: BufRead>(s: &mut Scanner<R>, scratch: &mut Vec<u8>) -> Result<bool, ScanError> {
    match s.skip_ws()? {
        Some(b'"') => {}
        Some(other) => return Err(s.unexpected(other, "a member name")),
        None => return Err(ScanError::Truncated(s.line)),
    }
    s.capture(scratch)?;
    let is_findings = is_findings_key(scratch);
    match s.skip_ws()? {
        Some(b':') => s.bump(),
        Some(other) => return Err(s.unexpected(other, "':'")),
        None => return Err(ScanError::Truncated(s.line)),
    }
    match s.skip_ws()? {
        Some(b'[') if is_findings => {
            s.bump();
            Ok(true)
        }
        Some(_) => {
            scratch.clear();
            s.capture(scratch)?;
            Ok(false)
        }
        None => Err(ScanError::Truncated(s.line)),
    }
}

impl Iterator for JsonRecords {
    type Item = Result<SourceItem, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(Ok(item));
            }
            if self.done {
                return None;
            }
            match self.next_element() {
                Ok(Some(Element::Value(line))) => self.decode(line),
                Ok(Some(Element::Skipped { line, reason })) => {
                    self.row += 1;
                    let location = Location {
                        file: self.info.name.clone(),
                        row: self.row,
                        detail: Some(ident::line_detail(line)),
                    };
                    return Some(Ok(invalid(location, None, reason)));
                }
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(self.fatal(e)));
                }
            }
        }
    }
}

/// An identifier value: text (borrowed when it has no escapes) or the name
/// of the JSON type found instead.
enum Text<'a> {
    Str(Cow<'a, str>),
    Other(&'static str),
}

impl<'a> Text<'a> {
    fn cell(this: &'a Option<Text<'_>>) -> Cell<'a> {
        match this {
            None => Cell::Missing,
            Some(Text::Str(s)) => Cell::Text(s),
            Some(Text::Other(kind)) => Cell::NotText(kind),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text::Str(Cow::Owned(v)))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Text::Other("a boolean"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Text::Other("a number"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Text::Other("a number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Text::Other("a number"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Text::Other("an object"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Text::Other("an array"))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// The identifier fields of an ASFF finding, an OCSF finding, or an
/// EventBridge event; serde skips every other field.
#[derive(Deserialize)]
struct Finding<'a> {
    #[serde(rename = "Id", borrow)]
    id: Option<Text<'a>>,
    #[serde(rename = "ProductArn", borrow)]
    product_arn: Option<Text<'a>>,
    /// Athena/Glue lower-case names (docs/service-facts.md §9). Not an alias of `Id`:
    /// an EventBridge event has its own top-level `id`.
    #[serde(rename = "id", borrow)]
    id_lower: Option<Text<'a>>,
    #[serde(rename = "productarn", alias = "product_arn", borrow)]
    product_arn_lower: Option<Text<'a>>,
    #[serde(borrow)]
    finding_info: Option<Uid<'a>>,
    #[serde(borrow)]
    finding: Option<Uid<'a>>,
    #[serde(borrow)]
    metadata: Option<Metadata<'a>>,
    #[serde(borrow)]
    detail: Option<Detail<'a>>,
    // The finding's state, kept raw and parsed leniently afterwards: a
    // state field of an unexpected shape makes the state unknown, never the
    // record invalid.
    #[serde(rename = "Workflow", borrow)]
    workflow: Option<&'a RawValue>,
    #[serde(rename = "Note", borrow)]
    note: Option<&'a RawValue>,
    #[serde(rename = "Severity", borrow)]
    severity: Option<&'a RawValue>,
    #[serde(rename = "VerificationState", borrow)]
    verification_state: Option<Text<'a>>,
    #[serde(rename = "Confidence", borrow)]
    confidence: Option<&'a RawValue>,
    #[serde(rename = "Criticality", borrow)]
    criticality: Option<&'a RawValue>,
    #[serde(rename = "Types", borrow)]
    types: Option<&'a RawValue>,
    #[serde(rename = "UserDefinedFields", borrow)]
    user_defined_fields: Option<&'a RawValue>,
    #[serde(rename = "AwsAccountId", borrow)]
    aws_account_id: Option<Text<'a>>,
    #[serde(rename = "Compliance", borrow)]
    compliance: Option<&'a RawValue>,
    #[serde(rename = "GeneratorId", borrow)]
    generator_id: Option<Text<'a>>,
    #[serde(rename = "RecordState", borrow)]
    record_state: Option<Text<'a>>,
    // OCSF state.
    #[serde(borrow)]
    status: Option<Text<'a>>,
    #[serde(borrow)]
    status_id: Option<&'a RawValue>,
    #[serde(rename = "severity", borrow)]
    ocsf_severity: Option<Text<'a>>,
    #[serde(borrow)]
    severity_id: Option<&'a RawValue>,
    #[serde(borrow)]
    message: Option<Text<'a>>,
    /// OCSF `comment` (what `BatchUpdateFindingsV2` sets).
    #[serde(rename = "comment", borrow)]
    ocsf_comment: Option<Text<'a>>,
    #[serde(borrow)]
    cloud: Option<&'a RawValue>,
    #[serde(rename = "compliance", borrow)]
    ocsf_compliance: Option<&'a RawValue>,
    /// A `--failed` file's per-row decision, the `BatchUpdateFindings`
    /// members: taken with `--row-decisions`, ignored otherwise.
    #[serde(borrow)]
    decision: Option<&'a RawValue>,
    /// A `--failed` file's recorded state (`super::recorded`): where it is,
    /// it is the record's whole state.
    #[serde(borrow)]
    recorded_state: Option<&'a RawValue>,
}

/// Parses a raw state value, or gives up quietly.
fn lenient<T: de::DeserializeOwned>(raw: Option<&RawValue>) -> Option<T> {
    serde_json::from_str(raw?.get()).ok()
}

fn text_of(t: &Option<Text<'_>>) -> Option<String> {
    match t {
        Some(Text::Str(s)) if !s.trim().is_empty() => Some(s.to_string()),
        _ => None,
    }
}

#[derive(Deserialize)]
struct StatusIn {
    #[serde(alias = "status")]
    #[serde(rename = "Status")]
    status: Option<String>,
}

#[derive(Deserialize)]
struct NoteIn {
    #[serde(rename = "Text")]
    text: Option<String>,
    #[serde(rename = "UpdatedBy")]
    updated_by: Option<String>,
}

#[derive(Deserialize)]
struct SeverityIn {
    #[serde(rename = "Label")]
    label: Option<String>,
    #[serde(rename = "Normalized")]
    normalized: Option<i64>,
}

#[derive(Deserialize)]
struct CloudIn {
    account: Option<UidIn>,
    account_uid: Option<String>,
}

#[derive(Deserialize)]
struct UidIn {
    uid: Option<String>,
}

impl Finding<'_> {
    /// The state an ASFF or OCSF finding records, if it records any.
    fn state(&self) -> Option<CurrentState> {
        let int = |raw: Option<&RawValue>| lenient::<i64>(raw).and_then(|n| i32::try_from(n).ok());
        let workflow = lenient::<StatusIn>(self.workflow).and_then(|w| w.status);
        let note = lenient::<NoteIn>(self.note);
        let severity = lenient::<SeverityIn>(self.severity);
        let severity_label = severity.and_then(|s| {
            s.label.or_else(|| {
                let n = i32::try_from(s.normalized?).ok()?;
                SeverityLabel::from_normalized(n).map(|l| l.as_str().to_owned())
            })
        });
        let ocsf_status = || {
            let cell = match (&self.status, lenient::<i64>(self.status_id)) {
                (Some(Text::Str(s)), _) => FieldCell::Text(s),
                (_, Some(id)) => FieldCell::Int(id),
                _ => return None,
            };
            fields::ocsf_status(cell).map(str::to_owned)
        };
        let ocsf_severity = || {
            let cell = match (&self.ocsf_severity, lenient::<i64>(self.severity_id)) {
                (Some(Text::Str(s)), _) => FieldCell::Text(s),
                (_, Some(id)) => FieldCell::Int(id),
                _ => return None,
            };
            fields::ocsf_severity(cell).map(str::to_owned)
        };
        let cloud = lenient::<CloudIn>(self.cloud);
        let generator = self
            .metadata
            .as_ref()
            .and_then(|m| m.product.as_ref())
            .and_then(|p| lenient::<UidIn>(p.feature))
            .and_then(|f| f.uid);
        let is_ocsf = self.id.is_none()
            && self.product_arn.is_none()
            && (self.finding_info.is_some() || self.finding.is_some() || self.metadata.is_some());
        let account_id = text_of(&self.aws_account_id).or_else(|| {
            cloud.as_ref().and_then(|c| {
                c.account
                    .as_ref()
                    .and_then(|a| a.uid.clone())
                    .or(c.account_uid.clone())
            })
        });
        // Kept only when the triple cannot be made (no account): a
        // per-finding value would give every finding its own state.
        let metadata_uid = if account_id.is_none() {
            self.metadata.as_ref().and_then(|m| text_of(&m.uid))
        } else {
            None
        };
        let status_id = int(self.status_id).or_else(|| match &self.status {
            Some(Text::Str(s)) => fields::ocsf_status_id(s),
            _ => None,
        });
        let severity_id = int(self.severity_id).or_else(|| match &self.ocsf_severity {
            Some(Text::Str(s)) => fields::ocsf_severity_id(s),
            _ => None,
        });
        let cur = CurrentState {
            status_id: if is_ocsf { status_id } else { None },
            severity_id: if is_ocsf { severity_id } else { None },
            comment: text_of(&self.ocsf_comment),
            comment_recorded: is_ocsf && (self.finding_info.is_some() || self.finding.is_some()),
            metadata_uid,
            ocsf: is_ocsf,
            workflow_status: workflow.or_else(ocsf_status),
            note_text: note
                .as_ref()
                .and_then(|n| n.text.clone())
                .or_else(|| text_of(&self.message)),
            note_updated_by: note.and_then(|n| n.updated_by),
            // A finding document (ASFF or OCSF) records its note when it has
            // one; only Athena's flattened lower-case rows may have dropped it.
            note_recorded: self.id.is_some()
                || self.product_arn.is_some()
                || self.finding_info.is_some()
                || self.finding.is_some(),
            severity_label: severity_label.or_else(ocsf_severity),
            severity_normalized: lenient::<SeverityIn>(self.severity)
                .and_then(|s| s.normalized)
                .and_then(|n| i32::try_from(n).ok())
                .filter(|n| (0..=100).contains(n)),
            complete: self.id.is_some()
                || self.product_arn.is_some()
                || self.finding_info.is_some()
                || self.finding.is_some(),
            verification_state: text_of(&self.verification_state),
            confidence: int(self.confidence),
            criticality: int(self.criticality),
            types: lenient(self.types),
            user_defined_fields: lenient(self.user_defined_fields),
            account_id,
            compliance_status: lenient::<StatusIn>(self.compliance)
                .or_else(|| lenient::<StatusIn>(self.ocsf_compliance))
                .and_then(|c| c.status)
                .map(|s| s.to_uppercase()),
            generator_id: text_of(&self.generator_id).or(generator),
            record_state: text_of(&self.record_state),
            ..CurrentState::default()
        };
        (cur != CurrentState::default()).then_some(cur)
    }

    /// Appends the raw text of every state field to a cache key: findings
    /// in the same state (most of an export) share one `CurrentState`.
    fn state_key(&self, key: &mut String) {
        let feature = self
            .metadata
            .as_ref()
            .and_then(|m| m.product.as_ref())
            .and_then(|p| p.feature);
        for raw in [
            self.workflow,
            self.note,
            self.severity,
            self.confidence,
            self.criticality,
            self.types,
            self.user_defined_fields,
            self.compliance,
            self.status_id,
            self.severity_id,
            self.cloud,
            self.ocsf_compliance,
            feature,
        ] {
            key.push_str(raw.map_or("", |r| r.get()));
            key.push('\u{0}');
        }
        for text in [
            &self.verification_state,
            &self.aws_account_id,
            &self.generator_id,
            &self.record_state,
            &self.status,
            &self.ocsf_severity,
            &self.message,
            &self.ocsf_comment,
            self.metadata.as_ref().map_or(&None, |m| &m.uid),
        ] {
            match text {
                Some(Text::Str(s)) => key.push_str(s),
                Some(Text::Other(kind)) => key.push_str(kind),
                None => {}
            }
            key.push('\u{0}');
        }
        // What decides `note_recorded`.
        key.push(if self.id.is_some() || self.product_arn.is_some() {
            'a'
        } else {
            '-'
        });
        key.push(if self.finding_info.is_some() || self.finding.is_some() {
            'o'
        } else {
            '-'
        });
    }

    /// Checks the identifiers and attaches the recorded state and, when
    /// per-row decisions are taken, the record's own decision.
    fn read(
        &self,
        columns: &Columns,
        location: Location,
        checker: &mut Checker,
        caches: &mut Caches,
    ) -> SourceItem {
        match self.check(columns, location, checker) {
            SourceItem::Record(mut r) => {
                if let (Some(decisions), Some(raw)) = (&mut caches.decisions, self.decision) {
                    match decisions.get_or(raw.get(), || row_decision(raw)) {
                        Ok(d) => r.decision = d,
                        Err(reason) => {
                            return SourceItem::Invalid(InvalidRecord {
                                location: r.location,
                                column: Some("decision".into()),
                                reason,
                                key: Some(r.key),
                            });
                        }
                    }
                }
                r.current = match self.recorded_state {
                    Some(raw) => caches.states.get_or(raw.get(), || {
                        let v: Value = serde_json::from_str(raw.get()).ok()?;
                        super::recorded::from_json(&v).map(Arc::new)
                    }),
                    None => {
                        let key = caches.states.start();
                        // Never the text of a recorded state (an object).
                        key.push('\u{1}');
                        self.state_key(key);
                        caches.states.get_or_built(|| self.state().map(Arc::new))
                    }
                };
                if columns.v2 && self.is_named_by_metadata_uid() {
                    // Its key is the uid: never a triple (which needs the
                    // finding_info.uid it lacks), whatever account it has.
                    let mut cur = r.current.as_deref().cloned().unwrap_or_default();
                    cur.metadata_uid = Some(r.key.id.clone());
                    cur.account_id = None;
                    cur.ocsf = true;
                    r.current = Some(Arc::new(cur));
                }
                SourceItem::Record(r)
            }
            other => other,
        }
    }
}

/// A JSON record's own decision (`None`: it sets none), or why it is unusable.
type JsonDecision = Result<Option<Arc<Decision>>, String>;

/// What a JSON reader keeps between records.
struct Caches {
    /// Recently seen finding states, shared between findings.
    states: Recent<Option<Arc<CurrentState>>>,
    /// Recently seen `decision` members, when `--row-decisions` takes them.
    decisions: Option<Recent<JsonDecision>>,
}

/// Parses a `decision` member: the `BatchUpdateFindings` members, as the
/// `--failed` file writes them. Only its shape is checked here; the engine
/// validates the merged decision.
fn row_decision(raw: &RawValue) -> JsonDecision {
    if raw.get().trim() == "null" {
        return Ok(None);
    }
    let d: Decision = serde_json::from_str(raw.get()).map_err(|e| {
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
        format!(
            "expected the BatchUpdateFindings members, like {{\"Workflow\":{{\"Status\":\"SUPPRESSED\"}}}} \
             ({msg})"
        )
    })?;
    Ok((d != Decision::default()).then(|| Arc::new(d)))
}

#[derive(Deserialize)]
struct Uid<'a> {
    #[serde(borrow)]
    uid: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct Metadata<'a> {
    #[serde(borrow)]
    product: Option<Product<'a>>,
    /// `metadata.uid`: the finding's name in `BatchUpdateFindingsV2`'s
    /// `MetadataUids`.
    #[serde(borrow)]
    uid: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct Product<'a> {
    #[serde(borrow)]
    uid: Option<Text<'a>>,
    /// OCSF's home of ASFF's `GeneratorId`.
    #[serde(borrow)]
    feature: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Detail<'a> {
    #[serde(borrow)]
    findings: Option<Vec<Finding<'a>>>,
}

impl Finding<'_> {
    /// An OCSF finding with `metadata.uid` and neither ASFF identifiers nor
    /// `finding_info`/`finding` (as [`Self::check`] reads it).
    fn is_named_by_metadata_uid(&self) -> bool {
        self.id.is_none()
            && self.product_arn.is_none()
            && self.finding_info.is_none()
            && self.finding.is_none()
            && self
                .metadata
                .as_ref()
                .is_some_and(|m| !matches!(Text::cell(&m.uid), Cell::Missing))
    }

    fn check(&self, columns: &Columns, location: Location, checker: &mut Checker) -> SourceItem {
        if self.id.is_some() || self.product_arn.is_some() {
            return checker.check(
                Text::cell(&self.id),
                Text::cell(&self.product_arn),
                &columns.asff,
                location,
            );
        }
        let arn = self.metadata.as_ref().and_then(|m| m.product.as_ref());
        let arn = arn.map_or(Cell::Missing, |p| Text::cell(&p.uid));
        if let Some(info) = &self.finding_info {
            return checker.check(Text::cell(&info.uid), arn, &columns.ocsf, location);
        }
        if let Some(finding) = &self.finding {
            return checker.check(Text::cell(&finding.uid), arn, &columns.ocsf_v1, location);
        }
        if let Some(m) = &self.metadata {
            let uid = Text::cell(&m.uid);
            if columns.v2 && !matches!(uid, Cell::Missing) {
                // Named by metadata.uid alone: BatchUpdateFindingsV2's
                // MetadataUids ([`Self::read`] keeps it from a triple).
                return checker.check_metadata_uid(uid, arn, &columns.metadata_uid, location);
            }
            if !matches!(uid, Cell::Missing) {
                return invalid(
                    location,
                    Some("finding_info.uid"),
                    "no finding_info.uid: this OCSF finding is named by metadata.uid alone, which \
                     only the new Security Hub's BatchUpdateFindingsV2 takes (--status-id, \
                     --severity-id, --comment)"
                        .into(),
                );
            }
            return checker.check(Cell::Missing, arn, &columns.ocsf, location);
        }
        if self.id_lower.is_some() || self.product_arn_lower.is_some() {
            return checker.check(
                Text::cell(&self.id_lower),
                Text::cell(&self.product_arn_lower),
                &columns.lower,
                location,
            );
        }
        invalid(
            location,
            None,
            "no finding identifiers: expected Id and ProductArn (ASFF), finding_info.uid and \
             metadata.product.uid (OCSF), or an EventBridge event with detail.findings"
                .into(),
        )
    }
}

fn cell_at<'a>(value: &'a Value, path: &[String]) -> Cell<'a> {
    let mut v = value;
    for part in path {
        let Value::Object(map) = v else {
            return Cell::Missing;
        };
        // Exact name first, then ignoring case (Athena lower-cases names).
        match map.get(part.as_str()).or_else(|| {
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(part))
                .map(|(_, v)| v)
        }) {
            Some(next) => v = next,
            None => return Cell::Missing,
        }
    }
    match v {
        Value::String(s) => Cell::Text(s),
        Value::Null => Cell::Missing,
        Value::Bool(_) => Cell::NotText("a boolean"),
        Value::Number(_) => Cell::NotText("a number"),
        Value::Array(_) => Cell::NotText("an array"),
        Value::Object(_) => Cell::NotText("an object"),
    }
}

fn first_cell<'a>(value: &'a Value, paths: &[&[&str]]) -> Cell<'a> {
    for path in paths {
        let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        let cell = cell_at(value, &path);
        if !matches!(cell, Cell::Missing) {
            return cell;
        }
    }
    Cell::Missing
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Read};

    use super::super::input::{Compression, Metered};
    use super::*;

    fn run(data: &'static [u8], limit: u64) -> Vec<Result<SourceItem, SourceError>> {
        let stream: Box<dyn Read + Send> = Box::new(Cursor::new(data));
        let info = InputInfo {
            name: "t.json".into(),
            compression: Compression::None,
            any_arn: false,
        };
        open(
            Metered::plain(stream, u64::MAX),
            info,
            &SourceOptions::default(),
            limit,
        )
        .unwrap()
        .collect()
    }

    fn run_with(
        data: &'static [u8],
        mode: RowDecisions,
    ) -> Result<Vec<Result<SourceItem, SourceError>>, SourceError> {
        let stream: Box<dyn Read + Send> = Box::new(Cursor::new(data));
        let info = InputInfo {
            name: "failed.jsonl".into(),
            compression: Compression::None,
            any_arn: false,
        };
        let opts = SourceOptions {
            row_decisions: mode,
            ..SourceOptions::default()
        };
        Ok(open(Metered::plain(stream, u64::MAX), info, &opts, 1 << 20)?.collect())
    }

    #[test]
    fn a_failed_files_decision_and_recorded_state_are_read_back() {
        const ROWS: &[u8] = br#"{"file":"in.csv","row":3,"Id":"a","ProductArn":"arn:aws:securityhub:us-east-1::product/aws/guardduty","outcome":"failed","applied":"","prior":"","decision":{"Workflow":{"Status":"SUPPRESSED"},"Note":{"Text":"t, 3","UpdatedBy":"me"}},"recorded_state":{"Workflow":{"Status":"NEW"},"Note":null},"schema_version":1}
{"Id":"b","ProductArn":"arn:aws:securityhub:us-east-1::product/aws/guardduty","decision":{"Workflow":{"Status":"CLOSED"}}}
{"Id":"c","ProductArn":"arn:aws:securityhub:us-east-1::product/aws/guardduty","Workflow":{"Status":"NOTIFIED"}}
"#;
        for mode in [RowDecisions::All, RowDecisions::from_flag("decision")] {
            let items = run_with(ROWS, mode).unwrap();
            let SourceItem::Record(a) = items[0].as_ref().unwrap() else {
                panic!("{:?}", items[0])
            };
            let d = a.decision.as_deref().unwrap();
            assert_eq!(d.workflow.as_ref().unwrap().status.as_str(), "SUPPRESSED");
            assert_eq!(d.note.as_ref().unwrap().text, "t, 3");
            // The recorded state, not the finding document's (it has none).
            let cur = a.current.as_deref().unwrap();
            assert_eq!(cur.workflow_status.as_deref(), Some("NEW"));
            assert!(cur.note_recorded && cur.note_text.is_none());
            assert!(!cur.complete);
            // A decision that is not BatchUpdateFindings members: invalid.
            let SourceItem::Invalid(b) = items[1].as_ref().unwrap() else {
                panic!("{:?}", items[1])
            };
            assert_eq!(b.column.as_deref(), Some("decision"));
            // A plain finding document: no decision, its own state.
            let SourceItem::Record(c) = items[2].as_ref().unwrap() else {
                panic!()
            };
            assert!(c.decision.is_none());
            assert_eq!(
                c.current.as_deref().unwrap().workflow_status.as_deref(),
                Some("NOTIFIED")
            );
        }
        // Without --row-decisions the decision is not taken; the state is.
        let items = run_with(ROWS, RowDecisions::Off).unwrap();
        let SourceItem::Record(a) = items[0].as_ref().unwrap() else {
            panic!()
        };
        assert!(a.decision.is_none());
        assert_eq!(
            a.current.as_deref().unwrap().workflow_status.as_deref(),
            Some("NEW")
        );
        assert!(matches!(items[1], Ok(SourceItem::Record(_))));
        // Column names mean nothing in JSON: refused, naming the member.
        let err = run_with(ROWS, RowDecisions::from_flag("Note.Text")).unwrap_err();
        assert!(err.to_string().contains("`decision` member"), "{err}");
    }

    #[test]
    fn element_larger_than_the_limit_is_fatal() {
        let items = run(
            br#"{"Findings":[{"Id":"a","ProductArn":"arn:aws:securityhub:us-east-1::product/aws/guardduty","Pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}]}"#,
            100,
        );
        assert_eq!(items.len(), 1);
        let err = items[0].as_ref().unwrap_err();
        assert!(
            matches!(err.kind(), SourceErrorKind::RecordTooLarge { limit: 100 }),
            "{err}"
        );
    }

    #[test]
    fn word_at_a_time_search() {
        for len in 0..40 {
            let clean = vec![b'a'; len];
            assert_eq!(find_string_stop(&clean, true), None);
            for pos in 0..len {
                for b in [b'"', b'\\'] {
                    let mut dirty = clean.clone();
                    dirty[pos] = b;
                    // A later match must not hide the first one.
                    if pos + 3 < len {
                        dirty[pos + 3] = b'"';
                    }
                    assert_eq!(find_string_stop(&dirty, false), Some(pos), "{len} {pos}");
                }
            }
        }
        assert_eq!(
            find_string_stop(
                &[0x21, 0x23, 0x5b, 0x5d, 0xa2, 0xdc, 0x00, 0x0b, 0x0d],
                true
            ),
            None
        );
        assert_eq!(count_newlines(&[b'\n'; 1000]), 1000);
        assert_eq!(find_string_stop(b"abcdefghij\nk\"", true), Some(10));
        assert_eq!(find_string_stop(b"abcdefghij\nk\"", false), Some(12));
    }

    #[test]
    fn escapes_split_across_buffer_refills() {
        // A tiny BufReader forces every position of the escape to straddle
        // a refill.
        let doc =
            br#"{"Id":"a\"b\\","ProductArn":"arn:aws:securityhub:us-east-1::product/aws/guardduty"}
{"Id":"c","ProductArn":"arn:aws:securityhub:us-east-1::product/aws/guardduty"}"#;
        for cap in 1..12 {
            let mut scanner = Scanner::new(BufReader::with_capacity(cap, &doc[..]), 1 << 20);
            let mut out = Vec::new();
            assert_eq!(scanner.skip_ws().ok().flatten(), Some(b'{'));
            assert!(scanner.capture(&mut out).is_ok());
            assert_eq!(
                out,
                doc[..doc.iter().position(|&b| b == b'\n').unwrap()],
                "capacity {cap}"
            );
            assert_eq!(scanner.skip_ws().ok().flatten(), Some(b'{'));
            assert_eq!(scanner.line, 2);
        }
    }

    #[test]
    fn scalar_elements_are_invalid() {
        let items = run(b"[1, \"x\", true]", 1000);
        assert_eq!(items.len(), 3);
        for item in items {
            let SourceItem::Invalid(i) = item.unwrap() else {
                panic!()
            };
            assert!(i.reason.starts_with("not a finding object"), "{}", i.reason);
        }
    }
}
