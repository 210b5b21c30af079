//! EfficientNet-Lite0 with its real ImageNet weights classifies real ImageNet photos.

use burn::backend::Flex;
use burn::tensor::{Tensor, TensorData};
use vista_models::{Arch, EfficientNetLiteConfig, ImportOptions, inspect, load_checkpoint};

use crate::repo;

type B = Flex;

/// foolbox's 20 labelled ImageNet samples (`imagenet_<i>_<label>.jpg`).
fn samples() -> Vec<(Vec<f32>, usize)> {
    let dir = repo().join("tests/data/imagenet-samples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "jpg"));
    files.sort();
    files
        .iter()
        .map(|p| {
            let label = p
                .file_stem()
                .unwrap()
                .to_str()
                .unwrap()
                .rsplit('_')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            // foolbox's own `samples()` resizes the whole image to 224x224, as here.
            let img = image::open(p).unwrap().to_rgb8();
            let img =
                image::imageops::resize(&img, 224, 224, image::imageops::FilterType::CatmullRom);
            let plane = 224 * 224;
            let mut chw = vec![0.0; 3 * plane];
            for (i, px) in img.pixels().enumerate() {
                for c in 0..3 {
                    // The preprocessing the Lite models were trained with: (x*255 - 127) / 128.
                    chw[c * plane + i] = (f32::from(px.0[c]) - 127.0) / 128.0;
                }
            }
            (chw, label)
        })
        .collect()
}

#[test]
fn real_imagenet_weights_classify_17_of_20_samples() {
    let device = Default::default();
    let path = repo().join("data/weights/efficientnet-lite0/efficientnet-lite0-57934424.pth");
    let model = EfficientNetLiteConfig::new().init::<B>(&device);
    let (model, report) = load_checkpoint(model, &path, &ImportOptions::default()).unwrap();
    assert!(report.not_loaded.is_empty());
    let samples = samples();
    assert_eq!(samples.len(), 20);
    let mut correct = 0;
    for chunk in samples.chunks(5) {
        let data: Vec<f32> = chunk.iter().flat_map(|(x, _)| x.iter().copied()).collect();
        let x =
            Tensor::<B, 4>::from_data(TensorData::new(data, [chunk.len(), 3, 224, 224]), &device);
        let pred = model
            .forward(x)
            .argmax(1)
            .into_data()
            .convert::<i64>()
            .to_vec::<i64>()
            .unwrap();
        correct += pred
            .iter()
            .zip(chunk)
            .filter(|(p, (_, l))| **p as usize == *l)
            .count();
    }
    eprintln!("EfficientNet-Lite0 top-1 on foolbox's ImageNet samples: {correct}/20");
    assert!(
        correct >= 17,
        "top-1 on foolbox's ImageNet samples: {correct}/20"
    );
}

#[test]
fn logits_match_pytorch() {
    let path = repo().join("data/weights/efficientnet-lite0/efficientnet-lite0-57934424.pth");
    let model = EfficientNetLiteConfig::new().init::<B>(&Default::default());
    let (model, _) = load_checkpoint(model, &path, &ImportOptions::default()).unwrap();
    let x = crate::input("efficientnet_lite0", [2, 3, 64, 64]);
    crate::assert_matches_pytorch(model.forward(x), "efficientnet_lite0.logits.f32");
}

#[test]
fn inspect_recognises_efficientnet_lite0() {
    let path = repo().join("data/weights/efficientnet-lite0/efficientnet-lite0-57934424.pth");
    let found = inspect(&path).unwrap();
    let guess = found.guess.as_ref().unwrap();
    assert_eq!(
        guess.to_string(),
        "EfficientNet-Lite0 (EfficientNet-PyTorch layout), 1000 classes"
    );
    let config = guess.model_config().unwrap();
    assert_eq!(
        (config.arch, config.num_classes),
        (Arch::EfficientnetLite0, 1000)
    );
    // Keys are shown as vista names them, strides or not.
    assert!(
        found
            .tensors
            .iter()
            .any(|t| t.key == "blocks.3.depthwise_conv.weight" && t.shape == [144, 1, 5, 5])
    );
}
