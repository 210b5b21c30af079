//! The plan of a run: fine-tuning's frozen epochs, then one phase per stage of
//! progressive resizing, each with its size, epochs, rate and schedule.

use super::config::{ScheduleKind, TrainConfig};

/// A step of the plan: the frozen epochs of fine-tuning, or one resizing stage.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Phase {
    pub(crate) name: String,
    pub(crate) size: u32,
    pub(crate) epochs: usize,
    pub(crate) lr: Option<f64>,
    pub(crate) frozen: bool,
    pub(crate) discriminative: bool,
    pub(crate) schedule: ScheduleKind,
}

pub(crate) fn plan(cfg: &TrainConfig) -> Vec<Phase> {
    let mut phases = Vec::new();
    let fine_tune = cfg.pretrained.is_some();
    if fine_tune && cfg.freeze_epochs > 0 {
        let first = &cfg.stages[0];
        phases.push(Phase {
            name: "frozen".into(),
            size: first.size,
            epochs: cfg.freeze_epochs,
            lr: first.lr,
            frozen: true,
            discriminative: false,
            // fastai's fine_tune: fit_one_cycle(freeze_epochs, pct_start=0.99).
            schedule: ScheduleKind::OneCycle {
                pct_start: 0.99,
                div: 25.0,
                div_final: 1e5,
            },
        });
    }
    for s in &cfg.stages {
        phases.push(Phase {
            name: format!("{}px", s.size),
            size: s.size,
            epochs: s.epochs,
            lr: s.lr,
            frozen: false,
            discriminative: fine_tune,
            schedule: cfg.schedule.clone(),
        });
    }
    phases
}
