//! The OCSF sample set: the same 1,000 findings as `samples/findings.json`
//! (seed [`SAMPLE_SEED`]) in the new Security Hub's OCSF form.
//!
//! - `samples/findings-ocsf.jsonl`: OCSF JSON Lines, one finding a line, as
//!   the V2 export job (`OCSF_JSON`) writes them.
//! - `samples/findings-ocsf.csv`: the identifier columns as a V2 CSV export
//!   with those `SelectedFields` would have them.

use std::io;
use std::path::Path;

use serde_json::Value;

use super::ocsf::{Record, from_asff};
use crate::emulator::synth::{Generator, SyntheticSpec};

/// The columns of `samples/findings-ocsf.csv`, in order.
pub(crate) const OCSF_SAMPLE_CSV_COLUMNS: [&str; 4] = [
    "cloud.account.uid",
    "finding_info.uid",
    "metadata.product.uid",
    "metadata.uid",
];

fn sample_docs() -> Vec<Value> {
    let g = Generator::new(&SyntheticSpec::samples());
    (0..g.count() as u64)
        .map(|n| from_asff(&serde_json::to_value(g.finding(n)).unwrap_or(Value::Null)))
        .collect()
}

/// `samples/findings-ocsf.jsonl`.
pub(crate) fn render_ocsf_sample_jsonl() -> String {
    let mut out = String::new();
    for d in sample_docs() {
        out.push_str(&d.to_string());
        out.push('\n');
    }
    out
}

/// `samples/findings-ocsf.csv`.
pub(crate) fn render_ocsf_sample_csv() -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(OCSF_SAMPLE_CSV_COLUMNS);
    for d in sample_docs() {
        let Some(Ok(r)) = d.as_object().map(Record::from_doc) else {
            continue;
        };
        let _ = w.write_record([
            r.triple.cloud_account_uid.as_str(),
            r.triple.finding_info_uid.as_str(),
            r.triple.metadata_product_uid.as_str(),
            r.metadata_uid.as_str(),
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// Writes `findings-ocsf.jsonl` and `findings-ocsf.csv` into `dir`.
pub(crate) fn write_ocsf_samples(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("findings-ocsf.jsonl"), render_ocsf_sample_jsonl())?;
    std::fs::write(dir.join("findings-ocsf.csv"), render_ocsf_sample_csv())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::synth::SAMPLE_COUNT;
    use std::collections::{BTreeSet, HashSet};

    #[test]
    fn synthetic_ocsf_findings_are_valid_and_distinct() {
        let g = Generator::new(&SyntheticSpec::new(400, 5));
        let mut uids = HashSet::new();
        let mut triples = HashSet::new();
        let mut classes = BTreeSet::new();
        let mut statuses = BTreeSet::new();
        for n in 0..400 {
            let asff = serde_json::to_value(g.finding(n)).unwrap();
            let d = from_asff(&asff);
            let r = Record::from_doc(d.as_object().unwrap())
                .unwrap_or_else(|e| panic!("finding {n}: {e}"));
            assert_eq!(r.triple.finding_info_uid, asff["Id"].as_str().unwrap());
            assert_eq!(
                r.triple.cloud_account_uid,
                asff["AwsAccountId"].as_str().unwrap()
            );
            assert_eq!(
                r.triple.metadata_product_uid,
                asff["ProductArn"]
                    .as_str()
                    .unwrap()
                    .replace(":product/", ":productv2/")
            );
            assert!(uids.insert(r.metadata_uid.clone()));
            assert!(triples.insert(r.triple.clone()));
            classes.insert(d["class_uid"].as_i64().unwrap());
            statuses.insert(r.status_id.unwrap());
        }
        assert_eq!(classes.len(), 3, "{classes:?}");
        assert!(statuses.len() >= 4, "{statuses:?}");
    }

    #[test]
    fn committed_ocsf_samples_match_the_generator() {
        // If this fails, regenerate with
        // `cargo test --lib emulator::v2::synth::tests::regenerate_ocsf_samples -- --ignored`
        // or `sechub-triage emulator --write-samples samples/`.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
        let jsonl = std::fs::read_to_string(dir.join("findings-ocsf.jsonl")).unwrap();
        let csv = std::fs::read_to_string(dir.join("findings-ocsf.csv")).unwrap();
        assert!(
            jsonl == render_ocsf_sample_jsonl(),
            "samples/findings-ocsf.jsonl drifted from the generator"
        );
        assert!(
            csv == render_ocsf_sample_csv(),
            "samples/findings-ocsf.csv drifted from the generator"
        );
        assert_eq!(jsonl.lines().count(), SAMPLE_COUNT);
        assert_eq!(csv.lines().count(), SAMPLE_COUNT + 1);
        let first: Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
        assert!(Record::from_doc(first.as_object().unwrap()).is_ok());
        assert!(jsonl.lines().any(|l| l.contains("\"comment\"")));
        assert!(jsonl.lines().any(|l| l.contains("\"compliance\"")));
        // The same findings as samples/findings.json, in the same order.
        let asff: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("findings.json")).unwrap())
                .unwrap();
        assert_eq!(
            first["finding_info"]["uid"], asff["Findings"][0]["Id"],
            "OCSF sample 0 is ASFF sample 0"
        );
    }

    #[test]
    #[ignore = "writes samples/; run on purpose to regenerate them"]
    fn regenerate_ocsf_samples() {
        write_ocsf_samples(&Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")).unwrap();
    }
}
