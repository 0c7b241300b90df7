//! Emulator capacity (a bench binary, not criterion: each scenario is one
//! long run, measured once).
//!
//! 1. **Store**: seeds 1,000,000 synthetic findings and reports the time and
//!    the resident memory it took (from /proc/self/status).
//! 2. **BatchUpdateFindings over HTTP**, throttling off, against those 1M
//!    findings: requests of 100 identifiers per second, from a lean raw
//!    HTTP/1.1 keep-alive client (pre-built bodies, so the figure is the
//!    emulator's, not the client's), with 4 and 16 connections.
//! 3. The same through the real `aws-sdk-securityhub` client (signing,
//!    serialisation and parsing included), which is what the engine sees.
//!
//! Client and server share the machine's cores, so these are lower bounds.
//! Run: `cargo bench --bench emulator_capacity` (`-- --quick` for a smoke run).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_securityhub::config::retry::RetryConfig;
use aws_sdk_securityhub::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_securityhub::types::{AwsSecurityFindingIdentifier, WorkflowStatus, WorkflowUpdate};
use sechub_triage::emulator::{
    EmulatorConfig, EmulatorState, LocalEmulator, Operation, SyntheticSpec,
};
use sechub_triage::model::FindingKey;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDBENCH/20261121/us-east-1/securityhub/aws4_request, SignedHeaders=host, Signature=0";

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn body(keys: &[FindingKey]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "FindingIdentifiers": keys,
        "Workflow": {"Status": "NOTIFIED"},
        "Note": {"Text": "triaged by the capacity bench", "UpdatedBy": "bench"}
    }))
    .unwrap()
}

fn request(addr: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "PATCH /findings/batchupdate HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {AUTH}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// One keep-alive connection sending its pre-built requests in a loop until
/// `stop`; returns (requests, latencies in µs).
async fn raw_connection(
    addr: String,
    requests: Vec<Vec<u8>>,
    stop: Arc<AtomicBool>,
) -> (u64, Vec<u32>) {
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut n = 0u64;
    let mut lat = Vec::new();
    let mut line = String::new();
    let mut body = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let req = &requests[n as usize % requests.len()];
        let t = Instant::now();
        wr.write_all(req).await.unwrap();
        let mut len = 0usize;
        line.clear();
        rd.read_line(&mut line).await.unwrap();
        assert!(line.starts_with("HTTP/1.1 200"), "{line}");
        loop {
            line.clear();
            rd.read_line(&mut line).await.unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap();
            }
        }
        body.resize(len, 0);
        rd.read_exact(&mut body).await.unwrap();
        lat.push(t.elapsed().as_micros() as u32);
        n += 1;
    }
    (n, lat)
}

struct Run {
    requests: u64,
    secs: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn report(label: &str, r: &Run) {
    println!(
        "{label}: {:.0} requests/s of 100 ids ({:.0} findings/s), p50 {:.2} ms, p99 {:.2} ms ({} requests in {:.1} s)",
        r.requests as f64 / r.secs,
        r.requests as f64 * 100.0 / r.secs,
        r.p50_ms,
        r.p99_ms,
        r.requests,
        r.secs
    );
}

fn percentiles(mut lat: Vec<u32>) -> (f64, f64) {
    lat.sort_unstable();
    let at = |q: f64| {
        lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |&v| f64::from(v) / 1000.0)
    };
    (at(0.5), at(0.99))
}

async fn raw_run(
    state: &EmulatorState,
    addr: &str,
    keys: &[FindingKey],
    conns: usize,
    warmup: Duration,
    measure: Duration,
) -> Run {
    // Disjoint key ranges per connection: no ConcurrentUpdateError noise.
    let per = keys.len() / conns / 100 * 100;
    let mut tasks = Vec::new();
    let stop = Arc::new(AtomicBool::new(false));
    for c in 0..conns {
        let mine = &keys[c * per..(c + 1) * per];
        let reqs: Vec<Vec<u8>> = mine
            .chunks(100)
            .take(200)
            .map(|ch| request(addr, &body(ch)))
            .collect();
        tasks.push(tokio::spawn(raw_connection(
            addr.to_owned(),
            reqs,
            stop.clone(),
        )));
    }
    // The window is measured with the emulator's own count of answers.
    let served = || {
        state
            .counters()
            .outcome(Operation::BatchUpdateFindings, "200")
    };
    tokio::time::sleep(warmup).await;
    let (n0, t0) = (served(), Instant::now());
    tokio::time::sleep(measure).await;
    let (n1, secs) = (served(), t0.elapsed().as_secs_f64());
    stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap().1);
    }
    let (p50, p99) = percentiles(lat);
    Run {
        requests: n1 - n0,
        secs,
        p50_ms: p50,
        p99_ms: p99,
    }
}

async fn sdk_run(url: &str, keys: &[FindingKey], tasks_n: usize, measure: Duration) -> Run {
    let config = aws_sdk_securityhub::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDBENCH", "secret", None, None, "bench"))
        .endpoint_url(url)
        .retry_config(RetryConfig::disabled())
        .build();
    let client = aws_sdk_securityhub::Client::from_conf(config);
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let per = keys.len() / tasks_n / 100 * 100;
    let mut tasks = Vec::new();
    for t in 0..tasks_n {
        let chunks: Vec<Vec<AwsSecurityFindingIdentifier>> = keys[t * per..(t + 1) * per]
            .chunks(100)
            .take(100)
            .map(|ch| {
                ch.iter()
                    .map(|k| {
                        AwsSecurityFindingIdentifier::builder()
                            .id(&k.id)
                            .product_arn(&k.product_arn)
                            .build()
                    })
                    .collect()
            })
            .collect();
        let (client, stop, count) = (client.clone(), stop.clone(), count.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                let out = client
                    .batch_update_findings()
                    .set_finding_identifiers(Some(chunks[i % chunks.len()].clone()))
                    .workflow(
                        WorkflowUpdate::builder()
                            .status(WorkflowStatus::Notified)
                            .build(),
                    )
                    .send()
                    .await
                    .unwrap();
                assert_eq!(out.processed_findings().len(), 100);
                lat.push(t0.elapsed().as_micros() as u32);
                count.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
            lat
        }));
    }
    let t0 = Instant::now();
    tokio::time::sleep(measure).await;
    stop.store(true, Ordering::Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let (p50, p99) = percentiles(lat);
    Run {
        requests: count.load(Ordering::Relaxed),
        secs,
        p50_ms: p50,
        p99_ms: p99,
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let count = if quick { 100_000 } else { 1_000_000 };
    let (warmup, measure) = if quick {
        (Duration::from_millis(500), Duration::from_secs(2))
    } else {
        (Duration::from_secs(2), Duration::from_secs(10))
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("emulator capacity bench: {cores} cores, {count} findings");

    // 1. The store.
    let rss0 = rss_kib();
    let state = EmulatorState::new(EmulatorConfig::unthrottled());
    let t = Instant::now();
    let keys = state.seed_synthetic(&SyntheticSpec {
        regions: vec!["us-east-1".into()],
        ..SyntheticSpec::new(count, 1)
    });
    let seed_secs = t.elapsed().as_secs_f64();
    let rss1 = rss_kib();
    // The returned keys are part of the delta; estimate them (two heap
    // strings, each rounded to malloc's 16-byte granularity plus its header)
    // to report the store alone.
    let keys_bytes: usize = keys
        .iter()
        .map(|k| 48 + (k.id.len() / 16 + 2) * 16 + (k.product_arn.len() / 16 + 2) * 16)
        .sum();
    let delta = (rss1 - rss0) as f64 * 1024.0;
    println!(
        "seeding {count} synthetic findings: {seed_secs:.2} s ({:.0} findings/s); resident memory +{:.0} MiB, \
         of which the returned key list ~{:.0} MiB: store ~{:.0} MiB ({:.0} bytes/finding)",
        count as f64 / seed_secs,
        delta / 1048576.0,
        keys_bytes as f64 / 1048576.0,
        (delta - keys_bytes as f64) / 1048576.0,
        (delta - keys_bytes as f64) / count as f64
    );

    // 2. and 3. Over HTTP.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = LocalEmulator::start_with_state(state.clone())
            .await
            .unwrap();
        let addr = server.addr().to_string();
        for conns in [4, 16] {
            state.reset_counters();
            let r = raw_run(&state, &addr, &keys, conns, warmup, measure).await;
            let c = state.counters();
            assert_eq!(c.finding_outcome("ConcurrentUpdateError"), 0);
            assert_eq!(c.error_codes.len(), 0, "{:?}", c.error_codes);
            report(&format!("raw HTTP client, {conns} connections"), &r);
        }
        state.reset_counters();
        let r = sdk_run(&format!("http://{addr}"), &keys, 16, measure).await;
        report("aws-sdk-securityhub client, 16 tasks", &r);
        println!(
            "peak in flight during the SDK run: {}",
            state.counters().max_in_flight
        );
        server.shutdown().await.unwrap();
    });
    println!(
        "resident memory at the end: {:.0} MiB",
        rss_kib() as f64 / 1024.0
    );
}
