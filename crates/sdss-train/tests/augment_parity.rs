//! Parity of `augment::apply_transform` with tf_keras `ImageDataGenerator.apply_transform`.
//!
//! Fixture: `fixtures/train/make_augment_fixture.py` (12 parameter sets, each applied to one
//! 80×80×3 image and to a 40×44×3 one).

use safetensors::{Dtype, SafeTensors};
use sdss_train::augment::{apply_transform, TransformParams};

const TOL: f32 = 1.0 / 255.0;

fn fixture() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/train/augment.safetensors"
    );
    std::fs::read(path).expect("read fixtures/train/augment.safetensors")
}

fn tensor_f32(st: &SafeTensors, name: &str) -> (Vec<f32>, Vec<usize>) {
    let t = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(t.dtype(), Dtype::F32, "{name}");
    let v = t
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    (v, t.shape().to_vec())
}

fn tensor_f64(st: &SafeTensors, name: &str) -> Vec<f64> {
    let t = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(t.dtype(), Dtype::F64, "{name}");
    t.data()
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn params(st: &SafeTensors) -> Vec<TransformParams> {
    tensor_f64(st, "params")
        .chunks_exact(7)
        .map(|r| TransformParams {
            theta_deg: r[0],
            tx: r[1],
            ty: r[2],
            zx: r[3],
            zy: r[4],
            flip_horizontal: r[5] != 0.0,
            flip_vertical: r[6] != 0.0,
        })
        .collect()
}

/// Error statistics of one case, split by where the pixel is.
#[derive(Default, Debug)]
struct Errs {
    interior: f32,
    border: f32,
    /// Pixels whose sample point Keras clamped ('nearest' fill), and their max error.
    filled: usize,
    filled_err: f32,
    exact: usize,
    total: usize,
}

fn compare(img: &[f32], want: &[f32], shape: &[usize], p: &TransformParams) -> Errs {
    let (h, w, c) = (shape[0], shape[1], shape[2]);
    let mut got = vec![0.0f32; img.len()];
    apply_transform(img, h, w, c, p, &mut got).unwrap();
    let map = p.source_map(h, w);
    let mut e = Errs::default();
    for i in 0..h {
        for j in 0..w {
            // Undo the flips to find the affine-output pixel, hence its sample point.
            let ai = if p.flip_vertical { h - 1 - i } else { i };
            let aj = if p.flip_horizontal { w - 1 - j } else { j };
            let filled = map.is_some_and(|m| {
                let (r, q) = m.source(ai, aj);
                r < 0.0 || q < 0.0 || r > (h - 1) as f64 || q > (w - 1) as f64
            });
            e.filled += filled as usize;
            let interior = i >= 2 && j >= 2 && i + 2 < h && j + 2 < w;
            for k in 0..c {
                let idx = (i * w + j) * c + k;
                let d = (got[idx] - want[idx]).abs();
                e.total += 1;
                e.exact += (got[idx].to_bits() == want[idx].to_bits()) as usize;
                if interior {
                    e.interior = e.interior.max(d);
                } else {
                    e.border = e.border.max(d);
                }
                if filled {
                    e.filled_err = e.filled_err.max(d);
                }
            }
        }
    }
    e
}

#[test]
fn matches_keras_apply_transform() {
    let bytes = fixture();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().as_ref().expect("metadata");
    let cases: serde_json::Value = serde_json::from_str(&meta["cases"]).unwrap();
    let cases = cases.as_array().unwrap();
    let ps = params(&st);
    assert_eq!(cases.len(), ps.len());
    assert!(cases.len() >= 8);
    let (nonsquare, ns_shape) = tensor_f32(&st, "image_3");
    let mut failures = Vec::new();
    let mut filled_total = 0;
    for (k, (case, p)) in cases.iter().zip(&ps).enumerate() {
        let name = case["name"].as_str().unwrap();
        // The JSON copy of the parameters must agree with the F64 tensor we use.
        let jp = &case["params"];
        assert!(
            (jp["theta"].as_f64().unwrap() - p.theta_deg).abs() < 1e-12,
            "{name}"
        );
        assert_eq!(jp["flip_horizontal"].as_bool().unwrap(), p.flip_horizontal);
        let sq = case["square_image"].as_u64().unwrap();
        let (square, sq_shape) = tensor_f32(&st, &format!("image_{sq}"));
        for (suffix, img, shape) in [("sq", &square, &sq_shape), ("ns", &nonsquare, &ns_shape)] {
            let (want, wshape) = tensor_f32(&st, &format!("out_{k}_{suffix}"));
            assert_eq!(&wshape, shape);
            let e = compare(img, &want, shape, p);
            println!(
                "{name:>14} {suffix} {:?}: interior {:.2e} border {:.2e} filled {} px (max {:.2e}), bit-exact {}/{}",
                shape, e.interior, e.border, e.filled, e.filled_err, e.exact, e.total
            );
            filled_total += e.filled;
            if e.interior > TOL || e.border > TOL || e.filled_err > TOL {
                failures.push(format!("{name} {suffix}: {e:?}"));
            }
        }
    }
    // The 'nearest' fill must actually be exercised by the fixture.
    assert!(
        filled_total > 1000,
        "only {filled_total} filled pixel values"
    );
    assert!(failures.is_empty(), "cases over 1/255: {failures:#?}");
}

/// The (matrix, offset) we derive equals the one Keras passes to scipy, to rounding.
#[test]
fn source_map_matches_keras_matrix() {
    let bytes = fixture();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let ps = params(&st);
    let maps = tensor_f64(&st, "scipy_maps");
    assert_eq!(maps.len(), ps.len() * 12);
    let (mut worst, mut exact, mut total) = (0.0f64, 0, 0);
    for (k, p) in ps.iter().enumerate() {
        for (s, (h, w)) in [(80, 80), (40, 44)].into_iter().enumerate() {
            let want = &maps[(k * 2 + s) * 6..][..6];
            match p.source_map(h, w) {
                None => assert!(want.iter().all(|v| v.is_nan()), "case {k}: Keras resampled"),
                Some(m) => {
                    let got = [
                        m.matrix[0][0],
                        m.matrix[0][1],
                        m.matrix[1][0],
                        m.matrix[1][1],
                        m.offset[0],
                        m.offset[1],
                    ];
                    for (g, w) in got.iter().zip(want) {
                        worst = worst.max((g - w).abs());
                        exact += (g == w) as usize;
                        total += 1;
                    }
                }
            }
        }
    }
    println!("source map vs Keras: max abs diff {worst:.2e}, bit-exact {exact}/{total}");
    assert!(worst < 1e-12, "max abs diff {worst}");
}

/// Timing of one 80×80×3 transform; run with
/// `cargo test -p sdss-train --test augment_parity -- --ignored --nocapture`.
#[test]
#[ignore = "timing only"]
fn timing_80x80x3() {
    let bytes = fixture();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (img, _) = tensor_f32(&st, "image_0");
    let p = params(&st)[8]; // "all": rotation, shift, anisotropic zoom and both flips
    let mut out = vec![0.0f32; img.len()];
    // Best of many short bursts, so that a busy machine does not inflate the figure.
    let mut best = f64::MAX;
    let t_all = std::time::Instant::now();
    for _ in 0..500 {
        let t0 = std::time::Instant::now();
        for _ in 0..10 {
            apply_transform(std::hint::black_box(&img), 80, 80, 3, &p, &mut out).unwrap();
            std::hint::black_box(&out);
        }
        best = best.min(t0.elapsed().as_secs_f64() / 10.0);
    }
    let mean = t_all.elapsed().as_secs_f64() / 5000.0;
    println!(
        "apply_transform 80x80x3: best {:.1} us, mean {:.1} us per image",
        best * 1e6,
        mean * 1e6
    );
}
