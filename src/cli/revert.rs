//! `sechub-triage revert RESULTS`: undo a run from its results file.
//!
//! Every `updated` row of the results file records the decision applied and
//! the prior values of the fields it set (see `crate::revert`), and so does
//! every row that may have been applied: `unknown` (a request carrying it
//! timed out or lost its connection after sending) and `not_attempted`
//! after a request carried it (still in flight when a stop's grace period
//! ended, or retried until its attempts ran out). This command turns each
//! such row into a record whose own decision restores those values, and
//! runs them through the same engine as `update` (grouped, paced, retried,
//! journaled into its own results file), or plans them with `--dry-run`. A
//! row whose change cannot be restored through the API, in whole or in
//! part, says so in the revert's results: never a silent skip. Rows of
//! other outcomes (and `not_attempted` rows no request carried) changed
//! nothing and are counted, not reverted; a campaign that did not finish is
//! said so. The results file is read exactly as `--resume` reads it: a
//! damaged row stops the revert, naming its line.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Take};
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
pub(crate) struct RevertArgs {
    /// The results file of the run to undo (as `update --results` wrote it).
    #[arg(value_name = "RESULTS")]
    pub(crate) run_results: PathBuf,
    /// Print the plan of the revert and send nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Refuse the revert, before any call, if it would update more than N
    /// findings.
    #[arg(long, value_name = "N", help_heading = "Campaign")]
    pub(crate) max_findings: Option<u64>,
    /// A revert of more than N findings must carry a run tag and be
    /// confirmed: asked on the terminal, or given with --yes.
    #[arg(long, value_name = "N", default_value_t = crate::plan::DEFAULT_CONFIRM_ABOVE, help_heading = "Campaign")]
    pub(crate) confirm_above: u64,
    /// Confirm a revert above --confirm-above without asking.
    #[arg(long, help_heading = "Campaign")]
    pub yes: bool,
    /// Write `UserDefinedFields.sechub-triage-run=TAG` on every finding the
    /// revert updates.
    #[arg(long, value_name = "TAG", help_heading = "Campaign")]
    pub(crate) run_tag: Option<String>,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub pacing: PacingArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// What the reader counted about the campaign's rows (shared with the
/// reader, which runs on another thread).
#[derive(Clone, Default)]
pub(crate) struct NotReverted {
    /// Rows not reverted because they changed nothing (failed, invalid,
    /// unchanged, duplicate, never sent).
    nothing: Arc<AtomicU64>,
    /// Rows whose change can be restored only in part.
    partial: Arc<AtomicU64>,
    /// `unknown` rows and `not_attempted` rows a request carried: maybe
    /// applied, reverted like `updated` rows.
    maybe_applied: Arc<AtomicU64>,
    /// `not_attempted` rows no request carried.
    never_sent: Arc<AtomicU64>,
    /// Rows to revert whose change cannot be restored at all.
    not_restorable: Arc<AtomicU64>,
    /// Findings of the in-flight log that the results file does not
    /// settle: out when a run was killed, maybe applied.
    in_flight: Arc<AtomicU64>,
}

impl NotReverted {
    fn get(a: &AtomicU64) -> u64 {
        a.load(Ordering::Relaxed)
    }

    /// The campaign did not finish: rows are `unknown` or `not_attempted`.
    fn unfinished(&self) -> bool {
        Self::get(&self.maybe_applied) + Self::get(&self.never_sent) + Self::get(&self.in_flight)
            > 0
    }

    /// For the `--report`.
    fn doc(&self) -> super::report::RevertDoc {
        super::report::RevertDoc {
            unfinished_campaign: self.unfinished(),
            maybe_applied: Self::get(&self.maybe_applied),
            never_sent: Self::get(&self.never_sent),
            partially_restored: Self::get(&self.partial),
            not_restorable: Self::get(&self.not_restorable),
            in_flight_at_crash: Self::get(&self.in_flight),
        }
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
    // The results, their header and their in-flight log.
    read.truncate(3);
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
    let skipped_in_plan = skipped.clone();
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
    if skipped_in_plan.unfinished() {
        plan.warnings
            .push(unfinished_warning(&skipped_in_plan, &args.run_results));
        plan.warnings.sort_by_key(|w| w.code);
    }
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
    if v2 {
        // As `update` does: where the new Security Hub is not enabled,
        // stop (exit status 3) before any update.
        let regions: Vec<String> = plan.by_region.keys().cloned().collect();
        super::preflight_v2(&args.aws, &regions).await?;
    }
    let (input, skipped) = open(&args.run_results)?;
    let partial = skipped.partial.clone();
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
        None,
    )
    .await?;
    report_skipped(&skipped, &args.run_results);
    if let Some(r) = super::report::active() {
        r.record_revert(skipped.doc());
    }
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

/// The plan's warning that the campaign did not finish.
fn unfinished_warning(skipped: &NotReverted, path: &Path) -> crate::plan::Warning {
    crate::plan::Warning {
        code: crate::plan::WarningCode::UnfinishedCampaign,
        count: NotReverted::get(&skipped.maybe_applied) + NotReverted::get(&skipped.in_flight),
        message: unfinished_message(skipped, path),
        samples: Vec::new(),
    }
}

fn unfinished_message(skipped: &NotReverted, path: &Path) -> String {
    let maybe = NotReverted::get(&skipped.maybe_applied);
    let never = NotReverted::get(&skipped.never_sent);
    let crashed = NotReverted::get(&skipped.in_flight);
    format!(
        "the campaign recorded in {} did not finish: {maybe} rows are unknown or not_attempted after a \
         request carried them, and {crashed} findings were in flight when a run was killed (its \
         in-flight log); they may have been applied, so they are restored like updated rows where \
         their prior values are recorded; {never} not_attempted rows were never sent (nothing to \
         restore)",
        path.display()
    )
}

fn report_skipped(skipped: &NotReverted, path: &Path) {
    if skipped.unfinished() {
        let message = unfinished_message(skipped, path);
        tracing::warn!(
            unfinished_campaign = true,
            maybe_applied = NotReverted::get(&skipped.maybe_applied),
            in_flight_at_crash = NotReverted::get(&skipped.in_flight),
            never_sent = NotReverted::get(&skipped.never_sent),
            "{message}"
        );
        eprintln!("sechub-triage: {message}");
    }
    let nothing = NotReverted::get(&skipped.nothing);
    if nothing > 0 {
        eprintln!(
            "sechub-triage: {nothing} rows of {} were not updated by that run (failed, invalid, unchanged, \
             duplicate or never sent): nothing to revert for them",
            path.display(),
        );
    }
    let lost = NotReverted::get(&skipped.not_restorable);
    if lost > 0 {
        eprintln!(
            "sechub-triage: {lost} rows of {} cannot be restored at all: the revert's results say why, \
             per finding (outcome invalid)",
            path.display(),
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
    attempts: usize,
    applied: usize,
    prior: usize,
    /// A `BatchUpdateFindingsV2` run's `CloudAccountUid` (absent from V1
    /// results and from V2 results of earlier releases).
    account: Option<usize>,
}

enum Rows {
    /// A results file a killed run left empty (not even the header).
    Empty,
    Csv(csv::Reader<Take<File>>, Columns, csv::StringRecord),
    Json(std::io::Lines<BufReader<Take<File>>>),
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
    /// A `BatchUpdateFindingsV2` triple's account.
    #[serde(rename = "CloudAccountUid", default)]
    cloud_account_uid: Option<String>,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    attempts: u32,
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
    /// Reading an in-flight log: the input rows the results file settles
    /// (their entries are left out).
    settled: Option<HashSet<u64>>,
    /// A CSV without the `CloudAccountUid` column (every V1 results file,
    /// and V2 ones of earlier releases): a V2 row's triple cannot be
    /// rebuilt from it.
    accounts_unknown: bool,
}

/// Opens a results file as the revert's input, once the journal's own scan
/// (the one `--resume` runs) found every row sound: a damaged row stops the
/// revert, naming its line; a last line cut short by an interrupted run is
/// left out, with a note.
pub(crate) fn open(path: &Path) -> anyhow::Result<(Input, NotReverted)> {
    // The in-flight log: findings whose request left; those the results
    // file does not settle were out when a run was killed.
    let log = crate::journal::in_flight_path(path);
    let has_log = std::fs::metadata(&log).is_ok_and(|m| m.len() > 0);
    let mut settled = has_log.then(HashSet::new);
    let checked = crate::journal::check_results(path, settled.as_mut()).map_err(|e| {
        anyhow::Error::new(e).context(format!(
            "cannot revert {}: it cannot be read as a results file, and no row of it is skipped",
            path.display()
        ))
    })?;
    if let Some(torn) = &checked.torn {
        eprintln!(
            "sechub-triage: {}: line {} was cut short by an interrupted run ({} bytes): it is not read \
             (its finding was in flight: the in-flight log covers it)",
            path.display(),
            torn.line,
            torn.bytes
        );
    }
    let skipped = NotReverted::default();
    let records = RevertRecords::open(path, checked.valid_len, skipped.clone(), None)?;
    let Some(settled) = settled else {
        return Ok((Box::new(records), skipped));
    };
    let checked = crate::journal::check_results(&log, None).map_err(|e| {
        anyhow::Error::new(e).context(format!(
            "cannot revert {}: its in-flight log cannot be read, and no row of it is skipped",
            path.display()
        ))
    })?;
    let in_flight = RevertRecords::open(&log, checked.valid_len, skipped.clone(), Some(settled))?;
    Ok((Box::new(records.chain(in_flight)), skipped))
}

impl RevertRecords {
    /// The first `valid_len` bytes of the results file (or in-flight log)
    /// `path`, checked already; for a log, `settled` holds the input rows
    /// the results file settles, whose entries are left out.
    fn open(
        path: &Path,
        valid_len: u64,
        skipped: NotReverted,
        settled: Option<HashSet<u64>>,
    ) -> anyhow::Result<RevertRecords> {
        let file = File::open(path)
            .with_context(|| format!("cannot open {}", path.display()))?
            .take(valid_len);
        let name: Arc<str> = path.display().to_string().into();
        let rows = match ResultsFormat::for_path(path) {
            _ if valid_len == 0 => Rows::Empty,
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
                    attempts: need("attempts")?,
                    applied: need("applied")?,
                    prior: need("prior")?,
                    account: find(crate::reporting::ACCOUNT_COLUMN),
                };
                Rows::Csv(rdr, columns, csv::StringRecord::new())
            }
        };
        let accounts_unknown = matches!(&rows, Rows::Csv(_, c, _) if c.account.is_none());
        Ok(RevertRecords {
            name,
            rows,
            line: 0,
            skipped,
            settled,
            accounts_unknown,
        })
    }

    fn next_row(&mut self) -> Option<Result<Row, String>> {
        match &mut self.rows {
            Rows::Empty => None,
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
                        cloud_account_uid: c.account.map(cell),
                        outcome: cell(c.outcome),
                        attempts: cell(c.attempts).parse().unwrap_or(0),
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

    /// The record that undoes one `updated` row, or one that may have been
    /// applied (`maybe`: `unknown`, or `not_attempted` after a request).
    fn item(&self, row: Row, maybe: bool) -> SourceItem {
        let location = Location {
            file: self.name.clone(),
            row: self.line,
            detail: Some(if self.settled.is_some() {
                format!(
                    "reverting {} row {}: in flight when a run was killed, may have been applied",
                    row.file, row.row
                )
            } else if maybe {
                format!(
                    "reverting {} row {}, {}: may have been applied",
                    row.file, row.row, row.outcome
                )
            } else {
                format!("reverting {} row {}", row.file, row.row)
            }),
        };
        let lost = &self.skipped.not_restorable;
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
                lost.fetch_add(1, Ordering::Relaxed);
                let reason = if maybe {
                    format!(
                        "the campaign recorded it {} (it may have been applied), but the row does not \
                         record the decision sent (a results file of an earlier release), so it cannot \
                         be reverted",
                        row.outcome
                    )
                } else {
                    "the results row does not record the decision applied, so it cannot be reverted"
                        .to_owned()
                };
                return invalid(location, key, "applied", reason);
            }
            Err(e) => {
                lost.fetch_add(1, Ordering::Relaxed);
                return invalid(location, key, "applied", format!("not a decision: {e}"));
            }
        };
        if self.accounts_unknown && applied.is_v2() && !key.product_arn.is_empty() {
            // Written by a release whose V2 CSV results left the account
            // out: `Id` may be a finding_info.uid whose triple is lost, or
            // a metadata.uid. Never guessed (the guess could name another
            // finding). A metadata.uid key without a product (empty
            // `ProductArn`) is unambiguous and goes on below.
            lost.fetch_add(1, Ordering::Relaxed);
            return invalid(
                location,
                key,
                crate::reporting::ACCOUNT_COLUMN,
                format!(
                    "this CSV results file has no {} column (an earlier release's), so the \
                     finding's cloud.account.uid is not recorded and its identifier cannot be \
                     rebuilt: revert the run's JSON Lines results instead, or restore it by hand",
                    crate::reporting::ACCOUNT_COLUMN
                ),
            );
        }
        let prior: Option<serde_json::Value> = if row.prior.trim().is_empty() {
            None
        } else {
            match serde_json::from_str(&row.prior) {
                Ok(v) => Some(v),
                Err(e) => {
                    lost.fetch_add(1, Ordering::Relaxed);
                    return invalid(location, key, "prior", format!("not JSON: {e}"));
                }
            }
        };
        let restore = restoring(&applied, prior.as_ref());
        if restore.decision.is_empty() {
            lost.fetch_add(1, Ordering::Relaxed);
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
            self.skipped.partial.fetch_add(1, Ordering::Relaxed);
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
            if let Some(settled) = &self.settled {
                // An in-flight log entry: restored unless the results file
                // settles its input row.
                if settled.contains(&crate::journal::row_key(&row.file, row.row)) {
                    continue;
                }
                self.skipped.in_flight.fetch_add(1, Ordering::Relaxed);
                return Some(Ok(self.item(row, true)));
            }
            // `unknown`, and `not_attempted` once a request carried it: the
            // service may have applied it, so it is restored like `updated`.
            let maybe = match row.outcome.as_str() {
                "updated" => false,
                "unknown" => true,
                "not_attempted" if row.attempts > 0 => true,
                other => {
                    if other == "not_attempted" {
                        self.skipped.never_sent.fetch_add(1, Ordering::Relaxed);
                    }
                    self.skipped.nothing.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            if maybe {
                self.skipped.maybe_applied.fetch_add(1, Ordering::Relaxed);
            }
            return Some(Ok(self.item(row, maybe)));
        }
    }
}
