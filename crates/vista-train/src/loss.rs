//! Cross-entropy against soft targets: one formula for plain labels, label smoothing
//! (Szegedy et al. 2016) and mixup. burn's `CrossEntropyLoss` takes integer targets, so
//! mixup's λ-blend of two losses is written as the loss of the λ-blended targets, which
//! is the same number because cross-entropy is linear in its target.

use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use vista_data::{Batch, soft_targets};

/// Target distributions of a batch, row-major `[batch, num_classes]`: one-hot (or
/// mixup's blend of two one-hots), then smoothed as fastai's
/// `LabelSmoothingCrossEntropy`: `(1 − ε)·t + ε / K`.
pub fn targets(batch: &Batch, num_classes: usize, smoothing: f32) -> Vec<f32> {
    let mut t = match &batch.mix {
        Some(mix) => soft_targets(&batch.labels, mix, num_classes),
        None => {
            let mut t = vec![0.0; batch.len() * num_classes];
            for (i, &l) in batch.labels.iter().enumerate() {
                t[i * num_classes + l as usize] = 1.0;
            }
            t
        }
    };
    if smoothing > 0.0 {
        let uniform = smoothing / num_classes as f32;
        for v in &mut t {
            *v = (1.0 - smoothing) * *v + uniform;
        }
    }
    t
}

/// `targets` as a `[rows, num_classes]` tensor.
pub fn targets_tensor<B: Backend>(
    targets: &[f32],
    num_classes: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    let rows = targets.len() / num_classes;
    Tensor::from_data(
        TensorData::new(targets.to_vec(), [rows, num_classes]),
        device,
    )
}

/// Summed (not averaged) cross-entropy of `[batch, K]` logits against `[batch, K]` target
/// distributions; `[1]`. Summing lets data-parallel shards add up to the batch's loss.
pub fn soft_cross_entropy_sum<B: Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 2>,
) -> Tensor<B, 1> {
    (log_softmax(logits, 1) * targets).sum().neg()
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use burn::nn::loss::CrossEntropyLossConfig;
    use burn::tensor::{Distribution, Int};
    use vista_data::Mix;

    use super::*;

    type B = Flex;

    fn batch(labels: Vec<u32>, mix: Option<Mix>) -> Batch {
        Batch {
            images: Vec::new(),
            indices: (0..labels.len()).collect(),
            labels,
            mix,
            size: 1,
        }
    }

    #[test]
    fn one_hot_targets_give_burns_cross_entropy() {
        let device = Default::default();
        let logits = Tensor::<B, 2>::random([4, 3], Distribution::Normal(0.0, 2.0), &device);
        let b = batch(vec![0, 2, 1, 2], None);
        let t = targets_tensor::<B>(&targets(&b, 3, 0.0), 3, &device);
        let ours = soft_cross_entropy_sum(logits.clone(), t).into_scalar() / 4.0;
        let labels =
            Tensor::<B, 1, Int>::from_data(TensorData::new(vec![0i64, 2, 1, 2], [4]), &device);
        let theirs = CrossEntropyLossConfig::new()
            .init(&device)
            .forward(logits, labels)
            .into_scalar();
        assert!((ours - theirs).abs() < 1e-5, "{ours} vs {theirs}");
    }

    #[test]
    fn mixup_loss_is_the_lambda_blend_of_both_losses() {
        let device = Default::default();
        let logits = Tensor::<B, 2>::random([2, 3], Distribution::Normal(0.0, 2.0), &device);
        let mix = Mix {
            labels_b: vec![1, 2],
            lambdas: vec![0.7, 0.9],
        };
        let b = batch(vec![0, 0], Some(mix));
        let t = targets_tensor::<B>(&targets(&b, 3, 0.0), 3, &device);
        let ours = soft_cross_entropy_sum(logits.clone(), t).into_scalar();
        let logp = log_softmax(logits, 1).into_data().to_vec::<f32>().unwrap();
        let expected = -(0.7 * logp[0] + 0.3 * logp[1]) - (0.9 * logp[3] + 0.1 * logp[5]);
        assert!((ours - expected).abs() < 1e-5, "{ours} vs {expected}");
    }

    #[test]
    fn smoothing_keeps_a_distribution_and_moves_eps_off_the_label() {
        let t = targets(&batch(vec![1], None), 4, 0.1);
        assert!((t.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((t[1] - (0.9 + 0.025)).abs() < 1e-6);
        assert!((t[0] - 0.025).abs() < 1e-6);
    }
}
