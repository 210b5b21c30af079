//! Stages cached in the run folder: a marker per finished stage, and the recipe that
//! made them, so a folder never mixes two recipes.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::options::Options;
use super::preset::preset;

/// Writes a file of the run folder through a temporary and a rename.
pub(super) fn write_file(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// A stage's completion marker: written last, atomically, so a killed stage reruns.
pub(super) fn done_marker(out: &Path, stage: &str) -> PathBuf {
    out.join("stages").join(format!("{stage}.done"))
}

/// A stage's marker: its name and how long it took. xtask writes and reads it.
#[derive(Debug, Serialize, Deserialize)]
struct StageMarker {
    stage: String,
    seconds: f64,
}

fn stage_seconds(out: &Path, stage: &str) -> Option<f64> {
    let marker: StageMarker = vista_format::read_json(&done_marker(out, stage)).ok()?;
    Some(marker.seconds)
}

/// A stage's time for people: `12 s`, or `not run`.
pub(super) fn secs_of(out: &Path, stage: &str) -> String {
    stage_seconds(out, stage).map_or("not run".into(), |s| format!("{s:.0} s"))
}

/// What decides the stages' results: the options and every model's settings.
/// Changes of the engine that change results with the same settings; a folder whose
/// stages ran before one is refused rather than mixed with new stages.
const ENGINE: &str = "2 (one-cycle moves AdamW's beta1 and SGD's momentum)";

fn recipe(o: &Options) -> String {
    let p = preset(o);
    let mut lines = vec![
        format!("engine {ENGINE}"),
        format!(
            "data {} smoke {} device {} seed {}",
            o.data, o.smoke, o.device, o.seed
        ),
        format!("lr-find {}", p.lr_find.join(" ")),
    ];
    for m in &p.models() {
        lines.push(format!("{} {}", m.key, m.args.join(" ")));
    }
    lines.push(format!(
        "gan {} per-class {}",
        p.gan.train.join(" "),
        p.gan.per_class
    ));
    lines.push(format!(
        "tta {} members {} voters {}",
        p.tta,
        p.member_tta,
        p.voters.join(",")
    ));
    lines.join("\n") + "\n"
}

/// Refuses to carry on stages that another recipe finished (an older vista's, or other
/// options): the report would mix them. A run folder records its recipe with its stages.
pub(super) fn check_recipe(o: &Options) -> Result<()> {
    let stages = o.out.join("stages");
    let path = stages.join("recipe.txt");
    let recipe = recipe(o);
    if std::fs::read_to_string(&path).is_ok_and(|r| r == recipe) {
        return Ok(());
    }
    let finished = std::fs::read_dir(&stages).map_or(0, |d| {
        d.filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "done"))
            .count()
    });
    if finished > 0 {
        bail!(
            "{} holds {finished} finished stages of another recipe (other options, or an older vista's settings); rerun with --fresh to redo them, or with --out for a new folder",
            o.out.display()
        );
    }
    write_file(&path, &recipe)
}

/// Runs `f` unless the stage finished before; records its duration.
pub(super) fn stage(out: &Path, name: &str, f: impl FnOnce() -> Result<()>) -> Result<()> {
    if done_marker(out, name).exists() {
        eprintln!("stage {name}: finished before, skipped (--fresh redoes it)");
        return Ok(());
    }
    eprintln!("\n=== stage {name}");
    let start = Instant::now();
    f().with_context(|| format!("stage {name}"))?;
    let secs = start.elapsed().as_secs_f64();
    eprintln!("=== stage {name}: {secs:.1} s");
    let marker = StageMarker {
        stage: name.to_string(),
        seconds: (secs * 10.0).round() / 10.0,
    };
    write_file(&done_marker(out, name), &serde_json::to_string(&marker)?)
}

pub(super) const STAGES: [(&str, &str); 13] = [
    ("1-data", "open, validate and look at the data"),
    ("2-lr-find", "LR finder"),
    ("3-model-a", "model A"),
    ("4-model-b", "model B"),
    (
        "5-prog",
        "ablation model: progressive resizing without mixup",
    ),
    ("5-baseline", "ablation model: the baseline"),
    (
        "5-mixup",
        "ablation model: progressive resizing and mixup at the ablation's length",
    ),
    ("5-more", "model A trained further on the unchanged data"),
    (
        "5-cleaning",
        "cleaning: flag with model A, train A further without them",
    ),
    (
        "5-gan",
        "GAN: train a WGAN, generate, train A further with the images",
    ),
    ("6-tta", "test-time augmentation"),
    ("7-ensemble", "ensembles"),
    ("8-submission", "submission"),
];

pub(super) fn stage_total(out: &Path) -> f64 {
    STAGES
        .iter()
        .filter_map(|(s, _)| stage_seconds(out, s))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::super::options::options;
    use super::*;

    #[test]
    fn stages_of_another_recipe_are_refused_until_fresh() {
        let out = std::env::temp_dir().join(format!("vista-recipe-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let out_arg = out.display().to_string();
        let cpu = options(&["--out", &out_arg]);
        check_recipe(&cpu).unwrap();
        write_file(&done_marker(&out, "1-data"), "{}").unwrap();
        check_recipe(&cpu).unwrap();
        let smoke = options(&["--out", &out_arg, "--smoke"]);
        let err = check_recipe(&smoke).unwrap_err().to_string();
        assert!(
            err.contains("another recipe") && err.contains("--fresh"),
            "{err}"
        );
        // A folder with no finished stage takes the new recipe.
        std::fs::remove_file(done_marker(&out, "1-data")).unwrap();
        check_recipe(&smoke).unwrap();
        assert!(check_recipe(&cpu).is_ok());
        std::fs::remove_dir_all(&out).unwrap();
    }
}
