#![no_main]
//! Fuzzes detection and decompression: no extension, no --format, so the
//! magic bytes and the content decide (gzip, zstd, Parquet, JSON, CSV).

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(init: common::init(), |data: &[u8]| {
    common::drive("fuzz-input", data, None);
});
