//! The versions of the machine-readable outputs, one per output, each
//! written as `schema_version` (their fields are documented in
//! `docs/outputs.md`).
//!
//! A version goes up when a field is removed, renamed, or changes type or
//! meaning; readers ignore fields they do not know, so a new field keeps
//! the version. `tests/integration/output_schemas.rs` holds the field list of each
//! version and fails on any difference, so that even an addition is a
//! decision: add the field to the current list (and `docs/outputs.md`), or
//! bump the version here and start a new list.

use serde::Serialize;

/// `--output json` of `update`, `run`, `revert` and `demo`: the run summary.
pub const SUMMARY: u32 = 1;
/// `plan --output json` (and `update --dry-run`, `revert --dry-run`).
pub const PLAN: u32 = 1;
/// The `--report` document.
pub const REPORT: u32 = 1;
/// The rows of `--results` and `--failed` files: the JSON Lines layout
/// carries it on every row; for both layouts the journal header
/// `<results>.journal.json` carries it too. Changing the columns also
/// needs [`crate::journal::VERSION`] bumped, since a resumed run reads
/// them back.
pub const RESULTS: u32 = 1;

/// `inner`'s JSON object with `schema_version` as its first member.
#[derive(Serialize)]
pub(crate) struct Versioned<'a, T: Serialize> {
    /// The output's version.
    pub schema_version: u32,
    /// The document.
    #[serde(flatten)]
    pub inner: &'a T,
}

/// `inner`'s JSON object with `schema_version` as its last member (results
/// rows: a resumed run recognises a row cut short by how it begins).
#[derive(Serialize)]
pub(crate) struct VersionedLast<'a, T: Serialize> {
    /// The document.
    #[serde(flatten)]
    pub inner: &'a T,
    /// The output's version.
    pub schema_version: u32,
}

impl<'a, T: Serialize> Versioned<'a, T> {
    /// `inner` as version `schema_version`.
    pub(crate) fn new(schema_version: u32, inner: &'a T) -> Self {
        Versioned {
            schema_version,
            inner,
        }
    }
}
