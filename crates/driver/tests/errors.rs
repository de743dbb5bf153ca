//! Failures exit non-zero with one line naming the file or option at fault.

mod common;

use common::*;

fn one_error_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(lines.len(), 1, "expected one error line:\n{stderr}");
    lines[0]
}

#[test]
fn truncated_image_is_named_and_skip_bad_goes_on() {
    let work = tempfile::tempdir().unwrap();
    let images = work.path().join("images");
    let files = copy_galaxies(&images, 12);
    let victim = &files[5];
    let bytes = std::fs::read(victim).unwrap();
    std::fs::write(victim, &bytes[..bytes.len() / 3]).unwrap();
    let name = victim.file_name().unwrap().to_str().unwrap();
    let base = [
        "run",
        "--images",
        images.to_str().unwrap(),
        "--pca",
        "5",
        "--method",
        "kmeans:k=2",
    ];

    let out1 = work.path().join("o1");
    let mut args = base.to_vec();
    args.extend(["--out", out1.to_str().unwrap()]);
    let err = fails(work.path(), &args);
    assert!(one_error_line(&err).contains(name), "{err}");
    assert!(!out1.exists(), "a failed run leaves no output folder");

    let out2 = work.path().join("o2");
    let mut args = base.to_vec();
    args.extend(["--out", out2.to_str().unwrap(), "--skip-bad"]);
    let run = run_in(work.path(), &args);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        String::from_utf8_lossy(&run.stderr).contains(name),
        "skipped file is reported"
    );
    assert_eq!(labels(&out2.join("labels_kmeans.npy")).len(), 11);
    let recorded = std::fs::read_to_string(out2.join("run.json")).unwrap();
    assert!(recorded.contains(name));
}

#[test]
fn missing_weights_file_is_named_and_points_to_fetch_weights() {
    let work = tempfile::tempdir().unwrap();
    let images = work.path().join("images");
    copy_galaxies(&images, 3);
    let err = fails(
        work.path(),
        &[
            "run",
            "--images",
            images.to_str().unwrap(),
            "--features",
            "cnn",
            "--weights",
            "no-such-weights.safetensors",
            "--out",
            "o",
        ],
    );
    let line = one_error_line(&err);
    assert!(
        line.contains("no-such-weights.safetensors") && line.contains("cargo xtask fetch-weights"),
        "{err}"
    );
    assert!(
        !work.path().join("o").exists(),
        "a failed run leaves no output"
    );
}

#[test]
fn bad_options_name_themselves() {
    let work = tempfile::tempdir().unwrap();
    let images = work.path().join("images");
    copy_galaxies(&images, 3);
    let dir = images.to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            &["run", "--images", dir, "--pca", "1.5", "--out", "o"],
            "--pca",
        ),
        (
            // A variance fraction needs an exact solver, which holds the features.
            &[
                "run",
                "--images",
                dir,
                "--features",
                "pixels",
                "--pca",
                "0.9",
                "--pca-streamed",
                "--out",
                "o",
            ],
            "give a number of components",
        ),
        (
            &[
                "run",
                "--images",
                dir,
                "--method",
                "spectral:k=3",
                "--out",
                "o",
            ],
            "spectral",
        ),
        (
            &[
                "run",
                "--images",
                dir,
                "--method",
                "affinity:damping=1.2",
                "--out",
                "o",
            ],
            "damping",
        ),
        (
            &["run", "--images", "/no/such/folder", "--out", "o"],
            "/no/such/folder",
        ),
        (
            &[
                "pca",
                "--input",
                "missing.npy",
                "--components",
                "3",
                "--out",
                "y.npy",
            ],
            "missing.npy",
        ),
    ];
    for (args, needle) in cases {
        let err = fails(work.path(), args);
        assert!(one_error_line(&err).contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn subcommands_chain_features_pca_cluster_evaluate() {
    let work = tempfile::tempdir().unwrap();
    let images = work.path().join("images");
    copy_galaxies(&images, 30);
    let p = |name: &str| work.path().join(name).to_str().unwrap().to_owned();
    ok(
        work.path(),
        &[
            "--quiet",
            "features",
            "--images",
            images.to_str().unwrap(),
            "--out",
            &p("x.npy"),
        ],
    );
    assert_eq!(sdss_io::read_ids_csv(p("x.ids.csv")).unwrap().len(), 30);
    ok(
        work.path(),
        &[
            "pca",
            "--input",
            &p("x.npy"),
            "--components",
            "0.9",
            "--out",
            &p("y.npy"),
            "--summary",
            &p("pca.json"),
            "--save-model",
            &p("model"),
        ],
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p("pca.json")).unwrap()).unwrap();
    assert!(summary["total_explained_variance_ratio"].as_f64().unwrap() >= 0.9);
    assert!(summary["svd_solver"].is_string());
    ok(
        work.path(),
        &[
            "cluster",
            "--input",
            &p("y.npy"),
            "--method",
            "agglomerative",
            "--k",
            "4",
            "--linkage",
            "ward",
            "--out",
            &p("l.npy"),
            "--summary",
            &p("c.json"),
        ],
    );
    let c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p("c.json")).unwrap()).unwrap();
    assert_eq!(c["n_clusters"], 4);
    assert!(std::path::Path::new(c["linkage"].as_str().unwrap()).exists());
    ok(
        work.path(),
        &[
            "cluster",
            "--input",
            &p("y.npy"),
            "--method",
            "kmeans",
            "--k",
            "3",
            "--out",
            &p("k.npy"),
        ],
    );
    let json = ok(
        work.path(),
        &[
            "evaluate",
            "--input",
            &p("y.npy"),
            "--labels",
            &p("l.npy"),
            "--truth",
            &p("k.npy"),
        ],
    );
    let m: serde_json::Value = serde_json::from_str(&json).unwrap();
    for key in [
        "silhouette",
        "calinski_harabasz",
        "davies_bouldin",
        "adjusted_rand_index",
        "normalized_mutual_info",
    ] {
        assert!(m[key].is_number(), "{key}: {json}");
    }
}

#[test]
fn an_image_over_the_pixel_limit_is_refused_naming_the_file_and_the_limit() {
    let work = tempfile::tempdir().unwrap();
    let images = work.path().join("images");
    copy_galaxies(&images, 4);
    let out = work.path().join("f.npy");
    let err = fails(
        work.path(),
        &[
            "features",
            "--pixels",
            "--images",
            images.to_str().unwrap(),
            "--max-image-pixels",
            "1000",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let line = one_error_line(&err);
    assert!(line.contains("gal000"), "names the file: {line}");
    assert!(line.contains("1000 pixels"), "names the limit: {line}");
    assert!(
        line.contains("--max-image-pixels"),
        "says how to raise it: {line}"
    );
    assert!(!out.exists());

    let err = fails(
        work.path(),
        &[
            "run",
            "--images",
            images.to_str().unwrap(),
            "--max-image-pixels",
            "0",
            "--out",
            work.path().join("o").to_str().unwrap(),
        ],
    );
    assert!(err.contains("--max-image-pixels"), "{err}");
}
