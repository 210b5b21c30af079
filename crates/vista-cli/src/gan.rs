//! `vista gan train` and `vista gan sample`: a Wasserstein GAN on a dataset's training
//! images, and its images written as an image-folder tree marked as synthetic, which
//! `vista train --extra-data DIR --extra-ratio R` adds to the training part.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::backend::Backend;
use vista_data::OnBadImage;
use vista_eval::{PredictOptions, predict_images};
use vista_format::Consistency;
use vista_train::{
    GanConfig, OptimizerConfig, RunOptions, Samples, TrainData, TrainedGan, load_gan, load_run,
    train_gan, write_synthetic,
};

use crate::backend::{DeviceSpec, default_shards, with_inference_backend, with_training_backend};
use crate::paths::{load_data_at, resolve_data};

#[derive(Debug, clap::Subcommand)]
pub enum GanCommand {
    /// Train a Wasserstein GAN on a dataset's training images (weight clipping 0.01,
    /// RMSprop 5e-5, 5 critic steps per generator step): checkpoints, a sample grid per
    /// epoch, resumable.
    Train(GanTrainArgs),
    /// Write generated images as an image-folder tree marked as synthetic, optionally
    /// scored for class consistency by a classifier trained on real images.
    Sample(GanSampleArgs),
}

#[derive(Debug, clap::Args)]
pub struct GanTrainArgs {
    /// Dataset folder or CSV, or `embedded` for the bundled Fashion-MNIST.
    #[arg(long, default_value = "embedded")]
    data: PathBuf,
    /// Run folder for the networks, checkpoints, sample grids and loss curves.
    #[arg(long, default_value = "runs/gan")]
    out: PathBuf,
    /// Side of the generated images: 32 or 64.
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// Colour channels, 1 or 3 (default: 1 when every training image is grey).
    #[arg(long)]
    channels: Option<usize>,
    /// Feature maps of the generator's last layer and the critic's first (DCGAN: 64).
    #[arg(long, default_value_t = 64)]
    features: usize,
    /// One generator for all classes, not told the class (the images then have no
    /// class and `sample` cannot write them per class).
    #[arg(long)]
    unconditional: bool,
    /// Passes of the critic over the training images.
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Critic steps per generator step.
    #[arg(long, default_value_t = 5)]
    critic_steps: usize,
    /// The critic's weights are clipped into [-clip, clip] after each of its steps.
    #[arg(long, default_value_t = 0.01)]
    clip: f32,
    /// rmsprop (the WGAN paper's) or adam (beta1 0, beta2 0.99, as fastai's WGAN
    /// example).
    #[arg(long, default_value = "rmsprop")]
    optimizer: String,
    #[arg(long, default_value_t = 5e-5)]
    lr: f64,
    /// Train on this many training images, drawn with the seed (default: all).
    #[arg(long)]
    images: Option<usize>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Data-parallel shards per batch (default: one per core on the CPU).
    #[arg(long)]
    shards: Option<usize>,
    /// `cpu`, `cuda`, `cuda:N`, a comma-separated list of them (data-parallel over
    /// the list; `cpu,cpu` is two CPU shards), or `all` (every CUDA GPU, else the CPU).
    #[arg(long, visible_alias = "devices", default_value = "cpu")]
    device: DeviceSpec,
    /// What to do with corrupt or unreadable images.
    #[arg(long, default_value = "error")]
    on_bad_image: OnBadImage,
    /// Carry on from the run folder's last checkpoint.
    #[arg(long)]
    resume: bool,
}

#[derive(Debug, clap::Args)]
pub struct GanSampleArgs {
    /// The GAN run folder (`vista gan train --out`).
    #[arg(long, default_value = "runs/gan")]
    run: PathBuf,
    /// A checkpoint folder of the run to sample instead of its final generator.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Images per class.
    #[arg(long)]
    per_class: usize,
    /// The folder to create: `<class>/gan-NNNNN.png` and `synthetic.json`.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// A classifier run trained on real images: report the share of generated images
    /// it puts in their intended class, per class (class consistency).
    #[arg(long)]
    check_with: Option<PathBuf>,
    /// `cpu`, `cuda`, `cuda:N`, a comma-separated list of them (data-parallel over
    /// the list; `cpu,cpu` is two CPU shards), or `all` (every CUDA GPU, else the CPU).
    #[arg(long, visible_alias = "devices", default_value = "cpu")]
    device: DeviceSpec,
}

pub fn run(cmd: &GanCommand, progress: bool) -> Result<()> {
    match cmd {
        GanCommand::Train(args) => run_train(args, progress),
        GanCommand::Sample(args) => run_sample(args, progress),
    }
}

fn run_train(args: &GanTrainArgs, progress: bool) -> Result<()> {
    let start = Instant::now();
    let path = resolve_data(&args.data, progress)?;
    let loaded = load_data_at(&path, args.on_bad_image, None, progress)?;
    let mut data = TrainData::from(loaded);
    if let Some(n) = args.images {
        data = data.random_subset(n, args.seed);
    }
    let optimizer = match args.optimizer.as_str() {
        "rmsprop" => OptimizerConfig::rmsprop(),
        "adam" => OptimizerConfig::AdamW {
            beta1: 0.0,
            beta2: 0.99,
            eps: 1e-5,
            weight_decay: 0.0,
        },
        o => bail!("unknown GAN optimizer `{o}` (rmsprop, adam)"),
    };
    let cfg = GanConfig {
        size: args.size,
        channels: args.channels,
        features: args.features,
        conditional: !args.unconditional,
        epochs: args.epochs,
        batch_size: args.batch_size,
        critic_steps: args.critic_steps,
        clip: args.clip,
        optimizer,
        lr: args.lr,
        seed: args.seed,
        shards: args.shards.unwrap_or(default_shards(&args.device)),
        ..GanConfig::default()
    };
    cfg.validate()?;
    if progress {
        eprintln!(
            "training a {}WGAN at {} px on {} ({} images, {} classes): {} epochs, {} critic steps per generator step",
            if cfg.conditional {
                "class-conditional "
            } else {
                ""
            },
            cfg.size,
            path.display(),
            data.labels.len(),
            data.classes.len(),
            cfg.epochs,
            cfg.critic_steps
        );
    }
    let opts = RunOptions {
        resume: args.resume,
        observer: crate::observe::terminal(progress),
    };
    let epochs = with_training_backend!(args.device, |B, devices| {
        train_gan::<B>(&cfg, &data, &args.out, devices, &opts)
    })
    .with_context(|| format!("training a GAN into {}", args.out.display()))?;
    let last = epochs.last().context("the GAN trained no epoch")?;
    println!(
        "done in {}: Wasserstein estimate {:.5} (epoch 1: {:.5}); samples in {}",
        vista_train::format_secs(start.elapsed().as_secs_f32()),
        last.wasserstein,
        epochs[0].wasserstein,
        args.out.join("samples").display()
    );
    Ok(())
}

fn run_sample(args: &GanSampleArgs, progress: bool) -> Result<()> {
    with_inference_backend!(args.device, |B, devices| sample_on::<B>(
        args, devices, progress
    ))
}

/// Samples the GAN on `devices[0]`; the judge of `--check-with` predicts on all of them.
fn sample_on<B: Backend>(
    args: &GanSampleArgs,
    devices: Vec<B::Device>,
    progress: bool,
) -> Result<()> {
    let device = devices[0].clone();
    if args.out.exists() {
        bail!(
            "{} already exists; choose a new folder (nothing was written)",
            args.out.display()
        );
    }
    let gan: TrainedGan<B> = load_gan(&args.run, args.checkpoint.as_deref(), &device)
        .with_context(|| format!("loading the GAN run {}", args.run.display()))?;
    // The judge is loaded and checked before anything is generated or written.
    let judge = match &args.check_with {
        Some(run) => Some(load_judge::<B>(run, &gan.classes.classes, devices.clone())?),
        None => None,
    };
    let samples = gan.sample_classes(args.per_class, args.seed, &device)?;
    let consistency = match &judge {
        Some(judge) => Some(class_consistency(
            judge,
            &samples,
            &gan.classes.classes,
            progress,
        )),
        None => None,
    };
    write_synthetic(&args.out, &gan, &samples, consistency.as_ref())
        .with_context(|| format!("writing the images into {}", args.out.display()))?;
    println!(
        "{} generated images ({} per class, {} px, generator of epoch {}) in {}",
        samples.images.len(),
        args.per_class,
        gan.config.size,
        gan.epochs,
        args.out.display()
    );
    if let Some(c) = consistency {
        print!("{}", c.table());
    }
    Ok(())
}

/// A classifier trained on real images, loaded on the CPU, that judges generated ones.
struct Judge<B: Backend> {
    path: PathBuf,
    run: vista_train::TrainedRun<B>,
    /// The devices its predictions are sharded over.
    devices: Vec<B::Device>,
}

/// Loads the classifier of `--check-with` and checks it knows the GAN's classes.
fn load_judge<B: Backend>(
    run: &Path,
    classes: &[String],
    devices: Vec<B::Device>,
) -> Result<Judge<B>> {
    let r = load_run::<B>(run, &devices[0])
        .with_context(|| format!("loading the classifier {}", run.display()))?;
    if r.classes.classes != classes {
        bail!(
            "the classifier {} knows the classes {:?}, the GAN {:?}",
            run.display(),
            r.classes.classes,
            classes
        );
    }
    Ok(Judge {
        path: run.to_path_buf(),
        run: r,
        devices,
    })
}

/// The share of `samples` that the judge puts in their intended class, overall and per
/// class.
fn class_consistency<B: Backend>(
    judge: &Judge<B>,
    samples: &Samples,
    classes: &[String],
    progress: bool,
) -> Consistency {
    let (run, r) = (&judge.path, &judge.run);
    if progress {
        eprintln!(
            "class consistency: {} generated images through {}",
            samples.images.len(),
            run.display()
        );
    }
    let opts = PredictOptions::for_run(r.config.final_size(), r.config.normalize, r.config.seed);
    let idx: Vec<u64> = (0..samples.images.len() as u64).collect();
    let k = classes.len();
    let probs = predict_images::<B, _>(&r.model, &judge.devices, &samples.images, &idx, k, &opts);
    let classifier = std::path::absolute(run).unwrap_or_else(|_| run.clone());
    Consistency::score(classifier, &probs, &samples.labels, classes)
}
