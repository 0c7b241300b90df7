//! Unattended runs, end to end: the real `sechub-triage` binary against the
//! emulator on 127.0.0.1 (real HTTP, real SDK client), killed with SIGKILL,
//! stopped with SIGTERM or its time budget, locked out, and resumed from its
//! `--results` journal. Every test checks, from the journal and from the
//! emulator's own per-finding counters, that each input row ends with
//! exactly one final outcome over all runs and that nothing was sent twice
//! except what was in flight when a process died.
//!
//! Signals are sent with the system's `kill` command, so these tests are
//! Unix-only.
#![cfg(unix)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sechub_triage::emulator::{EmulatorConfig, SyntheticSpec};
use sechub_triage::model::FindingKey;

use crate::support::{BIN, Emu};

/// The emulator with `latency` (plus up to half as much jitter) on every
/// answer, no throttling (the client's --rate paces the runs), and `n`
/// findings in us-east-1.
fn start_emu(latency: Duration, n: usize, seed: u64) -> (Emu, Vec<FindingKey>) {
    let mut config = EmulatorConfig::unthrottled();
    config.faults.latency = latency;
    config.faults.latency_jitter = latency / 2;
    let emu = Emu::start(config);
    let keys = emu.state.seed_synthetic(&SyntheticSpec {
        count: n,
        seed,
        regions: vec!["us-east-1".into()],
        ..SyntheticSpec::default()
    });
    (emu, keys)
}

/// What these tests ask of the emulator beyond the shared harness.
trait NightlyEmu {
    /// Findings the emulator applied an update to so far.
    fn processed(&self) -> u64;
    /// Waits until no request is being handled (a killed client's requests
    /// run to their end in the emulator).
    fn settle(&self);
    fn update_counts(&self) -> HashMap<FindingKey, u64>;
}

impl NightlyEmu for Emu {
    fn processed(&self) -> u64 {
        self.state.counters().finding_outcome("Processed")
    }

    fn settle(&self) {
        wait_for("the emulator to go idle", Duration::from_secs(60), || {
            self.state.in_flight() == 0
        });
    }

    fn update_counts(&self) -> HashMap<FindingKey, u64> {
        self.state.update_counts().into_iter().collect()
    }
}

/// A hang guard, not a timing assertion: polls `cond` until it holds.
fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// One job's command line, run as many times as a test needs.
struct Job {
    home: PathBuf,
    input: PathBuf,
    results: PathBuf,
    url: String,
}

impl Job {
    fn new(dir: &Path, url: String, rows: &[String], results: &str) -> Job {
        let input = dir.join("findings.csv");
        let mut f = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        writeln!(f, "Id,ProductArn").unwrap();
        for r in rows {
            writeln!(f, "{r}").unwrap();
        }
        f.flush().unwrap();
        Job {
            home: dir.to_owned(),
            input,
            results: dir.join(results),
            url,
        }
    }

    /// The binary with credentials that exist only here, and this job's
    /// input, decision, endpoint and journal; `extra` last.
    fn command(&self, extra: &[&str]) -> Command {
        self.command_on(self.input.to_str().unwrap(), extra)
    }

    /// [`Job::command`] reading `input` (`-`: standard input) instead.
    fn command_on(&self, input: &str, extra: &[&str]) -> Command {
        let home = &self.home;
        let mut c = Command::new(BIN);
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("AWS_ACCESS_KEY_ID", "AKIDNIGHTLYTEST")
            .env("AWS_SECRET_ACCESS_KEY", "nightly-test-secret-PLUGH")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", home.join("no-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"))
            .args(["update", input])
            .args(["--workflow", "Status=SUPPRESSED"])
            .args(["--endpoint-url", &self.url])
            .args(["--results", self.results.to_str().unwrap()])
            // Test inputs are above the plan's default confirmation threshold.
            .args(["--confirm-above", "100000000"])
            .args(["--no-progress", "--output", "json"])
            .args(extra);
        c
    }

    fn run(&self, extra: &[&str]) -> Output {
        self.command(extra).output().unwrap()
    }

    fn spawn(&self, extra: &[&str]) -> Child {
        self.command(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn lock(&self) -> PathBuf {
        let mut p = self.results.as_os_str().to_owned();
        p.push(".lock");
        PathBuf::from(p)
    }

    fn journal(&self) -> Journal {
        Journal::read(&self.results)
    }
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn summary(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{sig} {}", child.id());
}

fn csv_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn key_row(k: &FindingKey) -> String {
    format!("{},{}", csv_quote(&k.id), csv_quote(&k.product_arn))
}

fn missing_key(i: usize) -> FindingKey {
    FindingKey::new(
        format!(
            "arn:aws:securityhub:us-east-1:123456789012:security-control/S3.1/finding/gone-{i:04}"
        ),
        "arn:aws:securityhub:us-east-1::product/aws/securityhub",
    )
}

/// The rows of a results journal, as any CSV reader sees them (a torn last
/// line, which only a killed process leaves, is ignored as the resume does).
struct Journal {
    rows: Vec<HashMap<String, String>>,
}

impl Journal {
    fn read(path: &Path) -> Journal {
        let mut bytes = std::fs::read(path).unwrap_or_default();
        let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        bytes.truncate(complete);
        let mut r = csv::Reader::from_reader(bytes.as_slice());
        let headers = r.headers().unwrap().clone();
        let rows = r
            .records()
            .map(|rec| {
                let rec = rec.unwrap();
                headers
                    .iter()
                    .zip(rec.iter())
                    .map(|(h, v)| (h.to_owned(), v.to_owned()))
                    .collect()
            })
            .collect();
        Journal { rows }
    }

    /// Final outcomes (all but `not_attempted`) of each input row number.
    fn finals_by_row(&self) -> BTreeMap<u64, Vec<String>> {
        let mut m: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for r in &self.rows {
            // `not_attempted` and `unknown` are not final: resumed.
            if r["outcome"] != "not_attempted" && r["outcome"] != "unknown" {
                m.entry(r["row"].parse().unwrap())
                    .or_default()
                    .push(r["outcome"].clone());
            }
        }
        m
    }

    /// Checks that rows 1..=n each have exactly one final outcome; returns
    /// the count of each outcome.
    fn assert_one_final_per_row(&self, n: usize) -> BTreeMap<String, usize> {
        let by_row = self.finals_by_row();
        let mut counts = BTreeMap::new();
        for row in 1..=n as u64 {
            let finals = by_row.get(&row).map_or(&[][..], Vec::as_slice);
            assert_eq!(finals.len(), 1, "row {row}: final outcomes {finals:?}");
            *counts.entry(finals[0].clone()).or_default() += 1;
        }
        assert_eq!(by_row.len(), n, "no row beyond the input");
        counts
    }

    /// Findings recorded `updated`.
    fn updated(&self) -> HashSet<FindingKey> {
        self.rows
            .iter()
            .filter(|r| r["outcome"] == "updated")
            .map(|r| FindingKey::new(r["Id"].clone(), r["ProductArn"].clone()))
            .collect()
    }

    fn count(&self, outcome: &str) -> usize {
        self.rows.iter().filter(|r| r["outcome"] == outcome).count()
    }
}

/// The issue's main scenario: a long run killed with SIGKILL at three
/// points and resumed each time. At the end every finding is updated, every
/// input row has exactly one final outcome in the journal, and the only
/// findings the emulator updated twice are those that were in flight at a
/// kill: applied by the service, but not yet recorded (at most concurrency x
/// 100 per kill).
#[test]
fn sigkill_at_three_points_then_resume_loses_nothing_and_resends_only_what_was_in_flight() {
    const CONCURRENCY: usize = 4;
    // Answers take 400-600 ms and up to 4 requests are in flight: about
    // 750 findings a second, so each run takes a while.
    let (emu, existing) = start_emu(Duration::from_millis(400), 12_000, 17);
    let missing: Vec<FindingKey> = (0..40).map(missing_key).collect();
    let sendable: Vec<FindingKey> = existing.iter().chain(&missing).cloned().collect();
    let mut rows: Vec<String> = sendable.iter().map(key_row).collect();
    rows.extend((0..30).map(|i| key_row(&existing[i * 397])));
    rows.push(format!(",{}", csv_quote(&existing[0].product_arn)));
    rows.push("some-finding,arn:aws:guardduty:us-east-1:123456789012:detector/x".into());
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|i| (i.wrapping_mul(2654435761) % 1_000_003, *i));
    let rows: Vec<String> = order.into_iter().map(|i| rows[i].clone()).collect();
    let total = rows.len();
    let dir = tempfile::tempdir().unwrap();
    let job = Job::new(dir.path(), emu.url(), &rows, "results.csv");
    let conc = CONCURRENCY.to_string();
    let args = [
        "--resume",
        "--concurrency",
        &conc,
        "--rate",
        "20",
        "--burst",
        "20",
    ];

    // Kill once the emulator has applied this many updates (all runs
    // together), at a moment when it is handling requests of the run.
    let kill_at = [2_500u64, 5_500, 8_500];
    // Per kill: findings in the requests the emulator was handling.
    let mut held_at_kill: Vec<HashSet<FindingKey>> = Vec::new();
    // Per kill: findings the service applied that the journal does not record.
    let mut unrecorded_at_kill: Vec<HashSet<FindingKey>> = Vec::new();
    let mut stderr_of_runs = Vec::new();
    for (k, &at) in kill_at.iter().enumerate() {
        let mut child = job.spawn(&args);
        wait_for(&format!("{at} updates"), Duration::from_secs(300), || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("run {} ended ({status}) before the kill point", k + 1);
            }
            emu.processed() >= at && emu.state.in_flight() > 0
        });
        let held: HashSet<FindingKey> = sendable
            .iter()
            .filter(|f| emu.state.is_in_flight(f))
            .cloned()
            .collect();
        child.kill().unwrap(); // SIGKILL
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), None, "killed by a signal");
        stderr_of_runs.push(String::from_utf8_lossy(&out.stderr).into_owned());
        emu.settle();
        let journal = job.journal();
        let recorded: HashSet<FindingKey> = journal.updated();
        let unrecorded: HashSet<FindingKey> = emu
            .update_counts()
            .into_keys()
            .filter(|f| !recorded.contains(f))
            .collect();
        assert!(
            held.len() <= CONCURRENCY * 100 && unrecorded.len() <= CONCURRENCY * 100,
            "kill {}: {} findings in flight, {} applied but not recorded",
            k + 1,
            held.len(),
            unrecorded.len()
        );
        // The journal never records a row twice as final, even mid-run.
        for (row, finals) in journal.finals_by_row() {
            assert_eq!(finals.len(), 1, "kill {}: row {row}: {finals:?}", k + 1);
        }
        held_at_kill.push(held);
        unrecorded_at_kill.push(unrecorded);
    }

    let out = job.run(&args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "40 findings do not exist: {}",
        text(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr_of_runs.push(stderr.into_owned());
    let s = summary(&out);

    // Every finding updated, with the decision.
    let counts = emu.update_counts();
    for k in &existing {
        assert!(
            counts.get(k).copied().unwrap_or(0) >= 1,
            "{k} never updated"
        );
        assert_eq!(
            emu.state.finding(k).unwrap()["Workflow"]["Status"],
            "SUPPRESSED"
        );
    }
    // Every input row exactly one final outcome over all runs.
    let journal = job.journal();
    let by_outcome = journal.assert_one_final_per_row(total);
    assert_eq!(by_outcome.get("updated"), Some(&12_000), "{by_outcome:?}");
    assert_eq!(by_outcome.get("failed"), Some(&40), "{by_outcome:?}");
    assert_eq!(by_outcome.get("duplicate"), Some(&30), "{by_outcome:?}");
    assert_eq!(by_outcome.get("invalid"), Some(&2), "{by_outcome:?}");
    assert_eq!(
        journal.count("not_attempted"),
        0,
        "SIGKILL leaves no such rows"
    );

    // Applied twice only if applied-but-unrecorded at a kill.
    let unrecorded: HashSet<&FindingKey> = unrecorded_at_kill.iter().flatten().collect();
    let applied_twice: Vec<&FindingKey> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    for k in &applied_twice {
        assert!(
            unrecorded.contains(k),
            "{k} was updated {} times but was not in flight at a kill",
            counts[*k]
        );
    }
    // Requests: the fewest possible (full chunks of 100), plus at most the
    // requests in flight at each kill, sent again (+1 per kill for where
    // the re-sent findings split chunks).
    let requests = emu
        .state
        .counters()
        .requests_for(sechub_triage::emulator::Operation::BatchUpdateFindings);
    let fewest = (sendable.len() as u64).div_ceil(100);
    let bound = fewest + kill_at.len() as u64 * (CONCURRENCY as u64 + 1);
    eprintln!(
        "SIGKILL x3: findings in flight at each kill {:?}, of which applied by the service but not \
         recorded {:?} (bound {} each); findings applied twice in the end: {}; requests {requests} \
         (fewest possible {fewest}, bound {bound})",
        held_at_kill.iter().map(HashSet::len).collect::<Vec<_>>(),
        unrecorded_at_kill
            .iter()
            .map(HashSet::len)
            .collect::<Vec<_>>(),
        CONCURRENCY * 100,
        applied_twice.len(),
    );
    assert!(requests <= bound, "{requests} requests, bound {bound}");
    assert!(
        requests > fewest,
        "the kills interrupted requests in flight, which were sent again"
    );

    // The last run's summary adds up over all runs.
    let already = s["already_done"].as_u64().unwrap();
    assert!(already > 8_000, "{s}");
    assert_eq!(
        s["records"].as_u64().unwrap() + already,
        total as u64,
        "{s}"
    );
    let all_runs: u64 = s["all_runs"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(all_runs, total as u64, "{s}");
    assert_eq!(s["all_runs"]["updated"], 12_000, "{s}");

    // Each kill left its lock behind; each next run took it over.
    for (i, err) in stderr_of_runs.iter().enumerate().skip(1) {
        assert!(
            err.contains("took over the stale lock"),
            "run {}: {err}",
            i + 1
        );
        assert!(err.contains("resuming"), "run {}: {err}", i + 1);
    }
    assert!(!job.lock().exists(), "the last run removed its lock");
    for err in &stderr_of_runs {
        assert!(!err.contains("nightly-test-secret-PLUGH"));
    }
}

/// SIGTERM: no new requests, those in flight finish, everything read and not
/// sent is recorded `not_attempted` (code `Stopped`), the rest of the input
/// stays unread, exit status 4. The resumed run finishes the job; since the
/// stop let requests in flight finish, no finding is updated twice.
#[test]
fn sigterm_stops_gracefully_with_status_4_and_resume_completes() {
    let n = 40_000;
    let (emu, keys) = start_emu(Duration::from_millis(200), n, 23);
    let rows: Vec<String> = keys.iter().map(key_row).collect();
    let dir = tempfile::tempdir().unwrap();
    let job = Job::new(dir.path(), emu.url(), &rows, "results.csv");
    let mut child = job.spawn(&["--rate", "4", "--burst", "4", "--concurrency", "2"]);
    wait_for("a first part of the work", Duration::from_secs(300), || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("ended ({status}) before the signal");
        }
        emu.processed() >= 800
    });
    signal(&child, "TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SIGTERM: stopping"), "{stderr}");
    let s = summary(&out);
    assert!(s["stopped"].as_str().unwrap().contains("SIGTERM"), "{s}");
    let not_attempted = s["outcomes"]["not_attempted"].as_u64().unwrap();
    assert!(not_attempted > 0, "{s}");
    assert_eq!(
        s["errors_by_code"]["Stopped"].as_u64(),
        Some(not_attempted),
        "{s}"
    );
    assert_eq!(
        s["records"].as_u64().unwrap(),
        s["outcomes"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>()
    );
    assert!(!job.lock().exists(), "lock removed after a graceful stop");

    let journal = job.journal();
    assert_eq!(journal.rows.len() as u64, s["records"].as_u64().unwrap());
    assert!(
        journal.rows.len() < n,
        "input not yet read stays unread: {} rows",
        journal.rows.len()
    );
    for r in journal
        .rows
        .iter()
        .filter(|r| r["outcome"] == "not_attempted")
    {
        assert_eq!(r["error_code"], "Stopped", "{r:?}");
    }
    // Requests in flight were let finish and recorded: whatever the
    // service applied is in the journal.
    let applied: HashSet<FindingKey> = emu.update_counts().into_keys().collect();
    assert_eq!(
        applied,
        journal.updated(),
        "every applied update was recorded"
    );

    let out = job.run(&[
        "--resume",
        "--rate",
        "100",
        "--burst",
        "100",
        "--concurrency",
        "8",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary(&out);
    assert_eq!(
        s["already_done"].as_u64().unwrap(),
        applied.len() as u64,
        "{s}"
    );
    assert_eq!(s["all_runs"]["updated"].as_u64(), Some(n as u64), "{s}");
    assert!(s["stopped"].is_null());
    job.journal().assert_one_final_per_row(n);
    for k in &keys {
        assert_eq!(emu.state.update_count(k), 1, "{k}");
    }
}

/// A second SIGTERM does not wait for requests in flight: the process exits
/// at once with status 4 and removes its lock, and the journal is still
/// good for a resume.
#[test]
fn a_second_signal_exits_at_once_and_the_journal_still_resumes() {
    let n = 3_000;
    // Answers take 3 s: the first signal's grace period (10 s) would wait for them.
    let (emu, keys) = start_emu(Duration::from_secs(3), n, 29);
    let rows: Vec<String> = keys.iter().map(key_row).collect();
    let dir = tempfile::tempdir().unwrap();
    let job = Job::new(dir.path(), emu.url(), &rows, "results.jsonl");
    let child = job.spawn(&["--rate", "5", "--burst", "5", "--concurrency", "2"]);
    wait_for("requests in flight", Duration::from_secs(120), || {
        emu.state.in_flight() > 0 && job.lock().exists()
    });
    signal(&child, "TERM");
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SIGTERM again: exiting now"), "{stderr}");
    assert!(!job.lock().exists());
    emu.settle();

    let out = job.run(&["--resume", "--rate", "100", "--burst", "100"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary(&out);
    assert_eq!(s["all_runs"]["updated"].as_u64(), Some(n as u64), "{s}");
    // JSON Lines journal: one final outcome per row.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&job.results)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut finals: HashMap<u64, usize> = HashMap::new();
    for l in &lines {
        if l["outcome"] != "not_attempted" {
            *finals.entry(l["row"].as_u64().unwrap()).or_default() += 1;
        }
    }
    assert_eq!(finals.len(), n);
    assert!(finals.values().all(|c| *c == 1));
    for k in &keys {
        assert!(emu.state.update_count(k) >= 1);
    }
}

/// Two runs never share a results file: the second is refused (status 5)
/// naming the first one's pid. A lock left by a process that is gone is
/// taken over with a warning naming it.
#[test]
fn a_second_run_is_refused_and_a_stale_lock_is_taken_over() {
    let n = 3_000;
    let (emu, keys) = start_emu(Duration::from_millis(300), n, 31);
    let rows: Vec<String> = keys.iter().map(key_row).collect();
    let dir = tempfile::tempdir().unwrap();
    let job = Job::new(dir.path(), emu.url(), &rows, "results.csv");
    let mut first = job.spawn(&["--rate", "2", "--burst", "2", "--concurrency", "1"]);
    wait_for(
        "the first run to record outcomes",
        Duration::from_secs(120),
        || {
            if let Ok(Some(status)) = first.try_wait() {
                panic!("first run ended early ({status})");
            }
            job.journal().rows.len() >= 100
        },
    );
    let journal_before = std::fs::read(&job.results).unwrap();
    for extra in [&[][..], &["--resume"][..]] {
        let out = job.run(extra);
        assert_eq!(out.status.code(), Some(5), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("pid {}", first.id())), "{stderr}");
        assert!(stderr.contains("held by another run"), "{stderr}");
    }
    // The refused runs wrote nothing (the first one may have added rows).
    assert!(
        std::fs::read(&job.results)
            .unwrap()
            .starts_with(&journal_before)
    );

    // Killed: its lock stays, naming a dead process.
    let dead = first.id();
    first.kill().unwrap();
    first.wait().unwrap();
    let lock_text = std::fs::read_to_string(job.lock()).unwrap();
    assert!(
        lock_text.contains(&format!("\"pid\":{dead}")),
        "{lock_text}"
    );
    emu.settle();
    let out = job.run(&["--resume", "--rate", "100", "--burst", "100"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("took over the stale lock"), "{stderr}");
    assert!(stderr.contains(&format!("pid {dead}")), "{stderr}");
    assert!(!job.lock().exists());
    job.journal().assert_one_final_per_row(n);

    // A lock file written by a process that has exited (a pid that is
    // certainly dead) before a fresh run.
    let gone = {
        let mut c = Command::new("true").spawn().unwrap();
        c.wait().unwrap();
        c.id()
    };
    let fresh = Job::new(dir.path(), emu.url(), &rows[..50], "fresh.csv");
    std::fs::write(
        fresh.lock(),
        format!(
            r#"{{"pid":{gone},"host":"elsewhere","started":"2026-01-01T00:00:00Z","run_id":"old"}}"#
        ),
    )
    .unwrap();
    let out = fresh.run(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("pid {gone} on elsewhere")),
        "{stderr}"
    );
    assert!(!fresh.lock().exists());
}

/// `--time-budget`: new requests stop early enough that those in flight
/// are back and recorded within the budget; status 4; a resumed run
/// finishes, and a budget that suffices ends normally.
#[test]
fn time_budget_stops_cleanly_with_status_4_then_resume_completes() {
    let n = 6_000;
    let (emu, keys) = start_emu(Duration::from_millis(200), n, 37);
    let rows: Vec<String> = keys.iter().map(key_row).collect();
    let dir = tempfile::tempdir().unwrap();
    let job = Job::new(dir.path(), emu.url(), &rows, "results.csv");

    // Too short to do anything: refused before anything runs.
    let out = job.run(&[
        "--time-budget",
        "5s",
        "--request-timeout",
        "3s",
        "--grace",
        "1s",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("leaves no time to work"),
        "{}",
        text(&out)
    );
    assert!(!job.results.exists());

    // 6,000 findings at 4 requests/s take 15 s; the budget is 8 s: new
    // requests stop at 8 - max(1, 3) - 2 = 3 s.
    let budget = Duration::from_secs(8);
    let out = job.run(&[
        "--time-budget",
        "8s",
        "--request-timeout",
        "3s",
        "--grace",
        "1s",
        "--rate",
        "4",
        "--burst",
        "4",
        "--concurrency",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let s = summary(&out);
    assert!(
        s["stopped"].as_str().unwrap().contains("time budget"),
        "{s}"
    );
    // The engine's own clock: every request was back and recorded before the budget ended.
    assert!(s["elapsed"].as_f64().unwrap() < budget.as_secs_f64(), "{s}");
    let updated_first = s["outcomes"]["updated"].as_u64().unwrap();
    assert!(updated_first > 0 && updated_first < n as u64, "{s}");
    let applied: HashSet<FindingKey> = emu.update_counts().into_keys().collect();
    assert_eq!(
        applied,
        job.journal().updated(),
        "nothing applied went unrecorded"
    );

    let out = job.run(&[
        "--resume",
        "--time-budget",
        "10m",
        "--rate",
        "100",
        "--burst",
        "100",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a budget that suffices ends normally: {}",
        text(&out)
    );
    let s = summary(&out);
    assert!(s["stopped"].is_null(), "{s}");
    assert_eq!(s["already_done"].as_u64(), Some(updated_first), "{s}");
    job.journal().assert_one_final_per_row(n);
    for k in &keys {
        assert_eq!(emu.state.update_count(k), 1, "{k}");
    }
}

/// Running again on a results file that holds outcomes asks for --resume;
/// resuming against a changed input is refused naming what changed, and
/// accepted with --force-resume (findings already settled still not sent
/// again).
#[test]
fn a_changed_input_is_refused_on_resume_unless_forced() {
    let (emu, keys) = start_emu(Duration::ZERO, 301, 41);
    let rows: Vec<String> = keys[..300].iter().map(key_row).collect();
    let dir = tempfile::tempdir().unwrap();
    let job = Job::new(dir.path(), emu.url(), &rows, "results.csv");
    let out = job.run(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let journal = std::fs::read(&job.results).unwrap();

    let out = job.run(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("already holds 300 outcomes") && stderr.contains("--resume"),
        "{stderr}"
    );

    // Resuming a finished job does nothing, and says everything is done.
    let out = job.run(&["--resume"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary(&out);
    assert_eq!(
        (s["records"].as_u64(), s["already_done"].as_u64()),
        (Some(0), Some(300)),
        "{s}"
    );
    assert_eq!(std::fs::read(&job.results).unwrap(), journal);

    // One more row: the input changed.
    let mut more = rows.clone();
    more.push(key_row(&keys[300]));
    let changed = Job::new(dir.path(), emu.url(), &more, "results.csv");
    let out = changed.run(&["--resume"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("findings.csv") && stderr.contains("changed"),
        "{stderr}"
    );
    assert!(stderr.contains("--force-resume"), "{stderr}");
    assert_eq!(
        std::fs::read(&job.results).unwrap(),
        journal,
        "refused: journal untouched"
    );
    assert!(!job.lock().exists(), "a refused run releases its lock");

    let out = changed.run(&["--force-resume"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary(&out);
    assert_eq!(
        (s["records"].as_u64(), s["already_done"].as_u64()),
        (Some(1), Some(300)),
        "{s}"
    );
    changed.journal().assert_one_final_per_row(301);
    for k in &keys {
        assert_eq!(emu.state.update_count(k), 1, "{k}");
    }
}

/// A journal whose last line was cut short (a crash in mid-write) is taken
/// up: the torn line is removed (and said so), its finding is sent again,
/// and every row still ends with exactly one final outcome.
#[test]
fn a_torn_last_line_is_cut_off_and_its_finding_sent_again() {
    let (emu, keys) = start_emu(Duration::ZERO, 500, 43);
    let rows: Vec<String> = keys.iter().map(key_row).collect();
    let dir = tempfile::tempdir().unwrap();
    let job = Job::new(dir.path(), emu.url(), &rows, "results.csv");
    let out = job.run(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let full = std::fs::read(&job.results).unwrap();
    let last_start = full[..full.len() - 1]
        .iter()
        .rposition(|b| *b == b'\n')
        .unwrap()
        + 1;
    let torn_row = job.journal().rows.last().unwrap().clone();
    // Cut inside the last row's Id.
    std::fs::write(&job.results, &full[..last_start + 30]).unwrap();

    let out = job.run(&["--resume"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 501 was cut short"), "{stderr}");
    let s = summary(&out);
    assert_eq!(
        (s["records"].as_u64(), s["already_done"].as_u64()),
        (Some(1), Some(499)),
        "{s}"
    );
    job.journal().assert_one_final_per_row(500);
    let torn_key = FindingKey::new(torn_row["Id"].clone(), torn_row["ProductArn"].clone());
    for k in &keys {
        let want = if *k == torn_key { 2 } else { 1 };
        assert_eq!(emu.state.update_count(k), want, "{k}");
    }
}

/// Standard input cannot be hashed before it is read: its row count goes
/// into the journal's header, and on resume each row is checked against
/// the journal as it is read, so a different stream is refused.
#[test]
fn standard_input_is_checked_row_by_row_on_resume() {
    let (emu, keys) = start_emu(Duration::ZERO, 200, 47);
    let dir = tempfile::tempdir().unwrap();
    let stdin_csv = |keys: &[FindingKey]| {
        let mut s = String::from("Id,ProductArn\n");
        for k in keys {
            s.push_str(&key_row(k));
            s.push('\n');
        }
        s
    };
    let job = Job::new(dir.path(), emu.url(), &[], "results.csv");
    let run_stdin = |input: String, extra: &[&str]| {
        let mut child = job
            .command_on("-", extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A refused run may exit before reading it all.
        let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
        child.wait_with_output().unwrap()
    };
    let out = run_stdin(stdin_csv(&keys[..100]), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut header = job.results.as_os_str().to_owned();
    header.push(".journal.json");
    let h: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(header).unwrap()).unwrap();
    assert_eq!(h["inputs"][0]["name"], "-");
    assert_eq!(h["inputs"][0]["rows"], 100, "{h}");

    // A different stream: refused at the first row that differs.
    let out = run_stdin(stdin_csv(&keys[100..200]), &["--resume"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s = summary(&out);
    let why = s["input_error"].as_str().unwrap_or_default();
    assert!(
        why.contains("-: row 1") && why.contains("input changed"),
        "{s}"
    );
    for k in &keys[100..200] {
        assert_eq!(
            emu.state.update_count(k),
            0,
            "nothing of the other stream sent"
        );
    }
    // The same stream resumes (nothing to do).
    let out = run_stdin(stdin_csv(&keys[..100]), &["--resume"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(summary(&out)["already_done"], 100);
}

/// When the grace period ends with requests still out, their findings are
/// recorded `unknown` (they may or may not have been applied), the
/// process exits without waiting for the answers, and the resumed run sends
/// them again.
#[test]
fn requests_still_out_when_the_grace_period_ends_are_written_off_and_resent() {
    let n = 2_000;
    // Answers take 6-9 s; the grace period is 1 s.
    let (emu, keys) = start_emu(Duration::from_secs(6), n, 53);
    let rows: Vec<String> = keys.iter().map(key_row).collect();
    let dir = tempfile::tempdir().unwrap();
    let job = Job::new(dir.path(), emu.url(), &rows, "results.csv");
    let child = job.spawn(&["--grace", "1s", "--concurrency", "3"]);
    wait_for("requests in flight", Duration::from_secs(120), || {
        emu.state.in_flight() >= 3
    });
    signal(&child, "TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let s = summary(&out);
    // Nothing came back: everything read is resumable (the reader may not
    // have reached the end of the input); the findings of the requests
    // still out may have been applied, so they are `unknown`.
    let resumable = s["outcomes"]["not_attempted"].as_u64().unwrap_or(0)
        + s["outcomes"]["unknown"].as_u64().unwrap_or(0);
    assert_eq!(Some(resumable), s["records"].as_u64(), "{s}");
    assert_eq!(s["outcomes"]["unknown"], 300, "{s}");
    let journal = job.journal();
    let still_out = journal
        .rows
        .iter()
        .filter(|r| r["error_message"].contains("still in flight when the grace period ended"))
        .count();
    assert_eq!(still_out, 300, "three requests of 100 were out");
    assert!(
        journal
            .rows
            .iter()
            .filter(|r| r["error_message"].contains("still in flight"))
            .all(|r| r["outcome"] == "unknown")
    );
    assert!(journal.rows.iter().all(|r| r["error_code"] == "Stopped"));
    emu.settle();

    let out = job.run(&["--resume", "--concurrency", "20"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    job.journal().assert_one_final_per_row(n);
    for k in &keys {
        assert!(emu.state.update_count(k) >= 1, "{k}");
    }
}

// ---------------------------------------------------------------------------
// The engine's stop handle, through the library.

mod library {
    use super::*;
    use sechub_triage::decision::{DecisionField, parse_flag};
    use sechub_triage::engine::{self, EngineConfig, Input, RunControls, StopHandle};
    use sechub_triage::events::NullSink;
    use sechub_triage::model::{Location, OutcomeKind, SourceItem, SourceRecord};
    use sechub_triage::reporting::{Outcome, OutcomeSink, RunSummary};
    use sechub_triage::submission::{AwsSettings, Submitter};
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Collect(Arc<Mutex<Vec<Outcome>>>);

    impl OutcomeSink for Collect {
        fn record(&mut self, o: &Outcome) -> std::io::Result<()> {
            self.0.lock().unwrap().push(o.clone());
            Ok(())
        }
    }

    fn input(keys: &[FindingKey]) -> Input {
        let file: Arc<str> = "lib".into();
        let items: Vec<Result<SourceItem, engine::InputError>> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let location = Location {
                    file: file.clone(),
                    row: i as u64 + 1,
                    detail: None,
                };
                Ok(SourceItem::Record(SourceRecord::new(location, k.clone())))
            })
            .collect();
        Box::new(items.into_iter())
    }

    fn run(emu: &Emu, keys: &[FindingKey], stop: StopHandle) -> (RunSummary, Vec<Outcome>) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let sink = Collect::default();
        let summary = rt.block_on(async {
            let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(aws_credential_types::Credentials::new(
                    "AKIDLIB",
                    "lib-secret",
                    None,
                    None,
                    "test",
                ))
                .load()
                .await;
            let submitter = Submitter::from_sdk_config(
                sdk,
                &AwsSettings {
                    endpoint_url: Some(emu.url()),
                    request_timeout: Some(Duration::from_secs(30)),
                    ..AwsSettings::default()
                },
            );
            let decision =
                parse_flag(DecisionField::Workflow, &["Status=RESOLVED".to_owned()]).unwrap();
            engine::run_with(
                &EngineConfig {
                    concurrency: 2,
                    ..EngineConfig::default()
                },
                input(keys),
                Arc::new(decision),
                Arc::new(submitter),
                vec![Box::new(sink.clone())],
                Arc::new(NullSink),
                RunControls {
                    stop: Some(stop),
                    prior: None,
                },
            )
            .await
            .unwrap()
        });
        let outcomes = sink.0.lock().unwrap().clone();
        (summary, outcomes)
    }

    #[test]
    fn the_first_stop_wins() {
        let h = StopHandle::new();
        assert!(h.requested().is_none());
        assert!(h.stop("first", Duration::from_secs(1)));
        assert!(!h.stop("second", Duration::from_secs(2)));
        assert_eq!(h.requested().unwrap().reason, "first");
    }

    /// A stop asked before the run starts: nothing is sent, and the run
    /// says work is left.
    #[test]
    fn a_stop_before_the_start_sends_nothing() {
        let (emu, keys) = start_emu(Duration::ZERO, 500, 59);
        let stop = StopHandle::new();
        stop.stop("test stop", Duration::from_secs(1));
        let (summary, outcomes) = run(&emu, &keys, stop);
        assert_eq!(summary.stopped.as_deref(), Some("test stop"));
        assert_eq!(summary.requests, 0);
        assert_eq!(outcomes.len() as u64, summary.records);
        assert!(outcomes.iter().all(|o| o.kind == OutcomeKind::NotAttempted
            && o.code.as_deref() == Some(engine::STOPPED_CODE)));
        assert_eq!(emu.state.counters().finding_outcome("Processed"), 0);
    }

    /// A stop in mid-run: requests in flight come back within the grace
    /// period and are recorded as they ended; the rest is not attempted.
    #[test]
    fn a_stop_in_mid_run_lets_requests_in_flight_finish() {
        let (emu, keys) = start_emu(Duration::from_millis(500), 3_000, 61);
        let stop = StopHandle::new();
        let trigger = stop.clone();
        let state = emu.state.clone();
        let watcher = std::thread::spawn(move || {
            wait_for("requests in flight", Duration::from_secs(60), || {
                state.in_flight() >= 2
            });
            trigger.stop("test stop", Duration::from_secs(30));
        });
        let (summary, outcomes) = run(&emu, &keys, stop);
        watcher.join().unwrap();
        assert_eq!(summary.stopped.as_deref(), Some("test stop"));
        // Input not yet read when the stop comes stays unread (a resumed
        // run reads it); a loaded machine may stop before the reader
        // thread reached the end of these 3,000 rows.
        assert!(summary.records <= 3_000);
        assert_eq!(
            outcomes.len() as u64,
            summary.records,
            "everything read is recorded"
        );
        let updated: HashSet<&FindingKey> = outcomes
            .iter()
            .filter(|o| o.kind == OutcomeKind::Updated)
            .filter_map(|o| o.key.as_ref())
            .collect();
        assert!(updated.len() >= 200, "the two requests in flight finished");
        let applied: HashSet<FindingKey> = emu.update_counts().into_keys().collect();
        assert_eq!(applied.len(), updated.len());
        assert!(applied.iter().all(|k| updated.contains(k)));
        assert_eq!(
            summary.count(OutcomeKind::NotAttempted) as usize,
            summary.records as usize - updated.len(),
            "everything read and not updated is not attempted"
        );
    }
}
