//! `vista predict`, `vista evaluate`, `vista ensemble` and `vista submit`: predictions of
//! a trained run (with test-time augmentation), their scores and pictures, ensembles of
//! prediction files, and competition submissions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::backend::Backend;
use vista_data::{
    AugmentConfig, OnBadImage, PredictSplit, SplitFiles, decode_rgb, open, row_names,
};
use vista_eval::{
    Method, Placement, PredictOptions, Predictions, Tta, ensemble, evaluate, predict_files,
    read_labels, write_av_csv, write_folders,
};
use vista_plot::{Tile, confusion_png, tiles_png};
use vista_train::load_run;

use crate::backend::{DeviceSpec, with_inference_backend};
use crate::paths::resolve_data;

#[derive(Debug, clap::Args)]
pub struct PredictArgs {
    /// A finished run folder (from `vista train`): all predicting needs.
    #[arg(long)]
    run: PathBuf,
    /// Images to predict: image files, or folders (walked with their subfolders).
    /// Without any, the images of `--data`'s split are predicted.
    #[arg(value_name = "PATH", conflicts_with_all = ["data", "split"])]
    paths: Vec<PathBuf>,
    /// Dataset whose images to predict, or `embedded`.
    #[arg(long, default_value = "embedded")]
    data: PathBuf,
    /// Which images: `test` (labelled held-out images, Kaggle's seg_test), `unlabelled`
    /// (Kaggle's seg_pred, Analytics Vidhya's test.csv), or `auto`: the unlabelled ones
    /// when there are any, else the test ones.
    #[arg(long, default_value = "auto")]
    split: PredictSplit,
    /// Output CSV: `image[,label],prediction[,prediction/2,...],<one probability column
    /// per class>`; `prediction/<r>` names the class ranked `r` (up to --top-k).
    #[arg(long)]
    out: PathBuf,
    /// Images whose most likely classes are printed (the first ones predicted).
    #[arg(long, default_value_t = 5)]
    show: usize,
    /// Classes per image, most likely first, printed and written as rank columns.
    #[arg(long, default_value_t = 3)]
    top_k: usize,
    /// Image size (default: the run's last stage).
    #[arg(long)]
    size: Option<u32>,
    /// Test-time augmentation: none, flip, fastai (4 views with the training
    /// augmentations blended with the plain one, as fastai's `tta`), ten-crop (corners,
    /// centre and their mirrors) or five-crop (without the mirrors).
    #[arg(long, default_value = "none")]
    tta: String,
    /// fastai TTA: augmented views per image.
    #[arg(long, default_value_t = 4)]
    tta_n: usize,
    /// fastai TTA: weight of the plain view in `lerp(augmented, plain, beta)`.
    #[arg(long, default_value_t = 0.25)]
    tta_beta: f32,
    /// fastai TTA: the augmented views' maximum instead of their mean.
    #[arg(long)]
    tta_max: bool,
    /// A `image_name,label` CSV of the right answers: adds a label column and prints
    /// the accuracy.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Seed of the augmented views (default: the run's seed).
    #[arg(long)]
    seed: Option<u64>,
    /// What to do with corrupt or unreadable images.
    #[arg(long, default_value = "error")]
    on_bad_image: OnBadImage,
    /// `cpu`, `cuda`, `cuda:N`, a comma-separated list of them (the images are split
    /// over the list), or `all`.
    #[arg(long, visible_alias = "devices", default_value = "cpu")]
    device: DeviceSpec,
    /// Print the outcome as one JSON object (`vista_format::PredictSummary`) instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run_predict(args: &PredictArgs, progress: bool) -> Result<()> {
    with_inference_backend!(args.device, |B, devices| predict_on::<B>(
        args, devices, progress
    ))
}

fn predict_on<B: Backend>(
    args: &PredictArgs,
    devices: Vec<B::Device>,
    progress: bool,
) -> Result<()> {
    let run = load_run::<B>(&args.run, &devices[0])
        .with_context(|| format!("loading the run {}", args.run.display()))?;
    let classes = run.classes.classes.clone();
    let (files, labels, names) = if args.paths.is_empty() {
        let path = resolve_data(&args.data, progress)?;
        let ds = open(&path).with_context(|| format!("opening {}", path.display()))?;
        let SplitFiles { files, labels, .. } = ds.files_to_predict(args.split)?;
        let data_classes = &ds.classes.classes;
        if labels.is_some() && *data_classes != classes {
            bail!(
                "{} has the classes {data_classes:?}, the run {} was trained on {classes:?}",
                path.display(),
                args.run.display()
            );
        }
        let names = row_names(&ds.root, &files);
        (files, labels, names)
    } else {
        let (files, names) = images_at(&args.paths, args.on_bad_image)?;
        (files, None, names)
    };
    let tta = match Tta::parse(&args.tta)? {
        Tta::Fastai { .. } => Tta::Fastai {
            n: args.tta_n,
            beta: args.tta_beta,
            use_max: args.tta_max,
        },
        t => t,
    };
    // fastai's `tta` draws the training augmentations. A run trained without any gets
    // `aug_transforms()` without its flip: the model never saw a mirror image, and much
    // data is not mirror-symmetric (Fashion-MNIST's shoes all face one way).
    let augment = run.config.augment.clone().unwrap_or_else(|| {
        if matches!(tta, Tta::Fastai { .. }) {
            eprintln!(
                "note: the run trained without augmentation; fastai TTA uses aug_transforms() without flips"
            );
        }
        AugmentConfig {
            flip_p: 0.0,
            ..AugmentConfig::default()
        }
    });
    let defaults = PredictOptions::for_run(
        run.config.final_size(),
        run.config.normalize,
        run.config.seed,
    );
    let opts = PredictOptions {
        size: args.size.unwrap_or(defaults.size),
        tta,
        augment,
        seed: args.seed.unwrap_or(defaults.seed),
        on_bad_image: args.on_bad_image,
        observer: crate::observe::terminal(progress),
        ..defaults
    };
    let k = classes.len();
    let got = predict_files::<B, _>(&run.model, &devices, &files, k, &opts)?;
    for p in &got.skipped {
        eprintln!("skipped {p}");
    }
    let mut preds = Predictions::from_probs(
        classes.clone(),
        got.kept.iter().map(|&i| names[i].clone()).collect(),
        labels.map(|l| got.kept.iter().map(|&i| l[i]).collect()),
        got.probs,
    );
    if let Some(labels) = &args.labels {
        let map = read_labels(labels, &classes)?;
        preds.attach_labels(&map)?;
    }
    preds.write_csv_top(&args.out, args.top_k)?;
    let scored = match preds.labels {
        Some(_) => Some(evaluate(&preds, 0)?),
        None => None,
    };
    if args.json {
        let summary = vista_format::PredictSummary {
            out: args.out.clone(),
            images: preds.len(),
            skipped: got.skipped.len(),
            tta: opts.tta.name().to_string(),
            size: opts.size,
            accuracy: scored.as_ref().map(|e| e.accuracy),
            correct: scored.as_ref().map(|e| e.confusion.correct()),
        };
        println!("{}", serde_json::to_string(&summary)?);
        return Ok(());
    }
    print_top(&preds, args.show, args.top_k);
    println!(
        "{} predictions ({} TTA, {} px) written to {}",
        preds.len(),
        opts.tta.name(),
        opts.size,
        args.out.display()
    );
    if let Some(e) = scored {
        println!(
            "test accuracy {:.4} ({}/{})",
            e.accuracy,
            e.confusion.correct(),
            e.images
        );
    }
    Ok(())
}

/// The image files under `paths` and their row names: a file's name, or its path below
/// the folder given; the paths as given when two rows would share a name.
fn images_at(paths: &[PathBuf], policy: OnBadImage) -> Result<(Vec<PathBuf>, Vec<String>)> {
    let (mut files, mut names, mut problems) = (Vec::new(), Vec::new(), Vec::new());
    for path in paths {
        let (found, bad) = vista_data::find_images(path)
            .with_context(|| format!("looking for images in {}", path.display()))?;
        let base = if path.is_dir() {
            path.as_path()
        } else {
            path.parent().unwrap_or(Path::new(""))
        };
        names.extend(row_names(base, &found));
        files.extend(found);
        problems.extend(bad);
    }
    let report = vista_data::ProblemReport::new(problems).enforce(policy)?;
    if !report.is_empty() {
        eprint!("{} files not predicted:\n{report}", report.problems.len());
    }
    if files.is_empty() {
        bail!(
            "no image found in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let unique: std::collections::HashSet<&String> = names.iter().collect();
    if unique.len() < names.len() {
        names = files.iter().map(|f| f.display().to_string()).collect();
    }
    Ok((files, names))
}

/// The `k` most likely classes of the first `n` images, for people.
fn print_top(preds: &Predictions, n: usize, k: usize) {
    let classes = &preds.classes;
    for (i, image) in preds.images.iter().enumerate().take(n) {
        let row = preds.row(i);
        let top: Vec<String> = (preds.ranked(i).iter().take(k.max(1)))
            .map(|&c| format!("{} {:.3}", classes[c as usize], row[c as usize]))
            .collect();
        println!("  {image}: {}", top.join(", "));
    }
    if preds.len() > n && n > 0 {
        println!("  ... and {} more", preds.len() - n);
    }
}

#[derive(Debug, clap::Args)]
pub struct EvaluateArgs {
    /// A prediction file (from `vista predict` or `vista ensemble`).
    preds: PathBuf,
    /// A `image_name,label` CSV of the right answers, when the predictions carry none.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// The dataset the images come from: the top-losses picture shows them.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Folder for evaluation.json, evaluation.txt, confusion.png and top_losses.png.
    #[arg(long)]
    out: PathBuf,
    /// How many top losses to list and draw.
    #[arg(long, default_value_t = 16)]
    top: usize,
}

/// Every image file of a dataset by the name a prediction file gives it.
fn dataset_files(path: &Path) -> Result<HashMap<String, PathBuf>> {
    let ds = open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(ds.files_by_row_name())
}

pub fn run_evaluate(args: &EvaluateArgs, progress: bool) -> Result<()> {
    let mut preds = Predictions::read_csv(&args.preds)?;
    if let Some(labels) = &args.labels {
        let map = read_labels(labels, &preds.classes)?;
        preds.attach_labels(&map)?;
    }
    let e = evaluate(&preds, args.top)
        .with_context(|| format!("evaluating {}", args.preds.display()))?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let out = vista_format::EvalDir::new(&args.out);
    let text = e.to_text();
    print!("{text}");
    vista_format::write_atomic(&out.evaluation_txt(), text.as_bytes())?;
    vista_format::write_json(&out.evaluation_json(), &e)?;
    confusion_png(&out.confusion_png(), &e.confusion, &e.classes)?;
    if let Some(data) = &args.data {
        let files = dataset_files(&resolve_data(data, progress)?)?;
        let mut tiles = Vec::new();
        for t in &e.top_losses {
            let file = files
                .get(&t.image)
                .with_context(|| format!("{} is not in {}", t.image, data.display()))?;
            let image = decode_rgb(file, vista_data::DEFAULT_MAX_PIXELS)
                .map_err(|problem| anyhow::anyhow!("{}: {problem}", file.display()))?;
            tiles.push(Tile {
                image,
                caption: vec![
                    format!(
                        "{} / {}",
                        e.classes[t.actual as usize], e.classes[t.predicted as usize]
                    ),
                    format!("p {:.2}  loss {:.2}", t.probability, t.loss),
                    t.image.clone(),
                ],
            });
        }
        tiles_png(
            &out.top_losses_png(),
            "Top losses: actual / predicted, probability of the prediction, loss",
            &tiles,
            4,
            128,
        )?;
    }
    println!("evaluation written to {}", args.out.display());
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct EnsembleArgs {
    /// Prediction files of the same images (from `vista predict`).
    #[arg(required = true)]
    preds: Vec<PathBuf>,
    /// vote (majority, ties broken at random), mean (of probabilities) or weighted.
    #[arg(long, default_value = "vote")]
    method: String,
    /// Weights of the files for `--method weighted`, e.g. 2,1,1.
    #[arg(long, value_delimiter = ',')]
    weights: Option<Vec<f32>>,
    /// Seed of the tie-breaks.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output prediction file.
    #[arg(long)]
    out: PathBuf,
}

pub fn run_ensemble(args: &EnsembleArgs) -> Result<()> {
    let method = match (args.method.as_str(), &args.weights) {
        ("vote", None) => Method::Vote,
        ("mean", None) => Method::Mean,
        ("weighted", Some(w)) => Method::Weighted(w.clone()),
        ("weighted", None) => bail!("--method weighted needs --weights"),
        ("vote" | "mean", Some(_)) => bail!("--weights go with --method weighted"),
        (other, _) => bail!("unknown method `{other}` (use vote, mean or weighted)"),
    };
    let members = args
        .preds
        .iter()
        .map(|p| Ok((p.clone(), Predictions::read_csv(p)?)))
        .collect::<Result<Vec<_>>>()?;
    let e = ensemble(&members, &method, args.seed)?;
    e.write_csv(&args.out)?;
    println!(
        "{} of {} files: {} predictions written to {}",
        args.method,
        members.len(),
        e.len(),
        args.out.display()
    );
    if e.labels.is_some() {
        for (path, p) in &members {
            println!("  {:.4}  {}", evaluate(p, 0)?.accuracy, path.display());
        }
        println!(
            "  {:.4}  ensemble ({})",
            evaluate(&e, 0)?.accuracy,
            args.method
        );
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    /// A prediction file.
    preds: PathBuf,
    /// av: Analytics Vidhya's `image_name,label` CSV with class ids; folders: one folder
    /// per predicted class holding the images (Kaggle's layout).
    #[arg(long, default_value = "av")]
    format: String,
    /// The CSV (av) or the new folder (folders).
    #[arg(long)]
    out: PathBuf,
    /// The dataset the images come from (folders only).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Copy the images (folders only). By default each is a hard link where the file
    /// system allows: no space used, but the link shares its bytes with the original,
    /// so editing a submitted file edits the dataset's image.
    #[arg(long)]
    copy: bool,
}

pub fn run_submit(args: &SubmitArgs, progress: bool) -> Result<()> {
    let preds = Predictions::read_csv(&args.preds)?;
    match args.format.as_str() {
        "av" => {
            write_av_csv(&preds, &args.out)?;
            println!(
                "{} rows (image_name,label with class ids 0..{}) written to {}",
                preds.len(),
                preds.num_classes() - 1,
                args.out.display()
            );
        }
        "folders" => {
            let data = args
                .data
                .as_ref()
                .context("--format folders needs --data, the dataset the images are in")?;
            let files = dataset_files(&resolve_data(data, progress)?)?;
            let placement = if args.copy {
                Placement::Copy
            } else {
                Placement::Link
            };
            let n = write_folders(&preds, &files, &args.out, placement)?;
            println!(
                "{n} images sorted into class folders under {}",
                args.out.display()
            );
        }
        other => bail!("unknown format `{other}` (use av or folders)"),
    }
    Ok(())
}
