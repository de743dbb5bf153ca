//! `kill -9` at chosen points of `run`, `features` and `fetch` (training has its own in tests/train.rs):
//! the output is absent or complete, never half-written; what the killed process left beside it is
//! recovered or removed by the next one; and running the same command again gives the same results as
//! a run that was never interrupted. Two processes into the same output: the second is refused.
//!
//! The kill points are exact: with `SDSS_CLUSTERING_CRASH_AT=<point>` the binary announces the point on
//! stderr and waits there, and the test sends SIGKILL (`Child::kill`) once it reads the announcement.
#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// Starts `sdss-clustering args` with the crash hook at `point`, waits until it gets there, and kills it
/// with SIGKILL.
fn kill_at(cwd: &Path, args: &[&str], point: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sdss-clustering"))
        .args(args)
        .current_dir(cwd)
        .env("SDSS_CLUSTERING_CRASH_AT", point)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        if line.starts_with(&format!("crash point {point}")) {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return;
        }
        seen.push(line);
    }
    let status = child.wait().unwrap();
    panic!(
        "{args:?} never reached {point} ({status}):\n{}",
        seen.join("\n")
    );
}

/// Hidden entries of `dir` (leftovers of killed processes), except lock files.
fn leftovers(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && !n.ends_with(".lock"))
        .collect();
    names.sort();
    names
}

fn run_args<'a>(images: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "run",
        "--images",
        images,
        "--features",
        "pixels",
        "--pca",
        "5",
        "--method",
        "kmeans:k=3",
        "--method",
        "agglomerative:k=3,linkage=ward",
        "--out",
        out,
        "--force",
    ]
}

/// The files of a run that do not depend on the clock (run.json and the report record timings).
const DETERMINISTIC: [&str; 4] = [
    "features.npy",
    "ids.csv",
    "labels_kmeans.npy",
    "labels_agglomerative.npy",
];

fn assert_same_run(a: &Path, b: &Path) {
    for name in DETERMINISTIC {
        assert_eq!(
            std::fs::read(a.join(name)).unwrap(),
            std::fs::read(b.join(name)).unwrap(),
            "{name} differs from the uninterrupted run"
        );
    }
    assert!(b.join("index.html").is_file() && b.join("run.json").is_file());
}

#[test]
fn a_killed_run_leaves_no_half_written_folder_and_the_next_run_cleans_up() {
    let work = tempfile::tempdir().unwrap();
    let images = work.path().join("images");
    copy_galaxies(&images, 24);
    let images = images.to_str().unwrap();
    let whole = work.path().join("whole");
    ok(work.path(), &run_args(images, whole.to_str().unwrap()));

    let out = work.path().join("out");
    let out_s = out.to_str().unwrap();
    // Killed before anything is in place: no output folder, only the staging folder beside it.
    for point in ["run:features-staged", "run:staged"] {
        kill_at(work.path(), &run_args(images, out_s), point);
        assert!(!out.exists(), "{point}: a killed first run leaves no --out");
        assert_eq!(
            leftovers(work.path()).len(),
            1,
            "{point}: one staging folder"
        );
    }
    // The next run removes both killed runs' staging folders and completes.
    ok(work.path(), &run_args(images, out_s));
    assert!(
        leftovers(work.path()).is_empty(),
        "{:?}",
        leftovers(work.path())
    );
    assert_same_run(&whole, &out);

    // Killed while replacing earlier results (--force), between moving them aside and moving the new
    // ones in: --out is briefly absent; the next process restores the earlier, complete results.
    kill_at(work.path(), &run_args(images, out_s), "run:commit");
    assert!(!out.exists());
    let mut other = run_args(images, out_s);
    other.retain(|a| *a != "--force");
    let err = fails(work.path(), &other);
    assert!(
        err.contains("not empty"),
        "the earlier results are back: {err}"
    );
    assert_same_run(&whole, &out);
    assert!(
        leftovers(work.path()).is_empty(),
        "{:?}",
        leftovers(work.path())
    );

    // Killed after staging, with earlier results in place: they stay untouched.
    kill_at(work.path(), &run_args(images, out_s), "run:staged");
    assert_same_run(&whole, &out);
    ok(work.path(), &run_args(images, out_s));
    assert_same_run(&whole, &out);
    assert!(
        leftovers(work.path()).is_empty(),
        "{:?}",
        leftovers(work.path())
    );
}

/// `run --resume` after a kill once the features are written takes them from the killed run's
/// staging folder instead of computing them, and ends where an uninterrupted run ends; features of
/// other images or another request are computed again.
#[test]
fn a_run_killed_after_its_features_resumes_from_them() {
    let work = tempfile::tempdir().unwrap();
    let images = work.path().join("images");
    let files = copy_galaxies(&images, 24);
    let images_s = images.to_str().unwrap();
    let whole = work.path().join("whole");
    ok(work.path(), &run_args(images_s, whole.to_str().unwrap()));

    let out = work.path().join("out");
    let out_s = out.to_str().unwrap();
    // `run_args` with --resume, and its pixel features replaced by `features`.
    let resume = |features: &str, extra: &[&str]| {
        let mut args: Vec<&str> = run_args(images_s, out_s)
            .into_iter()
            .map(|a| if a == "pixels" { features } else { a })
            .collect();
        args.push("--resume");
        args.extend_from_slice(extra);
        // At info level, where the log says whether the features were resumed.
        let run = Command::new(env!("CARGO_BIN_EXE_sdss-clustering"))
            .args(&args)
            .current_dir(work.path())
            .env("RUST_LOG", "info")
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&run.stderr).into_owned();
        assert!(run.status.success(), "{log}");
        log
    };
    kill_at(
        work.path(),
        &run_args(images_s, out_s),
        "run:features-staged",
    );
    let log = resume("pixels", &[]);
    assert!(log.contains("come from the killed run"), "{log}");
    assert_same_run(&whole, &out);
    assert!(
        leftovers(work.path()).is_empty(),
        "{:?}",
        leftovers(work.path())
    );

    // Nothing to resume: a plain run.
    let log = resume("pixels", &[]);
    assert!(log.contains("no killed run's features"), "{log}");
    assert_same_run(&whole, &out);

    // Another feature request: computed again.
    kill_at(
        work.path(),
        &run_args(images_s, out_s),
        "run:features-staged",
    );
    let log = resume("cnn", &[]);
    assert!(log.contains("computing the features again"), "{log}");
    assert_eq!(
        sdss_io::npy::read_matrix_f32(out.join("features.npy"))
            .unwrap()
            .ncols(),
        128
    );

    // An image gone since: computed again, without it.
    kill_at(
        work.path(),
        &run_args(images_s, out_s),
        "run:features-staged",
    );
    std::fs::remove_file(&files[3]).unwrap();
    let log = resume("pixels", &[]);
    assert!(log.contains("computing the features again"), "{log}");
    assert_eq!(labels(&out.join("labels_kmeans.npy")).len(), 23);

    // A bad image skipped by the killed run is read again, and reported as before.
    let bytes = std::fs::read(&files[5]).unwrap();
    std::fs::write(&files[5], &bytes[..bytes.len() / 3]).unwrap();
    let bad = files[5].file_name().unwrap().to_str().unwrap();
    let mut args = run_args(images_s, out_s);
    args.push("--skip-bad");
    kill_at(work.path(), &args, "run:features-staged");
    let log = resume("pixels", &["--skip-bad"]);
    assert!(
        log.contains("come from the killed run") && log.contains(bad),
        "{log}"
    );
    assert_eq!(labels(&out.join("labels_kmeans.npy")).len(), 22);
    let recorded = std::fs::read_to_string(out.join("run.json")).unwrap();
    assert!(recorded.contains(bad), "{recorded}");
    assert!(
        leftovers(work.path()).is_empty(),
        "{:?}",
        leftovers(work.path())
    );
}

#[test]
fn a_killed_features_never_pairs_a_matrix_with_other_ids() {
    let work = tempfile::tempdir().unwrap();
    let images = work.path().join("images");
    copy_galaxies(&images, 10);
    let small = work.path().join("small");
    copy_galaxies(&small, 6);
    let args = |images: &Path, out: &Path| -> Vec<String> {
        ["features", "--pixels", "--images"]
            .iter()
            .map(|s| s.to_string())
            .chain([images.display().to_string()])
            .chain(["--out".into(), out.display().to_string()])
            .collect()
    };
    let whole = work.path().join("whole.npy");
    ok(work.path(), &as_str(&args(&images, &whole)));

    // An earlier output of 6 galaxies, then a kill between moving the new matrix and its ids in.
    let out = work.path().join("f.npy");
    let ids = work.path().join("f.ids.csv");
    ok(work.path(), &as_str(&args(&small, &out)));
    kill_at(
        work.path(),
        &as_str(&args(&images, &out)),
        "features:between-renames",
    );
    assert!(
        !ids.exists(),
        "the earlier ids are gone with the earlier matrix"
    );
    let rows = sdss_io::npy::read_matrix_f32(&out).unwrap().nrows();
    assert_eq!(rows, 10, "the new matrix is complete");
    assert_eq!(leftovers(work.path()).len(), 1, "the staged ids");

    ok(work.path(), &as_str(&args(&images, &out)));
    assert!(
        leftovers(work.path()).is_empty(),
        "{:?}",
        leftovers(work.path())
    );
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&whole).unwrap());
    assert_eq!(
        std::fs::read(&ids).unwrap(),
        std::fs::read(work.path().join("whole.ids.csv")).unwrap()
    );
}

#[test]
fn a_second_process_into_the_same_output_is_refused_and_the_first_completes() {
    let work = tempfile::tempdir().unwrap();
    let images = work.path().join("images");
    copy_galaxies(&images, 16);
    let images = images.to_str().unwrap();
    let out = work.path().join("out");
    let out_s = out.to_str().unwrap();

    // The first run holds --out (paused at a crash point, which only waits until it is killed).
    let mut first = Command::new(env!("CARGO_BIN_EXE_sdss-clustering"))
        .args(run_args(images, out_s))
        .current_dir(work.path())
        .env("SDSS_CLUSTERING_CRASH_AT", "run:staged")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(first.stderr.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("crash point") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the first run ended early"
        );
    }
    let err = fails(work.path(), &run_args(images, out_s));
    assert!(
        err.contains(&format!("(pid {})", first.id())) && err.contains("is writing it"),
        "{err}"
    );
    // features and fetch into a folder being written are refused the same way.
    let err = fails(
        work.path(),
        &["features", "--pixels", "--images", images, "--out", out_s],
    );
    assert!(err.contains("is writing it"), "{err}");
    first.kill().unwrap();
    first.wait().unwrap();

    // Once the holder is gone (even by SIGKILL) the lock is free, and a run completes.
    ok(work.path(), &run_args(images, out_s));
    assert!(out.join("index.html").is_file());
    // And a lock held by this test refuses a run too, before it writes anything.
    let lock = std::fs::File::open(work.path().join(".out.lock")).unwrap();
    lock.try_lock().unwrap();
    let err = fails(work.path(), &run_args(images, out_s));
    assert!(err.contains("is writing it"), "{err}");
    assert!(
        out.join("index.html").is_file(),
        "the refused run touched nothing"
    );
}

fn as_str(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

const CATALOG: &str = "\
id,ra,dec,petroR50
g1,10.0,1.0,2
g2,10.1,1.0,2
g3,10.2,1.0,2
g4,10.3,1.0,2
g5,10.4,1.0,2
g6,10.5,1.0,2
g7,10.6,1.0,2
g8,10.7,1.0,2
";

fn fetch_args(catalog: &Path, out: &Path, url: &str) -> Vec<String> {
    [
        "fetch",
        "--catalog",
        &catalog.display().to_string(),
        "--out",
        &out.display().to_string(),
        "--base-url",
        url,
        "--size",
        "48",
        "--concurrency",
        "1",
        "--retries",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn a_killed_fetch_leaves_only_whole_images_and_the_rerun_matches() {
    use sdss_fetch::testing::{CutoutServer, Reply, Request};

    let work = tempfile::tempdir().unwrap();
    let catalog = work.path().join("galaxies.csv");
    std::fs::write(&catalog, CATALOG).unwrap();
    // Slow enough that the kill lands mid-download.
    let server = CutoutServer::start(|_: &Request| Reply::Slow(Duration::from_millis(150)));
    let url = server.base_url();
    let whole = work.path().join("whole");
    ok(work.path(), &as_str(&fetch_args(&catalog, &whole, &url)));

    let out = work.path().join("images");
    let args = fetch_args(&catalog, &out, &url);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sdss-clustering"))
        .args(&args)
        .current_dir(work.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let jpegs = |dir: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        v.retain(|p| p.extension().is_some_and(|x| x == "jpg"));
        v.sort();
        v
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while jpegs(&out).len() < 3 {
        assert!(std::time::Instant::now() < deadline, "nothing was fetched");
        assert!(
            child.try_wait().unwrap().is_none(),
            "fetch ended before the kill"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let fetched = jpegs(&out);
    assert!(fetched.len() < 8, "killed before the end");
    for path in &fetched {
        sdss_io::preprocess::decode_rgb8(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    ok(work.path(), &args);
    assert!(leftovers(&out).is_empty(), "{:?}", leftovers(&out));
    let names = |v: Vec<PathBuf>| -> Vec<String> {
        v.iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names(jpegs(&out)), names(jpegs(&whole)));
    for (a, b) in jpegs(&out).iter().zip(jpegs(&whole)) {
        assert_eq!(std::fs::read(a).unwrap(), std::fs::read(&b).unwrap());
    }
}

#[test]
fn a_shard_killed_before_its_sidecar_leaves_no_part_that_merge_would_take() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let images = w.join("images");
    copy_galaxies(&images, 8);
    let parts = w.join("parts");
    let args = |i: &'static str| {
        vec![
            "features".to_owned(),
            "--pixels".into(),
            "--images".into(),
            images.to_str().unwrap().into(),
            "--out".into(),
            parts.to_str().unwrap().into(),
            "--shard".into(),
            i.into(),
        ]
    };
    ok(w, &as_str(&args("0/2")));
    kill_at(w, &as_str(&args("1/2")), "features:part-written");
    assert!(
        !parts.join("part-00001-of-00002.json").exists(),
        "no sidecar for a killed shard"
    );
    let err = fails(
        w,
        &[
            "merge",
            parts.to_str().unwrap(),
            "--out",
            w.join("m.npy").to_str().unwrap(),
        ],
    );
    assert!(err.contains("missing"), "{err}");
    // The rerun redoes the killed shard (its part has no sidecar) and the set is whole.
    let again = ok(w, &as_str(&args("1/2")));
    assert!(!again.contains("skipped"), "{again}");
    ok(
        w,
        &[
            "merge",
            parts.to_str().unwrap(),
            "--out",
            w.join("m.npy").to_str().unwrap(),
        ],
    );
    assert!(leftovers(&parts).is_empty(), "{:?}", leftovers(&parts));
}
