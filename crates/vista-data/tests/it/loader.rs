//! The batch loader: determinism, coverage, labels, sizes, tensors.

use std::sync::Arc;

use burn::backend::Flex;
use image::RgbImage;
use vista_data::{
    AugmentConfig, ImageStore, Images, Loader, LoaderConfig, Normalize, stratified_split,
};

fn images(n: usize) -> (Images, Arc<Vec<u32>>) {
    let imgs: Vec<RgbImage> = (0..n)
        .map(|i| {
            RgbImage::from_fn(20 + (i % 5) as u32, 18, |x, y| {
                image::Rgb([(x * 9 + i as u32) as u8, (y * 13) as u8, i as u8])
            })
        })
        .collect();
    let labels = (0..n).map(|i| (i % 3) as u32).collect();
    (Images::from(imgs), Arc::new(labels))
}

fn train_config(workers: usize) -> LoaderConfig {
    LoaderConfig {
        batch_size: 8,
        shuffle: true,
        augment: Some(AugmentConfig::default()),
        mixup_alpha: Some(0.4),
        workers,
        seed: 42,
        ..LoaderConfig::default()
    }
}

#[test]
fn images_spilled_past_the_memory_budget_give_the_same_batches() {
    let (imgs, labels) = images(37);
    let dir = tempfile::tempdir().unwrap();
    // Room for about a third of the images; the rest go to the spill file.
    let store = ImageStore::new(imgs.memory_bytes() / 3, dir.path());
    let spilled: Images = (imgs.iter())
        .map(|img| store.put(img.into_owned()).unwrap())
        .collect();
    assert!(spilled.spilled() > 20, "{}", spilled.spilled());
    let a = Loader::new(imgs, labels.clone(), (0..37).collect(), train_config(2));
    let b = Loader::new(spilled, labels, (0..37).collect(), train_config(2));
    for (x, y) in a.epoch(1, 16).zip(b.epoch(1, 16)) {
        assert_eq!(x.images, y.images);
        assert_eq!(x.labels, y.labels);
    }
}

#[test]
fn batches_do_not_depend_on_the_number_of_workers() {
    let (imgs, labels) = images(37);
    let one = Loader::new(
        imgs.clone(),
        labels.clone(),
        (0..37).collect(),
        train_config(1),
    );
    let three = Loader::new(imgs, labels, (0..37).collect(), train_config(3));
    let a: Vec<_> = one.epoch(2, 16).collect();
    let b: Vec<_> = three.epoch(2, 16).collect();
    assert_eq!(a, b);
    assert_eq!(a.len(), 5);
    let other_epoch: Vec<_> = one.epoch(3, 16).collect();
    assert_ne!(a, other_epoch, "each epoch reshuffles and redraws");
}

#[test]
fn every_item_comes_once_with_its_own_label() {
    let (imgs, labels) = images(37);
    let loader = Loader::new(imgs, labels.clone(), (0..37).collect(), train_config(2));
    let mut seen = Vec::new();
    for batch in loader.epoch(0, 12) {
        assert_eq!(batch.images.len(), batch.len() * 3 * 12 * 12);
        for (&i, &l) in batch.indices.iter().zip(&batch.labels) {
            assert_eq!(l, labels[i], "augmentation never changes a label");
        }
        let mix = batch.mix.as_ref().unwrap();
        assert!(mix.lambdas.iter().all(|l| (0.0..=1.0).contains(l)));
        seen.extend(batch.indices);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..37).collect::<Vec<_>>());
}

#[test]
fn size_can_change_between_epochs_and_drop_last_drops() {
    let (imgs, labels) = images(20);
    let cfg = LoaderConfig {
        batch_size: 8,
        drop_last: true,
        workers: 2,
        ..LoaderConfig::default()
    };
    let loader = Loader::new(imgs, labels, (0..20).collect(), cfg);
    assert_eq!(loader.len_batches(), 2);
    for size in [8u32, 24, 17] {
        let batches: Vec<_> = loader.epoch(0, size).collect();
        assert_eq!(batches.len(), 2);
        assert!(
            batches
                .iter()
                .all(|b| b.size == size as usize && b.len() == 8)
        );
    }
}

#[test]
fn an_epoch_dropped_early_stops_its_workers() {
    let (imgs, labels) = images(64);
    let loader = Loader::new(
        imgs,
        labels,
        (0..64).collect(),
        LoaderConfig {
            batch_size: 2,
            prefetch: 1,
            ..train_config(2)
        },
    );
    let first = loader.epoch(0, 32).next().unwrap();
    assert_eq!(first.len(), 2);
}

#[test]
fn batches_become_nchw_tensors() {
    let (imgs, labels) = images(10);
    let cfg = LoaderConfig {
        batch_size: 4,
        normalize: Normalize::IDENTITY,
        ..LoaderConfig::default()
    };
    let loader = Loader::new(imgs, labels, vec![0, 1, 2, 3], cfg);
    let batch = loader.epoch(0, 10).next().unwrap();
    let device = Default::default();
    let x = batch.images_tensor::<Flex>(&device);
    let y = batch.labels_tensor::<Flex>(&device);
    assert_eq!(x.dims(), [4, 3, 10, 10]);
    assert_eq!(
        y.into_data().convert::<i64>().to_vec::<i64>().unwrap(),
        vec![0, 1, 2, 0]
    );
    let max = x.max().into_scalar();
    assert!(max <= 1.0 && max > 0.0);
}

#[test]
fn normalization_uses_dataset_statistics() {
    let imgs: Vec<RgbImage> = (0..6u32)
        .map(|i| {
            RgbImage::from_fn(9, 9, |x, y| {
                image::Rgb([(x * 20 + i * 7) as u8, (y * 11) as u8, 200])
            })
        })
        .collect();
    let stats = vista_data::normalize_from_images(imgs.iter());
    let mut data = Vec::new();
    for img in &imgs {
        for c in 0..3 {
            data.extend(img.pixels().map(|p| f32::from(p.0[c]) / 255.0));
        }
    }
    stats.apply(&mut data, 9);
    // With their own statistics, the images' red values have mean 0 and variance 1.
    let red: Vec<f32> = data.chunks(81).step_by(3).flatten().copied().collect();
    let mean = red.iter().sum::<f32>() / red.len() as f32;
    let var = red.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / red.len() as f32;
    assert!(
        mean.abs() < 1e-4 && (var - 1.0).abs() < 1e-3,
        "mean {mean}, var {var}"
    );
    // A constant channel gets a floor on its std instead of a division by zero.
    assert!(stats.std[2] > 0.0 && data.iter().all(|v| v.is_finite()));
}

#[test]
fn stratified_split_keeps_class_shares_and_is_seeded() {
    let labels: Vec<u32> = (0..1000).map(|i| if i % 10 == 0 { 1 } else { 0 }).collect();
    let (train, valid) = stratified_split(&labels, 0.2, 7);
    assert_eq!(train.len() + valid.len(), 1000);
    assert_eq!(valid.iter().filter(|&&i| labels[i] == 1).count(), 20);
    assert_eq!(valid.iter().filter(|&&i| labels[i] == 0).count(), 180);
    assert_eq!(
        stratified_split(&labels, 0.2, 7),
        (train.clone(), valid.clone())
    );
    assert_ne!(stratified_split(&labels, 0.2, 8).1, valid);
}
