//! Training parity with tf_keras: the same initial weights (converted from the Keras `.h5` by the code
//! `fetch-weights` uses), the same fixed batches, dropout rate 0 and no augmentation; every step's loss and
//! every final weight must agree within 1e-4 relative.
//!
//! Fixtures: `fixtures/train/{adam,softmax}_{initial.h5,steps.safetensors}`, made by
//! `fixtures/train/make_training_fixture.py` with tf_keras 2.21 (`train_on_batch`, Adam(1e-3), MSE or
//! sparse categorical cross-entropy).

use std::collections::HashMap;
use std::path::PathBuf;

use safetensors::SafeTensors;
use sdss_train::{Adam, BatchTargets, Loss, Network, StepRandomness};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/train")
        .join(name)
}

fn tensors(bytes: &[u8]) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let st = SafeTensors::deserialize(bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(k, v)| {
            let data = v
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (k, (v.shape().to_vec(), data))
        })
        .collect()
}

/// max |a − b| / max |b| over a tensor: relative to the tensor's scale, as the inference parity tests.
fn rel(a: &[f32], b: &[f32]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64));
    let diff = a
        .iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((*x as f64 - *y as f64).abs()));
    diff / scale.max(1e-30)
}

fn run(case: &str, loss: Loss) {
    let model = sdss_cnn::keras::read_keras_model(fixture(&format!("{case}_initial.h5"))).unwrap();
    let config = model.config.clone();
    let mut net = Network::<f32>::from_weights(config.clone(), &model.weights).unwrap();
    let bytes = std::fs::read(fixture(&format!("{case}_steps.safetensors"))).unwrap();
    let t = tensors(&bytes);
    let (ishape, images) = &t["images"];
    let (steps, batch) = (ishape[0], ishape[1]);
    let per: usize = ishape[2..].iter().product();
    let targets = &t["targets"].1;
    let losses = &t["losses"].1;
    let mut adam = Adam::new(&net.params);
    let names: Vec<String> = config
        .tensor_specs()
        .unwrap()
        .iter()
        .map(|s| s.key())
        .collect();
    // The converted initial weights are Keras's.
    for (name, p) in names.iter().zip(&net.params.data) {
        assert_eq!(p, &t[&format!("initial.{name}")].1, "{name}");
    }
    let mut worst_loss = 0.0f64;
    for step in 0..steps {
        let x = &images[step * batch * per..(step + 1) * batch * per];
        let classes: Vec<usize>;
        let y = match loss {
            Loss::MeanSquaredError => {
                BatchTargets::Values(&targets[step * batch..(step + 1) * batch])
            }
            Loss::SoftmaxCrossEntropy => {
                classes = targets[step * batch..(step + 1) * batch]
                    .iter()
                    .map(|v| *v as usize)
                    .collect();
                BatchTargets::Classes(&classes)
            }
        };
        let r = StepRandomness {
            seed: 0,
            dropout: true,
        };
        let cache = net.forward(x, r).unwrap();
        let (l, grad) = net.loss(&cache, loss, y).unwrap();
        let want = losses[step] as f64;
        let e = (l - want).abs() / want.abs();
        assert!(e <= 1e-4, "step {step}: loss {l} vs Keras {want} ({e:e})");
        worst_loss = worst_loss.max(e);
        let grads = net.backward(x, &cache, &grad).unwrap();
        if step == 0 {
            for (name, g) in names.iter().zip(&grads.data) {
                let e = rel(g, &t[&format!("grad0.{name}")].1);
                assert!(e <= 1e-4, "step 0 gradient of {name}: {e:e}");
            }
        }
        adam.step(&mut net.params, &grads, 1e-3);
        if step == 0 {
            for (name, p) in names.iter().zip(&net.params.data) {
                let e = rel(p, &t[&format!("step1.{name}")].1);
                assert!(e <= 1e-4, "weights of {name} after step 1: {e:e}");
            }
        }
    }
    let mut worst_weight = 0.0f64;
    for (name, p) in names.iter().zip(&net.params.data) {
        let e = rel(p, &t[&format!("final.{name}")].1);
        assert!(e <= 1e-4, "final {name}: {e:e}");
        worst_weight = worst_weight.max(e);
    }
    eprintln!(
        "{case}: {steps} steps, worst loss error {worst_loss:.2e}, worst final weight error {worst_weight:.2e}"
    );
}

#[test]
fn twenty_adam_steps_match_tf_keras_regression() {
    run("adam", Loss::MeanSquaredError);
}

#[test]
fn ten_adam_steps_match_tf_keras_softmax_classifier() {
    run("softmax", Loss::SoftmaxCrossEntropy);
}
