//! Finding a galaxy by id in a report of any size: `search.html` and a static index split into
//! `search/index-NNNN.js` parts by a hash of the id, so the page loads only the part that can
//! hold the id asked for (a few thousand galaxies each, however many there are). Plain script
//! files, not JSON fetched by the page: browsers refuse `fetch` on `file://`, and a report is
//! opened from disk.
//!
//! Each entry gives the galaxy's row, its label under each method, and its nearest neighbours
//! (rows, ids and distances: the rows of `neighbours.csv`), so the page shows them with their
//! thumbnails without any per-galaxy page.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use super::browse::{Browse, SHARD};

/// Galaxies per index part, about (the parts are hash buckets, so they vary a little).
const GALAXIES_PER_PART: usize = 4000;

/// The page, relative to the output folder.
pub const PAGE: &str = "search.html";

/// FNV-1a of the id's bytes: the index part of `id` is this modulo the number of parts. The page
/// computes the same (over UTF-8 bytes, in 32-bit arithmetic).
fn fnv1a(id: &str) -> u32 {
    id.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Writes `search.html` and its index parts into `dir` (the run's staging folder). `pages`:
/// whether the per-galaxy pages exist, to link to them.
pub fn write(dir: &Path, b: &Browse<'_>, pages: bool) -> Result<()> {
    let n = b.ids.len();
    let parts = n.div_ceil(GALAXIES_PER_PART).max(1);
    let mut buckets: Vec<Vec<usize>> = vec![Vec::new(); parts];
    for (row, id) in b.ids.iter().enumerate() {
        buckets[fnv1a(id) as usize % parts].push(row);
    }
    let folder = dir.join("search");
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    for (part, rows) in buckets.iter().enumerate() {
        let mut js = String::with_capacity(rows.len() * 200 + 64);
        let _ = write!(js, "sdssIndexPart({part},{{");
        for (i, &row) in rows.iter().enumerate() {
            if i > 0 {
                js.push(',');
            }
            let _ = write!(js, "{}:[{row},[", json_string(&b.ids[row]));
            for (c, clustering) in b.clusterings.iter().enumerate() {
                if c > 0 {
                    js.push(',');
                }
                let _ = write!(js, "{}", clustering.labels[row]);
            }
            js.push_str("],[");
            for (k, nb) in b.graph.neighbors(row).enumerate() {
                if k > 0 {
                    js.push(',');
                }
                let _ = write!(
                    js,
                    "[{},{},{:.5}]",
                    nb.index,
                    json_string(&b.ids[nb.index]),
                    nb.distance
                );
            }
            js.push_str("]]");
        }
        js.push_str("});\n");
        let path = folder.join(part_file(part));
        std::fs::write(&path, js).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let slugs: Vec<String> = b.clusterings.iter().map(|c| json_string(c.slug)).collect();
    let html = PAGE_HTML
        .replace("__PARTS__", &parts.to_string())
        .replace("__SHARD__", &SHARD.to_string())
        .replace("__SLUGS__", &format!("[{}]", slugs.join(",")))
        .replace("__PAGES__", if pages { "true" } else { "false" })
        .replace("__SPACE__", &super::html::esc(&b.space))
        .replace("__COUNT__", &n.to_string());
    let path = dir.join(PAGE);
    std::fs::write(&path, html).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Index part `part`'s file name inside `search/`.
fn part_file(part: usize) -> String {
    format!("index-{part:04}.js")
}

/// `text` as a JSON (and JavaScript) string literal.
fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

const PAGE_HTML: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Find a galaxy</title>
<link rel="stylesheet" href="browse.css">
</head>
<body data-broken-images="unknown">
<p id="broken"></p>
<nav><a href="index.html">report</a><a href="neighbours.csv">neighbours.csv</a><a href="labels.csv">labels.csv</a></nav>
<h1>Find a galaxy by id</h1>
<form id="find"><input id="q" size="30" placeholder="galaxy id (file name without extension)" autofocus> <button>find</button></form>
<p class="space">__COUNT__ galaxies; neighbours by __SPACE__.</p>
<div id="result"></div>
<script>
var PARTS = __PARTS__, SHARD = __SHARD__, SLUGS = __SLUGS__, PAGES = __PAGES__;
var loaded = {}, waiting = {};
function fnv1a(id) {
  var bytes = new TextEncoder().encode(id), h = 0x811c9dc5;
  for (var i = 0; i < bytes.length; i++) { h ^= bytes[i]; h = Math.imul(h, 0x01000193) >>> 0; }
  return h >>> 0;
}
function pad(n) { var s = String(n); while (s.length < 4) s = "0" + s; return s; }
function thumb(row) { return "thumbs/" + pad(Math.floor(row / SHARD)) + "/" + row + ".jpg"; }
function page(row) { return "galaxy/" + pad(Math.floor(row / SHARD)) + "/" + row + ".html"; }
function sdssIndexPart(part, entries) {
  loaded[part] = entries;
  (waiting[part] || []).forEach(function (f) { f(); });
  delete waiting[part];
}
function withPart(part, f) {
  if (loaded[part]) { f(); return; }
  if (waiting[part]) { waiting[part].push(f); return; }
  waiting[part] = [f];
  var s = document.createElement("script");
  s.src = "search/index-" + pad(part) + ".js";
  document.head.appendChild(s);
}
function esc(t) { return String(t).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;"); }
function link(row, id) { return PAGES ? page(row) : "#" + encodeURIComponent(id); }
function show(id) {
  var part = fnv1a(id) % PARTS, out = document.getElementById("result");
  withPart(part, function () {
    var e = loaded[part][id];
    if (!e) { out.innerHTML = "<p>No galaxy <b>" + esc(id) + "</b> in this run.</p>"; document.body.setAttribute("data-found", "0"); return; }
    var row = e[0], html = "<h2>Galaxy " + esc(id) + "</h2><div class=\"query\"><img src=\"" + thumb(row) + "\" width=\"160\" height=\"160\" alt=\"" + esc(id) + "\"><p>row " + row + "</p></div>";
    if (SLUGS.length) {
      html += "<p class=\"member\">In " + SLUGS.map(function (s, i) { return esc(s) + ": " + (e[1][i] < 0 ? "noise" : "cluster " + e[1][i]); }).join(" &middot; ") + "</p>";
    }
    html += "<h2>" + e[2].length + " nearest neighbours</h2><div class=\"tiles\">";
    e[2].forEach(function (nb, k) {
      html += "<a class=\"tile\" href=\"" + link(nb[0], nb[1]) + "\"><img src=\"" + thumb(nb[0]) + "\" width=\"80\" height=\"80\" alt=\"" + esc(nb[1]) + "\"><span>" + (k + 1) + ". " + esc(nb[1]) + "<br>d = " + nb[2].toFixed(4) + "</span></a>";
    });
    out.innerHTML = html + "</div>";
    document.body.setAttribute("data-found", "1");
    window.setTimeout(countBroken, 0);
  });
}
function countBroken() {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return i.complete && i.naturalWidth === 0; });
  document.body.setAttribute("data-broken-images", String(broken.length));
  document.body.setAttribute("data-images", String(imgs.length));
}
document.getElementById("find").addEventListener("submit", function (ev) {
  ev.preventDefault();
  var id = document.getElementById("q").value.trim();
  if (id) { location.hash = encodeURIComponent(id); }
});
function fromHash() {
  var id = decodeURIComponent(location.hash.slice(1));
  if (id) { document.getElementById("q").value = id; show(id); }
}
window.addEventListener("hashchange", fromHash);
window.addEventListener("load", function () { fromHash(); countBroken(); });
</script>
</body>
</html>
"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_fnv1a_as_the_page_computes_it() {
        // Reference values of 32-bit FNV-1a.
        assert_eq!(fnv1a(""), 0x811c_9dc5);
        assert_eq!(fnv1a("a"), 0xe40c_292c);
        assert_eq!(fnv1a("foobar"), 0xbf9c_f968);
    }
}
