//! JSON reader tests: every JSON flavour findings are exported in, and bad input.

use std::path::PathBuf;

use sechub_triage::model::{FindingKey, InvalidRecord, SourceItem};
use sechub_triage::source::{self, Format, InputSpec, SourceError, SourceErrorKind, SourceOptions};

const GD: &str = "arn:aws:securityhub:us-east-1::product/aws/guardduty";
const SH: &str = "arn:aws:securityhub:eu-west-1::product/aws/securityhub";

fn read(name: &str, data: &[u8], opts: &SourceOptions) -> Vec<Result<SourceItem, SourceError>> {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join(name);
    std::fs::write(&path, data).unwrap();
    source::open(&[InputSpec::Path(path)], opts)
        .unwrap()
        .collect()
}

fn ok(name: &str, data: &str) -> Vec<SourceItem> {
    read(name, data.as_bytes(), &SourceOptions::default())
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

fn key(item: &SourceItem) -> FindingKey {
    match item {
        SourceItem::Record(r) => r.key.clone(),
        SourceItem::Invalid(i) => panic!("expected a record, got {i:?}"),
    }
}

fn line(item: &SourceItem) -> String {
    match item {
        SourceItem::Record(r) => r.location.detail.clone().unwrap(),
        SourceItem::Invalid(i) => i.location.detail.clone().unwrap(),
    }
}

fn invalid(item: &SourceItem) -> &InvalidRecord {
    match item {
        SourceItem::Invalid(i) => i,
        SourceItem::Record(r) => panic!("expected invalid, got {r:?}"),
    }
}

fn asff(id: &str, arn: &str) -> String {
    // Enough of a real finding that the reader has to skip nested content,
    // including strings holding brackets and escaped quotes.
    format!(
        r#"{{
            "SchemaVersion": "2018-10-08",
            "Id": "{id}",
            "ProductArn": "{arn}",
            "GeneratorId": "gen",
            "AwsAccountId": "111111111111",
            "Types": ["Software and Configuration Checks/AWS Security Best Practices"],
            "Title": "brackets ] }} [ {{ and \"quotes\" \\ in text",
            "Resources": [{{"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::b", "Details": {{"Other": {{"Findings": "x"}}}}}}],
            "Severity": {{"Label": "HIGH", "Normalized": 70}},
            "Workflow": {{"Status": "NEW"}},
            "Region": "us-east-1"
        }}"#
    )
}

#[test]
fn get_findings_output_is_streamed_with_line_numbers() {
    let data = format!(
        "{{\n    \"Findings\": [\n{},\n{},\n{}\n    ],\n    \"NextToken\": \"abc\"\n}}\n",
        asff("f-1", GD),
        asff("f-2", SH),
        asff("f-3", GD)
    );
    let items = ok("findings.json", &data);
    assert_eq!(
        items.iter().map(key).collect::<Vec<_>>(),
        vec![
            FindingKey::new("f-1", GD),
            FindingKey::new("f-2", SH),
            FindingKey::new("f-3", GD)
        ]
    );
    assert_eq!(line(&items[0]), "line 3");
    // Each asff() spans 13 lines (3-15); the next starts after ",\n".
    assert_eq!(line(&items[1]), "line 16");
    let SourceItem::Record(r) = &items[2] else {
        panic!()
    };
    assert_eq!(r.location.row, 3);
}

#[test]
fn get_findings_wrapper_with_members_before_findings() {
    let data = format!(
        "{{\"NextToken\": null, \"Findings\": [{}]}}",
        asff("w-1", GD)
    );
    assert_eq!(
        ok("w.json", &data).iter().map(key).collect::<Vec<_>>(),
        vec![FindingKey::new("w-1", GD)]
    );
    // Some tools write the member in lower case.
    let data = format!("{{\"findings\": [{}]}}", asff("l-1", GD));
    assert_eq!(
        ok("l.json", &data).iter().map(key).collect::<Vec<_>>(),
        vec![FindingKey::new("l-1", GD)]
    );
    // An empty result is no records, not an error.
    assert!(ok("empty.json", "{\"Findings\": []}").is_empty());
}

#[test]
fn json_lines_of_asff_and_ocsf() {
    let data = format!(
        "{}\n{}\n{}\n",
        r#"{"Id":"a-1","ProductArn":"arn:aws:securityhub:eu-west-1::product/aws/securityhub"}"#,
        r#"{"finding_info":{"uid":"o-1","title":"t"},"metadata":{"product":{"uid":"arn:aws:securityhub:us-east-1::productv2/aws/guardduty"}},"cloud":{"account":{"uid":"111111111111"},"region":"us-east-1"}}"#,
        r#"{"finding":{"uid":"old-1"},"metadata":{"product":{"uid":"arn:aws:securityhub:us-east-1::product/aws/guardduty"}}}"#
    );
    let items = ok("findings.jsonl", &data);
    assert_eq!(
        items.iter().map(key).collect::<Vec<_>>(),
        vec![
            FindingKey::new("a-1", SH),
            FindingKey::new("o-1", GD),
            FindingKey::new("old-1", GD)
        ]
    );
    assert_eq!(line(&items[2]), "line 3");
}

fn event(id: &str, arns: &[&str]) -> String {
    let findings: Vec<String> = arns.iter().map(|a| asff(id, a)).collect();
    format!(
        r#"{{"version":"0","id":"8e5622f9-d81c-4d81-612a-9319e7ee2506","detail-type":"Security Hub Findings - Imported","source":"aws.securityhub","account":"111111111111","time":"2024-01-01T00:00:00Z","region":"us-east-1","resources":["{}/{id}"],"detail":{{"findings":[{}]}}}}"#,
        arns[0],
        findings.join(",")
    )
}

#[test]
fn eventbridge_events_concatenated_by_firehose() {
    // Firehose writes records back to back with no delimiter.
    let data = format!(
        "{}{}{}",
        event("e-1", &[GD]),
        event("e-2", &[SH]),
        event("e-3", &[GD, SH])
    );
    let items = ok("firehose-1-2024-01-01-00-00-00-abcd", &data);
    assert_eq!(
        items.iter().map(key).collect::<Vec<_>>(),
        vec![
            FindingKey::new("e-1", GD),
            FindingKey::new("e-2", SH),
            FindingKey::new("e-3", GD),
            FindingKey::new("e-3", SH),
        ]
    );
    // The event's own lower-case "id" is not taken for the finding Id.
    let rows: Vec<u64> = items
        .iter()
        .map(|i| match i {
            SourceItem::Record(r) => r.location.row,
            _ => 0,
        })
        .collect();
    assert_eq!(rows, vec![1, 2, 3, 4]);

    // An event with no findings is reported, not skipped.
    let empty = r#"{"detail-type":"Security Hub Findings - Imported","detail":{"findings":[]}}"#;
    let items = ok("e.json", empty);
    assert_eq!(
        invalid(&items[0]).column.as_deref(),
        Some("detail.findings")
    );
}

#[test]
fn bare_array_and_athena_lower_case() {
    let data = format!(
        "[{}, {}]",
        asff("b-1", GD),
        r#"{"id":"l-1","productarn":"arn:aws:securityhub:us-east-1::product/aws/guardduty"}"#
    );
    let items = ok("arr.json", &data);
    assert_eq!(
        items.iter().map(key).collect::<Vec<_>>(),
        vec![FindingKey::new("b-1", GD), FindingKey::new("l-1", GD)]
    );
}

#[test]
fn escapes_in_identifiers_are_decoded() {
    let data = r#"{"Id":"caf\u00e9 \"q\" \/","ProductArn":"arn:aws:securityhub:us-east-1::product/aws/guardduty"}"#;
    assert_eq!(
        key(&ok("e.jsonl", data)[0]),
        FindingKey::new("café \"q\" /", GD)
    );
}

#[test]
fn bad_elements_are_invalid_and_reading_goes_on() {
    let data = format!(
        "{}\n{}\n{}\n{}\n{}\n{}\n",
        r#"{"Id": 42, "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty"}"#,
        r#"{"Id": "x", "ProductArn": null}"#,
        r#"{"Title": "no identifiers"}"#,
        r#"{"Id" "missing colon"}"#,
        r#"{"Id": "bad", "ProductArn": tru}"#,
        r#"{"Id": "good", "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty"}"#
    );
    let items = ok("bad.jsonl", &data);
    assert_eq!(items.len(), 6);
    assert_eq!(
        invalid(&items[0]).reason,
        "finding Id is a number, not text"
    );
    assert_eq!(invalid(&items[0]).column.as_deref(), Some("Id"));
    assert_eq!(invalid(&items[1]).reason, "no product ARN in this record");
    assert!(
        invalid(&items[2])
            .reason
            .starts_with("no finding identifiers")
    );
    assert!(
        invalid(&items[3]).reason.starts_with("malformed JSON"),
        "{}",
        invalid(&items[3]).reason
    );
    assert_eq!(line(&items[3]), "line 4");
    assert!(
        invalid(&items[4]).reason.starts_with("malformed JSON"),
        "{}",
        invalid(&items[4]).reason
    );
    assert_eq!(key(&items[5]), FindingKey::new("good", GD));
    assert_eq!(line(&items[5]), "line 6");
}

#[test]
fn truncated_document_yields_records_then_a_fatal_error() {
    let data = format!("{{\"Findings\": [{}, {{\"Id\": \"cut", asff("t-1", GD));
    let results = read("cut.json", data.as_bytes(), &SourceOptions::default());
    assert_eq!(results.len(), 2);
    assert_eq!(
        key(results[0].as_ref().unwrap()),
        FindingKey::new("t-1", GD)
    );
    let err = results[1].as_ref().unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    assert!(err.to_string().contains("cut.json"), "{err}");

    // Cut between elements: still truncated, not silently complete.
    let data = format!("{{\"Findings\": [{},", asff("t-1", GD));
    let results = read("cut2.json", data.as_bytes(), &SourceOptions::default());
    assert!(results.last().unwrap().is_err());
}

#[test]
fn not_json_is_fatal() {
    let opts = SourceOptions {
        format: Some(Format::Json),
        ..Default::default()
    };
    let results = read("x.txt", b"Id,ProductArn\n", &opts);
    let err = results[0].as_ref().unwrap_err();
    assert!(
        matches!(
            err.kind(),
            SourceErrorKind::Malformed { format: "JSON", .. }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("line 1"), "{err}");
}

#[test]
fn user_paths_for_json() {
    let data = r#"{"finding":{"arn":"u-1"},"product":{"Arn":"arn:aws:securityhub:us-east-1::product/aws/guardduty"}}"#;
    let opts = SourceOptions {
        id_column: Some("finding.arn".into()),
        product_arn_column: Some("product.arn".into()),
        ..Default::default()
    };
    let items: Vec<SourceItem> = read("u.jsonl", data.as_bytes(), &opts)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(key(&items[0]), FindingKey::new("u-1", GD));

    // Only --id-column: the product ARN is found the usual way.
    let data =
        r#"{"Custom":"c-1","ProductArn":"arn:aws:securityhub:us-east-1::product/aws/guardduty"}"#;
    let opts = SourceOptions {
        id_column: Some("Custom".into()),
        ..Default::default()
    };
    let items: Vec<SourceItem> = read("c.jsonl", data.as_bytes(), &opts)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(key(&items[0]), FindingKey::new("c-1", GD));
}

#[test]
fn large_get_findings_document() {
    let n = 20_000;
    let mut data = String::from("{\"Findings\":[");
    for i in 0..n {
        if i > 0 {
            data.push(',');
        }
        data.push_str(&asff(&format!("big-{i}"), GD));
    }
    data.push_str("]}");
    let items = ok("big.json", &data);
    assert_eq!(items.len(), n);
    assert_eq!(
        key(&items[n - 1]),
        FindingKey::new(format!("big-{}", n - 1), GD)
    );
}

#[test]
fn a_truncated_json_line_does_not_swallow_the_next() {
    // Lines 2 and 4 were cut short (a partial write, a bad concatenation);
    // each is reported and every whole line around them is still read.
    let gd = r#""arn:aws:securityhub:us-east-1::product/aws/guardduty""#;
    let data = format!(
        "{{\"Id\":\"a\",\"ProductArn\":{gd}}}\n\
         {{\"Id\":\"b\",\"Pro\n\
         {{\"Id\":\"c\",\"ProductArn\":{gd}}}\n\
         {{\"Id\":\"d\",\"ProductArn\":{gd}\n\
         {{\"Id\":\"e\",\"ProductArn\":{gd}}}\n"
    );
    let items = ok("cut-lines.jsonl", &data);
    assert_eq!(items.len(), 5, "{items:?}");
    assert_eq!(key(&items[0]).id, "a");
    assert_eq!(line(&items[1]), "line 2");
    assert!(
        invalid(&items[1]).reason.contains("found a line break"),
        "{}",
        invalid(&items[1]).reason
    );
    assert_eq!(key(&items[2]).id, "c");
    assert_eq!(line(&items[2]), "line 3");
    assert_eq!(line(&items[3]), "line 4");
    assert!(
        invalid(&items[3]).reason.contains("found '{'"),
        "{}",
        invalid(&items[3]).reason
    );
    assert_eq!(key(&items[4]).id, "e");
    assert_eq!(line(&items[4]), "line 5");
}
