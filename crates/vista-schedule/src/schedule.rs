//! Schedules: learning rate (and momentum or Adam's β1) at a position of training.

use serde::{Deserialize, Serialize};

/// fastai's `sched_cos`: from `start` at `pos = 0` to `end` at `pos = 1`, half a cosine.
pub fn sched_cos(start: f64, end: f64, pos: f64) -> f64 {
    start + (1.0 + (std::f64::consts::PI * (1.0 - pos)).cos()) * (end - start) / 2.0
}

/// fastai's `sched_lin`.
pub fn sched_lin(start: f64, end: f64, pos: f64) -> f64 {
    start + pos * (end - start)
}

/// fastai's `combined_cos(pct, start, middle, end)` at `pos`.
fn combined_cos(pct: f64, start: f64, middle: f64, end: f64, pos: f64) -> f64 {
    if pct > 0.0 && pos < pct {
        sched_cos(start, middle, pos / pct)
    } else if pct >= 1.0 {
        middle
    } else {
        sched_cos(middle, end, (pos - pct) / (1.0 - pct))
    }
}

/// A learning-rate schedule over `total` steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// fastai's `fit_one_cycle`: cosine warm-up from `lr_max / div` to `lr_max` over
    /// `pct_start` of training, then cosine down to `lr_max / div_final`; momentum
    /// 0.95 → 0.85 → 0.95 alongside. Defaults: div 25, div_final 1e5, pct_start 0.25.
    OneCycle {
        /// Peak learning rate, reached at `pct_start` of training.
        lr_max: f64,
        /// Divisor giving the starting rate, `lr_max / div`.
        div: f64,
        /// Divisor giving the final rate, `lr_max / div_final`.
        div_final: f64,
        /// Share of training (0..1) spent warming up to `lr_max`.
        pct_start: f64,
        /// Momentum (or Adam's β1) at the start, at the peak and at the end.
        moms: (f64, f64, f64),
    },
    /// Cosine annealing from `lr_max` to `lr_min`.
    Cosine {
        /// Learning rate at the first step.
        lr_max: f64,
        /// Learning rate at the end of training.
        lr_min: f64,
    },
    /// SGDR (Loshchilov and Hutter 2017): cosine from `lr_max` to `lr_min` in cycles of
    /// `cycle_len` steps, each `cycle_mult` times longer than the last, restarting at
    /// `lr_max`.
    Sgdr {
        /// Learning rate at the start of each cycle.
        lr_max: f64,
        /// Learning rate at the end of each cycle.
        lr_min: f64,
        /// Length of the first cycle, in steps (at least one).
        cycle_len: usize,
        /// Factor by which each cycle is longer than the last (values below 1 count as 1).
        cycle_mult: f64,
    },
    /// fastai's `fit_flat_cos`: flat at `lr` for `pct_start` (0.75), then cosine to
    /// `lr / div_final`.
    FlatCos {
        /// Learning rate of the flat part.
        lr: f64,
        /// Share of training (0..1) spent at the flat rate before the cosine decay.
        pct_start: f64,
        /// Divisor giving the final rate, `lr / div_final`.
        div_final: f64,
    },
    /// Linear warm-up from 0 to `lr` over `warmup` steps, then constant.
    Warmup {
        /// Learning rate reached at the end of the warm-up and kept afterwards.
        lr: f64,
        /// Length of the warm-up, in steps (0 means no warm-up).
        warmup: usize,
    },
    /// The same learning rate at every step.
    Constant {
        /// Learning rate used throughout training.
        lr: f64,
    },
}

impl Schedule {
    /// One-cycle with fastai's defaults.
    pub fn one_cycle(lr_max: f64) -> Self {
        Schedule::OneCycle {
            lr_max,
            div: 25.0,
            div_final: 1e5,
            pct_start: 0.25,
            moms: (0.95, 0.85, 0.95),
        }
    }

    /// Flat-cos with fastai's defaults.
    pub fn flat_cos(lr: f64) -> Self {
        Schedule::FlatCos {
            lr,
            pct_start: 0.75,
            div_final: 1e5,
        }
    }

    /// Learning rate at step `step` of `total` (fastai's position `step / total`).
    pub fn lr(&self, step: usize, total: usize) -> f64 {
        let pos = position(step, total);
        match *self {
            Schedule::OneCycle {
                lr_max,
                div,
                div_final,
                pct_start,
                ..
            } => combined_cos(pct_start, lr_max / div, lr_max, lr_max / div_final, pos),
            Schedule::Cosine { lr_max, lr_min } => sched_cos(lr_max, lr_min, pos),
            Schedule::Sgdr {
                lr_max,
                lr_min,
                cycle_len,
                cycle_mult,
            } => {
                let (start, len) = sgdr_cycle(step, cycle_len, cycle_mult);
                sched_cos(lr_max, lr_min, (step - start) as f64 / len as f64)
            }
            Schedule::FlatCos {
                lr,
                pct_start,
                div_final,
            } => combined_cos(pct_start, lr, lr, lr / div_final, pos),
            Schedule::Warmup { lr, warmup } => {
                if warmup == 0 || step >= warmup {
                    lr
                } else {
                    sched_lin(0.0, lr, step as f64 / warmup as f64)
                }
            }
            Schedule::Constant { lr } => lr,
        }
    }

    /// Momentum (or Adam's β1) at `step`, for schedules that move it (one-cycle).
    pub fn momentum(&self, step: usize, total: usize) -> Option<f64> {
        let pos = position(step, total);
        match *self {
            Schedule::OneCycle {
                pct_start,
                moms: (a, b, c),
                ..
            } => Some(combined_cos(pct_start, a, b, c, pos)),
            _ => None,
        }
    }

    /// The smallest and largest learning rate the schedule can give.
    pub fn bounds(&self) -> (f64, f64) {
        match *self {
            Schedule::OneCycle {
                lr_max,
                div,
                div_final,
                ..
            } => ((lr_max / div).min(lr_max / div_final), lr_max),
            Schedule::Cosine { lr_max, lr_min } | Schedule::Sgdr { lr_max, lr_min, .. } => {
                (lr_min.min(lr_max), lr_max.max(lr_min))
            }
            Schedule::FlatCos { lr, div_final, .. } => (lr / div_final, lr),
            Schedule::Warmup { lr, .. } => (0.0, lr),
            Schedule::Constant { lr } => (lr, lr),
        }
    }

    /// Steps at which SGDR restarts, below `total`.
    pub fn restarts(&self, total: usize) -> Vec<usize> {
        let Schedule::Sgdr {
            cycle_len,
            cycle_mult,
            ..
        } = *self
        else {
            return Vec::new();
        };
        sgdr_cycles(cycle_len, cycle_mult)
            .map(|(start, _)| start)
            .take_while(|&s| s < total)
            .collect()
    }
}

/// fastai's position in training, `step / total`, within [0, 1].
fn position(step: usize, total: usize) -> f64 {
    if total == 0 {
        0.0
    } else {
        (step as f64 / total as f64).clamp(0.0, 1.0)
    }
}

/// SGDR's cycles as (first step, length): `cycle_len`, then each `cycle_mult` times the
/// last (rounded, at least one step).
fn sgdr_cycles(cycle_len: usize, cycle_mult: f64) -> impl Iterator<Item = (usize, usize)> {
    let mut next = (0usize, cycle_len.max(1) as f64);
    std::iter::from_fn(move || {
        let (start, len) = next;
        let n = len.round().max(1.0) as usize;
        next = (start + n, len * cycle_mult.max(1.0));
        Some((start, n))
    })
}

/// The SGDR cycle holding `step`: its first step and its length.
fn sgdr_cycle(step: usize, cycle_len: usize, cycle_mult: f64) -> (usize, usize) {
    sgdr_cycles(cycle_len, cycle_mult)
        .find(|&(start, n)| step < start + n)
        .expect("cycles cover every step")
}
