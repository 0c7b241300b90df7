//! Seeding the OCSF store from files: `GetFindingsV2` output
//! (`{"Findings": [...]}`, several such documents in a row too), a JSON array
//! of findings, or OCSF JSON Lines (the V2 export job's `OCSF_JSON`).

use std::path::Path;

use crate::emulator::cli::{SeedFileError, for_each_seed_document};
use crate::emulator::state::EmulatorState;

/// Loads every OCSF finding of `path` into `state` and returns how many were
/// read. Stops at the first problem, naming the file, line and finding.
pub(crate) fn load_ocsf_seed_file(
    state: &EmulatorState,
    path: &Path,
) -> Result<usize, SeedFileError> {
    for_each_seed_document(path, |doc| state.insert_ocsf_finding(doc).map(drop))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::EmulatorConfig;
    use serde_json::json;

    fn doc(uid: &str) -> serde_json::Value {
        json!({
            "metadata": {"uid": uid, "product": {"uid": "arn:aws:securityhub:us-east-1::productv2/aws/guardduty"}},
            "finding_info": {"uid": format!("f-{uid}")},
            "cloud": {"account": {"uid": "111122223333"}, "region": "us-east-1"},
            "status_id": 1, "severity_id": 2,
        })
    }

    #[test]
    fn every_shape_loads_and_errors_name_file_line_and_finding() {
        let dir = tempfile::tempdir().unwrap();
        let state = EmulatorState::new(EmulatorConfig::default());
        let p = dir.path().join("a.json");
        std::fs::write(&p, json!({"Findings": [doc("a"), doc("b")]}).to_string()).unwrap();
        assert_eq!(load_ocsf_seed_file(&state, &p).unwrap(), 2);
        let p = dir.path().join("b.jsonl");
        std::fs::write(&p, format!("{}\n{}\n", doc("c"), doc("d"))).unwrap();
        assert_eq!(load_ocsf_seed_file(&state, &p).unwrap(), 2);
        let p = dir.path().join("c.json");
        std::fs::write(&p, json!([doc("e")]).to_string()).unwrap();
        assert_eq!(load_ocsf_seed_file(&state, &p).unwrap(), 1);
        assert_eq!(state.v2_len(), 5);
        let mut bad = doc("g");
        bad["severity_id"] = json!(9);
        let p = dir.path().join("bad.jsonl");
        std::fs::write(&p, format!("{}\n{}\n", doc("f"), bad)).unwrap();
        let e = load_ocsf_seed_file(&state, &p).unwrap_err().to_string();
        assert!(
            e.ends_with("bad.jsonl: finding 2 (line 2): severity_id: 9 is not one of 0, 1, 2, 3, 4, 5, 6, 99"),
            "{e}"
        );
        let p = dir.path().join("num.json");
        std::fs::write(&p, "\n7").unwrap();
        let e = load_ocsf_seed_file(&state, &p).unwrap_err().to_string();
        assert!(e.contains("num.json:2"), "{e}");
    }
}
