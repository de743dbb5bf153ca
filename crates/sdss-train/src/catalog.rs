//! The target catalogue: galaxy ids and training targets read from a CSV, joined with the images.
//!
//! A catalogue is a CSV file with a header row (RFC 4180 quoting; see [`sdss_io::stack::read_csv`]).
//! One column holds galaxy ids (the file stems of the image cutouts), another the training target:
//! a number to regress (λ_R, a Sérsic index) or a class name (a Galaxy Zoo class). Other columns
//! are ignored. Header names, ids and values are trimmed of surrounding whitespace.
//!
//! [`read_catalog`] checks the whole file and answers with a [`TrainDataError`] that names the file
//! and every problem it found (never a panic); [`join_images`] pairs catalogue rows with images by id,
//! whatever the order of either side, and reports what each side lacks.
//!
//! # Missing values
//!
//! A target is *missing* when it is empty or one of the strings pandas reads as missing by default
//! (`NA`, `N/A`, `n/a`, `NaN`, `nan`, `-nan`, `NULL`, `null`, `None`, `<NA>`, `#N/A`, `#NA`, …).
//! For a regression a NaN, an infinite value or one beyond the range of `f32` is unusable too. Rows
//! with an unusable target or an empty id are an error ([`TrainDataError::InvalidRows`]) unless
//! `drop_invalid` is set, in which case they are skipped and counted in the [`CatalogReport`].
//!
//! # Task inference
//!
//! Without an explicit [`Task`], a column whose usable values all parse as numbers is a regression
//! target, a column without any number is a classification target, and a column mixing the two is an
//! error asking for `--task`. Integer-valued columns (Galaxy Zoo votes 0/1/2) are therefore regressed
//! unless [`Task::Classify`] is asked for.
//!
//! # Class names
//!
//! Class labels index the sorted class names, so they do not depend on row order: numerically when
//! every name is a number (`2` before `10`), otherwise in byte order.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::split::{Split, MIN_SPLIT_SIZE};

/// How many ids, lines or values errors and reports list before giving only a count.
pub const EXAMPLES: usize = 20;

/// What the network learns: a number per galaxy or a class per galaxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Predict a number (mean squared error loss).
    Regress,
    /// Predict one of several classes (cross-entropy loss).
    Classify,
}

impl Task {
    /// `"regress"` or `"classify"`, as on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Regress => "regress",
            Task::Classify => "classify",
        }
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Task {
    type Err = String;

    /// Parses `regress` (or `regression`) and `classify` (or `classification`), ignoring case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "regress" | "regression" => Ok(Task::Regress),
            "classify" | "classification" => Ok(Task::Classify),
            _ => Err(format!("`{s}` is not a task: use `regress` or `classify`")),
        }
    }
}

/// The targets of a set of galaxies, in the order of their ids.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// One finite number per galaxy.
    Regression(Vec<f32>),
    /// One class per galaxy: `labels[i]` indexes `names`, which is sorted (see the module docs) and
    /// holds at least two classes.
    Classes {
        /// Class index of each galaxy.
        labels: Vec<usize>,
        /// Class names; a label is an index into this list.
        names: Vec<String>,
    },
}

impl Targets {
    /// Number of galaxies.
    pub fn len(&self) -> usize {
        match self {
            Targets::Regression(v) => v.len(),
            Targets::Classes { labels, .. } => labels.len(),
        }
    }

    /// True if there is no galaxy.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The task these targets are for.
    pub fn task(&self) -> Task {
        match self {
            Targets::Regression(_) => Task::Regress,
            Targets::Classes { .. } => Task::Classify,
        }
    }

    /// Number of classes (`None` for a regression).
    pub fn num_classes(&self) -> Option<usize> {
        match self {
            Targets::Regression(_) => None,
            Targets::Classes { names, .. } => Some(names.len()),
        }
    }

    /// The targets of the galaxies at `indices`, in that order; classes keep all their names.
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn select(&self, indices: &[usize]) -> Targets {
        match self {
            Targets::Regression(v) => Targets::Regression(indices.iter().map(|&i| v[i]).collect()),
            Targets::Classes { labels, names } => Targets::Classes {
                labels: indices.iter().map(|&i| labels[i]).collect(),
                names: names.clone(),
            },
        }
    }

    /// Galaxies per class, in class order (`None` for a regression).
    pub fn class_counts(&self) -> Option<Vec<ClassCount>> {
        match self {
            Targets::Regression(_) => None,
            Targets::Classes { labels, names } => {
                let mut counts = vec![0; names.len()];
                for &l in labels {
                    counts[l] += 1;
                }
                Some(
                    names
                        .iter()
                        .zip(counts)
                        .map(|(name, count)| ClassCount {
                            name: name.clone(),
                            count,
                        })
                        .collect(),
                )
            }
        }
    }
}

/// Why a catalogue row cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidKind {
    /// The id field is empty.
    EmptyId,
    /// The target is empty or a missing-value marker (`NA`, `null`, …); for a classification, an
    /// empty class name.
    Missing,
    /// A regression target that is NaN.
    NotANumber,
    /// A regression target that is infinite.
    Infinite,
    /// A regression target too large in magnitude for `f32`.
    OutOfRange,
}

impl fmt::Display for InvalidKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvalidKind::EmptyId => "empty id",
            InvalidKind::Missing => "missing value",
            InvalidKind::NotANumber => "NaN",
            InvalidKind::Infinite => "infinite value",
            InvalidKind::OutOfRange => "value beyond the range of f32",
        })
    }
}

/// A catalogue row that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidRow {
    /// 1-based line number in the CSV file.
    pub line: usize,
    /// The row's id (possibly empty).
    pub id: String,
    /// The target field as written (trimmed).
    pub value: String,
    /// What is wrong with it.
    pub kind: InvalidKind,
}

impl fmt::Display for InvalidRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            InvalidKind::EmptyId => write!(f, "line {}: empty id", self.line),
            _ if self.value.is_empty() => write!(f, "line {}: empty", self.line),
            kind => write!(f, "line {}: {kind} `{}`", self.line, self.value),
        }
    }
}

/// An id that appears on more than one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateId {
    /// The id.
    pub id: String,
    /// Every line it appears on.
    pub lines: Vec<usize>,
}

impl fmt::Display for DuplicateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` (lines {})", self.id, join(&self.lines, ", "))
    }
}

/// How many galaxies a class has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassCount {
    /// Class name.
    pub name: String,
    /// Number of galaxies.
    pub count: usize,
}

/// Everything that can be wrong with a catalogue, its join with the images, or a data split.
/// Each variant names the file (or the option) at fault and the problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainDataError {
    /// Reading or writing a file failed, or a CSV file cannot be parsed.
    #[error(transparent)]
    Io(#[from] sdss_io::IoError),
    /// A file without even a header row.
    #[error("{}: empty file: expected a header row naming the columns, then one row per galaxy", path.display())]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },
    /// A header row without any row below it.
    #[error("{}: the header row is the only row: no galaxies", path.display())]
    NoRows {
        /// The file.
        path: PathBuf,
    },
    /// A column asked for is not in the header.
    #[error("{}: no column `{column}` for {role}; the columns are: {}", path.display(), quoted_list(available))]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column asked for.
        column: String,
        /// What the column is for, e.g. "the target (--target)".
        role: &'static str,
        /// The header's column names.
        available: Vec<String>,
    },
    /// A column asked for appears more than once in the header.
    #[error("{}: {} columns are named `{column}` (columns {}), so {role} is ambiguous", path.display(), positions.len(), join(positions, ", "))]
    DuplicateColumn {
        /// The file.
        path: PathBuf,
        /// The column name.
        column: String,
        /// What the column is for.
        role: &'static str,
        /// 1-based positions of the columns with that name.
        positions: Vec<usize>,
    },
    /// A row with fewer fields than a needed column's position.
    #[error("{}:{line}: the row has {found} fields, but column `{column}` is number {needed}", path.display())]
    ShortRow {
        /// The file.
        path: PathBuf,
        /// 1-based line of the row.
        line: usize,
        /// Fields in the row.
        found: usize,
        /// 1-based position of the column.
        needed: usize,
        /// The column's name.
        column: String,
    },
    /// Rows with an empty id or an unusable target, without `--drop-invalid`.
    #[error(
        "{}: {count} row{} with an unusable `{column}` or an empty id: {}; fix them or pass --drop-invalid to skip them",
        path.display(), plural(*count), list_more(examples, *count)
    )]
    InvalidRows {
        /// The file.
        path: PathBuf,
        /// The target column.
        column: String,
        /// Number of such rows.
        count: usize,
        /// The first [`EXAMPLES`] of them.
        examples: Vec<InvalidRow>,
    },
    /// Non-numeric values in a column to regress.
    #[error(
        "{}: `{column}` must hold numbers for --task regress, but {count} value{} do{} not: {}; pass --task classify to use the values as class names",
        path.display(), plural(*count), if *count == 1 { "es" } else { "" }, list_more(&line_values(examples), *count)
    )]
    NonNumericTarget {
        /// The file.
        path: PathBuf,
        /// The target column.
        column: String,
        /// Number of non-numeric values.
        count: usize,
        /// The first [`EXAMPLES`] of them: (line, value).
        examples: Vec<(usize, String)>,
    },
    /// A column mixing numbers and other values, with no task given.
    #[error(
        "{}: `{column}` mixes numbers ({numeric} rows) with other values ({non_numeric} rows: {}): pass --task regress or --task classify",
        path.display(), list_more(&line_values(examples), *non_numeric)
    )]
    MixedTargets {
        /// The file.
        path: PathBuf,
        /// The target column.
        column: String,
        /// Number of numeric values.
        numeric: usize,
        /// Number of other (non-missing) values.
        non_numeric: usize,
        /// The first [`EXAMPLES`] of the non-numeric values: (line, value).
        examples: Vec<(usize, String)>,
    },
    /// A classification with fewer than two classes.
    #[error(
        "{}: `{column}` has {} class{} ({}) among the {galaxies} galaxies{}; classification needs at least 2",
        path.display(), classes.len(), if classes.len() == 1 { "" } else { "es" }, quoted_list(classes),
        if *after_join { " that have an image" } else { "" }
    )]
    TooFewClasses {
        /// The file.
        path: PathBuf,
        /// The target column.
        column: String,
        /// The classes there are.
        classes: Vec<String>,
        /// Number of galaxies considered.
        galaxies: usize,
        /// True if only the galaxies with an image were considered.
        after_join: bool,
    },
    /// Ids that appear on more than one line.
    #[error(
        "{}: {count} id{} in column `{column}` appear{} more than once: {}",
        path.display(), plural(*count), if *count == 1 { "s" } else { "" }, list_more(examples, *count)
    )]
    DuplicateIds {
        /// The file.
        path: PathBuf,
        /// The id column.
        column: String,
        /// Number of duplicated ids.
        count: usize,
        /// The first [`EXAMPLES`] of them with their lines.
        examples: Vec<DuplicateId>,
    },
    /// Every row was dropped as invalid.
    #[error("{}: all {dropped} rows have an unusable `{column}` or an empty id: no galaxy left", path.display())]
    NoValidRows {
        /// The file.
        path: PathBuf,
        /// The target column.
        column: String,
        /// Number of rows dropped.
        dropped: usize,
    },
    /// Two images with the same id (e.g. `x.jpg` and `x.png`).
    #[error("{count} galaxy id{} name more than one image: {}; keep one image per galaxy", plural(*count), list_more(&quoted(examples), *count))]
    DuplicateImageIds {
        /// Number of such ids.
        count: usize,
        /// The first [`EXAMPLES`] of them.
        examples: Vec<String>,
    },
    /// No catalogue id matches an image id.
    #[error(
        "no galaxy is both in {} ({catalog_ids} id{}, e.g. {}) and among the images ({images} id{}, e.g. {}){hint}",
        path.display(), plural(*catalog_ids), quoted_list(catalog_examples), plural(*images), quoted_list(image_examples)
    )]
    EmptyJoin {
        /// The catalogue.
        path: PathBuf,
        /// Number of usable catalogue rows.
        catalog_ids: usize,
        /// Number of images.
        images: usize,
        /// A few catalogue ids.
        catalog_examples: Vec<String>,
        /// A few image ids.
        image_examples: Vec<String>,
        /// A guess at why (empty, or starting with "; ").
        hint: String,
    },
    /// Two lists that must have one entry per galaxy differ in length.
    #[error("{what}: {found} entries for {expected} galaxies")]
    LengthMismatch {
        /// What the lists are.
        what: &'static str,
        /// Entries found.
        found: usize,
        /// Galaxies.
        expected: usize,
    },
    /// A split fraction that cannot work.
    #[error("invalid option `{option}` = {value}: {reason}")]
    InvalidFraction {
        /// The option, e.g. `--val-fraction`.
        option: &'static str,
        /// Its value.
        value: f64,
        /// Why it is refused.
        reason: String,
    },
    /// A split that would be too small to train on or to evaluate.
    #[error(
        "the {} split would have {count} galaxies; at least {} are needed ({n} galaxies: {train} train, {val} val, {test} test); use more galaxies or other --val-fraction/--test-fraction",
        split.long_name(), MIN_SPLIT_SIZE
    )]
    SplitTooSmall {
        /// The split that is too small.
        split: Split,
        /// Its size.
        count: usize,
        /// Galaxies in all.
        n: usize,
        /// Size of the training split.
        train: usize,
        /// Size of the validation split.
        val: usize,
        /// Size of the test split.
        test: usize,
    },
    /// A split file with a value other than `train`, `val` or `test`.
    #[error("{}:{line}: split `{value}` is not train, val or test", path.display())]
    BadSplit {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The value found.
        value: String,
    },
    /// A split file (for resuming) that does not list exactly the galaxies being trained on.
    #[error(
        "{}: does not match the galaxies being trained on: {missing} of them have no split there (e.g. {}), {extra} ids there are not among them (e.g. {})",
        path.display(), quoted_list(missing_examples), quoted_list(extra_examples)
    )]
    SplitMismatch {
        /// The split file.
        path: PathBuf,
        /// Galaxies without a split in the file.
        missing: usize,
        /// The first [`EXAMPLES`] of them.
        missing_examples: Vec<String>,
        /// Ids in the file that are not among the galaxies.
        extra: usize,
        /// The first [`EXAMPLES`] of them.
        extra_examples: Vec<String>,
    },
}

/// The usable rows of a catalogue: galaxy ids with their targets, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    path: PathBuf,
    id_column: String,
    target_column: String,
    ids: Vec<String>,
    lines: Vec<usize>,
    targets: Targets,
    dropped: Vec<InvalidRow>,
}

impl Catalog {
    /// A catalogue built in memory (`path` is only used in messages); line numbers are taken as
    /// 2, 3, … as if `ids` followed a header row. Checks that the counts agree, that ids are unique
    /// and not empty, that regression targets are finite, and that labels index two or more names.
    pub fn from_parts(
        path: impl Into<PathBuf>,
        id_column: &str,
        target_column: &str,
        ids: Vec<String>,
        targets: Targets,
    ) -> Result<Catalog, TrainDataError> {
        let path = path.into();
        if ids.len() != targets.len() {
            return Err(TrainDataError::LengthMismatch {
                what: "catalogue targets",
                found: targets.len(),
                expected: ids.len(),
            });
        }
        let lines: Vec<usize> = (2..ids.len() + 2).collect();
        check_duplicates(
            &path,
            id_column,
            ids.iter().map(String::as_str).zip(lines.iter().copied()),
        )?;
        let mut invalid = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            if id.is_empty() {
                invalid.push((i, String::new(), InvalidKind::EmptyId));
            } else if let Targets::Regression(v) = &targets {
                if v[i].is_nan() {
                    invalid.push((i, v[i].to_string(), InvalidKind::NotANumber));
                } else if v[i].is_infinite() {
                    invalid.push((i, v[i].to_string(), InvalidKind::Infinite));
                }
            }
        }
        if !invalid.is_empty() {
            return Err(TrainDataError::InvalidRows {
                path,
                column: target_column.to_owned(),
                count: invalid.len(),
                examples: invalid
                    .into_iter()
                    .take(EXAMPLES)
                    .map(|(i, value, kind)| InvalidRow {
                        line: lines[i],
                        id: ids[i].clone(),
                        value,
                        kind,
                    })
                    .collect(),
            });
        }
        if let Targets::Classes { labels, names } = &targets {
            if let Some(&bad) = labels.iter().find(|&&l| l >= names.len()) {
                return Err(TrainDataError::LengthMismatch {
                    what: "class names (a label is out of range)",
                    found: names.len(),
                    expected: bad + 1,
                });
            }
            if names.len() < 2 {
                return Err(TrainDataError::TooFewClasses {
                    path,
                    column: target_column.to_owned(),
                    classes: names.clone(),
                    galaxies: labels.len(),
                    after_join: false,
                });
            }
        }
        Ok(Catalog {
            path,
            id_column: id_column.to_owned(),
            target_column: target_column.to_owned(),
            ids,
            lines,
            targets,
            dropped: Vec::new(),
        })
    }

    /// The CSV file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Name of the id column.
    pub fn id_column(&self) -> &str {
        &self.id_column
    }

    /// Name of the target column.
    pub fn target_column(&self) -> &str {
        &self.target_column
    }

    /// Galaxy ids of the usable rows, in file order (unique, never empty).
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// 1-based line number of each usable row.
    pub fn lines(&self) -> &[usize] {
        &self.lines
    }

    /// Targets of the usable rows, in the order of [`Catalog::ids`].
    pub fn targets(&self) -> &Targets {
        &self.targets
    }

    /// The task of the targets.
    pub fn task(&self) -> Task {
        self.targets.task()
    }

    /// Rows skipped as invalid (with `drop_invalid`), in file order.
    pub fn dropped(&self) -> &[InvalidRow] {
        &self.dropped
    }

    /// Number of usable rows.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True if there is no usable row (never the case for a catalogue from [`read_catalog`]).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Mean, spread and range of regression targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetSummary {
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Mean.
    pub mean: f64,
    /// Population standard deviation.
    pub std: f64,
}

impl TargetSummary {
    /// Summary of `values` (`None` if there is none).
    pub fn of(values: &[f32]) -> Option<TargetSummary> {
        if values.is_empty() {
            return None;
        }
        let n = values.len() as f64;
        let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = values
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        Some(TargetSummary {
            min: values.iter().copied().fold(f32::INFINITY, f32::min).into(),
            max: values
                .iter()
                .copied()
                .fold(f32::NEG_INFINITY, f32::max)
                .into(),
            mean,
            std: var.sqrt(),
        })
    }
}

/// What [`read_catalog`] read and kept, for the log and for `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogReport {
    /// The catalogue file.
    pub path: PathBuf,
    /// The id column.
    pub id_column: String,
    /// The target column.
    pub target_column: String,
    /// The task.
    pub task: Task,
    /// True if the task was inferred from the values rather than given.
    pub task_inferred: bool,
    /// Data rows in the file.
    pub rows: usize,
    /// Usable rows kept.
    pub kept: usize,
    /// Rows skipped as invalid (with `drop_invalid`).
    pub dropped_invalid: usize,
    /// The first [`EXAMPLES`] skipped rows, with their lines.
    pub dropped_examples: Vec<InvalidRow>,
    /// Galaxies per class (classification only).
    pub classes: Option<Vec<ClassCount>>,
    /// Range and spread of the targets (regression only).
    pub target_summary: Option<TargetSummary>,
}

impl fmt::Display for CatalogReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} rows, {} kept",
            self.path.display(),
            self.rows,
            self.kept
        )?;
        if self.dropped_invalid > 0 {
            write!(
                f,
                ", {} skipped as invalid ({})",
                self.dropped_invalid,
                list_more(&self.dropped_examples, self.dropped_invalid)
            )?;
        }
        write!(
            f,
            "; task {}{} on `{}`",
            self.task,
            if self.task_inferred {
                " (inferred)"
            } else {
                ""
            },
            self.target_column
        )?;
        if let Some(classes) = &self.classes {
            let list: Vec<String> = classes
                .iter()
                .map(|c| format!("{}: {}", c.name, c.count))
                .collect();
            write!(f, " ({} classes: {})", classes.len(), list.join(", "))?;
        }
        if let Some(s) = &self.target_summary {
            write!(
                f,
                " (mean {:.4}, std {:.4}, range {}..{})",
                s.mean, s.std, s.min, s.max
            )?;
        }
        Ok(())
    }
}

/// The galaxies that have both a usable catalogue row and an image, in image order.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    /// Galaxy ids of the kept galaxies.
    pub ids: Vec<String>,
    /// For each kept galaxy, its index into the `image_ids` given to [`join_images`] (increasing).
    pub image_indices: Vec<usize>,
    /// For each kept galaxy, its index into [`Catalog::ids`].
    pub catalog_indices: Vec<usize>,
    /// Targets of the kept galaxies (a classification keeps all the catalogue's class names).
    pub targets: Targets,
    /// Usable catalogue ids without an image, in catalogue order.
    pub missing_images: Vec<String>,
    /// Images without any catalogue row, in image order.
    pub unlisted_images: Vec<String>,
    /// Images whose catalogue row was skipped as invalid, in image order.
    pub invalid_target_images: Vec<String>,
}

impl Joined {
    /// Number of kept galaxies.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True if no galaxy was kept (never the case for a result of [`join_images`]).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Counts and first ids of what was kept and skipped.
    pub fn report(&self) -> JoinReport {
        let first = |v: &[String]| v.iter().take(EXAMPLES).cloned().collect::<Vec<_>>();
        JoinReport {
            images: self.ids.len() + self.unlisted_images.len() + self.invalid_target_images.len(),
            catalog_rows: self.ids.len() + self.missing_images.len(),
            kept: self.ids.len(),
            missing_images: self.missing_images.len(),
            missing_image_examples: first(&self.missing_images),
            unlisted_images: self.unlisted_images.len(),
            unlisted_image_examples: first(&self.unlisted_images),
            invalid_target_images: self.invalid_target_images.len(),
            invalid_target_image_examples: first(&self.invalid_target_images),
            classes: self.targets.class_counts(),
        }
    }
}

/// What [`join_images`] kept and skipped, for the log and for `metrics.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinReport {
    /// Images given.
    pub images: usize,
    /// Usable catalogue rows.
    pub catalog_rows: usize,
    /// Galaxies with both.
    pub kept: usize,
    /// Catalogue ids without an image.
    pub missing_images: usize,
    /// The first [`EXAMPLES`] of them.
    pub missing_image_examples: Vec<String>,
    /// Images without a catalogue row.
    pub unlisted_images: usize,
    /// The first [`EXAMPLES`] of them.
    pub unlisted_image_examples: Vec<String>,
    /// Images whose catalogue row was skipped as invalid.
    pub invalid_target_images: usize,
    /// The first [`EXAMPLES`] of them.
    pub invalid_target_image_examples: Vec<String>,
    /// Kept galaxies per class (classification only).
    pub classes: Option<Vec<ClassCount>>,
}

impl fmt::Display for JoinReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "galaxies with an image and a catalogue row: {}",
            self.kept
        )?;
        if self.missing_images > 0 {
            write!(
                f,
                "; {} catalogue ids have no image ({})",
                self.missing_images,
                list_more(&quoted(&self.missing_image_examples), self.missing_images)
            )?;
        }
        if self.unlisted_images > 0 {
            write!(
                f,
                "; {} images are not in the catalogue ({})",
                self.unlisted_images,
                list_more(&quoted(&self.unlisted_image_examples), self.unlisted_images)
            )?;
        }
        if self.invalid_target_images > 0 {
            write!(
                f,
                "; {} images have an invalid catalogue row ({})",
                self.invalid_target_images,
                list_more(
                    &quoted(&self.invalid_target_image_examples),
                    self.invalid_target_images
                )
            )?;
        }
        Ok(())
    }
}

/// Reads the catalogue at `path`: ids from `id_column`, targets from `target_column`.
///
/// `task` `None` infers the task from the values (see the module docs). With `drop_invalid`, rows
/// with an empty id or an unusable target are skipped and reported instead of being an error.
/// Every other problem is an error naming the file: an absent column (listing the columns there
/// are), a row too short, duplicate ids (with their lines), non-numeric values to regress, fewer
/// than two classes.
pub fn read_catalog(
    path: impl AsRef<Path>,
    id_column: &str,
    target_column: &str,
    task: Option<Task>,
    drop_invalid: bool,
) -> Result<(Catalog, CatalogReport), TrainDataError> {
    let path = path.as_ref();
    let rows = sdss_io::stack::read_csv(path)?;
    let mut rows = rows.into_iter();
    let Some((_, header)) = rows.next() else {
        return Err(TrainDataError::EmptyFile {
            path: path.to_owned(),
        });
    };
    let header: Vec<String> = header.iter().map(|h| h.trim().to_owned()).collect();
    let id_col = find_column(path, &header, id_column, "the galaxy ids (--id-column)")?;
    let target_col = find_column(path, &header, target_column, "the target (--target)")?;
    let rows: Vec<(usize, Vec<String>)> = rows.collect();
    if rows.is_empty() {
        return Err(TrainDataError::NoRows {
            path: path.to_owned(),
        });
    }

    // (line, id, value), all trimmed.
    let mut records = Vec::with_capacity(rows.len());
    for (line, fields) in &rows {
        for (col, name) in [(id_col, id_column), (target_col, target_column)] {
            if fields.len() <= col {
                return Err(TrainDataError::ShortRow {
                    path: path.to_owned(),
                    line: *line,
                    found: fields.len(),
                    needed: col + 1,
                    column: name.to_owned(),
                });
            }
        }
        records.push((*line, fields[id_col].trim(), fields[target_col].trim()));
    }
    check_duplicates(
        path,
        id_column,
        records
            .iter()
            .filter(|(_, id, _)| !id.is_empty())
            .map(|&(line, id, _)| (id, line)),
    )?;

    let (task, task_inferred) = match task {
        Some(t) => (t, false),
        None => (infer_task(path, target_column, &records)?, true),
    };
    if task_inferred {
        tracing::info!(file = %path.display(), column = target_column, %task, "inferred the task from the target values");
    }

    let mut invalid = Vec::new();
    let mut non_numeric = Vec::new();
    let mut non_numeric_count = 0;
    let mut ids = Vec::with_capacity(records.len());
    let mut lines = Vec::with_capacity(records.len());
    let mut values = Vec::new();
    let mut names = Vec::new();
    for &(line, id, value) in &records {
        let problem = if id.is_empty() {
            Some(InvalidKind::EmptyId)
        } else {
            match task {
                Task::Regress => match parse_number(value) {
                    Ok(v) => {
                        values.push(v);
                        None
                    }
                    Err(Some(kind)) => Some(kind),
                    Err(None) => {
                        non_numeric_count += 1;
                        if non_numeric.len() < EXAMPLES {
                            non_numeric.push((line, value.to_owned()));
                        }
                        continue;
                    }
                },
                Task::Classify if is_missing(value) => Some(InvalidKind::Missing),
                Task::Classify => {
                    names.push(value);
                    None
                }
            }
        };
        match problem {
            Some(kind) => invalid.push(InvalidRow {
                line,
                id: id.to_owned(),
                value: value.to_owned(),
                kind,
            }),
            None => {
                ids.push(id.to_owned());
                lines.push(line);
            }
        }
    }
    if non_numeric_count > 0 {
        return Err(TrainDataError::NonNumericTarget {
            path: path.to_owned(),
            column: target_column.to_owned(),
            count: non_numeric_count,
            examples: non_numeric,
        });
    }
    if !invalid.is_empty() && !drop_invalid {
        return Err(TrainDataError::InvalidRows {
            path: path.to_owned(),
            column: target_column.to_owned(),
            count: invalid.len(),
            examples: invalid.into_iter().take(EXAMPLES).collect(),
        });
    }
    if ids.is_empty() {
        return Err(TrainDataError::NoValidRows {
            path: path.to_owned(),
            column: target_column.to_owned(),
            dropped: invalid.len(),
        });
    }
    if !invalid.is_empty() {
        tracing::warn!(
            file = %path.display(),
            dropped = invalid.len(),
            "skipping rows with an unusable `{target_column}` or an empty id: {}",
            list_more(&invalid[..invalid.len().min(EXAMPLES)], invalid.len())
        );
    }

    let targets = match task {
        Task::Regress => {
            hint_integer_targets(path, target_column, &values);
            Targets::Regression(values)
        }
        Task::Classify => {
            let targets = classes_of(&names);
            if let Targets::Classes { names: classes, .. } = &targets {
                if classes.len() < 2 {
                    return Err(TrainDataError::TooFewClasses {
                        path: path.to_owned(),
                        column: target_column.to_owned(),
                        classes: classes.clone(),
                        galaxies: ids.len(),
                        after_join: false,
                    });
                }
                if classes.len() > 20 && classes.len() * 2 > ids.len() {
                    tracing::warn!(
                        file = %path.display(),
                        column = target_column,
                        "{} classes for {} galaxies: is this really a class column?",
                        classes.len(),
                        ids.len()
                    );
                }
            }
            targets
        }
    };

    let report = CatalogReport {
        path: path.to_owned(),
        id_column: id_column.to_owned(),
        target_column: target_column.to_owned(),
        task,
        task_inferred,
        rows: records.len(),
        kept: ids.len(),
        dropped_invalid: invalid.len(),
        dropped_examples: invalid.iter().take(EXAMPLES).cloned().collect(),
        classes: targets.class_counts(),
        target_summary: match &targets {
            Targets::Regression(v) => TargetSummary::of(v),
            Targets::Classes { .. } => None,
        },
    };
    let catalog = Catalog {
        path: path.to_owned(),
        id_column: id_column.to_owned(),
        target_column: target_column.to_owned(),
        ids,
        lines,
        targets,
        dropped: invalid,
    };
    Ok((catalog, report))
}

/// Pairs the catalogue's galaxies with images by id. The result follows the order of `image_ids`
/// and does not depend on the catalogue's row order.
///
/// Errors: two images with the same id; no galaxy in common (naming both counts and a few ids of
/// each side, with a hint when the ids differ only by leading zeros, case or an extension); for a
/// classification, fewer than two classes among the galaxies kept.
pub fn join_images(catalog: &Catalog, image_ids: &[String]) -> Result<Joined, TrainDataError> {
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(image_ids.len());
    let mut dup_images = Vec::new();
    let mut dup_count = 0;
    for id in image_ids {
        let n = seen.entry(id.as_str()).or_insert(0);
        *n += 1;
        if *n == 2 {
            dup_count += 1;
            if dup_images.len() < EXAMPLES {
                dup_images.push(id.clone());
            }
        }
    }
    if dup_count > 0 {
        return Err(TrainDataError::DuplicateImageIds {
            count: dup_count,
            examples: dup_images,
        });
    }

    let by_id: HashMap<&str, usize> = catalog
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let dropped: HashSet<&str> = catalog
        .dropped
        .iter()
        .filter(|r| !r.id.is_empty())
        .map(|r| r.id.as_str())
        .collect();
    let mut ids = Vec::new();
    let mut image_indices = Vec::new();
    let mut catalog_indices = Vec::new();
    let mut unlisted_images = Vec::new();
    let mut invalid_target_images = Vec::new();
    for (i, id) in image_ids.iter().enumerate() {
        if let Some(&c) = by_id.get(id.as_str()) {
            ids.push(id.clone());
            image_indices.push(i);
            catalog_indices.push(c);
        } else if dropped.contains(id.as_str()) {
            invalid_target_images.push(id.clone());
        } else {
            unlisted_images.push(id.clone());
        }
    }
    let missing_images: Vec<String> = catalog
        .ids
        .iter()
        .filter(|id| !seen.contains_key(id.as_str()))
        .cloned()
        .collect();
    if ids.is_empty() {
        return Err(TrainDataError::EmptyJoin {
            path: catalog.path.clone(),
            catalog_ids: catalog.ids.len(),
            images: image_ids.len(),
            catalog_examples: catalog.ids.iter().take(5).cloned().collect(),
            image_examples: image_ids.iter().take(5).cloned().collect(),
            hint: join_hint(&catalog.ids, image_ids),
        });
    }
    let targets = catalog.targets.select(&catalog_indices);
    if let Targets::Classes { labels, names } = &targets {
        let mut present: Vec<usize> = labels.clone();
        present.sort_unstable();
        present.dedup();
        if present.len() < 2 {
            return Err(TrainDataError::TooFewClasses {
                path: catalog.path.clone(),
                column: catalog.target_column.clone(),
                classes: present.iter().map(|&l| names[l].clone()).collect(),
                galaxies: labels.len(),
                after_join: true,
            });
        }
    }
    Ok(Joined {
        ids,
        image_indices,
        catalog_indices,
        targets,
        missing_images,
        unlisted_images,
        invalid_target_images,
    })
}

fn find_column(
    path: &Path,
    header: &[String],
    column: &str,
    role: &'static str,
) -> Result<usize, TrainDataError> {
    let want = column.trim();
    let positions: Vec<usize> = header
        .iter()
        .enumerate()
        .filter(|(_, h)| h.as_str() == want)
        .map(|(i, _)| i)
        .collect();
    match positions.as_slice() {
        [one] => Ok(*one),
        [] => Err(TrainDataError::MissingColumn {
            path: path.to_owned(),
            column: column.to_owned(),
            role,
            available: header.to_vec(),
        }),
        many => Err(TrainDataError::DuplicateColumn {
            path: path.to_owned(),
            column: column.to_owned(),
            role,
            positions: many.iter().map(|p| p + 1).collect(),
        }),
    }
}

/// Errors if an id appears on more than one line.
pub(crate) fn check_duplicates<'a>(
    path: &Path,
    column: &str,
    ids: impl Iterator<Item = (&'a str, usize)>,
) -> Result<(), TrainDataError> {
    let mut first_seen: Vec<&str> = Vec::new();
    let mut lines: HashMap<&str, Vec<usize>> = HashMap::new();
    for (id, line) in ids {
        let entry = lines.entry(id).or_default();
        if entry.is_empty() {
            first_seen.push(id);
        }
        entry.push(line);
    }
    let dups: Vec<DuplicateId> = first_seen
        .into_iter()
        .filter(|id| lines[id].len() > 1)
        .map(|id| DuplicateId {
            id: id.to_owned(),
            lines: lines[id].clone(),
        })
        .collect();
    if dups.is_empty() {
        return Ok(());
    }
    Err(TrainDataError::DuplicateIds {
        path: path.to_owned(),
        column: column.to_owned(),
        count: dups.len(),
        examples: dups.into_iter().take(EXAMPLES).collect(),
    })
}

/// The strings pandas' `read_csv` takes as missing by default.
const MISSING_TOKENS: [&str; 19] = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
];

/// True for an empty field, a missing-value marker, or any spelling of NaN.
fn is_missing(value: &str) -> bool {
    MISSING_TOKENS.contains(&value) || value.parse::<f64>().is_ok_and(f64::is_nan)
}

/// A usable regression target, or why not (`Err(None)`: not a number at all).
fn parse_number(value: &str) -> Result<f32, Option<InvalidKind>> {
    match value.parse::<f64>() {
        Ok(v) if v.is_nan() => Err(Some(InvalidKind::NotANumber)),
        Ok(v) if v.is_infinite() => Err(Some(InvalidKind::Infinite)),
        Ok(v) if (v as f32).is_infinite() => Err(Some(InvalidKind::OutOfRange)),
        Ok(v) => Ok(v as f32),
        Err(_) if is_missing(value) => Err(Some(InvalidKind::Missing)),
        Err(_) => Err(None),
    }
}

fn infer_task(
    path: &Path,
    column: &str,
    records: &[(usize, &str, &str)],
) -> Result<Task, TrainDataError> {
    let mut numeric = 0;
    let mut other = Vec::new();
    let mut other_count = 0;
    for &(line, id, value) in records {
        if id.is_empty() || is_missing(value) {
            continue;
        }
        if value.parse::<f64>().is_ok() {
            numeric += 1;
        } else {
            other_count += 1;
            if other.len() < EXAMPLES {
                other.push((line, value.to_owned()));
            }
        }
    }
    match (numeric, other_count) {
        (_, 0) => Ok(Task::Regress),
        (0, _) => Ok(Task::Classify),
        _ => Err(TrainDataError::MixedTargets {
            path: path.to_owned(),
            column: column.to_owned(),
            numeric,
            non_numeric: other_count,
            examples: other,
        }),
    }
}

/// Logs a hint when regression targets look like class codes (few distinct integers).
fn hint_integer_targets(path: &Path, column: &str, values: &[f32]) {
    if !values.iter().all(|v| v.fract() == 0.0) {
        return;
    }
    let mut distinct: Vec<f32> = values.to_vec();
    distinct.sort_by(f32::total_cmp);
    distinct.dedup();
    if distinct.len() <= 10 {
        tracing::info!(
            file = %path.display(),
            column,
            "the targets are {} distinct integers: pass --task classify to treat them as classes",
            distinct.len()
        );
    }
}

/// Labels indexing the sorted distinct names.
fn classes_of(values: &[&str]) -> Targets {
    let mut names: Vec<&str> = values.to_vec();
    names.sort_unstable();
    names.dedup();
    let numbers: Option<Vec<f64>> = names.iter().map(|n| n.parse::<f64>().ok()).collect();
    if let Some(numbers) = numbers {
        let mut order: Vec<usize> = (0..names.len()).collect();
        order.sort_by(|&a, &b| {
            numbers[a]
                .total_cmp(&numbers[b])
                .then_with(|| names[a].cmp(names[b]))
        });
        names = order.into_iter().map(|i| names[i]).collect();
    }
    let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    Targets::Classes {
        labels: values.iter().map(|v| index[v]).collect(),
        names: names.into_iter().map(str::to_owned).collect(),
    }
}

/// Why two id lists may fail to match, if a looser comparison makes them match.
fn join_hint(catalog_ids: &[String], image_ids: &[String]) -> String {
    fn loose(id: &str) -> String {
        let mut s = id.trim().to_lowercase();
        for ext in [".jpg", ".jpeg", ".png"] {
            if let Some(stem) = s.strip_suffix(ext) {
                s = stem.to_owned();
            }
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            let t = s.trim_start_matches('0');
            s = if t.is_empty() { "0".into() } else { t.into() };
        }
        s
    }
    let images: HashMap<String, &str> = image_ids
        .iter()
        .map(|id| (loose(id), id.as_str()))
        .collect();
    for id in catalog_ids {
        if let Some(image) = images.get(&loose(id)) {
            return format!(
                "; the ids would match if leading zeros, case and extensions were ignored (catalogue `{id}`, image `{image}`): make them the same"
            );
        }
    }
    if !catalog_ids.is_empty() && !image_ids.is_empty() {
        return "; check --id-column and --images".to_owned();
    }
    String::new()
}

pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

pub(crate) fn join<T: fmt::Display>(items: &[T], sep: &str) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

/// `items` separated by `; `, then "… (N in all)" when `total` is larger.
pub(crate) fn list_more<T: fmt::Display>(items: &[T], total: usize) -> String {
    let mut s = join(items, "; ");
    if total > items.len() {
        s.push_str(&format!("; … ({total} in all)"));
    }
    s
}

pub(crate) fn quoted(items: &[String]) -> Vec<String> {
    items.iter().map(|s| format!("`{s}`")).collect()
}

pub(crate) fn quoted_list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        quoted(items).join(", ")
    }
}

fn line_values(items: &[(usize, String)]) -> Vec<String> {
    items
        .iter()
        .map(|(line, v)| format!("line {line}: `{v}`"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_numbers() {
        assert!(is_missing(""));
        assert!(is_missing("NA"));
        assert!(is_missing("NAN"));
        assert!(is_missing("-nan"));
        assert!(!is_missing("0"));
        assert!(!is_missing("E"));
        assert_eq!(parse_number("1e3"), Ok(1000.0));
        assert_eq!(parse_number("-inf"), Err(Some(InvalidKind::Infinite)));
        assert_eq!(parse_number("nan"), Err(Some(InvalidKind::NotANumber)));
        assert_eq!(parse_number("1e39"), Err(Some(InvalidKind::OutOfRange)));
        assert_eq!(parse_number("null"), Err(Some(InvalidKind::Missing)));
        assert_eq!(parse_number("Sa"), Err(None));
    }

    #[test]
    fn classes_sort_numerically_when_numeric() {
        let Targets::Classes { labels, names } = classes_of(&["10", "2", "1", "2"]) else {
            panic!()
        };
        assert_eq!(names, ["1", "2", "10"]);
        assert_eq!(labels, [2, 1, 0, 1]);
        let Targets::Classes { labels, names } = classes_of(&["S", "E", "Irr", "E"]) else {
            panic!()
        };
        assert_eq!(names, ["E", "Irr", "S"]);
        assert_eq!(labels, [2, 0, 1, 0]);
    }

    #[test]
    fn join_hint_spots_leading_zeros() {
        let h = join_hint(&["7".into(), "8".into()], &["0007".into()]);
        assert!(h.contains("`7`") && h.contains("`0007`"), "{h}");
        let h = join_hint(&["a".into()], &["b".into()]);
        assert!(h.contains("--id-column"), "{h}");
    }

    #[test]
    fn task_parses() {
        assert_eq!("Regress".parse::<Task>(), Ok(Task::Regress));
        assert_eq!("classification".parse::<Task>(), Ok(Task::Classify));
        assert!("cluster".parse::<Task>().is_err());
        assert_eq!(
            serde_json::to_string(&Task::Classify).unwrap(),
            "\"classify\""
        );
    }

    #[test]
    fn from_parts_checks() {
        let ids = vec!["a".to_string(), "b".to_string()];
        let c = Catalog::from_parts(
            "mem",
            "id",
            "y",
            ids.clone(),
            Targets::Regression(vec![1.0, 2.0]),
        )
        .unwrap();
        assert_eq!(c.lines(), [2, 3]);
        assert!(matches!(
            Catalog::from_parts(
                "mem",
                "id",
                "y",
                ids.clone(),
                Targets::Regression(vec![1.0])
            ),
            Err(TrainDataError::LengthMismatch { .. })
        ));
        assert!(matches!(
            Catalog::from_parts(
                "mem",
                "id",
                "y",
                vec!["a".into(), "a".into()],
                Targets::Regression(vec![1.0, 2.0])
            ),
            Err(TrainDataError::DuplicateIds { .. })
        ));
        assert!(matches!(
            Catalog::from_parts(
                "mem",
                "id",
                "y",
                ids,
                Targets::Classes {
                    labels: vec![0, 0],
                    names: vec!["E".into()]
                }
            ),
            Err(TrainDataError::TooFewClasses { .. })
        ));
    }
}
