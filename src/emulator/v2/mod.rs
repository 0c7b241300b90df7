//! The new Security Hub (V2, OCSF) half of the emulator:
//! `BatchUpdateFindingsV2` (`PATCH /findingsv2/batchupdatev2`),
//! `GetFindingsV2` (`POST /findingsv2`) and `DescribeSecurityHubV2`
//! (`GET /hubv2`) over an OCSF finding store kept apart from the ASFF one.
//!
//! It shares the V1 machinery: the HTTP front and its check order, SigV4
//! credential-scope parsing, token-bucket throttling per (access key,
//! Region, operation) (answering `ThrottlingException`), the seeded fault
//! generator, counters and the admin API (`/_emulator/v2/...`).

mod admin;
pub(super) mod cli;
mod config;
mod filters;
mod ocsf;
mod ops;
mod seed;
pub(crate) use seed::load_ocsf_seed_file;
mod state;
mod store;
mod synth;
mod validate;

pub(crate) use admin::handle as admin_handle;
pub use config::ConflictScope;
pub use config::V2Config;
pub use config::V2Faults;
pub use config::V2Semantics;
pub(crate) use config::V2Throttle;
pub(crate) use ops::{batch_update_v2, describe_hub_v2, get_findings_v2};
pub use state::OcsfKey;
pub(crate) use store::V2Store;
pub(crate) use synth::write_ocsf_samples;
