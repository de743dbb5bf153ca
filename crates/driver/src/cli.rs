//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

/// Group SDSS galaxy images by how they look: features (CNN or pixels), PCA, clustering, and a report.
///
/// With no subcommand, runs the whole pipeline on the bundled example galaxies and says where the
/// report is.
#[derive(Debug, Parser)]
#[command(name = "sdss-clustering", version, propagate_version = true)]
pub struct Cli {
    /// Print only warnings and errors: no progress bars, no informational messages.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// What to do (default: `run` on the bundled example galaxies).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Whole pipeline: images -> features -> PCA -> clustering -> report (galleries, plots, index.html).
    Run(RunArgs),
    /// Extract CNN features (or raw pixels) from images into an (N, D) .npy matrix.
    Features(FeaturesArgs),
    /// Join the parts `features --shard I/N` wrote (checking that they cover the input exactly once)
    /// into one (N, D) .npy matrix with its ids, as one `features` run writes.
    Merge(MergeArgs),
    /// Fit PCA to an (N, D) matrix and write the reduced (N, k) matrix.
    Pca(PcaArgs),
    /// Cluster the rows of an (N, D) matrix and write one label per row.
    Cluster(ClusterArgs),
    /// Score a clustering: internal metrics, and agreement with reference labels if given (JSON on stdout).
    Evaluate(EvaluateArgs),
    /// Download the SDSS cutout of every galaxy of a catalogue (resumable; writes a manifest).
    Fetch(crate::fetch::FetchArgs),
    /// Galaxies like given ones: their nearest neighbours in a feature matrix (CSV and galleries).
    Similar(crate::similar::SimilarArgs),
    /// Groups of duplicate galaxies: identical (or, with --threshold, nearly identical) features or
    /// pixels.
    Duplicates(crate::similar::DuplicatesArgs),
    /// Train the sdss_CNN network (or a smaller variant) on CPU to predict a catalogue column from the
    /// images: a number (regression) or a class; writes weights that `features`, `run` and `similar` take.
    Train(crate::train::TrainArgs),
}

/// Which features describe each galaxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeatureKind {
    /// The 19200 raw pixel values (80 x 80 x 3): the original project's baseline.
    Pixels,
    /// Transfer learning from the sdss_CNN network (needs converted weights).
    Cnn,
}

/// Whether the report writes one page per galaxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GalaxyPages {
    /// Below 100,000 galaxies; from 100,000, galaxies are found by id in search.html.
    #[default]
    Auto,
    /// Whatever the number of galaxies.
    Always,
    /// Never: search.html finds every galaxy.
    Never,
}

/// Which CNN layer to tap for features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// The 128-wide Dense layer after its ReLU (the original's CNN-128 features).
    Dense,
    /// The network's representation: what self-supervised training (`train --self-supervised`) learns
    /// and the shipped encoder gives. For every architecture of this project it is the 128-wide
    /// `dense` layer.
    Embedding,
    /// The 37632-wide Flatten output (the original's CNN-37632 features).
    Flatten,
    /// The 64-wide second Dense layer.
    #[value(name = "dense_1")]
    Dense1,
    /// The network's output: its prediction (1 value for a regression such as λ_R) or a classifier's
    /// class probabilities (one per class). `run` keeps all PCA components of it by default.
    Output,
}

impl Layer {
    /// The matching tap of the network.
    pub fn tap(self) -> sdss_cnn::Tap {
        match self {
            Layer::Dense | Layer::Embedding => sdss_cnn::Tap::Dense,
            Layer::Flatten => sdss_cnn::Tap::Flatten,
            Layer::Dense1 => sdss_cnn::Tap::Dense1,
            Layer::Output => sdss_cnn::Tap::Output,
        }
    }
}

/// Where the images come from (exactly one).
#[derive(Debug, Clone, Args, Default)]
#[group(multiple = false)]
pub struct InputArgs {
    /// A folder of JPEG/PNG galaxy images; each file's stem is the galaxy id.
    #[arg(long, value_name = "DIR")]
    pub images: Option<PathBuf>,
    /// An (N, H, W, 3) image stack (uint8, or float in [0, 1]); ids from `<stem>.ids.csv` beside it.
    #[arg(long, value_name = "FILE")]
    pub npy: Option<PathBuf>,
}

/// Arguments of `run`.
#[derive(Debug, Clone, Args, Default)]
pub struct RunArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Features to cluster on (default: cnn: the --weights network, or without it the shipped encoder
    /// trained self-supervised on 6,437 SDSS galaxies; pixels for the raw-pixel baseline).
    #[arg(long, value_enum)]
    pub features: Option<FeatureKind>,
    /// Cluster features computed before instead of computing them: a `features` or `merge` output
    /// (.npy with its .ids.csv beside it) or the folder of parts `features --shard I/N` wrote.
    /// `--images` still gives the galaxies' pictures, matched by id.
    #[arg(long, value_name = "FILE|PARTS_DIR")]
    pub features_from: Option<PathBuf>,
    /// CNN weights (.safetensors from `cargo xtask fetch-weights` or `train`); default: the shipped
    /// encoder.
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// CNN layer to tap (default: dense, the embedding).
    #[arg(long, value_enum)]
    pub layer: Option<Layer>,
    /// PCA components: a count (e.g. 250) or a fraction of variance to keep (e.g. 0.95).
    /// Default: 250 for pixels, 20 for the dense layer, 100 for flatten (the original's choices); for
    /// the output layer, all of them (1.0: it is already small, so PCA only rotates it).
    #[arg(long, value_name = "N|FRACTION")]
    pub pca: Option<String>,
    /// Fit the PCA on a seeded random sample of N galaxies and project all of them (what Zoobot
    /// and Stein et al. do at scale). Default: fit on all galaxies. The variance the sample's
    /// components explain on all galaxies is what pca.json reports; it is a little lower than a
    /// full fit's (on the real pixels, 250 components: 3.5e-3 lower from 4000 of 6437).
    #[arg(long, value_name = "N")]
    pub pca_fit_sample: Option<usize>,
    /// Fit the PCA block by block over the memory-mapped features, never holding them (the
    /// randomized solver; within 2e-5 of the exact explained variance on the real pixels). This is
    /// automatic when the features are larger than a quarter of the available memory.
    #[arg(long)]
    pub pca_streamed: bool,
    /// Clustering method, repeatable: e.g. `kmeans:k=10`, `affinity:damping=0.8`,
    /// `agglomerative:k=32,linkage=ward`, `hdbscan:min_cluster_size=15`.
    #[arg(long = "method", value_name = "SPEC")]
    pub methods: Vec<String>,
    /// A TOML file with any of these options; flags given on the command line win.
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
    /// Seed for PCA's randomized solver and for methods that take one (default 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Skip unreadable images (listing them) instead of failing.
    #[arg(long)]
    pub skip_bad: bool,
    /// Reference labels to score against: a .npy of N integers, or a CSV with `id` and `class` columns.
    #[arg(long, value_name = "FILE")]
    pub truth: Option<PathBuf>,
    /// Images decoded (and pushed through the CNN) per batch.
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
    /// Where the CNN runs: `cpu` (the default) or `cuda[:N]`, an NVIDIA GPU through candle's CUDA
    /// backend (a build with `--features cuda`).
    #[arg(long, value_name = "DEVICE", value_parser = parse_device)]
    pub device: Option<sdss_cnn::ComputeDevice>,
    /// Refuse images with more pixels than this, before decoding them (a guard against decompression
    /// bombs; default 67108864 = 8192 x 8192, far above SDSS's 424 x 424 cutouts).
    #[arg(long, value_name = "PIXELS", value_parser = parse_max_image_pixels)]
    pub max_image_pixels: Option<u64>,
    /// A catalogue to join to the galaxies (CSV, ECSV or FITS binary table): its columns go into
    /// the tables, and --property/--scatter plot them per cluster.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
    /// The catalogue's column of galaxy ids (the image file names), for joining on id (default `id`).
    #[arg(long, value_name = "COLUMN")]
    pub catalog_id: Option<String>,
    /// Join on sky position instead: catalogue rows within this many arcseconds of a galaxy (needs
    /// ra/dec in the catalogue and --positions for the galaxies).
    #[arg(long, value_name = "ARCSEC")]
    pub match_radius: Option<f64>,
    /// The galaxies' sky positions: a table with `id`, `ra` and `dec` in degrees (the catalogue
    /// given to `fetch` is one).
    #[arg(long, value_name = "FILE")]
    pub positions: Option<PathBuf>,
    /// A numeric catalogue column to show per cluster (repeatable), e.g. `lambda_re`.
    #[arg(long = "property", value_name = "COLUMN")]
    pub properties: Vec<String>,
    /// Two catalogue columns to scatter, coloured by cluster, e.g. `ellip,lambda_re`.
    #[arg(long, value_name = "X,Y")]
    pub scatter: Option<String>,
    /// Skip the 2-D map of every galaxy (map.html, embedding_2d.npy).
    #[arg(long)]
    pub no_map: bool,
    /// One page per galaxy with its neighbours: `auto` writes them below 100,000 galaxies; from there,
    /// and with `never`, search.html finds any galaxy by id, with its neighbours.
    #[arg(long, value_enum, value_name = "WHEN")]
    pub galaxy_pages: Option<GalaxyPages>,
    /// Output folder (must not exist or be empty, unless --force).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace an existing output folder; the old one is removed only after the new run succeeds.
    #[arg(long)]
    pub force: bool,
    /// Pick up a run into the same --out that was killed after its features were written: they are
    /// taken from its staging folder, when they are of the same images and feature request, instead
    /// of being computed again.
    #[arg(long)]
    pub resume: bool,
}

/// Arguments of `features`.
#[derive(Debug, Clone, Args)]
pub struct FeaturesArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// CNN weights (.safetensors from `cargo xtask fetch-weights` or `train`); without it, the shipped
    /// encoder (self-supervised on 6,437 SDSS galaxies).
    #[arg(long, value_name = "FILE", conflicts_with = "pixels")]
    pub weights: Option<PathBuf>,
    /// Write the raw pixels (80 x 80 x 3 = 19200 values per galaxy, the baseline) instead of CNN
    /// features.
    #[arg(long)]
    pub pixels: bool,
    /// CNN layer to tap.
    #[arg(long, value_enum, default_value = "dense")]
    pub layer: Layer,
    /// Skip unreadable images (listing them) instead of failing.
    #[arg(long)]
    pub skip_bad: bool,
    /// Images per batch.
    #[arg(long, value_name = "N", default_value_t = sdss_io::folder::DEFAULT_BATCH_SIZE)]
    pub batch_size: usize,
    /// Where the CNN runs: `cpu` or `cuda[:N]` (a build with `--features cuda`).
    #[arg(long, value_name = "DEVICE", value_parser = parse_device, default_value = "cpu")]
    pub device: sdss_cnn::ComputeDevice,
    /// Refuse images with more pixels than this, before decoding them (decompression-bomb guard).
    #[arg(long, value_name = "PIXELS", value_parser = parse_max_image_pixels,
          default_value_t = sdss_io::DEFAULT_MAX_IMAGE_PIXELS)]
    pub max_image_pixels: u64,
    /// Output (N, D) float32 .npy; the galaxy ids go to `<stem>.ids.csv` beside it. With `--shard`,
    /// a folder that collects the parts.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Compute only the I-th of N contiguous slices of the sorted images (I from 0), as
    /// `part-IIIII-of-NNNNN.npy` with a `.json` sidecar in the `--out` folder; a part already there
    /// that checks out is skipped. Inside a SLURM job array it is taken from SLURM_ARRAY_TASK_ID
    /// and SLURM_ARRAY_TASK_COUNT. Join the parts with `merge`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
}

/// Arguments of `merge`.
#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// The folder `features --shard I/N --out DIR` wrote its parts to.
    #[arg(value_name = "PARTS_DIR")]
    pub parts: PathBuf,
    /// Output (N, D) float32 .npy; the galaxy ids go to `<stem>.ids.csv` beside it.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Arguments of `pca`.
#[derive(Debug, Clone, Args)]
pub struct PcaArgs {
    /// (N, D) input matrix (.npy).
    #[arg(long, value_name = "X.npy")]
    pub input: PathBuf,
    /// A count (e.g. 20) or a fraction of variance to keep (e.g. 0.95).
    #[arg(long, value_name = "N|FRACTION")]
    pub components: String,
    /// Solver: auto, full, covariance_eigh or randomized.
    #[arg(long, default_value = "auto")]
    pub solver: String,
    /// Whiten the components (unit variance).
    #[arg(long)]
    pub whiten: bool,
    /// Seed for the randomized solver.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output (N, k) .npy.
    #[arg(long, value_name = "Y.npy")]
    pub out: PathBuf,
    /// Save the fitted model into this folder, to project new galaxies later.
    #[arg(long, value_name = "DIR")]
    pub save_model: Option<PathBuf>,
    /// Write the solver used and explained_variance_ratio per component as JSON.
    #[arg(long, value_name = "FILE.json")]
    pub summary: Option<PathBuf>,
}

/// Clustering methods by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodName {
    /// k-means (k-means++, n_init restarts).
    Kmeans,
    /// Mini-batch k-means (scikit-learn's MiniBatchKMeans), for large N.
    Minibatch,
    /// Affinity propagation (scikit-learn semantics).
    Affinity,
    /// Agglomerative (hierarchical) clustering.
    Agglomerative,
    /// DBSCAN.
    Dbscan,
    /// HDBSCAN.
    Hdbscan,
    /// OPTICS.
    Optics,
}

/// Arguments of `cluster`.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// (N, D) input matrix (.npy).
    #[arg(long, value_name = "X.npy")]
    pub input: PathBuf,
    /// The method.
    #[arg(long, value_enum)]
    pub method: MethodName,
    /// Number of clusters (kmeans, agglomerative).
    #[arg(long)]
    pub k: Option<usize>,
    /// Damping (affinity).
    #[arg(long)]
    pub damping: Option<f64>,
    /// Linkage (agglomerative): ward, average, complete or single.
    #[arg(long)]
    pub linkage: Option<String>,
    /// Restarts (kmeans).
    #[arg(long)]
    pub n_init: Option<usize>,
    /// Seed (kmeans, minibatch, affinity).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Further method parameters as key=value (e.g. `--param min_cluster_size=15`).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Output labels (.npy, int64, -1 for noise).
    #[arg(long, value_name = "labels.npy")]
    pub out: PathBuf,
    /// Write the clustering summary as JSON (clusters, iterations, convergence, inertia, exemplars,
    /// linkage path).
    #[arg(long, value_name = "FILE.json")]
    pub summary: Option<PathBuf>,
}

/// Arguments of `evaluate`.
#[derive(Debug, Clone, Args)]
pub struct EvaluateArgs {
    /// (N, D) matrix the labels were computed on (.npy).
    #[arg(long, value_name = "X.npy")]
    pub input: PathBuf,
    /// Labels (.npy, N integers; -1 is noise and left out of the internal metrics).
    #[arg(long, value_name = "L.npy")]
    pub labels: PathBuf,
    /// Reference labels (.npy, N integers) for the adjusted Rand index and normalised mutual information.
    #[arg(long, value_name = "T.npy")]
    pub truth: Option<PathBuf>,
}

/// `--device`: `cpu`, `cuda` or `cuda:N`.
pub fn parse_device(text: &str) -> Result<sdss_cnn::ComputeDevice, String> {
    text.parse().map_err(|e: sdss_cnn::CnnError| e.to_string())
}

/// `--max-image-pixels`: a pixel count of at least 1.
pub fn parse_max_image_pixels(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(0) => Err("0 pixels would refuse every image; give a count >= 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("`{text}` is not a pixel count: {e}")),
    }
}
