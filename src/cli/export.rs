//! `sechub-triage export --filters … --out FILE` (or `--ocsf-filters`): the
//! same query `update` runs, written as JSON Lines of ASFF or OCSF findings,
//! CSV or Parquet ([`super::export_table`]), chosen by the name (`.gz` or
//! `.zst` compressed, `-` for JSON Lines on standard output), a file `plan`,
//! `update` and `revert` read back, so that a campaign can be reviewed,
//! committed and run from exactly what was reviewed.

use std::io::Write;
use std::time::SystemTime;

use anyhow::{Context, bail};
use clap::Args;

use super::AwsArgs;
use super::exit::LocalIo;
use super::export_table::{TableFormat, TableSink};
use crate::query::{Query, QueryArgs, WritePages, read};
use crate::submission::{AwsSettings, Submitter};

/// `sechub-triage export`.
#[derive(Args, Debug)]
pub(crate) struct ExportArgs {
    /// The query (`--filters` or `--ocsf-filters` is required).
    #[command(flatten)]
    pub query: QueryArgs,
    /// Credentials, Region and endpoint.
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Where to write, the format chosen by the name: `.jsonl` (JSON Lines
    /// of ASFF or OCSF findings), `.csv` (optionally `.gz` or `.zst` after
    /// either) or `.parquet`; `-` for JSON Lines on standard output.
    #[arg(long, value_name = "FILE")]
    pub out: String,
    /// Replace --out if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Compression chosen by the name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Packing {
    Plain,
    Gzip,
    Zstd,
}

/// What the name asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    JsonLines,
    Table(TableFormat),
}

fn format_of(out: &str) -> anyhow::Result<(Layout, Packing)> {
    if out == "-" {
        return Ok((Layout::JsonLines, Packing::Plain));
    }
    let (base, packing) = if let Some(b) = out.strip_suffix(".gz") {
        (b, Packing::Gzip)
    } else if let Some(b) = out.strip_suffix(".zst") {
        (b, Packing::Zstd)
    } else {
        (out, Packing::Plain)
    };
    let layout = if base.ends_with(".jsonl") || base.ends_with(".json") || base.ends_with(".ndjson")
    {
        Layout::JsonLines
    } else if base.ends_with(".csv") {
        Layout::Table(TableFormat::Csv)
    } else if base.ends_with(".parquet") && packing == Packing::Plain {
        Layout::Table(TableFormat::Parquet)
    } else if base.ends_with(".parquet") {
        bail!(
            "--out {out}: Parquet compresses its own pages; name the file .parquet, without .gz or .zst"
        );
    } else {
        bail!(
            "--out {out}: the name chooses the format: .jsonl (JSON Lines of ASFF or OCSF \
             findings), .csv or .parquet (one row per finding), .jsonl and .csv optionally \
             followed by .gz or .zst; or - for JSON Lines on standard output"
        );
    };
    Ok((layout, packing))
}

/// The output stream, compressed by the name. Its end is explicit
/// ([`Packed::finish`]): an error writing a compressed stream's last bytes
/// fails the export instead of being lost when the encoder is dropped.
enum Packed {
    Plain(Box<dyn Write + Send>),
    Gzip(flate2::write::GzEncoder<Box<dyn Write + Send>>),
    Zstd(zstd::Encoder<'static, Box<dyn Write + Send>>),
}

impl Write for Packed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Packed::Plain(w) => w.write(buf),
            Packed::Gzip(w) => w.write(buf),
            Packed::Zstd(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Packed::Plain(w) => w.flush(),
            Packed::Gzip(w) => w.flush(),
            Packed::Zstd(w) => w.flush(),
        }
    }
}

impl Packed {
    /// Ends the compressed stream and flushes everything to the file.
    fn finish(self) -> std::io::Result<()> {
        let mut inner = match self {
            Packed::Plain(w) => w,
            Packed::Gzip(e) => e.finish()?,
            Packed::Zstd(e) => e.finish()?,
        };
        inner.flush()
    }
}

/// Where the findings go.
enum Sink {
    Lines(Box<Packed>),
    Table(Box<TableSink<Packed>>),
}

/// Runs the export; returns the exit status.
pub(crate) async fn run(args: ExportArgs) -> anyhow::Result<i32> {
    if args.query.filters.is_none() && args.query.ocsf_filters.is_none() {
        bail!(
            "export needs --filters (the get-findings filter document) or --ocsf-filters \
             (the get-findings-v2 one)"
        );
    }
    let (layout, packing) = format_of(&args.out)?;
    let submitter = Submitter::from_env(&AwsSettings {
        profile: args.aws.profile.clone(),
        endpoint_url: args.aws.endpoint_url.clone(),
        request_timeout: Some(args.aws.request_timeout),
    })
    .await;
    let configured = submitter.configured_region();
    let Some(query) = Query::prepare(
        &args.query,
        args.aws.region.as_deref(),
        configured.as_deref(),
        SystemTime::now(),
    )?
    else {
        bail!("export needs --filters or --ocsf-filters");
    };
    // Written to a temporary name beside --out and renamed at the end: a
    // failed query never leaves a file that looks whole.
    let (raw, partial): (Box<dyn Write + Send>, Option<std::path::PathBuf>) = if args.out == "-" {
        (Box::new(std::io::stdout()), None)
    } else {
        let out = std::path::Path::new(&args.out);
        if out.exists() && !args.force {
            bail!(
                "--out {}: exists (give --force to replace it)",
                out.display()
            );
        }
        let partial = out.with_file_name(format!(
            ".{}.partial",
            out.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        ));
        let file = std::fs::File::create(&partial)
            .map_err(|e| LocalIo::new(format!("cannot create {}", partial.display()), e))?;
        (Box::new(std::io::BufWriter::new(file)), Some(partial))
    };
    let packed = match packing {
        Packing::Plain => Packed::Plain(raw),
        Packing::Gzip => Packed::Gzip(flate2::write::GzEncoder::new(
            raw,
            flate2::Compression::default(),
        )),
        Packing::Zstd => Packed::Zstd(zstd::Encoder::new(raw, 3)?),
    };
    let mut sink = match layout {
        Layout::JsonLines => Sink::Lines(Box::new(packed)),
        Layout::Table(format) => Sink::Table(Box::new(TableSink::new(format, query.v2, packed)?)),
    };
    let writer: &mut dyn Write = match &mut sink {
        Sink::Lines(w) => w,
        Sink::Table(t) => t,
    };
    let bars = super::progress::QueryProgress::stderr_if_terminal(false);
    let events: &dyn crate::events::EventSink = match &bars {
        Some(b) => b,
        None => &crate::events::NullSink,
    };
    let result = read(
        &query,
        &submitter,
        &mut WritePages(writer),
        events,
        &mut |s| {
            tracing::debug!(findings = s.findings, pages = s.pages, "export progress");
        },
    )
    .await;
    if let Some(b) = &bars {
        b.finish();
    }
    let stats = match result {
        Ok(s) => s,
        Err(e) => {
            drop(sink);
            if let Some(p) = &partial {
                let _ = std::fs::remove_file(p);
            }
            return Err(e);
        }
    };
    let finished = match sink {
        Sink::Lines(w) => w.finish().context("writing --out"),
        Sink::Table(t) => t.finish().and_then(|w| w.finish().context("writing --out")),
    };
    if let Err(e) = finished {
        if let Some(p) = &partial {
            let _ = std::fs::remove_file(p);
        }
        return Err(e);
    }
    if let Some(p) = &partial {
        std::fs::rename(p, &args.out)
            .map_err(|e| LocalIo::new(format!("cannot write {}", args.out), e))?;
    }
    eprintln!(
        "sechub-triage: exported {} finding(s) from {} page(s) of {} to {} ({} throttled, {} retried)",
        stats.findings,
        stats.pages,
        query.label(),
        args.out,
        stats.throttled,
        stats.retried
    );
    Ok(super::exit::SUCCESS)
}
