//! Training a Wasserstein GAN (Arjovsky et al. 2017, Algorithm 1) on a dataset's
//! training images: after every `critic_steps` (5) critic steps one generator step, as
//! fastai's `GANLearner.wgan` switches them; the critic's weights clipped into
//! `[-clip, clip]` (0.01) after each of its steps; RMSprop at 5e-5 without momentum (the
//! paper's optimizer; fastai's example uses Adam with β1 = 0, `--optimizer adam`). The
//! critic scores a real and a generated batch in one pass and minimizes
//! `mean C(fake) - mean C(real)`; the generator minimizes `-mean C(fake)` (fastai's signs
//! are the opposite, which is the same game). Critic steps are counted across epochs.
//!
//! Why not WGAN-GP (Gulrajani et al. 2017): its penalty differentiates the norm of the
//! critic's gradient with respect to its input, a double backward. burn 0.21's autodiff
//! hands gradients out as tensors of the inner backend (`Tensor::grad` returns
//! `Tensor<B::InnerBackend, D>`), outside any graph, so they cannot be differentiated
//! again. Weight clipping needs only first derivatives.
//!
//! An epoch is one pass of the critic over the training images. A run folder holds
//! `gan.json` (the settings, channels resolved), `classes.txt`, `checkpoints/epoch-NNNN`
//! (both networks, both optimizers and `state.json`, renamed into place and named by
//! `checkpoints/latest`), `samples/epoch-NNNN.png` (one row per class, up to 16, from
//! the same noise every epoch), `losses.csv`, `gan_loss.png`, and at the end
//! `generator.json` (its epochs) and `generator.bin`, renamed into place last. Batches
//! and noise are seeded per `(seed, epoch, step)`, and a checkpoint records the data it
//! trained on, so a resumed run repeats what the uninterrupted one would have done.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::{AutodiffModule, Module};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use image::RgbImage;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal, Uniform};
use serde::{Deserialize, Serialize};
use vista_data::{ClassMap, derive_seed, grid, labels_tensor, resize_plain, write_atomic};
use vista_format::{CheckpointDir, GanDir, GanEpoch, GanStep, GeneratorInfo};

/// The records of a GAN checkpoint.
const GENERATOR: &str = "generator";
const CRITIC: &str = "critic";
const OPTIM_GENERATOR: &str = "optim_generator";
const OPTIM_CRITIC: &str = "optim_critic";
use vista_format::Stream;
use vista_models::{Critic, CriticConfig, Generator, GeneratorConfig, clip_weights};

use crate::error::{Error, Result};
use crate::learner::progress_bar;
use crate::optim::{Optim, OptimizerConfig};
use crate::parallel::{merge_grads, sync_batch_norm};
use crate::record::load_checked;
use crate::run::{
    RunOptions, TrainData, on_large_stack, read_json, recorder, refuse_started_run, resume_newest,
    write_checkpoint,
};
use vista_models::init_seeded_with;
use vista_models::on_shards;
use vista_plot::{gan_plot, write_png};

/// Every setting of a GAN run; saved as `gan.json` in the run folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GanConfig {
    /// Side of the generated images: 32 or 64.
    pub size: usize,
    /// Colour channels; `None`: 1 when every training image is grey, else 3.
    pub channels: Option<usize>,
    /// Length of the noise vector.
    pub noise: usize,
    /// Feature maps of the generator's last hidden layer and of the critic's first.
    pub features: usize,
    /// One generator for every class, told the class (the critic is told it too);
    /// off, the generator ignores classes.
    pub conditional: bool,
    pub epochs: usize,
    pub batch_size: usize,
    /// Critic steps per generator step.
    pub critic_steps: usize,
    /// The critic's weights are clipped into `[-clip, clip]` after each of its steps.
    pub clip: f32,
    pub optimizer: OptimizerConfig,
    pub lr: f64,
    pub seed: u64,
    /// Data-parallel shards per batch, each on its own thread and device.
    pub shards: usize,
}

impl Default for GanConfig {
    fn default() -> Self {
        Self {
            size: 32,
            channels: None,
            noise: 100,
            features: 64,
            conditional: true,
            epochs: 5,
            batch_size: 64,
            critic_steps: 5,
            clip: 0.01,
            optimizer: OptimizerConfig::rmsprop(),
            lr: 5e-5,
            seed: 42,
            shards: 1,
        }
    }
}

impl GanConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if !matches!(self.size, 32 | 64) {
            return bad(format!(
                "GAN image size must be 32 or 64, not {}",
                self.size
            ));
        }
        if let Some(c) = self.channels
            && c != 1
            && c != 3
        {
            return bad(format!("GAN channels must be 1 or 3, not {c}"));
        }
        if self.batch_size < 2 || self.critic_steps == 0 || self.noise == 0 {
            return bad("batch size >= 2, critic steps >= 1 and noise >= 1 are needed".into());
        }
        if self.features < 2 {
            return bad(format!(
                "GAN features must be at least 2, not {}",
                self.features
            ));
        }
        if !(self.clip > 0.0 && self.clip.is_finite()) {
            return bad(format!(
                "weight clipping bound {} must be positive",
                self.clip
            ));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad(format!("learning rate {} is not positive", self.lr));
        }
        Ok(())
    }

    fn channels(&self) -> usize {
        self.channels.unwrap_or(3)
    }

    /// The generator this config builds for `classes` classes.
    pub fn generator(&self, classes: usize) -> GeneratorConfig {
        GeneratorConfig::new(self.size)
            .with_channels(self.channels())
            .with_noise(self.noise)
            .with_features(self.features)
            .with_num_classes(self.conditional.then_some(classes))
    }

    /// The critic this config builds for `classes` classes.
    pub fn critic(&self, classes: usize) -> CriticConfig {
        CriticConfig::new(self.size)
            .with_channels(self.channels())
            .with_features(self.features)
            .with_num_classes(self.conditional.then_some(classes))
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct GanState {
    epochs: Vec<GanEpoch>,
    steps: Vec<GanStep>,
    /// The training data: image count and a hash of the labels, checked on resume.
    images: usize,
    labels_hash: u64,
}

/// FNV-1a over the labels: enough to notice that a resume got other data.
fn labels_hash(labels: &[u32]) -> u64 {
    labels.iter().fold(0xcbf2_9ce4_8422_2325, |h, &l| {
        l.to_le_bytes()
            .iter()
            .fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
    })
}

/// The keys of two JSON objects whose values differ.
fn differing_keys(a: &GanConfig, b: &GanConfig) -> Vec<String> {
    let (a, b) = (
        serde_json::to_value(a).expect("config serializes"),
        serde_json::to_value(b).expect("config serializes"),
    );
    a.as_object()
        .map(|a| {
            a.iter()
                .filter(|(k, v)| b.get(k.as_str()) != Some(v))
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// A trained generator, loaded for sampling.
#[derive(Debug)]
pub struct TrainedGan<B: Backend> {
    pub config: GanConfig,
    pub classes: ClassMap,
    pub generator: Generator<B>,
    /// The file the generator came from.
    pub weights: PathBuf,
    pub epochs: usize,
}

/// True when every pixel of every image has equal red, green and blue.
pub fn all_grey(images: &[RgbImage]) -> bool {
    images
        .iter()
        .all(|img| img.pixels().all(|p| p[0] == p[1] && p[1] == p[2]))
}

/// The images at `size` px in [-1, 1], `[n, channels, size, size]` row-major; one
/// channel is the mean of the three.
fn real_images(images: &[RgbImage], size: usize, channels: usize) -> Vec<f32> {
    let plane = size * size;
    let mut out = vec![0f32; images.len() * channels * plane];
    let mut rgb = vec![0f32; 3 * plane];
    for (img, dst) in images.iter().zip(out.chunks_exact_mut(channels * plane)) {
        resize_plain(img, size as u32, (1.0, 1.0), &mut rgb);
        if channels == 3 {
            for (d, s) in dst.iter_mut().zip(&rgb) {
                *d = s * 2.0 - 1.0;
            }
        } else {
            for (i, d) in dst.iter_mut().enumerate() {
                let m = (rgb[i] + rgb[plane + i] + rgb[2 * plane + i]) / 3.0;
                *d = m * 2.0 - 1.0;
            }
        }
    }
    out
}

/// Standard normal noise, `n * dim` values, from `seed`.
fn normal_noise(seed: u64, n: usize, dim: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n * dim)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect()
}

/// The generator's images for `labels`, CHW in [0, 1] with three channels (grey ones
/// repeated), in `labels`' order. Image `i`'s noise comes from `(seed, i)` alone, so
/// the result does not depend on how the work is chunked.
pub fn generate<B: Backend>(
    generator: &Generator<B>,
    cfg: &GanConfig,
    labels: &[u32],
    seed: u64,
    device: &B::Device,
) -> Vec<Vec<f32>> {
    let (c, s) = (cfg.channels(), cfg.size);
    let plane = s * s;
    let mut out = Vec::with_capacity(labels.len());
    for (chunk_i, chunk) in labels.chunks(256).enumerate() {
        let noise: Vec<f32> = (0..chunk.len())
            .flat_map(|j| {
                normal_noise(
                    derive_seed(seed, &[(chunk_i * 256 + j) as u64]),
                    1,
                    cfg.noise,
                )
            })
            .collect();
        let z = Tensor::<B, 2>::from_data(TensorData::new(noise, [chunk.len(), cfg.noise]), device);
        let y = cfg.conditional.then(|| labels_tensor::<B>(chunk, device));
        let x: Vec<f32> = generator
            .forward(z, y)
            .into_data()
            .convert::<f32>()
            .into_vec()
            .expect("images are f32");
        for img in x.chunks_exact(c * plane) {
            let mut rgb = Vec::with_capacity(3 * plane);
            for ch in 0..3 {
                let src = &img[(ch % c) * plane..(ch % c + 1) * plane];
                rgb.extend(src.iter().map(|v| (v + 1.0) / 2.0));
            }
            out.push(rgb);
        }
    }
    out
}

/// Trains a WGAN as `cfg` says on `data`'s images, writing everything into `dir`.
pub fn train_gan<B: AutodiffBackend>(
    cfg: &GanConfig,
    data: &TrainData,
    dir: &Path,
    devices: Vec<B::Device>,
    opts: &RunOptions,
) -> Result<Vec<GanEpoch>> {
    on_large_stack(dir, || train_gan_here::<B>(cfg, data, dir, devices, opts))
}

/// Checks the folder and resolves the channels; returns the settings to run with.
fn prepare_gan_dir(
    cfg: &GanConfig,
    data: &TrainData,
    dir: &Path,
    opts: &RunOptions,
) -> Result<GanConfig> {
    let config_path = GanDir::new(dir).config();
    refuse_started_run(dir, opts, "a GAN run")?;
    let mut resolved = cfg.clone();
    resolved.channels = Some(
        cfg.channels
            .unwrap_or(if all_grey(&data.images) { 1 } else { 3 }),
    );
    let samples = GanDir::new(dir).samples();
    std::fs::create_dir_all(&samples).map_err(|e| Error::io(&samples, e))?;
    let classes_path = GanDir::new(dir).classes();
    if opts.resume && config_path.exists() {
        // Only the number of epochs may change: a finished run resumed with more
        // epochs trains on.
        let mut saved: GanConfig = read_json(&config_path)?;
        saved.epochs = resolved.epochs;
        if saved != resolved {
            return Err(Error::Config(format!(
                "--resume with settings that differ from {} ({}; only --epochs may change); resume with the same settings",
                config_path.display(),
                differing_keys(&saved, &resolved).join(", ")
            )));
        }
        if ClassMap::load(&classes_path).ok().as_ref() != Some(&data.classes) {
            return Err(Error::Config(format!(
                "--resume on data whose classes differ from {}",
                classes_path.display()
            )));
        }
        write_atomic(
            &config_path,
            &serde_json::to_vec_pretty(&resolved).expect("config serializes"),
        )?;
        return Ok(resolved);
    }
    // The class map first: `gan.json` marks a started run.
    data.classes.save(&classes_path)?;
    write_atomic(
        &config_path,
        &serde_json::to_vec_pretty(&resolved).expect("config serializes"),
    )?;
    Ok(resolved)
}

struct GanTrainer<B: AutodiffBackend> {
    cfg: GanConfig,
    classes: usize,
    generator: Generator<B>,
    critic: Critic<B>,
    optim_g: Optim<Generator<B>, B>,
    optim_c: Optim<Critic<B>, B>,
    devices: Vec<B::Device>,
}

impl<B: AutodiffBackend> GanTrainer<B> {
    /// One critic step on `real` (`[n, c, s, s]`) with `labels`; returns the batch's
    /// Wasserstein estimate.
    fn critic_step(&mut self, real: &[f32], labels: &[u32], noise: &[f32]) -> f32 {
        let (n, c, s, nz) = (
            labels.len(),
            self.cfg.channels(),
            self.cfg.size,
            self.cfg.noise,
        );
        let image_len = c * s * s;
        let cond = self.cfg.conditional;
        let many = self.devices.len() > 1 && n > 1;
        let results = on_shards(n, &self.devices, |r, device| {
            let (generator, critic) = self.shard_modules(many, device);
            let rows = r.len();
            let real = Tensor::<B, 4>::from_data(
                TensorData::new(
                    real[r.start * image_len..r.end * image_len].to_vec(),
                    [rows, c, s, s],
                ),
                device,
            );
            let z = Tensor::<B, 2>::from_data(
                TensorData::new(noise[r.start * nz..r.end * nz].to_vec(), [rows, nz]),
                device,
            );
            let y = cond.then(|| labels_tensor::<B>(&labels[r.clone()], device));
            // The generator runs in training mode, as it does in fastai's and the
            // paper's code; no gradient flows into it.
            let fake = generator.no_grad().forward(z, y.clone()).detach();
            let yy: Option<Tensor<B, 1, Int>> = y.map(|y| Tensor::cat(vec![y.clone(), y], 0));
            let scores = critic.forward(Tensor::cat(vec![real, fake], 0), yy);
            let real_sum = scores.clone().narrow(0, 0, rows).sum();
            let fake_sum = scores.narrow(0, rows, rows).sum();
            let loss = (fake_sum - real_sum).div_scalar(n as f64);
            let value: f32 = loss.clone().into_scalar().elem();
            (
                GradientsParams::from_grads(loss.backward(), &critic),
                -value,
            )
        });
        sync_batch_norm(&self.generator, results.len());
        let w = results.iter().map(|(_, v)| v).sum();
        let grads = merge_grads(
            results.into_iter().map(|(g, _)| g).collect(),
            &self.critic.clone(),
            &self.devices[0],
        );
        let critic = self.optim_c.step(self.cfg.lr, self.critic.clone(), grads);
        self.critic = clip_weights(critic, self.cfg.clip);
        w
    }

    /// One generator step on `noise` for `labels`; returns its loss.
    fn generator_step(&mut self, labels: &[u32], noise: &[f32]) -> f32 {
        let (n, nz) = (labels.len(), self.cfg.noise);
        let cond = self.cfg.conditional;
        let many = self.devices.len() > 1 && n > 1;
        let results = on_shards(n, &self.devices, |r, device| {
            let (generator, critic) = self.shard_modules(many, device);
            let z = Tensor::<B, 2>::from_data(
                TensorData::new(noise[r.start * nz..r.end * nz].to_vec(), [r.len(), nz]),
                device,
            );
            let y = cond.then(|| labels_tensor::<B>(&labels[r.clone()], device));
            let fake = generator.forward(z, y.clone());
            let loss = critic
                .no_grad()
                .forward(fake, y)
                .sum()
                .neg()
                .div_scalar(n as f64);
            let value: f32 = loss.clone().into_scalar().elem();
            (
                GradientsParams::from_grads(loss.backward(), &generator),
                value,
            )
        });
        sync_batch_norm(&self.generator, results.len());
        let loss = results.iter().map(|(_, v)| v).sum();
        let grads = merge_grads(
            results.into_iter().map(|(g, _)| g).collect(),
            &self.generator.clone(),
            &self.devices[0],
        );
        self.generator = self
            .optim_g
            .step(self.cfg.lr, self.generator.clone(), grads);
        loss
    }

    /// The networks for one shard's thread: forked onto its device when there are
    /// several shards.
    fn shard_modules(&self, many: bool, device: &B::Device) -> (Generator<B>, Critic<B>) {
        if many {
            (
                self.generator.clone().fork(device),
                self.critic.clone().fork(device),
            )
        } else {
            (self.generator.clone(), self.critic.clone())
        }
    }

    fn save_checkpoint(&self, dir: &Path, state: &GanState) -> Result<()> {
        write_checkpoint(dir, state.epochs.len(), |tmp| {
            let err = |network: &str| {
                let path = tmp.file(network);
                move |e| Error::record(&path, e)
            };
            self.generator
                .clone()
                .save_file(tmp.stem(GENERATOR), &recorder())
                .map_err(err(GENERATOR))?;
            self.critic
                .clone()
                .save_file(tmp.stem(CRITIC), &recorder())
                .map_err(err(CRITIC))?;
            self.optim_g.save(&tmp.stem(OPTIM_GENERATOR))?;
            self.optim_c.save(&tmp.stem(OPTIM_CRITIC))?;
            Ok(write_atomic(
                &tmp.state(),
                &serde_json::to_vec(state).expect("state serializes"),
            )?)
        })
    }

    fn resume(&mut self, ckpt: &Path) -> Result<GanState> {
        let device = self.devices[0].clone();
        let ckpt = CheckpointDir::new(ckpt);
        let load_err = |network: &str| {
            let path = ckpt.file(network);
            move |e| Error::record(&path, e)
        };
        self.generator = load_checked(&ckpt.file(GENERATOR), || {
            self.generator
                .clone()
                .load_file(ckpt.stem(GENERATOR), &recorder(), &device)
                .map_err(load_err(GENERATOR))
        })?;
        self.critic = load_checked(&ckpt.file(CRITIC), || {
            self.critic
                .clone()
                .load_file(ckpt.stem(CRITIC), &recorder(), &device)
                .map_err(load_err(CRITIC))
        })?;
        self.optim_g = self
            .optim_g
            .clone()
            .load(&ckpt.stem(OPTIM_GENERATOR), &device)?;
        self.optim_c = self
            .optim_c
            .clone()
            .load(&ckpt.stem(OPTIM_CRITIC), &device)?;
        read_json(&ckpt.state())
    }
}

/// Columns of the sample grid: this many images of each class, one class a row.
const SAMPLE_COLS: usize = 8;

fn sample_grid<B: AutodiffBackend>(t: &GanTrainer<B>, path: &Path) -> Result<()> {
    let rows = if t.cfg.conditional {
        t.classes.min(16)
    } else {
        4
    };
    let labels: Vec<u32> = (0..rows * SAMPLE_COLS)
        .map(|i| (i / SAMPLE_COLS) as u32)
        .collect();
    // The same noise every epoch, so the grids show the generator changing.
    let images = generate(
        &t.generator.valid(),
        &t.cfg,
        &labels,
        Stream::GanGrid.seed(t.cfg.seed, &[]),
        &t.devices[0],
    );
    let zoom = (96 / t.cfg.size).max(1) as u32;
    let img = grid(&images, t.cfg.size as u32, SAMPLE_COLS as u32, zoom);
    Ok(write_png(path, &img)?)
}

fn write_losses(dir: &Path, state: &GanState) -> Result<()> {
    let mut csv = String::from("step,epoch,wasserstein,gen_loss\n");
    for s in &state.steps {
        let _ = writeln!(
            csv,
            "{},{},{},{}",
            s.step, s.epoch, s.wasserstein, s.gen_loss
        );
    }
    write_atomic(&GanDir::new(dir).losses_csv(), csv.as_bytes())?;
    write_atomic(
        &GanDir::new(dir).epochs_json(),
        &serde_json::to_vec_pretty(&state.epochs).expect("epochs serialize"),
    )?;
    Ok(())
}

fn train_gan_here<B: AutodiffBackend>(
    cfg: &GanConfig,
    data: &TrainData,
    dir: &Path,
    devices: Vec<B::Device>,
    opts: &RunOptions,
) -> Result<Vec<GanEpoch>> {
    cfg.validate()?;
    let _lock = crate::run::RunLock::acquire(dir)?;
    let cfg = prepare_gan_dir(cfg, data, dir, opts)?;
    let classes = data.classes.len();
    let device = devices[0].clone();
    let (generator, critic) =
        init_seeded_with::<B, _>(Stream::Init.seed(cfg.seed, &[]), &device, || {
            let g = cfg.generator(classes).init::<B>(&device)?;
            let c = cfg.critic(classes).init::<B>(&device)?;
            // Materialize the lazily initialized parameters while the generator is seeded.
            let (gr, cr) = (g.clone().into_record(), c.clone().into_record());
            Ok::<_, Error>((g.load_record(gr), c.load_record(cr)))
        })?;
    let mut t = GanTrainer {
        optim_g: cfg.optimizer.init(),
        optim_c: cfg.optimizer.init(),
        classes,
        generator,
        critic,
        devices: (0..cfg.shards.max(1))
            .map(|i| devices[i % devices.len()].clone())
            .collect(),
        cfg: cfg.clone(),
    };
    let n = data.labels.len();
    let batches = n / cfg.batch_size;
    if batches < cfg.critic_steps {
        return Err(Error::Config(format!(
            "{n} training images make {batches} GAN batches of {}, fewer than the {} critic steps before a generator step",
            cfg.batch_size, cfg.critic_steps
        )));
    }
    let mut state = GanState {
        images: n,
        labels_hash: labels_hash(&data.labels),
        ..GanState::default()
    };
    let resumed = if opts.resume {
        resume_newest(dir, |ckpt| t.resume(ckpt))?
    } else {
        None
    };
    if let Some((ckpt, saved)) = resumed {
        if (saved.images, saved.labels_hash) != (state.images, state.labels_hash) {
            return Err(Error::Config(format!(
                "--resume on other training data than {} was trained on ({} images then, {n} now, or other labels)",
                ckpt.display(),
                saved.images
            )));
        }
        if saved.epochs.len() > cfg.epochs {
            return Err(Error::Config(format!(
                "{} has trained {} epochs already, more than the {} asked",
                dir.display(),
                saved.epochs.len(),
                cfg.epochs
            )));
        }
        state = saved;
        if opts.progress {
            eprintln!(
                "resuming from {} (epoch {})",
                ckpt.display(),
                state.epochs.len()
            );
        }
    }
    let final_weights = GanDir::new(dir).generator();
    if state.epochs.len() < cfg.epochs && final_weights.exists() {
        // A generator from fewer epochs than this run will reach: ours, and stale.
        std::fs::remove_file(&final_weights).map_err(|e| Error::io(&final_weights, e))?;
    }

    let (c, s, nz) = (cfg.channels(), cfg.size, cfg.noise);
    let image_len = c * s * s;
    let real = real_images(&data.images, s, c);
    if opts.progress && state.epochs.len() < cfg.epochs {
        println!(
            "{:>5} {:>11} {:>9} {:>9} {:>8} {:>7}",
            "epoch", "wasserstein", "gen_loss", "gen_steps", "img/s", "time"
        );
    }
    for epoch in state.epochs.len()..cfg.epochs {
        let start = Instant::now();
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(
            Stream::EpochOrder.seed(cfg.seed, &[epoch as u64]),
        ));
        let bar = progress_bar(opts.progress, batches, &format!("gan epoch {}", epoch + 1));
        let (mut w_sum, mut w_n, mut g_sum, mut g_n) = (0f64, 0usize, 0f64, 0usize);
        let mut w_since = Vec::new();
        let mut batch = vec![0f32; cfg.batch_size * image_len];
        let mut labels = vec![0u32; cfg.batch_size];
        for b in 0..batches {
            for (k, &i) in order[b * cfg.batch_size..(b + 1) * cfg.batch_size]
                .iter()
                .enumerate()
            {
                batch[k * image_len..(k + 1) * image_len]
                    .copy_from_slice(&real[i * image_len..(i + 1) * image_len]);
                labels[k] = data.labels[i];
            }
            let step_seed = Stream::GanStep.seed(cfg.seed, &[epoch as u64, b as u64]);
            let noise = normal_noise(step_seed, cfg.batch_size, nz);
            let w = t.critic_step(&batch, &labels, &noise);
            if !w.is_finite() {
                // The critic's loss is the negated estimate.
                return Err(Error::Diverged {
                    epoch: epoch + 1,
                    step: b + 1,
                    value: -w,
                });
            }
            w_sum += f64::from(w);
            w_n += 1;
            w_since.push(w);
            // Counted over the whole run, so no epoch's last critic steps go without
            // their generator step.
            if (epoch * batches + b + 1).is_multiple_of(cfg.critic_steps) {
                let mut rng = ChaCha8Rng::seed_from_u64(
                    Stream::GanLabels.seed(cfg.seed, &[epoch as u64, b as u64]),
                );
                let uniform = Uniform::new(0, classes as u32).expect("at least one class");
                let gen_labels: Vec<u32> = (0..cfg.batch_size)
                    .map(|_| uniform.sample(&mut rng))
                    .collect();
                let noise = normal_noise(derive_seed(step_seed, &[1]), cfg.batch_size, nz);
                let g = t.generator_step(&gen_labels, &noise);
                g_sum += f64::from(g);
                g_n += 1;
                state.steps.push(GanStep {
                    step: state.steps.len(),
                    epoch: epoch + 1,
                    wasserstein: w_since.iter().sum::<f32>() / w_since.len() as f32,
                    gen_loss: g,
                });
                w_since.clear();
            }
            bar.inc(1);
            let rate = ((b + 1) * cfg.batch_size) as f64 / start.elapsed().as_secs_f64();
            bar.set_message(format!(
                "W {:.4} · G {:.4} · {rate:.0} img/s",
                w_sum / w_n as f64,
                g_sum / g_n.max(1) as f64
            ));
        }
        bar.finish_and_clear();
        let secs = start.elapsed().as_secs_f32();
        let m = GanEpoch {
            epoch: epoch + 1,
            wasserstein: (w_sum / w_n.max(1) as f64) as f32,
            gen_loss: (g_sum / g_n.max(1) as f64) as f32,
            gen_steps: g_n,
            images_per_sec: (batches * cfg.batch_size) as f32 / secs,
            wall_s: secs,
        };
        if opts.progress {
            println!(
                "{:>5} {:>11.5} {:>9.5} {:>9} {:>8.0} {:>7}",
                m.epoch,
                m.wasserstein,
                m.gen_loss,
                m.gen_steps,
                m.images_per_sec,
                vista_format::format_secs(m.wall_s)
            );
        }
        state.epochs.push(m);
        sample_grid(&t, &GanDir::new(dir).sample_grid(epoch + 1))?;
        t.save_checkpoint(dir, &state)?;
        write_losses(dir, &state)?;
    }
    if !state.steps.is_empty() {
        gan_plot(&GanDir::new(dir).loss_png(), &state.steps)?;
    }
    write_losses(dir, &state)?;
    // The epoch count first, then the weights, written atomically: a `generator.bin`
    // is always whole and as old as `generator.json` says.
    write_atomic(
        &GanDir::new(dir).generator_info(),
        &serde_json::to_vec(&GeneratorInfo {
            epochs: state.epochs.len(),
        })
        .expect("json serializes"),
    )?;
    t.generator
        .valid()
        .save_file(GanDir::new(dir).generator_stem(), &recorder())
        .map_err(|e| Error::record(&final_weights, e))?;
    Ok(state.epochs)
}

/// Loads a GAN run's generator: the final `generator.bin`, or with `checkpoint` the
/// generator of that checkpoint folder.
pub fn load_gan<B: Backend>(
    dir: &Path,
    checkpoint: Option<&Path>,
    device: &B::Device,
) -> Result<TrainedGan<B>> {
    let config: GanConfig = read_json(&GanDir::new(dir).config())?;
    let classes = ClassMap::load(&GanDir::new(dir).classes())?;
    let file = match checkpoint {
        Some(ckpt) => CheckpointDir::new(ckpt).stem(GENERATOR),
        None => GanDir::new(dir).generator_stem(),
    };
    let weights = file.with_extension("bin");
    if !weights.exists() {
        return Err(Error::Config(format!(
            "{} has no trained generator ({} is missing); finish `vista gan train` first",
            dir.display(),
            weights.display()
        )));
    }
    let epochs = match checkpoint {
        Some(ckpt) => read_json::<GanState>(&CheckpointDir::new(ckpt).state())?
            .epochs
            .len(),
        None => read_json::<GeneratorInfo>(&GanDir::new(dir).generator_info())?.epochs,
    };
    let generator = config.generator(classes.len()).init::<B>(device)?;
    let generator = load_checked(&weights, || {
        generator
            .load_file(file, &recorder(), device)
            .map_err(|e| Error::record(&weights, e))
    })?;
    Ok(TrainedGan {
        config,
        classes,
        generator,
        weights,
        epochs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_standard_normal_and_seeded() {
        let a = normal_noise(7, 1000, 10);
        assert_eq!(a, normal_noise(7, 1000, 10));
        assert_ne!(a, normal_noise(8, 1000, 10));
        let mean = a.iter().sum::<f32>() / a.len() as f32;
        let var = a.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / a.len() as f32;
        assert!(mean.abs() < 0.05 && (var - 1.0).abs() < 0.1, "{mean} {var}");
    }

    #[test]
    fn grey_images_become_one_channel_in_minus_one_to_one() {
        let black = RgbImage::from_pixel(8, 8, image::Rgb([0, 0, 0]));
        let white = RgbImage::from_pixel(8, 8, image::Rgb([255, 255, 255]));
        assert!(all_grey(&[black.clone(), white.clone()]));
        assert!(!all_grey(&[RgbImage::from_pixel(
            2,
            2,
            image::Rgb([1, 0, 0])
        )]));
        let x = real_images(&[black, white], 4, 1);
        assert_eq!(x.len(), 2 * 16);
        assert!(x[..16].iter().all(|&v| (v + 1.0).abs() < 1e-6));
        assert!(x[16..].iter().all(|&v| (v - 1.0).abs() < 1e-6));
    }

    #[test]
    fn bad_settings_are_refused() {
        for cfg in [
            GanConfig {
                size: 28,
                ..GanConfig::default()
            },
            GanConfig {
                channels: Some(2),
                ..GanConfig::default()
            },
            GanConfig {
                clip: 0.0,
                ..GanConfig::default()
            },
            GanConfig {
                critic_steps: 0,
                ..GanConfig::default()
            },
        ] {
            assert!(cfg.validate().is_err(), "{cfg:?}");
        }
        GanConfig::default().validate().unwrap();
    }
}
