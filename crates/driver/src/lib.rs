//! The `sdss-clustering` command. It only composes sdss-io, sdss-cnn, sdss-pca, sdss-cluster and
//! sdss-train; every algorithm lives in those crates.
//!
//! The command is a library with a one-line `main` so that the fuzz targets (`fuzz/`) reach the same
//! parsers the command runs, such as the `run --config` TOML ([`config`]).

mod catalog;
pub mod cli;
pub mod config;
mod fetch;
mod input;
mod map;
pub mod output_lock;
mod pipeline;
mod progress;
mod properties;
mod report;
mod shard;
mod similar;
mod stages;
mod tables;
mod train;
mod train_ssl;
mod unusual;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;
use ndarray::Array1;
use serde_json::json;

use cli::{Cli, ClusterArgs, Command, EvaluateArgs, FeatureKind, FeaturesArgs, PcaArgs, RunArgs};
use config::{PcaSize, RunConfig};
use progress::Progress;

/// The bundled example galaxies (synthetic, with known classes), used when `run` is given no input.
const BUNDLED_GALAXIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/galaxies");
/// Real SDSS cutouts fetched by `cargo xtask fetch-fixtures`, preferred when present.
const FETCHED_GALAXIES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../fixtures/real-galaxies/images"
);

/// The fewest fetched galaxies the default run uses: the largest k of `config::DEFAULT_METHODS` (Ward 32).
const MIN_FETCHED_GALAXIES: usize = 32;

/// Runs the command line of this process and returns its exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.quiet);
    let progress = Progress::new(cli.quiet);
    let result = match cli.command {
        None => run_default(progress),
        Some(Command::Run(args)) => run(&args, progress),
        Some(Command::Features(args)) => features(&args, progress),
        Some(Command::Merge(args)) => merge(&args),
        Some(Command::Pca(args)) => pca(&args),
        Some(Command::Cluster(args)) => cluster(&args),
        Some(Command::Evaluate(args)) => evaluate(&args),
        Some(Command::Fetch(args)) => fetch::fetch(&args, progress),
        Some(Command::Similar(args)) => similar::similar(&args, &progress),
        Some(Command::Duplicates(args)) => similar::duplicates(&args, &progress),
        Some(Command::Train(args)) => train::train_locked(&args, progress),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line naming the file or option at fault; the causes are joined onto it.
            let text: Vec<String> = e
                .chain()
                .map(|c| config::one_line(&c.to_string()))
                .collect();
            eprintln!("error: {}", text.join(": "));
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(quiet: bool) {
    let default = if quiet { "warn" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
}

fn run(args: &RunArgs, progress: Progress) -> Result<()> {
    let cfg = RunConfig::resolve(args)?;
    let out = pipeline::run(cfg, progress)?;
    println!("report: {}", out.join("index.html").display());
    Ok(())
}

/// `sdss-clustering` with no arguments: the original's pixel workflow on the bundled galaxies, into a
/// new time-stamped folder under `out/`.
fn run_default(progress: Progress) -> Result<()> {
    let fetched = Path::new(FETCHED_GALAXIES);
    let bundled = Path::new(BUNDLED_GALAXIES);
    let has_images = |p: &Path| sdss_io::folder::list_images(p).is_ok_and(|f| !f.is_empty());
    // A partial `cargo xtask fetch-fixtures` (interrupted, or galaxies the service could not serve) must
    // not break the default run: Ward with k = 32 needs at least 32 images.
    let fetched_count = sdss_io::folder::list_images(fetched).map_or(0, |f| f.len());
    if (1..MIN_FETCHED_GALAXIES).contains(&fetched_count) {
        tracing::warn!(
            "{} holds only {fetched_count} images, fewer than the default methods need ({MIN_FETCHED_GALAXIES}); \
             using the synthetic set (run `cargo xtask fetch-fixtures` again to fetch the rest)",
            fetched.display()
        );
    }
    let (images, truth) = if fetched_count >= MIN_FETCHED_GALAXIES {
        (
            fetched
                .canonicalize()
                .unwrap_or_else(|_| fetched.to_owned()),
            None,
        )
    } else if has_images(bundled) {
        let bundled = bundled
            .canonicalize()
            .unwrap_or_else(|_| bundled.to_owned());
        let truth = bundled.join("galaxies.csv");
        (bundled, truth.exists().then_some(truth))
    } else {
        bail!(
            "no input given and the bundled galaxies are not at {}; give --images DIR (see --help)",
            bundled.display()
        );
    };
    tracing::info!(
        "no arguments: running on the bundled galaxies in {} (see `sdss-clustering run --help` for your own data)",
        images.display()
    );
    let args = RunArgs {
        input: cli::InputArgs {
            images: Some(images),
            npy: None,
        },
        truth,
        // A few hundred galaxies cannot support the original's 250 pixel components; keep 95% of the
        // variance instead.
        pca: Some("0.95".to_owned()),
        out: Some(PathBuf::from("out").join(format!("run-{}", timestamp()))),
        ..RunArgs::default()
    };
    run(&args, progress)
}

/// UTC time as `YYYYMMDD-HHMMSS`, for default output folder names.
fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Writes a matrix and its ids so that a kill at any moment never leaves a matrix beside another
/// run's ids: `write_matrix` writes the matrix (atomically) to the hidden name it is given, the ids
/// are staged the same way, the old ids file is removed, then the matrix and the ids are renamed
/// into place. A kill between those renames leaves a matrix without ids (which `features` rewrites
/// when run again), never a mismatched pair.
fn write_features_pair<T>(
    npy: &Path,
    ids: &Path,
    write_matrix: impl FnOnce(&Path) -> Result<T>,
    galaxy_ids: impl FnOnce(&T) -> &[String],
) -> Result<T> {
    let staged = |path: &Path| {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        path.with_file_name(format!(".{name}.staged-{}", std::process::id()))
    };
    let (npy_staged, ids_staged) = (staged(npy), staged(ids));
    let written = write_matrix(&npy_staged)?;
    sdss_io::write_ids_csv(&ids_staged, galaxy_ids(&written))?;
    match std::fs::remove_file(ids) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot replace {}", ids.display())),
    }
    std::fs::rename(&npy_staged, npy)
        .with_context(|| format!("cannot move the features into {}", npy.display()))?;
    crash_point("features:between-renames");
    std::fs::rename(&ids_staged, ids)
        .with_context(|| format!("cannot move the ids into {}", ids.display()))?;
    Ok(written)
}

fn features(args: &FeaturesArgs, progress: Progress) -> Result<()> {
    let input =
        input::Input::from_options(args.input.images.as_deref(), args.input.npy.as_deref())?;
    let request = input::FeatureRequest {
        kind: if args.pixels {
            FeatureKind::Pixels
        } else {
            FeatureKind::Cnn
        },
        weights: args.weights.clone(),
        layer: args.layer,
        skip_bad: args.skip_bad,
        batch_size: args.batch_size,
        device: args.device,
        max_image_pixels: args.max_image_pixels,
        files: None,
    };
    if args.pixels {
        tracing::info!("--pixels: writing raw pixel features");
    }
    let shard = match &args.shard {
        Some(text) => Some(shard::Shard::parse(text)?),
        None => {
            let from_env = shard::Shard::from_slurm_env(|k| std::env::var(k).ok())?;
            if let Some(s) = from_env {
                tracing::info!(
                    "SLURM job array task: shard {}/{} (from SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT)",
                    s.index,
                    s.count
                );
            }
            from_env
        }
    };
    if let Some(shard) = shard {
        return features_shard(args, &input, request, shard, progress);
    }
    let ids = sdss_io::stack::ids_path_for(&args.out);
    let _lock = output_lock::OutputLock::acquire(&args.out)?;
    output_lock::remove_leftovers(&args.out, &[".tmp-", ".staged-"])?;
    output_lock::remove_leftovers(&ids, &[".tmp-", ".staged-"])?;
    // Written a batch at a time as they are computed, straight into the staged file.
    let galaxies = write_features_pair(
        &args.out,
        &ids,
        |staged| input::load(&input, &request, staged, &progress),
        |g| &g.ids,
    )?;
    println!(
        "{} galaxies x {} features -> {} (ids: {})",
        galaxies.len(),
        galaxies.features().ncols(),
        args.out.display(),
        ids.display()
    );
    Ok(())
}

/// `features --shard I/N`: the I-th slice of the sorted folder, as a part in the `--out` folder.
fn features_shard(
    args: &FeaturesArgs,
    input: &input::Input,
    mut request: input::FeatureRequest,
    shard: shard::Shard,
    progress: Progress,
) -> Result<()> {
    let input::Input::Folder(dir) = input else {
        bail!("--shard needs --images DIR: an .npy stack is one file, shard it before");
    };
    let total = sdss_io::folder::list_images(dir)?.len();
    let range = shard.range(total);
    if range.is_empty() {
        bail!(
            "--shard {}/{}: {} holds {total} images, so this shard would be empty; use at most {total} shards",
            shard.index,
            shard.count,
            dir.display()
        );
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create --out {}", args.out.display()))?;
    let (part, sidecar) = shard::part_paths(&args.out, shard);
    // One lock per part, so that the array's tasks run side by side.
    let _lock = output_lock::OutputLock::acquire(&part)?;
    output_lock::remove_leftovers(&part, &[".tmp-"])?;
    output_lock::remove_leftovers(&sidecar, &[".tmp-"])?;
    let description = request.describe();
    if shard::is_complete(&args.out, shard, total, &description) {
        println!(
            "shard {}/{}: {} is complete and checks out; skipped",
            shard.index,
            shard.count,
            part.display()
        );
        return Ok(());
    }
    request.files = Some(range.clone());
    let part_file = shard::begin_part(&args.out, shard)?;
    let galaxies = input::load(input, &request, &part_file, &progress)?;
    let (rows, cols) = galaxies.features().dim();
    shard::seal_part(
        &args.out,
        shard::Sidecar {
            format: String::new(),
            shard: shard.index,
            shards: shard.count,
            input: dir.clone(),
            input_files: total,
            start: range.start,
            end: range.end,
            features: description,
            rows: 0,
            cols: 0,
            ids: galaxies.ids.clone(),
            skipped: galaxies.skipped.iter().map(|b| b.to_string()).collect(),
            sha256: String::new(),
        },
        rows,
        cols,
    )?;
    println!(
        "shard {}/{}: files {}..{} of {total}: {} galaxies x {} features -> {}",
        shard.index,
        shard.count,
        range.start,
        range.end,
        galaxies.len(),
        galaxies.features().ncols(),
        part.display()
    );
    Ok(())
}

/// `merge`: checks that the parts cover the input exactly once and writes them as one matrix
/// with its ids, as one `features` run would have.
fn merge(args: &cli::MergeArgs) -> Result<()> {
    let ids_path = sdss_io::stack::ids_path_for(&args.out);
    let _lock = output_lock::OutputLock::acquire(&args.out)?;
    output_lock::remove_leftovers(&args.out, &[".tmp-", ".staged-"])?;
    output_lock::remove_leftovers(&ids_path, &[".tmp-", ".staged-"])?;
    let (ids, parts) = write_features_pair(
        &args.out,
        &ids_path,
        |staged| shard::merge_into(&args.parts, staged),
        |(ids, _)| ids,
    )?;
    println!(
        "{} parts, {} galaxies x {} features -> {} (ids: {})",
        parts.len(),
        ids.len(),
        parts.first().map_or(0, |p| p.cols),
        args.out.display(),
        ids_path.display()
    );
    Ok(())
}

fn pca(args: &PcaArgs) -> Result<()> {
    let x = sdss_io::npy::read_matrix_f32(&args.input)?;
    let size = PcaSize::parse(&args.components).context("--components")?;
    let solver = parse_solver(&args.solver)?;
    let (model, reduced) = sdss_pca::Pca::new(size.to_n_components())
        .svd_solver(solver)
        .whiten(args.whiten)
        .random_state(args.seed)
        .fit_transform(x.view())
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.input.display()))?;
    sdss_io::npy::write_npy(&args.out, &reduced.view())?;
    if let Some(dir) = &args.save_model {
        std::fs::create_dir_all(dir).with_context(|| format!("--save-model {}", dir.display()))?;
        model
            .save(dir)
            .map_err(|e| anyhow::anyhow!("--save-model {}: {e}", dir.display()))?;
    }
    let ratios: Vec<f64> = model
        .explained_variance_ratio()
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    let total: f64 = ratios.iter().sum();
    if let Some(path) = &args.summary {
        pipeline::write_json(
            path,
            &json!({
                "svd_solver": model.svd_solver().as_str(),
                "n_components": ratios.len(),
                "explained_variance_ratio": ratios,
                "total_explained_variance_ratio": total,
            }),
        )?;
    }
    println!(
        "{} components explain {:.4} of the variance ({} solver) -> {}",
        ratios.len(),
        total,
        model.svd_solver(),
        args.out.display()
    );
    Ok(())
}

fn parse_solver(name: &str) -> Result<sdss_pca::SvdSolver> {
    use sdss_pca::SvdSolver;
    Ok(match name {
        "auto" => SvdSolver::Auto,
        "full" => SvdSolver::Full,
        "covariance_eigh" => SvdSolver::CovarianceEigh,
        "randomized" => SvdSolver::Randomized,
        other => bail!("--solver {other}: expected auto, full, covariance_eigh or randomized"),
    })
}

fn cluster(args: &ClusterArgs) -> Result<()> {
    use cli::MethodName;
    let x = sdss_io::npy::read_matrix_f32(&args.input)?;
    let name = match args.method {
        MethodName::Kmeans => "kmeans",
        MethodName::Minibatch => "minibatch-kmeans",
        MethodName::Affinity => "affinity-propagation",
        MethodName::Agglomerative => "agglomerative",
        MethodName::Dbscan => "dbscan",
        MethodName::Hdbscan => "hdbscan",
        MethodName::Optics => "optics",
    };
    let mut params: Vec<(String, String)> = Vec::new();
    let mut push = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            params.push((k.to_owned(), v));
        }
    };
    push("k", args.k.map(|v| v.to_string()));
    push("damping", args.damping.map(|v| v.to_string()));
    push("linkage", args.linkage.clone());
    push("n_init", args.n_init.map(|v| v.to_string()));
    push("seed", args.seed.map(|v| v.to_string()));
    for p in &args.params {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("--param {p}: expected KEY=VALUE"))?;
        params.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let method = sdss_cluster::ClusterMethod::from_params(name, &params)
        .map_err(|e| anyhow::anyhow!("--method {name}: {e}"))?;
    let clustering = method
        .fit(x.view())
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.input.display()))?;
    sdss_io::npy::write_npy(&args.out, &clustering.labels.view())?;
    let mut summary = serde_json::to_value(clustering.summary())?;
    if let Some(linkage) = &clustering.linkage {
        let path = args.out.with_file_name(format!(
            "{}.linkage.npy",
            args.out
                .file_stem()
                .map(|s| s.to_string_lossy())
                .unwrap_or_default()
        ));
        linkage.write_npy(&path)?;
        summary["linkage"] = json!(path.display().to_string());
    }
    if let Some(assignment) = &clustering.micro_assignment {
        let path = args.out.with_file_name(format!(
            "{}.micro_clusters.npy",
            args.out
                .file_stem()
                .map(|s| s.to_string_lossy())
                .unwrap_or_default()
        ));
        let column: ndarray::Array1<i64> = assignment.iter().map(|&m| m as i64).collect();
        sdss_io::npy::write_npy(&path, &column.view())?;
        summary["micro_assignment"] = json!(path.display().to_string());
    }
    if clustering.converged == Some(false) {
        tracing::warn!("{name} did NOT converge; the labels are not a converged result");
    }
    if let Some(path) = &args.summary {
        pipeline::write_json(path, &summary)?;
    }
    println!(
        "{} clusters -> {}",
        clustering.n_clusters,
        args.out.display()
    );
    Ok(())
}

fn evaluate(args: &EvaluateArgs) -> Result<()> {
    let x = sdss_io::npy::read_matrix_f32(&args.input)?;
    let labels = read_labels(&args.labels)?;
    if labels.len() != x.nrows() {
        bail!(
            "--labels {}: {} labels for {} rows of {}",
            args.labels.display(),
            labels.len(),
            x.nrows(),
            args.input.display()
        );
    }
    let metric = |r: sdss_cluster::Result<f64>| match r {
        Ok(v) => json!(v),
        Err(e) => json!({ "error": e.to_string() }),
    };
    let mut out = json!({
        "n_samples": labels.len(),
        "silhouette": metric(sdss_cluster::silhouette_score(x.view(), labels.view())),
        "calinski_harabasz": metric(sdss_cluster::calinski_harabasz_score(x.view(), labels.view())),
        "davies_bouldin": metric(sdss_cluster::davies_bouldin_score(x.view(), labels.view())),
    });
    if let Some(path) = &args.truth {
        let truth = read_labels(path)?;
        if truth.len() != labels.len() {
            bail!(
                "--truth {}: {} labels, expected {}",
                path.display(),
                truth.len(),
                labels.len()
            );
        }
        out["adjusted_rand_index"] = metric(sdss_cluster::adjusted_rand_score(
            truth.view(),
            labels.view(),
        ));
        out["normalized_mutual_info"] = metric(sdss_cluster::normalized_mutual_info_score(
            truth.view(),
            labels.view(),
        ));
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn read_labels(path: &Path) -> Result<Array1<i64>> {
    let a = sdss_io::npy::read_npy(path)?;
    let shape = a.shape().to_vec();
    let values = a.into_f64();
    if shape.len() != 1 {
        bail!(
            "{}: labels must be a 1-d array, found shape {shape:?}",
            path.display()
        );
    }
    values
        .iter()
        .map(|&v| {
            if v.fract() == 0.0 {
                Ok(v as i64)
            } else {
                bail!("{}: label {v} is not an integer", path.display())
            }
        })
        .collect()
}

/// Test hook for the crash tests: with `SDSS_CLUSTERING_CRASH_AT=<name>` in the environment, the process
/// announces `crash point <name>` on stderr when it reaches that point and waits there to be killed, so a
/// test can send SIGKILL at an exact stage. Without the variable it costs one environment lookup.
pub(crate) fn crash_point(name: &str) {
    if std::env::var_os("SDSS_CLUSTERING_CRASH_AT").is_some_and(|v| v == name) {
        eprintln!("crash point {name}: waiting to be killed");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
}
