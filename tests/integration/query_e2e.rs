//! Selecting findings by query (`--filters`), end to end through the binary
//! against the emulator paging by offset: the selection is read whole before
//! the first update, so updating the very field the filter matches on skips
//! nothing and touches nothing twice, and GetFindings stays within its quota.

use std::time::Duration;

use crate::query_v2_e2e::offset_emulator;
use crate::support::*;
use sechub_triage::emulator::Operation;
use sechub_triage::model::FindingKey;
use serde_json::json;

/// Inserts one finding with this workflow status.
fn insert(emu: &Emu, id: &str, status: &str) -> FindingKey {
    emu.state.insert_finding(asff_finding(id, status)).unwrap()
}

/// Inserts one finding with this workflow status and compliance status.
fn insert_compliance(emu: &Emu, id: &str, status: &str, compliance: &str) -> FindingKey {
    let mut f = asff_finding(id, status);
    f["Compliance"] = json!({"Status": compliance});
    emu.state.insert_finding(f).unwrap()
}

const FAILED_FILTER: &str = r#"{"ComplianceStatus":[{"Value":"FAILED","Comparison":"EQUALS"}]}"#;

const NEW_FILTER: &str = r#"{"WorkflowStatus":[{"Value":"NEW","Comparison":"EQUALS"}]}"#;

#[test]
fn new_filter_suppresses_exactly_the_new_findings_once_each_within_the_quota() {
    let emu = offset_emulator();
    let dir = tempfile::tempdir().unwrap();
    // 5,000 NEW findings interleaved with 2,000 others.
    let mut new = Vec::new();
    let mut others = Vec::new();
    for i in 0..7000 {
        match i % 7 {
            5 => others.push(insert(&emu, &format!("f{i:05}"), "NOTIFIED")),
            6 => others.push(insert(&emu, &format!("f{i:05}"), "RESOLVED")),
            _ => new.push(insert(&emu, &format!("f{i:05}"), "NEW")),
        }
    }
    assert_eq!(new.len(), 5000);
    emu.state.reset_counters();
    let results = dir.path().join("results.csv");
    let out = triage(dir.path())
        .args(["update", "--filters", NEW_FILTER])
        .args(["--workflow", "Status=SUPPRESSED"])
        .args(["--run-tag", "nightly-q", "--endpoint-url", &emu.url()])
        .args(["--no-progress", "--yes", "--results"])
        .arg(&results)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("selected 5000 finding(s) in 50 page(s)"),
        "{stderr}"
    );
    // The decision moves findings out of the result set: snapshot first,
    // every page read before the first update.
    assert!(
        stderr.contains(
            "the decision writes WorkflowStatus, which the filter matches on: reading the whole \
             selection before the first update"
        ),
        "{stderr}"
    );
    let last_page = *emu
        .state
        .arrivals(Operation::GetFindings)
        .iter()
        .max()
        .unwrap();
    let first_update = *emu
        .state
        .arrivals(Operation::BatchUpdateFindings)
        .iter()
        .min()
        .unwrap();
    assert!(last_page < first_update, "{last_page:?} {first_update:?}");

    // Exactly the 5,000, each once; nothing else touched.
    for k in &new {
        assert_eq!(emu.state.update_count(k), 1, "{}", k.id);
        assert_eq!(emu.workflow(k), "SUPPRESSED");
    }
    for k in &others {
        assert_eq!(emu.state.update_count(k), 0, "{}", k.id);
    }
    let rows = read_results(&results);
    assert_eq!(rows.len(), 5000);
    assert!(
        rows.iter().all(|r| r["outcome"] == "updated"),
        "{:?}",
        rows[0]
    );

    // GetFindings: 50 pages of 100, none throttled, never more in one second
    // than a 3/s burst-6 bucket lets through.
    let c = emu.state.counters();
    assert_eq!(c.requests_for(Operation::GetFindings), 50);
    assert_eq!(
        c.outcome(Operation::GetFindings, "200"),
        50,
        "{:?}",
        c.outcomes
    );
    assert!(
        emu.state
            .max_requests_in_window(Operation::GetFindings, Duration::from_secs(1))
            <= 9
    );
    assert!(
        emu.state
            .max_requests_in_window(Operation::GetFindings, Duration::from_secs(10))
            <= 6 + 30
    );

    // The same query now selects nothing, and a second run sends nothing.
    let before = emu
        .state
        .counters()
        .requests_for(Operation::BatchUpdateFindings);
    let out = triage(dir.path())
        .args(["update", "--filters", NEW_FILTER])
        .args(["--workflow", "Status=SUPPRESSED", "--run-tag", "nightly-q"])
        .args(["--endpoint-url", &emu.url(), "--no-progress", "--yes"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("selected 0 finding(s)"), "{stderr}");
    assert_eq!(
        emu.state
            .counters()
            .requests_for(Operation::BatchUpdateFindings),
        before
    );
}

#[test]
fn bad_filters_are_refused_before_any_request() {
    let emu = offset_emulator();
    let dir = tempfile::tempdir().unwrap();
    for (filters, want) in [
        (
            r#"{"Title":[{"Value":"x","Comparison":"CONTAINS"}]}"#,
            "Filters.Title[0].Comparison: CONTAINS is not valid in GetFindings",
        ),
        (
            r#"{"NoSuch":[]}"#,
            "Filters.NoSuch: not a GetFindings filter",
        ),
        ("WorkflowStatus=NEW", "shorthand is not supported"),
    ] {
        let out = triage(dir.path())
            .args(["update", "--filters", filters])
            .args(["--workflow", "Status=SUPPRESSED"])
            .args(["--endpoint-url", &emu.url(), "--no-progress", "--yes"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(want), "{filters}: {stderr}");
    }
    assert_eq!(emu.requests(), 0);
}

#[test]
fn export_then_plan_update_revert_round_trip() {
    let emu = offset_emulator();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut new = Vec::new();
    let mut others = Vec::new();
    for i in 0..300 {
        if i % 3 == 0 {
            others.push(insert(&emu, &format!("g{i:04}"), "NOTIFIED"));
        } else {
            new.push(insert(&emu, &format!("g{i:04}"), "NEW"));
        }
    }
    let filters = d.join("scope.json");
    std::fs::write(&filters, NEW_FILTER).unwrap();
    let file_arg = format!("file://{}", filters.display());
    let export = d.join("selection.jsonl.gz");
    let out = triage(d)
        .args(["export", "--filters", &file_arg, "--out"])
        .arg(&export)
        .args(["--endpoint-url", &emu.url()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("exported 200 finding(s)"), "{stderr}");
    // Nothing was updated by exporting.
    assert!(emu.state.update_counts().iter().all(|(_, n)| *n == 0));

    // The plan reads the export back: 200 to update, each recorded NEW.
    let out = triage(d)
        .arg("plan")
        .arg(&export)
        .args(["--workflow", "Status=SUPPRESSED", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["totals"]["to_update"], 200, "{plan}");
    // The export records each finding's state: --skip-unchanged sees them NEW.
    let out = triage(d)
        .arg("plan")
        .arg(&export)
        .args([
            "--workflow",
            "Status=NEW",
            "--skip-unchanged",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["totals"]["unchanged"], 200, "{plan}");

    // The update from the reviewed file, then its revert.
    let r1 = d.join("run.csv");
    let out = triage(d)
        .arg("update")
        .arg(&export)
        .args([
            "--workflow",
            "Status=SUPPRESSED",
            "--endpoint-url",
            &emu.url(),
        ])
        .args(["--no-progress", "--results"])
        .arg(&r1)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for k in &new {
        assert_eq!(emu.workflow(k), "SUPPRESSED");
    }
    let r2 = d.join("revert.csv");
    let out = triage(d)
        .arg("revert")
        .arg(&r1)
        .args(["--endpoint-url", &emu.url(), "--no-progress", "--results"])
        .arg(&r2)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for k in &new {
        assert_eq!(emu.workflow(k), "NEW", "{}", k.id);
        assert_eq!(emu.state.update_count(k), 2);
    }
    for k in &others {
        assert_eq!(emu.state.update_count(k), 0);
    }
}

#[test]
fn a_campaign_file_selects_by_query() {
    let emu = offset_emulator();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut new = Vec::new();
    let mut others = Vec::new();
    for i in 0..150 {
        if i % 3 == 0 {
            others.push(insert(&emu, &format!("c{i:04}"), "NOTIFIED"));
        } else {
            new.push(insert(&emu, &format!("c{i:04}"), "NEW"));
        }
    }
    let campaign = d.join("nightly.toml");
    std::fs::write(
        &campaign,
        format!(
            r#"name = "nightly: suppress NEW"

[query]
filters = {{ WorkflowStatus = [{{ Value = "NEW", Comparison = "EQUALS" }}] }}

[decision]
workflow = "Status=SUPPRESSED"

[aws]
endpoint_url = "{}"

[output]
results = "results.csv"
no_progress = true
"#,
            emu.url()
        ),
    )
    .unwrap();
    let out = triage(d).arg("run").arg(&campaign).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("selected 100 finding(s)"), "{stderr}");
    for k in &new {
        assert_eq!(emu.workflow(k), "SUPPRESSED");
        assert_eq!(emu.state.update_count(k), 1);
    }
    for k in &others {
        assert_eq!(emu.state.update_count(k), 0);
    }
    assert_eq!(read_results(&d.join("results.csv")).len(), 100);
}

#[test]
fn export_to_standard_output() {
    let emu = offset_emulator();
    let dir = tempfile::tempdir().unwrap();
    let k = insert(&emu, "s1", "NEW");
    insert(&emu, "s2", "RESOLVED");
    let out = triage(dir.path())
        .args(["export", "--filters", NEW_FILTER, "--out", "-"])
        .args(["--endpoint-url", &emu.url()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0]["Id"], k.id);
    assert_eq!(lines[0]["Workflow"]["Status"], "NEW");
    assert_eq!(lines[0]["Severity"]["Label"], "LOW");
}

#[test]
fn kill_9_then_resume_finishes_the_query_run_without_updating_twice() {
    let emu = offset_emulator();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut new = Vec::new();
    let mut others = Vec::new();
    for i in 0..4000 {
        if i % 4 == 3 {
            others.push(insert(&emu, &format!("k{i:05}"), "RESOLVED"));
        } else {
            new.push(insert(&emu, &format!("k{i:05}"), "NEW"));
        }
    }
    let results = d.join("run.csv");
    let cmd = |resume: bool, rate: &str| {
        let mut c = triage(d);
        c.args(["update", "--filters", NEW_FILTER])
            .args(["--workflow", "Status=SUPPRESSED", "--run-tag", "nightly-k"])
            .args(["--endpoint-url", &emu.url(), "--no-progress", "--yes"])
            .args(["--rate", rate, "--burst", "2", "--concurrency", "2"])
            .arg("--results")
            .arg(&results);
        if resume {
            c.arg("--resume");
        }
        c
    };
    // Kill -9 once some findings are recorded.
    kill_9_once_written(&mut cmd(false, "2"), &results, 600);
    let updated_before: usize = new.iter().filter(|k| emu.state.update_count(k) > 0).count();
    assert!(updated_before > 0 && updated_before < new.len());
    let header = std::fs::read_to_string(d.join("run.csv.journal.json")).unwrap();
    assert!(header.contains("\"query:us-east-1\""), "{header}");
    assert!(header.contains("\"WorkflowStatus\""), "{header}");

    let out = cmd(true, "10").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // The resumed query selects only what is still NEW.
    let still_new = new.len() - updated_before;
    assert!(
        stderr.contains(&format!("selected {still_new} finding(s)")),
        "{still_new}: {stderr}"
    );
    let mut twice = 0;
    for k in &new {
        let n = emu.state.update_count(k);
        assert!(n == 1 || n == 2, "{}: {n}", k.id);
        assert_eq!(emu.workflow(k), "SUPPRESSED");
        twice += usize::from(n == 2);
    }
    // Only what was in flight at the kill (2 requests of 100) can be sent twice.
    assert!(twice <= 200, "{twice}");
    for k in &others {
        assert_eq!(emu.state.update_count(k), 0);
    }
}

#[test]
fn a_decision_the_filter_does_not_match_on_reads_and_updates_at_once() {
    let emu = offset_emulator();
    let dir = tempfile::tempdir().unwrap();
    // 3,000 FAILED findings (NEW ones and NOTIFIED ones) among 1,000 PASSED.
    let mut failed = Vec::new();
    let mut others = Vec::new();
    for i in 0..4000 {
        let id = format!("o{i:05}");
        match i % 4 {
            3 => others.push(insert_compliance(&emu, &id, "NEW", "PASSED")),
            2 => failed.push(insert_compliance(&emu, &id, "NOTIFIED", "FAILED")),
            _ => failed.push(insert_compliance(&emu, &id, "NEW", "FAILED")),
        }
    }
    emu.state.reset_counters();
    let results = dir.path().join("results.csv");
    // Workflow and Note are written; the filter names neither (nor
    // UserDefinedFields, which the run tag writes).
    let out = triage(dir.path())
        .args(["update", "--filters", FAILED_FILTER])
        .args(["--workflow", "Status=NOTIFIED"])
        .args(["--note", "Text=owner asked,UpdatedBy=secops"])
        .args(["--run-tag", "nightly-o", "--endpoint-url", &emu.url()])
        .args(["--no-progress", "--yes", "--results"])
        .arg(&results)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("reading the selection and updating at once"),
        "{stderr}"
    );
    assert!(
        stderr.contains("selected 3000 finding(s) in 30 page(s)"),
        "{stderr}"
    );
    // Updating began before the last page was read (the query alone takes
    // 30 pages at 3/s burst 6).
    assert_overlapped(&emu, Operation::GetFindings, Operation::BatchUpdateFindings);
    // Exactly the selected findings, each once; nothing else.
    for k in &failed {
        assert_eq!(emu.state.update_count(k), 1, "{}", k.id);
        assert_eq!(emu.workflow(k), "NOTIFIED");
    }
    for k in &others {
        assert_eq!(emu.state.update_count(k), 0, "{}", k.id);
        assert_eq!(emu.workflow(k), "NEW");
    }
    let rows = read_results(&results);
    assert_eq!(rows.len(), 3000);
    assert!(
        rows.iter().all(|r| r["outcome"] == "updated"),
        "{:?}",
        rows[0]
    );
    let c = emu.state.counters();
    assert_eq!(c.requests_for(Operation::GetFindings), 30);
    assert!(
        emu.state
            .max_requests_in_window(Operation::GetFindings, Duration::from_secs(1))
            <= 9
    );

    // --query-snapshot, and a guardrail that needs the whole selection,
    // read it whole first; without --yes the confirmation needs its size.
    for (extra, why) in [
        (vec!["--query-snapshot", "--yes"], "--query-snapshot"),
        (vec!["--max-findings", "5000", "--yes"], "--max-findings"),
        (vec![], "without --yes and a run tag"),
    ] {
        emu.state.reset_counters();
        let out = triage(dir.path())
            .args(["update", "--filters", FAILED_FILTER])
            .args(["--note", "Text=again,UpdatedBy=secops"])
            .args(["--run-tag", "nightly-o", "--endpoint-url", &emu.url()])
            .arg("--no-progress")
            .args(&extra)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(why)
                && stderr.contains("reading the whole selection before the first update"),
            "{extra:?}: {stderr}"
        );
        if extra.is_empty() {
            // 3,000 > --confirm-above 1000 with no terminal: refused, nothing sent.
            assert_eq!(out.status.code(), Some(1), "{stderr}");
            assert_eq!(
                emu.state
                    .counters()
                    .requests_for(Operation::BatchUpdateFindings),
                0
            );
        } else {
            assert_eq!(out.status.code(), Some(0), "{extra:?}: {stderr}");
        }
    }
}

#[test]
fn kill_9_in_an_overlapped_run_then_resume_updates_nothing_twice_beyond_what_was_in_flight() {
    let emu = offset_emulator();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut failed = Vec::new();
    let mut others = Vec::new();
    for i in 0..4000 {
        let id = format!("p{i:05}");
        if i % 4 == 3 {
            others.push(insert_compliance(&emu, &id, "NEW", "PASSED"));
        } else {
            failed.push(insert_compliance(&emu, &id, "NEW", "FAILED"));
        }
    }
    let results = d.join("run.csv");
    let cmd = |resume: bool, rate: &str| {
        let mut c = triage(d);
        c.args(["update", "--filters", FAILED_FILTER])
            .args(["--note", "Text=accepted risk,UpdatedBy=secops"])
            .args(["--run-tag", "nightly-p", "--endpoint-url", &emu.url()])
            .args(["--no-progress", "--yes"])
            .args(["--rate", rate, "--burst", "2", "--concurrency", "2"])
            .arg("--results")
            .arg(&results);
        if resume {
            c.arg("--resume");
        }
        c
    };
    // Kill -9 once some findings are recorded.
    kill_9_once_written(&mut cmd(false, "2"), &results, 600);
    let updated_before: usize = failed
        .iter()
        .filter(|k| emu.state.update_count(k) > 0)
        .count();
    assert!(updated_before > 0 && updated_before < failed.len());
    let header = std::fs::read_to_string(d.join("run.csv.journal.json")).unwrap();
    assert!(header.contains("\"query:us-east-1\""), "{header}");
    assert!(header.contains("\"ComplianceStatus\""), "{header}");

    let out = cmd(true, "10").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("reading the selection and updating at once"),
        "{stderr}"
    );
    // The note leaves every finding in the selection: the resumed query
    // reads all 3,000 again, and the journal skips those settled.
    assert!(stderr.contains("selected 3000 finding(s)"), "{stderr}");
    let mut twice = 0;
    for k in &failed {
        let n = emu.state.update_count(k);
        assert!(n == 1 || n == 2, "{}: {n}", k.id);
        twice += usize::from(n == 2);
    }
    // Only what was in flight at the kill (2 requests of 100) can be sent twice.
    assert!(twice <= 200, "{twice}");
    for k in &others {
        assert_eq!(emu.state.update_count(k), 0);
    }
}

#[test]
fn a_query_failing_mid_run_ends_an_overlapped_run_with_its_error_never_silently() {
    let emu = offset_emulator();
    let dir = tempfile::tempdir().unwrap();
    let mut failed = Vec::new();
    for i in 0..250 {
        failed.push(insert_compliance(
            &emu,
            &format!("m{i:04}"),
            "NEW",
            "FAILED",
        ));
    }
    // The second Region's first page cannot even be sent (not a host
    // label): the query fails after the first Region's 250 findings.
    let run = |extra: &[&str], results: &std::path::Path| {
        triage(dir.path())
            .args(["update", "--filters", FAILED_FILTER])
            .args(["--query-regions", "us-east-1,us-east-1/x"])
            .args(["--note", "Text=reviewed,UpdatedBy=secops"])
            .args(["--run-tag", "nightly-m", "--endpoint-url", &emu.url()])
            .args(["--no-progress", "--yes", "--results"])
            .arg(results)
            .args(extra)
            .output()
            .unwrap()
    };
    // Read first: the failure stops the command before any update. A
    // request that cannot even be built aborts (exit 3), as it does an
    // update: no request can succeed, a person must look.
    let out = run(&["--query-snapshot"], &dir.path().join("snap.csv"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("GetFindings in us-east-1/x failed"),
        "{stderr}"
    );
    assert!(failed.iter().all(|k| emu.state.update_count(k) == 0));

    // Overlapped: the first Region's findings are updated (once each) and
    // journaled; the run's input ends with the query's error (exit status
    // 3 here, as above), not with an end that would look like a whole
    // selection.
    let results = dir.path().join("overlap.csv");
    let out = run(&[], &results);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("reading the selection and updating at once"),
        "{stderr}"
    );
    assert!(
        stdout.contains("input error") && stdout.contains("GetFindings in us-east-1/x failed"),
        "{stdout}"
    );
    assert!(
        stderr.contains("the query failed: GetFindings in us-east-1/x"),
        "{stderr}"
    );
    for k in &failed {
        assert_eq!(emu.state.update_count(k), 1, "{}", k.id);
    }
    let rows = read_results(&results);
    assert_eq!(rows.len(), 250);
    assert!(rows.iter().all(|r| r["outcome"] == "updated"));
}

/// A query the service refuses (access denied) is not a usage error: the
/// run aborts with exit 3, as an update refused the same way does, naming
/// the operation, and nothing is sent; so does `export`.
#[test]
fn a_refused_query_aborts_with_exit_3_and_sends_nothing() {
    let emu = offset_emulator();
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<FindingKey> = (0..20)
        .map(|i| insert_compliance(&emu, &format!("d{i:03}"), "NEW", "FAILED"))
        .collect();
    let mut faults = emu.state.faults();
    faults.access_denied = true;
    emu.state.set_faults(faults);
    for snapshot in [true, false] {
        let mut cmd = triage(dir.path());
        cmd.args(["update", "--filters", FAILED_FILTER])
            .args(["--note", "Text=reviewed,UpdatedBy=secops"])
            .args(["--run-tag", "nightly-d", "--endpoint-url", &emu.url()])
            .args(["--no-progress", "--yes"]);
        if snapshot {
            cmd.arg("--query-snapshot");
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(3), "snapshot {snapshot}: {stderr}");
        assert!(
            format!("{stderr}{stdout}").contains(
                "GetFindings in us-east-1 failed, and no request can succeed: AccessDeniedException"
            ),
            "{stderr}{stdout}"
        );
    }
    let out = triage(dir.path())
        .args(["export", "--filters", FAILED_FILTER, "--out"])
        .arg(dir.path().join("x.jsonl"))
        .args(["--endpoint-url", &emu.url()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.path().join("x.jsonl").exists());
    let c = emu.state.counters();
    assert_eq!(c.requests_for(Operation::BatchUpdateFindings), 0);
    assert!(keys.iter().all(|k| emu.state.update_count(k) == 0));
}
