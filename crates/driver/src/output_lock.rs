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
/// The lock file itself stays, even after a clean exit: removing it would race. A second process may have
/// opened the old file and be about to lock its inode while a third creates and locks a fresh file under
/// the same name; both would then hold "the" lock. A few bytes beside each output are the price.
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
                    "--out {}: {who} is writing it; wait for it to finish or choose another --out",
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
    remove_matching(&parent, &name, suffixes, None)
}

/// [`remove_leftovers`], sparing `keep` (this process's own staging folder, say).
pub fn remove_leftovers_except(out: &Path, suffixes: &[&str], keep: &Path) -> Result<Vec<PathBuf>> {
    let (parent, name) = parent_and_name(out);
    remove_matching(&parent, &name, suffixes, Some(keep))
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
        if is_temp_name(&file_name) && entry.path().is_file() {
            remove(&entry.path())?;
            removed.push(entry.path());
        }
    }
    Ok(removed)
}

/// `.<file>.tmp-<pid>-<n>`: the names `sdss_io::atomic` gives its temporary files.
fn is_temp_name(name: &str) -> bool {
    let Some((target, tail)) = name.strip_prefix('.').and_then(|n| n.rsplit_once(".tmp-")) else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    !target.is_empty()
        && tail
            .split_once('-')
            .is_some_and(|(pid, n)| digits(pid) && digits(n))
}

fn remove_matching(
    parent: &Path,
    name: &str,
    suffixes: &[&str],
    keep: Option<&Path>,
) -> Result<Vec<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Ok(Vec::new());
    };
    let prefixes: Vec<String> = suffixes.iter().map(|s| format!(".{name}{s}")).collect();
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if prefixes.iter().any(|p| file_name.starts_with(p.as_str()))
            && keep.is_none_or(|k| k.file_name() != Some(entry.file_name().as_os_str()))
        {
            remove(&entry.path())?;
            removed.push(entry.path());
        }
    }
    Ok(removed)
}

fn remove(path: &Path) -> Result<()> {
    let bytes = size_of(path);
    let result = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    result.with_context(|| format!("cannot remove {}, left by a killed run", path.display()))?;
    tracing::info!(
        "removed {} ({}), left by an interrupted run",
        path.display(),
        human_bytes(bytes)
    );
    Ok(())
}

/// The bytes of the files under `path` (not following symbolic links).
fn size_of(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path).map_or(0, |entries| {
        entries.flatten().map(|e| size_of(&e.path())).sum()
    })
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
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
        // Hidden files that only look alike are not ours and stay.
        std::fs::write(inside.join(".notes.tmp-draft"), b"z").unwrap();
        assert_eq!(remove_temp_files_in(&inside).unwrap().len(), 1);
        assert!(inside.join("a.jpg").exists());
        assert!(inside.join(".notes.tmp-draft").exists());
        assert!(remove_temp_files_in(&dir.path().join("absent"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn temp_names_are_those_of_sdss_io_atomic() {
        for name in [".a.jpg.tmp-7-3", ".weights.json.tmp-123-0", ".x.tmp-1-22"] {
            assert!(is_temp_name(name), "{name}");
        }
        for name in [
            "a.jpg.tmp-7-3",
            ".a.tmp-",
            ".a.tmp-7",
            ".a.tmp-x-1",
            "..tmp-1-2",
            ".a.jpg",
        ] {
            assert!(!is_temp_name(name), "{name}");
        }
    }

    #[test]
    fn the_atomic_writers_temp_files_are_recognised() {
        // A real temporary file of sdss_io::atomic, left as a kill would leave it.
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("metrics.json");
        sdss_io::atomic::write_atomic(&target, |w| {
            let names: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert_eq!(names.len(), 1);
            assert!(is_temp_name(&names[0]), "{names:?}");
            w.write_all(b"{}")
        })
        .unwrap();
    }

    #[test]
    fn sizes_are_summed_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/x"), vec![0u8; 1500]).unwrap();
        std::fs::write(dir.path().join("a/b/y"), vec![0u8; 500]).unwrap();
        assert_eq!(size_of(&dir.path().join("a")), 2000);
        assert_eq!(human_bytes(999), "999 bytes");
        assert_eq!(human_bytes(2000), "2.0 KB");
        assert_eq!(human_bytes(1_200_000_000), "1.2 GB");
    }
}
