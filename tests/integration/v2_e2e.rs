//! The new Security Hub end to end: the real binary runs `update` with the
//! V2 decision flags against the emulator's OCSF store over real HTTP, and
//! the emulator's own per-finding counters say what was applied.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sechub_triage::emulator::{
    Bucket, EmulatorConfig, FaultConfig, OcsfKey, Operation, SyntheticSpec,
};
use serde_json::{Value, json};

use crate::support::{Emu, read_results, triage};

/// Synthetic OCSF findings, all in us-east-1.
fn seed(emu: &Emu, n: usize, seed: u64) -> Vec<OcsfKey> {
    emu.state.seed_synthetic_ocsf(&SyntheticSpec {
        regions: vec!["us-east-1".into()],
        ..SyntheticSpec::new(n, seed)
    })
}

/// The stored OCSF document of `k`.
fn doc(emu: &Emu, k: &OcsfKey) -> Value {
    emu.state.ocsf_finding(&k.uid()).expect("finding stored")
}

/// Writes one JSON document a line.
fn write_jsonl(path: &Path, docs: impl IntoIterator<Item = Value>) {
    let text: String = docs.into_iter().map(|d| format!("{d}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// (status_id, severity_id, comment) as stored.
fn triage_of(emu: &Emu, k: &OcsfKey) -> (Option<i64>, Option<i64>, Option<String>) {
    let s = emu.state.ocsf_state(&k.uid()).unwrap();
    (s.status_id, s.severity_id, s.comment)
}

struct Run {
    out: Output,
    results: Vec<Value>,
}

impl Run {
    fn code(&self) -> i32 {
        self.out.status.code().unwrap_or(-1)
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    fn by_outcome(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for r in &self.results {
            *m.entry(r["outcome"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        m
    }
}

/// `update INPUT ARGS... --results DIR/results.jsonl --yes` against `emu`.
fn update(emu: &Emu, dir: &Path, input: &Path, args: &[&str]) -> Run {
    let results = dir.join(format!(
        "results-{}.jsonl",
        input.file_stem().unwrap().to_string_lossy()
    ));
    let _ = std::fs::remove_file(&results);
    let _ = std::fs::remove_file(results.with_extension("jsonl.journal.json"));
    let out = triage(dir)
        .arg("update")
        .arg(input)
        .args(args)
        .args(["--endpoint-url", &emu.url(), "--yes", "--no-progress"])
        .arg("--results")
        .arg(&results)
        .output()
        .unwrap();
    let results = std::fs::read_to_string(&results)
        .map(|t| {
            t.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        })
        .unwrap_or_default();
    Run { out, results }
}

fn tmp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().to_owned();
    (dir, p)
}

/// A document for a finding the store does not have.
fn ghost(n: usize) -> Value {
    json!({
        "cloud": {"account": {"uid": "999988887777"}, "region": "us-east-1"},
        "finding_info": {"uid": format!("ghost-{n}")},
        "metadata": {"uid": format!("ghost-meta-{n}"),
                     "product": {"uid": "arn:aws:securityhub:us-east-1::productv2/aws/guardduty"}},
        "status_id": 1
    })
}

/// Drives the emulator's faults in phases while a run goes on, each phase
/// lasting until the emulator counted enough of its kind: every kind
/// happens, whatever the timing, and no finding meets so many failures in
/// a row that the run takes long (backoffs grow with each failure). After
/// each request-level phase, a quiet one waits for a success, so that the
/// run's breaker (10 failing requests in a row) never trips. Ends when
/// `over` is set.
fn phased_faults(emu: &Emu, over: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<&'static str>> {
    let state = emu.state.clone();
    std::thread::spawn(move || {
        let ok = |c: &sechub_triage::emulator::Counters| {
            c.outcome(Operation::BatchUpdateFindingsV2, "200")
        };
        let phases: [&'static str; 9] = [
            "http_500",
            "quiet",
            "drop",
            "quiet",
            "request_conflict",
            "quiet",
            "entry_conflict",
            "entry_internal",
            "omit",
        ];
        let mut done = Vec::new();
        for name in phases {
            let mut f = FaultConfig::default();
            let mut v2 = state.v2_config();
            v2.faults = Default::default();
            match name {
                "http_500" => f.http_500 = 1.0,
                "drop" => f.drop_connection = 1.0,
                "request_conflict" => v2.faults.request_conflict = 1.0,
                "entry_conflict" => f.concurrent_update_error = 0.3,
                "entry_internal" => f.internal_failure = 0.3,
                "omit" => v2.faults.omit_result = 0.3,
                _ => {}
            }
            let before = state.counters();
            state.set_faults(f);
            state.set_v2_config(v2);
            let finished = |c: &sechub_triage::emulator::Counters| match name {
                "http_500" => c.error_code("InternalServerException") >= 2,
                "drop" => c.outcome(Operation::BatchUpdateFindingsV2, "dropped") >= 2,
                "request_conflict" => c.error_code("ConflictException") >= 2,
                "entry_conflict" => c.v2_finding_outcome("ConflictException") >= 20,
                "entry_internal" => c.v2_finding_outcome("InternalServerException") >= 20,
                "omit" => c.v2_finding_outcome("Omitted") >= 20,
                _ => ok(c) > ok(&before),
            };
            while !finished(&state.counters()) {
                if over.load(Ordering::SeqCst) {
                    return done;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            done.push(name);
        }
        let mut v2 = state.v2_config();
        v2.faults = Default::default();
        state.set_faults(FaultConfig::default());
        state.set_v2_config(v2);
        done
    })
}

#[test]
fn under_every_fault_each_finding_is_updated_exactly_once_and_each_row_has_one_result() {
    let mut config = EmulatorConfig::default();
    // Throttling: the emulator's bucket is tighter than the client's pace.
    config.v2.throttle.batch_update_v2 = Bucket::new(3.0, 2);
    let emu = Emu::start(config);
    let keys = seed(&emu, 2000, 11);
    let (_d, dir) = tmp();
    let input = dir.join("export.jsonl");
    // Every fourth finding without its account: named by metadata.uid, so
    // that retries of both forms are in the queues together.
    let mut docs: Vec<Value> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let mut d = doc(&emu, k);
            if i % 4 == 3 {
                d.as_object_mut().unwrap().remove("cloud");
            }
            d
        })
        .collect();
    let by_uid = keys.len() / 4;
    // Three findings the store does not have, one of them by metadata.uid.
    let mut uid_ghost = ghost(2);
    uid_ghost.as_object_mut().unwrap().remove("cloud");
    docs.insert(10, ghost(1));
    docs.insert(500, uid_ghost);
    docs.push(ghost(3));
    write_jsonl(&input, docs.clone());

    let over = Arc::new(AtomicBool::new(false));
    let phases = phased_faults(&emu, over.clone());
    let run = update(
        &emu,
        &dir,
        &input,
        &[
            "--status-id",
            "3",
            "--comment",
            "campaign q4-suppress",
            "--rate",
            "20",
            "--burst",
            "10",
            // Few requests in flight: a phase ends a request or two after
            // its count is reached.
            "--concurrency",
            "2",
        ],
    );
    over.store(true, Ordering::SeqCst);
    let phases = phases.join().unwrap();
    assert_eq!(
        phases.len(),
        9,
        "every phase happened: {phases:?}\n{}",
        run.stderr()
    );
    let counters = emu.state.counters();
    assert_eq!(run.code(), 2, "failed findings: exit 2\n{}", run.stderr());
    // Faults really happened, of every kind asked for.
    assert!(
        counters.error_code("ThrottlingException") > 0,
        "{counters:?}"
    );
    assert!(counters.error_code("ConflictException") > 0, "{counters:?}");
    assert!(counters.v2_finding_outcome("Omitted") > 0, "{counters:?}");
    assert!(
        counters.v2_finding_outcome("ConflictException") > 0,
        "{counters:?}"
    );
    assert!(
        counters.v2_finding_outcome("InternalServerException") > 0,
        "{counters:?}"
    );
    assert!(
        counters.error_code("InternalException") + counters.error_code("InternalServerException")
            > 0,
        "{counters:?}"
    );
    assert!(
        counters.outcome(Operation::BatchUpdateFindingsV2, "dropped") > 0,
        "{counters:?}"
    );
    // Every stored finding updated exactly once.
    for k in &keys {
        assert_eq!(emu.state.v2_update_count(&k.uid()), 1, "{}", k.metadata_uid);
        assert_eq!(triage_of(&emu, k).0, Some(3));
    }
    // One result row per input row, each row once.
    assert_eq!(run.results.len(), docs.len());
    let rows: BTreeSet<u64> = run
        .results
        .iter()
        .map(|r| r["row"].as_u64().unwrap())
        .collect();
    assert_eq!(rows.len(), docs.len());
    let by = run.by_outcome();
    assert_eq!(by.get("updated"), Some(&keys.len()), "{by:?}");
    assert_eq!(by.get("failed"), Some(&3), "{by:?}");
    for r in run.results.iter().filter(|r| r["outcome"] == "failed") {
        assert_eq!(r["error_code"], "ResourceNotFoundException", "{r}");
        assert!(r["Id"].as_str().unwrap().starts_with("ghost-"), "{r}");
    }
    // The missing finding named by its uid is recorded under that name.
    assert!(
        run.results
            .iter()
            .any(|r| r["Id"] == "ghost-meta-2" && r["outcome"] == "failed"),
        "{:?}",
        run.results
            .iter()
            .filter(|r| r["outcome"] == "failed")
            .collect::<Vec<_>>()
    );
    // The triple form, with its account, in every updated row but those
    // named by metadata.uid.
    let mut with_account = 0;
    for r in run.results.iter().filter(|r| r["outcome"] == "updated") {
        with_account += usize::from(r["CloudAccountUid"].is_string());
        assert!(
            r["ProductArn"].as_str().unwrap().contains(":productv2/"),
            "{r}"
        );
        assert_eq!(
            r["applied"],
            r#"{"Comment":"campaign q4-suppress","StatusId":3}"#
        );
    }
    assert_eq!(with_account, keys.len() - by_uid);
    // No request, first or retried, held both forms: the emulator refuses
    // such a request with a ValidationException, and none was answered.
    assert_eq!(
        counters.error_code("ValidationException"),
        0,
        "{counters:?}"
    );
}

#[test]
fn per_entry_conflicts_and_internal_errors_are_retried_until_applied() {
    let mut config = EmulatorConfig::unthrottled();
    config.faults.concurrent_update_error = 0.1;
    config.faults.internal_failure = 0.1;
    config.random_seed = 3;
    let emu = Emu::start(config);
    let keys = seed(&emu, 300, 12);
    let (_d, dir) = tmp();
    let input = dir.join("export.jsonl");
    write_jsonl(&input, keys.iter().map(|k| doc(&emu, k)));
    let run = update(
        &emu,
        &dir,
        &input,
        &["--severity-id", "2", "--max-attempts", "20"],
    );
    let not_updated: Vec<&Value> = run
        .results
        .iter()
        .filter(|r| r["outcome"] != "updated")
        .collect();
    assert_eq!(run.code(), 0, "{}\n{not_updated:?}", run.stderr());
    let c = emu.state.counters();
    let conflicts = c.v2_finding_outcome("ConflictException");
    let internal = c.v2_finding_outcome("InternalServerException");
    assert!(conflicts > 0 && internal > 0, "{c:?}");
    for k in &keys {
        assert_eq!(emu.state.v2_update_count(&k.uid()), 1, "{}", k.metadata_uid);
        assert_eq!(triage_of(&emu, k).1, Some(2));
    }
    // Every unprocessed entry cost its finding one more attempt.
    let extra: u64 = run
        .results
        .iter()
        .map(|r| r["attempts"].as_u64().unwrap() - 1)
        .sum();
    assert_eq!(extra, conflicts + internal);
    assert_eq!(run.by_outcome().get("updated"), Some(&keys.len()));
}

#[test]
fn a_comment_only_run_leaves_every_status_id_as_it_was() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let keys = seed(&emu, 400, 13);
    let before: Vec<_> = keys.iter().map(|k| triage_of(&emu, k)).collect();
    let statuses: BTreeSet<_> = before.iter().map(|t| t.0).collect();
    assert!(
        statuses.len() >= 3,
        "varied statuses, so the test can fail: {statuses:?}"
    );
    let (_d, dir) = tmp();
    let input = dir.join("export.jsonl");
    write_jsonl(&input, keys.iter().map(|k| doc(&emu, k)));
    let run = update(
        &emu,
        &dir,
        &input,
        &["--comment", "reviewed: accepted risk"],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    for (k, (status, severity, _)) in keys.iter().zip(&before) {
        let (s, sev, comment) = triage_of(&emu, k);
        assert_eq!((s, sev), (*status, *severity), "{}", k.metadata_uid);
        assert_eq!(comment.as_deref(), Some("reviewed: accepted risk"));
    }
    // Prior values are recorded: the comment each finding had.
    for r in &run.results {
        assert_eq!(r["applied"], r#"{"Comment":"reviewed: accepted risk"}"#);
        let prior: Value = serde_json::from_str(r["prior"].as_str().unwrap()).unwrap();
        assert!(prior.get("Comment").is_some(), "{r}");
        assert!(prior.get("StatusId").is_none(), "{r}");
    }
}

#[test]
fn a_request_never_holds_both_identifier_forms() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let keys = seed(&emu, 150, 14);
    let (_d, dir) = tmp();
    let input = dir.join("mixed.jsonl");
    // Every other finding without its account: named by metadata.uid.
    let docs = keys.iter().enumerate().map(|(i, k)| {
        let mut d = doc(&emu, k);
        if i % 2 == 1 {
            d.as_object_mut().unwrap().remove("cloud");
        }
        d
    });
    write_jsonl(&input, docs);
    let run = update(&emu, &dir, &input, &["--status-id", "2"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let c = emu.state.counters();
    // 75 triples and 75 uids: one request each, none refused.
    assert_eq!(c.requests_for(Operation::BatchUpdateFindingsV2), 2, "{c:?}");
    assert_eq!(c.error_code("ValidationException"), 0, "{c:?}");
    for k in &keys {
        assert_eq!(emu.state.v2_update_count(&k.uid()), 1);
    }
    let with_account = run
        .results
        .iter()
        .filter(|r| r.get("CloudAccountUid").is_some())
        .count();
    assert_eq!(with_account, 75);
}

#[test]
fn v2_not_enabled_stops_at_the_preflight_with_exit_3_and_nothing_sent() {
    let mut config = EmulatorConfig::unthrottled();
    config.v2.disabled_regions.insert("us-east-1".into());
    let emu = Emu::start(config);
    let keys = seed(&emu, 20, 15);
    let (_d, dir) = tmp();
    let input = dir.join("export.jsonl");
    write_jsonl(&input, keys.iter().map(|k| doc(&emu, k)));
    let run = update(&emu, &dir, &input, &["--status-id", "4"]);
    assert_eq!(run.code(), 3, "{}", run.stderr());
    let err = run.stderr();
    assert!(
        err.contains("the new Security Hub is not enabled in us-east-1"),
        "{err}"
    );
    let c = emu.state.counters();
    assert_eq!(c.requests_for(Operation::DescribeSecurityHubV2), 1);
    assert_eq!(c.requests_for(Operation::BatchUpdateFindingsV2), 0);
    assert!(emu.state.v2_update_counts().is_empty());
}

#[test]
fn asff_identifiers_with_v2_flags_are_mapped_to_the_triple_with_a_notice() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let keys = seed(&emu, 30, 16);
    let (_d, dir) = tmp();
    let input = dir.join("asff.jsonl");
    // The ASFF copy of each finding: AwsAccountId, Id, ProductArn (product/).
    write_jsonl(
        &input,
        keys.iter().map(|k| {
            json!({
                "AwsAccountId": k.triple.cloud_account_uid,
                "Id": k.triple.finding_info_uid,
                "ProductArn": k.triple.metadata_product_uid.replace("::productv2/", "::product/"),
                "Workflow": {"Status": "NEW"}
            })
        }),
    );
    let run = update(&emu, &dir, &input, &["--status-id", "4"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(
        run.stderr()
            .contains("ASFF findings with new Security Hub decision flags"),
        "{}",
        run.stderr()
    );
    for k in &keys {
        assert_eq!(emu.state.v2_update_count(&k.finding_identifier()), 1);
        assert_eq!(triage_of(&emu, k).0, Some(4));
    }
}

#[test]
fn the_v2_exports_csv_and_get_findings_v2_output_are_inputs() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let keys = seed(&emu, 60, 17);
    let (_d, dir) = tmp();
    let (csv_keys, json_keys) = keys.split_at(30);
    // The export job's CSV: the selected OCSF paths as columns.
    let csv = dir.join("export.csv");
    let mut text =
        String::from("finding_info.uid,metadata.product.uid,cloud.account.uid,status_id,comment\n");
    for k in csv_keys {
        let (status, _, _) = triage_of(&emu, k);
        text.push_str(&format!(
            "{},{},{},{},\n",
            k.triple.finding_info_uid,
            k.triple.metadata_product_uid,
            k.triple.cloud_account_uid,
            status.unwrap()
        ));
    }
    std::fs::write(&csv, text).unwrap();
    let run = update(&emu, &dir, &csv, &["--status-id", "5"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(run.by_outcome().get("updated"), Some(&30));
    for k in csv_keys {
        assert_eq!(emu.state.v2_update_count(&k.finding_identifier()), 1);
    }
    // get-findings-v2 output.
    let out = dir.join("get-findings-v2.json");
    let findings: Vec<Value> = json_keys.iter().map(|k| doc(&emu, k)).collect();
    std::fs::write(&out, json!({ "Findings": findings }).to_string()).unwrap();
    let run = update(
        &emu,
        &dir,
        &out,
        &["--severity-id", "5", "--comment", "escalated"],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    for k in json_keys {
        assert_eq!(emu.state.v2_update_count(&k.finding_identifier()), 1);
        let (_, sev, comment) = triage_of(&emu, k);
        assert_eq!((sev, comment.as_deref()), (Some(5), Some("escalated")));
    }
}

#[test]
fn mixing_v1_and_v2_decision_fields_is_refused_before_any_call() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let keys = seed(&emu, 5, 18);
    let (_d, dir) = tmp();
    let input = dir.join("export.jsonl");
    write_jsonl(&input, keys.iter().map(|k| doc(&emu, k)));
    let run = update(
        &emu,
        &dir,
        &input,
        &["--status-id", "3", "--workflow", "Status=SUPPRESSED"],
    );
    assert_eq!(run.code(), 1);
    assert!(run.stderr().contains("cannot be mixed"), "{}", run.stderr());
    assert_eq!(emu.requests(), 0);
    assert!(run.stdout().is_empty());
}

#[test]
fn skip_unchanged_reads_the_ocsf_state() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let keys = seed(&emu, 200, 19);
    let (_d, dir) = tmp();
    let input = dir.join("export.jsonl");
    write_jsonl(&input, keys.iter().map(|k| doc(&emu, k)));
    let already = keys
        .iter()
        .filter(|k| triage_of(&emu, k).0 == Some(1))
        .count();
    assert!(already > 0 && already < keys.len(), "{already}");
    let run = update(
        &emu,
        &dir,
        &input,
        &["--status-id", "1", "--skip-unchanged"],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let by = run.by_outcome();
    assert_eq!(by.get("unchanged"), Some(&already), "{by:?}");
    assert_eq!(by.get("updated"), Some(&(keys.len() - already)), "{by:?}");
    for k in &keys {
        assert!(emu.state.v2_update_count(&k.uid()) <= 1);
    }
}

#[test]
fn revert_of_a_v2_run_restores_status_ids_and_reports_comments_it_cannot_clear() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let keys = seed(&emu, 120, 20);
    let before: Vec<_> = keys.iter().map(|k| triage_of(&emu, k)).collect();
    let had_comment = before.iter().filter(|t| t.2.is_some()).count();
    let (_d, dir) = tmp();
    let input = dir.join("export.jsonl");
    write_jsonl(&input, keys.iter().map(|k| doc(&emu, k)));
    let run = update(
        &emu,
        &dir,
        &input,
        &["--status-id", "5", "--comment", "q4 archive"],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let results = dir.join("results-export.jsonl");
    let revert_results = dir.join("revert.jsonl");
    let out = triage(&dir)
        .arg("revert")
        .arg(&results)
        .args(["--endpoint-url", &emu.url(), "--yes", "--no-progress"])
        .arg("--results")
        .arg(&revert_results)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Findings that had no comment cannot have it cleared: partial (2).
    let want = if had_comment == keys.len() { 0 } else { 2 };
    assert_eq!(out.status.code(), Some(want), "{stderr}");
    for (k, (status, severity, comment)) in keys.iter().zip(&before) {
        let (s, sev, c) = triage_of(&emu, k);
        assert_eq!((s, sev), (*status, *severity), "{}", k.metadata_uid);
        match comment {
            Some(old) => assert_eq!(c.as_deref(), Some(old.as_str())),
            None => assert_eq!(c.as_deref(), Some("q4 archive")),
        }
        assert_eq!(emu.state.v2_update_count(&k.uid()), 2);
    }
    let rows: Vec<Value> = std::fs::read_to_string(&revert_results)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), keys.len());
    let not_cleared = rows
        .iter()
        .filter(|r| {
            r["error_message"]
                .as_str()
                .unwrap_or_default()
                .contains("a comment cannot be cleared")
        })
        .count();
    assert_eq!(not_cleared, keys.len() - had_comment);
    assert!(
        not_cleared > 0,
        "some findings had no comment, so the test can fail"
    );
}

#[test]
fn campaign_files_take_the_v2_keys_and_plan_names_the_operation() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let keys = seed(&emu, 10, 21);
    let (_d, dir) = tmp();
    write_jsonl(&dir.join("export.jsonl"), keys.iter().map(|k| doc(&emu, k)));
    let campaign = |status: &str| {
        format!(
            "name = \"q4-v2\"\ninputs = [\"export.jsonl\"]\n\n[decision]\nstatus_id = {status}\n\
             comment = \"q4: resolved\"\n\n[aws]\nendpoint_url = \"{}\"\n",
            emu.url()
        )
    };
    std::fs::write(dir.join("c.toml"), campaign("4")).unwrap();
    let out = triage(&dir)
        .current_dir(&dir)
        .args(["run", "c.toml", "--dry-run"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("Operation: BatchUpdateFindingsV2"), "{text}");
    assert!(
        text.contains(r#"{"Comment":"q4: resolved","StatusId":4}"#),
        "{text}"
    );
    assert_eq!(emu.requests(), 0, "a plan sends nothing");
    std::fs::write(dir.join("c.toml"), campaign("9")).unwrap();
    let out = triage(&dir)
        .current_dir(&dir)
        .args(["run", "c.toml", "--dry-run"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("c.toml, line 5: decision.status_id"), "{err}");
}

#[test]
fn access_denied_aborts_with_every_finding_not_attempted() {
    let mut config = EmulatorConfig::unthrottled();
    config.faults.access_denied = true;
    let emu = Emu::start(config);
    let keys = seed(&emu, 50, 22);
    let (_d, dir) = tmp();
    let input = dir.join("export.jsonl");
    write_jsonl(&input, keys.iter().map(|k| doc(&emu, k)));
    let run = update(&emu, &dir, &input, &["--status-id", "2"]);
    assert_eq!(run.code(), 3, "{}", run.stderr());
    assert!(emu.state.v2_update_counts().is_empty());
    assert_eq!(run.results.len(), keys.len());
    assert_eq!(run.by_outcome().get("not_attempted"), Some(&keys.len()));
    // The describe call was denied too: a warning, and the run's own
    // request said what was wrong.
    assert!(
        run.stderr().contains("DescribeSecurityHubV2 failed"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_request_level_validation_exception_is_split_until_requests_pass() {
    let mut config = EmulatorConfig::unthrottled();
    // The service refuses more than 30 identifiers a request: 400
    // ValidationException for the whole request.
    config.v2.semantics.max_identifiers = 30;
    let emu = Emu::start(config);
    let keys = seed(&emu, 200, 23);
    let (_d, dir) = tmp();
    let input = dir.join("export.jsonl");
    write_jsonl(&input, keys.iter().map(|k| doc(&emu, k)));
    let run = update(&emu, &dir, &input, &["--severity-id", "4"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let c = emu.state.counters();
    assert!(c.error_code("ValidationException") > 0, "{c:?}");
    for k in &keys {
        assert_eq!(emu.state.v2_update_count(&k.uid()), 1);
    }
    assert_eq!(run.by_outcome().get("updated"), Some(&keys.len()));
}

#[test]
fn a_time_budget_stops_a_v2_run_and_resume_finishes_it_once() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let keys = seed(&emu, 600, 24);
    let (_d, dir) = tmp();
    let input = dir.join("export.jsonl");
    write_jsonl(&input, keys.iter().map(|k| doc(&emu, k)));
    let results = dir.join("results.jsonl");
    let run = |extra: &[&str]| {
        triage(&dir)
            .arg("update")
            .arg(&input)
            .args(["--status-id", "4", "--comment", "q4 budget"])
            .args(["--endpoint-url", &emu.url(), "--yes", "--no-progress"])
            .arg("--results")
            .arg(&results)
            .args(extra)
            .output()
            .unwrap()
    };
    // 6 requests at one every 2 s take 10 s; new requests stop at
    // 12 - max(1, 3) - 2 = 7 s (the plan pass included: short, 600 rows).
    let out = run(&[
        "--time-budget",
        "12s",
        "--request-timeout",
        "3s",
        "--grace",
        "1s",
        "--rate",
        "0.5",
        "--burst",
        "2",
        "--concurrency",
        "1",
    ]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(4), "{err}");
    let done_first = emu.state.v2_update_counts().len();
    assert!(
        done_first > 0 && done_first < keys.len(),
        "{done_first}\n{err}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = run(&["--resume"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{err}");
    for k in &keys {
        assert_eq!(emu.state.v2_update_count(&k.uid()), 1, "{}", k.metadata_uid);
    }
    // One settled line per row in the results, across both runs.
    let lines: Vec<Value> = std::fs::read_to_string(&results)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let updated: BTreeSet<u64> = lines
        .iter()
        .filter(|r| r["outcome"] == "updated")
        .map(|r| r["row"].as_u64().unwrap())
        .collect();
    assert_eq!(updated.len(), keys.len());
}

/// `revert RESULTS --results REVERT --yes` against `emu`.
fn revert(emu: &Emu, dir: &Path, results: &Path, revert_results: &Path) -> Output {
    triage(dir)
        .arg("revert")
        .arg(results)
        .args(["--endpoint-url", &emu.url(), "--yes", "--no-progress"])
        .arg("--results")
        .arg(revert_results)
        .output()
        .unwrap()
}

#[test]
fn revert_of_a_v2_run_from_its_csv_results_restores_every_status_and_severity_id() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let keys = seed(&emu, 160, 25);
    let before: Vec<_> = keys.iter().map(|k| triage_of(&emu, k)).collect();
    let had_comment = before.iter().filter(|t| t.2.is_some()).count();
    let (_d, dir) = tmp();
    let input = dir.join("export.jsonl");
    // Every third finding without its account: named by metadata.uid, so
    // the account column has empty cells too.
    write_jsonl(
        &input,
        keys.iter().enumerate().map(|(i, k)| {
            let mut d = doc(&emu, k);
            if i % 3 == 2 {
                d.as_object_mut().unwrap().remove("cloud");
            }
            d
        }),
    );
    let results = dir.join("results.csv");
    let out = triage(&dir)
        .arg("update")
        .arg(&input)
        .args([
            "--status-id",
            "5",
            "--severity-id",
            "1",
            "--comment",
            "q4 archive",
        ])
        .args(["--endpoint-url", &emu.url(), "--yes", "--no-progress"])
        .arg("--results")
        .arg(&results)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for k in &keys {
        assert_eq!(triage_of(&emu, k).0, Some(5));
    }
    // The V2 CSV carries each triple's account, last.
    let text = std::fs::read_to_string(&results).unwrap();
    assert!(
        text.lines()
            .next()
            .unwrap()
            .ends_with(",prior,CloudAccountUid"),
        "{text}"
    );
    let rows = read_results(&results);
    assert_eq!(rows.len(), keys.len());
    let with_account = rows
        .iter()
        .filter(|r| !r["CloudAccountUid"].is_empty())
        .count();
    assert_eq!(with_account, keys.len() - keys.len() / 3);

    let revert_results = dir.join("revert.csv");
    let out = revert(&emu, &dir, &results, &revert_results);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Findings that had no comment keep the campaign's: partial (2).
    assert!(had_comment < keys.len(), "some findings had no comment");
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for (k, (status, severity, comment)) in keys.iter().zip(&before) {
        let (s, sev, c) = triage_of(&emu, k);
        assert_eq!((s, sev), (*status, *severity), "{}", k.metadata_uid);
        match comment {
            Some(old) => assert_eq!(c.as_deref(), Some(old.as_str())),
            None => assert_eq!(c.as_deref(), Some("q4 archive")),
        }
        assert_eq!(emu.state.v2_update_count(&k.uid()), 2, "{}", k.metadata_uid);
    }
    let rows = read_results(&revert_results);
    assert_eq!(rows.len(), keys.len());
    assert!(rows.iter().all(|r| r["outcome"] == "updated"), "{rows:?}");
    let not_cleared = rows
        .iter()
        .filter(|r| r["error_message"].contains("a comment cannot be cleared"))
        .count();
    assert_eq!(not_cleared, keys.len() - had_comment);
    // The revert's own CSV results are a V2 run's too: it can be reverted.
    assert!(rows.iter().any(|r| !r["CloudAccountUid"].is_empty()));
}

#[test]
fn a_v2_csv_results_file_without_the_account_column_is_refused_per_row_not_guessed() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let keys = seed(&emu, 20, 26);
    let (_d, dir) = tmp();
    let input = dir.join("export.jsonl");
    write_jsonl(&input, keys.iter().map(|k| doc(&emu, k)));
    let results = dir.join("results.csv");
    let out = triage(&dir)
        .arg("update")
        .arg(&input)
        .args(["--status-id", "4"])
        .args(["--endpoint-url", &emu.url(), "--yes", "--no-progress"])
        .arg("--results")
        .arg(&results)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    // The file as an earlier release wrote it: 11 columns, no account.
    let old = dir.join("old.csv");
    let mut w = csv::Writer::from_path(&old).unwrap();
    for rec in csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(&results)
        .unwrap()
        .records()
    {
        let rec = rec.unwrap();
        assert_eq!(rec.len(), 12);
        w.write_record(rec.iter().take(11)).unwrap();
    }
    w.flush().unwrap();
    let sent = emu
        .state
        .counters()
        .requests_for(Operation::BatchUpdateFindingsV2);
    let revert_results = dir.join("old.revert.csv");
    let out = revert(&emu, &dir, &old, &revert_results);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        emu.state
            .counters()
            .requests_for(Operation::BatchUpdateFindingsV2),
        sent,
        "nothing sent: {stderr}"
    );
    for k in &keys {
        assert_eq!(triage_of(&emu, k).0, Some(4));
    }
    let rows = read_results(&revert_results);
    assert_eq!(rows.len(), keys.len());
    for r in &rows {
        assert_eq!(r["outcome"], "invalid", "{r:?}");
        assert_eq!(r["error_code"], "CloudAccountUid", "{r:?}");
        assert!(
            r["error_message"].contains("no CloudAccountUid column"),
            "{r:?}"
        );
    }
}

#[test]
fn a_v2_export_csv_named_by_metadata_uid_alone_is_sent_as_metadata_uids() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let keys = seed(&emu, 40, 27);
    let (_d, dir) = tmp();
    let (with_product, bare) = keys.split_at(20);
    // The export job's CSV with metadata.uid and metadata.product.uid
    // selected, and one with metadata.uid alone (its Region from --region).
    let a = dir.join("by-uid.csv");
    let mut text = String::from("metadata.uid,metadata.product.uid,status_id\n");
    for k in with_product {
        let (status, _, _) = triage_of(&emu, k);
        text.push_str(&format!(
            "{},{},{}\n",
            k.metadata_uid,
            k.triple.metadata_product_uid,
            status.unwrap()
        ));
    }
    std::fs::write(&a, text).unwrap();
    let b = dir.join("uid-only.csv");
    let mut text = String::from("metadata.uid\n");
    for k in bare {
        text.push_str(&format!("{}\n", k.metadata_uid));
    }
    std::fs::write(&b, text).unwrap();

    // For BatchUpdateFindings such a file names no finding: refused, saying why.
    let run = update(&emu, &dir, &a, &["--workflow", "Status=RESOLVED"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(
        run.stderr()
            .contains("names findings by metadata.uid, which only the new Security Hub"),
        "{}",
        run.stderr()
    );
    assert_eq!(emu.requests(), 0);

    let run = update(&emu, &dir, &a, &["--status-id", "4"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let run_b = update(
        &emu,
        &dir,
        &b,
        &["--severity-id", "3", "--region", "us-east-1"],
    );
    assert_eq!(run_b.code(), 0, "{}", run_b.stderr());
    for (run, keys) in [(&run, with_product), (&run_b, bare)] {
        assert_eq!(run.results.len(), keys.len());
        for r in &run.results {
            let k = &keys[r["row"].as_u64().unwrap() as usize - 1];
            assert_eq!(r["outcome"], "updated", "{r}");
            // Sent as MetadataUids: the uid is the key, no account.
            assert_eq!(r["Id"], k.metadata_uid.as_str(), "{r}");
            assert!(r.get("CloudAccountUid").is_none(), "{r}");
        }
    }
    for k in with_product {
        assert_eq!(emu.state.v2_update_count(&k.uid()), 1);
        assert_eq!(triage_of(&emu, k).0, Some(4));
    }
    for k in bare {
        assert_eq!(emu.state.v2_update_count(&k.uid()), 1);
        assert_eq!(triage_of(&emu, k).1, Some(3));
    }
    let c = emu.state.counters();
    assert_eq!(c.requests_for(Operation::BatchUpdateFindingsV2), 2, "{c:?}");
    assert_eq!(c.error_code("ValidationException"), 0, "{c:?}");
}

#[test]
fn a_v2_export_csv_with_both_forms_prefers_the_triple_and_never_mixes_them() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let keys = seed(&emu, 60, 28);
    let (_d, dir) = tmp();
    let input = dir.join("both.csv");
    // Every finding has both forms, but every third row's account is empty:
    // those are named by metadata.uid, the rest by the triple.
    let mut text =
        String::from("metadata.uid,finding_info.uid,metadata.product.uid,cloud.account.uid\n");
    for (i, k) in keys.iter().enumerate() {
        let account = if i % 3 == 0 {
            ""
        } else {
            k.triple.cloud_account_uid.as_str()
        };
        text.push_str(&format!(
            "{},{},{},{account}\n",
            k.metadata_uid, k.triple.finding_info_uid, k.triple.metadata_product_uid
        ));
    }
    std::fs::write(&input, text).unwrap();
    let run = update(&emu, &dir, &input, &["--status-id", "2"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(run.results.len(), keys.len());
    for r in &run.results {
        let i = r["row"].as_u64().unwrap() as usize - 1;
        let k = &keys[i];
        assert_eq!(r["outcome"], "updated", "{r}");
        if i.is_multiple_of(3) {
            assert_eq!(r["Id"], k.metadata_uid.as_str(), "{r}");
            assert!(r.get("CloudAccountUid").is_none(), "{r}");
        } else {
            assert_eq!(r["Id"], k.triple.finding_info_uid.as_str(), "{r}");
            assert_eq!(
                r["CloudAccountUid"],
                k.triple.cloud_account_uid.as_str(),
                "{r}"
            );
        }
    }
    for k in &keys {
        assert_eq!(emu.state.v2_update_count(&k.uid()), 1);
    }
    // 40 triples and 20 uids: one request each (the emulator refuses a
    // request that holds both forms with a ValidationException).
    let c = emu.state.counters();
    assert_eq!(c.requests_for(Operation::BatchUpdateFindingsV2), 2, "{c:?}");
    assert_eq!(c.error_code("ValidationException"), 0, "{c:?}");
}

#[test]
fn revert_of_a_v2_run_stops_at_the_preflight_where_v2_is_not_enabled() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let keys = seed(&emu, 30, 29);
    let (_d, dir) = tmp();
    let input = dir.join("export.jsonl");
    write_jsonl(&input, keys.iter().map(|k| doc(&emu, k)));
    let run = update(&emu, &dir, &input, &["--status-id", "5"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    // The new Security Hub is turned off in the Region since.
    emu.state.set_v2_enabled("us-east-1", false);
    let before = emu.state.counters();
    let out = revert(
        &emu,
        &dir,
        &dir.join("results-export.jsonl"),
        &dir.join("revert.jsonl"),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("the new Security Hub is not enabled in us-east-1"),
        "{err}"
    );
    let after = emu.state.counters();
    assert_eq!(
        after.requests_for(Operation::DescribeSecurityHubV2),
        before.requests_for(Operation::DescribeSecurityHubV2) + 1
    );
    assert_eq!(
        after.requests_for(Operation::BatchUpdateFindingsV2),
        before.requests_for(Operation::BatchUpdateFindingsV2),
        "nothing sent"
    );
    for k in &keys {
        assert_eq!(triage_of(&emu, k).0, Some(5));
        assert_eq!(emu.state.v2_update_count(&k.uid()), 1);
    }
    // Enabled again, the same revert goes through.
    emu.state.set_v2_enabled("us-east-1", true);
    let out = revert(
        &emu,
        &dir,
        &dir.join("results-export.jsonl"),
        &dir.join("revert.jsonl"),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 2)), "{err}");
    for k in &keys {
        assert_eq!(emu.state.v2_update_count(&k.uid()), 2);
    }
}

/// Every line of a V2 plan says "comment" where a V1 plan says "note"
/// (the flag `--note-mode` aside).
fn assert_no_note(page: &str) {
    for line in page.lines() {
        assert!(
            !line
                .replace("--note-mode", "")
                .to_lowercase()
                .contains("note"),
            "a V2 plan says comment, not note: {line}\n{page}"
        );
    }
}

#[test]
fn v2_plans_and_results_say_comment_not_note() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let keys = seed(&emu, 60, 30);
    let (_d, dir) = tmp();
    // An export CSV without the comment column: comments unknown.
    let csv = dir.join("export.csv");
    let mut text = String::from("finding_info.uid,metadata.product.uid,cloud.account.uid\n");
    for k in &keys {
        text.push_str(&format!(
            "{},{},{}\n",
            k.triple.finding_info_uid, k.triple.metadata_product_uid, k.triple.cloud_account_uid
        ));
    }
    std::fs::write(&csv, text).unwrap();
    for output in ["text", "markdown"] {
        let out = triage(&dir)
            .arg("plan")
            .arg(&csv)
            .args(["--comment", "reviewed", "--output", output])
            .output()
            .unwrap();
        let page = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{page}");
        assert!(page.contains("comment-unknown"), "{page}");
        assert!(
            page.contains("the input does not record their comments"),
            "{page}"
        );
        assert!(
            page.contains("written (existing comment unknown)"),
            "{page}"
        );
        assert_no_note(&page);
    }
    // keep: withheld, said per finding in the results.
    let run = update(
        &emu,
        &dir,
        &csv,
        &["--comment", "reviewed", "--note-mode", "keep"],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(run.by_outcome().get("unchanged"), Some(&keys.len()));
    for r in &run.results {
        let m = r["error_message"].as_str().unwrap();
        assert!(m.contains("comment not written"), "{r}");
        assert_no_note(m);
    }
    assert!(emu.state.v2_update_counts().is_empty());

    // A revert's plan: a comment where there was none cannot be cleared.
    let input = dir.join("export.jsonl");
    write_jsonl(&input, keys.iter().map(|k| doc(&emu, k)));
    let run = update(&emu, &dir, &input, &["--status-id", "5", "--comment", "q4"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let out = triage(&dir)
        .arg("revert")
        .arg(dir.join("results-export.jsonl"))
        .arg("--dry-run")
        .output()
        .unwrap();
    let page = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{page}");
    assert!(page.contains("Operation: BatchUpdateFindingsV2"), "{page}");
    assert!(page.contains("a comment where there was none"), "{page}");
    assert_no_note(&page);
}

#[test]
fn ocsf_json_named_by_metadata_uid_alone_is_sent_as_metadata_uids() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let keys = seed(&emu, 30, 31);
    let (_d, dir) = tmp();
    let input = dir.join("uids.jsonl");
    // No finding_info: the account is there, but no triple can be made.
    write_jsonl(
        &input,
        keys.iter().map(|k| {
            let mut d = doc(&emu, k);
            d.as_object_mut().unwrap().remove("finding_info");
            d
        }),
    );
    let run = update(&emu, &dir, &input, &["--workflow", "Status=RESOLVED"]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert_eq!(run.by_outcome().get("invalid"), Some(&keys.len()));
    assert!(
        run.results[0]["error_message"]
            .as_str()
            .unwrap()
            .contains("named by metadata.uid alone"),
        "{:?}",
        run.results[0]
    );
    assert_eq!(emu.requests(), 0);
    let run = update(&emu, &dir, &input, &["--status-id", "4"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(run.results.len(), keys.len());
    for r in &run.results {
        let k = &keys[r["row"].as_u64().unwrap() as usize - 1];
        assert_eq!(r["outcome"], "updated", "{r}");
        assert_eq!(r["Id"], k.metadata_uid.as_str(), "{r}");
        assert!(r.get("CloudAccountUid").is_none(), "{r}");
    }
    for k in &keys {
        assert_eq!(emu.state.v2_update_count(&k.uid()), 1);
        assert_eq!(triage_of(&emu, k).0, Some(4));
    }
}
