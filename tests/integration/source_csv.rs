//! CSV reader tests: the export layouts users have, and bad files.

use std::io::Write;
use std::path::PathBuf;

use sechub_triage::model::{FindingKey, InvalidRecord, SourceItem, SourceRecord};
use sechub_triage::source::{self, InputSpec, SourceError, SourceErrorKind, SourceOptions};

const GD: &str = "arn:aws:securityhub:us-east-1::product/aws/guardduty";
const SH: &str = "arn:aws:securityhub:eu-west-1::product/aws/securityhub";

fn write(dir: &tempfile::TempDir, name: &str, data: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(data)
        .unwrap();
    path
}

fn read_all(
    paths: &[PathBuf],
    opts: &SourceOptions,
) -> Result<Vec<Result<SourceItem, SourceError>>, SourceError> {
    let inputs: Vec<InputSpec> = paths.iter().map(|p| InputSpec::Path(p.clone())).collect();
    Ok(source::open(&inputs, opts)?.collect())
}

/// Reads one file that must not hit a fatal error.
fn items(name: &str, data: &[u8], opts: &SourceOptions) -> Vec<SourceItem> {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, name, data);
    read_all(&[path], opts)
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

fn record(item: &SourceItem) -> &SourceRecord {
    match item {
        SourceItem::Record(r) => r,
        SourceItem::Invalid(i) => panic!("expected a record, got {i:?}"),
    }
}

fn invalid(item: &SourceItem) -> &InvalidRecord {
    match item {
        SourceItem::Invalid(i) => i,
        SourceItem::Record(r) => panic!("expected invalid, got {r:?}"),
    }
}

fn keys(items: &[SourceItem]) -> Vec<FindingKey> {
    items.iter().map(|i| record(i).key.clone()).collect()
}

#[test]
fn asff_column_names() {
    let data = format!("Id,ProductArn,Title\nf-1,{GD},One\nf-2,{SH},Two\n");
    let items = items("asff.csv", data.as_bytes(), &SourceOptions::default());
    assert_eq!(
        keys(&items),
        vec![FindingKey::new("f-1", GD), FindingKey::new("f-2", SH)]
    );
    let loc = &record(&items[1]).location;
    assert_eq!(loc.row, 2);
    assert_eq!(loc.detail.as_deref(), Some("line 3"));
    assert!(loc.file.ends_with("asff.csv"));
}

#[test]
fn steampipe_and_cloudquery_snake_case() {
    let data = format!(
        "aws_account_id,region,id,product_arn,title\n111111111111,us-east-1,arn:aws:guardduty:us-east-1:111111111111:detector/d/finding/f,{GD},x\n"
    );
    let items = items("steampipe.csv", data.as_bytes(), &SourceOptions::default());
    assert_eq!(
        keys(&items),
        vec![FindingKey::new(
            "arn:aws:guardduty:us-east-1:111111111111:detector/d/finding/f",
            GD
        )]
    );
}

#[test]
fn athena_lower_case() {
    let data =
        format!("\"id\",\"productarn\",\"awsaccountid\"\n\"a-1\",\"{GD}\",\"111111111111\"\n");
    let items = items("athena.csv", data.as_bytes(), &SourceOptions::default());
    assert_eq!(keys(&items), vec![FindingKey::new("a-1", GD)]);
}

#[test]
fn csv_manager_layout_with_multiline_fields() {
    // docs/service-facts.md §9: the header starts with Id, then many columns; free-text
    // columns carry quoted line breaks and doubled quotes.
    let header = "Id,ProductArn,Criticality,Confidence,NoteText,NoteUpdatedBy,CustomerOwner,CustomerIssue,\
        CustomerTicket,ProductSeverity,NormalizedSeverity,SeverityLabel,VerificationState,Workflow,UpdateVersion,\
        GeneratorId,AwsAccountId,Types,FirstObservedAt,LastObservedAt,CreatedAt,UpdatedAt,Title,Description,\
        StandardsArn,ComplianceStatus,WorkflowState,RecordState";
    let id1 = "arn:aws:securityhub:us-east-1:111111111111:security-control/IAM.1/finding/0b1c";
    let id2 = "arn:aws:securityhub:us-east-1:111111111111:security-control/S3.8/finding/9f9e";
    let row = |id: &str, desc: &str| {
        format!(
            "{id},{SH},,,,,,,,,,,,,1,security-control/IAM.1,111111111111,Software and Configuration Checks,\
             2024-01-01T00:00:00Z,,,,Title,\"{desc}\",,FAILED,NEW,ACTIVE"
        )
    };
    let data = format!(
        "{header}\n{}\n{}\n",
        row(id1, "first line\nsecond \"\"quoted\"\" line\nthird"),
        row(id2, "one line")
    );
    let items = items(
        "csv-manager.csv",
        data.as_bytes(),
        &SourceOptions::default(),
    );
    assert_eq!(
        keys(&items),
        vec![FindingKey::new(id1, SH), FindingKey::new(id2, SH)]
    );
    // The second record starts on line 5 because the first spans lines 2-4.
    assert_eq!(record(&items[1]).location.detail.as_deref(), Some("line 5"));
    assert_eq!(record(&items[1]).location.row, 2);
}

#[test]
fn new_security_hub_ocsf_export_converts_productv2() {
    let data = "finding_info.uid,metadata.product.uid,cloud.account.uid,status\n\
        gd-1,arn:aws:securityhub:us-west-2::productv2/aws/guardduty,111111111111,New\n";
    let items = items("export.csv", data.as_bytes(), &SourceOptions::default());
    assert_eq!(
        keys(&items),
        vec![FindingKey::new(
            "gd-1",
            "arn:aws:securityhub:us-west-2::product/aws/guardduty"
        )]
    );
}

#[test]
fn bom_crlf_and_blank_lines() {
    let data = format!("\u{feff}Id,ProductArn\r\nb-1,{GD}\r\n\r\nb-2,{GD}\r\n");
    let items = items("bom.csv", data.as_bytes(), &SourceOptions::default());
    assert_eq!(
        keys(&items),
        vec![FindingKey::new("b-1", GD), FindingKey::new("b-2", GD)]
    );
    assert_eq!(record(&items[1]).location.detail.as_deref(), Some("line 4"));
}

#[test]
fn delimiters_given_sniffed_and_by_extension() {
    let semi = format!("Id;ProductArn;Title\nd-1;{GD};a,b\n");
    let given = SourceOptions {
        delimiter: Some(b';'),
        ..Default::default()
    };
    assert_eq!(
        keys(&items("semi.csv", semi.as_bytes(), &given)),
        vec![FindingKey::new("d-1", GD)]
    );
    // Without --delimiter the header line decides.
    assert_eq!(
        keys(&items(
            "semi.csv",
            semi.as_bytes(),
            &SourceOptions::default()
        )),
        vec![FindingKey::new("d-1", GD)]
    );
    let tsv = format!("Id\tProductArn\nt-1\t{GD}\n");
    assert_eq!(
        keys(&items("x.tsv", tsv.as_bytes(), &SourceOptions::default())),
        vec![FindingKey::new("t-1", GD)]
    );
}

#[test]
fn id_and_arn_column_flags() {
    let data = format!("FindingArn,Arn,Id\nx-1,{GD},not-this\n");
    let opts = SourceOptions {
        id_column: Some("findingarn".into()),
        product_arn_column: Some("Arn".into()),
        ..Default::default()
    };
    assert_eq!(
        keys(&items("flags.csv", data.as_bytes(), &opts)),
        vec![FindingKey::new("x-1", GD)]
    );
}

#[test]
fn bad_records_are_invalid_and_reading_goes_on() {
    let long_id = "i".repeat(600);
    let mut data = format!(
        "Id,ProductArn,Extra\n\
         ,{GD},empty id\n\
         \"   \",{GD},blank id\n\
         {long_id},{GD},long id\n\
         ok-1,,empty arn\n\
         ok-2,arn:aws:guardduty:us-east-1:1:detector/x,not securityhub\n\
         ok-3,short,too short\n\
         short-row\n"
    )
    .into_bytes();
    data.extend_from_slice(b"bad-\xff-utf8,");
    data.extend_from_slice(GD.as_bytes());
    data.extend_from_slice(b",x\nlast,");
    data.extend_from_slice(GD.as_bytes());
    data.push(b'\n');

    let items = items("bad.csv", &data, &SourceOptions::default());
    assert_eq!(items.len(), 9);
    let reasons: Vec<(Option<&str>, &str)> = items[..8]
        .iter()
        .map(|i| {
            let i = invalid(i);
            (i.column.as_deref(), i.reason.as_str())
        })
        .collect();
    assert_eq!(reasons[0], (Some("Id"), "empty finding Id"));
    assert_eq!(
        reasons[1],
        (Some("Id"), "finding Id has no non-whitespace character")
    );
    assert_eq!(
        reasons[2],
        (
            Some("Id"),
            "finding Id is 600 characters long (at most 512 allowed)"
        )
    );
    assert_eq!(reasons[3], (Some("ProductArn"), "empty product ARN"));
    assert_eq!(
        reasons[4],
        (
            Some("ProductArn"),
            "not a Security Hub ARN (service is \"guardduty\", expected \"securityhub\")"
        )
    );
    assert_eq!(
        reasons[5].1,
        "product ARN is 5 characters long (12-2048 allowed)"
    );
    assert_eq!(
        reasons[6],
        (Some("ProductArn"), "no product ARN in this record")
    );
    assert_eq!(reasons[7].0, Some("Id"));
    assert!(reasons[7].1.contains("not valid UTF-8"), "{}", reasons[7].1);
    // Invalid records keep what could be read, to name them in the results.
    assert_eq!(invalid(&items[3]).key, Some(FindingKey::new("ok-1", "")));
    assert_eq!(invalid(&items[7]).location.row, 8);
    assert_eq!(
        invalid(&items[7]).location.detail.as_deref(),
        Some("line 9")
    );
    assert_eq!(record(&items[8]).key, FindingKey::new("last", GD));
}

#[test]
fn region_flag_accepts_non_security_hub_arns() {
    let data = "Id,ProductArn\nr-1,arn:aws:guardduty:us-east-1:1:detector/x\n";
    let opts = SourceOptions {
        region: Some("us-east-1".into()),
        ..Default::default()
    };
    assert_eq!(
        keys(&items("region.csv", data.as_bytes(), &opts)),
        vec![FindingKey::new(
            "r-1",
            "arn:aws:guardduty:us-east-1:1:detector/x"
        )]
    );
}

#[test]
fn missing_columns_are_fatal_and_say_how_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "nocol.csv",
        format!("finding,arn\nx,{GD}\n").as_bytes(),
    );
    let err = read_all(&[path], &SourceOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err.kind(), SourceErrorKind::MissingColumn { .. }),
        "{msg}"
    );
    assert!(msg.contains("nocol.csv"), "{msg}");
    assert!(msg.contains("columns found: finding, arn"), "{msg}");
    assert!(msg.contains("--id-column"), "{msg}");

    // Id present, ProductArn missing: names the other flag.
    let path = write(&dir, "noarn.csv", b"Id,Title\nx,y\n");
    let msg = read_all(&[path], &SourceOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("no product ARN column") && msg.contains("--product-arn-column"),
        "{msg}"
    );

    // A wrong --id-column is reported as such.
    let opts = SourceOptions {
        id_column: Some("nope".into()),
        ..Default::default()
    };
    let msg = read_all(
        &[path_with(
            &dir,
            "ok.csv",
            &format!("Id,ProductArn\nx,{GD}\n"),
        )],
        &opts,
    )
    .unwrap_err()
    .to_string();
    assert!(msg.contains("(\"nope\") does not exist"), "{msg}");

    // A header-less file gets a hint.
    let msg = read_all(
        &[path_with(&dir, "nohdr.csv", &format!("x,{GD}\n"))],
        &SourceOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(msg.contains("looks like data"), "{msg}");
}

fn path_with(dir: &tempfile::TempDir, name: &str, data: &str) -> PathBuf {
    write(dir, name, data.as_bytes())
}

#[test]
fn empty_file_and_header_only() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(&dir, "empty.csv", b"");
    let err = read_all(&[empty], &SourceOptions::default()).unwrap_err();
    assert_eq!(err.kind(), &SourceErrorKind::NoHeader);
    assert!(items("hdr.csv", b"Id,ProductArn\n", &SourceOptions::default()).is_empty());
}

#[test]
fn unterminated_quote_is_fatal_not_a_silent_skip() {
    // The quote opened on line 3 swallows lines 4 and 5.
    let data =
        format!("Id,ProductArn,Note\nu-1,{GD},fine\nu-2,{GD},\"oops\nu-3,{GD},x\nu-4,{GD},y\n");
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "unterminated.csv", data.as_bytes());
    let results = read_all(&[path], &SourceOptions::default()).unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(
        record(results[0].as_ref().unwrap()).key,
        FindingKey::new("u-1", GD)
    );
    let err = results[1].as_ref().unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("unterminated quote") && msg.contains("line 3"),
        "{msg}"
    );

    // A legitimate multi-line last field is not mistaken for one.
    let data = format!("Id,ProductArn,Note\nu-1,{GD},\"two\nlines\"\n");
    assert_eq!(
        keys(&items("ok.csv", data.as_bytes(), &SourceOptions::default())).len(),
        1
    );
}

#[test]
fn megabyte_field_is_invalid_not_a_crash() {
    let big = "z".repeat(3 << 20);
    let data = format!("Id,ProductArn,Description\n{big},{GD},x\nnext,{GD},\"{big}\"\n");
    let items = items("big.csv", data.as_bytes(), &SourceOptions::default());
    assert_eq!(items.len(), 2);
    assert!(invalid(&items[0]).reason.contains("3145728 characters"));
    assert_eq!(record(&items[1]).key, FindingKey::new("next", GD));
}

#[test]
fn several_files_in_order_and_missing_file_fails_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        &dir,
        "a.csv",
        format!("Id,ProductArn\na-1,{GD}\n").as_bytes(),
    );
    let b = write(
        &dir,
        "b.csv",
        format!("id,product_arn\nb-1,{GD}\nb-2,{GD}\n").as_bytes(),
    );
    let all: Vec<SourceItem> = read_all(&[a.clone(), b.clone()], &SourceOptions::default())
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        keys(&all),
        vec![
            FindingKey::new("a-1", GD),
            FindingKey::new("b-1", GD),
            FindingKey::new("b-2", GD)
        ]
    );
    // Row numbers restart per file.
    assert_eq!(record(&all[1]).location.row, 1);
    assert!(record(&all[1]).location.file.ends_with("b.csv"));

    let missing = dir.path().join("missing.csv");
    let err = read_all(&[a.clone(), missing], &SourceOptions::default()).unwrap_err();
    assert_eq!(err.kind(), &SourceErrorKind::NotFound);
    assert!(err.to_string().contains("missing.csv"));

    let err = read_all(&[dir.path().to_path_buf()], &SourceOptions::default()).unwrap_err();
    assert_eq!(err.kind(), &SourceErrorKind::IsDirectory);
}

#[test]
fn bad_second_file_is_an_error_item_after_the_first_files_records() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        &dir,
        "a.csv",
        format!("Id,ProductArn\na-1,{GD}\n").as_bytes(),
    );
    let b = write(&dir, "b.csv", b"nothing,useful\n1,2\n");
    let results = read_all(&[a, b], &SourceOptions::default()).unwrap();
    assert_eq!(results.len(), 2);
    assert!(results[0].is_ok());
    assert!(
        results[1]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("b.csv")
    );
}

/// Standard input cannot be swapped inside the test process, so the test
/// re-runs itself as a child with the data piped in.
#[test]
fn reads_standard_input() {
    if std::env::var_os("SOURCE_CSV_STDIN_CHILD").is_some() {
        let src = source::open(&[InputSpec::Stdin], &SourceOptions::default()).unwrap();
        for item in src {
            let r = item.unwrap();
            let r = record(&r);
            println!("KEY {} {} {}", r.location.file, r.key.id, r.key.product_arn);
        }
        return;
    }
    let exe = std::env::current_exe().unwrap();
    // This test's name inside the integration binary (`source_csv::...`):
    // its module path without the crate name.
    let name = concat!(module_path!(), "::reads_standard_input");
    let name = name.split_once("::").map_or(name, |(_, rest)| rest);
    let mut child = std::process::Command::new(exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env("SOURCE_CSV_STDIN_CHILD", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let data = format!("Id,ProductArn\ns-1,{GD}\ns-2,{GD}\n");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(data.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    // The harness may print its own text on the same line as ours.
    let lines: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.find("KEY ").map(|i| &l[i..]))
        .collect();
    assert_eq!(
        lines,
        vec![format!("KEY - s-1 {GD}"), format!("KEY - s-2 {GD}")]
    );
}

#[test]
fn productv2_is_converted_only_in_the_resource_field() {
    // Found by the csv fuzz target: a ":productv2/" in the account field
    // used to be converted instead of the resource's.
    let data =
        "Id,ProductArn\nv-1,arn:aws:securityhub:us-east-1:productv2/:productv2/aws/securityhub\n";
    let items = items("v2.csv", data.as_bytes(), &SourceOptions::default());
    assert_eq!(
        record(&items[0]).key.product_arn,
        "arn:aws:securityhub:us-east-1:productv2/:product/aws/securityhub"
    );
}
