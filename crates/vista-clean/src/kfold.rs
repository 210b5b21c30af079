//! Out-of-fold predictions: each training image is predicted by a model that never saw
//! it. The images are cut into `k` stratified folds (seeded); for each fold a model is
//! trained on the others and predicts it. Each fold is a resumable run folder, and a
//! finished fold's predictions are kept, so an interrupted pass carries on.

use std::path::Path;

use burn::tensor::backend::AutodiffBackend;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use vista_eval::{PredictOptions, Predictions, predict_images};
use vista_format::Stream;
use vista_train::{RunOptions, TrainConfig, TrainData, latest_checkpoint, load_run, train};

use crate::error::{Error, Result};

/// The fold (0..k) of each sample: each class is shuffled (seeded) and dealt round the
/// folds, so every fold has each class in proportion.
pub fn stratified_folds(labels: &[u32], k: usize, seed: u64) -> Vec<usize> {
    let mut fold = vec![0; labels.len()];
    let classes = labels.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut offset = 0;
    for c in 0..classes {
        let mut members: Vec<usize> = (0..labels.len())
            .filter(|&i| labels[i] == c as u32)
            .collect();
        let mut rng = ChaCha8Rng::seed_from_u64(Stream::Fold.seed(seed, &[c as u64]));
        members.shuffle(&mut rng);
        for (j, &i) in members.iter().enumerate() {
            // Rotating the start per class keeps fold sizes within one of each other.
            fold[i] = (j + offset) % k.max(1);
        }
        offset += members.len();
    }
    fold
}

/// Out-of-fold predictions of every image of `data`, named by `names`, with the given
/// labels attached. Fold `f` trains in `dir/fold-f` with `cfg`.
pub fn out_of_fold<B: AutodiffBackend>(
    cfg: &TrainConfig,
    data: &TrainData,
    names: &[String],
    k: usize,
    dir: &Path,
    devices: Vec<B::Device>,
    observer: &vista_format::Observers,
) -> Result<Predictions> {
    if k < 2 {
        return Err(Error::Invalid {
            path: dir.to_path_buf(),
            message: format!("out-of-fold predictions need at least 2 folds, not {k}"),
        });
    }
    let n = data.labels.len();
    let folds = stratified_folds(&data.labels, k, cfg.seed);
    let classes = data.classes.classes.clone();
    let nc = classes.len();
    let mut probs = vec![0.0f32; n * nc];
    for f in 0..k {
        let fold_dir = dir.join(format!("fold-{f}"));
        let saved = vista_format::RunDir::new(&fold_dir).held_out_predictions();
        let held: Vec<usize> = (0..n).filter(|&i| folds[i] == f).collect();
        let fold_preds = if saved.exists() {
            Predictions::read_csv(&saved)?
        } else {
            let keep: Vec<usize> = (0..n).filter(|&i| folds[i] != f).collect();
            let part = data.subset(&keep);
            observer.note(&format!(
                "fold {}/{k}: training on {} images",
                f + 1,
                keep.len()
            ));
            let resume = latest_checkpoint(&fold_dir)?.is_some();
            train::<B>(
                cfg,
                &part,
                &fold_dir,
                devices.clone(),
                &RunOptions {
                    resume,
                    observer: observer.clone(),
                },
            )?;
            let run = load_run::<B::InnerBackend>(&fold_dir, &devices[0])?;
            let opts = PredictOptions::for_run(
                run.config.final_size(),
                run.config.normalize,
                run.config.seed,
            );
            let images = data.images.pick(held.iter().copied());
            let idx: Vec<u64> = held.iter().map(|&i| i as u64).collect();
            let inner: Vec<_> = devices.clone();
            let p =
                predict_images::<B::InnerBackend, _>(&run.model, &inner, &images, &idx, nc, &opts);
            let preds = Predictions::from_probs(
                classes.clone(),
                held.iter().map(|&i| names[i].clone()).collect(),
                Some(held.iter().map(|&i| data.labels[i]).collect()),
                p,
            );
            preds.write_csv(&saved)?;
            preds
        };
        for (j, &i) in held.iter().enumerate() {
            probs[i * nc..(i + 1) * nc].copy_from_slice(fold_preds.row(j));
        }
    }
    Ok(Predictions::from_probs(
        classes,
        names.to_vec(),
        Some(data.labels.to_vec()),
        probs,
    ))
}
