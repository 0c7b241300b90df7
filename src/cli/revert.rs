//! `sechub-triage revert RESULTS`: undo a run from its results file.
//!
//! Every `updated` row of the results file records the decision applied and
//! the prior values of the fields it set (see `crate::revert`). This command
//! turns each such row into a record whose own decision restores those
//! values, and runs them through the same engine as `update` (grouped,
//! paced, retried, journaled into its own results file), or plans them with
//! `--dry-run`. A row whose change cannot be restored through the API, in
//! whole or in part, says so in the revert's results: never a silent skip.
//! Rows of other outcomes changed nothing and are counted, not reverted.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};
use clap::Args;

use super::{AwsArgs, OutputArgs, PacingArgs, exit_status};
use crate::decision::Decision;
use crate::engine::{Input, InputError};
use crate::model::{FindingKey, InvalidRecord, Location, SourceItem, SourceRecord};
use crate::reporting::ResultsFormat;
use crate::revert::{restoring, state_after};

/// `sechub-triage revert`.
#[derive(Args, Debug)]
pub struct RevertArgs {
    /// The results file of the run to undo (as `update --results` wrote it).
    #[arg(value_name = "RESULTS")]
    pub run_results: PathBuf,
    /// Print the plan of the revert and send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Refuse the revert, before any call, if it would update more than N
    /// findings.
    #[arg(long, value_name = "N", help_heading = "Campaign")]
    pub max_findings: Option<u64>,
    /// A revert of more than N findings must carry a run tag and be
    /// confirmed: asked on the terminal, or given with --yes.
    #[arg(long, value_name = "N", default_value_t = crate::plan::DEFAULT_CONFIRM_ABOVE, help_heading = "Campaign")]
    pub confirm_above: u64,
    /// Confirm a revert above --confirm-above without asking.
    #[arg(long, help_heading = "Campaign")]
    pub yes: bool,
    /// Write `UserDefinedFields.sechub-triage-run=TAG` on every finding the
    /// revert updates.
    #[arg(long, value_name = "TAG", help_heading = "Campaign")]
    pub run_tag: Option<String>,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub pacing: PacingArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Rows of the results file that are not reverted because they changed
/// nothing (failed, invalid, unchanged, duplicate, not attempted).
#[derive(Clone, Default)]
pub(crate) struct NotReverted(Arc<AtomicU64>, Arc<AtomicU64>, Arc<AtomicU64>);

impl NotReverted {
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Of those, `not_attempted` rows: the campaign did not finish.
    pub(crate) fn unfinished(&self) -> u64 {
        self.2.load(Ordering::Relaxed)
    }
}

/// The revert's own results file when none is named: `X.revert.csv` beside
/// `X.csv`.
fn default_results(run_results: &Path) -> PathBuf {
    let stem = run_results
        .file_stem()
        .map_or_else(|| "results".into(), |s| s.to_string_lossy().into_owned());
    let ext = run_results
        .extension()
        .map_or_else(|| "csv".into(), |e| e.to_string_lossy().into_owned());
    run_results.with_file_name(format!("{stem}.revert.{ext}"))
}

pub(crate) async fn run(mut args: RevertArgs) -> anyhow::Result<i32> {
    if args.output.results.is_none() {
        let path = default_results(&args.run_results);
        eprintln!(
            "sechub-triage: the revert's results go to {}",
            path.display()
        );
        args.output.results = Some(path);
    }
    if args.output.results.as_deref() == Some(args.run_results.as_path()) {
        bail!(
            "--results names the file being reverted ({}): give the revert its own results file",
            args.run_results.display()
        );
    }
    // Every setting before any I/O; the results being reverted (and their
    // journal header) are inputs no output may overwrite.
    let mut engine = args.pacing.engine_config(args.aws.region.clone())?;
    if let Some(tag) = &args.run_tag {
        crate::engine::with_run_tag(Decision::default(), tag)
            .validate()
            .with_context(|| format!("--run-tag {tag:?}"))?;
        engine.run_tag = Some(tag.clone());
    }
    let mut read =
        crate::cli::paths::results_files("the results being reverted", &args.run_results);
    read.truncate(2);
    let outputs = if args.dry_run {
        super::settings::outputs(
            &OutputArgs {
                results: None,
                failed: None,
                ..args.output.clone()
            },
            None,
        )
    } else {
        super::settings::check_nightly(&args.output, args.aws.request_timeout)?;
        super::settings::outputs(&args.output, None)
    };
    if let Err(e) = super::paths::check(&read, &outputs) {
        let e = anyhow::Error::new(e);
        super::forget_report_on_clash(&e);
        return Err(e);
    }
    if !args.dry_run {
        super::settings::check_profile(&args.aws)?;
    }
    let v2 = reverts_v2(&args.run_results)?;
    let (input, skipped) = open(&args.run_results)?;
    let inputs = vec![args.run_results.display().to_string()];
    // The revert's plan, and the same guardrails as `update`.
    let settings = crate::plan::PlanSettings {
        engine: engine.clone(),
        inputs: inputs.clone(),
        ..crate::plan::PlanSettings::default()
    };
    let tag = crate::plan::run_tag(&Decision::default(), &engine);
    let mut plan = tokio::task::spawn_blocking(move || {
        crate::plan::make(&Decision::default(), input, &settings)
    })
    .await
    .context("the plan stopped")?;
    if v2 {
        plan.operation = crate::plan::BATCH_UPDATE_FINDINGS_V2;
    }
    let verdict = plan.guard(
        &crate::plan::Guardrails {
            max_findings: args.max_findings,
            confirm_above: args.confirm_above,
            yes: args.yes,
        },
        tag,
    );
    if args.dry_run {
        super::plan::print_plan(&plan, args.output.output)?;
        report_skipped(&skipped, &args.run_results);
        return Ok(super::exit::SUCCESS);
    }
    let reasons = plan
        .guardrails
        .as_ref()
        .map(|g| g.reasons.join("; "))
        .unwrap_or_default();
    match verdict {
        crate::plan::Verdict::Proceed => {}
        crate::plan::Verdict::Refuse => bail!(
            "refusing to revert, nothing was sent: {reasons} (`revert --dry-run` shows the whole plan)"
        ),
        crate::plan::Verdict::Confirm => {
            use std::io::IsTerminal as _;
            if !std::io::stdin().is_terminal() {
                bail!(
                    "refusing to revert, nothing was sent: {reasons}, and there is no terminal to confirm \
                     on: review the plan (`revert --dry-run`), then add --yes"
                );
            }
            let mut err = std::io::stderr().lock();
            std::io::Write::write_all(&mut err, plan.to_text().as_bytes())?;
            let answer = super::plan::ask(
                &mut err,
                &mut std::io::stdin().lock(),
                &format!(
                    "Revert {} findings as planned above? Type yes to go on: ",
                    plan.totals.to_update
                ),
            )?;
            if !answer {
                bail!("not confirmed; nothing was sent");
            }
        }
    }
    let (input, skipped) = open(&args.run_results)?;
    let partial = skipped.1.clone();
    let copies = vec![None; inputs.len()];
    let summary = super::run_with_aws_on(
        engine,
        Decision::default(),
        v2,
        input,
        &args.aws,
        &args.output,
        inputs,
        copies,
    )
    .await?;
    report_skipped(&skipped, &args.run_results);
    let partial = partial.load(Ordering::Relaxed);
    if partial > 0 {
        // Reported per finding in the results' error_message.
        tracing::warn!(
            partially_restored = partial,
            "partially restored: {partial} findings could not be fully restored through the API \
             (the revert's results say what, per finding)"
        );
        eprintln!("partially restored: {partial}");
        let status = exit_status(&summary);
        return Ok(status.max(super::exit::PARTIAL));
    }
    Ok(exit_status(&summary))
}

fn report_skipped(skipped: &NotReverted, path: &Path) {
    if skipped.unfinished() > 0 {
        eprintln!(
            "sechub-triage: the run recorded in {} did not finish: {} rows are not_attempted (some may \
             have been applied, and findings in flight have no row); the results do not record their \
             prior values, so this revert cannot restore them: resume the run to settle them first",
            path.display(),
            skipped.unfinished()
        );
    }
    if skipped.get() > 0 {
        eprintln!(
            "sechub-triage: {} rows of {} were not updated by that run (failed, invalid, unchanged, \
             duplicate or not attempted): nothing to revert for them",
            skipped.get(),
            path.display()
        );
    }
}

/// Whether the results being reverted are a `BatchUpdateFindingsV2` run's:
/// the first updated row's restoring decision is in V2 terms.
fn reverts_v2(path: &Path) -> anyhow::Result<bool> {
    let (input, _) = open(path)?;
    for item in input {
        if let Ok(SourceItem::Record(r)) = item {
            return Ok(r.decision.is_some_and(|d| d.is_v2()));
        }
    }
    Ok(false)
}

/// Column positions in a CSV results file.
struct Columns {
    file: usize,
    row: usize,
    id: usize,
    arn: usize,
    outcome: usize,
    applied: usize,
    prior: usize,
}

enum Rows {
    Csv(csv::Reader<File>, Columns, csv::StringRecord),
    Json(std::io::Lines<BufReader<File>>),
}

/// One results row, as far as revert needs it.
#[derive(serde::Deserialize, Default)]
struct Row {
    #[serde(default)]
    file: String,
    #[serde(default)]
    row: u64,
    #[serde(rename = "Id", default)]
    id: String,
    #[serde(rename = "ProductArn", default)]
    product_arn: String,
    /// A `BatchUpdateFindingsV2` triple's account (JSON Lines results).
    #[serde(rename = "CloudAccountUid", default)]
    cloud_account_uid: Option<String>,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    applied: String,
    #[serde(default)]
    prior: String,
}

struct RevertRecords {
    name: Arc<str>,
    rows: Rows,
    line: u64,
    skipped: NotReverted,
}

/// Opens a results file as the revert's input.
pub(crate) fn open(path: &Path) -> anyhow::Result<(Input, NotReverted)> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let name: Arc<str> = path.display().to_string().into();
    let rows = match ResultsFormat::for_path(path) {
        ResultsFormat::JsonLines => Rows::Json(BufReader::new(file).lines()),
        ResultsFormat::Csv => {
            let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(file);
            let headers = rdr
                .headers()
                .with_context(|| format!("cannot read the header of {}", path.display()))?
                .clone();
            let find = |name: &str| headers.iter().position(|h| h == name);
            let need = |name: &str| {
                find(name).with_context(|| {
                    format!(
                        "{} has no {name:?} column: it is not a results file of this version of \
                         sechub-triage (columns found: {})",
                        path.display(),
                        headers.iter().collect::<Vec<_>>().join(", ")
                    )
                })
            };
            let columns = Columns {
                file: need("file")?,
                row: need("row")?,
                id: need("Id")?,
                arn: need("ProductArn")?,
                outcome: need("outcome")?,
                applied: need("applied")?,
                prior: need("prior")?,
            };
            Rows::Csv(rdr, columns, csv::StringRecord::new())
        }
    };
    let skipped = NotReverted::default();
    let records = RevertRecords {
        name,
        rows,
        line: 0,
        skipped: skipped.clone(),
    };
    Ok((Box::new(records), skipped))
}

impl RevertRecords {
    fn next_row(&mut self) -> Option<Result<Row, String>> {
        match &mut self.rows {
            Rows::Csv(rdr, c, rec) => match rdr.read_record(rec) {
                Ok(false) => None,
                Err(e) => Some(Err(e.to_string())),
                Ok(true) => {
                    let cell = |i: usize| rec.get(i).unwrap_or_default().to_owned();
                    Some(Ok(Row {
                        file: cell(c.file),
                        row: cell(c.row).parse().unwrap_or(0),
                        id: cell(c.id),
                        product_arn: cell(c.arn),
                        cloud_account_uid: None,
                        outcome: cell(c.outcome),
                        applied: cell(c.applied),
                        prior: cell(c.prior),
                    }))
                }
            },
            Rows::Json(lines) => loop {
                let line = match lines.next()? {
                    Ok(l) => l,
                    Err(e) => return Some(Err(e.to_string())),
                };
                if line.trim().is_empty() {
                    continue;
                }
                return Some(serde_json::from_str(&line).map_err(|e| e.to_string()));
            },
        }
    }

    /// The record that undoes one `updated` row.
    fn item(&self, row: Row) -> SourceItem {
        let location = Location {
            file: self.name.clone(),
            row: self.line,
            detail: Some(format!("reverting {} row {}", row.file, row.row)),
        };
        let key = match row.cloud_account_uid.filter(|a| !a.is_empty()) {
            Some(account) => FindingKey::ocsf(account, row.id, row.product_arn),
            None => FindingKey::new(row.id, row.product_arn),
        };
        let invalid = |location: Location, key: FindingKey, column: &str, reason: String| {
            SourceItem::Invalid(InvalidRecord {
                location,
                column: Some(column.to_owned()),
                reason,
                key: Some(key),
            })
        };
        let applied: Decision = match serde_json::from_str(&row.applied) {
            Ok(d) => d,
            Err(_) if row.applied.trim().is_empty() => {
                return invalid(
                    location,
                    key,
                    "applied",
                    "the results row does not record the decision applied, so it cannot be reverted".into(),
                );
            }
            Err(e) => {
                return invalid(location, key, "applied", format!("not a decision: {e}"));
            }
        };
        let prior: Option<serde_json::Value> = if row.prior.trim().is_empty() {
            None
        } else {
            match serde_json::from_str(&row.prior) {
                Ok(v) => Some(v),
                Err(e) => return invalid(location, key, "prior", format!("not JSON: {e}")),
            }
        };
        let restore = restoring(&applied, prior.as_ref());
        if restore.decision.is_empty() {
            return invalid(
                location,
                key,
                "prior",
                format!("nothing can be restored: {}", restore.lost.join("; ")),
            );
        }
        let mut record = SourceRecord::new(location, key);
        record.decision = Some(Arc::new(restore.decision));
        record.current = Some(Arc::new(state_after(&applied)));
        if !restore.lost.is_empty() {
            self.skipped.1.fetch_add(1, Ordering::Relaxed);
            record.remark = Some(format!("not restored: {}", restore.lost.join("; ")).into());
        }
        SourceItem::Record(record)
    }
}

impl Iterator for RevertRecords {
    type Item = Result<SourceItem, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let row = self.next_row()?;
            self.line += 1;
            let row = match row {
                Ok(r) => r,
                Err(e) => {
                    let err: InputError = format!("{}: row {}: {e}", self.name, self.line).into();
                    return Some(Err(err));
                }
            };
            if row.outcome != "updated" {
                self.skipped.0.fetch_add(1, Ordering::Relaxed);
                if row.outcome == "not_attempted" {
                    self.skipped.2.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            }
            return Some(Ok(self.item(row)));
        }
    }
}
