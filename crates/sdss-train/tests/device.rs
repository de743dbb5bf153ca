//! Training through candle (the path a GPU takes, here on candle's CPU backend) against this crate's
//! CPU engine: the same network, data, augmentations and dropout seeds for several epochs must end
//! at the same weights to float rounding, so a run on a GPU is the CPU run.

use sdss_cnn::{CnnConfig, CnnWeights, ComputeDevice, ConvLayerConfig};
use sdss_train::augment::AugmentConfig;
use sdss_train::ssl::{SslOptions, SslTrainer};
use sdss_train::{
    Dataset, DeviceStep, EpochRecord, Loss, Network, Quiet, TrainOptions, TrainTargets, Trainer,
};

const SIDE: usize = 20;
const PER: usize = SIDE * SIDE * 3;

/// Blobs of known size on noisy sky; the target is the size.
fn data(count: usize, seed: usize) -> Dataset {
    let (images, sizes) = blobs(count, seed);
    Dataset::new(images, TrainTargets::Values(sizes), PER).unwrap()
}

/// The images and sizes of [`data`].
fn blobs(count: usize, seed: usize) -> (Vec<f32>, Vec<f32>) {
    let mut images = Vec::with_capacity(count * PER);
    let mut sizes = Vec::with_capacity(count);
    for g in 0..count {
        let r = 1.5 + ((g * 7 + seed) % 11) as f32 * 0.4;
        sizes.push(r / 6.0);
        for y in 0..SIDE {
            for x in 0..SIDE {
                let d2 = (y as f32 - 9.5).powi(2) + (x as f32 - 9.5).powi(2);
                for c in 0..3 {
                    let sky = ((g * 31 + y * 17 + x * 5 + c) % 13) as f32 * 0.004;
                    images.push(
                        ((-d2 / (2.0 * r * r)).exp() * (0.6 + 0.1 * c as f32) + sky).min(1.0),
                    );
                }
            }
        }
    }
    (images, sizes)
}

/// A 20×20 network with dropout in a convolution block and after `dense`.
fn config() -> CnnConfig {
    let mut first = ConvLayerConfig::new(6, [5, 5]).pooled(2);
    first.dropout = 0.1;
    CnnConfig {
        input_height: SIDE,
        input_width: SIDE,
        conv_layers: vec![first, ConvLayerConfig::new(8, [3, 3]).pooled(2)],
        dense_units: 32,
        dense_1_units: 16,
        dense_dropout: 0.25,
        ..CnnConfig::default()
    }
}

/// Asserts that every parameter tensor of `a` equals `b`'s to `tolerance` of its largest value.
fn assert_same_weights(a: &Network<f32>, b: &Network<f32>, tolerance: f32) {
    for (t, (x, y)) in a.params.data.iter().zip(&b.params.data).enumerate() {
        let scale = x.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        let diff = x.iter().zip(y).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
        assert!(
            diff / scale < tolerance,
            "tensor {t}: max difference {diff} of {scale}"
        );
    }
}

/// Asserts that each epoch's training loss (and validation loss, with `validation`) agrees to 1e-4.
fn assert_same_losses(cpu: &[EpochRecord], candle: &[EpochRecord], validation: bool) {
    assert_eq!(cpu.len(), candle.len());
    for (a, b) in cpu.iter().zip(candle) {
        let mut pairs = vec![("training", a.train_loss, b.train_loss)];
        if validation {
            pairs.push(("validation", a.val_loss, b.val_loss));
        }
        for (what, x, y) in pairs {
            assert!(
                (x - y).abs() <= 1e-4 * x.abs().max(1e-3),
                "epoch {}: {what} loss {x} on the CPU engine, {y} through candle",
                a.epoch
            );
        }
    }
}

#[test]
fn candle_steps_train_to_the_cpu_engines_weights() {
    let cfg = config();
    let weights = CnnWeights::random(&cfg, 4).unwrap();
    let (train, val) = (data(48, 0), data(16, 5));
    let options = TrainOptions {
        epochs: 3,
        batch_size: 8,
        augment: AugmentConfig::sdss_cnn(),
        ..TrainOptions::default()
    };
    let trainer = || {
        Trainer::new(
            Network::from_weights(cfg.clone(), &weights).unwrap(),
            Loss::MeanSquaredError,
            options.clone(),
            serde_json::json!({}),
        )
        .unwrap()
    };
    let mut cpu = trainer();
    cpu.fit(&train, &val, None, &mut Quiet).unwrap();
    let mut candle = trainer();
    candle.set_device_step(Some(DeviceStep::new(ComputeDevice::Cpu).unwrap()));
    candle.fit(&train, &val, None, &mut Quiet).unwrap();

    // Training moved the weights, so the comparison is of a run that did something.
    assert_ne!(candle.network().to_weights().unwrap(), weights);
    assert_same_weights(cpu.network(), candle.network(), 1e-3);
    assert_same_losses(cpu.history(), candle.history(), false);
}

/// The same for self-supervised training: the encoder's passes through candle, the views, heads,
/// objective and optimisers as they are.
#[test]
fn candle_steps_train_the_self_supervised_encoder_to_the_cpu_engines_weights() {
    let cfg = config();
    let weights = CnnWeights::random(&cfg, 9).unwrap();
    let (train, _) = blobs(32, 1);
    let (val, _) = blobs(8, 3);
    let options = SslOptions {
        epochs: 2,
        batch_size: 8,
        projector: vec![32, 32],
        ..SslOptions::default()
    };
    let trainer = || {
        SslTrainer::new(
            Network::from_weights(cfg.clone(), &weights).unwrap(),
            options.clone(),
            serde_json::json!({}),
        )
        .unwrap()
    };
    let mut cpu = trainer();
    cpu.fit(&train, &val, None, &mut Quiet).unwrap();
    let mut candle = trainer();
    candle.set_device_step(Some(DeviceStep::new(ComputeDevice::Cpu).unwrap()));
    candle.fit(&train, &val, None, &mut Quiet).unwrap();
    assert_ne!(candle.network().to_weights().unwrap(), weights);
    assert_same_weights(cpu.network(), candle.network(), 1e-3);
    assert_same_losses(cpu.history(), candle.history(), true);
}

#[cfg(not(feature = "cuda"))]
#[test]
fn a_gpu_without_the_cuda_feature_is_refused_by_name() {
    let cfg = CnnConfig {
        input_height: SIDE,
        input_width: SIDE,
        conv_layers: vec![ConvLayerConfig::new(2, [3, 3])],
        ..CnnConfig::default()
    };
    let net = Network::from_weights(cfg.clone(), &CnnWeights::random(&cfg, 1).unwrap()).unwrap();
    let mut t = Trainer::new(
        net,
        Loss::MeanSquaredError,
        TrainOptions::default(),
        serde_json::json!({}),
    )
    .unwrap();
    let err = t
        .set_device(ComputeDevice::Cuda(1))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cuda:1") && err.contains("--features cuda"),
        "{err}"
    );
    assert_eq!(t.device(), ComputeDevice::Cpu);
}
