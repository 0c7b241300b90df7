//! `sechub-triage demo`: the whole engine against an in-process emulator
//! seeded with the bundled samples, with a little fault injection, so that a
//! new user sees throttling, retries and per-finding accounting work with no
//! AWS account.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use super::{
    DecisionArgs, InputArgs, Job, OutputArgs, PacingArgs, exit_status, open_input, print_summary,
};
use crate::emulator::{EmulatorConfig, EmulatorState, FaultConfig, LocalEmulator};
use crate::model::{FindingKey, OutcomeKind};
use crate::submission::{AwsSettings, Submitter};

/// Options of `sechub-triage demo`.
#[derive(Args, Debug)]
pub(crate) struct DemoArgs {
    /// Directory holding findings.json and findings.csv [default: ./samples,
    /// else the samples the binary was built with].
    #[arg(long, value_name = "DIR")]
    pub samples: Option<PathBuf>,
    /// Run without injected faults.
    #[arg(long)]
    pub(crate) no_faults: bool,
    /// Also list this many identifiers that do not exist (reported as FindingNotFound).
    #[arg(long, default_value_t = 5)]
    pub missing: usize,
    /// The new Security Hub: seed the emulator's OCSF store from
    /// findings-ocsf.jsonl and triage it with BatchUpdateFindingsV2 (by
    /// default --status-id 3 --comment "..."; any of --status-id,
    /// --severity-id, --comment chooses this path too).
    #[arg(long)]
    pub v2: bool,
    #[command(flatten)]
    pub decision: DecisionArgs,
    #[command(flatten)]
    pub pacing: PacingArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

fn samples_dir(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_owned());
    }
    let local = PathBuf::from("samples");
    if local.join("findings.json").is_file() {
        return Ok(local);
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    if built.join("findings.json").is_file() {
        return Ok(built);
    }
    anyhow::bail!("cannot find the samples: run from the project directory or give --samples DIR")
}

/// Runs the demo; returns the exit status `update` would have returned.
pub(super) async fn run(mut args: DemoArgs) -> anyhow::Result<i32> {
    let dir = samples_dir(args.samples.as_deref())?;
    let json_path = dir.join("findings.json");
    let csv_path = dir.join("findings.csv");
    // Settings and output paths before anything is started or written.
    super::settings::check_nightly(&args.output, Duration::from_secs(10))?;
    super::paths::check(
        &[
            super::paths::Named::new("the sample findings", &json_path),
            super::paths::Named::new("the sample list", &csv_path),
        ],
        &super::settings::outputs(&args.output, None),
    )?;

    let mut config = EmulatorConfig::default();
    if !args.no_faults {
        config.faults = FaultConfig {
            concurrent_update_error: 0.03,
            internal_failure: 0.02,
            http_500: 0.05,
            drop_connection: 0.03,
            latency: Duration::from_millis(30),
            latency_jitter: Duration::from_millis(40),
            ..FaultConfig::default()
        };
    }
    let v2 = args.v2
        || args.decision.status_id.is_some()
        || args.decision.severity_id.is_some()
        || args.decision.comment.is_some();
    let ocsf_path = dir.join("findings-ocsf.jsonl");
    let state = EmulatorState::new(config);
    let seeded = crate::emulator::cli::load_seed_file(&state, &json_path)?;
    if v2 {
        return run_v2(args, state, &ocsf_path).await;
    }

    let emulator = LocalEmulator::start_with_state(state.clone()).await?;
    eprintln!(
        "demo: emulator on {} with {seeded} findings from {}; faults {}",
        emulator.url(),
        json_path.display(),
        if args.no_faults { "off" } else { "on" }
    );

    if args.decision.note.is_none()
        && args.decision.workflow.is_none()
        && args.decision.cli_input_json.is_none()
    {
        args.decision.workflow = Some("Status=SUPPRESSED".into());
        args.decision.note = Some(
            "Text=\"Suppressed by the sechub-triage demo\",UpdatedBy=sechub-triage-demo".into(),
        );
    }
    let (decision, mut extra) = args.decision.build()?;
    for i in 0..args.missing {
        extra.push(FindingKey::new(
            format!("demo-missing-finding-{i}"),
            "arn:aws:securityhub:us-east-1::product/aws/guardduty",
        ));
    }
    let engine = args.pacing.engine_config(None)?;
    let input = open_input(
        &[csv_path.display().to_string()],
        extra,
        &InputArgs::default(),
        None,
    )?;
    run_against(emulator, &state, engine, decision, input, &args.output).await
}

/// The demo's new Security Hub path: the OCSF samples, `BatchUpdateFindingsV2`.
async fn run_v2(mut args: DemoArgs, state: EmulatorState, ocsf_path: &Path) -> anyhow::Result<i32> {
    let seeded = crate::emulator::load_ocsf_seed_file(&state, ocsf_path)?;
    let emulator = LocalEmulator::start_with_state(state.clone()).await?;
    eprintln!(
        "demo: emulator on {} with {seeded} OCSF findings from {} (the new Security Hub); faults {}",
        emulator.url(),
        ocsf_path.display(),
        if args.no_faults { "off" } else { "on" }
    );
    if args.decision.status_id.is_none()
        && args.decision.severity_id.is_none()
        && args.decision.comment.is_none()
        && args.decision.cli_input_json.is_none()
    {
        args.decision.status_id = Some("3".into());
        args.decision.comment = Some("Suppressed by the sechub-triage demo".into());
    }
    let (decision, mut extra) = args.decision.build()?;
    anyhow::ensure!(
        decision.is_v2(),
        "demo --v2 takes the new Security Hub's decision flags (--status-id, --severity-id, --comment)"
    );
    for i in 0..args.missing {
        extra.push(FindingKey::ocsf(
            "123456789012",
            format!("demo-missing-finding-{i}"),
            "arn:aws:securityhub:us-east-1::productv2/aws/guardduty",
        ));
    }
    let engine = args.pacing.engine_config(None)?;
    let input_args = InputArgs {
        v2: true,
        ..InputArgs::default()
    };
    let input = open_input(&[ocsf_path.display().to_string()], extra, &input_args, None)?;
    run_against(emulator, &state, engine, decision, input, &args.output).await
}

/// Runs the demo's job against `emulator`, then prints the summary and what
/// the emulator saw of it.
async fn run_against(
    emulator: LocalEmulator,
    state: &EmulatorState,
    engine: crate::engine::EngineConfig,
    decision: crate::decision::Decision,
    input: crate::engine::Input,
    output: &OutputArgs,
) -> anyhow::Result<i32> {
    let v2 = decision.is_v2();
    let sdk = emulator
        .sdk_config("AKIDSECHUBTRIAGEDEMO", "demo-secret-not-a-real-key")
        .await;
    let submitter = Submitter::from_sdk_config(
        sdk,
        &AwsSettings {
            endpoint_url: Some(emulator.url()),
            request_timeout: Some(Duration::from_secs(10)),
            ..AwsSettings::default()
        },
    );
    let summary = super::run_job(Job {
        engine,
        v2,
        decision,
        input,
        submitter,
        output: output.clone(),
    })
    .await?;
    let _ = emulator.shutdown().await;
    print_summary(&summary, output.output)?;
    let counters = state.counters();
    if output.output == super::OutputFormat::Text {
        let (op, name, outcomes) = if v2 {
            (
                crate::emulator::Operation::BatchUpdateFindingsV2,
                "BatchUpdateFindingsV2",
                &counters.v2_finding_outcomes,
            )
        } else {
            (
                crate::emulator::Operation::BatchUpdateFindings,
                "BatchUpdateFindings",
                &counters.finding_outcomes,
            )
        };
        println!(
            "emulator saw:      {} {name} requests ({} throttled); per finding: {}; request errors: {}",
            counters.requests_for(op),
            counters.throttled,
            fmt_counts(outcomes),
            fmt_counts(&counters.error_codes),
        );
        println!(
            "accounting:        {} records = {} updated + {} failed + {} invalid + {} unchanged + {} duplicate + {} not attempted + {} unknown",
            summary.records,
            summary.count(OutcomeKind::Updated),
            summary.count(OutcomeKind::Failed),
            summary.count(OutcomeKind::Invalid),
            summary.count(OutcomeKind::Unchanged),
            summary.count(OutcomeKind::Duplicate),
            summary.count(OutcomeKind::NotAttempted),
            summary.count(OutcomeKind::Unknown),
        );
    }
    Ok(exit_status(&summary))
}

fn fmt_counts(m: &std::collections::BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "none".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
