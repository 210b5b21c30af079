//! WGAN generator and critic: shapes, ranges, conditioning, no batch coupling, clipping.

use burn::backend::Flex;
use burn::module::Module;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use vista_models::{CriticConfig, GeneratorConfig, clip_weights};

type B = Flex;

#[test]
fn generator_makes_images_of_the_asked_size_in_tanh_range() {
    let device = Default::default();
    for size in [32, 64] {
        let g = GeneratorConfig::new(size)
            .with_features(8)
            .init::<B>(&device)
            .unwrap();
        let z = Tensor::<B, 2>::random([3, 100], Distribution::Normal(0.0, 1.0), &device);
        let x = g.forward(z, None);
        assert_eq!(x.dims(), [3, 3, size, size]);
        let v = x.into_data().to_vec::<f32>().unwrap();
        assert!(v.iter().all(|p| (-1.0..=1.0).contains(p)));
    }
    assert!(GeneratorConfig::new(48).init::<B>(&device).is_err());
}

#[test]
fn conditioning_on_the_class_changes_the_image() {
    let device = Default::default();
    let g = GeneratorConfig::new(32)
        .with_features(8)
        .with_num_classes(Some(5))
        .init::<B>(&device)
        .unwrap();
    let z = Tensor::<B, 2>::random([1, 100], Distribution::Normal(0.0, 1.0), &device);
    let a = g.forward(
        z.clone(),
        Some(Tensor::<B, 1, Int>::from_data(
            TensorData::from([1i64]),
            &device,
        )),
    );
    let b = g.forward(
        z,
        Some(Tensor::<B, 1, Int>::from_data(
            TensorData::from([3i64]),
            &device,
        )),
    );
    let diff = (a - b).abs().max().into_scalar();
    assert!(diff > 1e-4);
}

#[test]
fn the_critic_scores_each_image_alone() {
    let device = Default::default();
    let c = CriticConfig::new(32)
        .with_features(8)
        .with_num_classes(Some(4))
        .init::<B>(&device)
        .unwrap();
    let x = Tensor::<B, 4>::random([4, 3, 32, 32], Distribution::Uniform(-1.0, 1.0), &device);
    let labels = Tensor::<B, 1, Int>::from_data(TensorData::from([0i64, 1, 2, 3]), &device);
    let all = c.forward(x.clone(), Some(labels.clone()));
    assert_eq!(all.dims(), [4]);
    // No batch norm: the score of image 0 is the same alone as in the batch.
    let one = c.forward(x.narrow(0, 0, 1), Some(labels.narrow(0, 0, 1)));
    let (a, b) = (all.narrow(0, 0, 1).into_scalar(), one.into_scalar());
    assert!((a - b).abs() < 1e-5, "{a} vs {b}");
}

#[test]
fn clipping_bounds_every_weight() {
    let device = Default::default();
    let c = CriticConfig::new(64)
        .with_features(8)
        .init::<B>(&device)
        .unwrap();
    let c = clip_weights(c, 0.01);
    let mut max = 0.0f32;
    for conv in c.convs.iter().chain([&c.out]) {
        max = max.max(conv.weight.val().abs().max().into_scalar());
    }
    assert!(max <= 0.01 && max > 0.0);
    assert!(c.num_params() > 0);
}

#[test]
fn generator_and_critic_match_pytorch() {
    use vista_models::{ImportOptions, load_checkpoint};
    let device = Default::default();
    let dir = crate::fixtures();
    let g = GeneratorConfig::new(32)
        .with_noise(16)
        .with_features(8)
        .with_num_classes(Some(4))
        .with_embedding(6);
    let (g, _) = load_checkpoint(
        g.init::<B>(&device).unwrap(),
        &dir.join("gan_generator.pth"),
        &ImportOptions::default(),
    )
    .unwrap();
    let c = CriticConfig::new(32)
        .with_features(8)
        .with_num_classes(Some(4));
    let (c, _) = load_checkpoint(
        c.init::<B>(&device).unwrap(),
        &dir.join("gan_critic.pth"),
        &ImportOptions::default(),
    )
    .unwrap();
    let z = Tensor::<B, 2>::from_data(
        TensorData::new(crate::read_f32("gan.noise.f32"), [2, 16]),
        &device,
    );
    let y = Tensor::<B, 1, Int>::from_data(TensorData::from([1i64, 3]), &device);
    let images = g.forward(z, Some(y.clone()));
    let close = |got: Vec<f32>, want: Vec<f32>| {
        got.iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    };
    let worst = close(
        images.clone().into_data().to_vec().unwrap(),
        crate::read_f32("gan.images.f32"),
    );
    assert!(worst < 1e-4, "generator differs from PyTorch by {worst}");
    let worst = close(
        c.forward(images, Some(y)).into_data().to_vec().unwrap(),
        crate::read_f32("gan.scores.f32"),
    );
    assert!(worst < 1e-4, "critic differs from PyTorch by {worst}");
}
