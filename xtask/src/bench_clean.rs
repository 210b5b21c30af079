//! `cargo xtask bench clean`: the noisy-label benchmark of cleaning. On the embedded
//! Fashion-MNIST with 5% of the training labels flipped (seeded, by file name): how
//! many flipped images out-of-fold detection finds (precision, recall), and the test
//! accuracy of the same recipe trained without and with the flagged images left out.
//! The dataset's cleaned view is undone at the end.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::util::{cargo, root, run as sh};

/// The recipe of every model here: cheap, so five folds and two runs fit in minutes.
const RECIPE: &str =
    "--arch resnet18 --width 0.125 --small-stem true --sizes 16,28 --epochs 2,1 --lr 3e-3 --quiet";

fn vista(bin: &Path, args: &str) -> Result<String> {
    let args: Vec<String> = args.split_whitespace().map(str::to_owned).collect();
    crate::reproduce::vista(bin, &args)
}

fn test_accuracy(stdout: &str) -> Option<f64> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("test accuracy "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

pub fn run(args: &[String]) -> Result<()> {
    let noise = match args {
        [] => "0.05".to_string(),
        [flag, v] if flag == "--noise" => v.clone(),
        _ => bail!("usage: cargo xtask bench clean [--noise 0.05]"),
    };
    sh(cargo().args(["build", "--release", "-p", "vista-cli"]))?;
    let bin = root().join("target/release/vista");
    let out = root().join("target/bench-clean");
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    let data = PathBuf::from(vista(&bin, "data prepare --quiet")?.trim());
    let labels = data.join("answers/test_labels.csv");
    let o = |rel: &str| out.join(rel).display().to_string();
    let flip = format!("--flip-labels {noise} --seed 42");
    let start = Instant::now();
    let detect = vista(
        &bin,
        &format!(
            "clean detect --data {} --out {} {RECIPE} {flip}",
            data.display(),
            o("detect")
        ),
    )?;
    let detect_s = start.elapsed().as_secs_f64();
    let mut accuracy = Vec::new();
    for (name, clean) in [("noisy", false), ("cleaned", true)] {
        if clean {
            vista(&bin, &format!("clean apply {}", o("detect/flags.json")))?;
        }
        let trained = vista(
            &bin,
            &format!(
                "train --data {} --out {} {RECIPE} {flip}",
                data.display(),
                o(name)
            ),
        );
        let predicted = trained.and_then(|_| {
            vista(
                &bin,
                &format!(
                    "predict --quiet --run {} --data {} --split unlabelled --labels {} --out {}",
                    o(name),
                    data.display(),
                    labels.display(),
                    o(&format!("{name}.csv"))
                ),
            )
        });
        if clean {
            // Whatever happened, the embedded data gets its full view back.
            vista(&bin, &format!("clean undo --data {}", data.display()))?;
        }
        accuracy.push((
            name,
            test_accuracy(&predicted?).context("no test accuracy")?,
        ));
    }
    println!("\n| noise {noise} | result |\n| --- | --- |");
    for line in detect
        .lines()
        .filter(|l| l.starts_with("flipped labels found"))
    {
        println!("| detection | {line} |");
    }
    println!("| detection time | {detect_s:.0} s (5 folds) |");
    for (name, acc) in accuracy {
        println!("| test accuracy, {name} | {:.2}% |", 100.0 * acc);
    }
    Ok(())
}
