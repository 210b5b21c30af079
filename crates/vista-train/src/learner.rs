//! The Learner (fastai's central object): a model, its optimizer, the training and
//! validation loaders, and the loop that fits them with a schedule.
//!
//! Data parallelism uses burn's own pieces, as burn-train's multi-device strategy does
//! (`MultiDeviceOptim::OptimMainDevice`): the batch is cut into one shard per device,
//! each worker thread runs forward and backward on `Module::fork` of the model on its
//! device, the gradients move to the main device with `GradientsParams::to_device`, a
//! `GradientsAccumulator` adds them, and one optimizer step follows. Each shard's loss is
//! its summed loss over the whole batch's size, so the shards' gradients add up to the
//! batch's mean gradient. On a CPU the same device may be listed twice: two threads then
//! keep two cores busy, which burn-flex's single-threaded kernels do not.

use std::time::Instant;

use burn::module::{AutodiffModule, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use vista_data::{Batch, Loader, derive_seed};
use vista_models::{Classifier, infer_probs, on_shards, set_trainable};
use vista_schedule::{LrFindConfig, LrFinder, Schedule};

use crate::error::{Error, Result};
use crate::loss::{soft_cross_entropy_sum, targets, targets_tensor};
use crate::optim::{Optim, OptimizerConfig};
use crate::parallel::{merge_grads, sync_batch_norm};
use vista_format::{EpochMetrics, StepRecord};
use vista_format::{Observers, Stream};

/// Loader epochs at and above this number are the LR finder's, so its batches never
/// coincide with (or shift) the training epochs' batches.
const LR_FIND_EPOCHS: u64 = 1 << 40;

/// How the Learner computes the loss and shows its work.
#[derive(Debug, Clone)]
pub struct LearnerConfig {
    pub num_classes: usize,
    pub optimizer: OptimizerConfig,
    /// ε of label smoothing (0 = plain cross-entropy).
    pub label_smoothing: f32,
    pub seed: u64,
    /// Hears of every step, epoch and note ([`vista_format::Quiet`] by default).
    pub observer: Observers,
}

/// A model with its optimizer and data.
pub struct Learner<B: AutodiffBackend, M: AutodiffModule<B>> {
    pub model: M,
    pub optim: Optim<M, B>,
    pub train: Loader,
    pub valid: Loader,
    pub cfg: LearnerConfig,
    /// Devices of the data-parallel shards; the first holds the model.
    pub devices: Vec<B::Device>,
    /// Learning-rate multiplier of each layer group (discriminative rates), when set.
    pub group_lrs: Option<Vec<f64>>,
    /// Epochs fitted so far; seeds each epoch's batches and dropout.
    pub epochs_done: usize,
    /// Every optimizer step's learning rate and loss.
    pub steps: Vec<StepRecord>,
    /// Seed of the current step's dropout masks (see `vista_models::seed_dropout`).
    dropout_seed: u64,
}

impl<B: AutodiffBackend, M: AutodiffModule<B>> std::fmt::Debug for Learner<B, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Learner")
            .field("cfg", &self.cfg)
            .field("devices", &self.devices.len())
            .field("epochs_done", &self.epochs_done)
            .finish_non_exhaustive()
    }
}

/// One fit: `epochs` epochs at `size` pixels under `schedule`.
#[derive(Debug, Clone)]
pub struct FitSpec {
    /// Name shown in the table (a stage of progressive resizing, `frozen`, ...).
    pub phase: String,
    pub epochs: usize,
    pub size: u32,
    pub schedule: Schedule,
    /// Epochs of this fit already done (when resuming); the schedule continues from there.
    pub skip: usize,
}

impl<B, M> Learner<B, M>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Classifier<B>,
    M::InnerModule: Classifier<B::InnerBackend>,
{
    pub fn new(
        model: M,
        train: Loader,
        valid: Loader,
        cfg: LearnerConfig,
        devices: Vec<B::Device>,
    ) -> Self {
        assert!(!devices.is_empty(), "the Learner needs at least one device");
        let optim = cfg.optimizer.init::<B, M>();
        Self {
            model: model.fork(&devices[0]),
            optim,
            train,
            valid,
            cfg,
            devices,
            group_lrs: None,
            epochs_done: 0,
            steps: Vec::new(),
            dropout_seed: 0,
        }
    }

    /// Freezes the body: only the head trains (fastai's `freeze`).
    pub fn freeze(&mut self) {
        self.model = self.model.clone().freeze_body();
    }

    /// Makes every layer trainable (fastai's `unfreeze`).
    pub fn unfreeze(&mut self) {
        self.model = set_trainable(self.model.clone(), true);
    }

    /// Fits as `spec` says, calling `on_epoch` after each epoch (the run saves its
    /// checkpoint there). Returns the epochs' metrics.
    pub fn fit(
        &mut self,
        spec: &FitSpec,
        on_epoch: &mut dyn FnMut(&Self, &EpochMetrics) -> Result<()>,
    ) -> Result<Vec<EpochMetrics>> {
        let per_epoch = self.train.len_batches();
        let total = per_epoch * spec.epochs;
        let mut out = Vec::new();
        for e in spec.skip..spec.epochs {
            let epoch = self.epochs_done as u64;
            B::seed(
                &self.devices[0],
                Stream::BackendEpoch.seed(self.cfg.seed, &[epoch]),
            );
            let start = Instant::now();
            let observer = self.cfg.observer.clone();
            let task = observer.task(&format!("{} epoch {}", spec.phase, e + 1), per_epoch as u64);
            let (mut loss_sum, mut seen, mut lr) = (0.0f64, 0usize, 0.0);
            for (i, batch) in self.train.epoch(epoch, spec.size).enumerate() {
                let step = e * per_epoch + i;
                lr = spec.schedule.lr(step, total);
                self.dropout_seed = Stream::Dropout.seed(self.cfg.seed, &[epoch, i as u64]);
                let loss = self.train_step(&batch, lr);
                if !loss.is_finite() {
                    return Err(Error::Diverged {
                        epoch: self.epochs_done + 1,
                        step: i,
                        value: loss,
                    });
                }
                loss_sum += f64::from(loss) * batch.len() as f64;
                seen += batch.len();
                self.steps.push(StepRecord {
                    step: self.steps.len(),
                    epoch: self.epochs_done + 1,
                    lr,
                    loss,
                });
                task.step(1);
                let rate = seen as f64 / start.elapsed().as_secs_f64();
                task.status(&format!(
                    "loss {:.4} · {rate:.0} img/s",
                    loss_sum / seen as f64
                ));
            }
            let train_secs = start.elapsed().as_secs_f64();
            drop(task);
            let (valid_loss, accuracy) = self.evaluate(spec.size);
            self.epochs_done += 1;
            let m = EpochMetrics {
                phase: spec.phase.clone(),
                epoch: self.epochs_done,
                size: spec.size,
                lr,
                train_loss: (loss_sum / seen.max(1) as f64) as f32,
                valid_loss,
                accuracy,
                error_rate: 1.0 - accuracy,
                images_per_sec: (seen as f64 / train_secs) as f32,
                wall_s: start.elapsed().as_secs_f32(),
            };
            self.cfg.observer.epoch(&m);
            on_epoch(self, &m)?;
            out.push(m);
        }
        Ok(out)
    }

    /// One optimizer step on `batch` at learning rate `lr`; returns the batch's mean loss.
    #[inline(never)]
    pub fn train_step(&mut self, batch: &Batch, lr: f64) -> f32 {
        let k = self.cfg.num_classes;
        let t = targets(batch, k, self.cfg.label_smoothing);
        let groups = self.group_lrs.as_ref().map(|_| self.model.layer_groups());
        let (n, s) = (batch.len(), batch.size);
        let image_len = 3 * s * s;
        let many = self.devices.len() > 1 && n > 1;
        let mut results: Vec<(Vec<GradientsParams>, f32)> =
            on_shards(n, &self.devices, |r, device| {
                // Each shard's dropout masks come from its own seed, whatever the
                // threads' timing.
                vista_models::seed_dropout(derive_seed(self.dropout_seed, &[r.start as u64]));
                let images = &batch.images[r.start * image_len..r.end * image_len];
                let t = &t[r.start * k..r.end * k];
                let groups = groups.as_deref();
                if many {
                    let model = self.model.clone().fork(device);
                    shard_grads(&model, device, images, t, n, s, k, groups)
                } else {
                    shard_grads(&self.model, device, images, t, n, s, k, groups)
                }
            });
        sync_batch_norm(&self.model, results.len());
        let loss: f32 = results.iter().map(|(_, l)| l).sum();
        let n_groups = results[0].0.len();
        let main = &self.devices[0];
        for g in 0..n_groups {
            let shards = (results.iter_mut())
                .map(|(shard, _)| std::mem::take(&mut shard[g]))
                .collect();
            let grads = merge_grads(shards, &self.model, main);
            if grads.is_empty() {
                continue;
            }
            let mult = self.group_lrs.as_ref().map_or(1.0, |m| m[g]);
            self.model = self.optim.step(lr * mult, self.model.clone(), grads);
        }
        loss
    }

    /// Validation loss (plain cross-entropy) and accuracy at `size` pixels.
    pub fn evaluate(&self, size: u32) -> (f32, f32) {
        let model = self.model.valid();
        let k = self.cfg.num_classes;
        let (mut loss, mut correct, mut n) = (0.0f64, 0usize, 0usize);
        let task = (self.cfg.observer).task("valid", self.valid.len_batches() as u64);
        for batch in self.valid.epoch(0, size) {
            let probs =
                infer_probs::<B::InnerBackend, _>(&model, &self.devices, &batch.images, batch.size);
            for (row, &label) in probs.chunks_exact(k).zip(&batch.labels) {
                loss -= f64::from(row[label as usize].max(1e-12).ln());
                if argmax(row) == label as usize {
                    correct += 1;
                }
            }
            n += batch.len();
            task.step(1);
        }
        drop(task);
        let n = n.max(1) as f64;
        ((loss / n) as f32, (correct as f64 / n) as f32)
    }

    /// fastai's `lr_find`: trains with exponentially growing learning rates until the
    /// loss diverges, then puts the weights, batch-norm statistics and optimizer state
    /// back as they were.
    pub fn lr_find(&mut self, cfg: &LrFindConfig, size: u32) -> LrFinder {
        let model_before = self.model.clone().into_record();
        let optim_before = self.optim.clone();
        let steps_before = self.steps.len();
        let mut finder = LrFinder::new(cfg.clone());
        let observer = self.cfg.observer.clone();
        let task = observer.task("lr_find", cfg.num_it as u64);
        'sweep: for epoch in LR_FIND_EPOCHS.. {
            for batch in self.train.epoch(epoch, size) {
                let lr = finder.lr();
                let loss = self.train_step(&batch, lr);
                task.step(1);
                if !finder.record(f64::from(loss)) {
                    break 'sweep;
                }
            }
        }
        drop(task);
        // Flush the running statistics' pending updates before overwriting them, or the
        // sweep's last batch would come back at the next forward pass.
        let _ = self.model.clone().into_record();
        self.model = self.model.clone().load_record(model_before);
        self.optim = optim_before;
        self.steps.truncate(steps_before);
        finder
    }

    /// Class probabilities `[n, num_classes]` (row-major) of normalized images at `size`.
    pub fn predict(&self, images: &[f32], size: usize) -> Vec<f32> {
        infer_probs::<B::InnerBackend, _>(&self.model.valid(), &self.devices, images, size)
    }
}

/// fastai's `even_mults`: `n` multipliers from `start` to 1, evenly spaced on a log scale.
pub fn even_mults(start: f64, n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![1.0],
        _ => (0..n)
            .map(|i| start * (1.0 / start).powf(i as f64 / (n - 1) as f64))
            .collect(),
    }
}

fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 { (i, v) } else { best }
        })
        .0
}

/// Forward and backward of one shard; its gradients (split by layer group when
/// `groups` is given) and its share of the batch's mean loss.
#[allow(clippy::too_many_arguments)]
fn shard_grads<B: AutodiffBackend, M: AutodiffModule<B> + Classifier<B>>(
    model: &M,
    device: &B::Device,
    images: &[f32],
    targets: &[f32],
    batch_len: usize,
    size: usize,
    k: usize,
    groups: Option<&[Vec<ParamId>]>,
) -> (Vec<GradientsParams>, f32) {
    let rows = targets.len() / k;
    let x = Tensor::<B, 4>::from_data(
        TensorData::new(images.to_vec(), [rows, 3, size, size]),
        device,
    );
    let t = targets_tensor::<B>(targets, k, device);
    let loss = soft_cross_entropy_sum(model.logits(x), t).div_scalar(batch_len as f64);
    let value: f32 = loss.clone().into_scalar().elem();
    let mut grads = loss.backward();
    let params = match groups {
        None => vec![GradientsParams::from_grads(grads, model)],
        Some(groups) => groups
            .iter()
            .map(|ids| GradientsParams::from_params(&mut grads, model, ids))
            .collect(),
    };
    (params, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_mults_run_from_start_to_one_geometrically() {
        let m = even_mults(0.01, 3);
        assert!(
            (m[0] - 0.01).abs() < 1e-12 && (m[1] - 0.1).abs() < 1e-12 && (m[2] - 1.0).abs() < 1e-12
        );
        assert_eq!(even_mults(0.01, 1), vec![1.0]);
    }
}
