//! The update operation as a seam: everything that differs between
//! Security Hub's update operations (`BatchUpdateFindings` today,
//! `BatchUpdateFindingsV2` next) is behind [`UpdateOperation`], so that the
//! dispatcher, the chunker, the retry queue and stopping drive any of them
//! without knowing which.
//!
//! What an operation owns:
//! - its **key** (how a request names a finding) and its **decision** (what
//!   a request sets), as associated types;
//! - how many findings one request may carry, and which keys may not share
//!   a request ([`UpdateOperation::key_kind`]);
//! - **building and sending** one request and reading its per-entry results
//!   back ([`UpdateOperation::send`], implemented in `crate::submission`,
//!   the only module that calls the SDK);
//! - its **table of error codes** ([`UpdateOperation::classify_entry`],
//!   [`UpdateOperation::classify_call`]); the tables themselves live in
//!   `crate::retry`, which also owns what is done about each class;
//! - the two edges where the engine meets the rest of the program, which
//!   today speaks `BatchUpdateFindings`' terms: [`UpdateOperation::admit`]
//!   (a record's identifiers and effective decision, as the intake made
//!   them, become the operation's key and decision) and
//!   [`UpdateOperation::report`] (what the results record once a finding's
//!   outcome is final).

use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;

use crate::decision::Decision;
use crate::model::{CurrentState, FindingKey};
use crate::retry::{CallDisposition, CallFailure, EntryDisposition};
use crate::submission::{BatchResult, CallError};

/// One Security Hub update operation, as the engine drives it.
pub trait UpdateOperation: Send + Sync + 'static {
    /// How a request names one finding.
    type Key: Clone + Eq + Hash + Send + Sync + 'static;
    /// What one request sets on every finding it names. Findings are
    /// grouped by equal decisions: one request carries one decision.
    type Decision: Eq + Hash + Send + Sync + 'static;

    /// The operation's name, for logs (`BatchUpdateFindings`).
    const NAME: &'static str;
    /// The most findings one request may carry.
    const MAX_CHUNK: usize;

    /// Sends one request setting `decision` on `keys` in `region`, and
    /// reads the per-entry results back.
    fn send(
        &self,
        region: &str,
        decision: &Self::Decision,
        keys: &[Self::Key],
    ) -> impl Future<Output = Result<BatchResult<Self::Key>, CallError>> + Send;

    /// The operation's table of per-entry error codes.
    fn classify_entry(code: &str) -> EntryDisposition;

    /// Classifies a request that failed as a whole (the shared table of
    /// throttling, access and transient failures unless overridden).
    fn classify_call(failure: &CallFailure) -> CallDisposition {
        crate::retry::classify_call(failure)
    }

    /// Keys of different kinds never share a request (for
    /// `BatchUpdateFindingsV2`: `MetadataUids` versus identifier triples).
    /// Chunks are cut within one decision and one kind.
    fn key_kind(_key: &Self::Key) -> u8 {
        0
    }

    /// A record's identifiers and effective decision, as the intake made
    /// them, in the operation's terms.
    fn admit(key: FindingKey, decision: Arc<Decision>) -> (Self::Key, Arc<Self::Decision>);

    /// What the results record about a finding whose outcome is final: its
    /// identifiers, and for one that was or may have been applied
    /// (`updated`: an updated finding, an `unknown` one, a `not_attempted`
    /// one a request carried) the decision applied and the values its
    /// fields held before (`current`: the recorded state, when the input
    /// had it).
    fn report(
        key: Self::Key,
        decision: Arc<Self::Decision>,
        current: Option<&CurrentState>,
        updated: bool,
    ) -> Reported;
}

/// What the results record about one finding (see [`UpdateOperation::report`]).
pub struct Reported {
    /// The finding's identifiers.
    pub key: FindingKey,
    /// The decision meant for the finding: applied if it was updated, still
    /// to apply otherwise (the `--failed` file carries it).
    pub applied: Option<Arc<Decision>>,
    /// For a finding that was or may have been applied, whose state the
    /// input recorded: what the applied fields held before.
    pub prior: Option<Arc<serde_json::Value>>,
}
