#![no_main]
//! Fuzzes the parquet reader with arbitrary bytes.

use libfuzzer_sys::fuzz_target;
use sechub_triage::source::Format;

mod common;

fuzz_target!(init: common::init(), |data: &[u8]| {
    common::drive("fuzz.parquet", data, Some(Format::Parquet));
});
