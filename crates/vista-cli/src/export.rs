//! `vista export`: a finished run's model as a file other tools read (safetensors in
//! PyTorch's names and layout), with a JSON description beside it.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use vista_format::{ExportInfo, write_json};
use vista_models::{Arch, export_safetensors};
use vista_train::load_run;

use crate::backend::Cpu;

/// The formats `vista export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// safetensors with PyTorch's tensor names and layout (`load_state_dict`).
    Safetensors,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// A finished run folder (from `vista train`).
    #[arg(long)]
    run: PathBuf,
    /// The file to write, e.g. `model.safetensors`; its description goes beside it as
    /// `model.json`.
    #[arg(long)]
    out: PathBuf,
    /// The file format.
    #[arg(long, value_enum, default_value = "safetensors")]
    format: ExportFormat,
    /// Replace files that exist.
    #[arg(long)]
    force: bool,
}

/// How PyTorch builds the run's model, for `load_state_dict`.
fn pytorch_constructor(arch: Arch, classes: usize, width: f64, small_stem: bool) -> String {
    let plain = width == 1.0 && !small_stem;
    let call = match arch {
        Arch::Resnet18 => format!("torchvision.models.resnet18(num_classes={classes})"),
        Arch::Resnet34 => format!("torchvision.models.resnet34(num_classes={classes})"),
        Arch::Resnet50 => format!("torchvision.models.resnet50(num_classes={classes})"),
        Arch::InceptionV3 => format!(
            "torchvision.models.inception_v3(num_classes={classes}, aux_logits=False, init_weights=False)"
        ),
        Arch::EfficientnetLite0 => format!(
            "efficientnet_pytorch.EfficientNet.from_name('efficientnet-lite0', num_classes={classes})"
        ),
    };
    if plain {
        call
    } else {
        format!(
            "{call} with width x{width}{}",
            if small_stem {
                " and vista's small stem"
            } else {
                ""
            }
        )
    }
}

pub fn run(args: &ExportArgs) -> Result<()> {
    let ExportFormat::Safetensors = args.format;
    let json = args.out.with_extension("json");
    // `.JSON` is `.json` where names ignore case: the description would replace the model.
    let is_json = (args.out.extension()).is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        bail!(
            "--out {}: name the model file `<name>.safetensors`",
            args.out.display()
        );
    }
    for path in [&args.out, &json] {
        vista_format::refuse_symlink(path)?;
        if !args.force && path.symlink_metadata().is_ok() {
            bail!("{} exists (pass --force to replace it)", path.display());
        }
    }
    let run = load_run::<Cpu>(&args.run, &Default::default())
        .with_context(|| format!("loading the run {}", args.run.display()))?;
    let model = &run.config.model;
    let classes = run.classes.classes.clone();
    let info = ExportInfo {
        architecture: model.arch.to_string(),
        names: match model.arch {
            Arch::EfficientnetLite0 => "efficientnet-pytorch",
            _ => "torchvision",
        }
        .into(),
        pytorch: pytorch_constructor(model.arch, classes.len(), model.width, model.small_stem),
        width: model.width,
        small_stem: model.small_stem,
        fastai_head: model.fastai_head,
        classes: classes.clone(),
        normalize: run
            .config
            .normalize
            .context("the run's config.json records no normalization")?,
        input_size: run.config.final_size(),
    };
    let header = [
        ("architecture", info.architecture.as_str()),
        ("classes", &classes.join("\n")),
    ];
    export_safetensors(&run.model, &args.out, &header)
        .with_context(|| format!("writing {}", args.out.display()))?;
    write_json(&json, &info)?;
    println!(
        "{} written ({}, {} classes, {} px inputs); described in {}",
        args.out.display(),
        info.pytorch,
        classes.len(),
        info.input_size,
        json.display()
    );
    Ok(())
}
