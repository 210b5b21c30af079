//! `cargo xtask reproduce`: the article's competition run, end to end, as stages that
//! are cached in the run folder. A finished stage is skipped on rerun; a training stage
//! that was killed carries on from its last checkpoint (`vista train --resume`);
//! `--fresh` redoes everything.
//!
//! Stages: 1. open and validate the data; 2. LR finder; 3. model A, a ResNet with
//! progressive resizing, mixup and one-cycle; 4. model B, another family (Inception v3);
//! 5. the ablation models; model A trained further from its weights on the unchanged
//! data (the control), without the training images it flags as likely mislabelled
//! (cleaning), and with a WGAN's images added; 6. test-time augmentation; 7. the
//! majority-vote ensemble; 8. the submission and the scores on held-out labels. Then
//! `report.md` and `report.html`.

mod check;
mod options;
mod preset;
mod report;
mod stages;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use vista_format::{
    Checkpointed, CleanDir, DataSummary, EvalDir, Evaluation, GanDir, LrFindDir, LrFindRecord,
    PredictSummary, PreparedData, RunDir, SyntheticDir, read_json,
};

use self::options::{Options, parse};
use self::preset::{
    LrChoice, ModelSpec, Preset, SMOKE_TEST, SMOKE_TRAIN, cleaned_spec, gan_spec, preset,
    weights_line,
};
use self::stages::{check_recipe, stage, stage_total, write_file};
use crate::report::{html, markdown};
use crate::util::{build_vista, vista, vista_json, words};

/// How to get the images to score and their labels.
#[derive(Debug, Clone)]
struct Scoring {
    /// `vista predict` arguments choosing the split and the labels.
    args: Vec<String>,
    /// Whether the predictions carry labels.
    labelled: bool,
}

/// Held-out labels: a labelled test split (Kaggle's seg_test), else an
/// `answers/test_labels.csv` beside an Analytics Vidhya folder (the embedded data has
/// one), else none.
fn scoring(data: &Path, summary: &DataSummary) -> Scoring {
    let answers = data.join("answers/test_labels.csv");
    if summary.test > 0 {
        Scoring {
            args: words("--split test"),
            labelled: true,
        }
    } else if answers.exists() {
        Scoring {
            args: vec![
                "--split".into(),
                "unlabelled".into(),
                "--labels".into(),
                answers.display().to_string(),
            ],
            labelled: true,
        }
    } else {
        Scoring {
            args: words("--split unlabelled"),
            labelled: false,
        }
    }
}

/// A path as an argument of `vista`.
fn show(path: &Path) -> String {
    path.display().to_string()
}

/// Where the data stage keeps `vista data check --json`'s summary.
fn data_summary_path(out: &Path) -> PathBuf {
    out.join("data-check.json")
}

/// The run's state as the report and `--check` need it.
struct Run<'a> {
    o: &'a Options,
    bin: PathBuf,
    data: PathBuf,
    preset: Preset,
    scoring: Scoring,
}

impl Run<'_> {
    fn out(&self, rel: &str) -> PathBuf {
        self.o.out.join(rel)
    }

    fn s(&self, rel: &str) -> String {
        self.out(rel).display().to_string()
    }

    /// A path of the run folder as the report links it: relative to the folder.
    fn rel(&self, path: &Path) -> String {
        let rel = path.strip_prefix(&self.o.out).unwrap_or(path);
        rel.display().to_string()
    }

    /// The run folder of a trained model.
    fn model(&self, key: &str) -> RunDir {
        RunDir::new(self.out("models").join(key))
    }

    fn lr_find(&self) -> LrFindDir {
        LrFindDir::new(self.out("lr_find"))
    }

    /// The evaluation of one prediction file, `preds/<name>.csv`.
    fn eval(&self, name: &str) -> EvalDir {
        EvalDir::new(self.out("eval").join(name))
    }

    fn preds(&self, name: &str) -> String {
        self.s(&format!("preds/{name}.csv"))
    }

    fn clean(&self) -> CleanDir {
        CleanDir::new(self.out("clean"))
    }

    fn gan(&self) -> GanDir {
        GanDir::new(self.out("gan/run"))
    }

    fn synthetic(&self) -> SyntheticDir {
        SyntheticDir::new(self.out("gan/images"))
    }

    /// What `vista data check --json` found, saved by the data stage.
    fn data_summary(&self) -> Option<DataSummary> {
        read_json(&data_summary_path(&self.o.out)).ok()
    }

    /// The rate the ResNets train at, and why: the preset's [`preset::LrPolicy`] applied
    /// to the LR finder's record.
    fn lr_choice(&self) -> Result<LrChoice> {
        let path = self.lr_find().record();
        let record: LrFindRecord = read_json(&path)?;
        (self.preset.lr_policy)
            .choose(record.suggestions.minimum)
            .with_context(|| format!("{} has no minimum/10 suggestion", path.display()))
    }

    fn lr(&self) -> Result<f64> {
        self.lr_choice().map(|c| c.lr)
    }

    fn train(&self, m: &ModelSpec) -> Result<()> {
        let run = self.model(m.key);
        let dir = run.path();
        let lr = if m.args.iter().any(|a| a == "{lr}" || a == "{lr_fine}") {
            Some(self.lr()?)
        } else {
            None
        };
        let mut args = vec![
            "train".to_string(),
            "--data".into(),
            self.data.display().to_string(),
            "--out".into(),
            dir.display().to_string(),
            "--seed".into(),
            self.o.seed.to_string(),
            "--device".into(),
            self.o.device.clone(),
        ];
        args.extend(m.filled(lr, &self.model("a").path().display().to_string()));
        if run.latest().exists() {
            eprintln!("{}: carrying on from its last checkpoint", m.key);
            args.push("--resume".into());
        }
        vista(&self.bin, &args)?;
        self.predict(m.key, "none")
    }

    fn predict(&self, key: &str, tta: &str) -> Result<()> {
        let mut args = vec![
            "predict".to_string(),
            "--run".into(),
            self.model(key).path().display().to_string(),
            "--data".into(),
            self.data.display().to_string(),
            "--out".into(),
            self.preds(&format!("{key}-{tta}")),
            "--tta".into(),
            tta.into(),
            "--device".into(),
            self.o.device.clone(),
            "--on-bad-image".into(),
            "skip".into(),
        ];
        args.extend(self.scoring.args.iter().cloned());
        let summary: PredictSummary = vista_json(&self.bin, &args)?;
        if let Some(accuracy) = summary.accuracy {
            eprintln!("{key} ({tta} TTA): test accuracy {accuracy:.4}");
        }
        self.evaluate(&format!("{key}-{tta}"), false)
    }

    fn evaluate(&self, name: &str, pictures: bool) -> Result<()> {
        if !self.scoring.labelled {
            return Ok(());
        }
        let mut args = vec![
            "evaluate".to_string(),
            self.preds(name),
            "--out".into(),
            self.eval(name).path().display().to_string(),
        ];
        if pictures {
            args.extend(["--data".into(), self.data.display().to_string()]);
        }
        vista(&self.bin, &args)?;
        Ok(())
    }

    /// Accuracy and its 95% interval on held-out labels, when measured.
    fn accuracy(&self, name: &str) -> Option<(f64, f64, f64)> {
        let e: Evaluation = read_json(&self.eval(name).evaluation_json()).ok()?;
        Some((e.accuracy, e.accuracy_ci95.0, e.accuracy_ci95.1))
    }
}

pub fn run(args: &[String]) -> Result<()> {
    let o = parse(args)?;
    if o.fresh && o.out.exists() {
        // Only the run's own outputs go; the data it reads is elsewhere.
        for sub in [
            "stages", "models", "preds", "eval", "lr_find", "clean", "gan",
        ] {
            let p = o.out.join(sub);
            if p.exists() {
                std::fs::remove_dir_all(&p).with_context(|| format!("removing {}", p.display()))?;
            }
        }
    }
    std::fs::create_dir_all(&o.out).with_context(|| format!("creating {}", o.out.display()))?;
    if let Some(line) = weights_line(&o) {
        eprintln!("reproduce, article preset: {line}");
    }
    check_recipe(&o)?;
    let bin = match &o.vista {
        Some(bin) => bin.clone(),
        None => build_vista(o.profile, o.device.starts_with("cuda"))?,
    };
    let total = Instant::now();

    // The data: the embedded Fashion-MNIST (a small part of it for --smoke) or the user's.
    let data = if o.smoke {
        let dir = o.out.join(format!("data-{SMOKE_TRAIN}-{SMOKE_TEST}"));
        if !dir.join("train.csv").exists() {
            vista(
                &bin,
                &words(&format!(
                    "data prepare --quiet --out {} --train-limit {SMOKE_TRAIN} --test-limit {SMOKE_TEST}",
                    dir.display()
                )),
            )?;
        }
        dir
    } else if o.data == "embedded" {
        vista_json::<PreparedData>(&bin, &words("data prepare"))?.dataset
    } else {
        PathBuf::from(&o.data)
    };
    let data_arg = data.display().to_string();

    let check_data = || -> Result<DataSummary> {
        let summary: DataSummary = vista_json(
            &bin,
            &[
                "data".into(),
                "check".into(),
                data_arg.clone(),
                "--on-bad-image".into(),
                "skip".into(),
                "--report".into(),
                o.out.join("problems.csv").display().to_string(),
            ],
        )?;
        write_file(
            &data_summary_path(&o.out),
            &serde_json::to_string_pretty(&summary)?,
        )?;
        Ok(summary)
    };
    stage(&o.out, "1-data", || {
        check_data()?;
        vista(
            &bin,
            &[
                "data".into(),
                "show".into(),
                data_arg.clone(),
                "--augment".into(),
                "--on-bad-image".into(),
                "skip".into(),
                "--out".into(),
                o.out.join("augmentations.png").display().to_string(),
                "--seed".into(),
                o.seed.to_string(),
            ],
        )?;
        Ok(())
    })?;
    // A folder whose data stage an older xtask finished has no summary yet.
    let summary = match read_json(&data_summary_path(&o.out)) {
        Ok(summary) => summary,
        Err(_) => check_data()?,
    };
    let run = Run {
        o: &o,
        bin,
        data: data.clone(),
        preset: preset(&o),
        scoring: scoring(&data, &summary),
    };
    let p = &run.preset;

    stage(&o.out, "2-lr-find", || {
        let mut args = vec![
            "lr-find".to_string(),
            "--data".into(),
            data_arg.clone(),
            "--out".into(),
            show(run.lr_find().path()),
            "--seed".into(),
            o.seed.to_string(),
            "--device".into(),
            o.device.clone(),
        ];
        args.extend(p.lr_find.iter().cloned());
        vista(&run.bin, &args).map(drop)
    })?;
    stage(&o.out, "3-model-a", || run.train(&p.a))?;
    stage(&o.out, "4-model-b", || run.train(&p.b))?;
    stage(&o.out, "5-prog", || run.train(&p.prog))?;
    stage(&o.out, "5-baseline", || run.train(&p.baseline))?;
    if let Some(mixup) = &p.mixup {
        stage(&o.out, "5-mixup", || run.train(mixup))?;
    }
    stage(&o.out, "5-more", || run.train(&p.more))?;
    // The article's cleaning: model A judges its own training images; the likely
    // mislabelled ones (wrong with p > 0.9) are left out as A trains further.
    let cleaned = cleaned_spec(p, show(&run.clean().flags_json()));
    stage(&o.out, "5-cleaning", || {
        vista(
            &run.bin,
            &[
                "clean".into(),
                "detect".into(),
                "--data".into(),
                data_arg.clone(),
                "--out".into(),
                show(run.clean().path()),
                "--run".into(),
                show(run.model("a").path()),
                "--seed".into(),
                o.seed.to_string(),
                "--on-bad-image".into(),
                "skip".into(),
            ],
        )?;
        run.train(&cleaned)
    })?;
    // Generated training images: a WGAN on the training images, its images scored by
    // model A (class consistency) and added to the training images as A trains further.
    let with_gan = gan_spec(p, show(run.synthetic().path()));
    stage(&o.out, "5-gan", || {
        let mut args = vec![
            "gan".to_string(),
            "train".into(),
            "--data".into(),
            data_arg.clone(),
            "--out".into(),
            show(run.gan().path()),
            "--seed".into(),
            o.seed.to_string(),
            "--device".into(),
            o.device.clone(),
            "--on-bad-image".into(),
            "skip".into(),
        ];
        args.extend(p.gan.train.iter().cloned());
        if run.gan().latest().exists() {
            args.push("--resume".into());
        }
        vista(&run.bin, &args)?;
        let images = run.synthetic().path().to_path_buf();
        if images.exists() {
            // Left by a stage interrupted while retraining: sampling refuses an
            // existing folder, and it writes the same images again (the generator is
            // final and the noise seeded).
            std::fs::remove_dir_all(&images)
                .with_context(|| format!("removing {}", images.display()))?;
        }
        vista(
            &run.bin,
            &[
                "gan".into(),
                "sample".into(),
                "--run".into(),
                show(run.gan().path()),
                "--per-class".into(),
                p.gan.per_class.to_string(),
                "--out".into(),
                show(run.synthetic().path()),
                "--seed".into(),
                o.seed.to_string(),
                "--check-with".into(),
                show(run.model("a").path()),
                "--device".into(),
                o.device.clone(),
            ],
        )?;
        run.train(&with_gan)
    })?;
    stage(&o.out, "6-tta", || {
        let mut keys = vec![(p.a.key, p.tta)];
        keys.extend(p.voters.iter().map(|k| (*k, p.member_tta)));
        keys.sort_unstable();
        keys.dedup();
        for (key, tta) in keys.into_iter().filter(|(_, t)| *t != "none") {
            run.predict(key, tta)?;
        }
        Ok(())
    })?;
    stage(&o.out, "7-ensemble", || {
        let resnets = p.resnets();
        for (name, method, members) in [
            ("vote", "vote", &p.voters[..]),
            ("mean", "mean", &p.voters[..]),
            ("resnets-vote", "vote", &resnets[..]),
        ] {
            let mut args = vec!["ensemble".to_string()];
            args.extend(
                members
                    .iter()
                    .map(|k| run.preds(&format!("{k}-{}", p.member_tta))),
            );
            args.extend([
                "--method".into(),
                method.into(),
                "--seed".into(),
                o.seed.to_string(),
                "--out".into(),
                run.preds(&format!("ensemble-{name}")),
            ]);
            vista(&run.bin, &args)?;
            run.evaluate(&format!("ensemble-{name}"), name != "resnets-vote")?;
        }
        Ok(())
    })?;
    stage(&o.out, "8-submission", || {
        vista(
            &run.bin,
            &[
                "submit".into(),
                run.preds("ensemble-vote"),
                "--format".into(),
                "av".into(),
                "--out".into(),
                run.s("submission.csv"),
            ],
        )
        .map(drop)
    })?;
    let elapsed = total.elapsed().as_secs_f64();
    let doc = report::report(&run, elapsed)?;
    write_file(&o.out.join("report.md"), &markdown(&doc))?;
    write_file(&o.out.join("report.html"), &html(&doc))?;
    eprintln!(
        "reproduce: finished in {elapsed:.1} s this time ({:.1} s of stages in all); report at {}",
        stage_total(&o.out),
        o.out.join("report.html").display()
    );
    if o.check {
        check::check_expectations(&run)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_out_labels_come_from_a_labelled_test_split_or_answers() {
        let dir = std::env::temp_dir().join(format!("vista-xtask-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("answers")).unwrap();
        let summary = |train, test| DataSummary {
            dataset: dir.clone(),
            layout: "test".into(),
            classes: Vec::new(),
            train,
            valid: 0,
            test,
            unlabelled: 0,
            image_sizes: String::new(),
            problems: 0,
            cache_bytes: 0,
        };
        let kaggle = summary(14034, 3000);
        assert_eq!(scoring(&dir, &kaggle).args, words("--split test"));
        let av = summary(60000, 0);
        assert!(!scoring(&dir, &av).labelled);
        std::fs::write(dir.join("answers/test_labels.csv"), "image_name,label\n").unwrap();
        let s = scoring(&dir, &av);
        assert!(s.labelled && s.args.contains(&"--labels".to_string()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
