//! Only what was asked (issue 10), end to end, one test per export layout:
//! the fixture files under `tests/fixtures/layouts/` record the current
//! state of the three findings in `findings.json` the way each tool exports
//! it. `sechub-triage update` runs on each against the emulator over HTTP,
//! and the emulator's stored findings AND its field-level update history
//! (`update_history`, the admin API's `/_emulator/findings/history`) show
//! that exactly the asked fields were written; then `revert` puts the
//! workflow status back from what the layout recorded.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::support::*;
use arrow::array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, StructArray};
use arrow::datatypes::{Field, Fields};
use parquet::arrow::ArrowWriter;
use sechub_triage::emulator::{EmulatorConfig, Operation};
use sechub_triage::model::FindingKey;
use serde_json::Value;

const ASKED: [&str; 6] = [
    "--workflow",
    "Status=SUPPRESSED",
    "--note",
    "Text=Accepted risk (RISK-118),UpdatedBy=secops",
    "--yes",
    "--no-progress",
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/layouts")
        .join(name)
}

struct Case {
    emu: Emu,
    dir: tempfile::TempDir,
    keys: Vec<FindingKey>,
    before: Vec<Value>,
}

impl Case {
    fn new() -> Case {
        let emu = Emu::start(EmulatorConfig::unthrottled());
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(fixture("findings.json")).unwrap())
                .unwrap();
        let keys: Vec<FindingKey> = doc["Findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| emu.state.insert_finding(f.clone()).unwrap())
            .collect();
        let before = keys.iter().map(|k| emu.state.finding(k).unwrap()).collect();
        Case {
            emu,
            dir: tempfile::tempdir().unwrap(),
            keys,
            before,
        }
    }

    fn run(&self, args: &[&str]) -> (i32, String) {
        let out = triage(self.dir.path())
            .args(args)
            .args(["--endpoint-url", &self.emu.url()])
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn results(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Every finding got exactly one update, setting exactly `fields`, and
    /// nothing else of the finding changed (checked on the stored document).
    fn assert_wrote_exactly(&self, fields: &[&str]) {
        let want: BTreeSet<String> = fields.iter().map(|s| s.to_string()).collect();
        for (k, before) in self.keys.iter().zip(&self.before) {
            let h = self.emu.state.update_history(k);
            assert_eq!(h.len(), 1, "{k}: one update: {h:?}");
            let got: BTreeSet<String> = h[0].iter().cloned().collect();
            assert_eq!(got, want, "{k}: the fields written");
            let after = self.emu.state.finding(k).unwrap();
            assert_eq!(after["Workflow"]["Status"], "SUPPRESSED", "{k}");
            assert_eq!(
                strip(&after, fields),
                strip(before, fields),
                "{k}: nothing else changed"
            );
        }
    }

    /// `revert` of `results`: the workflow status is back for every
    /// finding, and the revert wrote nothing but what the run had written.
    fn assert_revertible(&self, results: &Path, fields: &[&str]) -> String {
        let back = self.results("revert.csv");
        let (status, stderr) = self.run(&[
            "revert",
            results.to_str().unwrap(),
            "--results",
            back.to_str().unwrap(),
            "--yes",
            "--no-progress",
        ]);
        assert!(status == 0 || status == 2, "{status}: {stderr}");
        for (k, before) in self.keys.iter().zip(&self.before) {
            let after = self.emu.state.finding(k).unwrap();
            assert_eq!(
                after["Workflow"]["Status"], before["Workflow"]["Status"],
                "{k}: workflow restored; {stderr}"
            );
            let h = self.emu.state.update_history(k);
            assert_eq!(h.len(), 2, "{k}: {h:?}");
            for f in &h[1] {
                assert!(
                    fields.contains(&f.as_str()),
                    "{k}: the revert wrote {f}, which the run had not"
                );
            }
        }
        stderr
    }
}

/// The document without the members `fields` name (and the note's time).
fn strip(doc: &Value, fields: &[&str]) -> Value {
    let mut d = doc.clone();
    let m = d.as_object_mut().unwrap();
    for f in fields {
        let top = f.split('.').next().unwrap();
        m.remove(top);
    }
    d
}

fn update(case: &Case, input: &Path, extra: &[&str]) -> (i32, String, PathBuf) {
    let results = case.results("results.csv");
    let mut args = vec![
        "update",
        input.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ];
    args.extend_from_slice(&ASKED);
    args.extend_from_slice(extra);
    let (status, stderr) = case.run(&args);
    (status, stderr, results)
}

fn prior_of(results: &Path) -> Vec<Value> {
    let mut rows = read_results(results);
    rows.sort_by_key(|r| r["row"].parse::<u64>().unwrap());
    rows.iter()
        .map(|r| {
            assert_eq!(r["outcome"], "updated", "{r:?}");
            serde_json::from_str(&r["prior"]).unwrap_or(Value::Null)
        })
        .collect()
}

const WORKFLOW_AND_NOTE: [&str; 2] = ["Workflow.Status", "Note"];

/// The layouts whose columns record state: the run writes the command
/// line's two fields, never the severity, confidence, ... they hold.
fn state_layout(name: &str, records_notes: bool) {
    let case = Case::new();
    let (status, stderr, results) = update(&case, &fixture(name), &[]);
    assert_eq!(status, 0, "{stderr}");
    assert!(
        !stderr.contains("per-row decision columns"),
        "no column is a decision without --row-decisions: {stderr}"
    );
    case.assert_wrote_exactly(&WORKFLOW_AND_NOTE);
    let prior = prior_of(&results);
    for (p, before) in prior.iter().zip(&case.before) {
        assert_eq!(p["Workflow"]["Status"], before["Workflow"]["Status"], "{p}");
    }
    if records_notes {
        // The first finding's note is recorded, text and author.
        assert_eq!(prior[0]["Note"]["Text"], case.before[0]["Note"]["Text"]);
    }
    let stderr = case.assert_revertible(&results, &WORKFLOW_AND_NOTE);
    if records_notes {
        let a = case.emu.state.finding(&case.keys[0]).unwrap();
        assert_eq!(
            a["Note"]["Text"], case.before[0]["Note"]["Text"],
            "{stderr}"
        );
        assert_eq!(a["Note"]["UpdatedBy"], case.before[0]["Note"]["UpdatedBy"]);
    }
}

#[test]
fn steampipe_layout_writes_only_what_was_asked() {
    // The case: severity_label MEDIUM and workflow_status NEW used
    // to be written back (Severity becoming customer-owned).
    state_layout("steampipe.csv", false);
}

#[test]
fn steampipe_select_star_layout_writes_only_what_was_asked() {
    state_layout("steampipe-select-star.csv", true);
}

#[test]
fn cloudquery_layout_with_json_cells_is_state_not_invalid() {
    state_layout("cloudquery.csv", true);
}

#[test]
fn athena_asff_layout_with_struct_cells_is_state_not_invalid() {
    state_layout("athena-asff.csv", true);
}

#[test]
fn flattened_get_findings_layout_writes_only_what_was_asked() {
    state_layout("get-findings-flat.csv", true);
}

#[test]
fn csv_manager_sheet_without_row_decisions_is_state() {
    state_layout("csv-manager.csv", true);
}

#[test]
fn no_decision_and_no_row_decisions_is_refused_naming_the_columns() {
    let case = Case::new();
    let results = case.results("results.csv");
    let (status, stderr) = case.run(&[
        "update",
        fixture("csv-manager.csv").to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--no-progress",
    ]);
    assert_eq!(status, 1, "{stderr}");
    for needle in [
        "nothing to update",
        "Workflow",
        "SeverityLabel",
        "--row-decisions",
    ] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
    assert!(!stderr.contains("ProductSeverity,"), "read-only: {stderr}");
    assert_eq!(
        case.emu
            .state
            .counters()
            .requests_for(Operation::BatchUpdateFindings),
        0,
        "nothing sent"
    );
}

#[test]
fn csv_manager_sheet_with_row_decisions_writes_the_edited_cells_only() {
    let case = Case::new();
    let results = case.results("results.csv");
    let (status, stderr) = case.run(&[
        "update",
        fixture("csv-manager-edited.csv").to_str().unwrap(),
        "--row-decisions",
        "--results",
        results.to_str().unwrap(),
        "--yes",
        "--no-progress",
    ]);
    assert_eq!(status, 0, "{stderr}");
    // Types and ProductSeverity hold values but are read-only in the sheet.
    case.assert_wrote_exactly(&WORKFLOW_AND_NOTE);
    for k in &case.keys {
        assert_eq!(
            case.emu.note(k),
            Some(("Accepted risk (RISK-118)".into(), "secops".into()))
        );
    }
    // The sheet's decision columns hold the new values, so it records no
    // prior workflow or note: the revert says so, row by row, and sends
    // nothing rather than guess.
    let back = case.results("revert.csv");
    let (status, stderr) = case.run(&[
        "revert",
        results.to_str().unwrap(),
        "--results",
        back.to_str().unwrap(),
        "--yes",
        "--no-progress",
    ]);
    assert_eq!(status, 2, "{stderr}");
    for r in read_results(&back) {
        assert_eq!(r["outcome"], "invalid", "{r:?}");
        assert!(
            r["error_message"].contains("did not record"),
            "{}",
            r["error_message"]
        );
    }
}

fn strings(values: Vec<String>) -> ArrayRef {
    Arc::new(StringArray::from(values))
}

fn structure(children: Vec<(&str, ArrayRef)>) -> ArrayRef {
    let fields: Fields = children
        .iter()
        .map(|(name, a)| Field::new(*name, a.data_type().clone(), true))
        .collect();
    let arrays = children.into_iter().map(|(_, a)| a).collect();
    Arc::new(StructArray::try_new(fields, arrays, None).unwrap())
}

fn write_parquet(path: &Path, batch: RecordBatch) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn caption(status: &str) -> String {
    match status {
        "NEW" => "New",
        "NOTIFIED" => "In Progress",
        "SUPPRESSED" => "Suppressed",
        _ => "Resolved",
    }
    .to_owned()
}

/// Security Lake, source v1 (OCSF 1.0): `finding.uid`, `state`, an integer
/// `confidence` (which used to be written back as Confidence).
#[test]
fn security_lake_ocsf_1_0_writes_only_what_was_asked() {
    let case = Case::new();
    let b = &case.before;
    let path = case.results("lake-1.0.parquet");
    let batch = RecordBatch::try_from_iter([
        (
            "finding",
            structure(vec![(
                "uid",
                strings(case.keys.iter().map(|k| k.id.clone()).collect()),
            )]),
        ),
        (
            "metadata",
            structure(vec![(
                "product",
                structure(vec![(
                    "uid",
                    strings(case.keys.iter().map(|k| k.product_arn.clone()).collect()),
                )]),
            )]),
        ),
        (
            "state",
            strings(
                b.iter()
                    .map(|f| caption(f["Workflow"]["Status"].as_str().unwrap()))
                    .collect(),
            ),
        ),
        (
            "confidence",
            Arc::new(Int32Array::from(
                b.iter()
                    .map(|f| f["Confidence"].as_i64().map(|n| n as i32))
                    .collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
    ])
    .unwrap();
    write_parquet(&path, batch);
    let (status, stderr, results) = update(&case, &path, &[]);
    assert_eq!(status, 0, "{stderr}");
    case.assert_wrote_exactly(&WORKFLOW_AND_NOTE);
    let prior = prior_of(&results);
    assert_eq!(prior[1]["Workflow"]["Status"], "NOTIFIED");
    case.assert_revertible(&results, &WORKFLOW_AND_NOTE);
}

/// Security Lake, source v2 (OCSF 1.1): `confidence = "High"` (a caption)
/// used to make every row invalid; it is unknown state now.
#[test]
fn security_lake_ocsf_1_1_writes_only_what_was_asked() {
    let case = Case::new();
    let b = &case.before;
    let path = case.results("lake-1.1.parquet");
    let n = b.len();
    let batch = RecordBatch::try_from_iter([
        (
            "finding_info",
            structure(vec![
                (
                    "uid",
                    strings(case.keys.iter().map(|k| k.id.clone()).collect()),
                ),
                (
                    "modified_time",
                    Arc::new(Int64Array::from(vec![1_796_342_400_000i64; n])) as ArrayRef,
                ),
            ]),
        ),
        (
            "metadata",
            structure(vec![(
                "product",
                structure(vec![(
                    "uid",
                    strings(
                        case.keys
                            .iter()
                            .map(|k| k.product_arn.replacen(":product/", ":productv2/", 1))
                            .collect(),
                    ),
                )]),
            )]),
        ),
        (
            "status",
            strings(
                b.iter()
                    .map(|f| caption(f["Workflow"]["Status"].as_str().unwrap()))
                    .collect(),
            ),
        ),
        ("confidence", strings(vec!["High".to_owned(); n])),
        (
            "message",
            Arc::new(StringArray::from(
                b.iter()
                    .map(|f| f["Note"]["Text"].as_str().map(str::to_owned))
                    .collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
    ])
    .unwrap();
    write_parquet(&path, batch);
    let (status, stderr, results) = update(&case, &path, &[]);
    assert_eq!(status, 0, "{stderr}");
    case.assert_wrote_exactly(&WORKFLOW_AND_NOTE);
    let prior = prior_of(&results);
    assert_eq!(prior[0]["Workflow"]["Status"], "NEW");
    case.assert_revertible(&results, &WORKFLOW_AND_NOTE);
}

#[test]
fn the_emulator_admin_api_serves_the_field_history() {
    let case = Case::new();
    let (status, stderr, _) = update(&case, &fixture("steampipe.csv"), &[]);
    assert_eq!(status, 0, "{stderr}");
    let k = &case.keys[0];
    let body = serde_json::json!({"Id": k.id, "ProductArn": k.product_arn}).to_string();
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(case.emu.addr).unwrap();
    write!(
        conn,
        "POST /_emulator/findings/history HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let json = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    let v: Value = serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("{e}: {answer}"));
    assert_eq!(
        v["Updates"],
        serde_json::json!([["Workflow.Status", "Note"]])
    );
}
