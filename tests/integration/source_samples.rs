//! The sample exports in `samples/formats/` (one per layout users have) all
//! read to the same three findings, so the samples stay usable for demos
//! and end-to-end tests.

use std::path::Path;

use sechub_triage::model::{FindingKey, SourceItem};
use sechub_triage::source::{self, InputSpec, SourceOptions};

#[test]
fn every_sample_layout_names_the_same_findings() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/formats");
    let sh = "arn:aws:securityhub:us-east-1::product/aws/securityhub";
    let gd = "arn:aws:securityhub:us-east-1::product/aws/guardduty";
    let expected = vec![
        FindingKey::new(
            "arn:aws:securityhub:us-east-1:111111111111:security-control/IAM.1/finding/5f1b7a2c-0d3e-4c6a-9b8e-000000000001",
            sh,
        ),
        FindingKey::new(
            "arn:aws:securityhub:us-east-1:111111111111:security-control/IAM.2/finding/5f1b7a2c-0d3e-4c6a-9b8e-000000000002",
            sh,
        ),
        FindingKey::new(
            "arn:aws:guardduty:us-east-1:111111111111:detector/12abc34d567e8fa901bc2d34e56789f0/finding/a1b2c3d4e5f60718293a4b5c6d7e8f90",
            gd,
        ),
    ];
    let samples = [
        "csv-manager.csv",
        "steampipe.csv",
        "securityhub-v2-export.csv",
        "get-findings.json",
        "ocsf-export.jsonl",
        "firehose-eventbridge-object",
    ];
    for sample in samples {
        let keys: Vec<FindingKey> = source::open(
            &[InputSpec::Path(dir.join(sample))],
            &SourceOptions::default(),
        )
        .unwrap()
        .map(|item| match item.unwrap() {
            SourceItem::Record(r) => r.key,
            SourceItem::Invalid(i) => panic!("{sample}: {i:?}"),
        })
        .collect();
        assert_eq!(keys, expected, "{sample}");
    }
}
