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
    for page in ["galaxy/0000/7.html", "browse/kmeans/cluster_0.html"] {
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

#[test]
#[ignore = "needs chromium"]
fn without_galaxy_pages_the_search_page_finds_a_galaxy_and_its_neighbours() {
    // What a report of 100,000+ galaxies does by default, asked for here on 30.
    let work = tempfile::tempdir().unwrap();
    let images = work.path().join("images");
    let files = copy_galaxies(&images, 30);
    let out = work.path().join("report");
    ok(
        work.path(),
        &[
            "--quiet",
            "run",
            "--images",
            images.to_str().unwrap(),
            "--pca",
            "10",
            "--method",
            "kmeans:k=3",
            "--galaxy-pages",
            "never",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(!out.join("galaxy").exists(), "no page per galaxy");
    assert!(out.join("thumbs/0000/29.jpg").exists());
    let index = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(
        index.contains("href=\"search.html\""),
        "the report links the search"
    );
    let cluster = std::fs::read_to_string(out.join("browse/kmeans/cluster_0.html")).unwrap();
    assert!(
        cluster.contains("search.html#"),
        "cluster tiles lead to the search"
    );
    let id = files[3].file_stem().unwrap().to_str().unwrap().to_owned();
    let find = |fragment: &str| {
        let url = format!("file://{}#{fragment}", out.join("search.html").display());
        let dom = chromium(&["--virtual-time-budget=10000", "--dump-dom", &url]);
        String::from_utf8_lossy(&dom.stdout).into_owned()
    };
    let dom = find(&id);
    assert!(dom.contains("data-found=\"1\""), "{id} not found:\n{dom}");
    assert!(dom.contains("data-broken-images=\"0\""), "{dom}");
    assert!(dom.contains(&format!("Galaxy {id}")), "{dom}");
    assert_eq!(dom.matches("class=\"tile\" href=\"#").count(), 8, "{dom}");
    let dom = find("no-such-galaxy");
    assert!(dom.contains("data-found=\"0\""), "{dom}");
}
