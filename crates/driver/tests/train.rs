//! `sdss-clustering train` through the real binary, on small synthetic galaxy sets with the small
//! architecture: every output is written and readable, the trained weights go back into `features`
//! and `run`, bad input is refused before anything is written, and `--resume` continues a run (also one
//! stopped by Ctrl-C). Learning quality is sdss-train's business, not tested here.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// A synthetic set: `count` 80×80 images in `<root>/images` and a catalogue `<root>/catalog.csv` with
/// columns `id,ellipticity,class`. With `flaws`, the catalogue has a row without an image (the first
/// galaxy, whose image is removed), a row with a NaN target (line 3) and no row for the last image.
struct Set {
    images: PathBuf,
    catalog: PathBuf,
    /// Galaxies with both an image and a usable catalogue row.
    usable: Vec<String>,
    /// Every image id.
    image_ids: Vec<String>,
    missing_image: String,
    unlisted_image: String,
}

fn make_set(root: &Path, count: usize, flaws: bool) -> Set {
    let images = root.join("images");
    let config = sdss_io::synthetic::SyntheticConfig {
        count,
        size: 80,
        seed: 11,
        ..Default::default()
    };
    let params = sdss_io::synthetic::write_galaxy_set(&images, &config).unwrap();
    // The set's own parameter table is not an image, but keep the folder to images only.
    std::fs::remove_file(images.join(sdss_io::synthetic::PARAMS_CSV)).unwrap();
    let mut csv = String::from("id,ellipticity,class\n");
    let mut usable = Vec::new();
    let mut image_ids: Vec<String> = params.iter().map(|p| p.id.clone()).collect();
    for (i, p) in params.iter().enumerate() {
        if flaws && i == params.len() - 1 {
            continue; // an image without a catalogue row
        }
        let ellipticity = if flaws && i == 1 {
            "nan".to_owned()
        } else {
            format!("{}", p.ellipticity)
        };
        csv.push_str(&format!("{},{ellipticity},{}\n", p.id, p.class.name()));
        if !(flaws && i <= 1) {
            usable.push(p.id.clone());
        }
    }
    if flaws {
        std::fs::remove_file(images.join(format!("{}.jpg", params[0].id))).unwrap();
        image_ids.remove(0);
    }
    let catalog = root.join("catalog.csv");
    std::fs::write(&catalog, csv).unwrap();
    Set {
        images,
        catalog,
        usable,
        image_ids,
        missing_image: params[0].id.clone(),
        unlisted_image: params[params.len() - 1].id.clone(),
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `train` arguments for `set` into `out`, fast: the small architecture, a few epochs.
fn train_args<'a>(set: &'a Set, out: &'a Path, target: &'a str, epochs: &'a str) -> Vec<&'a str> {
    vec![
        "--quiet",
        "train",
        "--images",
        s(&set.images),
        "--catalog",
        s(&set.catalog),
        "--target",
        target,
        "--arch",
        "small",
        "--epochs",
        epochs,
        "--batch-size",
        "16",
        "--out",
        s(out),
    ]
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn split_csv(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let (id, split) = l.split_once(',').unwrap();
            (id.to_owned(), split.to_owned())
        })
        .collect()
}

fn assert_png(path: &Path) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        img.width() > 100 && img.height() > 100,
        "{}",
        path.display()
    );
}

#[test]
fn regression_writes_every_output_and_resumes() {
    let work = tempfile::tempdir().unwrap();
    let set = make_set(work.path(), 82, true);
    let out = work.path().join("run");
    let mut args = train_args(&set, &out, "ellipticity", "2");
    args.push("--drop-invalid");
    let stdout = ok(work.path(), &args);
    assert!(stdout.contains("weights.safetensors"), "{stdout}");

    for file in [
        "weights.safetensors",
        "weights.json",
        "split.csv",
        "history.json",
        "metrics.json",
        "loss.png",
        "predicted_vs_true.png",
    ] {
        assert!(out.join(file).is_file(), "{file} is written");
    }
    let history = json(&out.join("history.json"));
    let records = history.as_array().unwrap();
    assert_eq!(records.len(), 2);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r["epoch"].as_u64(), Some(i as u64 + 1));
        for key in ["train_loss", "val_loss", "learning_rate", "seconds"] {
            assert!(r[key].as_f64().is_some(), "history {key}: {r}");
        }
    }

    let split = split_csv(&out.join("split.csv"));
    let mut ids: Vec<&str> = split.iter().map(|(id, _)| id.as_str()).collect();
    ids.sort();
    let mut usable: Vec<&str> = set.usable.iter().map(String::as_str).collect();
    usable.sort();
    assert_eq!(ids, usable, "split.csv lists every galaxy trained on");
    let count = |which: &str| split.iter().filter(|(_, s)| s == which).count();
    // 79 galaxies: ceil(0.3·79) = 24 held out, half each.
    assert_eq!((count("train"), count("val"), count("test")), (55, 12, 12));

    let metrics = json(&out.join("metrics.json"));
    assert_eq!(metrics["task"], "regress");
    assert_eq!(metrics["arch"], "small");
    assert_eq!(metrics["epochs_run"], 2);
    assert_eq!(metrics["split"]["test"], 12);
    assert_eq!(metrics["test"]["n"], 12);
    assert!(metrics["test"]["r2"].is_number(), "{}", metrics["test"]);
    for key in ["mse", "rmse"] {
        assert!(metrics["test"][key].as_f64().unwrap() >= 0.0);
    }
    assert!(metrics["parameters"].as_u64().unwrap() > 100_000);
    // The skipped galaxies are reported.
    assert_eq!(metrics["dropped_invalid"], 1);
    let join = &metrics["join"];
    assert_eq!(join["kept"], 79);
    assert_eq!(join["missing_images"], 1);
    assert_eq!(
        join["missing_image_examples"][0],
        set.missing_image.as_str()
    );
    assert_eq!(join["unlisted_images"], 1);
    assert_eq!(
        join["unlisted_image_examples"][0],
        set.unlisted_image.as_str()
    );
    assert_eq!(join["invalid_target_images"], 1);

    // The weights are what `features` takes; the manifest says how they were made.
    let weights = out.join("weights.safetensors");
    let model = sdss_cnn::CnnModel::load(&weights).unwrap();
    assert_eq!(model.config().output_units, 1);
    let manifest = json(&out.join("weights.json"));
    assert_eq!(manifest["source"]["format"], "trained");
    assert_eq!(manifest["training"]["target"], "ellipticity");
    let features = work.path().join("pred.npy");
    ok(
        work.path(),
        &[
            "--quiet",
            "features",
            "--images",
            s(&set.images),
            "--weights",
            s(&weights),
            "--layer",
            "output",
            "--out",
            s(&features),
        ],
    );
    let pred = sdss_io::npy::read_matrix_f32(&features).unwrap();
    assert_eq!(pred.dim(), (set.image_ids.len(), 1));
    assert!(pred.iter().all(|v| v.is_finite()));

    // The folder now holds a run: without --resume it is refused, and so are other options.
    let before = std::fs::read(&weights).unwrap();
    let err = fails(work.path(), &args);
    assert!(err.contains("--resume"), "{err}");
    let mut other = args.clone();
    other.extend(["--resume", "--lr", "0.01"]);
    let err = fails(work.path(), &other);
    assert!(err.contains("`lr`"), "{err}");
    assert_eq!(
        std::fs::read(&weights).unwrap(),
        before,
        "a refused run writes nothing"
    );

    // The same options with more epochs continue where the run stopped.
    let mut more = train_args(&set, &out, "ellipticity", "3");
    more.extend(["--drop-invalid", "--resume"]);
    ok(work.path(), &more);
    let history = json(&out.join("history.json"));
    assert_eq!(history.as_array().unwrap().len(), 3);
    assert_eq!(
        &history.as_array().unwrap()[..2],
        records.as_slice(),
        "the first epochs are the resumed run's"
    );
    let checkpoints: Vec<_> = std::fs::read_dir(out.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        checkpoints.len(),
        2,
        "the last two checkpoints are kept: {checkpoints:?}"
    );
}

#[test]
fn classification_writes_accuracy_and_confusion() {
    let work = tempfile::tempdir().unwrap();
    let set = make_set(work.path(), 64, false);
    let out = work.path().join("run");
    let mut args = train_args(&set, &out, "class", "1");
    args.push("--no-augment");
    ok(work.path(), &args);

    let metrics = json(&out.join("metrics.json"));
    assert_eq!(metrics["task"], "classify");
    let classes = metrics["classes"].as_array().unwrap().len();
    assert!(classes >= 2);
    let test = &metrics["test"];
    let accuracy = test["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&accuracy));
    assert!(test["majority_rate"].as_f64().is_some());
    let confusion: Vec<Vec<usize>> = serde_json::from_value(test["confusion"].clone()).unwrap();
    assert_eq!(confusion.len(), classes);
    assert!(confusion.iter().all(|row| row.len() == classes));
    assert_eq!(
        confusion.iter().flatten().sum::<usize>() as u64,
        test["n"].as_u64().unwrap()
    );
    assert_png(&out.join("predicted_vs_true.png"));
    assert_png(&out.join("loss.png"));

    // The classifier's output tap gives class probabilities, in `features` and in `run`.
    let weights = out.join("weights.safetensors");
    let model = sdss_cnn::CnnModel::load(&weights).unwrap();
    assert_eq!(model.config().output_units, classes);
    let features = work.path().join("probs.npy");
    ok(
        work.path(),
        &[
            "--quiet",
            "features",
            "--images",
            s(&set.images),
            "--weights",
            s(&weights),
            "--layer",
            "output",
            "--out",
            s(&features),
        ],
    );
    let probs = sdss_io::npy::read_matrix_f32(&features).unwrap();
    assert_eq!(probs.dim(), (64, classes));
    for row in probs.rows() {
        assert!((row.sum() - 1.0).abs() < 1e-4, "{row}");
    }
    let run = work.path().join("clusters");
    ok(
        work.path(),
        &[
            "--quiet",
            "run",
            "--images",
            s(&set.images),
            "--weights",
            s(&weights),
            "--layer",
            "output",
            "--method",
            "kmeans:k=2",
            "--out",
            s(&run),
        ],
    );
    assert_eq!(labels(&run.join("labels_kmeans.npy")).len(), 64);
    let pca = json(&run.join("pca.json"));
    assert_eq!(
        pca["n_components"].as_u64(),
        Some(classes as u64),
        "all components of the output are kept"
    );
}

#[test]
fn bad_input_is_refused_and_nothing_is_written() {
    let work = tempfile::tempdir().unwrap();
    // 67 usable galaxies: the smallest split of the default fractions has 10.
    let set = make_set(work.path(), 70, true);
    let out = work.path().join("run");
    let small = work.path().join("small.safetensors");
    sdss_cnn::CnnModel::random(sdss_cnn::CnnConfig::small(), 3)
        .unwrap()
        .save(&small)
        .unwrap();
    let dup = work.path().join("dup.csv");
    let text = std::fs::read_to_string(&set.catalog).unwrap();
    let third = text.lines().nth(3).unwrap().to_owned();
    std::fs::write(&dup, format!("{text}{third}\n")).unwrap();
    let dup_id = third.split(',').next().unwrap().to_owned();

    let base = |target: &'static str| {
        let mut a: Vec<String> = train_args(&set, &out, target, "1")
            .into_iter()
            .map(str::to_owned)
            .collect();
        a.push("--drop-invalid".to_owned());
        a
    };
    let with = |mut a: Vec<String>, extra: &[&str]| {
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let without_drop = |a: Vec<String>| {
        a.into_iter()
            .filter(|s| s != "--drop-invalid")
            .collect::<Vec<_>>()
    };
    let replace = |a: Vec<String>, flag: &str, value: &str| {
        let mut a = a;
        let i = a.iter().position(|s| s == flag).unwrap();
        a[i + 1] = value.to_owned();
        a
    };
    let without_arch = |a: Vec<String>| {
        let mut a = a;
        let i = a.iter().position(|s| s == "--arch").unwrap();
        a.drain(i..i + 2);
        a
    };
    let small_path = s(&small).to_owned();
    #[allow(unused_mut)]
    let mut cases: Vec<(&str, Vec<String>, Vec<&str>)> = vec![
        (
            "absent target column",
            base("lambda_r"),
            vec!["lambda_r", "`ellipticity`", "`class`"],
        ),
        (
            "NaN target without --drop-invalid",
            without_drop(base("ellipticity")),
            vec!["line 3", "--drop-invalid"],
        ),
        (
            "duplicate ids",
            replace(base("ellipticity"), "--catalog", s(&dup)),
            vec![&dup_id, "more than once"],
        ),
        (
            "a split under 10 galaxies",
            with(base("ellipticity"), &["--val-fraction", "0.05"]),
            vec!["validation split", "10"],
        ),
        (
            "a string target to regress",
            with(base("class"), &["--task", "regress"]),
            vec!["must hold numbers", "--task classify"],
        ),
        (
            "initial weights of another architecture",
            with(
                replace(base("ellipticity"), "--arch", "baseline"),
                &["--init-weights", &small_path],
            ),
            vec!["--arch baseline", "conv2d"],
        ),
        (
            "a regression's weights for a classifier",
            with(
                without_arch(base("class")),
                &["--init-weights", &small_path],
            ),
            vec!["output layer has 1 unit", "softmax"],
        ),
        (
            "absent initial weights",
            with(base("ellipticity"), &["--init-weights", "nope.safetensors"]),
            vec!["nope.safetensors"],
        ),
        (
            "zero epochs",
            replace(base("ellipticity"), "--epochs", "0"),
            vec!["--epochs"],
        ),
    ];
    #[cfg(not(feature = "cuda"))]
    cases.push((
        "a GPU in a build without CUDA",
        with(base("ellipticity"), &["--device", "cuda:0"]),
        vec!["cuda:0", "--features cuda"],
    ));
    for (what, args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = fails(work.path(), &args);
        for e in expected {
            assert!(err.contains(e), "{what}: `{e}` not in: {err}");
        }
        assert!(!out.exists(), "{what}: --out must stay absent");
    }

    // A folder with other things in it is not written to.
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let args = base("ellipticity");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = fails(work.path(), &args);
    assert!(err.contains("not empty"), "{err}");
    let mut resume = args.clone();
    resume.push("--resume");
    let err = fails(work.path(), &resume);
    assert!(err.contains("no training run"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert_eq!(left.len(), 1, "only the user's file is there");

    // An unreadable image among those to train on is named.
    std::fs::remove_dir_all(&out).unwrap();
    let broken = format!("{}.jpg", set.usable[5]);
    std::fs::write(set.images.join(&broken), b"not a jpeg").unwrap();
    let err = fails(work.path(), &args);
    assert!(
        err.contains(&broken) && err.contains("cannot be read"),
        "{err}"
    );
    assert!(!out.exists(), "an unreadable image: --out must stay absent");
}

/// The newest checkpoint's epoch in `dir`, if any.
fn latest_checkpoint(dir: &Path) -> Option<usize> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            name.strip_prefix("checkpoint-epoch-")?
                .strip_suffix(".safetensors")?
                .parse()
                .ok()
        })
        .max()
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_cleanly_and_resume_finishes() {
    use std::time::{Duration, Instant};

    let work = tempfile::tempdir().unwrap();
    let set = make_set(work.path(), 70, false);
    let out = work.path().join("run");
    let args = train_args(&set, &out, "ellipticity", "500");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sdss-clustering"))
        .args(&args)
        .current_dir(work.path())
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let checkpoints = out.join("checkpoints");
    let deadline = Instant::now() + Duration::from_secs(300);
    while latest_checkpoint(&checkpoints).is_none() {
        assert!(Instant::now() < deadline, "no checkpoint was written");
        if child.try_wait().unwrap().is_some() {
            let output = child.wait_with_output().unwrap();
            panic!(
                "training ended early: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "an interrupted run fails");
    assert!(stderr.contains("--resume"), "{stderr}");
    assert!(
        !out.join("weights.safetensors").exists() && !out.join("metrics.json").exists(),
        "an interrupted run leaves only checkpoints"
    );
    let done = latest_checkpoint(&checkpoints).unwrap();
    assert!(done < 500);

    // Resume to one more epoch than was done.
    let epochs = (done + 1).to_string();
    let mut resume = train_args(&set, &out, "ellipticity", &epochs);
    resume.push("--resume");
    ok(work.path(), &resume);
    let history = json(&out.join("history.json"));
    assert_eq!(history.as_array().unwrap().len(), done + 1);
}

/// `kill -9` in the middle of training: nothing but complete checkpoints is left, and `--resume` ends
/// with the same weights, bit for bit, as a run that was never interrupted.
#[cfg(unix)]
#[test]
fn kill_9_leaves_complete_checkpoints_and_resume_matches_an_uninterrupted_run() {
    use std::time::{Duration, Instant};

    let work = tempfile::tempdir().unwrap();
    let set = make_set(work.path(), 70, false);
    let whole = work.path().join("whole");
    ok(work.path(), &train_args(&set, &whole, "ellipticity", "6"));

    let out = work.path().join("killed");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sdss-clustering"))
        .args(train_args(&set, &out, "ellipticity", "6"))
        .current_dir(work.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let checkpoints = out.join("checkpoints");
    let deadline = Instant::now() + Duration::from_secs(300);
    while latest_checkpoint(&checkpoints).is_none() {
        assert!(Instant::now() < deadline, "no checkpoint was written");
        assert!(
            child.try_wait().unwrap().is_none(),
            "training ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    for name in [
        "weights.safetensors",
        "weights.json",
        "metrics.json",
        "history.json",
    ] {
        assert!(!out.join(name).exists(), "a killed run left {name}");
    }
    // Whatever is under a checkpoint name is complete and readable.
    for e in std::fs::read_dir(&checkpoints).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "safetensors") {
            sdss_train::checkpoint::read(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
    let mut resume = train_args(&set, &out, "ellipticity", "6");
    resume.push("--resume");
    ok(work.path(), &resume);
    assert_eq!(
        std::fs::read(out.join("weights.safetensors")).unwrap(),
        std::fs::read(whole.join("weights.safetensors")).unwrap(),
        "the resumed run ends with other weights than the uninterrupted one"
    );
    let losses = |dir: &Path| -> Vec<(f64, f64)> {
        json(&dir.join("history.json"))
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["train_loss"].as_f64().unwrap(),
                    r["val_loss"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(losses(&out), losses(&whole));
}

#[test]
fn self_supervised_writes_every_output_and_its_embedding_feeds_features() {
    let work = tempfile::tempdir().unwrap();
    let set = make_set(work.path(), 48, false);
    let out = work.path().join("ssl");
    let ssl_args = |epochs: &'static str| {
        vec![
            "--quiet",
            "train",
            "--self-supervised",
            "--images",
            s(&set.images),
            "--epochs",
            epochs,
            "--batch-size",
            "16",
            "--out",
            s(&out),
        ]
    };
    let stdout = ok(work.path(), &ssl_args("2"));
    assert!(stdout.contains("self-supervised (vicreg)"), "{stdout}");
    for file in ["split.csv", "history.json", "metrics.json", "weights.json"] {
        assert!(out.join(file).is_file(), "{file}");
    }
    assert_png(&out.join("loss.png"));
    // Every galaxy in train or val, none in a test part (no labels to test against).
    let split = split_csv(&out.join("split.csv"));
    assert_eq!(split.len(), set.image_ids.len());
    assert!(split.iter().all(|(_, s)| s == "train" || s == "val"));
    assert_eq!(
        split.iter().filter(|(_, s)| s == "val").count(),
        (0.15f64 * 48.0).ceil() as usize
    );
    let history = json(&out.join("history.json"));
    assert_eq!(history.as_array().unwrap().len(), 2);
    assert!(history[1]["embedding_std"].as_f64().unwrap() > 0.0);
    let metrics = json(&out.join("metrics.json"));
    assert_eq!(metrics["task"], "self-supervised");
    assert_eq!(metrics["method"], "vicreg");
    assert_eq!(metrics["epochs_run"], 2);
    // The manifest says how to make these weights again.
    let manifest = json(&out.join("weights.json"));
    let command = manifest["training"]["command"].as_str().unwrap();
    assert!(
        command.starts_with("sdss-clustering --quiet train --self-supervised --images"),
        "{command}"
    );
    assert_eq!(manifest["training"]["galaxies"], 48);

    // `--resume` with more epochs continues from the checkpoint of epoch 2.
    let mut more = ssl_args("3");
    more.push("--resume");
    ok(work.path(), &more);
    let history = json(&out.join("history.json"));
    assert_eq!(history.as_array().unwrap().len(), 3);

    // The embedding is the `dense` tap, under its own name.
    let weights = out.join("weights.safetensors");
    let features = |layer: &'static str, file: &str| {
        let path = work.path().join(file);
        ok(
            work.path(),
            &[
                "--quiet",
                "features",
                "--images",
                s(&set.images),
                "--weights",
                s(&weights),
                "--layer",
                layer,
                "--out",
                s(&path),
            ],
        );
        sdss_io::npy::read_matrix_f32(&path).unwrap()
    };
    let embedding = features("embedding", "embedding.npy");
    assert_eq!(embedding.dim(), (48, 128));
    assert_eq!(embedding, features("dense", "dense.npy"));
}

#[test]
fn self_supervised_refuses_what_needs_labels_or_no_augmentation() {
    let work = tempfile::tempdir().unwrap();
    let set = make_set(work.path(), 12, false);
    let out = work.path().join("ssl");
    let base = [
        "train",
        "--self-supervised",
        "--images",
        s(&set.images),
        "--epochs",
        "1",
        "--out",
        s(&out),
    ];
    let catalog = ["--catalog", s(&set.catalog)];
    #[allow(unused_mut)]
    let mut cases: Vec<(&[&str], &[&str])> = vec![
        (&["--no-augment"], &["--no-augment", "augmented views"]),
        (&catalog, &["--catalog"]),
        (&["--batch-size", "1"], &["--batch-size", "at least 2"]),
        (&["--method", "byol"], &["byol"]),
        (&["--val-fraction", "0.01"], &["at least 2"]),
    ];
    // A GPU in a build without CUDA, refused before anything is written.
    #[cfg(not(feature = "cuda"))]
    cases.push((&["--device", "cuda"], &["cuda:0", "--features cuda"]));
    for (extra, expected) in cases {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let err = fails(work.path(), &args);
        for e in expected {
            assert!(err.contains(e), "{extra:?}: `{e}` not in: {err}");
        }
        assert!(!out.exists(), "{extra:?}: --out must stay absent");
    }
    // --method without --self-supervised is a mistake, not silently ignored.
    let err = fails(
        work.path(),
        &[
            "train",
            "--images",
            s(&set.images),
            "--catalog",
            s(&set.catalog),
            "--target",
            "ellipticity",
            "--method",
            "simsiam",
            "--out",
            s(&out),
        ],
    );
    assert!(err.contains("--self-supervised"), "{err}");
}
