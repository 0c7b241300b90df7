//! Shared driver: read everything, and check the reader's promises.

use sechub_triage::arn::parse_product_arn;
use sechub_triage::model::SourceItem;
use sechub_triage::source::{self, Format, SourceOptions};

/// Replaces libfuzzer-sys's aborting panic hook. The Parquet reader catches
/// the panics of the parquet crate on corrupt files (and turns them into
/// errors), which the aborting hook would report as crashes. A panic that
/// escapes the readers still unwinds into libfuzzer-sys, which aborts, so
/// it is still found. Set FUZZ_PANIC_MESSAGES=1 to see panic messages.
pub fn init() {
    if std::env::var_os("FUZZ_PANIC_MESSAGES").is_none() {
        std::panic::set_hook(Box::new(|_| {}));
    } else {
        let _ = std::panic::take_hook();
    }
}

/// Reads `data` as one input and checks the invariants every reader keeps:
/// no panic, row numbers 1, 2, 3... per file, nothing after a fatal error,
/// and records that pass the identifier rules.
pub fn drive(name: &str, data: &[u8], format: Option<Format>) {
    let opts = SourceOptions {
        format,
        ..Default::default()
    };
    let Ok(src) = source::open_reader(name, std::io::Cursor::new(data.to_vec()), &opts) else {
        return;
    };
    let mut expected_row = 1;
    let mut failed = false;
    for item in src {
        assert!(!failed, "item after a fatal error");
        match item {
            Ok(SourceItem::Record(r)) => {
                assert_eq!(r.location.row, expected_row);
                assert!(!r.key.id.trim().is_empty());
                assert!(r.key.id.chars().count() <= 512);
                // Without --region every accepted ARN parses, in v1 form.
                let arn = parse_product_arn(&r.key.product_arn).expect("accepted ARN parses");
                assert!(!arn.resource.starts_with("productv2/"));
                assert!((12..=2048).contains(&r.key.product_arn.chars().count()));
                expected_row += 1;
            }
            Ok(SourceItem::Invalid(i)) => {
                assert_eq!(i.location.row, expected_row);
                assert!(!i.reason.is_empty());
                expected_row += 1;
            }
            Err(e) => {
                // Display must work and name the input.
                assert!(e.to_string().starts_with(name));
                failed = true;
            }
        }
    }
}
