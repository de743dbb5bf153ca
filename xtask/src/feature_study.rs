//! `cargo xtask feature-study`: how well do the project's feature kinds group galaxies by look?
//!
//! Five kinds of features, each reduced by PCA (fit on the set being measured, the same number of
//! components for all) and clustered with the same settings:
//!
//! 1. raw pixels (19,200 values in [0, 1]);
//! 2. the full sdss-cnn architecture with random weights (the control);
//! 3. the `small` architecture trained supervised (sdss-train's `Trainer`) to predict the ellipticity
//!    of synthetic galaxies;
//! 4. `small` trained self-supervised (sdss-train's `SslTrainer`, VICReg) on synthetic galaxies;
//! 5. the shipped pre-trained encoder (`sdss_cnn::pretrained`, or `--encoder FILE`).
//!
//! On a seeded synthetic set with known truth it measures clusterings against the true classes, 10-NN
//! class accuracy, linear probes of ellipticity and bulge fraction and the stability of k-means; on the
//! real 6,437 SDSS galaxies (`../shared/data/sdss-6437/images`) it measures whether a galaxy turned on
//! the sky (rotated by 90°, 180°, 270° or mirrored: exact pixel permutations) still finds itself as its
//! nearest neighbour, and the stability of k-means. Everything goes to `docs/feature-quality.md` and
//! `docs/feature-quality.json`.

mod helpers;
mod report;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use ndarray::{Array1, Array2, ArrayView2, ArrayView4, Axis, CowArray, Ix2};
use sdss_cluster::{
    adjusted_rand_score, normalized_mutual_info_score, AffinityPropagation, Agglomerative, KMeans,
};
use sdss_cnn::{CnnConfig, CnnModel, CnnWeights, Tap};
use sdss_io::synthetic::{self, fixture_config, GalaxyClass, SyntheticConfig};
use sdss_neighbors::{ExactIndex, Metric, NeighborIndex};
use sdss_pca::{FittedPca, Pca, SvdSolver};
use sdss_train::split::{split_indices_stratified, Split};
use sdss_train::ssl::{SslOptions, SslTrainer};
use sdss_train::{
    Dataset, EpochRecord, Loss, Network, Observer, TrainOptions, TrainTargets, Trainer,
};

use helpers::{
    choose_sorted, common_positions, group_ids, knn_accuracy, mix, r2_score, ridge_cv, turn_image,
    Ridge, Turn,
};

const USAGE: &str = "usage: cargo run --release -p xtask -- feature-study [--quick] [--seed N] [--pca N] \
    [--synthetic-count N] [--ssl-epochs N] [--supervised-epochs N] [--retrieval N] [--real-limit N] \
    [--shared DIR] [--encoder FILE.safetensors] [--out FILE.md]\n\
    defaults: --seed 0 --pca 20 --synthetic-count 3000 --ssl-epochs 30 --supervised-epochs 30 \
    --retrieval 500 (real galaxies copied 4 times each) --real-limit all (originals searched) \
    --shared ../shared --out docs/feature-quality.md (JSON beside it)\n\
    --quick (smoke test only): --synthetic-count 600, both epochs 3, --retrieval 100, --real-limit 1000\n\
    default paths are relative to the workspace root, given paths to the current folder";

/// Side of the images every feature kind reads.
pub(crate) const SIDE: usize = 80;
/// Values per image.
pub(crate) const PER: usize = SIDE * SIDE * 3;
/// Neighbours of the leave-one-out vote and of recall@10.
pub(crate) const K_NEIGHBOURS: usize = 10;
/// k of the "k = 10" k-means, of the stability runs too.
pub(crate) const K_TEN: usize = 10;
/// Affinity propagation's damping (the original project's setting).
pub(crate) const AP_DAMPING: f64 = 0.8;
/// Repeats of the stability measures (seeds, subsamples).
pub(crate) const STABILITY_RUNS: u64 = 3;
/// Fraction of the galaxies in each stability subsample.
pub(crate) const SUBSAMPLE_FRACTION: f64 = 0.8;
/// Test fraction of the synthetic set, and the trainers' validation carve-out (a fraction of the whole
/// set: 10% of the 80% training part).
pub(crate) const TEST_FRACTION: f64 = 0.2;
pub(crate) const VAL_FRACTION: f64 = 0.08;
/// Folds of the ridge penalty's cross-validation on the training part.
pub(crate) const RIDGE_FOLDS: usize = 5;
/// Components of the reference pixel row.
pub(crate) const PIXELS_WIDE_PCA: usize = 250;

// Stream tags: every seeded choice of the study is `mix(--seed, tag)`.
const TAG_SYNTHETIC: u64 = 0x5359_4E54;
const TAG_SPLIT: u64 = 0x5350_4C54;
const TAG_RANDOM_CNN: u64 = 0x524E_444D;
const TAG_SUPERVISED: u64 = 0x5355_5056;
const TAG_SSL: u64 = 0x5353_4C00;
const TAG_RIDGE: u64 = 0x5249_4447;
const TAG_SUBSAMPLE: u64 = 0x5355_4253;
const TAG_GALLERY: u64 = 0x4741_4C4C;
const TAG_QUERIES: u64 = 0x5155_4552;

pub fn run(args: &[String]) -> ExitCode {
    match run_inner(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask feature-study: {message}");
            ExitCode::FAILURE
        }
    }
}

/// What one run measures, every default resolved.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub quick: bool,
    pub seed: u64,
    pub pca: usize,
    pub synthetic_count: usize,
    pub ssl_epochs: usize,
    pub supervised_epochs: usize,
    pub retrieval: usize,
    pub real_limit: Option<usize>,
    pub shared: PathBuf,
    pub encoder: Option<PathBuf>,
    pub out: PathBuf,
    /// The arguments as given, for the "how to reproduce" line.
    pub args: Vec<String>,
}

impl Settings {
    pub fn synthetic_seed(&self) -> u64 {
        let s = mix(self.seed, TAG_SYNTHETIC);
        // Never the committed fixtures' set.
        if s == fixture_config().seed {
            s + 1
        } else {
            s
        }
    }

    pub fn real_dir(&self) -> PathBuf {
        let dir = self.shared.join("data").join("sdss-6437").join("images");
        dir.canonicalize().unwrap_or(dir)
    }

    pub fn json_path(&self) -> PathBuf {
        self.out.with_extension("json")
    }

    pub fn command(&self) -> String {
        let mut c = String::from("cargo run --release -p xtask -- feature-study");
        for a in &self.args {
            c.push(' ');
            if a.is_empty() || a.contains(|ch: char| ch.is_whitespace() || ch == '\'') {
                c.push_str(&format!("'{}'", a.replace('\'', r"'\''")));
            } else {
                c.push_str(a);
            }
        }
        c
    }
}

fn workspace_root() -> Result<PathBuf, String> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| "xtask has no parent folder".to_string())
}

/// Parses the arguments; `None` when help was asked for (and printed).
pub(crate) fn parse_args(args: &[String], root: &Path) -> Result<Option<Settings>, String> {
    let mut quick = false;
    let mut seed = 0u64;
    let mut pca = 20usize;
    let (mut count, mut ssl_epochs, mut sup_epochs, mut retrieval, mut real_limit) =
        (None, None, None, None, None);
    let mut shared = root.join("..").join("shared");
    let mut encoder = None;
    let mut out = root.join("docs").join("feature-quality.md");
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--quick" => quick = true,
            "--seed" => seed = parse(flag, value()?)?,
            "--pca" => pca = parse(flag, value()?)?,
            "--synthetic-count" => count = Some(parse(flag, value()?)?),
            "--ssl-epochs" => ssl_epochs = Some(parse(flag, value()?)?),
            "--supervised-epochs" => sup_epochs = Some(parse(flag, value()?)?),
            "--retrieval" => retrieval = Some(parse(flag, value()?)?),
            "--real-limit" => real_limit = Some(parse(flag, value()?)?),
            "--shared" => shared = PathBuf::from(value()?),
            "--encoder" => encoder = Some(PathBuf::from(value()?)),
            "--out" => out = PathBuf::from(value()?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    let s = Settings {
        quick,
        seed,
        pca,
        synthetic_count: count.unwrap_or(if quick { 600 } else { 3000 }),
        ssl_epochs: ssl_epochs.unwrap_or(if quick { 3 } else { 30 }),
        supervised_epochs: sup_epochs.unwrap_or(if quick { 3 } else { 30 }),
        retrieval: retrieval.unwrap_or(if quick { 100 } else { 500 }),
        real_limit: real_limit.or(quick.then_some(1000)),
        shared,
        encoder,
        out,
        args: args.to_vec(),
    };
    let dense = CnnConfig::small().dense_units;
    if s.pca == 0 || s.pca > dense {
        return Err(format!(
            "--pca {}: must be between 1 and {dense} (the width of the CNN embeddings)",
            s.pca
        ));
    }
    if s.synthetic_count < 100 {
        return Err(format!(
            "--synthetic-count {}: at least 100 galaxies are needed (train/test split, k-means k = {K_TEN})",
            s.synthetic_count
        ));
    }
    if s.pca > s.synthetic_count {
        return Err(format!(
            "--pca {} is more than the {} synthetic galaxies",
            s.pca, s.synthetic_count
        ));
    }
    for (name, v) in [
        ("--ssl-epochs", s.ssl_epochs),
        ("--supervised-epochs", s.supervised_epochs),
        ("--retrieval", s.retrieval),
    ] {
        if v == 0 {
            return Err(format!("{name} must be at least 1"));
        }
    }
    if let Some(l) = s.real_limit {
        if l < 2 * K_NEIGHBOURS.max(K_TEN).max(s.pca) {
            return Err(format!(
                "--real-limit {l}: at least {} originals are needed",
                2 * K_NEIGHBOURS.max(K_TEN).max(s.pca)
            ));
        }
    }
    if let Some(e) = &s.encoder {
        if !e.is_file() {
            return Err(format!(
                "--encoder {}: no such file (make one with `cargo xtask fetch-weights` or `sdss-clustering train`)",
                e.display()
            ));
        }
    }
    if s.out.extension().and_then(|e| e.to_str()) != Some("md") {
        return Err(format!(
            "--out {}: must be a .md file (the JSON goes beside it)",
            s.out.display()
        ));
    }
    Ok(Some(s))
}

fn parse<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag}: cannot read {value:?}"))
}

/// Stage timings, logged to stderr as they finish.
pub(crate) struct Clock {
    start: Instant,
    pub stages: Vec<(String, f64)>,
}

impl Clock {
    fn new() -> Self {
        Clock {
            start: Instant::now(),
            stages: Vec::new(),
        }
    }

    fn stage<T>(
        &mut self,
        name: impl Into<String>,
        f: impl FnOnce() -> Result<T, String>,
    ) -> Result<T, String> {
        let name = name.into();
        eprintln!("[feature-study] {name} ...");
        let t0 = Instant::now();
        let out = f().map_err(|e| format!("{name}: {e}"))?;
        let secs = t0.elapsed().as_secs_f64();
        eprintln!(
            "[feature-study] {name}: {secs:.1} s (total {:.1} s)",
            self.start.elapsed().as_secs_f64()
        );
        self.stages.push((name, secs));
        Ok(out)
    }

    pub fn total(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

/// Flattened `(n, 80, 80, 3)` images in [0, 1].
pub(crate) struct Images {
    pub data: Vec<f32>,
    pub n: usize,
}

impl Images {
    fn view4(&self) -> Result<ArrayView4<'_, f32>, String> {
        ArrayView4::from_shape((self.n, SIDE, SIDE, 3), &self.data).map_err(|e| e.to_string())
    }

    fn view2(&self) -> Result<ArrayView2<'_, f32>, String> {
        ArrayView2::from_shape((self.n, PER), &self.data).map_err(|e| e.to_string())
    }

    fn image(&self, i: usize) -> &[f32] {
        &self.data[i * PER..(i + 1) * PER]
    }

    fn gather(&self, rows: &[usize]) -> Vec<f32> {
        rows.iter().flat_map(|&i| self.image(i)).copied().collect()
    }
}

/// The synthetic set and its split.
pub(crate) struct Synthetic {
    pub images: Images,
    pub labels: Vec<usize>,
    pub ellipticity: Vec<f64>,
    pub bulge_fraction: Vec<f64>,
    pub class_counts: Vec<(String, usize)>,
    /// Train ∪ val: the 80% the trainers and the linear probes see.
    pub train: Vec<usize>,
    /// The trainers' own fitting part and validation carve-out (both inside `train`).
    pub fit: Vec<usize>,
    pub val: Vec<usize>,
    /// The held-out 20%.
    pub test: Vec<usize>,
    pub seed: u64,
    pub n_classes: usize,
}

fn make_synthetic(s: &Settings) -> Result<Synthetic, String> {
    let config = SyntheticConfig {
        count: s.synthetic_count,
        seed: s.synthetic_seed(),
        size: SIDE as u32,
        ..SyntheticConfig::default()
    };
    let set = synthetic::generate(&config).map_err(|e| e.to_string())?;
    let data: Vec<f32> = set
        .iter()
        .flat_map(|(_, img)| img.pixels.iter().map(|&v| v as f32 / 255.0))
        .collect();
    let labels: Vec<usize> = set.iter().map(|(p, _)| p.class.label()).collect();
    let class_counts = GalaxyClass::ALL
        .iter()
        .map(|c| {
            (
                c.name().to_string(),
                labels.iter().filter(|&&l| l == c.label()).count(),
            )
        })
        .collect();
    let splits =
        split_indices_stratified(&labels, VAL_FRACTION, TEST_FRACTION, mix(s.seed, TAG_SPLIT))
            .map_err(|e| e.to_string())?;
    let of = |which: &[Split]| -> Vec<usize> {
        (0..splits.len())
            .filter(|&i| which.contains(&splits[i]))
            .collect()
    };
    Ok(Synthetic {
        images: Images { data, n: set.len() },
        n_classes: GalaxyClass::ALL.len(),
        ellipticity: set.iter().map(|(p, _)| p.ellipticity).collect(),
        bulge_fraction: set.iter().map(|(p, _)| p.bulge_fraction).collect(),
        labels,
        class_counts,
        train: of(&[Split::Train, Split::Val]),
        fit: of(&[Split::Train]),
        val: of(&[Split::Val]),
        test: of(&[Split::Test]),
        seed: config.seed,
    })
}

/// Logs each training epoch to stderr.
struct EpochLog(&'static str);

impl Observer for EpochLog {
    fn epoch_done(&mut self, r: &EpochRecord) {
        let std = r
            .embedding_std
            .map(|s| format!("  embedding std {s:.4}"))
            .unwrap_or_default();
        eprintln!(
            "[feature-study]   {} epoch {:3}: train {:.5}  val {:.5}  lr {:.1e}{std}  ({:.1} s)",
            self.0, r.epoch, r.train_loss, r.val_loss, r.learning_rate, r.seconds
        );
    }
}

fn small_network(seed: u64) -> Result<Network<f32>, String> {
    let cfg = CnnConfig::small();
    let w = CnnWeights::random(&cfg, seed).map_err(|e| e.to_string())?;
    Network::from_weights(cfg, &w).map_err(|e| e.to_string())
}

/// `small` trained to predict ellipticity (MSE) on the synthetic training part.
fn train_supervised(s: &Settings, syn: &Synthetic) -> Result<(CnnModel, Vec<EpochRecord>), String> {
    let seed = mix(s.seed, TAG_SUPERVISED);
    let targets =
        |rows: &[usize]| -> Vec<f32> { rows.iter().map(|&i| syn.ellipticity[i] as f32).collect() };
    let dataset = |rows: &[usize]| {
        Dataset::new(
            syn.images.gather(rows),
            TrainTargets::Values(targets(rows)),
            PER,
        )
        .map_err(|e| e.to_string())
    };
    let (train, val) = (dataset(&syn.fit)?, dataset(&syn.val)?);
    let options = TrainOptions {
        epochs: s.supervised_epochs,
        seed,
        ..TrainOptions::default()
    };
    let key = serde_json::json!({"study": "feature-quality", "task": "ellipticity"});
    let mut t = Trainer::new(small_network(seed)?, Loss::MeanSquaredError, options, key)
        .map_err(|e| e.to_string())?;
    t.fit(&train, &val, None, &mut EpochLog("supervised"))
        .map_err(|e| e.to_string())?;
    Ok((t.model().map_err(|e| e.to_string())?, t.history().to_vec()))
}

/// `small` trained self-supervised (default options: VICReg) on the synthetic training part, no labels.
fn train_ssl(s: &Settings, syn: &Synthetic) -> Result<(CnnModel, Vec<EpochRecord>), String> {
    let seed = mix(s.seed, TAG_SSL);
    let options = SslOptions {
        epochs: s.ssl_epochs,
        seed,
        ..SslOptions::default()
    };
    let key = serde_json::json!({"study": "feature-quality", "task": "self-supervised"});
    let mut t = SslTrainer::new(small_network(seed)?, options, key).map_err(|e| e.to_string())?;
    t.fit(
        &syn.images.gather(&syn.fit),
        &syn.images.gather(&syn.val),
        None,
        &mut EpochLog("self-supervised"),
    )
    .map_err(|e| e.to_string())?;
    Ok((t.model().map_err(|e| e.to_string())?, t.history().to_vec()))
}

/// What the shipped encoder's manifest says it was trained on, for its row's note.
fn shipped_note() -> String {
    let training = sdss_cnn::pretrained::manifest()
        .ok()
        .and_then(|m| m.training);
    let Some(t) = training else {
        return "sdss_cnn::pretrained::model() (its manifest records no training), dense tap"
            .into();
    };
    let get = |k: &str| {
        t.get(k)
            .map(|v| v.to_string().trim_matches('"').to_string())
    };
    let images = get("images").unwrap_or_else(|| "?".into());
    let mut note = format!(
        "sdss_cnn::pretrained::model(): `{}` trained {} ({}) for {} epochs on {} galaxies of `{images}` (per its manifest), dense tap",
        get("arch").unwrap_or_else(|| "?".into()),
        get("task").unwrap_or_else(|| "?".into()),
        get("method").unwrap_or_else(|| "?".into()),
        get("epochs").unwrap_or_else(|| "?".into()),
        get("galaxies").unwrap_or_else(|| "?".into()),
    );
    if images.contains("sdss-6437") {
        note.push_str(
            "; its training images are the real galaxies measured below (without labels, with rotation and flip augmentation), so the real retrieval is measured on its own training set",
        );
    }
    note
}

/// One feature kind: a name, how to describe it, and its network (none for raw pixels).
pub(crate) struct Kind {
    pub key: &'static str,
    pub label: String,
    pub note: String,
    pub model: Option<CnnModel>,
}

impl Kind {
    /// `(n, width)` features of `images`: the pixels themselves, or the CNN's `dense` tap.
    fn features<'a>(&self, images: &'a Images) -> Result<CowArray<'a, f32, Ix2>, String> {
        match &self.model {
            None => Ok(CowArray::from(images.view2()?)),
            Some(m) => m
                .features_batched(images.view4()?, Tap::Dense, 64)
                .map(CowArray::from)
                .map_err(|e| e.to_string()),
        }
    }
}

/// Fits sdss-pca with `k` components on `x` and returns the scores of `x` with the fraction of the
/// variance they keep (computed here from the scores, in f64, and checked against the PCA's own).
fn pca_scores(x: ArrayView2<'_, f32>, k: usize, seed: u64) -> Result<(Array2<f32>, f64), String> {
    let fitted = pca_fit(x, k, seed)?;
    let z = fitted.transform(x).map_err(|e| e.to_string())?;
    let kept = variance_kept(x, z.view(), fitted.total_explained_variance_ratio());
    Ok((z, kept))
}

/// sdss-pca on `x`: the exact `covariance_eigh` solver for CNN-wide features (at most 1,000
/// columns, as scikit-learn's `auto` picks for 10× more rows than columns), `auto` (randomized for
/// these shapes) for pixels.
fn pca_fit(x: ArrayView2<'_, f32>, k: usize, seed: u64) -> Result<FittedPca<f32>, String> {
    let mut pca = Pca::new(k).random_state(seed);
    if x.ncols() <= 1000 {
        pca = pca.svd_solver(SvdSolver::CovarianceEigh);
    }
    pca.fit(x).map_err(|e| e.to_string())
}

/// Variance of the scores `z` over the total variance of `x` (both about their means, in f64); warns
/// when it differs from the PCA's own `reported` figure.
fn variance_kept(x: ArrayView2<'_, f32>, z: ArrayView2<'_, f32>, reported: f64) -> f64 {
    let total_var = |m: ArrayView2<'_, f32>| -> f64 {
        m.axis_iter(Axis(1))
            .map(|c| {
                let n = c.len() as f64;
                let mean = c.iter().map(|&v| v as f64).sum::<f64>() / n;
                c.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>()
            })
            .sum()
    };
    let (tx, tz) = (total_var(x), total_var(z));
    let kept = if tx > 0.0 { tz / tx } else { f64::NAN };
    if (kept - reported).abs() > 1e-3 {
        eprintln!(
            "[feature-study] warning: sdss-pca reports {reported:.4} of the variance kept, the scores hold {kept:.4} ({} x {} -> {})",
            x.nrows(),
            x.ncols(),
            z.ncols()
        );
    }
    kept
}

fn kmeans(x: ArrayView2<'_, f32>, k: usize, seed: u64) -> Result<Array1<i64>, String> {
    let km = KMeans {
        seed,
        ..KMeans::new(k)
    };
    Ok(km.fit(x).map_err(|e| e.to_string())?.labels)
}

fn ari(a: &Array1<i64>, b: &Array1<i64>) -> Result<f64, String> {
    adjusted_rand_score(a.view(), b.view()).map_err(|e| e.to_string())
}

fn nmi(a: &Array1<i64>, b: &Array1<i64>) -> Result<f64, String> {
    normalized_mutual_info_score(a.view(), b.view()).map_err(|e| e.to_string())
}

/// Stability of k-means (k = 10) on `z`: mean ARI between the labelings of [`STABILITY_RUNS`] seeds,
/// and between those of as many 80% subsamples (one seed), compared on the galaxies they share.
fn stability(z: ArrayView2<'_, f32>, seed: u64) -> Result<(f64, f64), String> {
    let n = z.nrows();
    let runs: Vec<Array1<i64>> = (0..STABILITY_RUNS)
        .map(|r| kmeans(z, K_TEN, seed.wrapping_add(r)))
        .collect::<Result<_, _>>()?;
    let m = ((n as f64) * SUBSAMPLE_FRACTION).round() as usize;
    let subs: Vec<(Vec<usize>, Array1<i64>)> = (0..STABILITY_RUNS)
        .map(|r| {
            let rows = choose_sorted(n, m, mix(seed, TAG_SUBSAMPLE + r));
            let labels = kmeans(z.select(Axis(0), &rows).view(), K_TEN, seed)?;
            Ok::<_, String>((rows, labels))
        })
        .collect::<Result<_, _>>()?;
    let (mut by_seed, mut by_sub, mut pairs) = (0.0, 0.0, 0.0);
    for a in 0..runs.len() {
        for b in a + 1..runs.len() {
            by_seed += ari(&runs[a], &runs[b])?;
            let common = common_positions(&subs[a].0, &subs[b].0);
            let la: Array1<i64> = common.iter().map(|&(i, _)| subs[a].1[i]).collect();
            let lb: Array1<i64> = common.iter().map(|&(_, j)| subs[b].1[j]).collect();
            by_sub += ari(&la, &lb)?;
            pairs += 1.0;
        }
    }
    Ok((by_seed / pairs, by_sub / pairs))
}

/// One row of the synthetic table.
pub(crate) struct SynRow {
    pub key: String,
    pub label: String,
    pub pca: usize,
    pub explained: f64,
    pub metrics: BTreeMap<&'static str, f64>,
    pub ap_clusters: usize,
    pub ap_converged: Option<bool>,
    pub alphas: [f64; 2],
}

/// Metric keys of the synthetic table, in column order. `true_k`: k = the number of true classes.
pub(crate) const SYN_METRICS: [&str; 11] = [
    "kmeans_true_k_ari",
    "kmeans_true_k_nmi",
    "kmeans_10_ari",
    "kmeans_10_nmi",
    "affinity_ari",
    "affinity_nmi",
    "ward_true_k_ari",
    "ward_true_k_nmi",
    "knn10_accuracy",
    "probe_r2_ellipticity",
    "probe_r2_bulge_fraction",
];
/// The stability metrics (synthetic and real).
pub(crate) const STABILITY_METRICS: [&str; 2] = ["stability_seeds_ari", "stability_subsample_ari"];

fn synthetic_row(
    key: &str,
    label: &str,
    x: ArrayView2<'_, f32>,
    pca: usize,
    syn: &Synthetic,
    s: &Settings,
) -> Result<SynRow, String> {
    let (z, explained) = pca_scores(x, pca, s.seed)?;
    let truth: Array1<i64> = syn.labels.iter().map(|&l| l as i64).collect();
    let mut m = BTreeMap::new();
    let k = syn.n_classes;
    let mut put = |keys: [&'static str; 2], labels: &Array1<i64>| -> Result<(), String> {
        m.insert(keys[0], ari(&truth, labels)?);
        m.insert(keys[1], nmi(&truth, labels)?);
        Ok(())
    };
    put(
        ["kmeans_true_k_ari", "kmeans_true_k_nmi"],
        &kmeans(z.view(), k, s.seed)?,
    )?;
    put(
        ["kmeans_10_ari", "kmeans_10_nmi"],
        &kmeans(z.view(), K_TEN, s.seed)?,
    )?;
    let ap = AffinityPropagation {
        damping: AP_DAMPING,
        ..AffinityPropagation::new()
    }
    .fit(z.view())
    .map_err(|e| format!("affinity propagation: {e}"))?;
    put(["affinity_ari", "affinity_nmi"], &ap.labels)?;
    let ward = Agglomerative::new(k)
        .fit(z.view())
        .map_err(|e| format!("Ward: {e}"))?;
    put(["ward_true_k_ari", "ward_true_k_nmi"], &ward.labels)?;
    let graph = ExactIndex::new(z.view(), Metric::Euclidean)
        .and_then(|i| i.knn_graph(K_NEIGHBOURS))
        .map_err(|e| e.to_string())?;
    m.insert("knn10_accuracy", knn_accuracy(&graph.indices, &syn.labels));
    let d = z.ncols();
    let rows64 = |rows: &[usize]| -> Vec<f64> {
        rows.iter()
            .flat_map(|&i| z.row(i).iter().map(|&v| v as f64).collect::<Vec<_>>())
            .collect()
    };
    let (xtr, xte) = (rows64(&syn.train), rows64(&syn.test));
    let mut alphas = [0.0; 2];
    for (slot, (name, target)) in [
        ("probe_r2_ellipticity", &syn.ellipticity),
        ("probe_r2_bulge_fraction", &syn.bulge_fraction),
    ]
    .into_iter()
    .enumerate()
    {
        let ytr: Vec<f64> = syn.train.iter().map(|&i| target[i]).collect();
        let yte: Vec<f64> = syn.test.iter().map(|&i| target[i]).collect();
        let alpha = ridge_cv(&xtr, d, &ytr, RIDGE_FOLDS, mix(s.seed, TAG_RIDGE))?;
        let model = Ridge::fit(&xtr, d, &ytr, alpha)?;
        m.insert(name, r2_score(&yte, &model.predict(&xte)));
        alphas[slot] = alpha;
    }
    let (seeds, subs) = stability(z.view(), s.seed)?;
    m.insert("stability_seeds_ari", seeds);
    m.insert("stability_subsample_ari", subs);
    Ok(SynRow {
        key: key.to_string(),
        label: label.to_string(),
        pca,
        explained,
        metrics: m,
        ap_clusters: ap.n_clusters,
        ap_converged: ap.converged,
        alphas,
    })
}

/// One row of the real table.
pub(crate) struct RealRow {
    pub key: String,
    pub label: String,
    pub explained: f64,
    pub recall_at_1: f64,
    pub recall_at_10: f64,
    pub recall_at_1_by_turn: Vec<(&'static str, f64)>,
    pub stability_seeds_ari: f64,
    pub stability_subsample_ari: f64,
}

/// The real-galaxy section, or why it was skipped.
pub(crate) enum RealSection {
    Skipped(String),
    Measured(RealStudy),
}

pub(crate) struct RealStudy {
    pub folder: PathBuf,
    pub total: usize,
    pub gallery: usize,
    pub queries: usize,
    pub copies: usize,
    pub duplicate_groups: usize,
    pub duplicate_rows: usize,
    pub rows: Vec<RealRow>,
}

fn load_real(s: &Settings, clock: &mut Clock) -> Result<Option<(Images, usize)>, String> {
    let dir = s.real_dir();
    if !dir.is_dir() {
        return Ok(None);
    }
    let loaded = clock.stage(format!("load {}", dir.display()), || {
        sdss_io::load_image_folder(&dir, &sdss_io::LoadOptions::default())
            .map_err(|e| e.to_string())
    })?;
    let (_, images) = loaded.stack.into_parts();
    let dims = images.dim();
    if (dims.1, dims.2, dims.3) != (SIDE, SIDE, 3) {
        return Err(format!(
            "{}: images are not {SIDE}x{SIDE} RGB",
            dir.display()
        ));
    }
    let all = Images {
        n: dims.0,
        data: images.iter().copied().collect(),
    };
    drop(images);
    let total = all.n;
    let gallery = match s.real_limit {
        Some(l) if l < total => {
            let rows = choose_sorted(total, l, mix(s.seed, TAG_GALLERY));
            Images {
                data: all.gather(&rows),
                n: rows.len(),
            }
        }
        _ => all,
    };
    Ok(Some((gallery, total)))
}

fn real_study(s: &Settings, kinds: &[Kind], clock: &mut Clock) -> Result<RealSection, String> {
    let Some((gallery, total)) = load_real(s, clock)? else {
        return Ok(RealSection::Skipped(format!(
            "{} is absent, so the real-galaxy measures (rotated-copy retrieval, real stability) were skipped",
            s.real_dir().display()
        )));
    };
    if s.retrieval > gallery.n {
        return Err(format!(
            "--retrieval {} is more than the {} real galaxies searched",
            s.retrieval, gallery.n
        ));
    }
    let groups = clock.stage("duplicate groups (exact pixel equality)", || {
        sdss_neighbors::duplicates(gallery.view2()?, 0.0).map_err(|e| e.to_string())
    })?;
    let group = group_ids(gallery.n, &groups);
    let queries = choose_sorted(gallery.n, s.retrieval, mix(s.seed, TAG_QUERIES));
    let g = &gallery;
    let copies = Images {
        data: queries
            .iter()
            .flat_map(|&q| {
                Turn::ALL
                    .iter()
                    .flat_map(move |&t| turn_image(g.image(q), SIDE, SIDE, 3, t))
            })
            .collect(),
        n: queries.len() * Turn::ALL.len(),
    };
    let mut rows = Vec::new();
    for kind in kinds {
        let row = clock.stage(format!("real: {}", kind.label), || {
            let fg = kind.features(&gallery)?;
            let fc = kind.features(&copies)?;
            let fitted = pca_fit(fg.view(), s.pca, s.seed)?;
            let zg = fitted.transform(fg.view()).map_err(|e| e.to_string())?;
            let zc = fitted.transform(fc.view()).map_err(|e| e.to_string())?;
            let explained = variance_kept(
                fg.view(),
                zg.view(),
                fitted.total_explained_variance_ratio(),
            );
            drop((fg, fc));
            let index = ExactIndex::new(zg.view(), Metric::Euclidean).map_err(|e| e.to_string())?;
            let found = index
                .kneighbors(zc.view(), K_NEIGHBOURS)
                .map_err(|e| e.to_string())?;
            let (mut at1, mut at10) = (0usize, 0usize);
            let mut by_turn = [0usize; 4];
            for (c, nb) in found.iter().enumerate() {
                let own = group[queries[c / Turn::ALL.len()]];
                let hit1 = nb.first().is_some_and(|n| group[n.index] == own);
                at1 += usize::from(hit1);
                by_turn[c % Turn::ALL.len()] += usize::from(hit1);
                at10 += usize::from(nb.iter().any(|n| group[n.index] == own));
            }
            let (seeds, subs) = stability(zg.view(), s.seed)?;
            let nc = copies.n as f64;
            Ok(RealRow {
                key: kind.key.to_string(),
                label: kind.label.clone(),
                explained,
                recall_at_1: at1 as f64 / nc,
                recall_at_10: at10 as f64 / nc,
                recall_at_1_by_turn: Turn::ALL
                    .iter()
                    .zip(by_turn)
                    .map(|(t, h)| (t.name(), h as f64 / queries.len() as f64))
                    .collect(),
                stability_seeds_ari: seeds,
                stability_subsample_ari: subs,
            })
        })?;
        rows.push(row);
    }
    Ok(RealSection::Measured(RealStudy {
        folder: s.real_dir(),
        total,
        gallery: gallery.n,
        queries: queries.len(),
        copies: copies.n,
        duplicate_groups: groups.len(),
        duplicate_rows: groups.iter().map(Vec::len).sum(),
        rows,
    }))
}

/// Everything the report shows.
pub(crate) struct Study {
    pub settings: Settings,
    pub synthetic: Synthetic,
    pub kinds: Vec<(String, String, String)>,
    pub synthetic_rows: Vec<SynRow>,
    pub wide_pixels_note: Option<String>,
    pub supervised_history: Vec<EpochRecord>,
    pub ssl_history: Vec<EpochRecord>,
    pub encoder_name: String,
    pub random_cnn_seed: u64,
    pub real: RealSection,
    pub stages: Vec<(String, f64)>,
    pub total_seconds: f64,
    pub date: String,
}

fn run_inner(args: &[String]) -> Result<(), String> {
    let root = workspace_root()?;
    let Some(s) = parse_args(args, &root)? else {
        return Ok(());
    };
    if cfg!(debug_assertions) {
        eprintln!(
            "[feature-study] warning: this is a debug build; use `cargo run --release -p xtask -- feature-study`"
        );
    }
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut clock = Clock::new();
    let syn = clock.stage(
        format!("synthetic set ({} galaxies)", s.synthetic_count),
        || make_synthetic(&s),
    )?;
    eprintln!(
        "[feature-study] split: {} train ({} fit + {} val), {} test; classes {:?}",
        syn.train.len(),
        syn.fit.len(),
        syn.val.len(),
        syn.test.len(),
        syn.class_counts
    );
    let random_cnn_seed = mix(s.seed, TAG_RANDOM_CNN);
    let random_cnn = clock.stage("random sdss-cnn weights", || {
        CnnModel::random(CnnConfig::sdss_cnn(), random_cnn_seed).map_err(|e| e.to_string())
    })?;
    let (supervised, supervised_history) = clock.stage(
        format!("supervised training ({} epochs)", s.supervised_epochs),
        || train_supervised(&s, &syn),
    )?;
    let (ssl, ssl_history) = clock.stage(
        format!("self-supervised training ({} epochs)", s.ssl_epochs),
        || train_ssl(&s, &syn),
    )?;
    let (shipped, encoder_name) = clock.stage("encoder", || match &s.encoder {
        Some(p) => CnnModel::load(p)
            .map(|m| (m, p.display().to_string()))
            .map_err(|e| e.to_string()),
        None => sdss_cnn::pretrained::model()
            .map(|m| (m, sdss_cnn::pretrained::NAME.to_string()))
            .map_err(|e| e.to_string()),
    })?;
    let kinds = vec![
        Kind {
            key: "pixels",
            label: "pixels".into(),
            note: format!("the {PER} pixel values in [0, 1]"),
            model: None,
        },
        Kind {
            key: "random_sdss_cnn",
            label: "sdss-cnn, random weights (control)".into(),
            note: format!(
                "full sdss-cnn architecture, Glorot-uniform random weights (seed {random_cnn_seed}), dense tap (128)"
            ),
            model: Some(random_cnn),
        },
        Kind {
            key: "supervised_small",
            label: "small, supervised (synthetic ellipticity)*".into(),
            note: format!(
                "`small` trained by sdss-train's Trainer (MSE on ellipticity, {} epochs, sdss_CNN recipe) on the synthetic training part, dense tap",
                s.supervised_epochs
            ),
            model: Some(supervised),
        },
        Kind {
            key: "ssl_small",
            label: "small, self-supervised (VICReg, synthetic)*".into(),
            note: format!(
                "`small` trained by sdss-train's SslTrainer (default SslOptions: VICReg, {} epochs) on the synthetic training part without labels, dense tap",
                s.ssl_epochs
            ),
            model: Some(ssl),
        },
        Kind {
            key: "shipped_encoder",
            label: if s.encoder.is_some() {
                "encoder from --encoder".into()
            } else {
                format!("shipped encoder ({})", sdss_cnn::pretrained::NAME)
            },
            note: if s.encoder.is_some() {
                format!("{encoder_name}, dense tap")
            } else {
                shipped_note()
            },
            model: Some(shipped),
        },
    ];
    let mut synthetic_rows = Vec::new();
    for kind in &kinds {
        let feats = clock.stage(format!("synthetic features: {}", kind.label), || {
            kind.features(&syn.images)
        })?;
        let row = clock.stage(format!("synthetic metrics: {}", kind.label), || {
            synthetic_row(kind.key, &kind.label, feats.view(), s.pca, &syn, &s)
        })?;
        synthetic_rows.push(row);
        if kind.key == "pixels" && syn.images.n > PIXELS_WIDE_PCA {
            let row = clock.stage(
                format!("synthetic metrics: pixels, PCA {PIXELS_WIDE_PCA}"),
                || {
                    synthetic_row(
                        "pixels_pca250",
                        &format!("pixels, PCA {PIXELS_WIDE_PCA} (reference)"),
                        feats.view(),
                        PIXELS_WIDE_PCA,
                        &syn,
                        &s,
                    )
                },
            )?;
            synthetic_rows.push(row);
        }
    }
    let wide_pixels_note = (syn.images.n <= PIXELS_WIDE_PCA).then(|| {
        format!(
            "the pixels, PCA {PIXELS_WIDE_PCA} row needs more than {PIXELS_WIDE_PCA} galaxies; skipped"
        )
    });
    let real = real_study(&s, &kinds, &mut clock)?;
    if let RealSection::Skipped(why) = &real {
        eprintln!("[feature-study] {why}");
    }
    let study = Study {
        kinds: kinds
            .iter()
            .map(|k| (k.key.to_string(), k.label.clone(), k.note.clone()))
            .collect(),
        settings: s,
        synthetic: syn,
        synthetic_rows,
        wide_pixels_note,
        supervised_history,
        ssl_history,
        encoder_name,
        random_cnn_seed,
        real,
        total_seconds: clock.total(),
        stages: clock.stages.clone(),
        date: helpers::utc_date(started),
    };
    let (markdown, tables, json) = report::render(&study);
    let out = &study.settings.out;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let json_path = study.settings.json_path();
    let json_text = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())? + "\n";
    sdss_io::atomic::write_bytes_atomic(&json_path, json_text.as_bytes())
        .map_err(|e| e.to_string())?;
    sdss_io::atomic::write_bytes_atomic(out, markdown.as_bytes()).map_err(|e| e.to_string())?;
    println!("{tables}");
    eprintln!(
        "[feature-study] wrote {} and {} in {:.1} s",
        out.display(),
        json_path.display(),
        study.total_seconds
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments_resolve_quick_defaults_and_name_bad_options() {
        let root = Path::new("/repo");
        let s = parse_args(&args(&["--quick", "--seed", "3"]), root)
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                s.synthetic_count,
                s.ssl_epochs,
                s.supervised_epochs,
                s.retrieval
            ),
            (600, 3, 3, 100)
        );
        assert_eq!(s.seed, 3);
        assert_eq!(s.out, Path::new("/repo/docs/feature-quality.md"));
        assert_eq!(s.json_path(), Path::new("/repo/docs/feature-quality.json"));
        assert_ne!(s.synthetic_seed(), fixture_config().seed);
        let s = parse_args(&args(&["--synthetic-count", "500"]), root)
            .unwrap()
            .unwrap();
        assert_eq!(
            (s.synthetic_count, s.ssl_epochs, s.real_limit),
            (500, 30, None)
        );
        assert!(s.command().ends_with("feature-study --synthetic-count 500"));
        for (bad, needle) in [
            (&["--pca", "0"][..], "--pca"),
            (&["--pca", "x"][..], "--pca"),
            (&["--seed"][..], "--seed needs a value"),
            (&["--frobnicate"][..], "unknown argument `--frobnicate`"),
            (&["--synthetic-count", "10"][..], "--synthetic-count"),
            (&["--ssl-epochs", "0"][..], "--ssl-epochs"),
            (&["--encoder", "/no/such.safetensors"][..], "--encoder"),
            (&["--out", "x.txt"][..], "--out"),
            (&["--real-limit", "5"][..], "--real-limit"),
        ] {
            let err = parse_args(&args(bad), root).unwrap_err();
            assert!(err.contains(needle), "{bad:?}: {err}");
        }
    }
}
