//! `vista weights inspect`: what a checkpoint holds, and whether it fits a model.

use std::path::PathBuf;

use anyhow::{Context, Result};
use vista_models::{
    EfficientNetLiteConfig, ImportOptions, InceptionV3Config, ResNetConfig, ResNetDepth, inspect,
    load_checkpoint,
};
use vista_train::Arch;

use crate::backend::Cpu;

#[derive(Debug, clap::Subcommand)]
pub enum WeightsCommand {
    /// List a checkpoint's tensors and the architecture they fit (`.pth`, `.pth.tar`,
    /// `.pt` in PyTorch's legacy or zip format, `.safetensors`).
    Inspect(InspectArgs),
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    file: PathBuf,
    /// Also try loading it into this model: resnet18, resnet34, resnet50, inception_v3, efficientnet_lite0 (`-` or `_`).
    #[arg(long)]
    arch: Option<String>,
    /// Classes of that model (default: what the checkpoint's head has).
    #[arg(long)]
    classes: Option<usize>,
    /// Width multiplier of a ResNet or Inception v3.
    #[arg(long, default_value_t = 1.0)]
    width: f64,
    /// ResNet with the small-image stem.
    #[arg(long)]
    small_stem: bool,
}

pub fn run(cmd: WeightsCommand) -> Result<()> {
    let WeightsCommand::Inspect(args) = cmd;
    let found =
        inspect(&args.file).with_context(|| format!("inspecting {}", args.file.display()))?;
    let width = found
        .tensors
        .iter()
        .map(|t| t.key.len())
        .max()
        .unwrap_or(10);
    // Shapes come from the file; a hostile one could overflow a plain product.
    let params = found
        .tensors
        .iter()
        .map(|t| {
            t.shape
                .iter()
                .fold(1u128, |n, &d| n.saturating_mul(d as u128))
        })
        .fold(0u128, u128::saturating_add);
    println!(
        "{}: {} tensors, {params} values",
        args.file.display(),
        found.tensors.len()
    );
    for t in &found.tensors {
        println!("  {:width$}  {:>8}  {:?}", t.key, t.dtype, t.shape);
    }
    match &found.architecture {
        Some(arch) => println!("fits: {arch}"),
        None => println!("fits: no architecture vista recognises from the keys"),
    }
    let Some(arch) = &args.arch else {
        return Ok(());
    };
    let head_classes = found
        .tensors
        .iter()
        .find(|t| t.key == "fc.weight")
        .and_then(|t| match t.shape[..] {
            // A linear layer's weight is [classes, features]; any other rank says nothing.
            [classes, _] => Some(classes),
            _ => None,
        });
    let classes = args.classes.or(head_classes).unwrap_or(1000);
    let device = Default::default();
    let opts = ImportOptions::default();
    // The names `vista train --arch` takes, from the one registry.
    let report = match Arch::parse(arch)? {
        Arch::InceptionV3 => {
            let model = InceptionV3Config::new(classes)
                .with_width(args.width)
                .init::<Cpu>(&device);
            load_checkpoint(model, &args.file, &opts).map(|(_, r)| r)
        }
        Arch::EfficientnetLite0 => {
            let model = EfficientNetLiteConfig::new()
                .with_num_classes(classes)
                .init::<Cpu>(&device);
            load_checkpoint(model, &args.file, &opts).map(|(_, r)| r)
        }
        resnet @ (Arch::Resnet18 | Arch::Resnet34 | Arch::Resnet50) => {
            let depth = ResNetDepth::parse(resnet.name()).context("a ResNet depth")?;
            let config = ResNetConfig::new(depth, classes)
                .with_width(args.width)
                .with_small_stem(args.small_stem);
            let model = config.init::<Cpu>(&device)?;
            load_checkpoint(model, &args.file, &opts).map(|(_, r)| r)
        }
    };
    let report = report.with_context(|| format!("loading {} into {arch}", args.file.display()))?;
    println!(
        "loads into {arch} with {classes} classes: {} tensors, nothing missing",
        report.loaded
    );
    Ok(())
}
