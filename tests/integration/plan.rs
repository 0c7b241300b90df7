//! Plans, guardrails and the note policy, end to end: the real binary
//! against the emulator on 127.0.0.1, with inputs that are ASFF exports in
//! the `aws securityhub get-findings` shape (made from the emulator's own
//! stored findings, which it renders as GetFindings returns them).
//!
//! What these prove: a plan sends nothing (the emulator's counters stay at
//! zero) and is the same whether or not the endpoint answers; its counts
//! are those of the real run that follows; guardrails refuse before any
//! call; each note mode leaves the emulator's stored notes as documented.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use sechub_triage::emulator::{EmulatorConfig, EmulatorState, SyntheticSpec};
use sechub_triage::model::FindingKey;

use crate::support::*;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// Writes `findings` as `aws securityhub get-findings` output.
fn write_export(path: &Path, findings: &[Value]) {
    let doc = json!({ "Findings": findings });
    std::fs::write(path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
}

/// The stored findings, as GetFindings returns them.
fn export_of(emu: &Emu, keys: &[FindingKey]) -> Vec<Value> {
    keys.iter()
        .map(|k| emu.state.finding(k).expect("stored"))
        .collect()
}

fn key_of(f: &Value) -> FindingKey {
    FindingKey::new(f["Id"].as_str().unwrap(), f["ProductArn"].as_str().unwrap())
}

fn outcome(summary: &Value, kind: &str) -> u64 {
    summary["outcomes"][kind].as_u64().unwrap_or(0)
}

/// A port nothing listens on (bound, then released).
fn dead_endpoint() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

/// An export of 700 stored findings in two Regions, with 25 repeats, 2
/// rejected records and 10 findings the emulator does not hold.
fn campaign_export(emu: &Emu, dir: &Path) -> (PathBuf, Vec<FindingKey>) {
    let keys = emu.state.seed_synthetic(&SyntheticSpec {
        count: 700,
        seed: 61,
        regions: vec!["us-east-1".into(), "eu-west-1".into()],
        accounts: vec!["111122223333".into(), "444455556666".into()],
        ..SyntheticSpec::default()
    });
    let mut findings = export_of(emu, &keys);
    for i in 0..25 {
        findings.push(findings[i * 27].clone());
    }
    for i in 0..10 {
        let mut ghost = findings[i].clone();
        ghost["Id"] = json!(format!("ghost-finding-{i}"));
        ghost["Workflow"] = json!({ "Status": "NEW" });
        findings.push(ghost);
    }
    let mut blank = findings[1].clone();
    blank["Id"] = json!("   ");
    findings.push(blank);
    let mut not_a_product = findings[2].clone();
    not_a_product["ProductArn"] = json!("arn:aws:guardduty:us-east-1:111122223333:detector/x");
    findings.push(not_a_product);
    let path = dir.join("export.json");
    write_export(&path, &findings);
    (path, keys)
}

const SUPPRESS: [&str; 2] = ["--workflow", "Status=SUPPRESSED"];

#[test]
fn a_plan_sends_nothing_and_its_counts_are_the_runs() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let (export, keys) = campaign_export(&emu, dir.path());
    let export = export.to_str().unwrap();
    let plan_args = |endpoint: &str, format: &str| {
        let mut a: Vec<String> = vec!["plan".into(), export.into()];
        a.extend(SUPPRESS.map(String::from));
        a.extend(
            [
                "--skip-unchanged",
                "--run-tag",
                "campaign-61",
                "--endpoint-url",
                endpoint,
                "--output",
                format,
            ]
            .map(String::from),
        );
        a
    };

    let out = triage(dir.path())
        .args(plan_args(&emu.url(), "json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(emu.requests(), 0, "a plan sends nothing");
    let plan: Value = serde_json::from_slice(&out.stdout).expect("JSON plan");

    // The same plan with the endpoint down and no credentials at all.
    let offline = triage(dir.path())
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .args(plan_args(&dead_endpoint(), "json"))
        .output()
        .unwrap();
    assert_eq!(offline.status.code(), Some(0), "{}", show(&offline));
    assert_eq!(
        text(&offline.stdout),
        text(&out.stdout),
        "same plan without AWS"
    );
    let text_online = triage(dir.path())
        .args(plan_args(&emu.url(), "text"))
        .output()
        .unwrap();
    let text_offline = triage(dir.path())
        .args(plan_args(&dead_endpoint(), "text"))
        .output()
        .unwrap();
    assert_eq!(text(&text_online.stdout), text(&text_offline.stdout));
    assert!(
        text(&text_online.stdout).contains("Requests (fewest possible)"),
        "{}",
        show(&text_online)
    );
    assert_eq!(emu.requests(), 0, "still nothing sent");

    let t = &plan["totals"];
    let n = |k: &str| t[k].as_u64().unwrap();
    assert_eq!(n("records"), 700 + 25 + 10 + 2);
    assert_eq!(n("duplicates"), 25);
    assert_eq!(n("rejected"), 2);
    // Some findings of the synthetic set are already SUPPRESSED; the
    // export says which, and they are skipped (not sent just to be tagged).
    assert!(n("unchanged") > 0, "{t}");
    assert_eq!(
        n("to_update") + n("unchanged") + n("duplicates") + n("rejected"),
        n("records")
    );
    assert_eq!(
        plan["by_region"].as_object().unwrap().len(),
        2,
        "{}",
        plan["by_region"]
    );
    assert_eq!(plan["by_account"].as_object().unwrap().len(), 2);
    assert_eq!(plan["rejected"]["samples"].as_array().unwrap().len(), 2);
    assert_eq!(plan["guardrails"]["verdict"], "proceed");

    // The real run.
    let results = dir.path().join("results.csv");
    let mut run_args = plan_args(&emu.url(), "json");
    run_args[0] = "update".into();
    run_args.extend(["--no-progress", "--results", results.to_str().unwrap()].map(String::from));
    let out = triage(dir.path()).args(&run_args).output().unwrap();
    // Rejected rows and ghosts make it a partial run.
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
    assert_eq!(summary["records"].as_u64().unwrap(), n("records"));
    assert_eq!(
        outcome(&summary, "updated") + outcome(&summary, "failed"),
        n("to_update")
    );
    assert_eq!(outcome(&summary, "failed"), 10, "the ghosts");
    assert_eq!(outcome(&summary, "unchanged"), n("unchanged"));
    assert_eq!(outcome(&summary, "duplicate"), n("duplicates"));
    assert_eq!(outcome(&summary, "invalid"), n("rejected"));
    let c = emu.state.counters();
    assert_eq!(c.finding_outcome("Processed"), outcome(&summary, "updated"));
    // The plan's requests are the fewest possible; a run may need more
    // (a partial chunk leaves early when it waited long enough).
    let planned = plan["requests"]["requests"].as_u64().unwrap();
    let sent = c.requests_for(sechub_triage::emulator::Operation::BatchUpdateFindings);
    assert!(sent >= planned, "{sent} requests sent, {planned} planned");
    assert_eq!(sent, summary["requests"].as_u64().unwrap());

    // The run tag is on every updated finding, and only there.
    let res = read_results(&results);
    let mut tagged = 0;
    for r in res.iter().filter(|r| r["outcome"] == "updated") {
        let k = FindingKey::new(&r["Id"], &r["ProductArn"]);
        let f = emu.state.finding(&k).unwrap();
        assert_eq!(f["UserDefinedFields"]["sechub-triage-run"], "campaign-61");
        assert_eq!(emu.workflow(&k), "SUPPRESSED");
        tagged += 1;
    }
    assert_eq!(tagged, outcome(&summary, "updated"));
    for r in res.iter().filter(|r| r["outcome"] == "unchanged") {
        let f = emu
            .state
            .finding(&FindingKey::new(&r["Id"], &r["ProductArn"]))
            .unwrap();
        assert!(
            f["UserDefinedFields"].get("sechub-triage-run").is_none(),
            "{f}"
        );
    }
    assert!(keys.iter().all(|k| emu.workflow(k) == "SUPPRESSED"));
}

#[test]
fn guardrails_refuse_before_any_call() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let keys = emu.state.seed_synthetic(&SyntheticSpec {
        count: 1_200,
        seed: 62,
        ..SyntheticSpec::default()
    });
    let export = dir.path().join("export.json");
    write_export(&export, &export_of(&emu, &keys));
    let results = dir.path().join("results.csv");
    let run = |extra: &[&str]| {
        let out = triage(dir.path())
            .args(["update", export.to_str().unwrap()])
            .args(["--workflow", "Status=SUPPRESSED"])
            .args(["--endpoint-url", &emu.url(), "--no-progress"])
            .args(["--results", results.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", show(&out));
        assert_eq!(emu.requests(), 0, "refused before any call: {}", show(&out));
        assert!(!results.exists(), "no results file: the run never began");
        text(&out.stderr)
    };

    let err = run(&["--max-findings", "1000", "--yes", "--run-tag", "t"]);
    assert!(
        err.contains("1200 findings to update is more than --max-findings 1000"),
        "{err}"
    );
    // Above --confirm-above (1000 by default), without a terminal.
    let err = run(&["--run-tag", "t"]);
    assert!(err.contains("add --yes"), "{err}");
    assert!(err.contains("more than --confirm-above 1000"), "{err}");
    // --yes is not enough without a run tag.
    let err = run(&["--yes"]);
    assert!(err.contains("run tag"), "{err}");
    // The stated scope is exceeded (the samples span 3 accounts, 4 Regions).
    let err = run(&["--yes", "--run-tag", "t", "--expect-accounts", "2"]);
    assert!(
        err.contains("findings from 3 accounts, expected at most 2"),
        "{err}"
    );
    let err = run(&[
        "--yes",
        "--run-tag",
        "t",
        "--expect-regions",
        "us-east-1,eu-west-1",
    ]);
    assert!(err.contains("not in the expected list"), "{err}");
    // A dry run prints the plan, refusal included, and sends nothing either.
    let out = triage(dir.path())
        .args(["update", "--dry-run", export.to_str().unwrap()])
        .args(["--workflow", "Status=SUPPRESSED", "--max-findings", "10"])
        .args(["--endpoint-url", &emu.url()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        text(&out.stdout).contains("the run would be REFUSED"),
        "{}",
        show(&out)
    );
    assert_eq!(emu.requests(), 0);

    // Within the guardrails the same run goes ahead.
    let out = triage(dir.path())
        .args(["update", export.to_str().unwrap()])
        .args(["--workflow", "Status=SUPPRESSED"])
        .args(["--endpoint-url", &emu.url(), "--no-progress"])
        .args(["--max-findings", "1200", "--yes", "--run-tag", "q3"])
        .args(["--expect-accounts", "3", "--expect-regions", "4"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(emu.state.counters().finding_outcome("Processed"), 1_200);
}

#[test]
fn standard_input_is_planned_and_run_from_one_saved_copy() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let keys = emu.state.seed_synthetic(&SyntheticSpec {
        count: 60,
        seed: 63,
        ..SyntheticSpec::default()
    });
    let mut findings = export_of(&emu, &keys);
    findings.push(findings[0].clone());
    let doc = serde_json::to_vec(&json!({ "Findings": findings })).unwrap();
    let results = dir.path().join("results.csv");
    let mut child = triage(dir.path())
        .args(["update", "-", "--workflow", "Status=NOTIFIED"])
        .args(["--endpoint-url", &emu.url(), "--no-progress"])
        // Low threshold: the plan pass decides, so stdin must be read twice.
        .args(["--confirm-above", "10", "--yes", "--run-tag", "stdin-run"])
        .args(["--results", results.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&doc).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let res = read_results(&results);
    assert_eq!(res.len(), 61);
    assert!(res.iter().all(|r| r["file"] == "-"), "named as given");
    assert_eq!(res.iter().filter(|r| r["outcome"] == "updated").count(), 60);
    assert!(keys.iter().all(|k| emu.workflow(k) == "NOTIFIED"));
    // Without --yes the same pipe is refused before any call.
    let before = emu.requests();
    let mut child = triage(dir.path())
        .args(["update", "-", "--workflow", "Status=NEW"])
        .args(["--endpoint-url", &emu.url(), "--no-progress"])
        .args(["--confirm-above", "10", "--run-tag", "stdin-run"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&doc).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(emu.requests(), before);
}

/// Four findings with known notes: a short note, none, a note that fills
/// almost the whole 512 characters, and one that already ends with the
/// campaign's text.
fn noted_findings(emu: &Emu) -> Vec<FindingKey> {
    let template = EmulatorState::default();
    let keys = template.seed_synthetic(&SyntheticSpec {
        count: 4,
        seed: 64,
        regions: vec!["us-east-1".into()],
        ..SyntheticSpec::default()
    });
    let notes = [
        Some("JIRA-101 owned by team A"),
        None,
        Some(&*"x".repeat(500)),
        Some("JIRA-104 | accepted risk"),
    ];
    keys.iter()
        .zip(notes)
        .map(|(k, note)| {
            let mut f = template.finding(k).unwrap();
            let obj = f.as_object_mut().unwrap();
            obj.remove("Note");
            if let Some(text) = note {
                obj.insert(
                    "Note".into(),
                    json!({"Text": text, "UpdatedBy": "ticket-bot", "UpdatedAt": "2026-10-01T00:00:00.000Z"}),
                );
            }
            emu.state.insert_finding(f).unwrap()
        })
        .collect()
}

fn run_note_mode(
    emu: &Emu,
    dir: &Path,
    input: &Path,
    mode: &str,
    decision: &[&str],
) -> Vec<HashMap<String, String>> {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let results = dir.join(format!("results-{mode}-{n}.csv"));
    let out = triage(dir)
        .args(["update", input.to_str().unwrap()])
        .args(decision)
        .args(["--note-mode", mode])
        .args(["--endpoint-url", &emu.url(), "--no-progress"])
        .args(["--results", results.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    read_results(&results)
}

const NOTE_DECISION: [&str; 4] = [
    "--workflow",
    "Status=SUPPRESSED",
    "--note",
    "Text=accepted risk,UpdatedBy=campaign-7",
];

#[test]
fn note_mode_replace_overwrites_every_note() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let keys = noted_findings(&emu);
    let export = dir.path().join("export.json");
    write_export(&export, &export_of(&emu, &keys));
    run_note_mode(&emu, dir.path(), &export, "replace", &NOTE_DECISION);
    for k in &keys {
        assert_eq!(
            emu.note(k),
            Some(("accepted risk".into(), "campaign-7".into()))
        );
        assert_eq!(emu.workflow(k), "SUPPRESSED");
    }
}

#[test]
fn note_mode_append_keeps_the_existing_text() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let keys = noted_findings(&emu);
    let export = dir.path().join("export.json");
    write_export(&export, &export_of(&emu, &keys));

    // The plan says what will happen to each note first.
    let out = triage(dir.path())
        .args(["plan", export.to_str().unwrap()])
        .args(NOTE_DECISION)
        .args(["--note-mode", "append", "--output", "json"])
        .output()
        .unwrap();
    let plan: Value = serde_json::from_slice(&out.stdout).expect("plan");
    assert_eq!(plan["notes"]["appended"], 1, "{}", plan["notes"]);
    assert_eq!(plan["notes"]["written (no note before)"], 1);
    assert_eq!(plan["notes"]["not appended (no room)"], 1);
    assert_eq!(plan["notes"]["already appended"], 1);
    assert_eq!(plan["warnings"][0]["code"], "note-cut");

    let res = run_note_mode(&emu, dir.path(), &export, "append", &NOTE_DECISION);
    let by = |s: &str| ("".to_owned() + s, "campaign-7".to_owned());
    assert_eq!(
        emu.note(&keys[0]),
        Some(by("JIRA-101 owned by team A | accepted risk"))
    );
    assert_eq!(emu.note(&keys[1]), Some(by("accepted risk")));
    // No room: the existing text is never cut; the campaign's name is set.
    assert_eq!(emu.note(&keys[2]), Some(by(&"x".repeat(500))));
    assert_eq!(emu.note(&keys[3]), Some(by("JIRA-104 | accepted risk")));
    let row = res.iter().find(|r| r["Id"] == keys[2].id).unwrap();
    assert_eq!(row["outcome"], "updated");
    assert!(row["error_message"].contains("no room"), "{row:?}");
    let row = res.iter().find(|r| r["Id"] == keys[0].id).unwrap();
    assert!(row["error_message"].contains("appended"), "{row:?}");
    assert!(keys.iter().all(|k| emu.workflow(k) == "SUPPRESSED"));
}

#[test]
fn note_mode_keep_leaves_existing_notes_and_applies_the_rest() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let keys = noted_findings(&emu);
    let export = dir.path().join("export.json");
    write_export(&export, &export_of(&emu, &keys));
    let res = run_note_mode(&emu, dir.path(), &export, "keep", &NOTE_DECISION);
    let bot = |s: &str| Some((s.to_owned(), "ticket-bot".to_owned()));
    assert_eq!(emu.note(&keys[0]), bot("JIRA-101 owned by team A"));
    assert_eq!(
        emu.note(&keys[1]),
        Some(("accepted risk".into(), "campaign-7".into())),
        "no note before: written"
    );
    assert_eq!(emu.note(&keys[2]), bot(&"x".repeat(500)));
    assert_eq!(emu.note(&keys[3]), bot("JIRA-104 | accepted risk"));
    assert!(keys.iter().all(|k| emu.workflow(k) == "SUPPRESSED"));
    assert!(res.iter().all(|r| r["outcome"] == "updated"), "{res:?}");
    let row = res.iter().find(|r| r["Id"] == keys[0].id).unwrap();
    assert!(row["error_message"].contains("kept"), "{row:?}");
}

#[test]
fn note_mode_keep_writes_no_note_where_the_input_does_not_say() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let keys = noted_findings(&emu);
    // A list of identifiers only: nothing says which findings have notes.
    let list = dir.path().join("ids.csv");
    let mut csv = String::from("Id,ProductArn\n");
    for k in &keys {
        csv.push_str(&format!("{},{}\n", k.id, k.product_arn));
    }
    std::fs::write(&list, csv).unwrap();
    let res = run_note_mode(&emu, dir.path(), &list, "keep", &NOTE_DECISION);
    assert!(res.iter().all(|r| r["outcome"] == "updated"), "{res:?}");
    assert_eq!(
        emu.note(&keys[1]),
        None,
        "not written: it might have had one"
    );
    assert_eq!(
        emu.note(&keys[0]),
        Some(("JIRA-101 owned by team A".into(), "ticket-bot".into()))
    );
    assert!(keys.iter().all(|k| emu.workflow(k) == "SUPPRESSED"));

    // A decision that is only a note leaves nothing to send: zero calls.
    let before = emu.requests();
    let res = run_note_mode(
        &emu,
        dir.path(),
        &list,
        "keep",
        &["--note", "Text=accepted risk,UpdatedBy=campaign-7"],
    );
    assert!(res.iter().all(|r| r["outcome"] == "unchanged"), "{res:?}");
    assert!(
        res[0]["error_message"].contains("does not record"),
        "{res:?}"
    );
    assert_eq!(emu.requests(), before);
}

#[test]
fn the_plan_warns_about_resolving_failing_controls() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let keys = emu.state.seed_synthetic(&SyntheticSpec {
        count: 300,
        seed: 65,
        ..SyntheticSpec::default()
    });
    let findings = export_of(&emu, &keys);
    let failing_controls = findings
        .iter()
        .filter(|f| {
            f["GeneratorId"]
                .as_str()
                .is_some_and(|g| g.starts_with("security-control/"))
                && matches!(
                    f["Compliance"]["Status"].as_str(),
                    Some("FAILED") | Some("WARNING")
                )
        })
        .count() as u64;
    assert!(failing_controls > 10, "the samples hold failing controls");
    let export = dir.path().join("export.json");
    write_export(&export, &findings);
    let out = triage(dir.path())
        .args(["plan", export.to_str().unwrap()])
        .args(["--workflow", "Status=RESOLVED", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let w = plan["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == "resolved-failing-controls")
        .expect("warning");
    assert_eq!(w["count"].as_u64(), Some(failing_controls));
    assert!(w["message"].as_str().unwrap().contains("SUPPRESSED"));
    let sample = key_of(
        findings
            .iter()
            .find(|f| f["Id"] == w["samples"][0]["id"])
            .unwrap(),
    );
    assert!(sample.id.contains("security-control/"));
}

/// The interactive confirmation, on a real terminal: `script` (util-linux)
/// gives the binary a pseudo-terminal and types the answer.
#[test]
fn on_a_terminal_the_run_asks_and_only_yes_goes_ahead() {
    let Some(script) = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        eprintln!("no `script` here: the terminal path is covered by cli::plan's unit tests only");
        return;
    };
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let keys = emu.state.seed_synthetic(&SyntheticSpec {
        count: 40,
        seed: 66,
        ..SyntheticSpec::default()
    });
    let export = dir.path().join("export.json");
    write_export(&export, &export_of(&emu, &keys));
    let ask = |answer: &str| {
        let line = format!(
            "{BIN} update {} --workflow Status=NOTIFIED --confirm-above 10 --run-tag tty \
             --endpoint-url {} --no-progress --output json",
            export.display(),
            emu.url()
        );
        let mut child = with_test_env(Command::new(script), dir.path())
            .args(["-qec", &line, "/dev/null"])
            .env_remove("SHELL")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{script}: {e}"));
        // The answer is typed at once and the terminal kept open until the
        // run ends (closing it early would hang up on the program).
        let mut tty = child.stdin.take().unwrap();
        tty.write_all(format!("{answer}\n").as_bytes()).unwrap();
        let status = child.wait().unwrap();
        drop(tty);
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_end(&mut stdout)
            .unwrap();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_end(&mut stderr)
            .unwrap();
        Output {
            status,
            stdout,
            stderr,
        }
    };
    let out = ask("no");
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let screen = text(&out.stdout);
    assert!(screen.contains("Type yes to go on"), "{screen}");
    assert!(
        screen.contains("not confirmed; nothing was sent"),
        "{screen}"
    );
    assert_eq!(emu.requests(), 0);
    let out = ask("yes");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(keys.iter().all(|k| emu.workflow(k) == "NOTIFIED"));
}

/// Issue 10's note edge cases through the binary: `keep` over a note with
/// the same text leaves it alone, author and time included; `append`
/// compares text without trailing whitespace (a note ending in a newline).
#[test]
fn note_mode_keep_and_append_edge_cases_end_to_end() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let template = EmulatorState::default();
    let keys = template.seed_synthetic(&SyntheticSpec {
        count: 3,
        seed: 66,
        regions: vec!["us-east-1".into()],
        ..SyntheticSpec::default()
    });
    let notes = [
        "accepted risk",             // keep: the same text, by someone else
        "JIRA-12\n",                 // append: ends in a newline
        "JIRA-13 | accepted risk\n", // append: already appended, then a newline
    ];
    let keys: Vec<FindingKey> = keys
        .iter()
        .zip(notes)
        .map(|(k, text)| {
            let mut f = template.finding(k).unwrap();
            f["Note"] = json!({"Text": text, "UpdatedBy": "alice", "UpdatedAt": "2026-10-01T00:00:00.000Z"});
            emu.state.insert_finding(f).unwrap()
        })
        .collect();
    let export = dir.path().join("export.json");
    write_export(&export, &export_of(&emu, &keys));
    let note_only = ["--note", "Text=accepted risk,UpdatedBy=campaign-7"];

    // keep: nothing to send for the first finding: its note is untouched.
    let res = run_note_mode(&emu, dir.path(), &export, "keep", &note_only);
    let row = res.iter().find(|r| r["Id"] == keys[0].id).unwrap();
    assert_eq!(row["outcome"], "unchanged", "{row:?}");
    let f = emu.state.finding(&keys[0]).unwrap();
    assert_eq!(f["Note"]["UpdatedBy"], "alice", "UpdatedBy left alone");
    assert_eq!(f["Note"]["UpdatedAt"], "2026-10-01T00:00:00.000Z");
    assert_eq!(emu.state.update_count(&keys[0]), 0);

    // append: the newline is not kept before the separator, and a note
    // that already ends with the text (then a newline) is not appended to.
    let res = run_note_mode(&emu, dir.path(), &export, "append", &note_only);
    assert_eq!(
        emu.note(&keys[1]),
        Some(("JIRA-12 | accepted risk".into(), "campaign-7".into()))
    );
    // (The text is left as it is; the campaign's name is set, as when
    // there is no room to append.)
    let row = res.iter().find(|r| r["Id"] == keys[2].id).unwrap();
    assert!(
        row["error_message"].contains("already ends with the new text"),
        "{row:?}"
    );
    assert_eq!(
        emu.note(&keys[2]),
        Some(("JIRA-13 | accepted risk\n".into(), "campaign-7".into())),
        "not appended twice"
    );
}

/// More distinct decisions than the plan holds in memory (57,344 per
/// table): its counts spill to a temporary file in TMPDIR and the plan is
/// exact; with a TMPDIR that cannot be written it says so and keeps them
/// in memory, and the plan is the same.
#[test]
fn a_plan_of_more_distinct_decisions_than_it_holds_is_exact_with_or_without_a_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let input = home.join("notes.csv");
    let n = 60_000usize;
    // Every row its own note; every 1000th row shares one "common" note,
    // so that one group is larger than the rest and is listed first.
    let rows: Vec<String> = (0..n)
        .map(|i| {
            let note = if i % 1000 == 0 {
                "common".to_owned()
            } else {
                format!("ticket {i}")
            };
            format!(
                "arn:aws:guardduty:us-east-1:111122223333:detector/d/finding/{i},\
                 arn:aws:securityhub:us-east-1::product/aws/guardduty,{note}"
            )
        })
        .collect();
    write_csv(&input, "Id,ProductArn,Note.Text", &rows);
    let plan = |tmp: &Path| {
        let out = triage(home)
            .env("TMPDIR", tmp)
            .args(["plan", input.to_str().unwrap(), "--row-decisions"])
            .args(["--note", "Text=x,UpdatedBy=me", "--output", "json"])
            .args(["--confirm-above", "100000000"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        (v, text(&out.stderr))
    };
    let (spilled, quiet) = plan(home);
    assert!(!quiet.contains("temporary file"), "{quiet}");
    let groups = n as u64 - 60 + 1;
    assert_eq!(spilled["totals"]["to_update"], n as u64);
    assert_eq!(
        spilled["requests"]["requests"], groups,
        "one request per decision"
    );
    assert_eq!(
        spilled["requests"]["by_region"]["us-east-1"]["decisions"],
        groups
    );
    assert_eq!(spilled["decisions_not_listed"], groups - 50);
    assert_eq!(spilled["decisions"][0]["findings"], 60);
    assert!(
        spilled["decisions"][0]["decision"]
            .as_str()
            .unwrap()
            .contains("common"),
        "{}",
        spilled["decisions"][0]
    );
    // Then the single ones in first-seen order: rows 1, 2, ...
    assert!(
        spilled["decisions"][1]["decision"]
            .as_str()
            .unwrap()
            .contains("\"ticket 1\""),
        "{}",
        spilled["decisions"][1]
    );
    let (held, warned) = plan(&home.join("no-such-dir"));
    assert!(
        warned.contains("cannot write the plan's") && warned.contains("kept in memory"),
        "{warned}"
    );
    assert_eq!(held, spilled);
}
