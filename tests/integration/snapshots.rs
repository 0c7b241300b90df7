//! The user-facing text, whole: the plan, the run summary and the main
//! error messages, as snapshots (`insta`, files in `snapshots/` beside this
//! file). The other modules check what these texts *mean*; these check how
//! they read, so that a change to the wording is a reviewed diff.
//!
//! Deterministic by construction: fixed inputs (the bundled samples and
//! small files written here), the emulator without throttling or faults,
//! and the few parts that vary between runs redacted: temporary and
//! project paths, ports, and timings.
//!
//! After an intended change: `INSTA_UPDATE=always cargo test --test
//! integration snapshots::` (or `cargo insta review`), then review and
//! commit the `.snap` files.

use std::path::Path;
use std::process::Output;

use sechub_triage::emulator::EmulatorConfig;

use crate::support::*;

const GD: &str = "arn:aws:securityhub:us-east-1::product/aws/guardduty";

fn samples() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/samples"))
}

/// Exit status, stdout and stderr of one run, as one text.
fn transcript(out: &Output) -> String {
    format!(
        "exit status: {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Snapshot settings that redact what varies between runs: `dir` (the
/// test's temporary directory, also the binary's working directory), the
/// project directory, ports on 127.0.0.1, timings and the request count.
fn redacted(dir: &Path) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_prepend_module_to_snapshot(false);
    s.set_snapshot_path("snapshots");
    s.add_filter(&regex_escape(&dir.display().to_string()), "[TMP]");
    s.add_filter(&regex_escape(env!("CARGO_MANIFEST_DIR")), "[REPO]");
    s.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
    // Log lines on stderr carry the time.
    s.add_filter(r"(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z ", "[TIME] ");
    // How many requests carry the findings depends on timing too: a partial
    // chunk leaves once it has waited its linger (250 ms), which a loaded
    // machine can reach before the last row is read.
    s.add_filter(r"(?m)^requests:( +)\d+ \(", "requests:$1[N] (");
    s.add_filter(
        r"(?m)^elapsed:( +)\S+ s \(\S+ findings updated/s\)$",
        "elapsed:$1[ELAPSED] s ([RATE] findings updated/s)",
    );
    s
}

/// `s` as a regular expression that matches it literally.
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Writes `rows` under a header into `dir/name`.
fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// Five findings of the bundled samples, one of them twice, one the
/// emulator does not hold, and one blank Id.
fn small_input(dir: &Path) {
    let samples = std::fs::read_to_string(samples().join("findings.csv")).unwrap();
    let rows: Vec<&str> = samples.lines().skip(1).take(5).collect();
    let mut text = String::from("Id,ProductArn\n");
    for r in &rows {
        text.push_str(r);
        text.push('\n');
    }
    text.push_str(rows[0]);
    text.push('\n');
    text.push_str(&format!("ghost-finding-1,{GD}\n"));
    text.push_str(&format!(" ,{GD}\n"));
    write(dir, "input.csv", &text);
}

/// Rows each broken in one way, in two formats, for the rejected-rows part
/// of the plan: every message names the file, row, line and column.
fn broken_input(dir: &Path) {
    write(
        dir,
        "broken.json",
        &format!(
            "{{\"Findings\": [{{\"Id\": \"a\", \"ProductArn\": \"{GD}\"}},\n  {{\"Id\": \"b\" \"ProductArn\": \"x\"}}]}}"
        ),
    );
    write(
        dir,
        "broken.csv",
        &format!(
            "Id,ProductArn,Workflow\n\
             a,{GD},\n \
             ,{GD},\n\
             c,arn:aws:guardduty:us-east-1:111122223333:detector/x,\n\
             d,{GD},BOGUS\n\
             e,{GD},\n\
             e,{GD},\n"
        ),
    );
}

#[test]
fn plan_text() {
    let dir = tempfile::tempdir().unwrap();
    let out = triage(dir.path())
        .current_dir(dir.path())
        .arg("plan")
        .arg(samples().join("findings.json"))
        .args(["--workflow", "Status=SUPPRESSED", "--skip-unchanged"])
        .args(["--run-tag", "snapshot-run", "--max-findings", "5000"])
        .args(["--endpoint-url", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    redacted(dir.path()).bind(|| insta::assert_snapshot!("plan_text", transcript(&out)));
}

#[test]
fn plan_text_with_rejected_and_duplicate_rows() {
    let dir = tempfile::tempdir().unwrap();
    broken_input(dir.path());
    let out = triage(dir.path())
        .current_dir(dir.path())
        .args(["plan", "broken.json", "broken.csv"])
        // The Workflow column as a per-row decision: a bad value is a
        // rejected row (as state it would only be unknown).
        .args(["--workflow", "Status=SUPPRESSED", "--row-decisions"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    redacted(dir.path())
        .bind(|| insta::assert_snapshot!("plan_text_rejected_rows", transcript(&out)));
}

#[test]
fn run_summary_text() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    sechub_triage::emulator::cli::load_seed_file(&emu.state, &samples().join("findings.json"))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    small_input(dir.path());
    let out = triage(dir.path())
        .current_dir(dir.path())
        .args(["update", "input.csv", "--workflow", "Status=SUPPRESSED"])
        .args(["--endpoint-url", &emu.url(), "--no-progress"])
        .args(["--results", "results.csv"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    redacted(dir.path()).bind(|| insta::assert_snapshot!("run_summary_text", transcript(&out)));
}

/// One failing invocation per case: (snapshot name, arguments, files it
/// needs). Each must exit 1 and send nothing.
#[test]
fn error_messages() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    small_input(dir.path());
    write(dir.path(), "no-id-column.csv", "Name,ProductArn\nx,y\n");
    let endpoint = emu.url();
    let cases: &[(&str, &[&str])] = &[
        // Usage errors.
        (
            "error_unknown_flag",
            &["update", "input.csv", "--frobnicate"],
        ),
        (
            "error_no_input",
            &["update", "--workflow", "Status=SUPPRESSED"],
        ),
        (
            "error_bad_enum_value",
            &["update", "input.csv", "--workflow", "Status=BOGUS"],
        ),
        (
            "error_out_of_range",
            &["plan", "input.csv", "--confidence", "101"],
        ),
        (
            "error_resume_without_results",
            &[
                "update",
                "input.csv",
                "--workflow",
                "Status=SUPPRESSED",
                "--resume",
            ],
        ),
        // Input errors that stop the run: file, line, what is wrong, how to fix.
        (
            "error_no_id_column",
            &[
                "update",
                "no-id-column.csv",
                "--workflow",
                "Status=SUPPRESSED",
            ],
        ),
        (
            "error_missing_file",
            &[
                "update",
                "does-not-exist.csv",
                "--workflow",
                "Status=SUPPRESSED",
            ],
        ),
        // A refused guardrail.
        (
            "error_guardrail_max_findings",
            &[
                "update",
                "input.csv",
                "--workflow",
                "Status=SUPPRESSED",
                "--max-findings",
                "3",
            ],
        ),
    ];
    let settings = redacted(dir.path());
    for (name, args) in cases {
        let out = triage(dir.path())
            .current_dir(dir.path())
            .args(*args)
            .args(["--endpoint-url", &endpoint, "--no-progress"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}: {}", transcript(&out));
        settings.bind(|| insta::assert_snapshot!(*name, transcript(&out)));
    }
    assert_eq!(emu.requests(), 0, "no case sent anything");
}
