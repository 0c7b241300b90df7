//! Outputs can never destroy inputs or each other.
//!
//! Every file a command will write (`--results`, its journal header and
//! lock, `--failed`, `--report`, `revert`'s own results) is compared, before
//! anything is opened for writing, with every other output and with every
//! file the command reads (the inputs, `file://` decision values, a
//! campaign file, the results file being reverted). Two names are the same
//! file when their canonical paths are equal or, for files that exist, when
//! they have the same device and inode (hard links, bind mounts, `/proc`
//! paths). A clash is refused with a message naming both.
//!
//! The directory each output goes into must exist and be writable; that is
//! said plainly here rather than as an `open` error later.
//!
//! What it does not do: create, open or truncate anything (the one write is
//! a probe file, created and removed again, to tell a read-only directory).

use std::fmt;
use std::path::{Path, PathBuf};

/// A path a command reads or writes, with the flag or role that names it.
#[derive(Clone, Debug)]
pub(crate) struct Named {
    /// `--results`, `input 2`, `--failed`, ... for messages.
    pub(crate) role: String,
    /// The path as given.
    pub path: PathBuf,
}

impl Named {
    pub(crate) fn new(role: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Named {
            role: role.into(),
            path: path.into(),
        }
    }
}

impl fmt::Display for Named {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.role, self.path.display())
    }
}

/// Why a set of outputs cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PathError {
    /// Two names are one file.
    #[error(
        "{output} and {other} are the same file{how}: writing {verb} would destroy it; name \
         another file for {role}",
        verb = if *other_is_input { "the output" } else { "one" },
        role = output.role,
    )]
    Clash {
        /// The output.
        output: Named,
        /// The input or other output it clashes with.
        other: Named,
        /// Whether `other` is an input.
        other_is_input: bool,
        /// ` (hard link)` and the like, or empty.
        how: String,
    },
    /// The directory an output goes into is missing or not a directory.
    #[error("{output}: the directory {} does not exist", dir.display())]
    NoDirectory {
        /// The output.
        output: Named,
        /// Its directory.
        dir: PathBuf,
    },
    /// The output names a directory.
    #[error("{output} is a directory: name a file")]
    IsDirectory {
        /// The output.
        output: Named,
    },
    /// The directory cannot be written to.
    #[error("{output}: cannot write in the directory {}: {reason}", dir.display())]
    NotWritable {
        /// The output.
        output: Named,
        /// Its directory.
        dir: PathBuf,
        /// What the system said.
        reason: String,
    },
}

impl PathError {
    /// Whether this is a local I/O problem (a directory that cannot be
    /// written) rather than a usage error (two flags naming one file).
    pub(crate) fn is_local_io(&self) -> bool {
        matches!(self, PathError::NotWritable { .. })
    }
}

/// What identifies a file: its canonical path and, when it exists, its
/// device and inode.
#[derive(Debug)]
struct Identity {
    canonical: PathBuf,
    #[cfg(unix)]
    inode: Option<(u64, u64)>,
}

impl Identity {
    fn same(&self, other: &Identity) -> Option<&'static str> {
        #[cfg(unix)]
        if let (Some(a), Some(b)) = (self.inode, other.inode)
            && a == b
        {
            return Some(if self.canonical == other.canonical {
                ""
            } else {
                " (one is a link to the other)"
            });
        }
        (self.canonical == other.canonical).then_some("")
    }
}

/// The identity of `path`, which need not exist (then its directory must).
fn identity(path: &Path) -> Option<Identity> {
    let canonical = match std::fs::canonicalize(path) {
        Ok(c) => c,
        Err(_) => {
            let name = path.file_name()?;
            let dir = parent_dir(path);
            std::fs::canonicalize(dir).ok()?.join(name)
        }
    };
    #[cfg(unix)]
    let inode = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    };
    Some(Identity {
        canonical,
        #[cfg(unix)]
        inode,
    })
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Checks that each output can be written in its directory and that no
/// output is an input or another output. `inputs` that do not exist or are
/// not files (`-`, `/dev/stdin`) are compared all the same: a clash with
/// them is still a clash.
pub(crate) fn check(inputs: &[Named], outputs: &[Named]) -> Result<(), PathError> {
    let mut seen: Vec<(&Named, Identity)> = Vec::new();
    for output in outputs {
        let dir = parent_dir(&output.path);
        if !dir.is_dir() {
            return Err(PathError::NoDirectory {
                output: output.clone(),
                dir: dir.to_owned(),
            });
        }
        if output.path.is_dir() {
            return Err(PathError::IsDirectory {
                output: output.clone(),
            });
        }
        let Some(id) = identity(&output.path) else {
            return Err(PathError::NoDirectory {
                output: output.clone(),
                dir: dir.to_owned(),
            });
        };
        for input in inputs {
            if input.path.as_os_str() == "-" {
                continue;
            }
            if let Some(other) = identity(&input.path)
                && let Some(how) = id.same(&other)
            {
                return Err(PathError::Clash {
                    output: output.clone(),
                    other: input.clone(),
                    other_is_input: true,
                    how: how.to_owned(),
                });
            }
        }
        for (other, other_id) in &seen {
            if let Some(how) = id.same(other_id) {
                return Err(PathError::Clash {
                    output: output.clone(),
                    other: (*other).clone(),
                    other_is_input: false,
                    how: how.to_owned(),
                });
            }
        }
        seen.push((output, id));
    }
    // Writable directories, once each.
    let mut probed: Vec<PathBuf> = Vec::new();
    for (output, _) in &seen {
        // Where new files (the lock, the header, temporary files) are made:
        // beside the name as given, even when it is a link.
        let dir = parent_dir(&output.path).to_owned();
        if probed.contains(&dir) {
            continue;
        }
        probe(&dir).map_err(|e| PathError::NotWritable {
            output: (*output).clone(),
            dir: dir.clone(),
            reason: e.to_string(),
        })?;
        probed.push(dir);
    }
    Ok(())
}

/// Creates and removes a private file in `dir`: the only sure way to know
/// that files can be created there (permissions, read-only mounts, ACLs).
fn probe(dir: &Path) -> std::io::Result<()> {
    let name = format!(
        ".sechub-triage-probe-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    );
    let path = dir.join(name);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)
}

/// The files `--results PATH` stands for: the results journal, its header,
/// its in-flight log, its failed log, the header's temporary file, and the
/// run lock (the first three are what `revert` reads).
pub(crate) fn results_files(role: &str, results: &Path) -> Vec<Named> {
    let header = crate::journal::header_path(results);
    let mut tmp = header.as_os_str().to_owned();
    tmp.push(".tmp");
    vec![
        Named::new(role, results),
        Named::new(format!("{role}'s journal header"), header),
        Named::new(
            format!("{role}'s in-flight log"),
            crate::journal::in_flight_path(results),
        ),
        Named::new(
            format!("{role}'s failed log"),
            crate::journal::failed_log_path(results),
        ),
        Named::new(format!("{role}'s journal header"), PathBuf::from(tmp)),
        Named::new(
            format!("{role}'s lock"),
            crate::journal::lock::lock_path(results),
        ),
    ]
}

/// The `file://` paths among decision values: they are inputs too.
pub(crate) fn file_urls<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<PathBuf> {
    values
        .into_iter()
        .filter_map(|v| v.trim().strip_prefix("file://"))
        .map(PathBuf::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_naming_an_input_or_another_output_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        std::fs::write(&input, "Id,ProductArn\n").unwrap();
        let ins = [Named::new("input 1", &input)];
        // The same file by another spelling.
        let other_spelling = dir.path().join(".").join("in.csv");
        let e = check(&ins, &[Named::new("--failed", &other_spelling)]).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("--failed") && text.contains("input 1"),
            "{text}"
        );
        // A hard link.
        let link = dir.path().join("link.csv");
        std::fs::hard_link(&input, &link).unwrap();
        let e = check(&ins, &[Named::new("--report", &link)]).unwrap_err();
        assert!(e.to_string().contains("link"), "{e}");
        // Two outputs, one of them not there yet.
        let out = dir.path().join("r.csv");
        let e = check(
            &ins,
            &[Named::new("--results", &out), Named::new("--report", &out)],
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("--report") && e.to_string().contains("--results"),
            "{e}"
        );
        // The lock of the results file is an output too.
        let mut outs = results_files("--results", &out);
        outs.push(Named::new("--failed", dir.path().join("r.csv.lock")));
        assert!(check(&ins, &outs).is_err());
        // Distinct files are fine.
        let mut outs = results_files("--results", &out);
        outs.push(Named::new("--failed", dir.path().join("f.csv")));
        check(&ins, &outs).unwrap();
        assert!(!out.exists(), "the check creates nothing");
    }

    #[test]
    fn missing_and_unusable_directories_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = check(&[], &[Named::new("--results", dir.path().join("no/r.csv"))]).unwrap_err();
        assert!(
            e.to_string().contains("does not exist") && e.to_string().contains("/no"),
            "{e}"
        );
        let e = check(&[], &[Named::new("--results", dir.path())]).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
    }
}
