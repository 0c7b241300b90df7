//! Issue 10 beyond the layouts: conflicting duplicates stop the run before
//! any call (across files, within a file, an export beside a decision
//! sheet) unless `--duplicates first`; a duplicate row says what happened
//! to it; the plan under `--resume` covers what is left; `--region` across
//! partitions is refused.

use std::path::Path;

use crate::support::*;
use sechub_triage::emulator::{EmulatorConfig, Operation, SyntheticSpec};
use sechub_triage::model::FindingKey;
use serde_json::json;

fn seed(emu: &Emu, n: usize) -> Vec<FindingKey> {
    emu.state.seed_synthetic(&SyntheticSpec {
        count: n,
        seed: 31,
        regions: vec!["us-east-1".into()],
        ..SyntheticSpec::default()
    })
}

fn sheet(path: &Path, keys: &[FindingKey], status: &str) {
    let rows: Vec<String> = keys
        .iter()
        .map(|k| format!("{},{status}", key_row(k)))
        .collect();
    write_csv(path, "Id,ProductArn,Workflow.Status", &rows);
}

fn run(emu: &Emu, home: &Path, args: &[&str]) -> (i32, String, String) {
    let out = triage(home)
        .args(args)
        .args(["--endpoint-url", &emu.url(), "--no-progress"])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sent(emu: &Emu) -> u64 {
    emu.state
        .counters()
        .requests_for(Operation::BatchUpdateFindings)
}

#[test]
fn conflicting_rows_across_files_stop_the_run_unless_first_is_chosen() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys = seed(&emu, 5);
    let (a, b) = (d.join("a.csv"), d.join("b.csv"));
    sheet(&a, &keys, "SUPPRESSED");
    sheet(&b, &keys[..3], "RESOLVED");
    let results = d.join("r.csv");
    let args = |extra: &[&'static str]| {
        let mut v = vec![
            "update".to_owned(),
            a.display().to_string(),
            b.display().to_string(),
            "--row-decisions".into(),
            "--results".into(),
            results.display().to_string(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let a1 = args(&[]);
    let refs: Vec<&str> = a1.iter().map(String::as_str).collect();
    let (status, _, stderr) = run(&emu, d, &refs);
    assert_eq!(status, 1, "{stderr}");
    assert!(stderr.contains("different decision"), "{stderr}");
    assert!(stderr.contains("--duplicates first"), "{stderr}");
    assert_eq!(sent(&emu), 0, "nothing sent");
    // The plan names the rows.
    let mut p = a1.clone();
    p[0] = "plan".into();
    p.truncate(4);
    p.extend(["--output".into(), "json".into()]);
    let refs: Vec<&str> = p.iter().map(String::as_str).collect();
    let (status, stdout, stderr) = run(&emu, d, &refs);
    assert_eq!(status, 1, "{stderr}");
    let plan: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let w = plan["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == "duplicate-conflict")
        .unwrap_or_else(|| panic!("{plan}"));
    assert_eq!(w["count"], 3);
    assert!(
        w["samples"][0]["location"]
            .as_str()
            .unwrap()
            .contains("b.csv: row 1"),
        "{w}"
    );
    // --duplicates first: the first row wins, the others say so.
    let a2 = args(&["--duplicates", "first"]);
    let refs: Vec<&str> = a2.iter().map(String::as_str).collect();
    let (status, _, stderr) = run(&emu, d, &refs);
    assert_eq!(status, 0, "{stderr}");
    for k in &keys {
        assert_eq!(emu.workflow(k), "SUPPRESSED");
        assert_eq!(emu.state.update_count(k), 1);
    }
    let rows = read_results(&results);
    let dups: Vec<_> = rows
        .iter()
        .filter(|r| r["outcome"] == "duplicate")
        .collect();
    assert_eq!(dups.len(), 3);
    assert!(
        dups.iter()
            .all(|r| r["error_message"].contains("different decision: not sent")),
        "{dups:?}"
    );
}

#[test]
fn conflicting_rows_within_a_file_and_an_export_beside_a_sheet() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys = seed(&emu, 4);
    // Within one file: rows 1 and 3 name the same finding.
    let f = d.join("one.csv");
    let rows = vec![
        format!("{},SUPPRESSED", key_row(&keys[0])),
        format!("{},SUPPRESSED", key_row(&keys[1])),
        format!("{},RESOLVED", key_row(&keys[0])),
        // A repeat with the same decision is not a conflict.
        format!("{},SUPPRESSED", key_row(&keys[1])),
    ];
    write_csv(&f, "Id,ProductArn,Workflow.Status", &rows);
    let (status, stdout, stderr) = run(
        &emu,
        d,
        &[
            "plan",
            f.to_str().unwrap(),
            "--row-decisions",
            "--output",
            "json",
        ],
    );
    assert_eq!(status, 1, "{stderr}");
    let plan: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let w = plan["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == "duplicate-conflict")
        .unwrap_or_else(|| panic!("{plan}"));
    assert_eq!(w["count"], 1, "{w}");
    assert!(
        w["samples"][0]["location"]
            .as_str()
            .unwrap()
            .contains("row 3")
    );
    assert_eq!(plan["totals"]["duplicates"], 2);

    // The issue's `export.json decisions.csv`: the export's rows take the
    // command line's decision, the sheet's rows their own: a conflict, not
    // a silently ignored sheet.
    let docs: Vec<_> = keys.iter().map(|k| emu.state.finding(k).unwrap()).collect();
    let export = d.join("export.json");
    std::fs::write(&export, json!({ "Findings": docs }).to_string()).unwrap();
    let decisions = d.join("decisions.csv");
    sheet(&decisions, &keys[..2], "RESOLVED");
    let results = d.join("r.csv");
    let (status, _, stderr) = run(
        &emu,
        d,
        &[
            "update",
            export.to_str().unwrap(),
            decisions.to_str().unwrap(),
            "--row-decisions",
            "--workflow",
            "Status=NOTIFIED",
            "--results",
            results.to_str().unwrap(),
        ],
    );
    assert_eq!(status, 1, "{stderr}");
    assert!(stderr.contains("different decision"), "{stderr}");
    assert_eq!(sent(&emu), 0);
}

#[test]
fn the_plan_under_resume_covers_what_is_left() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys = seed(&emu, 120);
    let input = d.join("keys.csv");
    let rows: Vec<String> = keys.iter().map(key_row).collect();
    write_csv(&input, "Id,ProductArn", &rows);
    let results = d.join("r.csv");
    let common = [
        input.to_str().unwrap(),
        "--workflow",
        "Status=SUPPRESSED",
        "--results",
        results.to_str().unwrap(),
    ];
    let mut first = vec!["update"];
    first.extend_from_slice(&common);
    let (status, _, stderr) = run(&emu, d, &first);
    assert_eq!(status, 0, "{stderr}");
    // Everything is done: a resume with --max-findings 10 has nothing left
    // and is not refused (it used to count all 120 rows).
    let mut resume = vec!["update"];
    resume.extend_from_slice(&common);
    resume.extend(["--resume", "--max-findings", "10"]);
    emu.state.reset_counters();
    let (status, _, stderr) = run(&emu, d, &resume);
    assert_eq!(status, 0, "{stderr}");
    assert_eq!(sent(&emu), 0);
    let mut plan = vec!["plan"];
    plan.extend_from_slice(&common);
    plan.extend(["--resume", "--max-findings", "10", "--output", "json"]);
    let (status, stdout, stderr) = run(&emu, d, &plan);
    assert_eq!(status, 0, "{stderr}");
    let p: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(p["totals"]["already_done"], 120, "{p}");
    assert_eq!(p["totals"]["to_update"], 0);
}

#[test]
fn region_across_partitions_is_refused_by_the_plan() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = d.join("mixed.csv");
    write_csv(
        &f,
        "Id,ProductArn",
        &[
            "a-1,arn:aws:securityhub:us-east-1::product/aws/guardduty".into(),
            "c-1,arn:aws-cn:securityhub:cn-north-1::product/aws/guardduty".into(),
            "g-1,arn:aws-us-gov:securityhub:us-gov-west-1::product/aws/guardduty".into(),
        ],
    );
    let (status, stdout, stderr) = run(
        &emu,
        d,
        &[
            "plan",
            f.to_str().unwrap(),
            "--workflow",
            "Status=SUPPRESSED",
            "--region",
            "us-east-1",
            "--output",
            "json",
        ],
    );
    assert_eq!(status, 1, "{stderr}");
    let p: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let w = p["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == "cross-partition")
        .unwrap_or_else(|| panic!("{p}"));
    assert_eq!(w["count"], 2);
    assert_eq!(p["guardrails"]["verdict"], "refuse");
    // update refuses before any call.
    let (status, _, stderr) = run(
        &emu,
        d,
        &[
            "update",
            f.to_str().unwrap(),
            "--workflow",
            "Status=SUPPRESSED",
            "--region",
            "us-east-1",
        ],
    );
    assert_eq!(status, 1, "{stderr}");
    assert!(stderr.contains("partition"), "{stderr}");
    assert_eq!(sent(&emu), 0);
}

#[test]
fn yes_still_logs_the_plans_warnings_as_json() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys = seed(&emu, 3);
    let f = d.join("keys.csv");
    let rows: Vec<String> = keys.iter().map(key_row).collect();
    write_csv(&f, "Id,ProductArn", &rows);
    let (status, _, stderr) = run(
        &emu,
        d,
        &[
            "--log-format",
            "json",
            "update",
            f.to_str().unwrap(),
            "--severity",
            "Label=LOW",
            "--yes",
        ],
    );
    assert_eq!(status, 0, "{stderr}");
    let warned: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["level"] == "WARN")
        .collect();
    assert!(
        warned.iter().any(|v| v["code"] == "ownership-change"),
        "{stderr}"
    );
}

#[test]
fn duplicates_last_applies_the_last_rows_decision_once() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys = seed(&emu, 6);
    let (a, b) = (d.join("a.csv"), d.join("b.csv"));
    // a: findings 0-4 SUPPRESSED. b: 0-2 RESOLVED (conflicts across files),
    // 3 SUPPRESSED again (a plain repeat), and finding 5 three times within
    // the file, NOTIFIED, RESOLVED, NOTIFIED: its last row asks what its
    // first did, and is still the one applied.
    sheet(&a, &keys[..5], "SUPPRESSED");
    let mut rows: Vec<String> = keys[..3]
        .iter()
        .map(|k| format!("{},RESOLVED", key_row(k)))
        .collect();
    rows.push(format!("{},SUPPRESSED", key_row(&keys[3])));
    for status in ["NOTIFIED", "RESOLVED", "NOTIFIED"] {
        rows.push(format!("{},{status}", key_row(&keys[5])));
    }
    write_csv(&b, "Id,ProductArn,Workflow.Status", &rows);
    let results = d.join("r.csv");
    let (a_s, b_s, r_s) = (
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        results.to_str().unwrap(),
    );

    // The plan: the earlier rows of each conflicting finding are
    // duplicates, the last rows are to update; nothing is refused.
    let (status, stdout, stderr) = run(
        &emu,
        d,
        &[
            "plan",
            a_s,
            b_s,
            "--row-decisions",
            "--duplicates",
            "last",
            "--output",
            "json",
        ],
    );
    assert_eq!(status, 0, "{stderr}");
    let p: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(p["totals"]["to_update"], 6, "{p}");
    assert_eq!(
        p["totals"]["duplicates"], 6,
        "3 in a, b's repeat of 3, 2 of 5's: {p}"
    );
    let codes: Vec<&str> = p["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap())
        .collect();
    assert!(!codes.contains(&"duplicate-conflict"), "{p}");
    let w = p["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == "duplicate-last")
        .unwrap_or_else(|| panic!("{p}"));
    assert_eq!(w["count"], 5, "{w}");
    assert!(
        w["samples"][0]["location"]
            .as_str()
            .unwrap()
            .contains("a.csv: row 1"),
        "{w}"
    );
    assert_eq!(p["fields_written"]["Workflow.Status"], 6, "{p}");
    assert_eq!(sent(&emu), 0);

    // The run: each finding written once, with its last row's decision.
    let (status, _, stderr) = run(
        &emu,
        d,
        &[
            "update",
            a_s,
            b_s,
            "--row-decisions",
            "--duplicates",
            "last",
            "--results",
            r_s,
        ],
    );
    assert_eq!(status, 0, "{stderr}");
    let want = [
        "RESOLVED",
        "RESOLVED",
        "RESOLVED",
        "SUPPRESSED",
        "SUPPRESSED",
        "NOTIFIED",
    ];
    for (k, status) in keys.iter().zip(want) {
        assert_eq!(emu.workflow(k), status, "{k}");
        assert_eq!(emu.state.update_count(k), 1, "{k}: written once");
    }
    let rows = read_results(&results);
    assert_eq!(rows.len(), 12, "one row per input row");
    let at = |file: &str, row: &str| {
        rows.iter()
            .find(|r| r["file"].ends_with(file) && r["row"] == row)
            .unwrap_or_else(|| panic!("{file} row {row}: {rows:?}"))
    };
    for row in ["1", "2", "3"] {
        let r = at("a.csv", row);
        assert_eq!(r["outcome"], "duplicate", "{r:?}");
        assert!(
            r["error_message"].contains("--duplicates last: the last row's decision applies"),
            "{r:?}"
        );
        assert_eq!(at("b.csv", row)["outcome"], "updated");
    }
    assert_eq!(at("a.csv", "4")["outcome"], "updated");
    assert_eq!(at("b.csv", "4")["outcome"], "duplicate", "a plain repeat");
    assert!(at("b.csv", "4")["error_message"].contains("same decision"));
    assert_eq!(at("b.csv", "5")["outcome"], "duplicate");
    assert_eq!(at("b.csv", "6")["outcome"], "duplicate");
    assert_eq!(at("b.csv", "7")["outcome"], "updated");

    // A resume has nothing left: the earlier rows' `duplicate` outcomes do
    // not make the last rows look settled or unsettled.
    let before = sent(&emu);
    let (status, _, stderr) = run(
        &emu,
        d,
        &[
            "update",
            a_s,
            b_s,
            "--row-decisions",
            "--duplicates",
            "last",
            "--results",
            r_s,
            "--resume",
        ],
    );
    assert_eq!(status, 0, "{stderr}");
    assert_eq!(sent(&emu), before, "nothing sent again");

    // A campaign file takes the key.
    let campaign = d.join("c.toml");
    std::fs::write(
        &campaign,
        format!(
            "inputs = [{a_s:?}, {b_s:?}]\n[input]\nrow_decisions = true\nduplicates = \"last\"\n"
        ),
    )
    .unwrap();
    let (status, stdout, stderr) = run(
        &emu,
        d,
        &[
            "run",
            campaign.to_str().unwrap(),
            "--dry-run",
            "--output",
            "json",
        ],
    );
    assert_eq!(status, 0, "{stderr}");
    let p: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(p["totals"]["to_update"], 6, "{p}");
    assert!(
        p["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["code"] == "duplicate-last"),
        "{p}"
    );
}

#[test]
fn security_lake_history_uses_the_newest_state_or_none() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let k = seed(&emu, 4);
    let (jan, mar) = ("1767225600000", "1772323200000"); // 2026-01-01, 2026-03-01
    let row = |k: &FindingKey, state: &str, time: &str| {
        format!("{},{},{state},{time}", k.id, k.product_arn)
    };
    let lake = d.join("lake.csv");
    write_csv(
        &lake,
        "finding.uid,metadata.product.uid,state,finding.modified_time",
        &[
            // 0: oldest first (Security Lake's order): the newest says New.
            row(&k[0], "Suppressed", jan),
            row(&k[0], "New", mar),
            // 1: newest first.
            row(&k[1], "New", mar),
            row(&k[1], "Suppressed", jan),
            // 2: no time: which state is current is not known.
            row(&k[2], "Suppressed", ""),
            row(&k[2], "New", ""),
            // 3: one row, already suppressed.
            row(&k[3], "Suppressed", mar),
        ],
    );
    let results = d.join("r.csv");
    let args = |cmd: &'static str| {
        vec![
            cmd.to_owned(),
            lake.display().to_string(),
            "--workflow".into(),
            "Status=SUPPRESSED".into(),
            "--skip-unchanged".into(),
        ]
    };
    let mut plan = args("plan");
    plan.extend(["--output".into(), "json".into()]);
    let refs: Vec<&str> = plan.iter().map(String::as_str).collect();
    let (status, stdout, stderr) = run(&emu, d, &refs);
    assert_eq!(status, 0, "{stderr}");
    let p: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(p["totals"]["to_update"], 3, "{p}");
    assert_eq!(p["totals"]["unchanged"], 1, "{p}");
    let w = p["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == "state-unknown")
        .unwrap_or_else(|| panic!("{p}"));
    assert_eq!(w["count"], 1, "{w}");

    let mut update = args("update");
    update.extend(["--results".into(), results.display().to_string()]);
    let refs: Vec<&str> = update.iter().map(String::as_str).collect();
    let (status, _, stderr) = run(&emu, d, &refs);
    assert_eq!(status, 0, "{stderr}");
    for f in &k[..3] {
        assert_eq!(emu.workflow(f), "SUPPRESSED", "{f}");
        assert_eq!(emu.state.update_count(f), 1, "{f}: written once");
    }
    assert_eq!(emu.state.update_count(&k[3]), 0, "unchanged: not sent");
    let rows = read_results(&results);
    let at = |n: usize| rows.iter().find(|r| r["row"] == n.to_string()).unwrap();
    // 0: the newest row is sent, with its state as the prior value.
    assert_eq!(at(1)["outcome"], "duplicate");
    assert!(
        at(1)["error_message"].contains("recorded state is newer"),
        "{:?}",
        at(1)
    );
    assert_eq!(at(2)["outcome"], "updated");
    assert!(at(2)["prior"].contains("\"NEW\""), "{:?}", at(2));
    // 1: the first row is the newest.
    assert_eq!(at(3)["outcome"], "updated");
    assert!(at(3)["prior"].contains("\"NEW\""), "{:?}", at(3));
    assert_eq!(at(4)["outcome"], "duplicate");
    // 2: sent (never skipped), its state unknown: no prior value recorded.
    assert_eq!(at(5)["outcome"], "updated");
    assert!(!at(5)["prior"].contains("SUPPRESSED"), "{:?}", at(5));
    assert!(!at(5)["prior"].contains("NEW"), "{:?}", at(5));
    assert_eq!(at(6)["outcome"], "duplicate");
    assert!(at(6)["error_message"].contains("does not tell which is newer"));
    assert_eq!(at(7)["outcome"], "unchanged");
}

#[test]
fn per_row_decisions_merge_by_member_end_to_end() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let k = seed(&emu, 3);
    let sheet = d.join("owners.csv");
    write_csv(
        &sheet,
        "Id,ProductArn,UserDefinedFields.Owner,Severity.Normalized",
        &[
            format!("{},alice,", key_row(&k[0])),
            format!("{},,90", key_row(&k[1])),
            format!("{},bob,35", key_row(&k[2])),
        ],
    );
    let results = d.join("r.csv");
    let (status, _, stderr) = run(
        &emu,
        d,
        &[
            "update",
            sheet.to_str().unwrap(),
            "--row-decisions",
            "--workflow",
            "Status=SUPPRESSED",
            "--user-defined-fields",
            "Ticket=SEC-42",
            "--severity",
            "Label=LOW",
            "--results",
            results.to_str().unwrap(),
        ],
    );
    assert_eq!(status, 2, "one row is rejected: {stderr}");
    // A row's key joins the command line's keys.
    let f0 = emu.state.finding(&k[0]).unwrap();
    assert_eq!(f0["UserDefinedFields"]["Ticket"], "SEC-42");
    assert_eq!(f0["UserDefinedFields"]["Owner"], "alice");
    assert_eq!(f0["Severity"]["Label"], "LOW");
    // A row's Normalized that agrees with --severity Label=LOW joins it.
    let f2 = emu.state.finding(&k[2]).unwrap();
    assert_eq!(f2["UserDefinedFields"]["Ticket"], "SEC-42");
    assert_eq!(f2["UserDefinedFields"]["Owner"], "bob");
    assert_eq!(f2["Severity"]["Label"], "LOW");
    assert_eq!(f2["Severity"]["Normalized"], 35);
    // One that contradicts it is an invalid row, with the reason; not sent.
    assert_eq!(emu.state.update_count(&k[1]), 0);
    let rows = read_results(&results);
    let r1 = rows.iter().find(|r| r["Id"] == k[1].id).unwrap();
    assert_eq!(r1["outcome"], "invalid");
    assert_eq!(r1["error_code"], "Severity.Normalized");
    assert!(r1["error_message"].contains("contradicts"), "{r1:?}");
}
