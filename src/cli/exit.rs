//! Process exit statuses (documented in the README).

/// Every finding was updated (duplicates in the input count as updated once).
pub(crate) const SUCCESS: i32 = 0;
/// Usage, configuration or input error: nothing useful could run, or the
/// input could not be read to the end. Also: a resumed run refused because
/// its input or decision changed.
pub(crate) const USAGE: i32 = 1;
/// The run finished, but some findings were not updated (failed permanently
/// or rejected as invalid records). After `--resume`, counted over every
/// run on the journal.
pub(crate) const PARTIAL: i32 = 2;
/// The run was aborted: access denied or bad credentials (on the updates,
/// or on the query of a `--filters` selection). Findings not done are
/// recorded as `not_attempted`.
pub(crate) const ABORTED: i32 = 3;
/// Stopped early, resume later: SIGINT/SIGTERM or `--time-budget` ended the
/// run with work left. Findings read but not sent are recorded
/// `not_attempted` (code `Stopped`); running again with `--resume` sends
/// them and the rest of the input. Also: a `--filters` query the service
/// kept failing (throttled, 5xx, connection) past its retries.
pub(crate) const STOPPED: i32 = 4;
/// Another run holds the results file's lock: nothing was done.
pub(crate) const LOCKED: i32 = 5;
/// A local file could not be written or read back: the results journal,
/// its header or lock, the `--failed` file, the report, the copy of
/// standard input; a directory that cannot be written to, a full disk. The
/// flags were fine: the machine needs a person. Outcomes recorded before
/// the failure stay in the journal, so `--resume` carries on once it is
/// fixed.
pub(crate) const LOCAL_IO: i32 = 6;

/// A local file that could not be written (or read back): exit status
/// [`LOCAL_IO`], not [`USAGE`].
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub(crate) struct LocalIo {
    /// What could not be done, naming the file.
    pub what: String,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

impl LocalIo {
    /// `what` failed because of `source`.
    pub(crate) fn new(what: impl Into<String>, source: std::io::Error) -> Self {
        LocalIo {
            what: what.into(),
            source,
        }
    }
}

/// The new Security Hub is not enabled in a Region the run would send
/// `BatchUpdateFindingsV2` to (`DescribeSecurityHubV2` answered
/// `ResourceNotFoundException`): nothing was sent; exit status [`ABORTED`].
#[derive(Debug, thiserror::Error)]
#[error(
    "the new Security Hub is not enabled in {}: DescribeSecurityHubV2 answered \
     ResourceNotFoundException, so BatchUpdateFindingsV2 cannot update findings there; nothing \
     was sent (enable it, or use the Security Hub CSPM flags such as --workflow for \
     BatchUpdateFindings)", regions.join(", ")
)]
pub(crate) struct V2NotEnabled {
    /// The Regions where it is not enabled.
    pub regions: Vec<String>,
}

/// SIGINT or SIGTERM before the run started (during the plan pass or the
/// confirmation): nothing was sent; exit status [`STOPPED`].
#[derive(Debug, thiserror::Error)]
#[error(
    "{signal} during the plan pass: stopped before anything was sent; run the same command again"
)]
pub(crate) struct StoppedBeforeRun {
    /// `SIGINT` or `SIGTERM`.
    pub signal: &'static str,
}

/// The status for a run that ended in an error before or outside the
/// engine: [`LOCKED`] for a held lock, [`LOCAL_IO`] for a local file that
/// could not be written, [`USAGE`] for everything else (flags, campaign
/// files, inputs).
pub(crate) fn for_error(e: &anyhow::Error) -> i32 {
    use crate::journal::JournalError;
    use crate::journal::lock::LockError;
    let mut local_io = false;
    for c in e.chain() {
        if let Some(LockError::Held { .. }) = c.downcast_ref::<LockError>() {
            return LOCKED;
        }
        if c.downcast_ref::<StoppedBeforeRun>().is_some() {
            return STOPPED;
        }
        if c.downcast_ref::<V2NotEnabled>().is_some() {
            return ABORTED;
        }
        if let Some(q) = c.downcast_ref::<crate::query::QueryFailed>() {
            return match q.kind {
                crate::query::QueryFailure::Unavailable => STOPPED,
                crate::query::QueryFailure::Denied => ABORTED,
            };
        }
        local_io |= matches!(c.downcast_ref::<LockError>(), Some(LockError::Io { .. }))
            || matches!(
                c.downcast_ref::<JournalError>(),
                Some(JournalError::Io { .. })
            )
            || c.downcast_ref::<crate::engine::EngineError>().is_some()
            || c.downcast_ref::<LocalIo>().is_some()
            || c.downcast_ref::<super::paths::PathError>()
                .is_some_and(super::paths::PathError::is_local_io);
    }
    if local_io { LOCAL_IO } else { USAGE }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{QueryFailed, QueryFailure};

    #[test]
    fn a_query_that_could_not_be_read_is_resume_later_or_aborted() {
        let failed = |kind| {
            anyhow::Error::new(QueryFailed {
                kind,
                message: "GetFindings in us-east-1 failed 12 times in a row".into(),
            })
            .context("selecting findings")
        };
        assert_eq!(for_error(&failed(QueryFailure::Unavailable)), STOPPED);
        assert_eq!(for_error(&failed(QueryFailure::Denied)), ABORTED);
        assert_eq!(for_error(&anyhow::anyhow!("bad filter")), USAGE);
    }
}
