//! Self-supervised training on synthetic galaxies (made deterministically here, not committed): a short
//! VICReg run lowers its loss and does not collapse, the same seed gives the same weights bit for bit,
//! and a run interrupted in the middle of an epoch and resumed ends exactly where an uninterrupted run
//! ends.
//!
//! The collapse check: the per-dimension standard deviation of the L2-normalised 128-wide embeddings
//! of the validation galaxies. A collapsed encoder (every galaxy on one point) gives 0; a perfectly
//! spread one gives 1/sqrt(128) = 0.088. In this run the spread first falls (to 0.010 after epoch 1,
//! from wherever the random weights put it) and then grows as VICReg's variance term takes hold (0.016
//! after epoch 6; 0.054 after 40 epochs on the real galaxies); SimSiam without batch normalisation
//! instead shrinks steadily (0.006 after 8 epochs). A run that is learning must end above the floor
//! 0.013 and at least 1.3 times its lowest value of the run.

use sdss_cnn::{CnnConfig, CnnWeights};
use sdss_io::synthetic::{self, SyntheticConfig};
use sdss_train::ssl::{normalized_embedding_std, SslOptions, SslTrainer};
use sdss_train::{BatchProgress, Network, Observer, Quiet, TrainError};

const PER: usize = 80 * 80 * 3;
const COLLAPSE_FLOOR: f64 = 0.013;

fn galaxies(count: usize, seed: u64) -> Vec<f32> {
    let set = synthetic::generate(&SyntheticConfig {
        count,
        seed,
        size: 80,
        ..SyntheticConfig::default()
    })
    .unwrap();
    set.iter()
        .flat_map(|(_, img)| img.pixels.iter().map(|&v| v as f32 / 255.0))
        .collect()
}

fn trainer(options: SslOptions, weight_seed: u64, key: serde_json::Value) -> SslTrainer {
    let cfg = CnnConfig::small();
    let w = CnnWeights::random(&cfg, weight_seed).unwrap();
    SslTrainer::new(Network::from_weights(cfg, &w).unwrap(), options, key).unwrap()
}

#[test]
fn short_vicreg_run_lowers_its_loss_and_does_not_collapse() {
    let images = galaxies(384, 21);
    let (val, train) = images.split_at(64 * PER);
    let options = SslOptions {
        epochs: 6,
        batch_size: 64,
        ..SslOptions::default()
    };
    let mut t = trainer(options, 5, serde_json::json!({"test": "collapse"}));
    let (val_before, _) = t.evaluate(val).unwrap();
    t.fit(train, val, None, &mut Quiet).unwrap();
    let h = t.history();
    assert_eq!(h.len(), 6);
    let last = h.last().unwrap();
    for r in h {
        eprintln!(
            "epoch {} train {:.4} val {:.4} std {:.4}",
            r.epoch,
            r.train_loss,
            r.val_loss,
            r.embedding_std.unwrap()
        );
    }
    assert!(
        last.val_loss < val_before - 0.5 && last.train_loss < h[0].train_loss,
        "loss did not fall: val {val_before:.4} -> {:.4}, train {:.4} -> {:.4}",
        last.val_loss,
        h[0].train_loss,
        last.train_loss
    );
    let std_after = last.embedding_std.unwrap();
    let lowest = h
        .iter()
        .map(|r| r.embedding_std.unwrap())
        .fold(f64::INFINITY, f64::min);
    assert!(
        std_after > COLLAPSE_FLOOR && std_after >= 1.3 * lowest,
        "embeddings collapsing: std ends at {std_after:.4}, lowest {lowest:.4} (floor {COLLAPSE_FLOOR})"
    );
    // The recorded value is the embeddings' own spread, as the library computes it.
    let emb = t.embed(val).unwrap();
    assert_eq!(normalized_embedding_std(&emb, 128), std_after);
}

/// Stops after a given number of steps: a Ctrl-C in the middle of an epoch.
struct StopAfter(usize, usize);
impl Observer for StopAfter {
    fn batch_done(&mut self, _p: &BatchProgress) {
        self.1 += 1;
    }
    fn should_stop(&self) -> bool {
        self.1 >= self.0
    }
}

#[test]
fn same_seed_same_weights_and_resume_ends_where_an_uninterrupted_run_ends() {
    let images = galaxies(96, 23);
    let (val, train) = images.split_at(16 * PER);
    let options = SslOptions {
        epochs: 2,
        batch_size: 16,
        ..SslOptions::default()
    };
    let key = serde_json::json!({"test": "ssl-resume"});
    let new = || trainer(options.clone(), 9, key.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut a = new();
    a.fit(train, val, Some(&dir.path().join("a")), &mut Quiet)
        .unwrap();
    let mut b = new();
    b.fit(train, val, None, &mut Quiet).unwrap();
    assert_eq!(
        a.network().params,
        b.network().params,
        "same seed, other weights"
    );

    // Interrupted in the middle of epoch 2 (5 steps per epoch: 80 / 16).
    let ck = dir.path().join("c");
    let mut c = new();
    let err = c
        .fit(train, val, Some(&ck), &mut StopAfter(7, 0))
        .unwrap_err();
    assert!(matches!(err, TrainError::Interrupted { epoch: 2 }), "{err}");
    let mut resumed = SslTrainer::resume(&ck, &key)
        .unwrap()
        .expect("a checkpoint");
    assert_eq!(resumed.history().len(), 1);
    resumed.fit(train, val, Some(&ck), &mut Quiet).unwrap();
    let without_time = |h: &[sdss_train::EpochRecord]| {
        h.iter()
            .map(|r| (r.epoch, r.train_loss, r.val_loss, r.embedding_std))
            .collect::<Vec<_>>()
    };
    assert_eq!(without_time(resumed.history()), without_time(a.history()));
    assert_eq!(
        resumed.network().params,
        a.network().params,
        "resumed run ends elsewhere"
    );

    // A checkpoint of another run is refused, naming what differs.
    let other = serde_json::json!({"test": "other"});
    let err = SslTrainer::resume(&ck, &other).err().expect("refused");
    assert!(err.to_string().contains("`test`"), "{err}");
    // A supervised trainer does not mistake it for its own.
    let err = sdss_train::Trainer::resume(&ck, &key)
        .err()
        .expect("not a supervised checkpoint");
    assert!(err.to_string().contains("checkpoint"), "{err}");
}
