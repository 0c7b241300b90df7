//! Peak memory of `plan` and `update` over inputs whose every row carries
//! its own decision (a per-row `Note.Text`, as an export with one ticket
//! note per finding has).
//!
//! `cargo bench --bench decisions` (or `DECISIONS_ROWS=a,b` to change the
//! sizes, default 100,000 and 1,000,000): starts the emulator binary with
//! that many synthetic findings (its own process, so its memory is not
//! counted), writes a CSV naming each with a distinct note, runs the
//! `sechub-triage` binary's `plan` and `update` on it (`--row-decisions`,
//! so that each row's note is its own decision) as child processes,
//! and prints each child's peak resident set size (VmHWM, polled from
//! `/proc` every 5 ms until the child exits) and its wall-clock time.
//! `plan-one` and `update-one` are the baselines: the same file without
//! `--row-decisions`, every row with the command line's one decision.
//! `DECISIONS_COMMANDS=plan` (or `plan-one`, `update`, `update-one`, or a
//! comma-separated list; default `plan,plan-one,update`) runs only those.
//! `MALLOC_ARENA_MAX`, if set, is passed to the children. Linux
//! only. Not a criterion benchmark: one run per size.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sechub-triage");

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Waits for `child`, polling its peak RSS; returns (peak KiB, seconds, success).
fn peak_of(mut child: Child) -> (u64, f64, bool) {
    let start = Instant::now();
    let mut peak = 0;
    loop {
        if let Some(v) = vm_hwm_kib(child.id()) {
            peak = peak.max(v);
        }
        if let Some(status) = child.try_wait().unwrap() {
            return (peak, start.elapsed().as_secs_f64(), status.success());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn triage(home: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_ACCESS_KEY_ID", "AKIDBENCH")
        .env("AWS_SECRET_ACCESS_KEY", "bench-secret")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", home.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Ok(v) = std::env::var("MALLOC_ARENA_MAX") {
        c.env("MALLOC_ARENA_MAX", v);
    }
    c
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let sizes: Vec<usize> = std::env::var("DECISIONS_ROWS")
        .unwrap_or_else(|_| "100000,1000000".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("DECISIONS_ROWS: comma-separated row counts")
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    println!(
        "{:>10} {:>8} {:>12} {:>10} {:>8}",
        "rows", "command", "peak MiB", "seconds", "ok"
    );
    for n in sizes {
        let keys = home.join(format!("keys-{n}.csv"));
        let mut emu = Command::new(BIN)
            .args(["emulator", "--no-throttle", "--listen", "127.0.0.1:0"])
            .args([
                "--synthetic",
                &n.to_string(),
                "--synthetic-regions",
                "us-east-1",
            ])
            .arg("--keys-out")
            .arg(&keys)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(emu.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .expect("the emulator's first line")
            .to_owned();
        // One distinct note per row.
        let input = home.join(format!("notes-{n}.csv"));
        {
            let text = std::fs::read_to_string(&keys).unwrap();
            let mut w = BufWriter::new(std::fs::File::create(&input).unwrap());
            let mut lines = text.lines();
            let header = lines.next().unwrap();
            writeln!(w, "{header},Note.Text").unwrap();
            for (i, l) in lines.enumerate() {
                writeln!(w, "{l},\"ticket SEC-{i:07}: accepted risk, reviewed\"").unwrap();
            }
        }
        let one_decision = |c: &mut Command| {
            c.args(["--note", "Text=default,UpdatedBy=bench"]).args([
                "--confirm-above",
                "100000000",
                "--no-progress",
            ]);
        };
        let common = |c: &mut Command| {
            // `--row-decisions`: without it the `Note.Text` column is read
            // as the findings' recorded state, and every row shares the
            // command line's one decision.
            c.arg(&input).arg("--row-decisions");
            one_decision(c);
        };
        let wanted =
            std::env::var("DECISIONS_COMMANDS").unwrap_or_else(|_| "plan,plan-one,update".into());
        if wanted.contains("plan-one") {
            // The baseline: the same file, every row with the one decision.
            let mut plan = triage(home);
            plan.arg("plan").arg(&input);
            one_decision(&mut plan);
            let (peak, secs, ok) = peak_of(plan.spawn().unwrap());
            println!(
                "{n:>10} {:>8} {:>12.1} {secs:>10.1} {ok:>8}",
                "plan-one",
                peak as f64 / 1024.0
            );
        }
        if wanted.split(',').any(|c| c.trim() == "plan") {
            let mut plan = triage(home);
            plan.arg("plan");
            common(&mut plan);
            let (peak, secs, ok) = peak_of(plan.spawn().unwrap());
            println!(
                "{n:>10} {:>8} {:>12.1} {secs:>10.1} {ok:>8}",
                "plan",
                peak as f64 / 1024.0
            );
        }
        // `update-one` first: it sets every finding to the one decision,
        // and `update` then writes each its own note (a change for each).
        for (name, rows) in [("update-one", false), ("update", true)] {
            if !wanted.split(',').any(|c| c.trim() == name) {
                continue;
            }
            let mut update = triage(home);
            update.arg("update");
            if rows {
                common(&mut update);
            } else {
                update.arg(&input);
                one_decision(&mut update);
            }
            update
                .args([
                    "--endpoint-url",
                    &url,
                    "--rate",
                    "100000",
                    "--burst",
                    "100000",
                ])
                .arg("--results")
                .arg(home.join(format!("results-{name}-{n}.csv")));
            let (peak, secs, ok) = peak_of(update.spawn().unwrap());
            println!(
                "{n:>10} {name:>8} {:>12.1} {secs:>10.1} {ok:>8}",
                peak as f64 / 1024.0
            );
        }
        let _ = emu.kill();
        let _ = emu.wait();
    }
}
