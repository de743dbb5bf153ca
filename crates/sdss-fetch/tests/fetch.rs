//! The fetcher against a local fault-injecting cutout server (127.0.0.1 only): every fault ends in a valid
//! image or a recorded failure with the right reason, and nothing half-written is ever left.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sdss_fetch::testing::{galaxy_jpeg, CutoutServer, Reply, Request};
use sdss_fetch::{
    check_jpeg, fetch_catalog, read_catalog, CatalogError, FailReason, FetchOptions, FetchProgress,
    FetchReport, Galaxy, NoProgress, Outcome, Status,
};
use sha2::Digest;

const SIZE: u32 = 48;

/// Galaxies named by their fault; galaxy `i` sits at ra = i, which is how the server tells them apart.
fn galaxies(names: &[&str]) -> Vec<Galaxy> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| Galaxy {
            id: (*name).to_owned(),
            ra: i as f64,
            dec: 1.5,
            scale: 0.4,
            line: i + 2,
        })
        .collect()
}

fn ra_of(names: &[&str], name: &str) -> String {
    names.iter().position(|n| *n == name).unwrap().to_string()
}

/// Short timeouts (but with room for a loaded CI machine) and tiny backoff, so that the whole suite takes a
/// few seconds.
fn options(server: &CutoutServer) -> FetchOptions {
    FetchOptions {
        base_url: server.base_url(),
        size: SIZE,
        concurrency: 4,
        retries: 2,
        timeout: Duration::from_millis(800),
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(40),
        ..FetchOptions::default()
    }
}

/// The files in `dir` other than the manifest and the expected images.
fn stray_files(dir: &Path, report: &FetchReport) -> Vec<String> {
    let expected: Vec<String> = report
        .outcomes
        .iter()
        .filter(|o| matches!(o.status, Status::Downloaded | Status::Present))
        .map(|o| o.file.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "manifest.csv" && !expected.contains(n))
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The manifest as a map from id to its fields by column name.
fn manifest(path: &Path) -> HashMap<String, HashMap<String, String>> {
    let rows = sdss_io::stack::read_csv(path).unwrap();
    let header = rows[0].1.clone();
    assert_eq!(
        header,
        ["id", "file", "status", "bytes", "sha256", "url", "attempts", "error", "ra", "dec"]
    );
    rows[1..]
        .iter()
        .map(|(_, fields)| {
            let row: HashMap<String, String> =
                header.iter().cloned().zip(fields.iter().cloned()).collect();
            (row["id"].clone(), row)
        })
        .collect()
}

/// Records retries as (id, attempt, reason kind, delay).
#[derive(Default)]
struct Recorder {
    started: usize,
    retries: Vec<(String, u32, String, Duration)>,
    done: Vec<String>,
}

impl FetchProgress for Recorder {
    fn start(&mut self, total: usize) {
        self.started = total;
    }
    fn retry(&mut self, galaxy: &Galaxy, attempt: u32, reason: &FailReason, delay: Duration) {
        self.retries
            .push((galaxy.id.clone(), attempt, reason.kind(), delay));
    }
    fn done(&mut self, outcome: &Outcome) {
        self.done.push(outcome.id.clone());
    }
}

#[test]
fn every_fault_ends_in_an_image_or_a_recorded_failure() {
    let names = [
        "ok",
        "e500_then_ok",
        "e503_always",
        "not_found",
        "slow",
        "stall_then_ok",
        "silent_always",
        "truncated_then_ok",
        "truncated_always",
        "html_then_ok",
        "html_always",
        "empty_always",
        "wrong_size",
        "drop_chunked_then_ok",
        "drop_chunked_always",
        "drop_close_always",
        "e403",
    ];
    let plan_names = names.map(str::to_owned);
    let server = CutoutServer::start(move |r: &Request| {
        let i: usize = r.param("ra").unwrap().parse().unwrap();
        let first = r.attempt == 1;
        match plan_names[i].as_str() {
            "e500_then_ok" if r.attempt <= 2 => Reply::Status(500),
            "e503_always" => Reply::Status(503),
            "not_found" => Reply::Status(404),
            "e403" => Reply::Status(403),
            "slow" => Reply::Slow(Duration::from_millis(150)),
            "stall_then_ok" if first => Reply::Stall(Duration::from_millis(2000)),
            "silent_always" => Reply::Silent(Duration::from_millis(2000)),
            "truncated_then_ok" if first => Reply::Truncated,
            "truncated_always" => Reply::Truncated,
            "html_then_ok" if first => Reply::Html200,
            "html_always" => Reply::Html200,
            "empty_always" => Reply::Empty200,
            "wrong_size" => Reply::JpegOfSize(SIZE + 2, SIZE),
            "drop_chunked_then_ok" if first => Reply::DropChunked,
            "drop_chunked_always" => Reply::DropChunked,
            "drop_close_always" => Reply::DropClose,
            _ => Reply::Jpeg,
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("images");
    let cancel = Arc::new(AtomicBool::new(false));
    let mut progress = Recorder::default();
    let started = Instant::now();
    let report = fetch_catalog(
        &galaxies(&names),
        &out,
        &options(&server),
        &cancel,
        &mut progress,
    )
    .unwrap();
    let elapsed = started.elapsed();
    assert!(!report.cancelled);
    assert_eq!(progress.started, names.len());
    assert_eq!(progress.done.len(), names.len());

    let by_id: HashMap<&str, &Outcome> =
        report.outcomes.iter().map(|o| (o.id.as_str(), o)).collect();
    // (id, status, attempts, failure kind)
    let expected: [(&str, Status, u32, &str); 17] = [
        ("ok", Status::Downloaded, 1, ""),
        ("e500_then_ok", Status::Downloaded, 3, ""),
        ("e503_always", Status::Failed, 3, "http-503"),
        ("not_found", Status::Failed, 1, "http-404"),
        ("slow", Status::Downloaded, 1, ""),
        ("stall_then_ok", Status::Downloaded, 2, ""),
        ("silent_always", Status::Failed, 3, "timeout"),
        ("truncated_then_ok", Status::Downloaded, 2, ""),
        ("truncated_always", Status::Failed, 3, "truncated"),
        ("html_then_ok", Status::Downloaded, 2, ""),
        ("html_always", Status::Failed, 3, "not-jpeg"),
        ("empty_always", Status::Failed, 3, "empty"),
        ("wrong_size", Status::Failed, 1, "wrong-size"),
        ("drop_chunked_then_ok", Status::Downloaded, 2, ""),
        ("drop_chunked_always", Status::Failed, 3, "connection"),
        ("drop_close_always", Status::Failed, 3, "corrupt"),
        ("e403", Status::Failed, 1, "http-403"),
    ];
    for (id, status, attempts, kind) in expected {
        let o = by_id[id];
        assert_eq!(
            (
                o.status,
                o.attempts,
                o.error.as_ref().map(|e| e.kind()).unwrap_or_default()
            ),
            (status, attempts, kind.to_owned()),
            "{id}: {o:?}"
        );
        // The server saw exactly as many requests as the outcome says: 404 and 403 are not retried.
        let seen = server.requests_with("ra", &ra_of(&names, id)).len() as u32;
        assert_eq!(seen, attempts, "{id}: requests seen by the server");
    }
    // The retry notifications name the fault of the failed attempt.
    let retried = |id: &str| -> Vec<String> {
        progress
            .retries
            .iter()
            .filter(|r| r.0 == id)
            .map(|r| r.2.clone())
            .collect()
    };
    assert_eq!(retried("stall_then_ok"), ["timeout"]);
    assert_eq!(retried("truncated_then_ok"), ["truncated"]);
    assert_eq!(retried("e500_then_ok"), ["http-500", "http-500"]);
    assert_eq!(retried("html_then_ok"), ["not-jpeg"]);
    assert_eq!(retried("drop_chunked_then_ok"), ["connection"]);
    assert!(retried("not_found").is_empty());
    if let Some(FailReason::NotJpeg { snippet, .. }) = &by_id["html_always"].error {
        assert!(snippet.contains("too many requests"), "{snippet}");
    }
    if let Some(FailReason::Truncated { got, expected }) = &by_id["truncated_always"].error {
        assert!(got < expected);
    }

    // Only complete, valid images of the requested size are on disk, and nothing else.
    assert_eq!(stray_files(&out, &report), Vec::<String>::new());
    let rows = manifest(&report.manifest);
    assert_eq!(report.manifest, out.join("manifest.csv"));
    assert_eq!(rows.len(), names.len());
    for o in &report.outcomes {
        let row = &rows[&o.id];
        assert_eq!(row["status"], o.status.to_string());
        assert_eq!(row["attempts"], o.attempts.to_string());
        assert_eq!(row["url"], o.url);
        assert_eq!(row["file"], format!("{}.jpg", o.id));
        // The catalogue's position, exactly, so `run --match-radius` can use the manifest.
        assert_eq!(row["ra"].parse::<f64>().unwrap(), o.ra);
        assert_eq!(row["dec"].parse::<f64>().unwrap(), o.dec);
        assert!(o.url.contains(&format!("ra={}", o.ra)), "{}", o.url);
        assert!(o.url.starts_with(&server.base_url()));
        assert!(o.url.contains("&width=48&height=48"), "{}", o.url);
        if o.status == Status::Downloaded {
            let bytes = std::fs::read(&o.file).unwrap();
            check_jpeg(&bytes, None, SIZE, SIZE).unwrap();
            assert_eq!(bytes, galaxy_jpeg(SIZE, SIZE));
            assert_eq!(row["bytes"], bytes.len().to_string());
            assert_eq!(row["sha256"], sha256_hex(&bytes));
            assert_eq!(row["error"], "");
        } else {
            assert!(!o.file.exists(), "{}", o.id);
            assert_eq!(row["bytes"], "0");
            assert_eq!(row["sha256"], "");
            assert!(
                row["error"].starts_with(&o.error.as_ref().unwrap().kind()),
                "{row:?}"
            );
        }
    }
    assert_eq!(report.count(Status::Downloaded), 7);
    assert_eq!(report.failures().count(), 10);
    assert!(!report.all_ok());
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

#[test]
fn retry_after_is_honoured_and_pauses_every_worker() {
    let names = ["busy", "slow", "next"];
    let server = CutoutServer::start(|r: &Request| match (r.param("ra"), r.attempt) {
        (Some("0"), 1) => Reply::TooManyRequests("1".into()),
        (Some("1"), _) => Reply::Slow(Duration::from_millis(200)),
        _ => Reply::Jpeg,
    });
    let dir = tempfile::tempdir().unwrap();
    let cancel = Arc::new(AtomicBool::new(false));
    let options = FetchOptions {
        concurrency: 2,
        ..options(&server)
    };
    let mut progress = Recorder::default();
    let report = fetch_catalog(
        &galaxies(&names),
        dir.path(),
        &options,
        &cancel,
        &mut progress,
    )
    .unwrap();
    assert!(report.all_ok(), "{:?}", report.outcomes);
    let busy = server.requests_with("ra", "0");
    assert_eq!(busy.len(), 2);
    let waited = busy[1].at - busy[0].at;
    assert!(waited >= Duration::from_secs(1), "waited only {waited:?}");
    assert!(waited < Duration::from_secs(3), "waited {waited:?}");
    // The other worker, free after 200 ms, also held off until the Retry-After had passed.
    let next = server.requests_with("ra", "2");
    assert_eq!(next.len(), 1);
    assert!(
        next[0].at - busy[0].at >= Duration::from_secs(1),
        "{:?}",
        next[0].at - busy[0].at
    );
    assert_eq!(progress.retries.len(), 1);
    assert_eq!(progress.retries[0].2, "http-429");
    assert!(progress.retries[0].3 >= Duration::from_secs(1));
}

#[test]
fn resume_skips_valid_files_and_replaces_invalid_ones() {
    let names = ["valid", "cut", "small", "absent"];
    let server = CutoutServer::start(|_: &Request| Reply::Jpeg);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    // A valid image made elsewhere (its bytes differ from what the server sends).
    let valid = {
        let img = image::RgbImage::from_pixel(SIZE, SIZE, image::Rgb([1, 2, 3]));
        let mut v = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut v)
            .encode_image(&img)
            .unwrap();
        v
    };
    std::fs::write(out.join("valid.jpg"), &valid).unwrap();
    let good = galaxy_jpeg(SIZE, SIZE);
    std::fs::write(out.join("cut.jpg"), &good[..good.len() - 100]).unwrap();
    std::fs::write(out.join("small.jpg"), galaxy_jpeg(SIZE / 2, SIZE / 2)).unwrap();
    // A temporary file left by a killed run is cleaned up; someone else's hidden file is not touched.
    std::fs::write(out.join(".absent.jpg.tmp-999-0"), b"partial").unwrap();
    std::fs::write(out.join(".notes.tmp-1-1"), b"keep").unwrap();
    std::fs::write(out.join(".manifest.csv.tmp-999-1"), b"id,fi").unwrap();

    let cancel = Arc::new(AtomicBool::new(false));
    let report = fetch_catalog(
        &galaxies(&names),
        out,
        &options(&server),
        &cancel,
        &mut NoProgress,
    )
    .unwrap();
    assert!(report.all_ok());
    let o = &report.outcomes;
    assert_eq!((o[0].status, o[0].attempts), (Status::Present, 0));
    assert_eq!(o[0].sha256.as_deref(), Some(sha256_hex(&valid).as_str()));
    assert_eq!(std::fs::read(out.join("valid.jpg")).unwrap(), valid);
    assert!(
        server.requests_with("ra", "0").is_empty(),
        "valid file re-fetched"
    );
    assert!(
        matches!(o[1].replaced, Some(FailReason::Corrupt(_))),
        "{:?}",
        o[1]
    );
    assert!(
        matches!(o[2].replaced, Some(FailReason::WrongSize { .. })),
        "{:?}",
        o[2]
    );
    for (i, name) in ["cut", "small", "absent"].iter().enumerate() {
        assert_eq!(o[i + 1].status, Status::Downloaded);
        assert_eq!(
            std::fs::read(out.join(format!("{name}.jpg"))).unwrap(),
            good
        );
    }
    let rows = manifest(&report.manifest);
    assert_eq!(rows["valid"]["status"], "present");
    assert_eq!(rows["valid"]["bytes"], valid.len().to_string());
    assert!(rows["cut"]["error"].starts_with("replaced an invalid file"));
    assert!(!out.join(".absent.jpg.tmp-999-0").exists());
    assert!(out.join(".notes.tmp-1-1").exists());
    assert!(!out.join(".manifest.csv.tmp-999-1").exists());
    assert_eq!(server.requests().len(), 3);

    // A second run requests nothing.
    let again = fetch_catalog(
        &galaxies(&names),
        out,
        &options(&server),
        &cancel,
        &mut NoProgress,
    )
    .unwrap();
    assert_eq!(again.count(Status::Present), 4);
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn cancellation_stops_promptly_and_leaves_no_partial_files() {
    let names: Vec<String> = (0..12).map(|i| format!("g{i:02}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    // The first two are quick; the rest stall mid-body far longer than the test waits.
    let server = CutoutServer::start(|r: &Request| {
        let i: usize = r.param("ra").unwrap().parse().unwrap();
        if i < 2 {
            Reply::Jpeg
        } else {
            Reply::Stall(Duration::from_secs(4))
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_owned();
    let cancel = Arc::new(AtomicBool::new(false));
    let slow = FetchOptions {
        timeout: Duration::from_secs(10),
        concurrency: 3,
        ..options(&server)
    };
    let handle = {
        let (galaxies, out, options, cancel) =
            (galaxies(&names), out.clone(), slow, Arc::clone(&cancel));
        std::thread::spawn(move || {
            fetch_catalog(&galaxies, &out, &options, &cancel, &mut NoProgress)
        })
    };
    // Wait until three stalled downloads are in flight.
    let t0 = Instant::now();
    while server.requests().len() < 5 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "requests never arrived"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    let cancelled_at = Instant::now();
    cancel.store(true, Ordering::SeqCst);
    let report = handle.join().unwrap().unwrap();
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(1),
        "took {:?} to stop",
        cancelled_at.elapsed()
    );
    assert!(report.cancelled);
    assert_eq!(report.count(Status::Downloaded), 2);
    assert_eq!(report.count(Status::Cancelled), 10);
    assert_eq!(report.failures().count(), 0);
    // Only the two finished images and the manifest; no temporary or partial file.
    assert_eq!(stray_files(&out, &report), Vec::<String>::new());
    let rows = manifest(&report.manifest);
    assert_eq!(rows["g05"]["status"], "cancelled");
    assert_eq!(rows["g05"]["error"], "cancelled");
    // The three in flight had made their request; the rest had not started.
    let attempts: Vec<&str> = (2..12)
        .map(|i| rows[&format!("g{i:02}")]["attempts"].as_str())
        .collect();
    assert_eq!(
        attempts.iter().filter(|a| **a == "1").count(),
        3,
        "{attempts:?}"
    );
    assert_eq!(
        attempts.iter().filter(|a| **a == "0").count(),
        7,
        "{attempts:?}"
    );
    assert_eq!(rows["g00"]["status"], "downloaded");
    // Requests were bounded: three workers, no new request after the cancel.
    assert_eq!(server.requests().len(), 5);

    // A later run resumes: the finished ones are not fetched again.
    let server2 = CutoutServer::start(|_: &Request| Reply::Jpeg);
    let cancel = Arc::new(AtomicBool::new(false));
    let report = fetch_catalog(
        &galaxies(&names),
        &out,
        &options(&server2),
        &cancel,
        &mut NoProgress,
    )
    .unwrap();
    assert!(report.all_ok());
    assert_eq!(report.count(Status::Present), 2);
    assert_eq!(server2.requests().len(), 10);
}

#[test]
fn catalogue_errors_list_every_bad_row_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cat.csv");
    std::fs::write(
        &path,
        "id,ra,dec,petroR50,name\n\
         good,10,0,2,a\n\
         short,10\n\
         text,ten,0,2,b\n\
         far,360,0,2,c\n\
         south,10,-90.5,2,d\n\
         zero,10,0,0,e\n\
         good,11,1,2,f\n\
         \"a/b\",1,1,1,g\n\
         nan,nan,1,1,h\n\
         ,1,1,1,i\n",
    )
    .unwrap();
    let err = read_catalog(&path).unwrap_err();
    let CatalogError::Rows { problems, .. } = &err else {
        panic!("{err}");
    };
    let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, [3, 4, 5, 6, 7, 8, 9, 10, 11]);
    let text = err.to_string();
    for needle in [
        "9 bad row(s)",
        "line 3: missing dec; missing petroR50",
        "line 4: ra `ten` is not a finite number",
        "line 5: ra 360 outside [0, 360)",
        "line 6: dec -90.5 outside [-90, 90]",
        "line 7: petroR50 0 must be positive",
        "line 8: duplicate id `good` (first on line 2)",
        "line 9: id `a/b` cannot be a file name",
        "line 10: ra `nan` is not a finite number",
        "line 11: missing id",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }

    std::fs::write(&path, "name,ra,dec\nx,1,2\n").unwrap();
    let err = read_catalog(&path).unwrap_err().to_string();
    assert!(err.contains("missing column(s) id"), "{err}");
    assert!(err.contains("petroR50"), "{err}");
    std::fs::write(&path, "id,ra,dec,scale\n").unwrap();
    assert!(read_catalog(&path)
        .unwrap_err()
        .to_string()
        .contains("no rows"));
    assert!(matches!(
        read_catalog(dir.path().join("missing.csv")),
        Err(CatalogError::Read { .. })
    ));
}

#[test]
fn bad_options_and_clashing_ids_fail_before_any_request() {
    let server = CutoutServer::start(|_: &Request| Reply::Jpeg);
    let dir = tempfile::tempdir().unwrap();
    let cancel = Arc::new(AtomicBool::new(false));
    let mut twice = galaxies(&["a", "b"]);
    twice[1].id = "a".into();
    assert!(fetch_catalog(
        &twice,
        dir.path(),
        &options(&server),
        &cancel,
        &mut NoProgress
    )
    .is_err());
    let bad = FetchOptions {
        concurrency: 0,
        ..options(&server)
    };
    assert!(fetch_catalog(
        &galaxies(&["a"]),
        dir.path(),
        &bad,
        &cancel,
        &mut NoProgress
    )
    .is_err());
    assert!(server.requests().is_empty());
}

#[test]
fn concurrency_bound_is_used_and_respected() {
    let names: Vec<String> = (0..9).map(|i| format!("g{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let server = CutoutServer::start(|_: &Request| Reply::Slow(Duration::from_millis(300)));
    let dir = tempfile::tempdir().unwrap();
    let cancel = Arc::new(AtomicBool::new(false));
    let options = FetchOptions {
        concurrency: 3,
        ..options(&server)
    };
    let order = Arc::new(Mutex::new(Vec::new()));
    struct Order(Arc<Mutex<Vec<String>>>);
    impl FetchProgress for Order {
        fn done(&mut self, o: &Outcome) {
            self.0.lock().unwrap().push(o.id.clone());
        }
    }
    let report = fetch_catalog(
        &galaxies(&names),
        dir.path(),
        &options,
        &cancel,
        &mut Order(Arc::clone(&order)),
    )
    .unwrap();
    assert!(report.all_ok());
    assert_eq!(server.max_concurrent(), 3);
    // The report is in catalogue order whatever the completion order.
    let ids: Vec<&str> = report.outcomes.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, names);
    assert_eq!(order.lock().unwrap().len(), 9);
}
