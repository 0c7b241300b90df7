//! The Parquet reader: flat identifier columns, or the nested struct
//! columns of Security Lake's OCSF tables (`finding_info.uid`,
//! `metadata.product.uid`, the older `finding.uid`).
//!
//! Reads record batches as a stream through arrow with a projection of just
//! the identifier leaf columns, so neither the rest of a wide OCSF table nor
//! a whole row group's other columns are decoded. String, large-string,
//! string-view, binary and dictionary-encoded columns are accepted. Positions
//! are reported as `row group G, row R` (both 1-based, like every position
//! this crate reports). It does not read list-nested values (a finding per
//! list element): a Parquet row is one finding.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BinaryViewArray, LargeBinaryArray, LargeStringArray,
    StringArray, StringViewArray,
};
use arrow::datatypes::{DataType, Field, Fields};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::file::reader::ChunkReader;

use super::error::{SourceError, SourceErrorKind};
use super::fields::{self, FieldCell, FieldPlan};
use super::ident::{self, Cell, Ident, IdentColumns};
use super::input::InputInfo;
use super::{RecordIter, SourceOptions};
use crate::model::{Location, SourceItem};

/// Rows per decoded batch: large enough to amortise per-batch work, small
/// enough that two string columns of it stay well under a few megabytes.
const BATCH_ROWS: usize = 8192;

/// Opens a Parquet input (a file, or bytes buffered from a pipe).
pub(crate) fn open<T: ChunkReader + 'static>(
    input: T,
    info: InputInfo,
    opts: &SourceOptions,
) -> Result<RecordIter, SourceError> {
    let name = info.name.clone();
    guarded(|| open_unguarded(input, info, opts))
        .unwrap_or_else(|panic| Err(decoder_panic(&name, &panic, None)))
}

/// Runs parquet-crate code, turning a panic into `Err(message)`. parquet 60
/// panics on some corrupt files (found by fuzzing: a division by zero in its
/// byte-array decoder, an assertion on negative column offsets in the
/// footer); a corrupt input must be an error, never a crash. The reader is
/// not used again after a panic.
fn guarded<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    quiet_panics_hook();
    GUARDED.with(|g| g.set(g.get() + 1));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(g.get() - 1));
    result.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown failure".into())
    })
}

thread_local! {
    /// How deep this thread is inside [`guarded`]: a panic there is caught
    /// and reported as a clean error, so the panic hook must not print it.
    static GUARDED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Installs (once) a panic hook that stays silent for panics [`guarded`]
/// catches, and hands every other panic to the hook that was there before
/// (so real bugs still print their message and backtrace).
fn quiet_panics_hook() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if GUARDED.with(|g| g.get()) == 0 {
                previous(info);
            }
        }));
    });
}

fn decoder_panic(name: &Arc<str>, message: &str, group: Option<usize>) -> SourceError {
    let err = SourceError::new(
        name,
        SourceErrorKind::Malformed {
            format: "Parquet",
            detail: format!("the file is corrupt (the Parquet decoder failed: {message})"),
        },
    );
    match group {
        Some(g) => err.at(format!("row group {}", g + 1)),
        None => err,
    }
}

fn open_unguarded<T: ChunkReader + 'static>(
    input: T,
    info: InputInfo,
    opts: &SourceOptions,
) -> Result<RecordIter, SourceError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(input).map_err(|e| {
        SourceError::new(
            &info.name,
            SourceErrorKind::Malformed {
                format: "Parquet",
                detail: "cannot read the file footer: the file is truncated or corrupt".into(),
            },
        )
        .caused_by(e)
    })?;

    // Candidate columns are the non-repeated leaves, by dotted path.
    let descr = builder.parquet_schema();
    let leaves: Vec<(usize, String)> = descr
        .columns()
        .iter()
        .enumerate()
        .filter(|(_, c)| c.max_rep_level() == 0)
        .map(|(i, c)| (i, c.path().string()))
        .collect();
    let names: Vec<String> = leaves.iter().map(|(_, n)| n.clone()).collect();
    let column = |which: Ident, user: Option<&str>| {
        ident::find_column(&names, which, user).ok_or_else(|| {
            SourceError::new(&info.name, ident::missing_column(which, &names, user, ""))
        })
    };
    let id_at = column(Ident::Id, opts.id_column.as_deref())?;
    let arn_at = column(Ident::ProductArn, opts.product_arn_column.as_deref())?;
    let (id_leaf, id_name) = leaves[id_at].clone();
    let (arn_leaf, arn_name) = leaves[arn_at].clone();

    let id_path = split_path(descr, id_leaf);
    let arn_path = split_path(descr, arn_leaf);
    for (path, name) in [(&id_path, &id_name), (&arn_path, &arn_name)] {
        let data_type = leaf_type(builder.schema().fields(), path);
        if !data_type.as_ref().is_some_and(is_text) {
            let shown =
                data_type.map_or_else(|| "an unsupported type".to_owned(), |t| format!("type {t}"));
            return Err(SourceError::new(
                &info.name,
                SourceErrorKind::Malformed {
                    format: "Parquet",
                    detail: format!("column {name} has {shown}, but identifiers must be text"),
                },
            ));
        }
    }

    // Decision and state columns: only text and integer leaves can be
    // read; others are left out of the plan by giving them no name.
    let readable: Vec<String> = leaves
        .iter()
        .map(|(leaf, name)| {
            let t = leaf_type(builder.schema().fields(), &split_path(descr, *leaf));
            if t.as_ref().is_some_and(|t| is_text(t) || is_int(t)) {
                name.clone()
            } else {
                String::new()
            }
        })
        .collect();
    let fields = fields::plan(
        &readable,
        &[id_at, arn_at],
        fields::is_ocsf_id(&id_name),
        &opts.row_decisions,
    )
    .map_err(|kind| SourceError::new(&info.name, kind))?;
    super::check_decision(&info.name, &fields, opts)?;
    super::announce_decision_columns(&info.name, &fields, opts);
    let field_paths: Vec<Vec<String>> = fields
        .indices()
        .iter()
        .map(|&i| split_path(descr, leaves[i].0))
        .collect();

    let row_groups: Vec<u64> = builder
        .metadata()
        .row_groups()
        .iter()
        .map(|rg| u64::try_from(rg.num_rows()).unwrap_or(0))
        .collect();
    let mut projected = vec![id_leaf, arn_leaf];
    projected.extend(fields.indices().iter().map(|&i| leaves[i].0));
    let mask = ProjectionMask::leaves(descr, projected);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| malformed(&info, e, None))?;
    let checker = ident::Checker::new(info.any_arn);
    Ok(Box::new(ParquetRecords {
        checker,
        reader,
        cols: IdentColumns {
            id: id_name.into(),
            product_arn: arn_name.into(),
        },
        info,
        id_path,
        arn_path,
        fields,
        field_paths,
        batch: None,
        row_groups,
        group: 0,
        in_group: 0,
        row: 0,
        done: false,
    }))
}

/// The path of a leaf as its component names (which are the arrow field
/// names of the nested structs).
fn split_path(descr: &parquet::schema::types::SchemaDescriptor, leaf: usize) -> Vec<String> {
    descr.column(leaf).path().parts().to_vec()
}

/// The arrow type of the leaf at `path`, if every step is a struct field.
fn leaf_type(fields: &Fields, path: &[String]) -> Option<DataType> {
    let (first, rest) = path.split_first()?;
    let field: &Arc<Field> = fields.iter().find(|f| f.name() == first)?;
    if rest.is_empty() {
        return Some(field.data_type().clone());
    }
    match field.data_type() {
        DataType::Struct(children) => leaf_type(children, rest),
        _ => None,
    }
}

fn is_int(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
    )
}

fn is_text(t: &DataType) -> bool {
    match t {
        DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View
        | DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView => true,
        DataType::Dictionary(_, values) => is_text(values),
        _ => false,
    }
}

fn malformed(
    info: &InputInfo,
    e: impl Into<super::error::BoxError>,
    group: Option<usize>,
) -> SourceError {
    let err = SourceError::new(
        &info.name,
        SourceErrorKind::Malformed {
            format: "Parquet",
            detail: "cannot decode the data: the file is truncated or corrupt".into(),
        },
    )
    .caused_by(e);
    match group {
        Some(g) => err.at(format!("row group {}", g + 1)),
        None => err,
    }
}

/// One identifier column of a decoded batch.
enum TextColumn {
    Utf8(StringArray),
    Large(LargeStringArray),
    View(StringViewArray),
    Binary(BinaryArray),
    LargeBinary(LargeBinaryArray),
    BinaryView(BinaryViewArray),
    /// Dictionary-encoded: keys (already resolved to indices) into values.
    Dict {
        keys: Vec<usize>,
        array: ArrayRef,
        values: Box<TextColumn>,
    },
}

impl TextColumn {
    fn new(array: &ArrayRef) -> Option<TextColumn> {
        Some(match array.data_type() {
            DataType::Utf8 => TextColumn::Utf8(array.as_string::<i32>().clone()),
            DataType::LargeUtf8 => TextColumn::Large(array.as_string::<i64>().clone()),
            DataType::Utf8View => TextColumn::View(array.as_string_view().clone()),
            DataType::Binary => TextColumn::Binary(array.as_binary::<i32>().clone()),
            DataType::LargeBinary => TextColumn::LargeBinary(array.as_binary::<i64>().clone()),
            DataType::BinaryView => TextColumn::BinaryView(array.as_binary_view().clone()),
            DataType::Dictionary(..) => {
                let dict = array.as_any_dictionary_opt()?;
                TextColumn::Dict {
                    keys: dict.normalized_keys(),
                    values: Box::new(TextColumn::new(dict.values())?),
                    array: array.clone(),
                }
            }
            _ => return None,
        })
    }

    fn get(&self, i: usize) -> Cell<'_> {
        match self {
            TextColumn::Utf8(a) if a.is_valid(i) => Cell::Text(a.value(i)),
            TextColumn::Large(a) if a.is_valid(i) => Cell::Text(a.value(i)),
            TextColumn::View(a) if a.is_valid(i) => Cell::Text(a.value(i)),
            TextColumn::Binary(a) if a.is_valid(i) => Cell::from_bytes(a.value(i)),
            TextColumn::LargeBinary(a) if a.is_valid(i) => Cell::from_bytes(a.value(i)),
            TextColumn::BinaryView(a) if a.is_valid(i) => Cell::from_bytes(a.value(i)),
            TextColumn::Dict {
                keys,
                array,
                values,
            } if array.is_valid(i) => keys.get(i).map_or(Cell::Missing, |&k| values.get(k)),
            _ => Cell::Missing,
        }
    }
}

/// An identifier column located in a batch, with the struct arrays above
/// it: a null `finding_info` makes its `uid` missing whatever the child says.
struct Located {
    parents: Vec<ArrayRef>,
    leaf: TextColumn,
}

/// Finds the leaf array at `path` and the struct arrays above it that have
/// nulls (only those need a check per row).
fn locate(batch: &RecordBatch, path: &[String]) -> Option<(Vec<ArrayRef>, ArrayRef)> {
    let (first, rest) = path.split_first()?;
    let mut array = batch.column_by_name(first)?.clone();
    let mut parents = Vec::new();
    for part in rest {
        let child = array.as_struct_opt()?.column_by_name(part)?.clone();
        parents.push(std::mem::replace(&mut array, child));
    }
    Some((
        parents.into_iter().filter(|p| p.null_count() > 0).collect(),
        array,
    ))
}

impl Located {
    fn find(batch: &RecordBatch, path: &[String]) -> Option<Located> {
        let (parents, array) = locate(batch, path)?;
        Some(Located {
            leaf: TextColumn::new(&array)?,
            parents,
        })
    }

    fn get(&self, i: usize) -> Cell<'_> {
        if self.parents.iter().any(|p| p.is_null(i)) {
            return Cell::Missing;
        }
        self.leaf.get(i)
    }
}

/// A decision or state column located in a batch: text or integers.
enum FieldColumn {
    Text(Located),
    Int {
        parents: Vec<ArrayRef>,
        array: ArrayRef,
    },
    /// Not in this batch or of another type: every cell is missing.
    Absent,
}

impl FieldColumn {
    fn find(batch: &RecordBatch, path: &[String]) -> FieldColumn {
        let Some((parents, array)) = locate(batch, path) else {
            return FieldColumn::Absent;
        };
        if is_int(array.data_type()) {
            return FieldColumn::Int { parents, array };
        }
        match TextColumn::new(&array) {
            Some(leaf) => FieldColumn::Text(Located { parents, leaf }),
            None => FieldColumn::Absent,
        }
    }

    fn get(&self, i: usize) -> FieldCell<'_> {
        use arrow::datatypes::{
            Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type,
        };
        match self {
            FieldColumn::Text(located) => match located.get(i) {
                Cell::Text(s) => FieldCell::Text(s),
                Cell::Missing => FieldCell::Missing,
                Cell::NotUtf8 { .. } => FieldCell::Unusable("not valid UTF-8"),
                Cell::NotText(what) => FieldCell::Unusable(what),
            },
            FieldColumn::Int { parents, array } => {
                if parents.iter().any(|p| p.is_null(i)) || array.is_null(i) {
                    return FieldCell::Missing;
                }
                let value = match array.data_type() {
                    DataType::Int8 => i64::from(array.as_primitive::<Int8Type>().value(i)),
                    DataType::Int16 => i64::from(array.as_primitive::<Int16Type>().value(i)),
                    DataType::Int32 => i64::from(array.as_primitive::<Int32Type>().value(i)),
                    DataType::Int64 => array.as_primitive::<Int64Type>().value(i),
                    DataType::UInt8 => i64::from(array.as_primitive::<UInt8Type>().value(i)),
                    DataType::UInt16 => i64::from(array.as_primitive::<UInt16Type>().value(i)),
                    DataType::UInt32 => i64::from(array.as_primitive::<UInt32Type>().value(i)),
                    _ => return FieldCell::Missing,
                };
                FieldCell::Int(value)
            }
            FieldColumn::Absent => FieldCell::Missing,
        }
    }
}

struct Batch {
    id: Located,
    arn: Located,
    fields: Vec<FieldColumn>,
    len: usize,
    next: usize,
}

struct ParquetRecords {
    reader: ParquetRecordBatchReader,
    info: InputInfo,
    cols: IdentColumns,
    id_path: Vec<String>,
    arn_path: Vec<String>,
    /// Decision and state columns, and their paths.
    fields: FieldPlan,
    field_paths: Vec<Vec<String>>,
    batch: Option<Batch>,
    checker: ident::Checker,
    /// Rows per row group, to turn a running row number into a position.
    row_groups: Vec<u64>,
    group: usize,
    in_group: u64,
    row: u64,
    done: bool,
}

impl ParquetRecords {
    fn next_batch(&mut self) -> Option<Result<(), SourceError>> {
        match self.reader.next()? {
            Ok(batch) => {
                let id = Located::find(&batch, &self.id_path);
                let arn = Located::find(&batch, &self.arn_path);
                let (Some(id), Some(arn)) = (id, arn) else {
                    return Some(Err(malformed(
                        &self.info,
                        "projected identifier column missing from the decoded batch",
                        Some(self.group),
                    )));
                };
                let fields = self
                    .field_paths
                    .iter()
                    .map(|p| FieldColumn::find(&batch, p))
                    .collect();
                self.batch = Some(Batch {
                    id,
                    arn,
                    fields,
                    len: batch.num_rows(),
                    next: 0,
                });
                Some(Ok(()))
            }
            Err(e) => Some(Err(malformed(&self.info, e, Some(self.group)))),
        }
    }
}

impl Iterator for ParquetRecords {
    type Item = Result<SourceItem, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match guarded(|| self.next_unguarded()) {
            Ok(item) => item,
            Err(panic) => {
                self.done = true;
                Some(Err(decoder_panic(
                    &self.info.name,
                    &panic,
                    Some(self.group),
                )))
            }
        }
    }
}

impl ParquetRecords {
    fn next_unguarded(&mut self) -> Option<Result<SourceItem, SourceError>> {
        loop {
            if let Some(batch) = &self.batch
                && batch.next < batch.len
            {
                break;
            }
            self.batch = None;
            match self.next_batch() {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                None => {
                    self.done = true;
                    return None;
                }
            }
        }
        let batch = self.batch.as_mut()?;
        let i = batch.next;
        batch.next += 1;
        // Batches may straddle row groups; advance the position by hand.
        while self.group < self.row_groups.len() && self.in_group >= self.row_groups[self.group] {
            self.group += 1;
            self.in_group = 0;
        }
        self.in_group += 1;
        self.row += 1;
        let location = Location {
            file: self.info.name.clone(),
            row: self.row,
            detail: Some(ident::row_group_detail(
                self.group as u64 + 1,
                self.in_group,
            )),
        };
        let batch = self.batch.as_ref()?;
        let item = self
            .checker
            .check(batch.id.get(i), batch.arn.get(i), &self.cols, location);
        match item {
            SourceItem::Record(record) if !batch.fields.is_empty() => {
                let cells: Vec<FieldCell<'_>> = batch.fields.iter().map(|f| f.get(i)).collect();
                Some(Ok(self.fields.fill(record, &cells)))
            }
            other => Some(Ok(other)),
        }
    }
}
