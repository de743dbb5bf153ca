//! Catalogue reading, joining with images, and data splits, through the files a user would give.

use std::path::PathBuf;

use sdss_train::catalog::{join_images, read_catalog, InvalidKind, Targets, Task, TrainDataError};
use sdss_train::split::{
    read_split_csv, read_split_csv_for, split_counts, split_indices, split_indices_stratified,
    write_split_csv, Split, SplitCounts,
};

struct Csv {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn csv(text: &str) -> Csv {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.csv");
    std::fs::write(&path, text).unwrap();
    Csv { _dir: dir, path }
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn regress(c: &Csv, drop_invalid: bool) -> Result<sdss_train::catalog::Catalog, TrainDataError> {
    read_catalog(&c.path, "id", "lambda_r", Some(Task::Regress), drop_invalid).map(|(c, _)| c)
}

#[test]
fn reads_a_regression_catalogue() {
    let c = csv("id,lambda_r,other\n g1 , 0.5 ,x\ng2,\"0.25\",y\n\ng3,1e-1,z\n");
    let (cat, report) = read_catalog(&c.path, "id", "lambda_r", None, false).unwrap();
    assert_eq!(cat.ids(), ["g1", "g2", "g3"]);
    assert_eq!(cat.lines(), [2, 3, 5]);
    assert_eq!(cat.targets(), &Targets::Regression(vec![0.5, 0.25, 0.1]));
    assert_eq!(cat.task(), Task::Regress);
    assert!(report.task_inferred);
    assert_eq!(
        (report.rows, report.kept, report.dropped_invalid),
        (3, 3, 0)
    );
    let s = report.target_summary.as_ref().unwrap();
    assert!((s.mean - 0.85 / 3.0).abs() < 1e-6);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["task"], "regress");
    assert!(report.to_string().contains("3 kept"), "{report}");
}

#[test]
fn absent_columns_list_the_columns() {
    let c = csv("id,lambda_r,sersic_n\ng1,0.5,4\n");
    let err = read_catalog(&c.path, "id", "lamda_r", None, false).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, TrainDataError::MissingColumn { .. }));
    assert!(msg.contains("catalog.csv"), "{msg}");
    assert!(
        msg.contains("`lamda_r`") && msg.contains("--target"),
        "{msg}"
    );
    assert!(msg.contains("`id`, `lambda_r`, `sersic_n`"), "{msg}");

    let err = read_catalog(&c.path, "objid", "lambda_r", None, false).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("`objid`") && msg.contains("--id-column"),
        "{msg}"
    );
    assert!(msg.contains("`id`, `lambda_r`, `sersic_n`"), "{msg}");

    let c = csv("id,y,y\ng1,1,2\n");
    let err = read_catalog(&c.path, "id", "y", None, false).unwrap_err();
    assert!(
        matches!(err, TrainDataError::DuplicateColumn { .. }),
        "{err}"
    );
}

#[test]
fn empty_and_header_only_files_are_errors() {
    let c = csv("");
    assert!(matches!(
        regress(&c, false),
        Err(TrainDataError::EmptyFile { .. })
    ));
    let c = csv("id,lambda_r\n");
    assert!(matches!(
        regress(&c, false),
        Err(TrainDataError::NoRows { .. })
    ));
    let c = csv("id,lambda_r\n\"open,1\n");
    let err = regress(&c, false).unwrap_err();
    assert!(matches!(err, TrainDataError::Io(_)), "{err}");
    assert!(err.to_string().contains("catalog.csv"), "{err}");
}

#[test]
fn short_rows_name_their_line() {
    let c = csv("id,other,lambda_r\ng1,a,0.5\ng2,b\n");
    let err = regress(&c, false).unwrap_err();
    match &err {
        TrainDataError::ShortRow {
            line,
            found,
            needed,
            ..
        } => {
            assert_eq!((*line, *found, *needed), (3, 2, 3))
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("catalog.csv:3"), "{err}");
}

#[test]
fn nan_inf_and_empty_targets_are_errors_with_their_lines() {
    let c = csv(
        "id,lambda_r\ng1,0.5\ng2,nan\ng3,\ng4,inf\ng5,-Infinity\ng6,NA\ng7,0.1\n,0.3\ng9,1e40\n",
    );
    let err = regress(&c, false).unwrap_err();
    let msg = err.to_string();
    let TrainDataError::InvalidRows {
        count, examples, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*count, 7);
    let lines: Vec<usize> = examples.iter().map(|r| r.line).collect();
    assert_eq!(lines, [3, 4, 5, 6, 7, 9, 10]);
    let kinds: Vec<InvalidKind> = examples.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [
            InvalidKind::NotANumber,
            InvalidKind::Missing,
            InvalidKind::Infinite,
            InvalidKind::Infinite,
            InvalidKind::Missing,
            InvalidKind::EmptyId,
            InvalidKind::OutOfRange,
        ]
    );
    for needle in [
        "catalog.csv",
        "7 rows",
        "line 3: NaN `nan`",
        "line 4: empty",
        "line 9: empty id",
        "--drop-invalid",
    ] {
        assert!(msg.contains(needle), "{needle}: {msg}");
    }
}

#[test]
fn many_invalid_rows_list_the_first_twenty_and_the_count() {
    let mut text = String::from("id,lambda_r\n");
    for i in 0..50 {
        text.push_str(&format!(
            "g{i},{}\n",
            if i % 2 == 0 { "nan" } else { "0.5" }
        ));
    }
    let c = csv(&text);
    let err = regress(&c, false).unwrap_err();
    let TrainDataError::InvalidRows {
        count, examples, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((*count, examples.len()), (25, 20));
    assert!(err.to_string().contains("(25 in all)"), "{err}");
}

#[test]
fn drop_invalid_skips_and_counts() {
    let c = csv("id,lambda_r\ng1,0.5\ng2,nan\ng3,\ng4,inf\ng5,0.7\n,0.3\n");
    let (cat, report) = read_catalog(&c.path, "id", "lambda_r", None, true).unwrap();
    assert_eq!(cat.ids(), ["g1", "g5"]);
    assert_eq!(cat.targets(), &Targets::Regression(vec![0.5, 0.7]));
    assert_eq!(
        (report.rows, report.kept, report.dropped_invalid),
        (6, 2, 4)
    );
    let lines: Vec<usize> = report.dropped_examples.iter().map(|r| r.line).collect();
    assert_eq!(lines, [3, 4, 5, 7]);
    assert_eq!(cat.dropped().len(), 4);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["dropped_invalid"], 4);
    assert_eq!(json["dropped_examples"][0]["kind"], "not_a_number");

    // Everything invalid: nothing left.
    let c = csv("id,lambda_r\ng1,nan\ng2,\n");
    assert!(matches!(
        regress(&c, true),
        Err(TrainDataError::NoValidRows { dropped: 2, .. })
    ));
}

#[test]
fn empty_class_names_are_invalid_too() {
    let c = csv("id,class\ng1,E\ng2,\ng3,S\ng4,S\n");
    let err = read_catalog(&c.path, "id", "class", Some(Task::Classify), false).unwrap_err();
    let TrainDataError::InvalidRows {
        count, examples, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((*count, examples[0].line), (1, 3));
    let (cat, report) = read_catalog(&c.path, "id", "class", None, true).unwrap();
    assert_eq!(cat.ids(), ["g1", "g3", "g4"]);
    assert_eq!(report.dropped_invalid, 1);
    assert_eq!(report.task, Task::Classify);
}

#[test]
fn duplicate_ids_are_named_with_their_lines() {
    let c = csv("id,lambda_r\ng1,0.5\ng2,0.1\ng1,0.6\ng3,0.2\ng2,0.3\ng1,0.9\n");
    let err = regress(&c, false).unwrap_err();
    let msg = err.to_string();
    let TrainDataError::DuplicateIds {
        count, examples, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*count, 2);
    assert_eq!(examples[0].id, "g1");
    assert_eq!(examples[0].lines, [2, 4, 7]);
    assert_eq!(examples[1].lines, [3, 6]);
    assert!(msg.contains("`g1` (lines 2, 4, 7)"), "{msg}");
    // Duplicates are an error even with --drop-invalid.
    assert!(matches!(
        regress(&c, true),
        Err(TrainDataError::DuplicateIds { .. })
    ));
}

#[test]
fn string_target_for_an_explicit_regression_names_line_and_value() {
    let c = csv("id,class\ng1,0.5\ng2,Sa\ng3,0.7\ng4,E0\n");
    let err = read_catalog(&c.path, "id", "class", Some(Task::Regress), true).unwrap_err();
    let msg = err.to_string();
    let TrainDataError::NonNumericTarget {
        count, examples, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*count, 2);
    assert_eq!(examples[0], (3, "Sa".to_string()));
    assert!(
        msg.contains("line 3: `Sa`") && msg.contains("--task classify"),
        "{msg}"
    );
}

#[test]
fn the_task_is_inferred_from_the_values() {
    // Numbers (with missing values) → regression.
    let c = csv("id,n\ng1,4\ng2,1.5\ng3,NA\n");
    let (_, r) = read_catalog(&c.path, "id", "n", None, true).unwrap();
    assert_eq!((r.task, r.task_inferred), (Task::Regress, true));

    // Names → classification, sorted class names.
    let c = csv("id,class\ng1,S\ng2,E\ng3,Irr\ng4,S\n");
    let (cat, r) = read_catalog(&c.path, "id", "class", None, false).unwrap();
    assert_eq!((r.task, r.task_inferred), (Task::Classify, true));
    let Targets::Classes { labels, names } = cat.targets() else {
        panic!()
    };
    assert_eq!(names, &["E", "Irr", "S"]);
    assert_eq!(labels, &[2, 0, 1, 2]);
    let counts = r.classes.unwrap();
    assert_eq!((counts[2].name.as_str(), counts[2].count), ("S", 2));

    // Mixed → ask for --task.
    let c = csv("id,class\ng1,1\ng2,2\ng3,Sa\n");
    let err = read_catalog(&c.path, "id", "class", None, false).unwrap_err();
    assert!(
        matches!(
            err,
            TrainDataError::MixedTargets {
                numeric: 2,
                non_numeric: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("--task"), "{err}");
    // ... which classifies them.
    let (cat, r) = read_catalog(&c.path, "id", "class", Some(Task::Classify), false).unwrap();
    assert!(!r.task_inferred);
    assert_eq!(cat.targets().num_classes(), Some(3));
}

#[test]
fn integer_columns_can_be_classified_with_stable_numeric_labels() {
    // Galaxy Zoo votes: 0/1/2 (and a 10 to check numeric order).
    let c = csv("id,vote\ng1,2\ng2,0\ng3,10\ng4,1\ng5,2\n");
    let (cat, r) = read_catalog(&c.path, "id", "vote", None, false).unwrap();
    assert_eq!(r.task, Task::Regress);
    assert_eq!(cat.targets().len(), 5);
    let (cat, _) = read_catalog(&c.path, "id", "vote", Some(Task::Classify), false).unwrap();
    let Targets::Classes { labels, names } = cat.targets() else {
        panic!()
    };
    assert_eq!(names, &["0", "1", "2", "10"]);
    assert_eq!(labels, &[2, 0, 3, 1, 2]);

    // Row order does not change the labels.
    let c2 = csv("id,vote\ng5,2\ng3,10\ng4,1\ng1,2\ng2,0\n");
    let (cat2, _) = read_catalog(&c2.path, "id", "vote", Some(Task::Classify), false).unwrap();
    let Targets::Classes { names: names2, .. } = cat2.targets() else {
        panic!()
    };
    assert_eq!(names, names2);
}

#[test]
fn fewer_than_two_classes_is_an_error() {
    let c = csv("id,class\ng1,E\ng2,E\ng3,\n");
    let err = read_catalog(&c.path, "id", "class", Some(Task::Classify), true).unwrap_err();
    assert!(matches!(err, TrainDataError::TooFewClasses { .. }), "{err}");
    assert!(err.to_string().contains("`E`"), "{err}");
}

#[test]
fn join_skips_both_ways_and_follows_image_order() {
    let c = csv("id,lambda_r\ng3,0.3\ng1,0.1\ng9,0.9\ng2,0.2\ngbad,nan\n");
    let (cat, _) = read_catalog(&c.path, "id", "lambda_r", None, true).unwrap();
    let images = ids(&["g1", "g2", "x7", "g3", "gbad", "x8"]);
    let j = join_images(&cat, &images).unwrap();
    assert_eq!(j.ids, ["g1", "g2", "g3"]);
    assert_eq!(j.image_indices, [0, 1, 3]);
    assert_eq!(j.catalog_indices, [1, 3, 0]);
    assert_eq!(j.targets, Targets::Regression(vec![0.1, 0.2, 0.3]));
    assert_eq!(j.missing_images, ["g9"]);
    assert_eq!(j.unlisted_images, ["x7", "x8"]);
    assert_eq!(j.invalid_target_images, ["gbad"]);
    let r = j.report();
    assert_eq!(
        (
            r.images,
            r.catalog_rows,
            r.kept,
            r.missing_images,
            r.unlisted_images
        ),
        (6, 4, 3, 1, 2)
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["unlisted_image_examples"][1], "x8");
    assert!(
        r.to_string().contains("2 images are not in the catalogue"),
        "{r}"
    );

    // The same rows in another order join the same way.
    let c2 = csv("id,lambda_r\ng2,0.2\ng9,0.9\ngbad,nan\ng1,0.1\ng3,0.3\n");
    let (cat2, _) = read_catalog(&c2.path, "id", "lambda_r", None, true).unwrap();
    let j2 = join_images(&cat2, &images).unwrap();
    assert_eq!(
        (j2.ids, j2.image_indices, j2.targets),
        (j.ids, j.image_indices, j.targets)
    );
}

#[test]
fn empty_join_names_both_counts_and_examples() {
    let c = csv("id,lambda_r\n7,0.1\n8,0.2\n9,0.3\n");
    let (cat, _) = read_catalog(&c.path, "id", "lambda_r", None, false).unwrap();
    let err = join_images(&cat, &ids(&["0007", "0008"])).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            TrainDataError::EmptyJoin {
                catalog_ids: 3,
                images: 2,
                ..
            }
        ),
        "{err}"
    );
    for needle in [
        "catalog.csv",
        "3 ids",
        "2 ids",
        "`7`",
        "`0007`",
        "leading zeros",
    ] {
        assert!(msg.contains(needle), "{needle}: {msg}");
    }
}

#[test]
fn join_rejects_duplicate_images_and_single_class_results() {
    let c = csv("id,class\ng1,E\ng2,S\ng3,S\n");
    let (cat, _) = read_catalog(&c.path, "id", "class", None, false).unwrap();
    let err = join_images(&cat, &ids(&["g1", "g2", "g1"])).unwrap_err();
    assert!(
        matches!(err, TrainDataError::DuplicateImageIds { count: 1, .. }),
        "{err}"
    );
    let err = join_images(&cat, &ids(&["g2", "g3"])).unwrap_err();
    assert!(
        matches!(
            err,
            TrainDataError::TooFewClasses {
                after_join: true,
                ..
            }
        ),
        "{err}"
    );
    let j = join_images(&cat, &ids(&["g3", "g1"])).unwrap();
    let Targets::Classes { labels, names } = &j.targets else {
        panic!()
    };
    assert_eq!((labels.as_slice(), names.len()), (&[1, 0][..], 2));
}

#[test]
fn split_counts_match_the_original() {
    let c = split_counts(6437, 0.15, 0.15).unwrap();
    assert_eq!((c.train, c.val, c.test), (4505, 966, 966));
    let s = split_indices(6437, 0.15, 0.15, 0).unwrap();
    assert_eq!(SplitCounts::of(&s), c);
    assert_eq!(s, split_indices(6437, 0.15, 0.15, 0).unwrap());
    let labels: Vec<usize> = (0..6437).map(|i| i % 3).collect();
    let s = split_indices_stratified(&labels, 0.15, 0.15, 0).unwrap();
    assert_eq!(SplitCounts::of(&s), c);
}

#[test]
fn too_small_splits_are_errors() {
    let err = split_indices(30, 0.15, 0.15, 0).unwrap_err();
    let msg = err.to_string();
    // 30 → holdout ceil(0.3 · 30) = 9 → 21 / 4 / 5.
    assert!(
        matches!(
            err,
            TrainDataError::SplitTooSmall {
                split: Split::Val,
                count: 4,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        msg.contains("the validation split would have 4 galaxies; at least 10 are needed"),
        "{msg}"
    );
    let err = split_indices(100, 0.5, 0.45, 0).unwrap_err();
    assert!(
        matches!(
            err,
            TrainDataError::SplitTooSmall {
                split: Split::Train,
                count: 5,
                ..
            }
        ),
        "{err}"
    );
    let err = split_indices(100, 0.0, 0.2, 0).unwrap_err();
    assert!(err.to_string().contains("--val-fraction"), "{err}");
    let err = split_indices(100, 0.2, -0.1, 0).unwrap_err();
    assert!(err.to_string().contains("--test-fraction"), "{err}");
}

#[test]
fn split_csv_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("split.csv");
    let names = ids(&["g1", "a,b", "q\"uote", " pad", "g5"]);
    let splits = vec![
        Split::Train,
        Split::Val,
        Split::Test,
        Split::Train,
        Split::Test,
    ];
    write_split_csv(&path, &names, &splits).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("id,split\ng1,train\n\"a,b\",val\n"),
        "{text}"
    );
    let (back_ids, back_splits) = read_split_csv(&path).unwrap();
    assert_eq!((&back_ids, &back_splits), (&names, &splits));

    // For resuming: the splits in the caller's order.
    let order = ids(&["g5", "g1", " pad", "q\"uote", "a,b"]);
    let s = read_split_csv_for(&path, &order).unwrap();
    assert_eq!(
        s,
        [
            Split::Test,
            Split::Train,
            Split::Train,
            Split::Test,
            Split::Val
        ]
    );
    let err = read_split_csv_for(&path, &ids(&["g1", "new"])).unwrap_err();
    assert!(
        matches!(
            err,
            TrainDataError::SplitMismatch {
                missing: 1,
                extra: 4,
                ..
            }
        ),
        "{err}"
    );

    assert!(matches!(
        write_split_csv(&path, &names, &splits[..2]),
        Err(TrainDataError::LengthMismatch { .. })
    ));
    std::fs::write(&path, "id,split\ng1,train\ng2,dev\n").unwrap();
    let err = read_split_csv(&path).unwrap_err();
    assert!(
        matches!(err, TrainDataError::BadSplit { line: 3, .. }),
        "{err}"
    );
    std::fs::write(&path, "id,fold\ng1,train\n").unwrap();
    assert!(matches!(
        read_split_csv(&path),
        Err(TrainDataError::MissingColumn { .. })
    ));
    std::fs::write(&path, "id,split\ng1,train\ng1,test\n").unwrap();
    assert!(matches!(
        read_split_csv(&path),
        Err(TrainDataError::DuplicateIds { .. })
    ));
}
