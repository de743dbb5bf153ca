//! Why the training engine has its own backward passes rather than candle's autograd: sdss_CNN's
//! `conv2d_1` (5×5, 64 → 96 channels on a 75×75 map, 81% of the network's arithmetic), forward and
//! backward on a batch, through candle's `conv2d` + `backward()` and through this crate's engine.
//!
//! `cargo run --release -p sdss-train --example candle_backward -- [batch]`
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use sdss_cnn::{CnnConfig, CnnWeights, ConvLayerConfig, OutputActivation};
use sdss_train::{BatchTargets, Loss, Network, StepRandomness};

fn main() -> candle_core::Result<()> {
    let batch: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let dev = Device::Cpu;
    // candle, NCHW.
    let x = Var::from_tensor(&Tensor::rand(0f32, 1.0, (batch, 64, 75, 75), &dev)?)?;
    let w = Var::from_tensor(&(Tensor::randn(0f32, 1.0, (96, 64, 5, 5), &dev)? * 0.02)?)?;
    let mut best = (f64::INFINITY, f64::INFINITY);
    for _ in 0..3 {
        let t0 = Instant::now();
        let y = x.as_tensor().conv2d(w.as_tensor(), 0, 1, 1, 1)?;
        let loss = y.sqr()?.sum_all()?;
        let _ = loss.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        let t1 = Instant::now();
        let grads = loss.backward()?;
        let gw = grads.get(w.as_tensor()).expect("weight gradient");
        let gx = grads.get(x.as_tensor()).expect("input gradient");
        let _ = (
            gw.sum_all()?.to_scalar::<f32>()?,
            gx.sum_all()?.to_scalar::<f32>()?,
        );
        let t2 = Instant::now();
        best.0 = best.0.min((t1 - t0).as_secs_f64());
        best.1 = best.1.min((t2 - t1).as_secs_f64());
    }
    println!(
        "candle conv2d, batch {batch}: forward {:.3} s, backward (input + weight gradients) {:.3} s",
        best.0, best.1
    );
    // This engine: the same layer as the second block of a network whose first block is a cheap 1×1
    // convolution (3% of the 5×5 layer's arithmetic), so that the 5×5 layer's input gradient is computed
    // too; the tiny dense head costs ~1%.
    let cfg = CnnConfig {
        input_height: 75,
        input_width: 75,
        input_channels: 64,
        conv_layers: vec![
            ConvLayerConfig::new(64, [1, 1]),
            ConvLayerConfig::new(96, [5, 5]),
        ],
        dense_units: 1,
        dense_1_units: 1,
        output_units: 1,
        dense_dropout: 0.0,
        dense_1_dropout: 0.0,
        output_activation: OutputActivation::Linear,
    };
    let weights = CnnWeights::random(&cfg, 1).expect("weights");
    let images: Vec<f32> = (0..batch * 75 * 75 * 64)
        .map(|i| (i % 97) as f32 / 97.0)
        .collect();
    let targets = vec![0.5f32; batch];
    for winograd in [false, true] {
        let net = Network::<f32>::from_weights(cfg.clone(), &weights)
            .expect("network")
            .with_winograd(winograd);
        let mut best = (f64::INFINITY, f64::INFINITY);
        for _ in 0..3 {
            let t0 = Instant::now();
            let r = StepRandomness {
                seed: 0,
                dropout: false,
            };
            let cache = net.forward(&images, r).expect("forward");
            let t1 = Instant::now();
            let (_, g) = net
                .loss(
                    &cache,
                    Loss::MeanSquaredError,
                    BatchTargets::Values(&targets),
                )
                .expect("loss");
            let _ = net.backward(&images, &cache, &g).expect("backward");
            let t2 = Instant::now();
            best.0 = best.0.min((t1 - t0).as_secs_f64());
            best.1 = best.1.min((t2 - t1).as_secs_f64());
        }
        println!(
            "sdss-train (winograd {winograd}), batch {batch}: forward {:.3} s, backward (input + weight gradients) {:.3} s",
            best.0, best.1
        );
    }
    Ok(())
}
