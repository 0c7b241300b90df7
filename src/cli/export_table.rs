//! `export` to a table: CSV (`.csv`, `.csv.gz`, `.csv.zst`) or Parquet
//! (`.parquet`), one row per finding, in columns the readers read back as
//! an export (README, "Selecting by query"):
//!
//! - ASFF (`--filters`): `Id`, `ProductArn`, then the finding's state under
//!   the dotted ASFF names the source module recognises (`Workflow.Status`,
//!   `Note.Text`, `Severity.Label`, ...) and a few context columns. `Types`
//!   and `UserDefinedFields` hold JSON (`[]`/`{}` when the finding has
//!   none, so that "none" is recorded rather than unknown), as Steampipe's
//!   export does.
//! - OCSF (`--ocsf-filters`): OCSF paths as column names, like the V2
//!   export job's CSV (`finding_info.uid`, `metadata.product.uid`,
//!   `cloud.account.uid`, `metadata.uid`, `status_id`, `severity_id`,
//!   `comment`, ...).
//!
//! A column that records state is always there, and an empty cell where it
//! holds text (`Note.Text`, `comment`) means the finding has none, which is
//! how the readers take it. The writer is fed the query's JSON Lines
//! through [`TableSink`]'s `Write` (the query module writes JSON Lines;
//! this keeps one code path for every format): memory holds one line, and
//! for Parquet one row group ([`ROW_GROUP_ROWS`] rows).

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, bail};
use arrow::array::{ArrayRef, Int64Builder, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde_json::Value;

/// Rows per Parquet row group (and per record batch built in memory).
pub(crate) const ROW_GROUP_ROWS: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Text; numbers and booleans as written in JSON.
    Text,
    /// An integer (Parquet Int64).
    Int,
    /// JSON text of a list, `[]` when absent.
    JsonList,
    /// JSON text of an object, `{}` when absent.
    JsonObject,
}

/// One column: its name and the JSON path it is read from.
struct Column {
    name: &'static str,
    path: &'static [&'static str],
    kind: Kind,
}

const fn col(name: &'static str, path: &'static [&'static str], kind: Kind) -> Column {
    Column { name, path, kind }
}

/// ASFF: identifiers, state, context.
const ASFF: &[Column] = &[
    col("Id", &["Id"], Kind::Text),
    col("ProductArn", &["ProductArn"], Kind::Text),
    col("AwsAccountId", &["AwsAccountId"], Kind::Text),
    col("Region", &["Region"], Kind::Text),
    col("Workflow.Status", &["Workflow", "Status"], Kind::Text),
    col("Note.Text", &["Note", "Text"], Kind::Text),
    col("Note.UpdatedBy", &["Note", "UpdatedBy"], Kind::Text),
    col("Severity.Label", &["Severity", "Label"], Kind::Text),
    col(
        "Severity.Normalized",
        &["Severity", "Normalized"],
        Kind::Int,
    ),
    col("VerificationState", &["VerificationState"], Kind::Text),
    col("Confidence", &["Confidence"], Kind::Int),
    col("Criticality", &["Criticality"], Kind::Int),
    col("Types", &["Types"], Kind::JsonList),
    col(
        "UserDefinedFields",
        &["UserDefinedFields"],
        Kind::JsonObject,
    ),
    col("RecordState", &["RecordState"], Kind::Text),
    col("Compliance.Status", &["Compliance", "Status"], Kind::Text),
    col("GeneratorId", &["GeneratorId"], Kind::Text),
    col("ProductName", &["ProductName"], Kind::Text),
    col("Title", &["Title"], Kind::Text),
    col("UpdatedAt", &["UpdatedAt"], Kind::Text),
];

/// OCSF: the V2 export job's field paths.
const OCSF: &[Column] = &[
    col("finding_info.uid", &["finding_info", "uid"], Kind::Text),
    col(
        "metadata.product.uid",
        &["metadata", "product", "uid"],
        Kind::Text,
    ),
    col(
        "cloud.account.uid",
        &["cloud", "account", "uid"],
        Kind::Text,
    ),
    col("metadata.uid", &["metadata", "uid"], Kind::Text),
    col("cloud.region", &["cloud", "region"], Kind::Text),
    col("status_id", &["status_id"], Kind::Int),
    col("severity_id", &["severity_id"], Kind::Int),
    col("comment", &["comment"], Kind::Text),
    col("compliance.status", &["compliance", "status"], Kind::Text),
    col(
        "metadata.product.name",
        &["metadata", "product", "name"],
        Kind::Text,
    ),
    col("finding_info.title", &["finding_info", "title"], Kind::Text),
    col(
        "finding_info.modified_time",
        &["finding_info", "modified_time"],
        Kind::Int,
    ),
];

/// A cell's value.
enum Cell {
    Null,
    Text(String),
    Int(i64),
}

fn cell(doc: &Value, c: &Column) -> Cell {
    let v = c.path.iter().try_fold(doc, |v, k| v.get(k));
    match (c.kind, v) {
        (_, None | Some(Value::Null)) => match c.kind {
            Kind::JsonList => Cell::Text("[]".into()),
            Kind::JsonObject => Cell::Text("{}".into()),
            _ => Cell::Null,
        },
        (Kind::Int, Some(v)) => v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .map_or(Cell::Null, Cell::Int),
        (_, Some(Value::String(s))) => Cell::Text(s.clone()),
        (_, Some(v)) => Cell::Text(v.to_string()),
    }
}

/// Which table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TableFormat {
    /// CSV with a header row (compressed by the caller's writer).
    Csv,
    /// Parquet, row groups of [`ROW_GROUP_ROWS`].
    Parquet,
}

enum Out<W: Write + Send> {
    Csv(csv::Writer<W>),
    Parquet {
        writer: ArrowWriter<W>,
        schema: SchemaRef,
        texts: Vec<Option<StringBuilder>>,
        ints: Vec<Option<Int64Builder>>,
        rows: usize,
    },
}

/// Takes the query's JSON Lines (through `Write`) and writes table rows.
/// [`TableSink::finish`] must be called once the query is done (Parquet's
/// footer, CSV's last bytes); an unfinished sink leaves a partial file,
/// which the caller removes.
pub(crate) struct TableSink<W: Write + Send> {
    columns: &'static [Column],
    out: Out<W>,
    line: Vec<u8>,
    /// Rows written.
    pub(crate) rows: u64,
}

impl<W: Write + Send> TableSink<W> {
    /// A sink writing `format` to `w`, with the OCSF columns when `ocsf`.
    pub(crate) fn new(format: TableFormat, ocsf: bool, w: W) -> anyhow::Result<TableSink<W>> {
        let columns = if ocsf { OCSF } else { ASFF };
        let out = match format {
            TableFormat::Csv => {
                let mut csv = csv::Writer::from_writer(w);
                csv.write_record(columns.iter().map(|c| c.name))
                    .context("writing --out")?;
                Out::Csv(csv)
            }
            TableFormat::Parquet => {
                let schema: SchemaRef = Arc::new(Schema::new(
                    columns
                        .iter()
                        .map(|c| {
                            let t = match c.kind {
                                Kind::Int => DataType::Int64,
                                _ => DataType::Utf8,
                            };
                            Field::new(c.name, t, true)
                        })
                        .collect::<Vec<_>>(),
                ));
                let props = WriterProperties::builder()
                    .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
                    .set_compression(Compression::SNAPPY)
                    .build();
                let writer = ArrowWriter::try_new(w, schema.clone(), Some(props))
                    .context("starting the Parquet file")?;
                let (texts, ints) = builders(columns);
                Out::Parquet {
                    writer,
                    schema,
                    texts,
                    ints,
                    rows: 0,
                }
            }
        };
        Ok(TableSink {
            columns,
            out,
            line: Vec::new(),
            rows: 0,
        })
    }

    fn row(&mut self, doc: &Value) -> anyhow::Result<()> {
        match &mut self.out {
            Out::Csv(w) => {
                let cells = self.columns.iter().map(|c| match cell(doc, c) {
                    Cell::Null => String::new(),
                    Cell::Text(s) => s,
                    Cell::Int(n) => n.to_string(),
                });
                w.write_record(cells).context("writing --out")?;
            }
            Out::Parquet {
                writer,
                schema,
                texts,
                ints,
                rows,
            } => {
                for (i, c) in self.columns.iter().enumerate() {
                    match (cell(doc, c), &mut texts[i], &mut ints[i]) {
                        (Cell::Text(s), Some(b), _) => b.append_value(s),
                        (Cell::Int(n), _, Some(b)) => b.append_value(n),
                        (_, Some(b), _) => b.append_null(),
                        (_, _, Some(b)) => b.append_null(),
                        (_, None, None) => unreachable!("every column has a builder"),
                    }
                }
                *rows += 1;
                if *rows == ROW_GROUP_ROWS {
                    write_batch(writer, schema, texts, ints)?;
                    *rows = 0;
                }
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Writes what is left and closes the table; returns the writer (whose
    /// own end, a compressed stream's, is the caller's).
    pub(crate) fn finish(mut self) -> anyhow::Result<W> {
        if !self.line.is_empty() {
            bail!("the query's output ended in the middle of a line");
        }
        match &mut self.out {
            Out::Csv(w) => w.flush().context("writing --out")?,
            Out::Parquet {
                writer,
                schema,
                texts,
                ints,
                rows,
            } => {
                if *rows > 0 {
                    write_batch(writer, schema, texts, ints)?;
                }
            }
        }
        let mut inner = match self.out {
            Out::Csv(w) => w
                .into_inner()
                .map_err(|e| anyhow::anyhow!("writing --out: {}", e.error()))?,
            Out::Parquet { writer, .. } => {
                writer.into_inner().context("finishing the Parquet file")?
            }
        };
        inner.flush().context("writing --out")?;
        Ok(inner)
    }
}

type Builders = (Vec<Option<StringBuilder>>, Vec<Option<Int64Builder>>);

fn builders(columns: &[Column]) -> Builders {
    columns
        .iter()
        .map(|c| match c.kind {
            Kind::Int => (None, Some(Int64Builder::with_capacity(ROW_GROUP_ROWS))),
            _ => (Some(StringBuilder::new()), None),
        })
        .unzip()
}

fn write_batch<W: Write + Send>(
    writer: &mut ArrowWriter<W>,
    schema: &SchemaRef,
    texts: &mut [Option<StringBuilder>],
    ints: &mut [Option<Int64Builder>],
) -> anyhow::Result<()> {
    let arrays: Vec<ArrayRef> = texts
        .iter_mut()
        .zip(ints.iter_mut())
        .map(|(t, i)| match (t, i) {
            (Some(t), _) => Arc::new(t.finish()) as ArrayRef,
            (_, Some(i)) => Arc::new(i.finish()) as ArrayRef,
            (None, None) => unreachable!("every column has a builder"),
        })
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays).context("building a row group")?;
    writer.write(&batch).context("writing the Parquet file")?;
    writer.flush().context("writing the Parquet file")?;
    Ok(())
}

impl<W: Write + Send> Write for TableSink<W> {
    /// Takes JSON Lines: every whole line is one finding, one row.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut rest = buf;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            self.line.extend_from_slice(&rest[..nl]);
            rest = &rest[nl + 1..];
            let line = std::mem::take(&mut self.line);
            if !line.iter().all(u8::is_ascii_whitespace) {
                let doc: Value = serde_json::from_slice(&line).map_err(std::io::Error::other)?;
                self.row(&doc).map_err(std::io::Error::other)?;
            }
            self.line = line;
            self.line.clear();
        }
        self.line.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A `Write` into a shared buffer (the sink owns its writer).
    #[derive(Clone, Default)]
    struct Shared(Arc<std::sync::Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn asff_csv_rows_hold_state_and_split_lines_anywhere() {
        let buf = Shared::default();
        let mut sink = TableSink::new(TableFormat::Csv, false, buf.clone()).unwrap();
        let a = json!({"Id": "a", "ProductArn": "arn:p", "Workflow": {"Status": "NEW"},
            "Note": {"Text": "x, \"y\"", "UpdatedBy": "me"}, "Severity": {"Label": "LOW", "Normalized": 1},
            "Types": ["T/1"], "UserDefinedFields": {"k": "v"}, "Confidence": 5});
        let b = json!({"Id": "b", "ProductArn": "arn:p"});
        let text = format!("{a}\n{b}\n");
        // Fed in pieces that cut lines and UTF-8 nowhere in particular.
        for chunk in text.as_bytes().chunks(7) {
            sink.write_all(chunk).unwrap();
        }
        assert_eq!(sink.rows, 2);
        sink.finish().unwrap();
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[0].starts_with("Id,ProductArn,AwsAccountId,Region,Workflow.Status,Note.Text")
        );
        assert!(
            lines[1].starts_with(
                r#"a,arn:p,,,NEW,"x, ""y""",me,LOW,1,,5,,"[""T/1""]","{""k"":""v""}""#
            ),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].starts_with("b,arn:p,,,,,,,,,,,[],{},"),
            "{}",
            lines[2]
        );
    }

    #[test]
    fn ocsf_parquet_has_typed_columns_and_row_groups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.parquet");
        let file = std::fs::File::create(&path).unwrap();
        let mut sink = TableSink::new(TableFormat::Parquet, true, file).unwrap();
        let n = ROW_GROUP_ROWS + 10;
        for i in 0..n {
            let d = json!({"finding_info": {"uid": format!("f{i}")},
                "metadata": {"uid": format!("m{i}"), "product": {"uid": "arn:p2"}},
                "cloud": {"account": {"uid": "1"}}, "status_id": 1, "comment": if i % 2 == 0 { json!("c") } else { json!(null) }});
            writeln!(sink, "{d}").unwrap();
        }
        sink.finish().unwrap();
        let reader =
            parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&path).unwrap())
                .unwrap();
        use parquet::file::reader::FileReader;
        let meta = reader.metadata();
        assert_eq!(meta.num_row_groups(), 2);
        assert_eq!(meta.file_metadata().num_rows() as usize, n);
        let schema = meta.file_metadata().schema_descr();
        assert_eq!(schema.column(0).path().string(), "finding_info.uid");
        assert_eq!(
            schema.column(5).physical_type(),
            parquet::basic::Type::INT64
        );
    }
}
