//! Layer groups partition the parameters; freezing stops gradients to the body.

use std::collections::HashSet;

use burn::backend::{Autodiff, Flex};
use burn::module::{ParamId, list_param_ids};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use vista_models::{
    EfficientNetLiteConfig, HeadKind, InceptionV3Config, LayerGroups, ResNetConfig, ResNetDepth,
};

type B = Autodiff<Flex>;

fn assert_partition(groups: &[Vec<ParamId>], all: Vec<ParamId>) {
    assert_eq!(groups.len(), 3);
    let flat: Vec<ParamId> = groups.iter().flatten().copied().collect();
    let set: HashSet<ParamId> = flat.iter().copied().collect();
    assert_eq!(set.len(), flat.len(), "groups overlap");
    assert_eq!(
        set,
        all.into_iter().collect::<HashSet<_>>(),
        "groups miss parameters"
    );
    assert!(groups.iter().all(|g| !g.is_empty()));
}

#[test]
fn groups_partition_every_model() {
    let device = Default::default();
    for head in [HeadKind::Linear, HeadKind::Fastai] {
        let m = ResNetConfig::new(ResNetDepth::R18, 4)
            .with_width(0.125)
            .with_head(head)
            .init::<B>(&device)
            .unwrap();
        assert_partition(&m.layer_groups(), list_param_ids(&m));
    }
    let m = EfficientNetLiteConfig::new()
        .with_num_classes(4)
        .init::<B>(&device);
    assert_partition(&m.layer_groups(), list_param_ids(&m));
    let m = InceptionV3Config::new(4)
        .with_width(0.0625)
        .with_aux_logits(true)
        .init::<B>(&device);
    assert_partition(&m.layer_groups(), list_param_ids(&m));
}

/// Ids of the parameters that received a gradient.
fn with_grad(
    model: &vista_models::ResNet<B>,
    grads: &mut <B as burn::tensor::backend::AutodiffBackend>::Gradients,
) -> HashSet<ParamId> {
    let got = GradientsParams::from_module(grads, model);
    list_param_ids(model)
        .into_iter()
        .filter(|id| {
            got.get::<Flex, 1>(*id).is_some()
                || got.get::<Flex, 2>(*id).is_some()
                || got.get::<Flex, 4>(*id).is_some()
        })
        .collect()
}

#[test]
fn a_frozen_body_gets_no_gradient_and_unfreezing_restores_it() {
    let device = Default::default();
    let config = ResNetConfig::new(ResNetDepth::R18, 3)
        .with_width(0.125)
        .with_small_stem(true)
        .with_head(HeadKind::Fastai);
    let model = config.init::<B>(&device).unwrap().freeze_body();
    let groups = model.layer_groups();
    let head: HashSet<ParamId> = groups[2].iter().copied().collect();
    let x = Tensor::<B, 4>::ones([2, 3, 16, 16], &device);
    let frozen = with_grad(&model, &mut model.forward(x.clone()).sum().backward());
    assert!(
        !frozen.is_empty() && frozen.is_subset(&head),
        "only the head trains while frozen"
    );

    let model = model.unfreeze();
    let all = with_grad(&model, &mut model.forward(x).sum().backward());
    assert!(
        groups[0].iter().any(|id| all.contains(id)),
        "the body trains again"
    );
    assert_eq!(all.intersection(&head).count(), frozen.len());
}

#[test]
fn every_body_takes_the_fastai_head() {
    let device = Default::default();
    let x = Tensor::<B, 4>::ones([2, 3, 80, 80], &device);
    let e = EfficientNetLiteConfig::new()
        .with_num_classes(5)
        .with_head(HeadKind::Fastai)
        .init::<B>(&device);
    assert!(e.fc.is_none() && e.head.is_some());
    assert_eq!(e.forward(x.clone()).dims(), [2, 5]);
    let i = InceptionV3Config::new(5)
        .with_width(0.0625)
        .with_head(HeadKind::Fastai)
        .init::<B>(&device);
    assert_eq!(i.forward(x.clone()).dims(), [2, 5]);
    // A pretrained body loads under a new fastai head: the checkpoint's `fc` is left out.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/weights/efficientnet-lite0/efficientnet-lite0-57934424.pth");
    let opts = vista_models::ImportOptions {
        new_head: true,
        ..Default::default()
    };
    let (e, report) = vista_models::load_checkpoint(e, &path, &opts).unwrap();
    assert!(report.head_reinitialized && report.not_loaded.is_empty());
    assert_eq!(e.forward(x).dims(), [2, 5]);
}
