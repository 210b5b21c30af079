//! The article's rules, stratified folds and the noisy-label benchmark's pieces.

use std::collections::HashSet;

use proptest::prelude::*;
use vista_clean::{Reason, Rules, flag, flip_labels, score_detection, stratified_folds};
use vista_eval::Predictions;

#[test]
fn wrong_and_confident_is_mislabelled_and_a_top_near_half_is_ambiguous() {
    let classes = ["a", "b", "c"].map(String::from).to_vec();
    let preds = Predictions::from_probs(
        classes,
        (0..4).map(|i| format!("{i}.png")).collect(),
        Some(vec![0, 0, 1, 2]),
        vec![
            0.02, 0.95, 0.03, // wrong, 0.95: mislabelled
            0.55, 0.40, 0.05, // right, 0.55: ambiguous
            0.05, 0.91, 0.04, // right and sure: fine
            0.85, 0.10, 0.05, // wrong but 0.85: neither
        ],
    );
    let flags = flag(&preds, &Rules::default());
    assert_eq!(flags.len(), 2);
    assert_eq!(
        (flags[0].image.as_str(), flags[0].reason),
        ("0.png", Reason::LikelyMislabelled)
    );
    assert_eq!(
        (flags[0].given.as_str(), flags[0].predicted.as_str()),
        ("a", "b")
    );
    assert_eq!(
        (flags[1].image.as_str(), flags[1].reason),
        ("1.png", Reason::Ambiguous)
    );
    let strict = Rules {
        mislabelled_above: 0.8,
        ambiguous: (0.0, 0.0),
    };
    assert_eq!(
        flag(&preds, &strict).len(),
        2,
        "0.85 wrong is flagged at 0.8"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, rng_seed: proptest::test_runner::RngSeed::Fixed(3), ..ProptestConfig::default() })]

    #[test]
    fn folds_cover_each_class_evenly(labels in prop::collection::vec(0u32..4, 1..200), k in 2usize..6, seed in any::<u64>()) {
        let folds = stratified_folds(&labels, k, seed);
        prop_assert_eq!(folds.len(), labels.len());
        prop_assert!(folds.iter().all(|&f| f < k));
        for c in 0..4u32 {
            let mut sizes = vec![0usize; k];
            for (i, &l) in labels.iter().enumerate() {
                if l == c { sizes[folds[i]] += 1; }
            }
            let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            prop_assert!(hi - lo <= 1, "class {} sizes {:?}", c, sizes);
        }
        prop_assert_eq!(&folds, &stratified_folds(&labels, k, seed));
    }

    #[test]
    fn flipping_changes_exactly_the_share_asked(n in 1usize..300, seed in any::<u64>()) {
        let original: Vec<u32> = (0..n as u32).map(|i| i % 10).collect();
        let mut labels = original.clone();
        let flipped = flip_labels(&mut labels, 10, 0.05, seed);
        prop_assert_eq!(flipped.len(), (n as f64 * 0.05).round() as usize);
        for i in 0..n {
            prop_assert_eq!(flipped.binary_search(&i).is_ok(), labels[i] != original[i]);
            prop_assert!(labels[i] < 10);
        }
    }
}

#[test]
fn detection_is_scored_against_the_flipped_images() {
    let classes = ["a", "b"].map(String::from).to_vec();
    let preds = Predictions::from_probs(
        classes,
        (0..3).map(|i| format!("{i}.png")).collect(),
        Some(vec![0, 0, 0]),
        vec![0.05, 0.95, 0.02, 0.98, 0.45, 0.55],
    );
    let flags = flag(&preds, &Rules::default());
    let flipped: HashSet<String> = ["0.png", "1.png"].map(String::from).into();
    let all = score_detection(&flags, None, &flipped);
    assert_eq!((all.flagged, all.hits, all.flipped), (3, 2, 2));
    assert!((all.precision - 2.0 / 3.0).abs() < 1e-12 && (all.recall - 1.0).abs() < 1e-12);
    let m = score_detection(&flags, Some(Reason::LikelyMislabelled), &flipped);
    assert_eq!((m.flagged, m.hits), (2, 2));
}

#[test]
fn top_losses_take_the_worst_of_each_given_class() {
    let classes = ["a", "b"].map(String::from).to_vec();
    let preds = Predictions::from_probs(
        classes,
        (0..5).map(|i| format!("{i}.png")).collect(),
        Some(vec![0, 0, 0, 1, 1]),
        vec![0.9, 0.1, 0.2, 0.8, 0.6, 0.4, 0.3, 0.7, 0.1, 0.9],
    );
    let flags = vista_clean::top_losses(&preds, 2);
    let images: Vec<&str> = flags.iter().map(|f| f.image.as_str()).collect();
    assert_eq!(images, ["1.png", "2.png", "3.png", "4.png"]);
    assert!(flags.iter().all(|f| f.reason == Reason::TopLoss));
    assert_eq!(
        (flags[0].given.as_str(), flags[0].predicted.as_str()),
        ("a", "b")
    );
}
