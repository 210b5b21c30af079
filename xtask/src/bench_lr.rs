//! `cargo xtask bench lr-policy`: which learning-rate policy holds across seeds. For
//! each seed, the LR finder runs on the CPU preset's model A network (ResNet-18/8, small
//! stem, 16 px) and the quick recipe (16 → 28 px, 1 + 1 epochs, mixup 0.2) trains once per
//! policy: the finder's `slide`, its `minimum/10`, its `valley` (fastai's default) and a
//! fixed rate. Prints the suggestions per seed and, per policy, the validation accuracy
//! per seed with its mean, standard deviation and range. Finished runs are kept in
//! `target/bench-lr-policy` and skipped on a rerun.

use std::path::Path;

use anyhow::{Context, Result, bail};
use vista_format::{EpochMetrics, LrFindDir, LrFindRecord, PreparedData, RunDir, read_json};

use crate::util::{Profile, build_vista, root, vista, vista_json, words};

/// Model A's network in the CPU preset (`reproduce/preset.rs`).
const NETWORK: &str = "--arch resnet18 --width 0.125 --small-stem true";

/// The policies, by name; `fixed` is `--fixed`.
const POLICIES: [&str; 4] = ["slide", "minimum", "valley", "fixed"];

pub fn run(args: &[String]) -> Result<()> {
    let (mut seeds, mut epochs, mut fixed) = (5u64, "1,1".to_string(), 6e-2f64);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--seeds" => seeds = value()?.parse().context("--seeds takes an integer")?,
            "--epochs" => epochs = value()?.clone(),
            "--fixed" => fixed = value()?.parse().context("--fixed takes a rate")?,
            other => bail!("unknown option `{other}` (--seeds 5 --epochs 1,1 --fixed 6e-2)"),
        }
    }
    let bin = build_vista(Profile::Release, false)?;
    let data = vista_json::<PreparedData>(&bin, &words("data prepare"))?.dataset;
    let out = root().join("target/bench-lr-policy");
    let mut table: Vec<(u64, LrFindRecord, Vec<f64>)> = Vec::new();
    for seed in 1..=seeds {
        let finder = LrFindDir::new(out.join(format!("find-{seed}")));
        if !finder.record().exists() {
            let mut a = words(&format!("lr-find {NETWORK} --sizes 16 --seed {seed}"));
            a.extend(["--data".into(), data.display().to_string()]);
            a.extend(["--out".into(), finder.path().display().to_string()]);
            vista(&bin, &a)?;
        }
        let record: LrFindRecord = read_json(&finder.record())?;
        let mut accuracies = Vec::new();
        for policy in POLICIES {
            let s = &record.suggestions;
            let lr = match policy {
                "slide" => s.slide,
                "minimum" => s.minimum,
                "valley" => s.valley,
                _ => Some(fixed),
            }
            .with_context(|| format!("seed {seed}: the finder gave no {policy} suggestion"))?;
            let dir = out.join(format!("{policy}-{epochs}-{seed}"));
            accuracies.push(train(&bin, &data, &dir, seed, &epochs, lr)?);
        }
        table.push((seed, record, accuracies));
    }
    print_table(&table, &epochs, fixed);
    Ok(())
}

/// Trains the quick recipe at `lr` into `dir` (unless a finished run is there) and
/// returns its last epoch's validation accuracy.
fn train(bin: &Path, data: &Path, dir: &Path, seed: u64, epochs: &str, lr: f64) -> Result<f64> {
    let metrics = RunDir::new(dir).metrics_json();
    let want = epochs.split(',').count();
    let done = |m: &Vec<EpochMetrics>| m.len() >= want;
    if let Ok(m) = read_json::<Vec<EpochMetrics>>(&metrics)
        && done(&m)
    {
        return Ok(m.last().map_or(0.0, |e| f64::from(e.accuracy)));
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let mut a = words(&format!(
        "train {NETWORK} --sizes 16,28 --epochs {epochs} --mixup 0.2 --lr {lr} --seed {seed}"
    ));
    a.extend(["--data".into(), data.display().to_string()]);
    a.extend(["--out".into(), dir.display().to_string()]);
    vista(bin, &a)?;
    let m: Vec<EpochMetrics> = read_json(&metrics)?;
    let last = m.last().context("the run trained no epoch")?;
    Ok(f64::from(last.accuracy))
}

/// Mean, sample standard deviation, minimum and maximum.
pub fn spread(xs: &[f64]) -> (f64, f64, f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    let min = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (mean, var.sqrt(), min, max)
}

fn print_table(table: &[(u64, LrFindRecord, Vec<f64>)], epochs: &str, fixed: f64) {
    let f = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.2e}"));
    println!("LR finder suggestions (ResNet-18/8, small stem, 16 px), by seed:\n");
    println!("| seed | valley | minimum/10 | slide |");
    println!("| --- | --- | --- | --- |");
    for (seed, r, _) in table {
        let s = &r.suggestions;
        println!(
            "| {seed} | {} | {} | {} |",
            f(s.valley),
            f(s.minimum),
            f(s.slide)
        );
    }
    println!(
        "\nvalidation accuracy of the quick recipe (16 → 28 px, epochs {epochs}, mixup 0.2) by policy:\n"
    );
    let seeds: Vec<String> = table.iter().map(|(s, _, _)| format!("seed {s}")).collect();
    println!("| policy | {} | mean | sd | range |", seeds.join(" | "));
    println!("| --- |{} --- | --- | --- |", " --- |".repeat(seeds.len()));
    for (i, policy) in POLICIES.iter().enumerate() {
        let accs: Vec<f64> = table.iter().map(|(_, _, a)| a[i]).collect();
        let (mean, sd, min, max) = spread(&accs);
        let cells: Vec<String> = accs.iter().map(|a| format!("{:.2}%", a * 100.0)).collect();
        let name = match *policy {
            "minimum" => "minimum/10".to_string(),
            "fixed" => format!("fixed {fixed:.0e}"),
            p => p.to_string(),
        };
        println!(
            "| {name} | {} | {:.2}% | {:.2} | {:.2} |",
            cells.join(" | "),
            mean * 100.0,
            sd * 100.0,
            (max - min) * 100.0
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_spread_is_mean_sample_sd_and_range() {
        let (mean, sd, min, max) = super::spread(&[0.90, 0.92, 0.94]);
        assert!((mean - 0.92).abs() < 1e-12);
        assert!((sd - 0.02).abs() < 1e-12);
        assert_eq!((min, max), (0.90, 0.94));
    }
}
