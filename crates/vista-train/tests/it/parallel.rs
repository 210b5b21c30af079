//! Data parallelism: two shards on two devices (here the CPU device twice, one thread
//! each) give the same training as one device.

use burn::module::{Module, ParamId, list_param_ids};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use vista_models::Classifier;
use vista_models::LayerGroups;
use vista_schedule::Schedule;
use vista_train::{FitSpec, Learner, LearnerConfig, OptimizerConfig};

use crate::{B, loaders, synthetic, tiny_model};

/// A classifier without batch norm, whose gradient over a batch is exactly the sum of
/// its shards' gradients (batch norm's statistics are per shard by design).
#[derive(Module, Debug)]
struct Plain<B: Backend> {
    conv: Conv2d<B>,
    fc: Linear<B>,
}

impl<B: Backend> Plain<B> {
    fn new(device: &B::Device) -> Self {
        Self {
            conv: Conv2dConfig::new([3, 8], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(device),
            fc: LinearConfig::new(8, 3).init(device),
        }
    }
}

impl<B: Backend> LayerGroups<B> for Plain<B> {
    fn layer_groups(&self) -> Vec<Vec<ParamId>> {
        vec![list_param_ids(&self.conv), list_param_ids(&self.fc)]
    }

    fn freeze_body(self) -> Self {
        Self {
            conv: vista_models::set_trainable(self.conv, false),
            ..self
        }
    }
}

impl<B: Backend> Classifier<B> for Plain<B> {
    fn logits(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let f = relu(self.conv.forward(x));
        let [n, c, _, _] = f.dims();
        self.fc.forward(f.mean_dim(3).mean_dim(2).reshape([n, c]))
    }
}

fn cfg() -> LearnerConfig {
    LearnerConfig {
        num_classes: 3,
        optimizer: OptimizerConfig::default(),
        label_smoothing: 0.0,
        seed: 3,
        observer: Default::default(),
        class_weights: None,
    }
}

fn spec() -> FitSpec {
    FitSpec {
        phase: "16px".into(),
        epochs: 2,
        size: 16,
        schedule: Schedule::one_cycle(1e-2),
        skip: 0,
    }
}

fn weights<M: Module<B>>(m: &M) -> Vec<f32> {
    let mut out = Vec::new();
    struct Collect<'a>(&'a mut Vec<f32>);
    impl<B: Backend> burn::module::ModuleVisitor<B> for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<B, D>>) {
            self.0.extend(
                p.val()
                    .into_data()
                    .convert::<f32>()
                    .into_vec::<f32>()
                    .unwrap(),
            );
        }
    }
    m.visit(&mut Collect(&mut out));
    out
}

#[test]
fn two_devices_train_as_one_device_does() {
    let _serial = crate::serial();
    let data = synthetic(20, 8);
    let device = Default::default();
    let init = Plain::<B>::new(&device);
    // burn initializes parameters lazily, per clone: reading them once fixes the values
    // every clone then shares.
    let w0 = weights(&init);
    let run = |devices: usize| {
        let (train, valid) = loaders(&data, 16, Some(0.4));
        let mut l = Learner::new(init.clone(), train, valid, cfg(), vec![device; devices]);
        let m = l
            .fit(&spec(), &mut |_, _| Ok(vista_train::Flow::Continue))
            .unwrap();
        (weights(l.model()), m)
    };
    let (w1, m1) = run(1);
    let (w2, m2) = run(2);
    let max_diff = w1
        .iter()
        .zip(&w2)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(max_diff < 1e-4, "weights differ by {max_diff}");
    for (a, b) in m1.iter().zip(&m2) {
        assert!((a.train_loss - b.train_loss).abs() < 1e-4, "{a:?} vs {b:?}");
        assert_eq!(a.accuracy, b.accuracy);
    }
    // And the weights did move: the comparison is not between two untouched models.
    assert!(w0.iter().zip(&w1).any(|(a, b)| (a - b).abs() > 1e-3));
}

#[test]
fn two_devices_train_a_resnet_with_batch_norm_to_the_same_accuracy() {
    let _serial = crate::serial();
    let data = synthetic(40, 9);
    let device = Default::default();
    let run = |devices: usize| {
        let model = tiny_model().init_seeded::<B>(4, &device).unwrap();
        let (train, valid) = loaders(&data, 16, None);
        let mut l = Learner::new(model, train, valid, cfg(), vec![device; devices]);
        let spec = FitSpec {
            epochs: 4,
            ..spec()
        };
        l.fit(&spec, &mut |_, _| Ok(vista_train::Flow::Continue))
            .unwrap()
            .pop()
            .unwrap()
    };
    // Batch norm normalizes each shard with its own statistics (as PyTorch's
    // DistributedDataParallel does), so the runs differ in detail but not in outcome.
    let (one, two) = (run(1), run(2));
    assert!(
        one.accuracy >= 0.85 && two.accuracy >= 0.85,
        "{one:?} vs {two:?}"
    );
}

#[test]
fn dropout_on_two_shards_repeats_exactly() {
    let _serial = crate::serial();
    // fastai's head has two dropout layers; two shards draw their masks on two threads
    // at once, each from its own seeded generator.
    let data = synthetic(40, 9);
    let device = Default::default();
    let run = || {
        let model = vista_models::ModelConfig {
            fastai_head: true,
            ..tiny_model()
        }
        .init_seeded::<B>(4, &device)
        .unwrap();
        let (train, valid) = loaders(&data, 16, None);
        let mut l = Learner::new(model, train, valid, cfg(), vec![device; 2]);
        l.fit(&spec(), &mut |_, _| Ok(vista_train::Flow::Continue))
            .unwrap()
    };
    let (a, b) = (run(), run());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((x.train_loss, x.valid_loss), (y.train_loss, y.valid_loss));
    }
}
