//! `sechub-triage plan` / `update --dry-run`, and the guardrails `update`
//! applies before its first call.
//!
//! Both read the inputs once through [`crate::plan::make`] (the engine's
//! own read side), build no SDK client and need no credentials. `update`
//! then decides, from that plan, whether the run may start: `--max-findings`
//! and `--expect-*` refuse it; above `--confirm-above` a run tag is required
//! and the user must confirm (asked on the terminal, or `--yes`). Only then
//! are the inputs read a second time, for the run. Standard input cannot be
//! read twice: `update -` saves it to a private temporary file first (so the
//! run reads exactly what was planned) and removes it at the end. A named
//! file that changes between the plan and the run stops the run.
//!
//! What it does not do: send anything, or decide anything the plan did not
//! (the rules live in `crate::plan`).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use super::exit::LocalIo;
use super::{OutputFormat, UpdateArgs, exit};
use crate::decision::{Decision, NoteMode};
use crate::engine::{EngineConfig, Input, RUN_TAG_KEY, with_run_tag};
use crate::model::FindingKey;
use crate::plan::{
    DEFAULT_CONFIRM_ABOVE, DEFAULT_SAMPLES, Expectation, Guardrails, Plan, PlanSettings, Verdict,
};

/// Campaign safety: the plan, the note policy and the guardrails.
#[derive(Args, Debug, Clone)]
pub struct CampaignArgs {
    /// Print the plan (what the run would do) and send nothing; the same as
    /// `sechub-triage plan`.
    #[arg(long, help_heading = "Campaign")]
    pub(crate) dry_run: bool,
    /// What --note does to a finding that already has a note: `replace` it,
    /// `append` to it (within 512 characters; the existing text is never
    /// cut), or `keep` it (other fields still apply). `append` and `keep`
    /// need an export that records notes (ASFF, OCSF) and do not write the
    /// note where the input does not say whether there is one.
    #[arg(long, value_enum, default_value_t = NoteModeArg::Replace, help_heading = "Campaign")]
    pub(crate) note_mode: NoteModeArg,
    /// Refuse the run, before any call, if it would update more than N
    /// findings (counted after duplicates, rejected and unchanged rows).
    #[arg(long, value_name = "N", help_heading = "Campaign")]
    pub(crate) max_findings: Option<u64>,
    /// A run that would update more than N findings must carry a run tag and
    /// be confirmed: asked on the terminal, or given with --yes.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CONFIRM_ABOVE, help_heading = "Campaign")]
    pub(crate) confirm_above: u64,
    /// Confirm a run above --confirm-above without asking (non-interactive runs).
    #[arg(long, help_heading = "Campaign")]
    pub yes: bool,
    /// Write `UserDefinedFields.sechub-triage-run=TAG` on every finding the
    /// run updates, so that the campaign's changes can be found and owned
    /// later (GetFindings filter on UserDefinedFields).
    #[arg(long, value_name = "TAG", help_heading = "Campaign")]
    pub(crate) run_tag: Option<String>,
    /// The accounts the inputs should hold: a number (at most N accounts) or
    /// a comma-separated list of account ids. More refuses the run.
    #[arg(long, value_name = "N|IDS", value_parser = parse_accounts, help_heading = "Campaign")]
    pub(crate) expect_accounts: Option<Expectation>,
    /// The Regions the inputs should hold: a number or a comma-separated
    /// list. More refuses the run.
    #[arg(long, value_name = "N|REGIONS", value_parser = parse_regions, help_heading = "Campaign")]
    pub(crate) expect_regions: Option<Expectation>,
}

impl Default for CampaignArgs {
    fn default() -> Self {
        CampaignArgs {
            dry_run: false,
            note_mode: NoteModeArg::Replace,
            max_findings: None,
            confirm_above: DEFAULT_CONFIRM_ABOVE,
            yes: false,
            run_tag: None,
            expect_accounts: None,
            expect_regions: None,
        }
    }
}

fn parse_accounts(s: &str) -> Result<Expectation, String> {
    Expectation::parse(s, "accounts").map_err(|e| e.to_string())
}

fn parse_regions(s: &str) -> Result<Expectation, String> {
    Expectation::parse(s, "Regions").map_err(|e| e.to_string())
}

/// `--note-mode` values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum NoteModeArg {
    /// Replace any existing note (the service's own behaviour).
    #[default]
    Replace,
    /// Add the new text after the existing note.
    Append,
    /// Leave an existing note as it is.
    Keep,
}

impl From<NoteModeArg> for NoteMode {
    fn from(m: NoteModeArg) -> Self {
        match m {
            NoteModeArg::Replace => NoteMode::Replace,
            NoteModeArg::Append => NoteMode::Append,
            NoteModeArg::Keep => NoteMode::Keep,
        }
    }
}

impl CampaignArgs {
    /// Sets the note policy and run tag on the engine's settings, after
    /// checking that the tag is a valid `UserDefinedFields` value with the
    /// job's decision.
    pub(crate) fn configure(
        &self,
        engine: &mut EngineConfig,
        decision: &Decision,
    ) -> anyhow::Result<()> {
        engine.note_mode = self.note_mode.into();
        if let Some(tag) = &self.run_tag {
            if decision.is_v2() {
                anyhow::bail!(
                    "--run-tag {tag:?} writes UserDefinedFields.{RUN_TAG_KEY}, which the new \
                     Security Hub (BatchUpdateFindingsV2) does not have: name the campaign in its \
                     --comment instead"
                );
            }
            with_run_tag(decision.clone(), tag)
                .validate()
                .with_context(|| format!("--run-tag {tag:?} (UserDefinedFields.{RUN_TAG_KEY})"))?;
            engine.run_tag = Some(tag.clone());
        }
        Ok(())
    }

    fn guardrails(&self) -> Guardrails {
        Guardrails {
            max_findings: self.max_findings,
            confirm_above: self.confirm_above,
            yes: self.yes,
        }
    }

    fn settings(&self, engine: &EngineConfig, inputs: &[String]) -> PlanSettings {
        PlanSettings {
            engine: engine.clone(),
            inputs: inputs.to_vec(),
            expect_accounts: self.expect_accounts.clone(),
            expect_regions: self.expect_regions.clone(),
            samples: DEFAULT_SAMPLES,
            prior: None,
        }
    }
}

/// Makes the plan on a blocking thread (reading is blocking I/O).
async fn make_plan(
    decision: &Decision,
    input: Input,
    settings: PlanSettings,
    campaign: &CampaignArgs,
) -> anyhow::Result<Plan> {
    let job = decision.clone();
    let tag = crate::plan::run_tag(&job, &settings.engine);
    let mut plan = tokio::task::spawn_blocking(move || crate::plan::make(&job, input, &settings))
        .await
        .context("the plan stopped")?;
    plan.guard(&campaign.guardrails(), tag);
    Ok(plan)
}

pub(crate) fn print_plan(plan: &Plan, format: OutputFormat) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        OutputFormat::Text => out.write_all(plan.to_text().as_bytes())?,
        OutputFormat::Json => {
            serde_json::to_writer_pretty(
                &mut out,
                &crate::schema::Versioned::new(crate::schema::PLAN, plan),
            )?;
            out.write_all(b"\n")?;
        }
        OutputFormat::Markdown => out.write_all(crate::plan::markdown::plan(plan).as_bytes())?,
    }
    out.flush()?;
    Ok(())
}

/// `sechub-triage plan` and `update --dry-run`: prints the plan. Exit
/// status 0 when the run could start (perhaps after confirmation), 1 when
/// the plan cannot be made or the run would be refused.
pub(crate) async fn plan_command(args: UpdateArgs) -> anyhow::Result<i32> {
    let checked = super::settings::check_update(&args, super::settings::Mode::Plan, &[])
        .inspect_err(super::forget_report_on_clash)?;
    plan_command_checked(args, checked).await
}

/// [`plan_command`] with its settings checked.
pub(crate) async fn plan_command_checked(
    mut args: UpdateArgs,
    checked: super::settings::UpdateSettings,
) -> anyhow::Result<i32> {
    let super::settings::UpdateSettings {
        decision,
        extra,
        engine,
    } = checked;
    // `--filters` (unless `update --dry-run` read it already).
    let _selection = super::query::select(&mut args, None).await?;
    args.input.no_decision = decision.is_empty();
    args.input.v2 = decision.is_v2() || rows_decide_v2(&args, &decision, &extra)?;
    let mut engine = engine;
    // A plan reads every input twice (the row choices, then the plan):
    // inputs that can be read only once are saved first (a `--filters`
    // selection is a file already).
    let names = args.inputs.clone();
    let selection = args.selected.as_ref().map(|s| s.path.clone());
    let spooled =
        tokio::task::spawn_blocking(move || Spooled::save(&names, selection.as_deref())).await??;
    find_row_choices(&args, &decision, &extra, &mut engine, &spooled).await?;
    let input = super::open_input_with(
        &args.inputs,
        extra,
        &args.input,
        args.aws.region.clone(),
        &spooled,
        false,
    )?;
    let mut settings = args.campaign.settings(&engine, &args.inputs);
    settings.prior = resumed(&args)?;
    let mut plan = make_plan(&decision, input, settings, &args.campaign).await?;
    if args.input.v2 {
        plan.operation = crate::plan::BATCH_UPDATE_FINDINGS_V2;
    }
    print_plan(&plan, args.output.output)?;
    let refused = plan
        .guardrails
        .as_ref()
        .is_some_and(|g| g.verdict == Verdict::Refuse);
    Ok(if refused { exit::USAGE } else { exit::SUCCESS })
}

/// What `update` keeps from its plan pass for the run.
#[derive(Debug)]
pub(crate) struct Cleared {
    /// Inputs that cannot be read twice (standard input, pipes, FIFOs,
    /// process substitution), saved for the second read.
    pub(crate) spooled: Spooled,
    files: Vec<(PathBuf, Option<Stamp>)>,
    /// Records the plan read, which the run must read too.
    planned: u64,
    /// The Regions the plan sends findings to.
    pub regions: Vec<String>,
}

/// A file's length and modification time.
type Stamp = (u64, Option<SystemTime>);

impl Cleared {
    /// Stops if a named input changed since it was planned.
    pub(crate) fn check_unchanged(&self) -> anyhow::Result<()> {
        for (path, before) in &self.files {
            if stamp(path) != *before {
                bail!(
                    "{} changed after it was planned; nothing was sent: run again to plan the new content",
                    path.display()
                );
            }
        }
        Ok(())
    }

    /// The run's input, checked to hold exactly the records the plan read:
    /// fewer (an input drained or cut short) or more (grown) stops the run
    /// with an input error instead of a run that silently did less, or
    /// more, than planned.
    pub(crate) fn expect_records(&self, input: Input) -> Input {
        Box::new(ExpectRecords {
            inner: input,
            planned: self.planned,
            read: 0,
            done: false,
        })
    }
}

/// See [`Cleared::expect_records`].
struct ExpectRecords {
    inner: Input,
    planned: u64,
    read: u64,
    done: bool,
}

impl Iterator for ExpectRecords {
    type Item = Result<crate::model::SourceItem, crate::engine::InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.inner.next() {
            Some(Ok(item)) => {
                self.read += 1;
                if self.read > self.planned {
                    self.done = true;
                    return Some(Err(format!(
                        "the inputs hold more records than the {} the plan read: they changed \
                         between the plan and the run; nothing beyond the planned records was \
                         sent: run again to plan the new content",
                        self.planned
                    )
                    .into()));
                }
                Some(Ok(item))
            }
            Some(Err(e)) => {
                self.done = true;
                Some(Err(e))
            }
            None => {
                self.done = true;
                (self.read < self.planned).then(|| {
                    Err(format!(
                        "the run read {} records where the plan read {}: an input was drained or \
                         cut short between the plan and the run (a pipe read twice?); the records \
                         not read have no outcome: run again",
                        self.read, self.planned
                    )
                    .into())
                })
            }
        }
    }
}

fn stamp(path: &Path) -> Option<Stamp> {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.len(), m.modified().ok()))
}

/// Copies of the inputs that cannot be read twice, by input position.
#[derive(Debug, Default)]
pub(crate) struct Spooled(Vec<Option<Spool>>);

impl Spooled {
    /// Saves standard input and every input that is not a regular file
    /// (a pipe, a FIFO, `/dev/stdin`, `<(zcat x.gz)`), so that the plan and
    /// the run read the same bytes.
    fn save(inputs: &[String], selection: Option<&Path>) -> anyhow::Result<Spooled> {
        let mut v = Vec::with_capacity(inputs.len());
        for (i, name) in inputs.iter().enumerate() {
            v.push(if let (0, Some(path)) = (i, selection) {
                // A `--filters` selection, read already: its snapshot.
                Some(Spool {
                    path: path.to_owned(),
                })
            } else if name == "-" {
                Some(Spool::stdin()?)
            } else if needs_spool(Path::new(name)) {
                Some(Spool::file(Path::new(name))?)
            } else {
                None
            });
        }
        Ok(Spooled(v))
    }

    /// Where input `i`'s copy is, if it has one.
    pub(crate) fn get(&self, i: usize) -> Option<&Path> {
        self.0.get(i).and_then(Option::as_ref).map(Spool::path)
    }

    /// The copies, by input position, for the journal's fingerprints.
    pub(crate) fn paths(&self) -> Vec<Option<PathBuf>> {
        self.0
            .iter()
            .map(|s| s.as_ref().map(|s| s.path().to_owned()))
            .collect()
    }
}

/// Records [`rows_decide_v2`] reads at most, looking for a row's decision.
const V2_PEEK: usize = 10_000;

/// With no decision on the command line and `--row-decisions`, whether the
/// rows' own decisions are the new Security Hub's (`StatusId`,
/// `SeverityId`, `Comment`: a V2 run's `--failed` file fed back), so that
/// the run sends `BatchUpdateFindingsV2` and names records by V2 keys. The
/// first row with a decision (within the first 10,000 records) says; only
/// regular files are looked at (an input that can be read only once is
/// not read for this: such a run needs a V2 decision flag on the command line).
pub(crate) fn rows_decide_v2(
    args: &UpdateArgs,
    decision: &Decision,
    extra: &[FindingKey],
) -> anyhow::Result<bool> {
    if !decision.is_empty() || !args.input.row_decisions().is_on() || args.inputs.is_empty() {
        return Ok(false);
    }
    if !args
        .inputs
        .iter()
        .all(|i| std::fs::metadata(i).is_ok_and(|m| m.is_file()))
    {
        return Ok(false);
    }
    let input = super::open_input_with(
        &args.inputs,
        extra.to_vec(),
        &args.input,
        args.aws.region.clone(),
        &Spooled(Vec::new()),
        true,
    )?;
    for item in input.take(V2_PEEK) {
        if let Ok(crate::model::SourceItem::Record(r)) = item
            && let Some(d) = &r.decision
        {
            return Ok(d.is_v2());
        }
    }
    Ok(false)
}

/// Whether `path` names something that exists and is not a regular file
/// (after following links): it can be read only once.
pub(crate) fn needs_spool(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// Reads the inputs once, before the plan, to find the rows chosen for
/// findings that several rows name ([`crate::engine::RowChoices`]: the last
/// row of a conflicting finding under `--duplicates last`, the row with the
/// newest recorded state), which are known only at the end of the input,
/// and gives them to `engine`.
async fn find_row_choices(
    args: &UpdateArgs,
    decision: &Decision,
    extra: &[FindingKey],
    engine: &mut EngineConfig,
    spooled: &Spooled,
) -> anyhow::Result<()> {
    let input = super::open_input_with(
        &args.inputs,
        extra.to_vec(),
        &args.input,
        args.aws.region.clone(),
        spooled,
        true,
    )?;
    let (job, config) = (decision.clone(), engine.clone());
    let last =
        tokio::task::spawn_blocking(move || crate::engine::RowChoices::find(&job, input, &config))
            .await
            .context("reading the inputs for findings named by several rows stopped")?;
    engine.row_choices = Some(std::sync::Arc::new(last));
    Ok(())
}

/// `update`'s plan pass: reads the inputs, applies the guardrails, and asks
/// for confirmation when needed. An error means the run must not start
/// (nothing was sent). It first finds the row choices and gives them to
/// `engine`, for the plan and the run.
pub(crate) async fn clear_run(
    args: &UpdateArgs,
    decision: &Decision,
    extra: &[FindingKey],
    engine: &mut EngineConfig,
) -> anyhow::Result<Cleared> {
    let names = args.inputs.clone();
    let selection = args.selected.as_ref().map(|s| s.path.clone());
    // Stamped before the first read: a change after it stops the run.
    let spooled =
        tokio::task::spawn_blocking(move || Spooled::save(&names, selection.as_deref())).await??;
    let files = args
        .inputs
        .iter()
        .enumerate()
        .filter(|(i, _)| spooled.get(*i).is_none())
        .map(|(_, i)| (PathBuf::from(i), stamp(Path::new(i))))
        .collect();
    find_row_choices(args, decision, extra, engine, &spooled).await?;
    let input = super::open_input_with(
        &args.inputs,
        extra.to_vec(),
        &args.input,
        args.aws.region.clone(),
        &spooled,
        true,
    )?;
    let mut settings = args.campaign.settings(engine, &args.inputs);
    settings.prior = resumed(args)?;
    let mut plan = make_plan(decision, input, settings, &args.campaign).await?;
    if args.input.v2 {
        plan.operation = crate::plan::BATCH_UPDATE_FINDINGS_V2;
    }
    let Some(report) = plan.guardrails.clone() else {
        bail!("the plan has no guardrail verdict");
    };
    log_warnings(&plan);
    let n = plan.totals.to_update;
    let stdin_is_input = args.inputs.iter().any(|i| i == "-");
    match report.verdict {
        Verdict::Proceed => {}
        Verdict::Refuse => {
            bail!(
                "refusing to run, nothing was sent: {} (`sechub-triage plan` with the same arguments shows the whole plan)",
                report.reasons.join("; ")
            );
        }
        Verdict::Confirm => {
            // Standard input holding the findings is never a terminal.
            let interactive = !stdin_is_input && std::io::stdin().is_terminal();
            if !interactive {
                bail!(
                    "refusing to run, nothing was sent: {}, and there is no terminal to confirm on: \
                     review the plan (`sechub-triage plan` with the same arguments), then add --yes",
                    report.reasons.join("; ")
                );
            }
            let mut err = std::io::stderr().lock();
            err.write_all(plan.to_text().as_bytes())?;
            let answer = ask(
                &mut err,
                &mut std::io::stdin().lock(),
                &format!("Update {n} findings as planned above? Type yes to go on: "),
            )?;
            if !answer {
                bail!("not confirmed; nothing was sent");
            }
        }
    }
    Ok(Cleared {
        spooled,
        files,
        // Rows an earlier run settled are read too (and skipped).
        planned: plan.totals.records + plan.totals.already_done,
        regions: plan.by_region.keys().cloned().collect(),
    })
}

/// Under `--resume`, the rows earlier runs settled, read from the journal
/// (read only: the run opens it for writing after the plan).
fn resumed(args: &UpdateArgs) -> anyhow::Result<Option<std::sync::Arc<crate::journal::Done>>> {
    let n = &args.output.nightly;
    if !(n.resume || n.force_resume) {
        return Ok(None);
    }
    let Some(results) = &args.output.results else {
        return Ok(None);
    };
    Ok(crate::journal::read_done(results, n.force_resume)?.map(std::sync::Arc::new))
}

/// Every warning of the plan, as a log event at `warn`: on standard error
/// whatever the verdict (`--yes` included), and as JSON objects with
/// `--log-format json`.
fn log_warnings(plan: &Plan) {
    for w in &plan.warnings {
        let code = serde_json::to_value(w.code)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let first = w.samples.first().map(|s| s.location.clone());
        tracing::warn!(
            code = %code,
            count = w.count,
            first = first.as_deref().unwrap_or(""),
            "plan warning: {}",
            w.message
        );
    }
}

/// Asks a yes/no question; only `yes` or `y` (any case) is yes.
pub(crate) fn ask(
    out: &mut impl Write,
    input: &mut impl BufRead,
    question: &str,
) -> std::io::Result<bool> {
    out.write_all(question.as_bytes())?;
    out.flush()?;
    let mut line = String::new();
    input.read_line(&mut line)?;
    let a = line.trim();
    Ok(a.eq_ignore_ascii_case("yes") || a.eq_ignore_ascii_case("y"))
}

/// Standard input saved to a private temporary file, removed on drop.
#[derive(Debug)]
pub(crate) struct Spool {
    path: PathBuf,
}

impl Spool {
    fn stdin() -> anyhow::Result<Spool> {
        Self::save(&mut std::io::stdin().lock(), "standard input")
    }

    fn file(path: &Path) -> anyhow::Result<Spool> {
        let mut f =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Self::save(&mut f, &path.display().to_string())
    }

    fn save(from: &mut impl std::io::Read, what: &str) -> anyhow::Result<Spool> {
        let dir = std::env::temp_dir();
        let name = format!(
            "sechub-triage-input-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        );
        let path = dir.join(name);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let saving = || {
            format!(
                "cannot save {what} to {} (it is read twice: once for the plan, once for the run)",
                path.display()
            )
        };
        let file = opts.open(&path).map_err(|e| LocalIo::new(saving(), e))?;
        let spool = Spool { path: path.clone() };
        let mut w = std::io::BufWriter::new(file);
        let copied = std::io::copy(from, &mut w).and_then(|_| w.flush());
        if let Err(e) = copied {
            // Reading a pipe can fail too, but a full temporary directory is
            // the usual cause: local I/O either way.
            return Err(LocalIo::new(saving(), e).into());
        }
        Ok(spool)
    }

    /// Where it is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_yes_is_yes() {
        for (answer, want) in [
            ("yes\n", true),
            ("Y\n", true),
            (" YES \n", true),
            ("no\n", false),
            ("\n", false),
            ("", false),
            ("yes please\n", false),
        ] {
            let mut out = Vec::new();
            let got = ask(&mut out, &mut answer.as_bytes(), "Go? ").unwrap();
            assert_eq!(got, want, "{answer:?}");
            assert_eq!(out, b"Go? ");
        }
    }

    fn records(n: u64) -> Input {
        use crate::model::{Location, SourceItem, SourceRecord};
        Box::new((1..=n).map(|row| {
            Ok(SourceItem::Record(SourceRecord::new(
                Location {
                    file: "f".into(),
                    row,
                    detail: None,
                },
                FindingKey::new(format!("id-{row}"), "arn"),
            )))
        }))
    }

    #[test]
    fn a_run_reading_other_than_its_plan_ends_in_an_input_error() {
        let cleared = |planned| Cleared {
            spooled: Spooled::default(),
            files: Vec::new(),
            planned,
            regions: Vec::new(),
        };
        // As planned: every record, then the end.
        let items: Vec<_> = cleared(3).expect_records(records(3)).collect();
        assert_eq!(items.len(), 3);
        assert!(items.iter().all(Result::is_ok));
        // Fewer: the records read, then an error saying so.
        let items: Vec<_> = cleared(5).expect_records(records(2)).collect();
        assert_eq!(items.len(), 3);
        let e = items[2].as_ref().unwrap_err().to_string();
        assert!(e.contains("read 2 records where the plan read 5"), "{e}");
        // More: the planned ones, then an error instead of the extra one.
        let items: Vec<_> = cleared(2).expect_records(records(4)).collect();
        assert_eq!(items.len(), 3);
        assert!(
            items[2]
                .as_ref()
                .unwrap_err()
                .to_string()
                .contains("more records")
        );
    }

    #[test]
    fn the_run_tag_is_checked_like_any_user_defined_field() {
        let mut engine = EngineConfig::default();
        let ok = CampaignArgs {
            run_tag: Some("q3-suppress".into()),
            note_mode: NoteModeArg::Keep,
            ..CampaignArgs::default()
        };
        ok.configure(&mut engine, &Decision::default()).unwrap();
        assert_eq!(engine.run_tag.as_deref(), Some("q3-suppress"));
        assert_eq!(engine.note_mode, NoteMode::Keep);
        let blank = CampaignArgs {
            run_tag: Some("  ".into()),
            ..CampaignArgs::default()
        };
        let err = blank
            .configure(&mut EngineConfig::default(), &Decision::default())
            .unwrap_err();
        assert!(format!("{err:#}").contains("--run-tag"), "{err:#}");
    }
}
