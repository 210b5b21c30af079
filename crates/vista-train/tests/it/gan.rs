//! WGAN training on the small synthetic data with tiny networks: the critic learns
//! within its clipping bound, the run folder holds what it promises, the same seed gives
//! the same generator, and a resumed run matches an uninterrupted one.

use std::path::Path;

use burn::module::Module;
use burn::record::{BinFileRecorder, FullPrecisionSettings};
use vista_train::{GanConfig, RunOptions, TrainData, generate, load_gan, train_gan};

use crate::{B, synthetic};

type Inner = <B as burn::tensor::backend::AutodiffBackend>::InnerBackend;

fn config(epochs: usize) -> GanConfig {
    GanConfig {
        size: 32,
        noise: 8,
        features: 4,
        epochs,
        batch_size: 8,
        critic_steps: 2,
        lr: 1e-3,
        shards: 2,
        ..GanConfig::default()
    }
}

fn try_run(
    cfg: &GanConfig,
    data: &TrainData,
    dir: &Path,
    resume: bool,
) -> vista_train::Result<Vec<vista_train::GanEpoch>> {
    train_gan::<B>(
        cfg,
        data,
        dir,
        vec![Default::default()],
        &RunOptions {
            resume,
            observer: Default::default(),
        },
    )
}

fn run(cfg: &GanConfig, dir: &Path, resume: bool) {
    try_run(cfg, &synthetic(16, 9), dir, resume).unwrap();
}

/// The final generator's images for two of each class.
fn images(dir: &Path) -> Vec<Vec<f32>> {
    images_of(dir, &[0, 0, 1, 1, 2, 2])
}

fn images_of(dir: &Path, labels: &[u32]) -> Vec<Vec<f32>> {
    let device = Default::default();
    let gan = load_gan::<Inner>(dir, None, &device).unwrap();
    generate(&gan.generator, &gan.config, labels, 3, &device)
}

/// Every weight of a checkpoint's critic.
fn critic_weights(dir: &Path, epoch: usize) -> Vec<f32> {
    let device = burn::backend::flex::FlexDevice;
    let cfg: GanConfig =
        serde_json::from_slice(&std::fs::read(dir.join("gan.json")).unwrap()).unwrap();
    let critic = cfg
        .critic(3)
        .init::<Inner>(&device)
        .unwrap()
        .load_file(
            dir.join(format!("checkpoints/epoch-{epoch:04}/critic")),
            &BinFileRecorder::<FullPrecisionSettings>::new(),
            &device,
        )
        .unwrap();
    let mut w = Vec::new();
    for conv in critic.convs.iter().chain([&critic.out]) {
        w.extend(conv.weight.val().into_data().to_vec::<f32>().unwrap());
    }
    w
}

#[test]
fn the_critic_learns_within_its_clip_and_the_folder_holds_the_run() {
    let _serial = crate::serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    run(&config(2), dir, false);
    for f in [
        "gan.json",
        "classes.txt",
        "generator.bin",
        "losses.csv",
        "epochs.json",
        "gan_loss.png",
        "samples/epoch-0001.png",
        "samples/epoch-0002.png",
        "checkpoints/latest",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    // The synthetic images are coloured, so the GAN works in three channels.
    let cfg: GanConfig =
        serde_json::from_slice(&std::fs::read(dir.join("gan.json")).unwrap()).unwrap();
    assert_eq!(cfg.channels, Some(3));
    // 48 images, batches of 8: 6 critic steps and 3 generator steps per epoch.
    let csv = std::fs::read_to_string(dir.join("losses.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 6, "{csv}");
    let (first, second) = (critic_weights(dir, 1), critic_weights(dir, 2));
    assert_ne!(first, second, "the critic's weights did not move");
    let clip = GanConfig::default().clip;
    assert!(second.iter().all(|w| w.abs() <= clip + 1e-7));
    // At lr 1e-3 the clipped weights pile up at the bound: the critic is pushing.
    let at_bound = second.iter().filter(|w| w.abs() > 0.999 * clip).count();
    assert!(
        at_bound * 4 > second.len(),
        "{at_bound} of {}",
        second.len()
    );
    let epochs: Vec<vista_train::GanEpoch> =
        serde_json::from_slice(&std::fs::read(dir.join("epochs.json")).unwrap()).unwrap();
    assert!(epochs[1].wasserstein > 0.0, "{epochs:?}");
    // The generated images are in [0, 1] and depend on the class.
    let imgs = images(dir);
    assert!(imgs.iter().flatten().all(|v| (0.0..=1.0).contains(v)));
    assert_ne!(imgs[0], imgs[2]);
}

#[test]
fn same_seed_same_generator_and_a_resumed_run_matches() {
    let _serial = crate::serial();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    run(&config(2), &a, false);
    // One epoch, then resumed for a second.
    run(&config(1), &b, false);
    run(&config(2), &b, true);
    assert_eq!(images(&a), images(&b));
    // A damaged newest checkpoint (half its critic): the resume falls back to the one
    // before it, kept for that, and trains the last epoch again.
    let e = tmp.path().join("e");
    run(&config(2), &e, false);
    let critic = e.join("checkpoints/epoch-0002/critic.bin");
    let bytes = std::fs::read(&critic).unwrap();
    std::fs::write(&critic, &bytes[..bytes.len() / 2]).unwrap();
    run(&config(2), &e, true);
    assert_eq!(images(&a), images(&e));
    let c = tmp.path().join("c");
    run(
        &GanConfig {
            seed: 43,
            ..config(2)
        },
        &c,
        false,
    );
    assert_ne!(images(&a), images(&c));
    // Resuming with other settings, or starting over a run, is refused.
    let err = try_run(
        &GanConfig {
            features: 8,
            ..config(3)
        },
        &synthetic(16, 9),
        &a,
        true,
    )
    .unwrap_err();
    assert!(err.to_string().contains("differ"), "{err}");
    let err = try_run(&config(2), &synthetic(16, 9), &a, false).unwrap_err();
    assert!(matches!(err, vista_train::Error::RunExists { .. }), "{err}");
    // Resuming on other images is refused too.
    let err = try_run(&config(3), &synthetic(12, 9), &a, true).unwrap_err();
    assert!(
        matches!(err, vista_train::Error::ResumeDataDiffers { .. }),
        "{err}"
    );
    // Fewer batches than critic steps would never step the generator.
    let err = try_run(
        &GanConfig {
            critic_steps: 10,
            ..config(1)
        },
        &synthetic(16, 9),
        &tmp.path().join("d"),
        false,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("fewer than the 10 critic steps"),
        "{err}"
    );
}

#[test]
fn a_gan_on_white_images_learns_to_make_bright_ones() {
    let _serial = crate::serial();
    let tmp = tempfile::tempdir().unwrap();
    let white = image::RgbImage::from_pixel(8, 8, image::Rgb([255, 255, 255]));
    let data = vista_train::TrainData::new(
        vec![white; 64],
        (0..64).map(|i| i % 2).collect(),
        vista_data::ClassMap::new(vec!["a".into(), "b".into()]),
    );
    let cfg = GanConfig {
        epochs: 6,
        ..config(1)
    };
    try_run(&cfg, &data, tmp.path(), false).unwrap();
    let imgs = images_of(tmp.path(), &[0, 1, 0, 1]);
    let mean = imgs.iter().flatten().sum::<f32>() / imgs.iter().flatten().count() as f32;
    eprintln!("mean {mean}");
    assert!(mean > 0.8, "mean brightness {mean}");
}
