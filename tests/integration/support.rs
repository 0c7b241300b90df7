//! Shared test harness: the emulator on 127.0.0.1 (port 0) in its own
//! runtime, the real binary with credentials that exist only here, and
//! readers for results files. A module of the integration-test binary
//! (`tests/integration/main.rs`); use it as `crate::support`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use sechub_triage::emulator::{EmulatorConfig, EmulatorState, LocalEmulator};
use sechub_triage::model::FindingKey;

/// The secret access key every test run gets: recognisable, so that tests
/// can check it never reaches an output.
pub(crate) const TEST_SECRET: &str = "support-test-secret-XYZZY";

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_sechub-triage");

/// An emulator serving on 127.0.0.1 until dropped: the library's
/// [`LocalEmulator`] on a runtime of its own, for tests that are not async
/// (they run the binary, or drive the engine through `rt`).
pub(crate) struct Emu {
    pub addr: SocketAddr,
    pub state: EmulatorState,
    // Declared before `rt`, so dropped (told to stop) before the runtime.
    server: LocalEmulator,
    pub rt: tokio::runtime::Runtime,
}

impl Emu {
    pub(crate) fn start(config: EmulatorConfig) -> Emu {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = LocalEmulator::start_on(rt.handle(), EmulatorState::new(config)).unwrap();
        Emu {
            addr: server.addr(),
            state: server.state().clone(),
            server,
            rt,
        }
    }

    pub(crate) fn url(&self) -> String {
        self.server.url()
    }

    /// Every API request the emulator received, all operations together.
    pub(crate) fn requests(&self) -> u64 {
        self.state.counters().requests.values().sum()
    }

    /// The stored finding's note (text, author), if it has one.
    pub(crate) fn note(&self, key: &FindingKey) -> Option<(String, String)> {
        let f = self.state.finding(key).expect("finding stored");
        let n = f.get("Note").filter(|n| !n.is_null())?;
        Some((
            n["Text"].as_str().unwrap_or_default().to_owned(),
            n["UpdatedBy"].as_str().unwrap_or_default().to_owned(),
        ))
    }

    /// The stored finding's workflow status.
    pub(crate) fn workflow(&self, key: &FindingKey) -> String {
        let f = self.state.finding(key).expect("finding stored");
        f["Workflow"]["Status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// The binary with credentials that exist only here and no access to any
/// real configuration.
pub(crate) fn triage(home: &Path) -> Command {
    with_test_env(Command::new(BIN), home)
}

/// `c` with the test environment of [`triage`] (for wrappers such as `script`).
pub(crate) fn with_test_env(mut c: Command, home: &Path) -> Command {
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_ACCESS_KEY_ID", "AKIDSUPPORTTEST")
        .env("AWS_SECRET_ACCESS_KEY", TEST_SECRET)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", home.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"));
    c
}

pub(crate) fn write_csv(path: &Path, header: &str, rows: &[String]) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(f, "{header}").unwrap();
    for r in rows {
        writeln!(f, "{r}").unwrap();
    }
}

pub(crate) fn csv_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// One `Id,ProductArn` CSV row.
pub(crate) fn key_row(k: &FindingKey) -> String {
    format!("{},{}", csv_quote(&k.id), csv_quote(&k.product_arn))
}

/// Reads a results CSV into one map per row.
pub(crate) fn read_results(path: &Path) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// Runs `cmd` in the background (its output discarded) and kills it with
/// SIGKILL once `file` holds more than `lines` lines (within two minutes,
/// else the test fails: the run never got going).
pub(crate) fn kill_9_once_written(cmd: &mut Command, file: &Path, lines: usize) {
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::fs::read_to_string(file).map_or(0, |t| t.lines().count()) <= lines {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never got going"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Asserts that the emulator saw the first `update` request before the
/// last `read` request: reading and updating overlapped (an order of
/// arrivals, not a timing).
pub(crate) fn assert_overlapped(
    emu: &Emu,
    read: sechub_triage::emulator::Operation,
    update: sechub_triage::emulator::Operation,
) {
    let last_page = *emu.state.arrivals(read).iter().max().unwrap();
    let first_update = *emu.state.arrivals(update).iter().min().unwrap();
    assert!(first_update < last_page, "{first_update:?} {last_page:?}");
}

/// The rows of a JSON Lines results file.
pub(crate) fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A minimal valid ASFF finding (GuardDuty, account 123456789012) with this
/// workflow status, for tests to insert into the emulator after adding the
/// fields they need.
pub(crate) fn asff_finding(id: &str, workflow_status: &str) -> serde_json::Value {
    serde_json::json!({
        "SchemaVersion": "2018-10-08",
        "Id": id,
        "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty",
        "GeneratorId": "g",
        "AwsAccountId": "123456789012",
        "CreatedAt": "2026-01-01T00:00:00Z",
        "UpdatedAt": "2026-01-02T00:00:00Z",
        "Severity": {"Label": "LOW", "Original": "2"},
        "Title": "t",
        "Description": "d",
        "Resources": [{"Type": "Other", "Id": "r"}],
        "Workflow": {"Status": workflow_status},
    })
}
