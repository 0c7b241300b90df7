//! Parquet reader tests, on files written here with `ArrowWriter`: flat
//! columns, Security Lake's nested OCSF layout, dictionary and large-string
//! columns, several row groups, several files, and broken files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, DictionaryArray, Int64Array, LargeStringArray, RecordBatch, StringArray, StructArray,
};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, Field, Fields, Int32Type};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use sechub_triage::model::{FindingKey, SourceItem};
use sechub_triage::source::{self, InputSpec, SourceError, SourceErrorKind, SourceOptions};

const GD_V2: &str = "arn:aws:securityhub:us-east-1::productv2/aws/guardduty";
const GD: &str = "arn:aws:securityhub:us-east-1::product/aws/guardduty";
const SH: &str = "arn:aws:securityhub:eu-west-1::product/aws/securityhub";

fn write_parquet(path: &Path, batches: &[RecordBatch], rows_per_group: usize) {
    let file = std::fs::File::create(path).unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(rows_per_group))
        .build();
    let mut writer = ArrowWriter::try_new(file, batches[0].schema(), Some(props)).unwrap();
    for b in batches {
        writer.write(b).unwrap();
    }
    writer.close().unwrap();
}

fn read(paths: &[PathBuf]) -> Result<Vec<Result<SourceItem, SourceError>>, SourceError> {
    let inputs: Vec<InputSpec> = paths.iter().map(|p| InputSpec::Path(p.clone())).collect();
    Ok(source::open(&inputs, &SourceOptions::default())?.collect())
}

fn ok_items(paths: &[PathBuf]) -> Vec<SourceItem> {
    read(paths)
        .unwrap()
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

fn strings(values: &[&str]) -> ArrayRef {
    Arc::new(StringArray::from(values.to_vec()))
}

fn structure(children: Vec<(&str, ArrayRef)>, nulls: Option<NullBuffer>) -> ArrayRef {
    let fields: Fields = children
        .iter()
        .map(|(name, a)| Field::new(*name, a.data_type().clone(), true))
        .collect();
    let arrays = children.into_iter().map(|(_, a)| a).collect();
    Arc::new(StructArray::try_new(fields, arrays, nulls).unwrap())
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns).unwrap()
}

#[test]
fn flat_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flat.parquet");
    write_parquet(
        &path,
        &[batch(vec![
            ("AwsAccountId", strings(&["111111111111", "222222222222"])),
            ("Id", strings(&["f-1", "f-2"])),
            ("ProductArn", strings(&[GD, SH])),
            ("Region", strings(&["us-east-1", "eu-west-1"])),
        ])],
        1000,
    );
    let items = ok_items(&[path]);
    assert_eq!(
        items.iter().map(key).collect::<Vec<_>>(),
        vec![FindingKey::new("f-1", GD), FindingKey::new("f-2", SH)]
    );
}

/// Security Lake source v2 (OCSF 1.1) layout, docs/service-facts.md §9.
fn security_lake_batch(
    uids: &[&str],
    products: &[&str],
    finding_info_nulls: Option<NullBuffer>,
) -> RecordBatch {
    let n = uids.len();
    let finding_info = structure(
        vec![("title", strings(&vec!["t"; n])), ("uid", strings(uids))],
        finding_info_nulls,
    );
    let product = structure(
        vec![
            ("name", strings(&vec!["GuardDuty"; n])),
            ("uid", strings(products)),
        ],
        None,
    );
    let metadata = structure(
        vec![
            ("product", product),
            ("version", strings(&vec!["1.1.0"; n])),
        ],
        None,
    );
    let account = structure(vec![("uid", strings(&vec!["111111111111"; n]))], None);
    let cloud = structure(
        vec![
            ("account", account),
            ("region", strings(&vec!["us-east-1"; n])),
        ],
        None,
    );
    batch(vec![
        (
            "class_uid",
            Arc::new(Int64Array::from(vec![2004i64; n])) as ArrayRef,
        ),
        ("cloud", cloud),
        ("finding_info", finding_info),
        ("metadata", metadata),
        ("accountid", strings(&vec!["111111111111"; n])),
        ("region", strings(&vec!["us-east-1"; n])),
    ])
}

#[test]
fn security_lake_nested_ocsf_with_row_groups() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sl.parquet");
    let ids: Vec<String> = (0..25).map(|i| format!("gd-{i}")).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    write_parquet(
        &path,
        &[security_lake_batch(&id_refs, &[GD_V2; 25], None)],
        10,
    );
    let items = ok_items(&[path]);
    assert_eq!(items.len(), 25);
    // productv2 ARNs are converted to the product/ form.
    assert_eq!(key(&items[0]), FindingKey::new("gd-0", GD));
    assert_eq!(key(&items[24]), FindingKey::new("gd-24", GD));
    let SourceItem::Record(r) = &items[13] else {
        panic!()
    };
    assert_eq!(r.location.row, 14);
    assert_eq!(r.location.detail.as_deref(), Some("row group 2, row 4"));
    let SourceItem::Record(r) = &items[24] else {
        panic!()
    };
    assert_eq!(r.location.detail.as_deref(), Some("row group 3, row 5"));
}

#[test]
fn null_structs_and_null_cells_are_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nulls.parquet");
    // Row 2 has a null finding_info struct.
    let nulls = NullBuffer::from(vec![true, false, true]);
    write_parquet(
        &path,
        &[security_lake_batch(
            &["a", "b", "c"],
            &[GD, GD, GD],
            Some(nulls),
        )],
        100,
    );
    let items = ok_items(&[path]);
    assert_eq!(key(&items[0]), FindingKey::new("a", GD));
    let SourceItem::Invalid(i) = &items[1] else {
        panic!("{:?}", items[1])
    };
    assert_eq!(i.column.as_deref(), Some("finding_info.uid"));
    assert_eq!(i.reason, "no finding Id in this record");
    assert_eq!(key(&items[2]), FindingKey::new("c", GD));

    let path = dir.path().join("nullcell.parquet");
    let ids: ArrayRef = Arc::new(StringArray::from(vec![Some("x"), None]));
    write_parquet(
        &path,
        &[batch(vec![
            ("id", ids),
            ("productarn", strings(&["bad-arn-value", GD])),
        ])],
        100,
    );
    let items = ok_items(&[path]);
    let SourceItem::Invalid(i) = &items[0] else {
        panic!()
    };
    assert_eq!(i.column.as_deref(), Some("productarn"));
    assert!(i.reason.contains("not an ARN"), "{}", i.reason);
    let SourceItem::Invalid(i) = &items[1] else {
        panic!()
    };
    assert_eq!(i.column.as_deref(), Some("id"));
}

#[test]
fn older_ocsf_finding_uid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.parquet");
    let finding = structure(vec![("uid", strings(&["old-1"]))], None);
    let product = structure(vec![("uid", strings(&[SH]))], None);
    let metadata = structure(vec![("product", product)], None);
    write_parquet(
        &path,
        &[batch(vec![("finding", finding), ("metadata", metadata)])],
        100,
    );
    assert_eq!(key(&ok_items(&[path])[0]), FindingKey::new("old-1", SH));
}

#[test]
fn dictionary_and_large_string_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dict.parquet");
    let arns: DictionaryArray<Int32Type> = vec![GD, SH, GD, GD].into_iter().collect();
    let ids = LargeStringArray::from(vec!["d-1", "d-2", "d-3", "d-4"]);
    let b = batch(vec![
        ("Id", Arc::new(ids) as ArrayRef),
        ("ProductArn", Arc::new(arns) as ArrayRef),
    ]);
    assert!(matches!(
        b.schema().field(1).data_type(),
        DataType::Dictionary(..)
    ));
    write_parquet(&path, &[b], 3);
    let items = ok_items(&[path]);
    assert_eq!(
        items.iter().map(key).collect::<Vec<_>>(),
        vec![
            FindingKey::new("d-1", GD),
            FindingKey::new("d-2", SH),
            FindingKey::new("d-3", GD),
            FindingKey::new("d-4", GD),
        ]
    );
}

#[test]
fn several_files_and_user_column_paths() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.parquet");
    let b = dir.path().join("b.parquet");
    write_parquet(&a, &[security_lake_batch(&["a-1"], &[GD], None)], 100);
    write_parquet(
        &b,
        &[security_lake_batch(&["b-1", "b-2"], &[SH, SH], None)],
        100,
    );
    let items = ok_items(&[a.clone(), b]);
    assert_eq!(
        items.iter().map(key).collect::<Vec<_>>(),
        vec![
            FindingKey::new("a-1", GD),
            FindingKey::new("b-1", SH),
            FindingKey::new("b-2", SH),
        ]
    );

    // --id-column with a dotted path picks another nested leaf.
    let opts = SourceOptions {
        id_column: Some("finding_info.title".into()),
        ..Default::default()
    };
    let items: Vec<SourceItem> = source::open(&[InputSpec::Path(a)], &opts)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(key(&items[0]), FindingKey::new("t", GD));
}

#[test]
fn missing_or_non_text_columns_are_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nocol.parquet");
    write_parquet(
        &path,
        &[batch(vec![
            ("title", strings(&["x"])),
            ("productarn", strings(&[GD])),
        ])],
        100,
    );
    let err = read(&[path]).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err.kind(), SourceErrorKind::MissingColumn { .. }),
        "{msg}"
    );
    assert!(
        msg.contains("columns found: title, productarn") && msg.contains("--id-column"),
        "{msg}"
    );

    let path = dir.path().join("intid.parquet");
    let ids: ArrayRef = Arc::new(Int64Array::from(vec![1i64]));
    write_parquet(
        &path,
        &[batch(vec![("Id", ids), ("ProductArn", strings(&[GD]))])],
        100,
    );
    let msg = read(&[path]).unwrap_err().to_string();
    assert!(
        msg.contains("column Id has type Int64") && msg.contains("must be text"),
        "{msg}"
    );
}

#[test]
fn truncated_and_fake_parquet_files_are_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.parquet");
    write_parquet(&good, &[security_lake_batch(&["a"], &[GD], None)], 100);
    let bytes = std::fs::read(&good).unwrap();

    let cut = dir.path().join("cut.parquet");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = read(&[cut]).unwrap_err();
    assert!(err.to_string().contains("truncated or corrupt"), "{err}");
    assert!(err.to_string().contains("cut.parquet"), "{err}");

    let fake = dir.path().join("fake.parquet");
    std::fs::write(&fake, b"Id,ProductArn\n").unwrap();
    let err = read(&[fake]).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            SourceErrorKind::WrongFormat {
                expected: "Parquet",
                ..
            }
        ),
        "{err}"
    );

    // Parquet content is recognised whatever the name.
    let renamed = dir.path().join("export.dat");
    std::fs::write(&renamed, &bytes).unwrap();
    assert_eq!(ok_items(&[renamed]).len(), 1);
}

#[test]
fn compressed_parquet_is_buffered_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.parquet");
    write_parquet(
        &good,
        &[security_lake_batch(&["z-1", "z-2"], &[GD, GD], None)],
        1,
    );
    let gz = dir.path().join("good.parquet.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(&std::fs::read(&good).unwrap()).unwrap();
    enc.finish().unwrap();
    let items = ok_items(&[gz]);
    assert_eq!(
        items.iter().map(key).collect::<Vec<_>>(),
        vec![FindingKey::new("z-1", GD), FindingKey::new("z-2", GD)]
    );
}

#[test]
fn security_lake_ocsf_names_findings_by_the_v2_triple() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sl.parquet");
    write_parquet(
        &path,
        &[security_lake_batch(&["gd-0", "gd-1"], &[GD_V2; 2], None)],
        10,
    );
    let items: Vec<SourceItem> =
        source::v2_keys(read(&[path]).unwrap().into_iter(), Default::default())
            .map(Result::unwrap)
            .collect();
    assert_eq!(
        key(&items[0]),
        FindingKey::ocsf("111111111111", "gd-0", GD_V2)
    );
    assert_eq!(
        key(&items[1]),
        FindingKey::ocsf("111111111111", "gd-1", GD_V2)
    );
}
