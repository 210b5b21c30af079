//! ResNets loaded from PyTorch checkpoints give PyTorch's logits.

use burn::backend::Flex;
use burn::tensor::Tensor;
use vista_models::{
    Arch, Error, ImportOptions, ResNetConfig, ResNetDepth, inspect, load_checkpoint,
};

use crate::{assert_matches_pytorch, fixtures, input};

type B = Flex;

/// Loads `file` into `config`'s model, runs the fixture input and compares the logits.
fn assert_parity(config: &ResNetConfig, file: &str, name: &str, shape: [usize; 4]) {
    let model = config.init::<B>(&Default::default()).unwrap();
    let (model, report) =
        load_checkpoint(model, &fixtures().join(file), &ImportOptions::default()).unwrap();
    assert!(report.not_loaded.is_empty() && !report.head_reinitialized);
    assert_matches_pytorch(
        model.forward(input(name, shape)),
        &format!("{name}.logits.f32"),
    );
}

#[test]
fn resnet18_zip_checkpoint_matches_pytorch() {
    let config = ResNetConfig::new(ResNetDepth::R18, 10).with_width(1.0 / 8.0);
    assert_parity(&config, "resnet18_w8.pth", "resnet18_w8", [2, 3, 64, 64]);
}

#[test]
fn resnet50_legacy_places_style_checkpoint_matches_pytorch() {
    // Legacy pickle format, `{'state_dict': {'module.conv1.weight': ...}}`, as Places365.
    let config = ResNetConfig::new(ResNetDepth::R50, 7).with_width(1.0 / 16.0);
    assert_parity(
        &config,
        "resnet50_w16_places.pth.tar",
        "resnet50_w16_places",
        [2, 3, 64, 64],
    );
}

#[test]
fn small_stem_safetensors_checkpoint_matches_pytorch() {
    let config = ResNetConfig::new(ResNetDepth::R18, 10)
        .with_width(1.0 / 8.0)
        .with_small_stem(true);
    assert_parity(
        &config,
        "resnet18_w8_small.safetensors",
        "resnet18_w8_small",
        [2, 3, 28, 28],
    );
}

#[test]
fn a_different_class_count_is_an_error_naming_the_head_unless_a_new_head_is_asked_for() {
    let device = Default::default();
    let path = fixtures().join("resnet18_w8.pth");
    let config = ResNetConfig::new(ResNetDepth::R18, 6).with_width(1.0 / 8.0);
    let err = load_checkpoint(
        config.init::<B>(&device).unwrap(),
        &path,
        &ImportOptions::default(),
    )
    .unwrap_err();
    let Error::Mismatch { mismatch, .. } = &err else {
        panic!("want a mismatch, got {err}")
    };
    let keys: Vec<&str> = mismatch.mis_shaped.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(keys, ["fc.bias", "fc.weight"], "{err}");
    assert!(
        err.to_string().contains("resnet18_w8.pth") && err.to_string().contains("fc.weight"),
        "{err}"
    );

    let opts = ImportOptions {
        new_head: true,
        ..Default::default()
    };
    let (model, report) =
        load_checkpoint(config.init::<B>(&device).unwrap(), &path, &opts).unwrap();
    assert!(report.head_reinitialized && report.not_loaded.is_empty());
    let x = Tensor::<B, 4>::zeros([1, 3, 32, 32], &device);
    assert_eq!(model.forward(x).dims(), [1, 6]);
}

#[test]
fn a_checkpoint_of_another_architecture_lists_missing_and_unexpected_keys() {
    let device = Default::default();
    let config = ResNetConfig::new(ResNetDepth::R34, 10).with_width(1.0 / 8.0);
    let path = fixtures().join("resnet50_w16_places.pth.tar");
    let err = load_checkpoint(
        config.init::<B>(&device).unwrap(),
        &path,
        &ImportOptions::default(),
    )
    .unwrap_err();
    let Error::Mismatch { mismatch, .. } = &err else {
        panic!("want a mismatch, got {err}")
    };
    assert!(
        mismatch
            .unexpected
            .iter()
            .any(|k| k == "layer1.0.conv3.weight"),
        "{err}"
    );
    assert!(!mismatch.mis_shaped.is_empty());
    // A partial load is possible when asked for, and reports the same keys.
    let opts = ImportOptions {
        allow_partial: true,
        ..Default::default()
    };
    let (_, report) = load_checkpoint(config.init::<B>(&device).unwrap(), &path, &opts).unwrap();
    assert_eq!(&report.not_loaded, mismatch);
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let device = Default::default();
    let model = ResNetConfig::new(ResNetDepth::R18, 2)
        .with_width(0.125)
        .init::<B>(&device)
        .unwrap();
    let err = load_checkpoint(
        model,
        &fixtures().join("nope.pth"),
        &ImportOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("nope.pth"), "{err}");
}

#[test]
fn inspect_names_the_architecture() {
    let found = inspect(&fixtures().join("resnet50_w16_places.pth.tar")).unwrap();
    let guess = found.guess.unwrap();
    let arch = guess.to_string();
    assert!(
        arch.starts_with("ResNet-50") && arch.contains("7 classes"),
        "{arch}"
    );
    // The guess is the model the file loads into.
    let config = guess.model_config().unwrap();
    assert_eq!(
        (
            config.arch,
            config.num_classes,
            config.width,
            config.small_stem
        ),
        (Arch::Resnet50, 7, 0.0625, false)
    );
    config
        .init::<B>(&Default::default())
        .unwrap()
        .load_weights(
            &fixtures().join("resnet50_w16_places.pth.tar"),
            &Default::default(),
        )
        .unwrap();
    assert!(
        found
            .tensors
            .iter()
            .any(|t| t.key == "layer1.0.downsample.conv.weight" && t.shape == [16, 4, 1, 1])
    );
    let inception = inspect(&fixtures().join("inception_v3_w16.pth"))
        .unwrap()
        .guess
        .unwrap();
    assert_eq!(
        inception.to_string(),
        "Inception v3 (torchvision layout), 10 classes, width x0.0625, without auxiliary head"
    );
    assert_eq!(inception.model_config().unwrap().arch, Arch::InceptionV3);
    let small = inspect(&fixtures().join("resnet18_w8_small.safetensors"))
        .unwrap()
        .guess
        .unwrap();
    assert!(small.to_string().contains("small-image stem"));
    let config = small.model_config().unwrap();
    assert_eq!((config.arch, config.small_stem), (Arch::Resnet18, true));
}

#[test]
fn inception_v3_torchvision_checkpoint_matches_pytorch() {
    let model = vista_models::InceptionV3Config::new(10)
        .with_width(1.0 / 16.0)
        .init::<B>(&Default::default());
    let path = fixtures().join("inception_v3_w16.pth");
    let (model, report) = load_checkpoint(model, &path, &ImportOptions::default()).unwrap();
    assert!(report.not_loaded.is_empty());
    let x = input("inception_v3_w16", [2, 3, 80, 80]);
    assert_matches_pytorch(model.forward(x), "inception_v3_w16.logits.f32");
}

#[test]
fn inception_v3_accepts_75_pixels_and_its_aux_head_299() {
    let device = Default::default();
    let small = vista_models::InceptionV3Config::new(3)
        .with_width(1.0 / 16.0)
        .init::<B>(&device);
    assert_eq!(
        small.forward(Tensor::zeros([1, 3, 75, 75], &device)).dims(),
        [1, 3]
    );
    let aux = vista_models::InceptionV3Config::new(3)
        .with_width(1.0 / 16.0)
        .with_aux_logits(true)
        .init::<B>(&device);
    let (main, aux) = aux.forward_aux(Tensor::zeros([1, 3, 299, 299], &device));
    assert_eq!((main.dims(), aux.map(|a| a.dims())), ([1, 3], Some([1, 3])));
}
