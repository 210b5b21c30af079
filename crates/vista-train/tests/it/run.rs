//! Whole runs: the run folder's contents, prediction from it, resuming, and refusal to
//! overwrite a run.

use std::path::Path;

use vista_train::{RunOptions, StageConfig, TrainConfig, latest_checkpoint, load_run, train};

use crate::{B, synthetic, tiny_model};

fn config() -> TrainConfig {
    TrainConfig {
        model: tiny_model(),
        stages: vec![
            StageConfig {
                size: 12,
                epochs: 1,
                lr: None,
            },
            StageConfig {
                size: 16,
                epochs: 2,
                lr: Some(1e-2),
            },
        ],
        augment: None,
        batch_size: 16,
        valid_pct: 0.2,
        mixup: Some(0.4),
        label_smoothing: 0.1,
        lr_find: vista_schedule::LrFindConfig {
            num_it: 20,
            ..Default::default()
        },
        workers: 1,
        shards: 2,
        ..TrainConfig::default()
    }
}

fn csv(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("metrics.csv")).unwrap()
}

/// The columns a resumed run must reproduce: everything but the timings.
fn metrics_without_timing(dir: &Path) -> Vec<String> {
    csv(dir)
        .lines()
        .map(|l| l.split(',').take(8).collect::<Vec<_>>().join(","))
        .collect()
}

#[test]
fn a_run_folder_holds_config_metrics_plots_model_and_checkpoints() {
    let _serial = crate::serial();
    let data = synthetic(60, 4);
    let dir = tempfile::tempdir().unwrap();
    let out = train::<B>(
        &config(),
        &data,
        dir.path(),
        vec![Default::default()],
        &RunOptions::default(),
    )
    .unwrap();
    assert_eq!(out.metrics.len(), 3);
    assert_eq!(out.metrics[0].size, 12);
    assert_eq!(out.metrics[2].size, 16);
    assert!(out.lrs[0] > 0.0 && out.lrs[1] == 1e-2, "{:?}", out.lrs);
    // The folder is what this test is about; learning is checked in learner.rs.
    assert!(
        out.metrics[2].accuracy > out.metrics[0].accuracy && out.metrics[2].accuracy >= 0.6,
        "{:?}",
        out.metrics
    );
    for f in [
        "config.json",
        "classes.txt",
        "metrics.csv",
        "metrics.json",
        "loss.png",
        "lr.png",
        "lr_find_12px.png",
        "lr_find_12px.json",
        "model.bin",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
    assert_eq!(csv(dir.path()).lines().count(), 4);
    let latest = latest_checkpoint(dir.path()).unwrap().unwrap();
    assert!(latest.ends_with("epoch-0003"));
    // The saved model predicts as the trained one does.
    let run = load_run::<burn::backend::Flex>(dir.path(), &Default::default()).unwrap();
    assert_eq!(run.classes.classes, data.classes.classes);
    assert!(run.config.normalize.is_some());
    let again = train::<B>(
        &config(),
        &data,
        dir.path(),
        vec![Default::default()],
        &RunOptions::default(),
    );
    let err = again.unwrap_err();
    assert!(matches!(err, vista_train::Error::RunExists { .. }), "{err}");
}

#[test]
fn resuming_from_an_earlier_checkpoint_finishes_as_the_uninterrupted_run() {
    let _serial = crate::serial();
    let data = synthetic(30, 5);
    let full = tempfile::tempdir().unwrap();
    train::<B>(
        &config(),
        &data,
        full.path(),
        vec![Default::default()],
        &RunOptions::default(),
    )
    .unwrap();

    // A run that stopped after epoch 2: its folder as it was then.
    let cut = tempfile::tempdir().unwrap();
    for f in [
        "config.json",
        "classes.txt",
        "lr_find_12px.png",
        "lr_find_12px.json",
    ] {
        std::fs::copy(full.path().join(f), cut.path().join(f)).unwrap();
    }
    let ckpts = cut.path().join("checkpoints");
    std::fs::create_dir_all(ckpts.join("epoch-0002")).unwrap();
    for entry in std::fs::read_dir(full.path().join("checkpoints/epoch-0002")).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, ckpts.join("epoch-0002").join(p.file_name().unwrap())).unwrap();
    }
    std::fs::write(ckpts.join("latest"), "epoch-0002").unwrap();

    let opts = RunOptions {
        resume: true,
        observer: Default::default(),
    };
    let out = train::<B>(
        &config(),
        &data,
        cut.path(),
        vec![Default::default()],
        &opts,
    )
    .unwrap();
    assert_eq!(out.metrics.len(), 3);
    assert_eq!(
        metrics_without_timing(full.path()),
        metrics_without_timing(cut.path())
    );

    // Resuming with other settings is refused rather than mixing two runs.
    let other = TrainConfig {
        seed: 1,
        ..config()
    };
    let err = train::<B>(&other, &data, cut.path(), vec![Default::default()], &opts).unwrap_err();
    assert!(err.to_string().contains("differ"), "{err}");
}

#[test]
fn a_run_started_from_another_keeps_its_model_and_normalization() {
    let _serial = crate::serial();
    let source = tempfile::tempdir().unwrap();
    let one_stage = |epochs, lr| TrainConfig {
        stages: vec![StageConfig {
            size: 16,
            epochs,
            lr: Some(lr),
        }],
        mixup: None,
        ..config()
    };
    fn run(
        cfg: &TrainConfig,
        data: &vista_train::TrainData,
        dir: &Path,
    ) -> vista_train::Result<vista_train::Outcome<burn::backend::Flex>> {
        train::<B>(
            cfg,
            data,
            dir,
            vec![Default::default()],
            &RunOptions::default(),
        )
    }
    let trained = run(&one_stage(3, 1e-2), &synthetic(40, 4), source.path()).unwrap();
    assert!(trained.metrics[2].accuracy >= 0.8, "{:?}", trained.metrics);

    // Other images, at a rate too small to learn anything in one epoch: a fresh model
    // stays near chance, the one started from the trained run keeps what it learned.
    let data = synthetic(40, 9);
    let still = one_stage(1, 1e-7);
    let fresh = tempfile::tempdir().unwrap();
    let fresh_acc = run(&still, &data, fresh.path()).unwrap().metrics[0].accuracy;
    let cont = tempfile::tempdir().unwrap();
    let from = TrainConfig {
        init_from: Some(source.path().to_path_buf()),
        ..still.clone()
    };
    let cont_acc = run(&from, &data, cont.path()).unwrap().metrics[0].accuracy;
    assert!(
        cont_acc >= 0.8 && cont_acc > fresh_acc + 0.2,
        "started from the run {cont_acc}, fresh {fresh_acc}"
    );
    let normalize = |dir: &Path| {
        load_run::<burn::backend::Flex>(dir, &Default::default())
            .unwrap()
            .config
            .normalize
    };
    assert_eq!(normalize(cont.path()), normalize(source.path()));
    assert_ne!(normalize(fresh.path()), normalize(source.path()));

    // Another model, or pretrained weights besides, is refused with the reason.
    let mut other = from.clone();
    other.model.width = 0.125;
    let err = run(&other, &data, tempfile::tempdir().unwrap().path()).unwrap_err();
    assert!(
        matches!(&err, vista_train::Error::InitMismatch { path, .. } if path.ends_with("config.json")),
        "{err}"
    );
    let both = TrainConfig {
        pretrained: Some("w.pth".into()),
        ..from
    };
    assert!(matches!(
        both.validate(),
        Err(vista_train::Error::Invalid {
            setting: "init_from",
            ..
        })
    ));
}
