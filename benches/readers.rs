//! Benchmarks of the input readers alone (no engine, no network).
//!
//! `cargo bench --bench readers` measures rows per second for CSV (plain and
//! gzip-compressed), Parquet (Security Lake's nested OCSF layout), JSON Lines
//! and a `get-findings` document, each read on one thread (the readers are
//! single-threaded).
//!
//! `READERS_PEAK=1 cargo bench --bench readers` instead measures peak
//! memory: for each format it writes files of 100,000 and 10,000,000 rows
//! (`READERS_PEAK_ROWS=a,b` to change the sizes), reads each in a fresh
//! child process, and prints the child's peak resident set size (VmHWM).
//! Flat memory means the large file peaks within 1.5x of the small one.
//!
//! `READERS_DEDUP=1 cargo bench --bench readers` measures the engine's
//! duplicate index (the one memory cost that grows with the input) at
//! 100,000 and 10,000,000 findings: bytes per finding and inserts per
//! second, against `std::collections::HashSet<u64>` in the same run.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, RecordBatch, StringArray, StructArray};
use arrow::datatypes::{Field, Fields};
use criterion::{Criterion, Throughput};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use sechub_triage::model::SourceItem;
use sechub_triage::source::{self, InputSpec, SourceOptions};

const THROUGHPUT_ROWS: usize = 200_000;
const PRODUCTS: [&str; 4] = [
    "arn:aws:securityhub:us-east-1::product/aws/securityhub",
    "arn:aws:securityhub:us-east-1::product/aws/guardduty",
    "arn:aws:securityhub:eu-west-1::product/aws/inspector",
    "arn:aws:securityhub:us-east-1:111111111111:product/111111111111/default",
];

/// A control-finding-like Id (~110 characters), unique per row.
fn finding_id(i: usize) -> String {
    format!(
        "arn:aws:securityhub:us-east-1:111111111111:security-control/IAM.{}/finding/{:08x}-4b1c-4d2e-9f3a-{:012x}",
        i % 40,
        i.wrapping_mul(2_654_435_761) & 0xffff_ffff,
        i
    )
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Csv,
    CsvGzip,
    Parquet,
    JsonLines,
    GetFindings,
    /// Baselines: the same rows with only the identifier columns, so the
    /// cost of reading decision and state columns shows as a ratio.
    CsvIdsOnly,
    ParquetIdsOnly,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Csv,
        Kind::CsvGzip,
        Kind::Parquet,
        Kind::JsonLines,
        Kind::GetFindings,
    ];

    fn file_name(self) -> &'static str {
        match self {
            Kind::Csv => "findings.csv",
            Kind::CsvGzip => "findings.csv.gz",
            Kind::Parquet => "findings.parquet",
            Kind::JsonLines => "findings.jsonl",
            Kind::GetFindings => "findings.json",
            Kind::CsvIdsOnly => "ids.csv",
            Kind::ParquetIdsOnly => "ids.parquet",
        }
    }
}

fn write_file(kind: Kind, path: &Path, rows: usize) {
    match kind {
        Kind::CsvIdsOnly => {
            let mut w = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
            writeln!(w, "id,product_arn").unwrap();
            for i in 0..rows {
                writeln!(w, "{},{}", finding_id(i), PRODUCTS[i % 4]).unwrap();
            }
            w.flush().unwrap();
        }
        Kind::ParquetIdsOnly => write_parquet(path, rows, true),
        Kind::Csv | Kind::CsvGzip => {
            // Steampipe/CloudQuery-like columns around the identifiers.
            let file = File::create(path).unwrap();
            let mut w: Box<dyn Write> = match kind {
                Kind::CsvGzip => Box::new(flate2::write::GzEncoder::new(
                    BufWriter::with_capacity(1 << 20, file),
                    flate2::Compression::fast(),
                )),
                _ => Box::new(BufWriter::with_capacity(1 << 20, file)),
            };
            writeln!(
                w,
                "aws_account_id,region,id,product_arn,title,severity_label,workflow_status"
            )
            .unwrap();
            for i in 0..rows {
                writeln!(
                    w,
                    "111111111111,us-east-1,{},{},\"IAM policies should not allow full \"\"*\"\" privileges\",HIGH,NEW",
                    finding_id(i),
                    PRODUCTS[i % 4]
                )
                .unwrap();
            }
            w.flush().unwrap();
        }
        Kind::JsonLines | Kind::GetFindings => {
            let mut w = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
            let wrapped = matches!(kind, Kind::GetFindings);
            if wrapped {
                writeln!(w, "{{\n    \"Findings\": [").unwrap();
            }
            for i in 0..rows {
                if wrapped && i > 0 {
                    writeln!(w, ",").unwrap();
                }
                write!(
                    w,
                    r#"{{"SchemaVersion":"2018-10-08","Id":"{}","ProductArn":"{}","GeneratorId":"security-control/IAM.1","AwsAccountId":"111111111111","Types":["Software and Configuration Checks/Industry and Regulatory Standards"],"Title":"IAM policies should not allow full \"*\" privileges","Severity":{{"Label":"HIGH","Normalized":70}},"Workflow":{{"Status":"NEW"}},"Region":"us-east-1","Resources":[{{"Type":"AwsIamPolicy","Id":"arn:aws:iam::111111111111:policy/p{}"}}]}}"#,
                    finding_id(i),
                    PRODUCTS[i % 4],
                    i
                )
                .unwrap();
                if !wrapped {
                    writeln!(w).unwrap();
                }
            }
            if wrapped {
                writeln!(w, "\n    ]\n}}").unwrap();
            }
            w.flush().unwrap();
        }
        Kind::Parquet => write_parquet(path, rows, false),
    }
}

/// Security Lake source v2 layout (nested OCSF structs), 100,000-row groups.
fn write_parquet(path: &Path, rows: usize, ids_only: bool) {
    let strings = |v: Vec<String>| -> ArrayRef { Arc::new(StringArray::from(v)) };
    let structure = |children: Vec<(&str, ArrayRef)>| -> ArrayRef {
        let fields: Fields = children
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect();
        Arc::new(StructArray::new(
            fields,
            children.into_iter().map(|(_, a)| a).collect(),
            None,
        ))
    };
    let make = |from: usize, to: usize| {
        let n = to - from;
        let finding_info = structure(vec![
            (
                "title",
                strings(vec![
                    "IAM policies should not allow full privileges".into();
                    n
                ]),
            ),
            ("uid", strings((from..to).map(finding_id).collect())),
        ]);
        let product = structure(vec![
            ("name", strings(vec!["Security Hub".into(); n])),
            (
                "uid",
                strings(
                    (from..to)
                        .map(|i| PRODUCTS[i % 4].replace("::product/", "::productv2/"))
                        .collect(),
                ),
            ),
        ]);
        let metadata = structure(vec![
            ("product", product),
            ("version", strings(vec!["1.1.0".into(); n])),
        ]);
        let account = structure(vec![("uid", strings(vec!["111111111111".into(); n]))]);
        let cloud = structure(vec![
            ("account", account),
            ("region", strings(vec!["us-east-1".into(); n])),
        ]);
        if ids_only {
            let info = structure(vec![("uid", strings((from..to).map(finding_id).collect()))]);
            let product = structure(vec![(
                "uid",
                strings(
                    (from..to)
                        .map(|i| PRODUCTS[i % 4].replace("::product/", "::productv2/"))
                        .collect(),
                ),
            )]);
            let metadata = structure(vec![("product", product)]);
            return RecordBatch::try_from_iter(vec![
                ("finding_info", info),
                ("metadata", metadata),
            ])
            .unwrap();
        }
        RecordBatch::try_from_iter(vec![
            ("cloud", cloud),
            ("finding_info", finding_info),
            ("metadata", metadata),
            ("severity", strings(vec!["High".into(); n])),
            ("status", strings(vec!["New".into(); n])),
        ])
        .unwrap()
    };
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(100_000))
        .build();
    let first = make(0, rows.min(1));
    let mut writer =
        ArrowWriter::try_new(File::create(path).unwrap(), first.schema(), Some(props)).unwrap();
    let mut from = 0;
    while from < rows {
        let to = (from + 50_000).min(rows);
        writer.write(&make(from, to)).unwrap();
        from = to;
    }
    writer.close().unwrap();
}

/// Reads a file completely; returns (records, invalid).
fn read_all(path: &Path) -> (u64, u64) {
    let src = source::open(
        &[InputSpec::Path(path.to_path_buf())],
        &SourceOptions::default(),
    )
    .unwrap();
    let (mut ok, mut bad) = (0, 0);
    for item in src {
        match item.unwrap() {
            SourceItem::Record(_) => ok += 1,
            SourceItem::Invalid(_) => bad += 1,
        }
    }
    (ok, bad)
}

fn throughput(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("readers");
    group.sample_size(10);
    group.throughput(Throughput::Elements(THROUGHPUT_ROWS as u64));
    for kind in Kind::ALL
        .into_iter()
        .chain([Kind::CsvIdsOnly, Kind::ParquetIdsOnly])
    {
        let path = dir.path().join(kind.file_name());
        write_file(kind, &path, THROUGHPUT_ROWS);
        assert_eq!(read_all(&path), (THROUGHPUT_ROWS as u64, 0), "{kind:?}");
        group.bench_function(format!("{kind:?}"), |b| b.iter(|| read_all(&path)));
    }
    group.finish();
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn peak_memory() {
    let sizes: Vec<usize> = std::env::var("READERS_PEAK_ROWS")
        .unwrap_or_else(|_| "100000,10000000".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("READERS_PEAK_ROWS: comma-separated row counts")
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    println!(
        "{:<12} {:>12} {:>12} {:>14} {:>14}",
        "format", "rows", "file MiB", "peak RSS MiB", "rows/s"
    );
    for kind in Kind::ALL {
        for &rows in &sizes {
            let path: PathBuf = dir.path().join(kind.file_name());
            write_file(kind, &path, rows);
            let size = std::fs::metadata(&path).unwrap().len();
            let out = Command::new(&exe)
                .arg("--peak-child")
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let line = String::from_utf8_lossy(&out.stdout);
            let mut parts = line.split_whitespace();
            let read: u64 = parts.next().unwrap().parse().unwrap();
            let peak: u64 = parts.next().unwrap().parse().unwrap();
            let secs: f64 = parts.next().unwrap().parse().unwrap();
            assert_eq!(read, rows as u64);
            println!(
                "{:<12} {:>12} {:>12.1} {:>14.1} {:>14.0}",
                format!("{kind:?}"),
                rows,
                size as f64 / (1 << 20) as f64,
                peak as f64 / 1024.0,
                rows as f64 / secs
            );
            std::fs::remove_file(&path).unwrap();
        }
    }
}

fn dedup_memory() {
    use sechub_triage::dedup::DedupIndex;
    use sechub_triage::model::FindingKey;
    println!(
        "{:<22} {:>12} {:>16} {:>16} {:>14}",
        "index", "findings", "bytes/finding", "worst seen", "inserts/s"
    );
    for n in [100_000usize, 10_000_000] {
        let keys = (0..n).map(|i| FindingKey::new(finding_id(i), PRODUCTS[i % PRODUCTS.len()]));
        let mut index = DedupIndex::default();
        let mut worst: f64 = 0.0;
        let start = Instant::now();
        for (i, k) in keys.enumerate() {
            // As the intake uses it: with a decision tag (issue 10).
            index.insert_tagged(&k, (i % 3) as u32 + 1);
            if i >= 10_000 && i % 1000 == 0 {
                worst = worst.max(index.heap_bytes() as f64 / (i + 1) as f64);
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{:<22} {:>12} {:>16.2} {:>16.2} {:>14.0}",
            "DedupIndex",
            n,
            index.heap_bytes() as f64 / n as f64,
            worst,
            n as f64 / secs
        );
        // Baseline: a std HashSet of the same 64-bit fingerprints.
        let mut set: std::collections::HashSet<u64> = std::collections::HashSet::new();
        let mut worst: f64 = 0.0;
        let start = Instant::now();
        for i in 0..n {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            finding_id(i).hash(&mut h);
            PRODUCTS[i % PRODUCTS.len()].hash(&mut h);
            set.insert(h.finish());
            if i >= 10_000 && i % 1000 == 0 {
                // hashbrown: one u64 and one control byte per bucket.
                worst = worst.max(set.capacity() as f64 * 8.0 / 7.0 * 9.0 / (i + 1) as f64);
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{:<22} {:>12} {:>16.2} {:>16.2} {:>14.0}",
            "HashSet<u64> (std)",
            n,
            set.capacity() as f64 * 8.0 / 7.0 * 9.0 / n as f64,
            worst,
            n as f64 / secs
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if std::env::var_os("READERS_DEDUP").is_some() {
        dedup_memory();
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--peak-child") {
        let start = Instant::now();
        let (ok, _) = read_all(Path::new(&args[i + 1]));
        println!("{ok} {} {}", peak_rss_kib(), start.elapsed().as_secs_f64());
        return;
    }
    if std::env::var_os("READERS_PEAK").is_some() {
        peak_memory();
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    throughput(&mut c);
    c.final_summary();
}
