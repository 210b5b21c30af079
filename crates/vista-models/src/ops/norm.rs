//! Batch normalization of image feature maps, computed in a shape the CPU backend runs fast.
//!
//! burn's `BatchNorm::forward` broadcasts `[1, C, 1, 1]` statistics over `[N, C, H, W]`
//! maps four times in training (subtract, divide, multiply, add) and again in backward.
//! burn-flex has no fast path for that stride pattern and walks it element by element:
//! profiled on a small ResNet at 28 px, those walks took 46% of a training step. Here the
//! statistics fold into one per-channel scale and shift, repeated to `[N, C, 1]`, and the
//! map is viewed as `[N, C, H·W]`: a per-row scalar, which burn-flex vectorizes. The
//! module, its parameters and its record stay burn's `BatchNorm`, so checkpoints and the
//! importer are unchanged.
//!
//! Semantics follow PyTorch's `BatchNorm2d`: training normalizes with the batch's biased
//! variance and updates the running variance with the unbiased one.

use burn::nn::BatchNorm;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// Batch norm of `[batch, channels, height, width]` maps (same shape out). Trains (batch
/// statistics, running averages updated) when the backend records gradients, as burn's
/// `BatchNorm::forward` does.
pub fn batch_norm<B: Backend>(bn: &BatchNorm<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let x3 = x.reshape([n, c, h * w]);
    let (scale, shift) = if B::ad_enabled(&x3.device()) && n * h * w > 1 {
        train_affine(bn, x3.clone())
    } else {
        let device = x3.device();
        let mean = bn.running_mean.value().to_device(&device);
        let var = bn.running_var.value().to_device(&device);
        affine(bn, mean, var)
    };
    let scale = scale.reshape([1, c, 1]).repeat_dim(0, n);
    let shift = shift.reshape([1, c, 1]).repeat_dim(0, n);
    (x3 * scale + shift).reshape([n, c, h, w])
}

/// The per-channel `(scale, shift)` that normalize with `mean` and `var` and apply γ, β.
fn affine<B: Backend>(
    bn: &BatchNorm<B>,
    mean: Tensor<B, 1>,
    var: Tensor<B, 1>,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let scale = bn.gamma.val() / var.add_scalar(bn.epsilon).sqrt();
    let shift = bn.beta.val() - mean * scale.clone();
    (scale, shift)
}

/// Batch statistics of `[N, C, L]` maps, the running averages' update, and the affine map.
fn train_affine<B: Backend>(bn: &BatchNorm<B>, x3: Tensor<B, 3>) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let [n, c, l] = x3.dims();
    let count = (n * l) as f64;
    let channel_sum = |t: Tensor<B, 3>| t.sum_dim(2).sum_dim(0).reshape([c]);
    let mean = channel_sum(x3.clone()).div_scalar(count);
    // E[x²] − E[x]², clamped: the maps are post-convolution activations of moderate size,
    // where single precision keeps this well within batch norm's epsilon.
    let var = (channel_sum(x3.square()).div_scalar(count) - mean.clone().square()).clamp_min(0.0);

    let device = mean.device();
    let m = bn.momentum;
    let running_mean = bn.running_mean.value_sync().to_device(&device);
    let running_var = bn.running_var.value_sync().to_device(&device);
    let unbiased = var.clone().detach().mul_scalar(count / (count - 1.0));
    bn.running_mean
        .update((running_mean.mul_scalar(1.0 - m) + mean.clone().detach().mul_scalar(m)).detach());
    bn.running_var
        .update((running_var.mul_scalar(1.0 - m) + unbiased.mul_scalar(m)).detach());

    affine(bn, mean, var)
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, Flex};
    use burn::nn::BatchNormConfig;
    use burn::tensor::{Distribution, Tolerance};

    use super::*;

    type B = Flex;
    type Ad = Autodiff<Flex>;

    #[test]
    fn training_matches_burns_batch_norm_and_updates_running_stats() {
        let device = Default::default();
        let bn = BatchNormConfig::new(5).init::<Ad>(&device);
        let x = Tensor::<Ad, 4>::random([4, 5, 3, 6], Distribution::Normal(1.0, 2.0), &device);
        let ours = batch_norm(&bn, x.clone());
        let reference = bn.forward(x.clone());
        ours.to_data()
            .assert_approx_eq::<f32>(&reference.to_data(), Tolerance::absolute(1e-4));

        // Running mean: burn's module updated it once, ours once more with the same batch.
        let mean = x
            .clone()
            .swap_dims(0, 1)
            .reshape([5, 72])
            .mean_dim(1)
            .reshape([5]);
        let expected = mean.clone().mul_scalar(0.1) * 0.9 + mean.mul_scalar(0.1);
        bn.running_mean
            .value_sync()
            .to_data()
            .assert_approx_eq::<f32>(&expected.to_data(), Tolerance::absolute(1e-5));
    }

    #[test]
    fn gradients_match_burns_batch_norm() {
        let device = Default::default();
        let bn = BatchNormConfig::new(3).init::<Ad>(&device);
        let x = Tensor::<Ad, 4>::random([2, 3, 4, 4], Distribution::Normal(0.0, 1.0), &device)
            .require_grad();
        let w = Tensor::<Ad, 4>::random([2, 3, 4, 4], Distribution::Normal(0.0, 1.0), &device);
        let g_ours = (batch_norm(&bn, x.clone()) * w.clone()).sum().backward();
        let g_ref = (bn.forward(x.clone()) * w).sum().backward();
        x.grad(&g_ours)
            .expect("input gradient")
            .to_data()
            .assert_approx_eq::<f32>(
                &x.grad(&g_ref).expect("input gradient").to_data(),
                Tolerance::absolute(1e-4),
            );
        bn.gamma
            .grad(&g_ours)
            .expect("gamma gradient")
            .to_data()
            .assert_approx_eq::<f32>(
                &bn.gamma.grad(&g_ref).expect("gamma gradient").to_data(),
                Tolerance::absolute(1e-4),
            );
    }

    #[test]
    fn inference_uses_running_statistics() {
        let device = Default::default();
        let bn = BatchNormConfig::new(2).init::<B>(&device);
        let x = Tensor::<B, 4>::random([3, 2, 2, 2], Distribution::Normal(3.0, 1.0), &device);
        batch_norm(&bn, x.clone())
            .to_data()
            .assert_approx_eq::<f32>(&bn.forward(x).to_data(), Tolerance::absolute(1e-5));
    }
}
