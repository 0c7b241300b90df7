//! Selecting findings of the new Security Hub by query (`--ocsf-filters`,
//! GetFindingsV2), end to end through the binary against the emulator
//! paging by offset: when the decision writes the very field the filter
//! matches on (`status_id`) the selection is read whole before the first
//! update, so nothing is skipped or touched twice; when it does not (a
//! comment), reading and updating overlap; queries of the wrong kind for
//! the decision are refused before any request.

use std::time::Duration;

use crate::support::*;
use sechub_triage::emulator::{Bucket, EmulatorConfig, FaultConfig, OcsfKey, Operation, Paging};
use serde_json::{Value, json};

const PRODUCT: &str = "arn:aws:securityhub:us-east-1::productv2/aws/guardduty";
const ACCOUNT: &str = "123456789012";

/// An emulator paging GetFindings and GetFindingsV2 by offset, with the
/// documented quotas.
pub(crate) fn offset_emulator() -> Emu {
    let mut config = EmulatorConfig::default();
    config.semantics.get_findings_paging = Paging::Offset;
    Emu::start(config)
}

/// Inserts one OCSF finding with this `status_id`.
pub(crate) fn insert_ocsf(emu: &Emu, uid: &str, status_id: i64) -> OcsfKey {
    emu.state
        .insert_ocsf_finding(json!({
            "metadata": {"uid": format!("meta-{uid}"), "product": {"uid": PRODUCT, "name": "GuardDuty"}},
            "finding_info": {"uid": uid, "title": "t"},
            "cloud": {"account": {"uid": ACCOUNT}, "region": "us-east-1"},
            "status_id": status_id,
            "severity_id": 2,
            "comment": "seeded",
        }))
        .unwrap()
}

pub(crate) fn status_id(emu: &Emu, k: &OcsfKey) -> Option<i64> {
    emu.state.ocsf_state(&k.uid()).unwrap().status_id
}

pub(crate) fn comment(emu: &Emu, k: &OcsfKey) -> Option<String> {
    emu.state.ocsf_state(&k.uid()).unwrap().comment
}

pub(crate) fn count(emu: &Emu, k: &OcsfKey) -> u64 {
    emu.state.v2_update_count(&k.uid())
}

pub(crate) const NEW_V2: &str =
    r#"{"CompositeFilters":[{"NumberFilters":[{"FieldName":"status_id","Filter":{"Eq":1}}]}]}"#;

#[test]
fn status_id_filter_suppresses_exactly_the_new_findings_once_each() {
    let emu = offset_emulator();
    let dir = tempfile::tempdir().unwrap();
    // 3,000 New (1) findings interleaved with 1,000 others.
    let mut new = Vec::new();
    let mut others = Vec::new();
    for i in 0..4000 {
        match i % 4 {
            0 => others.push(insert_ocsf(&emu, &format!("v{i:05}"), [2, 4, 5][i / 4 % 3])),
            _ => new.push(insert_ocsf(&emu, &format!("v{i:05}"), 1)),
        }
    }
    assert_eq!(new.len(), 3000);
    emu.state.reset_counters();
    let results = dir.path().join("results.jsonl");
    let out = triage(dir.path())
        .args(["update", "--ocsf-filters", NEW_V2, "--status-id", "3"])
        // Above 1,000 a V2 campaign must name itself in a comment; this run
        // writes only status_id, to show nothing else is written.
        .args(["--confirm-above", "10000", "--endpoint-url", &emu.url()])
        .args(["--no-progress", "--yes", "--results"])
        .arg(&results)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("selected 3000 finding(s) in 30 page(s)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the decision writes status_id")
            && stderr.contains("reading the whole selection before the first update"),
        "{stderr}"
    );
    for k in &new {
        assert_eq!(count(&emu, k), 1, "{}", k.metadata_uid);
        assert_eq!(status_id(&emu, k), Some(3));
        // Only what was asked: the comment is untouched.
        assert_eq!(comment(&emu, k).as_deref(), Some("seeded"));
    }
    for k in &others {
        assert_eq!(count(&emu, k), 0, "{}", k.metadata_uid);
    }
    let rows: Vec<Value> = read_jsonl(&results);
    assert_eq!(rows.len(), 3000);
    assert!(
        rows.iter().all(|r| r["outcome"] == "updated"),
        "{}",
        rows[0]
    );
    // The prior value (for revert) came from the query: StatusId 1.
    assert!(
        rows.iter().all(|r| r["prior"] == r#"{"StatusId":1}"#),
        "{}",
        rows[0]
    );
    // GetFindingsV2: 30 pages within 3/s burst 6, none refused.
    let c = emu.state.counters();
    assert_eq!(c.requests_for(Operation::GetFindingsV2), 30);
    assert_eq!(c.outcome(Operation::GetFindingsV2, "200"), 30);
    assert!(
        emu.state
            .max_requests_in_window(Operation::GetFindingsV2, Duration::from_secs(1))
            <= 9
    );
    // The journal records the V2 query.
    let header = std::fs::read_to_string(dir.path().join("results.jsonl.journal.json")).unwrap();
    assert!(header.contains("\"GetFindingsV2\""), "{header}");
    assert!(header.contains("status_id"), "{header}");

    // The same query now selects nothing; a second run sends nothing.
    let before = c.requests_for(Operation::BatchUpdateFindingsV2);
    let out = triage(dir.path())
        .args(["update", "--ocsf-filters", NEW_V2, "--status-id", "3"])
        .args(["--endpoint-url", &emu.url(), "--no-progress", "--yes"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("selected 0 finding(s)"), "{stderr}");
    assert_eq!(
        emu.state
            .counters()
            .requests_for(Operation::BatchUpdateFindingsV2),
        before
    );
}

#[test]
fn skip_unchanged_and_plan_read_the_queried_state() {
    let emu = offset_emulator();
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<OcsfKey> = (0..120)
        .map(|i| insert_ocsf(&emu, &format!("p{i:04}"), 1))
        .collect();
    // status_id 1 is what they hold: --skip-unchanged leaves all of them.
    let out = triage(dir.path())
        .args(["plan", "--ocsf-filters", NEW_V2, "--status-id", "1"])
        .args(["--skip-unchanged", "--output", "json"])
        .args(["--endpoint-url", &emu.url()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["totals"]["unchanged"], 120, "{plan}");
    let out = triage(dir.path())
        .args(["plan", "--ocsf-filters", NEW_V2, "--status-id", "3"])
        .args(["--output", "json", "--endpoint-url", &emu.url()])
        .output()
        .unwrap();
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["totals"]["to_update"], 120, "{plan}");
    assert!(keys.iter().all(|k| count(&emu, k) == 0));
}

#[test]
fn a_query_of_the_other_kind_is_refused_before_any_request() {
    let emu = offset_emulator();
    let dir = tempfile::tempdir().unwrap();
    let v1 = r#"{"WorkflowStatus":[{"Value":"NEW","Comparison":"EQUALS"}]}"#;
    for (args, want) in [
        (
            vec!["--filters", v1, "--status-id", "3"],
            "select them with --ocsf-filters",
        ),
        (
            vec!["--ocsf-filters", NEW_V2, "--workflow", "Status=SUPPRESSED"],
            "select with --filters",
        ),
        (
            vec![
                "--ocsf-filters",
                r#"{"CompositeFilters":[{"StringFilters":[{"FieldName":"nope","Filter":{"Value":"x","Comparison":"EQUALS"}}]}]}"#,
                "--status-id",
                "3",
            ],
            "Filters.CompositeFilters[0].StringFilters[0].FieldName: \"nope\"",
        ),
    ] {
        for cmd in ["update", "plan"] {
            let out = triage(dir.path())
                .arg(cmd)
                .args(&args)
                .args(["--endpoint-url", &emu.url(), "--no-progress", "--yes"])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
            assert!(stderr.contains(want), "{args:?}: {stderr}");
        }
    }
    assert_eq!(emu.requests(), 0);
}

#[test]
fn kill_9_then_resume_finishes_the_v2_query_run() {
    let emu = offset_emulator();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut new = Vec::new();
    let mut others = Vec::new();
    for i in 0..3000 {
        if i % 4 == 3 {
            others.push(insert_ocsf(&emu, &format!("k{i:05}"), 4));
        } else {
            new.push(insert_ocsf(&emu, &format!("k{i:05}"), 1));
        }
    }
    let results = d.join("run.csv");
    let cmd = |resume: bool, rate: &str| {
        let mut c = triage(d);
        c.args(["update", "--ocsf-filters", NEW_V2, "--status-id", "3"])
            .args(["--endpoint-url", &emu.url(), "--no-progress", "--yes"])
            .args(["--rate", rate, "--burst", "2", "--concurrency", "2"])
            .args(["--confirm-above", "10000"])
            .arg("--results")
            .arg(&results);
        if resume {
            c.arg("--resume");
        }
        c
    };
    // Kill -9 once some findings are recorded.
    kill_9_once_written(&mut cmd(false, "2"), &results, 500);
    let updated_before = new.iter().filter(|k| count(&emu, k) > 0).count();
    assert!(updated_before > 0 && updated_before < new.len());
    let out = cmd(true, "10").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("resuming the query as first run"),
        "{stderr}"
    );
    let still_new = new.len() - updated_before;
    assert!(
        stderr.contains(&format!("selected {still_new} finding(s)")),
        "{still_new}: {stderr}"
    );
    let mut twice = 0;
    for k in &new {
        let n = count(&emu, k);
        assert!(n == 1 || n == 2, "{}: {n}", k.metadata_uid);
        assert_eq!(status_id(&emu, k), Some(3));
        twice += usize::from(n == 2);
    }
    // Only what was in flight at the kill (2 requests of 100).
    assert!(twice <= 200, "{twice}");
    for k in &others {
        assert_eq!(count(&emu, k), 0);
    }
}

#[test]
fn a_campaign_file_takes_ocsf_filters() {
    let emu = offset_emulator();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut new = Vec::new();
    let mut others = Vec::new();
    for i in 0..90 {
        if i % 3 == 0 {
            others.push(insert_ocsf(&emu, &format!("c{i:04}"), 2));
        } else {
            new.push(insert_ocsf(&emu, &format!("c{i:04}"), 1));
        }
    }
    let campaign = d.join("nightly.toml");
    std::fs::write(
        &campaign,
        format!(
            r#"name = "nightly: suppress New (V2)"

[query]
ocsf_filters = {{ CompositeFilters = [{{ NumberFilters = [{{ FieldName = "status_id", Filter = {{ Eq = 1 }} }}] }}] }}

[decision]
status_id = 3
comment = "suppressed by the nightly campaign"

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
    assert!(stderr.contains("selected 60 finding(s)"), "{stderr}");
    for k in &new {
        assert_eq!(count(&emu, k), 1);
        assert_eq!(status_id(&emu, k), Some(3));
        assert_eq!(
            comment(&emu, k).as_deref(),
            Some("suppressed by the nightly campaign")
        );
    }
    for k in &others {
        assert_eq!(count(&emu, k), 0);
    }
}

#[test]
fn throttled_and_failing_pages_are_retried_and_nothing_is_lost() {
    let emu = offset_emulator();
    let dir = tempfile::tempdir().unwrap();
    for i in 0..1000 {
        insert_ocsf(&emu, &format!("t{i:05}"), if i % 5 == 0 { 2 } else { 1 });
    }
    // The emulator's GetFindingsV2 bucket is slower than the client's pace,
    // and one request in five fails with a 500 or 503.
    let mut v2 = emu.state.v2_config();
    v2.throttle.get_findings_v2 = Bucket::new(2.0, 2);
    emu.state.set_v2_config(v2);
    emu.state.set_faults(FaultConfig {
        http_500: 0.1,
        http_503: 0.1,
        ..FaultConfig::default()
    });
    emu.state.reset_counters();
    let out_file = dir.path().join("new.jsonl");
    let out = triage(dir.path())
        .args(["export", "--ocsf-filters", NEW_V2, "--out"])
        .arg(&out_file)
        .args(["--query-rate", "20", "--query-burst", "20"])
        .args(["--endpoint-url", &emu.url()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("exported 800 finding(s) from 8 page(s)"),
        "{stderr}"
    );
    let c = emu.state.counters();
    let throttled = c.outcome(Operation::GetFindingsV2, "429 ThrottlingException");
    let failed = c.outcome(Operation::GetFindingsV2, "500 InternalServerException")
        + c.outcome(Operation::GetFindingsV2, "503 ServiceUnavailableException");
    assert!(throttled > 0, "{:?}", c.outcomes);
    assert_eq!(c.outcome(Operation::GetFindingsV2, "200"), 8);
    // Every refused request was retried, and the command says so.
    assert!(
        stderr.contains(&format!("({throttled} throttled, {failed} retried)")),
        "{stderr} {:?}",
        c.outcomes
    );
    let uids: std::collections::BTreeSet<String> = std::fs::read_to_string(&out_file)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["status_id"], 1);
            v["finding_info"]["uid"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(uids.len(), 800);
}

/// A comment written on the findings a `status_id` filter selects moves
/// none of them: the V2 query streams into the run (the first
/// BatchUpdateFindingsV2 arrives before the last GetFindingsV2 page), and
/// still every selected finding is updated once and nothing else.
#[test]
fn a_comment_on_a_status_id_query_reads_and_updates_at_once() {
    let emu = offset_emulator();
    let dir = tempfile::tempdir().unwrap();
    let mut new = Vec::new();
    let mut others = Vec::new();
    for i in 0..4000 {
        match i % 4 {
            0 => others.push(insert_ocsf(&emu, &format!("c{i:05}"), 2)),
            _ => new.push(insert_ocsf(&emu, &format!("c{i:05}"), 1)),
        }
    }
    emu.state.reset_counters();
    let results = dir.path().join("results.jsonl");
    let out = triage(dir.path())
        .args(["update", "--ocsf-filters", NEW_V2])
        .args(["--comment", "Nightly: triaged (RISK-9)"])
        .args(["--endpoint-url", &emu.url(), "--no-progress", "--yes"])
        .arg("--results")
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
    assert_overlapped(
        &emu,
        Operation::GetFindingsV2,
        Operation::BatchUpdateFindingsV2,
    );
    for k in &new {
        assert_eq!(count(&emu, k), 1, "{}", k.metadata_uid);
        assert_eq!(status_id(&emu, k), Some(1), "only the comment is written");
        assert_eq!(
            comment(&emu, k).as_deref(),
            Some("Nightly: triaged (RISK-9)")
        );
    }
    for k in &others {
        assert_eq!(count(&emu, k), 0, "{}", k.metadata_uid);
        assert_eq!(comment(&emu, k).as_deref(), Some("seeded"));
    }
    let rows: Vec<Value> = read_jsonl(&results);
    assert_eq!(rows.len(), 3000);
    assert!(
        rows.iter().all(|r| r["outcome"] == "updated"),
        "{}",
        rows[0]
    );
    assert!(
        emu.state
            .max_requests_in_window(Operation::GetFindingsV2, Duration::from_secs(1))
            <= 9
    );
}
