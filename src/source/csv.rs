//! The CSV reader: a header row naming the identifier columns, then one
//! finding per record.
//!
//! Streams with `csv::Reader` and one reused `ByteRecord`, so memory does
//! not grow with the file; only the two identifier cells are decoded (as
//! UTF-8) per record, the other columns are never looked at. Quoted fields
//! may span lines. It does not guess a header for header-less files: the
//! identifier columns must be named.

use csv::ByteRecord;

use super::error::{SourceError, SourceErrorKind};
use super::fields::{self, FieldCell, FieldPlan};
use super::ident::{self, Cell, Ident, IdentColumns};
use super::input::{InputInfo, Stream};
use super::{RecordIter, SourceOptions};
use crate::model::{Location, SourceItem};

/// Guesses the delimiter from the header line: the most frequent of `,`,
/// tab, `;` and `|` outside quotes, `,` when none occurs.
pub(crate) fn sniff_delimiter(head: &[u8]) -> u8 {
    const CANDIDATES: [u8; 4] = [b',', b'\t', b';', b'|'];
    let mut counts = [0usize; 4];
    let mut quoted = false;
    for &b in head {
        match b {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => break,
            _ if !quoted => {
                if let Some(i) = CANDIDATES.iter().position(|&c| c == b) {
                    counts[i] += 1;
                }
            }
            _ => {}
        }
    }
    // max_by_key returns the last maximum; iterate reversed so ties go to
    // the earlier (more common) candidate.
    let best = (0..CANDIDATES.len())
        .rev()
        .max_by_key(|&i| counts[i])
        .unwrap_or(0);
    if counts[best] == 0 {
        b','
    } else {
        CANDIDATES[best]
    }
}

/// Reads the header and returns the record iterator.
pub(crate) fn open(
    stream: Stream,
    head: &[u8],
    delimiter: u8,
    info: InputInfo,
    opts: &SourceOptions,
) -> Result<RecordIter, SourceError> {
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(true)
        .buffer_capacity(64 * 1024)
        .from_reader(stream);
    let header = match rdr.byte_headers() {
        Ok(h) => h.clone(),
        Err(e) => return Err(csv_error(&info, e, 1)),
    };
    let names: Vec<String> = header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let h = if i == 0 {
                h.strip_prefix(b"\xef\xbb\xbf").unwrap_or(h)
            } else {
                h
            };
            String::from_utf8_lossy(h).into_owned()
        })
        .collect();
    if names.iter().all(|n| n.trim().is_empty()) && rdr.is_done() {
        return Err(SourceError::new(&info.name, SourceErrorKind::NoHeader));
    }
    let hint = missing_hint(&names, head, delimiter);
    let column = |which: Ident, user: Option<&str>| {
        ident::find_column(&names, which, user).ok_or_else(|| {
            SourceError::new(
                &info.name,
                ident::missing_column(which, &names, user, &hint),
            )
            .at("line 1")
        })
    };
    // The V2 export job's CSV may name findings by metadata.uid alone (no
    // finding_info.uid column): read for BatchUpdateFindingsV2, which takes
    // MetadataUids; the product column is then optional (it names the
    // Region).
    let uid_idx = (opts.id_column.is_none()
        && ident::find_column(&names, Ident::Id, None).is_none())
    .then(|| {
        names
            .iter()
            .position(|n| ident::normalize(n) == ident::METADATA_UID_NAME)
    })
    .flatten();
    let (id_idx, arn_idx) = match uid_idx {
        Some(uid) if opts.v2 => (
            uid,
            ident::find_column(
                &names,
                Ident::ProductArn,
                opts.product_arn_column.as_deref(),
            ),
        ),
        Some(_) => {
            let hint = format!(
                "{hint}; the file names findings by metadata.uid, which only the new Security Hub's \
                 BatchUpdateFindingsV2 takes: give --status-id, --severity-id or --comment"
            );
            return Err(SourceError::new(
                &info.name,
                ident::missing_column(Ident::Id, &names, None, &hint),
            )
            .at("line 1"));
        }
        None => (
            column(Ident::Id, opts.id_column.as_deref())?,
            Some(column(
                Ident::ProductArn,
                opts.product_arn_column.as_deref(),
            )?),
        ),
    };
    let by_metadata_uid = uid_idx.is_some();
    let chosen: Vec<usize> = std::iter::once(id_idx).chain(arn_idx).collect();
    if let Some(kind) = ident::duplicate_column(&names, &chosen) {
        return Err(SourceError::new(&info.name, kind).at("line 1"));
    }
    let cols = IdentColumns {
        id: names[id_idx].trim().into(),
        product_arn: arn_idx
            .map_or("metadata.product.uid", |i| names[i].trim())
            .into(),
    };
    let fields = fields::plan(
        &names,
        &chosen,
        by_metadata_uid || fields::is_ocsf_id(&names[id_idx]),
        &opts.row_decisions,
    )
    .map_err(|kind| SourceError::new(&info.name, kind).at("line 1"))?;
    super::check_decision(&info.name, &fields, opts).map_err(|e| e.at("line 1"))?;
    super::announce_decision_columns(&info.name, &fields, opts);
    Ok(Box::new(CsvRecords {
        rdr,
        checker: ident::Checker::new(info.any_arn),
        info,
        cols,
        id_idx,
        arn_idx,
        by_metadata_uid,
        field_idx: fields.indices(),
        fields,
        record: ByteRecord::new(),
        row: 0,
        done: false,
    }))
}

/// Advice for a header without identifier columns, from what it looks like.
fn missing_hint(names: &[String], head: &[u8], delimiter: u8) -> String {
    let first = names.first().map(|n| n.trim()).unwrap_or("");
    if first.starts_with('{') || first.starts_with('[') {
        return "; the file looks like JSON: pass --format json".into();
    }
    if names.iter().any(|n| n.trim_start().starts_with("arn:")) {
        return "; the first row looks like data, not a header: add a header row such as Id,ProductArn".into();
    }
    if names.len() == 1 {
        let sniffed = sniff_delimiter(head);
        let shown = |d: u8| {
            if d == b'\t' {
                "tab".to_owned()
            } else {
                (d as char).to_string()
            }
        };
        return format!(
            "; the header has one column when split on {:?}{}: pass --delimiter if the file uses another separator",
            shown(delimiter),
            if sniffed != delimiter {
                format!(" (it looks {:?}-separated)", shown(sniffed))
            } else {
                String::new()
            }
        );
    }
    String::new()
}

fn csv_error(info: &InputInfo, e: csv::Error, line: u64) -> SourceError {
    let detail = e.to_string().to_lowercase();
    match e.into_kind() {
        csv::ErrorKind::Io(io) => info.io_error(io).at(format!("line {line}")),
        // With ByteRecord and flexible rows csv-core reports no syntax
        // errors; this arm is for whatever a future csv version adds.
        _ => SourceError::new(
            &info.name,
            SourceErrorKind::Malformed {
                format: "CSV",
                detail,
            },
        )
        .at(format!("line {line}")),
    }
}

struct CsvRecords {
    rdr: csv::Reader<Stream>,
    info: InputInfo,
    cols: IdentColumns,
    id_idx: usize,
    /// The product column; always there unless `by_metadata_uid`.
    arn_idx: Option<usize>,
    /// The `id_idx` column is OCSF `metadata.uid` (no Id column): each
    /// record's key is its uid, for `BatchUpdateFindingsV2`'s
    /// `MetadataUids`.
    by_metadata_uid: bool,
    /// Decision and state columns, and their indices.
    fields: FieldPlan,
    field_idx: Vec<usize>,
    record: ByteRecord,
    checker: ident::Checker,
    /// Data records read so far (the header is not counted).
    row: u64,
    done: bool,
}

impl CsvRecords {
    /// The line a record starts on. csv's position is where it began
    /// parsing, which can be before the `\n` of a CRLF pair or before blank
    /// lines it skips; count those from the bytes themselves.
    fn start_line(&self, start: &csv::Position) -> u64 {
        let meter = self.rdr.get_ref();
        let mut line = start.line();
        let mut at = start.byte();
        while let Some(b) = meter.byte_at(at) {
            match b {
                b'\n' => line += 1,
                b'\r' => {}
                _ => break,
            }
            at += 1;
        }
        line
    }

    /// An unterminated quote makes csv-core read everything up to the end of
    /// the file into one field, silently swallowing the rows after it. It is
    /// recognisable: the record ends exactly at the end of the stream, spans
    /// lines, and the file holds an odd number of `"` bytes (quotes in
    /// well-formed CSV come in pairs).
    fn is_unterminated(&self) -> bool {
        let meter = self.rdr.get_ref();
        meter.at_eof()
            && meter.quotes_odd()
            && self.rdr.position().byte() == meter.consumed()
            && self
                .record
                .iter()
                .any(|f| f.contains(&b'\n') || f.contains(&b'\r'))
    }
}

impl Iterator for CsvRecords {
    type Item = Result<SourceItem, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let start = self.rdr.position().clone();
        self.rdr.get_mut().mark(start.byte());
        match self.rdr.read_byte_record(&mut self.record) {
            Ok(true) => {}
            Ok(false) => {
                self.done = true;
                return None;
            }
            Err(e) => {
                self.done = true;
                return Some(Err(csv_error(&self.info, e, start.line())));
            }
        }
        self.row += 1;
        let line = self.start_line(&start);
        if self.is_unterminated() {
            self.done = true;
            return Some(Err(SourceError::new(
                &self.info.name,
                SourceErrorKind::Malformed {
                    format: "CSV",
                    detail: format!(
                        "unterminated quote in the record starting on line {line}: it runs to the end of the file, \
                         so the rows after it cannot be read; close the quote (a \" inside a quoted field is written \"\")"
                    ),
                },
            )
            .at(format!("line {line}"))));
        }
        let id = self
            .record
            .get(self.id_idx)
            .map_or(Cell::Missing, Cell::from_bytes);
        let arn = self
            .arn_idx
            .and_then(|i| self.record.get(i))
            .map_or(Cell::Missing, Cell::from_bytes);
        let location = Location {
            file: self.info.name.clone(),
            row: self.row,
            detail: Some(ident::line_detail(line)),
        };
        let item = if self.by_metadata_uid {
            self.checker
                .check_metadata_uid(id, arn, &self.cols, location)
        } else {
            self.checker.check(id, arn, &self.cols, location)
        };
        let item = match item {
            SourceItem::Record(record) if !self.field_idx.is_empty() => {
                let cells: Vec<FieldCell<'_>> = self
                    .field_idx
                    .iter()
                    .map(|&i| {
                        self.record
                            .get(i)
                            .map_or(FieldCell::Missing, FieldCell::from_bytes)
                    })
                    .collect();
                self.fields.fill(record, &cells)
            }
            other => other,
        };
        Some(Ok(match item {
            SourceItem::Record(mut record) if self.by_metadata_uid => {
                // Named by its uid: never a triple (which needs the
                // finding_info.uid this input lacks), whatever account
                // column the export has.
                let mut cur = record.current.as_deref().cloned().unwrap_or_default();
                cur.metadata_uid = Some(record.key.id.clone());
                cur.account_id = None;
                cur.ocsf = true;
                record.current = Some(std::sync::Arc::new(cur));
                SourceItem::Record(record)
            }
            other => other,
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Read};

    use super::super::input::{Compression, Metered};
    use super::*;
    use crate::model::FindingKey;

    fn info() -> InputInfo {
        InputInfo {
            name: "t.csv".into(),
            compression: Compression::None,
            any_arn: false,
        }
    }

    fn open_with_limit(data: &'static [u8], limit: u64) -> Result<RecordIter, SourceError> {
        let stream: Box<dyn Read + Send> = Box::new(Cursor::new(data));
        open(
            Metered::new(stream, limit),
            data,
            b',',
            info(),
            &SourceOptions::default(),
        )
    }

    #[test]
    fn a_csv_of_metadata_uids_is_read_for_v2_only() {
        static DATA: &[u8] = b"metadata.uid,metadata.product.uid,cloud.account.uid\n\
            m-1,arn:aws:securityhub:eu-west-1::productv2/aws/guardduty,111122223333\n\
            m-2,,111122223333\n\
            ,arn:aws:securityhub:eu-west-1::productv2/aws/guardduty,111122223333\n";
        let open_v2 = |v2: bool| {
            let stream: Box<dyn Read + Send> = Box::new(Cursor::new(DATA));
            open(
                Metered::new(stream, 1 << 20),
                DATA,
                b',',
                info(),
                &SourceOptions {
                    v2,
                    ..SourceOptions::default()
                },
            )
        };
        let err = open_v2(false).err().unwrap().to_string();
        assert!(
            err.contains("names findings by metadata.uid") && err.contains("--status-id"),
            "{err}"
        );
        let items: Vec<SourceItem> = open_v2(true).unwrap().map(Result::unwrap).collect();
        let SourceItem::Record(r) = &items[0] else {
            panic!("{:?}", items[0])
        };
        assert_eq!(
            r.key,
            FindingKey::new(
                "m-1",
                "arn:aws:securityhub:eu-west-1::product/aws/guardduty"
            )
        );
        let cur = r.current.as_deref().unwrap();
        // Never a triple: the account is not the finding_info.uid's.
        assert_eq!(cur.metadata_uid.as_deref(), Some("m-1"));
        assert_eq!(cur.account_id, None);
        let SourceItem::Record(r) = &items[1] else {
            panic!("{:?}", items[1])
        };
        assert_eq!(r.key, FindingKey::new("m-2", ""));
        let SourceItem::Invalid(bad) = &items[2] else {
            panic!("{:?}", items[2])
        };
        assert_eq!(bad.column.as_deref(), Some("metadata.uid"));
    }

    #[test]
    fn delimiter_sniffing() {
        assert_eq!(sniff_delimiter(b"Id,ProductArn,Title\n"), b',');
        assert_eq!(sniff_delimiter(b"Id\tProductArn\n"), b'\t');
        assert_eq!(sniff_delimiter(b"\"a,b\";\"c\";d\n"), b';');
        assert_eq!(sniff_delimiter(b"Id|ProductArn"), b'|');
        assert_eq!(sniff_delimiter(b"Id"), b',');
    }

    #[test]
    fn oversized_record_is_fatal() {
        // The limit is tiny here; in production it is 64 MiB.
        static DATA: &[u8] = b"Id,ProductArn\n\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\
            aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa,x\n";
        // The meter counts whole reads from the underlying stream, so the
        // limit is exceeded on the first read past the header.
        let mut it = open_with_limit(DATA, 20).unwrap();
        let err = it.next().unwrap().unwrap_err();
        assert!(
            matches!(err.kind(), SourceErrorKind::RecordTooLarge { limit: 20 }),
            "{err}"
        );
        assert!(it.next().is_none());
    }
}
