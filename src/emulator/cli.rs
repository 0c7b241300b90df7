//! The `sechub-triage emulator` command: flags, seeding from files or
//! synthetically, and serving until SIGINT/SIGTERM.
//!
//! Its stdout contract: the first line is `listening on http://HOST:PORT`
//! (printed once the socket is bound, so a parent process can read the port
//! when it asked for port 0). Everything else goes to the log (stderr).
//! With `--write-samples DIR` it writes the samples and exits instead.

use std::future::Future;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::config::{
    Bucket, ConfigError, DEFAULT_ACCOUNT_ID, DEFAULT_MAX_BODY_BYTES, DuplicatePolicy,
    EmulatorConfig, FaultConfig, Paging, RegionScope, Semantics, ThrottleCode, ThrottleConfig,
    UdfPolicy,
};

use super::state::EmulatorState;
use super::synth::{SyntheticSpec, write_keys_csv, write_samples};

/// Throttle error code choices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ThrottleCodeArg {
    /// `LimitExceededException` (the modelled error).
    #[default]
    LimitExceeded,
    /// `TooManyRequestsException` (API Gateway's, seen in the wild).
    TooManyRequests,
}

/// Duplicate identifier choices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DuplicatesArg {
    /// First occurrence processed, later ones `DuplicatedFindingIdentifier`.
    #[default]
    FirstProcessed,
    /// Every occurrence `DuplicatedFindingIdentifier`.
    AllRejected,
}

/// `UserDefinedFields` update choices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum UdfArg {
    /// Merge supplied keys into the map.
    #[default]
    Merge,
    /// Replace the whole map.
    Replace,
}

/// Region isolation choices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RegionScopeArg {
    /// A request sees its own Region's findings (plus home-Region aggregation).
    #[default]
    Strict,
    /// A request sees every finding.
    Any,
}

/// `--get-findings-paging` values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum PagingArg {
    /// The token holds the last finding returned (stable under updates).
    #[default]
    Cursor,
    /// The token holds an offset; the filter is evaluated again per page.
    Offset,
}

/// Flags of `sechub-triage emulator`.
#[derive(Clone, Debug, clap::Args)]
pub struct EmulatorArgs {
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    /// Only loopback addresses unless --allow-remote.
    #[arg(long, default_value = "127.0.0.1:0", value_name = "HOST:PORT")]
    pub listen: SocketAddr,

    /// Allow a --listen address other than loopback: the emulator has no
    /// authentication, and its admin API (/_emulator/) changes its state,
    /// so anyone who can reach the address controls it.
    #[arg(long)]
    pub(crate) allow_remote: bool,

    /// Close a connection whose next request's headers are not all in
    /// within this time (an idle keep-alive connection, or headers
    /// trickling in).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "20s", value_name = "DURATION")]
    pub(crate) header_timeout: Duration,

    /// Close a connection whose request body is not all in within this time.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "20s", value_name = "DURATION")]
    pub(crate) body_timeout: Duration,

    /// Seed findings from a file: ASFF JSON as `aws securityhub get-findings`
    /// prints it ({"Findings": [...]}), a JSON array of findings, or JSON
    /// Lines (one finding per line). Repeatable.
    #[arg(long = "seed-file", value_name = "PATH")]
    pub(crate) seed_files: Vec<PathBuf>,

    /// Seed N synthetic findings across several Regions, products and accounts.
    #[arg(long, value_name = "N")]
    pub synthetic: Option<usize>,

    /// Seed of the synthetic findings (default: --random-seed).
    #[arg(long, value_name = "SEED")]
    pub(crate) synthetic_seed: Option<u64>,

    /// Regions of the synthetic findings (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "REGION,...")]
    pub(crate) synthetic_regions: Vec<String>,

    /// Account ids of the synthetic findings (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "ACCOUNT,...")]
    pub(crate) synthetic_accounts: Vec<String>,

    /// Write `Id,ProductArn` of the synthetic findings to this CSV file.
    #[arg(long, value_name = "PATH", requires = "synthetic")]
    pub(crate) keys_out: Option<PathBuf>,

    /// Write samples/findings.json, findings.csv and their OCSF forms
    /// (findings-ocsf.jsonl, findings-ocsf.csv) into DIR and exit.
    #[arg(long, value_name = "DIR")]
    pub(crate) write_samples: Option<PathBuf>,

    /// Turn throttling off.
    #[arg(long)]
    pub(crate) no_throttle: bool,
    /// BatchUpdateFindings requests per second (default 10).
    #[arg(long, value_name = "PER_SECOND")]
    pub(crate) batch_update_rate: Option<f64>,
    /// BatchUpdateFindings burst (default 30).
    #[arg(long, value_name = "N")]
    pub(crate) batch_update_burst: Option<u32>,
    /// GetFindings requests per second (default 3).
    #[arg(long, value_name = "PER_SECOND")]
    pub(crate) get_findings_rate: Option<f64>,
    /// GetFindings burst (default 6).
    #[arg(long, value_name = "N")]
    pub(crate) get_findings_burst: Option<u32>,
    /// BatchImportFindings requests per second (default 10).
    #[arg(long, value_name = "PER_SECOND")]
    pub(crate) batch_import_rate: Option<f64>,
    /// BatchImportFindings burst (default 30).
    #[arg(long, value_name = "N")]
    pub(crate) batch_import_burst: Option<u32>,
    /// Error code of throttled requests.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) throttle_code: ThrottleCodeArg,

    /// Per-finding probability of ConcurrentUpdateError.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub concurrent_update_error: f64,
    /// Per-finding probability of InternalFailure.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub internal_failure: f64,
    /// Per-request probability of HTTP 500 InternalException.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub http_500: f64,
    /// Per-request probability of HTTP 503 ServiceUnavailableException.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub http_503: f64,
    /// Per-request probability of closing the connection without answering.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub drop_connection: f64,
    /// Per-request probability of applying a BatchUpdateFindings request,
    /// then closing the connection without answering.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub drop_after_apply: f64,
    /// Latency added to every API answer (e.g. 50ms).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    pub latency: Duration,
    /// Extra random latency, uniform in 0..=JITTER.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    pub latency_jitter: Duration,
    /// Answer every API request with 403 AccessDeniedException.
    #[arg(long)]
    pub access_denied: bool,
    /// Answer every API request with 401 InvalidAccessException.
    #[arg(long)]
    pub invalid_access: bool,
    /// Seed of the fault generator (same seed + same requests = same faults).
    #[arg(long, default_value_t = 0)]
    pub random_seed: u64,

    /// Duplicated identifiers in one BatchUpdateFindings.
    #[arg(long, value_enum, default_value_t)]
    pub duplicates: DuplicatesArg,
    /// UserDefinedFields updates merge into or replace the map.
    #[arg(long, value_enum, default_value_t)]
    pub user_defined_fields: UdfArg,
    /// Most identifiers per BatchUpdateFindings; more is InvalidInputException.
    #[arg(long, default_value_t = 100)]
    pub max_identifiers: usize,
    /// Accept an empty FindingIdentifiers list instead of rejecting it.
    #[arg(long)]
    pub allow_empty_identifiers: bool,
    /// Reject a BatchUpdateFindings that names no field to update.
    #[arg(long)]
    pub reject_no_update_fields: bool,
    /// Which findings a request sees, by the Region of its credential scope.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) region_scope: RegionScopeArg,
    /// Cross-Region aggregation home Region (sees its whole partition).
    #[arg(long, value_name = "REGION")]
    pub home_region: Option<String>,
    /// How GetFindings and GetFindingsV2 page: by stable cursor, or by
    /// offset with the filter evaluated again per page (updates on a
    /// filtered field shift results).
    #[arg(long, value_enum, default_value_t)]
    pub(crate) get_findings_paging: PagingArg,
    /// Caller account id used in 401/403 messages.
    #[arg(long, default_value = DEFAULT_ACCOUNT_ID)]
    pub(crate) account_id: String,
    /// Largest request body accepted (bytes); larger gets HTTP 413.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// The new Security Hub (V2, OCSF) flags.
    #[command(flatten)]
    pub v2: super::v2::cli::V2Args,
}

impl EmulatorArgs {
    /// The emulator configuration these flags describe, validated.
    pub(crate) fn to_config(&self) -> Result<EmulatorConfig, ConfigError> {
        let d = ThrottleConfig::default();
        let bucket = |def: Bucket, rate: Option<f64>, burst: Option<u32>| Bucket {
            rate: rate.unwrap_or(def.rate),
            burst: burst.unwrap_or(def.burst),
        };
        let config = EmulatorConfig {
            throttle: ThrottleConfig {
                enabled: !self.no_throttle,
                batch_update: bucket(
                    d.batch_update,
                    self.batch_update_rate,
                    self.batch_update_burst,
                ),
                get_findings: bucket(
                    d.get_findings,
                    self.get_findings_rate,
                    self.get_findings_burst,
                ),
                batch_import: bucket(
                    d.batch_import,
                    self.batch_import_rate,
                    self.batch_import_burst,
                ),
                code: match self.throttle_code {
                    ThrottleCodeArg::LimitExceeded => ThrottleCode::LimitExceededException,
                    ThrottleCodeArg::TooManyRequests => ThrottleCode::TooManyRequestsException,
                },
            },
            faults: FaultConfig {
                concurrent_update_error: self.concurrent_update_error,
                internal_failure: self.internal_failure,
                http_500: self.http_500,
                http_503: self.http_503,
                drop_connection: self.drop_connection,
                drop_after_apply: self.drop_after_apply,
                latency: self.latency,
                latency_jitter: self.latency_jitter,
                access_denied: self.access_denied,
                invalid_access: self.invalid_access,
            },
            semantics: Semantics {
                duplicates: match self.duplicates {
                    DuplicatesArg::FirstProcessed => DuplicatePolicy::FirstProcessed,
                    DuplicatesArg::AllRejected => DuplicatePolicy::AllRejected,
                },
                user_defined_fields: match self.user_defined_fields {
                    UdfArg::Merge => UdfPolicy::Merge,
                    UdfArg::Replace => UdfPolicy::Replace,
                },
                max_identifiers: self.max_identifiers,
                allow_empty_identifiers: self.allow_empty_identifiers,
                reject_no_update_fields: self.reject_no_update_fields,
                region_scope: match self.region_scope {
                    RegionScopeArg::Strict => RegionScope::Strict,
                    RegionScopeArg::Any => RegionScope::Any,
                },
                home_region: self.home_region.clone(),
                get_findings_paging: match self.get_findings_paging {
                    PagingArg::Cursor => Paging::Cursor,
                    PagingArg::Offset => Paging::Offset,
                },
            },
            random_seed: self.random_seed,
            account_id: self.account_id.clone(),
            max_body_bytes: self.max_body_bytes,
            v2: self.v2.to_config(),
        };
        config.validate()?;
        Ok(config)
    }

    /// The synthetic seeding spec, if `--synthetic` was given.
    pub(crate) fn synthetic_spec(&self) -> Option<SyntheticSpec> {
        let count = self.synthetic?;
        let mut spec = SyntheticSpec::new(count, self.synthetic_seed.unwrap_or(self.random_seed));
        if !self.synthetic_regions.is_empty() {
            spec.regions = self.synthetic_regions.clone();
        }
        if !self.synthetic_accounts.is_empty() {
            spec.accounts = self.synthetic_accounts.clone();
        }
        Some(spec)
    }
}

/// Why a seed file could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeedFileError {
    /// The file could not be read.
    #[error("cannot read seed file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The file is not JSON / JSON Lines.
    #[error("{path}:{line}:{column}: invalid JSON: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's description.
        message: String,
    },
    /// A JSON value that is neither a finding, a list of findings nor a
    /// `get-findings` document.
    #[error(
        "{path}:{line}: expected a finding object, an array of findings or {{\"Findings\": [...]}}"
    )]
    Shape {
        /// The file.
        path: PathBuf,
        /// 1-based line where the value starts.
        line: usize,
    },
    /// A finding that breaks ASFF.
    #[error("{path}: finding {index} (line {line}): {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based position of the finding in the file.
        index: usize,
        /// 1-based line where the finding starts.
        line: usize,
        /// The service's validation message.
        message: String,
    },
}

/// Line numbers by byte offset, counted incrementally: findings are visited
/// in file order, so each call scans only the bytes since the previous one
/// (a from-the-start count per finding is quadratic on big files).
pub(crate) struct LineCounter<'a> {
    text: &'a [u8],
    offset: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        LineCounter {
            text: text.as_bytes(),
            offset: 0,
            line: 1,
        }
    }

    /// The 1-based line of `offset`.
    pub(crate) fn line_of(&mut self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        if offset < self.offset {
            *self = LineCounter {
                offset: 0,
                line: 1,
                ..*self
            };
        }
        self.line += self.text[self.offset..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.offset = offset;
        self.line
    }
}

/// Where `inner` (a slice of `outer`) starts within `outer`.
pub(crate) fn offset_in(outer: &str, inner: &str) -> usize {
    (inner.as_ptr() as usize).saturating_sub(outer.as_ptr() as usize)
}

/// Loads every finding of `path` into `state` (as `BatchImportFindings`
/// would) and returns how many were read. Accepts `get-findings` output
/// (`{"Findings": [...]}`, also several such documents one after another), a
/// JSON array of findings, and JSON Lines / concatenated finding objects.
/// Stops at the first problem, naming the file, line and finding.
pub fn load_seed_file(state: &EmulatorState, path: &Path) -> Result<usize, SeedFileError> {
    for_each_seed_document(path, |doc| state.insert_finding(doc).map(drop))
}

/// Reads every finding document of a seed file (`{"Findings": [...]}`
/// documents, a JSON array, JSON Lines or concatenated objects) and hands
/// each to `insert`, counting them. Stops at the first problem, naming the
/// file, line and finding; `insert`'s error is the finding's.
pub(crate) fn for_each_seed_document(
    path: &Path,
    mut insert: impl FnMut(serde_json::Value) -> Result<(), String>,
) -> Result<usize, SeedFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| SeedFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    let json_err = |e: serde_json::Error| SeedFileError::Json {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    };
    #[derive(Deserialize)]
    struct Export<'a> {
        #[serde(rename = "Findings", borrow)]
        findings: Vec<&'a RawValue>,
    }
    let mut count = 0;
    let mut lines = LineCounter::new(&text);
    for value in serde_json::Deserializer::from_str(&text).into_iter::<&RawValue>() {
        let value = value.map_err(json_err)?;
        let raw = value.get();
        let items: Vec<&RawValue> = if raw.starts_with('[') {
            serde_json::from_str(raw).map_err(json_err)?
        } else if raw.starts_with('{') {
            match serde_json::from_str::<Export<'_>>(raw) {
                Ok(e) => e.findings,
                Err(_) => vec![value],
            }
        } else {
            return Err(SeedFileError::Shape {
                path: path.to_owned(),
                line: lines.line_of(offset_in(&text, raw)),
            });
        };
        for item in items {
            count += 1;
            let line = lines.line_of(offset_in(&text, item.get()));
            let doc: serde_json::Value = serde_json::from_str(item.get()).map_err(json_err)?;
            insert(doc).map_err(|message| SeedFileError::Invalid {
                path: path.to_owned(),
                index: count,
                line,
                message,
            })?;
        }
    }
    Ok(count)
}

/// Resolves when the process gets SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs the command: serves until SIGINT/SIGTERM.
pub async fn run(args: EmulatorArgs) -> anyhow::Result<()> {
    run_with(args, &mut io::stdout(), shutdown_signal()).await
}

/// [`run`] with the stdout sink and shutdown trigger supplied (for tests and
/// for embedding).
pub async fn run_with(
    args: EmulatorArgs,
    out: &mut (dyn Write + Send),
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    if let Some(dir) = &args.write_samples {
        write_samples(dir).with_context(|| format!("cannot write samples to {}", dir.display()))?;
        writeln!(
            out,
            "wrote {}, {}, {} and {}",
            dir.join("findings.json").display(),
            dir.join("findings.csv").display(),
            dir.join("findings-ocsf.jsonl").display(),
            dir.join("findings-ocsf.csv").display()
        )?;
        return Ok(());
    }
    let remote = !args.listen.ip().is_loopback();
    if remote && !args.allow_remote {
        anyhow::bail!(
            "--listen {}: not a loopback address; the emulator has no authentication and its admin \
             API changes its state, so anyone who can reach it controls it: give --allow-remote to \
             serve it there anyway",
            args.listen
        );
    }
    if args.header_timeout.is_zero() || args.body_timeout.is_zero() {
        anyhow::bail!("--header-timeout and --body-timeout must be longer than 0s");
    }
    let config = args.to_config().context("invalid emulator options")?;
    let state = EmulatorState::new(config);
    for path in &args.seed_files {
        let n = load_seed_file(&state, path)?;
        tracing::info!(file = %path.display(), findings = n, "emulator: seeded from file");
    }
    if let Some(spec) = args.synthetic_spec() {
        let keys = state.seed_synthetic(&spec);
        tracing::info!(
            findings = keys.len(),
            seed = spec.seed,
            "emulator: seeded synthetic findings"
        );
        if let Some(path) = &args.keys_out {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            write_keys_csv(&keys, io::BufWriter::new(file))
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    args.v2.seed(&state, &args)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    // The stdout contract: parents read the port from this first line.
    writeln!(out, "listening on http://{addr}")?;
    out.flush()?;
    if remote {
        eprintln!(
            "sechub-triage emulator: warning: serving on {addr}, which is not a loopback address: \
             anyone who can reach it can read and change every finding (no authentication)"
        );
    }
    tracing::info!(findings = state.len(), %addr, "emulator: serving");
    let limits = super::ConnectionLimits {
        header_timeout: args.header_timeout,
        body_timeout: args.body_timeout,
    };
    super::serve_with(listener, state.clone(), shutdown, limits).await?;
    let c = state.counters();
    tracing::info!(
        requests = c.requests.values().sum::<u64>(),
        throttled = c.throttled,
        "emulator: stopped"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: EmulatorArgs,
    }

    fn parse(argv: &[&str]) -> EmulatorArgs {
        Cli::try_parse_from(std::iter::once("emulator").chain(argv.iter().copied()))
            .unwrap()
            .args
    }

    #[test]
    fn flags_map_to_config() {
        let a = parse(&[
            "--listen",
            "127.0.0.1:0",
            "--batch-update-rate",
            "5",
            "--get-findings-burst",
            "2",
            "--throttle-code",
            "too-many-requests",
            "--concurrent-update-error",
            "0.25",
            "--latency",
            "20ms",
            "--latency-jitter",
            "5ms",
            "--random-seed",
            "9",
            "--duplicates",
            "all-rejected",
            "--user-defined-fields",
            "replace",
            "--max-identifiers",
            "150",
            "--region-scope",
            "any",
            "--home-region",
            "us-east-1",
            "--synthetic",
            "10",
            "--synthetic-regions",
            "eu-west-1,eu-central-1",
        ]);
        let c = a.to_config().unwrap();
        assert!(c.throttle.enabled);
        assert_eq!(c.throttle.batch_update, Bucket::new(5.0, 30));
        assert_eq!(c.throttle.get_findings, Bucket::new(3.0, 2));
        assert_eq!(c.throttle.code, ThrottleCode::TooManyRequestsException);
        assert_eq!(c.faults.concurrent_update_error, 0.25);
        assert_eq!(c.faults.latency, Duration::from_millis(20));
        assert_eq!(c.random_seed, 9);
        assert_eq!(c.semantics.duplicates, DuplicatePolicy::AllRejected);
        assert_eq!(c.semantics.user_defined_fields, UdfPolicy::Replace);
        assert_eq!(c.semantics.max_identifiers, 150);
        assert_eq!(c.semantics.region_scope, RegionScope::Any);
        let spec = a.synthetic_spec().unwrap();
        assert_eq!((spec.count, spec.seed), (10, 9));
        assert_eq!(spec.regions, vec!["eu-west-1", "eu-central-1"]);
        assert!(
            !parse(&["--no-throttle"])
                .to_config()
                .unwrap()
                .throttle
                .enabled
        );
        assert!(parse(&["--http-500", "2"]).to_config().is_err());
        assert!(parse(&["--max-identifiers", "0"]).to_config().is_err());
    }

    fn finding(id: &str) -> serde_json::Value {
        serde_json::json!({
            "SchemaVersion": "2018-10-08", "Id": id,
            "ProductArn": "arn:aws:securityhub:eu-west-1::product/aws/guardduty",
            "GeneratorId": "g", "AwsAccountId": "123456789012",
            "CreatedAt": "2026-01-01T00:00:00Z", "UpdatedAt": "2026-01-01T00:00:00Z",
            "Severity": {"Label": "LOW"}, "Title": "t", "Description": "d",
            "Resources": [{"Type": "Other", "Id": "r"}]
        })
    }

    #[test]
    fn seed_files_in_every_shape() {
        let dir = tempfile::tempdir().unwrap();
        let state = EmulatorState::default();
        let export = dir.path().join("export.json");
        let doc = serde_json::json!({"Findings": [finding("a"), finding("b")]});
        std::fs::write(&export, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        assert_eq!(load_seed_file(&state, &export).unwrap(), 2);
        let jsonl = dir.path().join("f.jsonl");
        std::fs::write(&jsonl, format!("{}\n{}\n\n", finding("c"), finding("d"))).unwrap();
        assert_eq!(load_seed_file(&state, &jsonl).unwrap(), 2);
        let arr = dir.path().join("arr.json");
        std::fs::write(&arr, serde_json::json!([finding("e")]).to_string()).unwrap();
        assert_eq!(load_seed_file(&state, &arr).unwrap(), 1);
        assert_eq!(state.len(), 5);
        let k = crate::model::FindingKey::new(
            "c",
            "arn:aws:securityhub:eu-west-1::product/aws/guardduty",
        );
        assert_eq!(state.finding(&k).unwrap()["Region"], "eu-west-1");
    }

    #[test]
    fn seed_file_errors_name_file_line_and_finding() {
        let dir = tempfile::tempdir().unwrap();
        let state = EmulatorState::default();
        let bad_json = dir.path().join("bad.jsonl");
        std::fs::write(&bad_json, format!("{}\n{{\"Id\": \n", finding("a"))).unwrap();
        let e = load_seed_file(&state, &bad_json).unwrap_err().to_string();
        assert!(
            e.contains("bad.jsonl:3:") && e.contains("invalid JSON"),
            "{e}"
        );

        let mut broken = finding("x");
        broken.as_object_mut().unwrap().remove("Title");
        let invalid = dir.path().join("invalid.jsonl");
        std::fs::write(&invalid, format!("{}\n{}\n", finding("ok"), broken)).unwrap();
        let e = load_seed_file(&state, &invalid).unwrap_err().to_string();
        assert!(e.contains("invalid.jsonl: finding 2 (line 2)"), "{e}");
        assert!(e.contains("required property 'Title'"), "{e}");

        let shape = dir.path().join("shape.json");
        std::fs::write(&shape, "\n\n42\n").unwrap();
        let e = load_seed_file(&state, &shape).unwrap_err().to_string();
        assert!(e.contains("shape.json:3: expected a finding"), "{e}");

        let e = load_seed_file(&state, &dir.path().join("missing.json")).unwrap_err();
        assert!(e.to_string().contains("cannot read seed file"), "{e}");
    }

    #[tokio::test]
    async fn run_prints_the_address_first_and_stops_on_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys.csv");
        let args = parse(&[
            "--synthetic",
            "25",
            "--keys-out",
            keys.to_str().unwrap(),
            "--no-throttle",
        ]);
        let mut out = Vec::new();
        run_with(args, &mut out, async {}).await.unwrap();
        let text = String::from_utf8(out).unwrap();
        let first = text.lines().next().unwrap();
        assert!(
            first.starts_with("listening on http://127.0.0.1:"),
            "{first}"
        );
        assert!(!first.ends_with(":0"), "{first}");
        let csv = std::fs::read_to_string(&keys).unwrap();
        assert_eq!(csv.lines().count(), 26);
        assert_eq!(csv.lines().next(), Some("Id,ProductArn"));
    }

    #[tokio::test]
    async fn write_samples_writes_and_exits() {
        let dir = tempfile::tempdir().unwrap();
        let args = parse(&["--write-samples", dir.path().to_str().unwrap()]);
        let mut out = Vec::new();
        run_with(args, &mut out, std::future::pending())
            .await
            .unwrap();
        assert!(dir.path().join("findings.json").exists());
        assert!(dir.path().join("findings.csv").exists());
        assert!(dir.path().join("findings-ocsf.jsonl").exists());
        assert!(dir.path().join("findings-ocsf.csv").exists());
    }
}
