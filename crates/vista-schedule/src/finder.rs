//! The LR finder (Smith 2015; fastai's `LRFinder`): an exponential sweep of learning
//! rates, a smoothed loss, a stop when it diverges, and fastai's four suggestions.

use serde::{Deserialize, Serialize};
pub use vista_format::Suggestions;

/// Sweep settings; `Default` is fastai's `lr_find()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LrFindConfig {
    /// Learning rate of the first step of the sweep.
    pub start_lr: f64,
    /// Learning rate the sweep reaches after `num_it` steps.
    pub end_lr: f64,
    /// Number of steps in the sweep, the most losses it records.
    pub num_it: usize,
    /// Smoothing of the loss (exponential moving average with bias correction).
    pub beta: f64,
    /// Stop when the smoothed loss exceeds 4x its minimum (or turns NaN).
    pub stop_div: bool,
}

impl Default for LrFindConfig {
    fn default() -> Self {
        Self {
            start_lr: 1e-7,
            end_lr: 10.0,
            num_it: 100,
            beta: 0.98,
            stop_div: true,
        }
    }
}

/// The sweep's state: feed it each step's loss, read the next learning rate.
#[derive(Debug, Clone)]
pub struct LrFinder {
    cfg: LrFindConfig,
    iter: usize,
    avg: f64,
    best: f64,
    /// Learning rate of each recorded step.
    pub lrs: Vec<f64>,
    /// Smoothed loss of each recorded step.
    pub losses: Vec<f64>,
}

impl LrFinder {
    /// Starts a sweep with settings `cfg`, with nothing recorded yet.
    pub fn new(cfg: LrFindConfig) -> Self {
        Self {
            cfg,
            iter: 0,
            avg: 0.0,
            best: f64::INFINITY,
            lrs: Vec::new(),
            losses: Vec::new(),
        }
    }

    /// The learning rate for the next step: `start * (end / start)^(i / num_it)`.
    pub fn lr(&self) -> f64 {
        let pos = self.iter as f64 / self.cfg.num_it.max(1) as f64;
        self.cfg.start_lr * (self.cfg.end_lr / self.cfg.start_lr).powf(pos)
    }

    /// Records the loss of the step just taken at [`LrFinder::lr`]; returns `false` when
    /// the sweep is over (all steps done, or the loss diverged or turned NaN).
    pub fn record(&mut self, loss: f64) -> bool {
        let lr = self.lr();
        self.iter += 1;
        self.avg = self.cfg.beta * self.avg + (1.0 - self.cfg.beta) * loss;
        let smooth = self.avg / (1.0 - self.cfg.beta.powi(self.iter as i32));
        self.lrs.push(lr);
        self.losses.push(smooth);
        if smooth < self.best {
            self.best = smooth;
        }
        let diverged = self.cfg.stop_div && (smooth.is_nan() || smooth > 4.0 * self.best);
        !(diverged || self.iter >= self.cfg.num_it)
    }

    /// fastai's suggestions on the recorded curve.
    pub fn suggestions(&self) -> Suggestions {
        suggest(&self.lrs, &self.losses, self.cfg.num_it)
    }
}

/// fastai's `lr_find` post-processing: drop the first tenth and the last five points,
/// cut at the first NaN (fastai PR #3477), then compute every suggestion.
pub fn suggest(lrs: &[f64], losses: &[f64], num_it: usize) -> Suggestions {
    let n = lrs.len().min(losses.len());
    let lo = (num_it / 10).min(n);
    let hi = n.saturating_sub(5).max(lo);
    let (mut lrs, mut losses) = (&lrs[lo..hi], &losses[lo..hi]);
    if let Some(nan) = losses.iter().position(|l| !l.is_finite()) {
        lrs = &lrs[..nan];
        losses = &losses[..nan];
    }
    Suggestions {
        valley: valley(lrs, losses),
        steep: steep(lrs, losses),
        minimum: minimum(lrs, losses),
        slide: slide(lrs, losses),
    }
}

/// fastai's `valley`: the longest run of decreasing loss, and a point 1/2 of the way
/// into its middle third.
pub fn valley(lrs: &[f64], losses: &[f64]) -> Option<f64> {
    let n = losses.len();
    if n < 2 {
        return None;
    }
    let mut lds = vec![1isize; n];
    let (mut max_start, mut max_end) = (0isize, 0usize);
    for i in 1..n {
        for j in 0..i {
            if losses[i] < losses[j] && lds[i] < lds[j] + 1 {
                lds[i] = lds[j] + 1;
            }
            if lds[max_end] < lds[i] {
                max_end = i;
                max_start = max_end as isize - lds[max_end];
            }
        }
    }
    let sections = (max_end as isize - max_start) as f64 / 3.0;
    let idx = max_start + sections as isize + (sections / 2.0) as isize;
    // fastai's `max_start` is -1 when the valley starts at the first point, and Python
    // then indexes from the end; the same index is kept here.
    let idx = if idx < 0 { idx + n as isize } else { idx };
    lrs.get(usize::try_from(idx).ok()?).copied()
}

/// fastai's `steep`: the rate where the loss falls fastest against log(lr).
pub fn steep(lrs: &[f64], losses: &[f64]) -> Option<f64> {
    (0..losses.len().saturating_sub(1))
        .map(|i| {
            (
                i,
                (losses[i + 1] - losses[i]) / (lrs[i + 1].ln() - lrs[i].ln()),
            )
        })
        .filter(|(_, g)| !g.is_nan())
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| lrs[i])
}

/// fastai's `minimum`: the rate of the lowest loss, divided by 10.
pub fn minimum(lrs: &[f64], losses: &[f64]) -> Option<f64> {
    losses
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.is_nan())
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| lrs[i] / 10.0)
}

/// fastai's `slide` (lr_diff 15, thresh 0.005): walk left from the end until the loss
/// gradient 15 points apart stops changing.
pub fn slide(lrs: &[f64], losses: &[f64]) -> Option<f64> {
    const LR_DIFF: usize = 15;
    const THRESH: f64 = 0.005;
    let n = losses.len();
    if n <= LR_DIFF {
        return None;
    }
    let grad = gradient(losses);
    // fastai indexes from the end: r = -1, l = r - 15.
    let (mut r, mut l) = (n - 1, n - 1 - LR_DIFF);
    let mut local_min = lrs[l];
    loop {
        if (grad[r] - grad[l]).abs() <= THRESH {
            break;
        }
        local_min = lrs[l];
        if l == 0 {
            break;
        }
        r -= 1;
        l -= 1;
    }
    Some(local_min)
}

/// `numpy.gradient` with unit spacing: central differences inside, one-sided at the ends.
fn gradient(y: &[f64]) -> Vec<f64> {
    let n = y.len();
    (0..n)
        .map(|i| match i {
            0 => y[1] - y[0],
            i if i == n - 1 => y[n - 1] - y[n - 2],
            i => (y[i + 1] - y[i - 1]) / 2.0,
        })
        .collect()
}
