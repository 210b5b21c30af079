//! vista-schedule: learning-rate and momentum schedules as pure functions of the
//! training position, and the LR finder's bookkeeping and suggestions.
//!
//! Formulas follow fastai (`fastai/callback/schedule.py`): `sched_cos`,
//! `combined_cos`, `fit_one_cycle`, `fit_flat_cos`, `fit_sgdr`, and `LRFinder` with its
//! `valley`, `steep`, `minimum` and `slide` suggestions. No burn code lives here; the
//! training crate asks a [`Schedule`] for the rate of each step.

mod finder;
mod schedule;

pub use finder::{LrFindConfig, LrFinder, Suggestions, minimum, slide, steep, suggest, valley};
pub use schedule::{Schedule, sched_cos, sched_lin};
