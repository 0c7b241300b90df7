//! Undo, end to end against the emulator: export, campaign, `revert`, and a
//! revert of the revert, checked through the emulator's stored findings.

use std::collections::HashMap;
use std::path::Path;

use crate::support::*;
use sechub_triage::emulator::{EmulatorConfig, Operation, SyntheticSpec};
use sechub_triage::model::FindingKey;
use serde_json::{Value, json};

/// What a campaign may change and a revert must put back.
#[derive(Clone, Debug, PartialEq)]
struct Snapshot {
    status: String,
    severity: String,
    note: Option<(String, String)>,
}

fn snapshot(emu: &Emu, k: &FindingKey) -> Snapshot {
    let f = emu.state.finding(k).unwrap();
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    Snapshot {
        status: s(&f["Workflow"]["Status"]),
        severity: s(&f["Severity"]["Label"]),
        note: f
            .get("Note")
            .filter(|n| !n.is_null())
            .map(|n| (s(&n["Text"]), s(&n["UpdatedBy"]))),
    }
}

fn run(emu: &Emu, home: &Path, args: &[&str]) -> (i32, String) {
    let out = triage(home)
        .args(args)
        .args(["--endpoint-url", &emu.url(), "--no-progress"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), stderr)
}

fn by_id(rows: Vec<HashMap<String, String>>) -> HashMap<String, HashMap<String, String>> {
    rows.into_iter().map(|r| (r["Id"].clone(), r)).collect()
}

#[test]
fn export_campaign_revert_and_revert_the_revert() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys = emu.state.seed_synthetic(&SyntheticSpec {
        count: 400,
        seed: 77,
        ..SyntheticSpec::default()
    });
    let before: Vec<Snapshot> = keys.iter().map(|k| snapshot(&emu, k)).collect();
    let with_note = before.iter().filter(|s| s.note.is_some()).count();
    assert!(
        with_note > 0 && with_note < keys.len(),
        "the data mixes notes"
    );

    // 1. Export (what `aws securityhub get-findings` writes).
    let docs: Vec<Value> = keys.iter().map(|k| emu.state.finding(k).unwrap()).collect();
    let docs_before: HashMap<String, Value> = keys
        .iter()
        .zip(&docs)
        .map(|(k, d)| (k.id.clone(), d.clone()))
        .collect();
    let export = d.join("export.json");
    std::fs::write(&export, json!({ "Findings": docs }).to_string()).unwrap();

    // 2. The campaign.
    let r1 = d.join("campaign.csv");
    let (status, stderr) = run(
        &emu,
        d,
        &[
            "update",
            export.to_str().unwrap(),
            "--workflow",
            "Status=SUPPRESSED",
            "--severity",
            "Label=LOW",
            "--note",
            "Text=accepted by risk board,UpdatedBy=campaign-7",
            "--results",
            r1.to_str().unwrap(),
            "--yes",
        ],
    );
    assert_eq!(status, 0, "{stderr}");
    for k in &keys {
        let s = snapshot(&emu, k);
        assert_eq!(
            (s.status.as_str(), s.severity.as_str()),
            ("SUPPRESSED", "LOW")
        );
    }
    let campaign = by_id(read_results(&r1));
    assert!(
        campaign
            .values()
            .all(|r| !r["applied"].is_empty() && !r["prior"].is_empty()),
        "every updated row records what was applied and what was there before"
    );

    // 3. The revert's plan sends nothing.
    emu.state.reset_counters();
    let (status, stderr) = run(&emu, d, &["revert", r1.to_str().unwrap(), "--dry-run"]);
    assert_eq!(status, 0, "{stderr}");
    assert_eq!(
        emu.state
            .counters()
            .requests_for(Operation::BatchUpdateFindings),
        0
    );

    // 4. The revert.
    let r2 = d.join("revert.csv");
    let (status, stderr) = run(
        &emu,
        d,
        &[
            "revert",
            r1.to_str().unwrap(),
            "--results",
            r2.to_str().unwrap(),
        ],
    );
    // Severity stays customer-owned after the revert (and some notes were
    // written where there were none): every finding is only partially
    // restored, which the exit status and stderr say (issue 10).
    assert_eq!(status, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("partially restored: {}", keys.len())),
        "{stderr}"
    );
    let reverted = by_id(read_results(&r2));
    assert_eq!(reverted.len(), keys.len());
    for (k, was) in keys.iter().zip(&before) {
        let now = snapshot(&emu, k);
        assert_eq!(now.status, was.status, "{k}");
        assert_eq!(now.severity, was.severity, "{k}");
        let (f, doc) = (emu.state.finding(k).unwrap(), &docs_before[&k.id]);
        assert_eq!(
            f["Severity"]["Normalized"], doc["Severity"]["Normalized"],
            "{k}: Normalized restored exactly, not the label's default"
        );
        let row = &reverted[&k.id];
        assert!(
            row["error_message"].contains("Severity: ownership cannot be handed back"),
            "{row:?}"
        );
        assert_eq!(row["outcome"], "updated", "{k}");
        match &was.note {
            Some(note) => assert_eq!(now.note.as_ref(), Some(note), "{k}"),
            None => {
                // Notes cannot be deleted: said per finding, not skipped.
                assert_eq!(
                    now.note,
                    Some(("accepted by risk board".into(), "campaign-7".into()))
                );
                assert!(
                    row["error_message"].contains("Note: the finding had no note"),
                    "{row:?}"
                );
            }
        }
    }

    // 5. Reverting the revert is the campaign again.
    let r3 = d.join("redo.csv");
    let (status, stderr) = run(
        &emu,
        d,
        &[
            "revert",
            r2.to_str().unwrap(),
            "--results",
            r3.to_str().unwrap(),
        ],
    );
    assert_eq!(status, 2, "partially restored again (ownership): {stderr}");
    for k in &keys {
        let s = snapshot(&emu, k);
        assert_eq!(
            s,
            Snapshot {
                status: "SUPPRESSED".into(),
                severity: "LOW".into(),
                note: Some(("accepted by risk board".into(), "campaign-7".into())),
            },
            "{k}"
        );
    }
}

#[test]
fn a_run_without_recorded_state_cannot_be_reverted_and_says_so() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys = emu.state.seed_synthetic(&SyntheticSpec {
        count: 20,
        seed: 78,
        ..SyntheticSpec::default()
    });
    // A bare identifier list records no state.
    let input = d.join("ids.csv");
    write_csv(
        &input,
        "Id,ProductArn",
        &keys.iter().map(key_row).collect::<Vec<_>>(),
    );
    let r1 = d.join("r1.csv");
    let (status, stderr) = run(
        &emu,
        d,
        &[
            "update",
            input.to_str().unwrap(),
            "--workflow",
            "Status=RESOLVED",
            "--results",
            r1.to_str().unwrap(),
        ],
    );
    assert_eq!(status, 0, "{stderr}");
    emu.state.reset_counters();
    let r2 = d.join("r2.csv");
    let (status, stderr) = run(
        &emu,
        d,
        &[
            "revert",
            r1.to_str().unwrap(),
            "--results",
            r2.to_str().unwrap(),
        ],
    );
    assert_eq!(status, 2, "nothing could be reverted: {stderr}");
    assert_eq!(
        emu.state
            .counters()
            .requests_for(Operation::BatchUpdateFindings),
        0
    );
    let rows = read_results(&r2);
    assert_eq!(rows.len(), keys.len());
    for row in rows {
        assert_eq!(row["outcome"], "invalid");
        assert!(
            row["error_message"].contains("Workflow.Status: the input did not record its value"),
            "{row:?}"
        );
    }
}

#[test]
fn revert_has_the_guardrails_of_update_without_a_terminal() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys = emu.state.seed_synthetic(&SyntheticSpec {
        count: 30,
        seed: 5,
        ..SyntheticSpec::default()
    });
    let docs: Vec<Value> = keys.iter().map(|k| emu.state.finding(k).unwrap()).collect();
    let export = d.join("export.json");
    std::fs::write(&export, json!({ "Findings": docs }).to_string()).unwrap();
    let r1 = d.join("campaign.csv");
    let (status, stderr) = run(
        &emu,
        d,
        &[
            "update",
            export.to_str().unwrap(),
            "--workflow",
            "Status=SUPPRESSED",
            "--results",
            r1.to_str().unwrap(),
        ],
    );
    assert_eq!(status, 0, "{stderr}");
    emu.state.reset_counters();
    let sent = || {
        emu.state
            .counters()
            .requests_for(Operation::BatchUpdateFindings)
    };
    let r2 = d.join("revert.csv");
    let revert = |extra: &[&str]| {
        let mut args = vec![
            "revert",
            r1.to_str().unwrap(),
            "--results",
            r2.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run(&emu, d, &args)
    };
    // --max-findings refuses.
    let (status, stderr) = revert(&["--max-findings", "10"]);
    assert_eq!(status, 1, "{stderr}");
    assert!(stderr.contains("more than --max-findings 10"), "{stderr}");
    // Above --confirm-above: a run tag is needed, and without a terminal
    // (the test's stdin is not one) --yes.
    let (status, stderr) = revert(&["--confirm-above", "10"]);
    assert_eq!(status, 1, "{stderr}");
    assert!(stderr.contains("run tag"), "{stderr}");
    let (status, stderr) = revert(&["--confirm-above", "10", "--run-tag", "undo-7"]);
    assert_eq!(status, 1, "{stderr}");
    assert!(stderr.contains("no terminal to confirm"), "{stderr}");
    assert_eq!(sent(), 0, "nothing sent by a refused revert");
    assert!(!r2.exists(), "no results file for a refused revert");
    let (status, stderr) = revert(&["--confirm-above", "10", "--run-tag", "undo-7", "--yes"]);
    assert_eq!(status, 0, "{stderr}");
    for (k, doc) in keys.iter().zip(&docs) {
        let f = emu.state.finding(k).unwrap();
        assert_eq!(f["Workflow"], doc["Workflow"], "{k}");
        assert_eq!(f["UserDefinedFields"]["sechub-triage-run"], "undo-7");
    }
}

/// The first number after `line ` in `text`.
fn line_named(text: &str) -> u64 {
    let at = text
        .find(": line ")
        .unwrap_or_else(|| panic!("no line named: {text}"));
    text[at + 7..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

#[test]
fn an_unfinished_campaign_with_unknown_rows_is_reverted_to_the_state_before() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys = emu.state.seed_synthetic(&SyntheticSpec {
        count: 600,
        seed: 41,
        ..SyntheticSpec::default()
    });
    let docs: Vec<Value> = keys.iter().map(|k| emu.state.finding(k).unwrap()).collect();
    let export = d.join("export.json");
    std::fs::write(&export, json!({ "Findings": docs }).to_string()).unwrap();
    // Every request loses its answer: about half before the service
    // applied it, the others after. The client cannot tell which: every
    // finding is unknown.
    let mut faults = emu.state.faults();
    faults.drop_connection = 0.5;
    faults.drop_after_apply = 1.0;
    emu.state.set_faults(faults);
    let r1 = d.join("campaign.csv");
    let (status, stderr) = run(
        &emu,
        d,
        &[
            "update",
            export.to_str().unwrap(),
            "--workflow",
            "Status=SUPPRESSED",
            "--results",
            r1.to_str().unwrap(),
            "--max-attempts",
            "1",
        ],
    );
    assert_eq!(status, 4, "unknown outcomes: resume later: {stderr}");
    let rows = read_results(&r1);
    assert_eq!(rows.len(), keys.len());
    let odd: Vec<_> = rows
        .iter()
        .filter(|r| r["outcome"] != "unknown" || r["applied"].is_empty() || r["prior"].is_empty())
        .collect();
    assert!(
        odd.is_empty(),
        "unknown rows record what was sent and what was there before: {} rows do not: {:?}",
        odd.len(),
        odd[0]
    );
    let applied = keys
        .iter()
        .filter(|k| emu.workflow(k) == "SUPPRESSED")
        .count();
    let was_suppressed = docs
        .iter()
        .filter(|d| d["Workflow"]["Status"] == "SUPPRESSED")
        .count();
    assert!(
        applied > was_suppressed && applied < keys.len(),
        "some requests were applied, some not: {applied} suppressed, {was_suppressed} before"
    );
    emu.state.set_faults(Default::default());

    // The revert's plan says the campaign did not finish.
    let out = triage(d)
        .args([
            "revert",
            r1.to_str().unwrap(),
            "--dry-run",
            "--output",
            "json",
        ])
        .args(["--endpoint-url", &emu.url(), "--no-progress"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["totals"]["to_update"], 600, "{plan}");
    let w = plan["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == "unfinished-campaign")
        .unwrap_or_else(|| panic!("{plan}"));
    assert_eq!(w["count"], 600);
    assert!(w["message"].as_str().unwrap().contains("did not finish"));

    // The revert restores every finding that may have been changed.
    let r2 = d.join("revert.csv");
    let report = d.join("report.json");
    let (status, stderr) = run(
        &emu,
        d,
        &[
            "revert",
            r1.to_str().unwrap(),
            "--results",
            r2.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert_eq!(status, 0, "{stderr}");
    assert!(stderr.contains("did not finish"), "{stderr}");
    for (k, doc) in keys.iter().zip(&docs) {
        let f = emu.state.finding(k).unwrap();
        assert_eq!(f["Workflow"], doc["Workflow"], "{k}");
        assert_eq!(f["Severity"], doc["Severity"], "{k}");
        assert_eq!(f.get("Note"), doc.get("Note"), "{k}");
    }
    let rep: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(rep["revert"]["unfinished_campaign"], true, "{rep}");
    assert_eq!(rep["revert"]["maybe_applied"], 600, "{rep}");
    assert_eq!(rep["revert"]["never_sent"], 0, "{rep}");
    assert_eq!(rep["revert"]["partially_restored"], 0, "{rep}");
}

#[test]
fn revert_refuses_a_damaged_results_file_as_resume_does() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys = emu.state.seed_synthetic(&SyntheticSpec {
        count: 20,
        seed: 9,
        ..SyntheticSpec::default()
    });
    let docs: Vec<Value> = keys.iter().map(|k| emu.state.finding(k).unwrap()).collect();
    let export = d.join("export.json");
    std::fs::write(&export, json!({ "Findings": docs }).to_string()).unwrap();
    let r1 = d.join("campaign.csv");
    let campaign = |results: &Path, extra: &[&str]| {
        let mut args = vec![
            "update",
            export.to_str().unwrap(),
            "--workflow",
            "Status=SUPPRESSED",
            "--results",
            results.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run(&emu, d, &args)
    };
    let (status, stderr) = campaign(&r1, &[]);
    assert_eq!(status, 0, "{stderr}");
    let text = std::fs::read_to_string(&r1).unwrap();
    let header = std::fs::read_to_string(d.join("campaign.csv.journal.json")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // A garbage line, and a row with an unbalanced quote, in the middle.
    let mut garbage = lines.clone();
    garbage.insert(6, "this is not a results row");
    let mut quote = lines.clone();
    let cut = quote[4].replacen(',', ",\"", 1);
    quote[4] = &cut;
    for (name, damaged) in [("garbage", garbage), ("quote", quote)] {
        let copy = d.join(format!("{name}.csv"));
        std::fs::write(&copy, damaged.join("\n") + "\n").unwrap();
        std::fs::write(d.join(format!("{name}.csv.journal.json")), &header).unwrap();
        emu.state.reset_counters();
        let (status, reverting) = run(&emu, d, &["revert", copy.to_str().unwrap(), "--dry-run"]);
        assert_eq!(status, 1, "{name}: {reverting}");
        let line = line_named(&reverting);
        assert!(
            reverting.contains(&format!("line {line}: not a results row")),
            "{name}: {reverting}"
        );
        if name == "garbage" {
            assert_eq!(line, 7, "{reverting}");
        }
        // `--resume` refuses the same file, naming the same line.
        let (status, resuming) = campaign(&copy, &["--resume"]);
        assert_eq!(status, 1, "{name}: {resuming}");
        assert!(
            resuming.contains(&format!("line {line}: not a results row")),
            "{name}: {resuming} / {reverting}"
        );
        let (status, stderr) = run(&emu, d, &["revert", copy.to_str().unwrap()]);
        assert_eq!(status, 1, "{name}: {stderr}");
        assert_eq!(
            emu.state
                .counters()
                .requests_for(Operation::BatchUpdateFindings),
            0,
            "{name}: nothing sent"
        );
    }
}

#[test]
fn findings_in_flight_when_the_campaign_was_killed_are_reverted() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // One Region, three requests: the circuit breaker (10 failed requests
    // in a row in a Region) does not stop the run before the kill.
    let keys = emu.state.seed_synthetic(&SyntheticSpec {
        count: 300,
        seed: 12,
        regions: vec!["us-east-1".into()],
        ..SyntheticSpec::default()
    });
    let docs: Vec<Value> = keys.iter().map(|k| emu.state.finding(k).unwrap()).collect();
    let export = d.join("export.json");
    std::fs::write(&export, json!({ "Findings": docs }).to_string()).unwrap();
    // Every request is applied and its answer lost: the findings wait to
    // be sent again, with no outcome recorded, when the run is killed.
    let mut faults = emu.state.faults();
    faults.drop_after_apply = 1.0;
    emu.state.set_faults(faults);
    let r1 = d.join("campaign.csv");
    let mut child = triage(d)
        .args(["update", export.to_str().unwrap()])
        .args(["--workflow", "Status=SUPPRESSED"])
        .args(["--results", r1.to_str().unwrap(), "--max-attempts", "20"])
        .args(["--endpoint-url", &emu.url(), "--no-progress"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while emu.state.update_counts().len() < keys.len() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "the campaign never reached every finding"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL: no outcome of the requests out is recorded
    child.wait().unwrap();
    emu.state.set_faults(Default::default());
    let settled: std::collections::HashSet<String> = if r1.exists() {
        read_results(&r1)
            .into_iter()
            .filter(|r| r["outcome"] != "not_attempted" || r["attempts"] != "0")
            .map(|r| r["Id"].clone())
            .collect()
    } else {
        Default::default()
    };
    let crashed = keys.iter().filter(|k| !settled.contains(&k.id)).count();
    assert!(crashed > 0, "the kill left findings without an outcome");
    let log = d.join("campaign.csv.inflight.csv");
    assert!(
        read_results(&log).len() >= keys.len(),
        "the in-flight log names every finding sent"
    );

    let r2 = d.join("revert.csv");
    let report = d.join("report.json");
    let (status, stderr) = run(
        &emu,
        d,
        &[
            "revert",
            r1.to_str().unwrap(),
            "--results",
            r2.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert_eq!(status, 0, "{stderr}");
    assert!(stderr.contains("did not finish"), "{stderr}");
    assert!(
        stderr.contains("in flight when a run was killed"),
        "{stderr}"
    );
    for (k, doc) in keys.iter().zip(&docs) {
        let f = emu.state.finding(k).unwrap();
        assert_eq!(f["Workflow"], doc["Workflow"], "{k}");
    }
    let rep: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(rep["revert"]["unfinished_campaign"], true, "{rep}");
    assert_eq!(
        rep["revert"]["in_flight_at_crash"].as_u64(),
        Some(crashed as u64),
        "{rep}"
    );
    let reverted = read_results(&r2);
    assert_eq!(
        reverted
            .iter()
            .filter(|r| r["outcome"] == "updated")
            .count(),
        keys.len(),
        "each finding restored once: {reverted:?}"
    );
}

#[test]
fn an_unset_verification_state_cannot_be_restored_and_the_revert_says_so() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let template = sechub_triage::emulator::EmulatorState::default();
    let seeded = template.seed_synthetic(&SyntheticSpec {
        count: 2,
        seed: 3,
        ..SyntheticSpec::default()
    });
    // One finding without a VerificationState, one with it.
    let keys: Vec<FindingKey> = seeded
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let mut f = template.finding(k).unwrap();
            let obj = f.as_object_mut().unwrap();
            obj.remove("VerificationState");
            if i == 1 {
                obj.insert("VerificationState".into(), json!("UNKNOWN"));
            }
            emu.state.insert_finding(f).unwrap()
        })
        .collect();
    let docs: Vec<Value> = keys.iter().map(|k| emu.state.finding(k).unwrap()).collect();
    let export = d.join("export.json");
    std::fs::write(&export, json!({ "Findings": docs }).to_string()).unwrap();
    let r1 = d.join("campaign.csv");
    let (status, stderr) = run(
        &emu,
        d,
        &[
            "update",
            export.to_str().unwrap(),
            "--verification-state",
            "BENIGN_POSITIVE",
            "--results",
            r1.to_str().unwrap(),
        ],
    );
    assert_eq!(status, 0, "{stderr}");
    let r2 = d.join("revert.csv");
    let (status, stderr) = run(
        &emu,
        d,
        &[
            "revert",
            r1.to_str().unwrap(),
            "--results",
            r2.to_str().unwrap(),
        ],
    );
    let rows = by_id(read_results(&r2));
    // The unset one cannot be unset through the API: said per finding
    // (nothing else to restore: invalid), exit status 2; it is not set to
    // UNKNOWN instead.
    assert_eq!(status, 2, "{stderr}");
    let unset = &rows[&keys[0].id];
    assert_eq!(unset["outcome"], "invalid", "{unset:?}");
    assert!(
        unset["error_message"].contains("VerificationState: it was unset"),
        "{unset:?}"
    );
    assert_eq!(
        emu.state.finding(&keys[0]).unwrap()["VerificationState"],
        "BENIGN_POSITIVE",
        "left as the campaign set it, never written UNKNOWN"
    );
    assert_eq!(rows[&keys[1].id]["outcome"], "updated");
    assert_eq!(
        emu.state.finding(&keys[1]).unwrap()["VerificationState"],
        "UNKNOWN",
        "restored"
    );
}
