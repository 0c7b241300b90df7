//! `sechub-triage run campaign.toml`: a whole run described in a TOML file,
//! so that nightly jobs and suppression campaigns are reviewed in git rather
//! than assembled from flags.
//!
//! A campaign file holds the same settings as `update`'s flags, under the
//! flags' own names (underscores for dashes), grouped in tables: `inputs`
//! at the top, then `[input]`, `[decision]`, `[aws]`, `[pacing]`,
//! `[output]`, `[budget]` and `[campaign]` (see [`CampaignFile`]). Values use
//! the flags' syntax (shorthand, JSON, `file://`, `30s`); decision fields may
//! also be TOML tables and arrays, read as the equivalent JSON; switches are
//! `true`/`false`.
//!
//! How a run's settings are put together: clap parses the command line into
//! the same [`UpdateArgs`] that `update` uses. The file's settings are turned
//! into flags (`rate = 5` becomes `--rate=5`) and parsed by the same clap
//! definitions, defaults left out, so every value meets the flag's own parser
//! and checks; then every setting the file gives that was *not* given on the
//! command line (clap's [`ArgMatches::value_source`]) replaces the value from
//! the command line's parse ([`clap::FromArgMatches::update_from_arg_matches`]).
//! So flags always win, defaults apply where neither says anything, and `run`
//! behaves exactly like `update` once the settings are known. Inputs named on
//! the command line replace the file's `inputs`. Switches can only be turned
//! on from the command line (`--resume` over a file without it), not off.
//!
//! Relative paths in the file (inputs, outputs, `file://` values) are
//! relative to the directory holding the campaign file, so that a campaign
//! runs the same from any working directory. Unknown keys are errors naming
//! the key and its line (a typo must not silently drop a setting), and so is
//! a value its flag would refuse.
//!
//! What it does not do: run anything itself (it hands the merged settings to
//! `update`), set logging (`--log-format`/`--log-level` stay on the command
//! line, where the cron line decides where logs go), or `--dry-run` (a
//! command-line decision: `run campaign.toml --dry-run`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Args, Command, FromArgMatches};
use serde::Deserialize;
use toml::Spanned;

use super::UpdateArgs;
use crate::decision::{DecisionField, Rules, parse_cli_input_json_with, parse_flag_with};

/// Options of `sechub-triage run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The campaign file (TOML); see samples/campaigns/. Defaults shown
    /// below apply only where neither the file nor a flag sets a value.
    #[arg(value_name = "CAMPAIGN")]
    pub campaign: PathBuf,
    /// Every `update` flag: given here, it overrides the file.
    #[command(flatten)]
    pub update: UpdateArgs,
}

/// A campaign file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CampaignError {
    /// The file could not be read.
    #[error("cannot read campaign file {}", path.display())]
    Read {
        /// The campaign file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key, or a value of the
    /// wrong type.
    #[error("{}{}: {message}", path.display(), at_line(*line, *column))]
    Syntax {
        /// The campaign file.
        path: PathBuf,
        /// Line of the problem (1-based), when known.
        line: Option<usize>,
        /// Column of the problem (1-based), when known.
        column: Option<usize>,
        /// What toml said (it names unknown keys).
        message: String,
    },
    /// A value its flag does not accept.
    #[error("{}, line {line}: {key}: {message}", path.display())]
    Value {
        /// The campaign file.
        path: PathBuf,
        /// Line of the value (1-based).
        line: usize,
        /// The key, with its table (`decision.workflow`).
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

fn at_line(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(", line {l}, column {c}"),
        (Some(l), None) => format!(", line {l}"),
        _ => String::new(),
    }
}

/// A setting as written: a string, number, boolean, array or table, with
/// where it is in the file.
pub type Setting = Option<Spanned<toml::Value>>;

/// Declares a table of settings: every key is the id (and, with dashes, the
/// long name) of one of `run`'s flags, which a test checks.
macro_rules! section {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: Setting,)*
        }

        impl $name {
            /// Every key this table accepts.
            #[cfg(test)]
            pub(crate) const KEYS: &'static [&'static str] = &[$(stringify!($field)),*];

            /// The settings given, with their keys.
            fn entries(&self) -> Vec<(&'static str, &Spanned<toml::Value>)> {
                let mut v = Vec::new();
                $(if let Some(x) = &self.$field {
                    v.push((stringify!($field), x));
                })*
                v
            }
        }
    };
}

section! {
    /// `[input]`: how to read the inputs.
    InputSection {
        /// `csv`, `parquet` or `json`.
        format,
        /// One character; `\t` or `tab` for a tab.
        delimiter,
        /// Column holding the finding Id.
        id_column,
        /// Column holding the ProductArn.
        product_arn_column,
        /// `true` to skip findings the export shows already hold the decision.
        skip_unchanged,
        /// `true` to ignore per-row decision columns (the default).
        no_row_decisions,
        /// `true` to take every decision-named column as a per-row decision,
        /// or the columns to take (`"Workflow.Status,Note.Text"` or a list).
        row_decisions,
        /// `first` or `last`: of rows naming one finding with different
        /// decisions, the first (or the last) wins.
        duplicates,
    }
}

section! {
    /// `[decision]`: the nine `BatchUpdateFindings` fields, the three of
    /// `BatchUpdateFindingsV2` and `cli_input_json`.
    DecisionSection {
        /// `--note`.
        note,
        /// `--severity`.
        severity,
        /// `--verification-state`.
        verification_state,
        /// `--confidence`.
        confidence,
        /// `--criticality`.
        criticality,
        /// `--types`: a list of types.
        types,
        /// `--user-defined-fields`.
        user_defined_fields,
        /// `--workflow`.
        workflow,
        /// `--related-findings`: a list.
        related_findings,
        /// `--comment` (the new Security Hub).
        comment,
        /// `--severity-id` (the new Security Hub).
        severity_id,
        /// `--status-id` (the new Security Hub).
        status_id,
        /// `--cli-input-json`.
        cli_input_json,
        /// `true` to accept `types` outside the five documented namespaces.
        allow_unknown_type_namespaces,
    }
}

section! {
    /// `[aws]`: where and as whom to call Security Hub.
    AwsSection {
        /// Send every finding to this Region (otherwise: its ProductArn's).
        region,
        /// Named profile.
        profile,
        /// Custom endpoint.
        endpoint_url,
        /// Per-request timeout, e.g. `30s`.
        request_timeout,
    }
}

section! {
    /// `[pacing]`: quota and retries per Region.
    PacingSection {
        /// Requests per second.
        rate,
        /// Burst.
        burst,
        /// Requests in flight.
        concurrency,
        /// Attempts per finding.
        max_attempts,
    }
}

section! {
    /// `[output]`: results, failed, report, summary format, and resuming
    /// from the results journal.
    OutputSection {
        /// Results file (the run's journal).
        results,
        /// Findings not updated.
        failed,
        /// JSON run report.
        report,
        /// Summary on stdout: `text` or `json`.
        output,
        /// `true` for no progress bar.
        no_progress,
        /// `true` to carry on from the results journal of an interrupted run.
        resume,
        /// `true` to resume even if the inputs or decision changed.
        force_resume,
    }
}

section! {
    /// `[budget]`: wall-clock limits.
    BudgetSection {
        /// Stop cleanly before this much time has passed, e.g. `45m`.
        time_budget,
        /// After a stop, how long requests in flight may take, e.g. `10s`.
        grace,
    }
}

section! {
    /// `[query]`: select the findings by a GetFindings query instead of
    /// `inputs`.
    QuerySection {
        /// The get-findings filter document: a TOML table, a JSON string or
        /// `file://PATH` (relative to the campaign file).
        filters,
        /// The get-findings-v2 filter document (for V2 decisions), in the
        /// same forms as `filters`.
        ocsf_filters,
        /// Regions to query (default: `aws.region`, else the configured Region).
        query_regions,
        /// GetFindings requests per second per Region.
        query_rate,
        /// GetFindings burst per Region.
        query_burst,
        /// `true` to read the whole selection before the first update even
        /// where reading and updating could overlap.
        query_snapshot,
    }
}

section! {
    /// `[campaign]`: note policy and guardrails.
    GuardrailSection {
        /// `replace`, `append` or `keep`.
        note_mode,
        /// Refuse the run above this many findings.
        max_findings,
        /// Above this many findings, a run tag and confirmation are needed.
        confirm_above,
        /// `true` to confirm without asking.
        yes,
        /// Written as `UserDefinedFields.sechub-triage-run`.
        run_tag,
        /// A number or a list of account ids.
        expect_accounts,
        /// A number or a list of Regions.
        expect_regions,
    }
}

/// The file, as written. Every table and key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CampaignFile {
    /// A name for logs.
    pub name: Option<String>,
    /// Free text for reviewers.
    #[expect(
        dead_code,
        reason = "for the people who review the file; the program only accepts it"
    )]
    pub description: Option<String>,
    /// Finding lists; `-` is standard input.
    pub inputs: Option<Vec<String>>,
    /// How to read the inputs.
    #[serde(default)]
    pub input: InputSection,
    /// The triage decision.
    #[serde(default)]
    pub decision: DecisionSection,
    /// Where and as whom to call Security Hub.
    #[serde(default)]
    pub aws: AwsSection,
    /// Pacing and retries.
    #[serde(default)]
    pub pacing: PacingSection,
    /// Outputs.
    #[serde(default)]
    pub output: OutputSection,
    /// Wall-clock limits.
    #[serde(default)]
    pub budget: BudgetSection,
    /// Note policy and guardrails.
    #[serde(default)]
    pub campaign: GuardrailSection,
    /// Selection by query.
    #[serde(default)]
    pub query: QuerySection,
}

impl CampaignFile {
    /// Every setting given, as (table, key, value), in file order.
    fn settings(&self) -> Vec<(&'static str, &'static str, &Spanned<toml::Value>)> {
        let mut all: Vec<_> = [
            ("input", self.input.entries()),
            ("decision", self.decision.entries()),
            ("aws", self.aws.entries()),
            ("pacing", self.pacing.entries()),
            ("output", self.output.entries()),
            ("budget", self.budget.entries()),
            ("campaign", self.campaign.entries()),
            ("query", self.query.entries()),
        ]
        .into_iter()
        .flat_map(|(table, entries)| entries.into_iter().map(move |(k, v)| (table, k, v)))
        .collect();
        all.sort_by_key(|(_, _, v)| v.span().start);
        all
    }

    /// Every key the tables accept, as (table, key).
    #[cfg(test)]
    pub(crate) fn known_keys() -> Vec<(&'static str, &'static str)> {
        [
            ("input", InputSection::KEYS),
            ("decision", DecisionSection::KEYS),
            ("aws", AwsSection::KEYS),
            ("pacing", PacingSection::KEYS),
            ("output", OutputSection::KEYS),
            ("budget", BudgetSection::KEYS),
            ("campaign", GuardrailSection::KEYS),
            ("query", QuerySection::KEYS),
        ]
        .into_iter()
        .flat_map(|(t, keys)| keys.iter().map(move |k| (t, *k)))
        .collect()
    }
}

/// Keys whose values are paths: relative ones start at the campaign's directory.
const PATH_KEYS: &[&str] = &["results", "failed", "report"];

/// A campaign file, read and checked, ready to fill in [`UpdateArgs`].
#[derive(Debug)]
pub(crate) struct Campaign {
    /// The file.
    pub path: PathBuf,
    /// Its directory: relative paths start here.
    pub base: PathBuf,
    /// The text (for line numbers).
    text: String,
    /// What it says.
    pub file: CampaignFile,
}

/// `run`'s flags as clap knows them, with their defaults removed, so that
/// parsing the file's flags yields only what the file says.
fn file_command() -> Command {
    RunArgs::augment_args(Command::new("campaign"))
        .no_binary_name(true)
        .mut_args(|a| a.default_value(None::<&'static str>))
}

impl Campaign {
    /// Reads and parses `path`.
    pub(crate) fn load(path: &Path) -> Result<Campaign, CampaignError> {
        let text = std::fs::read_to_string(path).map_err(|source| CampaignError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, text)
    }

    /// Parses `text` as the campaign file `path` (which need not exist).
    pub(crate) fn parse(path: &Path, text: String) -> Result<Campaign, CampaignError> {
        let file: CampaignFile = toml::from_str(&text).map_err(|e| {
            let (line, column) = match e.span() {
                Some(span) => {
                    let (l, c) = line_col(&text, span.start);
                    (Some(l), Some(c))
                }
                None => (None, None),
            };
            CampaignError::Syntax {
                path: path.to_owned(),
                line,
                column,
                message: e.message().trim().to_owned(),
            }
        })?;
        let base = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        Ok(Campaign {
            path: path.to_owned(),
            base,
            text,
            file,
        })
    }

    fn value_error(
        &self,
        v: &Spanned<toml::Value>,
        key: &str,
        message: impl ToString,
    ) -> CampaignError {
        CampaignError::Value {
            path: self.path.clone(),
            line: line_col(&self.text, v.span().start).0,
            key: key.to_owned(),
            message: message.to_string(),
        }
    }

    /// A path from the file: relative ones start at the campaign's directory.
    fn resolve(&self, p: &str) -> String {
        if p == "-" || Path::new(p).is_absolute() {
            p.to_owned()
        } else {
            self.base.join(p).to_string_lossy().into_owned()
        }
    }

    /// A decision string: `file://relative` is made relative to the campaign.
    fn resolve_file_url(&self, s: &str) -> String {
        match s.strip_prefix("file://") {
            Some(rest) if !rest.starts_with('~') && !Path::new(rest).is_absolute() => {
                format!("file://{}", self.base.join(rest).display())
            }
            _ => s.to_owned(),
        }
    }

    /// The flag value(s) a setting stands for.
    fn flag_values(
        &self,
        table: &str,
        key: &str,
        v: &Spanned<toml::Value>,
        multiple: bool,
    ) -> Result<Vec<String>, CampaignError> {
        use toml::Value;
        let name = format!("{table}.{key}");
        let json =
            |inner: &Value| serde_json::to_string(inner).map_err(|e| self.value_error(v, &name, e));
        let mut values = match v.get_ref() {
            Value::String(s) => vec![s.clone()],
            Value::Integer(i) => vec![i.to_string()],
            Value::Float(f) => vec![f.to_string()],
            Value::Boolean(b) => vec![b.to_string()],
            // A list of plain values is several flag values (each type, each
            // related finding in shorthand, each account); anything else is
            // JSON (a list of related findings as tables).
            Value::Array(items)
                if multiple && items.iter().all(|i| i.is_str() || i.is_integer()) =>
            {
                items
                    .iter()
                    .map(|i| match i {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect()
            }
            Value::Array(items)
                if !multiple
                    && table != "decision"
                    && items.iter().all(|i| i.is_str() || i.is_integer()) =>
            {
                // `expect_accounts = ["1111", "2222"]`: the flag's
                // comma-separated form.
                let parts: Vec<String> = items
                    .iter()
                    .map(|i| match i {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                vec![parts.join(",")]
            }
            Value::Array(_) | Value::Table(_) if table == "decision" => vec![json(v.get_ref())?],
            Value::Table(_) if key == "filters" || key == "ocsf_filters" => {
                vec![json(v.get_ref())?]
            }
            Value::Array(_) | Value::Table(_) | Value::Datetime(_) => {
                return Err(self.value_error(
                    v,
                    &name,
                    "expected a string, a number or true/false",
                ));
            }
        };
        if table == "decision" || key == "filters" || key == "ocsf_filters" {
            for s in &mut values {
                *s = self.resolve_file_url(s);
            }
        } else if PATH_KEYS.contains(&key) {
            for s in &mut values {
                *s = self.resolve(s);
            }
        }
        Ok(values)
    }

    /// Checks a decision value the way its flag will be read, so that the
    /// error names its line (clap takes any string for these flags).
    fn check_decision(
        &self,
        key: &str,
        values: &[String],
        v: &Spanned<toml::Value>,
        rules: &Rules,
    ) -> Result<(), CampaignError> {
        let field = match key {
            "note" => DecisionField::Note,
            "severity" => DecisionField::Severity,
            "verification_state" => DecisionField::VerificationState,
            "confidence" => DecisionField::Confidence,
            "criticality" => DecisionField::Criticality,
            "types" => DecisionField::Types,
            "user_defined_fields" => DecisionField::UserDefinedFields,
            "workflow" => DecisionField::Workflow,
            "related_findings" => DecisionField::RelatedFindings,
            "comment" => DecisionField::Comment,
            "severity_id" => DecisionField::SeverityId,
            "status_id" => DecisionField::StatusId,
            _ => {
                let doc = values.first().map(String::as_str).unwrap_or_default();
                return parse_cli_input_json_with(doc, rules)
                    .map(drop)
                    .map_err(|e| self.value_error(v, &format!("decision.{key}"), e));
            }
        };
        parse_flag_with(field, values, rules)
            .map(drop)
            .map_err(|e| self.value_error(v, &format!("decision.{key}"), e))
    }

    /// Fills in `args` (parsed from the command line, whose `run` matches
    /// are `matches`) with every setting of the file that the command line
    /// did not give. Every value is checked by its flag's parser first.
    pub(crate) fn apply(
        &self,
        args: &mut UpdateArgs,
        matches: &ArgMatches,
    ) -> Result<(), CampaignError> {
        let given = |id: &str| {
            matches!(
                matches.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        };
        let cmd = file_command();
        let allow_types = given("allow_unknown_type_namespaces")
            || self
                .file
                .decision
                .allow_unknown_type_namespaces
                .as_ref()
                .is_some_and(|v| v.get_ref().as_bool() == Some(true));
        let rules = Rules::default().allow_unknown_type_namespaces(allow_types);
        let arg_of = |id: &str| cmd.get_arguments().find(|a| a.get_id().as_str() == id);
        // The file's settings as command-line tokens, checked one by one.
        let mut tokens: Vec<OsString> = vec![self.path.clone().into_os_string()];
        for (table, key, v) in self.file.settings() {
            let name = format!("{table}.{key}");
            let Some(arg) = arg_of(key) else {
                // Every key is a flag (tested); this is a build that lost one.
                return Err(self.value_error(v, &name, "this version has no such setting"));
            };
            if given(key) {
                continue;
            }
            let long = arg.get_long().unwrap_or(key);
            let switch = matches!(arg.get_action(), ArgAction::SetTrue);
            let multiple = matches!(arg.get_action(), ArgAction::Append);
            let mut mine = Vec::new();
            if key == "row_decisions" && v.get_ref().is_bool() {
                // `row_decisions = true`: the flag without columns.
                if v.get_ref().as_bool() == Some(true) {
                    mine.push(OsString::from(format!("--{long}")));
                }
            } else if switch {
                match v.get_ref() {
                    toml::Value::Boolean(true) => mine.push(OsString::from(format!("--{long}"))),
                    toml::Value::Boolean(false) => {}
                    _ => return Err(self.value_error(v, &name, "expected true or false")),
                }
            } else {
                let values = self.flag_values(table, key, v, multiple)?;
                if table == "decision" {
                    self.check_decision(key, &values, v, &rules)?;
                }
                // `--flag=value`, one token each, so that a value starting
                // with `-` is not taken for a flag.
                mine.extend(
                    values
                        .iter()
                        .map(|s| OsString::from(format!("--{long}={s}"))),
                );
            }
            let mut alone = vec![self.path.clone().into_os_string()];
            alone.extend(mine.iter().cloned());
            if let Err(e) = cmd.clone().try_get_matches_from(alone) {
                return Err(self.value_error(v, &name, clap_message(&e)));
            }
            tokens.extend(mine);
        }
        // Switches given on the command line must survive the update below
        // (the file's parse reports every switch, true or false).
        for arg in cmd.get_arguments() {
            if matches!(arg.get_action(), ArgAction::SetTrue)
                && given(arg.get_id().as_str())
                && let Some(long) = arg.get_long()
            {
                tokens.push(format!("--{long}").into());
            }
        }
        if let Some(inputs) = &self.file.inputs
            && !given("inputs")
        {
            tokens.push("--".into());
            tokens.extend(inputs.iter().map(|s| OsString::from(self.resolve(s))));
        }
        let file_matches = cmd
            .try_get_matches_from(tokens)
            .map_err(|e| CampaignError::Syntax {
                path: self.path.clone(),
                line: None,
                column: None,
                message: clap_message(&e),
            })?;
        args.update_from_arg_matches(&file_matches)
            .map_err(|e| CampaignError::Syntax {
                path: self.path.clone(),
                line: None,
                column: None,
                message: clap_message(&e),
            })
    }
}

/// A clap error's message (up to its first blank line, which comes before
/// the usage and `--help` hints), on one line, without the `error: ` prefix.
fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let message: Vec<&str> = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let joined = message.join(" ");
    joined.strip_prefix("error: ").unwrap_or(&joined).to_owned()
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (line, col)
}

/// Runs `sechub-triage run`: reads the campaign, merges it under the
/// command line, and runs `update` with the result.
pub async fn run(args: RunArgs, matches: &ArgMatches) -> anyhow::Result<i32> {
    let RunArgs {
        campaign: path,
        update: mut args,
    } = args;
    let campaign = match Campaign::load(&path) {
        Ok(c) => c,
        Err(e) => {
            // A broken campaign file is exactly what a monitor must hear
            // about: record it in the report if the command line named one.
            if let Some(report) = &args.output.report {
                super::report::register(report, "run", Some(&path), &args.inputs);
            }
            return Err(e.into());
        }
    };
    if let Err(e) = campaign.apply(&mut args, matches) {
        // Likewise for a bad value, in the report the file names if the
        // command line names none.
        let report = args.output.report.clone().or_else(|| {
            let v = campaign.file.output.report.as_ref()?;
            v.get_ref()
                .as_str()
                .map(|p| PathBuf::from(campaign.resolve(p)))
        });
        if let Some(report) = report {
            super::report::register(&report, "run", Some(&path), &args.inputs);
        }
        return Err(e.into());
    }
    if let Some(report) = &args.output.report {
        super::report::register(report, "run", Some(&path), &args.inputs);
    }
    if let Some(name) = &campaign.file.name {
        tracing::info!(campaign = %path.display(), name = %name, "campaign loaded");
    }
    let campaign_file = super::paths::Named::new("the campaign file", &path);
    super::update_reading(args, &[campaign_file]).await
}

/// `run` flags a campaign file cannot set, and why.
#[cfg(test)]
pub(crate) const NOT_IN_FILES: &[(&str, &str)] = &[
    ("campaign", "the file itself"),
    ("inputs", "top-level `inputs`"),
    (
        "dry_run",
        "a command-line decision: `run campaign.toml --dry-run`",
    ),
    ("help", "not a setting"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{FormatArg, OutputFormat};
    use clap::{CommandFactory, Parser};
    use std::time::Duration;

    #[derive(Parser, Debug)]
    struct TestCli {
        #[command(flatten)]
        run: RunArgs,
    }

    /// Parses `argv` (after the program name) and applies `toml`.
    fn merged(toml: &str, argv: &[&str]) -> Result<UpdateArgs, CampaignError> {
        let mut full = vec!["run", "/camp/c.toml"];
        full.extend_from_slice(argv);
        let matches = TestCli::command().try_get_matches_from(full).unwrap();
        let cli = TestCli::from_arg_matches(&matches).unwrap();
        let campaign = Campaign::parse(Path::new("/camp/c.toml"), toml.to_owned())?;
        let mut args = cli.run.update;
        campaign.apply(&mut args, &matches)?;
        Ok(args)
    }

    const FULL: &str = r#"
name = "t"
inputs = ["a.csv", "/abs/b.csv", "-"]

[input]
format = "csv"
delimiter = ";"
id_column = "finding_id"
skip_unchanged = true

[decision]
workflow = { Status = "SUPPRESSED" }
note = 'Text="Accepted risk",UpdatedBy=secops'
confidence = 80
types = ["Software and Configuration Checks/Vulnerabilities/CVE"]
user_defined_fields = { ticket = "SEC-42" }
related_findings = [{ Id = "x", ProductArn = "arn:aws:securityhub:us-east-1::product/aws/guardduty" }]

[aws]
region = "eu-west-1"
request_timeout = "5s"

[pacing]
rate = 5
burst = 10
max_attempts = 3

[output]
results = "out/results.csv"
report = "report.json"
output = "json"
"#;

    #[test]
    fn the_file_fills_every_setting_and_paths_start_at_its_directory() {
        let a = merged(FULL, &[]).unwrap();
        assert_eq!(a.inputs, ["/camp/a.csv", "/abs/b.csv", "-"]);
        assert!(matches!(a.input.format, Some(FormatArg::Csv)));
        assert_eq!(a.input.delimiter, Some(b';'));
        assert_eq!(a.input.id_column.as_deref(), Some("finding_id"));
        assert!(a.input.skip_unchanged);
        assert_eq!(
            a.decision.workflow.as_deref(),
            Some(r#"{"Status":"SUPPRESSED"}"#)
        );
        assert_eq!(a.decision.confidence.as_deref(), Some("80"));
        assert_eq!(a.decision.types.len(), 1);
        assert!(a.decision.related_findings[0].starts_with('['));
        assert_eq!(a.aws.region.as_deref(), Some("eu-west-1"));
        assert_eq!(a.aws.request_timeout, Duration::from_secs(5));
        assert_eq!(a.pacing.rate, 5.0);
        assert_eq!(a.pacing.burst, 10);
        assert_eq!(a.pacing.max_attempts, 3);
        assert_eq!(
            a.output.results,
            Some(PathBuf::from("/camp/out/results.csv"))
        );
        assert_eq!(a.output.report, Some(PathBuf::from("/camp/report.json")));
        assert_eq!(a.output.output, OutputFormat::Json);
        // The whole decision builds.
        let (d, _) = a.decision.build().unwrap();
        assert_eq!(d.confidence, Some(80));
    }

    #[test]
    fn command_line_flags_override_the_file() {
        let a = merged(
            FULL,
            &[
                "x.csv",
                "--rate",
                "2",
                "--workflow",
                "Status=RESOLVED",
                "--results",
                "mine.csv",
                "--output",
                "text",
            ],
        )
        .unwrap();
        assert_eq!(
            a.inputs,
            ["x.csv"],
            "command-line inputs replace the file's"
        );
        assert_eq!(a.pacing.rate, 2.0);
        assert_eq!(
            a.pacing.burst, 10,
            "what the flags do not set comes from the file"
        );
        assert_eq!(a.decision.workflow.as_deref(), Some("Status=RESOLVED"));
        assert_eq!(a.output.results, Some(PathBuf::from("mine.csv")));
        assert_eq!(a.output.output, OutputFormat::Text);
        // A flag given with its default value still wins over the file.
        let a = merged(FULL, &["--rate", "10"]).unwrap();
        assert_eq!(a.pacing.rate, 10.0);
    }

    #[test]
    fn defaults_stay_when_the_file_is_silent() {
        let a = merged("inputs = [\"f.csv\"]\n", &[]).unwrap();
        assert_eq!(a.pacing.rate, 10.0);
        assert_eq!(a.pacing.burst, 30);
        assert_eq!(a.aws.request_timeout, Duration::from_secs(30));
        assert!(a.output.results.is_none());
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key_and_line() {
        for (toml, key, line) in [
            ("inputs = []\nratee = 3\n", "ratee", 2),
            ("[pacing]\nrate = 3\nbrust = 4\n", "brust", 3),
            (
                "\n\n[decisions]\nworkflow = \"Status=NEW\"\n",
                "decisions",
                3,
            ),
            (
                "[decision]\nworkflow_status = \"NEW\"\n",
                "workflow_status",
                2,
            ),
        ] {
            let e = merged(toml, &[]).unwrap_err();
            let text = e.to_string();
            assert!(text.contains(&format!("`{key}`")), "{text}");
            assert!(text.contains(&format!("line {line}")), "{text}");
            assert!(text.starts_with("/camp/c.toml"), "{text}");
        }
    }

    #[test]
    fn bad_values_name_the_key_and_line() {
        let e = merged("[decision]\n\nworkflow = \"Status=DONE\"\n", &[]).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("line 3") && text.contains("decision.workflow"),
            "{text}"
        );
        assert!(text.contains("DONE"), "{text}");
        let e = merged("[aws]\nrequest_timeout = \"soon\"\n", &[]).unwrap_err();
        assert!(e.to_string().contains("aws.request_timeout"), "{e}");
        let e = merged("[pacing]\nrate = \"fast\"\n", &[]).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = merged("[input]\nformat = \"xml\"\n", &[]).unwrap_err();
        assert!(e.to_string().contains("input.format"), "{e}");
        assert!(
            e.to_string()
                .contains("possible values: csv, parquet, json"),
            "{e}"
        );
        let e = merged("[budget]\ntime_budget = \"later\"\n", &[]).unwrap_err();
        assert!(e.to_string().contains("budget.time_budget"), "{e}");
        // A value the flag would reject is rejected, unless the flag overrides it.
        assert!(merged("[decision]\nconfidence = 300\n", &[]).is_err());
        assert!(merged("[decision]\nconfidence = 300\n", &["--confidence", "30"]).is_ok());
    }

    #[test]
    fn file_urls_in_decisions_start_at_the_campaign_directory() {
        let a = merged("[decision]\nnote = \"file://note.json\"\n", &[]);
        // The file does not exist: the error names the resolved path.
        let text = a.unwrap_err().to_string();
        assert!(text.contains("/camp/note.json"), "{text}");
    }

    #[test]
    fn every_key_is_a_run_flag_and_every_flag_has_a_key() {
        let cmd = file_command();
        let ids: Vec<String> = cmd
            .get_arguments()
            .map(|a| a.get_id().as_str().to_owned())
            .collect();
        let keys = CampaignFile::known_keys();
        for (table, key) in &keys {
            assert!(
                ids.iter().any(|i| i == key),
                "[{table}] {key} is not a flag of `run` (renamed?)"
            );
        }
        for id in &ids {
            let excluded = NOT_IN_FILES.iter().any(|(k, _)| k == id);
            let keyed = keys.iter().any(|(_, k)| k == id);
            assert!(
                excluded || keyed,
                "--{} has no campaign-file key: add it to a table in src/cli/campaign.rs \
                 (or to NOT_IN_FILES with the reason)",
                id.replace('_', "-")
            );
        }
    }

    #[test]
    fn switches_from_the_file_and_from_the_command_line() {
        let toml = "[output]\nresume = true\n[input]\nskip_unchanged = false\n";
        let a = merged(toml, &[]).unwrap();
        assert!(a.output.nightly.resume);
        assert!(!a.input.skip_unchanged);
        // On from the command line stays on, whatever the file says.
        let a = merged(toml, &["--skip-unchanged", "--no-progress"]).unwrap();
        assert!(a.input.skip_unchanged && a.output.no_progress && a.output.nightly.resume);
        let e = merged("[output]\nresume = \"yes\"\n", &[]).unwrap_err();
        assert!(
            e.to_string().contains("line 2") && e.to_string().contains("true or false"),
            "{e}"
        );
    }

    #[test]
    fn budget_and_guardrails_come_from_the_file() {
        let a = merged(
            "[budget]\ntime_budget = \"45m\"\ngrace = \"5s\"\n[campaign]\nrun_tag = \"SEC-42\"\nconfirm_above = 5000\nexpect_accounts = [\"111122223333\", \"444455556666\"]\nyes = true\nnote_mode = \"append\"\n",
            &["--grace", "7s"],
        )
        .unwrap();
        assert_eq!(
            a.output.nightly.time_budget,
            Some(Duration::from_secs(45 * 60))
        );
        assert_eq!(
            a.output.nightly.grace,
            Duration::from_secs(7),
            "the flag wins"
        );
        assert_eq!(a.campaign.run_tag.as_deref(), Some("SEC-42"));
        assert_eq!(a.campaign.confirm_above, 5000);
        assert!(a.campaign.yes);
        assert!(a.campaign.expect_accounts.is_some());
        assert_eq!(a.campaign.note_mode, crate::cli::plan::NoteModeArg::Append);
        let e = merged("\n[campaign]\nexpect_regions = \"\"\n", &[]).unwrap_err();
        assert!(
            e.to_string().contains("line 3") && e.to_string().contains("campaign.expect_regions"),
            "{e}"
        );
    }
}
