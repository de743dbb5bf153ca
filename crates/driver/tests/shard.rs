//! Features in shards (`features --shard I/N`, `merge`): the merged parts are byte-identical to one
//! `features` run, a finished shard is skipped on a rerun and a damaged one redone, the SLURM array
//! variables pick the shard, and `merge` refuses parts that do not cover the input exactly once.

mod common;

use std::path::Path;

use common::*;

fn features(cwd: &Path, images: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "--quiet",
        "features",
        "--images",
        images.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    ok(cwd, &args)
}

fn merge(cwd: &Path, parts: &Path, out: &Path) -> std::process::Output {
    run_in(
        cwd,
        &[
            "--quiet",
            "merge",
            parts.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    )
}

#[test]
fn merged_shards_equal_one_run_byte_for_byte_and_reruns_skip_finished_shards() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let images = w.join("images");
    copy_galaxies(&images, 23);
    for kind in [&["--pixels"][..], &[][..]] {
        let single = w.join("single.npy");
        features(w, &images, &single, kind);
        let parts = w.join("parts");
        let _ = std::fs::remove_dir_all(&parts);
        for i in 0..3 {
            let shard = format!("{i}/3");
            let mut extra = kind.to_vec();
            extra.extend(["--shard", shard.as_str()]);
            features(w, &images, &parts, &extra);
        }
        let merged = w.join("merged.npy");
        let out = merge(w, &parts, &merged);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            std::fs::read(&merged).unwrap(),
            std::fs::read(&single).unwrap(),
            "{kind:?}: merged parts differ from one run"
        );
        assert_eq!(
            std::fs::read(w.join("merged.ids.csv")).unwrap(),
            std::fs::read(w.join("single.ids.csv")).unwrap()
        );

        // A rerun skips what is done; a damaged part is redone.
        let mut extra = kind.to_vec();
        extra.extend(["--shard", "1/3"]);
        let again = features(w, &images, &parts, &extra);
        assert!(again.contains("skipped"), "{again}");
        let part = parts.join("part-00001-of-00003.npy");
        let mut bytes = std::fs::read(&part).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&part, &bytes).unwrap();
        let err = merge(w, &parts, &w.join("bad.npy"));
        assert!(!err.status.success());
        let text = String::from_utf8_lossy(&err.stderr);
        assert!(
            text.contains("checksum") && text.contains("part-00001"),
            "{text}"
        );
        let redone = features(w, &images, &parts, &extra);
        assert!(!redone.contains("skipped"), "{redone}");
        assert!(merge(w, &parts, &merged).status.success());
        assert_eq!(
            std::fs::read(&merged).unwrap(),
            std::fs::read(&single).unwrap()
        );
    }
}

#[test]
fn slurm_array_variables_pick_the_shard_and_merge_names_what_is_missing() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let images = w.join("images");
    copy_galaxies(&images, 10);
    let parts = w.join("parts");
    // --array=1-4: task 3 is the third of four shards (index 2).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sdss-clustering"))
        .args(["--quiet", "features", "--pixels", "--images"])
        .arg(&images)
        .arg("--out")
        .arg(&parts)
        .env("SLURM_ARRAY_TASK_ID", "3")
        .env("SLURM_ARRAY_TASK_COUNT", "4")
        .env("SLURM_ARRAY_TASK_MIN", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sidecar: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(parts.join("part-00002-of-00004.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(sidecar["start"], 5);
    assert_eq!(sidecar["end"], 7);
    assert_eq!(sidecar["ids"].as_array().unwrap().len(), 2);

    let err = merge(w, &parts, &w.join("m.npy"));
    assert!(!err.status.success());
    let text = String::from_utf8_lossy(&err.stderr);
    assert!(text.contains("part 0 of 4 is missing"), "{text}");

    // Parts of another shard count never mix in.
    features(w, &images, &parts, &["--pixels", "--shard", "0/3"]);
    let text = String::from_utf8_lossy(&merge(w, &parts, &w.join("m.npy")).stderr).into_owned();
    assert!(text.contains("shards"), "{text}");

    for (shard, says) in [("4/4", "0 <= I < N"), ("0/11", "empty")] {
        let text = fails(
            w,
            &[
                "features",
                "--pixels",
                "--images",
                images.to_str().unwrap(),
                "--out",
                parts.to_str().unwrap(),
                "--shard",
                shard,
            ],
        );
        assert!(text.contains(says), "--shard {shard}: {text}");
    }
}

#[test]
fn run_reads_the_parts_in_place_and_clusters_as_if_it_had_computed_them() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let images = w.join("images");
    copy_galaxies(&images, 20);
    let parts = w.join("parts");
    for i in ["0/2", "1/2"] {
        features(w, &images, &parts, &["--pixels", "--shard", i]);
    }
    let run = |out: &str, extra: &[&str]| {
        let out = w.join(out);
        let mut args = vec![
            "--quiet",
            "run",
            "--images",
            images.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--pca",
            "5",
            "--method",
            "kmeans:k=3",
            "--method",
            "ward:k=3",
        ];
        args.extend_from_slice(extra);
        ok(w, &args);
        out
    };
    let direct = run("direct", &["--features", "pixels"]);
    let from_parts = run("from-parts", &["--features-from", parts.to_str().unwrap()]);
    for file in [
        "features.npy",
        "ids.csv",
        "labels_kmeans.npy",
        "labels_agglomerative.npy",
    ] {
        assert_eq!(
            std::fs::read(direct.join(file)).unwrap(),
            std::fs::read(from_parts.join(file)).unwrap(),
            "{file}"
        );
    }
    let html = std::fs::read_to_string(from_parts.join("index.html")).unwrap();
    assert!(
        html.contains("read from"),
        "the report says where the features came from"
    );
}
