//! Self-supervised training on synthetic galaxies, printed epoch by epoch, with a 10-nearest-neighbour
//! class accuracy of the embeddings against the true classes: a quick way to compare objectives and
//! settings. `cargo run --release -p sdss-train --example ssl_synthetic -- [vicreg|simsiam] [epochs] [count]`
use sdss_cnn::{CnnConfig, CnnWeights};
use sdss_io::synthetic::{self, SyntheticConfig};
use sdss_train::ssl::{SslMethod, SslOptions, SslTrainer};
use sdss_train::{EpochRecord, Network, Observer};

struct Print;
impl Observer for Print {
    fn epoch_done(&mut self, r: &EpochRecord) {
        println!(
            "epoch {:3}  train {:9.4}  val {:9.4}  std {:.4}  lr {:.1e}  {:.1} s",
            r.epoch,
            r.train_loss,
            r.val_loss,
            r.embedding_std.unwrap_or(f64::NAN),
            r.learning_rate,
            r.seconds
        );
    }
}

/// Leave-one-out 10-NN majority-vote accuracy of `labels` on rows of `x (n × d)`.
fn knn_accuracy(x: &[f32], d: usize, labels: &[usize]) -> f64 {
    let n = labels.len();
    let mut hits = 0;
    for i in 0..n {
        let mut dist: Vec<(f32, usize)> = (0..n)
            .filter(|&j| j != i)
            .map(|j| {
                let s: f32 = (0..d).map(|k| (x[i * d + k] - x[j * d + k]).powi(2)).sum();
                (s, labels[j])
            })
            .collect();
        dist.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut votes = [0usize; 8];
        dist.iter().take(10).for_each(|&(_, l)| votes[l] += 1);
        let best = (0..8).max_by_key(|&l| (votes[l], usize::MAX - l)).unwrap();
        hits += (best == labels[i]) as usize;
    }
    hits as f64 / n as f64
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let method = match args.first().map(String::as_str) {
        Some("simsiam") => SslMethod::SimSiam,
        _ => SslMethod::Vicreg,
    };
    let epochs: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let count: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let set = synthetic::generate(&SyntheticConfig {
        count,
        seed: 7,
        size: 80,
        ..Default::default()
    })
    .unwrap();
    let images: Vec<f32> = set
        .iter()
        .flat_map(|(_, img)| img.pixels.iter().map(|&v| v as f32 / 255.0))
        .collect();
    let labels: Vec<usize> = set.iter().map(|(p, _)| p.class.label()).collect();
    let per = 80 * 80 * 3;
    let n_val = count / 10;
    let (val, train) = images.split_at(n_val * per);
    let cfg = CnnConfig::small();
    let net = Network::from_weights(cfg.clone(), &CnnWeights::random(&cfg, 1).unwrap()).unwrap();
    let opts = SslOptions {
        method,
        epochs,
        ..SslOptions::default()
    };
    let mut t = SslTrainer::new(net, opts, serde_json::json!({})).unwrap();
    let before = t.embed(&images).unwrap();
    println!(
        "random encoder: 10-NN class accuracy {:.3}",
        knn_accuracy(&before, 128, &labels)
    );
    let t0 = std::time::Instant::now();
    t.fit(train, val, None, &mut Print).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{} epochs in {secs:.1} s: {:.0} views/s",
        epochs,
        (2 * (count - n_val) * epochs) as f64 / secs
    );
    let after = t.embed(&images).unwrap();
    println!(
        "{}: 10-NN class accuracy {:.3}",
        method.name(),
        knn_accuracy(&after, 128, &labels)
    );
    let pixels_acc = knn_accuracy(&images, per, &labels);
    println!("raw pixels: 10-NN class accuracy {pixels_acc:.3}");
}
