//! Logs, run reports and secrets, end to end: the real binary against the
//! emulator on 127.0.0.1 through the real SDK client.
//!
//! - `--log-format json --log-level debug` gives one parseable line per
//!   request (Region, request id, chunk size, outcome, latency, attempt)
//!   that agrees with the results file and the summary;
//! - `--report FILE` agrees with the summary and carries the exit status the
//!   process ended with, also for failed runs;
//! - a recognisable secret key and session token appear in no output, at
//!   the most verbose log levels, on success, access denied and an
//!   unreachable endpoint.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use crate::support::{Emu, read_results as results_rows};
use sechub_triage::emulator::{Bucket, EmulatorConfig, FaultConfig, SyntheticSpec};
use sechub_triage::model::FindingKey;
use serde_json::Value;

/// Recognisable credentials: none of these may appear in any output.
const SECRET: &str = "wJalrSECRETxyzzyDoNotLeak0123456789abcdef";
const TOKEN: &str = "IQoJSESSIONTOKENxyzzyDoNotLeak9876543210";

fn seed(emu: &Emu, count: usize, regions: &[&str]) -> Vec<FindingKey> {
    emu.state.seed_synthetic(&SyntheticSpec {
        count,
        seed: 11,
        regions: regions.iter().map(|r| r.to_string()).collect(),
        ..SyntheticSpec::default()
    })
}

/// The binary with the recognisable credentials (and a session token) in
/// its environment and no access to any real configuration.
fn triage(home: &Path) -> Command {
    let mut c = crate::support::triage(home);
    c.current_dir(home)
        .env("AWS_ACCESS_KEY_ID", "AKIDOBSERVABILITY")
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_SESSION_TOKEN", TOKEN);
    c
}

fn show(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    // The JSON logs can be long: the end says most.
    let tail: String = err
        .chars()
        .rev()
        .take(4000)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!(
        "status {:?}\nstdout: {}\nstderr (end): {tail}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout)
    )
}

fn write_input(dir: &Path, keys: &[FindingKey]) -> std::path::PathBuf {
    let input = dir.join("in.csv");
    sechub_triage::emulator::write_keys_csv(keys, std::fs::File::create(&input).unwrap()).unwrap();
    input
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every stderr line, each of which must be one JSON object.
fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"))
        })
        .collect()
}

fn rfc3339(v: &Value) -> SystemTime {
    humantime::parse_rfc3339(v.as_str().unwrap()).unwrap()
}

/// One line per request at debug level, agreeing with the results file (the
/// chunk sizes add up to the attempts recorded per finding) and with the
/// summary; and a report that agrees with both.
#[test]
fn debug_logs_and_report_account_for_every_request() {
    let mut config = EmulatorConfig {
        random_seed: 5,
        faults: FaultConfig {
            concurrent_update_error: 0.05,
            http_500: 0.05,
            latency: Duration::from_millis(2),
            ..FaultConfig::default()
        },
        ..EmulatorConfig::default()
    };
    // A quota below what the run is told (burst 2 against --burst 50), so
    // that the first wave is surely partly throttled: failed requests and
    // retries show up whatever the random draws.
    config.throttle.batch_update = Bucket::new(20.0, 2);
    let emu = Emu::start(config);
    let regions = ["us-east-1", "eu-west-1"];
    // At most 1,000 findings: above that, a run needs a run tag and --yes.
    let keys = seed(&emu, 1000, &regions);
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path(), &keys);
    let results = dir.path().join("results.csv");
    let report = dir.path().join("report.json");
    // Global flags before the subcommand.
    let out = triage(dir.path())
        .args(["--log-format", "json", "--log-level", "debug"])
        .arg("update")
        .arg(&input)
        .args([
            "--workflow",
            "Status=RESOLVED",
            "--no-progress",
            "--output",
            "json",
        ])
        .args([
            "--endpoint-url",
            &emu.url(),
            "--rate",
            "50",
            "--burst",
            "50",
        ])
        .arg("--results")
        .arg(&results)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["outcomes"]["updated"], 1000);
    let requests = summary["requests"].as_u64().unwrap();

    let lines = json_lines(&out);
    let per_request: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            l["message"] == "BatchUpdateFindings answered"
                || l["message"] == "BatchUpdateFindings failed"
        })
        .collect();
    assert_eq!(per_request.len() as u64, requests, "one line per request");
    let mut chunk_total = 0;
    let mut seen_regions = BTreeSet::new();
    let mut failed_requests = 0;
    for l in &per_request {
        assert_eq!(l["level"], "DEBUG");
        assert_eq!(l["target"], "sechub_triage::engine");
        seen_regions.insert(l["region"].as_str().unwrap().to_owned());
        let chunk = l["chunk"].as_u64().unwrap();
        assert!((1..=100).contains(&chunk), "{l}");
        chunk_total += chunk;
        assert!(l["latency_ms"].is_u64(), "{l}");
        assert!(l["attempt"].as_u64().unwrap() >= 1, "{l}");
        // The emulator sends x-amzn-RequestId on every answer.
        let id = l["request_id"].as_str().unwrap();
        assert!(id.len() >= 16 && id != "-", "{l}");
        if l["message"] == "BatchUpdateFindings answered" {
            let p = l["processed"].as_u64().unwrap();
            let u = l["unprocessed"].as_u64().unwrap();
            assert_eq!(p + u, chunk, "{l}");
        } else {
            failed_requests += 1;
            assert!(
                l["error_code"].as_str().is_some_and(|c| !c.is_empty()),
                "{l}"
            );
        }
    }
    let want_regions: BTreeSet<String> = regions.iter().map(|r| r.to_string()).collect();
    assert_eq!(seen_regions, want_regions);
    assert!(
        failed_requests > 0,
        "the throttled requests show up as failed lines"
    );
    // Every time a finding travelled is one attempt in the results file.
    let rows = results_rows(&results);
    let attempts: u64 = rows
        .iter()
        .map(|r| r["attempts"].parse::<u64>().unwrap())
        .sum();
    assert_eq!(chunk_total, attempts);
    assert!(
        per_request
            .iter()
            .any(|l| l["attempt"].as_u64().unwrap() >= 2),
        "retries are logged with their attempt number"
    );

    let info: Vec<&Value> = lines.iter().filter(|l| l["level"] == "INFO").collect();
    assert!(
        info.iter()
            .any(|l| l["message"] == "run started" && l["rate"] == 50.0)
    );
    let finished = info
        .iter()
        .find(|l| l["message"] == "run finished")
        .expect("a run finished line");
    assert_eq!(finished["records"], 1000);
    assert_eq!(finished["updated"], 1000);
    assert_eq!(finished["requests"], requests);

    // The report.
    let r = read_json(&report);
    assert_eq!(r["state"], "finished");
    assert_eq!(r["exit_status"], 0);
    assert_eq!(r["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(r["command"], "update");
    assert_eq!(r["inputs"][0], input.to_str().unwrap());
    assert_eq!(r["summary"], summary, "the summary, whole");
    assert_eq!(r["pacing"]["requests"], requests);
    let per_region = r["pacing"]["regions"].as_object().unwrap();
    assert_eq!(
        per_region.keys().cloned().collect::<BTreeSet<_>>(),
        want_regions
    );
    let region_requests: u64 = per_region
        .values()
        .map(|v| v["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(region_requests, requests);
    let region_findings: u64 = per_region
        .values()
        .map(|v| v["findings_sent"].as_u64().unwrap())
        .sum();
    assert_eq!(region_findings, chunk_total);
    for v in per_region.values() {
        assert!(v["requests_per_second"].as_f64().unwrap() > 0.0, "{v}");
    }
    assert_eq!(r["throttled_requests"], summary["throttled"]);
    let failed_by_code: u64 = r["request_errors_by_code"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(failed_by_code, failed_requests);
    // Every resend has a code, and nothing else is a resend.
    let retries = r["retries_by_code"].as_object().unwrap();
    assert!(retries.contains_key("ConcurrentUpdateError"), "{r}");
    assert!(retries.contains_key("LimitExceededException"), "{r}");
    assert!(r["throttled_requests"].as_u64().unwrap() > 0, "{r}");
    let retried: u64 = retries.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(retried, summary["retries"].as_u64().unwrap(), "{r}");
    let started = rfc3339(&r["started_at"]);
    let ended = rfc3339(&r["ended_at"]);
    assert!(ended >= started);
}

/// The report is written at the start (so a monitor sees a job in
/// progress) and at the end with the status the process exits with, also
/// when the run fails.
#[test]
fn the_report_carries_the_exit_status_of_failed_runs() {
    let dir = tempfile::tempdir().unwrap();

    // Access denied: status 3.
    let emu = Emu::start(EmulatorConfig {
        faults: FaultConfig {
            access_denied: true,
            ..FaultConfig::default()
        },
        ..EmulatorConfig::default()
    });
    let keys = seed(&emu, 300, &["us-east-1"]);
    let input = write_input(dir.path(), &keys);
    let report = dir.path().join("denied.json");
    let out = triage(dir.path())
        .arg("update")
        .arg(&input)
        .args(["--workflow", "Status=RESOLVED", "--no-progress"])
        .args(["--endpoint-url", &emu.url(), "--concurrency", "1"])
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let r = read_json(&report);
    assert_eq!(r["exit_status"], 3);
    assert!(
        r["summary"]["aborted"]
            .as_str()
            .unwrap()
            .contains("AccessDenied")
    );
    assert_eq!(r["request_errors_by_code"]["AccessDeniedException"], 1);

    // Some findings missing: status 2.
    let emu = Emu::start(EmulatorConfig::default());
    let mut keys = seed(&emu, 50, &["us-east-1"]);
    keys.push(FindingKey::new(
        "not-in-the-emulator",
        "arn:aws:securityhub:us-east-1::product/aws/guardduty",
    ));
    let input = write_input(dir.path(), &keys);
    let report = dir.path().join("partial.json");
    let out = triage(dir.path())
        .arg("update")
        .arg(&input)
        .args(["--workflow", "Status=RESOLVED", "--no-progress"])
        .args(["--endpoint-url", &emu.url()])
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let r = read_json(&report);
    assert_eq!(r["exit_status"], 2);
    assert_eq!(r["summary"]["errors_by_code"]["FindingNotFound"], 1);

    // An input that does not exist: status 1, with the error.
    let report = dir.path().join("error.json");
    let out = triage(dir.path())
        .args([
            "update",
            "no-such-file.csv",
            "--workflow",
            "Status=RESOLVED",
        ])
        .args(["--endpoint-url", &emu.url()])
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let r = read_json(&report);
    assert_eq!(r["state"], "finished");
    assert_eq!(r["exit_status"], 1);
    assert!(
        r["error"].as_str().unwrap().contains("no-such-file.csv"),
        "{r}"
    );

    // An unwritable report path fails before anything is sent.
    let out = triage(dir.path())
        .arg("update")
        .arg(&input)
        .args(["--workflow", "Status=NEW", "--endpoint-url", &emu.url()])
        .args(["--report", "no-such-dir/report.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-dir/report.json"));
    assert_eq!(
        emu.state.update_count(&keys[0]),
        1,
        "only the earlier run updated it"
    );
}

/// A run stopped by its time budget exits with status 4 ("resume later"),
/// and so says its report.
#[test]
fn the_report_of_a_stopped_run_says_status_4() {
    let emu = Emu::start(EmulatorConfig::default());
    let keys = seed(&emu, 1000, &["us-east-1"]);
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path(), &keys);
    let report = dir.path().join("report.json");
    // Ten requests at one a second take nine seconds; new requests stop at
    // 5 s - max(grace 1 s, request timeout 1 s) - 2 s = 2 s.
    let out = triage(dir.path())
        .arg("update")
        .arg(&input)
        .args([
            "--workflow",
            "Status=RESOLVED",
            "--no-progress",
            "--output",
            "json",
        ])
        .args(["--endpoint-url", &emu.url(), "--rate", "1", "--burst", "1"])
        .args([
            "--time-budget",
            "5s",
            "--grace",
            "1s",
            "--request-timeout",
            "1s",
        ])
        .arg("--results")
        .arg(dir.path().join("results.csv"))
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let r = read_json(&report);
    assert_eq!(r["state"], "finished");
    assert_eq!(r["exit_status"], 4);
    let updated = r["summary"]["outcomes"]["updated"].as_u64().unwrap();
    assert!(updated > 0 && updated < 1000, "{r}");
    assert_eq!(r["pacing"]["requests"], r["summary"]["requests"]);
}

/// While a run holds the results file's lock, a second run on the same
/// files is refused (status 5) and leaves the first run's report alone;
/// SIGTERM then stops the first run, whose report says status 4.
#[test]
fn a_locked_out_run_leaves_the_report_alone_and_sigterm_reports_4() {
    let emu = Emu::start(EmulatorConfig::default());
    let keys = seed(&emu, 1000, &["us-east-1"]);
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path(), &keys);
    let report = dir.path().join("report.json");
    let results = dir.path().join("results.csv");
    let job = |extra: &[&str]| {
        let mut c = triage(dir.path());
        c.arg("update")
            .arg(&input)
            .args(["--workflow", "Status=RESOLVED", "--no-progress"])
            .args(["--endpoint-url", &emu.url()])
            .arg("--results")
            .arg(&results)
            .arg("--report")
            .arg(&report)
            .args(extra);
        c
    };
    // Ten requests at one every two seconds: about 18 s unless stopped.
    let mut first = job(&["--rate", "0.5", "--burst", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait (a hang guard, not a timing assertion) for its report to say
    // it is running.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let running = loop {
        if let Ok(text) = std::fs::read_to_string(&report)
            && let Ok(v) = serde_json::from_str::<Value>(&text)
        {
            break v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no report from the first run"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(running["state"], "running");
    assert_eq!(running["pid"], first.id());
    assert!(running["exit_status"].is_null());

    let second = job(&[]).output().unwrap();
    assert_eq!(second.status.code(), Some(5), "{}", show(&second));
    let after = read_json(&report);
    assert_eq!(
        after["pid"],
        first.id(),
        "the refused run left the report alone"
    );
    assert_eq!(after["state"], "running");

    // SIGTERM: a graceful stop, status 4, in the report too.
    let killed = Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = first.wait().unwrap();
    assert_eq!(status.code(), Some(4));
    let r = read_json(&report);
    assert_eq!(r["state"], "finished");
    assert_eq!(r["exit_status"], 4);
    assert_eq!(r["pid"], first.id());
    assert!(r["summary"]["stopped"].as_str().is_some(), "{r}");
}

#[test]
fn text_logs_and_bad_levels() {
    let emu = Emu::start(EmulatorConfig::default());
    let keys = seed(&emu, 20, &["us-east-1"]);
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path(), &keys);
    let out = triage(dir.path())
        .arg("update")
        .arg(&input)
        .args(["--workflow", "Status=NEW", "--endpoint-url", &emu.url()])
        .args(["--log-level", "info", "--no-progress"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("INFO") && stderr.contains("run finished"),
        "{stderr}"
    );
    assert!(stderr.contains("updated=20"), "{stderr}");
    assert!(
        !stderr.contains("BatchUpdateFindings answered"),
        "no debug at info: {stderr}"
    );

    let out = triage(dir.path())
        .arg("update")
        .arg(&input)
        .args(["--workflow", "Status=NEW", "--endpoint-url", &emu.url()])
        .args(["--log-level", "loud=="])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--log-level"));
    assert_eq!(
        emu.state.update_count(&keys[0]),
        1,
        "the bad run sent nothing"
    );
}

fn paths(p: &[std::path::PathBuf; 3]) -> Vec<&Path> {
    p.iter().map(|p| p.as_path()).collect()
}

/// Looks for the secret and the token in every output of a run.
fn assert_no_secret(what: &str, out: &Output, files: &[&Path]) {
    let mut texts = vec![
        (
            "stdout".to_owned(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ),
        (
            "stderr".to_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ),
    ];
    for f in files {
        if let Ok(t) = std::fs::read_to_string(f) {
            texts.push((f.display().to_string(), t));
        }
    }
    for (name, text) in texts {
        for needle in [SECRET, TOKEN] {
            // Also a prefix, in case something truncates or splits the value.
            for n in [needle, &needle[..16]] {
                assert!(!text.contains(n), "{what}: {n} found in {name}");
            }
        }
    }
}

#[test]
fn credentials_never_reach_logs_results_or_reports() {
    let dir = tempfile::tempdir().unwrap();
    // Fresh outputs for every run (a results file is a journal: reusing one
    // needs --resume).
    let mut run_no = 0;
    let mut with_outputs = |c: &mut Command| {
        run_no += 1;
        let out = dir.path().join(format!("run{run_no}"));
        std::fs::create_dir(&out).unwrap();
        let results = out.join("results.csv");
        let failed = out.join("failed.csv");
        let report = out.join("report.json");
        c.args([
            "--workflow",
            "Status=RESOLVED",
            "--no-progress",
            "--output",
            "json",
        ])
        .arg("--results")
        .arg(&results)
        .arg("--failed")
        .arg(&failed)
        .arg("--report")
        .arg(&report);
        [results, failed, report]
    };

    // 1. A successful run, our own logs at trace.
    let emu = Emu::start(EmulatorConfig::default());
    let keys = seed(&emu, 120, &["us-east-1", "eu-west-1"]);
    let input = write_input(dir.path(), &keys);
    let mut c = triage(dir.path());
    c.args([
        "update",
        input.to_str().unwrap(),
        "--endpoint-url",
        &emu.url(),
    ])
    .args(["--log-level", "trace", "--log-format", "json"]);
    let outputs = with_outputs(&mut c);
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("BatchUpdateFindings answered"),
        "trace includes the per-request lines"
    );
    assert_no_secret("success, --log-level trace", &out, &paths(&outputs));

    // 2. The same with every crate at trace (RUST_LOG), so that the SDK's
    // own request, identity and signing traces are written: it must redact.
    let mut c = triage(dir.path());
    c.args([
        "update",
        input.to_str().unwrap(),
        "--endpoint-url",
        &emu.url(),
    ])
    .args(["--log-format", "json"])
    .env("RUST_LOG", "trace");
    let outputs = with_outputs(&mut c);
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Proof that the risky traces were written (and so were checked).
    for needle in [
        "transmitting request",
        "x-amz-security-token",
        "resolved identity",
    ] {
        assert!(stderr.contains(needle), "the SDK traced {needle:?}");
    }
    assert_no_secret("success, RUST_LOG=trace", &out, &paths(&outputs));

    // 3. Credentials from a shared credentials file instead of the
    // environment, everything at trace (the profile parser traces too).
    let creds = dir.path().join("credentials");
    std::fs::write(
        &creds,
        format!(
            "[nightly]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = {SECRET}\naws_session_token = {TOKEN}\n"
        ),
    )
    .unwrap();
    let mut c = triage(dir.path());
    c.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env("AWS_SHARED_CREDENTIALS_FILE", &creds)
        .env("RUST_LOG", "trace")
        .args([
            "update",
            input.to_str().unwrap(),
            "--endpoint-url",
            &emu.url(),
        ])
        .args(["--profile", "nightly", "--log-format", "json"]);
    let outputs = with_outputs(&mut c);
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_no_secret(
        "profile credentials, RUST_LOG=trace",
        &out,
        &paths(&outputs),
    );

    // 4. Access denied.
    let denied = Emu::start(EmulatorConfig {
        faults: FaultConfig {
            access_denied: true,
            ..FaultConfig::default()
        },
        ..EmulatorConfig::default()
    });
    let denied_keys = seed(&denied, 50, &["us-east-1"]);
    let denied_input = dir.path().join("denied.csv");
    sechub_triage::emulator::write_keys_csv(
        &denied_keys,
        std::fs::File::create(&denied_input).unwrap(),
    )
    .unwrap();
    // Our logs at trace (the flag), then every crate at trace (RUST_LOG).
    let verbose: [(&[&str], Option<&str>); 2] = [
        (&["--log-level", "trace", "--log-format", "json"], None),
        (&["--log-format", "json"], Some("trace")),
    ];
    for (flags, rust_log) in verbose {
        let mut c = triage(dir.path());
        c.args([
            "update",
            denied_input.to_str().unwrap(),
            "--endpoint-url",
            &denied.url(),
        ])
        .args(flags);
        if let Some(v) = rust_log {
            c.env("RUST_LOG", v);
        }
        let outputs = with_outputs(&mut c);
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(3), "{}", show(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("AccessDeniedException"));
        assert_no_secret(
            &format!("access denied, {flags:?} {rust_log:?}"),
            &out,
            &paths(&outputs),
        );
    }

    // 5. An unreachable endpoint: a port nobody listens on any more.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    for (flags, rust_log) in verbose {
        let mut c = triage(dir.path());
        c.args([
            "update",
            input.to_str().unwrap(),
            "--endpoint-url",
            &closed_url,
        ])
        .args(["--max-attempts", "2"])
        .args(flags);
        if let Some(v) = rust_log {
            c.env("RUST_LOG", v);
        }
        let outputs = with_outputs(&mut c);
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", show(&out));
        let r = read_json(&outputs[2]);
        assert_eq!(r["exit_status"], 2);
        assert!(
            r["request_errors_by_code"]["ConnectionError"]
                .as_u64()
                .unwrap()
                >= 2,
            "{r}"
        );
        assert_no_secret(
            &format!("unreachable, {flags:?} {rust_log:?}"),
            &out,
            &paths(&outputs),
        );
    }
}
