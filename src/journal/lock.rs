//! The run lock: `<results>.lock`, so that two runs never write to one
//! journal at once.
//!
//! The lock file holds its owner's pid, host name, start time and run id
//! (JSON), for the messages. Ownership itself is an exclusive advisory lock
//! (`flock`, through `File::try_lock`) held on the open file for the whole
//! run: the kernel releases it when the process ends in any way, `kill -9`
//! included. So a lock file that exists but is not locked was left by a
//! process that is gone, even if its pid now belongs to another process
//! (pid reuse fools `kill(pid, 0)`; it cannot fool this), and is taken
//! over. The file is created with `create_new` when absent.
//!
//! This module does not wait for a lock: a second run is refused at once.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Who holds (or held) a lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LockOwner {
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// When the run started (RFC 3339).
    pub started: String,
    /// The run's id (as in the journal header).
    pub run_id: String,
}

impl std::fmt::Display for LockOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on {}, started {} (run {})",
            self.pid, self.host, self.started, self.run_id
        )
    }
}

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LockError {
    /// A live process holds it.
    #[error(
        "{path} is held by another run ({}): two runs must not write to one results file; wait for it \
         to end, or stop it (SIGTERM lets it finish cleanly)",
        owner.as_ref().map_or_else(|| "owner not yet written".to_owned(), |o| o.to_string())
    )]
    Held {
        /// The lock file.
        path: PathBuf,
        /// Its owner, if the file could be read.
        owner: Option<LockOwner>,
    },
    /// The lock file could not be created, opened or written.
    #[error("cannot lock {path}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// Where the lock of the results file `results` lives.
pub(crate) fn lock_path(results: &Path) -> PathBuf {
    let mut name = results.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// A held run lock; released (the file removed) on [`RunLock::release`] or drop.
#[derive(Debug)]
pub(crate) struct RunLock {
    path: PathBuf,
    file: Option<File>,
}

/// A lock taken, and the owner of the stale lock it replaced, if any.
#[derive(Debug)]
pub(crate) struct Acquired {
    /// The lock.
    pub lock: RunLock,
    /// The lock file was there but unlocked: its process is gone. `Some(None)`
    /// when it named no readable owner.
    pub(crate) took_over: Option<Option<LockOwner>>,
}

impl RunLock {
    /// Takes the lock at `path` for `owner`, or says who holds it.
    pub(crate) fn acquire(path: &Path, owner: LockOwner) -> Result<Acquired, LockError> {
        let io_err = |source| LockError::Io {
            path: path.to_owned(),
            source,
        };
        // A few rounds at most: each retry means another process removed
        // the file between our open and our lock.
        for _ in 0..8 {
            let (mut file, created) = match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(f) => (f, true),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    match OpenOptions::new().read(true).write(true).open(path) {
                        Ok(f) => (f, false),
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(io_err(e)),
                    }
                }
                Err(e) => return Err(io_err(e)),
            };
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    return Err(LockError::Held {
                        path: path.to_owned(),
                        owner: read_owner(&mut file),
                    });
                }
                Err(TryLockError::Error(e)) => return Err(io_err(e)),
            }
            // Locked, but the file may have been removed (by its previous
            // owner, at its exit) between our open and our lock: then the
            // lock guards nothing anyone else will open. Start again.
            if !same_file(&file, path) {
                continue;
            }
            let took_over = (!created).then(|| read_owner(&mut file));
            let text = serde_json::to_vec(&owner).map_err(|e| io_err(io::Error::other(e)))?;
            file.set_len(0)
                .and_then(|()| file.seek(SeekFrom::Start(0)).map(|_| ()))
                .and_then(|()| file.write_all(&text))
                .and_then(|()| file.write_all(b"\n"))
                .and_then(|()| file.sync_data())
                .map_err(io_err)?;
            return Ok(Acquired {
                lock: RunLock {
                    path: path.to_owned(),
                    file: Some(file),
                },
                took_over,
            });
        }
        Err(io_err(io::Error::other(
            "the lock file keeps disappearing: another run is starting and ending at the same time",
        )))
    }

    /// The lock file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the lock file, then lets go of the lock.
    pub(crate) fn release(mut self) {
        self.release_inner();
    }

    fn release_inner(&mut self) {
        if let Some(file) = self.file.take() {
            // Remove while still holding it, and only if the path is still
            // ours, so that no one can lock a file that is about to vanish
            // unnoticed (see the check in `acquire`).
            if same_file(&file, &self.path) {
                let _ = std::fs::remove_file(&self.path);
            }
            drop(file);
        }
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        self.release_inner();
    }
}

fn read_owner(file: &mut File) -> Option<LockOwner> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(pid: u32) -> LockOwner {
        LockOwner {
            pid,
            host: "test-host".into(),
            started: "2026-01-01T00:00:00Z".into(),
            run_id: format!("run-{pid}"),
        }
    }

    #[test]
    fn a_held_lock_refuses_a_second_taker_and_names_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv.lock");
        let first = RunLock::acquire(&path, owner(111)).unwrap();
        assert!(first.took_over.is_none());
        let err = RunLock::acquire(&path, owner(222)).unwrap_err();
        match &err {
            LockError::Held { owner: Some(o), .. } => assert_eq!(o.pid, 111),
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("pid 111"), "{err}");
        first.lock.release();
        assert!(!path.exists(), "released: removed");
        let again = RunLock::acquire(&path, owner(333)).unwrap();
        assert!(again.took_over.is_none());
        drop(again);
        assert!(!path.exists(), "dropped: removed");
    }

    #[test]
    fn an_unlocked_lock_file_is_stale_and_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv.lock");
        std::fs::write(&path, serde_json::to_string(&owner(999_999)).unwrap()).unwrap();
        let got = RunLock::acquire(&path, owner(444)).unwrap();
        assert_eq!(got.took_over, Some(Some(owner(999_999))));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"pid\":444"), "{text}");
        // Unreadable leftovers too.
        drop(got);
        std::fs::write(&path, "garbage").unwrap();
        let got = RunLock::acquire(&path, owner(555)).unwrap();
        assert_eq!(got.took_over, Some(None));
    }
}
