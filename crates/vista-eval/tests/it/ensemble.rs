//! The article's majority vote with a seeded random tie-break, and the means.

use std::path::PathBuf;

use proptest::prelude::*;
use vista_eval::{Method, Predictions, ensemble, vote};

use crate::preds;

fn one_hot(k: usize, classes: &[u32]) -> Predictions {
    let mut probs = vec![0.0; classes.len() * k];
    for (i, &c) in classes.iter().enumerate() {
        probs[i * k + c as usize] = 1.0;
    }
    preds(k, probs, None)
}

fn members(models: &[Vec<u32>], k: usize) -> Vec<(PathBuf, Predictions)> {
    models
        .iter()
        .enumerate()
        .map(|(m, c)| (PathBuf::from(format!("m{m}.csv")), one_hot(k, c)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, rng_seed: proptest::test_runner::RngSeed::Fixed(7), ..ProptestConfig::default() })]

    #[test]
    fn a_vote_does_not_depend_on_the_order_of_the_models(
        votes in prop::collection::vec(0u32..5, 1..9),
        seed in any::<u64>(),
        image in any::<u64>(),
        rotate in 0usize..9,
    ) {
        let mut shuffled = votes.clone();
        let r = rotate % votes.len();
        shuffled.rotate_left(r);
        shuffled.reverse();
        prop_assert_eq!(vote(&votes, 5, seed, image), vote(&shuffled, 5, seed, image));
    }

    #[test]
    fn unanimous_models_give_their_answer(class in 0u32..6, models in 1usize..8, seed in any::<u64>()) {
        prop_assert_eq!(vote(&vec![class; models], 6, seed, 3), class);
    }

    #[test]
    fn ties_break_among_the_tied_classes_only_and_reproducibly(
        votes in prop::collection::vec(0u32..4, 2..8),
        seed in any::<u64>(),
        image in any::<u64>(),
    ) {
        let mut counts = [0usize; 4];
        for &v in &votes { counts[v as usize] += 1; }
        let most = *counts.iter().max().unwrap();
        let winner = vote(&votes, 4, seed, image);
        prop_assert_eq!(counts[winner as usize], most);
        prop_assert_eq!(winner, vote(&votes, 4, seed, image));
    }

    #[test]
    fn ensembling_files_is_invariant_under_reordering(
        models in prop::collection::vec(prop::collection::vec(0u32..3, 12), 1..6),
        seed in any::<u64>(),
    ) {
        let mut m = members(&models, 3);
        let a = ensemble(&m, &Method::Vote, seed).unwrap();
        m.reverse();
        let b = ensemble(&m, &Method::Vote, seed).unwrap();
        prop_assert_eq!(&a.predicted, &b.predicted);
        prop_assert_eq!(&a.probs, &b.probs);
    }
}

#[test]
fn the_tie_break_draws_every_tied_class_and_depends_on_the_seed() {
    // Two models that always disagree: every image is a two-way tie.
    let votes = [0u32, 2];
    let picks: Vec<u32> = (0..400).map(|i| vote(&votes, 3, 11, i)).collect();
    let zeros = picks.iter().filter(|&&p| p == 0).count();
    assert!(picks.iter().all(|&p| p == 0 || p == 2));
    assert!(
        (150..250).contains(&zeros),
        "{zeros} of 400 ties went to class 0"
    );
    let other: Vec<u32> = (0..400).map(|i| vote(&votes, 3, 12, i)).collect();
    assert_ne!(picks, other, "another seed breaks the ties differently");
}

#[test]
fn the_majority_wins_and_vote_shares_become_the_probabilities() {
    let m = members(&[vec![0, 1, 2], vec![0, 1, 1], vec![1, 1, 2]], 3);
    let e = ensemble(&m, &Method::Vote, 0).unwrap();
    assert_eq!(e.predicted, vec![0, 1, 2]);
    let third = 1.0 / 3.0;
    assert!((e.row(0)[0] - 2.0 * third).abs() < 1e-6 && (e.row(0)[1] - third).abs() < 1e-6);
}

#[test]
fn means_average_the_probabilities_with_their_weights() {
    let a = preds(2, vec![0.9, 0.1, 0.4, 0.6], None);
    let b = preds(2, vec![0.2, 0.8, 0.1, 0.9], None);
    let m = vec![(PathBuf::from("a.csv"), a), (PathBuf::from("b.csv"), b)];
    let mean = ensemble(&m, &Method::Mean, 0).unwrap();
    assert!((mean.row(0)[0] - 0.55).abs() < 1e-6);
    assert_eq!(mean.predicted, vec![0, 1]);
    let w = ensemble(&m, &Method::Weighted(vec![1.0, 3.0]), 0).unwrap();
    assert!((w.row(0)[0] - (0.9 + 3.0 * 0.2) / 4.0).abs() < 1e-6);
    assert_eq!(w.predicted, vec![1, 1]);
    let err = ensemble(&m, &Method::Weighted(vec![1.0]), 0).unwrap_err();
    assert!(err.to_string().contains("1 weights for 2"), "{err}");
}

#[test]
fn files_of_other_images_or_classes_are_refused_by_name() {
    let a = preds(2, vec![0.9, 0.1, 0.4, 0.6], None);
    let mut b = a.clone();
    b.images[1] = "other.png".into();
    let err = ensemble(
        &[
            (PathBuf::from("a.csv"), a.clone()),
            (PathBuf::from("b.csv"), b),
        ],
        &Method::Vote,
        0,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("b.csv") && err.contains("other.png") && err.contains("a.csv"),
        "{err}"
    );
    let mut c = a.clone();
    c.classes[0] = "z".into();
    let err = ensemble(
        &[(PathBuf::from("a.csv"), a), (PathBuf::from("c.csv"), c)],
        &Method::Mean,
        0,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("c.csv") && err.contains("classes"), "{err}");
}
