//! Process exit statuses (documented in the README).

/// Every finding was updated (duplicates in the input count as updated once).
pub const SUCCESS: i32 = 0;
/// Usage, configuration or input error: nothing useful could run, or the
/// input could not be read to the end. Also: a resumed run refused because
/// its input or decision changed.
pub const USAGE: i32 = 1;
/// The run finished, but some findings were not updated (failed permanently
/// or rejected as invalid records). After `--resume`, counted over every
/// run on the journal.
pub const PARTIAL: i32 = 2;
/// The run was aborted: access denied or bad credentials. Findings not done
/// are recorded as `not_attempted`.
pub const ABORTED: i32 = 3;
/// Stopped early, resume later: SIGINT/SIGTERM or `--time-budget` ended the
/// run with work left. Findings read but not sent are recorded
/// `not_attempted` (code `Stopped`); running again with `--resume` sends
/// them and the rest of the input.
pub const STOPPED: i32 = 4;
/// Another run holds the results file's lock: nothing was done.
pub const LOCKED: i32 = 5;

/// The status for a run that ended in an error before or outside the engine.
pub fn for_error(e: &anyhow::Error) -> i32 {
    let locked = e.chain().any(|c| {
        matches!(
            c.downcast_ref::<crate::journal::lock::LockError>(),
            Some(crate::journal::lock::LockError::Held { .. })
        )
    });
    if locked { LOCKED } else { USAGE }
}
