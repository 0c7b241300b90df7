//! `export` to every format (JSON Lines, CSV, Parquet; plain, gzip, zstd),
//! then `plan`, `update` and `revert` from the exported file, end to end
//! through the binary against the emulator paging by offset, for both
//! services: the state recorded in each format is the same (the results'
//! `prior` column), `--skip-unchanged` sees it, and `revert` puts it back.

use std::collections::BTreeMap;
use std::path::Path;

use crate::query_v2_e2e::{NEW_V2, comment, count, insert_ocsf, offset_emulator, status_id};
use crate::support::*;
use sechub_triage::model::FindingKey;
use serde_json::{Value, json};

const NEW_FILTER: &str = r#"{"WorkflowStatus":[{"Value":"NEW","Comparison":"EQUALS"}]}"#;
const NAMES: [&str; 6] = [
    "sel.jsonl",
    "sel.jsonl.zst",
    "sel.csv",
    "sel.csv.gz",
    "sel.csv.zst",
    "sel.parquet",
];

fn insert(emu: &Emu, id: &str, status: &str, note: Option<&str>) -> FindingKey {
    let mut f = asff_finding(id, status);
    f["Types"] = json!(["Software and Configuration Checks"]);
    if let Some(n) = note {
        f["Note"] = json!({"Text": n, "UpdatedBy": "seed", "UpdatedAt": "2026-01-02T00:00:00Z"});
    }
    emu.state.insert_finding(f).unwrap()
}

fn ok(out: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stderr}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

fn plan_totals(d: &Path, file: &Path, args: &[&str]) -> Value {
    let out = triage(d)
        .arg("plan")
        .arg(file)
        .args(args)
        .args(["--output", "json"])
        .output()
        .unwrap();
    ok(&out);
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    plan["totals"].clone()
}

/// `prior` of each row of a results CSV, by finding Id.
fn priors(path: &Path) -> BTreeMap<String, String> {
    read_results(path)
        .into_iter()
        .map(|r| (r["Id"].clone(), r["prior"].clone()))
        .collect()
}

/// `prior` of each row of a JSON Lines results file, by finding Id.
fn priors_jsonl(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let r: Value = serde_json::from_str(l).unwrap();
            (
                r["Id"].as_str().unwrap().to_owned(),
                r["prior"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn asff_export_in_every_format_round_trips_through_plan_update_revert() {
    let emu = offset_emulator();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut new = Vec::new();
    let mut others = Vec::new();
    for i in 0..240 {
        let id = format!("e{i:04}");
        match i % 3 {
            0 => others.push(insert(&emu, &id, "NOTIFIED", None)),
            1 => new.push(insert(&emu, &id, "NEW", Some("seeded, with \"quotes\""))),
            _ => new.push(insert(&emu, &id, "NEW", Some("seeded\nover two lines"))),
        }
    }
    let mut first_priors: Option<BTreeMap<String, String>> = None;
    for (round, name) in NAMES.iter().enumerate() {
        let file = d.join(name);
        let stderr = ok(&triage(d)
            .args(["export", "--filters", NEW_FILTER, "--out"])
            .arg(&file)
            .args(["--endpoint-url", &emu.url()])
            .output()
            .unwrap());
        assert!(
            stderr.contains("exported 160 finding(s)"),
            "{name}: {stderr}"
        );
        // The recorded state is read back: NEW is unchanged, SUPPRESSED is work.
        let t = plan_totals(d, &file, &["--workflow", "Status=NEW", "--skip-unchanged"]);
        assert_eq!(t["unchanged"], 160, "{name}: {t}");
        let t = plan_totals(d, &file, &["--workflow", "Status=SUPPRESSED"]);
        assert_eq!(t["to_update"], 160, "{name}: {t}");

        let run = d.join(format!("run-{round}.csv"));
        ok(&triage(d)
            .arg("update")
            .arg(&file)
            .args(["--workflow", "Status=SUPPRESSED"])
            .args(["--note", r#"{"Text":"export round trip","UpdatedBy":"q3"}"#])
            .args(["--endpoint-url", &emu.url(), "--no-progress", "--results"])
            .arg(&run)
            .output()
            .unwrap());
        for k in &new {
            assert_eq!(emu.workflow(k), "SUPPRESSED", "{name}");
        }
        // Every format records the same prior state of every finding.
        let p = priors(&run);
        assert_eq!(p.len(), 160, "{name}");
        match &first_priors {
            None => {
                let with_note = p.values().filter(|v| v.contains("quotes")).count();
                assert_eq!(with_note, 80, "{p:?}");
                first_priors = Some(p);
            }
            Some(first) => assert_eq!(first, &p, "{name}"),
        }
        let back = d.join(format!("revert-{round}.csv"));
        ok(&triage(d)
            .arg("revert")
            .arg(&run)
            .args(["--endpoint-url", &emu.url(), "--no-progress", "--results"])
            .arg(&back)
            .output()
            .unwrap());
        for (i, k) in new.iter().enumerate() {
            assert_eq!(emu.workflow(k), "NEW", "{name}: {}", k.id);
            assert_eq!(emu.state.update_count(k), 2 * (round as u64 + 1));
            let (text, _) = emu.note(k).unwrap();
            let want = if i % 2 == 0 {
                "seeded, with \"quotes\""
            } else {
                "seeded\nover two lines"
            };
            assert_eq!(text, want, "{name}: {}", k.id);
        }
    }
    for k in &others {
        assert_eq!(emu.state.update_count(k), 0);
    }
}

#[test]
fn ocsf_export_in_every_format_round_trips_through_plan_update_revert() {
    let emu = offset_emulator();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut new = Vec::new();
    let mut others = Vec::new();
    for i in 0..150 {
        let uid = format!("o{i:04}");
        if i % 3 == 0 {
            others.push(insert_ocsf(&emu, &uid, 4));
        } else {
            new.push(insert_ocsf(&emu, &uid, 1));
        }
    }
    let mut first_priors: Option<BTreeMap<String, String>> = None;
    for (round, name) in NAMES.iter().enumerate() {
        let file = d.join(name);
        let stderr = ok(&triage(d)
            .args(["export", "--ocsf-filters", NEW_V2, "--out"])
            .arg(&file)
            .args(["--endpoint-url", &emu.url()])
            .output()
            .unwrap());
        assert!(
            stderr.contains("exported 100 finding(s)"),
            "{name}: {stderr}"
        );
        let t = plan_totals(d, &file, &["--status-id", "1", "--skip-unchanged"]);
        assert_eq!(t["unchanged"], 100, "{name}: {t}");
        let t = plan_totals(d, &file, &["--comment", "seeded", "--skip-unchanged"]);
        assert_eq!(t["unchanged"], 100, "{name}: the comment is recorded: {t}");
        let t = plan_totals(d, &file, &["--status-id", "3"]);
        assert_eq!(t["to_update"], 100, "{name}: {t}");

        // JSON Lines results: a CSV results file does not carry
        // CloudAccountUid, which revert needs for V2 (README, "Not yet").
        let run = d.join(format!("run-{round}.jsonl"));
        ok(&triage(d)
            .arg("update")
            .arg(&file)
            .args(["--status-id", "3", "--comment", "export round trip"])
            .args(["--endpoint-url", &emu.url(), "--no-progress", "--results"])
            .arg(&run)
            .output()
            .unwrap());
        for k in &new {
            assert_eq!(status_id(&emu, k), Some(3), "{name}");
            assert_eq!(comment(&emu, k).as_deref(), Some("export round trip"));
        }
        let p = priors_jsonl(&run);
        assert_eq!(p.len(), 100, "{name}");
        match &first_priors {
            None => {
                assert!(
                    p.values()
                        .all(|v| v.contains("\"StatusId\":1") && v.contains("seeded")),
                    "{p:?}"
                );
                first_priors = Some(p);
            }
            Some(first) => assert_eq!(first, &p, "{name}"),
        }
        ok(&triage(d)
            .arg("revert")
            .arg(&run)
            .args(["--endpoint-url", &emu.url(), "--no-progress", "--results"])
            .arg(d.join(format!("revert-{round}.csv")))
            .output()
            .unwrap());
        for k in &new {
            assert_eq!(status_id(&emu, k), Some(1), "{name}");
            assert_eq!(comment(&emu, k).as_deref(), Some("seeded"), "{name}");
            assert_eq!(count(&emu, k), 2 * (round as u64 + 1));
        }
    }
    for k in &others {
        assert_eq!(count(&emu, k), 0);
    }
}

#[test]
fn export_names_choose_the_format_and_refuse_what_they_cannot_be() {
    let emu = offset_emulator();
    let dir = tempfile::tempdir().unwrap();
    insert(&emu, "n1", "NEW", None);
    for (name, want) in [
        ("sel.parquet.gz", "Parquet compresses its own pages"),
        ("sel.xlsx", "the name chooses the format"),
    ] {
        let out = triage(dir.path())
            .args(["export", "--filters", NEW_FILTER, "--out", name])
            .args(["--endpoint-url", &emu.url()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(want), "{name}: {stderr}");
    }
    assert_eq!(emu.requests(), 0);
    // OCSF JSON Lines on standard output.
    insert_ocsf(&emu, "s1", 1);
    let out = triage(dir.path())
        .args(["export", "--ocsf-filters", NEW_V2, "--out", "-"])
        .args(["--endpoint-url", &emu.url()])
        .output()
        .unwrap();
    ok(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    let docs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 1, "{text}");
    assert_eq!(docs[0]["finding_info"]["uid"], "s1");
    assert_eq!(docs[0]["status_id"], 1);
    assert_eq!(docs[0]["comment"], "seeded");
}
