//! vista-schedule: learning-rate and momentum schedules as pure functions of the
//! training position, and the LR finder's bookkeeping and suggestions.
//!
//! Formulas follow fastai (`fastai/callback/schedule.py`): `sched_cos`,
//! `combined_cos`, `fit_one_cycle`, `fit_flat_cos`, `fit_sgdr`, and `LRFinder` with its
//! `valley`, `steep`, `minimum` and `slide` suggestions. No burn code lives here; the
//! training crate asks a [`Schedule`] for the rate of each step.
//!
//! ```
//! use vista_schedule::Schedule;
//!
//! let s = Schedule::one_cycle(1e-2);
//! let total = 100;
//! // Starts at lr_max / 25.
//! assert!((s.lr(0, total) - 1e-2 / 25.0).abs() < 1e-12);
//! // Peaks at lr_max after 25% of the steps.
//! assert!((s.lr(25, total) - 1e-2).abs() < 1e-12);
//! // Then anneals far below the start.
//! assert!(s.lr(total, total) < s.lr(0, total));
//! ```

#![warn(missing_docs)]

mod finder;
mod schedule;

pub use finder::{LrFindConfig, LrFinder, Suggestions, minimum, slide, steep, suggest, valley};
pub use schedule::{Schedule, sched_cos, sched_lin};
