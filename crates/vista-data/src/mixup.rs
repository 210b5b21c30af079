//! Mixup (Zhang et al. 2018, "mixup: Beyond Empirical Risk Minimization"), as fastai's
//! `MixUp` callback does it: one λ ~ Beta(α, α) per sample, folded to λ = max(λ, 1 − λ)
//! so each mixed image stays closer to its own label, images mixed with a shuffled copy
//! of the batch as λ·a + (1 − λ)·b, and the loss blended with the same λ.

use rand::Rng;
use rand::seq::SliceRandom;
use rand_distr::{Beta, Distribution};

/// What the loss needs to blend: the partner of each sample and its weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Mix {
    /// Label of the image each sample was mixed with.
    pub labels_b: Vec<u32>,
    /// Weight of the sample's own image and label; `1 - lambda` goes to `labels_b`.
    pub lambdas: Vec<f32>,
}

/// Draws `n` mixing weights λ ~ Beta(α, α), folded to [0.5, 1].
///
/// # Panics
/// When `alpha` is not positive and finite.
pub fn draw_lambdas<R: Rng + ?Sized>(n: usize, alpha: f32, rng: &mut R) -> Vec<f32> {
    let beta = Beta::new(alpha, alpha).expect("mixup alpha must be positive and finite");
    (0..n)
        .map(|_| {
            let l: f32 = beta.sample(rng);
            l.max(1.0 - l).clamp(0.0, 1.0)
        })
        .collect()
}

/// Mixes a batch in place. `images` holds `labels.len()` images of `image_len` values each.
/// Returns the partner labels and the weights.
pub fn mixup<R: Rng + ?Sized>(
    images: &mut [f32],
    labels: &[u32],
    image_len: usize,
    alpha: f32,
    rng: &mut R,
) -> Mix {
    let n = labels.len();
    assert_eq!(
        images.len(),
        n * image_len,
        "images must hold {n} images of {image_len} values"
    );
    let lambdas = draw_lambdas(n, alpha, rng);
    let mut perm: Vec<usize> = (0..n).collect();
    perm.shuffle(rng);
    let original = images.to_vec();
    for (i, (&j, &lam)) in perm.iter().zip(&lambdas).enumerate() {
        let a = &original[i * image_len..(i + 1) * image_len];
        let b = &original[j * image_len..(j + 1) * image_len];
        for ((o, &x), &y) in images[i * image_len..(i + 1) * image_len]
            .iter_mut()
            .zip(a)
            .zip(b)
        {
            *o = lam * x + (1.0 - lam) * y;
        }
    }
    Mix {
        labels_b: perm.iter().map(|&j| labels[j]).collect(),
        lambdas,
    }
}

/// Soft targets of a mixed batch: row i puts `λ_i` on its own label and `1 − λ_i` on its
/// partner's (summing both when they are the same class).
pub fn soft_targets(labels: &[u32], mix: &Mix, num_classes: usize) -> Vec<f32> {
    let mut t = vec![0.0; labels.len() * num_classes];
    for (i, ((&a, &b), &lam)) in labels
        .iter()
        .zip(&mix.labels_b)
        .zip(&mix.lambdas)
        .enumerate()
    {
        t[i * num_classes + a as usize] += lam;
        t[i * num_classes + b as usize] += 1.0 - lam;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::any;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    use proptest::{prop_assert, prop_assert_eq};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn mixes_pixels_and_labels_consistently() {
        let mut runner = TestRunner::new_with_rng(
            Config {
                cases: 64,
                failure_persistence: None,
                ..Config::default()
            },
            TestRng::from_seed(RngAlgorithm::ChaCha, &[3; 32]),
        );
        let strategy = (1usize..12, 1usize..20, 0.05f32..4.0, any::<u64>());
        runner
            .run(&strategy, |(n, len, alpha, seed)| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let images: Vec<f32> = (0..n * len).map(|_| rng.random()).collect();
                let labels: Vec<u32> = (0..n).map(|_| rng.random_range(0..5)).collect();
                let mut mixed = images.clone();
                let mix = mixup(&mut mixed, &labels, len, alpha, &mut rng);
                prop_assert_eq!(mix.lambdas.len(), n);
                let mut sorted_b = mix.labels_b.clone();
                let mut sorted_a = labels.clone();
                sorted_b.sort_unstable();
                sorted_a.sort_unstable();
                prop_assert_eq!(
                    sorted_b,
                    sorted_a,
                    "partners are a permutation of the batch"
                );
                for i in 0..n {
                    let lam = mix.lambdas[i];
                    prop_assert!((0.5..=1.0).contains(&lam));
                    // Find a partner j with the partner label whose pixels explain the mix.
                    let explained = (0..n).filter(|&j| labels[j] == mix.labels_b[i]).any(|j| {
                        (0..len).all(|k| {
                            let want =
                                lam * images[i * len + k] + (1.0 - lam) * images[j * len + k];
                            (mixed[i * len + k] - want).abs() < 1e-5
                        })
                    });
                    prop_assert!(explained, "sample {i} is not lambda*a + (1-lambda)*b");
                }
                let t = soft_targets(&labels, &mix, 5);
                for row in t.chunks(5) {
                    prop_assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
                }
                Ok(())
            })
            .unwrap();
    }
}
