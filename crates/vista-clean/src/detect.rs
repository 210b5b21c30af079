//! The article's rules for confusing training images: a wrong prediction made with
//! probability above 0.9 ("likely mislabelled"), or a top probability between 0.5 and
//! 0.6 ("ambiguous"). Thresholds are configurable.

use vista_eval::Predictions;
pub use vista_format::{Flag, Reason, Rules};

/// Applies `rules` to predictions that carry the given labels; flags come in the
/// predictions' order, mislabelled first within equal images (an image gets one flag).
pub fn flag(preds: &Predictions, rules: &Rules) -> Vec<Flag> {
    let Some(labels) = &preds.labels else {
        return Vec::new();
    };
    let mut flags = Vec::new();
    for (i, (&given, &predicted)) in labels.iter().zip(&preds.predicted).enumerate() {
        let p = preds.row(i)[predicted as usize];
        let reason = if predicted != given && p > rules.mislabelled_above {
            Reason::LikelyMislabelled
        } else if (rules.ambiguous.0..=rules.ambiguous.1).contains(&p) {
            Reason::Ambiguous
        } else {
            continue;
        };
        flags.push(Flag {
            image: preds.images[i].clone(),
            given: preds.classes[given as usize].clone(),
            predicted: preds.classes[predicted as usize].clone(),
            probability: p,
            reason,
        });
    }
    flags
}

/// The `per_class` images of each given class with the highest loss (`-ln p(given)`),
/// worst first within each class: what to review when no rule is wanted.
pub fn top_losses(preds: &Predictions, per_class: usize) -> Vec<Flag> {
    let Some(labels) = &preds.labels else {
        return Vec::new();
    };
    let mut flags = Vec::new();
    for c in 0..preds.num_classes() as u32 {
        let mut members: Vec<(f32, usize)> = labels
            .iter()
            .enumerate()
            .filter(|&(_, &l)| l == c)
            .map(|(i, &l)| (-preds.row(i)[l as usize].max(1e-7).ln(), i))
            .collect();
        members.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for &(_, i) in members.iter().take(per_class) {
            let predicted = preds.predicted[i];
            flags.push(Flag {
                image: preds.images[i].clone(),
                given: preds.classes[c as usize].clone(),
                predicted: preds.classes[predicted as usize].clone(),
                probability: preds.row(i)[predicted as usize],
                reason: Reason::TopLoss,
            });
        }
    }
    flags
}
