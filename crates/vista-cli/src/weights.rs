//! `vista weights inspect`: what a checkpoint holds, and whether it fits a model.

use std::path::PathBuf;

use anyhow::{Context, Result};
use vista_models::{Arch, ImportOptions, ModelConfig, inspect};

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
    /// Also try loading it into this model (`-` or `_` in its name).
    #[arg(long, value_enum)]
    arch: Option<Arch>,
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
    let Some(arch) = args.arch else {
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
    let model = ModelConfig {
        arch,
        num_classes: classes,
        width: args.width,
        small_stem: args.small_stem,
        fastai_head: false,
    }
    .init::<Cpu>(&device)?;
    let report = model.load_weights(&args.file, &opts).map(|(_, r)| r);
    let report = report.with_context(|| format!("loading {} into {arch}", args.file.display()))?;
    println!(
        "loads into {arch} with {classes} classes: {} tensors, nothing missing",
        report.loaded
    );
    Ok(())
}
