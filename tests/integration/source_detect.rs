//! Format detection and compressed inputs.

use std::io::Write;
use std::path::PathBuf;

use sechub_triage::model::{FindingKey, SourceItem};
use sechub_triage::source::{self, Format, InputSpec, SourceError, SourceErrorKind, SourceOptions};

const GD: &str = "arn:aws:securityhub:us-east-1::product/aws/guardduty";

fn write(dir: &tempfile::TempDir, name: &str, data: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, data).unwrap();
    path
}

fn read(
    path: PathBuf,
    opts: &SourceOptions,
) -> Result<Vec<Result<SourceItem, SourceError>>, SourceError> {
    Ok(source::open(&[InputSpec::Path(path)], opts)?.collect())
}

fn keys(path: PathBuf) -> Vec<FindingKey> {
    read(path, &SourceOptions::default())
        .unwrap()
        .into_iter()
        .map(|r| match r.unwrap() {
            SourceItem::Record(r) => r.key,
            SourceItem::Invalid(i) => panic!("{i:?}"),
        })
        .collect()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn csv_rows(n: usize) -> String {
    let mut s = String::from("Id,ProductArn\n");
    for i in 0..n {
        s.push_str(&format!("c-{i},{GD}\n"));
    }
    s
}

fn jsonl_rows(n: usize) -> String {
    (0..n)
        .map(|i| format!("{{\"Id\":\"j-{i}\",\"ProductArn\":\"{GD}\"}}\n"))
        .collect()
}

#[test]
fn gzip_and_zstd_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let gz = write(&dir, "a.csv.gz", &gzip(csv_rows(3).as_bytes()));
    assert_eq!(keys(gz).len(), 3);
    let zst = write(
        &dir,
        "b.jsonl.zst",
        &zstd::encode_all(jsonl_rows(4).as_bytes(), 3).unwrap(),
    );
    assert_eq!(keys(zst)[3], FindingKey::new("j-3", GD));
    // No extension at all (a Firehose object): compression and format sniffed.
    let bare = write(&dir, "firehose-object", &gzip(jsonl_rows(2).as_bytes()));
    assert_eq!(keys(bare).len(), 2);
}

#[test]
fn concatenated_gzip_members_are_all_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = gzip(jsonl_rows(2).as_bytes());
    data.extend(gzip(b"{\"Id\":\"second-member\",\"ProductArn\":\"arn:aws:securityhub:us-east-1::product/aws/guardduty\"}\n"));
    let path = write(&dir, "multi.json.gz", &data);
    let keys = keys(path);
    assert_eq!(keys.len(), 3);
    assert_eq!(keys[2].id, "second-member");
}

#[test]
fn gz_name_without_gzip_content_is_read_as_is() {
    // Browsers and some S3 clients decompress on download but keep the name.
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "export.csv.gz", csv_rows(2).as_bytes());
    assert_eq!(keys(path).len(), 2);
}

#[test]
fn truncated_or_corrupt_compression_is_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let full = gzip(csv_rows(20_000).as_bytes());
    let path = write(&dir, "cut.csv.gz", &full[..full.len() * 2 / 3]);
    let results = read(path, &SourceOptions::default()).unwrap();
    let (last, records) = results.split_last().unwrap();
    assert!(!records.is_empty() && records.iter().all(Result::is_ok));
    let err = last.as_ref().unwrap_err();
    assert_eq!(
        err.kind(),
        &SourceErrorKind::BadCompression("gzip"),
        "{err}"
    );
    assert!(err.to_string().contains("cut.csv.gz"), "{err}");

    let mut zst = zstd::encode_all(jsonl_rows(100).as_bytes(), 3).unwrap();
    let mid = zst.len() / 2;
    zst[mid] ^= 0xff;
    zst[mid + 1] ^= 0xff;
    let path = write(&dir, "bad.jsonl.zst", &zst);
    let err = match read(path, &SourceOptions::default()) {
        Err(e) => e,
        Ok(results) => results
            .into_iter()
            .find_map(Result::err)
            .expect("a fatal error"),
    };
    assert!(
        matches!(
            err.kind(),
            SourceErrorKind::BadCompression("zstd") | SourceErrorKind::Malformed { .. }
        ),
        "{err}"
    );
}

#[test]
fn format_flag_overrides_extension_and_sniffing() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "list.txt", csv_rows(2).as_bytes());
    let opts = SourceOptions {
        format: Some(Format::Csv),
        ..Default::default()
    };
    assert_eq!(read(path.clone(), &opts).unwrap().len(), 2);
    // Without the flag the content decides.
    assert_eq!(keys(path).len(), 2);

    let path = write(&dir, "mislabelled.json", csv_rows(1).as_bytes());
    let err = read(path, &SourceOptions::default())
        .unwrap()
        .remove(0)
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            SourceErrorKind::Malformed { format: "JSON", .. }
        ),
        "{err}"
    );

    let path = write(&dir, "json-in.csv", jsonl_rows(1).as_bytes());
    let err = read(path, &SourceOptions::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("looks like JSON: pass --format json"),
        "{err}"
    );
}

#[test]
fn binary_and_empty_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "archive", b"PK\x03\x04\x14\x00\x00\x00\x08\x00");
    let err = read(path, &SourceOptions::default()).unwrap_err();
    assert_eq!(err.kind(), &SourceErrorKind::UnknownFormat);
    assert!(err.to_string().contains("--format"), "{err}");

    let path = write(&dir, "empty-object", b"");
    assert!(read(path, &SourceOptions::default()).unwrap().is_empty());
    let path = write(&dir, "empty.jsonl.gz", &gzip(b""));
    assert!(read(path, &SourceOptions::default()).unwrap().is_empty());
}

#[test]
fn mixed_formats_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(&dir, "a.csv", csv_rows(2).as_bytes());
    let b = write(&dir, "b.jsonl.gz", &gzip(jsonl_rows(3).as_bytes()));
    let items: Vec<SourceItem> = source::open(
        &[InputSpec::Path(a), InputSpec::Path(b)],
        &SourceOptions::default(),
    )
    .unwrap()
    .map(Result::unwrap)
    .collect();
    assert_eq!(items.len(), 5);
}
