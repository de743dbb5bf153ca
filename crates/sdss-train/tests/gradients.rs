//! Every layer's backward pass against central finite differences, in f64, through the same generic code
//! that trains in f32.
//!
//! The network is tiny but has every layer kind: an explicit-im2col convolution (3 channels), max-pooling,
//! dropout after a block, a second explicit convolution, an implicit-GEMM convolution (`kw·c = 64`), ReLU,
//! Dense with ReLU and dropout, a linear Dense with dropout, and the output layer, under both losses.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sdss_cnn::{CnnConfig, ConvLayerConfig, OutputActivation};
use sdss_train::{BatchTargets, Loss, Network, StepRandomness, Tensors};

fn config(outputs: usize, activation: OutputActivation) -> CnnConfig {
    CnnConfig {
        input_height: 9,
        input_width: 10,
        input_channels: 3,
        conv_layers: vec![
            ConvLayerConfig::new(4, [3, 3]).pooled(2).with_dropout(0.3),
            ConvLayerConfig::new(32, [2, 2]),
            ConvLayerConfig::new(5, [2, 2]),
        ],
        dense_units: 6,
        dense_1_units: 4,
        output_units: outputs,
        dense_dropout: 0.2,
        dense_1_dropout: 0.1,
        output_activation: activation,
    }
}

fn random_network(cfg: CnnConfig, seed: u64) -> Network<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let data = cfg
        .tensor_specs()
        .unwrap()
        .iter()
        .map(|s| {
            let n: usize = s.shape.iter().product();
            let fan_in: usize = s.shape[..s.shape.len().saturating_sub(1)].iter().product();
            let scale = 1.5 / (fan_in.max(1) as f64).sqrt();
            if s.shape.len() == 1 {
                // Positive biases keep most ReLUs alive, so that most gradients are non-zero.
                (0..n).map(|_| rng.random_range(0.05..0.5)).collect()
            } else {
                (0..n).map(|_| rng.random_range(-scale..scale)).collect()
            }
        })
        .collect();
    Network::new(cfg, Tensors { data }).unwrap()
}

fn check(loss: Loss, outputs: usize, activation: OutputActivation) {
    let net = random_network(config(outputs, activation), 11);
    let n = 5;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let images: Vec<f64> = (0..n * 9 * 10 * 3).map(|_| rng.random::<f64>()).collect();
    let values: Vec<f64> = (0..n * outputs).map(|_| rng.random::<f64>()).collect();
    let classes: Vec<usize> = (0..n).map(|i| i % outputs).collect();
    let targets = match loss {
        Loss::MeanSquaredError => BatchTargets::Values(&values),
        Loss::SoftmaxCrossEntropy => BatchTargets::Classes(&classes),
    };
    // The same seed gives the same dropout masks in every evaluation.
    let randomness = StepRandomness {
        seed: 99,
        dropout: true,
    };
    let loss_of = |net: &Network<f64>| {
        let cache = net.forward(&images, randomness).unwrap();
        net.loss(&cache, loss, targets).unwrap().0
    };
    let cache = net.forward(&images, randomness).unwrap();
    let (_, grad_out) = net.loss(&cache, loss, targets).unwrap();
    let grads = net.backward(&images, &cache, &grad_out).unwrap();

    let names: Vec<String> = net
        .config()
        .tensor_specs()
        .unwrap()
        .iter()
        .map(|s| s.key())
        .collect();
    let h = 1e-6;
    let mut worst = 0.0f64;
    let mut nonzero = 0;
    for (t, name) in names.iter().enumerate() {
        for i in 0..net.params.data[t].len() {
            let mut plus = net.clone();
            plus.params.data[t][i] += h;
            let mut minus = net.clone();
            minus.params.data[t][i] -= h;
            let numeric = (loss_of(&plus) - loss_of(&minus)) / (2.0 * h);
            let analytic = grads.data[t][i];
            let err = (numeric - analytic).abs() / (1e-4 + analytic.abs().max(numeric.abs()));
            assert!(
                err < 1e-5,
                "{name}[{i}]: analytic {analytic:e}, finite difference {numeric:e} (relative error {err:e})"
            );
            worst = worst.max(err);
            if analytic.abs() > 1e-9 {
                nonzero += 1;
            }
        }
    }
    // A check of all-zero gradients would prove nothing: most must be non-zero.
    let total: usize = net.params.data.iter().map(Vec::len).sum();
    assert!(
        nonzero * 10 > total * 7,
        "{nonzero} of {total} gradients are non-zero"
    );
    eprintln!("{loss:?}: worst relative error {worst:e} over {total} parameters");
}

#[test]
fn mean_squared_error_gradients_match_finite_differences() {
    check(Loss::MeanSquaredError, 2, OutputActivation::Linear);
}

#[test]
fn softmax_cross_entropy_gradients_match_finite_differences() {
    check(Loss::SoftmaxCrossEntropy, 3, OutputActivation::Softmax);
}

#[test]
fn dropout_keeps_the_keras_fraction_and_scale() {
    // A network whose only randomness is a 0.3 dropout after `dense`: the mean kept fraction over many
    // units must be 0.7 and kept units are scaled by 1/0.7, so the expected activation is unchanged.
    let mut cfg = config(1, OutputActivation::Linear);
    cfg.conv_layers.iter_mut().for_each(|l| l.dropout = 0.0);
    cfg.dense_units = 4000;
    cfg.dense_dropout = 0.3;
    cfg.dense_1_dropout = 0.0;
    let net = random_network(cfg, 5);
    let images = vec![0.5f64; 2 * 9 * 10 * 3];
    let off = net
        .forward(
            &images,
            StepRandomness {
                seed: 1,
                dropout: false,
            },
        )
        .unwrap();
    let on = net
        .forward(
            &images,
            StepRandomness {
                seed: 1,
                dropout: true,
            },
        )
        .unwrap();
    let (mut kept, mut active, mut sum_on, mut sum_off) = (0usize, 0usize, 0.0, 0.0);
    for (a, b) in on
        .dense_after_dropout()
        .iter()
        .zip(off.dense_after_dropout())
    {
        if *b > 0.0 {
            active += 1;
            if *a > 0.0 {
                kept += 1;
                // Keras scales by 1/(1 − rate) with the rate in float32.
                let scale = 1.0 / (1.0 - 0.3f32 as f64);
                assert!((a / b - scale).abs() < 1e-12, "scale {}", a / b);
            }
        }
        sum_on += a;
        sum_off += b;
    }
    let frac = kept as f64 / active as f64;
    // Binomial standard error with ~4000 active units is ~0.007: allow 4σ.
    assert!(
        (frac - 0.7).abs() < 0.03,
        "kept fraction {frac} of {active}"
    );
    assert!(
        (sum_on / sum_off - 1.0).abs() < 0.05,
        "mean ratio {}",
        sum_on / sum_off
    );
    // Different seeds give different masks; the same seed the same.
    let again = net
        .forward(
            &images,
            StepRandomness {
                seed: 1,
                dropout: true,
            },
        )
        .unwrap();
    let other = net
        .forward(
            &images,
            StepRandomness {
                seed: 2,
                dropout: true,
            },
        )
        .unwrap();
    assert_eq!(on.dense_after_dropout(), again.dense_after_dropout());
    assert_ne!(on.dense_after_dropout(), other.dense_after_dropout());
}

#[test]
fn winograd_5x5_path_in_f32_matches_the_f64_gradients() {
    // The f32 fast path (Winograd forward, input gradient and weight gradient for 5×5 layers) against the
    // generic f64 path that the finite differences above check.
    let cfg = CnnConfig {
        input_height: 22,
        input_width: 21,
        input_channels: 3,
        conv_layers: vec![
            ConvLayerConfig::new(6, [3, 3]),
            ConvLayerConfig::new(7, [5, 5]).pooled(2),
            ConvLayerConfig::new(4, [5, 5]),
        ],
        dense_units: 6,
        dense_1_units: 4,
        output_units: 1,
        dense_dropout: 0.0,
        dense_1_dropout: 0.0,
        output_activation: OutputActivation::Linear,
    };
    let net64 = random_network(cfg.clone(), 21);
    let params32 = Tensors {
        data: net64
            .params
            .data
            .iter()
            .map(|t| t.iter().map(|&v| v as f32).collect())
            .collect(),
    };
    let net32 = Network::<f32>::new(cfg, params32).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let n = 3;
    let images: Vec<f64> = (0..n * 22 * 21 * 3).map(|_| rng.random::<f64>()).collect();
    let images32: Vec<f32> = images.iter().map(|&v| v as f32).collect();
    let targets = [0.2f64, 0.7, 0.4];
    let targets32 = [0.2f32, 0.7, 0.4];
    let r = StepRandomness {
        seed: 0,
        dropout: false,
    };
    let c64 = net64.forward(&images, r).unwrap();
    let (_, g64) = net64
        .loss(&c64, Loss::MeanSquaredError, BatchTargets::Values(&targets))
        .unwrap();
    let grads64 = net64.backward(&images, &c64, &g64).unwrap();
    let c32 = net32.forward(&images32, r).unwrap();
    let (_, g32) = net32
        .loss(
            &c32,
            Loss::MeanSquaredError,
            BatchTargets::Values(&targets32),
        )
        .unwrap();
    let grads32 = net32.backward(&images32, &c32, &g32).unwrap();
    for (t, (a, b)) in grads32.data.iter().zip(&grads64.data).enumerate() {
        let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let diff = a
            .iter()
            .zip(b)
            .fold(0.0f64, |m, (x, y)| m.max((*x as f64 - y).abs()));
        assert!(
            diff <= 1e-4 * scale.max(1e-12),
            "tensor {t}: max difference {diff:e} at scale {scale:e}"
        );
    }
}

/// Relative error of an analytic derivative against a central difference, as in `check`.
fn relative_error(analytic: f64, numeric: f64) -> f64 {
    (numeric - analytic).abs() / (1e-4 + analytic.abs().max(numeric.abs()))
}

#[test]
fn embedding_backward_matches_finite_differences() {
    // Self-supervised training back-propagates from the 128-wide `dense` (here 6 wide) only: the loss
    // is a fixed weighting of the embeddings after dropout.
    let net = random_network(config(2, OutputActivation::Linear), 13);
    let n = 4;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let images: Vec<f64> = (0..n * 9 * 10 * 3).map(|_| rng.random::<f64>()).collect();
    let weights: Vec<f64> = (0..n * 6).map(|_| rng.random_range(-1.0..1.0)).collect();
    let randomness = StepRandomness {
        seed: 7,
        dropout: true,
    };
    let loss_of = |net: &Network<f64>| {
        let cache = net.forward(&images, randomness).unwrap();
        let e = cache.dense_after_dropout();
        e.iter().zip(&weights).map(|(a, b)| a * b).sum::<f64>()
    };
    let cache = net.forward(&images, randomness).unwrap();
    let grads = net.backward_from_dense(&images, &cache, &weights).unwrap();
    let names: Vec<String> = net
        .config()
        .tensor_specs()
        .unwrap()
        .iter()
        .map(|s| s.key())
        .collect();
    let h = 1e-6;
    for (t, name) in names.iter().enumerate() {
        let above_dense = name.starts_with("dense_1.") || name.starts_with("dense_2.");
        let mut nonzero = 0;
        for i in 0..net.params.data[t].len() {
            let mut plus = net.clone();
            plus.params.data[t][i] += h;
            let mut minus = net.clone();
            minus.params.data[t][i] -= h;
            let numeric = (loss_of(&plus) - loss_of(&minus)) / (2.0 * h);
            let analytic = grads.data[t][i];
            let err = relative_error(analytic, numeric);
            assert!(
                err < 1e-5,
                "{name}[{i}]: analytic {analytic:e}, finite difference {numeric:e}"
            );
            nonzero += (analytic.abs() > 1e-9) as usize;
        }
        if above_dense {
            assert_eq!(
                nonzero, 0,
                "{name}: the layers above the embedding get no gradient"
            );
        } else {
            assert!(
                nonzero > 0,
                "{name}: every layer up to the embedding learns"
            );
        }
    }
}

#[test]
fn projection_head_backward_matches_finite_differences() {
    use sdss_train::head::{self, MlpShape};
    let shape = MlpShape {
        input: 5,
        layers: vec![7, 4, 3],
    };
    let params: Vec<Vec<f64>> = shape.init::<f64>(3).data;
    let n = 6;
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let x: Vec<f64> = (0..n * 5).map(|_| rng.random_range(-1.0..1.0)).collect();
    let w: Vec<f64> = (0..n * 3).map(|_| rng.random_range(-1.0..1.0)).collect();
    let loss_of = |params: &[Vec<f64>], x: &[f64]| {
        let out = head::forward(&shape, params, x).unwrap().output;
        out.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>()
    };
    let cache = head::forward(&shape, &params, &x).unwrap();
    let (grads, dx) = head::backward(&shape, &params, &cache, &w).unwrap();
    let h = 1e-6;
    let mut nonzero = 0;
    let mut total = 0;
    for t in 0..params.len() {
        for i in 0..params[t].len() {
            let mut plus = params.clone();
            plus[t][i] += h;
            let mut minus = params.clone();
            minus[t][i] -= h;
            let numeric = (loss_of(&plus, &x) - loss_of(&minus, &x)) / (2.0 * h);
            let err = relative_error(grads[t][i], numeric);
            assert!(err < 1e-5, "tensor {t}[{i}]: {} vs {numeric}", grads[t][i]);
            nonzero += (grads[t][i].abs() > 1e-9) as usize;
            total += 1;
        }
    }
    assert!(
        nonzero * 2 > total,
        "{nonzero} of {total} gradients are non-zero"
    );
    for i in 0..x.len() {
        let mut plus = x.clone();
        plus[i] += h;
        let mut minus = x.clone();
        minus[i] -= h;
        let numeric = (loss_of(&params, &plus) - loss_of(&params, &minus)) / (2.0 * h);
        assert!(relative_error(dx[i], numeric) < 1e-5, "input {i}");
    }
}
