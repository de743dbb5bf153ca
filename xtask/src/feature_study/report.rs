//! The study's markdown (`docs/feature-quality.md`), its stdout tables and its JSON.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::{
    RealSection, Study, SynRow, AP_DAMPING, K_NEIGHBOURS, K_TEN, PIXELS_WIDE_PCA, RIDGE_FOLDS,
    STABILITY_METRICS, STABILITY_RUNS, SUBSAMPLE_FRACTION, SYN_METRICS,
};
use crate::feature_study::helpers::{Turn, ALPHA_GRID};

/// Target (b): k-means with k = the number of classes, self-supervised, ARI at least this.
pub const TARGET_SSL_KMEANS_ARI: f64 = 0.5;
/// Target (c): shipped encoder, rotated-copy recall@1 on real galaxies at least this.
pub const TARGET_SHIPPED_RECALL_AT_1: f64 = 0.9;

/// One checked target line.
struct Target {
    id: String,
    what: String,
    /// `None`: not measured in this run.
    met: Option<bool>,
    detail: String,
}

/// The hand-written discussion of the targets (`notes.md` beside this file).
const NOTES: &str = include_str!("notes.md");

fn f3(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else {
        format!("{v:.3}")
    }
}

fn signed(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else {
        format!("{v:+.3}")
    }
}

fn header(metric: &str, k: usize) -> String {
    match metric {
        "kmeans_true_k_ari" => format!("k-means k={k} ARI"),
        "kmeans_true_k_nmi" => format!("k-means k={k} NMI"),
        "kmeans_10_ari" => format!("k-means k={K_TEN} ARI"),
        "kmeans_10_nmi" => format!("k-means k={K_TEN} NMI"),
        "affinity_ari" => "AP ARI".into(),
        "affinity_nmi" => "AP NMI".into(),
        "ward_true_k_ari" => format!("Ward k={k} ARI"),
        "ward_true_k_nmi" => format!("Ward k={k} NMI"),
        "knn10_accuracy" => format!("{K_NEIGHBOURS}-NN acc."),
        "probe_r2_ellipticity" => "probe R² ellipticity".into(),
        "probe_r2_bulge_fraction" => "probe R² bulge fraction".into(),
        "stability_seeds_ari" => format!("k-means k={K_TEN}, {STABILITY_RUNS} seeds (mean ARI)"),
        "stability_subsample_ari" => format!(
            "k-means k={K_TEN}, {STABILITY_RUNS} {:.0}% subsamples (mean ARI)",
            SUBSAMPLE_FRACTION * 100.0
        ),
        other => other.into(),
    }
}

fn metric(row: &SynRow, key: &str) -> f64 {
    row.metrics.get(key).copied().unwrap_or(f64::NAN)
}

fn table(out: &mut String, head: &[String], rows: &[Vec<String>]) {
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let _ = writeln!(
        out,
        "|{}",
        head.iter()
            .enumerate()
            .map(|(i, _)| if i == 0 { "---|" } else { "---:|" })
            .collect::<String>()
    );
    for r in rows {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
}

fn synthetic_table(study: &Study) -> String {
    let k = study.synthetic.n_classes;
    let mut head = vec!["features".to_string(), "PCA".into(), "var. kept".into()];
    head.extend(SYN_METRICS.iter().map(|m| header(m, k)));
    head.push("AP clusters".into());
    let rows: Vec<Vec<String>> = study
        .synthetic_rows
        .iter()
        .map(|r| {
            let mut v = vec![r.label.clone(), r.pca.to_string(), f3(r.explained)];
            v.extend(SYN_METRICS.iter().map(|m| f3(metric(r, m))));
            v.push(format!(
                "{}{}",
                r.ap_clusters,
                if r.ap_converged == Some(false) {
                    " (not converged)"
                } else {
                    ""
                }
            ));
            v
        })
        .collect();
    let mut out = String::new();
    table(&mut out, &head, &rows);
    out
}

fn real_table(study: &Study) -> Option<String> {
    let RealSection::Measured(real) = &study.real else {
        return None;
    };
    let mut head = vec![
        "features".to_string(),
        "var. kept".into(),
        "recall@1".into(),
        format!("recall@{K_NEIGHBOURS}"),
    ];
    head.extend(Turn::ALL.iter().map(|t| format!("recall@1 {}", t.name())));
    let rows: Vec<Vec<String>> = real
        .rows
        .iter()
        .map(|r| {
            let mut v = vec![
                r.label.clone(),
                f3(r.explained),
                f3(r.recall_at_1),
                f3(r.recall_at_10),
            ];
            v.extend(r.recall_at_1_by_turn.iter().map(|(_, x)| f3(*x)));
            v
        })
        .collect();
    let mut out = String::new();
    table(&mut out, &head, &rows);
    Some(out)
}

fn stability_table(study: &Study) -> String {
    let mut head = vec!["features".to_string()];
    head.extend(
        STABILITY_METRICS
            .iter()
            .map(|m| format!("synthetic: {}", header(m, 0))),
    );
    let real = match &study.real {
        RealSection::Measured(r) => Some(r),
        RealSection::Skipped(_) => None,
    };
    if real.is_some() {
        head.extend(
            STABILITY_METRICS
                .iter()
                .map(|m| format!("real: {}", header(m, 0))),
        );
    }
    let rows: Vec<Vec<String>> = study
        .synthetic_rows
        .iter()
        .map(|r| {
            let mut v = vec![r.label.clone()];
            v.extend(STABILITY_METRICS.iter().map(|m| f3(metric(r, m))));
            if let Some(real) = real {
                match real.rows.iter().find(|x| x.key == r.key) {
                    Some(x) => {
                        v.push(f3(x.stability_seeds_ari));
                        v.push(f3(x.stability_subsample_ari));
                    }
                    None => v.extend(["—".to_string(), "—".to_string()]),
                }
            }
            v
        })
        .collect();
    let mut out = String::new();
    table(&mut out, &head, &rows);
    out
}

fn targets(study: &Study) -> Vec<Target> {
    let k = study.synthetic.n_classes;
    let find = |key: &str| study.synthetic_rows.iter().find(|r| r.key == key);
    let mut out = Vec::new();
    if let (Some(ssl), Some(pix)) = (find("ssl_small"), find("pixels")) {
        for m in SYN_METRICS.iter().chain(&STABILITY_METRICS) {
            let (a, b) = (metric(ssl, m), metric(pix, m));
            let margin = a - b;
            out.push(Target {
                id: "a".into(),
                what: format!(
                    "self-supervised beats pixels (PCA {}) on {}",
                    pix.pca,
                    header(m, k)
                ),
                met: Some(margin > 0.0),
                detail: format!("{} vs {} (margin {})", f3(a), f3(b), signed(margin)),
            });
        }
    }
    // Both self-supervised kinds: the one trained here on the synthetic set, and the shipped encoder
    // (trained on the real galaxies, new to the synthetic ones).
    for (key, who) in [
        (
            "ssl_small",
            "self-supervised (trained on the synthetic set)",
        ),
        (
            "shipped_encoder",
            "shipped encoder (self-supervised on the real galaxies)",
        ),
    ] {
        if let Some(row) = find(key) {
            let a = metric(row, "kmeans_true_k_ari");
            out.push(Target {
                id: "b".into(),
                what: format!("{who}: k-means k={k} ARI ≥ {TARGET_SSL_KMEANS_ARI}"),
                met: Some(a >= TARGET_SSL_KMEANS_ARI),
                detail: format!("{} (margin {})", f3(a), signed(a - TARGET_SSL_KMEANS_ARI)),
            });
        }
    }
    let encoder = study
        .kinds
        .iter()
        .find(|(key, _, _)| key == "shipped_encoder")
        .map_or("shipped encoder".to_string(), |(_, label, _)| label.clone());
    let what_c =
        format!("{encoder}: rotated-copy recall@1 ≥ {TARGET_SHIPPED_RECALL_AT_1} on real galaxies");
    match &study.real {
        RealSection::Measured(real) => {
            let get = |key: &str| {
                real.rows
                    .iter()
                    .find(|r| r.key == key)
                    .map_or(f64::NAN, |r| r.recall_at_1)
            };
            let (a, pix) = (get("shipped_encoder"), get("pixels"));
            out.push(Target {
                id: "c".into(),
                what: what_c,
                met: Some(a >= TARGET_SHIPPED_RECALL_AT_1),
                detail: format!(
                    "{} (margin {}); pixels (PCA {}) in the same run: {}",
                    f3(a),
                    signed(a - TARGET_SHIPPED_RECALL_AT_1),
                    study.settings.pca,
                    f3(pix)
                ),
            });
        }
        RealSection::Skipped(why) => out.push(Target {
            id: "c".into(),
            what: what_c,
            met: None,
            detail: why.clone(),
        }),
    }
    out
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "not measured",
    }
}

fn targets_section(study: &Study, list: &[Target]) -> String {
    let mut out = String::new();
    let a: Vec<&Target> = list.iter().filter(|t| t.id == "a").collect();
    let a_met = a.iter().filter(|t| t.met == Some(true)).count();
    let _ = writeln!(
        out,
        "**(a) Self-supervised beats pixel PCA on every synthetic metric** (same PCA size, {}): {} of {} met{}.\n",
        study.settings.pca,
        a_met,
        a.len(),
        if a_met == a.len() && !a.is_empty() {
            ": **met**"
        } else {
            ": **missed**"
        }
    );
    for t in &a {
        let _ = writeln!(out, "- {}: {} — {}", t.what, verdict(t.met), t.detail);
    }
    for id in ["b", "c"] {
        for t in list.iter().filter(|t| t.id == id) {
            let _ = writeln!(
                out,
                "\n**({id}) {}**: {} — {}.",
                t.what,
                verdict(t.met),
                t.detail
            );
        }
    }
    out
}

fn machine() -> (String, usize, usize) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cpu, cores, rayon::current_num_threads())
}

fn git_revision() -> Option<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    let rev = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let dirty = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .current_dir(root)
        .output()
        .ok()
        .is_some_and(|o| !o.stdout.is_empty());
    Some(format!(
        "{}{}",
        String::from_utf8_lossy(&rev.stdout).trim(),
        if dirty {
            " (with uncommitted changes)"
        } else {
            ""
        }
    ))
}

fn history_json(h: &[sdss_train::EpochRecord]) -> Value {
    serde_json::to_value(h).unwrap_or(Value::Null)
}

/// The markdown document, the tables for stdout, and the JSON with every number.
pub fn render(study: &Study) -> (String, String, Value) {
    let s = &study.settings;
    let syn = &study.synthetic;
    let k = syn.n_classes;
    let (cpu, cores, threads) = machine();
    let revision = git_revision();
    let target_list = targets(study);
    let syn_table = synthetic_table(study);
    let real_tab = real_table(study);
    let stab_table = stability_table(study);
    let targets_md = targets_section(study, &target_list);

    let mut md = String::new();
    let _ = writeln!(md, "# Feature quality\n");
    if s.quick {
        let _ = writeln!(
            md,
            "> **Quick run (`--quick`): a smoke test only.** {} synthetic galaxies, {} training epochs, {} real galaxies searched, {} copied. These numbers say that the study runs, not how good the features are; run the study without `--quick` for the real figures.\n",
            syn.images.n,
            s.ssl_epochs.max(s.supervised_epochs),
            s.real_limit.map_or("all".to_string(), |l| l.to_string()),
            s.retrieval
        );
    }
    let _ = writeln!(
        md,
        "How well do the project's feature kinds group galaxies by look? Galaxies that look alike should be near each other in feature space, and *look-alikes should not change when a galaxy is turned on the sky*: a galaxy's orientation is an accident of where it sits, not part of its look. This page measures, for five kinds of features reduced by the same PCA and clustered with the same settings:\n\n\
- on a seeded **synthetic** set with known truth (`sdss_io::synthetic`): how well clusterings recover the true morphological classes (ARI, NMI), the leave-one-out {K_NEIGHBOURS}-nearest-neighbour class accuracy, how much of the ellipticity and bulge fraction a linear probe reads from the features, and how stable k-means is;\n\
- on the **6,437 real SDSS galaxies**: whether a galaxy rotated by 90°, 180° or 270°, or mirrored (exact pixel permutations), still finds itself as its nearest neighbour among all the originals, and how stable k-means is.\n"
    );
    let _ = writeln!(md, "## Feature kinds\n");
    for (i, (_, label, note)) in study.kinds.iter().enumerate() {
        let _ = writeln!(
            md,
            "{}. **{}**: {}.",
            i + 1,
            label.trim_end_matches('*'),
            note
        );
    }
    let _ = writeln!(
        md,
        "\nEach is reduced to {} principal components by sdss-pca, fit on the set being measured (the synthetic set, or the real originals); `pixels, PCA {PIXELS_WIDE_PCA}` is a reference row. \\* trained on synthetic galaxies only: on the real set they are evaluated as they are.\n",
        s.pca
    );

    let _ = writeln!(md, "## Run\n");
    let _ = writeln!(md, "```\n{}\n```\n", s.command());
    let _ = writeln!(
        md,
        "Use `cargo run --release -p xtask -- feature-study` (the `cargo xtask` alias builds without full optimisation, far too slow here). It rewrites this file and `{}` (every number, epoch histories and stage timings).\n",
        s.json_path()
            .file_name()
            .map_or("feature-quality.json".into(), |n| n.to_string_lossy().into_owned())
    );
    let _ = writeln!(
        md,
        "- Date: {}; total time {:.0} s{}.",
        study.date,
        study.total_seconds,
        revision
            .as_ref()
            .map_or(String::new(), |r| format!("; revision {r}"))
    );
    let _ = writeln!(
        md,
        "- Machine: {cpu}, {cores} logical cores ({threads} rayon threads), {}/{}, CPU only{}.",
        std::env::consts::OS,
        std::env::consts::ARCH,
        if cfg!(debug_assertions) {
            "; **debug build**"
        } else {
            "; release build"
        }
    );
    let _ = writeln!(
        md,
        "- Seeds: `--seed {}`; synthetic set seed {} (not the committed fixtures' {}); random sdss-cnn weights seed {}; the split, training, PCA, k-means, subsamples and query choice derive from `--seed`.",
        s.seed,
        syn.seed,
        sdss_io::synthetic::fixture_config().seed,
        study.random_cnn_seed
    );
    let _ = writeln!(
        md,
        "- Synthetic set: {} galaxies of 80×80 ({}), split stratified by class: {} train ({} fitted + {} the trainers' validation carve-out), {} held-out test.",
        syn.images.n,
        syn.class_counts
            .iter()
            .map(|(c, n)| format!("{n} {c}"))
            .collect::<Vec<_>>()
            .join(", "),
        syn.train.len(),
        syn.fit.len(),
        syn.val.len(),
        syn.test.len()
    );
    let _ = writeln!(
        md,
        "- Training: supervised {} epochs (sdss-train `Trainer`, sdss_CNN recipe: Adam 1e-3, batch 32, its augmentation), self-supervised {} epochs (`SslTrainer`, default `SslOptions`: VICReg, batch 128, 512-512 projector); both from the same Glorot-uniform start of `small`.",
        s.supervised_epochs, s.ssl_epochs
    );
    match &study.real {
        RealSection::Measured(r) => {
            let _ = writeln!(
                md,
                "- Real set: `{}`, {} images{}; {} galaxies copied 4 times each = {} copies; {} groups of pixel-identical images ({} images) found by exact equality, a copy's hit being the galaxy itself or any image identical to it.",
                r.folder.display(),
                r.total,
                if r.gallery < r.total {
                    format!(", of which a seeded {} are searched (`--real-limit`)", r.gallery)
                } else {
                    String::new()
                },
                r.queries,
                r.copies,
                r.duplicate_groups,
                r.duplicate_rows
            );
        }
        RealSection::Skipped(why) => {
            let _ = writeln!(md, "- Real set: **skipped**: {why}.");
        }
    }
    if let Some(n) = &study.wide_pixels_note {
        let _ = writeln!(md, "- Note: {n}.");
    }

    let _ = writeln!(md, "\n## Synthetic galaxies\n");
    let _ = writeln!(
        md,
        "Clusterings of all {} galaxies against the true classes (k = {k} classes); the probe is a ridge regression on standardised features fitted on the training part (penalty from {:?} by {RIDGE_FOLDS}-fold cross-validation on the training part only), R² on the held-out test part. AP: affinity propagation, damping {AP_DAMPING}, sdss-cluster defaults otherwise. {K_NEIGHBOURS}-NN: leave-one-out majority vote, Euclidean, ties to the nearest tied class.\n",
        syn.images.n,
        ALPHA_GRID
    );
    md.push_str(&syn_table);

    let _ = writeln!(md, "\n## Real galaxies: rotated-copy retrieval\n");
    match &real_tab {
        Some(t) => {
            let _ = writeln!(
                md,
                "PCA fit on the originals; each copy's nearest originals by Euclidean distance. recall@1: the nearest original is the galaxy itself (or a pixel-identical duplicate); recall@{K_NEIGHBOURS}: it is among the {K_NEIGHBOURS} nearest.\n"
            );
            md.push_str(t);
        }
        None => {
            if let RealSection::Skipped(why) = &study.real {
                let _ = writeln!(md, "Skipped: {why}.");
            }
        }
    }

    let _ = writeln!(md, "\n## Stability\n");
    let _ = writeln!(
        md,
        "Mean adjusted Rand index between k-means (k = {K_TEN}) labelings of the PCA features: from {STABILITY_RUNS} seeds on the whole set, and from {STABILITY_RUNS} seeded {:.0}% subsamples compared on the galaxies they share. 1 = the same partition every time.\n",
        SUBSAMPLE_FRACTION * 100.0
    );
    md.push_str(&stab_table);

    let _ = writeln!(md, "\n## Targets\n");
    if s.quick {
        let _ = writeln!(
            md,
            "*Quick run: these verdicts are for smoke testing only.*\n"
        );
    }
    md.push_str(&targets_md);

    // What was tried where a target is missed: written by hand, kept with the generator so that a
    // rerun keeps it.
    md.push('\n');
    md.push_str(NOTES);
    let _ = writeln!(md, "\n## Stage timings\n");
    for (name, secs) in &study.stages {
        let _ = writeln!(md, "- {name}: {secs:.1} s");
    }

    let mut tables = String::new();
    let _ = writeln!(
        tables,
        "feature study{}: synthetic ({} galaxies)\n{syn_table}",
        if s.quick { " (QUICK RUN)" } else { "" },
        syn.images.n
    );
    if let Some(t) = &real_tab {
        let _ = writeln!(tables, "real: rotated-copy retrieval\n{t}");
    }
    let _ = writeln!(tables, "stability\n{stab_table}\ntargets\n{targets_md}");

    let syn_rows: Vec<Value> = study
        .synthetic_rows
        .iter()
        .map(|r| {
            json!({
                "kind": r.key,
                "label": r.label,
                "pca_components": r.pca,
                "explained_variance_ratio": r.explained,
                "metrics": r.metrics,
                "affinity_clusters": r.ap_clusters,
                "affinity_converged": r.ap_converged,
                "ridge_alpha": {"ellipticity": r.alphas[0], "bulge_fraction": r.alphas[1]},
            })
        })
        .collect();
    let real_json = match &study.real {
        RealSection::Skipped(why) => json!({"skipped": why}),
        RealSection::Measured(r) => json!({
            "folder": r.folder.display().to_string(),
            "images": r.total,
            "searched": r.gallery,
            "queries": r.queries,
            "copies": r.copies,
            "turns": Turn::ALL.iter().map(|t| t.name()).collect::<Vec<_>>(),
            "duplicate_groups": r.duplicate_groups,
            "duplicate_images": r.duplicate_rows,
            "rows": r.rows.iter().map(|x| json!({
                "kind": x.key,
                "label": x.label,
                "explained_variance_ratio": x.explained,
                "recall_at_1": x.recall_at_1,
                "recall_at_10": x.recall_at_10,
                "recall_at_1_by_turn": x.recall_at_1_by_turn.iter().map(|(t, v)| (t.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
                "stability_seeds_ari": x.stability_seeds_ari,
                "stability_subsample_ari": x.stability_subsample_ari,
            })).collect::<Vec<_>>(),
        }),
    };
    let json = json!({
        "study": "feature-quality",
        "quick": s.quick,
        "command": s.command(),
        "date": study.date,
        "revision": revision,
        "machine": {"cpu": cpu, "logical_cores": cores, "rayon_threads": threads, "os": std::env::consts::OS, "arch": std::env::consts::ARCH, "release_build": !cfg!(debug_assertions)},
        "settings": {
            "seed": s.seed,
            "pca_components": s.pca,
            "synthetic_count": s.synthetic_count,
            "synthetic_seed": syn.seed,
            "ssl_epochs": s.ssl_epochs,
            "supervised_epochs": s.supervised_epochs,
            "retrieval_queries": s.retrieval,
            "real_limit": s.real_limit,
            "random_cnn_seed": study.random_cnn_seed,
            "encoder": study.encoder_name,
            "k_true_classes": k,
            "k_ten": K_TEN,
            "knn_k": K_NEIGHBOURS,
            "affinity_damping": AP_DAMPING,
            "ridge_alpha_grid": ALPHA_GRID,
            "ridge_folds": RIDGE_FOLDS,
            "stability_runs": STABILITY_RUNS,
            "subsample_fraction": SUBSAMPLE_FRACTION,
        },
        "kinds": study.kinds.iter().map(|(k, l, n)| json!({"kind": k, "label": l, "note": n})).collect::<Vec<_>>(),
        "synthetic": {
            "count": syn.images.n,
            "classes": syn.class_counts.iter().map(|(c, n)| (c.clone(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "train": syn.train.len(),
            "train_fit": syn.fit.len(),
            "train_val": syn.val.len(),
            "test": syn.test.len(),
            "rows": syn_rows,
            "note": study.wide_pixels_note,
        },
        "training": {
            "supervised": history_json(&study.supervised_history),
            "self_supervised": history_json(&study.ssl_history),
        },
        "real": real_json,
        "targets": target_list.iter().map(|t| json!({"target": t.id, "what": t.what, "met": t.met, "detail": t.detail})).collect::<Vec<_>>(),
        "timings_s": study.stages.iter().map(|(n, s)| json!({"stage": n, "seconds": s})).collect::<Vec<_>>(),
        "total_seconds": study.total_seconds,
    });
    (md, tables, json)
}
