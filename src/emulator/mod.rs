//! A local, wire-faithful emulator of the AWS Security Hub operations the
//! triage engine needs (`BatchUpdateFindings`, `BatchImportFindings`,
//! `GetFindings`, and for the new Security Hub `BatchUpdateFindingsV2`,
//! `GetFindingsV2`, `DescribeSecurityHubV2`; see `v2`), for tests and demos.
//!
//! It speaks restJson1 over HTTP/1.1 exactly as docs/service-facts.md §1–§6 describes, so
//! the real `aws-sdk-securityhub` client and boto3 can talk to it unchanged
//! (point them at `http://127.0.0.1:PORT`). It throttles like the service,
//! injects faults on demand (reproducibly, from a seed), detects real
//! concurrent updates of one finding, and exposes counters for assertions
//! under `/_emulator/` (a prefix the real API never uses).
//!
//! It does not verify SigV4 signatures (it only reads the access key and
//! Region from the `Authorization` header), does not implement the other
//! Security Hub operations, and keeps everything in memory.
//!
//! Layout: [`EmulatorState`] (store, counters, live configuration; no HTTP
//! types) is shared by [`serve`] (the hyper service) and by tests, which can
//! seed and inspect it directly. [`LocalEmulator`] starts it on 127.0.0.1
//! for the demo, the tests and the benches.

mod admin;
mod asff;
pub mod cli;
mod config;
mod counters;
mod faults;
mod filters;
mod harness;
mod http;
mod ops;
mod rng;
mod state;
mod store;
mod synth;
mod throttle;
mod v2;
mod validate;

pub use config::Bucket;
pub use config::DuplicatePolicy;
pub use config::EmulatorConfig;
pub use config::FaultConfig;
pub use config::Paging;
pub use config::RegionScope;
pub use config::Semantics;
pub use config::ThrottleCode;
pub use config::ThrottleConfig;
pub use config::UdfPolicy;
pub use counters::{Counters, Operation};
pub use harness::LocalEmulator;
pub(crate) use http::ConnectionLimits;
pub use http::serve;
pub(crate) use http::serve_with;
pub use state::EmulatorState;
pub use synth::SyntheticSpec;
pub use synth::write_keys_csv;
pub use v2::ConflictScope;
pub use v2::OcsfKey;
pub use v2::V2Config;
pub use v2::V2Faults;
pub use v2::V2Semantics;
pub(crate) use v2::load_ocsf_seed_file;
