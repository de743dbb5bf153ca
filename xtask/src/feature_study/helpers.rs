//! Pure helpers of the feature-quality study: the exact pixel permutations of the rotated copies,
//! duplicate groups, leave-one-out k-NN voting, a closed-form ridge regression with its R², seeded
//! index choices and a UTC date. Each is small and unit-tested below.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// An exact pixel permutation of an image: how a galaxy would look turned on the sky (or mirrored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// 90° counter-clockwise (numpy's `np.rot90(image)`).
    Rot90,
    /// 180°.
    Rot180,
    /// 270° counter-clockwise (90° clockwise).
    Rot270,
    /// Mirror left to right (numpy's `np.fliplr(image)`).
    FlipH,
}

impl Turn {
    /// All four, in the order the copies are made.
    pub const ALL: [Turn; 4] = [Turn::Rot90, Turn::Rot180, Turn::Rot270, Turn::FlipH];

    /// Short name for tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Turn::Rot90 => "rot90",
            Turn::Rot180 => "rot180",
            Turn::Rot270 => "rot270",
            Turn::FlipH => "flip",
        }
    }
}

/// `src`, a row-major `h × w × c` image (channels last), turned by `turn`. Rotations by 90° and
/// 270° give a `w × h × c` image; every output value is one input value (no interpolation).
pub fn turn_image<T: Copy>(src: &[T], h: usize, w: usize, c: usize, turn: Turn) -> Vec<T> {
    assert_eq!(src.len(), h * w * c, "image of the wrong size");
    let (oh, ow) = match turn {
        Turn::Rot90 | Turn::Rot270 => (w, h),
        Turn::Rot180 | Turn::FlipH => (h, w),
    };
    let mut out = Vec::with_capacity(src.len());
    for i in 0..oh {
        for j in 0..ow {
            // (row, column) of the input pixel that lands at output (i, j).
            let (r, col) = match turn {
                Turn::Rot90 => (j, w - 1 - i),
                Turn::Rot180 => (h - 1 - i, w - 1 - j),
                Turn::Rot270 => (h - 1 - j, i),
                Turn::FlipH => (i, w - 1 - j),
            };
            let at = (r * w + col) * c;
            out.extend_from_slice(&src[at..at + c]);
        }
    }
    out
}

/// For each of `n` rows, the id of its duplicate group: the smallest row of its group in `groups`
/// (as [`sdss_neighbors::duplicates`] returns them), or the row itself when it has no duplicate.
pub fn group_ids(n: usize, groups: &[Vec<usize>]) -> Vec<usize> {
    let mut id: Vec<usize> = (0..n).collect();
    for g in groups {
        if let Some(&first) = g.iter().min() {
            for &i in g {
                id[i] = first;
            }
        }
    }
    id
}

/// Majority class among the neighbours of one row, `neighbours` nearest first: the class with the
/// most votes, ties going to the tied class whose first neighbour is nearest.
pub fn vote(neighbour_labels: impl IntoIterator<Item = usize>) -> Option<usize> {
    // (votes, position of its first vote) per class.
    let mut tally: Vec<(usize, usize)> = Vec::new();
    for (pos, l) in neighbour_labels.into_iter().enumerate() {
        if tally.len() <= l {
            tally.resize(l + 1, (0, usize::MAX));
        }
        let t = &mut tally[l];
        t.0 += 1;
        t.1 = t.1.min(pos);
    }
    tally
        .iter()
        .enumerate()
        .filter(|(_, t)| t.0 > 0)
        .max_by(|(_, a), (_, b)| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
        .map(|(l, _)| l)
}

/// Leave-one-out k-NN class accuracy: row `i` of `neighbours` lists the rows nearest to galaxy `i`
/// (itself excluded, nearest first); the prediction is their [`vote`].
pub fn knn_accuracy(neighbours: &ndarray::Array2<usize>, labels: &[usize]) -> f64 {
    let n = neighbours.nrows();
    if n == 0 {
        return f64::NAN;
    }
    let hits = neighbours
        .outer_iter()
        .enumerate()
        .filter(|(i, row)| vote(row.iter().map(|&j| labels[j])) == Some(labels[*i]))
        .count();
    hits as f64 / n as f64
}

/// A ridge regression fitted on standardised features (the means and standard deviations of the
/// training rows), with an unpenalised intercept.
#[derive(Debug, Clone)]
pub struct Ridge {
    mean: Vec<f64>,
    scale: Vec<f64>,
    coef: Vec<f64>,
    intercept: f64,
}

impl Ridge {
    /// Fits `y ≈ intercept + standardised(x) · coef` minimising `|y − ŷ|² + alpha |coef|²` in closed form
    /// (`(ZᵀZ + αI) coef = Zᵀ(y − ȳ)` by Cholesky). `x` is `n × d` row-major.
    pub fn fit(x: &[f64], d: usize, y: &[f64], alpha: f64) -> Result<Ridge, String> {
        let n = y.len();
        if n == 0 || d == 0 || x.len() != n * d {
            return Err(format!(
                "ridge: {} values are not {n} rows of {d} features",
                x.len()
            ));
        }
        if !(alpha > 0.0 && alpha.is_finite()) {
            return Err(format!("ridge: alpha must be positive, not {alpha}"));
        }
        let mut mean = vec![0.0; d];
        for row in x.chunks_exact(d) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut scale = vec![0.0; d];
        for row in x.chunks_exact(d) {
            for ((s, v), m) in scale.iter_mut().zip(row).zip(&mean) {
                *s += (v - m) * (v - m);
            }
        }
        for s in &mut scale {
            let sd = (*s / n as f64).sqrt();
            // A constant feature carries nothing; leave it unscaled (it is all zeros once centred).
            *s = if sd > 1e-12 { sd } else { 1.0 };
        }
        let y_mean = y.iter().sum::<f64>() / n as f64;
        let mut gram = vec![0.0; d * d];
        let mut rhs = vec![0.0; d];
        let mut z = vec![0.0; d];
        for (row, &yi) in x.chunks_exact(d).zip(y) {
            for k in 0..d {
                z[k] = (row[k] - mean[k]) / scale[k];
            }
            for a in 0..d {
                rhs[a] += z[a] * (yi - y_mean);
                for b in 0..=a {
                    gram[a * d + b] += z[a] * z[b];
                }
            }
        }
        for a in 0..d {
            gram[a * d + a] += alpha;
            for b in 0..a {
                gram[b * d + a] = gram[a * d + b];
            }
        }
        let coef = cholesky_solve(&mut gram, d, &rhs)?;
        Ok(Ridge {
            mean,
            scale,
            coef,
            intercept: y_mean,
        })
    }

    /// Predictions for the rows of `x` (`n × d`, row-major).
    pub fn predict(&self, x: &[f64]) -> Vec<f64> {
        let d = self.coef.len();
        x.chunks_exact(d)
            .map(|row| {
                self.intercept
                    + (0..d)
                        .map(|k| (row[k] - self.mean[k]) / self.scale[k] * self.coef[k])
                        .sum::<f64>()
            })
            .collect()
    }
}

/// Solves `A x = b` for a symmetric positive definite `A` (`d × d`, row-major, overwritten by its
/// Cholesky factor).
fn cholesky_solve(a: &mut [f64], d: usize, b: &[f64]) -> Result<Vec<f64>, String> {
    for j in 0..d {
        let mut s = a[j * d + j];
        for k in 0..j {
            s -= a[j * d + k] * a[j * d + k];
        }
        if s.is_nan() || s <= 0.0 {
            return Err("ridge: the regularised Gram matrix is not positive definite".into());
        }
        let l = s.sqrt();
        a[j * d + j] = l;
        for i in j + 1..d {
            let mut s = a[i * d + j];
            for k in 0..j {
                s -= a[i * d + k] * a[j * d + k];
            }
            a[i * d + j] = s / l;
        }
    }
    let mut y = b.to_vec();
    for i in 0..d {
        for k in 0..i {
            y[i] -= a[i * d + k] * y[k];
        }
        y[i] /= a[i * d + i];
    }
    for i in (0..d).rev() {
        for k in i + 1..d {
            y[i] -= a[k * d + i] * y[k];
        }
        y[i] /= a[i * d + i];
    }
    Ok(y)
}

/// Coefficient of determination `1 − SS_res / SS_tot` of `pred` against `truth` (about the truth's own
/// mean; NaN when the truth is constant).
pub fn r2_score(truth: &[f64], pred: &[f64]) -> f64 {
    let n = truth.len() as f64;
    let mean = truth.iter().sum::<f64>() / n;
    let ss_tot: f64 = truth.iter().map(|t| (t - mean) * (t - mean)).sum();
    let ss_res: f64 = truth.iter().zip(pred).map(|(t, p)| (t - p) * (t - p)).sum();
    if ss_tot > 0.0 {
        1.0 - ss_res / ss_tot
    } else {
        f64::NAN
    }
}

/// The ridge penalties tried by [`ridge_cv`].
pub const ALPHA_GRID: [f64; 7] = [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0];

/// The penalty of [`ALPHA_GRID`] with the best mean R² over `folds`-fold cross-validation on the given
/// rows (seeded folds; ties to the smaller penalty).
pub fn ridge_cv(x: &[f64], d: usize, y: &[f64], folds: usize, seed: u64) -> Result<f64, String> {
    let n = y.len();
    let folds = folds.clamp(2, n.max(2));
    let order = shuffled(n, seed);
    let mut best = (f64::NEG_INFINITY, ALPHA_GRID[3]);
    for &alpha in &ALPHA_GRID {
        let mut total = 0.0;
        for f in 0..folds {
            let (mut xt, mut yt, mut xv, mut yv) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (pos, &i) in order.iter().enumerate() {
                let row = &x[i * d..(i + 1) * d];
                if pos % folds == f {
                    xv.extend_from_slice(row);
                    yv.push(y[i]);
                } else {
                    xt.extend_from_slice(row);
                    yt.push(y[i]);
                }
            }
            let model = Ridge::fit(&xt, d, &yt, alpha)?;
            total += r2_score(&yv, &model.predict(&xv));
        }
        let score = total / folds as f64;
        if score > best.0 {
            best = (score, alpha);
        }
    }
    Ok(best.1)
}

/// `0..n` in a seeded random order.
pub fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    order
}

/// `m` of `0..n` chosen at random (seeded), in ascending order.
pub fn choose_sorted(n: usize, m: usize, seed: u64) -> Vec<usize> {
    let mut pick: Vec<usize> = shuffled(n, seed).into_iter().take(m.min(n)).collect();
    pick.sort_unstable();
    pick
}

/// Pairs of positions `(pa, pb)` with `a[pa] == b[pb]`, for two ascending index lists.
pub fn common_positions(a: &[usize], b: &[usize]) -> Vec<(usize, usize)> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push((i, j));
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// A 64-bit mix of a seed and a tag (SplitMix64's finaliser), so that every stream of the study is
/// derived from `--seed` yet distinct.
pub fn mix(seed: u64, tag: u64) -> u64 {
    let mut z = seed ^ tag.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The UTC calendar date and time of `secs` seconds after the Unix epoch, as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `h × w × c` image whose values are their own positions `0, 1, 2, …` in the buffer.
    fn tagged(h: usize, w: usize, c: usize) -> Vec<usize> {
        (0..h * w * c).collect()
    }

    #[test]
    fn rot90_matches_numpy_on_a_small_matrix() {
        // np.rot90([[1, 2], [3, 4]]) == [[2, 4], [1, 3]]; np.fliplr == [[2, 1], [4, 3]].
        let m = [1, 2, 3, 4];
        assert_eq!(turn_image(&m, 2, 2, 1, Turn::Rot90), [2, 4, 1, 3]);
        assert_eq!(turn_image(&m, 2, 2, 1, Turn::Rot180), [4, 3, 2, 1]);
        assert_eq!(turn_image(&m, 2, 2, 1, Turn::Rot270), [3, 1, 4, 2]);
        assert_eq!(turn_image(&m, 2, 2, 1, Turn::FlipH), [2, 1, 4, 3]);
        // A 2×3 matrix: np.rot90([[1, 2, 3], [4, 5, 6]]) == [[3, 6], [2, 5], [1, 4]].
        let r = [1, 2, 3, 4, 5, 6];
        assert_eq!(turn_image(&r, 2, 3, 1, Turn::Rot90), [3, 6, 2, 5, 1, 4]);
    }

    #[test]
    fn turns_are_permutations_that_compose_as_rotations() {
        let (h, w, c) = (5, 5, 3);
        let img = tagged(h, w, c);
        for t in Turn::ALL {
            let mut out = turn_image(&img, h, w, c, t);
            assert_ne!(out, img, "{t:?} moves pixels");
            // Channels stay together: each pixel's 3 values are consecutive and in order.
            for px in out.chunks_exact(3) {
                assert_eq!((px[0] % 3, px[1], px[2]), (0, px[0] + 1, px[0] + 2));
            }
            out.sort_unstable();
            assert_eq!(out, img, "{t:?} is a permutation");
        }
        let r90 = |x: &[usize]| turn_image(x, h, w, c, Turn::Rot90);
        assert_eq!(r90(&r90(&img)), turn_image(&img, h, w, c, Turn::Rot180));
        assert_eq!(
            r90(&r90(&r90(&img))),
            turn_image(&img, h, w, c, Turn::Rot270)
        );
        assert_eq!(r90(&r90(&r90(&r90(&img)))), img);
        let flip = turn_image(&img, h, w, c, Turn::FlipH);
        assert_eq!(turn_image(&flip, h, w, c, Turn::FlipH), img);
    }

    #[test]
    fn duplicate_groups_from_exact_pixel_equality() {
        // Rows 0, 2 and 5 are identical, 1 and 4 too (with -0.0 == 0.0), 3 is alone.
        let x = ndarray::array![
            [0.5f32, 0.0, 1.0],
            [0.25, 0.0, 0.0],
            [0.5, 0.0, 1.0],
            [0.5, 0.0, 0.999],
            [0.25, -0.0, 0.0],
            [0.5, 0.0, 1.0],
        ];
        let groups = sdss_neighbors::duplicates(x.view(), 0.0).unwrap();
        assert_eq!(groups, vec![vec![0, 2, 5], vec![1, 4]]);
        assert_eq!(group_ids(6, &groups), [0, 1, 0, 3, 1, 0]);
        assert_eq!(group_ids(3, &[]), [0, 1, 2]);
    }

    #[test]
    fn knn_votes_and_accuracy() {
        assert_eq!(
            vote([2, 1, 1, 2, 0]),
            Some(2),
            "tie 2-2: the nearest tied class"
        );
        assert_eq!(vote([0, 1, 1]), Some(1));
        assert_eq!(vote(std::iter::empty()), None);
        // 4 galaxies, 2 neighbours each; labels 0 0 1 1.
        let nb = ndarray::array![[1usize, 2], [0, 3], [3, 0], [0, 1]];
        let labels = [0, 0, 1, 1];
        // Row 0: [0, 1] -> tie, nearest 0: hit. Row 1: [0, 1] -> 0: hit. Row 2: [1, 0] -> 1: hit.
        // Row 3: [0, 0] -> 0: miss.
        assert_eq!(knn_accuracy(&nb, &labels), 0.75);
    }

    #[test]
    fn ridge_recovers_an_exact_linear_law() {
        // y = 3 + 2 x0 − x1 exactly; a tiny penalty gives R² ≈ 1 on new points.
        let x: Vec<f64> = (0..20)
            .flat_map(|i| [i as f64, ((i * 7) % 5) as f64])
            .collect();
        let y: Vec<f64> = x.chunks(2).map(|r| 3.0 + 2.0 * r[0] - r[1]).collect();
        let m = Ridge::fit(&x, 2, &y, 1e-9).unwrap();
        let test = [2.5, 1.0, -4.0, 3.0];
        let pred = m.predict(&test);
        assert!(
            (pred[0] - 7.0).abs() < 1e-6 && (pred[1] + 8.0).abs() < 1e-6,
            "{pred:?}"
        );
        assert!((r2_score(&y, &m.predict(&x)) - 1.0).abs() < 1e-12);
        // A constant feature is harmless, and a large penalty shrinks towards the mean.
        let xc: Vec<f64> = x.chunks(2).flat_map(|r| [r[0], 1.0]).collect();
        let big = Ridge::fit(&xc, 2, &y, 1e9).unwrap();
        let mean = y.iter().sum::<f64>() / y.len() as f64;
        assert!(big.predict(&xc).iter().all(|p| (p - mean).abs() < 1e-3));
        assert!(Ridge::fit(&x, 2, &y, 0.0).is_err());
        assert!(Ridge::fit(&x, 3, &y, 1.0).is_err());
        // Cross-validation on a noiseless law picks the smallest penalty.
        assert_eq!(ridge_cv(&x, 2, &y, 5, 1).unwrap(), ALPHA_GRID[0]);
    }

    #[test]
    fn r2_of_the_mean_is_zero() {
        assert_eq!(r2_score(&[1.0, 2.0, 3.0], &[2.0, 2.0, 2.0]), 0.0);
        assert_eq!(r2_score(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 1.0);
        assert!(r2_score(&[1.0, 1.0], &[1.0, 1.0]).is_nan());
    }

    #[test]
    fn seeded_choices_and_common_positions() {
        let a = choose_sorted(100, 80, 3);
        assert_eq!(a.len(), 80);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(a, choose_sorted(100, 80, 3));
        assert_ne!(a, choose_sorted(100, 80, 4));
        assert_eq!(
            common_positions(&[1, 3, 4, 8], &[0, 3, 8, 9]),
            [(1, 1), (3, 2)]
        );
        assert_ne!(mix(0, 1), mix(0, 2));
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc_date(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_date(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc_date(1_735_689_599), "2024-12-31 23:59 UTC");
    }
}
