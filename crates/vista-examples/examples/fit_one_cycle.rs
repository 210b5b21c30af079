//! fastai's first recipe with vista's library: a small ResNet-18 trained from scratch on
//! 2,000 Fashion-MNIST images, at the rate the LR finder suggests, under one-cycle.
//!
//! `cargo run -p vista-examples --release --example fit_one_cycle`

use std::sync::Arc;

use burn::backend::{Autodiff, Flex};
use vista_data::{Loader, LoaderConfig, normalize_from_images, stratified_split};
use vista_examples::{PrintEpochs, cpu_shards, fashion_mnist_sample};
use vista_format::Observers;
use vista_models::{Arch, ModelConfig};
use vista_schedule::LrFindConfig;
use vista_train::{Learner, LearnerConfig};

type B = Autodiff<Flex>;

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let loaded = fashion_mnist_sample(dir.path(), 2000, 0)?;
    let classes = loaded.dataset.classes.len();
    let labels: Vec<u32> = loaded.dataset.train.iter().map(|s| s.label).collect();
    let (images, labels) = (loaded.train, Arc::new(labels));

    // fastai's `DataLoaders`: a seeded stratified 20% validation split, normalized
    // with the training images' own statistics, no augmentation for 28 px thumbnails.
    let seed = 42;
    let (train_items, valid_items) = stratified_split(&labels, 0.2, seed);
    let normalize = normalize_from_images(images.iter());
    let train_cfg = LoaderConfig::train(64, None, None, normalize, seed);
    let train = Loader::new(
        images.clone(),
        labels.clone(),
        train_items,
        train_cfg.clone(),
    );
    let valid = Loader::new(images, labels, valid_items, train_cfg.for_valid());

    // ResNet-18 at 1/8 width with the small stem (no 7x7 stride-2 for 28 px images).
    let model = ModelConfig {
        arch: Arch::Resnet18,
        num_classes: classes,
        width: 0.125,
        small_stem: true,
        ..ModelConfig::default()
    }
    .init_seeded::<B>(seed, &Default::default())?;
    let cfg = LearnerConfig {
        observer: Observers::new(PrintEpochs),
        ..LearnerConfig::new(classes)
    };
    let devices = vec![Default::default(); cpu_shards()];
    let mut learn = Learner::new(model, train, valid, cfg, devices);

    let finder = learn.lr_find(&LrFindConfig::default(), 28);
    let s = finder.suggestions();
    let lr = s.valley.unwrap_or(1e-3);
    println!("lr_find: valley {lr:.2e} (steep {:?})", s.steep);

    let metrics = learn.fit_one_cycle(3, lr, 28)?;
    let last = metrics.last().expect("three epochs");
    println!(
        "valid accuracy {:.3} after {} epochs",
        last.accuracy, last.epoch
    );
    // Ten classes: chance is 0.1; three epochs on 1,600 images reach well above 0.5.
    anyhow::ensure!(last.accuracy > 0.5, "the model did not learn: {last:?}");
    Ok(())
}
