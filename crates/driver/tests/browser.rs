//! The report opens in headless Chromium with every image loaded (Debian's `chromium`, installed by
//! `.ci/run`).

mod common;

use std::process::Command;

use common::*;

fn chromium(args: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    let user_data = format!("--user-data-dir={}", profile.path().display());
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--allow-file-access-from-files",
            &user_data,
        ])
        .args(args)
        .output()
        .expect("chromium runs (apt-get install chromium)")
}

#[test]
#[ignore = "needs chromium"]
fn report_loads_in_headless_chromium_with_all_images() {
    let work = tempfile::tempdir().unwrap();
    let images = work.path().join("images");
    copy_galaxies(&images, 60);
    let out = work.path().join("report");
    ok(
        work.path(),
        &[
            "--quiet",
            "run",
            "--images",
            images.to_str().unwrap(),
            "--pca",
            "20",
            "--method",
            "kmeans:k=4",
            "--method",
            "affinity:damping=0.8",
            "--method",
            "agglomerative:k=6,linkage=ward",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let url = format!("file://{}", out.join("index.html").display());

    // The page's own script counts images that failed to load into data-broken-images.
    let dom = chromium(&["--virtual-time-budget=10000", "--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("data-broken-images=\"0\""),
        "broken images or script did not run:\n{}",
        &dom[..dom.len().min(2000)]
    );
    let n_images: usize = dom
        .split("data-images=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|s| s.parse().ok())
        .expect("image count recorded");
    assert!(n_images > 10, "{n_images}");

    // Browsing by neighbour: a galaxy's page and a cluster's page load every image, and the galaxy
    // page links to its 8 neighbours' pages.
    for page in ["galaxy/7.html", "browse/kmeans/cluster_0.html"] {
        let url = format!("file://{}", out.join(page).display());
        let dom = chromium(&["--virtual-time-budget=10000", "--dump-dom", &url]);
        let dom = String::from_utf8_lossy(&dom.stdout);
        assert!(
            dom.contains("data-broken-images=\"0\""),
            "{page}: broken images or script did not run:\n{}",
            &dom[..dom.len().min(2000)]
        );
        if page.starts_with("galaxy/") {
            assert_eq!(dom.matches("class=\"tile\" href=\"").count(), 8, "{page}");
        }
    }

    let shot = work.path().join("shot.png");
    let run = chromium(&[
        "--window-size=1200,1600",
        &format!("--screenshot={}", shot.display()),
        "--virtual-time-budget=10000",
        &url,
    ]);
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let img = image::open(&shot).unwrap().to_rgb8();
    let first = *img.get_pixel(0, 0);
    let differing = img.pixels().filter(|p| **p != first).count();
    assert!(
        differing > (img.width() * img.height() / 20) as usize,
        "screenshot is (nearly) blank"
    );
}
