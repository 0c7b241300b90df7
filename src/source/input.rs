//! Opening one input: the file or standard input, decompression (gzip,
//! zstd), format detection, and the byte meter that bounds record size.
//!
//! Detection order: `--format` if given; then content that cannot be
//! mistaken (the Parquet magic `PAR1`); then the file extension (after
//! stripping `.gz`/`.zst`); then sniffing the first bytes (`{`/`[` is JSON,
//! anything else textual is CSV). Compression is recognised by its magic
//! bytes, not by the extension: S3 downloads are often transparently
//! decompressed while keeping their `.gz` name.

use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use super::error::{SourceError, SourceErrorKind};
use super::{Format, InputSpec, RecordIter, SourceOptions};

/// Largest single record (CSV row, JSON value) a reader accepts. A finding
/// is at most 240 KB (docs/service-facts.md §4.1); anything this large is a broken file
/// (typically an unterminated quote) that would otherwise be buffered whole.
pub(crate) const MAX_RECORD_BYTES: u64 = 64 << 20;
/// How much decompressed content is looked at to detect the format.
const SNIFF_BYTES: usize = 8 * 1024;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const PARQUET_MAGIC: &[u8] = b"PAR1";

/// Compression of an input, found by its magic bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
}

/// What a reader needs to know about its input to build locations and errors.
#[derive(Clone, Debug)]
pub(crate) struct InputInfo {
    pub name: Arc<str>,
    pub compression: Compression,
    /// `--region` was given: accept any ARN as the product ARN.
    pub(crate) any_arn: bool,
}

impl InputInfo {
    /// Maps an I/O error met while reading the (decompressed) stream.
    pub(crate) fn io_error(&self, e: io::Error) -> SourceError {
        if let Some(TooLarge(limit)) = e.get_ref().and_then(|inner| inner.downcast_ref()) {
            return SourceError::new(
                &self.name,
                SourceErrorKind::RecordTooLarge { limit: *limit },
            );
        }
        let corrupt = matches!(
            e.kind(),
            io::ErrorKind::UnexpectedEof
                | io::ErrorKind::InvalidData
                | io::ErrorKind::InvalidInput
                | io::ErrorKind::Other
        );
        let kind = match self.compression {
            Compression::Gzip if corrupt => SourceErrorKind::BadCompression("gzip"),
            Compression::Zstd if corrupt => SourceErrorKind::BadCompression("zstd"),
            _ => SourceErrorKind::Read,
        };
        SourceError::new(&self.name, kind).caused_by(e)
    }
}

/// The marker error [`Metered`] returns when a record outgrows its limit.
#[derive(Debug, thiserror::Error)]
#[error("record larger than {0} bytes")]
pub(crate) struct TooLarge(pub u64);

/// A reader that counts bytes, fails once the current record is larger than
/// its limit, and tracks the parity of `"` bytes (for the CSV reader's
/// unterminated-quote check). The record start is set by the reader that
/// owns it through [`Metered::mark`].
pub(crate) struct Metered<R> {
    inner: R,
    consumed: u64,
    mark: u64,
    limit: u64,
    quotes_odd: bool,
    eof: bool,
    /// The most recent bytes read (a ring indexed by stream offset), so the
    /// CSV reader can look at where a record really starts.
    recent: Box<[u8]>,
}

/// Size of [`Metered`]'s look-back window: larger than the CSV reader's
/// buffer, so a record's start is still in it unless the record is huge.
const RECENT_BYTES: usize = 256 * 1024;

impl<R: Read> Metered<R> {
    /// A meter that also tracks quote parity and keeps recent bytes (for
    /// the CSV reader).
    pub(crate) fn new(inner: R, limit: u64) -> Self {
        Metered {
            recent: vec![0; RECENT_BYTES].into_boxed_slice(),
            ..Metered::plain(inner, limit)
        }
    }

    /// A meter that only counts and limits: no quote parity, no look-back
    /// (the JSON reader needs neither).
    pub(crate) fn plain(inner: R, limit: u64) -> Self {
        Metered {
            inner,
            consumed: 0,
            mark: 0,
            limit,
            quotes_odd: false,
            eof: false,
            recent: Box::new([]),
        }
    }

    /// The byte at stream offset `at`, if it was read recently enough.
    pub(crate) fn byte_at(&self, at: u64) -> Option<u8> {
        (!self.recent.is_empty() && at < self.consumed && self.consumed - at <= RECENT_BYTES as u64)
            .then(|| self.recent[(at % RECENT_BYTES as u64) as usize])
    }

    /// Declares that a record starts at byte `at` of the stream.
    pub(crate) fn mark(&mut self, at: u64) {
        self.mark = at;
    }

    /// Bytes read from the stream so far.
    pub(crate) fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Whether the stream has reported its end.
    pub(crate) fn at_eof(&self) -> bool {
        self.eof
    }

    /// Whether an odd number of `"` bytes has been read so far.
    pub(crate) fn quotes_odd(&self) -> bool {
        self.quotes_odd
    }
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.consumed.saturating_sub(self.mark) > self.limit {
            return Err(io::Error::other(TooLarge(self.limit)));
        }
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.eof = true;
        }
        let read = &buf[..n];
        self.consumed += n as u64;
        if self.recent.is_empty() {
            return Ok(n);
        }
        self.quotes_odd ^= count_quotes(read) % 2 == 1;
        // Keep the tail of what was read in the ring.
        let keep = &read[n.saturating_sub(RECENT_BYTES)..];
        let mut at = self.consumed - keep.len() as u64;
        let mut rest = keep;
        while !rest.is_empty() {
            let pos = (at % RECENT_BYTES as u64) as usize;
            let len = rest.len().min(RECENT_BYTES - pos);
            self.recent[pos..pos + len].copy_from_slice(&rest[..len]);
            rest = &rest[len..];
            at += len as u64;
        }
        Ok(n)
    }
}

/// Counts `"` bytes. Summing into `u8` lanes over short chunks lets the
/// compiler vectorise it; a plain `filter().count()` showed up in profiles.
fn count_quotes(bytes: &[u8]) -> usize {
    bytes
        .chunks(255)
        .map(|chunk| chunk.iter().fold(0u8, |n, &b| n + u8::from(b == b'"')) as usize)
        .sum()
}

/// The stream handed to the CSV and JSON readers.
pub(crate) type Stream = Metered<Box<dyn Read + Send>>;

/// Fails early (before anything is sent) for a missing path or a directory.
pub(crate) fn check_exists(path: &Path, name: &Arc<str>) -> Result<(), SourceError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(SourceError::new(name, SourceErrorKind::IsDirectory)),
        Ok(_) => Ok(()),
        Err(e) => Err(open_error(name, e)),
    }
}

fn open_error(name: &Arc<str>, e: io::Error) -> SourceError {
    let kind = if e.kind() == io::ErrorKind::NotFound {
        SourceErrorKind::NotFound
    } else {
        SourceErrorKind::CannotOpen
    };
    SourceError::new(name, kind).caused_by(e)
}

/// Reads up to `n` bytes (fewer only at the end of the stream).
pub(crate) fn read_up_to(r: &mut dyn Read, n: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(n);
    r.take(n as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// The format and CSV flavour an extension implies, after stripping a
/// compression suffix (`a.csv.gz`, `b.jsonl.zst`).
fn format_from_name(name: &str) -> (Option<Format>, bool) {
    let lower = name.to_ascii_lowercase();
    let base = [".gz", ".gzip", ".zst", ".zstd"]
        .iter()
        .find_map(|suffix| lower.strip_suffix(suffix))
        .unwrap_or(&lower);
    let ext = base.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext {
        "csv" => (Some(Format::Csv), false),
        "tsv" | "tab" => (Some(Format::Csv), true),
        "parquet" | "parq" | "pq" => (Some(Format::Parquet), false),
        "json" | "jsonl" | "ndjson" => (Some(Format::Json), false),
        _ => (None, false),
    }
}

fn compression_of(magic: &[u8]) -> Compression {
    if magic.starts_with(GZIP_MAGIC) {
        Compression::Gzip
    } else if magic.starts_with(ZSTD_MAGIC) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Guesses the format from the first decompressed bytes.
fn sniff(head: &[u8]) -> Option<Format> {
    if head.starts_with(PARQUET_MAGIC) {
        return Some(Format::Parquet);
    }
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    match text.iter().find(|b| !b.is_ascii_whitespace()) {
        None => None,
        Some(b'{' | b'[') => Some(Format::Json),
        Some(_) if text.contains(&0) => None,
        Some(_) => Some(Format::Csv),
    }
}

/// A short description of content, for "not a X file (...)" messages.
pub(crate) fn describe(head: &[u8]) -> String {
    if head.is_empty() {
        return "it is empty".into();
    }
    if head.starts_with(PARQUET_MAGIC) {
        return "it looks like Parquet".into();
    }
    if compression_of(head) != Compression::None {
        return "it looks compressed".into();
    }
    match sniff(head) {
        Some(Format::Json) => "it looks like JSON".into(),
        None => "it looks like binary data".into(),
        _ => {
            let start: String = String::from_utf8_lossy(&head[..head.len().min(24)])
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            format!("it starts with {start:?}")
        }
    }
}

/// Opens one input and returns the reader for its format.
pub(crate) fn open_input(
    spec: &InputSpec,
    opts: &SourceOptions,
) -> Result<RecordIter, SourceError> {
    let name = spec.display_name();
    let (ext_format, tsv) = match spec {
        InputSpec::Path(p) => format_from_name(&p.to_string_lossy()),
        InputSpec::Stdin => (None, false),
    };
    let info = InputInfo {
        name: name.clone(),
        compression: Compression::None,
        any_arn: opts.region.is_some(),
    };

    let raw: Box<dyn Read + Send> = match spec {
        InputSpec::Path(path) => {
            check_exists(path, &name)?;
            let mut file = File::open(path).map_err(|e| open_error(&name, e))?;
            let magic = read_up_to(&mut file, 4).map_err(|e| info.io_error(e))?;
            let compression = compression_of(&magic);
            let parquet = match opts.format {
                Some(f) => f == Format::Parquet,
                None => magic == PARQUET_MAGIC || ext_format == Some(Format::Parquet),
            };
            if compression == Compression::None && parquet {
                // Parquet needs random access: hand it the file itself.
                if magic != PARQUET_MAGIC {
                    return Err(wrong_format("Parquet", &name, &magic));
                }
                file.seek(SeekFrom::Start(0))
                    .map_err(|e| info.io_error(e))?;
                return super::parquet::open(file, info, opts);
            }
            Box::new(Cursor::new(magic).chain(file))
        }
        InputSpec::Stdin => Box::new(io::stdin()),
    };
    open_stream(raw, info, ext_format, tsv, opts)
}

/// Opens an input given as a byte stream, named `name` (its extension, if
/// any, is used like a file's).
pub(crate) fn open_named_stream(
    name: &str,
    raw: Box<dyn Read + Send>,
    opts: &SourceOptions,
) -> Result<RecordIter, SourceError> {
    let (ext_format, tsv) = format_from_name(name);
    let info = InputInfo {
        name: Arc::from(name),
        compression: Compression::None,
        any_arn: opts.region.is_some(),
    };
    open_stream(raw, info, ext_format, tsv, opts)
}

/// Decompresses, detects the format and builds the reader.
fn open_stream(
    mut raw: Box<dyn Read + Send>,
    mut info: InputInfo,
    ext_format: Option<Format>,
    tsv: bool,
    opts: &SourceOptions,
) -> Result<RecordIter, SourceError> {
    let name = info.name.clone();
    let magic = read_up_to(&mut raw, 4).map_err(|e| info.io_error(e))?;
    info.compression = compression_of(&magic);
    let raw: Box<dyn Read + Send> = Box::new(Cursor::new(magic).chain(raw));
    let mut stream: Box<dyn Read + Send> = match info.compression {
        Compression::None => raw,
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(raw).map_err(|e| info.io_error(e))?)
        }
    };
    let head = read_up_to(&mut stream, SNIFF_BYTES).map_err(|e| info.io_error(e))?;
    let format = match opts.format {
        Some(f) => Some(f),
        None if head.starts_with(PARQUET_MAGIC) => Some(Format::Parquet),
        None => ext_format.or_else(|| sniff(&head)),
    };
    let Some(format) = format else {
        if head.iter().all(u8::is_ascii_whitespace) {
            // Nothing to read: an empty object is not an error (an S3
            // prefix often holds empty Firehose objects).
            tracing::warn!(input = %name, "input is empty; no findings read from it");
            return Ok(Box::new(std::iter::empty()));
        }
        return Err(SourceError::new(&name, SourceErrorKind::UnknownFormat));
    };
    let stream: Box<dyn Read + Send> = Box::new(Cursor::new(head.clone()).chain(stream));
    match format {
        Format::Parquet => {
            // Parquet from a pipe or a compressed file: buffer it whole,
            // because its footer (at the end) says where everything is.
            let mut all = Vec::new();
            let mut stream = stream;
            stream.read_to_end(&mut all).map_err(|e| info.io_error(e))?;
            if !all.starts_with(PARQUET_MAGIC) {
                return Err(wrong_format("Parquet", &name, &all));
            }
            super::parquet::open(bytes::Bytes::from(all), info, opts)
        }
        Format::Csv => {
            let delimiter = opts.delimiter.unwrap_or_else(|| {
                if tsv {
                    b'\t'
                } else {
                    super::csv::sniff_delimiter(&head)
                }
            });
            super::csv::open(
                Metered::new(stream, MAX_RECORD_BYTES),
                &head,
                delimiter,
                info,
                opts,
            )
        }
        // The JSON scanner bounds each element itself.
        Format::Json => super::json::open(
            Metered::plain(stream, u64::MAX),
            info,
            opts,
            MAX_RECORD_BYTES,
        ),
    }
}

fn wrong_format(expected: &'static str, name: &Arc<str>, head: &[u8]) -> SourceError {
    SourceError::new(
        name,
        SourceErrorKind::WrongFormat {
            expected,
            found: describe(head),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_imply_formats() {
        assert_eq!(format_from_name("x.CSV"), (Some(Format::Csv), false));
        assert_eq!(format_from_name("x.tsv.gz"), (Some(Format::Csv), true));
        assert_eq!(
            format_from_name("a/b.jsonl.zst"),
            (Some(Format::Json), false)
        );
        assert_eq!(
            format_from_name("part-0.snappy.parquet"),
            (Some(Format::Parquet), false)
        );
        assert_eq!(format_from_name("firehose-1-2024-01-01-abc"), (None, false));
        assert_eq!(format_from_name("x.gz"), (None, false));
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff(b"  \n{\"Findings\""), Some(Format::Json));
        assert_eq!(sniff(b"\xef\xbb\xbf[1]"), Some(Format::Json));
        assert_eq!(sniff(b"Id,ProductArn\n"), Some(Format::Csv));
        assert_eq!(sniff(b"PAR1...."), Some(Format::Parquet));
        assert_eq!(sniff(b"PK\x03\x04\x00\x00"), None);
        assert_eq!(sniff(b"  \n"), None);
    }

    #[test]
    fn meter_limits_and_counts_quotes() {
        let mut m = Metered::new(Cursor::new(vec![b'"'; 100]), 10);
        let mut buf = [0u8; 7];
        assert_eq!(m.read(&mut buf).unwrap(), 7);
        assert!(m.quotes_odd());
        assert_eq!(m.read(&mut buf).unwrap(), 7);
        assert!(!m.quotes_odd());
        let err = m.read(&mut buf).unwrap_err();
        assert!(err.get_ref().unwrap().downcast_ref::<TooLarge>().is_some());
        m.mark(14);
        assert!(m.read(&mut buf).is_ok());
        assert_eq!(m.byte_at(20), Some(b'"'));
        assert_eq!(m.byte_at(21), None);
    }

    #[test]
    fn quote_counting() {
        let data: Vec<u8> = (0..10_000)
            .map(|i| if i % 7 == 0 { b'"' } else { b'a' })
            .collect();
        assert_eq!(
            count_quotes(&data),
            data.iter().filter(|&&b| b == b'"').count()
        );
        assert_eq!(count_quotes(&[b'"'; 600]), 600);
    }

    #[test]
    fn meter_remembers_recent_bytes() {
        let data: Vec<u8> = (0..RECENT_BYTES * 3).map(|i| (i % 251) as u8).collect();
        let mut m = Metered::new(Cursor::new(data), u64::MAX);
        let mut buf = vec![0u8; 100_000];
        while m.read(&mut buf).unwrap() > 0 {}
        let total = (RECENT_BYTES * 3) as u64;
        assert_eq!(m.byte_at(total - 1), Some(((total - 1) % 251) as u8));
        let oldest = total - RECENT_BYTES as u64;
        assert_eq!(m.byte_at(oldest), Some((oldest % 251) as u8));
        assert_eq!(m.byte_at(oldest - 1), None);
    }
}
