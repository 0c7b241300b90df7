//! Process exit statuses (documented in the README).

/// Every finding was updated (duplicates in the input count as updated once).
pub const SUCCESS: i32 = 0;
/// Usage, configuration or input error: nothing useful could run, or the
/// input could not be read to the end.
pub const USAGE: i32 = 1;
/// The run finished, but some findings were not updated (failed permanently
/// or rejected as invalid records).
pub const PARTIAL: i32 = 2;
/// The run was aborted: access denied or bad credentials. Findings not done
/// are recorded as `not_attempted`.
pub const ABORTED: i32 = 3;
