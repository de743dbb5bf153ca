//! Browsing the sample by similarity: one small page per galaxy showing its nearest neighbours (each
//! linking on to its own page), one page per cluster listing its members, and a search page that
//! finds any galaxy by id with its neighbours ([`super::search`]). Pages share one thumbnail file
//! per galaxy, a stylesheet and a script. Thumbnails and pages sit in folders of [`SHARD`] files;
//! from [`GALAXY_PAGES_MAX`] galaxies on no page per galaxy is written unless asked, and a cluster
//! page lists at most [`CLUSTER_PAGE_MAX`] members.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use ndarray::{Array1, Array3};
use rayon::prelude::*;
use sdss_neighbors::KnnGraph;

/// Galaxies per folder of thumbnails and of galaxy pages, so that no folder holds more than this
/// many files however many galaxies there are (`thumbs/0000/`, `thumbs/0001/`, …).
pub const SHARD: usize = 1000;

/// From this many galaxies on, a run writes no page per galaxy unless asked (`--galaxy-pages
/// always`): a galaxy is found by id in `search.html`, with its neighbours.
pub const GALAXY_PAGES_MAX: usize = 100_000;

/// Most galaxies listed on one cluster page; a larger cluster's page shows a seeded random draw
/// of its members and says so (`labels.csv` lists them all).
pub const CLUSTER_PAGE_MAX: usize = 2000;

/// Thumbnail of galaxy `row`, relative to the output folder.
pub fn thumb_path(row: usize) -> String {
    format!("thumbs/{:04}/{row}.jpg", row / SHARD)
}

/// Page of galaxy `row`, relative to the output folder.
pub fn galaxy_page(row: usize) -> String {
    format!("galaxy/{:04}/{row}.html", row / SHARD)
}

/// Page of cluster `label` of method `slug`, relative to the output folder.
pub fn cluster_page(slug: &str, label: i64) -> String {
    if label < 0 {
        format!("browse/{slug}/noise.html")
    } else {
        format!("browse/{slug}/cluster_{label}.html")
    }
}

/// One clustering, for the cluster pages and the memberships shown on galaxy pages.
pub struct Clustering<'a> {
    /// File-name slug, e.g. `kmeans`.
    pub slug: &'a str,
    /// One label per galaxy (-1: noise).
    pub labels: &'a Array1<i64>,
}

/// What the pages describe.
pub struct Browse<'a> {
    /// Galaxy ids in row order.
    pub ids: &'a [String],
    /// Each galaxy's nearest neighbours.
    pub graph: &'a KnnGraph,
    /// Where the neighbours were found, e.g. "PCA space (20 components), Euclidean distance".
    pub space: String,
    /// The methods of the run.
    pub clusterings: Vec<Clustering<'a>>,
}

/// Writes thumbnails, galaxy pages (when `galaxy_pages`), cluster pages, the search page and its
/// index, `browse.css` and `browse.js` into `dir`; returns the number of files written.
///
/// `dir` must be the run's staging folder: the whole folder is renamed into place when the run
/// succeeds, which makes these thousands of small files atomic without a sync per file (syncing each
/// one made the pages of 6437 galaxies take seconds instead of a fraction of one).
pub fn write(
    dir: &Path,
    browse: &Browse<'_>,
    thumbnail: impl Fn(usize) -> Result<Array3<f32>> + Sync,
    galaxy_pages: bool,
) -> Result<usize> {
    let n = browse.ids.len();
    for shard in 0..n.div_ceil(SHARD) {
        let mut subs = vec!["thumbs"];
        if galaxy_pages {
            subs.push("galaxy");
        }
        for sub in subs {
            let folder = dir.join(sub).join(format!("{shard:04}"));
            std::fs::create_dir_all(&folder)
                .with_context(|| format!("cannot create {}", folder.display()))?;
        }
    }
    write_file(&dir.join("browse.css"), CSS.as_bytes())?;
    write_file(&dir.join("browse.js"), SCRIPT.as_bytes())?;
    (0..n).into_par_iter().try_for_each(|row| -> Result<()> {
        write_jpeg(&dir.join(thumb_path(row)), &thumbnail(row)?)?;
        if galaxy_pages {
            write_file(
                &dir.join(galaxy_page(row)),
                galaxy_html(browse, row).as_bytes(),
            )?;
        }
        Ok(())
    })?;
    let mut files = if galaxy_pages { 2 * n } else { n } + 2;
    super::search::write(dir, browse, galaxy_pages)?;
    for c in &browse.clusterings {
        let folder = dir.join("browse").join(c.slug);
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
        let mut members: std::collections::BTreeMap<i64, Vec<usize>> = Default::default();
        for (i, &l) in c.labels.iter().enumerate() {
            members.entry(l).or_default().push(i);
        }
        for (&label, rows) in &members {
            let html = cluster_html(browse, c.slug, label, rows, galaxy_pages);
            write_file(&dir.join(cluster_page(c.slug, label)), html.as_bytes())?;
            files += 1;
        }
    }
    Ok(files)
}

/// `count` of `rows`, drawn with a fixed seed and kept in row order.
pub fn seeded_draw(rows: &[usize], count: usize, seed: u64) -> Vec<usize> {
    use rand::seq::index::sample;
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut picked: Vec<usize> = sample(&mut rng, rows.len(), count.min(rows.len()))
        .into_iter()
        .map(|i| rows[i])
        .collect();
    picked.sort_unstable();
    picked
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn cluster_name(label: i64) -> String {
    if label < 0 {
        "noise".to_owned()
    } else {
        format!("cluster {label}")
    }
}

fn head(out: &mut String, title: &str, up: &str) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n<link rel=\"stylesheet\" href=\"{up}browse.css\">\n</head>\n<body data-broken-images=\"unknown\">\n<p id=\"broken\"></p>\n",
        title = esc(title)
    );
}

fn tail(out: &mut String, up: &str) {
    let _ = write!(
        out,
        "<script src=\"{up}browse.js\"></script>\n</body>\n</html>\n"
    );
}

fn galaxy_html(b: &Browse<'_>, row: usize) -> String {
    let up = "../../";
    let id = &b.ids[row];
    let n = b.ids.len();
    let mut out = String::with_capacity(3000);
    head(&mut out, &format!("Galaxy {id}"), up);
    let _ = writeln!(
        out,
        "<nav><a href=\"{up}index.html\">report</a><a href=\"{up}{prev}\">&larr; previous</a><a href=\"{up}{next}\">next &rarr;</a><a href=\"{up}neighbours.csv\">neighbours.csv</a><a href=\"{up}search.html\">find a galaxy</a></nav>",
        prev = galaxy_page((row + n - 1) % n),
        next = galaxy_page((row + 1) % n),
    );
    let _ = writeln!(
        out,
        "<h1>Galaxy {}</h1>\n<div class=\"query\"><img src=\"{up}{}\" width=\"160\" height=\"160\" alt=\"{}\"><p>row {row}</p></div>",
        esc(id),
        thumb_path(row),
        esc(id)
    );
    if !b.clusterings.is_empty() {
        out.push_str("<p class=\"member\">In ");
        for (i, c) in b.clusterings.iter().enumerate() {
            let label = c.labels[row];
            let _ = write!(
                out,
                "{sep}{slug}: <a href=\"{up}{page}\">{name}</a>",
                sep = if i > 0 { " &middot; " } else { "" },
                slug = esc(c.slug),
                page = esc(&cluster_page(c.slug, label)),
                name = cluster_name(label)
            );
        }
        out.push_str("</p>\n");
    }
    let _ = writeln!(
        out,
        "<h2>{} nearest neighbours</h2>\n<p class=\"space\">{}</p>\n<div class=\"tiles\">",
        b.graph.k(),
        esc(&b.space)
    );
    for (rank, nb) in b.graph.neighbors(row).enumerate() {
        let _ = writeln!(
            out,
            "<a class=\"tile\" href=\"{up}{page}\"><img src=\"{up}{thumb}\" width=\"80\" height=\"80\" alt=\"{nid}\"><span>{r}. {nid}<br>d = {d:.4}</span></a>",
            page = galaxy_page(nb.index),
            thumb = thumb_path(nb.index),
            nid = esc(&b.ids[nb.index]),
            r = rank + 1,
            d = nb.distance
        );
    }
    out.push_str("</div>\n");
    tail(&mut out, up);
    out
}

fn cluster_html(
    b: &Browse<'_>,
    slug: &str,
    label: i64,
    rows: &[usize],
    galaxy_pages: bool,
) -> String {
    let up = "../../";
    let shown = if rows.len() > CLUSTER_PAGE_MAX {
        seeded_draw(rows, CLUSTER_PAGE_MAX, label as u64)
    } else {
        rows.to_vec()
    };
    let mut out = String::with_capacity(300 + shown.len() * 160);
    let title = format!("{slug}: {} ({} galaxies)", cluster_name(label), rows.len());
    head(&mut out, &title, up);
    let note = if shown.len() < rows.len() {
        format!(
            "{} of the {} members, drawn at random (seeded); <a href=\"{up}labels.csv\">labels.csv</a> lists every member. ",
            shown.len(),
            rows.len()
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "<nav><a href=\"{up}index.html#{slug}-{label}\">report</a><a href=\"{up}search.html\">find a galaxy</a></nav>\n<h1>{}</h1>\n<p>{note}Each galaxy links to its nearest neighbours.</p>\n<div class=\"tiles\">",
        esc(&title),
        slug = esc(slug)
    );
    for &row in &shown {
        let id = &b.ids[row];
        let page = if galaxy_pages {
            galaxy_page(row)
        } else {
            search_link(id)
        };
        let _ = writeln!(
            out,
            "<a class=\"tile\" href=\"{up}{page}\"><img src=\"{up}{thumb}\" width=\"80\" height=\"80\" loading=\"lazy\" alt=\"{id}\"><span>{id}</span></a>",
            page = esc(&page),
            thumb = thumb_path(row),
            id = esc(id)
        );
    }
    out.push_str("</div>\n");
    tail(&mut out, up);
    out
}

/// Galaxy `id`'s entry in the search page, relative to the output folder.
pub fn search_link(id: &str) -> String {
    format!("{}#{}", super::search::PAGE, percent_encode(id))
}

/// `text` with everything but unreserved URL characters percent-encoded (as the search page's
/// `decodeURIComponent` reads it).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Writes an (H, W, 3) image of values in [0, 1] as a JPEG (quality 90: a few KiB per galaxy).
fn write_jpeg(path: &Path, image: &Array3<f32>) -> Result<()> {
    use image::ImageEncoder;
    let (h, w, _) = image.dim();
    let pixels: Vec<u8> = image
        .iter()
        .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    let mut encoded = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut encoded, 90)
        .write_image(&pixels, w as u32, h as u32, image::ExtendedColorType::Rgb8)
        .with_context(|| format!("cannot encode {}", path.display()))?;
    write_file(path, &encoded)
}

/// Plain write into the staging folder (see [`write`] for why that is atomic enough).
fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

const CSS: &str = r#"body { font-family: sans-serif; margin: 0 auto; max-width: 1200px; padding: 1em; background: #fafafa; color: #222; }
nav a { margin-right: 1em; }
h1 { font-size: 1.4em; }
.query img { width: 160px; height: 160px; image-rendering: pixelated; border: 3px solid #f7962d; }
.query p, .space { color: #555; margin: 0.2em 0; }
.tiles { display: flex; flex-wrap: wrap; gap: 8px; }
.tile { display: block; width: 96px; text-decoration: none; color: #222; font-size: 0.8em; }
.tile img { width: 96px; height: 96px; image-rendering: pixelated; display: block; background: #000; }
.tile:hover img { outline: 2px solid #468; }
#broken { display: none; background: #fdd; padding: 0.5em; }
"#;

/// Counts images that failed to load (as index.html does), so a broken page is obvious; images the
/// browser has not fetched yet (lazy ones below the fold) are not counted as broken.
const SCRIPT: &str = r#"window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return i.complete && i.naturalWidth === 0; });
  document.body.setAttribute("data-broken-images", String(broken.length));
  document.body.setAttribute("data-images", String(imgs.length));
  if (broken.length > 0) {
    var p = document.getElementById("broken");
    p.textContent = broken.length + " image(s) failed to load: " + broken.map(function (i) { return i.getAttribute("src"); }).join(", ");
    p.style.display = "block";
  }
});
"#;
