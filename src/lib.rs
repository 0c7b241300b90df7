//! sechub-triage: bulk triage for AWS Security Hub.
//!
//! The pipeline, one module per stage: [`source`] reads exported finding
//! lists as a stream; [`engine`] deduplicates, routes by Region, chunks and
//! dispatches them; [`limits`] paces each Region; [`retry`] decides what
//! happens after each failure; [`submission`] is the only place that calls
//! the AWS SDK; [`reporting`] records one outcome per input record; [`events`]
//! lets the CLI draw progress. [`decision`] parses and validates the triage
//! decision. [`emulator`] is a local Security Hub that speaks the real wire
//! protocol, used by the tests, the benchmarks and `sechub-triage demo`.

pub mod arn;
pub mod cli;
pub mod decision;
pub mod dedup;
pub mod diagnose;
pub mod emulator;
pub mod engine;
pub mod events;
pub mod journal;
pub mod limits;
pub mod model;
pub mod plan;
pub mod query;
pub mod reporting;
pub mod retry;
pub mod revert;
pub mod schema;
pub mod source;
pub mod submission;
