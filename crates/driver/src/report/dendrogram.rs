//! A dendrogram of an agglomerative clustering, truncated as SciPy's `truncate_mode='level'`: only the
//! top `p` levels of merges below the root are drawn, each deeper branch becoming one leaf labelled with
//! its galaxy count, and an example galaxy is shown under every leaf.

use std::path::Path;

use anyhow::{anyhow, Result};
use ndarray::{Array3, ArrayView2};
use plotters::prelude::*;

use super::draw::{register_font, Canvas, FONT};

/// Merge levels shown below the root (at most 2^(p+1) leaves).
pub const DEFAULT_LEVELS: usize = 4;

/// A leaf of the truncated tree.
#[derive(Debug, Clone, PartialEq)]
pub struct TruncatedLeaf {
    /// Position along the x axis (5, 15, 25, ... as SciPy places leaves).
    pub x: f64,
    /// The original observations under this leaf.
    pub members: Vec<usize>,
}

/// The drawable truncated tree.
#[derive(Debug, Clone, PartialEq)]
pub struct TruncatedTree {
    /// One ∩-shaped link per drawn merge: (x, y) of its four corners, left foot first.
    pub links: Vec<[(f64, f64); 4]>,
    /// Leaves from left to right.
    pub leaves: Vec<TruncatedLeaf>,
    /// Height of the root merge.
    pub max_height: f64,
}

/// Lays out the top `levels` levels of a SciPy-format linkage matrix ((n−1) × 4).
pub fn truncate(linkage: ArrayView2<'_, f64>, levels: usize) -> TruncatedTree {
    let n = linkage.nrows() + 1;
    let mut tree = TruncatedTree {
        links: Vec::new(),
        leaves: Vec::new(),
        max_height: 0.0,
    };
    if n == 1 {
        tree.leaves.push(TruncatedLeaf {
            x: 5.0,
            members: vec![0],
        });
        return tree;
    }
    let root = 2 * n - 2;
    tree.max_height = linkage[[n - 2, 2]];
    // Recursion depth is bounded by `levels`, so even a chain-like single-linkage tree is safe.
    fn visit(
        z: ArrayView2<'_, f64>,
        n: usize,
        node: usize,
        level: usize,
        levels: usize,
        tree: &mut TruncatedTree,
    ) -> (f64, f64) {
        // SciPy tests `i > n`, not `i >= n`, so the first merge (node n) is never truncated; keep that
        // quirk so the picture is the one SciPy draws.
        if node < n || (node > n && level > levels) {
            let x = 5.0 + 10.0 * tree.leaves.len() as f64;
            tree.leaves.push(TruncatedLeaf {
                x,
                members: members(z, n, node),
            });
            return (x, 0.0);
        }
        let row = node - n;
        let (left, right) = (z[[row, 0]] as usize, z[[row, 1]] as usize);
        let (xl, hl) = visit(z, n, left, level + 1, levels, tree);
        let (xr, hr) = visit(z, n, right, level + 1, levels, tree);
        let h = z[[row, 2]];
        tree.links.push([(xl, hl), (xl, h), (xr, h), (xr, hr)]);
        ((xl + xr) / 2.0, h)
    }
    visit(linkage, n, root, 0, levels, &mut tree);
    tree
}

/// The original observations below `node`, without recursion.
fn members(z: ArrayView2<'_, f64>, n: usize, node: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut stack = vec![node];
    while let Some(v) = stack.pop() {
        if v < n {
            out.push(v);
        } else {
            let row = v - n;
            stack.push(z[[row, 1]] as usize);
            stack.push(z[[row, 0]] as usize);
        }
    }
    out
}

/// Draws `tree` with `examples[i]` (an (H, W, 3) image) under leaf `i`; `leaf_label(i)` is the text
/// above it (a galaxy id for single galaxies, the count in parentheses otherwise, as SciPy does).
pub fn draw(
    path: &Path,
    tree: &TruncatedTree,
    examples: &[Array3<f32>],
    leaf_label: impl Fn(usize) -> String,
    title: &str,
) -> Result<()> {
    register_font();
    let spacing = 92u32;
    let leaves = tree.leaves.len().max(1) as u32;
    let (w, chart_h, strip) = ((80 + leaves * spacing).max(700), 460u32, 130u32);
    let h = chart_h + strip;
    let mut canvas = Canvas::new(w, h, [255, 255, 255]);
    let err = |e: &dyn std::fmt::Display| anyhow!("cannot draw {}: {e}", path.display());
    let mut anchors = Vec::new();
    {
        let root = BitMapBackend::with_buffer(&mut canvas.pixels, (w, h)).into_drawing_area();
        let (top, bottom) = root.split_vertically(chart_h);
        let x_max = 10.0 * leaves as f64;
        let y_max = if tree.max_height > 0.0 {
            tree.max_height * 1.05
        } else {
            1.0
        };
        let mut chart = ChartBuilder::on(&top)
            .caption(title, (FONT, 22))
            .margin(14)
            .y_label_area_size(70)
            .x_label_area_size(4)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .disable_x_axis()
            .y_desc("merge distance")
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .draw()
            .map_err(|e| err(&e))?;
        chart
            .draw_series(
                tree.links
                    .iter()
                    .map(|l| PathElement::new(l.to_vec(), RGBColor(40, 70, 140).stroke_width(2))),
            )
            .map_err(|e| err(&e))?;
        for (i, leaf) in tree.leaves.iter().enumerate() {
            let (px, _) = chart.backend_coord(&(leaf.x, 0.0));
            anchors.push(px);
            let label = leaf_label(i);
            let style = (FONT, 13).into_font().color(&BLACK);
            let (tw, _) = bottom.estimate_text_size(&label, &style).unwrap_or((0, 0));
            bottom
                .draw_text(&label, &style, (px - tw as i32 / 2, 4))
                .map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    for (px, image) in anchors.iter().zip(examples) {
        let (th, tw, _) = image.dim();
        canvas.blit(
            image.view(),
            *px as i64 - tw as i64 / 2,
            chart_h as i64 + 24,
            1,
        );
        let _ = th;
    }
    canvas.save_png(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// SciPy: linkage of 4 points 0, 1, 5, 6 (single): merges (0,1), (2,3), (4,5).
    fn small() -> ndarray::Array2<f64> {
        array![
            [0.0, 1.0, 1.0, 2.0],
            [2.0, 3.0, 1.0, 2.0],
            [4.0, 5.0, 4.0, 4.0]
        ]
    }

    #[test]
    fn full_tree_has_every_observation_as_a_leaf() {
        let t = truncate(small().view(), 10);
        let order: Vec<Vec<usize>> = t.leaves.iter().map(|l| l.members.clone()).collect();
        assert_eq!(order, vec![vec![0], vec![1], vec![2], vec![3]]);
        assert_eq!(t.links.len(), 3);
        // The root link spans the two inner links' midpoints at the root height.
        assert!(t
            .links
            .contains(&[(10.0, 1.0), (10.0, 4.0), (30.0, 4.0), (30.0, 1.0)]));
    }

    #[test]
    fn matches_scipy_truncate_mode_level() {
        // scipy.cluster.hierarchy: linkage(X, 'ward') of 12 points (numpy default_rng(1).normal((12, 2))),
        // then dendrogram(Z, truncate_mode='level', p=2): ivl ['1','8','10','(2)','2','11','(2)','(3)'].
        let z = ndarray::Array2::from_shape_vec(
            (11, 4),
            vec![
                8.0,
                10.0,
                0.03579586429648246,
                2.0,
                3.0,
                7.0,
                0.0576285077484147,
                2.0,
                6.0,
                9.0,
                0.10466733464510077,
                2.0,
                0.0,
                5.0,
                0.4197196067458742,
                2.0,
                4.0,
                15.0,
                0.49484894389206757,
                3.0,
                2.0,
                11.0,
                0.681971922471573,
                2.0,
                12.0,
                14.0,
                1.1124203158645107,
                4.0,
                13.0,
                16.0,
                1.172085595327918,
                5.0,
                1.0,
                18.0,
                1.6013357864257243,
                5.0,
                17.0,
                19.0,
                1.9718574750541473,
                7.0,
                20.0,
                21.0,
                2.8589025774469556,
                12.0,
            ],
        )
        .unwrap();
        let t = truncate(z.view(), 2);
        let members: Vec<Vec<usize>> = t.leaves.iter().map(|l| l.members.clone()).collect();
        assert_eq!(
            members,
            vec![
                vec![1],
                vec![8],
                vec![10],
                vec![6, 9],
                vec![2],
                vec![11],
                vec![3, 7],
                vec![4, 0, 5]
            ]
        );
        let icoord: Vec<[f64; 4]> = t
            .links
            .iter()
            .map(|l| [l[0].0, l[1].0, l[2].0, l[3].0])
            .collect();
        assert_eq!(
            icoord,
            vec![
                [15.0, 15.0, 25.0, 25.0],
                [20.0, 20.0, 35.0, 35.0],
                [5.0, 5.0, 27.5, 27.5],
                [45.0, 45.0, 55.0, 55.0],
                [65.0, 65.0, 75.0, 75.0],
                [50.0, 50.0, 70.0, 70.0],
                [16.25, 16.25, 60.0, 60.0]
            ]
        );
        assert_eq!(t.links[6][1].1, 2.8589025774469556);
        assert_eq!(t.links[1][3].1, 0.0);
        assert_eq!(t.links[1][0].1, 0.03579586429648246);
    }
}
