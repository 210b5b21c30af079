//! A whole training run as `vista train` does it: the plan (fine-tuning's frozen epochs,
//! then the stages of progressive resizing, each with its own schedule and optionally an
//! LR find), a run folder with the config, class map, metrics, plots and model, and a
//! checkpoint after every epoch from which `--resume` carries on after a crash.
//!
//! A checkpoint is a folder `checkpoints/epoch-NNNN` (model, optimizer state, and
//! `state.json` with the plan position, the learning rates found and the history),
//! written under a temporary name and renamed into place, then named in
//! `checkpoints/latest` by an atomic write. The loader's batches and the backend's
//! random numbers are seeded from `(seed, epoch)`, so a resumed run repeats exactly what
//! the uninterrupted run would have done.

mod checkpoint;
mod config;
mod data;
mod plan;

use std::path::Path;

use burn::module::{AutodiffModule, Module};
use burn::tensor::backend::{AutodiffBackend, Backend};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use vista_data::{ClassMap, Loader, LoaderConfig, Normalize, stratified_split, write_atomic};
use vista_format::Observers;
use vista_format::{
    CheckpointDir, EpochMetrics, LrFindRecord, RunDir, StepRecord, Stream, write_json,
    write_metrics,
};
use vista_models::LayerGroups;
use vista_schedule::LrFinder;

pub use checkpoint::{RunLock, latest_checkpoint};
use checkpoint::{read_config, read_state};
pub(crate) use checkpoint::{
    read_json, recorder, refuse_started_run, resume_newest, write_checkpoint,
};
pub use config::{
    MAX_DEFAULT_SIZE, Monitor, Outcome, RunOptions, ScheduleKind, StageConfig, THUMBNAIL_SIDE,
    Target, TrainConfig, balanced_weights, cache_side, default_batch, fold_batch, typical_size,
};
pub use data::{TrainData, ValidSet};
use plan::plan;

use crate::error::{Error, Result};
use crate::learner::{FINE_TUNE_LR_MULT, FitSpec, Flow, Learner, LearnerConfig, even_mults};
/// The network and optimizer records of a classifier's checkpoint.
const MODEL: &str = "model";
const OPTIM: &str = "optim";
use crate::optim::Optim;
use crate::record::load_checked;
use vista_models::AnyModel;
use vista_plot::{loss_plot, lr_find_plot, lr_plot};

/// The run's saved position, written with every checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct RunState {
    /// Index of the phase in progress and its epochs done.
    phase: usize,
    done_in_phase: usize,
    epochs_done: usize,
    /// Learning rate of each phase once known.
    lrs: Vec<Option<f64>>,
    metrics: Vec<EpochMetrics>,
    steps: Vec<StepRecord>,
    /// The best epoch so far by the run's monitor, and its score (lower is better).
    #[serde(default)]
    best: Option<(usize, f32)>,
    /// Early stopping ended the run.
    #[serde(default)]
    stopped: bool,
}

fn save_checkpoint<B: AutodiffBackend, M: AutodiffModule<B>>(
    dir: &Path,
    learner: &Learner<B, M>,
    state: &RunState,
) -> Result<()> {
    write_checkpoint(dir, state.epochs_done, |tmp| {
        learner
            .model()
            .clone()
            .save_file(tmp.stem(MODEL), &recorder())
            .map_err(|e| Error::record(&tmp.file(MODEL), e))?;
        learner.optim().save(&tmp.stem(OPTIM))?;
        let state_json = serde_json::to_vec(state).expect("state serializes");
        Ok(write_atomic(&tmp.state(), &state_json)?)
    })
}

/// Resolves the settings decided at the start (normalization) and checks the folder:
/// the settings, and whether they are new (not yet in the folder's `config.json`).
fn prepare_dir(
    cfg: &TrainConfig,
    data: &TrainData,
    dir: &Path,
    opts: &RunOptions,
) -> Result<(TrainConfig, bool)> {
    let config_path = RunDir::new(dir).config();
    refuse_started_run(dir, opts, "a run")?;
    if opts.resume && config_path.exists() {
        let saved = read_config(&config_path)?;
        let mut asked = cfg.clone();
        asked.normalize = saved.normalize;
        if asked != saved {
            return Err(Error::ResumeSettingsDiffer {
                path: config_path.clone(),
                differing: vec!["the settings".into()],
            });
        }
        return Ok((saved, false));
    }
    let mut resolved = cfg.clone();
    resolved.normalize = Some(normalization(cfg, data)?);
    Ok((resolved, true))
}

/// Writes a new run's settings and classes into `dir`.
fn write_config(cfg: &TrainConfig, data: &TrainData, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    write_atomic(
        &RunDir::new(dir).config(),
        &serde_json::to_vec_pretty(cfg).expect("config serializes"),
    )?;
    Ok(data.classes.save(&RunDir::new(dir).classes())?)
}

/// Stack of the training thread. Model records (every parameter of a ResNet or
/// Inception as one value) make burn's generic frames large at low optimization levels,
/// beyond the 2 MiB that threads get by default; only the touched pages are committed.
const TRAIN_STACK: usize = 256 << 20;

/// Trains as `cfg` says on `data`, writing everything into `dir`. The work runs on a
/// thread of its own with a large stack (256 MiB).
pub fn train<B: AutodiffBackend>(
    cfg: &TrainConfig,
    data: &TrainData,
    dir: &Path,
    devices: Vec<B::Device>,
    opts: &RunOptions,
) -> Result<Outcome<B::InnerBackend>> {
    on_large_stack(dir, || train_here::<B>(cfg, data, dir, devices, opts))
}

/// Runs `f` on a scoped thread with [`TRAIN_STACK`] bytes of stack; panics propagate.
pub(crate) fn on_large_stack<T: Send>(
    dir: &Path,
    f: impl FnOnce() -> Result<T> + Send,
) -> Result<T> {
    std::thread::scope(|s| {
        let worker = std::thread::Builder::new()
            .name("vista-train".into())
            .stack_size(TRAIN_STACK)
            .spawn_scoped(s, f)
            .map_err(|e| Error::io(dir, e))?;
        worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// The normalization a run uses: the configured one, else that of the run it starts
/// from, else ImageNet's for pretrained weights, else the training images' own
/// statistics.
fn normalization(cfg: &TrainConfig, data: &TrainData) -> Result<Normalize> {
    if let Some(n) = cfg.normalize {
        return Ok(n);
    }
    if let Some(dir) = &cfg.init_from {
        let path = RunDir::new(dir).config();
        return read_config(&path)?
            .normalize
            .ok_or_else(|| Error::NoNormalization { path: path.clone() });
    }
    Ok(if cfg.pretrained.is_some() {
        cfg.model.arch.pretrained_normalize()
    } else {
        vista_data::normalize_from_images(data.images.iter().take(data.real()))
    })
}

/// The model of the finished run in `dir`, checked to be the model `cfg` trains on
/// `classes`.
fn load_init<B: Backend>(
    cfg: &TrainConfig,
    dir: &Path,
    classes: &ClassMap,
    device: &B::Device,
) -> Result<AnyModel<B>> {
    let run = load_run_here::<B>(dir, device)?;
    let config = RunDir::new(dir).config();
    if run.config.model != cfg.model {
        return Err(Error::InitMismatch {
            path: config,
            why: format!(
                "its model ({:?}) is not this run's ({:?})",
                run.config.model, cfg.model
            ),
        });
    }
    if &run.classes != classes {
        return Err(Error::InitMismatch {
            path: RunDir::new(dir).classes(),
            why: "its classes differ from this dataset's".into(),
        });
    }
    Ok(run.model)
}

/// The extra images a run trains on: `extra_ratio` of them per real training image,
/// drawn without replacement (seeded) from the extra pool.
fn extra_items(cfg: &TrainConfig, data: &TrainData, real_train: usize) -> Result<Vec<usize>> {
    let want = (f64::from(cfg.extra_ratio) * real_train as f64).round() as usize;
    if want == 0 {
        return Ok(Vec::new());
    }
    if want > data.extra {
        return Err(Error::NotEnoughExtra {
            ratio: cfg.extra_ratio,
            want,
            real: real_train,
            have: data.extra,
            dir: cfg.extra_data.clone().unwrap_or_default(),
        });
    }
    let mut pool: Vec<usize> = (data.real()..data.labels.len()).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(Stream::ExtraPick.seed(cfg.seed, &[]));
    pool.shuffle(&mut rng);
    pool.truncate(want);
    pool.sort_unstable();
    Ok(pool)
}

/// The Learner of a run: seeded initial weights (pretrained ones loaded), the stratified
/// split, the loaders, and one device per data-parallel shard.
fn build_learner<B: AutodiffBackend>(
    cfg: &TrainConfig,
    data: &TrainData,
    devices: Vec<B::Device>,
    observer: &Observers,
) -> Result<Learner<B, AnyModel<B>>> {
    let normalize = normalization(cfg, data)?;
    let (mut train_items, valid_items) = match &data.valid {
        Some(_) => ((0..data.real()).collect(), Vec::new()),
        None => stratified_split(&data.labels[..data.real()], cfg.valid_pct, cfg.seed),
    };
    let extra = extra_items(cfg, data, train_items.len())?;
    if !extra.is_empty() {
        observer.note(&format!(
            "extra images: {} of {} join {} real training images",
            extra.len(),
            data.extra,
            train_items.len()
        ));
    }
    train_items.extend(extra);
    if train_items.len() < cfg.batch_size {
        return Err(Error::Invalid {
            setting: "batch_size",
            why: format!(
                "{} training images make no full batch of {} (a training epoch drops its last, \
                 smaller batch); a batch of at most {} is needed",
                train_items.len(),
                cfg.batch_size,
                train_items.len()
            ),
        });
    }
    let train_cfg = LoaderConfig {
        workers: cfg.workers,
        ..LoaderConfig::train(
            cfg.batch_size,
            cfg.augment.clone(),
            cfg.mixup,
            normalize,
            cfg.seed,
        )
    };
    let loader = |items, cfg: LoaderConfig| {
        Loader::new(data.images.clone(), data.labels.clone(), items, cfg)
    };
    let valid_loader = match &data.valid {
        Some(v) => {
            observer.note(&format!("validation: the dataset's own {} images", v.len()));
            Loader::new(
                v.images.clone(),
                v.labels.clone(),
                (0..v.len()).collect(),
                train_cfg.for_valid(),
            )
        }
        None => loader(valid_items, train_cfg.for_valid()),
    };
    let device = devices[0].clone();
    // The initial weights come from the backend's generator: seed it, so every process
    // with this config starts from the same model (a resumed run relies on it too).
    let mut model = cfg
        .model
        .init_seeded::<B>(Stream::Init.seed(cfg.seed, &[]), &device)?;
    if let Some(path) = &cfg.pretrained {
        let (m, report) = model
            .load_pretrained(path)
            .map_err(|source| Error::Pretrained {
                path: path.clone(),
                source,
            })?;
        observer.note(&format!(
            "pretrained: {} tensors from {}{}",
            report.loaded,
            report.path.display(),
            if report.head_reinitialized {
                ", new head"
            } else {
                ""
            }
        ));
        model = m;
    }
    if let Some(dir) = &cfg.init_from {
        model = load_init::<B>(cfg, dir, &data.classes, &device)?;
        observer.note(&format!("starting from the model of {}", dir.display()));
    }
    let devices: Vec<B::Device> = (0..cfg.shards.max(1))
        .map(|i| devices[i % devices.len()].clone())
        .collect();
    Ok(Learner::new(
        model,
        loader(train_items, train_cfg.clone()),
        valid_loader,
        LearnerConfig {
            num_classes: data.classes.len(),
            optimizer: cfg.optimizer.clone(),
            label_smoothing: cfg.label_smoothing,
            seed: cfg.seed,
            observer: observer.clone(),
            class_weights: cfg.class_weights.clone(),
        },
        devices,
    ))
}

/// The LR finder on the model a run of `cfg` would start from, at its first stage's size
/// (with the body frozen when fine-tuning starts frozen).
pub fn find_lr<B: AutodiffBackend>(
    cfg: &TrainConfig,
    data: &TrainData,
    devices: Vec<B::Device>,
    observer: &Observers,
) -> Result<LrFinder> {
    cfg.validate()?;
    let mut learner = build_learner::<B>(cfg, data, devices, observer)?;
    if cfg.pretrained.is_some() && cfg.freeze_epochs > 0 {
        learner.freeze();
    }
    Ok(learner.lr_find(&cfg.lr_find, cfg.stages[0].size))
}

fn train_here<B: AutodiffBackend>(
    cfg: &TrainConfig,
    data: &TrainData,
    dir: &Path,
    devices: Vec<B::Device>,
    opts: &RunOptions,
) -> Result<Outcome<B::InnerBackend>> {
    cfg.validate()?;
    let _lock = RunLock::acquire(dir)?;
    let (cfg, fresh) = prepare_dir(cfg, data, dir, opts)?;
    let device = devices[0].clone();
    let mut learner = build_learner::<B>(&cfg, data, devices, &opts.observer)?;
    // Only a run that can start writes its settings: a refused one leaves none behind.
    if fresh {
        write_config(&cfg, data, dir)?;
    }
    let phases = plan(&cfg);
    let mut state = RunState {
        lrs: vec![None; phases.len()],
        ..RunState::default()
    };
    if opts.resume
        && let Some((ckpt, (st, model, optim))) = resume_newest(dir, &opts.observer, |ckpt| {
            read_checkpoint(ckpt, &learner, phases.len(), &device)
        })?
    {
        state = st;
        learner.restore(model, optim, state.epochs_done, state.steps.clone());
        opts.observer.note(&format!(
            "resuming from {} (epoch {})",
            ckpt.display(),
            state.epochs_done
        ));
    }

    for (i, phase) in phases.iter().enumerate().skip(state.phase) {
        if state.stopped {
            break;
        }
        if state.phase < i {
            state.phase = i;
            state.done_in_phase = 0;
        }
        if state.done_in_phase >= phase.epochs {
            continue;
        }
        if phase.frozen {
            learner.freeze();
        } else {
            learner.unfreeze();
        }
        let groups = learner.model().layer_groups().len();
        learner.set_group_lrs(
            phase
                .discriminative
                .then(|| even_mults(1.0 / FINE_TUNE_LR_MULT, groups)),
        );
        let found_before = phases[..i]
            .iter()
            .zip(&state.lrs)
            .rev()
            .find_map(|(p, lr)| lr.filter(|_| p.lr.is_none()))
            .filter(|_| !cfg.find_lr_each_stage);
        let lr = match (state.lrs[i], phase.lr, found_before) {
            (Some(lr), _, _) | (None, Some(lr), _) | (None, None, Some(lr)) => lr,
            (None, None, None) => {
                let finder = learner.lr_find(&cfg.lr_find, phase.size);
                let s = finder.suggestions();
                let run = RunDir::new(dir);
                lr_find_plot(
                    &run.lr_find_plot(&phase.name),
                    &finder.lrs,
                    &finder.losses,
                    &s,
                )?;
                let record = LrFindRecord {
                    lrs: finder.lrs.clone(),
                    losses: finder.losses.clone(),
                    suggestions: s,
                };
                write_json(&run.lr_find_record(&phase.name), &record)?;
                let lr = s.valley.or(s.minimum).unwrap_or(1e-3);
                opts.observer.note(&format!(
                    "lr_find ({}): valley {}, steep {}, minimum/10 {}, slide {} -> {lr:.2e}",
                    phase.name,
                    fmt_lr(s.valley),
                    fmt_lr(s.steep),
                    fmt_lr(s.minimum),
                    fmt_lr(s.slide)
                ));
                lr
            }
        };
        state.lrs[i] = Some(lr);
        let spec = FitSpec {
            phase: phase.name.clone(),
            epochs: phase.epochs,
            size: phase.size,
            schedule: phase
                .schedule
                .schedule(lr, learner.train_loader().len_batches()),
            skip: state.done_in_phase,
        };
        let mut st = state.clone();
        learner.fit(&spec, &mut |l, m| {
            st.done_in_phase += 1;
            st.epochs_done = l.epochs_done();
            st.metrics.push(m.clone());
            st.steps = l.steps().to_vec();
            let score = cfg.monitor.score(m);
            // The best model is written before the checkpoint that records it, so a
            // checkpoint never names a best epoch whose model is missing.
            if st.best.is_none_or(|(_, best)| score < best) {
                st.best = Some((st.epochs_done, score));
                write_best(dir, l, &cfg, m)?;
            }
            let since = (st.epochs_done).saturating_sub(st.best.map_or(0, |(epoch, _)| epoch));
            st.stopped = cfg.early_stop.is_some_and(|patience| since >= patience);
            if st.stopped {
                opts.observer.note(&format!(
                    "early stop: no better {} in {since} epochs; the best is epoch {}",
                    cfg.monitor.name(),
                    st.epochs_done - since
                ));
            }
            save_checkpoint(dir, l, &st)?;
            write_metrics(dir, &st.metrics)?;
            Ok(if st.stopped {
                Flow::Stop
            } else {
                Flow::Continue
            })
        })?;
        state = st;
    }

    let model = learner.model().valid();
    model
        .clone()
        .save_file(RunDir::new(dir).model_stem(), &recorder())
        .map_err(|e| Error::record(&RunDir::new(dir).model(), e))?;
    write_metrics(dir, &state.metrics)?;
    if !state.steps.is_empty() {
        loss_plot(&RunDir::new(dir).loss_png(), &state.steps, &state.metrics)?;
        lr_plot(&RunDir::new(dir).lr_png(), &state.steps)?;
    }
    // The model is saved: a report that cannot be written costs the report only.
    if let Err(e) = write_valid_report(dir, &learner, &data.classes, cfg.final_size()) {
        opts.observer.warn(&format!("no validation report: {e}"));
    }
    Ok(Outcome {
        model,
        metrics: state.metrics,
        lrs: state
            .lrs
            .into_iter()
            .map(|l| l.unwrap_or(f64::NAN))
            .collect(),
    })
}

/// The most classes `valid_confusion.png` is drawn for.
const MAX_HEATMAP_CLASSES: usize = 100;

/// Scores the finished model on the validation set, per class: `valid_report.json` and
/// `valid_confusion.png`.
fn write_valid_report<B: AutodiffBackend>(
    dir: &Path,
    learner: &Learner<B, AnyModel<B>>,
    classes: &ClassMap,
    size: u32,
) -> Result<()> {
    let run = RunDir::new(dir);
    let confusion = learner.valid_confusion(size);
    let images = confusion.total();
    let report = vista_format::ValidReport {
        images,
        accuracy: confusion.correct() as f64 / images.max(1) as f64,
        per_class: confusion.class_scores(&classes.classes),
        confusion,
    };
    write_json(&run.valid_report(), &report)?;
    // A heat map of more classes than this has cells too small to read.
    if classes.len() <= MAX_HEATMAP_CLASSES {
        vista_plot::confusion_png(
            &run.valid_confusion_png(),
            &report.confusion,
            &classes.classes,
        )?;
    }
    Ok(())
}

/// Writes the model of the epoch `m` as the run's best: `best.safetensors` (PyTorch's
/// names, as `vista export` writes) and `best.json`.
fn write_best<B: AutodiffBackend>(
    dir: &Path,
    learner: &Learner<B, AnyModel<B>>,
    cfg: &TrainConfig,
    m: &EpochMetrics,
) -> Result<()> {
    let run = RunDir::new(dir);
    let model = learner.model().valid();
    let best = vista_format::BestEpoch {
        epoch: m.epoch,
        monitor: cfg.monitor.name().to_string(),
        valid_loss: m.valid_loss,
        accuracy: m.accuracy,
    };
    // The model file names its own epoch: a kill between the two writes leaves a
    // `best.json` one best behind, never a model that cannot say what it is (and the
    // resumed run, retraining that epoch from the same seed, writes both again).
    let epoch = best.epoch.to_string();
    vista_models::export_safetensors(&model, &run.best_model(), &[("epoch", &epoch)])?;
    Ok(write_json(&run.best_json(), &best)?)
}

/// A checkpoint's state, model and optimizer, each checked; the learner is not touched
/// until all three have loaded.
#[allow(clippy::type_complexity)]
fn read_checkpoint<B: AutodiffBackend>(
    ckpt: &Path,
    learner: &Learner<B, AnyModel<B>>,
    phases: usize,
    device: &B::Device,
) -> Result<(RunState, AnyModel<B>, Optim<AnyModel<B>, B>)> {
    let ckpt_dir = CheckpointDir::new(ckpt);
    let state = read_state(&ckpt_dir.state())?;
    if state.lrs.len() != phases || state.phase > phases {
        return Err(Error::BadCheckpoint {
            path: ckpt_dir.state(),
            why: format!(
                "a plan of {} phases at phase {}, not this run's {phases}",
                state.lrs.len(),
                state.phase
            ),
        });
    }
    let file = ckpt_dir.file(MODEL);
    let model = load_checked(&file, || {
        learner
            .model()
            .clone()
            .load_file(ckpt_dir.stem(MODEL), &recorder(), device)
            .map_err(|e| Error::record(&file, e))
    })?;
    let optim = learner
        .optim()
        .clone()
        .load(&ckpt_dir.stem(OPTIM), device)?;
    Ok((state, model, optim))
}

fn fmt_lr(lr: Option<f64>) -> String {
    lr.map_or("-".into(), |l| format!("{l:.2e}"))
}

/// A finished run, loaded for prediction.
#[derive(Debug)]
pub struct TrainedRun<B: Backend> {
    /// The settings the run was trained with, from its `config.json`.
    pub config: TrainConfig,
    /// The classes the model tells apart, from its `classes.txt`.
    pub classes: ClassMap,
    /// The trained model, from its `model.bin`.
    pub model: AnyModel<B>,
}

/// Loads `config.json`, `classes.txt` and `model.bin` of a finished run.
pub fn load_run<B: Backend>(dir: &Path, device: &B::Device) -> Result<TrainedRun<B>> {
    on_large_stack(dir, || load_run_here(dir, device))
}

fn load_run_here<B: Backend>(dir: &Path, device: &B::Device) -> Result<TrainedRun<B>> {
    let config_path = RunDir::new(dir).config();
    let config = read_config(&config_path)?;
    let classes = ClassMap::load(&RunDir::new(dir).classes())?;
    let model = config.model.init::<B>(device)?;
    let file = RunDir::new(dir).model();
    let model = load_checked(&file, || {
        model
            .load_file(RunDir::new(dir).model_stem(), &recorder(), device)
            .map_err(|e| Error::record(&file, e))
    })?;
    Ok(TrainedRun {
        config,
        classes,
        model,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::RgbImage;

    #[test]
    fn extra_images_join_the_training_part_only() {
        let black = RgbImage::from_pixel(4, 4, image::Rgb([0, 0, 0]));
        let white = RgbImage::from_pixel(4, 4, image::Rgb([255, 255, 255]));
        let mut images = vec![black; 20];
        images.extend(vec![white; 10]);
        let mut data = TrainData::new(
            images,
            (0..30).map(|i| i % 2).collect(),
            ClassMap::new(vec!["a".into(), "b".into()]),
        );
        data.extra = 10;
        let cfg = TrainConfig {
            extra_data: Some("gan".into()),
            extra_ratio: 0.5,
            ..TrainConfig::default()
        };
        cfg.validate().unwrap();
        let picked = extra_items(&cfg, &data, 16).unwrap();
        assert_eq!(picked.len(), 8);
        assert!(picked.iter().all(|&i| (20..30).contains(&i)));
        assert!(picked.windows(2).all(|w| w[0] < w[1]));
        // Normalization sees the real (black) images only.
        let n = normalization(&cfg, &data).unwrap();
        assert!(n.mean.iter().all(|&m| m == 0.0), "{n:?}");
        // More than the pool holds is an error naming the folder.
        let err = extra_items(&cfg, &data, 40).unwrap_err().to_string();
        assert!(err.contains("gan holds 10"), "{err}");
        // A ratio without a folder is refused.
        let bad = TrainConfig {
            extra_data: None,
            ..cfg
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn fine_tuning_plans_frozen_epochs_then_discriminative_stages() {
        let cfg = TrainConfig {
            pretrained: Some("w.pth".into()),
            stages: vec![
                StageConfig {
                    size: 64,
                    epochs: 2,
                    lr: Some(1e-3),
                },
                StageConfig {
                    size: 128,
                    epochs: 1,
                    lr: None,
                },
            ],
            ..TrainConfig::default()
        };
        let p = plan(&cfg);
        assert_eq!(p.len(), 3);
        assert!(p[0].frozen && !p[0].discriminative && p[0].size == 64 && p[0].epochs == 1);
        assert!(!p[1].frozen && p[1].discriminative && p[1].name == "64px");
        assert_eq!((p[2].size, p[2].lr), (128, None));
        let scratch = plan(&TrainConfig {
            pretrained: None,
            ..cfg
        });
        assert_eq!(scratch.len(), 2);
        assert!(scratch.iter().all(|p| !p.frozen && !p.discriminative));
    }

    #[test]
    fn sgdr_cycles_are_counted_in_epochs() {
        let s = ScheduleKind::parse("sgdr").unwrap().schedule(0.1, 10);
        assert_eq!(s.restarts(70), vec![0, 10, 30]);
        assert!(ScheduleKind::parse("triangle").is_err());
    }

    #[test]
    fn bad_settings_are_refused_with_the_reason() {
        let mut cfg = TrainConfig::default();
        cfg.stages[0].size = 4;
        assert!(
            cfg.validate()
                .unwrap_err()
                .to_string()
                .contains("at least 8 px")
        );
        let cfg = TrainConfig {
            mixup: Some(0.0),
            ..TrainConfig::default()
        };
        assert!(cfg.validate().unwrap_err().to_string().contains("mixup"));
    }
}
