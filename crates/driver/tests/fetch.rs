//! `sdss-clustering fetch` against a local fault-injecting cutout server (127.0.0.1 only).

mod common;

use std::path::Path;
use std::time::Duration;

use sdss_fetch::testing::{galaxy_jpeg, CutoutServer, Reply, Request};

const CATALOG: &str = "\
id,ra,dec,petroR50,scale,name
NGC4472,187.444992,8.000411,25,,M49
NGC4486,187.705930,12.391123,,0.8,M87
busy,10,1,2,,five hundred once
gone,11,1,2,,404 on the first run
slow,12,1,2,,slow
NGC4649,190.916700,11.552611,30,,M60
";

fn fetch_args<'a>(catalog: &'a str, out: &'a str, url: &'a str) -> Vec<&'a str> {
    vec![
        "fetch",
        "--catalog",
        catalog,
        "--out",
        out,
        "--base-url",
        url,
        "--size",
        "48",
        "--concurrency",
        "3",
        "--retries",
        "2",
        "--timeout",
        "2",
        "--retry-delay",
        "0.01",
    ]
}

fn manifest_rows(path: &Path) -> Vec<Vec<String>> {
    sdss_io::stack::read_csv(path)
        .unwrap()
        .into_iter()
        .map(|(_, fields)| fields)
        .collect()
}

#[test]
fn fetch_reports_failures_with_exit_status_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("galaxies.csv");
    std::fs::write(&catalog, CATALOG).unwrap();
    let server = CutoutServer::start(|r: &Request| match (r.param("ra"), r.attempt) {
        (Some("10"), 1) => Reply::Status(500),
        (Some("11"), _) => Reply::Status(404),
        (Some("12"), _) => Reply::Slow(Duration::from_millis(100)),
        _ => Reply::Jpeg,
    });
    let url = server.base_url();
    let out = dir.path().join("images");
    let args = fetch_args(catalog.to_str().unwrap(), out.to_str().unwrap(), &url);
    let run = common::run_in(dir.path(), &args);
    let stderr = String::from_utf8_lossy(&run.stderr);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(!run.status.success(), "a failed galaxy must fail the run");
    assert!(
        stderr.contains("failed: gone: HTTP 404 (1 attempt)"),
        "{stderr}"
    );
    assert!(stderr.contains("1 of 6 galaxies failed"), "{stderr}");
    assert!(
        stdout.contains("5 downloaded, 0 already present, 1 failed"),
        "{stdout}"
    );
    // 404 is not retried; the 500 is.
    assert_eq!(server.requests_with("ra", "11").len(), 1);
    assert_eq!(server.requests_with("ra", "10").len(), 2);
    // scale = 0.02 x petroR50, or the scale column as given.
    let m49 = server.requests_with("ra", "187.444992");
    assert_eq!(m49[0].param("scale"), Some("0.5"));
    assert_eq!(m49[0].param("dec"), Some("8.000411"));
    assert_eq!(m49[0].size(), (48, 48));
    assert_eq!(
        server.requests_with("ra", "187.70593")[0].param("scale"),
        Some("0.8")
    );

    let rows = manifest_rows(&out.join("manifest.csv"));
    assert_eq!(
        rows[0],
        ["id", "file", "status", "bytes", "sha256", "url", "attempts", "error", "ra", "dec"]
    );
    assert_eq!(rows.len(), 7);
    let jpeg = galaxy_jpeg(48, 48);
    for row in &rows[1..] {
        let (id, file, status) = (&row[0], &row[1], &row[2]);
        assert_eq!(file, &format!("{id}.jpg"));
        if id == "gone" {
            assert_eq!(status, "failed");
            assert!(row[7].starts_with("http-404"), "{row:?}");
            assert!(!out.join(file).exists());
        } else {
            assert_eq!(status, "downloaded", "{row:?}");
            assert_eq!(std::fs::read(out.join(file)).unwrap(), jpeg);
            assert_eq!(row[3], jpeg.len().to_string());
            assert_eq!(row[4].len(), 64);
        }
    }
    // Nothing but the images and the manifest.
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 6);

    // The second run fetches only what is missing, and succeeds.
    let server2 = CutoutServer::start(|_: &Request| Reply::Jpeg);
    let url2 = server2.base_url();
    let args = fetch_args(catalog.to_str().unwrap(), out.to_str().unwrap(), &url2);
    let stdout = common::ok(dir.path(), &args);
    assert!(
        stdout.contains("1 downloaded, 5 already present, 0 failed"),
        "{stdout}"
    );
    assert_eq!(server2.requests().len(), 1);
    assert_eq!(server2.requests()[0].param("ra"), Some("11"));
    let rows = manifest_rows(&out.join("manifest.csv"));
    assert_eq!(rows.iter().filter(|r| r[2] == "present").count(), 5);
}

#[test]
fn bad_catalogue_rows_are_listed_and_nothing_is_fetched() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("galaxies.csv");
    std::fs::write(
        &catalog,
        "id,ra,dec,petroR50\na,10,1,2\nb,400,1,2\nc,10,1\nd,10,-95,x\na,1,1,1\n",
    )
    .unwrap();
    let server = CutoutServer::start(|_: &Request| Reply::Jpeg);
    let url = server.base_url();
    let out = dir.path().join("images");
    let args = fetch_args(catalog.to_str().unwrap(), out.to_str().unwrap(), &url);
    let stderr = common::fails(dir.path(), &args);
    for needle in [
        "4 bad row(s)",
        "line 3: ra 400 outside [0, 360)",
        "line 4: missing petroR50",
        "line 5: dec -95 outside [-90, 90]; petroR50 `x` is not a finite number",
        "line 6: duplicate id `a` (first on line 2)",
        "nothing was downloaded",
    ] {
        assert!(stderr.contains(needle), "missing `{needle}` in:\n{stderr}");
    }
    assert!(server.requests().is_empty());
    assert!(!out.exists());
}
