//! glibc's malloc arenas, capped for the whole process.
//!
//! glibc gives threads that meet in `malloc` arenas of their own, up to
//! eight per core. Memory freed in one arena is reused only by the threads
//! using it, and stays resident: a run's threads (the reading thread, the
//! runtime's workers, the blocking threads of the plan pass) each keep
//! what they once held, and the process's peak is the sum. Measured with
//! `cargo bench --bench decisions` (README, "Distinct decisions") on an
//! `update` of a million findings: with one decision for all, 122.4 MiB
//! with glibc's default and 111.4 with two arenas; with a note per row (a
//! million requests, a ten-minute run), 100.1 and 82.3 to 97.0 on an idle
//! machine, 163.1 with the default on a loaded one.
//!
//! So the binary caps arenas at [`ARENA_MAX`] before any thread starts,
//! unless `MALLOC_ARENA_MAX` is set (glibc reads it itself; the user's
//! value wins). Only on Linux with glibc; elsewhere this does nothing.

/// The cap: the main arena and one other, what `MALLOC_ARENA_MAX=2` does.
/// Threads share them; each still has its own small cache (glibc's
/// tcache), so most allocations take no lock.
pub(crate) const ARENA_MAX: i32 = 2;

/// The cap to set, given the environment's `MALLOC_ARENA_MAX`: none when
/// the user set one (glibc applies it), else [`ARENA_MAX`].
pub(crate) fn cap_for(env: Option<&std::ffi::OsStr>) -> Option<i32> {
    match env {
        Some(_) => None,
        None => Some(ARENA_MAX),
    }
}

/// Caps glibc's arenas (see the module documentation). Call it first
/// thing in the process, before any thread is spawned. Returns the cap
/// set, if any.
pub(crate) fn limit() -> Option<i32> {
    let cap = cap_for(std::env::var_os("MALLOC_ARENA_MAX").as_deref())?;
    set(cap).then_some(cap)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set(cap: i32) -> bool {
    // SAFETY: `mallopt` only sets a tunable of the allocator; it takes
    // the allocator's own lock, and is documented as callable at any time.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, cap) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set(_cap: i32) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_users_malloc_arena_max_wins() {
        assert_eq!(cap_for(Some(std::ffi::OsStr::new("8"))), None);
        // Even an empty value: glibc decides what it means.
        assert_eq!(cap_for(Some(std::ffi::OsStr::new(""))), None);
        assert_eq!(cap_for(None), Some(ARENA_MAX));
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_accepts_the_cap() {
        // What the binary does first thing; the test process has threads
        // already, which glibc allows (existing arenas are kept).
        assert!(set(ARENA_MAX));
    }
}
