//! `vista clean` and `vista review`: find confusing training images, leave them out of
//! a cleaned view (undoably), and review them by hand in the browser.

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use vista_clean::{
    Manifest, Reason, Review, Rules, apply_journal, flag, out_of_fold, score_detection, undo_review,
};
use vista_data::CleanView;
use vista_eval::{PredictOptions, Predictions, predict_images};
use vista_train::load_run;

use crate::backend::{with_inference_backend, with_training_backend};
use crate::paths::resolve_data;
use crate::train::{RecipeArgs, build_config, load_data, noisy_train_data};

#[derive(Debug, clap::Subcommand)]
pub enum CleanCommand {
    /// Flag likely mislabelled and ambiguous training images.
    Detect(Box<DetectArgs>),
    /// Leave the flagged images out of the dataset's cleaned view (no file is touched).
    Apply(ApplyArgs),
    /// Restore the full dataset view.
    Undo(UndoArgs),
}

#[derive(Debug, clap::Args)]
pub struct DetectArgs {
    #[command(flatten)]
    recipe: RecipeArgs,
    /// Folder for flags.json, flags.csv, contact sheets and the predictions.
    #[arg(long)]
    out: PathBuf,
    /// Judge with this trained run's predictions (as the article did) instead of
    /// out-of-fold predictions; such a model has seen the images it judges.
    #[arg(long)]
    run: Option<PathBuf>,
    /// Folds of the out-of-fold predictions.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// A wrong prediction above this probability is "likely mislabelled".
    #[arg(long, default_value_t = 0.9)]
    mislabelled_above: f32,
    /// A top probability in this range is "ambiguous".
    #[arg(long, value_delimiter = ',', default_values_t = [0.5, 0.6])]
    ambiguous: Vec<f32>,
}

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// A flags.json from `vista clean detect`.
    manifest: PathBuf,
    /// Which flags to leave out: likely_mislabelled, ambiguous.
    #[arg(long, value_delimiter = ',', default_value = "likely_mislabelled")]
    reasons: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct UndoArgs {
    /// The dataset whose cleaned view to undo.
    #[arg(long)]
    data: PathBuf,
}

pub fn run_clean(cmd: &CleanCommand, progress: bool) -> Result<()> {
    match cmd {
        CleanCommand::Detect(args) => detect(args, progress),
        CleanCommand::Apply(args) => {
            let m = Manifest::read(&args.manifest)?;
            let reasons = args
                .reasons
                .iter()
                .map(|r| Reason::parse(r).with_context(|| format!("unknown reason `{r}`")))
                .collect::<Result<Vec<_>>>()?;
            let view = vista_clean::manifest_view(&m, &reasons, CleanView::read(&m.dataset)?);
            let path = view.write(&m.dataset)?;
            println!(
                "{} images left out of {} (view: {}); `vista clean undo --data {}` restores them",
                view.excluded.len(),
                m.dataset.display(),
                path.display(),
                m.dataset.display()
            );
            Ok(())
        }
        CleanCommand::Undo(args) => {
            let root = resolve_data(&args.data, progress)?;
            if CleanView::undo(&root)? {
                println!("the full dataset is back: {}", root.display());
            } else {
                println!("{} has no cleaned view", root.display());
            }
            Ok(())
        }
    }
}

fn detect(args: &DetectArgs, progress: bool) -> Result<()> {
    if args.ambiguous.len() != 2 || args.ambiguous[0] > args.ambiguous[1] {
        bail!("--ambiguous takes two probabilities, low,high");
    }
    if args.recipe.extra_data.is_some() {
        bail!(
            "--extra-data is for `vista train` and `vista lr-find`; cleaning judges real images only"
        );
    }
    let (loaded, path) = load_data(&args.recipe, &args.out, progress)?;
    let cfg = build_config(
        &args.recipe,
        &loaded.original_sizes,
        loaded.dataset.classes.len(),
    )?;
    if cfg.extra_ratio > 0.0 {
        bail!(
            "the run settings ask for extra images (extra_ratio); cleaning judges real images only"
        );
    }
    let names = loaded.dataset.train_names();
    let root = loaded.dataset.root.clone();
    let (data, flipped) = noisy_train_data(&args.recipe, &cfg, loaded);
    let mut cfg = cfg;
    if args.recipe.batch_size.is_none() && args.recipe.config.is_none() {
        // Each fold trains on (k - 1)/k of the images: the default batch suits that part.
        cfg.batch_size = vista_train::fold_batch(data.labels.len(), args.folds, cfg.largest_size());
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let (preds, source) = match &args.run {
        Some(run) => (
            with_inference_backend!(args.recipe.device, |B, devices| given_run::<B>(
                run, &data, &names, &devices
            ))?,
            format!("the run {}", run.display()),
        ),
        None => {
            let dir = args.out.join("folds");
            let preds = with_training_backend!(args.recipe.device, |B, devices| {
                out_of_fold::<B>(
                    &cfg,
                    &data,
                    &names,
                    args.folds,
                    &dir,
                    devices,
                    &crate::observe::terminal(progress),
                )
            })?;
            (
                preds,
                format!("out-of-fold, {} folds, seed {}", args.folds, cfg.seed),
            )
        }
    };
    preds.write_csv(&vista_format::CleanDir::new(&args.out).predictions())?;
    let rules = Rules {
        mislabelled_above: args.mislabelled_above,
        ambiguous: (args.ambiguous[0], args.ambiguous[1]),
    };
    let flags = flag(&preds, &rules);
    let manifest = Manifest {
        dataset: root,
        classes: preds.classes.clone(),
        rules,
        predictions: source,
        flags,
    };
    let json = manifest.write(&args.out)?;
    vista_clean::contact_sheets(&manifest, &args.out, 48)?;
    let count = |r| manifest.of(r).count();
    println!(
        "{} likely mislabelled, {} ambiguous of {} training images in {}; manifest {}",
        count(Reason::LikelyMislabelled),
        count(Reason::Ambiguous),
        names.len(),
        path.display(),
        json.display()
    );
    if !flipped.is_empty() {
        let set: HashSet<String> = flipped.iter().map(|&i| names[i].clone()).collect();
        let mut report = vista_format::DetectionReport::new();
        for (key, reason) in [
            ("likely_mislabelled", Some(Reason::LikelyMislabelled)),
            ("ambiguous", Some(Reason::Ambiguous)),
            ("all", None),
        ] {
            let d = score_detection(&manifest.flags, reason, &set);
            println!(
                "flipped labels found ({key}): precision {:.3}, recall {:.3} ({} of {} flipped; {} flagged)",
                d.precision, d.recall, d.hits, d.flipped, d.flagged
            );
            report.insert(key.into(), d);
        }
        vista_format::write_json(
            &vista_format::CleanDir::new(&args.out).detection_json(),
            &report,
        )?;
    }
    Ok(())
}

/// Predictions of the training images by a trained run (no TTA).
fn given_run<B: burn::tensor::backend::Backend>(
    run: &std::path::Path,
    data: &vista_train::TrainData,
    names: &[String],
    devices: &[B::Device],
) -> Result<Predictions> {
    let r =
        load_run::<B>(run, &devices[0]).with_context(|| format!("loading {}", run.display()))?;
    let opts = PredictOptions::for_run(r.config.final_size(), r.config.normalize, r.config.seed);
    let idx: Vec<u64> = (0..names.len() as u64).collect();
    let k = r.classes.len();
    let probs = predict_images::<B, _>(&r.model, devices, &data.images, &idx, k, &opts);
    Ok(Predictions::from_probs(
        r.classes.classes.clone(),
        names.to_vec(),
        Some(data.labels.to_vec()),
        probs,
    ))
}

#[derive(Debug, clap::Args)]
pub struct ReviewArgs {
    /// The dataset to review.
    data: PathBuf,
    /// flags.json from `vista clean detect`.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Without a manifest: review the top losses of each class in this labelled
    /// prediction file of the training images (e.g. `predictions.csv` of `vista clean
    /// detect`).
    #[arg(long)]
    preds: Option<PathBuf>,
    /// Top losses per class to review, with --preds.
    #[arg(long, default_value_t = 12)]
    per_class: usize,
    /// The decisions' journal (default: review.jsonl beside the manifest).
    #[arg(long)]
    journal: Option<PathBuf>,
    /// Address to serve on; loopback unless you say otherwise.
    #[arg(long, default_value = "127.0.0.1:8765")]
    bind: std::net::SocketAddr,
    /// Apply the journal: move removed images to quarantine, relabel through the view.
    #[arg(long)]
    apply: bool,
    /// Move quarantined images back and restore the view from before the review.
    #[arg(long)]
    undo: bool,
}

pub fn run_review(args: &ReviewArgs, progress: bool) -> Result<()> {
    let root = resolve_data(&args.data, progress)?;
    if args.undo {
        let u = undo_review(&root)?;
        println!(
            "{} images moved back into {} ({} were back already); the view from before the review is restored",
            u.restored,
            root.display(),
            u.already_there
        );
        return Ok(());
    }
    let manifest_path = args
        .manifest
        .clone()
        .context("give the flags to review with --manifest (from `vista clean detect`)")?;
    let journal = args
        .journal
        .clone()
        .unwrap_or_else(|| manifest_path.with_file_name("review.jsonl"));
    if args.apply {
        let manifest = Manifest::read(&manifest_path)?;
        let a = apply_journal(&root, &manifest, &journal)?;
        println!(
            "kept {}, relabelled {}, removed {} (moved to {}){}",
            a.kept,
            a.relabelled,
            a.removed,
            vista_clean::quarantine_dir(&root.canonicalize()?).display(),
            if a.refused.is_empty() {
                String::new()
            } else {
                format!(
                    "; refused (not flagged, not an image, outside the dataset, behind a link, or missing): {}",
                    a.refused.join(", ")
                )
            }
        );
        return Ok(());
    }
    let manifest = Manifest::read(&manifest_path)?;
    if manifest.dataset.canonicalize().ok() != root.canonicalize().ok() {
        bail!(
            "{} flags images of {}, not {}",
            manifest_path.display(),
            manifest.dataset.display(),
            root.display()
        );
    }
    if !args.bind.ip().is_loopback() {
        eprintln!(
            "warning: serving on {}, reachable from other machines",
            args.bind
        );
    }
    let review = Review::new(manifest, journal.clone())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.bind)
            .await
            .with_context(|| format!("binding {}", args.bind))?;
        let addr = listener.local_addr()?;
        println!(
            "review page: http://{addr}/  (decisions go to {}; Ctrl-C to stop)",
            journal.display()
        );
        review.serve(listener).await?;
        Ok::<(), anyhow::Error>(())
    })
}
