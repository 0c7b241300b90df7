//! The machine-readable outputs keep their shape per `schema_version`:
//! `--output json` (run summary and plan), the `--report` document and the
//! results file (CSV header, JSON Lines keys, journal header). Each is
//! produced by the real binary against the emulator, reduced to its field
//! paths (`pacing.regions.*.requests`, `decisions[].findings`; map keys
//! that are data, such as Regions or error codes, become `*`), and compared
//! with the golden list for its current version in `tests/schemas/`.
//!
//! A field added, removed or renamed fails here until the golden list (and
//! `docs/outputs.md`, checked below) says so: a compatible addition is
//! added to the current list; anything else bumps the version in
//! `src/schema.rs` and starts a new list. `SECHUB_TRIAGE_BLESS=1` writes
//! the list of a new version from what the outputs hold now.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::support::{Emu, csv_quote, key_row, triage, write_csv};
use sechub_triage::emulator::{EmulatorConfig, SyntheticSpec};
use sechub_triage::model::FindingKey;
use sechub_triage::schema;
use serde_json::Value;

/// Objects whose keys are data (Regions, accounts, codes, outcomes), by
/// path; their entries are listed as `*`.
const MAPS: &[&str] = &[
    // run summary (also the report's `summary`)
    "outcomes",
    "errors_by_code",
    "unprocessed_by_code",
    "earlier_outcomes",
    "all_runs",
    // plan
    "by_account",
    "by_region",
    "by_product",
    "notes",
    "fields_written",
    "requests.by_region",
    // report
    "pacing.regions",
    "pacing.regions.*.request_errors_by_code",
    "retries_by_code",
    "request_errors_by_code",
    "summary.outcomes",
    "summary.errors_by_code",
    "summary.unprocessed_by_code",
    "summary.earlier_outcomes",
    "summary.all_runs",
];

/// Members whose content is data of another shape (the decision, as the
/// `BatchUpdateFindings` members): listed, not walked.
const OPAQUE: &[&str] = &["decision"];

fn paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if OPAQUE.contains(&prefix) {
        return;
    }
    match v {
        Value::Object(m) => {
            let is_map = MAPS.contains(&prefix);
            for (k, child) in m {
                let key = if is_map { "*" } else { k.as_str() };
                let p = if prefix.is_empty() {
                    key.to_owned()
                } else {
                    format!("{prefix}.{key}")
                };
                out.insert(p.clone());
                paths(child, &p, out);
            }
        }
        Value::Array(items) => {
            let p = format!("{prefix}[]");
            for item in items {
                if item.is_object() {
                    paths(item, &p, out);
                }
            }
        }
        _ => {}
    }
}

fn fields_of(docs: &[Value]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for d in docs {
        paths(d, "", &mut out);
    }
    out
}

fn golden_path(name: &str, version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/schemas/{name}-v{version}.txt"))
}

/// Compares `found` with the golden list `name-v<version>.txt`.
fn check(name: &str, version: u32, found: &BTreeSet<String>) {
    let path = golden_path(name, version);
    if std::env::var_os("SECHUB_TRIAGE_BLESS").is_some() && !path.exists() {
        let body: String = found.iter().map(|f| format!("{f}\n")).collect();
        std::fs::write(&path, body).unwrap();
    }
    // One field per line; `?field` is one an output leaves out when it has
    // no value (`skip_serializing_if`), so the run above may not show it.
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: a new schema version needs its field list",
            path.display()
        )
    });
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let allowed: BTreeSet<String> = lines
        .iter()
        .map(|l| l.trim_start_matches('?').to_owned())
        .collect();
    let required: BTreeSet<String> = lines
        .iter()
        .filter(|l| !l.starts_with('?'))
        .map(|l| (*l).to_owned())
        .collect();
    let added: Vec<_> = found.difference(&allowed).collect();
    let removed: Vec<_> = required.difference(found).collect();
    assert!(
        added.is_empty() && removed.is_empty(),
        "{name} schema_version {version} changed shape: fields added {added:?}, removed \
         {removed:?}. A compatible addition: add it to {} and docs/outputs.md. Anything else: \
         bump the version in src/schema.rs and start tests/schemas/{name}-v<N>.txt",
        path.display()
    );
    documented(name, &allowed);
}

/// Every field name appears in docs/outputs.md (as `name`).
fn documented(name: &str, fields: &BTreeSet<String>) {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/outputs.md"))
            .unwrap();
    let missing: Vec<_> = fields
        .iter()
        .filter(|f| {
            let last = f.rsplit('.').next().unwrap_or(f).trim_end_matches("[]");
            last != "*" && !docs.contains(&format!("`{last}`"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "docs/outputs.md does not document these {name} fields: {missing:?}"
    );
}

fn seed(emu: &Emu) -> Vec<FindingKey> {
    emu.state.seed_synthetic(&SyntheticSpec {
        count: 40,
        seed: 3,
        regions: vec!["us-east-1".into(), "eu-west-1".into()],
        ..SyntheticSpec::default()
    })
}

/// An input with every kind of row: good ones, a finding that does not
/// exist, a repeat and a rejected row.
fn input(dir: &Path, keys: &[FindingKey]) -> PathBuf {
    let mut rows: Vec<String> = keys.iter().map(key_row).collect();
    rows.push(format!(
        "{},{}",
        csv_quote("missing-finding"),
        csv_quote("arn:aws:securityhub:us-east-1::product/aws/securityhub")
    ));
    rows.push(key_row(&keys[0]));
    rows.push(format!(
        ",{}",
        csv_quote("arn:aws:securityhub:us-east-1::product/aws/securityhub")
    ));
    let path = dir.join("in.csv");
    write_csv(&path, "Id,ProductArn", &rows);
    path
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// One run: JSON summary on stdout, a report, JSON Lines and CSV results.
struct Run {
    summary: Value,
    report: Value,
    jsonl: Vec<Value>,
    jsonl_header: Value,
    csv_header: Vec<String>,
    csv_journal_header: Value,
}

fn run() -> Run {
    let emu = Emu::start(EmulatorConfig::default());
    let keys = seed(&emu);
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), &keys);
    let go = |results: &str, report: Option<&str>| {
        let mut c = triage(dir.path());
        c.current_dir(dir.path())
            .arg("update")
            .arg(&input)
            .args(["--workflow", "Status=SUPPRESSED", "--no-progress"])
            .args(["--endpoint-url", &emu.url(), "--output", "json"])
            .args(["--results", results]);
        if let Some(r) = report {
            c.args(["--report", r]);
        }
        let out = c.output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let summary = go("results.jsonl", Some("report.json"));
    go("results.csv", None);
    let jsonl = std::fs::read_to_string(dir.path().join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let csv_header = csv::Reader::from_path(dir.path().join("results.csv"))
        .unwrap()
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    Run {
        summary,
        report: json(&dir.path().join("report.json")),
        jsonl,
        jsonl_header: json(&dir.path().join("results.jsonl.journal.json")),
        csv_header,
        csv_journal_header: json(&dir.path().join("results.csv.journal.json")),
    }
}

#[test]
fn run_summary_report_and_results_keep_their_shape() {
    let r = run();

    assert_eq!(r.summary["schema_version"], schema::SUMMARY);
    check(
        "summary",
        schema::SUMMARY,
        &fields_of(std::slice::from_ref(&r.summary)),
    );

    assert_eq!(r.report["schema_version"], schema::REPORT);
    check(
        "report",
        schema::REPORT,
        &fields_of(std::slice::from_ref(&r.report)),
    );

    // Results: every JSON Lines row carries the version (last); the CSV header is
    // the same columns without it; both journal headers carry it.
    assert!(r.jsonl.len() > 40);
    for row in &r.jsonl {
        assert_eq!(row["schema_version"], schema::RESULTS, "{row}");
    }
    let fields = fields_of(&r.jsonl);
    check("results", schema::RESULTS, &fields);
    let mut csv: BTreeSet<String> = r.csv_header.iter().cloned().collect();
    csv.insert("schema_version".into());
    assert_eq!(csv, fields, "CSV columns and JSON Lines keys differ");
    for header in [&r.jsonl_header, &r.csv_journal_header] {
        assert_eq!(header["schema_version"], schema::RESULTS, "{header}");
    }
    check(
        "journal",
        sechub_triage::journal::VERSION,
        &fields_of(std::slice::from_ref(&r.jsonl_header)),
    );
}

#[test]
fn the_plan_keeps_its_shape() {
    let emu = Emu::start(EmulatorConfig::default());
    let keys = seed(&emu);
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), &keys);
    let out = triage(dir.path())
        .current_dir(dir.path())
        .arg("plan")
        .arg(&input)
        .args(["--workflow", "Status=SUPPRESSED"])
        .args(["--note", "Text=reviewed,UpdatedBy=secops"])
        .args(["--max-findings", "1", "--output", "json"])
        .output()
        .unwrap();
    // Refused (--max-findings): status 1, the plan still printed.
    assert_eq!(out.status.code(), Some(1));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["schema_version"], schema::PLAN);
    // The optional members of samples are there (a rejected row's column,
    // a warning's finding Id), so the list is complete.
    let fields = fields_of(&[plan]);
    for f in ["rejected.samples[].column", "warnings[].samples[].id"] {
        assert!(fields.contains(f), "{f} not exercised");
    }
    check("plan", schema::PLAN, &fields);
}
