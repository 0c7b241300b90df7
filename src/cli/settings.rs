//! Settings checked once, before any I/O.
//!
//! Every flag combination and campaign-file value of `update`, `plan`,
//! `run`, `revert` and `demo` is checked here, in one pass, before the plan
//! pass reads an input and before anything is opened for writing: the
//! decision, the pacing, the note policy and run tag, `--resume` without
//! `--results`, the time budget against its margin, the output paths
//! against each other and against every input ([`super::paths`]), and a
//! `--profile` that the AWS config files do not define. What comes out is
//! the settings the rest of the command uses as they are.
//!
//! An error here is a usage or configuration error (exit status 1), except
//! a directory that cannot be written to, which is a local I/O failure
//! (status 6, see [`super::exit`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::bail;

use super::paths::{self, Named};
use super::{AwsArgs, OutputArgs, UpdateArgs};
use crate::decision::Decision;
use crate::engine::EngineConfig;
use crate::model::FindingKey;

/// What `update` and `plan` run with, checked.
#[derive(Debug)]
pub(crate) struct UpdateSettings {
    /// The command line's decision (may be empty with per-row decisions).
    pub decision: Decision,
    /// Identifiers from `--cli-input-json`.
    pub extra: Vec<FindingKey>,
    /// The engine's settings.
    pub engine: EngineConfig,
}

/// Whether the command will send (and so write its outputs and need
/// credentials) or only plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `plan`, `update --dry-run`: reads, writes at most `--report`.
    Plan,
    /// `update`, `run`: sends and writes every output.
    Send,
}

/// Checks `update`'s (or `plan`'s) settings; `also_read` names files the
/// command reads besides its inputs (the campaign file).
pub(crate) fn check_update(
    args: &UpdateArgs,
    mode: Mode,
    also_read: &[Named],
) -> anyhow::Result<UpdateSettings> {
    let (decision, extra) = args.decision.build()?;
    crate::query::ocsf::check_decision(&args.query, &decision)?;
    if decision.is_empty() && args.inputs.is_empty() {
        // No input file: nothing any record could carry. (With inputs, the
        // readers refuse them, naming the columns that look like decisions,
        // unless --row-decisions takes some.)
        decision.validate_with(&args.decision.rules())?;
    }
    let mut engine = args.pacing.engine_config(args.aws.region.clone())?;
    engine.skip_unchanged = args.input.skip_unchanged;
    engine.duplicates = match args.input.duplicates {
        None => crate::engine::DuplicatePolicy::Refuse,
        Some(super::DuplicatesArg::First) => crate::engine::DuplicatePolicy::First,
        Some(super::DuplicatesArg::Last) => crate::engine::DuplicatePolicy::Last,
    };
    engine.rules = args.decision.rules();
    args.campaign.configure(&mut engine, &decision)?;

    let mut inputs: Vec<Named> = args
        .inputs
        .iter()
        .enumerate()
        .map(|(i, name)| Named::new(format!("input {}", i + 1), name))
        .collect();
    inputs.extend(decision_files(args));
    inputs.extend_from_slice(also_read);
    match mode {
        Mode::Plan => {
            // A plan writes nothing but its report.
            let outputs: Vec<Named> = args
                .output
                .report
                .iter()
                .map(|p| Named::new("--report", p))
                .collect();
            paths::check(&inputs, &outputs)?;
        }
        Mode::Send => {
            check_nightly(&args.output, args.aws.request_timeout)?;
            paths::check(&inputs, &outputs(&args.output, None))?;
            check_profile(&args.aws)?;
        }
    }
    Ok(UpdateSettings {
        decision,
        extra,
        engine,
    })
}

/// Every file a job with these outputs writes; `results` replaces
/// `--results` (revert's default).
pub(crate) fn outputs(output: &OutputArgs, results: Option<&Path>) -> Vec<Named> {
    let mut v = Vec::new();
    if let Some(r) = results.or(output.results.as_deref()) {
        v.extend(paths::results_files("--results", r));
    }
    if let Some(f) = &output.failed {
        v.push(Named::new("--failed", f));
    }
    if let Some(r) = &output.report {
        v.push(Named::new("--report", r));
    }
    v
}

/// `file://` values of the decision flags: read, so inputs too.
fn decision_files(args: &UpdateArgs) -> Vec<Named> {
    let d = &args.decision;
    let single = [
        ("--note", &d.note),
        ("--severity", &d.severity),
        ("--verification-state", &d.verification_state),
        ("--confidence", &d.confidence),
        ("--criticality", &d.criticality),
        ("--user-defined-fields", &d.user_defined_fields),
        ("--workflow", &d.workflow),
        ("--cli-input-json", &d.cli_input_json),
    ];
    let mut v = Vec::new();
    for (flag, value) in single {
        for p in paths::file_urls(value.as_deref()) {
            v.push(Named::new(flag, p));
        }
    }
    for (flag, values) in [
        ("--types", &d.types),
        ("--related-findings", &d.related_findings),
    ] {
        for p in paths::file_urls(values.iter().map(String::as_str)) {
            v.push(Named::new(flag, p));
        }
    }
    v
}

/// The flags of unattended runs that only make sense together.
pub(crate) fn check_nightly(output: &OutputArgs, request_timeout: Duration) -> anyhow::Result<()> {
    let n = &output.nightly;
    if (n.resume || n.force_resume) && output.results.is_none() {
        bail!(
            "--resume and --force-resume need --results: the results file is the journal a run resumes from"
        );
    }
    if let Some(budget) = n.time_budget {
        let margin = n.grace.max(request_timeout) + super::nightly::BUDGET_SLACK;
        if budget <= margin {
            bail!(
                "--time-budget {} leaves no time to work: it must be longer than max(--grace, \
                 --request-timeout) + {} s = {}",
                humantime::format_duration(budget),
                super::nightly::BUDGET_SLACK.as_secs(),
                humantime::format_duration(margin)
            );
        }
    }
    Ok(())
}

/// `--profile NAME` must be defined in the shared config or credentials
/// file (as the AWS CLI requires), so that a typo is named as such before
/// any call instead of surfacing as the credential chain's last error.
pub(crate) fn check_profile(aws: &AwsArgs) -> anyhow::Result<()> {
    let Some(name) = &aws.profile else {
        return Ok(());
    };
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let file = |var: &str, default: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
    };
    let config = file("AWS_CONFIG_FILE", "config");
    let credentials = file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    for (path, is_config) in [(&config, true), (&credentials, false)] {
        let Some(path) = path else { continue };
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        if profile_names(&text, is_config).iter().any(|p| p == name) {
            return Ok(());
        }
    }
    let where_ = [config, credentials]
        .into_iter()
        .flatten()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" and ");
    bail!("--profile {name:?}: the config profile could not be found in {where_}; nothing was sent")
}

/// The profile names a shared config (`[profile x]`, `[default]`) or
/// credentials (`[x]`) file defines.
fn profile_names(text: &str, is_config: bool) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let inner = l.strip_prefix('[')?.split(']').next()?.trim();
            if !is_config {
                return Some(inner.to_owned());
            }
            if inner == "default" {
                return Some(inner.to_owned());
            }
            let rest = inner.strip_prefix("profile")?;
            rest.starts_with([' ', '\t'])
                .then(|| rest.trim().to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names_follow_each_files_rules() {
        let config = "[default]\nregion=x\n[profile ops]\n[sso-session s]\n[profileless]\n";
        assert_eq!(profile_names(config, true), ["default", "ops"]);
        let creds = "[default]\n[ops] \n  [ci]\n";
        assert_eq!(profile_names(creds, false), ["default", "ops", "ci"]);
    }
}
