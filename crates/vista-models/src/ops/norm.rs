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
//! On `Autodiff<Flex>` and `Flex` in single precision, batch norm is its own op instead:
//! the statistics in one read of the maps (per channel, in double precision), the output
//! in one write, and a backward step of its own (one read for the two gradient sums per
//! channel, one write of the input gradient), where the composed version walked the maps
//! about a dozen times through new tensors: profiled on ResNet-50 at 64 px, batch norm
//! and its backward took about a fifth of a training step.
//!
//! Semantics follow PyTorch's `BatchNorm2d`: training normalizes with the batch's biased
//! variance and updates the running variance with the unbiased one.

use std::any::TypeId;

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor};
use burn::nn::BatchNorm;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorData, TensorPrimitive};
use rayon::prelude::*;

use super::conv::cast;

type Train = Autodiff<Flex>;

/// Batch norm of `[batch, channels, height, width]` maps (same shape out). Trains (batch
/// statistics, running averages updated) when the backend records gradients, as burn's
/// `BatchNorm::forward` does.
pub fn batch_norm<B: Backend>(bn: &BatchNorm<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let backend = TypeId::of::<B>();
    let single = x.dtype() == DType::F32 && bn.gamma.val().dtype() == DType::F32;
    if single && n * c * h * w > 0 {
        let training = B::ad_enabled(&x.device()) && n * h * w > 1;
        if backend == TypeId::of::<Train>() && training {
            return train_fused(bn, x);
        }
        if backend == TypeId::of::<Flex>() && !training {
            let device = x.device();
            let mean = bn.running_mean.value().to_device(&device);
            let var = bn.running_var.value().to_device(&device);
            let (scale, shift) = affine(bn, mean, var);
            let values = |t: Tensor<B, 1>| t.into_data().to_vec::<f32>().ok();
            if let (Some(scale), Some(shift)) = (values(scale), values(shift)) {
                let x: Tensor<Flex, 4> = cast(x);
                let x = x.into_primitive().tensor().to_contiguous();
                let y = apply(x.storage::<f32>(), &scale, &shift, h * w);
                return cast(flex_tensor(y, [n, c, h, w]));
            }
            unreachable!("single-precision tensors read back as f32");
        }
    }
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

/// `x·scale[c] + shift[c]` over `[n, c, plane]` maps, image by image on the current rayon
/// pool's threads.
fn apply(x: &[f32], scale: &[f32], shift: &[f32], plane: usize) -> Vec<f32> {
    let mut y = vec![0.0; x.len()];
    let image = scale.len() * plane;
    y.par_chunks_mut(image)
        .zip(x.par_chunks(image))
        .for_each(|(y, x)| {
            for (c, (y, x)) in y.chunks_mut(plane).zip(x.chunks(plane)).enumerate() {
                let (a, b) = (scale[c], shift[c]);
                for (y, x) in y.iter_mut().zip(x) {
                    *y = x * a + b;
                }
            }
        });
    y
}

/// Per-channel sums over `[n, c, plane]` maps, channel by channel on the current rayon
/// pool's threads (each channel's sum in one fixed order, so the result does not depend
/// on the thread count): `f(channel, values of one image's channel)` for each image,
/// added up in double precision.
fn channel_sums(
    n: usize,
    c: usize,
    plane: usize,
    f: impl Fn(usize, usize) -> (f64, f64) + Sync,
) -> Vec<(f64, f64)> {
    (0..c)
        .into_par_iter()
        .map(|ch| {
            (0..n).fold((0.0, 0.0), |(a, b), image| {
                let (da, db) = f(ch, image * c * plane + ch * plane);
                (a + da, b + db)
            })
        })
        .collect()
}

fn flex_tensor(values: Vec<f32>, shape: [usize; 4]) -> Tensor<Flex, 4> {
    Tensor::from_primitive(TensorPrimitive::Float(FlexTensor::from_data(
        TensorData::new(values, shape),
    )))
}

/// Training batch norm on `Autodiff<Flex>` as one op with [`NormBackward`] recorded; the
/// running averages are updated as [`train_affine`] updates them.
fn train_fused<B: Backend>(bn: &BatchNorm<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let (plane, count) = (h * w, (n * h * w) as f64);
    let device = x.device();
    let x: Tensor<Train, 4> = cast(x);
    let gamma: Tensor<Train, 1> = cast(bn.gamma.val());
    let beta: Tensor<Train, 1> = cast(bn.beta.val());
    let (x, gamma, beta) = (
        x.into_primitive().tensor(),
        gamma.into_primitive().tensor(),
        beta.into_primitive().tensor(),
    );
    let input = x.primitive.to_contiguous();
    let xs = input.storage::<f32>();
    let sums = channel_sums(n, c, plane, |_, at| {
        let v = &xs[at..at + plane];
        v.iter().fold((0.0, 0.0), |(s, q), &x| {
            let x = f64::from(x);
            (s + x, q + x * x)
        })
    });
    let mean: Vec<f64> = sums.iter().map(|(s, _)| s / count).collect();
    let var: Vec<f64> = (sums.iter().zip(&mean))
        .map(|((_, q), m)| (q / count - m * m).max(0.0))
        .collect();
    let invstd: Vec<f64> = var.iter().map(|v| 1.0 / (v + bn.epsilon).sqrt()).collect();
    let g = gamma.primitive.to_contiguous();
    let b = beta.primitive.to_contiguous();
    let (gs, bs) = (g.storage::<f32>(), b.storage::<f32>());
    let scale: Vec<f32> = (0..c)
        .map(|i| (f64::from(gs[i]) * invstd[i]) as f32)
        .collect();
    let shift: Vec<f32> = (0..c)
        .map(|i| (f64::from(bs[i]) - mean[i] * f64::from(gs[i]) * invstd[i]) as f32)
        .collect();
    let out = apply(xs, &scale, &shift, plane);
    let out = FlexTensor::from_data(TensorData::new(out, [n, c, h, w]));

    // The running averages, as PyTorch keeps them (unbiased variance).
    let m = bn.momentum;
    let stat = |v: &[f64]| {
        let v: Vec<f32> = v.iter().map(|&v| v as f32).collect();
        Tensor::<B, 1>::from_data(TensorData::new(v, [c]), &device)
    };
    let unbiased: Vec<f64> = var.iter().map(|v| v * count / (count - 1.0)).collect();
    let running_mean = bn.running_mean.value_sync().to_device(&device);
    let running_var = bn.running_var.value_sync().to_device(&device);
    bn.running_mean
        .update(running_mean.mul_scalar(1.0 - m) + stat(&mean).mul_scalar(m));
    bn.running_var
        .update(running_var.mul_scalar(1.0 - m) + stat(&unbiased).mul_scalar(m));

    let state = NormState {
        input,
        gamma: gs.to_vec(),
        mean: mean.iter().map(|&v| v as f32).collect(),
        invstd: invstd.iter().map(|&v| v as f32).collect(),
        shape: [n, c, h, w],
    };
    let out = match NormBackward
        .prepare::<NoCheckpointing>([x.node.clone(), gamma.node.clone(), beta.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(state, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    cast(Tensor::<Train, 4>::from_primitive(TensorPrimitive::Float(
        out,
    )))
}

/// What [`NormBackward`] keeps: the contiguous input, γ, and the batch's per-channel
/// mean and 1/√(var + ε).
#[derive(Debug, Clone)]
struct NormState {
    input: FlexTensor,
    gamma: Vec<f32>,
    mean: Vec<f32>,
    invstd: Vec<f32>,
    shape: [usize; 4],
}

/// The backward step of [`train_fused`]: with x̂ = (x − mean)·invstd and M values per
/// channel, dβ = Σ dy, dγ = Σ dy·x̂, dx = γ·invstd·(dy − dβ/M − x̂·dγ/M).
#[derive(Debug)]
struct NormBackward;

impl Backward<Flex, 3> for NormBackward {
    type State = NormState;

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let s = ops.state;
        let [n, c, h, w] = s.shape;
        let plane = h * w;
        let count = (n * plane) as f64;
        let (dy, xs) = (grad.storage::<f32>(), s.input.storage::<f32>());
        let sums = channel_sums(n, c, plane, |ch, at| {
            let (mean, invstd) = (s.mean[ch], s.invstd[ch]);
            dy[at..at + plane].iter().zip(&xs[at..at + plane]).fold(
                (0.0, 0.0),
                |(db, dg), (&d, &x)| {
                    let d = f64::from(d);
                    (db + d, dg + d * f64::from((x - mean) * invstd))
                },
            )
        });
        let vector = |v: Vec<f32>| FlexTensor::from_data(TensorData::new(v, [c]));
        if let Some(node) = node_gamma {
            let dg = sums.iter().map(|&(_, dg)| dg as f32).collect();
            grads.register::<Flex>(node.id, vector(dg));
        }
        if let Some(node) = node_beta {
            let db = sums.iter().map(|&(db, _)| db as f32).collect();
            grads.register::<Flex>(node.id, vector(db));
        }
        if let Some(node) = node_x {
            let k: Vec<f32> = (0..c).map(|i| s.gamma[i] * s.invstd[i]).collect();
            let mean_db: Vec<f32> = sums.iter().map(|&(db, _)| (db / count) as f32).collect();
            let mean_dg: Vec<f32> = sums.iter().map(|&(_, dg)| (dg / count) as f32).collect();
            let mut dx = vec![0.0f32; n * c * plane];
            let image = c * plane;
            dx.par_chunks_mut(image)
                .zip(dy.par_chunks(image).zip(xs.par_chunks(image)))
                .for_each(|(dx, (dy, x))| {
                    let rows = dx
                        .chunks_mut(plane)
                        .zip(dy.chunks(plane).zip(x.chunks(plane)));
                    for (ch, (dx, (dy, x))) in rows.enumerate() {
                        let (mean, invstd) = (s.mean[ch], s.invstd[ch]);
                        let (k, mdb, mdg) = (k[ch], mean_db[ch], mean_dg[ch]);
                        for (dx, (&d, &x)) in dx.iter_mut().zip(dy.iter().zip(x)) {
                            *dx = k * (d - mdb - (x - mean) * invstd * mdg);
                        }
                    }
                });
            grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dx, s.shape)));
        }
    }
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
        bn.beta
            .grad(&g_ours)
            .expect("beta gradient")
            .to_data()
            .assert_approx_eq::<f32>(
                &bn.beta.grad(&g_ref).expect("beta gradient").to_data(),
                Tolerance::absolute(1e-4),
            );
    }

    #[test]
    fn running_variance_is_updated_with_the_unbiased_batch_variance() {
        // As PyTorch's `BatchNorm2d` (burn's module keeps the biased variance).
        let device = Default::default();
        let bn = BatchNormConfig::new(3).init::<Ad>(&device);
        let x = Tensor::<Ad, 4>::random([3, 3, 5, 7], Distribution::Normal(2.0, 3.0), &device);
        let _ = batch_norm(&bn, x.clone());
        let unbiased = x
            .swap_dims(0, 1)
            .reshape([3, 105])
            .var_bias(1)
            .reshape([3])
            .mul_scalar(105.0 / 104.0);
        let expected = unbiased.mul_scalar(0.1).add_scalar(0.9);
        bn.running_var
            .value_sync()
            .to_data()
            .assert_approx_eq::<f32>(&expected.to_data(), Tolerance::absolute(1e-4));
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
