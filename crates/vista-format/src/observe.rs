//! How a long library call tells its caller what it is doing: an [`Observer`] hears of
//! each task's steps, each finished epoch and each note, and decides what to show. The
//! library crates never print; the `vista` binary's observer draws progress bars and the
//! epoch table, a program that embeds the Learner can log, collect or ignore the same
//! events ([`Quiet`] is the default).
//!
//! ```
//! use std::sync::Mutex;
//! use vista_format::{Observer, Observers};
//!
//! #[derive(Default)]
//! struct Log(Mutex<Vec<String>>);
//! impl Observer for Log {
//!     fn note(&self, text: &str) {
//!         self.0.lock().unwrap().push(text.to_string());
//!     }
//! }
//!
//! let log = std::sync::Arc::new(Log::default());
//! let observers = Observers::shared(log.clone());
//! {
//!     let task = observers.task("decoding", 2);
//!     task.step(2);
//! } // the task ends when its guard drops, also on an early return
//! observers.note("resuming from epoch 3");
//! assert_eq!(*log.0.lock().unwrap(), ["resuming from epoch 3"]);
//! ```

use std::fmt;
use std::sync::Arc;

use crate::{EpochMetrics, GanEpoch};

/// What a long-running call reports as it goes. Every method does nothing by default,
/// so an observer implements only what it shows. Calls may come from several threads
/// (images decode in parallel), hence `Send + Sync` and `&self`.
pub trait Observer: Send + Sync {
    /// A task of `len` steps starts: `"stage-1 epoch 2"`, `"valid"`, `"lr_find"`,
    /// `"decoding"`. Tasks do not nest: the previous one has ended.
    fn begin(&self, _task: &str, _len: u64) {}
    /// `n` more steps of the current task are done.
    fn step(&self, _n: u64) {}
    /// A short running status of the current task (`"loss 0.4123 · 1210 img/s"`).
    fn status(&self, _text: &str) {}
    /// The current task is over.
    fn end(&self) {}
    /// A training epoch finished, validated.
    fn epoch(&self, _metrics: &EpochMetrics) {}
    /// A GAN epoch finished.
    fn gan_epoch(&self, _metrics: &GanEpoch) {}
    /// Something the user would want to know (resumed from a checkpoint, the learning
    /// rate the finder picked, pretrained weights loaded).
    fn note(&self, _text: &str) {}
    /// Something went wrong and the call carried on (a damaged checkpoint was passed
    /// over for the spare).
    fn warn(&self, _text: &str) {}
}

/// The observer that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Observer for Quiet {}

/// A shared observer, as the option structs hold it: cheap to clone, [`Quiet`] by
/// default, and printable in `Debug` output.
#[derive(Clone)]
pub struct Observers(Arc<dyn Observer>);

impl Observers {
    /// Wraps `observer`.
    pub fn new(observer: impl Observer + 'static) -> Self {
        Self(Arc::new(observer))
    }

    /// Shares an observer the caller also keeps (to read what it collected).
    pub fn shared(observer: Arc<dyn Observer>) -> Self {
        Self(observer)
    }

    /// Starts a task of `len` steps; it ends when the returned guard drops.
    pub fn task(&self, name: &str, len: u64) -> Task<'_> {
        self.0.begin(name, len);
        Task(&*self.0)
    }
}

impl Default for Observers {
    fn default() -> Self {
        Self::new(Quiet)
    }
}

impl fmt::Debug for Observers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Observers")
    }
}

impl std::ops::Deref for Observers {
    type Target = dyn Observer;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

/// A running task: reports its steps and ends it when dropped.
pub struct Task<'a>(&'a dyn Observer);

impl Task<'_> {
    /// `n` more steps are done.
    pub fn step(&self, n: u64) {
        self.0.step(n);
    }

    /// The task's running status.
    pub fn status(&self, text: &str) {
        self.0.status(text);
    }
}

impl Drop for Task<'_> {
    fn drop(&mut self) {
        self.0.end();
    }
}

impl fmt::Debug for Task<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Task")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Record(Mutex<Vec<String>>);

    impl Observer for Record {
        fn begin(&self, task: &str, len: u64) {
            self.0.lock().unwrap().push(format!("begin {task} {len}"));
        }
        fn step(&self, n: u64) {
            self.0.lock().unwrap().push(format!("step {n}"));
        }
        fn end(&self) {
            self.0.lock().unwrap().push("end".into());
        }
    }

    #[test]
    fn a_task_ends_when_its_guard_drops_even_on_an_early_return() {
        let record = Arc::new(Record::default());
        let obs = Observers::shared(record.clone());
        let fails = |obs: &Observers| -> Result<(), ()> {
            let task = obs.task("fit", 3);
            task.step(1);
            Err(())?;
            task.step(2);
            Ok(())
        };
        assert!(fails(&obs).is_err());
        assert_eq!(*record.0.lock().unwrap(), ["begin fit 3", "step 1", "end"]);
    }

    #[test]
    fn the_default_observer_is_quiet() {
        let obs = Observers::default();
        obs.task("x", 1).step(1);
        obs.note("nothing happens");
        assert_eq!(format!("{obs:?}"), "Observers");
    }
}
