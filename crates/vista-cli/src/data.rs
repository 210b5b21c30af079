//! `vista data ...`: check a dataset, look at its augmentations, prepare the embedded data.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rand::SeedableRng;
use rand::seq::index::sample;
use vista_data::{
    AugmentConfig, LoadOptions, Loaded, OnBadImage, augment, fashion_mnist, grid, resize_plain,
};

use crate::paths::{materialize_embedded, resolve_data};

#[derive(Debug, clap::Subcommand)]
pub enum DataCommand {
    /// Detect the layout, count images per class, summarize sizes and list every problem.
    Check(CheckArgs),
    /// Write a PNG grid of (augmented) training images.
    Show(ShowArgs),
    /// Write the embedded Fashion-MNIST as a competition folder and print where.
    Prepare(PrepareArgs),
}

#[derive(Debug, clap::Args)]
pub struct SourceArgs {
    /// Dataset folder, CSV file, or `embedded` for the bundled Fashion-MNIST.
    path: PathBuf,
    /// What to do with bad images: `error` lists them all and fails, `skip` leaves them out.
    #[arg(long, default_value = "error")]
    on_bad_image: OnBadImage,
    /// Reject images with more pixels than this before decoding them.
    #[arg(long, default_value_t = vista_data::DEFAULT_MAX_PIXELS)]
    max_pixels: u64,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Write the problem list here (`.json`, else CSV).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Print the summary as one JSON object (`vista_format::DataSummary`) instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Apply the training augmentations (fastai's `aug_transforms` defaults).
    #[arg(long)]
    augment: bool,
    /// Random-resized-crop minimum scale, with `--augment`.
    #[arg(long, default_value_t = 1.0)]
    min_scale: f32,
    /// Output PNG.
    #[arg(long, default_value = "grid.png")]
    out: PathBuf,
    /// Number of images.
    #[arg(long, default_value_t = 32)]
    count: usize,
    /// Side of each image, in pixels.
    #[arg(long, default_value_t = 64)]
    size: u32,
    #[arg(long, default_value_t = 8)]
    cols: u32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Debug, clap::Args)]
pub struct PrepareArgs {
    /// Destination folder (default: the cache's `fashion-mnist`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep only the first N training images.
    #[arg(long)]
    train_limit: Option<usize>,
    /// Keep only the first N test images.
    #[arg(long)]
    test_limit: Option<usize>,
    /// Print the folder as one JSON object (`vista_format::PreparedData`).
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: DataCommand, progress: bool) -> Result<()> {
    match cmd {
        DataCommand::Check(args) => check(&args, progress),
        DataCommand::Show(args) => show(&args, progress),
        DataCommand::Prepare(args) => {
            let opts = fashion_mnist::MaterializeOptions {
                train_limit: args.train_limit,
                test_limit: args.test_limit,
                observer: crate::observe::terminal(progress),
            };
            let dir = materialize_embedded(args.out.as_deref(), &opts)?;
            if args.json {
                let prepared = vista_format::PreparedData { dataset: dir };
                println!("{}", serde_json::to_string(&prepared)?);
            } else {
                println!("{}", dir.display());
            }
            Ok(())
        }
    }
}

fn load_source(
    source: &SourceArgs,
    include_unlabelled: bool,
    progress: bool,
) -> Result<(PathBuf, Loaded)> {
    let path = resolve_data(&source.path, progress)?;
    let opts = LoadOptions {
        max_pixels: source.max_pixels,
        max_side: None,
        keep_images: true,
        on_bad_image: source.on_bad_image,
        cache_budget: vista_data::default_cache_budget(),
        spill_dir: None,
        include_unlabelled,
        observer: crate::observe::terminal(progress),
    };
    let loaded = vista_data::load(&path, &opts)
        .with_context(|| format!("checking dataset {}", path.display()))?;
    Ok((path, loaded))
}

fn check(args: &CheckArgs, progress: bool) -> Result<()> {
    let path = resolve_data(&args.source.path, progress)?;
    let opts = LoadOptions {
        max_pixels: args.source.max_pixels,
        // Everything is decoded to be checked and dropped at once: checking takes the
        // memory of one image per thread, whatever the dataset's size.
        max_side: None,
        cache_budget: 0,
        spill_dir: None,
        keep_images: false,
        // The report is printed in full either way; the policy decides the exit code.
        on_bad_image: OnBadImage::Skip,
        include_unlabelled: true,
        observer: crate::observe::terminal(progress),
    };
    let loaded = vista_data::load(&path, &opts)
        .with_context(|| format!("checking dataset {}", path.display()))?;
    if args.json {
        println!("{}", serde_json::to_string(&summary(&path, &loaded))?);
    } else {
        print_summary(&path, &loaded);
    }
    if let Some(report_path) = &args.report {
        loaded.report.save(report_path)?;
        if !args.json {
            println!("problem report written to {}", report_path.display());
        }
    }
    loaded
        .report
        .enforce(args.source.on_bad_image)
        .with_context(|| format!("dataset {}", path.display()))?;
    Ok(())
}

/// The dataset as `--json` gives it.
fn summary(path: &Path, loaded: &Loaded) -> vista_format::DataSummary {
    let ds = &loaded.dataset;
    let train = ds.class_counts(&ds.train);
    let valid = ds.class_counts(&ds.valid);
    let test = ds.class_counts(&ds.test);
    vista_format::DataSummary {
        dataset: path.to_path_buf(),
        layout: ds.layout.to_string(),
        classes: (ds.classes.classes.iter().enumerate())
            .map(|(i, class)| vista_format::ClassCount {
                class: class.clone(),
                train: train[i],
                valid: valid[i],
                test: test[i],
            })
            .collect(),
        train: ds.train.len(),
        valid: ds.valid.len(),
        test: ds.test.len(),
        unlabelled: ds.unlabelled.len(),
        image_sizes: size_summary(&loaded.original_sizes),
        problems: loaded.report.problems.len(),
        cache_bytes: cache_bytes(
            &loaded.original_sizes,
            Some(vista_train::cache_side(vista_train::MAX_DEFAULT_SIZE)),
        ) as u64,
    }
}

fn print_summary(path: &Path, loaded: &Loaded) {
    let ds = &loaded.dataset;
    println!("dataset: {}", path.display());
    println!("layout:  {}", ds.layout);
    println!("classes: {}", ds.classes.len());
    let train = ds.class_counts(&ds.train);
    let valid = ds.class_counts(&ds.valid);
    let test = ds.class_counts(&ds.test);
    let width = ds
        .classes
        .classes
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(5)
        .max(5);
    println!(
        "  {:width$}  {:>7}  {:>7}  {:>7}",
        "class", "train", "valid", "test"
    );
    for (i, name) in ds.classes.classes.iter().enumerate() {
        println!(
            "  {name:width$}  {:>7}  {:>7}  {:>7}",
            train[i], valid[i], test[i]
        );
    }
    println!(
        "  {:width$}  {:>7}  {:>7}  {:>7}",
        "total",
        ds.train.len(),
        ds.valid.len(),
        ds.test.len()
    );
    if ds.valid.is_empty() {
        println!("validation: none given; `vista train` splits off --valid-pct of train");
    } else {
        println!("validation: the dataset's own {} images", ds.valid.len());
    }
    if let Some(warning) = imbalance(&ds.classes.classes, &train) {
        println!("{warning}");
    }
    println!("unlabelled: {}", ds.unlabelled.len());
    println!(
        "image sizes (train): {}",
        size_summary(&loaded.original_sizes)
    );
    let side = vista_train::cache_side(vista_train::MAX_DEFAULT_SIZE);
    let need = cache_bytes(&loaded.original_sizes, Some(side));
    let budget = vista_data::default_cache_budget();
    println!(
        "training cache: {} for the {} training images at up to {} px (decoded down to a {side} px shorter side; RGB, 3 bytes a pixel)",
        human_bytes(need),
        loaded.original_sizes.len(),
        vista_train::MAX_DEFAULT_SIZE,
    );
    if need as u64 > budget {
        println!(
            "  more than the default memory budget of {}: {} would be read back from a file beside the run (--cache-mb)",
            human_bytes(budget as usize),
            human_bytes(need - budget as usize),
        );
    }
    if loaded.report.is_empty() {
        println!("problems: none");
    } else {
        println!("problems: {}", loaded.report.problems.len());
        print!("{}", loaded.report);
    }
}

/// A warning when the largest class has at least 5 times the training images of the
/// smallest, where plain accuracy flatters a model that ignores the small classes.
fn imbalance(classes: &[String], counts: &[usize]) -> Option<String> {
    let (small, &min) = counts.iter().enumerate().min_by_key(|(_, n)| **n)?;
    let (large, &max) = (counts.iter().enumerate()).min_by_key(|(_, n)| std::cmp::Reverse(**n))?;
    (max >= 5 * min.max(1) || (min == 0 && max > 0)).then(|| {
        format!(
            "warning: classes are imbalanced: `{}` has {max} training images, `{}` {min}; \
             look at per-class recall (`vista evaluate`), not accuracy alone",
            classes[large], classes[small]
        )
    })
}

/// Bytes the decoded images of these sizes take once bounded to `max_side`.
fn cache_bytes(sizes: &[(u32, u32)], max_side: Option<u32>) -> usize {
    (sizes.iter())
        .map(|&(w, h)| {
            let (w, h) = vista_data::bounded_size(w, h, max_side);
            w as usize * h as usize * 3
        })
        .sum()
}

fn human_bytes(n: usize) -> String {
    let n = n as f64;
    match n {
        n if n >= 1e9 => format!("{:.2} GB", n / 1e9),
        n if n >= 1e6 => format!("{:.1} MB", n / 1e6),
        n if n >= 1e3 => format!("{:.1} kB", n / 1e3),
        n => format!("{n} bytes"),
    }
}

fn size_summary(sizes: &[(u32, u32)]) -> String {
    if sizes.is_empty() {
        return "none".into();
    }
    let mut counts = std::collections::BTreeMap::new();
    for s in sizes {
        *counts.entry(*s).or_insert(0usize) += 1;
    }
    let mut common: Vec<_> = counts.iter().collect();
    common.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let top: Vec<String> = common
        .iter()
        .take(3)
        .map(|((w, h), n)| format!("{w}x{h} ({n})"))
        .collect();
    let min_w = sizes.iter().map(|s| s.0).min().unwrap_or(0);
    let max_w = sizes.iter().map(|s| s.0).max().unwrap_or(0);
    let min_h = sizes.iter().map(|s| s.1).min().unwrap_or(0);
    let max_h = sizes.iter().map(|s| s.1).max().unwrap_or(0);
    format!(
        "width {min_w}..{max_w}, height {min_h}..{max_h}; most common: {}{}",
        top.join(", "),
        if common.len() > 3 {
            format!(", and {} other sizes", common.len() - 3)
        } else {
            String::new()
        }
    )
}

fn show(args: &ShowArgs, progress: bool) -> Result<()> {
    let (_, loaded) = load_source(&args.source, false, progress)?;
    let cfg = if args.augment {
        AugmentConfig {
            min_scale: args.min_scale,
            ..AugmentConfig::default()
        }
    } else {
        AugmentConfig::none()
    };
    cfg.validate().map_err(anyhow::Error::msg)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(args.seed);
    let n = args.count.min(loaded.train.len());
    let picks = sample(&mut rng, loaded.train.len(), n).into_vec();
    let len = (3 * args.size * args.size) as usize;
    let images: Vec<Vec<f32>> = picks
        .iter()
        .map(|&i| {
            let mut out = vec![0.0; len];
            if args.augment {
                augment(&loaded.train.get(i), args.size, &cfg, &mut rng, &mut out);
            } else {
                resize_plain(&loaded.train.get(i), args.size, cfg.ratio, &mut out);
            }
            out
        })
        .collect();
    // Small images are scaled up so a person can see what the augmentation did.
    let zoom = (96 / args.size).max(1);
    let sheet = grid(&images, args.size, args.cols, zoom);
    sheet
        .save(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "wrote {} images ({}) to {}",
        n,
        if args.augment { "augmented" } else { "resized" },
        args.out.display()
    );
    Ok(())
}
