//! Engine benchmarks against the emulator on 127.0.0.1 (a bench binary, not
//! criterion: each scenario is one long run, measured once).
//!
//! 1. **Quota-bound**: the documented quota (10 requests/s, burst 30) and
//!    100 ms of added latency, 30,000 findings in one Region (and again with
//!    400 ms and 10,000 findings, a slower service). Reports achieved
//!    findings/s against the ideal the quota allows, and, in the same run, a
//!    sequential baseline (one request at a time, as a hand-written boto3
//!    loop does) and the ratio.
//!    The same run has a **V2** scenario beside it: `BatchUpdateFindingsV2`
//!    (the new Security Hub) at the assumed "all other operations" quota
//!    (10/s burst 30), 100 ms latency, the same number of findings, named by
//!    OCSF triples; reported as requests/s against the quota's ideal, next
//!    to the V1 figure.
//! 2. **Capacity**: throttling off, no latency, 200,000 findings. Reports the
//!    engine's own throughput and its CPU time per 1,000 findings (process
//!    CPU minus the emulator's threads, read from /proc).
//! 3. **Query**: a `--filters` run of 5,000 findings (the binary, as a child
//!    process) against the emulator with the documented quotas (GetFindings
//!    3/s burst 6, updates 10/s burst 30), paging by offset, 100 ms
//!    latency; in the same run, the same findings exported by the same query
//!    and then updated from the file. Reports each against its ideal: the
//!    query alone is read-bound (50 pages: the burst, then 3/s), the file
//!    run update-bound, the query-driven run the slower of the two when
//!    reading and updating overlap (plus one update's latency), and their
//!    sum when the selection is snapshotted first (`--query-snapshot`).
//!
//! Run: `cargo bench --bench engine` (`-- --quick` for a shorter smoke run;
//! `-- query`, `-- quota`, `-- v2` or `-- capacity` for one scenario).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sechub_triage::decision::{Decision, DecisionField, parse_flag};
use sechub_triage::emulator::{EmulatorConfig, EmulatorState, LocalEmulator, SyntheticSpec};
use sechub_triage::engine::{self, EngineConfig, Input};
use sechub_triage::events::NullSink;
use sechub_triage::limits::RateConfig;
use sechub_triage::model::{FindingKey, Location, OutcomeKind, SourceItem, SourceRecord};
use sechub_triage::submission::v2::BatchUpdateFindingsV2;
use sechub_triage::submission::{AwsSettings, Submitter};

struct Emu {
    url: String,
    state: EmulatorState,
    // Dropped (told to stop) before its runtime.
    _server: LocalEmulator,
    _rt: tokio::runtime::Runtime,
}

/// The emulator on its own runtime, with threads named `emulator-*` so that
/// their CPU time can be told apart from the engine's.
fn start_emulator(config: EmulatorConfig, findings: usize) -> (Emu, Vec<FindingKey>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("emulator-rt")
        .enable_all()
        .build()
        .unwrap();
    let state = EmulatorState::new(config);
    let keys = state.seed_synthetic(&SyntheticSpec {
        count: findings,
        seed: 1,
        regions: vec!["us-east-1".into()],
        ..SyntheticSpec::default()
    });
    let server = LocalEmulator::start_on(rt.handle(), state.clone()).unwrap();
    (
        Emu {
            url: server.url(),
            state,
            _server: server,
            _rt: rt,
        },
        keys,
    )
}

fn input(keys: &[FindingKey]) -> Input {
    let file: Arc<str> = "bench".into();
    let keys = keys.to_vec();
    Box::new(keys.into_iter().enumerate().map(move |(i, key)| {
        Ok(SourceItem::Record(SourceRecord::new(
            Location {
                file: file.clone(),
                row: i as u64 + 1,
                detail: None,
            },
            key,
        )))
    }))
}

async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "AKIDBENCH",
            "bench-secret",
            None,
            None,
            "bench",
        ))
        .load()
        .await
}

fn decision() -> Decision {
    parse_flag(DecisionField::Workflow, &["Status=SUPPRESSED".to_owned()]).unwrap()
}

/// CPU seconds (user + system) from a /proc stat line's fields 14 and 15.
fn stat_cpu(stat: &str) -> f64 {
    let after = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0);
    ticks / 100.0 // USER_HZ is 100 on Linux
}

fn process_cpu() -> f64 {
    stat_cpu(&std::fs::read_to_string("/proc/self/stat").unwrap())
}

fn emulator_threads_cpu() -> f64 {
    let mut total = 0.0;
    for t in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.starts_with("emulator") {
            total += stat_cpu(&std::fs::read_to_string(t.path().join("stat")).unwrap_or_default());
        }
    }
    total
}

fn run_engine(
    rt: &tokio::runtime::Runtime,
    url: &str,
    config: &EngineConfig,
    keys: &[FindingKey],
) -> (Duration, u64, u64) {
    let started = Instant::now();
    let summary = rt.block_on(async {
        let submitter = Submitter::from_sdk_config(
            sdk_config().await,
            &AwsSettings {
                endpoint_url: Some(url.to_owned()),
                ..AwsSettings::default()
            },
        );
        engine::run(
            config,
            input(keys),
            Arc::new(decision()),
            Arc::new(submitter),
            Vec::new(),
            Arc::new(NullSink),
        )
        .await
        .unwrap()
    });
    (
        started.elapsed(),
        summary.count(OutcomeKind::Updated),
        summary.requests,
    )
}

/// One request at a time, 100 findings each, retrying a throttled request
/// after a 1 s sleep: what a hand-written boto3 loop does.
fn run_sequential(rt: &tokio::runtime::Runtime, url: &str, keys: &[FindingKey]) -> (Duration, u64) {
    let started = Instant::now();
    let updated = rt.block_on(async {
        let conf = aws_sdk_securityhub::config::Builder::from(&sdk_config().await)
            .endpoint_url(url)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        let client = aws_sdk_securityhub::Client::from_conf(conf);
        let mut updated = 0u64;
        for chunk in keys.chunks(100) {
            let ids: Vec<_> = chunk
                .iter()
                .map(|k| {
                    aws_sdk_securityhub::types::AwsSecurityFindingIdentifier::builder()
                        .id(&k.id)
                        .product_arn(&k.product_arn)
                        .build()
                })
                .collect();
            loop {
                let r = client
                    .batch_update_findings()
                    .set_finding_identifiers(Some(ids.clone()))
                    .workflow(
                        aws_sdk_securityhub::types::WorkflowUpdate::builder()
                            .status(aws_sdk_securityhub::types::WorkflowStatus::Suppressed)
                            .build(),
                    )
                    .send()
                    .await;
                match r {
                    Ok(out) => {
                        updated += out.processed_findings().len() as u64;
                        break;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                }
            }
        }
        updated
    });
    (started.elapsed(), updated)
}

fn quota_bound(engine_rt: &tokio::runtime::Runtime, n: usize, latency: Duration) {
    let mut config = EmulatorConfig::default();
    config.faults.latency = latency;
    let (emu, keys) = start_emulator(config, n);
    let engine_config = EngineConfig::default();
    let (t_engine, updated, requests) = run_engine(engine_rt, &emu.url, &engine_config, &keys);
    assert_eq!(updated as usize, n);
    let quota = RateConfig::DOCUMENTED;
    let min_requests = n.div_ceil(100) as f64;
    let ideal = ((min_requests - quota.burst as f64).max(0.0) / quota.rate) + latency.as_secs_f64();
    let throttled_engine = emu.state.counters().throttled;
    emu.state.reset_counters();
    let (t_seq, seq_updated) = run_sequential(engine_rt, &emu.url, &keys);
    assert_eq!(seq_updated as usize, n);
    let throttled_seq = emu.state.counters().throttled;
    drop(emu);
    println!(
        "quota-bound: {n} findings, quota {}/s burst {}, latency {} ms",
        quota.rate,
        quota.burst,
        latency.as_millis()
    );
    println!(
        "  engine:     {:>7.2} s  {:>7.1} findings/s  {:>6.2} requests/s  ({requests} requests, {throttled_engine} throttled)",
        t_engine.as_secs_f64(),
        n as f64 / t_engine.as_secs_f64(),
        requests as f64 / t_engine.as_secs_f64()
    );
    println!(
        "  ideal:      {:>7.2} s  {:>7.1} findings/s  -> engine at {:.1}% of ideal",
        ideal,
        n as f64 / ideal,
        100.0 * ideal / t_engine.as_secs_f64()
    );
    println!(
        "  sequential: {:>7.2} s  {:>7.1} findings/s  ({throttled_seq} throttled) -> engine {:.2}x faster",
        t_seq.as_secs_f64(),
        n as f64 / t_seq.as_secs_f64(),
        t_seq.as_secs_f64() / t_engine.as_secs_f64()
    );
}

/// The V2 twin of [`quota_bound`]'s engine run: OCSF findings, named by
/// their triples, `--status-id 2`. Returns (seconds, requests).
fn quota_bound_v2(engine_rt: &tokio::runtime::Runtime, n: usize, latency: Duration) -> (f64, u64) {
    let mut config = EmulatorConfig::default();
    config.faults.latency = latency;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("emulator-rt")
        .enable_all()
        .build()
        .unwrap();
    let state = EmulatorState::new(config);
    let ocsf = state.seed_synthetic_ocsf(&SyntheticSpec {
        count: n,
        seed: 1,
        regions: vec!["us-east-1".into()],
        ..SyntheticSpec::default()
    });
    let server = LocalEmulator::start_on(rt.handle(), state.clone()).unwrap();
    let url = server.url();
    let keys: Vec<FindingKey> = ocsf
        .iter()
        .map(|k| {
            FindingKey::ocsf(
                k.triple.cloud_account_uid.as_str(),
                k.triple.finding_info_uid.clone(),
                k.triple.metadata_product_uid.clone(),
            )
        })
        .collect();
    let started = Instant::now();
    let summary = engine_rt.block_on(async {
        let submitter = Submitter::from_sdk_config(
            sdk_config().await,
            &AwsSettings {
                endpoint_url: Some(url.clone()),
                ..AwsSettings::default()
            },
        );
        engine::run_operation(
            &EngineConfig::default(),
            input(&keys),
            Arc::new(parse_flag(DecisionField::StatusId, &["2".to_owned()]).unwrap()),
            Arc::new(BatchUpdateFindingsV2::new(Arc::new(submitter))),
            Vec::new(),
            Arc::new(NullSink),
            engine::RunControls::default(),
        )
        .await
        .unwrap()
    });
    let t = started.elapsed().as_secs_f64();
    assert_eq!(summary.count(OutcomeKind::Updated) as usize, n);
    let throttled = state.counters().throttled;
    drop(server);
    drop(rt);
    let quota = RateConfig::DOCUMENTED;
    let min_requests = n.div_ceil(100) as f64;
    let ideal = ((min_requests - quota.burst as f64).max(0.0) / quota.rate) + latency.as_secs_f64();
    println!(
        "quota-bound V2 (BatchUpdateFindingsV2): {n} findings, assumed quota {}/s burst {}, latency {} ms",
        quota.rate,
        quota.burst,
        latency.as_millis()
    );
    println!(
        "  engine:     {:>7.2} s  {:>7.2} requests/s  ({} requests, {throttled} throttled)",
        t,
        summary.requests as f64 / t,
        summary.requests
    );
    println!(
        "  ideal:      {:>7.2} s  {:>7.2} requests/s  -> engine at {:.1}% of ideal",
        ideal,
        min_requests / ideal,
        100.0 * ideal / t
    );
    (t, summary.requests)
}

const BIN: &str = env!("CARGO_BIN_EXE_sechub-triage");

/// The binary, with fake credentials and nothing of the user's.
fn triage(home: &std::path::Path) -> std::process::Command {
    let mut c = std::process::Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_ACCESS_KEY_ID", "AKIDBENCH")
        .env("AWS_SECRET_ACCESS_KEY", "bench-secret")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", home.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    c
}

/// Runs `c` to its end: seconds, and its stderr (it must succeed). First
/// waits for the emulator's buckets to refill (3 s: the update burst of 30
/// at 10/s; GetFindings' 6 at 3/s), so that no run pays for the last one.
fn timed(c: &mut std::process::Command) -> (f64, String) {
    std::thread::sleep(Duration::from_secs(3));
    let started = Instant::now();
    let out = c.output().unwrap();
    let t = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    (t, stderr)
}

/// Scenario 3: a query-driven run against the time the two quotas allow,
/// beside the same findings read from a file.
fn query_bound(n: usize, latency: Duration) {
    use sechub_triage::emulator::{Operation, Paging};
    let mut config = EmulatorConfig::default();
    config.faults.latency = latency;
    config.semantics.get_findings_paging = Paging::Offset;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("emulator-rt")
        .enable_all()
        .build()
        .unwrap();
    let state = EmulatorState::new(config);
    // n FAILED findings, and a fifth as many PASSED ones the query leaves out.
    let mut selected = Vec::new();
    for i in 0..n + n / 5 {
        let failed = i % 6 != 5 && selected.len() < n;
        let key = state
            .insert_finding(serde_json::json!({
                "SchemaVersion": "2018-10-08",
                "Id": format!("q{i:06}"),
                "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/securityhub",
                "GeneratorId": "g",
                "AwsAccountId": "123456789012",
                "CreatedAt": "2026-01-01T00:00:00Z",
                "UpdatedAt": "2026-01-02T00:00:00Z",
                "Severity": {"Label": "LOW", "Original": "2"},
                "Title": "t",
                "Description": "d",
                "Resources": [{"Type": "Other", "Id": "r"}],
                "Workflow": {"Status": "NEW"},
                "Compliance": {"Status": if failed { "FAILED" } else { "PASSED" }},
            }))
            .unwrap();
        if failed {
            selected.push(key);
        }
    }
    assert_eq!(selected.len(), n);
    let server = LocalEmulator::start_on(rt.handle(), state.clone()).unwrap();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let filters = r#"{"ComplianceStatus":[{"Value":"FAILED","Comparison":"EQUALS"}]}"#;
    let file = home.join("selection.jsonl");
    let update = |c: &mut std::process::Command| {
        c.args(["--note", "Text=accepted risk,UpdatedBy=bench"])
            .args(["--run-tag", "bench-query", "--yes", "--no-progress"])
            .args(["--endpoint-url", &url]);
    };
    let mut rounds = 0;
    let mut check = |what: &str| {
        rounds += 1;
        for k in &selected {
            assert_eq!(state.update_count(k), rounds, "{what}: {}", k.id);
        }
    };
    // The query alone (export), then the file it wrote.
    let (t_export, _) = timed(
        triage(home)
            .args([
                "export",
                "--filters",
                filters,
                "--endpoint-url",
                &url,
                "--out",
            ])
            .arg(&file),
    );
    let mut c = triage(home);
    c.arg("update").arg(&file);
    update(&mut c);
    let (t_file, _) = timed(&mut c);
    check("file");
    let mut c = triage(home);
    c.args(["update", "--filters", filters]);
    update(&mut c);
    // Counters are read as differences: resetting them resets the
    // per-finding update counts too.
    let (pages0, throttled0) = (
        state.counters().requests_for(Operation::GetFindings),
        state.counters().throttled,
    );
    let (t_overlap, stderr) = timed(&mut c);
    assert!(stderr.contains("updating at once"), "{stderr}");
    let pages = state.counters().requests_for(Operation::GetFindings) - pages0;
    let throttled = state.counters().throttled - throttled0;
    check("overlap");
    let mut c = triage(home);
    c.args(["update", "--filters", filters, "--query-snapshot"]);
    update(&mut c);
    let throttled0 = state.counters().throttled;
    let (t_snapshot, stderr) = timed(&mut c);
    assert!(stderr.contains("before the first update"), "{stderr}");
    let throttled_snapshot = state.counters().throttled - throttled0;
    check("snapshot");
    drop(server);
    drop(rt);

    let read = RateConfig {
        rate: 3.0,
        burst: 6,
    };
    let lat = latency.as_secs_f64();
    let p = n.div_ceil(100) as f64;
    let ideal_read = (p - read.burst as f64).max(0.0) / read.rate + lat;
    let quota = RateConfig::DOCUMENTED;
    let ideal_update = (p - quota.burst as f64).max(0.0) / quota.rate + lat;
    let ideal_overlap = (ideal_read + lat).max(ideal_update);
    let ideal_snapshot = ideal_read + ideal_update;
    println!(
        "query-bound: {n} findings selected by --filters (of {}), GetFindings {}/s burst {} paging by offset, updates {}/s burst {}, latency {} ms",
        n + n / 5,
        read.rate,
        read.burst,
        quota.rate,
        quota.burst,
        latency.as_millis()
    );
    let line = |what: &str, t: f64, ideal: f64| {
        println!(
            "  {what:<34} {t:>7.2} s  {:>7.1} findings/s  ideal {ideal:>6.2} s -> {:.1}% of ideal",
            n as f64 / t,
            100.0 * ideal / t
        );
    };
    line("export (the query alone)", t_export, ideal_read);
    line("update FILE", t_file, ideal_update);
    line("update --filters (overlap)", t_overlap, ideal_overlap);
    line(
        "update --filters --query-snapshot",
        t_snapshot,
        ideal_snapshot,
    );
    println!(
        "  overlap: {pages} GetFindings requests, {throttled} throttled ({throttled_snapshot} with the snapshot); overlap {:.2}x faster than the snapshot; the query-driven run at {:.2}x the read-bound floor",
        t_snapshot / t_overlap,
        t_overlap / ideal_read
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // `-- NAME`: only the scenarios whose name contains it.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wants = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    if wants("query") {
        query_bound(
            if quick { 3_000 } else { 5_000 },
            Duration::from_millis(100),
        );
        if filter.is_some() {
            return;
        }
    }
    let engine_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("engine-rt")
        .enable_all()
        .build()
        .unwrap();

    // 1. Quota-bound: the issue's scenario (100 ms), and a slower service
    // (400 ms), where a sequential loop falls far behind the quota.
    let scenarios: &[(usize, u64)] = if quick {
        &[(3_000, 100)]
    } else {
        &[(30_000, 100), (10_000, 400)]
    };
    if wants("quota") {
        for &(n, latency_ms) in scenarios {
            quota_bound(&engine_rt, n, Duration::from_millis(latency_ms));
        }
    }
    // 1b. The same quota-bound run for the new Security Hub, beside V1's.
    if wants("quota") || wants("v2") {
        let (n, latency_ms) = scenarios[0];
        quota_bound_v2(&engine_rt, n, Duration::from_millis(latency_ms));
    }
    if !wants("capacity") {
        return;
    }

    // 2. Capacity, throttling off.
    let n = if quick { 20_000 } else { 200_000 };
    let (emu, keys) = start_emulator(EmulatorConfig::unthrottled(), n);
    let fast = EngineConfig {
        rate: RateConfig {
            rate: 1_000_000.0,
            burst: 10_000,
        },
        concurrency: 32,
        ..EngineConfig::default()
    };
    let cpu0 = process_cpu() - emulator_threads_cpu();
    let (t, updated, requests) = run_engine(&engine_rt, &emu.url, &fast, &keys);
    let cpu = process_cpu() - emulator_threads_cpu() - cpu0;
    assert_eq!(updated as usize, n);
    drop(emu);
    println!("capacity (throttling off): {n} findings, {requests} requests");
    println!(
        "  engine:     {:>7.2} s  {:>9.0} findings/s  {:>7.0} requests/s; engine CPU {:.3} ms per 1,000 findings",
        t.as_secs_f64(),
        n as f64 / t.as_secs_f64(),
        requests as f64 / t.as_secs_f64(),
        1000.0 * cpu / (n as f64 / 1000.0)
    );
}
