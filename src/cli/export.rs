//! `sechub-triage export --filters … --out FILE`: the same query `update
//! --filters` runs, written as JSON Lines of ASFF findings (`.gz` or `.zst`
//! compressed by the name, `-` for standard output), a file `plan`,
//! `update` and `revert` read back, so that a campaign can be reviewed,
//! committed and run from exactly what was reviewed.

use std::io::Write;
use std::time::SystemTime;

use anyhow::{Context, bail};
use clap::Args;

use super::AwsArgs;
use super::exit::LocalIo;
use crate::query::{Query, QueryArgs, WritePages, read};
use crate::submission::{AwsSettings, Submitter};

/// `sechub-triage export`.
#[derive(Args, Debug)]
pub(crate) struct ExportArgs {
    /// The query (`--filters` is required).
    #[command(flatten)]
    pub query: QueryArgs,
    /// Credentials, Region and endpoint.
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Where to write: a `.jsonl` (or `.json`) name, optionally `.gz` or
    /// `.zst`; `-` for standard output.
    #[arg(long, value_name = "FILE")]
    pub out: String,
    /// Replace --out if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Compression chosen by the name.
enum Packing {
    Plain,
    Gzip,
    Zstd,
}

fn packing(out: &str) -> anyhow::Result<Packing> {
    if out == "-" {
        return Ok(Packing::Plain);
    }
    let (base, packing) = if let Some(b) = out.strip_suffix(".gz") {
        (b, Packing::Gzip)
    } else if let Some(b) = out.strip_suffix(".zst") {
        (b, Packing::Zstd)
    } else {
        (out, Packing::Plain)
    };
    if !(base.ends_with(".jsonl") || base.ends_with(".json") || base.ends_with(".ndjson")) {
        bail!(
            "--out {out}: export writes JSON Lines of ASFF findings: name the file .jsonl \
             (optionally .jsonl.gz or .jsonl.zst), or - for standard output (CSV and Parquet \
             exports are not implemented)"
        );
    }
    Ok(packing)
}

/// Runs the export; returns the exit status.
pub(crate) async fn run(args: ExportArgs) -> anyhow::Result<i32> {
    if args.query.filters.is_none() {
        bail!("export needs --filters (the get-findings filter document)");
    }
    let packing = packing(&args.out)?;
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
        bail!("export needs --filters");
    };
    // Written to a temporary name beside --out and renamed at the end: a
    // failed query never leaves a file that looks whole.
    let (mut sink, partial): (Box<dyn Write>, Option<std::path::PathBuf>) = if args.out == "-" {
        (Box::new(std::io::stdout().lock()), None)
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
        let w = std::io::BufWriter::new(file);
        let sink: Box<dyn Write> = match packing {
            Packing::Plain => Box::new(w),
            Packing::Gzip => Box::new(flate2::write::GzEncoder::new(
                w,
                flate2::Compression::default(),
            )),
            Packing::Zstd => Box::new(zstd::Encoder::new(w, 3)?.auto_finish()),
        };
        (sink, Some(partial))
    };
    let bars = super::progress::QueryProgress::stderr_if_terminal(false);
    let events: &dyn crate::events::EventSink = match &bars {
        Some(b) => b,
        None => &crate::events::NullSink,
    };
    let result = read(
        &query,
        &submitter,
        &mut WritePages(&mut sink),
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
    sink.flush().context("writing --out")?;
    drop(sink); // finishes the compressed stream
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
