//! `index.html`: every figure and gallery of a run on one page, readable offline in any browser.

use std::fmt::Write as _;

/// One cluster's gallery.
pub struct ClusterEntry {
    /// Cluster label.
    pub label: i64,
    /// Galaxies in it.
    pub size: usize,
    /// Grid image, relative to the output folder.
    pub image: String,
    /// Galaxy id of the exemplar (affinity propagation), shown first in the grid.
    pub exemplar: Option<String>,
    /// Page listing every member, each linking to its nearest neighbours (relative path).
    pub browse: Option<String>,
}

/// One method's section.
pub struct MethodSection {
    /// File-name slug, e.g. `kmeans`.
    pub slug: String,
    /// The spec used, e.g. `kmeans:k=10,seed=0`.
    pub spec: String,
    /// Summary lines (clusters, iterations, convergence, ...).
    pub facts: Vec<(String, String)>,
    /// Cluster-size plot, relative path.
    pub sizes_plot: String,
    /// Dendrogram, relative path, for agglomerative methods.
    pub dendrogram: Option<String>,
    /// Labels file, relative path.
    pub labels_file: String,
    /// Galleries.
    pub clusters: Vec<ClusterEntry>,
    /// Page of catalogue properties per cluster (`--property`), relative path.
    pub properties: Option<String>,
}

/// The whole page.
pub struct Page {
    /// Title line.
    pub title: String,
    /// Facts about the run (input, features, PCA).
    pub facts: Vec<(String, String)>,
    /// PCA variance plot, relative path.
    pub pca_plot: String,
    /// Method sections.
    pub methods: Vec<MethodSection>,
    /// Page of the first galaxy, where browsing by nearest neighbour starts (relative path).
    pub first_galaxy: Option<String>,
    /// Further pages and files for the navigation bar: `(text, relative path)`.
    pub links: Vec<(String, String)>,
    /// Galleries of the most unusual galaxies: `(heading, image)`.
    pub unusual: Vec<(String, String)>,
}

/// Escapes text for HTML element content and attribute values.
pub fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn facts_table(out: &mut String, facts: &[(String, String)]) {
    out.push_str("<table class=\"facts\">\n");
    for (k, v) in facts {
        let value = if v.starts_with("https://") && !v.contains(char::is_whitespace) {
            format!("<a href=\"{0}\">{0}</a>", esc(v))
        } else {
            esc(v)
        };
        let _ = writeln!(out, "<tr><th>{}</th><td>{value}</td></tr>", esc(k));
    }
    out.push_str("</table>\n");
}

/// Renders the page. A small script counts images that fail to load and shows a warning, so a broken
/// link is visible to the reader (and to the browser test, through `data-broken-images`).
pub fn render(page: &Page) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 0 auto; max-width: 1200px; padding: 1em; background: #fafafa; color: #222; }}
h1 {{ font-size: 1.5em; }} h2 {{ border-bottom: 1px solid #ccc; padding-top: 0.5em; }}
table.facts th {{ text-align: left; padding-right: 1em; font-weight: normal; color: #555; }}
img {{ max-width: 100%; }}
nav a {{ margin-right: 1em; }}
.clusters {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(280px, 1fr)); gap: 12px; }}
.cluster {{ background: #fff; border: 1px solid #ddd; padding: 6px; }}
.cluster p {{ margin: 0.2em 0; font-size: 0.9em; }}
#broken {{ display: none; background: #fdd; padding: 0.5em; }}
</style>
</head>
<body data-broken-images="unknown">
<h1>{title}</h1>
<p id="broken"></p>
<nav><a href="#pca">PCA</a>"##,
        title = esc(&page.title)
    );
    for m in &page.methods {
        let _ = write!(out, r##"<a href="#{0}">{0}</a>"##, esc(&m.slug));
    }
    if let Some(first) = &page.first_galaxy {
        let _ = write!(out, "<a href=\"{}\">browse by neighbour</a>", esc(first));
    }
    for (text, href) in &page.links {
        let _ = write!(out, "<a href=\"{}\">{}</a>", esc(href), esc(text));
    }
    out.push_str("<a href=\"labels.csv\">labels.csv</a><a href=\"metrics.json\">metrics.json</a><a href=\"config.toml\">config.toml</a></nav>\n");
    facts_table(&mut out, &page.facts);
    let _ = writeln!(
        out,
        "<h2 id=\"pca\">PCA</h2>\n<img src=\"{}\" alt=\"PCA explained variance\">",
        esc(&page.pca_plot)
    );
    for m in &page.methods {
        let _ = writeln!(
            out,
            "<h2 id=\"{slug}\">{slug}</h2>\n<p><code>{spec}</code> &middot; <a href=\"{labels}\">{labels}</a></p>",
            slug = esc(&m.slug),
            spec = esc(&m.spec),
            labels = esc(&m.labels_file)
        );
        facts_table(&mut out, &m.facts);
        if let Some(p) = &m.properties {
            let _ = writeln!(
                out,
                "<p><a href=\"{}\">catalogue properties per cluster</a></p>",
                esc(p)
            );
        }
        let _ = writeln!(
            out,
            "<img src=\"{}\" alt=\"cluster sizes\">",
            esc(&m.sizes_plot)
        );
        if let Some(d) = &m.dendrogram {
            let _ = writeln!(
                out,
                "<h3>Dendrogram</h3>\n<img src=\"{}\" alt=\"dendrogram\">",
                esc(d)
            );
        }
        out.push_str("<h3>Clusters</h3>\n<div class=\"clusters\">\n");
        for c in &m.clusters {
            let name = if c.label < 0 {
                "noise".to_owned()
            } else {
                format!("cluster {}", c.label)
            };
            let exemplar = c
                .exemplar
                .as_ref()
                .map(|e| format!(" &middot; exemplar {}", esc(e)))
                .unwrap_or_default();
            let browse = c
                .browse
                .as_ref()
                .map(|b| {
                    format!(
                        " &middot; <a href=\"{}\">members and neighbours</a>",
                        esc(b)
                    )
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "<div class=\"cluster\" id=\"{slug}-{label}\"><p><b>{name}</b> &middot; {size} galaxies{exemplar}{browse}</p><a href=\"{img}\"><img src=\"{img}\" alt=\"{name}\"></a></div>",
                slug = esc(&m.slug),
                label = c.label,
                size = c.size,
                img = esc(&c.image)
            );
        }
        out.push_str("</div>\n");
    }
    if !page.unusual.is_empty() {
        out.push_str("<h2 id=\"unusual\">The most unusual galaxies</h2>\n");
        for (heading, image) in &page.unusual {
            let _ = writeln!(
                out,
                "<h3>{}</h3>\n<img src=\"{}\" alt=\"{}\">",
                esc(heading),
                esc(image),
                esc(heading)
            );
        }
    }
    out.push_str(
        r#"<script>
// Count images that fail to load so that a broken report is obvious.
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !i.complete || i.naturalWidth === 0; });
  document.body.setAttribute("data-broken-images", String(broken.length));
  document.body.setAttribute("data-images", String(imgs.length));
  if (broken.length > 0) {
    var p = document.getElementById("broken");
    p.textContent = broken.length + " image(s) failed to load: " + broken.map(function (i) { return i.getAttribute("src"); }).join(", ");
    p.style.display = "block";
  }
});
</script>
</body>
</html>
"#,
    );
    out
}
