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
    accuracy: f64,
    #[serde(default)]
    tolerance: f64,
}

/// Compares the scores with `xtask/reproduce-expected.json` (per preset: a name, its
/// expected accuracy and the tolerance below it) and fails when one falls short.
pub(super) fn check_expectations(run: &Run<'_>) -> Result<()> {
    let path = root().join("xtask/reproduce-expected.json");
    let all: Expectations =
        vista_format::read_json(&path).with_context(|| format!("reading {}", path.display()))?;
    let Some(expected) = all.presets.get(run.preset.name) else {
        bail!(
            "{} has no expectations for the `{}` preset",
            path.display(),
            run.preset.name
        );
    };
    let mut failed = Vec::new();
    for (name, e) in expected {
        let (want, tol) = (e.accuracy, e.tolerance);
        let got = run.accuracy(name).map(|a| a.0);
        let ok = got.is_some_and(|g| g >= want - tol);
        eprintln!(
            "check {name}: {} against {} − {} {}",
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
