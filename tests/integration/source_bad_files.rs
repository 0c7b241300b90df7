//! Regression corpus: every file in `tests/fixtures/bad/` (hand-made broken
//! inputs and inputs the fuzzers found) is read to the end. None may panic,
//! every reader invariant must hold, and the hand-made ones must end the way
//! the table below says.

use std::path::Path;

use sechub_triage::model::SourceItem;
use sechub_triage::source::{self, InputSpec, SourceOptions};

/// How reading a file ended.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    records: usize,
    invalid: usize,
    /// The fatal error, from `open` or as the last item.
    fatal: Option<String>,
}

fn read(path: &Path) -> Outcome {
    let name = path.display().to_string();
    let mut out = Outcome::default();
    let src = match source::open(
        &[InputSpec::Path(path.to_path_buf())],
        &SourceOptions::default(),
    ) {
        Ok(src) => src,
        Err(e) => {
            out.fatal = Some(e.to_string());
            return out;
        }
    };
    for (expected_row, item) in (1..).zip(src) {
        assert!(out.fatal.is_none(), "{name}: an item after the fatal error");
        match item {
            Ok(SourceItem::Record(r)) => {
                assert_eq!(r.location.row, expected_row, "{name}");
                assert!(
                    !r.key.id.trim().is_empty() && r.key.id.chars().count() <= 512,
                    "{name}"
                );
                out.records += 1;
            }
            Ok(SourceItem::Invalid(i)) => {
                assert_eq!(i.location.row, expected_row, "{name}");
                assert!(!i.reason.is_empty(), "{name}");
                out.invalid += 1;
            }
            Err(e) => out.fatal = Some(e.to_string()),
        }
    }
    if let Some(msg) = &out.fatal {
        assert!(
            msg.starts_with(&name),
            "{name}: the error must name the file: {msg}"
        );
    }
    out
}

/// What each hand-made file (and each fuzzer find worth pinning) must
/// produce: (records, invalid, fatal message part); `usize::MAX` is "any".
fn expected(file: &str) -> Option<(usize, usize, Option<&'static str>)> {
    Some(match file {
        "unterminated-quote.csv" => (
            1,
            0,
            Some("unterminated quote in the record starting on line 3"),
        ),
        "non-utf8-id.csv" => (0, 1, None),
        "short-and-long-rows.csv" => (1, 1, None),
        "no-identifier-columns.csv" => (
            0,
            0,
            Some("no finding Id column (columns found: Title, Severity)"),
        ),
        "header-only-bom.csv" => (0, 0, None),
        // csv-core reads a quote inside an unquoted field literally.
        "quote-in-unquoted-field.csv" => (1, 0, None),
        "lone-cr-lines.csv" => (2, 0, None),
        "truncated.json" => (1, 0, Some("truncated")),
        "unbalanced-brackets.jsonl" => (1, 1, None),
        "garbage-after-value.json" => (
            1,
            0,
            Some("found 'x' where a JSON object or array was expected"),
        ),
        // serde_json's recursion limit turns this into one invalid element.
        "deeply-nested.json" => (0, 1, None),
        "findings-not-array.json" => (0, 1, None),
        "event-findings-not-array.json" => (0, 1, None),
        "lone-surrogate.jsonl" => (0, 1, None),
        "truncated.csv.gz" => (usize::MAX, 0, Some("gzip data is truncated or corrupt")),
        "gzip-trailing-garbage.jsonl.gz" => {
            (usize::MAX, 0, Some("gzip data is truncated or corrupt"))
        }
        "fake-parquet.parquet" => (0, 0, Some("truncated or corrupt")),
        "truncated-magic.parquet" => (0, 0, Some("not a Parquet file")),
        // Fuzzer find: only the resource field's productv2/ is converted.
        "productv2-in-account.csv" => (1, 0, None),
        // Fuzzer finds: the parquet crate panics on these (a division by
        // zero while decoding, an assertion on negative column offsets in
        // the footer); the reader turns the panic into a fatal error.
        "fuzz-parquet-divide-by-zero.parquet" => {
            (usize::MAX, usize::MAX, Some("the Parquet decoder failed"))
        }
        "fuzz-parquet-negative-offset.bin" => (0, 0, Some("the Parquet decoder failed")),
        _ => return None,
    })
}

#[test]
fn bad_files_never_panic_and_end_as_expected() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    assert!(entries.len() >= 21, "the corpus is missing files");
    let mut checked = 0;
    for path in entries {
        let outcome = read(&path);
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some((records, invalid, fatal)) = expected(&file) else {
            continue; // a fuzzer find: not panicking is the point
        };
        checked += 1;
        if records != usize::MAX {
            assert_eq!(outcome.records, records, "{file}: {outcome:?}");
        }
        if invalid != usize::MAX {
            assert_eq!(outcome.invalid, invalid, "{file}: {outcome:?}");
        }
        match (fatal, &outcome.fatal) {
            (None, None) => {}
            (Some(want), Some(got)) => assert!(got.contains(want), "{file}: {got}"),
            _ => panic!("{file}: expected fatal {fatal:?}, got {outcome:?}"),
        }
    }
    assert_eq!(checked, 21);
}
