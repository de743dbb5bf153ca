//! Features in shards, for job arrays: `features --shard I/N` computes the I-th of N contiguous
//! slices of the sorted input and writes it as a part (`part-IIIII-of-NNNNN.npy`) with a sidecar
//! (`.json`: the slice, the ids, the shape and the SHA-256 of the part). `merge` checks that the
//! parts cover the input exactly once and joins them.
//!
//! Crash safety: the part is written atomically first and the sidecar (also atomically) last, so a
//! sidecar exists only beside a complete part; a shard killed mid-write leaves at most a hidden
//! temporary file, which the next run of that shard removes. A shard whose sidecar describes the
//! same slice and whose part still has the recorded checksum is skipped.

use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One shard of a job array: `index` in `0..count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which slice, from 0.
    pub index: usize,
    /// How many slices.
    pub count: usize,
}

/// The sidecar's format name, so that other JSON files are never taken for one.
const FORMAT: &str = "sdss-clustering features part 1";

impl Shard {
    /// Parses `I/N` (`I` from 0 to `N - 1`).
    pub fn parse(text: &str) -> Result<Self> {
        let parsed = text
            .split_once('/')
            .and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((index, count)) if count >= 1 && index < count => Ok(Shard { index, count }),
            _ => bail!(
                "--shard {text}: expected I/N with 0 <= I < N (e.g. 0/10 for the first of ten)"
            ),
        }
    }

    /// The shard of a SLURM job array task: `SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN` of
    /// `SLURM_ARRAY_TASK_COUNT`, so that `--array=0-9` and `--array=1-10` both work. `None`
    /// outside an array.
    pub fn from_slurm_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let (Some(id), Some(count)) = (var("SLURM_ARRAY_TASK_ID"), var("SLURM_ARRAY_TASK_COUNT"))
        else {
            return Ok(None);
        };
        let number = |name: &str, v: &str| -> Result<usize> {
            v.trim()
                .parse()
                .with_context(|| format!("{name}={v} is not a number"))
        };
        let id = number("SLURM_ARRAY_TASK_ID", &id)?;
        let count = number("SLURM_ARRAY_TASK_COUNT", &count)?;
        let min = match var("SLURM_ARRAY_TASK_MIN") {
            Some(v) => number("SLURM_ARRAY_TASK_MIN", &v)?,
            None => 0,
        };
        let index = id
            .checked_sub(min)
            .context("SLURM_ARRAY_TASK_ID below SLURM_ARRAY_TASK_MIN")?;
        if count == 0 || index >= count {
            bail!(
                "SLURM array task {id} (min {min}) is not one of {count} tasks: the array must be \
                 contiguous (--array=0-{} for {count} shards)",
                count.saturating_sub(1)
            );
        }
        Ok(Some(Shard { index, count }))
    }

    /// This shard's slice of `total` sorted inputs: contiguous, sizes differing by at most one.
    pub fn range(&self, total: usize) -> Range<usize> {
        let at = |i: usize| (total as u128 * i as u128 / self.count as u128) as usize;
        at(self.index)..at(self.index + 1)
    }

    /// `part-IIIII-of-NNNNN`.
    pub fn part_stem(&self) -> String {
        format!("part-{:05}-of-{:05}", self.index, self.count)
    }
}

/// What a part holds and where it came from: written beside the part once it is complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sidecar {
    /// Always [`FORMAT`].
    pub format: String,
    /// Shard index.
    pub shard: usize,
    /// Number of shards.
    pub shards: usize,
    /// The input folder.
    pub input: PathBuf,
    /// Image files in the whole input.
    pub input_files: usize,
    /// The slice of the sorted files this part covers.
    pub start: usize,
    /// End of the slice (exclusive).
    pub end: usize,
    /// How the features were made (`pixels`, or the CNN and its layer).
    pub features: String,
    /// Rows of the part (the slice's files less any skipped with `--skip-bad`).
    pub rows: usize,
    /// Columns of the part.
    pub cols: usize,
    /// Galaxy id of each row.
    pub ids: Vec<String>,
    /// Files of the slice that were skipped as bad.
    pub skipped: Vec<String>,
    /// SHA-256 of the part file, hex.
    pub sha256: String,
}

/// Where shard `shard`'s part and sidecar go in `dir`.
pub fn part_paths(dir: &Path, shard: Shard) -> (PathBuf, PathBuf) {
    let stem = shard.part_stem();
    (
        dir.join(format!("{stem}.npy")),
        dir.join(format!("{stem}.json")),
    )
}

fn sha256_of(path: &Path) -> Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn read_sidecar(path: &Path) -> Result<Sidecar> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let sidecar: Sidecar = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a features part sidecar", path.display()))?;
    if sidecar.format != FORMAT {
        bail!(
            "{}: format `{}`, expected `{FORMAT}`",
            path.display(),
            sidecar.format
        );
    }
    Ok(sidecar)
}

/// Whether shard `shard` of `input_files` files is already done in `dir` with the same
/// `features`: its sidecar describes this slice and its part has the recorded checksum.
pub fn is_complete(dir: &Path, shard: Shard, input_files: usize, features: &str) -> bool {
    let (part, side) = part_paths(dir, shard);
    let Ok(sidecar) = read_sidecar(&side) else {
        return false;
    };
    let range = shard.range(input_files);
    sidecar.shard == shard.index
        && sidecar.shards == shard.count
        && sidecar.input_files == input_files
        && sidecar.start == range.start
        && sidecar.end == range.end
        && sidecar.features == features
        && sha256_of(&part).is_ok_and(|sum| sum == sidecar.sha256)
}

/// Starts shard `shard`'s part: removes its sidecar (one left from another run must not vouch for
/// the new part while it is written) and returns the path the part is to be written to.
pub fn begin_part(dir: &Path, shard: Shard) -> Result<PathBuf> {
    let (part, side) = part_paths(dir, shard);
    match std::fs::remove_file(&side) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot replace {}", side.display())),
    }
    Ok(part)
}

/// Marks a part written (atomically, by [`begin_part`]'s caller) complete: writes its sidecar
/// with the part's shape and checksum, atomically.
pub fn seal_part(dir: &Path, sidecar_template: Sidecar, rows: usize, cols: usize) -> Result<()> {
    let shard = Shard {
        index: sidecar_template.shard,
        count: sidecar_template.shards,
    };
    let (part, side) = part_paths(dir, shard);
    crate::crash_point("features:part-written");
    let sidecar = Sidecar {
        format: FORMAT.to_owned(),
        rows,
        cols,
        sha256: sha256_of(&part)?,
        ..sidecar_template
    };
    sdss_io::atomic::write_bytes_atomic(&side, serde_json::to_string_pretty(&sidecar)?.as_bytes())?;
    Ok(())
}

/// The parts of `dir` joined in shard order into `dest` (written a part at a time, never held
/// whole, and moved into place only when complete), after checking that they are one complete
/// set: every shard of the same count present once, slices contiguous from the first file to
/// the last, the same input and features, every checksum right, and no galaxy id twice.
/// Returns the ids in row order and the parts' sidecars.
pub fn merge_into(dir: &Path, dest: &Path) -> Result<(Vec<String>, Vec<Sidecar>)> {
    let mut sidecars = Vec::new();
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot read {}", dir.display()))?
            .path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with("part-") && name.ends_with(".json") {
            sidecars.push(read_sidecar(&path)?);
        }
    }
    let Some(first) = sidecars.first().cloned() else {
        bail!(
            "{}: no features parts (part-*.json); run `features --shard I/N --out {}` first",
            dir.display(),
            dir.display()
        );
    };
    sidecars.sort_by_key(|s| s.shard);
    let mut expected_start = 0;
    for (i, s) in sidecars.iter().enumerate() {
        let what = format!("{}: part {} of {}", dir.display(), s.shard, s.shards);
        if s.shards != first.shards || s.input_files != first.input_files {
            bail!(
                "{what} belongs to a run of {} shards over {} files, another part to {} shards over {} files",
                s.shards, s.input_files, first.shards, first.input_files
            );
        }
        if s.features != first.features || s.input != first.input {
            bail!(
                "{what} has features `{}` of {}, another part `{}` of {}",
                s.features,
                s.input.display(),
                first.features,
                first.input.display()
            );
        }
        if s.shard != i {
            bail!("{}: part {i} of {} is missing", dir.display(), first.shards);
        }
        if s.start != expected_start {
            bail!(
                "{what} starts at file {}, expected {expected_start}",
                s.start
            );
        }
        expected_start = s.end;
    }
    if sidecars.len() != first.shards {
        bail!(
            "{}: {} of {} parts; part {} is missing",
            dir.display(),
            sidecars.len(),
            first.shards,
            sidecars.len()
        );
    }
    if expected_start != first.input_files {
        bail!(
            "{}: the parts cover files 0..{expected_start} of {}",
            dir.display(),
            first.input_files
        );
    }
    let mut seen = std::collections::HashMap::new();
    for s in &sidecars {
        for id in &s.ids {
            if let Some(other) = seen.insert(id.as_str(), s.shard) {
                bail!(
                    "{}: galaxy `{id}` is in part {other} and part {}",
                    dir.display(),
                    s.shard
                );
            }
        }
    }
    let rows: usize = sidecars.iter().map(|s| s.ids.len()).sum();
    let mut writer = sdss_io::mapped::NpyMatrixWriter::create(dest, first.cols, rows)?;
    for s in &sidecars {
        let (part, _) = part_paths(
            dir,
            Shard {
                index: s.shard,
                count: s.shards,
            },
        );
        if sha256_of(&part)? != s.sha256 {
            bail!(
                "{}: checksum differs from its sidecar (changed or half-written); rerun shard {}",
                part.display(),
                s.shard
            );
        }
        let block = sdss_io::mapped::MappedMatrix::open(&part)?;
        if block.nrows() != s.ids.len() || block.ncols() != first.cols {
            bail!(
                "{}: {} x {}, its sidecar says {} x {}",
                part.display(),
                block.nrows(),
                block.ncols(),
                s.ids.len(),
                first.cols
            );
        }
        let step = block.rows_per_block(sdss_pca::MAPPED_BLOCK_BYTES);
        block.for_each_block(step, |_, rows| writer.append(rows))?;
    }
    writer.finish()?;
    let ids = sidecars
        .iter()
        .flat_map(|s| s.ids.iter().cloned())
        .collect();
    Ok((ids, sidecars))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_cover_the_input_once() {
        assert_eq!(Shard::parse("0/3").unwrap(), Shard { index: 0, count: 3 });
        for bad in ["3/3", "1", "a/b", "0/0", "-1/2"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        for total in [0, 1, 7, 10, 6437] {
            for count in [1, 2, 3, 10] {
                let mut next = 0;
                for index in 0..count {
                    let r = Shard { index, count }.range(total);
                    assert_eq!(r.start, next);
                    assert!(r.len() <= total.div_ceil(count));
                    next = r.end;
                }
                assert_eq!(next, total);
            }
        }
    }

    #[test]
    fn slurm_task_ids_are_counted_from_the_array_minimum() {
        fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
            move |k: &str| pairs.iter().find(|p| p.0 == k).map(|p| p.1.to_string())
        }
        assert_eq!(Shard::from_slurm_env(env(&[])).unwrap(), None);
        let one_based: [(&str, &str); 3] = [
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_COUNT", "10"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
        ];
        assert_eq!(
            Shard::from_slurm_env(env(&one_based)).unwrap(),
            Some(Shard {
                index: 3,
                count: 10
            })
        );
        let outside: [(&str, &str); 2] = [
            ("SLURM_ARRAY_TASK_ID", "12"),
            ("SLURM_ARRAY_TASK_COUNT", "10"),
        ];
        assert!(Shard::from_slurm_env(env(&outside)).is_err());
    }
}
