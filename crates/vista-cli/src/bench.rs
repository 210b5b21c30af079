//! `vista bench models`: training-step throughput (forward, cross-entropy, backward, SGD
//! step) or inference throughput (forward) of each architecture on a backend, with the
//! process's peak memory, for `cargo xtask bench models` to set beside PyTorch.

use std::time::Instant;

use anyhow::Result;
use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use vista_models::{Arch, Classifier, ModelConfig};
use vista_train::OptimizerConfig;

use crate::backend::{DeviceSpec, with_training_backend};

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Comma-separated architectures.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_values_t = [Arch::Resnet18, Arch::Resnet50, Arch::InceptionV3, Arch::EfficientnetLite0]
    )]
    models: Vec<Arch>,
    /// Comma-separated image sizes.
    #[arg(long, default_value = "64,128", value_delimiter = ',')]
    sizes: Vec<usize>,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Timed steps per measurement (after one warm-up step).
    #[arg(long, default_value_t = 3)]
    steps: usize,
    /// Channel multiplier of the ResNets and Inception (1.0 = the published models).
    #[arg(long, default_value_t = 1.0)]
    width: f64,
    /// The ResNets' small-image stem (3x3 stride-1 convolution, no max-pool).
    #[arg(long)]
    small_stem: bool,
    /// Threads that each run a shard of the batch at once, as data-parallel training does.
    #[arg(long, default_value_t = 1)]
    shards: usize,
    /// `cpu` or one CUDA device (`cuda`, `cuda:N`).
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
    /// Time inference (forward pass without gradients, the whole batch on every core, as
    /// `vista predict` runs) instead of a training step.
    #[arg(long)]
    infer: bool,
}

/// The learning rate of the timed SGD steps (its value does not change the work).
const BENCH_LR: f64 = 1e-3;

/// Timed forward passes without gradients on one random batch: images per second after
/// one warm-up pass.
fn time_inference<B: Backend, M>(
    model: &M,
    forward: fn(&M, Tensor<B, 4>) -> Tensor<B, 2>,
    device: &B::Device,
    batch: usize,
    size: usize,
    steps: usize,
) -> f64 {
    let x = Tensor::<B, 4>::random(
        [batch, 3, size, size],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    let _ = forward(model, x.clone()).into_data();
    let start = Instant::now();
    for _ in 0..steps {
        let _ = forward(model, x.clone()).into_data();
    }
    (steps * batch) as f64 / start.elapsed().as_secs_f64()
}

/// Timed training steps of `model` on one random batch, as `vista train` takes them:
/// each of `shards` threads runs forward, cross-entropy and backward on its share of the
/// batch ([`vista_models::on_shards`]: each in its own one-thread rayon pool, on its own
/// fork of the model, as burn-train's multi-device step does), then the shards'
/// gradients are summed and one SGD step with momentum and weight decay (`vista train`'s
/// `--optimizer sgd`) updates the model. Images per second after one warm-up step.
fn time_steps<B: AutodiffBackend, M: AutodiffModule<B> + Sync>(
    mut model: M,
    forward: fn(&M, Tensor<B, 4>) -> Tensor<B, 2>,
    device: &B::Device,
    batch: usize,
    size: usize,
    steps: usize,
    shards: usize,
) -> f64 {
    let devices = vec![device.clone(); shards.max(1)];
    let inputs: Vec<(usize, Tensor<B, 4>, Tensor<B, 1, Int>)> =
        vista_models::shard_ranges(batch, devices.len())
            .into_iter()
            .map(|r| {
                let x = Tensor::<B, 4>::random(
                    [r.len(), 3, size, size],
                    Distribution::Normal(0.0, 1.0),
                    device,
                );
                let y = Tensor::<B, 1, Int>::from_data(
                    TensorData::new(r.clone().map(|i| i as i64 % 10).collect(), [r.len()]),
                    device,
                );
                (r.start, x, y)
            })
            .collect();
    let loss = CrossEntropyLossConfig::new().init(device);
    let mut optim = OptimizerConfig::sgd().init::<B, M>();
    let many = inputs.len() > 1;
    let mut step = |model: M| {
        let grads = vista_models::on_shards(batch, &devices, |rows, device| {
            let (_, x, y) = (inputs.iter())
                .find(|(start, _, _)| *start == rows.start)
                .expect("one input per shard");
            let m = if many {
                model.clone().fork(device)
            } else {
                model.clone()
            };
            let grads = loss.forward(forward(&m, x.clone()), y.clone()).backward();
            GradientsParams::from_grads(grads, &m)
        });
        if many {
            // Batch norm's running statistics, averaged over the shards as `vista train`
            // does after each step (taking a record synchronizes them).
            let _ = model.clone().into_record();
        }
        let mut sum = GradientsAccumulator::<M>::new();
        for g in grads {
            sum.accumulate(&model, g);
        }
        optim.step(BENCH_LR, model, sum.grads())
    };
    model = step(model);
    let _ = B::sync(device);
    let start = Instant::now();
    for _ in 0..steps {
        model = step(model);
    }
    let _ = B::sync(device);
    (steps * batch) as f64 / start.elapsed().as_secs_f64()
}

fn measure<B: AutodiffBackend>(
    args: &BenchArgs,
    device: &B::Device,
    arch: Arch,
    size: usize,
) -> Result<Option<f64>> {
    if (size as u32) < arch.min_size() {
        return Ok(None);
    }
    let config = ModelConfig {
        arch,
        num_classes: 10,
        width: args.width,
        small_stem: args.small_stem,
        fastai_head: false,
    };
    if args.infer {
        let m = config.init::<B::InnerBackend>(device)?;
        return Ok(Some(time_inference(
            &m,
            |m, x| m.logits(x),
            device,
            args.batch,
            size,
            args.steps,
        )));
    }
    let m = config.init::<B>(device)?;
    Ok(Some(time_steps(
        m,
        |m, x| m.logits(x),
        device,
        args.batch,
        size,
        args.steps,
        args.shards,
    )))
}

/// The process's peak resident memory so far, in MiB (Linux's `VmHWM`); `None` where
/// the system does not report it.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kib / 1024.0 * 10.0).round() / 10.0)
}

/// Prints one JSON object per line, a `vista_format::ModelBench` (`img_per_s` is null
/// where the model does not take that size).
pub fn run(args: &BenchArgs) -> Result<()> {
    if args.device.count() > 1 {
        anyhow::bail!(
            "`vista bench models` measures one device; name one, not {}",
            args.device
        );
    }
    with_training_backend!(args.device, |B, devices| rows::<B>(args, &devices[0]))
}

fn rows<B: AutodiffBackend>(args: &BenchArgs, device: &B::Device) -> Result<()> {
    for model in &args.models {
        for &size in &args.sizes {
            let rate = measure::<B>(args, device, *model, size)?;
            let row = vista_format::ModelBench {
                model: model.name().to_string(),
                size,
                batch: args.batch,
                backend: <B::InnerBackend as Backend>::name(device),
                img_per_s: rate.map(|r| (r * 100.0).round() / 100.0),
                mode: if args.infer { "infer" } else { "train" }.into(),
                width: args.width,
                small_stem: args.small_stem,
                threads: Some(if args.infer {
                    std::thread::available_parallelism().map_or(1, |n| n.get())
                } else {
                    args.shards
                }),
                peak_rss_mib: peak_rss_mib(),
            };
            println!("{}", serde_json::to_string(&row)?);
        }
    }
    Ok(())
}

/// `vista bench data`: the loader's work on a folder of images, timed.
#[derive(Debug, clap::Args)]
pub struct DataBenchArgs {
    /// A folder of images (its files, not its subfolders).
    folder: std::path::PathBuf,
    /// Side of the square training images, in pixels.
    #[arg(long, default_value_t = 150)]
    size: u32,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Threads that decode and augment a batch's images at once.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Passes over the folder (the first one is timed too: the files are read each time).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
}

/// The result of `vista bench data` (and of `xtask/bench/data.py`, PIL's side).
#[derive(Debug, serde::Serialize)]
struct DataBench {
    framework: String,
    size: u32,
    batch: usize,
    threads: usize,
    images: usize,
    img_per_s: f64,
}

/// Reads, decodes and augments (the default training augmentation: fastai's
/// `aug_transforms`) each file of a folder, batch by batch, into one normalized
/// `[batch, 3, size, size]` buffer, as the loader does for a training step; prints the
/// images per second as one JSON object.
pub fn run_data(args: &DataBenchArgs) -> Result<()> {
    use rand::SeedableRng;
    use rayon::prelude::*;
    use vista_data::{AugmentConfig, Normalize, augment, decode_rgb_bytes, derive_seed};

    let mut files: Vec<_> = std::fs::read_dir(&args.folder)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .collect();
    files.sort();
    anyhow::ensure!(
        !files.is_empty(),
        "{} holds no files",
        args.folder.display()
    );
    anyhow::ensure!(
        args.batch > 0 && args.size > 0,
        "--batch and --size must be positive"
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.max(1))
        .build()?;
    let cfg = AugmentConfig::default();
    let len = 3 * (args.size * args.size) as usize;
    let mut batch = vec![0.0f32; args.batch * len];
    let start = Instant::now();
    let mut images = 0;
    for round in 0..args.rounds.max(1) {
        for (b, chunk) in files.chunks(args.batch).enumerate() {
            let out = &mut batch[..chunk.len() * len];
            pool.install(|| {
                out.par_chunks_mut(len).zip(chunk).enumerate().try_for_each(
                    |(i, (out, path))| -> Result<()> {
                        let bytes = std::fs::read(path)?;
                        let img = decode_rgb_bytes(&bytes, vista_data::DEFAULT_MAX_PIXELS)
                            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                        let seed = derive_seed(0, &[round as u64, b as u64, i as u64]);
                        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
                        augment(&img, args.size, &cfg, &mut rng, out);
                        Ok(())
                    },
                )
            })?;
            Normalize::IMAGENET.apply(out, args.size as usize);
            images += chunk.len();
        }
    }
    let row = DataBench {
        framework: "vista".into(),
        size: args.size,
        batch: args.batch,
        threads: args.threads.max(1),
        images,
        img_per_s: (images as f64 / start.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    };
    println!("{}", serde_json::to_string(&row)?);
    Ok(())
}
