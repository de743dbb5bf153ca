//! Times training steps (forward + backward + Adam) of a named architecture on random images.
//!
//! `cargo run --release -p sdss-train --example step_timing -- sdss-cnn 32 3`
use std::time::Instant;

use sdss_cnn::{CnnConfig, CnnWeights};
use sdss_train::{Adam, BatchTargets, Loss, Network, StepRandomness};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arch = args.get(1).map(String::as_str).unwrap_or("small");
    let batch: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(32);
    let steps: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5);
    let cfg = CnnConfig::named(arch).expect("architecture");
    let w = CnnWeights::random(&cfg, 1).unwrap();
    let mut net = Network::<f32>::from_weights(cfg.clone(), &w).unwrap();
    let mut adam = Adam::new(&net.params);
    let per = 80 * 80 * 3;
    let images: Vec<f32> = (0..batch * per)
        .map(|i| ((i * 7919) % 255) as f32 / 255.0)
        .collect();
    let targets: Vec<f32> = (0..batch).map(|i| i as f32 / batch as f32).collect();
    for step in 0..steps {
        let t0 = Instant::now();
        let r = StepRandomness {
            seed: step as u64,
            dropout: true,
        };
        let cache = net.forward(&images, r).unwrap();
        let t1 = Instant::now();
        let (loss, g) = net
            .loss(
                &cache,
                Loss::MeanSquaredError,
                BatchTargets::Values(&targets),
            )
            .unwrap();
        let grads = net.backward(&images, &cache, &g).unwrap();
        let t2 = Instant::now();
        adam.step(&mut net.params, &grads, 1e-3);
        let t3 = Instant::now();
        let total = (t3 - t0).as_secs_f64();
        println!(
            "step {step}: loss {loss:.4} forward {:.3}s backward {:.3}s adam {:.3}s total {total:.3}s = {:.1} images/s",
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            (t3 - t2).as_secs_f64(),
            batch as f64 / total
        );
    }
}
