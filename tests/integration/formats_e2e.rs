//! Every export format, end to end: a realistic file of each kind is written
//! here, `sechub-triage update` runs on it against the emulator over HTTP,
//! and the emulator's stored findings show that exactly the right findings
//! carry exactly the right decision. Also: per-row decisions (grouped into
//! the fewest requests), `--skip-unchanged` over exports that record the
//! findings' state, and bad per-row values.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use crate::support::*;
use arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray, StructArray};
use arrow::datatypes::{Field, Fields};
use parquet::arrow::ArrowWriter;
use sechub_triage::emulator::{EmulatorConfig, Operation, SyntheticSpec};
use sechub_triage::model::FindingKey;
use serde_json::{Value, json};

/// Seeds `n` findings in one Region (so request counts are predictable).
fn seed(emu: &Emu, n: usize, seed: u64) -> Vec<FindingKey> {
    emu.state.seed_synthetic(&SyntheticSpec {
        count: n,
        seed,
        regions: vec!["us-east-1".into()],
        ..SyntheticSpec::default()
    })
}

/// The new Security Hub's form of a product ARN (`...:productv2/...`).
fn v2(arn: &str) -> String {
    let v2 = arn.replacen(":product/", ":productv2/", 1);
    assert_ne!(v2, arn);
    v2
}

fn account_of(k: &FindingKey, emu: &Emu) -> String {
    emu.state.finding(k).unwrap()["AwsAccountId"]
        .as_str()
        .unwrap()
        .to_owned()
}

struct Run {
    status: i32,
    stderr: String,
    results: Vec<HashMap<String, String>>,
}

/// Runs `update FILE --results ... ARGS` against the emulator.
fn update(emu: &Emu, dir: &Path, file: &Path, args: &[&str]) -> Run {
    let results = dir.join(format!(
        "{}.results.csv",
        file.file_name().unwrap().to_string_lossy()
    ));
    let out = triage(dir)
        .arg("update")
        .arg(file)
        .args(["--endpoint-url", &emu.url(), "--no-progress", "--results"])
        .arg(&results)
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(results.exists(), "no results file; stderr: {stderr}");
    // Results are written as outcomes arrive; tests read them in input order.
    let mut rows = read_results(&results);
    rows.sort_by_key(|r| r["row"].parse::<u64>().unwrap());
    Run {
        status: out.status.code().unwrap_or(-1),
        stderr,
        results: rows,
    }
}

fn status_of(emu: &Emu, k: &FindingKey) -> String {
    emu.state.finding(k).unwrap()["Workflow"]["Status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn note_of(emu: &Emu, k: &FindingKey) -> (String, String) {
    let f = emu.state.finding(k).unwrap();
    (
        f["Note"]["Text"].as_str().unwrap_or_default().to_owned(),
        f["Note"]["UpdatedBy"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// Every key was updated exactly once, to `status`, and the results hold
/// one `updated` row per key.
fn assert_all_updated(emu: &Emu, run: &Run, keys: &[FindingKey], status: &str) {
    assert_eq!(run.status, 0, "stderr: {}", run.stderr);
    assert_eq!(run.results.len(), keys.len(), "one results row per record");
    assert!(
        run.results.iter().all(|r| r["outcome"] == "updated"),
        "{:?}",
        run.results.iter().find(|r| r["outcome"] != "updated")
    );
    let in_results: HashSet<(&str, &str)> = run
        .results
        .iter()
        .map(|r| (r["Id"].as_str(), r["ProductArn"].as_str()))
        .collect();
    for k in keys {
        assert!(in_results.contains(&(k.id.as_str(), k.product_arn.as_str())));
        assert_eq!(emu.state.update_count(k), 1, "{k}");
        assert_eq!(status_of(emu, k), status, "{k}");
    }
}

/// `path` with `suffix` added to its whole name (`a.csv` → `a.csv.gz`).
fn with_suffix(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.file_name().unwrap().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

fn gzip(path: &Path) -> std::path::PathBuf {
    let out = with_suffix(path, ".gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&out).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(&std::fs::read(path).unwrap()).unwrap();
    enc.finish().unwrap();
    out
}

fn zstd_file(path: &Path) -> std::path::PathBuf {
    let out = with_suffix(path, ".zst");
    let data = std::fs::read(path).unwrap();
    std::fs::write(&out, zstd::encode_all(&data[..], 3).unwrap()).unwrap();
    out
}

const SUPPRESS: [&str; 4] = [
    "--workflow",
    "Status=SUPPRESSED",
    "--note",
    "Text=accepted risk,UpdatedBy=secops",
];

#[test]
fn csv_layouts_and_compression() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys = seed(&emu, 200, 1);
    let (asff, rest) = keys.split_at(40);
    let (snake, rest) = rest.split_at(40);
    let (athena, rest) = rest.split_at(40);
    let (tsv, gz) = rest.split_at(40);

    // ASFF names, with a BOM and a multi-line quoted title.
    let path = d.join("asff.csv");
    let rows: Vec<String> = asff
        .iter()
        .map(|k| format!("{},\"line one\nline two\"", key_row(k)))
        .collect();
    write_csv(&path, "\u{feff}Id,ProductArn,Title", &rows);
    let run = update(&emu, d, &path, &SUPPRESS);
    assert_all_updated(&emu, &run, asff, "SUPPRESSED");
    assert!(
        !run.stderr.contains("per-row decision columns"),
        "{}",
        run.stderr
    );

    // Steampipe/CloudQuery snake_case: its workflow_status column is the
    // finding's current state, never a decision (--no-row-decisions, the
    // default, still accepted).
    let path = d.join("steampipe.csv");
    let rows: Vec<String> = snake
        .iter()
        .map(|k| format!("{},us-east-1,{},NEW", key_row(k), account_of(k, &emu)))
        .collect();
    write_csv(
        &path,
        "id,product_arn,region,aws_account_id,workflow_status",
        &rows,
    );
    let mut args = SUPPRESS.to_vec();
    args.push("--no-row-decisions");
    let run = update(&emu, d, &path, &args);
    assert_all_updated(&emu, &run, snake, "SUPPRESSED");

    // Athena lower-case names.
    let path = d.join("athena.csv");
    let rows: Vec<String> = athena
        .iter()
        .map(|k| format!("{},{}", account_of(k, &emu), key_row(k)))
        .collect();
    write_csv(&path, "awsaccountid,id,productarn", &rows);
    let run = update(&emu, d, &path, &SUPPRESS);
    assert_all_updated(&emu, &run, athena, "SUPPRESSED");

    // Tab-separated, named .tsv.
    let path = d.join("keys.tsv");
    let rows: Vec<String> = tsv
        .iter()
        .map(|k| format!("{}\t{}", k.id, k.product_arn))
        .collect();
    write_csv(&path, "Id\tProductArn", &rows);
    let run = update(&emu, d, &path, &SUPPRESS);
    assert_all_updated(&emu, &run, tsv, "SUPPRESSED");

    // Semicolons, gzipped.
    let path = d.join("semi.csv");
    let rows: Vec<String> = gz
        .iter()
        .map(|k| format!("{};{}", csv_quote(&k.id), csv_quote(&k.product_arn)))
        .collect();
    write_csv(&path, "Id;ProductArn", &rows);
    let run = update(&emu, d, &gzip(&path), &SUPPRESS);
    assert_all_updated(&emu, &run, gz, "SUPPRESSED");
}

#[test]
fn csv_manager_layout_carries_its_own_decisions() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let keys = seed(&emu, 30, 2);
    let path = dir.path().join("csv-manager.csv");
    let header = "Id,ProductArn,Criticality,Confidence,NoteText,NoteUpdatedBy,CustomerOwner,CustomerIssue,\
                  CustomerTicket,ProductSeverity,NormalizedSeverity,SeverityLabel,VerificationState,Workflow,\
                  UpdateVersion,GeneratorId,AwsAccountId,ComplianceStatus,WorkflowState,RecordState";
    let rows: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            // Edited cells; the rest left empty as the sheet exports them.
            format!(
                "{},{},{},fixed in release {i},alice,alice,,TICKET-{i},,,,FALSE_POSITIVE,RESOLVED,\
                 2,aws-foundational/1.0/IAM.1,{},FAILED,NEW,ACTIVE",
                key_row(k),
                if i % 2 == 0 { "10" } else { "" },
                80,
                account_of(k, &emu)
            )
        })
        .collect();
    write_csv(&path, header, &rows);
    // No decision on the command line at all: the file carries it, and
    // --row-decisions says its columns are decisions.
    let run = update(&emu, dir.path(), &path, &["--row-decisions"]);
    assert_all_updated(&emu, &run, &keys, "RESOLVED");
    assert!(
        run.stderr.contains(
            "csv-manager.csv: per-row decision columns (--row-decisions): Criticality, Confidence, NoteText, \
             NoteUpdatedBy, CustomerOwner, CustomerIssue, CustomerTicket, NormalizedSeverity, SeverityLabel, \
             VerificationState, Workflow ("
        ),
        "the run names the columns it takes as decisions: {}",
        run.stderr
    );
    for (i, k) in keys.iter().enumerate() {
        let f = emu.state.finding(k).unwrap();
        assert_eq!(
            note_of(&emu, k),
            (format!("fixed in release {i}"), "alice".into())
        );
        assert_eq!(f["VerificationState"], "FALSE_POSITIVE");
        assert_eq!(f["Confidence"], 80);
        assert_eq!(f["UserDefinedFields"]["Owner"], "alice");
        assert_eq!(f["UserDefinedFields"]["Ticket"], format!("TICKET-{i}"));
        if i % 2 == 0 {
            assert_eq!(f["Criticality"], 10, "{k}");
        }
    }
}

#[test]
fn ocsf_csv_export_with_productv2_arns() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let keys = seed(&emu, 50, 3);
    let path = dir.path().join("export.csv");
    let rows: Vec<String> = keys
        .iter()
        .map(|k| {
            format!(
                "{},{},{},New,High,\"an OCSF message\"",
                csv_quote(&k.id),
                csv_quote(&v2(&k.product_arn)),
                account_of(k, &emu)
            )
        })
        .collect();
    write_csv(
        &path,
        "finding_info.uid,metadata.product.uid,cloud.account.uid,status,severity,message",
        &rows,
    );
    let run = update(&emu, dir.path(), &path, &SUPPRESS);
    assert_all_updated(&emu, &run, &keys, "SUPPRESSED");
    // The results name the finding as BatchUpdateFindings took it.
    for (k, row) in keys.iter().zip(&run.results) {
        assert_eq!((&row["Id"], &row["ProductArn"]), (&k.id, &k.product_arn));
    }
    assert!(
        !run.stderr.contains("per-row decision columns"),
        "OCSF status/severity are state, not decisions: {}",
        run.stderr
    );
}

fn strings(values: Vec<String>) -> ArrayRef {
    Arc::new(StringArray::from(values))
}

fn opt_strings(values: Vec<Option<String>>) -> ArrayRef {
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

#[test]
fn parquet_flat_with_row_decisions_and_security_lake_nested() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let keys = seed(&emu, 160, 4);
    let (flat, lake) = keys.split_at(80);

    // Flat columns, as Athena CTAS writes them; half the rows set their own
    // workflow status, the others take the command line's.
    let path = dir.path().join("flat.parquet");
    let batch = RecordBatch::try_from_iter([
        (
            "aws_account_id",
            strings(flat.iter().map(|k| account_of(k, &emu)).collect()),
        ),
        ("id", strings(flat.iter().map(|k| k.id.clone()).collect())),
        (
            "product_arn",
            strings(flat.iter().map(|k| k.product_arn.clone()).collect()),
        ),
        (
            "workflow_status",
            opt_strings(
                (0..flat.len())
                    .map(|i| (i % 2 == 0).then(|| "RESOLVED".to_owned()))
                    .collect(),
            ),
        ),
    ])
    .unwrap();
    write_parquet(&path, batch);
    let mut args = SUPPRESS.to_vec();
    args.push("--row-decisions");
    let run = update(&emu, dir.path(), &path, &args);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.results.len(), flat.len());
    for (i, k) in flat.iter().enumerate() {
        let want = if i % 2 == 0 { "RESOLVED" } else { "SUPPRESSED" };
        assert_eq!(status_of(&emu, k), want, "row {i}");
        assert_eq!(emu.state.update_count(k), 1);
    }
    assert!(
        run.stderr
            .contains("per-row decision columns (--row-decisions): workflow_status"),
        "{}",
        run.stderr
    );

    // Security Lake's nested OCSF 1.1 layout: productv2 ARNs, status as
    // caption and id. A quarter is already Suppressed: with
    // --skip-unchanged those are not sent.
    let path = dir.path().join("lake.parquet");
    let n = lake.len();
    let batch = RecordBatch::try_from_iter([
        (
            "finding_info",
            structure(vec![
                ("uid", strings(lake.iter().map(|k| k.id.clone()).collect())),
                ("title", strings(vec!["t".to_owned(); n])),
            ]),
        ),
        (
            "metadata",
            structure(vec![(
                "product",
                structure(vec![
                    (
                        "uid",
                        strings(lake.iter().map(|k| v2(&k.product_arn)).collect()),
                    ),
                    ("name", strings(vec!["GuardDuty".to_owned(); n])),
                ]),
            )]),
        ),
        (
            "cloud",
            structure(vec![
                (
                    "account",
                    structure(vec![(
                        "uid",
                        strings(lake.iter().map(|k| account_of(k, &emu)).collect()),
                    )]),
                ),
                ("region", strings(vec!["us-east-1".to_owned(); n])),
            ]),
        ),
        (
            "status",
            strings(
                (0..n)
                    .map(|i| if i % 4 == 0 { "Suppressed" } else { "New" }.to_owned())
                    .collect(),
            ),
        ),
        (
            "status_id",
            Arc::new(Int32Array::from(
                (0..n)
                    .map(|i| if i % 4 == 0 { 3 } else { 1 })
                    .collect::<Vec<i32>>(),
            )) as ArrayRef,
        ),
    ])
    .unwrap();
    write_parquet(&path, batch);
    let run = update(
        &emu,
        dir.path(),
        &path,
        &["--workflow", "Status=SUPPRESSED", "--skip-unchanged"],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.results.len(), n);
    for (i, k) in lake.iter().enumerate() {
        let row = &run.results[i];
        assert_eq!(row["Id"], k.id);
        if i % 4 == 0 {
            assert_eq!(row["outcome"], "unchanged", "row {i}");
            assert_eq!(emu.state.update_count(k), 0, "row {i} must not be sent");
        } else {
            assert_eq!(row["outcome"], "updated", "row {i}");
            assert_eq!(status_of(&emu, k), "SUPPRESSED");
        }
    }
}

/// ASFF documents as the emulator holds them (what get-findings returns).
fn asff_docs(emu: &Emu, keys: &[FindingKey]) -> Vec<Value> {
    keys.iter().map(|k| emu.state.finding(k).unwrap()).collect()
}

fn ocsf_doc(emu: &Emu, k: &FindingKey) -> Value {
    json!({
        "class_uid": 2004,
        "finding_info": {"uid": k.id, "title": "OCSF finding"},
        "metadata": {"product": {"uid": v2(&k.product_arn), "name": "GuardDuty"}, "version": "1.1.0"},
        "cloud": {"account": {"uid": account_of(k, emu)}, "region": "us-east-1"},
        "status": "New",
        "severity": "Medium",
        "severity_id": 3
    })
}

fn event(doc: &Value) -> Value {
    json!({
        "version": "0",
        "id": "c8f2e0e6-1f27-4d6a-9a3e-0a0a0a0a0a0a",
        "detail-type": "Security Hub Findings - Imported",
        "source": "aws.securityhub",
        "account": doc["AwsAccountId"],
        "region": "us-east-1",
        "time": "2026-11-20T01:02:03Z",
        "resources": [doc["Id"]],
        "detail": {"findings": [doc]}
    })
}

#[test]
fn json_flavours() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys = seed(&emu, 250, 5);
    let parts: Vec<&[FindingKey]> = keys.chunks(50).collect();

    // get-findings output, pretty-printed as the AWS CLI writes it.
    let path = d.join("get-findings.json");
    let doc = json!({"Findings": asff_docs(&emu, parts[0]), "NextToken": null});
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let run = update(&emu, d, &path, &SUPPRESS);
    assert_all_updated(&emu, &run, parts[0], "SUPPRESSED");

    // JSON Lines of ASFF, zstd-compressed.
    let path = d.join("asff.jsonl");
    let lines: Vec<String> = asff_docs(&emu, parts[1])
        .iter()
        .map(|v| v.to_string())
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let run = update(&emu, d, &zstd_file(&path), &SUPPRESS);
    assert_all_updated(&emu, &run, parts[1], "SUPPRESSED");

    // JSON Lines of OCSF (the V2 export job's OCSF_JSON), productv2 ARNs.
    let path = d.join("ocsf.jsonl");
    let lines: Vec<String> = parts[2]
        .iter()
        .map(|k| ocsf_doc(&emu, k).to_string())
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let run = update(&emu, d, &path, &SUPPRESS);
    assert_all_updated(&emu, &run, parts[2], "SUPPRESSED");

    // EventBridge events, one per line (an EventBridge → S3 archive).
    let path = d.join("events.json");
    let lines: Vec<String> = asff_docs(&emu, parts[3])
        .iter()
        .map(|f| event(f).to_string())
        .collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    let run = update(&emu, d, &path, &SUPPRESS);
    assert_all_updated(&emu, &run, parts[3], "SUPPRESSED");

    // Firehose: the same events concatenated with no delimiter, gzipped.
    let path = d.join("firehose-records");
    let concatenated: String = asff_docs(&emu, parts[4])
        .iter()
        .map(|f| event(f).to_string())
        .collect();
    std::fs::write(&path, concatenated).unwrap();
    let run = update(&emu, d, &gzip(&path), &SUPPRESS);
    assert_all_updated(&emu, &run, parts[4], "SUPPRESSED");
}

/// One file carries a whole team's triage: some rows SUPPRESSED with one
/// note, some RESOLVED with another, the rest taking the command line's
/// decision; each finding gets its own decision in the fewest requests.
#[test]
fn mixed_decisions_in_the_fewest_requests() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let keys = seed(&emu, 330, 6);
    // Rows interleave the three groups, so grouping (not file order) is what
    // keeps the request count down: 100 + 130 + 100 findings.
    let mut sizes = [0usize; 3];
    let rows: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let g = if i >= 300 { 1 } else { i % 3 };
            sizes[g] += 1;
            let (status, note) = match g {
                0 => ("SUPPRESSED", "accepted by risk board"),
                1 => ("RESOLVED", "fixed in 2026.11"),
                _ => ("", ""),
            };
            format!("{},{status},{note}", key_row(k))
        })
        .collect();
    let path = dir.path().join("triage.csv");
    write_csv(&path, "Id,ProductArn,Workflow.Status,Note.Text", &rows);
    emu.state.reset_counters();
    let run = update(
        &emu,
        dir.path(),
        &path,
        &[
            "--workflow",
            "Status=NOTIFIED",
            "--note",
            "Text=sent to owners,UpdatedBy=nightly-triage",
            "--row-decisions",
        ],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.results.len(), keys.len());
    let mut seen: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for k in &keys {
        assert_eq!(emu.state.update_count(k), 1);
        let (text, by) = note_of(&emu, k);
        *seen.entry((status_of(&emu, k), text, by)).or_default() += 1;
    }
    let expected: BTreeMap<(String, String, String), usize> = [
        (("SUPPRESSED", "accepted by risk board"), sizes[0]),
        (("RESOLVED", "fixed in 2026.11"), sizes[1]),
        (("NOTIFIED", "sent to owners"), sizes[2]),
    ]
    .into_iter()
    .map(|((s, t), n)| ((s.to_owned(), t.to_owned(), "nightly-triage".to_owned()), n))
    .collect();
    assert_eq!(
        seen, expected,
        "each finding carries its own row's decision"
    );
    let fewest: u64 = sizes.iter().map(|n| n.div_ceil(100) as u64).sum();
    let sent = emu
        .state
        .counters()
        .requests_for(Operation::BatchUpdateFindings);
    assert_eq!(
        sent, fewest,
        "groups of {sizes:?} need exactly {fewest} requests"
    );
}

#[test]
fn skip_unchanged_over_a_get_findings_export() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let keys = seed(&emu, 200, 7);
    let docs = asff_docs(&emu, &keys);
    let already: HashSet<&str> = docs
        .iter()
        .filter(|d| d["Workflow"]["Status"] == "SUPPRESSED")
        .map(|d| d["Id"].as_str().unwrap())
        .collect();
    assert!(
        !already.is_empty() && already.len() < keys.len(),
        "the synthetic data mixes states"
    );
    let path = dir.path().join("export.json");
    std::fs::write(&path, json!({ "Findings": docs }).to_string()).unwrap();
    emu.state.reset_counters();
    let run = update(
        &emu,
        dir.path(),
        &path,
        &["--workflow", "Status=SUPPRESSED", "--skip-unchanged"],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.results.len(), keys.len());
    for (k, row) in keys.iter().zip(&run.results) {
        assert_eq!(row["Id"], k.id);
        if already.contains(k.id.as_str()) {
            assert_eq!(row["outcome"], "unchanged");
            assert_eq!(emu.state.update_count(k), 0, "{k} was already suppressed");
        } else {
            assert_eq!(row["outcome"], "updated");
            assert_eq!(emu.state.update_count(k), 1);
        }
        assert_eq!(status_of(&emu, k), "SUPPRESSED");
    }
    let to_send = (keys.len() - already.len()) as u64;
    let c = emu.state.counters();
    assert_eq!(
        c.requests_for(Operation::BatchUpdateFindings),
        to_send.div_ceil(100)
    );
}

#[test]
fn bad_per_row_values_are_rejected_with_their_column_and_the_rest_goes_on() {
    let emu = Emu::start(EmulatorConfig::unthrottled());
    let dir = tempfile::tempdir().unwrap();
    let keys = seed(&emu, 6, 8);
    let cells = [
        ("SUPPRESSED", "", ""),    // fine
        ("CLOSED", "", ""),        // unknown status
        ("", "high", ""),          // not a number
        ("", "150", ""),           // out of range (the engine's validation)
        ("", "", "only the text"), // a note without UpdatedBy, no --note
        ("RESOLVED", "", ""),      // fine
    ];
    let rows: Vec<String> = keys
        .iter()
        .zip(cells)
        .map(|(k, (s, c, n))| format!("{},{s},{c},{n}", key_row(k)))
        .collect();
    let path = dir.path().join("edited.csv");
    write_csv(
        &path,
        "Id,ProductArn,Workflow.Status,Confidence,Note.Text",
        &rows,
    );
    let run = update(
        &emu,
        dir.path(),
        &path,
        &["--workflow", "Status=NOTIFIED", "--row-decisions"],
    );
    assert_eq!(
        run.status, 2,
        "rejected rows make the exit status 2: {}",
        run.stderr
    );
    let outcome: Vec<(&str, &str, &str)> = run
        .results
        .iter()
        .map(|r| {
            (
                r["outcome"].as_str(),
                r["error_code"].as_str(),
                r["error_message"].as_str(),
            )
        })
        .collect();
    assert_eq!(outcome.len(), 6);
    assert_eq!(outcome[0].0, "updated");
    assert_eq!(outcome[5].0, "updated");
    for (i, column, words) in [
        (1, "Workflow.Status", "CLOSED"),
        (2, "Confidence", "whole number"),
        (3, "Confidence", "150"),
        (4, "Note.UpdatedBy", "--note"),
    ] {
        let (kind, code, message) = outcome[i];
        assert_eq!(kind, "invalid", "row {}", i + 1);
        assert_eq!(code, column, "row {}: {message}", i + 1);
        assert!(message.contains(words), "row {}: {message}", i + 1);
        assert_eq!(emu.state.update_count(&keys[i]), 0);
    }
    assert_eq!(status_of(&emu, &keys[0]), "SUPPRESSED");
    assert_eq!(status_of(&emu, &keys[5]), "RESOLVED");
}
