//! `cargo xtask bench ...`: the benchmarks, side by side with PyTorch where one exists.
//!
//! - `data`: the loader's criterion benches (decode + augment + batch; resampling with
//!   `image` beside `fast_image_resize`).
//! - `photos [--n 10000] [--cache-mb 512]`: peak memory and epoch time of `vista train`
//!   on 12-megapixel JPEGs, against the same images in memory (`bench_photos.rs`).
//! - `models [--sizes 64,128] [--batch 32] [--steps 3]`: training-step images per second
//!   of each architecture on vista's CPU backend and in PyTorch, in one run on one
//!   machine, with their ratio. PyTorch is Debian's `python3-torch`, installed here with
//!   apt-get when missing.
//! - `train [--skip-fastai]`: time to accuracy on the embedded Fashion-MNIST. `vista
//!   train` with its default recipe, then `vista predict` on the test images, timed
//!   together; then fastai's documented recipe (`xtask/bench/train_fastai.py`) on the
//!   same folder, in a virtual environment that reuses Debian's PyTorch (1.13) and gets
//!   fastai 2.7 (the last series for torch < 2.3) from PyPI. Prints both test
//!   accuracies, wall times and their ratio.
//! - `lr-policy [--seeds 5] [--epochs 1,1] [--fixed 6e-2]`: the LR finder's suggestions
//!   over seeds and the accuracy each policy trains to (`bench_lr.rs`).

use std::process::Command;

use anyhow::{Context, Result, bail};

use serde::Deserialize;
use vista_format::{ModelBench, PredictSummary, PreparedData, parse_json};

use crate::util::{Profile, build_vista, cargo, root, run as sh, vista_json, words};

/// The last line `xtask/bench/train_fastai.py` prints.
#[derive(Debug, Deserialize)]
struct FastaiResult {
    test_accuracy: f64,
    wall_s: f64,
    #[serde(default = "fastai_name")]
    framework: String,
}

fn fastai_name() -> String {
    "fastai".into()
}

const PYTHON: &str = "/usr/bin/python3";

pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("data") => {
            sh(cargo().args(["bench", "-p", "vista-data", "--bench", "loader"]))?;
            sh(cargo().args(["bench", "-p", "vista-data", "--bench", "resize"]))
        }
        Some("models") => models(&args[1..]),
        Some("train") => train(&args[1..]),
        Some("clean") => crate::bench_clean::run(&args[1..]),
        Some("photos") => crate::bench_photos::run(&args[1..]),
        Some("lr-policy") => crate::bench_lr::run(&args[1..]),
        _ => bail!(
            "usage: cargo xtask bench data | models [--sizes 64,128] [--batch 32] [--steps 3] | train [--skip-fastai] | clean [--noise 0.05] | photos [--n 10000] [--cache-mb 512] | lr-policy [--seeds 5] [--epochs 1,1] [--fixed 6e-2]"
        ),
    }
}

/// Ensures Debian's PyTorch is importable, installing it when it is not.
fn ensure_torch() -> Result<()> {
    let ok = |py: &str| {
        Command::new(py)
            .args(["-c", "import torch, torchvision"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if ok(PYTHON) {
        return Ok(());
    }
    eprintln!("installing Debian's python3-torch and python3-torchvision for the PyTorch side");
    sh(Command::new("apt-get").args([
        "install",
        "-y",
        "-q",
        "python3-torch",
        "python3-torchvision",
    ]))
    .context("apt-get could not install python3-torch (run as root, after `apt-get update`)")?;
    if !ok(PYTHON) {
        bail!("{PYTHON} still cannot import torch after installing python3-torch");
    }
    Ok(())
}

/// The rows of a `vista bench models` or `xtask/bench/models.py` run: one
/// `vista_format::ModelBench` per line of standard output.
fn rows(stdout: &[u8]) -> Result<Vec<ModelBench>> {
    let text = String::from_utf8_lossy(stdout);
    (text.lines().filter(|l| l.starts_with('{')))
        .map(|l| parse_json(l).with_context(|| format!("a benchmark row: {l}")))
        .collect()
}

fn models(args: &[String]) -> Result<()> {
    let mut opts = vec![
        "--sizes".to_string(),
        "64,128".into(),
        "--batch".into(),
        "32".into(),
        "--steps".into(),
        "3".into(),
    ];
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let slot = match a.as_str() {
            "--sizes" => 1,
            "--batch" => 3,
            "--steps" => 5,
            other => bail!("unknown option `{other}`"),
        };
        opts[slot] = it
            .next()
            .with_context(|| format!("{a} needs a value"))?
            .clone();
    }
    ensure_torch()?;
    let vista = build_vista(Profile::Release, false)?;
    eprintln!("measuring vista (this takes a few minutes on 2 cores)");
    // Both sides use every core: PyTorch its intra-op threads, vista one shard per core
    // (as `vista train` does).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let ours = Command::new(&vista)
        .args(["bench", "models"])
        .args(&opts)
        .args(["--shards", &cores.to_string()])
        .output()
        .context("running vista bench")?;
    if !ours.status.success() {
        bail!(
            "vista bench models failed:\n{}",
            String::from_utf8_lossy(&ours.stderr)
        );
    }
    eprintln!("measuring PyTorch");
    let script = root().join("xtask/bench/models.py");
    let theirs = Command::new(PYTHON)
        .arg(&script)
        .args(&opts)
        .output()
        .context("running the PyTorch bench")?;
    if !theirs.status.success() {
        bail!(
            "{} failed:\n{}",
            script.display(),
            String::from_utf8_lossy(&theirs.stderr)
        );
    }
    let (ours, theirs) = (rows(&ours.stdout)?, rows(&theirs.stdout)?);
    let backend_ours = ours.first().map_or("vista", |r| r.backend.as_str());
    let backend_theirs = theirs.first().map_or("torch", |r| r.backend.as_str());
    println!(
        "training step (forward + cross-entropy + backward), batch {}, img/s",
        opts[3]
    );
    println!("| model | size | vista ({backend_ours}) | PyTorch ({backend_theirs}) | ratio |");
    println!("| --- | --- | --- | --- | --- |");
    for row in &ours {
        let (model, size, rate) = (&row.model, row.size, &row.img_per_s);
        let other = theirs
            .iter()
            .find(|r| &r.model == model && r.size == size)
            .and_then(|r| r.img_per_s);
        let show = |r: Option<f64>| r.map_or("n/a".to_string(), |v| format!("{v:.1}"));
        let ratio = match (rate, other) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
            _ => "n/a".into(),
        };
        println!(
            "| {model} | {size} | {} | {} | {ratio} |",
            show(*rate),
            show(other)
        );
    }
    Ok(())
}

/// Runs `cmd` capturing its output; fails with its stderr.
fn capture(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd.output().with_context(|| format!("starting {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A virtual environment that sees Debian's PyTorch and has fastai from PyPI.
fn ensure_fastai() -> Result<std::path::PathBuf> {
    ensure_torch()?;
    let venv = root().join("target/bench-venv");
    let py = venv.join("bin/python");
    let ok = |py: &std::path::Path| {
        Command::new(py)
            .args(["-c", "import fastai.vision.all"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if ok(&py) {
        return Ok(py);
    }
    eprintln!(
        "installing fastai into {} (PyTorch comes from Debian)",
        venv.display()
    );
    sh(Command::new(PYTHON)
        .args(["-m", "venv", "--system-site-packages"])
        .arg(&venv))
    .context("creating the virtual environment (Debian needs python3-venv)")?;
    // fastai 2.8 needs torch >= 2.3 (`torch.amp.GradScaler`); Debian's torch is 1.13,
    // which fastai 2.7 supports. NumPy and pandas stay on the 1.x ABI Debian's torch was
    // built against.
    sh(Command::new(&py).args([
        "-m",
        "pip",
        "install",
        "-q",
        "fastai>=2.7,<2.8",
        "numpy<2",
        "pandas<2.3",
    ]))
    .context("pip could not install fastai")?;
    if !ok(&py) {
        bail!("fastai still does not import in {}", venv.display());
    }
    Ok(py)
}

fn train(args: &[String]) -> Result<()> {
    let skip_fastai = match args {
        [] => false,
        [a] if a == "--skip-fastai" => true,
        _ => bail!("usage: cargo xtask bench train [--skip-fastai]"),
    };
    let vista = build_vista(Profile::Release, false)?;
    let data = vista_json::<PreparedData>(&vista, &words("data prepare --quiet"))?.dataset;
    let run = root().join("runs/bench-train");
    if run.exists() {
        std::fs::remove_dir_all(&run).with_context(|| format!("clearing {}", run.display()))?;
    }
    let labels = data.join("answers/test_labels.csv");
    eprintln!("vista: default recipe on {}", data.display());
    let start = std::time::Instant::now();
    sh(Command::new(&vista)
        .args(["train", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&run))?;
    let show = |p: &std::path::Path| p.display().to_string();
    let predicted: PredictSummary = vista_json(
        &vista,
        &[
            "predict".into(),
            "--quiet".into(),
            "--run".into(),
            show(&run),
            "--data".into(),
            show(&data),
            "--out".into(),
            show(&run.join("test_predictions.csv")),
            "--labels".into(),
            show(&labels),
        ],
    )?;
    let ours_s = start.elapsed().as_secs_f64();
    let ours_acc = predicted
        .accuracy
        .context("vista predict measured no test accuracy")?;
    println!("| recipe | test accuracy | wall time |");
    println!("| --- | --- | --- |");
    println!("| vista train (default recipe) + predict | {ours_acc:.4} | {ours_s:.0} s |");
    if skip_fastai {
        return Ok(());
    }
    let py = ensure_fastai()?;
    eprintln!("fastai: vision_learner(resnet18), lr_find, fit_one_cycle(3)");
    let out = capture(
        Command::new(&py)
            .arg(root().join("xtask/bench/train_fastai.py"))
            .arg(&data),
        "the fastai run",
    )?;
    let line = out
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .context("fastai printed no result")?;
    let theirs: FastaiResult =
        parse_json(line).with_context(|| format!("fastai's result line: {line}"))?;
    let (acc, secs, framework) = (theirs.test_accuracy, theirs.wall_s, &theirs.framework);
    println!("| {framework}: resnet18, lr_find, fit_one_cycle(3) | {acc:.4} | {secs:.0} s |");
    println!(
        "vista reaches {ours_acc:.4} vs {acc:.4} in {:.2}x fastai's wall time",
        ours_s / secs
    );
    Ok(())
}
