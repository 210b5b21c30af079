//! `cargo xtask reproduce`: the article's competition run, end to end, as stages that
//! are cached in the run folder (a finished stage is skipped on rerun; `--fresh` redoes
//! everything).
//!
//! Stages implemented in this version: 1. open, validate and look at the data. The
//! training stages (LR find, model A with progressive resizing and mixup, model B, TTA,
//! the majority-vote ensemble and the submission) are listed in the report as not yet
//! available rather than faked.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::util::{cargo, root, run as sh};

const HELP: &str = "\
usage: cargo xtask reproduce [--data PATH] [--out DIR] [--device cpu|cuda:N] [--seed N] [--fresh]

  --data PATH    a Kaggle or Analytics Vidhya download (default: the embedded Fashion-MNIST)
  --out DIR      run folder (default: runs/reproduce)
  --device DEV   cpu (default) or cuda:N (needs a vista built with --features cuda)
  --seed N       seed of every random choice (default 0)
  --fresh        redo every stage, even those finished before
";

#[derive(Debug)]
struct Options {
    data: String,
    out: PathBuf,
    device: String,
    seed: u64,
    fresh: bool,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        data: "embedded".into(),
        out: root().join("runs/reproduce"),
        device: "cpu".into(),
        seed: 0,
        fresh: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .with_context(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--data" => o.data = value()?,
            "--out" => o.out = PathBuf::from(value()?),
            "--device" => o.device = value()?,
            "--seed" => o.seed = value()?.parse().context("--seed takes an integer")?,
            "--fresh" => o.fresh = true,
            "--help" | "-h" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            other => bail!("unknown option `{other}`\n{HELP}"),
        }
    }
    Ok(o)
}

/// Builds the release `vista` binary (with CUDA when a GPU device is asked for).
fn build_vista(device: &str) -> Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args(["build", "--release", "-p", "vista-cli"]);
    if device.starts_with("cuda") {
        cmd.args(["--features", "cuda"]);
    }
    sh(&mut cmd)?;
    Ok(root().join("target/release/vista"))
}

/// Runs `vista ARGS`, saving its standard output under the run folder as `log`.
fn vista(bin: &Path, args: &[&str], log: &Path) -> Result<String> {
    eprintln!("$ vista {}", args.join(" "));
    let out = Command::new(bin)
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("starting {}", bin.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{stdout}");
    std::fs::write(log, &stdout).with_context(|| format!("writing {}", log.display()))?;
    if !out.status.success() {
        bail!("`vista {}` failed ({})", args.join(" "), out.status);
    }
    Ok(stdout)
}

/// A stage's completion marker: written last, atomically, so a killed stage reruns.
fn done_marker(out: &Path, stage: &str) -> PathBuf {
    out.join("stages").join(format!("{stage}.done"))
}

fn mark_done(out: &Path, stage: &str, seconds: f64) -> Result<()> {
    let marker = done_marker(out, stage);
    std::fs::create_dir_all(marker.parent().unwrap())?;
    let tmp = marker.with_extension("tmp");
    std::fs::write(
        &tmp,
        format!("{{\"stage\": \"{stage}\", \"seconds\": {seconds:.1}}}\n"),
    )?;
    std::fs::rename(&tmp, &marker)?;
    Ok(())
}

fn stage_seconds(out: &Path, stage: &str) -> Option<f64> {
    let text = std::fs::read_to_string(done_marker(out, stage)).ok()?;
    text.split("\"seconds\":")
        .nth(1)?
        .trim()
        .trim_end_matches('}')
        .trim()
        .parse()
        .ok()
}

pub fn run(args: &[String]) -> Result<()> {
    let o = parse(args)?;
    if o.fresh && o.out.exists() {
        std::fs::remove_dir_all(o.out.join("stages")).ok();
    }
    std::fs::create_dir_all(&o.out).with_context(|| format!("creating {}", o.out.display()))?;
    let bin = build_vista(&o.device)?;
    let total = Instant::now();

    // Stage 1: open and validate the data, and draw the augmentations.
    let stage = "1-data";
    if done_marker(&o.out, stage).exists() {
        eprintln!("stage {stage}: finished before, skipped (--fresh redoes it)");
    } else {
        let start = Instant::now();
        let report = o.out.join("problems.csv");
        let grid = o.out.join("augmentations.png");
        let seed = o.seed.to_string();
        vista(
            &bin,
            &[
                "data",
                "check",
                &o.data,
                "--on-bad-image",
                "skip",
                "--report",
                report.to_str().unwrap(),
            ],
            &o.out.join("data-check.txt"),
        )?;
        vista(
            &bin,
            &[
                "data",
                "show",
                &o.data,
                "--augment",
                "--on-bad-image",
                "skip",
                "--out",
                grid.to_str().unwrap(),
                "--seed",
                &seed,
            ],
            &o.out.join("data-show.txt"),
        )?;
        mark_done(&o.out, stage, start.elapsed().as_secs_f64())?;
    }
    write_report(&o)?;
    eprintln!(
        "reproduce: finished in {:.1} s; report at {}",
        total.elapsed().as_secs_f64(),
        o.out.join("report.md").display()
    );
    Ok(())
}

fn write_report(o: &Options) -> Result<()> {
    let check = std::fs::read_to_string(o.out.join("data-check.txt")).unwrap_or_default();
    let secs = stage_seconds(&o.out, "1-data").map_or("?".into(), |s| format!("{s:.1} s"));
    let report = format!(
        "# vista reproduce\n\n\
         - data: `{data}`\n- device: `{device}`\n- seed: {seed}\n\n\
         ## Stage 1: data ({secs})\n\n```\n{check}```\n\n\
         Problem list: `problems.csv`. Augmentation samples (fastai `aug_transforms` defaults):\n\n\
         ![augmentations](augmentations.png)\n\n\
         ## Stages not yet available in this version\n\n\
         LR finder, model A (ResNet, progressive resizing, mixup, one-cycle), model B,\n\
         test-time augmentation, majority-vote ensemble, submission and the ablation table.\n",
        data = o.data,
        device = o.device,
        seed = o.seed,
    );
    let path = o.out.join("report.md");
    let tmp = path.with_extension("md.tmp");
    std::fs::write(&tmp, report)?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}
