//! `similar` ("galaxies like this one") and `duplicates`: nearest-neighbour search over a feature
//! matrix with sdss-neighbors.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use ndarray::{Array2, Array3};
use sdss_neighbors::{ExactIndex, IdIndex, IvfIndex, Metric, Neighbor, NeighborIndex};

use crate::progress::Progress;
use crate::report::gallery;

/// Distance for `similar`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MetricArg {
    /// Straight-line distance: the geometry PCA and k-means use.
    Euclidean,
    /// 1 - cosine similarity: ignores overall scale (common for CNN features).
    Cosine,
}

impl From<MetricArg> for Metric {
    fn from(m: MetricArg) -> Self {
        match m {
            MetricArg::Euclidean => Metric::Euclidean,
            MetricArg::Cosine => Metric::Cosine,
        }
    }
}

/// Arguments of `similar`.
#[derive(Debug, Clone, Args)]
pub struct SimilarArgs {
    /// (N, D) feature matrix (.npy): CNN features, PCA scores (a run's pca.npy) or pixels.
    #[arg(long, value_name = "X.npy")]
    pub features: PathBuf,
    /// Galaxy ids, one per row (default: `<stem>.ids.csv` beside the features).
    #[arg(long, value_name = "ids.csv")]
    pub ids: Option<PathBuf>,
    /// Galaxy to find look-alikes of (repeatable).
    #[arg(long, value_name = "ID")]
    pub query: Vec<String>,
    /// A file of galaxy ids to query, one per line (blank lines and `#` comments ignored).
    #[arg(long, value_name = "FILE")]
    pub query_file: Option<PathBuf>,
    /// Neighbours per query.
    #[arg(long, default_value_t = 12)]
    pub k: usize,
    /// Distance.
    #[arg(long, value_enum, default_value = "euclidean")]
    pub metric: MetricArg,
    /// Folder of the original images (file stem = galaxy id), for the galleries. Without it the
    /// galleries are drawn from the features when they are raw pixels (80 x 80 x 3), and skipped
    /// otherwise.
    #[arg(long, value_name = "DIR")]
    pub images: Option<PathBuf>,
    /// Use the approximate (inverted-file) index: for very large sets; recall@10 >= 0.97 on a
    /// calibration sample, distances still exact.
    #[arg(long)]
    pub approximate: bool,
    /// Output folder for neighbours.csv and one gallery PNG per query.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Arguments of `duplicates`.
#[derive(Debug, Clone, Args)]
pub struct DuplicatesArgs {
    /// (N, D) feature matrix (.npy) to compare.
    #[arg(
        long,
        value_name = "X.npy",
        conflicts_with = "images",
        required_unless_present = "images"
    )]
    pub features: Option<PathBuf>,
    /// A folder of images whose pixels (resized to 80 x 80) are compared.
    #[arg(long, value_name = "DIR")]
    pub images: Option<PathBuf>,
    /// Galaxy ids of the feature rows (default: `<stem>.ids.csv` beside the features, else row numbers).
    #[arg(long, value_name = "ids.csv")]
    pub ids: Option<PathBuf>,
    /// Largest Euclidean distance at which two galaxies count as duplicates; 0 means identical values.
    /// A group joins galaxies linked by a chain of such pairs.
    #[arg(long, default_value_t = 0.0)]
    pub threshold: f32,
    /// Write the groups as CSV (`group,id`) here instead of to standard output.
    #[arg(long, value_name = "FILE.csv")]
    pub out: Option<PathBuf>,
}

/// `sdss-clustering similar`.
pub fn similar(args: &SimilarArgs, progress: &Progress) -> Result<()> {
    let x = sdss_io::npy::read_matrix_f32(&args.features)?;
    let ids_path = match &args.ids {
        Some(p) => p.clone(),
        None => {
            let beside = sdss_io::stack::ids_path_for(&args.features);
            if !beside.exists() {
                bail!(
                    "--ids: no ids given and {} does not exist; pass --ids FILE (a run's ids.csv)",
                    beside.display()
                );
            }
            beside
        }
    };
    let ids = sdss_io::read_ids_csv(&ids_path)?;
    let ids = IdIndex::new(ids, x.nrows()).map_err(|e| {
        anyhow::anyhow!(
            "{} and {}: {e}",
            ids_path.display(),
            args.features.display()
        )
    })?;
    let mut queries = args.query.clone();
    if let Some(file) = &args.query_file {
        queries.extend(read_query_file(file)?);
    }
    if queries.is_empty() {
        bail!("no query: give --query ID (repeatable) or --query-file FILE");
    }
    let rows = queries
        .iter()
        .map(|q| {
            ids.row(q)
                .map_err(|e| anyhow::anyhow!("--query: {e} (not in {})", ids_path.display()))
        })
        .collect::<Result<Vec<usize>>>()?;
    let n = x.nrows();
    if args.k == 0 || args.k >= n {
        bail!(
            "--k {}: must be between 1 and {} (the other galaxies in {})",
            args.k,
            n.saturating_sub(1),
            args.features.display()
        );
    }
    let metric = Metric::from(args.metric);
    let spinner = progress.spinner("indexing");
    let index: Box<dyn NeighborIndex> = if args.approximate {
        let ivf = IvfIndex::new(x.view(), metric)
            .map_err(|e| anyhow::anyhow!("{}: {e}", args.features.display()))?;
        tracing::info!(
            "approximate index: {} cells, {} scanned per query (estimated recall@10 {:.3})",
            ivf.n_lists(),
            ivf.n_probe(),
            ivf.estimated_recall().unwrap_or(f32::NAN)
        );
        Box::new(ivf)
    } else {
        Box::new(
            ExactIndex::new(x.view(), metric)
                .map_err(|e| anyhow::anyhow!("{}: {e}", args.features.display()))?,
        )
    };
    spinner.finish_and_clear();
    let results = rows
        .iter()
        .map(|&r| index.query_row(r, args.k).map_err(anyhow::Error::from))
        .collect::<Result<Vec<_>>>()?;

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("--out {}: cannot create", args.out.display()))?;
    let csv = args.out.join("neighbours.csv");
    write_neighbours_csv(
        &csv,
        ids.ids(),
        rows.iter().copied().zip(results.iter().cloned()),
    )?;

    let pictures = Pictures::new(args.images.as_deref(), &x, ids.ids())?;
    let mut written = 0;
    if let Some(pictures) = &pictures {
        let bar = progress.bar(rows.len() as u64, "galleries");
        for (&row, found) in rows.iter().zip(&results) {
            let id = &ids.ids()[row];
            let mut tiles = vec![(pictures.get(row)?, [id.clone(), "query".to_owned()])];
            for (rank, nb) in found.iter().enumerate() {
                tiles.push((
                    pictures.get(nb.index)?,
                    [
                        format!("{}. {}", rank + 1, ids.ids()[nb.index]),
                        format!("d = {:.4}", nb.distance),
                    ],
                ));
            }
            let file = args.out.join(format!("similar_{}.png", file_safe(id)));
            gallery::captioned(
                &file,
                &format!(
                    "Galaxies like {id}: {} nearest by {} distance",
                    found.len(),
                    metric
                ),
                &tiles,
                2,
            )?;
            written += 1;
            bar.inc(1);
        }
        bar.finish_and_clear();
    } else {
        tracing::warn!(
            "no galleries: the features are not raw pixels and no --images folder was given"
        );
    }
    println!(
        "{} quer{} x {} neighbours -> {}{}",
        rows.len(),
        if rows.len() == 1 { "y" } else { "ies" },
        args.k,
        csv.display(),
        if written > 0 {
            format!(" ({written} galleries in {})", args.out.display())
        } else {
            String::new()
        }
    );
    Ok(())
}

/// `sdss-clustering duplicates`.
pub fn duplicates(args: &DuplicatesArgs, progress: &Progress) -> Result<()> {
    if !args.threshold.is_finite() || args.threshold < 0.0 {
        bail!(
            "--threshold {}: must be a distance >= 0 (0: identical)",
            args.threshold
        );
    }
    let (x, ids, source): (Array2<f32>, Vec<String>, String) = match (&args.features, &args.images)
    {
        (Some(path), None) => {
            let x = sdss_io::npy::read_matrix_f32(path)?;
            let ids = match &args.ids {
                Some(p) => sdss_io::read_ids_csv(p)?,
                None => {
                    let beside = sdss_io::stack::ids_path_for(path);
                    if beside.exists() {
                        sdss_io::read_ids_csv(&beside)?
                    } else {
                        (0..x.nrows()).map(|i| i.to_string()).collect()
                    }
                }
            };
            (x, ids, path.display().to_string())
        }
        (None, Some(dir)) => {
            let spinner = progress.spinner("loading images");
            let loaded = sdss_io::load_image_folder(dir, &sdss_io::LoadOptions::default())?;
            spinner.finish_and_clear();
            let x = loaded.stack.pixel_matrix().to_owned();
            (x, loaded.stack.ids().to_vec(), dir.display().to_string())
        }
        _ => bail!("give exactly one of --features or --images"),
    };
    if ids.len() != x.nrows() {
        bail!(
            "{} galaxy ids for {} rows of {source}",
            ids.len(),
            x.nrows()
        );
    }
    let spinner = progress.spinner("comparing");
    let groups = sdss_neighbors::duplicates(x.view(), args.threshold)
        .map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
    spinner.finish_and_clear();
    let members: usize = groups.iter().map(Vec::len).sum();
    let write = |w: &mut dyn std::io::Write| -> std::io::Result<()> {
        writeln!(w, "group,id")?;
        for (g, group) in groups.iter().enumerate() {
            for &i in group {
                writeln!(w, "{g},{}", sdss_io::stack::csv_field(&ids[i]))?;
            }
        }
        Ok(())
    };
    match &args.out {
        Some(path) => {
            sdss_io::atomic::write_atomic(path, |w| write(w))?;
        }
        None => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            write(&mut lock).context("cannot write to standard output")?;
        }
    }
    let summary = format!(
        "{} duplicate group(s) covering {members} of {} galaxies ({})",
        groups.len(),
        x.nrows(),
        if args.threshold == 0.0 {
            "identical values".to_owned()
        } else {
            format!("distance <= {}", args.threshold)
        }
    );
    match &args.out {
        Some(path) => println!("{summary} -> {}", path.display()),
        None => eprintln!("{summary}"),
    }
    Ok(())
}

/// Writes `query_id,rank,neighbor_id,distance` rows, ranks from 1.
pub fn write_neighbours_csv(
    path: &Path,
    ids: &[String],
    rows: impl IntoIterator<Item = (usize, Vec<Neighbor>)>,
) -> Result<()> {
    sdss_io::atomic::write_atomic(path, |w| {
        writeln!(w, "query_id,rank,neighbor_id,distance")?;
        for (row, found) in rows {
            let q = sdss_io::stack::csv_field(&ids[row]);
            for (rank, nb) in found.iter().enumerate() {
                writeln!(
                    w,
                    "{q},{},{},{}",
                    rank + 1,
                    sdss_io::stack::csv_field(&ids[nb.index]),
                    nb.distance
                )?;
            }
        }
        Ok(())
    })?;
    Ok(())
}

/// Galaxy ids from a query file: one per line, or the first field of a CSV line.
fn read_query_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--query-file {}: cannot read", path.display()))?;
    let ids: Vec<String> = text
        .lines()
        .map(|l| l.split(',').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#') && *l != "id")
        .map(str::to_owned)
        .collect();
    if ids.is_empty() {
        bail!("--query-file {}: no galaxy ids in it", path.display());
    }
    Ok(ids)
}

/// An id made safe as part of a file name.
pub fn file_safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Where the gallery pictures come from.
enum Pictures<'a> {
    /// Each row's id and original image file, if the folder has one.
    Files(Vec<(String, Option<PathBuf>)>),
    /// The feature rows are pixels of (side, side, 3) images in [0, 1].
    Pixels(&'a Array2<f32>, usize),
}

impl<'a> Pictures<'a> {
    fn new(images: Option<&Path>, x: &'a Array2<f32>, ids: &[String]) -> Result<Option<Self>> {
        if let Some(dir) = images {
            let files = sdss_io::folder::list_images(dir)?;
            let by_id: HashMap<String, PathBuf> = files
                .into_iter()
                .map(|p| (sdss_io::folder::galaxy_id(&p), p))
                .collect();
            // Only the galaxies shown need a file; a missing one is an error when it is drawn.
            let rows = ids
                .iter()
                .map(|id| (id.clone(), by_id.get(id).cloned()))
                .collect();
            return Ok(Some(Pictures::Files(rows)));
        }
        let d = x.ncols();
        let side = ((d / 3) as f64).sqrt().round() as usize;
        if d.is_multiple_of(3) && side * side * 3 == d && side >= 8 {
            let in_range = x.iter().all(|&v| (0.0..=1.0).contains(&v));
            if in_range {
                return Ok(Some(Pictures::Pixels(x, side)));
            }
        }
        Ok(None)
    }

    fn get(&self, row: usize) -> Result<Array3<f32>> {
        match self {
            Pictures::Files(files) => {
                let (id, file) = &files[row];
                let file = file
                    .as_ref()
                    .with_context(|| format!("--images: no image file for galaxy `{id}`"))?;
                Ok(sdss_io::load_image(file, &sdss_io::Preprocess::default())?)
            }
            Pictures::Pixels(x, side) => Ok(x
                .row(row)
                .to_owned()
                .into_shape_with_order((*side, *side, 3))
                .context("pixel row does not reshape to an image")?),
        }
    }
}
