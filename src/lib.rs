//! sechub-triage: bulk triage for AWS Security Hub.
pub mod cli;
pub mod arn;
pub mod model;
pub mod source;
pub mod emulator;
