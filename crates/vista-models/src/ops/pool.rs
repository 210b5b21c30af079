//! Max pooling that trains fast on the flex CPU backend.
//!
//! burn 0.21's flex backend runs a 2-D max pool as a 3-D one over a unit depth, with
//! per-element index arithmetic for every window position; profiled on ResNet-18 at
//! 64 px (batch 32, 2 threads), the stem's one max pool took 6% of a training step. Here,
//! when the backend is `Autodiff<Flex>` or `Flex`, the pool walks each `[h, w]` plane
//! directly, keeping the position of each window's maximum (the first of equal values and
//! the last NaN, as PyTorch's `max_pool2d` takes them) for the backward pass, which adds each output gradient
//! onto that position. Planes are shared among the threads of the current rayon pool;
//! each plane is one task's alone, so results do not depend on the thread count.
//! Dilated or ceil-mode pools, asymmetric padding and other backends or precisions run
//! burn's `MaxPool2d::forward`.

use std::any::TypeId;

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor};
use burn::nn::PaddingConfig2d;
use burn::nn::pool::MaxPool2d;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorData, TensorPrimitive};
use rayon::prelude::*;

use super::conv::cast;

type Train = Autodiff<Flex>;

/// `pool.forward(x)` for `[batch, channels, height, width]` maps, walking planes directly
/// where the backend is `Autodiff<Flex>` or `Flex` (see the module docs).
pub fn max_pool2d<B: Backend>(pool: &MaxPool2d, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let backend = TypeId::of::<B>();
    let fast = (backend == TypeId::of::<Train>() || backend == TypeId::of::<Flex>())
        && x.dtype() == DType::F32;
    let Some(window) = Window::new(pool, x.dims()).filter(|_| fast) else {
        return pool.forward(x);
    };
    if backend == TypeId::of::<Train>() {
        let x: Tensor<Train, 4> = cast(x);
        let x = x.into_primitive().tensor();
        let input = x.primitive.to_contiguous();
        let (out, argmax) = forward(input.storage::<f32>(), &window, true);
        let out = tensor(out, window.out_shape());
        let out = match PoolBackward
            .prepare::<NoCheckpointing>([x.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((argmax, window), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        };
        cast(Tensor::<Train, 4>::from_primitive(TensorPrimitive::Float(
            out,
        )))
    } else {
        let x: Tensor<Flex, 4> = cast(x);
        let input = x.into_primitive().tensor().to_contiguous();
        let (out, _) = forward(input.storage::<f32>(), &window, false);
        cast(Tensor::<Flex, 4>::from_primitive(TensorPrimitive::Float(
            tensor(out, window.out_shape()),
        )))
    }
}

/// Sizes of one pool: input `[n, c, h, w]`, a `kh × kw` window moved by `stride` over the
/// input padded by `padding` on each side, output `[n, c, out_h, out_w]`.
#[derive(Debug, Clone, Copy)]
struct Window {
    planes: usize,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    out_h: usize,
    out_w: usize,
}

impl Window {
    /// The window of `pool` over `[n, c, h, w]` maps, where this module computes it: no
    /// dilation, no ceil mode, the same padding on both sides of each axis, smaller than
    /// the kernel (as burn and PyTorch require), and a non-empty output.
    fn new(pool: &MaxPool2d, [n, c, h, w]: [usize; 4]) -> Option<Self> {
        let padding = match pool.padding {
            PaddingConfig2d::Valid => [0, 0],
            PaddingConfig2d::Explicit(top, left, bottom, right)
                if top == bottom && left == right =>
            {
                [top, left]
            }
            _ => return None,
        };
        let (kernel, stride) = (pool.kernel_size, pool.stride);
        let plain = pool.dilation == [1, 1]
            && !pool.ceil_mode
            && kernel.iter().chain(&stride).all(|&v| v > 0)
            && padding[0] <= kernel[0] / 2
            && padding[1] <= kernel[1] / 2
            && h + 2 * padding[0] >= kernel[0]
            && w + 2 * padding[1] >= kernel[1]
            && n * c > 0;
        plain.then(|| Self {
            planes: n * c,
            n,
            c,
            h,
            w,
            kernel,
            stride,
            padding,
            out_h: (h + 2 * padding[0] - kernel[0]) / stride[0] + 1,
            out_w: (w + 2 * padding[1] - kernel[1]) / stride[1] + 1,
        })
    }

    fn out_shape(&self) -> [usize; 4] {
        [self.n, self.c, self.out_h, self.out_w]
    }

    /// The input rows (or columns) `lo..hi` the window at output row (column) `o` covers
    /// on `axis`, clipped to the image.
    fn span(&self, o: usize, axis: usize) -> (usize, usize) {
        let (size, k, s, p) = if axis == 0 {
            (self.h, self.kernel[0], self.stride[0], self.padding[0])
        } else {
            (self.w, self.kernel[1], self.stride[1], self.padding[1])
        };
        let start = o * s;
        (start.saturating_sub(p), (start + k - p).min(size))
    }
}

/// The pooled maps and, where `keep_argmax` (training), for each output the position in
/// its input plane of the value it took. Each window holds at least one input position
/// (the padding is less than the kernel), so every output is one of its inputs.
fn forward(x: &[f32], g: &Window, keep_argmax: bool) -> (Vec<f32>, Vec<u32>) {
    let out_plane = g.out_h * g.out_w;
    let mut out = vec![0.0; g.planes * out_plane];
    let mut argmax = vec![0u32; if keep_argmax { g.planes * out_plane } else { 0 }];
    let columns: Vec<(usize, usize)> = (0..g.out_w).map(|o| g.span(o, 1)).collect();
    let pool_plane = |p: usize, out: &mut [f32], mut argmax: Option<&mut [u32]>| {
        let x = &x[p * g.h * g.w..][..g.h * g.w];
        for oy in 0..g.out_h {
            let (y_lo, y_hi) = g.span(oy, 0);
            for (ox, &(x_lo, x_hi)) in columns.iter().enumerate() {
                let mut best = y_lo * g.w + x_lo;
                let mut value = x[best];
                for y in y_lo..y_hi {
                    let row = y * g.w + x_lo;
                    for (i, &v) in x[row..y * g.w + x_hi].iter().enumerate() {
                        // PyTorch's rule: a larger value or a NaN takes the place.
                        if v > value || v.is_nan() {
                            (best, value) = (row + i, v);
                        }
                    }
                }
                out[oy * g.out_w + ox] = value;
                if let Some(argmax) = argmax.as_deref_mut() {
                    argmax[oy * g.out_w + ox] =
                        u32::try_from(best).expect("an image plane has fewer than 2³² positions");
                }
            }
        }
    };
    if keep_argmax {
        out.par_chunks_mut(out_plane)
            .zip(argmax.par_chunks_mut(out_plane))
            .enumerate()
            .for_each(|(p, (out, argmax))| pool_plane(p, out, Some(argmax)));
    } else {
        out.par_chunks_mut(out_plane)
            .enumerate()
            .for_each(|(p, out)| pool_plane(p, out, None));
    }
    (out, argmax)
}

/// The backward step of [`max_pool2d`]: each output's gradient added onto the input
/// position it took.
#[derive(Debug)]
struct PoolBackward;

impl Backward<Flex, 1> for PoolBackward {
    type State = (Vec<u32>, Window);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let Some(node) = node else { return };
        let (argmax, g) = ops.state;
        let dy = grad.storage::<f32>();
        let out_plane = g.out_h * g.out_w;
        let mut dx = vec![0.0f32; g.planes * g.h * g.w];
        dx.par_chunks_mut(g.h * g.w)
            .zip(dy.par_chunks(out_plane).zip(argmax.par_chunks(out_plane)))
            .for_each(|(dx, (dy, argmax))| {
                for (&d, &i) in dy.iter().zip(argmax) {
                    dx[i as usize] += d;
                }
            });
        grads.register::<Flex>(node.id, tensor(dx, [g.n, g.c, g.h, g.w]));
    }
}

fn tensor(values: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

#[cfg(test)]
mod tests {
    use burn::nn::pool::MaxPool2dConfig;
    use burn::tensor::{Distribution, Tolerance};

    use super::*;

    /// The fast path against burn's own pool: output and input gradient.
    fn check(
        n: usize,
        c: usize,
        size: [usize; 2],
        kernel: [usize; 2],
        stride: [usize; 2],
        pad: [usize; 2],
    ) {
        let device = Default::default();
        let pool = MaxPool2dConfig::new(kernel)
            .with_strides(stride)
            .with_padding(PaddingConfig2d::Explicit(pad[0], pad[1], pad[0], pad[1]))
            .init();
        let case =
            format!("n {n} c {c} size {size:?} kernel {kernel:?} stride {stride:?} pad {pad:?}");
        assert!(
            Window::new(&pool, [n, c, size[0], size[1]]).is_some(),
            "{case}"
        );
        let x = Tensor::<Train, 4>::random(
            [n, c, size[0], size[1]],
            Distribution::Normal(0.0, 1.0),
            &device,
        )
        .require_grad();
        let ours = max_pool2d(&pool, x.clone());
        let reference = pool.forward(x.clone());
        assert_eq!(ours.dims(), reference.dims(), "{case}");
        ours.to_data().assert_eq(&reference.to_data(), true);
        let w = Tensor::<Train, 4>::random(ours.dims(), Distribution::Normal(0.0, 1.0), &device);
        let g_ours = (ours * w.clone()).sum().backward();
        let g_ref = (reference * w).sum().backward();
        let grad = |g| x.grad(g).expect("input gradient").to_data();
        grad(&g_ours).assert_approx_eq::<f32>(&grad(&g_ref), Tolerance::absolute(1e-6));
        // Inference on plain flex.
        let xf = Tensor::<Flex, 4>::from_data(x.to_data(), &device);
        max_pool2d(&pool, xf.clone())
            .to_data()
            .assert_eq(&pool.forward(xf).to_data(), true);
    }

    #[test]
    fn outputs_and_gradients_match_burns_max_pool() {
        // ResNet's stem pool, Inception's, overlapping and tiled windows, odd sizes.
        check(2, 3, [9, 8], [3, 3], [2, 2], [1, 1]);
        check(2, 3, [16, 16], [3, 3], [2, 2], [1, 1]);
        check(1, 2, [9, 11], [3, 3], [2, 2], [0, 0]);
        check(3, 2, [8, 8], [2, 2], [2, 2], [0, 0]);
        check(1, 4, [7, 5], [3, 2], [1, 2], [1, 1]);
        check(2, 1, [3, 3], [3, 3], [1, 1], [1, 1]);
        check(1, 1, [1, 1], [1, 1], [1, 1], [0, 0]);
    }

    #[test]
    fn other_pools_use_burns() {
        let pool = MaxPool2dConfig::new([3, 3]).with_dilation([2, 2]).init();
        assert!(Window::new(&pool, [1, 1, 9, 9]).is_none());
        let pool = MaxPool2dConfig::new([3, 3]).with_ceil_mode(true).init();
        assert!(Window::new(&pool, [1, 1, 9, 9]).is_none());
        let pool = MaxPool2dConfig::new([3, 3]).init();
        assert!(Window::new(&pool, [1, 1, 2, 9]).is_none());
        let device = Default::default();
        let x = Tensor::<Flex, 4>::random([1, 2, 2, 2], Distribution::Normal(0.0, 1.0), &device);
        let pool = MaxPool2dConfig::new([2, 2]).with_dilation([1, 1]).init();
        max_pool2d(&pool, x.clone())
            .to_data()
            .assert_eq(&pool.forward(x).to_data(), true);
    }
}
