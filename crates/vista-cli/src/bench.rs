//! `vista bench models`: training-step throughput (forward, cross-entropy, backward) of
//! each architecture on a backend, for `cargo xtask bench models` to set beside PyTorch.

use std::time::Instant;

use anyhow::Result;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use vista_models::{Arch, Classifier, ModelConfig};

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
}

/// One training step's work: forward, loss, backward; returns the loss to keep it alive.
fn time_steps<B: AutodiffBackend>(
    forward: &dyn Fn(Tensor<B, 4>) -> Tensor<B, 2>,
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
    let y = Tensor::<B, 1, Int>::from_data(
        TensorData::new((0..batch as i64).map(|i| i % 10).collect(), [batch]),
        device,
    );
    let loss = CrossEntropyLossConfig::new().init(device);
    let step = || {
        let l = loss.forward(forward(x.clone()), y.clone());
        let _grads = l.backward();
    };
    step();
    let start = Instant::now();
    for _ in 0..steps {
        step();
    }
    let _ = B::sync(device);
    (steps * batch) as f64 / start.elapsed().as_secs_f64()
}

/// Runs [`time_steps`] on `shards` threads at once, each with its share of the batch,
/// and returns the images per second of all of them together. The shards run as
/// `vista train` runs them ([`vista_models::on_shards`]: each in its own one-thread rayon
/// pool), and each forks the model as burn-train's multi-device step does: threads that
/// share one model's autodiff nodes block each other.
fn time_sharded<B: AutodiffBackend, M: Module<B> + Sync>(
    model: &M,
    forward: fn(&M, Tensor<B, 4>) -> Tensor<B, 2>,
    device: &B::Device,
    batch: usize,
    size: usize,
    steps: usize,
    shards: usize,
) -> f64 {
    let devices = vec![device.clone(); shards.max(1)];
    vista_models::on_shards(batch, &devices, |rows, device| {
        let m = model.clone().fork(device);
        time_steps::<B>(&|x| forward(&m, x), device, rows.len(), size, steps)
    })
    .into_iter()
    .sum()
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
    let m = ModelConfig {
        arch,
        num_classes: 10,
        width: args.width,
        small_stem: args.small_stem,
        fastai_head: false,
    }
    .init::<B>(device)?;
    Ok(Some(time_sharded(
        &m,
        |m, x| m.logits(x),
        device,
        args.batch,
        size,
        args.steps,
        args.shards,
    )))
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
            };
            println!("{}", serde_json::to_string(&row)?);
        }
    }
    Ok(())
}
