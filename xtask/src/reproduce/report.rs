//! The run's report, rendered from the artefacts the stages wrote, each read as its
//! `vista_format` type.

use std::process::Command;

use anyhow::Result;

use vista_format::{
    Consistency, DataSummary, EpochMetrics, GanEpoch, LrFindRecord, Manifest, Reason, RunDir,
    read_json,
};

use super::Run;
use super::stages::{STAGES, secs_of, stage_total};
use crate::report::Block;
use crate::util::root;

fn git_revision() -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or("unknown".into(), |o| {
            String::from_utf8_lossy(&o.stdout).trim().to_string()
        })
}

pub(super) fn pct(a: f64) -> String {
    format!("{:.2}%", 100.0 * a)
}

/// The per-epoch table of a trained model, from its `metrics.json`.
fn epochs_table(run: &RunDir) -> Option<Block> {
    let rows: Vec<EpochMetrics> = read_json(&run.metrics_json()).ok()?;
    Some(Block::Table {
        head: [
            "phase",
            "epoch",
            "size",
            "train loss",
            "valid loss",
            "accuracy",
            "img/s",
            "time",
        ]
        .map(String::from)
        .to_vec(),
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    r.phase.clone(),
                    r.epoch.to_string(),
                    r.size.to_string(),
                    format!("{:.4}", r.train_loss),
                    format!("{:.4}", r.valid_loss),
                    format!("{:.4}", r.accuracy),
                    format!("{:.0}", r.images_per_sec),
                    format!("{:.0} s", r.wall_s),
                ]
            })
            .collect(),
    })
}

pub(super) fn report(run: &Run<'_>, elapsed: f64) -> Result<Vec<Block>> {
    let o = run.o;
    let p = &run.preset;
    let mut doc = vec![Block::Title(
        "vista reproduce: the Intel Scene Classification recipe".into(),
    )];
    let acc = |name: &str| {
        run.accuracy(name).map_or(
            "not measured (no held-out labels)".to_string(),
            |(a, lo, hi)| format!("{} (95% CI {}–{})", pct(a), pct(lo), pct(hi)),
        )
    };
    doc.push(Block::Para(format!(
        "Ensemble test accuracy: **{}**. All stages took {:.0} s ({:.1} min) in all; this invocation {:.0} s.",
        acc("ensemble-vote"),
        stage_total(&o.out),
        stage_total(&o.out) / 60.0,
        elapsed
    )));
    doc.push(Block::Heading("Configuration".into()));
    doc.push(Block::List(vec![
        format!("data: `{}` (`{}`)", o.data, run.data.display()),
        format!("device: `{}`; preset: `{}`", o.device, p.name),
        format!("machine: {}", crate::util::machine()),
        format!("seed: {}; vista revision: `{}`", o.seed, git_revision()),
        format!(
            "held-out labels: {}",
            if run.scoring.labelled { "yes" } else { "none" }
        ),
    ]));
    let lr = run.lr().ok();
    let mut settings = Vec::new();
    for m in &p.models() {
        settings.push(vec![
            m.key.to_string(),
            m.title.to_string(),
            format!("`{}`", m.filled(lr, "models/a").join(" ")),
        ]);
    }
    doc.push(Block::Table {
        head: ["model", "what", "vista train settings"]
            .map(String::from)
            .to_vec(),
        rows: settings,
    });
    doc.push(Block::Para(format!(
        "Every model's full settings are in `models/<model>/config.json`. Ensemble members: {} with `{}` test-time augmentation, majority vote, ties broken at random (seed {}).",
        p.voters.join(", "),
        p.member_tta,
        o.seed
    )));

    doc.push(Block::Heading("Stages".into()));
    doc.push(Block::Table {
        head: ["stage", "what", "time"].map(String::from).to_vec(),
        rows: STAGES
            .iter()
            .map(|(s, what)| vec![s.to_string(), what.to_string(), secs_of(&o.out, s)])
            .collect(),
    });

    doc.push(Block::Heading("Ablation: what each trick bought".into()));
    let row =
        |what: &str, name: &str, how: &str| vec![what.to_string(), acc(name), how.to_string()];
    let (tta, member_tta) = (p.tta, p.member_tta);
    let mut rows = vec![
        row("baseline", "baseline-none", p.baseline.title),
        row("+ progressive resizing", "prog-none", p.prog.title),
    ];
    match &p.mixup {
        Some(quick) => rows.extend([
            row("+ mixup", "mixup-none", quick.title),
            row("model A: the same, trained longer", "a-none", p.a.title),
        ]),
        None => rows.push(row("+ mixup (model A)", "a-none", p.a.title)),
    }
    rows.extend([
        row(
            &format!("+ TTA ({tta})"),
            &format!("a-{tta}"),
            "model A, test-time augmentation",
        ),
        row(
            "A trained further (the control of the next two rows)",
            "a-more-none",
            p.more.title,
        ),
        row(
            "+ cleaning",
            "a-clean-none",
            "the same further training without the images A predicts wrongly with p > 0.9",
        ),
        row(
            "+ GAN images",
            "a-gan-none",
            &format!(
                "the same further training with {} generated images per real training image ({})",
                p.gan.extra_ratio, p.gan.title
            ),
        ),
        row(
            "+ ensemble (majority vote)",
            "ensemble-vote",
            &format!(
                "{}, {} TTA, ties broken at random",
                p.voters.join(" + "),
                member_tta
            ),
        ),
    ]);
    rows.push(row(
        "(mean of probabilities instead of a vote)",
        "ensemble-mean",
        "same members",
    ));
    let resnets = p.resnets();
    rows.push(row(
        "(vote of the ResNets, without B)",
        "ensemble-resnets-vote",
        &resnets.join(" + "),
    ));
    rows.push(row("(model B alone)", "b-none", p.b.title));
    doc.push(Block::Table {
        head: ["step", "test accuracy", "how"].map(String::from).to_vec(),
        rows,
    });
    let mut notes = p.notes.clone();
    if let Ok(flags) = read_json::<Manifest>(&run.clean().flags_json()) {
        notes.push(format!(
            "Cleaning flagged {} training images as likely mislabelled and {} as ambiguous (`clean/flags.csv`, contact sheets `clean/*.png`); the likely mislabelled were left out. No file was touched.{}",
            flags.of(Reason::LikelyMislabelled).count(),
            flags.of(Reason::Ambiguous).count(),
            against_control(run, "a-clean-none", "leaving them out")
                .map_or(String::new(), |v| format!(" {v}"))
        ));
    }
    if let Some(note) = gan_note(run) {
        notes.push(note);
    }
    notes.push(
        "Each row is measured on the same held-out images; the interval is Clopper–Pearson's."
            .into(),
    );
    doc.push(Block::List(notes));

    doc.push(Block::Heading("Data".into()));
    if let Some(data) = run.data_summary() {
        data_section(&data, &mut doc);
    }
    doc.push(Block::Para(format!(
        "Problems: `problems.csv`. Stage time: {}.",
        secs_of(&o.out, "1-data")
    )));
    doc.push(Block::Image {
        alt: "Augmentation samples (fastai aug_transforms defaults)".into(),
        src: "augmentations.png".into(),
    });

    doc.push(Block::Heading("LR finder".into()));
    if let Ok(record) = read_json::<LrFindRecord>(&run.lr_find().record()) {
        let s = record.suggestions;
        let f = |v: Option<f64>| v.map_or("–".into(), |x| format!("{x:.2e}"));
        let choice = run
            .lr_choice()
            .map_or_else(|e| format!("no rate: {e:#}"), |c| c.why);
        doc.push(Block::Para(format!(
            "Suggestions: valley {}, steep {}, minimum/10 {}, slide {}. The ResNets train at {choice}.",
            f(s.valley),
            f(s.steep),
            f(s.minimum),
            f(s.slide)
        )));
    }
    doc.push(Block::Image {
        alt: "Loss against learning rate".into(),
        src: run.rel(&run.lr_find().plot()),
    });

    gan_section(run, &mut doc);

    for m in &p.models() {
        doc.push(Block::Heading(format!("Model {}", m.title)));
        if let Some(t) = epochs_table(&run.model(m.key)) {
            doc.push(t);
        }
        doc.push(Block::Image {
            alt: format!("{}: training and validation loss", m.key),
            src: run.rel(&run.model(m.key).loss_png()),
        });
    }

    doc.push(Block::Heading("The ensemble on held-out images".into()));
    if let Ok(text) = std::fs::read_to_string(run.eval("ensemble-vote").evaluation_txt()) {
        doc.push(Block::Pre(text));
        doc.push(Block::Image {
            alt: "Confusion matrix of the ensemble".into(),
            src: run.rel(&run.eval("ensemble-vote").confusion_png()),
        });
        doc.push(Block::Image {
            // A vote's "probabilities" are vote shares, so its losses say little; the mean
            // of the same members ranks the images by a real loss.
            alt: "Top losses of the ensemble (mean of the members' probabilities)".into(),
            src: run.rel(&run.eval("ensemble-mean").top_losses_png()),
        });
    } else {
        doc.push(Block::Para(
            "No held-out labels: the ensemble is not scored.".into(),
        ));
    }
    doc.push(Block::Para(
        "Submission (Analytics Vidhya format, class ids): `submission.csv`.".into(),
    ));
    Ok(doc)
}

/// Whether a change to model A's further training helped, against the same further
/// training on the unchanged data, said plainly.
fn against_control(run: &Run<'_>, name: &str, change: &str) -> Option<String> {
    let (with, _, _) = run.accuracy(name)?;
    let (without, lo, hi) = run.accuracy("a-more-none")?;
    let verdict = if with > hi {
        "it helped: the accuracy lies above the control's interval"
    } else if with < lo {
        "it hurt: the accuracy lies below the control's interval"
    } else {
        "it did not help measurably: the accuracy lies inside the control's interval"
    };
    Some(format!(
        "With {change}, the further training gave {} against {} on the unchanged data, so {verdict}.",
        pct(with),
        pct(without)
    ))
}

/// Whether the GAN's images helped, said plainly under the ablation table.
fn gan_note(run: &Run<'_>) -> Option<String> {
    let c: Consistency = read_json(&run.synthetic().consistency()).ok()?;
    let consistency = c.overall;
    Some(format!(
        "GAN images: model A puts {} of them in their intended class.{}",
        pct(consistency),
        against_control(run, "a-gan-none", "them added").map_or(String::new(), |v| format!(" {v}"))
    ))
}

/// The GAN: its settings and curves, the last epoch's samples, class consistency.
fn gan_section(run: &Run<'_>, doc: &mut Vec<Block>) {
    let p = &run.preset;
    doc.push(Block::Heading("GAN-generated training images".into()));
    doc.push(Block::Para(format!(
        "A class-conditional Wasserstein GAN with the WGAN paper's recipe: weight clipping (0.01), RMSprop at 5e-5, 5 critic steps per generator step (fastai's `GANLearner.wgan` alternates them the same way). `vista gan train {}`. Stage time: {}.",
        p.gan.train.join(" "),
        secs_of(&run.o.out, "5-gan")
    )));
    if let Ok(rows) = read_json::<Vec<GanEpoch>>(&run.gan().epochs_json()) {
        doc.push(Block::Table {
            head: [
                "epoch",
                "Wasserstein estimate",
                "generator loss",
                "img/s",
                "time",
            ]
            .map(String::from)
            .to_vec(),
            rows: rows
                .iter()
                .map(|r| {
                    vec![
                        r.epoch.to_string(),
                        format!("{:.4}", r.wasserstein),
                        format!("{:.4}", r.gen_loss),
                        format!("{:.0}", r.images_per_sec),
                        format!("{:.0} s", r.wall_s),
                    ]
                })
                .collect(),
        });
        let gen_steps: usize = rows.iter().map(|r| r.gen_steps).sum();
        doc.push(Block::Para(format!(
            "{gen_steps} generator steps in all; the WGAN paper's samples come after many thousands. Early on, a weight-clipped critic is close to linear, and against a linear critic a generator does best with one image per class: rows of alike images in the grid below mean the GAN has not trained long enough."
        )));
        if let Some(last) = rows.last().map(|r| r.epoch) {
            doc.push(Block::Image {
                alt: format!("Generated images after epoch {last}, one class a row"),
                src: run.rel(&run.gan().sample_grid(last)),
            });
        }
    }
    doc.push(Block::Image {
        alt: "The critic's Wasserstein estimate and the generator's loss".into(),
        src: run.rel(&run.gan().loss_png()),
    });
    if let Ok(c) = read_json::<Consistency>(&run.synthetic().consistency()) {
        let rows = (c.per_class.iter())
            .map(|(class, share)| vec![class.clone(), pct(*share)])
            .collect();
        doc.push(Block::Para(format!(
            "Class consistency: of the {} images generated per class, model A (trained on real images only) puts {} in their intended class. FID is not reported: it needs the ImageNet Inception v3 weights of its definition, which are not available offline.",
            p.gan.per_class,
            pct(c.overall),
        )));
        doc.push(Block::Table {
            head: ["class", "consistency"].map(String::from).to_vec(),
            rows,
        });
    }
}

/// The dataset as `vista data check --json` summarized it.
fn data_section(data: &DataSummary, doc: &mut Vec<Block>) {
    doc.push(Block::List(vec![
        format!("dataset: `{}`", data.dataset.display()),
        format!("layout: {}", data.layout),
        format!("unlabelled images: {}", data.unlabelled),
        format!("image sizes (train): {}", data.image_sizes),
        format!(
            "decoded cache: {:.1} MB in memory",
            data.cache_bytes as f64 / 1e6
        ),
        format!(
            "problems: {}",
            match data.problems {
                0 => "none".to_string(),
                n => n.to_string(),
            }
        ),
    ]));
    let mut rows: Vec<Vec<String>> = (data.classes.iter())
        .map(|c| vec![c.class.clone(), c.train.to_string(), c.test.to_string()])
        .collect();
    rows.push(vec![
        "total".into(),
        data.train.to_string(),
        data.test.to_string(),
    ]);
    doc.push(Block::Table {
        head: ["class", "train", "test"].map(String::from).to_vec(),
        rows,
    });
}
