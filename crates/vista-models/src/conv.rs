//! Convolutions whose backward pass runs fast on the flex CPU backend.
//!
//! burn 0.21's flex backend leaves a convolution's backward pass to burn's generic
//! defaults. The input gradient is a transposed convolution that walks the batch one
//! image at a time on one thread and scatters its columns element by element; the weight
//! gradient is a convolution of the batch-transposed input with the batch-transposed
//! output gradient as its kernel, which first copies both through strided walks.
//! Profiled on ResNet-18/8 at 28 px, the two took most of a training step.
//!
//! Here, when the backend is `Autodiff<Flex>`, a convolution records its own backward
//! step, as Caffe computes it (Jia et al., "Caffe", 2014): the input unrolled into a
//! column matrix (im2col), then one matrix product over the whole batch for each
//! gradient, and the input gradient folded back from its columns (col2im), with the
//! image planes shared among the threads. The forward pass multiplies the same column
//! matrix by the weights and keeps it for the weight gradient (it is `kh·kw` times the
//! input's size; kept only when the weight trains). Untracked convolutions are flex's
//! own. On every other backend, and for grouped convolutions, biased ones, other
//! precisions or empty batches, [`conv2d`] is burn's `Conv2d::forward`, so results and
//! checkpoints are unchanged.

use std::any::{Any, TypeId};

use burn::backend::Autodiff;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::backend::Backend;
use burn::tensor::ops::{ConvOptions, FloatTensorOps, ModuleOps};
use burn::tensor::{DType, Shape, Tensor, TensorData, TensorMetadata, TensorPrimitive};
use rayon::prelude::*;

/// The training backend the fast backward pass serves.
type Train = Autodiff<Flex>;

/// `conv.forward(x)` for `[batch, channels, height, width]` maps, with the fast backward
/// pass where the backend is `Autodiff<Flex>` (see the module docs).
pub fn conv2d<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    match fast_options(conv, &x) {
        Some(options) => {
            let x: Tensor<Train, 4> = cast(x);
            let weight: Tensor<Train, 4> = cast(conv.weight.val());
            cast(train_conv2d(x, weight, options))
        }
        None => conv.forward(x),
    }
}

/// The convolution's options where [`conv2d`] takes the fast path: the training backend,
/// single precision, one group, no bias, the same padding on both sides.
fn fast_options<B: Backend>(conv: &Conv2d<B>, x: &Tensor<B, 4>) -> Option<ConvOptions<2>> {
    let plain = TypeId::of::<B>() == TypeId::of::<Train>()
        && conv.groups == 1
        && conv.bias.is_none()
        && x.dtype() == DType::F32
        && conv.weight.val().dtype() == DType::F32
        && x.dims()[0] > 0;
    let padding = symmetric_padding(&conv.padding).filter(|_| plain)?;
    Some(ConvOptions::new(conv.stride, padding, conv.dilation, 1))
}

/// `value` as type `U`, which the caller has checked it is.
fn cast<T: 'static, U: 'static>(value: T) -> U {
    let boxed: Box<dyn Any> = Box::new(value);
    *boxed
        .downcast::<U>()
        .expect("the backend's type was checked before the cast")
}

/// `[height, width]` padding where it is the same on both sides of each axis.
fn symmetric_padding(padding: &PaddingConfig2d) -> Option<[usize; 2]> {
    match *padding {
        PaddingConfig2d::Valid => Some([0, 0]),
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            Some([top, left])
        }
        _ => None,
    }
}

/// The convolution on the training backend, with [`ConvBackward`] recorded.
fn train_conv2d(
    x: Tensor<Train, 4>,
    weight: Tensor<Train, 4>,
    options: ConvOptions<2>,
) -> Tensor<Train, 4> {
    let x = x.into_primitive().tensor();
    let weight = weight.into_primitive().tensor();
    let geometry = Geometry::new(&x.primitive.shape(), &weight.primitive.shape(), &options);
    let out = match ConvBackward
        .prepare::<NoCheckpointing>([x.node.clone(), weight.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let weight_state = prep.checkpoint(&weight);
            let columns = columns(&x.primitive, &geometry);
            let out = forward(columns.clone(), weight.primitive, &geometry);
            let kept = (!weight.node.requirement.is_none()).then_some(columns);
            prep.finish((kept, weight_state, geometry), out)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(Flex::conv2d(x.primitive, weight.primitive, None, options))
        }
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// The column matrix of `x` as a tensor `[c_in·kh·kw, n·out_h·out_w]` (see [`im2col`]).
fn columns(x: &FlexTensor, g: &Geometry) -> FlexTensor {
    let x = x.to_contiguous();
    tensor(im2col(x.storage::<f32>(), g), [g.rows(), g.columns()])
}

/// `W · cols`: `[c_out, c_in·kh·kw] × [c_in·kh·kw, n·hw]`, laid out as `[n, c_out, h, w]`.
fn forward(columns: FlexTensor, weight: FlexTensor, g: &Geometry) -> FlexTensor {
    let rows = Flex::float_matmul(weight_rows(weight, g), columns).to_contiguous();
    let out = channel_major_to_batch_major(rows.storage::<f32>(), g);
    tensor(out, [g.n, g.c_out, g.out_h, g.out_w])
}

/// The backward step of [`train_conv2d`]: input and weight gradients through the column
/// matrix the forward pass built.
#[derive(Debug)]
struct ConvBackward;

impl Backward<Flex, 2> for ConvBackward {
    /// The column matrix (when the weight trains), the weight, the sizes.
    type State = (Option<FlexTensor>, NodeId, Geometry);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let (columns, weight_state, g) = ops.state;
        let weight: FlexTensor = checkpointer.retrieve_node_output(weight_state);

        // The output gradient as `[c_out, batch · out_h · out_w]`, the layout both matrix
        // products read.
        let grad_rows = tensor(
            batch_major_to_channel_major(grad.storage::<f32>(), &g),
            [g.c_out, g.columns()],
        );
        if let (Some(node), Some(columns)) = (node_weight, columns) {
            // dW = dY · colsᵀ: `[c_out, n·hw] × [n·hw, c_in·kh·kw]`.
            let dw = Flex::float_matmul(grad_rows.clone(), Flex::float_swap_dims(columns, 0, 1));
            grads.register::<Flex>(
                node.id,
                Flex::float_reshape(dw, weight.layout().shape().clone()),
            );
        }
        if let Some(node) = node_x {
            // dcols = Wᵀ · dY: `[c_in·kh·kw, c_out] × [c_out, n·hw]`, then folded back.
            let w = Flex::float_swap_dims(weight_rows(weight, &g), 0, 1);
            let dcols = Flex::float_matmul(w, grad_rows).to_contiguous();
            let dx = col2im(dcols.storage::<f32>(), &g);
            grads.register::<Flex>(node.id, tensor(dx, [g.n, g.c_in, g.h, g.w]));
        }
    }
}

/// The weight `[c_out, c_in, kh, kw]` as the matrix `[c_out, c_in·kh·kw]`.
fn weight_rows(weight: FlexTensor, g: &Geometry) -> FlexTensor {
    Flex::float_reshape(weight, Shape::new([g.c_out, g.rows()]))
}

fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// Sizes of one convolution: input `[n, c_in, h, w]`, weight `[c_out, c_in, kh, kw]`,
/// output `[n, c_out, out_h, out_w]`.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    n: usize,
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    kh: usize,
    kw: usize,
    out_h: usize,
    out_w: usize,
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
}

impl Geometry {
    fn new(x: &Shape, weight: &Shape, options: &ConvOptions<2>) -> Self {
        let out = |size: usize, k: usize, axis: usize| {
            (size + 2 * options.padding[axis] - options.dilation[axis] * (k - 1) - 1)
                / options.stride[axis]
                + 1
        };
        let (h, w, kh, kw) = (x[2], x[3], weight[2], weight[3]);
        Self {
            n: x[0],
            c_in: x[1],
            h,
            w,
            c_out: weight[0],
            kh,
            kw,
            out_h: out(h, kh, 0),
            out_w: out(w, kw, 1),
            stride: options.stride,
            padding: options.padding,
            dilation: options.dilation,
        }
    }

    /// Rows of the column matrix: one per input channel and kernel position.
    fn rows(&self) -> usize {
        self.c_in * self.kh * self.kw
    }

    /// Output positions of one image.
    fn plane(&self) -> usize {
        self.out_h * self.out_w
    }

    /// Columns of the column matrix: one per image and output position.
    fn columns(&self) -> usize {
        self.n * self.plane()
    }

    /// The output rows (or columns) `lo..hi` on `axis` whose input at kernel offset `k`
    /// lies inside the image, and the input index the first of them reads; each further
    /// one reads `stride` later.
    fn span(&self, k: usize, axis: usize) -> (usize, usize, usize) {
        let (size, out) = if axis == 0 {
            (self.h, self.out_h)
        } else {
            (self.w, self.out_w)
        };
        let (s, p, shift) = (
            self.stride[axis],
            self.padding[axis],
            k * self.dilation[axis],
        );
        let lo = p.saturating_sub(shift).div_ceil(s);
        let hi = if size + p > shift {
            ((size + p - shift - 1) / s + 1).min(out)
        } else {
            0
        };
        let hi = hi.max(lo);
        (lo, hi, (lo * s + shift).saturating_sub(p))
    }
}

/// `[n, c_out, hw]` → `[c_out, n·hw]`.
fn batch_major_to_channel_major(values: &[f32], g: &Geometry) -> Vec<f32> {
    let plane = g.plane();
    let mut out = vec![0.0; values.len()];
    out.par_chunks_mut(g.columns())
        .enumerate()
        .for_each(|(c, row)| {
            for (b, dst) in row.chunks_mut(plane).enumerate() {
                dst.copy_from_slice(&values[(b * g.c_out + c) * plane..][..plane]);
            }
        });
    out
}

/// `[c_out, n·hw]` → `[n, c_out, hw]`.
fn channel_major_to_batch_major(values: &[f32], g: &Geometry) -> Vec<f32> {
    let plane = g.plane();
    let mut out = vec![0.0; values.len()];
    out.par_chunks_mut(g.c_out * plane)
        .enumerate()
        .for_each(|(b, image)| {
            for (c, dst) in image.chunks_mut(plane).enumerate() {
                dst.copy_from_slice(&values[c * g.columns() + b * plane..][..plane]);
            }
        });
    out
}

/// The column matrix `[c_in·kh·kw, n·out_h·out_w]` of an `[n, c_in, h, w]` input: row
/// `(c, i, j)`, column `(b, y, x)` holds the input at channel `c`, row
/// `y·stride − pad + i·dilation`, column `x·stride − pad + j·dilation`, 0 outside.
fn im2col(x: &[f32], g: &Geometry) -> Vec<f32> {
    let mut cols = vec![0.0; g.rows() * g.columns()];
    cols.par_chunks_mut(g.columns())
        .enumerate()
        .for_each(|(row, dst)| {
            let (c, i, j) = (row / (g.kh * g.kw), row / g.kw % g.kh, row % g.kw);
            let (y_lo, y_hi, y0) = g.span(i, 0);
            let (x_lo, x_hi, x0) = g.span(j, 1);
            if x_lo == x_hi {
                return;
            }
            let (sy, sx) = (g.stride[0], g.stride[1]);
            for (b, dst) in dst.chunks_mut(g.plane()).enumerate() {
                let src = &x[(b * g.c_in + c) * g.h * g.w..][..g.h * g.w];
                for (y, dst) in dst.chunks_mut(g.out_w).enumerate().take(y_hi).skip(y_lo) {
                    let src = &src[(y0 + (y - y_lo) * sy) * g.w..][..g.w];
                    let dst = &mut dst[x_lo..x_hi];
                    if sx == 1 {
                        dst.copy_from_slice(&src[x0..x0 + dst.len()]);
                    } else {
                        for (d, s) in dst.iter_mut().zip(src[x0..].iter().step_by(sx)) {
                            *d = *s;
                        }
                    }
                }
            }
        });
    cols
}

/// The adjoint of [`im2col`]: sums a column matrix's entries back onto the input
/// positions they were read from, giving `[n, c_in, h, w]`.
fn col2im(cols: &[f32], g: &Geometry) -> Vec<f32> {
    let mut out = vec![0.0; g.n * g.c_in * g.h * g.w];
    out.par_chunks_mut(g.h * g.w)
        .enumerate()
        .for_each(|(image_channel, dst)| {
            let (b, c) = (image_channel / g.c_in, image_channel % g.c_in);
            for i in 0..g.kh {
                for j in 0..g.kw {
                    let row = (c * g.kh + i) * g.kw + j;
                    let src = &cols[row * g.columns() + b * g.plane()..][..g.plane()];
                    let (y_lo, y_hi, y0) = g.span(i, 0);
                    let (x_lo, x_hi, x0) = g.span(j, 1);
                    if x_lo == x_hi {
                        continue;
                    }
                    let (sy, sx) = (g.stride[0], g.stride[1]);
                    for (y, src) in src.chunks(g.out_w).enumerate().take(y_hi).skip(y_lo) {
                        let dst = &mut dst[(y0 + (y - y_lo) * sy) * g.w..][..g.w];
                        let src = &src[x_lo..x_hi];
                        if sx == 1 {
                            for (d, s) in dst[x0..x0 + src.len()].iter_mut().zip(src) {
                                *d += s;
                            }
                        } else {
                            for (d, s) in dst[x0..].iter_mut().step_by(sx).zip(src) {
                                *d += s;
                            }
                        }
                    }
                }
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use burn::module::Module;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Distribution, Tolerance};

    use super::*;

    /// The fast path against burn's own convolution: output, input and weight gradients.
    fn check(
        n: usize,
        c: [usize; 2],
        size: [usize; 2],
        kernel: [usize; 2],
        stride: [usize; 2],
        pad: [usize; 2],
        dilation: [usize; 2],
    ) {
        let device = Default::default();
        let conv = Conv2dConfig::new(c, kernel)
            .with_stride(stride)
            .with_dilation(dilation)
            .with_padding(PaddingConfig2d::Explicit(pad[0], pad[1], pad[0], pad[1]))
            .with_bias(false)
            .init::<Train>(&device);
        let x = Tensor::<Train, 4>::random(
            [n, c[0], size[0], size[1]],
            Distribution::Normal(0.0, 1.0),
            &device,
        )
        .require_grad();
        let case = format!(
            "n {n} c {c:?} size {size:?} kernel {kernel:?} stride {stride:?} pad {pad:?} dilation {dilation:?}"
        );
        assert!(fast_options(&conv, &x).is_some(), "{case}");
        let ours = conv2d(&conv, x.clone());
        let reference = conv.forward(x.clone());
        assert_eq!(ours.dims(), reference.dims(), "{case}");
        let tolerance = Tolerance::absolute(1e-4);
        ours.to_data()
            .assert_approx_eq::<f32>(&reference.to_data(), tolerance);

        // A loss whose gradient with respect to the output is an arbitrary map.
        let w = Tensor::<Train, 4>::random(ours.dims(), Distribution::Normal(0.0, 1.0), &device);
        let g_ours = (ours * w.clone()).sum().backward();
        let g_ref = (reference * w).sum().backward();
        let grad = |g| x.grad(g).expect("input gradient").to_data();
        grad(&g_ours).assert_approx_eq::<f32>(&grad(&g_ref), tolerance);
        let wgrad = |g| conv.weight.grad(g).expect("weight gradient").to_data();
        wgrad(&g_ours).assert_approx_eq::<f32>(&wgrad(&g_ref), tolerance);
    }

    #[test]
    fn gradients_match_burns_convolution() {
        check(2, [3, 4], [7, 7], [3, 3], [1, 1], [1, 1], [1, 1]);
        check(3, [4, 2], [8, 9], [3, 3], [2, 2], [1, 1], [1, 1]);
        check(2, [3, 5], [6, 6], [1, 1], [1, 1], [0, 0], [1, 1]);
        check(2, [3, 5], [7, 6], [1, 1], [2, 2], [0, 0], [1, 1]);
        check(1, [2, 3], [9, 8], [7, 7], [2, 2], [3, 3], [1, 1]);
        check(2, [2, 3], [7, 7], [1, 7], [1, 1], [0, 3], [1, 1]);
        check(2, [2, 3], [7, 7], [7, 1], [1, 1], [3, 0], [1, 1]);
        check(2, [3, 3], [9, 9], [3, 3], [1, 1], [2, 2], [2, 2]);
        check(2, [3, 2], [5, 5], [3, 3], [3, 2], [0, 2], [1, 1]);
        // Padding wider than the kernel reaches: some output rows read nothing at all.
        check(1, [2, 2], [3, 3], [2, 2], [1, 1], [3, 3], [1, 1]);
    }

    #[test]
    fn an_input_without_gradient_and_an_untracked_convolution() {
        let device = Default::default();
        let conv = Conv2dConfig::new([3, 4], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_bias(false)
            .init::<Train>(&device);
        // The first layer: its input needs no gradient, its weight does.
        let x = Tensor::<Train, 4>::random([2, 3, 6, 6], Distribution::Normal(0.0, 1.0), &device);
        let grads = conv2d(&conv, x.clone()).sum().backward();
        let reference = conv.forward(x.clone()).sum().backward();
        let wgrad = |g| conv.weight.grad(g).expect("weight gradient").to_data();
        wgrad(&grads).assert_approx_eq::<f32>(&wgrad(&reference), Tolerance::absolute(1e-4));
        // A frozen layer inside the network: the input needs a gradient, the weight not.
        let frozen = conv.clone().no_grad();
        let xg = x.clone().require_grad();
        let grads = conv2d(&frozen, xg.clone()).sum().backward();
        let reference = frozen.forward(xg.clone()).sum().backward();
        let xgrad = |g| xg.grad(g).expect("input gradient").to_data();
        xgrad(&grads).assert_approx_eq::<f32>(&xgrad(&reference), Tolerance::absolute(1e-4));
        // Nothing tracked: a frozen layer on an input without gradient.
        conv2d(&frozen, x.clone())
            .to_data()
            .assert_approx_eq::<f32>(&frozen.forward(x).to_data(), Tolerance::absolute(1e-4));
    }

    #[test]
    fn other_backends_and_grouped_convolutions_use_burns() {
        let device = Default::default();
        let conv = Conv2dConfig::new([4, 4], [3, 3])
            .with_groups(2)
            .with_bias(false)
            .init::<Train>(&device);
        let x = Tensor::<Train, 4>::random([2, 4, 5, 5], Distribution::Normal(0.0, 1.0), &device);
        assert!(fast_options(&conv, &x).is_none());
        conv2d(&conv, x.clone())
            .to_data()
            .assert_eq(&conv.forward(x).to_data(), true);
        let conv = Conv2dConfig::new([2, 3], [3, 3])
            .with_bias(false)
            .init::<Flex>(&device);
        let x = Tensor::<Flex, 4>::random([2, 2, 5, 5], Distribution::Normal(0.0, 1.0), &device);
        assert!(fast_options(&conv, &x).is_none());
        conv2d(&conv, x.clone())
            .to_data()
            .assert_eq(&conv.forward(x).to_data(), true);
    }
}
