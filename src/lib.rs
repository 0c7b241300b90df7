//! sechub-triage: bulk triage for AWS Security Hub.
pub mod cli;
pub mod engine;
pub mod events;
pub mod limits;
pub mod reporting;
pub mod retry;
pub mod submission;
pub mod arn;
pub mod model;
pub mod decision;
pub mod source;
pub mod emulator;
