//! Nothing lost at the edges: what a new user's typo, pipe or flag does,
//! through the real binary against the emulator on 127.0.0.1.
//!
//! - outputs that name an input (or each other) are refused before anything
//!   is written, and the input is byte-for-byte intact;
//! - inputs that can be read only once (pipes, `/dev/stdin`, FIFOs,
//!   process substitution) are read once, as planned;
//! - settings are checked before the plan pass, with exit statuses by tier;
//! - the emulator's hardening (loopback only, idle and trickling clients).
#![cfg(unix)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sechub_triage::emulator::{EmulatorConfig, SyntheticSpec};
use sechub_triage::model::FindingKey;

use crate::support;
use crate::support::{BIN, Emu, key_row, read_results, triage, write_csv};

/// An emulator with `n` findings in us-east-1 and a CSV listing them.
fn setup(n: usize) -> (tempfile::TempDir, Emu, Vec<FindingKey>, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let keys = emu.state.seed_synthetic(&SyntheticSpec {
        count: n,
        seed: 11,
        regions: vec!["us-east-1".into()],
        ..SyntheticSpec::default()
    });
    let input = dir.path().join("in.csv");
    let rows: Vec<String> = keys.iter().map(key_row).collect();
    write_csv(&input, "Id,ProductArn", &rows);
    (dir, emu, keys, input)
}

fn update(home: &Path, emu: &Emu, args: &[&str]) -> Command {
    let mut c = triage(home);
    c.arg("update")
        .args(args)
        .args(["--workflow", "Status=SUPPRESSED"])
        .args(["--endpoint-url", &emu.url()])
        .arg("--no-progress");
    c
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn outputs_naming_an_input_or_each_other_are_refused_and_the_input_is_intact() {
    let (dir, emu, _keys, input) = setup(40);
    let home = dir.path();
    // A real results journal first: the one record of what a run did.
    let results = home.join("r.csv");
    let out = update(home, &emu, &[s(&input), "--results", s(&results)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let sent = emu.requests();
    let before_input = std::fs::read(&input).unwrap();
    let before_results = std::fs::read(&results).unwrap();
    let link = home.join("link.csv");
    std::fs::hard_link(&input, &link).unwrap();
    let respelt = format!("{}/./sub/../in.csv", home.display());
    std::fs::create_dir(home.join("sub")).unwrap();
    let other = home.join("other.csv");
    let lock = format!("{}.lock", s(&other));
    let cases: Vec<(Vec<&str>, [&str; 2])> = vec![
        (
            vec![s(&input), "--failed", s(&input)],
            ["--failed", "input 1"],
        ),
        (
            vec![s(&input), "--report", s(&input)],
            ["--report", "input 1"],
        ),
        (
            vec![s(&input), "--failed", &respelt],
            ["--failed", "input 1"],
        ),
        (
            vec![s(&input), "--report", s(&link)],
            ["--report", "input 1"],
        ),
        (
            vec![s(&input), "--results", s(&other), "--report", s(&other)],
            ["--report", "--results"],
        ),
        (
            vec![s(&input), "--results", s(&other), "--failed", &lock],
            ["--failed", "lock"],
        ),
        (
            vec![
                s(&input),
                "--resume",
                "--results",
                s(&results),
                "--report",
                s(&results),
            ],
            ["--report", "--results"],
        ),
        (
            vec![
                s(&input),
                "--resume",
                "--results",
                s(&results),
                "--failed",
                s(&results),
            ],
            ["--failed", "--results"],
        ),
        (
            vec![s(&results), "--failed", s(&results)],
            ["--failed", "input 1"],
        ),
    ];
    for (args, names) in &cases {
        let out = update(home, &emu, args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        for n in names {
            assert!(err.contains(n), "{args:?} must name {n}: {err}");
        }
        assert!(err.contains("same file"), "{args:?}: {err}");
        assert_eq!(std::fs::read(&input).unwrap(), before_input, "{args:?}");
        assert_eq!(std::fs::read(&results).unwrap(), before_results, "{args:?}");
        assert!(!other.exists(), "{args:?} created {}", other.display());
    }
    assert_eq!(emu.requests(), sent, "a refused run sends nothing");

    // revert's files: its input is the results being reverted.
    for flag in ["--failed", "--report", "--results"] {
        let out = triage(home)
            .args(["revert", s(&results), flag, s(&results)])
            .args(["--endpoint-url", &emu.url(), "--no-progress"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "revert {flag}: {}", text(&out));
        assert_eq!(std::fs::read(&results).unwrap(), before_results, "{flag}");
    }
    // A campaign file is an input too.
    let campaign = home.join("c.toml");
    let toml = format!(
        "inputs = [\"{}\"]\n[decision]\nworkflow = \"Status=NEW\"\n[output]\nfailed = \"c.toml\"\n",
        s(&input)
    );
    std::fs::write(&campaign, &toml).unwrap();
    let out = triage(home)
        .args(["run", s(&campaign), "--endpoint-url", &emu.url()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the campaign file"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read_to_string(&campaign).unwrap(), toml);
    assert_eq!(emu.requests(), sent);
}

/// Runs `sechub-triage update <input>` through `bash` (for process
/// substitution and pipes) and checks that every finding was updated.
fn assert_all_updated(out: &Output, results: &Path, n: usize, file: &str) {
    assert_eq!(out.status.code(), Some(0), "{}", text(out));
    let rows = read_results(results);
    assert_eq!(rows.len(), n, "{}", text(out));
    assert!(
        rows.iter()
            .all(|r| r["outcome"] == "updated" && r["file"] == file)
    );
}

#[test]
fn inputs_that_can_be_read_once_are_read_once_as_planned() {
    let (dir, emu, keys, input) = setup(120);
    let home = dir.path();
    let n = keys.len();
    let url = emu.url();
    let bash = |script: &str| {
        let mut c = support::with_test_env(Command::new("bash"), home);
        c.args(["-c", script]).env("BIN", BIN).env("URL", &url);
        c.output().unwrap()
    };
    // Process substitution: /dev/fd/63, a pipe.
    let r1 = home.join("r1.csv");
    let out = bash(&format!(
        "\"$BIN\" update <(cat {}) --workflow Status=NOTIFIED --endpoint-url \"$URL\" --no-progress --results {}",
        s(&input),
        s(&r1)
    ));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(read_results(&r1).len(), n);
    assert!(
        read_results(&r1).iter().all(|r| r["outcome"] == "updated"),
        "{}",
        text(&out)
    );
    assert_eq!(emu.workflow(&keys[0]), "NOTIFIED");
    // /dev/stdin fed by a pipe.
    let r2 = home.join("r2.csv");
    let out = bash(&format!(
        "cat {} | \"$BIN\" update /dev/stdin --workflow Status=RESOLVED --endpoint-url \"$URL\" --no-progress --results {}",
        s(&input),
        s(&r2)
    ));
    assert_all_updated(&out, &r2, n, "/dev/stdin");
    assert_eq!(emu.workflow(&keys[n - 1]), "RESOLVED");
    // A named FIFO, written once.
    let fifo = home.join("findings.fifo");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let writer = {
        let (fifo, input) = (fifo.clone(), input.clone());
        std::thread::spawn(move || {
            let data = std::fs::read(&input).unwrap();
            let mut f = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            f.write_all(&data).unwrap();
        })
    };
    let r3 = home.join("r3.csv");
    let out = update(home, &emu, &[s(&fifo), "--results", s(&r3)])
        .output()
        .unwrap();
    writer.join().unwrap();
    assert_all_updated(&out, &r3, n, s(&fifo));
    assert_eq!(emu.workflow(&keys[n / 2]), "SUPPRESSED");
}

/// Waits for `child` at most `limit` (a hang guard), killing it after.
fn wait_with_limit(mut child: std::process::Child, limit: Duration) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("still running after {limit:?}: {}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn settings_are_refused_before_the_plan_pass_reads_anything() {
    let (dir, emu, _keys, _input) = setup(5);
    let home = dir.path();
    // Standard input stays open and empty: a plan pass would wait on it
    // for ever, so an answer proves the settings were checked first.
    for (args, says) in [
        (
            vec!["-", "--resume"],
            "--resume and --force-resume need --results",
        ),
        (
            vec!["-", "--results", "r.csv", "--time-budget", "5s"],
            "leaves no time to work",
        ),
        (vec!["-", "--failed", "nodir/f.csv"], "does not exist"),
        (vec!["-", "--profile", "nosuch"], "\"nosuch\""),
    ] {
        let child = update(home, &emu, &args)
            .current_dir(home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = wait_with_limit(child, Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!home.join("r.csv").exists());
    }
    assert_eq!(emu.requests(), 0, "nothing was sent");
}

#[test]
fn flags_with_values_that_cannot_work_are_refused() {
    let (dir, emu, keys, input) = setup(3);
    let home = dir.path();
    for (args, says) in [
        (
            vec![s(&input), "--request-timeout", "1ns"],
            "shorter than the floor",
        ),
        (
            vec![s(&input), "--request-timeout", "0s"],
            "shorter than the floor",
        ),
        (vec![s(&input), "--log-level", "dbug"], "is not a level"),
        (
            vec![s(&input), "--types", "Made Up/Category/Thing"],
            "--allow-unknown-type-namespaces",
        ),
    ] {
        let out = update(home, &emu, &args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(emu.requests(), 0);
    // The namespace check has a flag that lifts it.
    let out = update(
        home,
        &emu,
        &[
            s(&input),
            "--types",
            "Made Up/Category/Thing",
            "--allow-unknown-type-namespaces",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let f = emu.state.finding(&keys[0]).unwrap();
    assert_eq!(f["Types"][0], "Made Up/Category/Thing", "{f}");
}

#[test]
fn a_profile_that_does_not_exist_is_named_and_nothing_is_sent() {
    let (dir, emu, _keys, input) = setup(3);
    let home = dir.path();
    std::fs::write(
        home.join("no-config"),
        "[profile real]\nregion = us-east-1\n",
    )
    .unwrap();
    let report = home.join("report.json");
    let out = update(
        home,
        &emu,
        &[s(&input), "--profile", "nosuch", "--report", s(&report)],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"nosuch\"") && err.contains("could not be found"),
        "{err}"
    );
    assert_eq!(emu.requests(), 0);
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert!(doc["summary"].is_null(), "nothing counted as sent: {doc}");
    assert_eq!(doc["pacing"]["requests"], 0, "{doc}");
}

#[test]
fn a_local_file_that_cannot_be_written_is_not_a_usage_error() {
    let (dir, emu, keys, input) = setup(10);
    let home = dir.path();
    // One finding that does not exist, so that --failed gets a row; the
    // failed file is a full disk (/dev/full).
    let mut rows: Vec<String> = keys.iter().map(key_row).collect();
    rows.push(key_row(&FindingKey::new(
        "gone-1",
        "arn:aws:securityhub:us-east-1::product/aws/guardduty",
    )));
    write_csv(&input, "Id,ProductArn", &rows);
    let full = home.join("failed.csv");
    std::os::unix::fs::symlink("/dev/full", &full).unwrap();
    let out = update(
        home,
        &emu,
        &[
            s(&input),
            "--failed",
            s(&full),
            "--results",
            s(&home.join("r.csv")),
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("failed.csv"), "{err}");
}

#[test]
fn the_emulator_stays_on_loopback_unless_told_and_closes_idle_connections() {
    let out = Command::new(BIN)
        .args(["emulator", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-remote"));

    let mut child = Command::new(BIN)
        .args([
            "emulator",
            "--listen",
            "127.0.0.1:0",
            "--header-timeout",
            "1s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    {
        use std::io::BufRead;
        let mut r = std::io::BufReader::new(child.stdout.as_mut().unwrap());
        r.read_line(&mut line).unwrap();
    }
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap()
        .to_owned();
    let guard = Duration::from_secs(30);
    // Idle: never sends a byte.
    let mut idle = std::net::TcpStream::connect(&addr).unwrap();
    idle.set_read_timeout(Some(guard)).unwrap();
    let mut buf = [0u8; 64];
    let n = idle
        .read(&mut buf)
        .expect("closed, not timed out on our side");
    assert_eq!(n, 0, "the server closes an idle connection");
    // Trickling: a header byte every 300 ms, never finished.
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    slow.set_read_timeout(Some(guard)).unwrap();
    let start = Instant::now();
    let mut closed = false;
    while start.elapsed() < guard {
        if slow.write_all(b"X").is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        closed,
        "the server closes a connection trickling its headers"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn input_errors_are_printed_clean_escaped_and_cut() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let plan = |input: &Path| {
        triage(home)
            .args(["plan", s(input), "--workflow", "Status=NEW"])
            .output()
            .unwrap()
    };
    // A corrupt Parquet page makes the parquet crate panic: the reader
    // catches it, and only the clean error is printed.
    let corrupt = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bad/fuzz-parquet-divide-by-zero.parquet");
    let out = plan(&corrupt);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("the Parquet decoder failed"),
        "{}",
        text(&out)
    );
    assert!(
        err.trim().is_empty(),
        "nothing but the plan's own error: {err}"
    );
    // Terminal escapes and a megabyte header cell.
    let esc = home.join("esc.csv");
    let header = format!("\u{1b}[2J\u{1b}[31mred,{}\nx,y\n", "A".repeat(1_000_000));
    std::fs::write(&esc, header).unwrap();
    let out = plan(&esc);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!err.contains('\u{1b}'), "{err}");
    assert!(err.contains("\\u{1b}[31mred"), "{err}");
    assert!(err.len() < 2_000, "{} bytes", err.len());
    assert!(err.contains("more characters"), "{err}");
    // The same column twice.
    let dup = home.join("dup.csv");
    std::fs::write(
        &dup,
        "Id,Id,ProductArn\na,b,arn:aws:securityhub:us-east-1::product/aws/guardduty\n",
    )
    .unwrap();
    let out = plan(&dup);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        err.contains("\"Id\" more than once") && err.contains("columns 1 and 2"),
        "{err}"
    );
}

fn kill(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A hang guard, not a timing assertion: polls `cond` until it holds.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_signal_during_the_plan_pass_exits_4_with_a_message() {
    let (dir, emu, _keys, _input) = setup(3);
    let home = dir.path();
    let tmp = home.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    // Standard input held open: the plan pass is busy saving it.
    let child = update(home, &emu, &["-", "--results", s(&home.join("r.csv"))])
        .env("TMPDIR", &tmp)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the plan pass to start saving standard input", || {
        std::fs::read_dir(&tmp).unwrap().next().is_some()
    });
    std::thread::sleep(Duration::from_millis(300));
    kill(child.id(), "TERM");
    let out = wait_with_limit(child, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("SIGTERM during the plan pass") && err.contains("before anything was sent"),
        "{err}"
    );
    assert_eq!(emu.requests(), 0);
    assert!(!home.join("r.csv").exists());
}

#[test]
fn the_report_is_finalised_after_a_second_signal() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let mut config = EmulatorConfig::unthrottled();
    config.faults.latency = Duration::from_secs(3);
    let emu = Emu::start(config);
    let keys = emu.state.seed_synthetic(&SyntheticSpec {
        count: 300,
        seed: 5,
        regions: vec!["us-east-1".into()],
        ..SyntheticSpec::default()
    });
    let input = home.join("in.csv");
    write_csv(
        &input,
        "Id,ProductArn",
        &keys.iter().map(key_row).collect::<Vec<_>>(),
    );
    let report = home.join("report.json");
    let child = update(
        home,
        &emu,
        &[
            s(&input),
            "--results",
            s(&home.join("r.csv")),
            "--report",
            s(&report),
            "--rate",
            "1",
            "--burst",
            "1",
            "--grace",
            "60s",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    wait_for("a request in flight", || emu.state.in_flight() > 0);
    kill(child.id(), "TERM");
    std::thread::sleep(Duration::from_millis(300));
    kill(child.id(), "TERM");
    let out = wait_with_limit(child, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(doc["state"], "finished", "{doc}");
    assert_eq!(doc["exit_status"], 4, "{doc}");
    assert!(
        doc["error"].as_str().unwrap_or_default().contains("twice"),
        "{doc}"
    );
}

/// Rows of a results file: the last row of each input row is its final one.
fn last_rows(path: &Path) -> std::collections::BTreeMap<u64, String> {
    read_results(path)
        .into_iter()
        .map(|r| (r["row"].parse().unwrap(), r["outcome"].clone()))
        .collect()
}

fn summary_of(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

#[test]
fn an_outage_stops_the_run_early_and_a_resume_updates_everything() {
    let (dir, emu, keys, input) = setup(2_000);
    let home = dir.path();
    let results = home.join("r.csv");
    // A port nothing listens on: every connection is refused.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let run = |url: &str, extra: &[&str]| {
        let mut c = triage(home);
        c.args(["update", s(&input), "--workflow", "Status=SUPPRESSED"])
            .args(["--endpoint-url", url, "--results", s(&results)])
            .args(["--rate", "50", "--burst", "10", "--concurrency", "4"])
            .args([
                "--yes",
                "--run-tag",
                "outage",
                "--no-progress",
                "--output",
                "json",
            ])
            .args(extra);
        c.output().unwrap()
    };
    let out = run(&dead, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let s1 = summary_of(&out);
    assert!(
        s1["stopped"]
            .as_str()
            .unwrap_or_default()
            .contains("in a row failed"),
        "{s1}"
    );
    // Bounded: the breaker's 10 failures plus what was in flight, each
    // finding at most its 8 attempts; 2,000 findings would be 20 requests
    // of 100 times 8 attempts without it.
    let requests = s1["requests"].as_u64().unwrap();
    assert!(
        requests <= 20,
        "{requests} requests against a dead endpoint: {s1}"
    );
    assert_eq!(s1["outcomes"]["failed"], serde_json::Value::Null, "{s1}");
    assert!(
        read_results(&results)
            .iter()
            .all(|r| r["outcome"] == "not_attempted"),
        "a refused connection never reached the service"
    );
    // Later, the endpoint works: the same command with --resume finishes.
    let out = run(&emu.url(), &["--resume"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let last = last_rows(&results);
    assert_eq!(last.len(), keys.len());
    assert!(last.values().all(|o| o == "updated"), "{last:?}");
    for k in &keys {
        assert_eq!(emu.state.update_count(k), 1, "{k}");
    }
}

#[test]
fn a_request_that_may_have_been_applied_ends_unknown_and_is_resent() {
    let (dir, emu, keys, input) = setup(150);
    let home = dir.path();
    let results = home.join("r.csv");
    let failed = home.join("failed.csv");
    // Answers come after the client gave up: the outcome is not known.
    let mut faults = emu.state.faults();
    faults.latency = Duration::from_secs(3);
    emu.state.set_faults(faults.clone());
    let run = |extra: &[&str]| {
        let mut c = triage(home);
        c.args(["update", s(&input), "--workflow", "Status=RESOLVED"])
            .args(["--endpoint-url", &emu.url(), "--results", s(&results)])
            .args(["--failed", s(&failed)])
            .args(["--request-timeout", "1s", "--max-attempts", "2"])
            .args(["--no-progress", "--output", "json"])
            .args(extra);
        c.output().unwrap()
    };
    let out = run(&[]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "unknown outcomes: resume: {}",
        text(&out)
    );
    let s1 = summary_of(&out);
    assert_eq!(s1["outcomes"]["unknown"], 150, "{s1}");
    assert!(
        read_results(&results)
            .iter()
            .all(|r| r["outcome"] == "unknown" && r["error_code"] == "Timeout")
    );
    // The failed file lists them, to be sent again.
    assert_eq!(read_results(&failed).len(), 150);
    // The service answers again: --resume sends them (harmless if they
    // were applied: the same fields set to the same values).
    faults.latency = Duration::ZERO;
    emu.state.set_faults(faults);
    let out = run(&["--resume"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let last = last_rows(&results);
    assert_eq!(last.len(), 150);
    assert!(last.values().all(|o| o == "updated"), "{last:?}");
    for k in &keys {
        assert_eq!(emu.workflow(k), "RESOLVED");
    }
}

#[test]
fn the_failed_file_is_a_complete_input_carrying_each_rows_decision() {
    let (dir, emu, keys, _) = setup(60);
    let home = dir.path();
    // Each row its own note, one row also its own workflow status.
    let input = home.join("notes.csv");
    let rows: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let status = if i == 0 { "RESOLVED" } else { "" };
            format!("{},\"ticket SEC-{i}, reviewed\",{status}", key_row(k))
        })
        .collect();
    write_csv(&input, "Id,ProductArn,Note.Text,Workflow.Status", &rows);
    // Per-row decisions are taken with --row-decisions where this build
    // has it (they are the default in builds without the flag).
    let help = triage(home).args(["update", "--help"]).output().unwrap();
    let row_flag: &[&str] = if String::from_utf8_lossy(&help.stdout).contains("--row-decisions") {
        &["--row-decisions"]
    } else {
        &[]
    };
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let failed = home.join("failed.csv");
    let out = triage(home)
        .args([
            "update",
            s(&input),
            "--note",
            "Text=unused,UpdatedBy=secops",
        ])
        .args(["--workflow", "Status=SUPPRESSED"])
        .args(row_flag)
        .args([
            "--endpoint-url",
            &dead,
            "--failed",
            s(&failed),
            "--no-progress",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let listed = read_results(&failed);
    assert_eq!(listed.len(), 60, "{}", text(&out));
    let first = listed.iter().find(|r| r["row"] == "1").unwrap();
    assert_eq!(first["Workflow.Status"], "RESOLVED");
    assert_eq!(first["Note.Text"], "ticket SEC-0, reviewed");
    assert_eq!(first["Note.UpdatedBy"], "secops");
    // Fed back with no decision on the command line, it re-applies
    // exactly what each row was meant to get.
    let out = triage(home)
        .args(["update", s(&failed)])
        .args(row_flag)
        .args(["--endpoint-url", &emu.url(), "--no-progress"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for (i, k) in keys.iter().enumerate() {
        let (note, by) = emu.note(k).expect("a note");
        assert_eq!(note, format!("ticket SEC-{i}, reviewed"));
        assert_eq!(by, "secops");
        let want = if i == 0 { "RESOLVED" } else { "SUPPRESSED" };
        assert_eq!(emu.workflow(k), want, "{k}");
    }
}

/// One round of [`a_failed_file_fed_back_reapplies_exactly_what_failed_and_stays_revertible`]
/// with the `--failed` file named `failed.<ext>` (CSV or JSON Lines).
fn failed_file_round_trip(ext: &str) {
    let (dir, emu, keys, _) = setup(40);
    let home = dir.path();
    // What each finding holds now, as an export records it (state), and
    // each row's own note (a per-row decision).
    let before: Vec<(String, Option<(String, String)>)> = keys
        .iter()
        .map(|k| (emu.workflow(k), emu.note(k)))
        .collect();
    assert!(before.iter().any(|(_, n)| n.is_some()) && before.iter().any(|(_, n)| n.is_none()));
    let input = home.join("in.csv");
    let rows: Vec<String> = keys
        .iter()
        .zip(&before)
        .enumerate()
        .map(|(i, (k, (status, note)))| {
            let note = note.as_ref().map_or(String::new(), |(t, by)| {
                support::csv_quote(&serde_json::json!({"Text": t, "UpdatedBy": by}).to_string())
            });
            format!(
                "{},{status},{note},\"ticket SEC-{i}, reviewed\"",
                key_row(k)
            )
        })
        .collect();
    write_csv(
        &input,
        "Id,ProductArn,Workflow.Status,Note,Note.Text",
        &rows,
    );
    // Some findings fail: the service answers ConcurrentUpdateError for
    // them and one attempt is all they get.
    let mut faults = emu.state.faults();
    faults.concurrent_update_error = 0.4;
    emu.state.set_faults(faults.clone());
    let failed = home.join(format!("failed.{ext}"));
    let r1 = home.join("r1.csv");
    let out = triage(home)
        .args(["update", s(&input), "--row-decisions=Note.Text"])
        .args(["--workflow", "Status=SUPPRESSED"])
        .args(["--note", "Text=unused,UpdatedBy=secops"])
        .args(["--max-attempts", "1", "--endpoint-url", &emu.url()])
        .args(["--results", s(&r1), "--failed", s(&failed), "--no-progress"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "some failed: {}", text(&out));
    let outcomes: Vec<(String, String)> = read_results(&r1)
        .into_iter()
        .map(|r| (r["Id"].clone(), r["outcome"].clone()))
        .collect();
    let failed_ids: std::collections::BTreeSet<String> = outcomes
        .iter()
        .filter(|(_, o)| o == "failed")
        .map(|(id, _)| id.clone())
        .collect();
    assert!(
        !failed_ids.is_empty() && failed_ids.len() < keys.len(),
        "{outcomes:?}"
    );
    for k in &keys {
        let history = emu.state.update_history(k);
        assert_eq!(
            history.len(),
            usize::from(!failed_ids.contains(&k.id)),
            "{k}"
        );
    }
    // The failed file: each row's decision and the state it came with.
    let listed: Vec<serde_json::Value> = if ext == "csv" {
        read_results(&failed)
            .into_iter()
            .map(|r| serde_json::to_value(r).unwrap())
            .collect()
    } else {
        std::fs::read_to_string(&failed)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    assert_eq!(listed.len(), failed_ids.len());
    for row in &listed {
        let i = keys
            .iter()
            .position(|k| row["Id"] == k.id.as_str())
            .unwrap();
        let (status, note) = &before[i];
        let (decision, state) = if ext == "csv" {
            assert_eq!(row["Workflow.Status"], "SUPPRESSED");
            assert_eq!(
                row["Note.Text"],
                format!("ticket SEC-{i}, reviewed").as_str()
            );
            assert_eq!(row["Note.UpdatedBy"], "secops");
            let state: serde_json::Value =
                serde_json::from_str(row["recorded_state"].as_str().unwrap()).unwrap();
            (None, state)
        } else {
            (Some(row["decision"].clone()), row["recorded_state"].clone())
        };
        if let Some(d) = decision {
            assert_eq!(
                d,
                serde_json::json!({
                    "Workflow": {"Status": "SUPPRESSED"},
                    "Note": {"Text": format!("ticket SEC-{i}, reviewed"), "UpdatedBy": "secops"},
                })
            );
        }
        let want_note = note.as_ref().map_or(
            serde_json::Value::Null,
            |(t, by)| serde_json::json!({"Text": t, "UpdatedBy": by}),
        );
        assert_eq!(
            state,
            serde_json::json!({"Workflow": {"Status": status}, "Note": want_note}),
            "{row}"
        );
    }
    // Fed back with no decision at all, it is refused before any call,
    // naming the flag that takes its decisions.
    let sent = emu.requests();
    let out = triage(home)
        .args(["update", s(&failed), "--endpoint-url", &emu.url()])
        .arg("--no-progress")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--row-decisions"),
        "{}",
        text(&out)
    );
    assert_eq!(emu.requests(), sent);
    // Fed back against a healthy service, with no decision on the command
    // line: exactly the failed findings get exactly their decisions.
    faults.concurrent_update_error = 0.0;
    emu.state.set_faults(faults);
    emu.state.reset_counters();
    let r2 = home.join("r2.csv");
    let out = triage(home)
        .args(["update", s(&failed), "--row-decisions"])
        .args(["--endpoint-url", &emu.url(), "--results", s(&r2)])
        .arg("--no-progress")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for (i, k) in keys.iter().enumerate() {
        let history = emu.state.update_history(k);
        if !failed_ids.contains(&k.id) {
            assert!(history.is_empty(), "{k} was not failed: {history:?}");
            continue;
        }
        let mut written = history.concat();
        written.sort();
        assert_eq!(history.len(), 1, "{k}");
        assert_eq!(written, ["Note", "Workflow.Status"], "{k}");
        assert_eq!(emu.workflow(k), "SUPPRESSED");
        assert_eq!(
            emu.note(k),
            Some((format!("ticket SEC-{i}, reviewed"), "secops".into()))
        );
    }
    // The second run recorded what the findings held before: revert puts
    // the workflow status back, and the note where there was one.
    let second = read_results(&r2);
    assert_eq!(second.len(), failed_ids.len());
    for row in &second {
        assert_eq!(row["outcome"], "updated", "{row:?}");
        let i = keys.iter().position(|k| k.id == row["Id"]).unwrap();
        let prior: serde_json::Value = serde_json::from_str(&row["prior"]).unwrap();
        assert_eq!(prior["Workflow"]["Status"], before[i].0.as_str(), "{row:?}");
    }
    let out = triage(home)
        .args(["revert", s(&r2), "--results", s(&home.join("r3.csv"))])
        .args(["--endpoint-url", &emu.url(), "--no-progress"])
        .output()
        .unwrap();
    // Notes written where there were none cannot be removed: partially
    // restored (2) when a failed finding had no note, else 0.
    assert!(
        matches!(out.status.code(), Some(0) | Some(2)),
        "{}",
        text(&out)
    );
    for (i, k) in keys.iter().enumerate() {
        if !failed_ids.contains(&k.id) {
            continue;
        }
        let (status, note) = &before[i];
        assert_eq!(&emu.workflow(k), status, "{k}");
        if note.is_some() {
            assert_eq!(&emu.note(k), note, "{k}");
        }
    }
}

/// The `--failed` file is a complete input (issue 11): each row carries its
/// effective decision and the state it came with, so that fed back with
/// `--row-decisions` it re-applies exactly what failed, and the results of
/// that run record prior values that `revert` restores. CSV and JSON Lines.
#[test]
fn a_failed_file_fed_back_reapplies_exactly_what_failed_and_stays_revertible() {
    failed_file_round_trip("csv");
    failed_file_round_trip("jsonl");
}

/// The journal's header records `--duplicates`: a `--resume` with another
/// policy (which would choose other rows of a finding) is refused before
/// anything is sent, naming the policy to resume with.
#[test]
fn a_resume_with_another_duplicates_policy_is_refused() {
    let (dir, emu, _keys, input) = setup(12);
    let home = dir.path();
    let results = home.join("r.csv");
    let out = update(home, &emu, &[s(&input), "--results", s(&results)])
        .args(["--duplicates", "first"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let header: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home.join("r.csv.journal.json")).unwrap())
            .unwrap();
    assert_eq!(header["duplicates"], "first", "{header}");
    let journal = std::fs::read(&results).unwrap();
    let sent = emu.requests();
    for other in [&["--duplicates", "last"][..], &[]] {
        let out = update(
            home,
            &emu,
            &[s(&input), "--results", s(&results), "--resume"],
        )
        .args(other)
        .output()
        .unwrap();
        assert_eq!(out.status.code(), Some(1), "{other:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("the --duplicates policy changed: first then")
                && err.contains("resume with --duplicates first"),
            "{other:?}: {err}"
        );
        assert_eq!(emu.requests(), sent, "nothing sent");
        assert_eq!(std::fs::read(&results).unwrap(), journal, "journal intact");
    }
    // The same policy resumes (nothing is left to do).
    let out = update(
        home,
        &emu,
        &[s(&input), "--results", s(&results), "--resume"],
    )
    .args(["--duplicates", "first"])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(emu.requests(), sent);
}
