//! One writer per output: a lock file beside each `--out`, and the clean-up of what a killed writer left.
//!
//! The lock is an OS file lock (`File::try_lock`) on `.<name>.lock` in the output's parent folder. The
//! kernel releases it when the process ends, however it ends (`kill -9` included), so a lock is never
//! stale: a second process into the same output is refused only while the first is alive. Whatever a
//! killed writer left (staging folders, temporary files) can therefore be removed by the next process
//! that holds the lock, since nobody else can be writing it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Held while a command writes its output; dropping it (or the process ending) releases the lock.
///
/// The lock file itself stays: removing it would let a third process lock a fresh file of the same name
/// while a second still waits on the old one's inode, and two writers would each hold "the" lock.
#[derive(Debug)]
pub struct OutputLock {
    _file: File,
    path: PathBuf,
}

impl OutputLock {
    /// Locks `out` (a file or folder that need not exist yet), or fails naming the process holding it.
    pub fn acquire(out: &Path) -> Result<Self> {
        let path = lock_path(out);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if holder.is_empty() {
                    "another sdss-clustering process".to_owned()
                } else {
                    format!("another sdss-clustering process (pid {holder})")
                };
                bail!(
                    "{}: {who} is writing it; wait for it to finish or choose another output",
                    out.display()
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        // Only the holder writes its pid, so the refusal above can say who holds the output.
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| write!(file, "{}", std::process::id()))
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(OutputLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `.<name>.lock` beside `out`.
pub fn lock_path(out: &Path) -> PathBuf {
    let (parent, name) = parent_and_name(out);
    parent.join(format!(".{name}.lock"))
}

fn parent_and_name(out: &Path) -> (PathBuf, String) {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    (parent, name)
}

/// Removes what killed writers of `out` left beside it: entries of its parent folder named
/// `.<name><suffix>…` for each of `suffixes` (such as `.partial-` for staging folders or `.tmp-` for
/// temporary files). Call only while holding `out`'s [`OutputLock`]. Returns what was removed.
pub fn remove_leftovers(out: &Path, suffixes: &[&str]) -> Result<Vec<PathBuf>> {
    let (parent, name) = parent_and_name(out);
    remove_matching(&parent, &name, suffixes)
}

/// Removes temporary files (`.<file>.tmp-<pid>-<n>`, as `sdss_io::atomic` names them) that killed
/// writers left inside `dir`. Call only while holding the lock of the output `dir` belongs to.
pub fn remove_temp_files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if file_name.starts_with('.') && file_name.contains(".tmp-") && entry.path().is_file() {
            remove(&entry.path())?;
            removed.push(entry.path());
        }
    }
    Ok(removed)
}

fn remove_matching(parent: &Path, name: &str, suffixes: &[&str]) -> Result<Vec<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Ok(Vec::new());
    };
    let prefixes: Vec<String> = suffixes.iter().map(|s| format!(".{name}{s}")).collect();
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if prefixes.iter().any(|p| file_name.starts_with(p.as_str())) {
            remove(&entry.path())?;
            removed.push(entry.path());
        }
    }
    Ok(removed)
}

fn remove(path: &Path) -> Result<()> {
    let result = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    result.with_context(|| format!("cannot remove {}, left by a killed run", path.display()))?;
    tracing::info!("removed {}, left by an interrupted run", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_output_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run1");
        let first = OutputLock::acquire(&out).unwrap();
        assert_eq!(first.path(), dir.path().join(".run1.lock"));
        let err = OutputLock::acquire(&out).unwrap_err().to_string();
        assert!(err.contains("run1"), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        // Another output in the same folder is independent.
        let _other = OutputLock::acquire(&dir.path().join("run2")).unwrap();
        drop(first);
        OutputLock::acquire(&out).unwrap();
    }

    #[test]
    fn leftovers_of_this_output_only_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        std::fs::create_dir_all(dir.path().join(".run.partial-123/sub")).unwrap();
        std::fs::create_dir_all(dir.path().join(".run.partial-123.old")).unwrap();
        std::fs::create_dir_all(dir.path().join(".runner.partial-9")).unwrap();
        std::fs::write(dir.path().join(".run.tmp-5-0"), b"x").unwrap();
        let mut removed = remove_leftovers(&out, &[".partial-"]).unwrap();
        removed.sort();
        assert_eq!(removed.len(), 2, "{removed:?}");
        assert!(dir.path().join(".runner.partial-9").exists());
        assert!(dir.path().join(".run.tmp-5-0").exists());

        let inside = dir.path().join("images");
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::write(inside.join(".a.jpg.tmp-7-3"), b"x").unwrap();
        std::fs::write(inside.join("a.jpg"), b"y").unwrap();
        assert_eq!(remove_temp_files_in(&inside).unwrap().len(), 1);
        assert!(inside.join("a.jpg").exists());
    }
}
