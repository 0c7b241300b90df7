//! `sechub-triage run campaign.toml` end to end: the real binary against the
//! emulator on 127.0.0.1, through the real SDK client. The shipped sample
//! campaigns run against the demo data; flags override the file; unknown
//! keys are refused before anything is sent.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::Emu;
use sechub_triage::emulator::EmulatorConfig;
use sechub_triage::model::FindingKey;

/// An emulator seeded with the demo data (samples/findings.json).
fn emu_with_samples() -> Emu {
    let emu = Emu::start(EmulatorConfig::default());
    let n =
        sechub_triage::emulator::cli::load_seed_file(&emu.state, &samples().join("findings.json"))
            .unwrap();
    assert_eq!(n, 1000);
    emu
}

fn workflow_and_note(emu: &Emu, k: &FindingKey) -> (String, String) {
    (
        emu.workflow(k),
        emu.note(k).map(|n| n.0).unwrap_or_default(),
    )
}

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

/// The binary, run from `cwd`, with credentials that exist only here.
fn triage(cwd: &Path) -> Command {
    let mut c = crate::support::triage(cwd);
    c.current_dir(cwd);
    c
}

fn show(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn sample_keys() -> Vec<FindingKey> {
    let mut r = csv::Reader::from_path(samples().join("findings.csv")).unwrap();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            FindingKey::new(&rec[0], &rec[1])
        })
        .collect()
}

fn results_rows(path: &Path) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    if path.extension().is_some_and(|e| e == "jsonl") {
        return text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| {
                        let s = match v {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (k.clone(), s)
                    })
                    .collect()
            })
            .collect();
    }
    crate::support::read_results(path)
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Runs a shipped sample campaign against the emulator, from a working
/// directory that is not the campaign's (relative paths must follow the
/// file), with its outputs redirected to a temporary directory by flags.
fn run_sample(
    name: &str,
    results_name: &str,
    want_status: &str,
    want_note: &str,
    want_udf: &[(&str, &str)],
) {
    let emu = emu_with_samples();
    let keys = sample_keys();
    assert_eq!(keys.len(), 1000);
    let elsewhere = tempfile::tempdir().unwrap();
    let results = elsewhere.path().join(results_name);
    let failed = elsewhere.path().join("failed.csv");
    let report = elsewhere.path().join("report.json");
    let campaign = samples().join("campaigns").join(name);
    let out = triage(elsewhere.path())
        .arg("run")
        .arg(&campaign)
        .args([
            "--endpoint-url",
            &emu.url(),
            "--no-progress",
            "--output",
            "json",
        ])
        .arg("--results")
        .arg(&results)
        .arg("--failed")
        .arg(&failed)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["records"], 1000, "{}", show(&out));
    assert_eq!(summary["outcomes"]["updated"], 1000);

    let rows = results_rows(&results);
    assert_eq!(rows.len(), 1000);
    assert!(rows.iter().all(|r| r["outcome"] == "updated"));
    // The failed file exists and lists nothing.
    assert_eq!(results_rows(&failed).len(), 0);

    for k in &keys {
        assert_eq!(emu.state.update_count(k), 1, "{k:?} updated once");
        let (status, note) = workflow_and_note(&emu, k);
        assert_eq!(status, want_status);
        assert_eq!(note, want_note);
        let f = emu.state.finding(k).unwrap();
        for (key, value) in want_udf {
            assert_eq!(f["UserDefinedFields"][key], *value, "{k:?}");
        }
    }

    let r = read_json(&report);
    assert_eq!(r["state"], "finished");
    assert_eq!(r["exit_status"], 0);
    assert_eq!(r["command"], "run");
    assert!(r["campaign"].as_str().unwrap().ends_with(name), "{r}");
    assert!(
        r["inputs"][0].as_str().unwrap().ends_with("findings.csv"),
        "{r}"
    );
    assert_eq!(r["summary"]["outcomes"]["updated"], 1000);
    assert_eq!(r["pacing"]["requests"], emu.requests());
}

#[test]
fn sample_nightly_auto_resolve_runs_end_to_end() {
    run_sample(
        "nightly-auto-resolve.toml",
        "results.csv",
        "RESOLVED",
        "Auto-resolved: the control passes again (nightly compliance export)",
        &[("triage_job", "nightly-auto-resolve")],
    );
}

#[test]
fn sample_suppression_campaign_runs_end_to_end() {
    run_sample(
        "suppression-campaign.toml",
        "results.jsonl",
        "SUPPRESSED",
        "Accepted risk, see SEC-42",
        &[
            ("ticket", "SEC-42"),
            ("reviewer", "alice"),
            ("sechub-triage-run", "SEC-42"),
        ],
    );
}

/// Writes a campaign into its own directory (with the first `n` sample
/// findings as `in.csv` beside it) and returns the campaign's path.
fn campaign_dir(dir: &Path, n: usize, body: &str) -> (PathBuf, Vec<FindingKey>) {
    let keys: Vec<FindingKey> = sample_keys().into_iter().take(n).collect();
    let input = dir.join("in.csv");
    sechub_triage::emulator::write_keys_csv(&keys, std::fs::File::create(&input).unwrap()).unwrap();
    let path = dir.join("campaign.toml");
    std::fs::write(&path, body).unwrap();
    (path, keys)
}

#[test]
fn flags_override_the_file_and_relative_outputs_follow_the_file() {
    let emu = emu_with_samples();
    let camp = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let (path, keys) = campaign_dir(
        camp.path(),
        150,
        r#"
inputs = ["in.csv"]
[decision]
workflow = "Status=RESOLVED"
note = { Text = "from the file", UpdatedBy = "campaign" }
[pacing]
rate = 0.5
[output]
results = "results.csv"
report = "report.json"
no_progress = true
"#,
    );
    let out = triage(cwd.path())
        .arg("run")
        .arg(&path)
        // Overrides: the workflow, the pace (0.5/s would make two requests
        // take two seconds), and the endpoint the file does not name.
        .args(["--workflow", "Status=NOTIFIED", "--rate", "50"])
        .args(["--endpoint-url", &emu.url()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    for k in &keys {
        let (status, note) = workflow_and_note(&emu, k);
        assert_eq!(status, "NOTIFIED", "the flag wins over the file");
        assert_eq!(
            note, "from the file",
            "what the flags leave alone comes from the file"
        );
    }
    // Relative outputs were written next to the campaign, not in the
    // working directory.
    let rows = results_rows(&camp.path().join("results.csv"));
    assert_eq!(rows.len(), 150);
    assert!(rows.iter().all(|r| r["outcome"] == "updated"));
    let report = read_json(&camp.path().join("report.json"));
    assert_eq!(report["exit_status"], 0);
    assert!(!cwd.path().join("results.csv").exists());
}

#[test]
fn unknown_keys_are_refused_before_anything_is_sent() {
    let emu = emu_with_samples();
    let camp = tempfile::tempdir().unwrap();
    let (path, _) = campaign_dir(
        camp.path(),
        10,
        "inputs = [\"in.csv\"]\n\n[decision]\nworkflow = \"Status=RESOLVED\"\n\n[pacing]\nrate = 5\nmax_attempt = 3\n",
    );
    let report = camp.path().join("report.json");
    let out = triage(camp.path())
        .arg("run")
        .arg(&path)
        .args(["--endpoint-url", &emu.url()])
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(stderr.contains("`max_attempt`"), "names the key: {stderr}");
    assert!(stderr.contains("line 8"), "names the line: {stderr}");
    assert!(stderr.contains("campaign.toml"), "names the file: {stderr}");
    assert_eq!(emu.requests(), 0, "nothing was sent");
    // A monitor learns about it from the report too.
    let r = read_json(&report);
    assert_eq!(r["exit_status"], 1);
    assert!(r["error"].as_str().unwrap().contains("max_attempt"), "{r}");
    assert!(r["summary"].is_null());
}

#[test]
fn a_bad_decision_value_names_its_line_and_nothing_is_sent() {
    let emu = emu_with_samples();
    let camp = tempfile::tempdir().unwrap();
    let (path, _) = campaign_dir(
        camp.path(),
        10,
        "inputs = [\"in.csv\"]\n[decision]\nworkflow = { Status = \"CLOSED\" }\n[output]\nreport = \"report.json\"\n",
    );
    let out = triage(camp.path())
        .arg("run")
        .arg(&path)
        .args(["--endpoint-url", &emu.url()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr.contains("line 3")
            && stderr.contains("decision.workflow")
            && stderr.contains("CLOSED"),
        "{stderr}"
    );
    assert_eq!(emu.requests(), 0);
    // The report the file names says so.
    let r = read_json(&camp.path().join("report.json"));
    assert_eq!(r["exit_status"], 1);
    assert!(
        r["error"].as_str().unwrap().contains("decision.workflow"),
        "{r}"
    );
}

#[test]
fn a_missing_campaign_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = triage(dir.path())
        .args(["run", "no-such-campaign.toml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr.contains("cannot read campaign file no-such-campaign.toml"),
        "{stderr}"
    );
}
