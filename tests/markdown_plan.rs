//! `plan --output markdown` from the command line prints exactly the page
//! the snapshot test in `src/plan/markdown.rs` pins for the README's
//! campaign over `samples/findings.json`; the same run twice gives the same
//! bytes (a plan committed next to a campaign diffs only when it changes).

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
