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
    /// Width multiplier of a ResNet or Inception v3 (default: the checkpoint's when it
    /// fits `--arch`, else 1).
    #[arg(long)]
    width: Option<f64>,
    /// ResNet with the small-image stem (default: the checkpoint's stem when it fits
    /// `--arch`).
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
    let guessed = found.guess.as_ref().and_then(|g| g.model_config());
    match (&found.guess, &guessed) {
        (Some(guess), Some(config)) => {
            println!("fits: {guess}");
            let mut flags = format!("--arch {}", config.arch);
            if config.width != 1.0 {
                flags += &format!(" --width {}", config.width);
            }
            if config.small_stem {
                flags += " --small-stem";
            }
            println!("load it with: {flags}");
        }
        (Some(guess), None) => println!("fits: {guess}; vista does not build this model"),
        (None, _) => println!("fits: no architecture vista recognises from the keys"),
    }
    let Some(arch) = args.arch else {
        return Ok(());
    };
    // What the file says fills in what the command line leaves out, when it is the same
    // model; a different one starts from the published model's defaults.
    let same = guessed.filter(|g| g.arch == arch);
    let classes = args
        .classes
        .or(same.as_ref().map(|g| g.num_classes))
        .unwrap_or(1000);
    let width = args.width.or(same.as_ref().map(|g| g.width)).unwrap_or(1.0);
    let small_stem = args.small_stem || same.as_ref().is_some_and(|g| g.small_stem);
    let device = Default::default();
    let opts = ImportOptions::default();
    let model = ModelConfig {
        arch,
        num_classes: classes,
        width,
        small_stem,
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
