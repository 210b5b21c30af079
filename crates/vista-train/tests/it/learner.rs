//! The Learner's own behaviour: it learns, it is deterministic, lr_find restores.

use burn::module::Module;
use burn::record::{FullPrecisionSettings, Recorder};
use vista_schedule::{LrFindConfig, Schedule};
use vista_train::{FitSpec, Learner, LearnerConfig, OptimizerConfig};

use crate::{B, loaders, synthetic, tiny_model};

fn learner(
    mixup: Option<f32>,
    optimizer: OptimizerConfig,
) -> Learner<B, vista_models::AnyModel<B>> {
    // Tests run in parallel and burn's generator is global: `init_seeded` holds a lock.
    let model = tiny_model()
        .init_seeded::<B>(5, &Default::default())
        .unwrap();
    let data = synthetic(40, 3);
    let (train, valid) = loaders(&data, 16, mixup);
    let device = Default::default();
    Learner::new(
        model,
        train,
        valid,
        LearnerConfig {
            num_classes: 3,
            optimizer,
            label_smoothing: 0.1,
            seed: 11,
            observer: Default::default(),
            class_weights: None,
        },
        vec![device],
    )
}

fn fit(
    l: &mut Learner<B, vista_models::AnyModel<B>>,
    epochs: usize,
    lr: f64,
) -> Vec<vista_train::EpochMetrics> {
    let spec = FitSpec {
        phase: "16px".into(),
        epochs,
        size: 16,
        schedule: Schedule::one_cycle(lr),
        skip: 0,
    };
    l.fit(&spec, &mut |_, _| Ok(vista_train::Flow::Continue))
        .unwrap()
}

#[test]
fn one_cycle_with_adamw_and_mixup_learns_the_synthetic_classes() {
    let _serial = crate::serial();
    let mut l = learner(Some(0.4), OptimizerConfig::default());
    let (loss_before, acc_before) = l.evaluate(16);
    let m = fit(&mut l, 4, 1e-2);
    let last = m.last().unwrap();
    assert!(
        last.accuracy >= 0.9,
        "accuracy {} (before {acc_before})",
        last.accuracy
    );
    assert!(
        last.valid_loss < loss_before,
        "{} !< {loss_before}",
        last.valid_loss
    );
    assert_eq!(l.steps().len(), 4 * l.train_loader().len_batches());
    // The recorded rates follow the one-cycle schedule.
    let total = l.steps().len();
    assert!((l.steps()[0].lr - Schedule::one_cycle(1e-2).lr(0, total)).abs() < 1e-12);
}

#[test]
fn sgd_with_momentum_learns_too() {
    let _serial = crate::serial();
    let mut l = learner(None, OptimizerConfig::sgd());
    let m = fit(&mut l, 4, 0.1);
    assert!(m.last().unwrap().accuracy >= 0.9, "{:?}", m.last());
}

#[test]
fn the_same_seed_gives_the_same_metrics() {
    let _serial = crate::serial();
    let a = fit(&mut learner(Some(0.4), OptimizerConfig::default()), 2, 1e-2);
    let b = fit(&mut learner(Some(0.4), OptimizerConfig::default()), 2, 1e-2);
    let key = |m: &[vista_train::EpochMetrics]| {
        m.iter()
            .map(|e| (e.train_loss, e.valid_loss, e.accuracy))
            .collect::<Vec<_>>()
    };
    assert_eq!(key(&a), key(&b));
}

#[test]
fn lr_find_restores_weights_batch_norm_statistics_and_optimizer_state() {
    let _serial = crate::serial();
    let mut l = learner(None, OptimizerConfig::default());
    // One epoch first, so the optimizer has state to lose.
    fit(&mut l, 1, 1e-2);
    let recorder = burn::record::BinBytesRecorder::<FullPrecisionSettings>::new();
    let model_before = recorder
        .record(l.model().clone().into_record(), ())
        .unwrap();
    let (loss_before, _) = l.evaluate(16);
    let finder = l.lr_find(
        &LrFindConfig {
            num_it: 30,
            ..LrFindConfig::default()
        },
        16,
    );
    assert!(
        finder.lrs.len() >= 10,
        "the sweep ran ({} steps)",
        finder.lrs.len()
    );
    assert!(finder.lrs.windows(2).all(|w| w[1] > w[0]));
    let model_after = recorder
        .record(l.model().clone().into_record(), ())
        .unwrap();
    assert!(
        model_before == model_after,
        "weights or running statistics changed"
    );
    let (loss_after, _) = l.evaluate(16);
    assert_eq!(loss_before, loss_after);

    // The optimizer state came back too: the next epoch matches a learner that never
    // ran the finder.
    let mut twin = learner(None, OptimizerConfig::default());
    fit(&mut twin, 1, 1e-2);
    let a = fit(&mut l, 1, 1e-2);
    let b = fit(&mut twin, 1, 1e-2);
    assert_eq!(a[0].train_loss, b[0].train_loss);
    assert_eq!(a[0].valid_loss, b[0].valid_loss);
}

#[test]
fn frozen_body_keeps_its_weights_and_discriminative_rates_train_every_group() {
    let _serial = crate::serial();
    use vista_models::LayerGroups;
    let mut l = learner(None, OptimizerConfig::default());
    let conv1 = |l: &Learner<B, vista_models::AnyModel<B>>| match l.model() {
        vista_models::AnyModel::ResNet(m) => m.conv1.weight.val().into_data(),
        _ => unreachable!(),
    };
    let fc = |l: &Learner<B, vista_models::AnyModel<B>>| match l.model() {
        vista_models::AnyModel::ResNet(m) => m.fc.as_ref().unwrap().weight.val().into_data(),
        _ => unreachable!(),
    };
    let (body_before, head_before) = (conv1(&l), fc(&l));
    l.freeze();
    fit(&mut l, 1, 1e-2);
    assert_eq!(conv1(&l), body_before, "the frozen body moved");
    assert_ne!(fc(&l), head_before, "the head did not train");

    l.unfreeze();
    l.set_group_lrs(Some(vista_train::even_mults(
        0.01,
        l.model().layer_groups().len(),
    )));
    fit(&mut l, 1, 1e-2);
    assert_ne!(conv1(&l), body_before, "the unfrozen body did not train");
}

/// Records what the Learner reports, as a program embedding it would.
#[derive(Default)]
struct Recorded(std::sync::Mutex<Vec<String>>);

impl vista_format::Observer for Recorded {
    fn begin(&self, task: &str, len: u64) {
        self.0.lock().unwrap().push(format!("begin {task} {len}"));
    }
    fn step(&self, n: u64) {
        self.0.lock().unwrap().push(format!("step {n}"));
    }
    fn end(&self) {
        self.0.lock().unwrap().push("end".into());
    }
    fn epoch(&self, m: &vista_train::EpochMetrics) {
        self.0
            .lock()
            .unwrap()
            .push(format!("epoch {} {}", m.epoch, m.valid_loss));
    }
}

#[test]
fn an_observer_hears_every_step_and_epoch_in_order() {
    let _serial = crate::serial();
    let record = std::sync::Arc::new(Recorded::default());
    let mut l = learner(None, OptimizerConfig::default());
    l.set_observer(vista_format::Observers::shared(record.clone()));
    let m = fit(&mut l, 2, 1e-2);
    let (train, valid) = (
        l.train_loader().len_batches(),
        l.valid_loader().len_batches(),
    );
    let mut expected = Vec::new();
    for e in &m {
        expected.push(format!("begin 16px epoch {} {train}", e.epoch));
        expected.extend((0..train).map(|_| "step 1".to_string()));
        expected.push("end".into());
        expected.push(format!("begin valid {valid}"));
        expected.extend((0..valid).map(|_| "step 1".to_string()));
        expected.push("end".into());
        expected.push(format!("epoch {} {}", e.epoch, e.valid_loss));
    }
    assert_eq!(*record.0.lock().unwrap(), expected);
}

#[test]
fn fit_one_cycle_and_fine_tune_follow_fastais_schedules() {
    let _serial = crate::serial();
    let mut l = learner(None, OptimizerConfig::default());
    let per_epoch = l.train_loader().len_batches();
    let m = l.fit_one_cycle(1, 1e-2, 16).unwrap();
    assert_eq!((m.len(), m[0].phase.as_str()), (1, "16px"));
    assert!(
        (l.steps()[0].lr - 1e-2 / 25.0).abs() < 1e-12,
        "one-cycle starts at lr/25"
    );

    let m = l.fine_tune(2, 2e-3, 1, 16).unwrap();
    let phases: Vec<&str> = m.iter().map(|e| e.phase.as_str()).collect();
    assert_eq!(phases, ["frozen", "16px", "16px"]);
    assert_eq!(l.epochs_done(), 4);
    let steps = &l.steps()[per_epoch..];
    // Frozen: one-cycle at base_lr, warm-up over 99% of the steps from base_lr/25.
    assert!((steps[0].lr - 2e-3 / 25.0).abs() < 1e-12);
    assert!(steps[..per_epoch].windows(2).all(|w| w[1].lr > w[0].lr));
    // Unfrozen: half the rate, starting at a fifth of its peak, peaking at 30%.
    let unfrozen = &steps[per_epoch..];
    assert!((unfrozen[0].lr - 1e-3 / 5.0).abs() < 1e-12);
    let peak = unfrozen.iter().map(|s| s.lr).fold(0.0, f64::max);
    assert!((peak - 1e-3).abs() < 1e-4, "peak {peak}");
}

/// One-cycle moves AdamW's β1 (and SGD's momentum) 0.95 → 0.85 → 0.95 against the rate,
/// step by step, as fastai's does; a flat schedule keeps the configured value.
#[test]
fn one_cycle_moves_the_optimizers_momentum_step_by_step() {
    let _serial = crate::serial();
    for optimizer in [OptimizerConfig::default(), OptimizerConfig::sgd()] {
        let mut l = learner(None, optimizer.clone());
        let per_epoch = l.train_loader().len_batches();
        let epochs = 5;
        let total = per_epoch * epochs;
        let schedule = Schedule::one_cycle(1e-2);
        let spec = FitSpec {
            phase: "16px".into(),
            epochs,
            size: 16,
            schedule: schedule.clone(),
            skip: 0,
        };
        let mut seen = Vec::new();
        l.fit(&spec, &mut |l, _| {
            seen.push(l.optim().momentum().unwrap());
            Ok(vista_train::Flow::Continue)
        })
        .unwrap();
        // After epoch e the optimizer holds the momentum of its last step.
        for (e, got) in seen.iter().enumerate() {
            let want = schedule.momentum((e + 1) * per_epoch - 1, total).unwrap();
            assert!(
                (got - want).abs() < 1e-12,
                "{optimizer:?} epoch {e}: {got} != {want}"
            );
        }
        let lowest = seen.iter().cloned().fold(1.0, f64::min);
        assert!(
            lowest < 0.9 && seen[epochs - 1] > 0.94,
            "{optimizer:?}: {seen:?}"
        );
        // A flat schedule (no momentum of its own) returns to the configured value.
        let flat = FitSpec {
            schedule: Schedule::Constant { lr: 1e-3 },
            epochs: 1,
            ..spec
        };
        l.fit(&flat, &mut |_, _| Ok(vista_train::Flow::Continue))
            .unwrap();
        let configured = match optimizer {
            OptimizerConfig::AdamW { beta1, .. } => f64::from(beta1),
            OptimizerConfig::Sgd { momentum, .. } => momentum,
            OptimizerConfig::RmsProp { .. } => unreachable!(),
        };
        assert_eq!(l.optim().momentum(), Some(configured));
    }
}
