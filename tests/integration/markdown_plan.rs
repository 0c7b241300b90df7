//! `plan --output markdown` from the command line prints exactly the page
//! the snapshot test in `src/plan/markdown.rs` pins for the README's
//! campaign over `samples/findings.json`; the same run twice gives the same
//! bytes (a plan committed next to a campaign diffs only when it changes).
//! A run with `--output markdown` prints its summary that way.

use crate::support;

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_sechub-triage");

fn plan_markdown() -> String {
    let out = Command::new(BIN)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args([
            "plan",
            "samples/findings.json",
            "--workflow",
            "Status=SUPPRESSED",
            "--note",
            "Text=Accepted risk: legacy fleet (RISK-118),UpdatedBy=secops",
            "--note-mode",
            "append",
            "--run-tag",
            "risk-118",
            "--output",
            "markdown",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_cli_prints_the_snapshotted_page() {
    let snap = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/plan/snapshots/sechub_triage__plan__markdown__tests__readme_campaign.snap");
    let snap = std::fs::read_to_string(snap).unwrap();
    // insta's header is a `---` block; the page follows it.
    let body = snap.splitn(3, "---\n").nth(2).expect("insta header");
    let page = plan_markdown();
    assert_eq!(page.trim_end(), body.trim_end());
    assert_eq!(page, plan_markdown(), "not deterministic");
}

#[test]
fn a_run_prints_its_summary_as_markdown() {
    use sechub_triage::emulator::{EmulatorConfig, SyntheticSpec};
    let emu = support::Emu::start(EmulatorConfig::default());
    let keys = emu.state.seed_synthetic(&SyntheticSpec {
        count: 5,
        seed: 9,
        regions: vec!["us-east-1".into()],
        ..SyntheticSpec::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let rows: Vec<String> = keys.iter().map(support::key_row).collect();
    support::write_csv(&input, "Id,ProductArn", &rows);
    let out = support::triage(dir.path())
        .arg("update")
        .arg(&input)
        .args(["--workflow", "Status=NOTIFIED", "--no-progress"])
        .args(["--endpoint-url", &emu.url(), "--output", "markdown"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(
        page.starts_with("## sechub-triage run: 5 of 5 records updated\n"),
        "{page}"
    );
    assert!(page.contains("| updated | 5 |"), "{page}");
    for k in &keys {
        assert_eq!(emu.workflow(k), "NOTIFIED");
    }
}
