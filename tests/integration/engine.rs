//! End-to-end tests of the engine: the real `sechub-triage` binary (or the
//! library's `engine::run`) against the emulator on 127.0.0.1, through the
//! real SDK client over HTTP. Every test checks that each input record ends
//! in exactly one outcome and that our counts agree with what the emulator saw.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sechub_triage::emulator::{Bucket, EmulatorConfig, FaultConfig, Operation, SyntheticSpec};
use sechub_triage::model::FindingKey;

use crate::support::*;

fn missing_key(i: usize) -> FindingKey {
    FindingKey::new(
        format!(
            "arn:aws:securityhub:us-east-1:123456789012:security-control/IAM.1/finding/missing-{i:05}"
        ),
        "arn:aws:securityhub:us-east-1::product/aws/securityhub",
    )
}

/// The main scenario: 20,000 findings with every kind of fault,
/// throttling at the documented quota, missing findings, duplicates and
/// invalid rows, through the real binary.
#[test]
fn twenty_thousand_findings_under_faults_all_accounted_for() {
    let config = EmulatorConfig {
        random_seed: 2026, // throttling on: 10/s burst 30
        faults: FaultConfig {
            concurrent_update_error: 0.02,
            internal_failure: 0.01,
            http_500: 0.03,
            drop_connection: 0.02,
            latency: Duration::from_millis(5),
            latency_jitter: Duration::from_millis(20),
            ..FaultConfig::default()
        },
        ..EmulatorConfig::default()
    };
    let emu = Emu::start(config);
    // One Region, so that the emulator's per-second request counts are the
    // counts of one quota bucket (Region routing is covered by other tests).
    let existing = emu.state.seed_synthetic(&SyntheticSpec {
        count: 20_000,
        seed: 7,
        regions: vec!["us-east-1".into()],
        ..SyntheticSpec::default()
    });
    assert_eq!(existing.len(), 20_000);
    let missing: Vec<FindingKey> = (0..150).map(missing_key).collect();

    let dir = tempfile::tempdir().unwrap();
    let mut rows: Vec<String> = existing.iter().chain(&missing).map(key_row).collect();
    // 40 duplicates of existing findings, spread over the file.
    rows.extend((0..40).map(|i| key_row(&existing[i * 211])));
    // Invalid rows: blank Id, a ProductArn that is not a product ARN.
    rows.push(format!(",{}", csv_quote(&existing[0].product_arn)));
    rows.push("some-finding,arn:aws:guardduty:us-east-1:123456789012:detector/x".into());
    let total_rows = rows.len();
    // Shuffle deterministically so duplicates and misses are interleaved.
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|i| (i.wrapping_mul(2654435761) % 1_000_003, *i));
    let rows: Vec<String> = order.into_iter().map(|i| rows[i].clone()).collect();
    let input = dir.path().join("findings.csv");
    write_csv(&input, "Id,ProductArn", &rows);
    let results = dir.path().join("results.csv");
    let failed = dir.path().join("failed.csv");

    let out = triage(dir.path())
        .args(["update", input.to_str().unwrap()])
        .args(["--workflow", "Status=SUPPRESSED"])
        .args([
            "--note",
            "Text=\"Accepted risk, see SEC-42\",UpdatedBy=secops-nightly",
        ])
        .args(["--endpoint-url", &emu.url()])
        .args(["--results", results.to_str().unwrap()])
        .args(["--failed", failed.to_str().unwrap()])
        .args(["--output", "json", "--no-progress"])
        // Above --confirm-above: confirmed; the note's UpdatedBy is the run tag.
        .args(["--yes"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "exit status (2: some findings not updated)\nstdout: {stdout}\nstderr: {stderr}"
    );
    let summary: serde_json::Value = serde_json::from_str(&stdout).expect("JSON summary");

    // Results: exactly one row per input row.
    let res = read_results(&results);
    assert_eq!(res.len(), total_rows);
    let rows_seen: HashSet<u64> = res.iter().map(|r| r["row"].parse().unwrap()).collect();
    assert_eq!(rows_seen.len(), total_rows, "every row number exactly once");
    assert_eq!(rows_seen.iter().max(), Some(&(total_rows as u64)));
    let mut by_outcome: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &res {
        *by_outcome.entry(r["outcome"].as_str()).or_default() += 1;
    }
    assert_eq!(by_outcome.get("updated"), Some(&20_000), "{by_outcome:?}");
    assert_eq!(by_outcome.get("failed"), Some(&150), "{by_outcome:?}");
    assert_eq!(by_outcome.get("duplicate"), Some(&40), "{by_outcome:?}");
    assert_eq!(by_outcome.get("invalid"), Some(&2), "{by_outcome:?}");
    assert_eq!(by_outcome.values().sum::<usize>(), total_rows);
    for r in res.iter().filter(|r| r["outcome"] == "failed") {
        assert_eq!(r["error_code"], "FindingNotFound", "{r:?}");
        assert!(r["Id"].contains("/finding/missing-"), "{r:?}");
    }

    // The summary says the same.
    assert_eq!(summary["records"], total_rows as u64);
    assert_eq!(summary["outcomes"]["updated"], 20_000);
    assert_eq!(summary["outcomes"]["failed"], 150);
    assert_eq!(summary["outcomes"]["duplicate"], 40);
    assert_eq!(summary["outcomes"]["invalid"], 2);
    assert_eq!(summary["errors_by_code"]["FindingNotFound"], 150);

    // Every existing finding carries exactly the decision, and was applied once.
    for k in &existing {
        let f = emu.state.finding(k).expect("finding still there");
        assert_eq!(f["Workflow"]["Status"], "SUPPRESSED", "{k}");
        assert_eq!(f["Note"]["Text"], "Accepted risk, see SEC-42", "{k}");
        assert_eq!(f["Note"]["UpdatedBy"], "secops-nightly", "{k}");
        assert_eq!(emu.state.update_count(k), 1, "{k} updated more than once");
    }

    // The emulator's counters agree with ours.
    let c = emu.state.counters();
    assert_eq!(
        c.requests_for(Operation::BatchUpdateFindings),
        summary["requests"].as_u64().unwrap(),
        "every request we counted arrived once: the SDK retried nothing on its own"
    );
    assert_eq!(c.finding_outcome("Processed"), 20_000);
    assert_eq!(c.finding_outcome("FindingNotFound"), 150);
    assert_eq!(
        c.finding_outcome("DuplicatedFindingIdentifier"),
        0,
        "no identifier twice in a request"
    );
    assert_eq!(c.throttled, summary["throttled"].as_u64().unwrap());
    assert_eq!(
        c.error_code("InvalidInputException"),
        0,
        "no request over 100 identifiers or otherwise invalid"
    );
    // Faults really happened and were retried (otherwise this test proves little).
    assert!(
        c.finding_outcome("ConcurrentUpdateError") > 50,
        "{:?}",
        c.finding_outcomes
    );
    assert!(
        c.finding_outcome("InternalFailure") > 20,
        "{:?}",
        c.finding_outcomes
    );
    assert!(c.error_code("InternalException") > 0, "{:?}", c.error_codes);
    assert!(summary["retries"].as_u64().unwrap() > 0);

    // Pacing: never more than the token bucket allows in any second.
    let per_sec = &c.requests_per_second[&Operation::BatchUpdateFindings];
    let max = per_sec.iter().copied().max().unwrap_or(0);
    assert!(
        max <= 30 + 10,
        "at most burst + rate per second, saw {max}: {per_sec:?}"
    );
    assert!(
        c.throttled * 20 <= c.requests_for(Operation::BatchUpdateFindings),
        "throttled {} of {} requests: the client limiter should keep us under the quota",
        c.throttled,
        c.requests_for(Operation::BatchUpdateFindings)
    );

    // The failed file lists exactly the missing findings and reads back as input.
    let failed_rows = read_results(&failed);
    let failed_ids: HashSet<&str> = failed_rows.iter().map(|r| r["Id"].as_str()).collect();
    let missing_ids: HashSet<&str> = missing.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(failed_ids, missing_ids);

    // No secret in any output.
    for text in [
        stdout.as_ref(),
        stderr.as_ref(),
        &std::fs::read_to_string(&results).unwrap(),
    ] {
        assert!(!text.contains(TEST_SECRET));
    }
}

/// Access denied stops the run after the first wave of requests, with exit
/// status 3, and every record still gets an outcome.
#[test]
fn access_denied_aborts_with_status_3_and_accounts_for_everything() {
    let mut config = EmulatorConfig::default();
    config.faults.access_denied = true;
    let emu = Emu::start(config);
    let keys = emu.state.seed_synthetic(&SyntheticSpec {
        count: 5_000,
        seed: 3,
        ..SyntheticSpec::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    sechub_triage::emulator::write_keys_csv(&keys, std::fs::File::create(&input).unwrap()).unwrap();
    let results = dir.path().join("results.jsonl");
    let started = Instant::now();
    let out = triage(dir.path())
        .args([
            "update",
            input.to_str().unwrap(),
            "--workflow",
            "Status=RESOLVED",
        ])
        // One request in flight per Region, so the first answer stops the run.
        .args(["--rate", "5", "--burst", "1", "--concurrency", "1"])
        .args(["--yes", "--run-tag", "engine-test"])
        .args(["--endpoint-url", &emu.url(), "--no-progress"])
        .args(["--results", results.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stdout.contains("AccessDeniedException"), "{stdout}");
    // A hang guard, not a performance assertion: 5,000 findings would take
    // 50 requests (over 2 s at the quota) if the run did not stop.
    assert!(started.elapsed() < Duration::from_secs(120));
    let c = emu.state.counters();
    let sent = c.requests_for(Operation::BatchUpdateFindings);
    let regions: HashSet<&str> = keys
        .iter()
        .map(|k| k.product_arn.split(':').nth(3).unwrap())
        .collect();
    assert!(
        sent as usize <= regions.len(),
        "stopped after the first request of each Region ({} Regions), sent {sent}",
        regions.len()
    );

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&results)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5_000);
    let failed = lines.iter().filter(|l| l["outcome"] == "failed").count();
    let not_attempted = lines
        .iter()
        .filter(|l| l["outcome"] == "not_attempted")
        .count();
    // Access denied says nothing about the findings: every one stays
    // resumable, those of the answered requests with the code.
    assert_eq!(failed, 0);
    assert_eq!(not_attempted, 5_000);
    let answered = lines
        .iter()
        .filter(|l| l["error_code"] == "AccessDeniedException")
        .count();
    assert!(answered > 0 && answered as u64 <= sent * 100, "{answered}");
    for k in &keys {
        assert_eq!(emu.state.update_count(k), 0);
    }
}

/// Findings a stopped run never sent keep the decision meant for them and
/// the state they came with, whether they were held when it stopped or
/// read after it (the `--failed` file carries both, issue 11).
#[test]
fn findings_left_by_an_abort_keep_their_decision_and_recorded_state() {
    let mut config = EmulatorConfig::default();
    config.faults.access_denied = true;
    let emu = Emu::start(config);
    let keys = emu.state.seed_synthetic(&SyntheticSpec {
        count: 300,
        seed: 5,
        regions: vec!["us-east-1".into()],
        ..SyntheticSpec::default()
    });
    // Ten findings held at most: most rows are read after the abort.
    let config = EngineConfig {
        read_ahead: 10,
        concurrency: 1,
        ..EngineConfig::default()
    };
    let state = |i: usize| sechub_triage::model::CurrentState {
        note_text: Some(format!("note {i}")),
        note_recorded: true,
        ..Default::default()
    };
    let input = records_with("in.csv", &keys, |i, r| {
        r.current = Some(Arc::new(state(i)));
    });
    let (summary, outcomes) = run_engine(&emu, &config, input, suppress());
    assert!(summary.aborted.is_some(), "{summary:?}");
    assert_eq!(outcomes.len(), 300);
    let sent = emu
        .state
        .counters()
        .requests_for(Operation::BatchUpdateFindings);
    assert!(sent <= 1, "{sent}");
    for o in &outcomes {
        assert_eq!(o.kind, OutcomeKind::NotAttempted, "{o:?}");
        assert_eq!(o.applied.as_deref(), Some(&suppress()), "{o:?}");
        let i = o.location.row as usize - 1;
        assert_eq!(o.state.as_deref(), Some(&state(i)), "{o:?}");
    }
}

/// The real quota is lower than configured: the adaptive pace finds it
/// without a storm of 429s, and everything is still updated.
#[test]
fn adapts_to_a_quota_lower_than_configured() {
    let mut config = EmulatorConfig::default();
    config.throttle.batch_update = Bucket::new(3.0, 3);
    let emu = Emu::start(config);
    let keys = emu.state.seed_synthetic(&SyntheticSpec {
        count: 4_000,
        seed: 11,
        regions: vec!["eu-west-1".into()],
        ..SyntheticSpec::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    sechub_triage::emulator::write_keys_csv(&keys, std::fs::File::create(&input).unwrap()).unwrap();
    let out = triage(dir.path())
        .args(["update", input.to_str().unwrap(), "--confidence", "80"])
        .args(["--yes", "--run-tag", "engine-test"])
        .args([
            "--endpoint-url",
            &emu.url(),
            "--no-progress",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["outcomes"]["updated"], 4_000);
    let c = emu.state.counters();
    let requests = c.requests_for(Operation::BatchUpdateFindings);
    // 4,000 findings need 40 successful requests per Region. Without
    // adaptation, a client pacing at 10/s against 3/s would see about
    // 7 of every 10 requests throttled; adaptive pacing keeps 429s to a
    // minority of all requests.
    let successes = c.outcome(Operation::BatchUpdateFindings, "200");
    assert!(
        c.throttled < successes,
        "throttled {} vs {} successful (of {requests})",
        c.throttled,
        successes
    );
    for k in &keys {
        assert_eq!(emu.state.finding(k).unwrap()["Confidence"], 80);
    }
}

// ---------------------------------------------------------------------------
// Library-level tests: engine::run with inputs built in the test.

use sechub_triage::decision::Decision;
use sechub_triage::engine::{self, EngineConfig, Input};
use sechub_triage::events::NullSink;
use sechub_triage::model::{Location, OutcomeKind, SourceItem, SourceRecord};
use sechub_triage::reporting::{Outcome, OutcomeSink, RunSummary};
use sechub_triage::submission::{AwsSettings, Submitter};

#[derive(Clone, Default)]
struct Collect(Arc<std::sync::Mutex<Vec<Outcome>>>);

impl OutcomeSink for Collect {
    fn record(&mut self, o: &Outcome) -> std::io::Result<()> {
        self.0.lock().unwrap().push(o.clone());
        Ok(())
    }
}

fn submitter(emu: &Emu) -> Submitter {
    let sdk = emu.rt.block_on(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "AKIDLIB",
                "lib-secret",
                None,
                None,
                "test",
            ))
            .load(),
    );
    Submitter::from_sdk_config(
        sdk,
        &AwsSettings {
            endpoint_url: Some(emu.url()),
            request_timeout: Some(Duration::from_secs(20)),
            ..AwsSettings::default()
        },
    )
}

fn records(keys: &[FindingKey]) -> Input {
    records_with("test-input", keys, |_, _| {})
}

/// Records for `keys` (file `file`, rows 1..), each adjusted by `adjust`.
fn records_with(
    file: &str,
    keys: &[FindingKey],
    adjust: impl Fn(usize, &mut SourceRecord),
) -> Input {
    let file: Arc<str> = file.into();
    let items: Vec<Result<SourceItem, engine::InputError>> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let mut r = SourceRecord::new(
                Location {
                    file: file.clone(),
                    row: i as u64 + 1,
                    detail: None,
                },
                k.clone(),
            );
            adjust(i, &mut r);
            Ok(SourceItem::Record(r))
        })
        .collect();
    Box::new(items.into_iter())
}

fn run_engine(
    emu: &Emu,
    config: &EngineConfig,
    input: Input,
    decision: Decision,
) -> (RunSummary, Vec<Outcome>) {
    let sink = Collect::default();
    let summary = emu
        .rt
        .block_on(engine::run(
            config,
            input,
            Arc::new(decision),
            Arc::new(submitter(emu)),
            vec![Box::new(sink.clone())],
            Arc::new(NullSink),
        ))
        .unwrap();
    let outcomes = sink.0.lock().unwrap().clone();
    (summary, outcomes)
}

fn suppress() -> Decision {
    sechub_triage::decision::parse_flag(
        sechub_triage::decision::DecisionField::Workflow,
        &["Status=SUPPRESSED".to_owned()],
    )
    .unwrap()
}

/// A request rejected as a whole (`InvalidInputException`) is split until
/// the offending finding is isolated; everything else is updated.
#[test]
fn whole_request_invalid_input_is_narrowed_to_the_bad_finding() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let mut keys = emu.state.seed_synthetic(&SyntheticSpec {
        count: 250,
        seed: 5,
        ..SyntheticSpec::default()
    });
    // Route everything to one Region so all findings share chunks.
    let region = keys[0].product_arn.split(':').nth(3).unwrap().to_owned();
    keys.retain(|k| k.product_arn.split(':').nth(3) == Some(region.as_str()));
    let n = keys.len();
    // An Id over the ASFF limit of 512 characters makes the service reject the request.
    let bad = FindingKey::new("x".repeat(600), keys[0].product_arn.clone());
    keys.insert(n / 2, bad.clone());
    let config = EngineConfig::default();
    let (summary, outcomes) = run_engine(&emu, &config, records(&keys), suppress());
    assert_eq!(outcomes.len(), keys.len());
    assert_eq!(summary.count(OutcomeKind::Updated) as usize, n);
    let failed: Vec<_> = outcomes
        .iter()
        .filter(|o| o.kind == OutcomeKind::Failed)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].key.as_ref(), Some(&bad));
    assert_eq!(failed[0].code.as_deref(), Some("InvalidInputException"));
    let c = emu.state.counters();
    // ceil(n/100) full requests, plus two halves per level of splitting (log2 100 < 7).
    let requests = c.requests_for(Operation::BatchUpdateFindings);
    assert!(
        requests <= (n as u64).div_ceil(100) + 2 * 7,
        "{requests} requests"
    );
}

/// Conflicts injected by the service are retried until they go through.
#[test]
fn concurrent_update_errors_are_retried_to_success() {
    let mut config = EmulatorConfig::unthrottled();
    config.random_seed = 99;
    config.faults.concurrent_update_error = 0.3;
    config.faults.internal_failure = 0.1;
    let emu = Emu::start(config);
    let keys = emu.state.seed_synthetic(&SyntheticSpec {
        count: 1_000,
        seed: 8,
        ..SyntheticSpec::default()
    });
    let engine_config = EngineConfig {
        max_attempts: 30,
        ..EngineConfig::default()
    };
    let (summary, outcomes) = run_engine(&emu, &engine_config, records(&keys), suppress());
    assert_eq!(outcomes.len(), 1_000);
    assert_eq!(summary.count(OutcomeKind::Updated), 1_000, "{summary:?}");
    assert!(summary.unprocessed_by_code["ConcurrentUpdateError"] > 200);
    assert!(outcomes.iter().any(|o| o.attempts > 1));
    let c = emu.state.counters();
    assert_eq!(c.finding_outcome("Processed"), 1_000);
    // Retried findings were rebatched, not sent one by one: far fewer
    // requests than retried findings.
    let requests = c.requests_for(Operation::BatchUpdateFindings);
    assert!(
        requests < 10 + summary.retries / 10,
        "{requests} requests for {} retries",
        summary.retries
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Row {
        Existing(usize),
        Missing(usize),
        Invalid,
    }

    fn row() -> impl Strategy<Value = Row> {
        prop_oneof![
            8 => (0usize..300).prop_map(Row::Existing),
            1 => (0usize..50).prop_map(Row::Missing),
            1 => Just(Row::Invalid),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, .. ProptestConfig::default() })]

        /// Whatever the input and the faults: every record ends in exactly
        /// one outcome; no request carries more than 100 identifiers or
        /// one identifier twice; no finding is in two requests at once
        /// (the emulator detects real conflicts, and none is injected here).
        #[test]
        fn every_record_ends_in_exactly_one_outcome(
            rows in proptest::collection::vec(row(), 0..700),
            seed in any::<u64>(),
            p500 in 0.0f64..0.2,
            pdrop in 0.0f64..0.1,
            pinternal in 0.0f64..0.2,
        ) {
            let mut config = EmulatorConfig::unthrottled();
            config.random_seed = seed;
            config.faults.http_500 = p500;
            config.faults.drop_connection = pdrop;
            config.faults.internal_failure = pinternal;
            config.faults.latency_jitter = Duration::from_millis(3);
            let emu = Emu::start(config);
            let pool = emu.state.seed_synthetic(&SyntheticSpec { count: 300, seed: 1, ..SyntheticSpec::default() });
            let file: Arc<str> = "prop".into();
            let items: Vec<Result<SourceItem, engine::InputError>> = rows.iter().enumerate().map(|(i, r)| {
                let location = Location { file: file.clone(), row: i as u64 + 1, detail: None };
                Ok(match r {
                    Row::Existing(j) => SourceItem::Record(SourceRecord::new(location, pool[*j].clone())),
                    Row::Missing(j) => SourceItem::Record(SourceRecord::new(location, missing_key(*j))),
                    Row::Invalid => SourceItem::Invalid(sechub_triage::model::InvalidRecord {
                        location, column: Some("Id".into()), reason: "empty".into(), key: None,
                    }),
                })
            }).collect();
            let mut engine_config = EngineConfig { max_attempts: 40, seed: Some(seed), ..EngineConfig::default() };
            engine_config.backoff.cap = Duration::from_millis(200);
            let (summary, outcomes) = run_engine(&emu, &engine_config, Box::new(items.into_iter()), suppress());

            // One outcome per record, rows 1..=n each once.
            prop_assert_eq!(outcomes.len(), rows.len());
            let mut seen: Vec<u64> = outcomes.iter().map(|o| o.location.row).collect();
            seen.sort_unstable();
            prop_assert_eq!(seen, (1..=rows.len() as u64).collect::<Vec<_>>());
            prop_assert_eq!(summary.records as usize, rows.len());
            prop_assert_eq!(summary.outcomes.values().sum::<u64>() as usize, rows.len());

            // Each distinct existing finding updated once; each distinct
            // missing one failed once; the rest are duplicates or invalid.
            let mut first = HashSet::new();
            for (r, o) in rows.iter().zip({
                let mut v = outcomes.clone();
                v.sort_by_key(|o| o.location.row);
                v
            }) {
                let want = match r {
                    Row::Invalid => OutcomeKind::Invalid,
                    Row::Existing(j) if first.insert(pool[*j].clone()) => OutcomeKind::Updated,
                    Row::Missing(j) if first.insert(missing_key(*j)) => OutcomeKind::Failed,
                    _ => OutcomeKind::Duplicate,
                };
                prop_assert_eq!(o.kind, want, "row {:?}: {:?}", r, o);
                if want == OutcomeKind::Failed {
                    prop_assert_eq!(o.code.as_deref(), Some("FindingNotFound"));
                }
            }
            let c = emu.state.counters();
            prop_assert_eq!(c.finding_outcome("ConcurrentUpdateError"), 0);
            prop_assert_eq!(c.finding_outcome("DuplicatedFindingIdentifier"), 0);
            prop_assert_eq!(c.error_code("InvalidInputException"), 0);
            prop_assert_eq!(c.requests_for(Operation::BatchUpdateFindings), summary.requests);
        }
    }
}

/// `--cli-input-json` takes the AWS CLI's document: its FindingIdentifiers
/// are the input and its members the decision; a flag overrides a member.
#[test]
fn cli_input_json_identifiers_join_the_input() {
    let emu = Emu::start(EmulatorConfig::default());
    let keys = emu.state.seed_synthetic(&SyntheticSpec {
        count: 3,
        seed: 21,
        ..SyntheticSpec::default()
    });
    let doc = serde_json::json!({
        "FindingIdentifiers": keys.iter().map(|k| serde_json::json!({"Id": k.id, "ProductArn": k.product_arn})).collect::<Vec<_>>(),
        "Workflow": {"Status": "RESOLVED"},
        "Note": {"Text": "from the document", "UpdatedBy": "cli-input-json"},
        "Criticality": 10
    });
    let dir = tempfile::tempdir().unwrap();
    let out = triage(dir.path())
        .args([
            "update",
            "--cli-input-json",
            &doc.to_string(),
            "--criticality",
            "55",
        ])
        .args([
            "--endpoint-url",
            &emu.url(),
            "--no-progress",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for k in &keys {
        let f = emu.state.finding(k).unwrap();
        assert_eq!(f["Workflow"]["Status"], "RESOLVED");
        assert_eq!(f["Note"]["Text"], "from the document");
        assert_eq!(f["Criticality"], 55, "the flag wins over the document");
    }
}

/// Without `--region`, each finding goes to the Region of its ProductArn;
/// with it, everything goes to that Region (the aggregation Region case).
#[test]
fn region_routing_by_product_arn_or_to_the_aggregation_region() {
    let mut config = EmulatorConfig::default();
    config.semantics.home_region = Some("us-east-1".into());
    let emu = Emu::start(config);
    let keys = emu.state.seed_synthetic(&SyntheticSpec {
        count: 400,
        seed: 31,
        regions: vec![
            "us-east-1".into(),
            "eu-west-1".into(),
            "ap-southeast-2".into(),
        ],
        ..SyntheticSpec::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let rows: Vec<String> = keys.iter().map(key_row).collect();
    write_csv(&input, "id,product_arn", &rows);
    let run = |extra: &[&str]| {
        let out = triage(dir.path())
            .args([
                "update",
                input.to_str().unwrap(),
                "--verification-state",
                "BENIGN_POSITIVE",
            ])
            .args([
                "--endpoint-url",
                &emu.url(),
                "--no-progress",
                "--output",
                "json",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let by_arn = run(&[]);
    assert_eq!(by_arn["outcomes"]["updated"], 400);
    for k in &keys {
        assert_eq!(emu.state.update_count(k), 1);
    }
    // Three Regions, three limiters: at least one request per Region.
    assert!(by_arn["requests"].as_u64().unwrap() >= 6);
    emu.state.reset_counters();
    let aggregated = run(&["--region", "us-east-1"]);
    assert_eq!(aggregated["outcomes"]["updated"], 400);
    assert_eq!(
        aggregated["requests"], 4,
        "400 findings in one Region: four full requests"
    );
    // The counters were reset between the runs: each finding once more.
    for k in &keys {
        assert_eq!(emu.state.update_count(k), 1);
    }
}

/// Records carrying their own decision fields are updated with their own
/// effective decision, with the fewest requests grouping allows; a per-row
/// value that breaks a rule makes that record invalid, not the run.
#[test]
fn per_record_decisions_are_grouped_into_the_fewest_requests() {
    use sechub_triage::decision::{DecisionField, parse_flag};
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let keys = emu.state.seed_synthetic(&SyntheticSpec {
        count: 450,
        seed: 41,
        regions: vec!["us-east-1".into()],
        ..SyntheticSpec::default()
    });
    let resolved =
        Arc::new(parse_flag(DecisionField::Workflow, &["Status=RESOLVED".to_owned()]).unwrap());
    let noted = Arc::new(
        parse_flag(
            DecisionField::Note,
            &["Text=team B,UpdatedBy=team-b".to_owned()],
        )
        .unwrap(),
    );
    let bad = Arc::new(Decision {
        confidence: Some(150),
        ..Decision::default()
    });
    // Rows cycle: job decision only, RESOLVED, a note, and every 50th row
    // an out-of-range Confidence.
    let input = records_with("mixed", &keys, |i, r| {
        r.decision = match i % 3 {
            _ if i % 50 == 49 => Some(bad.clone()),
            0 => None,
            1 => Some(resolved.clone()),
            _ => Some(noted.clone()),
        };
    });
    let job = suppress(); // Workflow SUPPRESSED for every row
    let (summary, outcomes) = run_engine(&emu, &EngineConfig::default(), input, job);
    assert_eq!(outcomes.len(), 450);
    let invalid: Vec<_> = outcomes
        .iter()
        .filter(|o| o.kind == OutcomeKind::Invalid)
        .collect();
    assert_eq!(invalid.len(), 9);
    assert!(
        invalid
            .iter()
            .all(|o| o.code.as_deref() == Some("Confidence")),
        "{invalid:?}"
    );
    assert!(
        invalid[0]
            .message
            .as_deref()
            .unwrap()
            .contains("out of range")
    );
    assert_eq!(summary.count(OutcomeKind::Updated), 441);
    let mut groups = [0u64; 3];
    for (i, k) in keys.iter().enumerate() {
        if i % 50 == 49 {
            assert_eq!(emu.state.update_count(k), 0);
            continue;
        }
        let f = emu.state.finding(k).unwrap();
        match i % 3 {
            0 => assert_eq!(f["Workflow"]["Status"], "SUPPRESSED"),
            1 => assert_eq!(f["Workflow"]["Status"], "RESOLVED"),
            _ => {
                // The row's note joins the job's workflow.
                assert_eq!(f["Workflow"]["Status"], "SUPPRESSED");
                assert_eq!(f["Note"]["Text"], "team B");
            }
        }
        groups[i % 3] += 1;
    }
    let fewest: u64 = groups.iter().map(|g| g.div_ceil(100)).sum();
    assert_eq!(
        emu.state
            .counters()
            .requests_for(Operation::BatchUpdateFindings),
        fewest
    );
}

/// `--skip-unchanged` sends nothing for findings whose recorded state
/// already holds the decision, and records them as unchanged.
#[test]
fn skip_unchanged_sends_nothing_for_findings_already_in_state() {
    use sechub_triage::model::CurrentState;
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let keys = emu.state.seed_synthetic(&SyntheticSpec {
        count: 300,
        seed: 51,
        ..SyntheticSpec::default()
    });
    // Two thirds already SUPPRESSED in the export, one third NEW.
    let input = records_with("export", &keys, |i, r| {
        let status = if i % 3 == 0 { "NEW" } else { "SUPPRESSED" };
        r.current = Some(Arc::new(CurrentState {
            workflow_status: Some(status.into()),
            ..CurrentState::default()
        }));
    });
    let config = EngineConfig {
        skip_unchanged: true,
        ..EngineConfig::default()
    };
    let (summary, outcomes) = run_engine(&emu, &config, input, suppress());
    assert_eq!(outcomes.len(), 300);
    assert_eq!(summary.count(OutcomeKind::Unchanged), 200);
    assert_eq!(summary.count(OutcomeKind::Updated), 100);
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(emu.state.update_count(k), u64::from(i % 3 == 0), "row {i}");
    }
    let c = emu.state.counters();
    assert_eq!(
        c.finding_outcome("Processed"),
        100,
        "zero calls for unchanged findings"
    );
}
