//! `vista bench models`: training-step throughput (forward, cross-entropy, backward) of
//! each architecture on a backend, for `cargo xtask bench models` to set beside PyTorch.

use std::time::Instant;

use anyhow::Result;
use burn::backend::Autodiff;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use vista_models::{EfficientNetLiteConfig, InceptionV3Config, ResNetConfig, ResNetDepth};

use crate::backend::Cpu;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Comma-separated architectures.
    #[arg(
        long,
        default_value = "resnet18,resnet50,inception_v3,efficientnet_lite0",
        value_delimiter = ','
    )]
    models: Vec<String>,
    /// Comma-separated image sizes.
    #[arg(long, default_value = "64,128", value_delimiter = ',')]
    sizes: Vec<usize>,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Timed steps per measurement (after one warm-up step).
    #[arg(long, default_value_t = 3)]
    steps: usize,
}

/// One training step's work: forward, loss, backward; returns the loss to keep it alive.
fn time_steps<B: AutodiffBackend>(
    forward: &dyn Fn(Tensor<B, 4>) -> Tensor<B, 2>,
    batch: usize,
    size: usize,
    steps: usize,
) -> f64 {
    let device = B::Device::default();
    let x = Tensor::<B, 4>::random(
        [batch, 3, size, size],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let y = Tensor::<B, 1, Int>::from_data(
        TensorData::new((0..batch as i64).map(|i| i % 10).collect(), [batch]),
        &device,
    );
    let loss = CrossEntropyLossConfig::new().init(&device);
    let step = || {
        let l = loss.forward(forward(x.clone()), y.clone());
        let _grads = l.backward();
    };
    step();
    let start = Instant::now();
    for _ in 0..steps {
        step();
    }
    let _ = B::sync(&device);
    (steps * batch) as f64 / start.elapsed().as_secs_f64()
}

fn measure<B: AutodiffBackend>(
    name: &str,
    size: usize,
    batch: usize,
    steps: usize,
) -> Result<Option<f64>> {
    let device = B::Device::default();
    Ok(match name {
        "resnet18" | "resnet50" => {
            let depth = ResNetDepth::parse(name).expect("listed above");
            let m = ResNetConfig::new(depth, 10).init::<B>(&device)?;
            Some(time_steps::<B>(&|x| m.forward(x), batch, size, steps))
        }
        "inception_v3" if size < 75 => None,
        "inception_v3" => {
            let m = InceptionV3Config::new(10).init::<B>(&device);
            Some(time_steps::<B>(&|x| m.forward(x), batch, size, steps))
        }
        "efficientnet_lite0" => {
            let m = EfficientNetLiteConfig::new()
                .with_num_classes(10)
                .init::<B>(&device);
            Some(time_steps::<B>(&|x| m.forward(x), batch, size, steps))
        }
        other => anyhow::bail!("unknown model `{other}`"),
    })
}

/// Prints one JSON object per line: `{"model", "size", "batch", "img_per_s"}`
/// (`img_per_s` is null where the model does not take that size).
pub fn run(args: &BenchArgs) -> Result<()> {
    for model in &args.models {
        for &size in &args.sizes {
            let rate = measure::<Autodiff<Cpu>>(model, size, args.batch, args.steps)?;
            let rate = rate.map_or("null".to_string(), |r| format!("{r:.2}"));
            println!(
                "{{\"model\": \"{model}\", \"size\": {size}, \"batch\": {}, \"backend\": \"{}\", \"img_per_s\": {rate}}}",
                args.batch,
                <Cpu as Backend>::name(&Default::default())
            );
        }
    }
    Ok(())
}
