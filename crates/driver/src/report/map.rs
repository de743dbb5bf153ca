//! `map.html`: every galaxy as a point of the 2-D map on a `<canvas>`, coloured by a method's
//! clusters or by a number per galaxy (a catalogue property, an anomaly score), chosen in a
//! `<select>`. The mouse wheel zooms about the cursor, dragging pans; hovering shows the galaxy's id
//! and thumbnail (the image is requested only then), clicking opens its page.
//!
//! The data sit in `map_data.js`, a plain script (`window.SDSS_MAP = {...}`) loaded by
//! `<script src>`, so the page works from `file://` with no server. Points are drawn straight into
//! an `ImageData` buffer and hover hit-testing uses a uniform grid over the map, so the page stays
//! interactive at 10⁵+ points (100,000 points draw in tens of milliseconds in headless Chromium;
//! see the ignored test at the bottom).
//!
//! Ids are strings in the data, never numbers: SDSS objids exceed 2⁵³, which a JavaScript number
//! cannot hold exactly. Every string goes through JSON escaping (with `</` and U+2028/U+2029 also
//! escaped), the title through HTML escaping, and the page puts text into the DOM only with
//! `textContent`.
//!
//! Self-test hook for the browser test: with `?selftest` in the URL the page, after drawing,
//! records `data-points` (points drawn) and `data-draw-ms` on `<body>`, dispatches a real
//! `mousemove` at row `row` (URL parameter, default 0), records `data-hover-id` and
//! `data-hover-thumb` (the thumbnail `src` it set), and with `?selftest=click` then dispatches a
//! `click` there, so the page navigates to that galaxy's page.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{ensure, Result};
use ndarray::ArrayView2;

use super::html::esc;

/// The page, relative to the output folder.
pub const PAGE_FILE: &str = "map.html";
/// Its data script, next to it.
pub const DATA_FILE: &str = "map_data.js";

/// Values that colour the points.
#[derive(Debug, Clone, Copy)]
pub enum ColouringValues<'a> {
    /// Cluster labels; negative (−1) is noise, drawn grey.
    Labels(&'a [i64]),
    /// A number per galaxy; NaN or infinite is missing, drawn grey.
    Numbers(&'a [f64]),
}

impl ColouringValues<'_> {
    fn len(&self) -> usize {
        match self {
            ColouringValues::Labels(v) => v.len(),
            ColouringValues::Numbers(v) => v.len(),
        }
    }
}

/// One entry of the colour selector.
#[derive(Debug, Clone)]
pub struct Colouring<'a> {
    /// Shown in the selector, e.g. `clusters: kmeans` or `redshift`.
    pub name: String,
    /// One value per galaxy, in row order.
    pub values: ColouringValues<'a>,
}

/// What the page shows.
pub struct Map<'a> {
    /// Galaxy ids in row order (written as text: SDSS objids exceed what a JavaScript number holds).
    pub ids: &'a [String],
    /// `(N, 2)` map coordinates, one row per galaxy; a non-finite row is left off the drawing.
    pub xy: ArrayView2<'a, f32>,
    /// The colourings to choose from; the first is shown first. None: every point one colour.
    pub colourings: Vec<Colouring<'a>>,
    /// Relative URL of row `i`'s thumbnail, e.g. `thumbs/7.jpg`.
    pub thumb: &'a dyn Fn(usize) -> String,
    /// Relative URL of row `i`'s page, e.g. `galaxy/7.html`.
    pub page: &'a dyn Fn(usize) -> String,
    /// Page title (plain text; escaped here).
    pub title: String,
}

/// A JavaScript string literal: JSON escaping, plus `</` (so the text can never close a script
/// element, should the data ever be inlined) and U+2028/U+2029 (line terminators in older engines).
fn js_string(s: &str) -> String {
    serde_json::to_string(s)
        // Cannot fire: serde_json serialises every &str.
        .expect("a &str always serialises")
        .replace("</", "<\\/")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// A number with at most `decimals` decimals (trailing zeros trimmed); `null` when not finite.
fn js_fixed(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return "null".into();
    }
    let t = format!("{v:.decimals$}");
    let t = if t.contains('.') {
        t.trim_end_matches('0').trim_end_matches('.')
    } else {
        &t
    };
    if t == "-0" {
        "0".into()
    } else {
        t.to_owned()
    }
}

/// A number in its shortest exact form (serde_json's, e.g. `0.1`, `1e+300`); `null` when not finite.
fn js_number(v: f64) -> String {
    if v.is_finite() {
        // Cannot fire: serde_json refuses only non-finite floats, excluded above.
        serde_json::to_string(&v).expect("a finite f64 always serialises")
    } else {
        "null".into()
    }
}

/// Decimals that resolve a coordinate span to about 1e-5 of its width (the canvas has ~10³ pixels).
fn decimals_for(xy: ArrayView2<'_, f32>) -> usize {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for &v in xy.iter().filter(|v| v.is_finite()) {
        lo = lo.min(f64::from(v));
        hi = hi.max(f64::from(v));
    }
    let span = hi - lo;
    if span.is_finite() && span > 0.0 {
        (5.0 - span.log10()).ceil().clamp(0.0, 12.0) as usize
    } else {
        4
    }
}

fn push_list(s: &mut String, key: &str, n: usize, item: impl Fn(usize) -> String) {
    let _ = write!(s, ",\n\"{key}\":[");
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&item(i));
    }
    s.push(']');
}

/// The data script: `window.SDSS_MAP = {"n", "x", "y", "ids", "thumbs", "pages", "colourings"}`,
/// where each colouring is `{"name", "kind": "labels"|"numbers", "values"}` and missing numbers
/// and non-finite coordinates are `null`.
pub fn data_script(map: &Map<'_>) -> String {
    let n = map.ids.len();
    let mut s = String::with_capacity(n * 80 + 64);
    let _ = write!(s, "window.SDSS_MAP = {{\"n\":{n}");
    let decimals = decimals_for(map.xy);
    push_list(&mut s, "x", n, |i| {
        js_fixed(f64::from(map.xy[[i, 0]]), decimals)
    });
    push_list(&mut s, "y", n, |i| {
        js_fixed(f64::from(map.xy[[i, 1]]), decimals)
    });
    push_list(&mut s, "ids", n, |i| js_string(&map.ids[i]));
    push_list(&mut s, "thumbs", n, |i| js_string(&(map.thumb)(i)));
    push_list(&mut s, "pages", n, |i| js_string(&(map.page)(i)));
    s.push_str(",\n\"colourings\":[");
    for (k, c) in map.colourings.iter().enumerate() {
        if k > 0 {
            s.push(',');
        }
        let kind = match c.values {
            ColouringValues::Labels(_) => "labels",
            ColouringValues::Numbers(_) => "numbers",
        };
        let _ = write!(
            s,
            "\n{{\"name\":{},\"kind\":\"{kind}\",\"values\":[",
            js_string(&c.name)
        );
        for i in 0..n {
            if i > 0 {
                s.push(',');
            }
            match c.values {
                // Labels are small cluster numbers: exact as JavaScript numbers.
                ColouringValues::Labels(v) => {
                    let _ = write!(s, "{}", v[i].max(-1));
                }
                ColouringValues::Numbers(v) => s.push_str(&js_number(v[i])),
            }
        }
        s.push_str("]}");
    }
    s.push_str("]\n};\n");
    s
}

/// The page itself (it loads [`DATA_FILE`] from beside it).
pub fn page_html(title: &str) -> String {
    PAGE.replace("{{TITLE}}", &esc(title))
        .replace("{{DATA}}", DATA_FILE)
}

/// Writes `map.html` and `map_data.js` into `dir` (atomically, each), after checking that the
/// coordinates are `(N, 2)` and every colouring has N values.
pub fn write(dir: &Path, map: &Map<'_>) -> Result<()> {
    let n = map.ids.len();
    ensure!(
        map.xy.nrows() == n && map.xy.ncols() == 2,
        "map: {n} ids for coordinates of shape {:?} (expected ({n}, 2))",
        map.xy.dim()
    );
    for c in &map.colourings {
        ensure!(
            c.values.len() == n,
            "map: colouring `{}` has {} values for {n} galaxies",
            c.name,
            c.values.len()
        );
    }
    sdss_io::atomic::write_bytes_atomic(dir.join(DATA_FILE), data_script(map).as_bytes())?;
    sdss_io::atomic::write_bytes_atomic(dir.join(PAGE_FILE), page_html(&map.title).as_bytes())?;
    Ok(())
}

const PAGE: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{TITLE}}</title>
<style>
html, body { margin: 0; height: 100%; overflow: hidden; }
body { font: 13px sans-serif; background: #15161a; color: #ddd; display: flex; flex-direction: column; }
header { padding: 6px 10px; display: flex; gap: 12px; align-items: center; flex-wrap: wrap; border-bottom: 1px solid #333; }
header a { color: #9cf; }
#wrap { position: relative; flex: 1; min-height: 200px; }
#map { position: absolute; left: 0; top: 0; cursor: crosshair; }
#map.dragging { cursor: grabbing; }
#legend { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
#legend .sw { display: inline-block; width: 10px; height: 10px; margin-right: 3px; vertical-align: middle; }
#tip { position: fixed; pointer-events: none; background: #000d; padding: 4px; border: 1px solid #555; display: none; z-index: 2; }
#tip img { display: block; width: 128px; height: 128px; margin-top: 3px; background: #222; }
.hint { color: #888; }
</style>
</head>
<body data-points="0">
<header><a href="index.html">&larr; report</a><b>{{TITLE}}</b>
<label>colour by <select id="colouring"></select></label>
<button id="reset" type="button">reset view</button>
<span id="legend"></span>
<span class="hint">wheel: zoom &middot; drag: pan &middot; hover: thumbnail &middot; click: open</span></header>
<div id="wrap"><canvas id="map"></canvas></div>
<div id="tip"><span id="tip-id"></span><img id="tip-img" alt=""></div>
<script src="{{DATA}}"></script>
<script>
(function () {
  "use strict";
  var D = window.SDSS_MAP;
  if (!D) { document.getElementById("legend").textContent = "map data (map_data.js) did not load"; return; }
  var n = D.n, i;
  var canvas = document.getElementById("map"), ctx = canvas.getContext("2d"), wrap = document.getElementById("wrap");
  var tip = document.getElementById("tip"), tipId = document.getElementById("tip-id"), tipImg = document.getElementById("tip-img");
  var select = document.getElementById("colouring"), legend = document.getElementById("legend");
  var params = new URLSearchParams(window.location.search), selftest = params.has("selftest");
  // Categorical colours (Tableau 20 reordered: strong colours first); grey is kept for noise.
  var PALETTE = [[31,119,180],[255,127,14],[44,160,44],[214,39,40],[148,103,189],[140,86,75],[227,119,194],[188,189,34],[23,190,207],
    [174,199,232],[255,187,120],[152,223,138],[255,152,150],[197,176,213],[196,156,148],[247,182,210],[219,219,141],[158,218,229],[57,59,121],[99,121,57]];
  var GREY = [95, 95, 100], PLAIN = [150, 190, 255], BG = [21, 22, 26];
  // Viridis, sampled at 9 stops.
  var RAMP = [[68,1,84],[71,45,123],[59,82,139],[44,114,142],[33,145,140],[40,174,128],[94,201,98],[173,220,48],[253,231,37]];

  // Coordinates as typed arrays; non-finite rows (null) are never drawn nor hit.
  var X = new Float64Array(n), Y = new Float64Array(n), ok = new Uint8Array(n);
  var minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
  for (i = 0; i < n; i++) {
    var x = D.x[i], y = D.y[i];
    if (x === null || y === null) continue;
    X[i] = x; Y[i] = y; ok[i] = 1;
    if (x < minX) minX = x; if (x > maxX) maxX = x; if (y < minY) minY = y; if (y > maxY) maxY = y;
  }
  if (!(minX <= maxX)) { minX = 0; maxX = 1; minY = 0; maxY = 1; }
  if (!(maxX > minX)) { minX -= 0.5; maxX += 0.5; }
  if (!(maxY > minY)) { minY -= 0.5; maxY += 0.5; }

  // Uniform grid over the data for hover hit-testing: cell of each point, points sorted by cell.
  var G = Math.max(1, Math.min(1024, Math.ceil(Math.sqrt(n / 2)))), cellStart = new Int32Array(G * G + 1), cellPts = new Int32Array(n);
  var gxOf = function (x) { return Math.min(G - 1, Math.max(0, Math.floor((x - minX) / (maxX - minX) * G))); };
  var gyOf = function (y) { return Math.min(G - 1, Math.max(0, Math.floor((y - minY) / (maxY - minY) * G))); };
  (function () {
    var cell = new Int32Array(n), k;
    for (k = 0; k < n; k++) if (ok[k]) { cell[k] = gyOf(Y[k]) * G + gxOf(X[k]); cellStart[cell[k] + 1]++; }
    for (k = 0; k < G * G; k++) cellStart[k + 1] += cellStart[k];
    var fill = cellStart.slice(0, G * G);
    for (k = 0; k < n; k++) if (ok[k]) cellPts[fill[cell[k]]++] = k;
  })();

  // View: screen = PAD + (data - min) * s + offset (y flipped); s = base scale * zoom.
  var PAD = 12, W = 0, H = 0, zoom = 1, ox = 0, oy = 0, img = null;
  function base() { return Math.min((W - 2 * PAD) / (maxX - minX), (H - 2 * PAD) / (maxY - minY)); }
  function sx(k) { return PAD + (X[k] - minX) * base() * zoom + ox; }
  function sy(k) { return H - PAD - (Y[k] - minY) * base() * zoom + oy; }

  var colours = new Uint8Array(n * 3), grey = new Uint8Array(n);
  function ramp(t) {
    var f = Math.max(0, Math.min(1, t)) * (RAMP.length - 1), k = Math.min(RAMP.length - 2, Math.floor(f)), u = f - k;
    return [0, 1, 2].map(function (c) { return Math.round(RAMP[k][c] + (RAMP[k + 1][c] - RAMP[k][c]) * u); });
  }
  function put(k, rgb) { colours[3 * k] = rgb[0]; colours[3 * k + 1] = rgb[1]; colours[3 * k + 2] = rgb[2]; }
  function swatch(rgb, text) {
    var s = document.createElement("span"), b = document.createElement("span");
    b.className = "sw"; b.style.background = "rgb(" + rgb.join(",") + ")";
    s.appendChild(b); s.appendChild(document.createTextNode(text)); legend.appendChild(s);
  }
  function colourBy(index) {
    var col = D.colourings[index], k, v, missing = 0;
    legend.textContent = "";
    if (!col) { for (k = 0; k < n; k++) { put(k, PLAIN); grey[k] = 0; } return; }
    v = col.values;
    if (col.kind === "labels") {
      var count = {};
      for (k = 0; k < n; k++) {
        if (v[k] < 0) { put(k, GREY); grey[k] = 1; missing++; }
        else { put(k, PALETTE[v[k] % PALETTE.length]); grey[k] = 0; count[v[k]] = (count[v[k]] || 0) + 1; }
      }
      var labels = Object.keys(count).map(Number).sort(function (a, b) { return count[b] - count[a] || a - b; });
      labels.slice(0, 12).forEach(function (l) { swatch(PALETTE[l % PALETTE.length], l + " (" + count[l] + ")"); });
      if (labels.length > 12) legend.appendChild(document.createTextNode("+" + (labels.length - 12) + " more"));
      if (missing) swatch(GREY, "noise (" + missing + ")");
      return;
    }
    // Numbers: colour limits at the 1st and 99th percentiles, so one extreme value does not wash
    // out the rest; values beyond are drawn at the ends of the ramp.
    var finite = [];
    for (k = 0; k < n; k++) if (v[k] !== null) finite.push(v[k]);
    finite.sort(function (a, b) { return a - b; });
    var lo = finite.length ? finite[Math.floor(0.01 * (finite.length - 1))] : 0;
    var hi = finite.length ? finite[Math.ceil(0.99 * (finite.length - 1))] : 1;
    for (k = 0; k < n; k++) {
      if (v[k] === null) { put(k, GREY); grey[k] = 1; missing++; }
      else { put(k, ramp(hi > lo ? (v[k] - lo) / (hi - lo) : 0.5)); grey[k] = 0; }
    }
    if (!finite.length) { legend.appendChild(document.createTextNode("no values")); }
    else {
      var bar = document.createElement("canvas"); bar.width = 120; bar.height = 10;
      var bctx = bar.getContext("2d");
      for (k = 0; k < 120; k++) { bctx.fillStyle = "rgb(" + ramp(k / 119).join(",") + ")"; bctx.fillRect(k, 0, 1, 10); }
      legend.appendChild(document.createTextNode(lo.toPrecision(4)));
      legend.appendChild(bar);
      legend.appendChild(document.createTextNode(hi.toPrecision(4) + " (1st\u201399th percentile)"));
    }
    if (missing) swatch(GREY, "missing (" + missing + ")");
  }

  // Draws every point as a small square into one ImageData; grey points first, coloured on top.
  function draw() {
    var t0 = performance.now();
    if (!img || img.width !== W || img.height !== H) img = ctx.createImageData(W, H);
    var px = img.data, k, pass, drawn = 0, s = base() * zoom, size = n > 50000 ? 2 : n > 5000 ? 3 : 4;
    size = Math.min(8, Math.max(size, Math.round(size * Math.sqrt(zoom))));
    var x0 = PAD - minX * s + ox, y0 = H - PAD + minY * s + oy, half = size >> 1;
    for (k = 0; k < px.length; k += 4) { px[k] = BG[0]; px[k + 1] = BG[1]; px[k + 2] = BG[2]; px[k + 3] = 255; }
    for (pass = 1; pass >= 0; pass--) {
      for (k = 0; k < n; k++) {
        if (!ok[k] || grey[k] !== pass) continue;
        var cx = Math.round(x0 + X[k] * s) - half, cy = Math.round(y0 - Y[k] * s) - half;
        if (cx + size <= 0 || cy + size <= 0 || cx >= W || cy >= H) continue;
        drawn++;
        var r = colours[3 * k], g = colours[3 * k + 1], b = colours[3 * k + 2];
        var xa = Math.max(0, cx), xb = Math.min(W, cx + size), ya = Math.max(0, cy), yb = Math.min(H, cy + size);
        for (var yy = ya; yy < yb; yy++) {
          for (var o = (yy * W + xa) * 4, e = (yy * W + xb) * 4; o < e; o += 4) { px[o] = r; px[o + 1] = g; px[o + 2] = b; }
        }
      }
    }
    ctx.putImageData(img, 0, 0);
    return { drawn: drawn, ms: performance.now() - t0 };
  }

  // The nearest drawn point within 8 pixels of (px, py), or -1.
  function nearest(px, py) {
    var s = base() * zoom, R = 8, best = -1, bestD = R * R;
    var dx = (px - PAD - ox) / s + minX, dy = (H - PAD - py + oy) / s + minY, rd = R / s;
    var gx0 = gxOf(dx - rd), gx1 = gxOf(dx + rd), gy0 = gyOf(dy - rd), gy1 = gyOf(dy + rd);
    for (var gy = gy0; gy <= gy1; gy++) for (var gx = gx0; gx <= gx1; gx++) {
      var c = gy * G + gx;
      for (var j = cellStart[c]; j < cellStart[c + 1]; j++) {
        var k = cellPts[j], ex = sx(k) - px, ey = sy(k) - py, d = ex * ex + ey * ey;
        if (d < bestD || (d === bestD && best >= 0 && k < best)) { bestD = d; best = k; }
      }
    }
    return best;
  }

  // Only relative and http(s)/file URLs are followed or loaded.
  function safe(url) { return !/^\s*[a-z][a-z0-9+.\-]*:/i.test(url) || /^\s*(https?|file):/i.test(url); }
  function hover(k, clientX, clientY) {
    if (k < 0) { tip.style.display = "none"; return; }
    tipId.textContent = D.ids[k];
    var src = D.thumbs[k];
    if (safe(src) && tipImg.getAttribute("src") !== src) tipImg.setAttribute("src", src);
    tip.style.left = Math.min(clientX + 14, window.innerWidth - 150) + "px";
    tip.style.top = Math.min(clientY + 14, window.innerHeight - 160) + "px";
    tip.style.display = "block";
    if (selftest) {
      document.body.setAttribute("data-hover-id", D.ids[k]);
      document.body.setAttribute("data-hover-thumb", tipImg.getAttribute("src") || "");
    }
  }

  function resize() {
    W = Math.max(200, wrap.clientWidth); H = Math.max(200, wrap.clientHeight);
    canvas.width = W; canvas.height = H;
  }
  D.colourings.forEach(function (c, k) { var o = document.createElement("option"); o.value = String(k); o.textContent = c.name; select.appendChild(o); });
  if (!D.colourings.length) select.disabled = true;
  select.addEventListener("change", function () { colourBy(+select.value); draw(); });
  document.getElementById("reset").addEventListener("click", function () { zoom = 1; ox = 0; oy = 0; draw(); });

  var down = null, moved = false, pending = false;
  function local(e) { var r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; }
  canvas.addEventListener("mousedown", function (e) { down = local(e); moved = false; });
  window.addEventListener("mouseup", function () { down = null; canvas.classList.remove("dragging"); });
  canvas.addEventListener("mousemove", function (e) {
    var p = local(e);
    if (down) {
      var ddx = p[0] - down[0], ddy = p[1] - down[1];
      if (moved || ddx * ddx + ddy * ddy > 9) {
        moved = true; canvas.classList.add("dragging"); tip.style.display = "none";
        ox += ddx; oy += ddy; down = p;
        if (!pending) { pending = true; requestAnimationFrame(function () { pending = false; draw(); }); }
        return;
      }
    }
    hover(nearest(p[0], p[1]), e.clientX, e.clientY);
  });
  canvas.addEventListener("mouseleave", function () { tip.style.display = "none"; });
  canvas.addEventListener("click", function (e) {
    if (moved) { moved = false; return; }
    var p = local(e), k = nearest(p[0], p[1]);
    if (k >= 0 && safe(D.pages[k])) window.location.href = D.pages[k];
  });
  canvas.addEventListener("wheel", function (e) {
    e.preventDefault();
    var p = local(e), f = Math.exp(-e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0015));
    f = Math.max(1 / (zoom * 2), Math.min(f, 2000 / zoom));
    // Keep the data point under the cursor where it is.
    ox = p[0] - PAD - (p[0] - PAD - ox) * f; oy = p[1] - (H - PAD) - (p[1] - (H - PAD) - oy) * f; zoom *= f;
    if (!pending) { pending = true; requestAnimationFrame(function () { pending = false; draw(); }); }
  }, { passive: false });
  window.addEventListener("resize", function () { resize(); draw(); });

  resize(); colourBy(0);
  var first = draw();
  if (selftest) {
    document.body.setAttribute("data-points", String(first.drawn));
    document.body.setAttribute("data-draw-ms", String(Math.round(first.ms)));
    var row = parseInt(params.get("row") || "0", 10);
    if (row >= 0 && row < n && ok[row]) {
      var r = canvas.getBoundingClientRect();
      var at = { clientX: r.left + sx(row), clientY: r.top + sy(row), bubbles: true, cancelable: true, view: window };
      canvas.dispatchEvent(new MouseEvent("mousemove", at));
      if (params.get("selftest") === "click") canvas.dispatchEvent(new MouseEvent("click", at));
    }
  } else {
    document.body.setAttribute("data-points", String(first.drawn));
  }
})();
</script>
</body>
</html>
"##;

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    const OBJID: &str = "1237648720693755918"; // > 2^53: a JavaScript number would round it.

    fn thumb(i: usize) -> String {
        format!("thumbs/{i}.jpg")
    }
    fn page(i: usize) -> String {
        format!("galaxy/{i}.html")
    }

    #[test]
    fn ids_are_strings_text_is_escaped_and_missing_numbers_are_null() {
        let ids = vec![
            OBJID.to_owned(),
            "a\"b\\c</script><img src=x onerror=alert(1)>\u{2028}\n".to_owned(),
            "3".to_owned(),
        ];
        let xy = Array2::from_shape_vec((3, 2), vec![0.0, 1.0, 2.5, -3.0, f32::NAN, 0.5]).unwrap();
        let numbers = [f64::NAN, 2.0, f64::INFINITY];
        let labels = [-1, 4, 0];
        let map = Map {
            ids: &ids,
            xy: xy.view(),
            colourings: vec![
                Colouring {
                    name: "clusters: \"k\"</script>".into(),
                    values: ColouringValues::Labels(&labels),
                },
                Colouring {
                    name: "mass".into(),
                    values: ColouringValues::Numbers(&numbers),
                },
            ],
            thumb: &thumb,
            page: &page,
            title: "t".into(),
        };
        let js = data_script(&map);
        assert!(js.starts_with("window.SDSS_MAP = {\"n\":3"), "{js}");
        assert!(
            js.contains(&format!("\"ids\":[\"{OBJID}\",")),
            "objid not a string: {js}"
        );
        assert!(!js.contains(&format!("[{OBJID}")) && !js.contains(&format!(",{OBJID}")));
        assert!(
            js.contains(r#""a\"b\\c<\/script><img src=x onerror=alert(1)>\u2028\n""#),
            "{js}"
        );
        assert!(!js.contains("</"), "{js}");
        assert!(!js.contains('\u{2028}'));
        assert!(
            js.contains(
                r#"{"name":"clusters: \"k\"<\/script>","kind":"labels","values":[-1,4,0]}"#
            ),
            "{js}"
        );
        assert!(
            js.contains(r#"{"name":"mass","kind":"numbers","values":[null,2.0,null]}"#),
            "{js}"
        );
        assert!(js.contains("\"x\":[0,2.5,null]"), "{js}");
        assert!(js.contains("\"y\":[1,-3,0.5]"), "{js}");
        assert!(js.contains(r#""thumbs":["thumbs/0.jpg","thumbs/1.jpg","thumbs/2.jpg"]"#));
        assert!(js.contains(r#""pages":["galaxy/0.html","galaxy/1.html","galaxy/2.html"]"#));
        // The whole file is one JSON object after the assignment.
        let json = js
            .trim_start_matches("window.SDSS_MAP = ")
            .trim_end()
            .trim_end_matches(';');
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["ids"][0], serde_json::Value::String(OBJID.into()));
        assert_eq!(v["ids"][1].as_str().unwrap(), ids[1]);
    }

    #[test]
    fn coordinates_keep_enough_decimals_for_their_span() {
        let xy = Array2::from_shape_vec((2, 2), vec![0.0, 0.0, 1e-3, 2e-3]).unwrap();
        assert_eq!(decimals_for(xy.view()), 8);
        assert_eq!(js_fixed(1.234_567_89e-4, 8), "0.00012346");
        assert_eq!(js_fixed(-0.000_001, 4), "0");
        assert_eq!(js_fixed(12.5, 4), "12.5");
        // serde_json writes `1e+300`; any exponent form is a valid JavaScript number literal.
        assert_eq!(js_number(1e300).parse::<f64>().unwrap(), 1e300);
        assert_eq!(js_number(f64::NAN), "null");
    }

    #[test]
    fn write_checks_lengths_and_escapes_the_title() {
        let dir = tempfile::tempdir().unwrap();
        let ids = vec!["1".to_owned(), "2".to_owned()];
        let xy = Array2::<f32>::zeros((2, 2));
        let short = [1i64];
        let bad = Map {
            ids: &ids,
            xy: xy.view(),
            colourings: vec![Colouring {
                name: "c".into(),
                values: ColouringValues::Labels(&short),
            }],
            thumb: &thumb,
            page: &page,
            title: String::new(),
        };
        let e = write(dir.path(), &bad).unwrap_err().to_string();
        assert!(
            e.contains("colouring `c` has 1 values for 2 galaxies"),
            "{e}"
        );
        let wrong_shape = Array2::<f32>::zeros((3, 2));
        let e = write(
            dir.path(),
            &Map {
                xy: wrong_shape.view(),
                colourings: vec![],
                ..bad
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("2 ids for coordinates of shape (3, 2)"), "{e}");

        let ok = Map {
            ids: &ids,
            xy: xy.view(),
            colourings: vec![],
            thumb: &thumb,
            page: &page,
            title: "<b>M&M's \"map\"</b>".into(),
        };
        write(dir.path(), &ok).unwrap();
        let html = std::fs::read_to_string(dir.path().join(PAGE_FILE)).unwrap();
        assert!(html.contains("<title>&lt;b&gt;M&amp;M's &quot;map&quot;&lt;/b&gt;</title>"));
        assert!(!html.contains("<b>M&M"));
        assert!(html.contains("<script src=\"map_data.js\"></script>"));
        assert!(dir.path().join(DATA_FILE).is_file());
    }

    /// Headless Chromium with the flags of `tests/browser.rs`; returns the dumped DOM.
    fn chromium_dom(url: &str) -> String {
        let profile = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("chromium")
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
                "--window-size=1200,900",
                "--virtual-time-budget=10000",
                &format!("--user-data-dir={}", profile.path().display()),
                "--dump-dom",
                url,
            ])
            .output()
            .expect("chromium runs (apt-get install chromium)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn attr<'d>(dom: &'d str, name: &str) -> Option<&'d str> {
        dom.split(&format!("{name}=\"")).nth(1)?.split('"').next()
    }

    /// Measured on this project's 2-core CI machine (headless Chromium, software canvas,
    /// 1200×900 window): 100,000 points draw in about 30–60 ms; the bound leaves room for a
    /// loaded machine.
    const DRAW_MS_BOUND: f64 = 5000.0;

    #[test]
    #[ignore = "needs chromium"]
    fn draws_100000_points_hover_shows_the_thumbnail_and_click_navigates() {
        let n = 100_000;
        let target = 99_000; // On the outer turns, ~3 px from its neighbours.
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<String> = (0..n)
            .map(|i| (1_237_648_720_693_755_918u64 + i as u64).to_string())
            .collect();
        // Distinct points on a spiral: dense inside, about 3 px apart on the outer turns.
        let xy = Array2::from_shape_fn((n, 2), |(i, j)| {
            let t = i as f32 * 0.001;
            let r = 1.0 + t;
            if j == 0 {
                r * (t * 7.0).cos()
            } else {
                r * (t * 7.0).sin()
            }
        });
        let labels: Vec<i64> = (0..n).map(|i| (i % 13) as i64 - 1).collect();
        let numbers: Vec<f64> = (0..n)
            .map(|i| if i % 7 == 0 { f64::NAN } else { i as f64 })
            .collect();
        std::fs::create_dir_all(dir.path().join("thumbs")).unwrap();
        std::fs::create_dir_all(dir.path().join("galaxy")).unwrap();
        // A few tiny thumbnails (1×1 GIF); the page asks only for the hovered one.
        let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";
        for i in [0, 1, target] {
            std::fs::write(dir.path().join(thumb(i)), gif).unwrap();
        }
        std::fs::write(
            dir.path().join(page(target)),
            format!("<!DOCTYPE html><html><body id=\"galaxy-page\" data-row=\"{target}\">galaxy {target}</body></html>"),
        )
        .unwrap();
        let map = Map {
            ids: &ids,
            xy: xy.view(),
            colourings: vec![
                Colouring {
                    name: "clusters: kmeans".into(),
                    values: ColouringValues::Labels(&labels),
                },
                Colouring {
                    name: "score".into(),
                    values: ColouringValues::Numbers(&numbers),
                },
            ],
            thumb: &thumb,
            page: &page,
            title: "map of 100,000 galaxies".into(),
        };
        write(dir.path(), &map).unwrap();
        let url = format!("file://{}", dir.path().join(PAGE_FILE).display());

        let dom = chromium_dom(&format!("{url}?selftest&row={target}"));
        let head = &dom[..dom.len().min(1500)];
        assert_eq!(attr(&dom, "data-points"), Some("100000"), "{head}");
        let ms: f64 = attr(&dom, "data-draw-ms")
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no draw time: {head}"));
        eprintln!("100,000 points drawn in {ms} ms");
        assert!(ms < DRAW_MS_BOUND, "draw took {ms} ms");
        assert_eq!(
            attr(&dom, "data-hover-id"),
            Some(ids[target].as_str()),
            "{head}"
        );
        assert_eq!(
            attr(&dom, "data-hover-thumb"),
            Some(thumb(target).as_str()),
            "{head}"
        );

        let dom = chromium_dom(&format!("{url}?selftest=click&row={target}"));
        assert!(
            dom.contains("id=\"galaxy-page\"") && dom.contains(&format!("galaxy {target}")),
            "click did not open the galaxy page:\n{}",
            &dom[..dom.len().min(1500)]
        );
    }
}
