//! `cargo xtask bench ...`: the benchmarks, side by side with PyTorch where one exists.
//!
//! - `data [--no-criterion]`: the loader's work (read + decode + augment + batch) on the
//!   same 256 photo-like 150×150 JPEGs in vista (`vista bench data`, one thread and every
//!   core) and in PIL + torchvision transforms (`xtask/bench/data.py`, one thread), at 64
//!   and 150 px, with their ratio; then the loader's criterion benches (resampling with
//!   `image` beside `fast_image_resize`).
//! - `photos [--n 10000] [--cache-mb 512]`: peak memory and epoch time of `vista train`
//!   on 12-megapixel JPEGs, against the same images in memory (`bench_photos.rs`).
//! - `models [--models resnet18,resnet50] [--sizes 64,128,150] [--batches 32,64]
//!   [--infer-batch 64] [--steps 10] [--torch debian,pypi] [--no-small]`: images per second
//!   and peak memory of a training step (forward, loss, backward, SGD step) and of
//!   inference, on vista's CPU backend and in two PyTorch builds, row by row on one
//!   machine, with their ratios; plus the CPU preset's small network (ResNet-18 at 1/8
//!   width, small stem, 16 and 28 px, batch 128). PyTorch is Debian's `python3-torch`
//!   (installed with apt-get when missing) and the current wheel from PyPI (installed into
//!   `target/bench-torch-pypi`). Rows go to `target/bench-models/results.json`.
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
        Some("data") => data(&args[1..]),
        Some("models") => models(&args[1..]),
        Some("train") => train(&args[1..]),
        Some("clean") => crate::bench_clean::run(&args[1..]),
        Some("photos") => crate::bench_photos::run(&args[1..]),
        Some("lr-policy") => crate::bench_lr::run(&args[1..]),
        _ => bail!(
            "usage: cargo xtask bench data [--no-criterion] | models [--models resnet18,resnet50] [--sizes 64,128,150] [--batches 32,64] [--infer-batch 64] [--steps 10] [--torch debian,pypi] [--no-small] | train [--skip-fastai] | clean [--noise 0.05] | photos [--n 10000] [--cache-mb 512] | lr-policy [--seeds 5] [--epochs 1,1] [--fixed 6e-2]"
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

/// One line of `vista bench data` or `xtask/bench/data.py`.
#[derive(Debug, Deserialize)]
struct DataRow {
    framework: String,
    img_per_s: f64,
}

fn data_row(cmd: &mut Command, what: &str) -> Result<DataRow> {
    let out = capture(cmd, what)?;
    let line = out
        .lines()
        .rfind(|l| l.starts_with('{'))
        .with_context(|| format!("{what} printed no result"))?;
    parse_json(line).with_context(|| format!("{what}'s result: {line}"))
}

fn data(args: &[String]) -> Result<()> {
    let criterion = match args {
        [] => true,
        [a] if a == "--no-criterion" => false,
        _ => bail!("usage: cargo xtask bench data [--no-criterion]"),
    };
    ensure_torch()?;
    let vista = build_vista(Profile::Release, false)?;
    let folder = root().join("target/bench-data/jpegs");
    let script = root().join("xtask/bench/data.py");
    const FILES: usize = 256;
    let have = std::fs::read_dir(&folder).map_or(0, |d| d.count());
    if have != FILES {
        if folder.exists() {
            std::fs::remove_dir_all(&folder)?;
        }
        let mut cmd = Command::new(PYTHON);
        cmd.arg(&script).arg("--folder").arg(&folder);
        cmd.args(["--write", &FILES.to_string(), "--rounds", "0"]);
        capture(&mut cmd, "writing the benchmark's JPEGs")?;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("Machine: {}", crate::util::machine());
    println!(
        "read + decode + augment (fastai's aug_transforms) + normalize + batch of {FILES} 150x150 JPEGs, img/s"
    );
    let mut header_done = false;
    for size in [64, 150] {
        let ours = |threads: usize| {
            let mut cmd = Command::new(&vista);
            cmd.args(["bench", "data"]).arg(&folder);
            cmd.args([
                "--size",
                &size.to_string(),
                "--threads",
                &threads.to_string(),
            ]);
            data_row(&mut cmd, "vista bench data")
        };
        let (one, all) = (ours(1)?, ours(cores)?);
        let mut cmd = Command::new(PYTHON);
        cmd.arg(&script).arg("--folder").arg(&folder);
        cmd.args(["--size", &size.to_string()]);
        let theirs = data_row(&mut cmd, "xtask/bench/data.py")?;
        if !header_done {
            println!(
                "| px | vista, 1 thread | vista, {cores} threads | {}, 1 thread | ratio (1 thread) |",
                theirs.framework
            );
            println!("| --- | --- | --- | --- | --- |");
            header_done = true;
        }
        println!(
            "| {size} | {:.1} | {:.1} | {:.1} | {:.2}x |",
            one.img_per_s,
            all.img_per_s,
            theirs.img_per_s,
            one.img_per_s / theirs.img_per_s
        );
    }
    if criterion {
        sh(cargo().args(["bench", "-p", "vista-data", "--bench", "loader"]))?;
        sh(cargo().args(["bench", "-p", "vista-data", "--bench", "resize"]))?;
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

/// One measurement of `cargo xtask bench models`: the same work for every framework.
#[derive(Debug, Clone)]
struct Row {
    model: String,
    size: usize,
    batch: usize,
    infer: bool,
    /// The CPU preset's network: ResNet-18 at 1/8 width with the small-image stem.
    small: bool,
}

impl Row {
    fn label(&self) -> String {
        let model = if self.small {
            format!("{} /8 small stem", self.model)
        } else {
            self.model.clone()
        };
        let mode = if self.infer { "infer" } else { "train" };
        format!("| {model} | {} | {} | {mode} |", self.size, self.batch)
    }

    /// The options both sides take for this row.
    fn options(&self, steps: usize) -> Vec<String> {
        let mut o = words(&format!(
            "--models {} --sizes {} --batch {} --steps {steps}",
            self.model, self.size, self.batch
        ));
        if self.small {
            o.extend(words("--width 0.125 --small-stem"));
        }
        o
    }
}

/// A PyTorch build `bench models` measures: Debian's, or PyPI's current wheel.
struct Torch {
    name: &'static str,
    python: std::path::PathBuf,
}

/// The rows and options of `cargo xtask bench models`.
struct ModelsPlan {
    rows: Vec<Row>,
    steps: usize,
    torches: Vec<&'static str>,
}

fn list(value: &str) -> Result<Vec<usize>> {
    value
        .split(',')
        .map(|v| {
            v.trim()
                .parse()
                .with_context(|| format!("`{v}` is not a number"))
        })
        .collect()
}

fn models_plan(args: &[String]) -> Result<ModelsPlan> {
    let (mut models, mut sizes, mut batches) = (
        "resnet18,resnet50".to_string(),
        vec![64, 128, 150],
        vec![32, 64],
    );
    let (mut infer_batch, mut steps, mut small) = (64, 10, true);
    let mut torches = vec!["debian", "pypi"];
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--no-small" {
            small = false;
            continue;
        }
        let value = it.next().with_context(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--models" => models = value.clone(),
            "--sizes" => sizes = list(value)?,
            "--batches" | "--batch" => batches = list(value)?,
            "--infer-batch" => infer_batch = value.parse().context("--infer-batch")?,
            "--steps" => steps = value.parse().context("--steps")?,
            "--torch" => {
                torches = value
                    .split(',')
                    .map(|t| match t {
                        "debian" => Ok("debian"),
                        "pypi" => Ok("pypi"),
                        other => bail!("--torch takes debian and/or pypi, not `{other}`"),
                    })
                    .collect::<Result<_>>()?
            }
            other => bail!("unknown option `{other}`"),
        }
    }
    let mut rows = Vec::new();
    for model in models.split(',') {
        for &size in &sizes {
            for &batch in &batches {
                rows.push(Row {
                    model: model.into(),
                    size,
                    batch,
                    infer: false,
                    small: false,
                });
            }
        }
        if infer_batch > 0 {
            for &size in &sizes {
                rows.push(Row {
                    model: model.into(),
                    size,
                    batch: infer_batch,
                    infer: true,
                    small: false,
                });
            }
        }
    }
    if small {
        for size in [16, 28] {
            rows.push(Row {
                model: "resnet18".into(),
                size,
                batch: 128,
                infer: false,
                small: true,
            });
        }
    }
    Ok(ModelsPlan {
        rows,
        steps,
        torches,
    })
}

/// A virtual environment with the current PyTorch wheel from PyPI (CUDA builds included:
/// PyPI's Linux wheel is one build for both; it runs on the CPU here).
fn ensure_torch_pypi() -> Result<std::path::PathBuf> {
    let venv = root().join("target/bench-torch-pypi");
    let py = venv.join("bin/python");
    let ok = Command::new(&py)
        .args(["-c", "import torch, torchvision"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Ok(py);
    }
    eprintln!(
        "installing PyTorch and torchvision from PyPI into {} (a download of several GB, once)",
        venv.display()
    );
    sh(Command::new(PYTHON).args(["-m", "venv"]).arg(&venv))
        .context("creating the virtual environment (Debian needs python3-venv)")?;
    sh(Command::new(&py).args(["-m", "pip", "install", "-q", "torch", "torchvision"]))
        .context("pip could not install torch from PyPI")?;
    Ok(py)
}

/// Runs one benchmark process and returns its one row.
fn bench_row(cmd: &mut Command, what: &str) -> Result<ModelBench> {
    let out = capture(cmd, what)?;
    rows(out.as_bytes())?
        .into_iter()
        .next()
        .with_context(|| format!("{what} printed no row"))
}

fn models(args: &[String]) -> Result<()> {
    let plan = models_plan(args)?;
    ensure_torch()?;
    let mut torches = Vec::new();
    for &name in &plan.torches {
        let python = if name == "pypi" {
            ensure_torch_pypi()?
        } else {
            PYTHON.into()
        };
        torches.push(Torch { name, python });
    }
    let vista = build_vista(Profile::Release, false)?;
    let script = root().join("xtask/bench/models.py");
    // Both sides use every core: PyTorch its intra-op threads, vista one shard per core
    // in training (as `vista train` does) and the whole batch on every core in inference
    // (as `vista predict` does). Every row is a fresh process, so peak memory is the row's.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "measuring {} rows on {} (a few minutes per row on 2 cores)",
        plan.rows.len(),
        crate::util::machine()
    );
    let mut results = Vec::new();
    for row in &plan.rows {
        let mut cmd = Command::new(&vista);
        cmd.args(["bench", "models", "--quiet"])
            .args(row.options(plan.steps));
        if row.infer {
            cmd.arg("--infer");
        } else {
            cmd.args(["--shards", &cores.to_string()]);
        }
        let ours = bench_row(&mut cmd, "vista bench models")?;
        let mut theirs = Vec::new();
        for t in &torches {
            let mut cmd = Command::new(&t.python);
            cmd.arg(&script).args(row.options(plan.steps));
            cmd.args(["--mode", if row.infer { "infer" } else { "train" }]);
            theirs.push(bench_row(&mut cmd, &format!("PyTorch ({})", t.name))?);
        }
        eprintln!(
            "{} {:?} vs {:?}",
            row.label(),
            ours.img_per_s,
            theirs.iter().map(|r| r.img_per_s).collect::<Vec<_>>()
        );
        results.push((row.clone(), ours, theirs));
    }
    print_models_table(&results, &torches);
    let json: Vec<_> = results
        .iter()
        .flat_map(|(_, ours, theirs)| std::iter::once(ours).chain(theirs))
        .collect();
    let dir = root().join("target/bench-models");
    std::fs::create_dir_all(&dir)?;
    vista_format::write_json(&dir.join("results.json"), &json)?;
    eprintln!("rows written to {}", dir.join("results.json").display());
    Ok(())
}

fn print_models_table(results: &[(Row, ModelBench, Vec<ModelBench>)], torches: &[Torch]) {
    let show = |r: Option<f64>| r.map_or("n/a".to_string(), |v| format!("{v:.1}"));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "n/a".into(),
    };
    let backends: Vec<String> = results
        .first()
        .map(|(_, _, theirs)| theirs.iter().map(|r| r.backend.clone()).collect())
        .unwrap_or_default();
    println!("Machine: {}", crate::util::machine());
    println!(
        "img/s (train: forward + cross-entropy + backward + SGD step; infer: forward), peak RSS in MiB"
    );
    let mut header = "| model | px | batch | mode | vista |".to_string();
    let mut rule = "| --- | --- | --- | --- | --- |".to_string();
    for (t, b) in torches.iter().zip(&backends) {
        header.push_str(&format!(" PyTorch {} ({b}) | ratio |", t.name));
        rule.push_str(" --- | --- |");
    }
    header.push_str(" RSS vista |");
    rule.push_str(" --- |");
    for t in torches {
        header.push_str(&format!(" RSS {} |", t.name));
        rule.push_str(" --- |");
    }
    println!("{header}\n{rule}");
    for (row, ours, theirs) in results {
        let mut line = format!("{} {} |", row.label(), show(ours.img_per_s));
        for t in theirs {
            line.push_str(&format!(
                " {} | {} |",
                show(t.img_per_s),
                ratio(ours.img_per_s, t.img_per_s)
            ));
        }
        line.push_str(&format!(" {} |", show(ours.peak_rss_mib)));
        for t in theirs {
            line.push_str(&format!(" {} |", show(t.peak_rss_mib)));
        }
        println!("{line}");
    }
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
