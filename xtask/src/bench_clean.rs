//! `cargo xtask bench clean`: the noisy-label benchmark of cleaning. On the embedded
//! Fashion-MNIST with 5% of the training labels flipped (seeded, by file name): how
//! many flipped images out-of-fold detection finds (precision, recall), and the test
//! accuracy of the same recipe trained without and with the flagged images left out.
//! The dataset's cleaned view is undone at the end.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use vista_format::{CleanDir, DetectionReport, PredictSummary, PreparedData, read_json};

use crate::util::{Profile, build_vista, root, vista_json, words};

/// The recipe of every model here: cheap, so five folds and two runs fit in minutes.
const RECIPE: &str =
    "--arch resnet18 --width 0.125 --small-stem true --sizes 16,28 --epochs 2,1 --lr 3e-3 --quiet";

fn vista(bin: &Path, args: &str) -> Result<()> {
    crate::util::vista(bin, &words(args))
}

pub fn run(args: &[String]) -> Result<()> {
    let noise = match args {
        [] => "0.05".to_string(),
        [flag, v] if flag == "--noise" => v.clone(),
        _ => bail!("usage: cargo xtask bench clean [--noise 0.05]"),
    };
    let bin = build_vista(Profile::Release, false)?;
    let out = root().join("target/bench-clean");
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    let data = vista_json::<PreparedData>(&bin, &words("data prepare --quiet"))?.dataset;
    let labels = data.join("answers/test_labels.csv");
    let o = |rel: &str| out.join(rel).display().to_string();
    let flip = format!("--flip-labels {noise} --seed 42");
    let start = Instant::now();
    vista(
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
            let flags = CleanDir::new(out.join("detect")).flags_json();
            vista(&bin, &format!("clean apply {}", flags.display()))?;
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
            vista_json::<PredictSummary>(
                &bin,
                &words(&format!(
                    "predict --quiet --run {} --data {} --split unlabelled --labels {} --out {}",
                    o(name),
                    data.display(),
                    labels.display(),
                    o(&format!("{name}.csv"))
                )),
            )
        });
        if clean {
            // Whatever happened, the embedded data gets its full view back.
            vista(&bin, &format!("clean undo --data {}", data.display()))?;
        }
        let predicted = predicted?;
        accuracy.push((name, predicted.accuracy.context("no test accuracy")?));
    }
    println!("\n| noise {noise} | result |\n| --- | --- |");
    let report_path = CleanDir::new(out.join("detect")).detection_json();
    let report: DetectionReport = read_json(&report_path)?;
    for (key, d) in &report {
        println!(
            "| detection ({key}) | precision {:.3}, recall {:.3} ({} of {} flipped; {} flagged) |",
            d.precision, d.recall, d.hits, d.flipped, d.flagged
        );
    }
    println!("| detection time | {detect_s:.0} s (5 folds) |");
    for (name, acc) in accuracy {
        println!("| test accuracy, {name} | {:.2}% |", 100.0 * acc);
    }
    Ok(())
}
