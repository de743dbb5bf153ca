//! The `run` configuration: command-line flags over a TOML file over defaults. The configuration a run
//! actually used is written into its output folder, so `run --config <out>/config.toml` repeats it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::cli::{FeatureKind, Layer, RunArgs};

/// PCA size: a number of components or a fraction of the variance to keep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PcaSize {
    /// Keep this many components.
    Count(usize),
    /// Keep enough components to explain this fraction of the variance, in (0, 1].
    Fraction(f64),
}

impl PcaSize {
    /// Parses `250` as a count and `0.95` as a fraction.
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim();
        if let Ok(n) = t.parse::<usize>() {
            if n == 0 {
                bail!(
                    "--pca: 0 components is not a PCA; give a count >= 1 or a fraction in (0, 1]"
                );
            }
            return Ok(PcaSize::Count(n));
        }
        match t.parse::<f64>() {
            Ok(f) if f > 0.0 && f <= 1.0 => Ok(PcaSize::Fraction(f)),
            _ => bail!("--pca: `{text}` is neither a component count nor a fraction in (0, 1]"),
        }
    }

    /// As sdss-pca takes it.
    pub fn to_n_components(self) -> sdss_pca::NComponents {
        match self {
            PcaSize::Count(n) => sdss_pca::NComponents::from(n),
            PcaSize::Fraction(f) => sdss_pca::NComponents::from(f),
        }
    }
}

impl std::fmt::Display for PcaSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PcaSize::Count(n) => write!(f, "{n} components"),
            PcaSize::Fraction(x) => write!(f, "{:.1}% of the variance", x * 100.0),
        }
    }
}

/// Everything `run` needs. Every field can be set in the TOML file under the same name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Folder of images (exclusive with `npy`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images: Option<PathBuf>,
    /// Image stack .npy (exclusive with `images`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub npy: Option<PathBuf>,
    /// Features to cluster on.
    pub features: FeatureKind,
    /// Read the features from a `features`/`merge` output or a folder of shard parts instead of
    /// computing them.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub features_from: Option<PathBuf>,
    /// Converted CNN weights, for `features = "cnn"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights: Option<PathBuf>,
    /// CNN layer tapped.
    pub layer: Layer,
    /// PCA size.
    pub pca: PcaSize,
    /// Fit the PCA on a seeded sample of this many galaxies (all of them when absent).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pca_fit_sample: Option<usize>,
    /// Fit the PCA block by block over the mapped features even when they would fit in memory.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub pca_streamed: bool,
    /// Method specs, e.g. `kmeans:k=10`.
    pub methods: Vec<String>,
    /// Seed for PCA and seeded methods.
    pub seed: u64,
    /// Skip bad images instead of failing.
    pub skip_bad: bool,
    /// Reference labels to score against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truth: Option<PathBuf>,
    /// Images per batch.
    pub batch_size: usize,
    /// Where the CNN runs: `cpu` or `cuda[:N]`.
    #[serde(default = "default_device")]
    pub device: String,
    /// Images with more pixels than this are refused before decoding.
    #[serde(default = "default_max_image_pixels")]
    pub max_image_pixels: u64,
    /// Catalogue joined to the galaxies.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub catalog: Option<PathBuf>,
    /// The catalogue's id column.
    #[serde(default = "default_catalog_id")]
    pub catalog_id: String,
    /// Join on sky position within this radius, arcsec.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub match_radius: Option<f64>,
    /// The galaxies' positions (id, ra, dec).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub positions: Option<PathBuf>,
    /// Catalogue columns shown per cluster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<String>,
    /// Two catalogue columns to scatter, `X,Y`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub scatter: Option<String>,
    /// Draw the 2-D map of every galaxy.
    #[serde(default = "default_true")]
    pub map: bool,
    /// Whether to write one page per galaxy.
    #[serde(default)]
    pub galaxy_pages: crate::cli::GalaxyPages,
    /// Output folder.
    pub out: PathBuf,
    /// Replace an existing output folder.
    #[serde(default)]
    pub force: bool,
    /// Take the features of a killed run into the same `out`, when they check out (not written to
    /// `config.toml`: it says how to make the results, not how this process started).
    #[serde(default, skip_serializing)]
    pub resume: bool,
}

/// The TOML file's form: every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartialConfig {
    images: Option<PathBuf>,
    npy: Option<PathBuf>,
    features: Option<FeatureKind>,
    features_from: Option<PathBuf>,
    weights: Option<PathBuf>,
    layer: Option<Layer>,
    pca: Option<PcaSize>,
    pca_fit_sample: Option<usize>,
    pca_streamed: Option<bool>,
    methods: Option<Vec<String>>,
    seed: Option<u64>,
    skip_bad: Option<bool>,
    truth: Option<PathBuf>,
    batch_size: Option<usize>,
    device: Option<String>,
    max_image_pixels: Option<u64>,
    out: Option<PathBuf>,
    force: Option<bool>,
    resume: Option<bool>,
    catalog: Option<PathBuf>,
    catalog_id: Option<String>,
    match_radius: Option<f64>,
    positions: Option<PathBuf>,
    properties: Option<Vec<String>>,
    scatter: Option<String>,
    map: Option<bool>,
    galaxy_pages: Option<crate::cli::GalaxyPages>,
}

fn default_catalog_id() -> String {
    "id".to_owned()
}

fn default_true() -> bool {
    true
}

fn default_max_image_pixels() -> u64 {
    sdss_io::DEFAULT_MAX_IMAGE_PIXELS
}

fn default_device() -> String {
    sdss_cnn::ComputeDevice::Cpu.to_string()
}

impl RunConfig {
    /// The device the CNN runs on (`device`, checked when the configuration was built).
    pub fn compute_device(&self) -> Result<sdss_cnn::ComputeDevice> {
        crate::cli::parse_device(&self.device).map_err(|e| anyhow::anyhow!("device: {e}"))
    }
}

/// The original project's methods: k-means 10, affinity propagation (damping 0.8), Ward 32.
pub const DEFAULT_METHODS: [&str; 3] = [
    "kmeans:k=10",
    "affinity:damping=0.8",
    "agglomerative:k=32,linkage=ward",
];

/// The original project's PCA sizes for each kind of feature.
pub fn default_pca(features: FeatureKind, layer: Layer) -> PcaSize {
    match (features, layer) {
        (FeatureKind::Pixels, _) => PcaSize::Count(250),
        (FeatureKind::Cnn, Layer::Flatten) => PcaSize::Count(100),
        // A prediction or a few class probabilities: keep every component (PCA only rotates them).
        (FeatureKind::Cnn, Layer::Output) => PcaSize::Fraction(1.0),
        (FeatureKind::Cnn, _) => PcaSize::Count(20),
    }
}

impl RunConfig {
    /// Merges command-line flags over the TOML file (if any) over the defaults.
    pub fn resolve(args: &RunArgs) -> Result<Self> {
        match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config {}", path.display()))?;
                Self::resolve_with_file(args, Some((&text, path)))
            }
            None => Self::resolve_with_file(args, None),
        }
    }

    /// [`RunConfig::resolve`] with the `--config` file's text already read: `(text, path)`, where
    /// `path` places its relative paths and names it in errors.
    pub fn resolve_with_file(args: &RunArgs, file: Option<(&str, &Path)>) -> Result<Self> {
        let file = match file {
            Some((text, path)) => {
                let partial: PartialConfig = toml::from_str(text).map_err(|e| {
                    anyhow::anyhow!("config {}: {}", path.display(), one_line(&e.to_string()))
                })?;
                // Relative paths in a config file are relative to the file, so a config can travel.
                let base = path.parent().unwrap_or(Path::new("."));
                partial.rebased(base)
            }
            None => PartialConfig::default(),
        };

        let (images, npy) = match (&args.input.images, &args.input.npy) {
            (None, None) => (file.images, file.npy),
            (images, npy) => (images.clone(), npy.clone()),
        };
        if images.is_some() && npy.is_some() {
            bail!("give either images or npy as input, not both (config sets both)");
        }
        if images.is_none() && npy.is_none() {
            bail!("no input: give --images DIR or --npy FILE (or images/npy in --config)");
        }
        let weights = args.weights.clone().or(file.weights);
        let features = args
            .features
            .or(file.features)
            // The shipped encoder stands in when no --weights is given.
            .unwrap_or(FeatureKind::Cnn);
        let layer = args.layer.or(file.layer).unwrap_or(Layer::Dense);
        let pca = match &args.pca {
            Some(text) => PcaSize::parse(text)?,
            None => match file.pca {
                Some(p) => validate_pca(p)?,
                None => default_pca(features, layer),
            },
        };
        let methods = if !args.methods.is_empty() {
            args.methods.clone()
        } else {
            file.methods
                .unwrap_or_else(|| DEFAULT_METHODS.iter().map(|s| s.to_string()).collect())
        };
        if methods.is_empty() {
            bail!("no clustering method: give at least one --method SPEC");
        }
        let batch_size = args
            .batch_size
            .or(file.batch_size)
            .unwrap_or(sdss_io::folder::DEFAULT_BATCH_SIZE);
        if batch_size == 0 {
            bail!("--batch-size must be at least 1");
        }
        let device = match (args.device, file.device) {
            (Some(d), _) => d,
            (None, Some(text)) => crate::cli::parse_device(&text)
                .map_err(|e| anyhow::anyhow!("device in the config file: {e}"))?,
            (None, None) => sdss_cnn::ComputeDevice::Cpu,
        };
        let max_image_pixels = args
            .max_image_pixels
            .or(file.max_image_pixels)
            .unwrap_or(sdss_io::DEFAULT_MAX_IMAGE_PIXELS);
        if max_image_pixels == 0 {
            bail!("max_image_pixels = 0 would refuse every image; give a count >= 1");
        }
        let pca_fit_sample = args.pca_fit_sample.or(file.pca_fit_sample);
        if pca_fit_sample.is_some_and(|m| m < 2) {
            bail!("--pca-fit-sample must be at least 2 galaxies");
        }
        let catalog = args.catalog.clone().or(file.catalog);
        let match_radius = args.match_radius.or(file.match_radius);
        if let Some(r) = match_radius {
            if !(r.is_finite() && r > 0.0) {
                bail!("--match-radius must be a positive number of arcseconds, got {r}");
            }
        }
        let properties = if args.properties.is_empty() {
            file.properties.unwrap_or_default()
        } else {
            args.properties.clone()
        };
        let scatter = args.scatter.clone().or(file.scatter);
        if let Some(s) = &scatter {
            parse_scatter(s)?;
        }
        if catalog.is_none()
            && (!properties.is_empty() || scatter.is_some() || match_radius.is_some())
        {
            bail!("--property, --scatter and --match-radius need a --catalog FILE");
        }
        let out = args
            .out
            .clone()
            .or(file.out)
            .context("no output folder: give --out DIR (or out in --config)")?;
        Ok(RunConfig {
            images,
            npy,
            features,
            features_from: args.features_from.clone().or(file.features_from),
            weights,
            layer,
            pca,
            pca_fit_sample,
            pca_streamed: args.pca_streamed || file.pca_streamed.unwrap_or(false),
            methods,
            seed: args.seed.or(file.seed).unwrap_or(0),
            skip_bad: args.skip_bad || file.skip_bad.unwrap_or(false),
            truth: args.truth.clone().or(file.truth),
            batch_size,
            device: device.to_string(),
            max_image_pixels,
            out,
            force: args.force || file.force.unwrap_or(false),
            resume: args.resume || file.resume.unwrap_or(false),
            catalog,
            catalog_id: args
                .catalog_id
                .clone()
                .or(file.catalog_id)
                .unwrap_or_else(default_catalog_id),
            match_radius,
            positions: args.positions.clone().or(file.positions),
            properties,
            scatter,
            map: !args.no_map && file.map.unwrap_or(true),
            galaxy_pages: args.galaxy_pages.or(file.galaxy_pages).unwrap_or_default(),
        })
    }

    /// The configuration as TOML, for the output folder.
    pub fn to_toml(&self) -> Result<String> {
        let mut repeatable = self.clone();
        // Repeating a run must not silently replace its own output.
        repeatable.force = false;
        Ok(format!(
            "# The configuration this run used. Repeat it with:\n#   sdss-clustering run --config config.toml --out NEW_DIR\n{}",
            toml::to_string_pretty(&repeatable)?
        ))
    }
}

/// Splits `--scatter X,Y` into its two column names.
pub fn parse_scatter(text: &str) -> Result<(&str, &str)> {
    match text.split_once(',') {
        Some((x, y)) if !x.trim().is_empty() && !y.trim().is_empty() && !y.contains(',') => {
            Ok((x.trim(), y.trim()))
        }
        _ => bail!(
            "--scatter: expected two catalogue columns as X,Y (e.g. ellip,lambda_re), got `{text}`"
        ),
    }
}

fn validate_pca(p: PcaSize) -> Result<PcaSize> {
    match p {
        PcaSize::Count(0) => bail!("config: pca = 0 is not a PCA"),
        PcaSize::Fraction(f) if !(f > 0.0 && f <= 1.0) => {
            bail!("config: pca = {f} is not a fraction in (0, 1]")
        }
        p => Ok(p),
    }
}

impl PartialConfig {
    fn rebased(mut self, base: &Path) -> Self {
        let fix = |p: Option<PathBuf>| p.map(|p| if p.is_absolute() { p } else { base.join(p) });
        self.images = fix(self.images);
        self.npy = fix(self.npy);
        self.features_from = fix(self.features_from);
        self.weights = fix(self.weights);
        self.truth = fix(self.truth);
        self.out = fix(self.out);
        self.catalog = fix(self.catalog);
        self.positions = fix(self.positions);
        self
    }
}

/// A parsed method spec: `name:key=value,key=value`.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodSpec {
    /// The spec as written.
    pub text: String,
    /// Canonical method name as sdss-cluster takes it.
    pub method: String,
    /// Short name used in file names and columns (`kmeans`, `affinity`, ...).
    pub short: &'static str,
    /// Parameters.
    pub params: Vec<(String, String)>,
}

impl MethodSpec {
    /// Parses `kmeans:k=10`, `affinity:damping=0.8`, `agglomerative:k=32,linkage=ward`, `hdbscan`.
    pub fn parse(text: &str) -> Result<Self> {
        let (name, rest) = text.split_once(':').unwrap_or((text, ""));
        let name = name.trim().to_ascii_lowercase().replace('_', "-");
        let (method, short) = match name.as_str() {
            "kmeans" | "k-means" => ("kmeans", "kmeans"),
            "minibatch" | "minibatch-kmeans" | "mini-batch-kmeans" => {
                ("minibatch-kmeans", "minibatch")
            }
            "affinity" | "affinity-propagation" | "ap" => ("affinity-propagation", "affinity"),
            "agglomerative" | "ward" | "hierarchical" => ("agglomerative", "agglomerative"),
            "dbscan" => ("dbscan", "dbscan"),
            "hdbscan" => ("hdbscan", "hdbscan"),
            "optics" => ("optics", "optics"),
            other => bail!(
                "--method {text}: unknown method `{other}` (kmeans, minibatch, affinity, agglomerative, dbscan, hdbscan, optics)"
            ),
        };
        let mut params = Vec::new();
        for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((k, v)) = part.split_once('=') else {
                bail!("--method {text}: `{part}` is not key=value");
            };
            params.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        Ok(MethodSpec {
            text: text.to_owned(),
            method: method.to_owned(),
            short,
            params,
        })
    }

    /// Adds `seed=<seed>` where the method takes a seed and none was given, so the recorded config is
    /// explicit.
    pub fn with_default_seed(mut self, seed: u64) -> Self {
        let seeded = matches!(
            self.method.as_str(),
            "kmeans" | "minibatch-kmeans" | "affinity-propagation"
        );
        let has = self
            .params
            .iter()
            .any(|(k, _)| k == "seed" || k == "random_state");
        if seeded && !has {
            self.params.push(("seed".into(), seed.to_string()));
            self.text = self.canonical_text();
        }
        self
    }

    /// `short:key=value,...`
    pub fn canonical_text(&self) -> String {
        if self.params.is_empty() {
            return self.short.to_owned();
        }
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("{}:{}", self.short, params.join(","))
    }

    /// Builds the validated sdss-cluster method.
    pub fn build(&self) -> Result<sdss_cluster::ClusterMethod> {
        sdss_cluster::ClusterMethod::from_params(&self.method, &self.params)
            .map_err(|e| anyhow::anyhow!("--method {}: {e}", self.text))
    }
}

/// Collapses a multi-line message (e.g. a TOML parse error with a source excerpt) onto one line.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pca_size_parses_counts_and_fractions() {
        assert_eq!(PcaSize::parse("250").unwrap(), PcaSize::Count(250));
        assert_eq!(PcaSize::parse("0.95").unwrap(), PcaSize::Fraction(0.95));
        assert!(PcaSize::parse("0").is_err());
        assert!(PcaSize::parse("1.5").is_err());
        assert!(PcaSize::parse("lots").is_err());
    }

    #[test]
    fn method_specs_parse_and_build() {
        let m = MethodSpec::parse("agglomerative:k=32,linkage=ward").unwrap();
        assert_eq!(m.short, "agglomerative");
        assert_eq!(m.params.len(), 2);
        m.build().unwrap();
        let a = MethodSpec::parse("affinity:damping=0.8")
            .unwrap()
            .with_default_seed(7);
        assert_eq!(a.canonical_text(), "affinity:damping=0.8,seed=7");
        a.build().unwrap();
        assert!(MethodSpec::parse("spectral:k=3").is_err());
        assert!(MethodSpec::parse("kmeans:k").is_err());
        let err = MethodSpec::parse("affinity:damping=1.5")
            .unwrap()
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("damping"), "{err}");
    }

    #[test]
    fn flags_win_over_config_and_paths_rebase() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        std::fs::write(
            &cfg,
            "images = \"imgs\"\npca = 0.9\nmethods = [\"kmeans:k=3\"]\nseed = 5\nout = \"o\"\n",
        )
        .unwrap();
        let args = RunArgs {
            config: Some(cfg.clone()),
            seed: Some(9),
            ..RunArgs::default()
        };
        let c = RunConfig::resolve(&args).unwrap();
        assert_eq!(c.images.as_deref(), Some(dir.path().join("imgs").as_path()));
        assert_eq!(c.pca, PcaSize::Fraction(0.9));
        assert_eq!(c.seed, 9);
        // Without --weights the shipped encoder gives CNN features.
        assert_eq!(c.features, FeatureKind::Cnn);
        // The written form reads back to the same configuration.
        std::fs::write(&cfg, c.to_toml().unwrap()).unwrap();
        let again = RunConfig::resolve(&RunArgs {
            config: Some(cfg),
            ..RunArgs::default()
        })
        .unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn unknown_config_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        std::fs::write(&cfg, "imagez = \"x\"\n").unwrap();
        let err = RunConfig::resolve(&RunArgs {
            config: Some(cfg),
            ..RunArgs::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("imagez"), "{err}");
    }
}
