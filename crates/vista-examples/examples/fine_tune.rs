//! Transfer learning with vista's library, as fastai's `vision_learner` + `fine_tune`:
//! the bundled ImageNet EfficientNet-Lite0 (real weights, a PyTorch checkpoint) gets a
//! new head for Fashion-MNIST's ten classes, trains it with the body frozen, then
//! trains everything with discriminative rates.
//!
//! `cargo run -p vista-examples --release --example fine_tune`
//!
//! With `-- --random-init`, the same model from random weights trains as many epochs at
//! the same size and rate (one-cycle; a frozen random body would learn nothing), the
//! comparison the README reports.

use std::path::Path;
use std::sync::Arc;

use burn::backend::{Autodiff, Flex};
use vista_data::{Loader, LoaderConfig, stratified_split};
use vista_examples::{PrintEpochs, cpu_shards, fashion_mnist_sample};
use vista_format::Observers;
use vista_models::{Arch, ModelConfig};
use vista_train::{Learner, LearnerConfig};

type B = Autodiff<Flex>;

fn main() -> anyhow::Result<()> {
    let random_init = std::env::args().any(|a| a == "--random-init");
    let start = std::time::Instant::now();
    let weights = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/weights/efficientnet-lite0/efficientnet-lite0-57934424.pth");
    let dir = tempfile::tempdir()?;
    let loaded = fashion_mnist_sample(dir.path(), 1000, 0)?;
    let classes = loaded.dataset.classes.len();
    let labels: Vec<u32> = loaded.dataset.train.iter().map(|s| s.label).collect();
    let (images, labels) = (loaded.train, Arc::new(labels));

    // A pretrained model sees its inputs as it was trained on them: EfficientNet-Lite0
    // wants (255x - 127) / 128, not ImageNet's mean and deviation.
    let arch = Arch::EfficientnetLite0;
    let seed = 42;
    let (train_items, valid_items) = stratified_split(&labels, 0.2, seed);
    let train_cfg = LoaderConfig::train(32, None, None, arch.pretrained_normalize(), seed);
    let train = Loader::new(
        images.clone(),
        labels.clone(),
        train_items,
        train_cfg.clone(),
    );
    let valid = Loader::new(images, labels, valid_items, train_cfg.for_valid());

    let model = ModelConfig {
        arch,
        num_classes: classes,
        ..ModelConfig::default()
    }
    .init_seeded::<B>(seed, &Default::default())?;
    let model = if random_init {
        println!("random initial weights");
        model
    } else {
        let (model, report) = model.load_pretrained(&weights)?;
        println!(
            "loaded {} tensors from {}{}",
            report.loaded,
            weights.display(),
            if report.head_reinitialized {
                " (new head)"
            } else {
                ""
            }
        );
        model
    };
    let cfg = LearnerConfig {
        observer: Observers::new(PrintEpochs),
        ..LearnerConfig::new(classes)
    };
    let devices = vec![Default::default(); cpu_shards()];
    let mut learn = Learner::new(model, train, valid, cfg, devices);

    // fastai's `learn.fine_tune(1, 1e-2, freeze_epochs=2)`: two epochs training the new
    // head on the frozen body (cheap: no gradient through the body), then one epoch of
    // everything, at 64 px (the thumbnails are upscaled).
    let metrics = if random_init {
        learn.fit_one_cycle(3, 1e-2, 64)?
    } else {
        learn.fine_tune(1, 1e-2, 2, 64)?
    };
    let last = metrics.last().expect("three epochs");
    println!(
        "valid accuracy {:.3} in {:.1} s",
        last.accuracy,
        start.elapsed().as_secs_f32()
    );
    if random_init {
        return Ok(());
    }
    // Ten classes: chance is 0.1. ImageNet features transfer within two short epochs.
    anyhow::ensure!(last.accuracy > 0.5, "fine-tuning did not learn: {last:?}");
    Ok(())
}
