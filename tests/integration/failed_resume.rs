//! The `--failed` file is a complete input for every row (issue 11): rows a
//! `--resume` run copies from earlier runs' failures carry their decision
//! and recorded state like this run's failures, and a V2 run's file carries
//! the `BatchUpdateFindingsV2` decision columns, so that the file fed back
//! with `--row-decisions` (and no decision on the command line) updates
//! exactly the failed findings with exactly their decisions. Through the
//! binary against the emulator on 127.0.0.1.
#![cfg(unix)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Output;

use sechub_triage::emulator::{EmulatorConfig, SyntheticSpec};
use serde_json::{Value, json};

use crate::support::{Emu, key_row, read_results, triage, write_csv};

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Pacing that makes the first run stop part-way: one finding a request
/// (each row has its own decision), 4 requests a second, and a time budget
/// whose new requests stop at 6 - max(1, 1) - 2 = 3 s, while the 30-40
/// requests take 8-10 s.
const STOPS_PART_WAY: [&str; 12] = [
    "--rate",
    "4",
    "--burst",
    "1",
    "--concurrency",
    "1",
    "--time-budget",
    "6s",
    "--request-timeout",
    "1s",
    "--grace",
    "1s",
];

/// The last row of each input row in a results file: (row, outcome, Id).
fn last_outcomes(results: &Path) -> BTreeMap<String, (String, String)> {
    let mut last = BTreeMap::new();
    for r in read_results(results) {
        last.insert(r["row"].clone(), (r["outcome"].clone(), r["Id"].clone()));
    }
    last
}

/// The Ids a results file ends with as `failed`.
fn failed_ids(results: &Path) -> BTreeSet<String> {
    last_outcomes(results)
        .into_values()
        .filter(|(o, _)| o == "failed")
        .map(|(_, id)| id)
        .collect()
}

#[test]
fn a_resumed_runs_failed_file_carries_every_rows_decision_and_state() {
    let mut config = EmulatorConfig::unthrottled();
    config.random_seed = 5;
    let emu = Emu::start(config);
    let keys = emu.state.seed_synthetic(&SyntheticSpec {
        count: 40,
        seed: 23,
        regions: vec!["us-east-1".into()],
        ..SyntheticSpec::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    // The recorded workflow status (state) and each row's own note (a
    // per-row decision).
    let before: Vec<String> = keys.iter().map(|k| emu.workflow(k)).collect();
    let input = home.join("in.csv");
    let rows: Vec<String> = keys
        .iter()
        .zip(&before)
        .enumerate()
        .map(|(i, (k, status))| format!("{},{status},\"ticket SEC-{i}, reviewed\"", key_row(k)))
        .collect();
    write_csv(&input, "Id,ProductArn,Workflow.Status,Note.Text", &rows);
    let mut faults = emu.state.faults();
    faults.concurrent_update_error = 0.4;
    emu.state.set_faults(faults.clone());
    let results = home.join("r.csv");
    let run = |extra: &[&str], failed: &Path| {
        triage(home)
            .args(["update", s(&input), "--row-decisions=Note.Text"])
            .args(["--workflow", "Status=SUPPRESSED"])
            .args(["--note", "Text=unused,UpdatedBy=secops"])
            .args(["--max-attempts", "1", "--endpoint-url", &emu.url()])
            .args(["--results", s(&results), "--failed", s(failed)])
            .args(["--yes", "--no-progress"])
            .args(extra)
            .output()
            .unwrap()
    };
    // 1. Stopped part-way, some findings failed.
    let f1 = home.join("f1.csv");
    let out = run(&STOPS_PART_WAY, &f1);
    assert_eq!(out.status.code(), Some(4), "stopped: {}", text(&out));
    let first = failed_ids(&results);
    let settled = last_outcomes(&results)
        .values()
        .filter(|(o, _)| o != "not_attempted")
        .count();
    assert!(!first.is_empty(), "{}", text(&out));
    assert!(settled < keys.len(), "work left: {settled}");
    // 2. Resumed: some more fail; the failed file lists both runs' failures.
    let f2 = home.join("f2.csv");
    let out = run(&["--resume"], &f2);
    assert_eq!(
        out.status.code(),
        Some(2),
        "failed findings: {}",
        text(&out)
    );
    let all_failed = failed_ids(&results);
    assert!(all_failed.len() > first.len(), "{all_failed:?}");
    let listed = read_results(&f2);
    assert_eq!(
        listed
            .iter()
            .map(|r| r["Id"].clone())
            .collect::<BTreeSet<_>>(),
        all_failed
    );
    assert_eq!(listed.len(), all_failed.len());
    for row in &listed {
        let i = keys.iter().position(|k| k.id == row["Id"]).unwrap();
        let copied = first.contains(&row["Id"]);
        // The earlier run's failures as complete as this run's.
        assert_eq!(
            row["Workflow.Status"], "SUPPRESSED",
            "copied {copied}: {row:?}"
        );
        assert_eq!(
            row["Note.Text"],
            format!("ticket SEC-{i}, reviewed"),
            "{row:?}"
        );
        assert_eq!(row["Note.UpdatedBy"], "secops", "{row:?}");
        let state: Value = serde_json::from_str(&row["recorded_state"]).unwrap();
        assert_eq!(state, json!({"Workflow": {"Status": before[i]}}), "{row:?}");
    }
    // 3. Fed back with no decision on the command line against a healthy
    // service: exactly the failed findings, each with exactly its decision.
    faults.concurrent_update_error = 0.0;
    emu.state.set_faults(faults);
    emu.state.reset_counters();
    let out = triage(home)
        .args(["update", s(&f2), "--row-decisions"])
        .args([
            "--endpoint-url",
            &emu.url(),
            "--results",
            s(&home.join("r3.csv")),
        ])
        .args(["--no-progress", "--yes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for (i, k) in keys.iter().enumerate() {
        let history = emu.state.update_history(k);
        if !all_failed.contains(&k.id) {
            assert!(history.is_empty(), "{k} had not failed: {history:?}");
            continue;
        }
        assert_eq!(history.len(), 1, "{k}");
        let mut written = history.concat();
        written.sort();
        assert_eq!(written, ["Note", "Workflow.Status"], "{k}");
        assert_eq!(emu.workflow(k), "SUPPRESSED");
        assert_eq!(
            emu.note(k),
            Some((format!("ticket SEC-{i}, reviewed"), "secops".into()))
        );
    }
}

/// Writes one JSON document a line.
fn write_jsonl(path: &Path, docs: impl IntoIterator<Item = Value>) {
    let text: String = docs.into_iter().map(|d| format!("{d}\n")).collect();
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_v2_runs_failed_file_fed_back_reapplies_exactly_what_failed() {
    let mut config = EmulatorConfig::unthrottled();
    config.random_seed = 9;
    let emu = Emu::start(config);
    let keys = emu.state.seed_synthetic_ocsf(&SyntheticSpec {
        regions: vec!["us-east-1".into()],
        ..SyntheticSpec::new(30, 41)
    });
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    // The OCSF export, each document with its own comment (a per-row
    // decision); the command line sets the status.
    let state_of = |k: &sechub_triage::emulator::OcsfKey| {
        let s = emu.state.ocsf_state(&k.uid()).unwrap();
        (s.status_id, s.severity_id, s.comment)
    };
    let before: Vec<_> = keys.iter().map(state_of).collect();
    let input = home.join("export.jsonl");
    write_jsonl(
        &input,
        keys.iter().enumerate().map(|(i, k)| {
            let mut doc = emu.state.ocsf_finding(&k.uid()).unwrap();
            doc["decision"] = json!({"Comment": format!("ticket SEC-{i}, reviewed")});
            doc
        }),
    );
    let mut faults = emu.state.faults();
    faults.concurrent_update_error = 0.4;
    emu.state.set_faults(faults.clone());
    let results = home.join("r.csv");
    let run = |extra: &[&str], failed: &Path| {
        triage(home)
            .args(["update", s(&input), "--row-decisions", "--status-id", "3"])
            .args(["--max-attempts", "1", "--endpoint-url", &emu.url()])
            .args(["--results", s(&results), "--failed", s(failed)])
            .args(["--yes", "--no-progress"])
            .args(extra)
            .output()
            .unwrap()
    };
    let f1 = home.join("f1.csv");
    let out = run(&STOPS_PART_WAY, &f1);
    assert_eq!(out.status.code(), Some(4), "stopped: {}", text(&out));
    let first = failed_ids(&results);
    assert!(!first.is_empty(), "{}", text(&out));
    let f2 = home.join("f2.csv");
    let out = run(&["--resume"], &f2);
    assert_eq!(
        out.status.code(),
        Some(2),
        "failed findings: {}",
        text(&out)
    );
    let all_failed = failed_ids(&results);
    assert!(all_failed.len() > first.len(), "{all_failed:?}");
    // Every row: the V2 decision columns and the V2 state, the finding's
    // account with it (the triple's third part).
    let listed = read_results(&f2);
    assert_eq!(listed.len(), all_failed.len());
    let index = |id: &str| {
        keys.iter()
            .position(|k| k.triple.finding_info_uid == id)
            .unwrap()
    };
    for row in &listed {
        let i = index(&row["Id"]);
        assert_eq!(row["StatusId"], "3", "{row:?}");
        assert_eq!(
            row["Comment"],
            format!("ticket SEC-{i}, reviewed"),
            "{row:?}"
        );
        assert_eq!(row["SeverityId"], "", "{row:?}");
        assert_eq!(row["Workflow.Status"], "", "{row:?}");
        let state: Value = serde_json::from_str(&row["recorded_state"]).unwrap();
        let (status, severity, comment) = &before[i];
        assert_eq!(state["StatusId"], json!(status), "{row:?}");
        assert_eq!(state["SeverityId"], json!(severity), "{row:?}");
        assert_eq!(state["Comment"], json!(comment), "{row:?}");
        assert_eq!(
            state["AwsAccountId"],
            json!(keys[i].triple.cloud_account_uid),
            "{row:?}"
        );
    }
    // Fed back with no decision on the command line: a V2 run (the rows'
    // decisions say so) updating exactly the failed findings.
    faults.concurrent_update_error = 0.0;
    emu.state.set_faults(faults);
    emu.state.reset_counters();
    let out = triage(home)
        .args(["update", s(&f2), "--row-decisions"])
        .args([
            "--endpoint-url",
            &emu.url(),
            "--results",
            s(&home.join("r3.jsonl")),
        ])
        .args(["--no-progress", "--yes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for (i, k) in keys.iter().enumerate() {
        let count = emu.state.v2_update_count(&k.uid());
        let (status, severity, comment) = state_of(k);
        if !all_failed.contains(&k.triple.finding_info_uid) {
            assert_eq!(count, 0, "{} had not failed", k.metadata_uid);
            continue;
        }
        assert_eq!(count, 1, "{}", k.metadata_uid);
        assert_eq!(status, Some(3));
        assert_eq!(severity, before[i].1, "not written");
        assert_eq!(
            comment.as_deref(),
            Some(format!("ticket SEC-{i}, reviewed").as_str())
        );
    }
    let r3 = std::fs::read_to_string(home.join("r3.jsonl")).unwrap();
    for line in r3.lines() {
        let row: Value = serde_json::from_str(line).unwrap();
        assert_eq!(row["outcome"], "updated", "{row}");
        assert!(row["CloudAccountUid"].is_string(), "the triple form: {row}");
    }
}
