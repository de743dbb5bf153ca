//! Seeded train / validation / test splits, with the counts of scikit-learn's `train_test_split`.
//!
//! The original project split its galaxies 70/15/15 by calling `train_test_split` twice: first
//! `test_size=0.3` of all galaxies, then `test_size=0.5` of the held-out part. [`split_counts`]
//! gives the same sizes for any fractions (6437 galaxies → 4505 / 966 / 966), and [`split_indices`]
//! draws which galaxy goes where from a seeded ChaCha8 stream. The assignment is a pure function of
//! `(n, fractions, seed)`: the shuffle is implemented here (Fisher–Yates with Lemire's unbiased
//! bounded integers on [`rand::RngCore::next_u64`]) so it does not change with `rand`'s own
//! shuffling algorithms. The draws differ from NumPy's, so the galaxies in each split are not the
//! original's; the sizes are.
//!
//! [`write_split_csv`] records the assignment (`id,split`) so a resumed or evaluated run uses the
//! same galaxies ([`read_split_csv_for`]).

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::catalog::{check_duplicates, TrainDataError, EXAMPLES};

/// The fewest galaxies a split may have.
pub const MIN_SPLIT_SIZE: usize = 10;

/// Which part of the data a galaxy belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Fitted on.
    Train,
    /// Watched during training (early stopping, learning-rate schedule).
    Val,
    /// Held out for the final evaluation.
    Test,
}

impl Split {
    /// The three splits in order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    /// `"train"`, `"val"` or `"test"`, as in split files.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }

    /// `"training"`, `"validation"` or `"test"`, for messages.
    pub fn long_name(self) -> &'static str {
        match self {
            Split::Train => "training",
            Split::Val => "validation",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Split {
    type Err = String;

    /// Parses `train`, `val` (or `validation`) and `test`, ignoring case and surrounding spaces.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "train" => Ok(Split::Train),
            "val" | "validation" => Ok(Split::Val),
            "test" => Ok(Split::Test),
            _ => Err(format!("`{s}` is not train, val or test")),
        }
    }
}

/// Galaxies per split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SplitCounts {
    /// Training galaxies.
    pub train: usize,
    /// Validation galaxies.
    pub val: usize,
    /// Test galaxies.
    pub test: usize,
}

impl SplitCounts {
    /// Counts of an assignment.
    pub fn of(splits: &[Split]) -> SplitCounts {
        let mut c = SplitCounts::default();
        for s in splits {
            *c.get_mut(*s) += 1;
        }
        c
    }

    /// Galaxies in `split`.
    pub fn get(&self, split: Split) -> usize {
        match split {
            Split::Train => self.train,
            Split::Val => self.val,
            Split::Test => self.test,
        }
    }

    fn get_mut(&mut self, split: Split) -> &mut usize {
        match split {
            Split::Train => &mut self.train,
            Split::Val => &mut self.val,
            Split::Test => &mut self.test,
        }
    }

    /// Galaxies in all.
    pub fn total(&self) -> usize {
        self.train + self.val + self.test
    }
}

/// Split sizes for `n` galaxies, as scikit-learn's `train_test_split` gives them when called twice:
/// `n_holdout = ceil((val + test)·n)`, `train = n − n_holdout`, then
/// `test = ceil(test / (val + test) · n_holdout)`, `val = n_holdout − test`.
///
/// Both fractions must be in (0, 1) with a sum below 1, and every split must get at least
/// [`MIN_SPLIT_SIZE`] galaxies; otherwise the error names the option or the split.
pub fn split_counts(
    n: usize,
    val_fraction: f64,
    test_fraction: f64,
) -> Result<SplitCounts, TrainDataError> {
    for (option, value) in [
        ("--val-fraction", val_fraction),
        ("--test-fraction", test_fraction),
    ] {
        if !(value > 0.0 && value < 1.0) {
            return Err(TrainDataError::InvalidFraction {
                option,
                value,
                reason: "must be greater than 0 and less than 1".to_owned(),
            });
        }
    }
    let holdout_fraction = val_fraction + test_fraction;
    if holdout_fraction >= 1.0 {
        return Err(TrainDataError::InvalidFraction {
            option: "--test-fraction",
            value: test_fraction,
            reason: format!(
                "with --val-fraction {val_fraction} the held-out fractions add up to {holdout_fraction}, leaving no training galaxies; the sum must be below 1"
            ),
        });
    }
    // The same float arithmetic as scikit-learn's `_validate_shuffle_split`.
    let n_holdout = ((holdout_fraction * n as f64).ceil() as usize).min(n);
    let test =
        (((test_fraction / holdout_fraction) * n_holdout as f64).ceil() as usize).min(n_holdout);
    let counts = SplitCounts {
        train: n - n_holdout,
        val: n_holdout - test,
        test,
    };
    for split in Split::ALL {
        let count = counts.get(split);
        if count < MIN_SPLIT_SIZE {
            return Err(TrainDataError::SplitTooSmall {
                split,
                count,
                n,
                train: counts.train,
                val: counts.val,
                test: counts.test,
            });
        }
    }
    Ok(counts)
}

/// A seeded random assignment of `n` galaxies to splits with the sizes of [`split_counts`]:
/// `result[i]` is galaxy `i`'s split.
pub fn split_indices(
    n: usize,
    val_fraction: f64,
    test_fraction: f64,
    seed: u64,
) -> Result<Vec<Split>, TrainDataError> {
    let counts = split_counts(n, val_fraction, test_fraction)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..n).collect();
    shuffle(&mut order, &mut rng);
    let mut splits = vec![Split::Train; n];
    for (k, &i) in order.iter().enumerate() {
        if k < counts.test {
            splits[i] = Split::Test;
        } else if k < counts.test + counts.val {
            splits[i] = Split::Val;
        }
    }
    Ok(splits)
}

/// Like [`split_indices`], stratified by class: the split sizes are the same, and each class is
/// divided among the splits in proportion to its size (largest remainders, ties to the lower class
/// index), so every split has about the class balance of the whole. `labels` may be any class
/// indices.
pub fn split_indices_stratified(
    labels: &[usize],
    val_fraction: f64,
    test_fraction: f64,
    seed: u64,
) -> Result<Vec<Split>, TrainDataError> {
    let n = labels.len();
    let counts = split_counts(n, val_fraction, test_fraction)?;
    let k = labels.iter().max().map_or(0, |m| m + 1);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); k];
    for (i, &l) in labels.iter().enumerate() {
        members[l].push(i);
    }
    let sizes: Vec<usize> = members.iter().map(Vec::len).collect();
    let test = apportion(counts.test, &sizes, &sizes, n);
    let left: Vec<usize> = sizes.iter().zip(&test).map(|(s, t)| s - t).collect();
    let val = apportion(counts.val, &sizes, &left, n);

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut splits = vec![Split::Train; n];
    for (c, m) in members.iter_mut().enumerate() {
        shuffle(m, &mut rng);
        for (j, &i) in m.iter().enumerate() {
            if j < test[c] {
                splits[i] = Split::Test;
            } else if j < test[c] + val[c] {
                splits[i] = Split::Val;
            }
        }
    }
    Ok(splits)
}

/// Divides `total` among classes in proportion to `sizes` (out of `n`), at most `caps[c]` each:
/// floors of the quotas, then one more for the largest remainders, then anywhere there is room.
fn apportion(total: usize, sizes: &[usize], caps: &[usize], n: usize) -> Vec<usize> {
    let quota = |c: usize| total as f64 * sizes[c] as f64 / n as f64;
    let mut out: Vec<usize> = (0..sizes.len())
        .map(|c| (quota(c).floor() as usize).min(caps[c]))
        .collect();
    let mut given: usize = out.iter().sum();
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by(|&a, &b| {
        let (fa, fb) = (quota(a) - out[a] as f64, quota(b) - out[b] as f64);
        fb.total_cmp(&fa).then(a.cmp(&b))
    });
    for pass in 0..2 {
        for &c in &order {
            if given == total {
                return out;
            }
            // First pass: one more each for the largest remainders; second: fill any room left.
            let room = caps[c] - out[c];
            let add = if pass == 0 {
                room.min(1)
            } else {
                room.min(total - given)
            };
            out[c] += add;
            given += add;
        }
    }
    out
}

/// Fisher–Yates shuffle driven by `next_u64` only, so that it is stable across `rand` versions.
fn shuffle<T>(items: &mut [T], rng: &mut impl RngCore) {
    for i in (1..items.len()).rev() {
        let j = below(rng, i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// A uniform integer in `0..bound` (Lemire's multiply-and-reject), `bound > 0`.
fn below(rng: &mut impl RngCore, bound: u64) -> u64 {
    let mut m = u128::from(rng.next_u64()) * u128::from(bound);
    if (m as u64) < bound {
        let threshold = bound.wrapping_neg() % bound;
        while (m as u64) < threshold {
            m = u128::from(rng.next_u64()) * u128::from(bound);
        }
    }
    (m >> 64) as u64
}

/// Indices of the galaxies in `which`, increasing.
pub fn indices_of(splits: &[Split], which: Split) -> Vec<usize> {
    splits
        .iter()
        .enumerate()
        .filter(|(_, s)| **s == which)
        .map(|(i, _)| i)
        .collect()
}

/// Writes `id,split` rows (ids quoted as needed) to `path`, atomically.
pub fn write_split_csv(
    path: impl AsRef<Path>,
    ids: &[String],
    splits: &[Split],
) -> Result<(), TrainDataError> {
    if ids.len() != splits.len() {
        return Err(TrainDataError::LengthMismatch {
            what: "splits",
            found: splits.len(),
            expected: ids.len(),
        });
    }
    sdss_io::atomic::write_atomic(path, |w| {
        writeln!(w, "id,split")?;
        for (id, split) in ids.iter().zip(splits) {
            writeln!(w, "{},{split}", sdss_io::stack::csv_field(id))?;
        }
        Ok(())
    })?;
    Ok(())
}

/// Reads a split file written by [`write_split_csv`]: ids and splits in file order. Other columns
/// are ignored; ids must be unique.
pub fn read_split_csv(path: impl AsRef<Path>) -> Result<(Vec<String>, Vec<Split>), TrainDataError> {
    let path = path.as_ref();
    let rows = sdss_io::stack::read_csv(path)?;
    let mut rows = rows.into_iter();
    let Some((_, header)) = rows.next() else {
        return Err(TrainDataError::EmptyFile {
            path: path.to_owned(),
        });
    };
    let header: Vec<String> = header.iter().map(|h| h.trim().to_owned()).collect();
    let column = |name: &str, role: &'static str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| TrainDataError::MissingColumn {
                path: path.to_owned(),
                column: name.to_owned(),
                role,
                available: header.clone(),
            })
    };
    let id_col = column("id", "the galaxy ids of a split file")?;
    let split_col = column("split", "the splits of a split file")?;
    let mut ids = Vec::new();
    let mut lines = Vec::new();
    let mut splits = Vec::new();
    for (line, fields) in rows {
        for (col, name) in [(id_col, "id"), (split_col, "split")] {
            if fields.len() <= col {
                return Err(TrainDataError::ShortRow {
                    path: path.to_owned(),
                    line,
                    found: fields.len(),
                    needed: col + 1,
                    column: name.to_owned(),
                });
            }
        }
        let split = fields[split_col]
            .parse::<Split>()
            .map_err(|_| TrainDataError::BadSplit {
                path: path.to_owned(),
                line,
                value: fields[split_col].clone(),
            })?;
        ids.push(fields[id_col].clone());
        lines.push(line);
        splits.push(split);
    }
    check_duplicates(
        path,
        "id",
        ids.iter().map(String::as_str).zip(lines.iter().copied()),
    )?;
    Ok((ids, splits))
}

/// The splits recorded in `path` for `ids`, in the order of `ids` (for resuming a run). The file
/// must list exactly these galaxies, in any order.
pub fn read_split_csv_for(
    path: impl AsRef<Path>,
    ids: &[String],
) -> Result<Vec<Split>, TrainDataError> {
    let path = path.as_ref();
    let (file_ids, file_splits) = read_split_csv(path)?;
    let recorded: HashMap<&str, Split> = file_ids
        .iter()
        .map(String::as_str)
        .zip(file_splits.iter().copied())
        .collect();
    let wanted: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
    let missing: Vec<&String> = ids
        .iter()
        .filter(|id| !recorded.contains_key(id.as_str()))
        .collect();
    let extra: Vec<&String> = file_ids
        .iter()
        .filter(|id| !wanted.contains(id.as_str()))
        .collect();
    if !missing.is_empty() || !extra.is_empty() {
        return Err(TrainDataError::SplitMismatch {
            path: path.to_owned(),
            missing: missing.len(),
            missing_examples: missing
                .iter()
                .take(EXAMPLES)
                .map(|s| s.to_string())
                .collect(),
            extra: extra.len(),
            extra_examples: extra.iter().take(EXAMPLES).map(|s| s.to_string()).collect(),
        });
    }
    Ok(ids.iter().map(|id| recorded[id.as_str()]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sklearn_counts() {
        let c = split_counts(6437, 0.15, 0.15).unwrap();
        assert_eq!((c.train, c.val, c.test), (4505, 966, 966));
        // train_test_split(test_size=0.2) then 0.5 of 200 → 160 / 20 / 20.
        let c = split_counts(200, 0.1, 0.1).unwrap();
        assert_eq!((c.train, c.val, c.test), (160, 20, 20));
        // Uneven: holdout ceil(0.3·101) = 31, test ceil(2/3·31) = 21.
        let c = split_counts(101, 0.1, 0.2).unwrap();
        assert_eq!((c.train, c.val, c.test), (70, 10, 21));
    }

    #[test]
    fn fractions_are_checked() {
        for (v, t, opt) in [
            (0.0, 0.15, "--val-fraction"),
            (0.15, 1.0, "--test-fraction"),
            (f64::NAN, 0.1, "--val-fraction"),
            (0.5, 0.5, "--test-fraction"),
        ] {
            match split_counts(1000, v, t) {
                Err(TrainDataError::InvalidFraction { option, .. }) => assert_eq!(option, opt),
                other => panic!("{v} {t}: {other:?}"),
            }
        }
    }

    #[test]
    fn split_is_seeded_and_has_the_counts() {
        let a = split_indices(500, 0.15, 0.15, 3).unwrap();
        assert_eq!(a, split_indices(500, 0.15, 0.15, 3).unwrap());
        assert_ne!(a, split_indices(500, 0.15, 0.15, 4).unwrap());
        let c = SplitCounts::of(&a);
        assert_eq!(c, split_counts(500, 0.15, 0.15).unwrap());
        // Pinned so that a change of the shuffle (which would change everyone's splits) is noticed.
        let first: String = a[..20]
            .iter()
            .map(|s| match s {
                Split::Train => '.',
                Split::Val => 'v',
                Split::Test => 'T',
            })
            .collect();
        assert_eq!(first, PINNED_SEED3_FIRST20);
    }

    const PINNED_SEED3_FIRST20: &str = "v....v.....v.T.....T";

    #[test]
    fn stratified_keeps_class_balance() {
        // 300 of class 0, 90 of class 1, 10 of class 2.
        let labels: Vec<usize> = (0..400)
            .map(|i| {
                if i < 300 {
                    0
                } else if i < 390 {
                    1
                } else {
                    2
                }
            })
            .collect();
        let s = split_indices_stratified(&labels, 0.15, 0.15, 1).unwrap();
        assert_eq!(SplitCounts::of(&s), split_counts(400, 0.15, 0.15).unwrap());
        for (class, size) in [(0, 300), (1, 90), (2, 10)] {
            for (split, frac) in [(Split::Val, 0.15), (Split::Test, 0.15)] {
                let got = labels
                    .iter()
                    .zip(&s)
                    .filter(|(l, x)| **l == class && **x == split)
                    .count() as f64;
                assert!(
                    (got - frac * size as f64).abs() <= 1.0,
                    "{class} {split}: {got}"
                );
            }
        }
        assert_eq!(s, split_indices_stratified(&labels, 0.15, 0.15, 1).unwrap());
    }

    #[test]
    fn apportion_respects_caps_and_total() {
        assert_eq!(apportion(3, &[1, 1, 1, 1], &[1, 1, 1, 1], 4), [1, 1, 1, 0]);
        assert_eq!(apportion(3, &[5, 1], &[1, 5], 6), [1, 2]);
        let out = apportion(7, &[3, 3, 4], &[3, 0, 4], 10);
        assert_eq!(out.iter().sum::<usize>(), 7);
        assert_eq!(out[1], 0);
    }

    #[test]
    fn below_is_in_range() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for bound in [1u64, 2, 3, 7, 1000, u64::MAX] {
            for _ in 0..100 {
                assert!(below(&mut rng, bound) < bound);
            }
        }
    }

    #[test]
    fn split_parses_and_serialises() {
        assert_eq!("Validation".parse::<Split>(), Ok(Split::Val));
        assert_eq!(Split::Test.to_string(), "test");
        assert_eq!(serde_json::to_string(&Split::Val).unwrap(), "\"val\"");
        assert!("dev".parse::<Split>().is_err());
    }
}
