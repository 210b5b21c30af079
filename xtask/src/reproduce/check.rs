//! `--check`: the scores against `xtask/reproduce-expected.json`.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::Run;
use super::report::pct;
use crate::util::root;

/// `xtask/reproduce-expected.json`: per preset, per scored predictions' name, the
/// accuracy expected and the tolerance below it.
#[derive(Debug, Deserialize)]
struct Expectations {
    #[serde(flatten)]
    presets: BTreeMap<String, BTreeMap<String, Expectation>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expectation {
    /// The mean of `seeds` where they are given.
    accuracy: f64,
    /// How far below `accuracy` a correct run may land: at least three standard
    /// deviations of `seeds`, and their whole range.
    #[serde(default)]
    tolerance: f64,
    /// The accuracy measured at each seed (`"1": 0.9301`), on the machine the README names.
    #[serde(default)]
    seeds: BTreeMap<String, f64>,
}

/// The expectations file, parsed.
fn expectations() -> Result<Expectations> {
    let path = root().join("xtask/reproduce-expected.json");
    vista_format::read_json(&path).with_context(|| format!("reading {}", path.display()))
}

/// Compares the scores with `xtask/reproduce-expected.json` (per preset: a name, its
/// expected accuracy and the tolerance below it) and fails when one falls short.
pub(super) fn check_expectations(run: &Run<'_>) -> Result<()> {
    let all = expectations()?;
    let Some(expected) = all.presets.get(run.preset.name) else {
        bail!(
            "xtask/reproduce-expected.json has no expectations for the `{}` preset",
            run.preset.name
        );
    };
    let mut failed = Vec::new();
    for (name, e) in expected {
        let (want, tol) = (e.accuracy, e.tolerance);
        let got = run.accuracy(name).map(|a| a.0);
        let ok = got.is_some_and(|g| g >= want - tol);
        let basis = match e.seeds.len() {
            0 | 1 => String::new(),
            n => format!(" (mean and spread of {n} seeds)"),
        };
        eprintln!(
            "check {name}: {} against {} − {}{basis} {}",
            got.map_or("not measured".into(), pct),
            pct(want),
            pct(tol),
            if ok { "ok" } else { "FAILED" }
        );
        if !ok {
            failed.push(name.clone());
        }
    }
    if !failed.is_empty() {
        bail!("below expectations: {}", failed.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::bench_lr::spread;

    #[test]
    fn expectations_measured_over_seeds_carry_their_spread() {
        let all = super::expectations().unwrap();
        let mut with_seeds = 0;
        for (preset, expected) in &all.presets {
            for (name, e) in expected {
                if e.seeds.len() < 2 {
                    continue;
                }
                with_seeds += 1;
                let xs: Vec<f64> = e.seeds.values().copied().collect();
                let (mean, sd, min, _) = spread(&xs);
                assert!(
                    (e.accuracy - mean).abs() < 5e-4,
                    "{preset} {name}: {} is not the mean of its seeds, {mean:.4}",
                    e.accuracy
                );
                let need = (3.0 * sd).max(mean - min);
                assert!(
                    e.tolerance + 1e-9 >= need,
                    "{preset} {name}: tolerance {} is below its seeds' spread ({need:.4})",
                    e.tolerance
                );
            }
        }
        assert!(with_seeds > 0, "no expectation lists its seeds");
    }
}
