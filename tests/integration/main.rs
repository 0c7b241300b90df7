//! The one integration-test binary (`autotests = false` in Cargo.toml): every
//! module below was once its own test binary, and each one linked arrow,
//! parquet, the AWS SDK and hyper again. One binary links them once.
//!
//! Run one module with a name filter, e.g.
//! `cargo test --test integration engine::` or
//! `bash scripts/test.sh --test integration plan::`.

mod support;

mod boto3_wire;
mod campaign;
mod completions_man;
mod edges;
mod emulator;
mod emulator_v2;
mod engine;
mod export_formats_e2e;
mod failed_resume;
mod first_run_errors;
mod formats_e2e;
mod layouts_e2e;
mod markdown_plan;
mod nightly;
mod observability;
mod output_schemas;
mod plan;
mod query_e2e;
mod query_v2_e2e;
mod revert;
mod safety;
mod snapshots;
mod source_bad_files;
mod source_csv;
mod source_detect;
mod source_json;
mod source_parquet;
mod source_samples;
mod v2_e2e;
