//! vista's schedules behind burn's `LrScheduler` trait, for code built on burn's own
//! training loop. burn's cosine and exponential schedulers reject learning rates above 1
//! and know nothing of one-cycle or SGDR; this adapter steps a [`Schedule`] instead.

use burn::lr_scheduler::LrScheduler;
use burn::optim::LearningRate;
use burn::tensor::backend::Backend;
use vista_schedule::Schedule;

/// A [`Schedule`] over `total` steps as a burn `LrScheduler`; its record is the step.
#[derive(Debug, Clone)]
pub struct ScheduledLr {
    /// The schedule that gives the learning rate at every step.
    pub schedule: Schedule,
    /// The number of steps the schedule spans; steps past it keep the last rate.
    pub total: usize,
    /// The next step to give the rate of, counted from 0.
    pub step: usize,
}

impl ScheduledLr {
    /// `schedule` over `total` steps, starting at its first step.
    pub fn new(schedule: Schedule, total: usize) -> Self {
        Self {
            schedule,
            total,
            step: 0,
        }
    }
}

impl LrScheduler for ScheduledLr {
    type Record<B: Backend> = usize;

    fn step(&mut self) -> LearningRate {
        let lr = self
            .schedule
            .lr(self.step.min(self.total.saturating_sub(1)), self.total);
        self.step += 1;
        lr
    }

    fn to_record<B: Backend>(&self) -> usize {
        self.step
    }

    fn load_record<B: Backend>(mut self, record: usize) -> Self {
        self.step = record;
        self
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;

    use super::*;

    #[test]
    fn steps_through_the_schedule_and_resumes_from_its_record() {
        let schedule = Schedule::one_cycle(3.0);
        let mut s = ScheduledLr::new(schedule.clone(), 10);
        let lrs: Vec<f64> = (0..10).map(|_| s.step()).collect();
        for (i, lr) in lrs.iter().enumerate() {
            assert!((lr - schedule.lr(i, 10)).abs() < 1e-12);
        }
        // Peaks above 1, which burn's cosine scheduler refuses.
        assert!(lrs.iter().cloned().fold(0.0, f64::max) > 1.0);

        let mut first = ScheduledLr::new(schedule.clone(), 10);
        for _ in 0..4 {
            first.step();
        }
        let record = first.to_record::<Flex>();
        let mut resumed = ScheduledLr::new(schedule, 10).load_record::<Flex>(record);
        assert_eq!(resumed.step(), lrs[4]);
    }
}
