#![no_main]
//! Fuzzes the json reader with arbitrary bytes.

use libfuzzer_sys::fuzz_target;
use sechub_triage::source::Format;

mod common;

fuzz_target!(init: common::init(), |data: &[u8]| {
    common::drive("fuzz.json", data, Some(Format::Json));
});
