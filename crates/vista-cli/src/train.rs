//! `vista train` and `vista lr-find`: the training engine on a dataset
//! folder (or the embedded data), on the CPU or a CUDA device.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use vista_data::{LoadOptions, Loaded, OnBadImage};
use vista_format::{LrFindDir, LrFindRecord, write_json};
use vista_models::{Arch, ModelConfig};
use vista_plot::lr_find_plot;
use vista_train::{
    Monitor, OptimizerConfig, RunOptions, ScheduleKind, StageConfig, Target, TrainConfig,
    TrainData, ValidSet, find_lr, train,
};

use crate::backend::{DeviceSpec, default_shards, with_training_backend};
use crate::paths::{load_data_with, resolve_data};

/// Settings shared by `train` and `lr-find`; unset ones come from `--config` or the
/// defaults.
#[derive(Debug, clap::Args)]
pub struct RecipeArgs {
    /// Dataset folder or CSV, or `embedded` for the bundled Fashion-MNIST.
    #[arg(long, default_value = "embedded")]
    pub data: PathBuf,
    /// Give about this share of the training labels a wrong class (chosen by file name
    /// and --seed): label noise on purpose, to measure how cleaning copes with it.
    #[arg(long)]
    pub flip_labels: Option<f64>,
    /// Leave out the training images a `vista clean detect` manifest (flags.json) flags
    /// as likely mislabelled, without touching the dataset.
    #[arg(long)]
    pub exclude: Option<PathBuf>,
    /// A validation set of your own: a folder of class folders named as the dataset's
    /// classes. It replaces the dataset's own (`valid/`, `is_valid`) and the random split.
    #[arg(long, value_name = "PATH")]
    pub valid: Option<PathBuf>,
    /// Extra training images: an image-folder tree with the dataset's class names, such
    /// as `vista gan sample --out`. They join the training part only.
    #[arg(long)]
    pub extra_data: Option<PathBuf>,
    /// Extra images per real training image, drawn with the seed from --extra-data
    /// (default 0.2).
    #[arg(long, requires = "extra_data")]
    pub extra_ratio: Option<f32>,
    /// Decode images down to this shorter side (0: keep them whole). Default: 15% above
    /// the largest training size, so big photos take little memory.
    #[arg(long)]
    pub max_side: Option<u32>,
    /// Memory for decoded images, in MiB (default: an eighth of the machine's memory, or of
    /// its container's limit when lower).
    /// Images past it are kept in an unnamed file beside the output folder and read back
    /// when used, so memory does not grow with the dataset; the file vanishes with the
    /// process, even when it is killed.
    #[arg(long)]
    pub cache_mb: Option<u64>,
    /// A JSON or TOML file with any settings of a run (see `config.json` of a run);
    /// flags given here override it.
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// The architecture (`-` or `_` in its name).
    #[arg(long, value_enum)]
    arch: Option<Arch>,
    /// Channel multiplier of the model (1.0 = the published width).
    #[arg(long)]
    width: Option<f64>,
    /// Use the ResNets' small-image stem (default: on when the largest size is <= 64 px).
    #[arg(long)]
    small_stem: Option<bool>,
    /// fastai's head instead of one linear layer.
    #[arg(long)]
    fastai_head: bool,
    /// Pretrained weights (PyTorch .pth or safetensors): fine-tune them.
    #[arg(long)]
    pretrained: Option<PathBuf>,
    /// A finished run folder: start from its model (its architecture, width and stem
    /// are taken from it; the classes must match) and its normalization, and train it
    /// further with this run's stages, e.g. on cleaned data or with extra images.
    #[arg(long)]
    init_from: Option<PathBuf>,
    /// Image sizes of the progressive-resizing stages, e.g. 64,128,150.
    #[arg(long, value_delimiter = ',')]
    sizes: Option<Vec<u32>>,
    /// Epochs of each stage, e.g. 3,2.
    #[arg(long, value_delimiter = ',')]
    epochs: Option<Vec<usize>>,
    /// Peak learning rate of each stage, or `auto`: the LR finder's valley, found at the
    /// first such stage and reused by later ones.
    #[arg(long, value_delimiter = ',')]
    lr: Option<Vec<String>>,
    /// Run the LR finder at every `auto` stage instead of reusing the first one's rate.
    #[arg(long)]
    lr_find_each_stage: bool,
    /// one-cycle, sgdr, flat-cos or cosine.
    #[arg(long)]
    schedule: Option<String>,
    /// adamw or sgd.
    #[arg(long)]
    optimizer: Option<String>,
    /// Mixup's alpha (0 turns mixup off).
    #[arg(long)]
    mixup: Option<f32>,
    /// Label smoothing ε (default 0.1; 0 = plain cross-entropy).
    #[arg(long)]
    label_smoothing: Option<f32>,
    /// Train without augmentation.
    #[arg(long)]
    no_augment: bool,
    /// Images per batch (default 128 for thumbnails of 64 px or less, 64 above, fewer
    /// for a small dataset), split over the shards.
    #[arg(long)]
    pub(crate) batch_size: Option<usize>,
    /// What the best epoch (kept as best.safetensors) is judged by: `valid-loss`
    /// (default) or `accuracy`.
    #[arg(long, value_parser = parse_monitor)]
    monitor: Option<Monitor>,
    /// Weigh each class in the training loss: `balanced` (n / (k · n_class), as
    /// scikit-learn's) or a CSV file of `class,weight` lines (classes not listed weigh 1).
    #[arg(long, value_name = "balanced|FILE")]
    class_weights: Option<String>,
    /// Stop after this many epochs without a better --monitor figure.
    #[arg(long, value_name = "EPOCHS")]
    early_stop: Option<usize>,
    /// Share of each class held out for validation (default 0.1).
    #[arg(long)]
    valid_pct: Option<f32>,
    /// Seed of every random choice: the same seed on the same backend gives the same run
    /// (default 42).
    #[arg(long)]
    seed: Option<u64>,
    /// Data-parallel shards per batch (default: one per core on the CPU).
    #[arg(long)]
    shards: Option<usize>,
    /// `cpu`, `cuda`, `cuda:N`, a comma-separated list of them (data-parallel over
    /// the list; `cpu,cpu` is two CPU shards), or `all` (every CUDA GPU, else the CPU).
    #[arg(long, visible_alias = "devices", default_value = "cpu")]
    pub device: DeviceSpec,
    /// What to do with corrupt or unreadable images.
    #[arg(long, default_value = "error")]
    on_bad_image: OnBadImage,
}

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    #[command(flatten)]
    recipe: RecipeArgs,
    /// Run folder for the model, config, class map, metrics, plots and checkpoints.
    #[arg(long, default_value = "runs/train")]
    out: PathBuf,
    /// Carry on from the run folder's last checkpoint.
    #[arg(long)]
    resume: bool,
}

#[derive(Debug, clap::Args)]
pub struct LrFindArgs {
    #[command(flatten)]
    recipe: RecipeArgs,
    /// Folder for `lr_find.png` and `lr_find.json`.
    #[arg(long, default_value = "runs/lr_find")]
    out: PathBuf,
}

fn read_config(path: &Path) -> Result<TrainConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let cfg = if path.extension().is_some_and(|e| e == "toml") {
        toml::from_str(&text)
            .with_context(|| format!("{} is not a valid TOML run config", path.display()))?
    } else {
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid JSON run config", path.display()))?
    };
    Ok(cfg)
}

/// The model of a run that starts from the finished run in `dir`: its architecture,
/// width, stem and head, as a checkpoint fixes them for `--pretrained`; a flag that
/// contradicts them is an error naming both.
fn init_model(dir: &Path, args: &RecipeArgs, classes: usize) -> Result<ModelConfig> {
    let path = vista_format::RunDir::new(dir).config();
    let from: TrainConfig = vista_format::read_json(&path)
        .with_context(|| format!("--init-from {}: reading its settings", dir.display()))?;
    let model = ModelConfig {
        num_classes: classes,
        ..from.model
    };
    let contradicts = |flag: String| {
        anyhow::anyhow!(
            "--init-from {} trains {} (width {}, {} stem{}); {flag} contradicts it",
            dir.display(),
            model.arch,
            model.width,
            if model.small_stem {
                "small"
            } else {
                "standard"
            },
            if model.fastai_head {
                ", fastai head"
            } else {
                ""
            }
        )
    };
    if let Some(a) = args.arch.filter(|&a| a != model.arch) {
        return Err(contradicts(format!("--arch {a}")));
    }
    if let Some(w) = args
        .width
        .filter(|&w| (w - model.width).abs() > 1e-6 * model.width)
    {
        return Err(contradicts(format!("--width {w}")));
    }
    if let Some(s) = args.small_stem.filter(|&s| s != model.small_stem) {
        return Err(contradicts(format!("--small-stem {s}")));
    }
    if args.fastai_head && !model.fastai_head {
        return Err(contradicts("--fastai-head".into()));
    }
    Ok(model)
}

fn parse_monitor(name: &str) -> std::result::Result<Monitor, String> {
    Monitor::parse(name).ok_or_else(|| format!("`{name}`: use valid-loss or accuracy"))
}

/// The run's settings: `--config`, else the default recipe
/// ([`TrainConfig::default_recipe`]), then the flags given on the command line.
pub(crate) fn build_config(
    args: &RecipeArgs,
    sizes: &[(u32, u32)],
    classes: usize,
) -> Result<TrainConfig> {
    let mut cfg = match &args.config {
        Some(p) => read_config(p)?,
        None => {
            let target = if args.device.is_cuda() {
                Target::Gpu
            } else {
                Target::Cpu
            };
            let mut cfg = TrainConfig::default_recipe(sizes, classes, target);
            cfg.shards = default_shards(&args.device);
            cfg
        }
    };
    cfg.model.num_classes = classes;
    if let Some(a) = args.arch {
        cfg.model.arch = a;
    }
    if let Some(w) = args.width {
        cfg.model.width = w;
    }
    if args.fastai_head {
        cfg.model.fastai_head = true;
    }
    if let Some(p) = &args.pretrained {
        cfg.pretrained = Some(p.clone());
    }
    if let Some(p) = &args.init_from {
        cfg.init_from = Some(p.clone());
    }
    if args.sizes.is_some() || args.epochs.is_some() || args.lr.is_some() {
        let sizes = args
            .sizes
            .clone()
            .unwrap_or_else(|| cfg.stages.iter().map(|s| s.size).collect());
        let n = sizes.len();
        let pick =
            |v: &Option<Vec<String>>, i: usize| v.as_ref().map(|v| v[i.min(v.len() - 1)].clone());
        let epochs = args.epochs.clone().unwrap_or_else(|| vec![1]);
        cfg.stages = (0..n)
            .map(|i| {
                let lr =
                    match pick(&args.lr, i).as_deref() {
                        None | Some("auto") => None,
                        Some(v) => Some(v.parse::<f64>().with_context(|| {
                            format!("--lr `{v}` is neither a number nor `auto`")
                        })?),
                    };
                Ok(StageConfig {
                    size: sizes[i],
                    epochs: epochs[i.min(epochs.len() - 1)],
                    lr,
                })
            })
            .collect::<Result<_>>()?;
        if epochs.len() > 1 && epochs.len() != n {
            bail!(
                "--epochs lists {} stages but --sizes lists {n}",
                epochs.len()
            );
        }
    }
    let largest = cfg.largest_size();
    if args.config.is_none() {
        // The default batch follows the sizes trained at, `--sizes` included.
        cfg.batch_size = vista_train::default_batch(sizes.len(), largest);
    }
    cfg.model.small_stem = args.small_stem.unwrap_or(if args.config.is_some() {
        cfg.model.small_stem
    } else {
        vista_models::ModelConfig::small_stem_suits(largest)
    });
    if let (Some(p), Some(r)) = (&cfg.pretrained, &cfg.init_from) {
        bail!(
            "--pretrained {} and --init-from {} both give the starting weights; choose one",
            p.display(),
            r.display()
        );
    }
    if let Some(dir) = &cfg.init_from {
        cfg.model = init_model(dir, args, classes)?;
    }
    if let Some(path) = &cfg.pretrained {
        // The checkpoint fixes the model's shape: a CPU recipe's narrow width or small
        // stem would not fit full-size weights.
        let found = vista_models::inspect(path)
            .with_context(|| format!("reading --pretrained {}", path.display()))?;
        if let Some(guess) = &found.guess {
            let fixed = vista_models::Fixed {
                arch: args.arch,
                width: args.width,
                small_stem: args.small_stem,
            };
            let shaped = guess.shape(path, &cfg.model, &fixed)?;
            if shaped != cfg.model {
                eprintln!(
                    "--pretrained {}: {} from the checkpoint (width {}, {} stem)",
                    path.display(),
                    shaped.arch,
                    shaped.width,
                    if shaped.small_stem {
                        "small"
                    } else {
                        "standard"
                    }
                );
            }
            cfg.model = shaped;
        }
    }
    if let Some(s) = &args.schedule {
        cfg.schedule = ScheduleKind::parse(s)?;
    }
    match args.optimizer.as_deref() {
        None => {}
        Some("adamw") => cfg.optimizer = OptimizerConfig::default(),
        Some("sgd") => cfg.optimizer = OptimizerConfig::sgd(),
        Some(o) => bail!("unknown optimizer `{o}` (adamw, sgd)"),
    }
    if let Some(m) = args.mixup {
        cfg.mixup = (m > 0.0).then_some(m);
    }
    if let Some(l) = args.label_smoothing {
        cfg.label_smoothing = l;
    }
    if args.no_augment {
        cfg.augment = None;
    }
    if args.lr_find_each_stage {
        cfg.find_lr_each_stage = true;
    }
    if let Some(b) = args.batch_size {
        cfg.batch_size = b;
    }
    if let Some(m) = args.monitor {
        cfg.monitor = m;
    }
    if let Some(n) = args.early_stop {
        cfg.early_stop = Some(n);
    }
    if let Some(v) = args.valid_pct {
        cfg.valid_pct = v;
    }
    if let Some(s) = args.seed {
        cfg.seed = s;
    }
    match args.shards {
        Some(s) => cfg.shards = s,
        // Several listed devices each take a shard, whatever a --config file says.
        None if args.device.count() > 1 => cfg.shards = cfg.shards.max(args.device.count()),
        None => {}
    }
    if let Some(dir) = &args.extra_data {
        // A ratio from --config stands unless --extra-ratio overrides it.
        let from_config = (cfg.extra_ratio > 0.0).then_some(cfg.extra_ratio);
        cfg.extra_data = Some(dir.clone());
        cfg.extra_ratio = args.extra_ratio.or(from_config).unwrap_or(0.2);
    }
    cfg.validate()?;
    Ok(cfg)
}

/// Decodes the dataset of `args`; `out` is the folder the command writes, beside which
/// images past the memory budget are spilled.
pub(crate) fn load_data(
    args: &RecipeArgs,
    out: &Path,
    progress: bool,
) -> Result<(Loaded, PathBuf)> {
    let path = resolve_data(&args.data, progress)?;
    let opts = LoadOptions {
        on_bad_image: args.on_bad_image,
        max_side: max_side(args)?,
        cache_budget: cache_budget(args),
        spill_dir: Some(spill_dir(out)),
        observer: crate::observe::terminal(progress),
        ..LoadOptions::default()
    };
    let loaded = load_data_with(&path, &opts)?;
    if progress && loaded.spilled_bytes() > 0 {
        eprintln!(
            "decoded images: {} MiB in memory, {} MiB past the budget read back from disk (--cache-mb)",
            loaded.cache_bytes() >> 20,
            loaded.spilled_bytes() >> 20
        );
    }
    Ok((loaded, path))
}

/// `--cache-mb` in bytes, or the default budget.
fn cache_budget(args: &RecipeArgs) -> u64 {
    (args.cache_mb).map_or_else(vista_data::default_cache_budget, |mb| {
        mb.saturating_mul(1 << 20)
    })
}

/// The folder of the spill file: the nearest existing folder above the output folder
/// (which may not exist yet), on the disk the user chose for the run, rather than a
/// temporary folder that may be held in memory.
fn spill_dir(out: &Path) -> PathBuf {
    let mut dir = out.parent();
    while let Some(d) = dir {
        if d.as_os_str().is_empty() {
            break;
        }
        if d.is_dir() {
            return d.to_path_buf();
        }
        dir = d.parent();
    }
    PathBuf::from(".")
}

/// The shorter side training images are decoded down to (`--max-side`).
fn max_side(args: &RecipeArgs) -> Result<Option<u32>> {
    Ok(match args.max_side {
        Some(0) => None,
        Some(side) => Some(side),
        None => Some(vista_train::cache_side(largest_size(args)?)),
    })
}

/// The largest image size the run trains at, as far as it is known before the images
/// are: `--sizes`, else `--config`'s stages; never below the most the default recipe
/// picks, so images up to `cache_side(224)` are held as they are (a run's results on
/// small images do not depend on its sizes), and only big photos are decoded smaller.
fn largest_size(args: &RecipeArgs) -> Result<u32> {
    let mut largest = vista_train::MAX_DEFAULT_SIZE;
    if let Some(sizes) = &args.sizes {
        largest = largest.max(sizes.iter().copied().max().unwrap_or(0));
    } else if let Some(path) = &args.config {
        let cfg = read_config(path)?;
        largest = largest.max(cfg.stages.iter().map(|s| s.size).max().unwrap_or(0));
    }
    Ok(largest)
}

/// The training data, with `--flip-labels` applied; also returns the flipped indices.
pub(crate) fn noisy_train_data(
    args: &RecipeArgs,
    cfg: &TrainConfig,
    loaded: Loaded,
) -> (TrainData, Vec<usize>) {
    let names = loaded.dataset.train_names();
    let k = loaded.dataset.classes.len();
    let mut data = TrainData::from(loaded);
    let flipped = match args.flip_labels {
        Some(f) if f > 0.0 => {
            let mut labels = data.labels.to_vec();
            let flipped = vista_clean::flip_labels_by_name(&names, &mut labels, k, f, cfg.seed);
            eprintln!(
                "--flip-labels {f}: {} of {} training labels given a wrong class on purpose",
                flipped.len(),
                labels.len()
            );
            data.labels = Arc::new(labels);
            flipped
        }
        _ => Vec::new(),
    };
    (data, flipped)
}

/// `--class-weights` for `data`'s classes, in class order.
pub(crate) fn class_weights(args: &RecipeArgs, data: &TrainData) -> Result<Option<Vec<f32>>> {
    let Some(spec) = &args.class_weights else {
        return Ok(None);
    };
    let classes = &data.classes.classes;
    if spec == "balanced" {
        return Ok(Some(vista_train::balanced_weights(
            &data.labels[..data.real()],
            classes.len(),
        )));
    }
    let path = Path::new(spec);
    let bytes = vista_format::read_limited(path, 1 << 20)
        .with_context(|| format!("reading --class-weights {spec}"))?;
    let text = String::from_utf8(bytes).with_context(|| format!("{spec} is not UTF-8 text"))?;
    let mut weights = vec![1.0f32; classes.len()];
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line == "class,weight" {
            continue;
        }
        let (class, weight) = line
            .rsplit_once(',')
            .with_context(|| format!("{spec}:{}: expected `class,weight`", n + 1))?;
        let id = classes
            .iter()
            .position(|c| c == class.trim())
            .with_context(|| {
                format!("{spec}:{}: no class `{}` in the data", n + 1, class.trim())
            })?;
        weights[id] = weight
            .trim()
            .parse()
            .with_context(|| format!("{spec}:{}: `{}` is not a number", n + 1, weight.trim()))?;
    }
    Ok(Some(weights))
}

/// The memory budget left for more images once `data`'s are held, and the spill folder
/// for a command writing `out`: every load of one command shares one budget.
fn budget_left(args: &RecipeArgs, data: &TrainData, out: &Path) -> (u64, Option<PathBuf>) {
    let held =
        data.images.memory_bytes() + data.valid.as_ref().map_or(0, |v| v.images.memory_bytes());
    (
        cache_budget(args).saturating_sub(held),
        Some(spill_dir(out)),
    )
}

/// Uses `--valid`'s images as the validation set of `data`.
pub(crate) fn attach_valid(
    args: &RecipeArgs,
    data: TrainData,
    out: &Path,
    progress: bool,
) -> Result<TrainData> {
    let Some(dir) = &args.valid else {
        return Ok(data);
    };
    // A dataset's root would give its training images as the validation set.
    if !matches!(
        vista_data::detect_layout(dir),
        Ok(vista_data::Layout::ImageFolder)
    ) {
        bail!(
            "--valid {}: give a folder of class folders (<class>/<image>), such as a dataset's valid/ itself",
            dir.display()
        );
    }
    let (cache_budget, spill_dir) = budget_left(args, &data, out);
    let opts = LoadOptions {
        on_bad_image: args.on_bad_image,
        max_side: max_side(args)?,
        cache_budget,
        spill_dir,
        observer: crate::observe::terminal(progress),
        ..LoadOptions::default()
    };
    let (images, labels, _) = vista_data::load_extra(dir, &data.classes, &opts)
        .with_context(|| format!("loading --valid {}", dir.display()))?;
    anyhow::ensure!(!images.is_empty(), "--valid {}: no image", dir.display());
    Ok(data.with_valid(ValidSet::new(images, labels)))
}

/// Appends `--extra-data`'s images to `data` (marked extra: training part only).
fn attach_extra(
    args: &RecipeArgs,
    cfg: &TrainConfig,
    data: TrainData,
    out: &Path,
    progress: bool,
) -> Result<TrainData> {
    let Some(dir) = cfg.extra_data.as_ref().filter(|_| cfg.extra_ratio > 0.0) else {
        return Ok(data);
    };
    let (cache_budget, spill_dir) = budget_left(args, &data, out);
    let opts = LoadOptions {
        on_bad_image: args.on_bad_image,
        cache_budget,
        spill_dir,
        observer: crate::observe::terminal(progress),
        ..LoadOptions::default()
    };
    let (images, labels, _) = vista_data::load_extra(dir, &data.classes, &opts)
        .with_context(|| format!("loading --extra-data {}", dir.display()))?;
    if !vista_format::SyntheticDir::new(dir).manifest().exists() && progress {
        eprintln!(
            "note: {} has no synthetic.json; its images are used as extra training images all the same",
            dir.display()
        );
    }
    eprintln!(
        "--extra-data: {} images in {}; {} per real training image join the training part",
        images.len(),
        dir.display(),
        cfg.extra_ratio
    );
    Ok(data.with_extra(images, labels))
}

pub fn run_train(args: &TrainArgs, progress: bool) -> Result<()> {
    let start = Instant::now();
    let (loaded, path) = load_data(&args.recipe, &args.out, progress)?;
    let mut cfg = build_config(
        &args.recipe,
        &loaded.original_sizes,
        loaded.dataset.classes.len(),
    )?;
    let names = loaded.dataset.train_names();
    let (data, _) = noisy_train_data(&args.recipe, &cfg, loaded);
    if let Some(w) = class_weights(&args.recipe, &data)? {
        cfg.class_weights = Some(w);
    }
    if let Some(w) = &cfg.class_weights {
        eprintln!(
            "class weights: {}",
            (data.classes.classes.iter().zip(w))
                .map(|(c, w)| format!("{c} {w:.3}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    cfg.validate()?;
    let mut data = attach_valid(&args.recipe, data, &args.out, progress)?;
    if let Some(path) = &args.recipe.exclude {
        let keep = vista_clean::Manifest::read(path)?.keep(&names);
        eprintln!(
            "--exclude: {} flagged training images left out ({})",
            names.len() - keep.len(),
            path.display()
        );
        data = data.subset(&keep);
    }
    let data = attach_extra(&args.recipe, &cfg, data, &args.out, progress)?;
    if progress {
        eprintln!(
            "training {} (width {}) on {} ({} images, {} classes): stages {}",
            cfg.model.arch.name(),
            cfg.model.width,
            path.display(),
            data.labels.len(),
            data.classes.len(),
            cfg.stages
                .iter()
                .map(|s| format!("{}px x{}", s.size, s.epochs))
                .collect::<Vec<_>>()
                .join(" -> ")
        );
    }
    let opts = RunOptions {
        resume: args.resume,
        observer: crate::observe::terminal(progress),
    };
    let outcome = with_training_backend!(args.recipe.device, |B, devices| {
        train::<B>(&cfg, &data, &args.out, devices, &opts).map(|o| o.metrics)
    })
    .with_context(|| format!("training into {}", args.out.display()))?;
    let last = outcome.last().context("the run trained no epoch")?;
    println!(
        "done in {}: valid accuracy {:.4}, valid loss {:.4}; run folder {}",
        vista_train::format_secs(start.elapsed().as_secs_f32()),
        last.accuracy,
        last.valid_loss,
        args.out.display()
    );
    Ok(())
}

pub fn run_lr_find(args: &LrFindArgs, progress: bool) -> Result<()> {
    let (loaded, _) = load_data(&args.recipe, &args.out, progress)?;
    let cfg = build_config(
        &args.recipe,
        &loaded.original_sizes,
        loaded.dataset.classes.len(),
    )?;
    let data = attach_valid(&args.recipe, TrainData::from(loaded), &args.out, progress)?;
    let data = attach_extra(&args.recipe, &cfg, data, &args.out, progress)?;
    let finder = with_training_backend!(args.recipe.device, |B, devices| {
        find_lr::<B>(&cfg, &data, devices, &crate::observe::terminal(progress))
    })?;
    let s = finder.suggestions();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let out = LrFindDir::new(&args.out);
    let png = out.plot();
    lr_find_plot(&png, &finder.lrs, &finder.losses, &s)?;
    let record = LrFindRecord {
        lrs: finder.lrs.clone(),
        losses: finder.losses.clone(),
        suggestions: s,
    };
    write_json(&out.record(), &record)?;
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2e}"));
    println!(
        "valley {} (fastai's default), steep {}, minimum/10 {}, slide {}; plot: {}",
        f(s.valley),
        f(s.steep),
        f(s.minimum),
        f(s.slide),
        png.display()
    );
    Ok(())
}
