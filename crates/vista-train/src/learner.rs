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
    /// The number of classes the model tells apart (the width of its output).
    pub num_classes: usize,
    /// The optimizer and its hyperparameters (fastai's `opt_func`; AdamW by default).
    pub optimizer: OptimizerConfig,
    /// ε of label smoothing (0 = plain cross-entropy).
    pub label_smoothing: f32,
    /// Seed of the backend's random state each epoch and of every step's dropout masks:
    /// the same seed gives the same fit.
    pub seed: u64,
    /// Hears of every step, epoch and note ([`vista_format::Quiet`] by default).
    pub observer: Observers,
    /// A weight per class in the training loss, for imbalanced classes: each image's
    /// loss term is scaled by its class's weight and the batch's mean is taken over its
    /// images (PyTorch's `CrossEntropyLoss(weight=)` divides by the sum of the weights
    /// instead, so uniform weights change the rate here and not there). The validation
    /// loss stays unweighted. `None`: every class weighs 1.
    pub class_weights: Option<Vec<f32>>,
}

impl LearnerConfig {
    /// fastai's defaults for `num_classes` classes: AdamW (0.9, 0.99, wd 0.01), label
    /// smoothing 0.1, seed 42, no output.
    pub fn new(num_classes: usize) -> Self {
        Self {
            num_classes,
            optimizer: OptimizerConfig::default(),
            label_smoothing: 0.1,
            seed: 42,
            observer: Observers::default(),
            class_weights: None,
        }
    }
}

/// fastai's `fine_tune` defaults: the body's rates are `1 / LR_MULT` of the head's.
pub const FINE_TUNE_LR_MULT: f64 = 100.0;

/// A model with its optimizer and data: fastai's `Learner`, with its verbs
/// ([`Learner::fit_one_cycle`], [`Learner::fine_tune`], [`Learner::lr_find`]).
///
/// ```no_run
/// # use vista_train::{Learner, LearnerConfig, OptimizerConfig};
/// # fn demo<B: burn::tensor::backend::AutodiffBackend>(
/// #     model: vista_models::AnyModel<B>, train: vista_data::Loader,
/// #     valid: vista_data::Loader, device: B::Device,
/// # ) -> vista_train::Result<()> {
/// let cfg = LearnerConfig::new(10);
/// let mut learn = Learner::new(model, train, valid, cfg, vec![device]);
/// let finder = learn.lr_find(&Default::default(), 28);
/// let lr = finder.suggestions().valley.unwrap_or(1e-3);
/// let metrics = learn.fit_one_cycle(3, lr, 28)?;
/// println!("accuracy {:.3}", metrics.last().unwrap().accuracy);
/// # Ok(())
/// # }
/// ```
pub struct Learner<B: AutodiffBackend, M: AutodiffModule<B>> {
    model: M,
    optim: Optim<M, B>,
    train: Loader,
    valid: Loader,
    cfg: LearnerConfig,
    /// Devices of the data-parallel shards; the first holds the model.
    devices: Vec<B::Device>,
    /// Learning-rate multiplier of each layer group (discriminative rates), when set.
    group_lrs: Option<Vec<f64>>,
    /// Epochs fitted so far; seeds each epoch's batches and dropout.
    epochs_done: usize,
    /// Every optimizer step's learning rate and loss.
    steps: Vec<StepRecord>,
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

impl<B: AutodiffBackend, M: AutodiffModule<B>> Learner<B, M> {
    /// The model, on the first device.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The model, for use after training.
    pub fn into_model(self) -> M {
        self.model
    }

    /// The optimizer and its state.
    pub fn optim(&self) -> &Optim<M, B> {
        &self.optim
    }

    /// The training batches.
    pub fn train_loader(&self) -> &Loader {
        &self.train
    }

    /// The validation batches.
    pub fn valid_loader(&self) -> &Loader {
        &self.valid
    }

    /// The settings the Learner fits with.
    pub fn config(&self) -> &LearnerConfig {
        &self.cfg
    }

    /// Reports steps, epochs and notes to `observer` from now on.
    pub fn set_observer(&mut self, observer: Observers) {
        self.cfg.observer = observer;
    }

    /// The devices of the data-parallel shards; the first holds the model.
    pub fn devices(&self) -> &[B::Device] {
        &self.devices
    }

    /// Epochs fitted so far (they seed the next epoch's batches and dropout).
    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }

    /// Every optimizer step's learning rate and loss so far.
    pub fn steps(&self) -> &[StepRecord] {
        &self.steps
    }

    /// Puts back the state of a checkpoint: weights, optimizer, epochs done and steps.
    pub fn restore(
        &mut self,
        model: M,
        optim: Optim<M, B>,
        epochs_done: usize,
        steps: Vec<StepRecord>,
    ) {
        self.model = model;
        self.optim = optim;
        self.epochs_done = epochs_done;
        self.steps = steps;
    }
}

/// What a [`Learner::fit`] callback says after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Train the next epoch.
    Continue,
    /// Stop here (early stopping); the epochs done so far are returned.
    Stop,
}

/// One fit: `epochs` epochs at `size` pixels under `schedule`.
#[derive(Debug, Clone)]
pub struct FitSpec {
    /// Name shown in the table (a stage of progressive resizing, `frozen`, ...).
    pub phase: String,
    /// The number of epochs of this fit, including any `skip`ped ones.
    pub epochs: usize,
    /// Side of the training and validation images, in pixels.
    pub size: u32,
    /// The learning rate at every step of the fit, spread over all its `epochs`.
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
    /// A Learner that fits `model` on `train`'s batches and scores it on `valid`'s, with
    /// the batches split over `devices`; the first device holds the model. Panics when
    /// `devices` is empty.
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

    /// Learning-rate multipliers per layer group (discriminative rates; see
    /// [`even_mults`]), or `None` for one rate everywhere.
    pub fn set_group_lrs(&mut self, mults: Option<Vec<f64>>) {
        if let Some(m) = &mults {
            assert_eq!(
                m.len(),
                self.model.layer_groups().len(),
                "one multiplier per layer group"
            );
        }
        self.group_lrs = mults;
    }

    /// fastai's `fit_one_cycle`: `epochs` epochs at `size` pixels under one-cycle with
    /// peak rate `lr_max` and fastai's defaults (warm-up over a quarter of the steps,
    /// from `lr_max / 25` down to `lr_max / 1e5`; momentum 0.95 → 0.85 → 0.95).
    pub fn fit_one_cycle(
        &mut self,
        epochs: usize,
        lr_max: f64,
        size: u32,
    ) -> Result<Vec<EpochMetrics>> {
        let spec = FitSpec {
            phase: format!("{size}px"),
            epochs,
            size,
            schedule: Schedule::one_cycle(lr_max),
            skip: 0,
        };
        self.fit(&spec, &mut |_, _| Ok(Flow::Continue))
    }

    /// fastai's `fine_tune` for a pretrained model: `freeze_epochs` one-cycle epochs
    /// with the body frozen (warm-up over 99% of the steps) at `base_lr`, then the whole
    /// model unfrozen for `epochs` one-cycle epochs at `base_lr / 2` (warm-up 30%,
    /// starting at a fifth of the peak), the body's layer groups at rates rising
    /// geometrically from `1 / FINE_TUNE_LR_MULT` of the head's. fastai's default
    /// `base_lr` is 2e-3.
    pub fn fine_tune(
        &mut self,
        epochs: usize,
        base_lr: f64,
        freeze_epochs: usize,
        size: u32,
    ) -> Result<Vec<EpochMetrics>> {
        let one_cycle = |lr_max: f64, pct_start: f64, div: f64| Schedule::OneCycle {
            lr_max,
            div,
            div_final: 1e5,
            pct_start,
            moms: (0.95, 0.85, 0.95),
        };
        let mut out = Vec::new();
        if freeze_epochs > 0 {
            self.freeze();
            self.group_lrs = None;
            let frozen = FitSpec {
                phase: "frozen".into(),
                epochs: freeze_epochs,
                size,
                schedule: one_cycle(base_lr, 0.99, 25.0),
                skip: 0,
            };
            out.extend(self.fit(&frozen, &mut |_, _| Ok(Flow::Continue))?);
        }
        self.unfreeze();
        let groups = self.model.layer_groups().len();
        self.group_lrs = Some(even_mults(1.0 / FINE_TUNE_LR_MULT, groups));
        let unfrozen = FitSpec {
            phase: format!("{size}px"),
            epochs,
            size,
            schedule: one_cycle(base_lr / 2.0, 0.3, 5.0),
            skip: 0,
        };
        out.extend(self.fit(&unfrozen, &mut |_, _| Ok(Flow::Continue))?);
        self.group_lrs = None;
        Ok(out)
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
        on_epoch: &mut dyn FnMut(&Self, &EpochMetrics) -> Result<Flow>,
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
                // One-cycle moves AdamW's β1 (SGD's momentum) against the rate, as fastai
                // does; other schedules keep the configured one.
                self.optim.set_momentum(spec.schedule.momentum(step, total));
                self.dropout_seed = Stream::Dropout.seed(self.cfg.seed, &[epoch, i as u64]);
                let loss = self.train_step(&batch, lr);
                if !loss.is_finite() {
                    return Err(Error::Diverged {
                        epoch: self.epochs_done + 1,
                        step: i + 1,
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
            let flow = on_epoch(self, &m)?;
            out.push(m);
            if flow == Flow::Stop {
                break;
            }
        }
        Ok(out)
    }

    /// One optimizer step on `batch` at learning rate `lr`; returns the batch's mean loss.
    #[inline(never)]
    pub fn train_step(&mut self, batch: &Batch, lr: f64) -> f32 {
        let k = self.cfg.num_classes;
        let mut t = targets(batch, k, self.cfg.label_smoothing);
        // Cross-entropy is linear in its target, so weighting class c's term is
        // weighting column c of the targets.
        if let Some(w) = &self.cfg.class_weights {
            for row in t.chunks_mut(k) {
                row.iter_mut().zip(w).for_each(|(v, w)| *v *= w);
            }
        }
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
        self.model = sync_batch_norm(self.model.clone(), &self.devices, results.len());
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

    /// The confusion matrix of the current model on the validation set at `size`.
    pub fn valid_confusion(&self, size: u32) -> vista_format::Confusion {
        let model = self.model.valid();
        let k = self.cfg.num_classes;
        let mut confusion = vista_format::Confusion::new(k);
        for batch in self.valid.epoch(0, size) {
            let probs =
                infer_probs::<B::InnerBackend, _>(&model, &self.devices, &batch.images, batch.size);
            for (row, &label) in probs.chunks_exact(k).zip(&batch.labels) {
                confusion.add(label, argmax(row) as u32);
            }
        }
        confusion
    }

    /// fastai's `lr_find`: trains with exponentially growing learning rates until the
    /// loss diverges, then puts the weights, batch-norm statistics and optimizer state
    /// back as they were.
    pub fn lr_find(&mut self, cfg: &LrFindConfig, size: u32) -> LrFinder {
        let model_before = self.model.clone().into_record();
        let optim_before = self.optim.clone();
        let steps_before = self.steps.len();
        let mut finder = LrFinder::new(cfg.clone());
        // fastai's finder sweeps at the optimizer's own momentum.
        self.optim.set_momentum(None);
        let observer = self.cfg.observer.clone();
        let task = observer.task("lr_find", cfg.num_it as u64);
        // Without a full batch there is nothing to sweep over (and no end to the epochs).
        let epochs = if self.train.len_batches() == 0 {
            LR_FIND_EPOCHS..LR_FIND_EPOCHS
        } else {
            LR_FIND_EPOCHS..u64::MAX
        };
        'sweep: for epoch in epochs {
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
