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

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::module::{AutodiffModule, Module};
use burn::record::FullPrecisionSettings;
use burn::tensor::backend::{AutodiffBackend, Backend};
use image::RgbImage;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use vista_data::{
    AugmentConfig, ClassMap, Loader, LoaderConfig, Normalize, stratified_split, write_atomic,
};
use vista_schedule::{LrFindConfig, LrFinder, Schedule};

use vista_models::LayerGroups;

use crate::error::{Error, Result};
use crate::learner::{FitSpec, Learner, LearnerConfig, even_mults};
use vista_format::Stream;
use vista_format::{
    CheckpointDir, Checkpointed, EpochMetrics, LrFindRecord, RunDir, StepRecord, checkpoint_name,
    is_checkpoint_name, write_json, write_metrics,
};

/// The network and optimizer records of a classifier's checkpoint.
const MODEL: &str = "model";
const OPTIM: &str = "optim";
use crate::optim::{Optim, OptimizerConfig};
use crate::record::{RunRecorder, load_checked};
use vista_models::{AnyModel, ModelConfig};
use vista_plot::{loss_plot, lr_find_plot, lr_plot};

/// One stage of progressive resizing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageConfig {
    pub size: u32,
    pub epochs: usize,
    /// Peak learning rate; `None` runs the LR finder first and takes its `valley`.
    pub lr: Option<f64>,
}

/// How each stage's learning rate moves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScheduleKind {
    /// fastai's `fit_one_cycle` (defaults: pct_start 0.25, div 25, div_final 1e5).
    OneCycle {
        pct_start: f64,
        div: f64,
        div_final: f64,
    },
    /// SGDR: cosine restarts every `cycle_len` epochs, each cycle `cycle_mult` times
    /// longer, down to `lr / 100`.
    Sgdr { cycle_len: usize, cycle_mult: f64 },
    /// fastai's `fit_flat_cos`.
    FlatCos,
    /// Cosine annealing to `lr / 100`.
    Cosine,
}

impl Default for ScheduleKind {
    fn default() -> Self {
        ScheduleKind::OneCycle {
            pct_start: 0.25,
            div: 25.0,
            div_final: 1e5,
        }
    }
}

impl ScheduleKind {
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "one-cycle" | "one_cycle" => Self::default(),
            "sgdr" => ScheduleKind::Sgdr {
                cycle_len: 1,
                cycle_mult: 2.0,
            },
            "flat-cos" | "flat_cos" => ScheduleKind::FlatCos,
            "cosine" => ScheduleKind::Cosine,
            other => {
                return Err(Error::Config(format!(
                    "unknown schedule `{other}` (one-cycle, sgdr, flat-cos, cosine)"
                )));
            }
        })
    }

    /// The schedule of a fit at peak rate `lr` with `per_epoch` steps per epoch.
    pub fn schedule(&self, lr: f64, per_epoch: usize) -> Schedule {
        match *self {
            ScheduleKind::OneCycle {
                pct_start,
                div,
                div_final,
            } => Schedule::OneCycle {
                lr_max: lr,
                div,
                div_final,
                pct_start,
                moms: (0.95, 0.85, 0.95),
            },
            ScheduleKind::Sgdr {
                cycle_len,
                cycle_mult,
            } => Schedule::Sgdr {
                lr_max: lr,
                lr_min: lr / 100.0,
                cycle_len: cycle_len.max(1) * per_epoch.max(1),
                cycle_mult,
            },
            ScheduleKind::FlatCos => Schedule::flat_cos(lr),
            ScheduleKind::Cosine => Schedule::Cosine {
                lr_max: lr,
                lr_min: lr / 100.0,
            },
        }
    }
}

/// Every setting of a run; saved as `config.json` in the run folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    pub model: ModelConfig,
    /// Pretrained weights (PyTorch `.pth` or safetensors) for the body.
    pub pretrained: Option<PathBuf>,
    /// A finished run folder whose whole model this run starts from (fastai's
    /// `learn.load` before another `fit`): it must have the same model settings and
    /// classes; its normalization is kept, since its weights learned it.
    pub init_from: Option<PathBuf>,
    /// With pretrained weights: epochs with the body frozen before the stages (fastai's
    /// `fine_tune`), after which every layer group trains at its own rate, from 1/100 of
    /// the stage's rate for the earliest group to the full rate for the head.
    pub freeze_epochs: usize,
    pub stages: Vec<StageConfig>,
    pub schedule: ScheduleKind,
    pub optimizer: OptimizerConfig,
    pub batch_size: usize,
    /// Share of each class held out for validation.
    pub valid_pct: f32,
    /// Mixup's α (`None` = no mixup).
    pub mixup: Option<f32>,
    pub label_smoothing: f32,
    /// fastai's `aug_transforms` (`None` = resize only).
    pub augment: Option<AugmentConfig>,
    /// Input normalization; `None` = ImageNet's with pretrained weights, else the
    /// training images' own statistics (resolved and saved when the run starts).
    pub normalize: Option<Normalize>,
    pub lr_find: LrFindConfig,
    /// Run the LR finder at every stage whose rate is `auto`. Off (the default), only
    /// the first such stage runs it and later ones reuse its rate: on a model that has
    /// already learned, the finder's valley sits where the loss is flat and is far too
    /// low.
    pub find_lr_each_stage: bool,
    pub seed: u64,
    /// Loader threads (0 = one per core).
    pub workers: usize,
    /// Data-parallel shards per batch, each on its own thread and device.
    pub shards: usize,
    /// Where extra training images came from (e.g. `vista gan sample`'s folder); a
    /// record only: the images arrive in [`TrainData`].
    pub extra_data: Option<PathBuf>,
    /// Extra images added to the training part, per real training image; drawn once
    /// per run, seeded, from the extra pool. They never enter validation.
    pub extra_ratio: f32,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            model: ModelConfig::default(),
            pretrained: None,
            init_from: None,
            freeze_epochs: 1,
            stages: vec![StageConfig {
                size: 64,
                epochs: 1,
                lr: None,
            }],
            schedule: ScheduleKind::default(),
            optimizer: OptimizerConfig::default(),
            batch_size: 64,
            valid_pct: 0.1,
            mixup: None,
            label_smoothing: 0.0,
            augment: Some(AugmentConfig::default()),
            normalize: None,
            lr_find: LrFindConfig::default(),
            find_lr_each_stage: false,
            seed: 42,
            workers: 0,
            shards: 1,
            extra_data: None,
            extra_ratio: 0.0,
        }
    }
}

/// Images and labels to train on (the dataset's training part, decoded).
#[derive(Debug, Clone)]
pub struct TrainData {
    pub images: Arc<Vec<RgbImage>>,
    pub labels: Arc<Vec<u32>>,
    pub classes: ClassMap,
    /// The last `extra` images are extra training material (generated ones): kept out
    /// of the validation split and the normalization statistics.
    pub extra: usize,
}

impl TrainData {
    /// Real images and labels only.
    pub fn new(images: Vec<RgbImage>, labels: Vec<u32>, classes: ClassMap) -> Self {
        Self {
            images: Arc::new(images),
            labels: Arc::new(labels),
            classes,
            extra: 0,
        }
    }

    /// Number of real (not extra) images.
    pub fn real(&self) -> usize {
        self.labels.len() - self.extra
    }
}

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Carry on from the run folder's last checkpoint.
    pub resume: bool,
    pub progress: bool,
}

/// What a run leaves behind, also in its folder.
#[derive(Debug)]
pub struct Outcome<B: Backend> {
    pub model: AnyModel<B>,
    pub metrics: Vec<EpochMetrics>,
    /// Learning rate of each phase (found or given).
    pub lrs: Vec<f64>,
}

/// A step of the plan: the frozen epochs of fine-tuning, or one resizing stage.
#[derive(Debug, Clone, PartialEq)]
struct Phase {
    name: String,
    size: u32,
    epochs: usize,
    lr: Option<f64>,
    frozen: bool,
    discriminative: bool,
    schedule: ScheduleKind,
}

fn plan(cfg: &TrainConfig) -> Vec<Phase> {
    let mut phases = Vec::new();
    let fine_tune = cfg.pretrained.is_some();
    if fine_tune && cfg.freeze_epochs > 0 {
        let first = &cfg.stages[0];
        phases.push(Phase {
            name: "frozen".into(),
            size: first.size,
            epochs: cfg.freeze_epochs,
            lr: first.lr,
            frozen: true,
            discriminative: false,
            // fastai's fine_tune: fit_one_cycle(freeze_epochs, pct_start=0.99).
            schedule: ScheduleKind::OneCycle {
                pct_start: 0.99,
                div: 25.0,
                div_final: 1e5,
            },
        });
    }
    for s in &cfg.stages {
        phases.push(Phase {
            name: format!("{}px", s.size),
            size: s.size,
            epochs: s.epochs,
            lr: s.lr,
            frozen: false,
            discriminative: fine_tune,
            schedule: cfg.schedule.clone(),
        });
    }
    phases
}

impl TrainConfig {
    /// The image size of the last stage, which the finished model predicts at.
    pub fn final_size(&self) -> u32 {
        self.stages.last().map_or(64, |s| s.size)
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.stages.is_empty() {
            return bad("at least one stage (size and epochs) is needed".into());
        }
        for s in &self.stages {
            if s.size < self.model.arch.min_size() {
                return bad(format!(
                    "{} needs images of at least {} px, a stage asks for {}",
                    self.model.arch.name(),
                    self.model.arch.min_size(),
                    s.size
                ));
            }
            if let Some(lr) = s.lr
                && !(lr > 0.0 && lr.is_finite())
            {
                return bad(format!("learning rate {lr} is not positive"));
            }
        }
        if self.batch_size == 0 {
            return bad("batch size must be positive".into());
        }
        if !(0.0..1.0).contains(&self.valid_pct) || self.valid_pct == 0.0 {
            return bad(format!("valid_pct {} must be in (0, 1)", self.valid_pct));
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad(format!(
                "label smoothing {} must be in [0, 1)",
                self.label_smoothing
            ));
        }
        if let Some(a) = self.mixup
            && !(a > 0.0 && a.is_finite())
        {
            return bad(format!("mixup alpha {a} must be positive"));
        }
        if !(self.extra_ratio >= 0.0 && self.extra_ratio.is_finite()) {
            return bad(format!(
                "extra ratio {} must be zero or positive",
                self.extra_ratio
            ));
        }
        if self.extra_ratio > 0.0 && self.extra_data.is_none() {
            return bad(format!(
                "extra ratio {} without extra data (--extra-data DIR)",
                self.extra_ratio
            ));
        }
        if self.pretrained.is_some() && self.init_from.is_some() {
            return bad(
                "pretrained weights and --init-from both give the starting weights; \
                 choose one"
                    .into(),
            );
        }
        Ok(())
    }
}

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
}

pub(crate) fn recorder() -> RunRecorder<FullPrecisionSettings> {
    RunRecorder::new()
}

/// `checkpoints/` of a run folder (a classifier's or a GAN's: both keep them alike).
fn checkpoints(dir: &Path) -> PathBuf {
    RunDir::new(dir).checkpoints()
}

/// The folder named by `checkpoints/latest`, if any. Anything but one `epoch-NNNN`
/// name is an error.
pub fn latest_checkpoint(dir: &Path) -> Result<Option<PathBuf>> {
    let latest = RunDir::new(dir).latest();
    match vista_data::read_limited(&latest, 64) {
        Ok(bytes) => {
            let name = String::from_utf8_lossy(&bytes);
            let name = name.trim();
            if !is_checkpoint_name(name) {
                return Err(Error::Config(format!(
                    "{} names `{name}`, which is not a checkpoint of this run (epoch-NNNN)",
                    latest.display()
                )));
            }
            Ok(Some(checkpoints(dir).join(name)))
        }
        Err(vista_format::Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The run's checkpoints, newest first: the one `latest` names, then the others (the
/// spare), so a resume can fall back when the newest does not load.
fn checkpoints_newest_first(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = latest_checkpoint(dir)?.into_iter().collect();
    let root = checkpoints(dir);
    let mut others: Vec<PathBuf> = match std::fs::read_dir(&root) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(is_checkpoint_name)
                    && std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
                    && !out.contains(p)
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    others.sort();
    others.reverse();
    out.extend(others);
    Ok(out)
}

/// The newest checkpoint of `dir` that `load` accepts, with what it loaded. A newest one
/// damaged by a crash or a full disk falls back to the spare kept before it, with a
/// warning. `None` when there is no checkpoint; the newest one's error when none loads.
pub(crate) fn resume_newest<T>(
    dir: &Path,
    mut load: impl FnMut(&Path) -> Result<T>,
) -> Result<Option<(PathBuf, T)>> {
    let mut failure = None;
    for ckpt in checkpoints_newest_first(dir)? {
        match load(&ckpt) {
            Ok(found) => {
                if let Some(e) = failure {
                    eprintln!(
                        "warning: the newest checkpoint does not load ({e}); resuming from {}",
                        ckpt.display()
                    );
                }
                return Ok(Some((ckpt, found)));
            }
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    failure.map_or(Ok(None), Err)
}

/// Holds a run folder for one process: an advisory lock (`flock`) on `<dir>/.lock`,
/// released when dropped or when the process dies. A second process on the same folder
/// gets an error naming the folder and the holder's pid.
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

impl RunLock {
    pub fn acquire(dir: &Path) -> Result<RunLock> {
        use std::io::{Read, Seek, Write};
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = RunDir::new(dir).lock();
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        if file.try_lock().is_err() {
            let mut holder = String::new();
            let _ = file.take(32).read_to_string(&mut holder);
            return Err(Error::Busy {
                dir: dir.to_path_buf(),
                pid: holder.trim().to_string(),
            });
        }
        file.set_len(0).map_err(|e| Error::io(&path, e))?;
        file.rewind().map_err(|e| Error::io(&path, e))?;
        write!(file, "{}", std::process::id()).map_err(|e| Error::io(&path, e))?;
        Ok(RunLock { _file: file })
    }
}

fn save_checkpoint<B: AutodiffBackend, M: AutodiffModule<B>>(
    dir: &Path,
    learner: &Learner<B, M>,
    state: &RunState,
) -> Result<()> {
    write_checkpoint(dir, state.epochs_done, |tmp| {
        learner
            .model
            .clone()
            .save_file(tmp.stem(MODEL), &recorder())
            .map_err(|e| Error::record(&tmp.file(MODEL), e))?;
        learner.optim.save(&tmp.stem(OPTIM))?;
        let state_json = serde_json::to_vec(state).expect("state serializes");
        Ok(write_atomic(&tmp.state(), &state_json)?)
    })
}

/// Writes checkpoint `checkpoints/epoch-NNNN` of the run in `dir`: `fill` writes its
/// files into a temporary folder, which is renamed into place and then named in
/// `checkpoints/latest`; older checkpoints but the previous one (a spare) are removed.
pub(crate) fn write_checkpoint(
    dir: &Path,
    epoch: usize,
    fill: impl FnOnce(&CheckpointDir) -> Result<()>,
) -> Result<()> {
    let root = checkpoints(dir);
    let name = checkpoint_name(epoch);
    let tmp = root.join(format!(".{name}.tmp"));
    let fin = root.join(&name);
    if std::fs::symlink_metadata(&tmp).is_ok() {
        // Left by a crash while filling: incomplete. (A link is removed as a link.)
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    fill(&CheckpointDir::new(&tmp))?;
    vista_data::sync_dir(&tmp)?;
    if std::fs::symlink_metadata(&fin).is_ok() {
        // Left by a crash between the rename and the pointer update: complete, but
        // older than what we hold now.
        std::fs::remove_dir_all(&fin).map_err(|e| Error::io(&fin, e))?;
    }
    vista_data::fault_point("rename").map_err(|e| Error::io(&fin, e))?;
    std::fs::rename(&tmp, &fin).map_err(|e| Error::io(&fin, e))?;
    vista_data::sync_dir(&root)?;
    write_atomic(&RunDir::new(dir).latest(), name.as_bytes())?;
    // Older checkpoints are ours to remove; keep the previous one as a spare.
    let mut old: Vec<PathBuf> = std::fs::read_dir(&root)
        .map_err(|e| Error::io(&root, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| is_checkpoint_name(n) && n != name)
        })
        .collect();
    old.sort();
    if old.len() > 1 {
        for p in &old[..old.len() - 1] {
            std::fs::remove_dir_all(p).map_err(|e| Error::io(p, e))?;
        }
    }
    Ok(())
}

/// Refuses to start a run over one that has checkpoints, unless resuming.
pub(crate) fn refuse_started_run(dir: &Path, opts: &RunOptions, what: &str) -> Result<()> {
    if latest_checkpoint(dir)?.is_some() && !opts.resume {
        return Err(Error::Config(format!(
            "{} already holds {what} with checkpoints; pass --resume to carry it on, or choose another output folder",
            dir.display()
        )));
    }
    Ok(())
}

/// The largest JSON file of a run read (a state holds every step's loss).
const MAX_RUN_JSON_BYTES: u64 = 256 << 20;

/// Reads a JSON file the run wrote (its config or a checkpoint's state).
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = vista_data::read_limited(path, MAX_RUN_JSON_BYTES)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::State {
        path: path.to_path_buf(),
        source: e,
    })
}

fn read_state(path: &Path) -> Result<RunState> {
    read_json(path)
}

fn read_config(path: &Path) -> Result<TrainConfig> {
    read_json(path)
}

/// Resolves the settings decided at the start (normalization) and checks the folder.
fn prepare_dir(
    cfg: &TrainConfig,
    data: &TrainData,
    dir: &Path,
    opts: &RunOptions,
) -> Result<TrainConfig> {
    let config_path = RunDir::new(dir).config();
    refuse_started_run(dir, opts, "a run")?;
    if opts.resume && config_path.exists() {
        let saved = read_config(&config_path)?;
        let mut asked = cfg.clone();
        asked.normalize = saved.normalize;
        if asked != saved {
            return Err(Error::Config(format!(
                "--resume with settings that differ from {}; resume with the same settings",
                config_path.display()
            )));
        }
        return Ok(saved);
    }
    let mut resolved = cfg.clone();
    resolved.normalize = Some(normalization(cfg, data)?);
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    write_atomic(
        &config_path,
        &serde_json::to_vec_pretty(&resolved).expect("config serializes"),
    )?;
    data.classes.save(&RunDir::new(dir).classes())?;
    Ok(resolved)
}

/// Stack of the training thread. Model records (every parameter of a ResNet or
/// Inception as one value) make burn's generic frames large at low optimization levels,
/// beyond the 2 MiB that threads get by default; only the touched pages are committed.
const TRAIN_STACK: usize = 256 << 20;

/// Trains as `cfg` says on `data`, writing everything into `dir`. The work runs on a
/// thread of its own with a large stack (see [`TRAIN_STACK`]).
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
            .ok_or_else(|| Error::Config(format!("{} records no normalization", path.display())));
    }
    Ok(if cfg.pretrained.is_some() {
        cfg.model.arch.pretrained_normalize()
    } else {
        vista_data::normalize_from_images(data.images[..data.real()].iter())
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
        return Err(Error::Config(format!(
            "--init-from {}: its model ({:?}) is not this run's ({:?})",
            config.display(),
            run.config.model,
            cfg.model
        )));
    }
    if &run.classes != classes {
        return Err(Error::Config(format!(
            "--init-from {}: its classes differ from this dataset's",
            RunDir::new(dir).classes().display()
        )));
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
        return Err(Error::Config(format!(
            "extra ratio {} asks for {want} extra images ({} real training images), but {} holds {}",
            cfg.extra_ratio,
            real_train,
            cfg.extra_data
                .as_ref()
                .map_or("the extra data".into(), |p| p.display().to_string()),
            data.extra
        )));
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
    progress: bool,
) -> Result<Learner<B, AnyModel<B>>> {
    let normalize = normalization(cfg, data)?;
    let (mut train_items, valid_items) =
        stratified_split(&data.labels[..data.real()], cfg.valid_pct, cfg.seed);
    let extra = extra_items(cfg, data, train_items.len())?;
    if progress && !extra.is_empty() {
        eprintln!(
            "extra images: {} of {} join {} real training images",
            extra.len(),
            data.extra,
            train_items.len()
        );
    }
    train_items.extend(extra);
    let loader = |items, train: bool| {
        Loader::new(
            data.images.clone(),
            data.labels.clone(),
            items,
            LoaderConfig {
                batch_size: if train {
                    cfg.batch_size
                } else {
                    cfg.batch_size * 2
                },
                shuffle: train,
                drop_last: train,
                augment: if train { cfg.augment.clone() } else { None },
                mixup_alpha: if train { cfg.mixup } else { None },
                normalize,
                workers: cfg.workers,
                seed: cfg.seed,
                ..LoaderConfig::default()
            },
        )
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
        if progress {
            eprintln!(
                "pretrained: {} tensors from {}{}",
                report.loaded,
                report.path.display(),
                if report.head_reinitialized {
                    ", new head"
                } else {
                    ""
                }
            );
        }
        model = m;
    }
    if let Some(dir) = &cfg.init_from {
        model = load_init::<B>(cfg, dir, &data.classes, &device)?;
        if progress {
            eprintln!("starting from the model of {}", dir.display());
        }
    }
    let devices: Vec<B::Device> = (0..cfg.shards.max(1))
        .map(|i| devices[i % devices.len()].clone())
        .collect();
    Ok(Learner::new(
        model,
        loader(train_items, true),
        loader(valid_items, false),
        LearnerConfig {
            num_classes: data.classes.len(),
            optimizer: cfg.optimizer.clone(),
            label_smoothing: cfg.label_smoothing,
            seed: cfg.seed,
            progress,
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
    progress: bool,
) -> Result<LrFinder> {
    cfg.validate()?;
    let mut learner = build_learner::<B>(cfg, data, devices, progress)?;
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
    let cfg = prepare_dir(cfg, data, dir, opts)?;
    let device = devices[0].clone();
    let mut learner = build_learner::<B>(&cfg, data, devices, opts.progress)?;
    let phases = plan(&cfg);
    let mut state = RunState {
        lrs: vec![None; phases.len()],
        ..RunState::default()
    };
    if opts.resume
        && let Some((ckpt, (st, model, optim))) = resume_newest(dir, |ckpt| {
            read_checkpoint(ckpt, &learner, phases.len(), &device)
        })?
    {
        state = st;
        learner.model = model;
        learner.optim = optim;
        learner.epochs_done = state.epochs_done;
        learner.steps = state.steps.clone();
        if opts.progress {
            eprintln!(
                "resuming from {} (epoch {})",
                ckpt.display(),
                state.epochs_done
            );
        }
    }

    for (i, phase) in phases.iter().enumerate().skip(state.phase) {
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
        learner.group_lrs = phase
            .discriminative
            .then(|| even_mults(1.0 / 100.0, learner.model.layer_groups().len()));
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
                if opts.progress {
                    eprintln!(
                        "lr_find ({}): valley {}, steep {}, minimum/10 {}, slide {} -> {lr:.2e}",
                        phase.name,
                        fmt_lr(s.valley),
                        fmt_lr(s.steep),
                        fmt_lr(s.minimum),
                        fmt_lr(s.slide)
                    );
                }
                lr
            }
        };
        state.lrs[i] = Some(lr);
        let spec = FitSpec {
            phase: phase.name.clone(),
            epochs: phase.epochs,
            size: phase.size,
            schedule: phase.schedule.schedule(lr, learner.train.len_batches()),
            skip: state.done_in_phase,
        };
        let mut st = state.clone();
        learner.fit(&spec, &mut |l, m| {
            st.done_in_phase += 1;
            st.epochs_done = l.epochs_done;
            st.metrics.push(m.clone());
            st.steps = l.steps.clone();
            save_checkpoint(dir, l, &st)?;
            Ok(write_metrics(dir, &st.metrics)?)
        })?;
        state = st;
    }

    let model = learner.model.valid();
    model
        .clone()
        .save_file(RunDir::new(dir).model_stem(), &recorder())
        .map_err(|e| Error::record(&RunDir::new(dir).model(), e))?;
    write_metrics(dir, &state.metrics)?;
    if !state.steps.is_empty() {
        loss_plot(&RunDir::new(dir).loss_png(), &state.steps, &state.metrics)?;
        lr_plot(&RunDir::new(dir).lr_png(), &state.steps)?;
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
        return Err(Error::Config(format!(
            "{} describes a plan of {} phases at phase {}, not this run's {phases}",
            ckpt_dir.state().display(),
            state.lrs.len(),
            state.phase
        )));
    }
    let file = ckpt_dir.file(MODEL);
    let model = load_checked(&file, || {
        learner
            .model
            .clone()
            .load_file(ckpt_dir.stem(MODEL), &recorder(), device)
            .map_err(|e| Error::record(&file, e))
    })?;
    let optim = learner.optim.clone().load(&ckpt_dir.stem(OPTIM), device)?;
    Ok((state, model, optim))
}

fn fmt_lr(lr: Option<f64>) -> String {
    lr.map_or("-".into(), |l| format!("{l:.2e}"))
}

/// A finished run, loaded for prediction.
#[derive(Debug)]
pub struct TrainedRun<B: Backend> {
    pub config: TrainConfig,
    pub classes: ClassMap,
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
