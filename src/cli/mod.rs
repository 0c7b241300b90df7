//! Command-line front end: parses flags into validated settings, builds the
//! engine's parts, renders events and the summary, maps results to exit
//! statuses. No triage logic lives here.

mod arenas;
pub mod campaign;
pub mod exit;
pub mod export;
pub(crate) mod export_table;
pub mod generate;
pub mod logging;
pub mod nightly;
pub(crate) mod paths;
pub mod plan;
mod progress;
pub(crate) mod query;
pub mod report;
pub mod revert;
pub(crate) mod settings;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::decision::{Decision, DecisionField, Rules, parse_cli_input_json_with, parse_flag_with};
use crate::engine::{self, EngineConfig, Input};
use crate::events::{EventSink, NullSink};
use crate::limits::RateConfig;
use crate::model::{FindingKey, Location, OutcomeKind, SourceItem, SourceRecord};
use crate::reporting::RunSummary;
use crate::source::{self, InputSpec, SourceOptions};
use crate::submission::{AwsSettings, Submitter};

mod demo;

/// Bulk triage for AWS Security Hub.
#[derive(Parser, Debug)]
#[command(name = "sechub-triage", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: logging::LogArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Apply one triage decision to every finding of one or more exported lists.
    Update(Box<UpdateArgs>),
    /// Show what `update` with the same arguments would do, sending nothing
    /// (the same as `update --dry-run`).
    Plan(Box<UpdateArgs>),
    /// Run a campaign file (TOML): `update` with its settings read from the
    /// file; flags given here override the file.
    Run(Box<campaign::RunArgs>),
    /// Undo a run from its results file: restore what each updated finding
    /// held before, where the input recorded it (`--dry-run` to plan it).
    Revert(Box<revert::RevertArgs>),
    /// Run `update` over the bundled samples against an in-process emulator
    /// with some fault injection: the whole engine, no AWS account needed.
    Demo(Box<demo::DemoArgs>),
    /// Write the findings a `--filters` query selects to a file (JSON Lines
    /// of ASFF) that `plan`, `update` and `revert` read back.
    Export(Box<export::ExportArgs>),
    /// Run the local Security Hub emulator.
    Emulator(Box<crate::emulator::cli::EmulatorArgs>),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completions(generate::CompletionsArgs),
    /// Print the man page (roff), every subcommand included.
    Man(generate::ManArgs),
}

/// The whole command-line definition (for completions, the man page and
/// tests that walk it).
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command()
}

/// The nine `BatchUpdateFindings` fields, with the AWS CLI's flag names and
/// syntax (shorthand or JSON, or `file://PATH`).
#[derive(Args, Debug, Default, Clone)]
pub struct DecisionArgs {
    /// Note to set, e.g. `Text="Known issue",UpdatedBy=secops` or JSON.
    #[arg(long, value_name = "NOTE", help_heading = "Decision")]
    pub note: Option<String>,
    /// Severity, e.g. `Label=LOW` or `{"Label":"LOW"}`.
    #[arg(long, value_name = "SEVERITY", help_heading = "Decision")]
    pub severity: Option<String>,
    /// UNKNOWN, TRUE_POSITIVE, FALSE_POSITIVE or BENIGN_POSITIVE.
    #[arg(long, value_name = "STATE", help_heading = "Decision")]
    pub(crate) verification_state: Option<String>,
    /// 0 to 100.
    #[arg(long, value_name = "N", help_heading = "Decision")]
    pub confidence: Option<String>,
    /// 0 to 100.
    #[arg(long, value_name = "N", help_heading = "Decision")]
    pub criticality: Option<String>,
    /// Finding types (`namespace/category/classifier`), several values or a JSON list.
    #[arg(long, value_name = "TYPE", num_args = 1.., help_heading = "Decision")]
    pub types: Vec<String>,
    /// `key=value,key2=value2` or a JSON object.
    #[arg(long, value_name = "MAP", help_heading = "Decision")]
    pub user_defined_fields: Option<String>,
    /// Workflow, e.g. `Status=SUPPRESSED` or `{"Status":"SUPPRESSED"}`.
    #[arg(long, value_name = "WORKFLOW", help_heading = "Decision")]
    pub workflow: Option<String>,
    /// Related findings: `Id=..,ProductArn=..` (several) or a JSON list.
    #[arg(long, value_name = "FINDING", num_args = 1.., help_heading = "Decision")]
    pub(crate) related_findings: Vec<String>,
    /// The new Security Hub (BatchUpdateFindingsV2): OCSF status_id, one of
    /// 0 Unknown, 1 New, 2 In Progress, 3 Suppressed, 4 Resolved, 5 Archived, 99 Other.
    #[arg(long, value_name = "N", help_heading = "Decision (new Security Hub)")]
    pub status_id: Option<String>,
    /// The new Security Hub: OCSF severity_id, one of 0 Unknown, 1 Informational,
    /// 2 Low, 3 Medium, 4 High, 5 Critical, 6 Fatal, 99 Other.
    #[arg(long, value_name = "N", help_heading = "Decision (new Security Hub)")]
    pub severity_id: Option<String>,
    /// The new Security Hub: the finding's comment, 1 to 512 characters.
    #[arg(
        long,
        value_name = "TEXT",
        help_heading = "Decision (new Security Hub)"
    )]
    pub comment: Option<String>,
    /// The AWS CLI's JSON document for batch-update-findings or
    /// batch-update-findings-v2 (string or file://PATH); its FindingIdentifiers
    /// (and MetadataUids) join the input. Flags win over it.
    #[arg(long, value_name = "JSON", help_heading = "Decision")]
    pub(crate) cli_input_json: Option<String>,
    /// Accept `--types` values whose namespace is not one of the five
    /// documented ones (whether Security Hub accepts them is unverified).
    #[arg(long, help_heading = "Decision")]
    pub(crate) allow_unknown_type_namespaces: bool,
}

impl DecisionArgs {
    /// Builds and validates the decision (which may be empty when the input
    /// carries per-row decisions); also returns identifiers from
    /// `--cli-input-json`.
    pub fn build(&self) -> anyhow::Result<(Decision, Vec<FindingKey>)> {
        let rules = self.rules();
        let mut decision = Decision::default();
        let mut ids = Vec::new();
        if let Some(doc) = &self.cli_input_json {
            let input = parse_cli_input_json_with(doc, &rules)?;
            decision = input.decision;
            ids = input.finding_identifiers;
            // MetadataUids name findings by `metadata.uid` (a V2 key
            // without an account; the Region comes from --region).
            ids.extend(
                input
                    .metadata_uids
                    .into_iter()
                    .map(|u| FindingKey::new(u, "")),
            );
        }
        let single = |v: &Option<String>| v.as_ref().map(|s| vec![s.clone()]);
        let fields = [
            (DecisionField::Note, single(&self.note)),
            (DecisionField::Severity, single(&self.severity)),
            (
                DecisionField::VerificationState,
                single(&self.verification_state),
            ),
            (DecisionField::Confidence, single(&self.confidence)),
            (DecisionField::Criticality, single(&self.criticality)),
            (
                DecisionField::Types,
                (!self.types.is_empty()).then(|| self.types.clone()),
            ),
            (
                DecisionField::UserDefinedFields,
                single(&self.user_defined_fields),
            ),
            (DecisionField::Workflow, single(&self.workflow)),
            (
                DecisionField::RelatedFindings,
                (!self.related_findings.is_empty()).then(|| self.related_findings.clone()),
            ),
            (DecisionField::Comment, single(&self.comment)),
            (DecisionField::SeverityId, single(&self.severity_id)),
            (DecisionField::StatusId, single(&self.status_id)),
        ];
        for (field, values) in fields {
            if let Some(values) = values {
                decision.merge_from(parse_flag_with(field, &values, &rules)?);
            }
        }
        // Fields of both operations: refused, saying why, before anything
        // else is checked.
        crate::decision::check_not_mixed(&decision)?;
        // No decision at all is allowed here: the input may carry one per
        // row. A record that ends up with none is rejected by the engine.
        if !decision.is_empty() {
            decision.validate_with(&rules)?;
        }
        Ok((decision, ids))
    }

    /// The validation rules these flags ask for.
    pub(crate) fn rules(&self) -> Rules {
        Rules::default().allow_unknown_type_namespaces(self.allow_unknown_type_namespaces)
    }
}

/// How to read the inputs.
#[derive(Args, Debug, Default, Clone)]
pub struct InputArgs {
    /// Column holding the finding Id (found by header name otherwise).
    #[arg(long, value_name = "NAME", help_heading = "Input")]
    pub id_column: Option<String>,
    /// Column holding the ProductArn (found by header name otherwise).
    #[arg(long, value_name = "NAME", help_heading = "Input")]
    pub product_arn_column: Option<String>,
    /// Input format (detected from the name and content otherwise).
    #[arg(long, value_enum, help_heading = "Input")]
    pub format: Option<FormatArg>,
    /// Skip findings whose state recorded in the input (an ASFF or OCSF
    /// export) already holds the decision: no call, outcome `unchanged`.
    #[arg(long, help_heading = "Input")]
    pub skip_unchanged: bool,
    /// CSV field delimiter (one character, e.g. ';' or '\t').
    #[arg(long, value_name = "CHAR", value_parser = parse_delimiter, help_heading = "Input")]
    pub delimiter: Option<u8>,
    /// Take columns named after decision fields (Workflow.Status, Note.Text,
    /// severity_label, ...) as per-row decisions: every such column, or with
    /// =COL,COL only those. A row's non-empty value then overrides the
    /// command line's value of that field for its row. Without it, every
    /// such column is read as the finding's current state and never written.
    #[arg(long, value_name = "COL,COL", num_args = 0..=1, require_equals = true,
          default_missing_value = "", conflicts_with = "no_row_decisions", help_heading = "Input")]
    pub(crate) row_decisions: Option<String>,
    /// The default: columns named after decision fields are the findings'
    /// recorded state, never per-row decisions (kept for older scripts).
    #[arg(long, help_heading = "Input")]
    pub(crate) no_row_decisions: bool,
    /// Rows that name one finding with different decisions are refused
    /// (the plan lists them); `first` applies the first row's decision and
    /// records the others as duplicates, not sent; `last` applies the last
    /// row's (the inputs are read once more, before the plan, to find it).
    #[arg(long, value_enum, value_name = "first|last", help_heading = "Input")]
    pub duplicates: Option<DuplicatesArg>,
    /// Set by the command, not a flag: the command line sets no decision.
    #[arg(skip)]
    pub(crate) no_decision: bool,
    /// Set by the command, not a flag: the decision is the new Security
    /// Hub's (`BatchUpdateFindingsV2`), so records are named by V2 keys.
    #[arg(skip)]
    pub v2: bool,
}

/// `--duplicates` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DuplicatesArg {
    /// The first row of each finding wins.
    First,
    /// The last row of each finding wins.
    Last,
}

impl InputArgs {
    /// Which columns are per-row decisions.
    pub(crate) fn row_decisions(&self) -> source::RowDecisions {
        match &self.row_decisions {
            Some(v) if !self.no_row_decisions => source::RowDecisions::from_flag(v),
            _ => source::RowDecisions::Off,
        }
    }
}

/// `--format` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    /// Comma-separated values with a header row.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// get-findings output, JSON Lines, EventBridge events, Firehose records.
    Json,
}

fn parse_delimiter(s: &str) -> Result<u8, String> {
    let unescaped = match s {
        "\\t" | "tab" => "\t",
        other => other,
    };
    match unescaped.as_bytes() {
        [b] if b.is_ascii() => Ok(*b),
        _ => Err(format!("{s:?} is not a single ASCII character")),
    }
}

/// Where and as whom to call Security Hub.
#[derive(Args, Debug, Default, Clone)]
pub struct AwsArgs {
    /// Send every finding to this Region (e.g. the aggregation Region)
    /// instead of the Region of its ProductArn.
    #[arg(long, value_name = "REGION", help_heading = "AWS")]
    pub region: Option<String>,
    /// Named profile from the shared AWS config files.
    #[arg(long, value_name = "NAME", help_heading = "AWS")]
    pub profile: Option<String>,
    /// Custom endpoint (the emulator, a VPC endpoint).
    #[arg(long, value_name = "URL", help_heading = "AWS")]
    pub endpoint_url: Option<String>,
    /// Per-request timeout (at least 1s).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_request_timeout, help_heading = "AWS")]
    pub request_timeout: Duration,
}

/// Shortest `--request-timeout`: below it every request would time out
/// (a TLS handshake alone can take longer), turning the run into retries.
pub(crate) const MIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

fn parse_request_timeout(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d < MIN_REQUEST_TIMEOUT {
        return Err(format!(
            "{s} is shorter than the floor of {}: a request needs time to be answered",
            humantime::format_duration(MIN_REQUEST_TIMEOUT)
        ));
    }
    Ok(d)
}

/// Pacing and retries.
#[derive(Args, Debug, Clone)]
pub struct PacingArgs {
    /// Requests per second per Region (the documented quota is 10).
    #[arg(long, default_value_t = 10.0, help_heading = "Pacing")]
    pub rate: f64,
    /// Burst per Region (the documented quota is 30).
    #[arg(long, default_value_t = 30, help_heading = "Pacing")]
    pub burst: u32,
    /// Requests in flight per Region [default: burst + 2 s of rate].
    #[arg(long, help_heading = "Pacing")]
    pub concurrency: Option<usize>,
    /// Attempts per finding for retryable errors before giving up.
    #[arg(long, default_value_t = engine::DEFAULT_MAX_ATTEMPTS, help_heading = "Pacing")]
    pub max_attempts: u32,
}

impl PacingArgs {
    fn engine_config(&self, region: Option<String>) -> anyhow::Result<EngineConfig> {
        if !(self.rate.is_finite() && self.rate >= 0.01) {
            bail!(
                "--rate must be at least 0.01 requests per second, got {}",
                self.rate
            );
        }
        if self.burst == 0 {
            bail!("--burst must be at least 1");
        }
        if self.concurrency == Some(0) {
            bail!("--concurrency must be at least 1");
        }
        if self.max_attempts == 0 {
            bail!("--max-attempts must be at least 1");
        }
        let rate = RateConfig {
            rate: self.rate,
            burst: self.burst,
        };
        Ok(EngineConfig {
            rate,
            concurrency: self
                .concurrency
                .unwrap_or_else(|| engine::default_concurrency(rate)),
            max_attempts: self.max_attempts,
            region_override: region,
            ..EngineConfig::default()
        })
    }
}

/// Outputs.
#[derive(Args, Debug, Default, Clone)]
pub struct OutputArgs {
    /// Write one row per input record (CSV, or JSON Lines if the name ends in .jsonl).
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub results: Option<PathBuf>,
    /// Write the findings that were not updated, in a form `update` reads back.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub failed: Option<PathBuf>,
    /// Write a JSON run report (counts, pacing, throttles, retries, times,
    /// exit status) when the run begins and again when the process exits.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub report: Option<PathBuf>,
    /// Summary format on stdout.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text, help_heading = "Output")]
    pub output: OutputFormat,
    /// Never draw a progress bar (it is drawn only when stderr is a terminal).
    #[arg(long, help_heading = "Output")]
    pub no_progress: bool,
    /// Resume, graceful stop and time budget.
    #[command(flatten)]
    pub nightly: nightly::NightlyArgs,
}

/// `--output` values.
#[derive(Clone, Copy, Debug, Default, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object.
    Json,
    /// GitHub-flavoured Markdown, for a pull request or a CI comment.
    Markdown,
}

/// `sechub-triage update`.
#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// Finding lists (CSV, Parquet, JSON; `-` for standard input).
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<String>,
    /// What to write on every finding.
    #[command(flatten)]
    pub decision: DecisionArgs,
    /// How the inputs are read.
    #[command(flatten)]
    pub input: InputArgs,
    /// Credentials, Region and endpoint.
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Rate, concurrency and retries.
    #[command(flatten)]
    pub pacing: PacingArgs,
    /// Results, report and logs.
    #[command(flatten)]
    pub output: OutputArgs,
    /// Plan, note policy and guardrails.
    #[command(flatten)]
    pub campaign: plan::CampaignArgs,
    /// Selecting findings by query instead of input files.
    #[command(flatten)]
    pub query: crate::query::QueryArgs,
    /// Set by `--filters`, not a flag: the selection read for this command.
    #[arg(skip)]
    pub(crate) selected: Option<query::Selected>,
}

/// Entry point: returns the process exit status.
pub fn main() -> i32 {
    // Before any thread starts (the runtime's, the reader's).
    arenas::limit();
    nightly::mark_process_start();
    use clap::{CommandFactory, FromArgMatches};
    // The matches are kept: `run` needs to know which flags were given.
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m).map(|c| (c, m)));
    let (cli, matches) = match parsed {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::SUCCESS
            };
            let _ = e.print();
            return code;
        }
    };
    if let Err(e) = logging::init(&cli.log) {
        eprintln!("sechub-triage: error: {e}");
        return exit::USAGE;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sechub-triage: cannot start the async runtime: {e}");
            return exit::USAGE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Update(args) => update(*args).await,
            Command::Plan(args) => plan::plan_command(*args).await,
            Command::Revert(args) => revert::run(*args).await,
            Command::Run(args) => {
                let m = matches.subcommand_matches("run").unwrap_or(&matches);
                campaign::run(*args, m).await
            }
            Command::Demo(args) => demo::run(*args).await,
            Command::Export(args) => export::run(*args).await,
            Command::Emulator(args) => crate::emulator::cli::run(*args)
                .await
                .map(|()| exit::SUCCESS),
            Command::Completions(args) => generate::run_completions(&args, command()),
            Command::Man(args) => generate::run_man(&args, command()),
        }
    });
    // Work left on blocking threads (a plan pass a signal interrupted) is
    // not waited for.
    rt.shutdown_background();
    let (code, error) = match result {
        Ok(code) => (code, None),
        Err(e) if is_broken_pipe(&e) => (exit::SUCCESS, None),
        Err(e) => {
            // Whatever an error quotes from an input (a header cell, a
            // campaign value) is printed escaped and cut to a sane length.
            let message = source::printable(&format!("{e:#}"), ERROR_MAX_CHARS);
            eprintln!("sechub-triage: error: {message}");
            (exit::for_error(&e), Some(message))
        }
    };
    // Last, so that the report carries the status the process exits with.
    if let Err(e) = report::finish(code, error) {
        eprintln!("sechub-triage: error: {e}");
        return if code == exit::SUCCESS {
            exit::LOCAL_IO
        } else {
            code
        };
    }
    code
}

/// Longest error message printed: enough for every message of ours with
/// its causes, never the megabytes of a malformed input.
const ERROR_MAX_CHARS: usize = 4000;

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Everything `update` and `demo` share once the inputs and client exist.
pub(crate) struct Job {
    pub engine: EngineConfig,
    pub decision: Decision,
    /// Send `BatchUpdateFindingsV2` (the decision, or the rows' decisions,
    /// are the new Security Hub's).
    pub v2: bool,
    pub input: Input,
    pub submitter: Submitter,
    pub output: OutputArgs,
}

/// Opens the inputs (plus identifiers from `--cli-input-json`) as one stream.
pub(crate) fn open_input(
    inputs: &[String],
    extra: Vec<FindingKey>,
    args: &InputArgs,
    region: Option<String>,
) -> anyhow::Result<Input> {
    open_input_with(
        inputs,
        extra,
        args,
        region,
        &plan::Spooled::default(),
        false,
    )
}

/// [`open_input`], reading standard input and the other inputs that can be
/// read only once from the copies in `spooled` (where `update` saved them
/// to read them twice) and, with `quiet`, printing no notices (the plan
/// pass: the run prints them).
pub(crate) fn open_input_with(
    inputs: &[String],
    extra: Vec<FindingKey>,
    args: &InputArgs,
    region: Option<String>,
    spooled: &plan::Spooled,
    quiet: bool,
) -> anyhow::Result<Input> {
    if inputs.is_empty() && extra.is_empty() {
        bail!(
            "no input: name one or more finding lists (or - for standard input), or give FindingIdentifiers in --cli-input-json"
        );
    }
    let opts = source_options(args, region, quiet);
    let specs: Vec<InputSpec> = inputs.iter().map(|s| InputSpec::parse(s)).collect();
    let v2 = args.v2.then(|| opts.notices.clone());
    let input = open_parts(inputs, extra, specs, opts, spooled)?;
    Ok(match v2 {
        Some(notices) => Box::new(source::v2_keys(input, notices)),
        None => input,
    })
}

/// How `args` asks for inputs to be read (`quiet`: no notices).
pub(crate) fn source_options(
    args: &InputArgs,
    region: Option<String>,
    quiet: bool,
) -> SourceOptions {
    SourceOptions {
        format: args.format.map(|f| match f {
            FormatArg::Csv => source::Format::Csv,
            FormatArg::Parquet => source::Format::Parquet,
            FormatArg::Json => source::Format::Json,
        }),
        delimiter: args.delimiter,
        id_column: args.id_column.clone(),
        product_arn_column: args.product_arn_column.clone(),
        region,
        row_decisions: args.row_decisions(),
        no_decision: args.no_decision && !args.row_decisions().is_on(),
        notices: if quiet {
            source::Notices::default()
        } else {
            source::Notices::to(|line| tracing::warn!("{line}"))
        },
        v2: args.v2,
    }
}

fn open_parts(
    inputs: &[String],
    extra: Vec<FindingKey>,
    specs: Vec<InputSpec>,
    opts: SourceOptions,
    spooled: &plan::Spooled,
) -> anyhow::Result<Input> {
    let file: Arc<str> = "--cli-input-json".into();
    let from_json = extra.into_iter().enumerate().map(move |(i, key)| {
        Ok(SourceItem::Record(SourceRecord::new(
            Location {
                file: file.clone(),
                row: i as u64 + 1,
                detail: Some(format!("FindingIdentifiers[{i}]")),
            },
            key,
        )))
    });
    if specs.is_empty() {
        return Ok(Box::new(from_json));
    }
    // Runs of inputs read directly are opened together as usual; a saved
    // copy is read under its input's own name (`-`, `/dev/fd/63`).
    let mut parts: Vec<source::Source> = Vec::new();
    let mut direct: Vec<InputSpec> = Vec::new();
    for (i, spec) in specs.into_iter().enumerate() {
        match spooled.get(i) {
            None => direct.push(spec),
            Some(copy) => {
                if !direct.is_empty() {
                    parts.push(source::open(&direct, &opts).map_err(anyhow::Error::new)?);
                    direct.clear();
                }
                let file = std::fs::File::open(copy)
                    .with_context(|| format!("cannot reopen {}", copy.display()))?;
                parts.push(
                    source::open_reader(&inputs[i], file, &opts).map_err(anyhow::Error::new)?,
                );
            }
        }
    }
    if !direct.is_empty() {
        parts.push(source::open(&direct, &opts).map_err(anyhow::Error::new)?);
    }
    let files = parts.into_iter().flatten();
    Ok(Box::new(from_json.chain(files.map(|r| {
        r.map_err(|e| Box::new(e) as engine::InputError)
    }))))
}

async fn update(args: UpdateArgs) -> anyhow::Result<i32> {
    update_reading(args, &[]).await
}

/// `update`, for a command that also reads the files `also_read` (a
/// campaign file): every setting is checked first, before the plan pass.
pub(crate) async fn update_reading(
    mut args: UpdateArgs,
    also_read: &[paths::Named],
) -> anyhow::Result<i32> {
    let mode = if args.campaign.dry_run {
        settings::Mode::Plan
    } else {
        settings::Mode::Send
    };
    let checked = settings::check_update(&args, mode, also_read);
    if let Some(path) = &args.output.report {
        report::register(path, "update", None, &args.inputs);
    }
    let checked = checked.inspect_err(forget_report_on_clash)?;
    // `--filters`: the selection, read whole before the plan and the run,
    // or while the run updates where that cannot change it.
    let sends = !args.campaign.dry_run;
    let selection = query::select(&mut args, sends.then_some(&checked)).await?;
    let _selection = match selection {
        query::Selection::Stream(stream) => {
            return query::run_streamed(args, checked, *stream).await;
        }
        other => other,
    };
    if args.campaign.dry_run {
        return plan::plan_command_checked(args, checked).await;
    }
    let settings::UpdateSettings {
        decision,
        extra,
        mut engine,
    } = checked;
    // No decision and no per-row decisions: the readers refuse the inputs,
    // naming the columns that look like decisions.
    args.input.no_decision = decision.is_empty();
    args.input.v2 = decision.is_v2() || plan::rows_decide_v2(&args, &decision, &extra)?;
    // The plan pass: guardrails and confirmation before any call. A
    // signal now stops the command at once (status 4): nothing was sent.
    let cleared = tokio::select! {
        cleared = plan::clear_run(&args, &decision, &extra, &mut engine) => cleared?,
        signal = nightly::next_signal() => {
            return Err(exit::StoppedBeforeRun { signal }.into());
        }
    };
    cleared.check_unchanged()?;
    if args.input.v2 {
        preflight_v2(&args.aws, &cleared.regions).await?;
    }
    let input = open_input_with(
        &args.inputs,
        extra,
        &args.input,
        args.aws.region.clone(),
        &cleared.spooled,
        false,
    )?;
    let input = cleared.expect_records(input);
    let v2 = args.input.v2;
    let summary = run_with_aws_on(
        engine,
        decision,
        v2,
        input,
        &args.aws,
        &args.output,
        args.inputs.clone(),
        cleared.spooled.paths(),
        args.selected.as_ref().map(|s| s.query.clone()),
    )
    .await?;
    Ok(exit_status(&summary))
}

/// `DescribeSecurityHubV2` in each Region a V2 run sends to: where the new
/// Security Hub is not enabled, the run stops before any update
/// ([`exit::V2NotEnabled`], exit status 3). Any other answer (no
/// permission for the describe call, the network) is a warning: the run's
/// own requests say more.
pub(crate) async fn preflight_v2(aws: &AwsArgs, regions: &[String]) -> anyhow::Result<()> {
    let submitter = Submitter::from_env(&AwsSettings {
        profile: aws.profile.clone(),
        endpoint_url: aws.endpoint_url.clone(),
        request_timeout: Some(aws.request_timeout),
    })
    .await;
    let mut off = Vec::new();
    for region in regions {
        if crate::arn::parse_product_arn(&format!("arn:aws:securityhub:{region}::productv2/x/y"))
            .is_err()
        {
            continue;
        }
        match submitter.security_hub_v2_enabled(region).await {
            Ok(true) => tracing::info!(region = %region, "DescribeSecurityHubV2: enabled"),
            Ok(false) => off.push(region.clone()),
            Err(e) => tracing::warn!(
                region = %region,
                "DescribeSecurityHubV2 failed ({}: {}); going on",
                e.code,
                e.message
            ),
        }
    }
    if off.is_empty() {
        Ok(())
    } else {
        Err(exit::V2NotEnabled { regions: off }.into())
    }
}

/// A report whose path clashes with another file must not be written.
pub(crate) fn forget_report_on_clash(e: &anyhow::Error) {
    if e.chain().any(|c| {
        matches!(
            c.downcast_ref::<paths::PathError>(),
            Some(paths::PathError::Clash { .. } | paths::PathError::IsDirectory { .. })
        )
    }) {
        report::forget();
    }
}

/// Runs a job against Security Hub (or `--endpoint-url`) with the standard
/// credential chain, journaled into its outputs, and prints its summary.
/// `inputs` are the names the journal's header records; some inputs may
/// have been read from saved copies
/// (`copies[i]`, by input position): the journal fingerprints the copies.
/// Sends `BatchUpdateFindingsV2` when `v2` (the decision is V2's, or the
/// job decision is empty and the rows carry V2 decisions: a revert of a V2
/// run, a V2 `--failed` file fed back); `query` is recorded for a
/// `--filters` selection.
#[expect(
    clippy::too_many_arguments,
    reason = "the job's parts, passed through once"
)]
pub(crate) async fn run_with_aws_on(
    engine: EngineConfig,
    decision: Decision,
    v2: bool,
    input: Input,
    aws: &AwsArgs,
    output: &OutputArgs,
    inputs: Vec<String>,
    copies: Vec<Option<PathBuf>>,
    query: Option<serde_json::Value>,
) -> anyhow::Result<RunSummary> {
    let submitter = Submitter::from_env(&AwsSettings {
        profile: aws.profile.clone(),
        endpoint_url: aws.endpoint_url.clone(),
        request_timeout: Some(aws.request_timeout),
    })
    .await;
    let ctx = nightly::JobContext {
        inputs,
        copies,
        request_timeout: aws.request_timeout,
        query,
    };
    let job = Job {
        engine,
        decision,
        v2,
        input,
        submitter,
        output: output.clone(),
    };
    let summary = run_job_in(job, &ctx).await?;
    print_summary(&summary, output.output)?;
    for line in crate::diagnose::advice(
        &summary,
        &crate::diagnose::Setting::of(&aws.profile, &aws.endpoint_url, &aws.region),
    ) {
        eprintln!("{line}");
    }
    Ok(summary)
}

/// Runs the engine with the outputs a job asked for.
pub(crate) async fn run_job(job: Job) -> anyhow::Result<RunSummary> {
    run_job_in(job, &nightly::JobContext::default()).await
}

/// [`run_job`] for a job whose inputs and request timeout are known (they
/// go into the journal's header and the time budget's margin).
pub(crate) async fn run_job_in(job: Job, ctx: &nightly::JobContext) -> anyhow::Result<RunSummary> {
    let v2 = job.v2 || job.decision.is_v2();
    let prepared = nightly::Session::open(
        &job.output,
        ctx,
        &job.decision,
        v2,
        job.engine.duplicates,
        job.input,
    )
    .await?;
    let (session, sinks) = (prepared.session, prepared.sinks);
    if let Some(path) = &job.output.report {
        // Usually registered already by `update` or `run`, which know the inputs.
        report::register(path, "run", None, &[]);
    }
    // Only now, holding the lock: the report may be another run's until then.
    report::start().map_err(|e| exit::LocalIo::new("cannot write --report", e))?;
    // Log lines and a redrawn bar on one terminal garble each other.
    let progress = progress::Progress::stderr_if_terminal(job.output.no_progress).map(Arc::new);
    let mut events: Arc<dyn EventSink> = match &progress {
        Some(p) => p.clone(),
        None => Arc::new(NullSink),
    };
    let report = report::active();
    if let Some(r) = &report {
        events = Arc::new(report::Tee(vec![events, r.clone()]));
    }
    let submitter = Arc::new(job.submitter);
    let summary = if v2 {
        engine::run_operation(
            &job.engine,
            prepared.input,
            Arc::new(job.decision),
            Arc::new(crate::submission::v2::BatchUpdateFindingsV2::new(submitter)),
            sinks,
            events,
            prepared.controls,
        )
        .await
    } else {
        engine::run_with(
            &job.engine,
            prepared.input,
            Arc::new(job.decision),
            submitter,
            sinks,
            events,
            prepared.controls,
        )
        .await
    }
    .context("the run stopped")?;
    session.close(&summary)?;
    if let Some(p) = progress {
        p.finish();
    }
    if let Some(r) = &report {
        r.record_summary(&summary);
    }
    Ok(summary)
}

pub(crate) fn print_summary(summary: &RunSummary, format: OutputFormat) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match format {
        OutputFormat::Text => out.write_all(summary.to_text().as_bytes())?,
        OutputFormat::Json => {
            serde_json::to_writer_pretty(
                &mut out,
                &crate::schema::Versioned::new(crate::schema::SUMMARY, summary),
            )?;
            out.write_all(b"\n")?;
        }
        OutputFormat::Markdown => {
            out.write_all(crate::plan::markdown::summary(summary).as_bytes())?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Maps a finished run to the documented exit status.
pub fn exit_status(summary: &RunSummary) -> i32 {
    if summary.aborted.is_some() {
        exit::ABORTED
    } else if summary.input_error.is_some() {
        exit::USAGE
    } else if summary.stopped.is_some() || summary.count(OutcomeKind::Unknown) > 0 {
        // Work left that `--resume` finishes: a stop, or findings whose
        // requests may have been applied but were never answered.
        exit::STOPPED
    } else if summary.count_all_runs(OutcomeKind::Failed) > 0
        || summary.count_all_runs(OutcomeKind::Invalid) > 0
        || summary.count_all_runs(OutcomeKind::NotAttempted) > 0
    {
        exit::PARTIAL
    } else {
        exit::SUCCESS
    }
}
