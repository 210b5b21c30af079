//! Integration tests of vista-train on small synthetic data and tiny models: the Learner
//! learns, the same seed gives the same run, the LR finder leaves the model as it found
//! it, data-parallel shards match one device, and a run folder holds what it promises.

mod gan;
mod learner;
mod parallel;
mod run;

use burn::backend::{Autodiff, Flex};
use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vista_data::{ClassMap, Loader, LoaderConfig};
use vista_models::{Arch, ModelConfig};
use vista_train::TrainData;

pub type B = Autodiff<Flex>;

/// Held by every training test here: some compare two runs value for value, and burn
/// keeps process-wide state (the backend's generator, which every seeding replaces;
/// batch norm's per-thread running statistics), so training tests do not overlap. A
/// vista process trains one model at a time.
pub static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Three easy classes of 16x16 images: horizontal stripes, vertical stripes, a bright
/// square; colours and phase vary.
pub fn synthetic(n_per_class: usize, seed: u64) -> TrainData {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for i in 0..n_per_class * 3 {
        let class = (i % 3) as u32;
        let phase = rng.random_range(0..4u32);
        let base: [u8; 3] = [
            rng.random_range(0..120),
            rng.random_range(0..120),
            rng.random_range(0..120),
        ];
        let img = RgbImage::from_fn(16, 16, |x, y| {
            let on = match class {
                0 => (y + phase) % 4 < 2,
                1 => (x + phase) % 4 < 2,
                _ => (4..12).contains(&x) && (4..12).contains(&y),
            };
            let v = |b: u8| if on { b.saturating_add(130) } else { b };
            Rgb([v(base[0]), v(base[1]), v(base[2])])
        });
        images.push(img);
        labels.push(class);
    }
    TrainData::new(
        images,
        labels,
        ClassMap::new(vec![
            "horizontal".into(),
            "vertical".into(),
            "square".into(),
        ]),
    )
}

pub fn tiny_model() -> ModelConfig {
    ModelConfig {
        arch: Arch::Resnet18,
        num_classes: 3,
        width: 0.0625,
        small_stem: true,
        fastai_head: false,
    }
}

pub fn loaders(data: &TrainData, batch_size: usize, mixup: Option<f32>) -> (Loader, Loader) {
    let n = data.labels.len();
    let (train, valid) = vista_data::stratified_split(&data.labels, 0.2, 1);
    assert!(train.len() + valid.len() == n);
    let cfg = LoaderConfig {
        batch_size,
        shuffle: true,
        drop_last: true,
        mixup_alpha: mixup,
        normalize: vista_data::normalize_from_images(data.images.iter()),
        workers: 1,
        seed: 7,
        ..LoaderConfig::default()
    };
    let train = Loader::new(data.images.clone(), data.labels.clone(), train, cfg.clone());
    let valid = Loader::new(
        data.images.clone(),
        data.labels.clone(),
        valid,
        LoaderConfig {
            shuffle: false,
            drop_last: false,
            mixup_alpha: None,
            ..cfg
        },
    );
    (train, valid)
}
