//! Training steps on a candle device (an NVIDIA GPU with the `cuda` feature): the forward pass and
//! the gradients of one batch computed with candle's autograd, the rest of training unchanged.
//!
//! A step here is the CPU step to rounding: the same parameters go in, the same dropout masks
//! ([`Network::dropout_masks`], drawn on the CPU from the same seeds), the same loss and
//! output gradient ([`crate::loss::loss_and_gradient`] on the downloaded outputs), and the
//! gradients come back in Keras layout for the same Adam update on the CPU. What runs on the device
//! is what costs: the convolutions and their backward passes. The shuffles, augmentations and the
//! optimiser stay where they were, so a run is reproducible across devices up to float rounding.
//!
//! The price of keeping Adam on the CPU is one upload of the parameters and one download of the
//! gradients per step (about 22 MB each way for sdss_CNN).

use candle_core::{DType, Device, Tensor, Var};
use sdss_cnn::ComputeDevice;

use crate::error::{Result, TrainError};
use crate::network::{BatchTargets, Loss, Network, StepRandomness, Tensors};

/// Computes training steps' losses and gradients on one candle device.
#[derive(Debug)]
pub struct DeviceStep {
    device: ComputeDevice,
    candle: Device,
}

/// `x · (x > 0)`, whose gradient is 0 where `x ≤ 0`, as in this crate's backward pass (candle's
/// own `relu` lets the gradient through at exactly 0, which a zero-bias network on black sky hits).
fn relu(x: &Tensor) -> Result<Tensor> {
    let keep = x.gt(0f64)?.to_dtype(DType::F32)?.detach();
    Ok(x.mul(&keep)?)
}

/// 'valid' p×p max-pooling of NCHW `x` as a reshape and two max reductions. candle's own
/// `max_pool2d` has the right forward pass, but its gradient (candle 0.11) is the true one times
/// the share of maxima in the window, a quarter for 2×2; a max reduction passes the gradient to its
/// maximum whole.
fn max_pool(x: &Tensor, p: usize) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let (oh, ow) = (h / p, w / p);
    // 'valid' pooling ignores the last rows and columns when the size is not a multiple of p.
    let x = x.narrow(2, 0, oh * p)?.narrow(3, 0, ow * p)?.contiguous()?;
    Ok(x.reshape((n, c, oh, p, ow, p))?.max(5)?.max(3)?)
}

impl DeviceStep {
    /// The step for `device` as trainers hold it: `None` for the CPU (this crate's engine), an
    /// opened device otherwise.
    pub(crate) fn for_device(device: ComputeDevice) -> Result<Option<Self>> {
        match device {
            ComputeDevice::Cpu => Ok(None),
            gpu => Ok(Some(DeviceStep::new(gpu)?)),
        }
    }

    /// The device a trainer's `step` runs on.
    pub(crate) fn device_of(step: &Option<Self>) -> ComputeDevice {
        step.as_ref().map_or(ComputeDevice::Cpu, DeviceStep::device)
    }

    /// Opens `device` (a [`TrainError`] naming it when this build or machine cannot use it).
    pub fn new(device: ComputeDevice) -> Result<Self> {
        Ok(DeviceStep {
            device,
            candle: device.candle_device()?,
        })
    }

    /// The device the steps run on.
    pub fn device(&self) -> ComputeDevice {
        self.device
    }

    /// The loss of one batch (`images`: `(n, h, w, c)` channels-last, flattened) and its gradient
    /// with respect to every parameter of `network`, in the layout of `network.params`.
    pub fn loss_and_gradients(
        &self,
        network: &Network<f32>,
        images: &[f32],
        loss: Loss,
        targets: BatchTargets<'_, f32>,
        randomness: StepRandomness,
    ) -> Result<(f64, Tensors<f32>)> {
        let pass = self.forward(network, images, randomness, Depth::Logits)?;
        let outputs = network.config().output_units;
        let (loss_value, grad_logits) =
            crate::loss::loss_and_gradient(&pass.logits()?, pass.n, outputs, loss, targets)?;
        Ok((loss_value, pass.gradients_from_logits(&grad_logits)?))
    }

    /// The forward pass of one batch on the device, through the network's outputs or only to its
    /// `dense` embedding, kept for [`DeviceForward`]'s backward pass. Dropout uses
    /// [`Network::dropout_masks`] for `randomness`.
    pub fn forward(
        &self,
        network: &Network<f32>,
        images: &[f32],
        randomness: StepRandomness,
        depth: Depth,
    ) -> Result<DeviceForward> {
        let cfg = network.config();
        let (h, w, c) = (cfg.input_height, cfg.input_width, cfg.input_channels);
        let per = h * w * c;
        if per == 0 || images.is_empty() || !images.len().is_multiple_of(per) {
            return Err(TrainError::Invalid(format!(
                "a batch of {} values is not a whole number of {h}x{w}x{c} images",
                images.len()
            )));
        }
        let n = images.len() / per;
        let specs = cfg.tensor_specs()?;
        if specs.len() != network.params.data.len() {
            return Err(TrainError::Invalid(format!(
                "the network has {} parameter tensors, its architecture {}",
                network.params.data.len(),
                specs.len()
            )));
        }
        let vars = specs
            .iter()
            .zip(&network.params.data)
            .map(|(spec, data)| Var::from_slice(data, spec.shape.as_slice(), &self.candle))
            .collect::<candle_core::Result<Vec<Var>>>()?;
        let masks = network.dropout_masks(n, randomness);
        let dev = &self.candle;
        let mask = |values: &[f32], shape: (usize, usize, usize, usize)| {
            // Masks are channels-last; the activations here are NCHW.
            Tensor::from_slice(values, shape, dev)?.permute((0, 3, 1, 2))
        };
        let mut x = Tensor::from_slice(images, (n, h, w, c), dev)?.permute((0, 3, 1, 2))?;
        for (l, layer) in cfg.conv_layers.iter().enumerate() {
            // HWIO (Keras) -> OIHW (candle), inside the graph so that the gradient comes back HWIO.
            let kernel = vars[2 * l].as_tensor().permute((3, 2, 0, 1))?;
            let bias = vars[2 * l + 1]
                .as_tensor()
                .reshape((1, layer.filters, 1, 1))?;
            x = relu(
                &x.contiguous()?
                    .conv2d(&kernel.contiguous()?, 0, 1, 1, 1)?
                    .broadcast_add(&bias)?,
            )?;
            if let Some(p) = layer.max_pool {
                x = max_pool(&x, p)?;
            }
            if let Some(m) = &masks.conv[l] {
                let (_, f, oh, ow) = x.dims4()?;
                x = x.mul(&mask(m, (n, oh, ow, f))?)?;
            }
        }
        // Keras flattens channels-last.
        let flat = x.permute((0, 2, 3, 1))?.contiguous()?.flatten_from(1)?;
        let d = 2 * cfg.conv_layers.len();
        let dense = |x: &Tensor, index: usize| -> Result<Tensor> {
            Ok(x.matmul(vars[index].as_tensor())?
                .broadcast_add(vars[index + 1].as_tensor())?)
        };
        let mut embedding = relu(&dense(&flat, d)?)?;
        if let Some(m) = &masks.dense {
            embedding = embedding.mul(&Tensor::from_slice(m, (n, cfg.dense_units), dev)?)?;
        }
        let logits = match depth {
            Depth::Embedding => None,
            Depth::Logits => {
                let mut h2 = dense(&embedding, d + 2)?;
                if let Some(m) = &masks.dense_1 {
                    h2 = h2.mul(&Tensor::from_slice(m, (n, cfg.dense_1_units), dev)?)?;
                }
                Some(dense(&h2, d + 4)?)
            }
        };
        Ok(DeviceForward {
            vars,
            embedding,
            logits,
            n,
        })
    }
}

/// How far [`DeviceStep::forward`] goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// To the `dense` layer after its dropout (the embedding self-supervised training uses).
    Embedding,
    /// Through the output layer (before any softmax).
    Logits,
}

/// A forward pass kept on the device for its backward pass.
pub struct DeviceForward {
    vars: Vec<Var>,
    embedding: Tensor,
    logits: Option<Tensor>,
    n: usize,
}

impl std::fmt::Debug for DeviceForward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceForward")
            .field("images", &self.n)
            .field("logits", &self.logits.is_some())
            .finish_non_exhaustive()
    }
}

impl DeviceForward {
    /// Number of images in the batch.
    pub fn batch(&self) -> usize {
        self.n
    }

    /// The `dense` layer's output after its ReLU and dropout, `(batch, dense_units)`, copied back.
    pub fn embedding(&self) -> Result<Vec<f32>> {
        Ok(self.embedding.flatten_all()?.to_vec1::<f32>()?)
    }

    /// The network's outputs `(batch, outputs)` before any softmax, copied back.
    pub fn logits(&self) -> Result<Vec<f32>> {
        Ok(self.logits_tensor()?.flatten_all()?.to_vec1::<f32>()?)
    }

    fn logits_tensor(&self) -> Result<&Tensor> {
        self.logits
            .as_ref()
            .ok_or_else(|| TrainError::Invalid("the forward pass stopped at the embedding".into()))
    }

    /// The gradient with respect to every parameter of a loss whose gradient with respect to the
    /// outputs is `grad_logits` `(batch, outputs)`.
    pub fn gradients_from_logits(self, grad_logits: &[f32]) -> Result<Tensors<f32>> {
        let logits = self.logits_tensor()?.clone();
        self.gradients(&logits, grad_logits)
    }

    /// The gradient with respect to the parameters up to `dense` (the rest are zero, as in
    /// [`Network::backward_from_dense`]) of a loss whose gradient with respect to
    /// [`DeviceForward::embedding`] is `grad_embedding`.
    pub fn gradients_from_embedding(self, grad_embedding: &[f32]) -> Result<Tensors<f32>> {
        let embedding = self.embedding.clone();
        self.gradients(&embedding, grad_embedding)
    }

    fn gradients(self, output: &Tensor, grad: &[f32]) -> Result<Tensors<f32>> {
        if grad.len() != output.elem_count() {
            return Err(TrainError::Invalid(format!(
                "a gradient of {} values for an output of {}",
                grad.len(),
                output.elem_count()
            )));
        }
        // Σ output ⊙ ∂L/∂output has the loss's gradient with respect to every parameter.
        let grad = Tensor::from_slice(grad, output.shape(), output.device())?;
        let grads = output.mul(&grad)?.sum_all()?.backward()?;
        let data = self
            .vars
            .iter()
            .map(|var| match grads.get(var.as_tensor()) {
                Some(g) => Ok(g.flatten_all()?.to_vec1::<f32>()?),
                // A parameter the loss does not reach has a zero gradient.
                None => Ok(vec![0.0; var.as_tensor().elem_count()]),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensors { data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdss_cnn::{CnnConfig, CnnWeights, ConvLayerConfig, OutputActivation};

    /// A small network whose sizes do not divide by the pools (7 → 6 → 3, then 2 → 1).
    fn network(classes: bool) -> Network<f32> {
        let mut first = ConvLayerConfig::new(4, [3, 2]).pooled(2);
        first.dropout = 0.25;
        let mut cfg = CnnConfig {
            input_height: 9,
            input_width: 8,
            conv_layers: vec![first, ConvLayerConfig::new(3, [2, 2]).pooled(2)],
            dense_units: 16,
            dense_1_units: 8,
            dense_dropout: 0.5,
            dense_1_dropout: 0.2,
            ..CnnConfig::default()
        };
        if classes {
            cfg.output_units = 3;
            cfg.output_activation = OutputActivation::Softmax;
        }
        let weights = CnnWeights::random(&cfg, 11).unwrap();
        let mut net = Network::from_weights(cfg, &weights).unwrap();
        // Non-zero biases, so that every parameter has a gradient worth comparing.
        for (t, data) in net.params.data.iter_mut().enumerate() {
            if t % 2 == 1 {
                for (i, v) in data.iter_mut().enumerate() {
                    *v = 0.05 * ((i + t) % 5) as f32 - 0.1;
                }
            }
        }
        net
    }

    fn images(n: usize) -> Vec<f32> {
        // Some black sky (exact zeros), as real cutouts have after clipping.
        (0..n * 9 * 8 * 3)
            .map(|i| {
                if i % 7 == 0 {
                    0.0
                } else {
                    ((i * 37) % 101) as f32 / 101.0
                }
            })
            .collect()
    }

    fn assert_close(cpu: &Tensors<f32>, device: &Tensors<f32>, case: &str) {
        let errors: Vec<f32> = cpu
            .data
            .iter()
            .zip(&device.data)
            .map(|(a, b)| {
                let scale = a.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
                let diff = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
                diff / scale
            })
            .collect();
        assert!(
            errors.iter().all(|&e| e < 1e-4),
            "{case}: relative errors per tensor {errors:?}"
        );
    }

    #[test]
    fn a_step_on_candle_equals_the_cpu_step_with_dropout() {
        let step = DeviceStep::new(ComputeDevice::Cpu).unwrap();
        for classes in [false, true] {
            let net = network(classes);
            let n = 5;
            let x = images(n);
            let values: Vec<f32> = (0..n).map(|i| i as f32 * 0.3 - 0.5).collect();
            let labels = [0usize, 2, 1, 1, 0];
            let (loss, targets) = if classes {
                (
                    Loss::SoftmaxCrossEntropy,
                    BatchTargets::Classes(&labels[..]),
                )
            } else {
                (Loss::MeanSquaredError, BatchTargets::Values(&values[..]))
            };
            for dropout in [false, true] {
                let randomness = StepRandomness { seed: 99, dropout };
                let cache = net.forward(&x, randomness).unwrap();
                let (cpu_loss, grad) = net.loss(&cache, loss, targets).unwrap();
                let cpu = net.backward(&x, &cache, &grad).unwrap();
                let (dev_loss, dev) = step
                    .loss_and_gradients(&net, &x, loss, targets, randomness)
                    .unwrap();
                assert!(
                    (cpu_loss - dev_loss).abs() <= 1e-5 * cpu_loss.abs().max(1.0),
                    "loss {cpu_loss} against {dev_loss}"
                );
                assert_close(&cpu, &dev, &format!("classes {classes}, dropout {dropout}"));
            }
        }
    }

    #[test]
    fn gradients_from_the_embedding_equal_the_cpu_engines() {
        let step = DeviceStep::new(ComputeDevice::Cpu).unwrap();
        let net = network(false);
        let x = images(4);
        let randomness = StepRandomness {
            seed: 7,
            dropout: true,
        };
        let cache = net.forward(&x, randomness).unwrap();
        let pass = step
            .forward(&net, &x, randomness, Depth::Embedding)
            .unwrap();
        let embedding = pass.embedding().unwrap();
        let cpu_embedding = cache.dense_after_dropout();
        for (a, b) in cpu_embedding.iter().zip(&embedding) {
            assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{a} against {b}");
        }
        // Any gradient with respect to the embedding will do.
        let grad: Vec<f32> = (0..embedding.len())
            .map(|i| ((i * 13) % 7) as f32 * 0.1 - 0.3)
            .collect();
        let cpu = net.backward_from_dense(&x, &cache, &grad).unwrap();
        let dev = pass.gradients_from_embedding(&grad).unwrap();
        assert_close(&cpu, &dev, "from the embedding");
        // Without logits, their gradient cannot be asked for.
        let pass = step
            .forward(&net, &x, randomness, Depth::Embedding)
            .unwrap();
        assert!(pass.logits().is_err());
    }

    #[test]
    fn max_pool_passes_the_whole_gradient_to_each_windows_maximum() {
        // 5×5 pooled by 2: the last row and column are outside every window.
        let values: Vec<f32> = (0..25).map(|i| ((i * 7) % 25) as f32).collect();
        let x = Var::from_slice(&values, (1, 1, 5, 5), &Device::Cpu).unwrap();
        let y = max_pool(x.as_tensor(), 2).unwrap();
        let pooled = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(pooled, vec![17.0, 24.0, 20.0, 19.0]);
        let grads = y.sum_all().unwrap().backward().unwrap();
        let g = grads.get(x.as_tensor()).unwrap();
        let g = g.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (i, (&v, &d)) in values.iter().zip(&g).enumerate() {
            let expected = if pooled.contains(&v) && i % 5 < 4 && i / 5 < 4 {
                1.0
            } else {
                0.0
            };
            assert_eq!(d, expected, "position {i} (value {v})");
        }
    }

    #[test]
    fn a_ragged_batch_is_refused() {
        let step = DeviceStep::new(ComputeDevice::Cpu).unwrap();
        let net = network(false);
        let err = step
            .loss_and_gradients(
                &net,
                &[0.5; 10],
                Loss::MeanSquaredError,
                BatchTargets::Values(&[0.0]),
                StepRandomness {
                    seed: 0,
                    dropout: false,
                },
            )
            .unwrap_err();
        assert!(err.to_string().contains("whole number"), "{err}");
    }
}
