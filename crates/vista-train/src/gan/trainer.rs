//! The WGAN training loop: critic and generator steps over shards, checkpoints after
//! every epoch, sample grids and loss curves.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use burn::module::{AutodiffModule, Module};
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Uniform};
use serde::{Deserialize, Serialize};
use vista_data::{ClassMap, Images, derive_seed, grid, labels_tensor, resize_plain, write_atomic};
use vista_format::Stream;
use vista_format::{CheckpointDir, GanDir, GanEpoch, GanStep, GeneratorInfo};
use vista_models::{Critic, Generator, clip_weights};

use crate::error::{Error, Result};
use crate::optim::Optim;
use crate::parallel::{merge_grads, sync_batch_norm};
use crate::record::load_checked;
use crate::run::{
    RunOptions, TrainData, on_large_stack, read_json, recorder, refuse_started_run, resume_newest,
    write_checkpoint,
};
use vista_models::init_seeded_with;
use vista_models::on_shards;
use vista_plot::{gan_plot, write_png};

use super::{CRITIC, GENERATOR, OPTIM_CRITIC, OPTIM_GENERATOR};

use super::config::GanConfig;
use super::sample::{all_grey, generate, normal_noise};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct GanState {
    pub(super) epochs: Vec<GanEpoch>,
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

/// The images at `size` px in [-1, 1], `[n, channels, size, size]` row-major; one
/// channel is the mean of the three.
fn real_images(images: &Images, size: usize, channels: usize) -> Vec<f32> {
    let plane = size * size;
    let mut out = vec![0f32; images.len() * channels * plane];
    let mut rgb = vec![0f32; 3 * plane];
    for (img, dst) in images.iter().zip(out.chunks_exact_mut(channels * plane)) {
        resize_plain(&img, size as u32, (1.0, 1.0), &mut rgb);
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
            return Err(Error::ResumeSettingsDiffer {
                path: config_path.clone(),
                differing: differing_keys(&saved, &resolved),
            });
        }
        if ClassMap::load(&classes_path).ok().as_ref() != Some(&data.classes) {
            return Err(Error::ResumeDataDiffers {
                path: classes_path.clone(),
                why: "its classes differ".into(),
            });
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
        self.generator = sync_batch_norm(self.generator.clone(), &self.devices, results.len());
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
        self.generator = sync_batch_norm(self.generator.clone(), &self.devices, results.len());
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
        return Err(Error::TooFewImages {
            images: n,
            batches,
            batch_size: cfg.batch_size,
            critic_steps: cfg.critic_steps,
        });
    }
    let mut state = GanState {
        images: n,
        labels_hash: labels_hash(&data.labels),
        ..GanState::default()
    };
    let resumed = if opts.resume {
        resume_newest(dir, &opts.observer, |ckpt| t.resume(ckpt))?
    } else {
        None
    };
    if let Some((ckpt, saved)) = resumed {
        if (saved.images, saved.labels_hash) != (state.images, state.labels_hash) {
            return Err(Error::ResumeDataDiffers {
                path: ckpt.clone(),
                why: format!("{} images then, {n} now, or other labels", saved.images),
            });
        }
        if saved.epochs.len() > cfg.epochs {
            return Err(Error::AlreadyTrained {
                dir: dir.to_path_buf(),
                done: saved.epochs.len(),
                asked: cfg.epochs,
            });
        }
        state = saved;
        opts.observer.note(&format!(
            "resuming from {} (epoch {})",
            ckpt.display(),
            state.epochs.len()
        ));
    }
    let final_weights = GanDir::new(dir).generator();
    if state.epochs.len() < cfg.epochs && final_weights.exists() {
        // A generator from fewer epochs than this run will reach: ours, and stale.
        std::fs::remove_file(&final_weights).map_err(|e| Error::io(&final_weights, e))?;
    }

    let (c, s, nz) = (cfg.channels(), cfg.size, cfg.noise);
    let image_len = c * s * s;
    let real = real_images(&data.images, s, c);
    for epoch in state.epochs.len()..cfg.epochs {
        let start = Instant::now();
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(
            Stream::EpochOrder.seed(cfg.seed, &[epoch as u64]),
        ));
        let task = (opts.observer).task(&format!("gan epoch {}", epoch + 1), batches as u64);
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
            task.step(1);
            let rate = ((b + 1) * cfg.batch_size) as f64 / start.elapsed().as_secs_f64();
            task.status(&format!(
                "W {:.4} · G {:.4} · {rate:.0} img/s",
                w_sum / w_n as f64,
                g_sum / g_n.max(1) as f64
            ));
        }
        drop(task);
        let secs = start.elapsed().as_secs_f32();
        let m = GanEpoch {
            epoch: epoch + 1,
            wasserstein: (w_sum / w_n.max(1) as f64) as f32,
            gen_loss: (g_sum / g_n.max(1) as f64) as f32,
            gen_steps: g_n,
            images_per_sec: (batches * cfg.batch_size) as f32 / secs,
            wall_s: secs,
        };
        opts.observer.gan_epoch(&m);
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
        use image::RgbImage;
        let black = RgbImage::from_pixel(8, 8, image::Rgb([0, 0, 0]));
        let white = RgbImage::from_pixel(8, 8, image::Rgb([255, 255, 255]));
        assert!(all_grey(&[black.clone(), white.clone()]));
        assert!(!all_grey(&[RgbImage::from_pixel(
            2,
            2,
            image::Rgb([1, 0, 0])
        )]));
        let x = real_images(&Images::from(vec![black, white]), 4, 1);
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
