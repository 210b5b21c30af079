//! Convolutions that train and infer fast on the flex CPU backend.
//!
//! burn 0.21's flex backend leaves a convolution's backward pass to burn's generic
//! defaults. The input gradient is a transposed convolution that walks the batch one
//! image at a time on one thread and scatters its columns element by element; the weight
//! gradient is a convolution of the batch-transposed input with the batch-transposed
//! output gradient as its kernel, which first copies both through strided walks.
//! Profiled on ResNet-18/8 at 28 px, the two took most of a training step.
//!
//! Here, when the backend is `Autodiff<Flex>`, a convolution records its own backward
//! step, as Caffe computes it (Jia et al., "Caffe", 2014), one image at a time so each
//! image's matrices stay in cache: the image unrolled into a column matrix (im2col) and
//! multiplied by the weights at once, giving the output in its `[n, c, h, w]` layout
//! without a copy; in the backward pass, the weight gradient summed over the images'
//! products `dY·colsᵀ` (in fixed groups, so the sum does not depend on the number of
//! threads), and the input gradient `Wᵀ·dY` folded back onto the image (col2im) from a
//! per-thread scratch matrix. Images are shared among the threads of the current rayon
//! pool. Column matrices live only in per-thread scratch (a 1×1 kernel with stride 1
//! and no padding reads the image itself): for the weight gradient the backward pass rebuilds them from
//! the input it keeps, since keeping them would hold `kh·kw` copies of every layer's
//! input until the backward pass, most of a training step's memory at photo sizes. The
//! matrix products call the gemm crate that burn-flex uses, directly, to write into these
//! layouts. Untracked convolutions, and those on plain `Flex` (inference), run the same
//! forward pass and keep nothing.
//! On every other backend, and for grouped convolutions, biased ones, other precisions
//! or empty batches, [`conv2d`] is burn's `Conv2d::forward`, so results and checkpoints
//! are unchanged.

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
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Shape, Tensor, TensorData, TensorMetadata, TensorPrimitive};
use rayon::prelude::*;

/// The training backend the fast backward pass serves.
type Train = Autodiff<Flex>;

/// `conv.forward(x)` for `[batch, channels, height, width]` maps, with the fast backward
/// pass where the backend is `Autodiff<Flex>` and the same image-by-image forward pass
/// on plain `Flex`, as inference runs (see the module docs).
pub fn conv2d<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let Some(options) = fast_options(conv, &x) else {
        return conv.forward(x);
    };
    if TypeId::of::<B>() == TypeId::of::<Train>() {
        let x: Tensor<Train, 4> = cast(x);
        let weight: Tensor<Train, 4> = cast(conv.weight.val());
        cast(train_conv2d(x, weight, options))
    } else {
        let x: Tensor<Flex, 4> = cast(x);
        let weight: Tensor<Flex, 4> = cast(conv.weight.val());
        let out = infer_conv2d(
            x.into_primitive().tensor(),
            weight.into_primitive().tensor(),
            options,
        );
        cast(Tensor::<Flex, 4>::from_primitive(TensorPrimitive::Float(
            out,
        )))
    }
}

/// The convolution's options where [`conv2d`] takes the fast path: the training backend
/// or plain flex, single precision, one group, no bias, the same padding on both sides.
fn fast_options<B: Backend>(conv: &Conv2d<B>, x: &Tensor<B, 4>) -> Option<ConvOptions<2>> {
    let backend = TypeId::of::<B>();
    let plain = (backend == TypeId::of::<Train>() || backend == TypeId::of::<Flex>())
        && conv.groups == 1
        && conv.bias.is_none()
        && x.dtype() == DType::F32
        && conv.weight.val().dtype() == DType::F32
        && x.dims()[0] > 0;
    let padding = symmetric_padding(&conv.padding).filter(|_| plain)?;
    Some(ConvOptions::new(conv.stride, padding, conv.dilation, 1))
}

/// `value` as type `U`, which the caller has checked it is.
pub(super) fn cast<T: 'static, U: 'static>(value: T) -> U {
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
    let input = x.primitive.to_contiguous();
    let out = forward_tensor(&input, &weight.primitive, &geometry);
    let out = match ConvBackward
        .prepare::<NoCheckpointing>([x.node.clone(), weight.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let weight_state = prep.checkpoint(&weight);
            // The weight gradient rebuilds each image's column matrix from the input:
            // keeping the matrices instead would hold `kh·kw` copies of it.
            let kept = (!weight.node.requirement.is_none()).then_some(input);
            prep.finish((kept, weight_state, geometry), out)
        }
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// The convolution without a backward step, as inference runs it on plain `Flex`.
fn infer_conv2d(x: FlexTensor, weight: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
    let g = Geometry::new(&x.shape(), &weight.shape(), &options);
    forward_tensor(&x.to_contiguous(), &weight, &g)
}

/// [`forward`] on flex tensors; `x` is contiguous (`to_contiguous`'s result).
fn forward_tensor(x: &FlexTensor, weight: &FlexTensor, g: &Geometry) -> FlexTensor {
    debug_assert!(x.is_contiguous(), "the caller makes the input contiguous");
    let weight = weight.to_contiguous();
    let out = forward(x.storage::<f32>(), weight.storage::<f32>(), g);
    tensor(out, [g.n, g.c_out, g.out_h, g.out_w])
}

/// The output `[n, c_out, out_h, out_w]` of an `[n, c_in, h, w]` input: each group of
/// images' column matrix `[c_in·kh·kw, images·out_h·out_w]` (see [`Columns`]) multiplied
/// by the weight as soon as it is built, while it is in cache.
fn forward(x: &[f32], weight: &[f32], g: &Geometry) -> Vec<f32> {
    let mut out = vec![0.0; g.n * g.c_out * g.plane()];
    let w = Mat::row_major(weight, g.c_out, g.rows());
    let taps = g.kernel_taps();
    let (group, parallelism) = g.grouping();
    out.par_chunks_mut(group * g.c_out * g.plane())
        .enumerate()
        .for_each(|(i, out)| {
            with_scratch(|s| {
                let images = i * group..i * group + out.len() / (g.c_out * g.plane());
                let cols = s.cols.build(x, g, &taps, images.clone());
                if images.len() == 1 {
                    matmul(out, w, cols, false, parallelism);
                } else {
                    s.product.resize(g.c_out * cols.cols, 0.0);
                    matmul(&mut s.product, w, cols, false, parallelism);
                    ungather(&s.product, out, g.c_out, g.plane());
                }
            })
        });
    out
}

/// Per-thread matrices of one group of images: its column matrix and a product or
/// gathered gradient laid out `[channels, images·plane]`.
#[derive(Default)]
struct Scratch {
    cols: Columns,
    product: Vec<f32>,
}

/// Scratch matrices larger than this many values are freed after use rather than kept
/// for the thread's next convolution (256 MiB: a photo-sized first layer's columns).
const SCRATCH_KEPT: usize = 1 << 26;

thread_local! {
    /// Each thread's scratch matrices, kept from one convolution to the next: fresh ones
    /// per call cost an allocation and, at these sizes, the kernel zeroing new pages.
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// `f` with this thread's [`Scratch`], or a fresh one where it is in use (a group that
/// this thread took up while waiting inside a threaded gemm call of another group).
fn with_scratch<T>(f: impl FnOnce(&mut Scratch) -> T) -> T {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => {
            let out = f(&mut s);
            let s = &mut *s;
            for v in [&mut s.cols.values, &mut s.product] {
                if v.capacity() > SCRATCH_KEPT {
                    *v = Vec::new();
                }
            }
            out
        }
        Err(_) => f(&mut Scratch::default()),
    })
}

/// `[images, channels, plane]` maps (`src`, one group of images' part of a batch) laid
/// side by side as the `[channels, images·plane]` matrix `dst`: a group's images become
/// one matrix product's columns.
fn gather(src: &[f32], dst: &mut Vec<f32>, channels: usize, plane: usize) {
    let images = src.len() / (channels * plane);
    dst.resize(src.len(), 0.0);
    for (b, image) in src.chunks(channels * plane).enumerate() {
        for (c, row) in image.chunks(plane).enumerate() {
            dst[(c * images + b) * plane..][..plane].copy_from_slice(row);
        }
    }
}

/// The inverse of [`gather`]: the `[channels, images·plane]` matrix `src` written back
/// as `[images, channels, plane]` maps into `dst`.
fn ungather(src: &[f32], dst: &mut [f32], channels: usize, plane: usize) {
    let images = dst.len() / (channels * plane);
    for (b, image) in dst.chunks_mut(channels * plane).enumerate() {
        for (c, row) in image.chunks_mut(plane).enumerate() {
            row.copy_from_slice(&src[(c * images + b) * plane..][..plane]);
        }
    }
}

/// The backward step of [`train_conv2d`]: the input gradient through the weight, the
/// weight gradient through column matrices rebuilt from the kept input.
#[derive(Debug)]
struct ConvBackward;

impl Backward<Flex, 2> for ConvBackward {
    /// The contiguous input (when the weight trains), the weight, the sizes.
    type State = (Option<FlexTensor>, NodeId, Geometry);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let (input, weight_state, g) = ops.state;
        let weight: FlexTensor = checkpointer.retrieve_node_output(weight_state);
        let dy = grad.storage::<f32>();
        if let (Some(node), Some(input)) = (node_weight, input) {
            let dw = weight_grad(dy, input.storage::<f32>(), &g);
            grads.register::<Flex>(node.id, tensor(dw, [g.c_out, g.c_in, g.kh, g.kw]));
        }
        if let Some(node) = node_x {
            let weight = weight.to_contiguous();
            let dx = input_grad(dy, weight.storage::<f32>(), &g);
            grads.register::<Flex>(node.id, tensor(dx, [g.n, g.c_in, g.h, g.w]));
        }
    }
}

/// Images whose weight-gradient terms are summed together before the partial sums are
/// added in order: a fixed grouping (at least this many, a whole number of
/// [`Geometry::grouping`]'s groups), so the sum is the same on any number of threads.
const IMAGES_PER_PARTIAL_SUM: usize = 8;

/// dW = Σ_b dY_b · cols_bᵀ: `[c_out, out_h·out_w] × [out_h·out_w, c_in·kh·kw]` per image,
/// taken a group of images at a time (`[c_out, images·plane] × [images·plane, rows]`),
/// each group's column matrix rebuilt from the input `x` (see [`Columns`]).
fn weight_grad(dy: &[f32], x: &[f32], g: &Geometry) -> Vec<f32> {
    let out_block = g.c_out * g.plane();
    let taps = g.kernel_taps();
    let (group, parallelism) = g.grouping();
    let per_sum = group * IMAGES_PER_PARTIAL_SUM.div_ceil(group);
    let partials: Vec<Vec<f32>> = (0..g.n.div_ceil(per_sum))
        .into_par_iter()
        .map(|partial| {
            with_scratch(|s| {
                let mut sum: Option<Vec<f32>> = None;
                let end = ((partial + 1) * per_sum).min(g.n);
                for first in (partial * per_sum..end).step_by(group) {
                    let images = first..(first + group).min(end);
                    let dy = &dy[images.start * out_block..images.end * out_block];
                    let dy = if images.len() == 1 {
                        dy
                    } else {
                        gather(dy, &mut s.product, g.c_out, g.plane());
                        &s.product
                    };
                    let cols = s.cols.build(x, g, &taps, images);
                    let dy = Mat::row_major(dy, g.c_out, cols.cols);
                    match &mut sum {
                        Some(sum) => matmul(sum, dy, cols.transposed(), true, parallelism),
                        None => sum = Some(product(dy, cols.transposed(), parallelism)),
                    }
                }
                sum.unwrap_or_default()
            })
        })
        .collect();
    let mut partials = partials.into_iter();
    let mut dw = partials.next().unwrap_or_default();
    for partial in partials {
        for (d, p) in dw.iter_mut().zip(partial) {
            *d += p;
        }
    }
    dw
}

/// dx: per group of images, dcols = Wᵀ · dY (`[c_in·kh·kw, c_out] × [c_out,
/// images·out_h·out_w]`), folded back onto each image with [`col2im`] while it is in cache.
fn input_grad(dy: &[f32], weight: &[f32], g: &Geometry) -> Vec<f32> {
    let out_block = g.c_out * g.plane();
    let w = Mat::row_major(weight, g.c_out, g.rows()).transposed();
    let taps = g.kernel_taps();
    let (group, parallelism) = g.grouping();
    let mut dx = vec![0.0; g.n * g.image()];
    dx.par_chunks_mut(group * g.image())
        .enumerate()
        .for_each(|(i, dx)| {
            with_scratch(|s| {
                let images = dx.len() / g.image();
                let dy = &dy[i * group * out_block..][..images * out_block];
                let dy = if images == 1 {
                    dy
                } else {
                    gather(dy, &mut s.product, g.c_out, g.plane());
                    &s.product
                };
                let width = images * g.plane();
                let dcols = &mut s.cols.values;
                dcols.resize(g.rows() * width, 0.0);
                matmul(
                    dcols,
                    w,
                    Mat::row_major(dy, g.c_out, width),
                    false,
                    parallelism,
                );
                for (b, dx) in dx.chunks_mut(g.image()).enumerate() {
                    col2im(&mut dcols[b * g.plane()..], width, dx, g, &taps);
                }
            })
        });
    dx
}

/// A matrix over a slice: `rows × cols`, the element `(r, c)` at `r·row_stride +
/// c·col_stride`.
#[derive(Debug, Clone, Copy)]
struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Mat<'a> {
    fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    fn transposed(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Whether every element lies inside the slice.
    fn fits(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride
                < self.data.len()
    }
}

use products::{matmul, product};

/// The calls into the gemm crate, whose API takes pointers and strides: the one place
/// this crate allows `unsafe`, each call after checking the matrices against its slices.
#[allow(unsafe_code)]
mod products {
    use super::Mat;

    /// `dst = a · b`, or `dst += a · b` when `accumulate`; `dst` is the row-major
    /// `[a.rows, b.cols]` matrix. The callers share groups of images among threads; where
    /// there are fewer groups than threads, gemm splits each product's rows and columns
    /// among them (`parallelism`), which leaves every element's sum as it is.
    pub(super) fn matmul(
        dst: &mut [f32],
        a: Mat<'_>,
        b: Mat<'_>,
        accumulate: bool,
        parallelism: gemm::Parallelism,
    ) {
        assert_eq!(dst.len(), a.rows * b.cols, "the product's size");
        // SAFETY: `dst` holds the `[a.rows, b.cols]` row-major matrix, borrowed mutably, so
        // it overlaps neither operand.
        unsafe { gemm_into(dst.as_mut_ptr(), a, b, accumulate, parallelism) }
    }

    /// `a · b` as a new row-major `[a.rows, b.cols]` matrix, written once by gemm (no zeroing
    /// pass first).
    pub(super) fn product(a: Mat<'_>, b: Mat<'_>, parallelism: gemm::Parallelism) -> Vec<f32> {
        let len = a.rows * b.cols;
        let mut dst = Vec::with_capacity(len);
        // SAFETY: gemm writes every element of the `[a.rows, b.cols]` destination without
        // reading it when it does not accumulate (with `k = 0` it writes zeros), so all `len`
        // values are initialized before `set_len`; the new allocation overlaps no operand.
        unsafe {
            gemm_into(dst.as_mut_ptr(), a, b, false, parallelism);
            dst.set_len(len);
        }
        dst
    }

    /// The gemm call of [`matmul`] and [`product`].
    ///
    /// # Safety
    /// `dst` points to `a.rows · b.cols` writable values (initialized where `accumulate`)
    /// that overlap neither operand.
    unsafe fn gemm_into(
        dst: *mut f32,
        a: Mat<'_>,
        b: Mat<'_>,
        accumulate: bool,
        parallelism: gemm::Parallelism,
    ) {
        let (m, k, n) = (a.rows, a.cols, b.cols);
        assert!(
            b.rows == k && a.fits() && b.fits(),
            "matrix sizes do not match: [{m}, {k}] · [{}, {n}]",
            b.rows,
        );
        let stride = |s: usize| isize::try_from(s).expect("stride fits in isize");
        // SAFETY: the assertion above keeps every element gemm reads inside `a` and `b`; the
        // caller vouches for `dst`.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                dst,
                1,
                stride(n),
                accumulate,
                a.data.as_ptr(),
                stride(a.col_stride),
                stride(a.row_stride),
                b.data.as_ptr(),
                stride(b.col_stride),
                stride(b.row_stride),
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
    }
}

fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// The positions the rows of a column matrix at one kernel offset read, in each input
/// channel: output rows `y_lo..y_hi` and columns `x_lo..x_hi` lie inside the image, the
/// first of them at input row `y0` and column `x0`.
#[derive(Debug, Clone, Copy)]
struct Tap {
    y_lo: usize,
    y_hi: usize,
    y0: usize,
    x_lo: usize,
    x_hi: usize,
    x0: usize,
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

    /// One image's input values.
    fn image(&self) -> usize {
        self.c_in * self.h * self.w
    }

    /// Whether the column matrix is the image itself: a 1×1 kernel, stride 1, no padding.
    fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == [1, 1] && self.padding == [0, 0]
    }

    /// Where the rows of a column matrix at each kernel offset (kernel row, kernel column)
    /// read, or `None` when every one of their positions lies outside the image. Row
    /// `(c, i, j)` reads channel `c` at offset `i·kw + j`.
    fn kernel_taps(&self) -> Vec<Option<Tap>> {
        (0..self.kh * self.kw)
            .map(|k| {
                let (y_lo, y_hi, y0) = self.span(k / self.kw, 0);
                let (x_lo, x_hi, x0) = self.span(k % self.kw, 1);
                (y_lo < y_hi && x_lo < x_hi).then_some(Tap {
                    y_lo,
                    y_hi,
                    y0,
                    x_lo,
                    x_hi,
                    x0,
                })
            })
            .collect()
    }

    /// Images whose column matrices are laid side by side into one matrix product, and
    /// how each product is threaded. A small output plane (a late layer, a small image)
    /// would make thin products that use a fraction of the gemm microkernel's rows, so
    /// images are grouped until a product has [`MIN_PRODUCT_COLUMNS`] columns. The
    /// grouping depends on the sizes alone, so sums do not change with the thread count;
    /// where there are fewer groups than threads, gemm threads each product instead.
    fn grouping(&self) -> (usize, gemm::Parallelism) {
        let group = MIN_PRODUCT_COLUMNS
            .div_ceil(self.plane().max(1))
            .clamp(1, self.n.max(1));
        let parallelism = if self.n.div_ceil(group) < rayon::current_num_threads() {
            gemm::Parallelism::Rayon(0)
        } else {
            gemm::Parallelism::None
        };
        (group, parallelism)
    }

    /// Where a row of the column matrix is the input plane shifted (stride 1, output as
    /// wide as the input): the start in the plane and the length of the one contiguous
    /// run that covers its valid positions, from `(y_lo, x_lo)` to `(y_hi − 1, x_hi − 1)`.
    fn shifted_run(&self, t: &Tap) -> Option<(usize, usize)> {
        (self.stride == [1, 1] && self.out_w == self.w).then(|| {
            (
                t.y0 * self.w + t.x0,
                (t.y_hi - 1 - t.y_lo) * self.w + (t.x_hi - t.x_lo),
            )
        })
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

/// Columns of one matrix product, the output positions of a group of images: below
/// this, images are grouped (see [`Geometry::grouping`]).
const MIN_PRODUCT_COLUMNS: usize = 256;

/// A per-thread column matrix.
#[derive(Default)]
struct Columns {
    values: Vec<f32>,
}

impl Columns {
    /// The column matrix `[c_in·kh·kw, images·out_h·out_w]` of `images` of the batch `x`
    /// (`[n, c_in, h, w]`), each image's [`im2col`] matrix beside the previous one's: the
    /// image itself where there is one image and the kernel is 1×1 with stride 1 and no
    /// padding, otherwise built in this scratch.
    fn build<'a>(
        &'a mut self,
        x: &'a [f32],
        g: &Geometry,
        taps: &[Option<Tap>],
        images: std::ops::Range<usize>,
    ) -> Mat<'a> {
        let width = images.len() * g.plane();
        if g.is_pointwise() && images.len() == 1 {
            return Mat::row_major(&x[images.start * g.image()..][..g.image()], g.rows(), width);
        }
        self.values.resize(g.rows() * width, 0.0);
        for (b, image) in images.enumerate() {
            let x = &x[image * g.image()..][..g.image()];
            im2col(x, g, taps, &mut self.values[b * g.plane()..], width);
        }
        Mat::row_major(&self.values, g.rows(), width)
    }
}

/// One image's column matrix `[c_in·kh·kw, out_h·out_w]`, written into `cols`, whose rows
/// are `ld` apart: row `(c, i, j)`, column `(y, x)` holds the input at channel `c`, row
/// `y·stride − pad + i·dilation`, column `x·stride − pad + j·dilation`, or 0 outside the
/// image. Every value is written once.
fn im2col(x: &[f32], g: &Geometry, taps: &[Option<Tap>], cols: &mut [f32], ld: usize) {
    let (sy, sx) = (g.stride[0], g.stride[1]);
    for (row, tap) in (0..g.rows()).zip(taps.iter().cycle()) {
        let dst = &mut cols[row * ld..][..g.plane()];
        let Some(t) = tap else {
            dst.fill(0.0);
            continue;
        };
        let src = &x[row / taps.len() * g.h * g.w..][..g.h * g.w];
        dst[..t.y_lo * g.out_w + t.x_lo].fill(0.0);
        if let Some((from, len)) = g.shifted_run(t) {
            // The whole band of valid rows is one shifted copy of the input plane; the
            // values that wrapped across a row's end are then put back to 0.
            let start = t.y_lo * g.out_w + t.x_lo;
            dst[start..start + len].copy_from_slice(&src[from..from + len]);
            for y in t.y_lo..t.y_hi - 1 {
                dst[y * g.out_w + t.x_hi..(y + 1) * g.out_w + t.x_lo].fill(0.0);
            }
            dst[start + len..].fill(0.0);
            continue;
        }
        let n = t.x_hi - t.x_lo;
        for y in t.y_lo..t.y_hi {
            let src = &src[(t.y0 + (y - t.y_lo) * sy) * g.w..][..g.w];
            let line = &mut dst[y * g.out_w..][..g.out_w];
            line[..t.x_lo].fill(0.0);
            if sx == 1 {
                line[t.x_lo..t.x_hi].copy_from_slice(&src[t.x0..t.x0 + n]);
            } else {
                for (d, s) in line[t.x_lo..t.x_hi]
                    .iter_mut()
                    .zip(src[t.x0..].iter().step_by(sx))
                {
                    *d = *s;
                }
            }
            line[t.x_hi..].fill(0.0);
        }
        dst[t.y_hi * g.out_w..].fill(0.0);
    }
}

/// The adjoint of [`im2col`] for one image: adds each entry of its column matrix (rows
/// `ld` apart in `cols`) onto the input position it was read from, in `dx`
/// (`[c_in, h, w]`). The entries for positions outside the image are set to 0 in `cols`
/// on the way.
fn col2im(cols: &mut [f32], ld: usize, dx: &mut [f32], g: &Geometry, taps: &[Option<Tap>]) {
    let (sy, sx) = (g.stride[0], g.stride[1]);
    for (row, tap) in (0..g.rows()).zip(taps.iter().cycle()) {
        let Some(t) = tap else { continue };
        let src = &mut cols[row * ld..][..g.plane()];
        let dst = &mut dx[row / taps.len() * g.h * g.w..][..g.h * g.w];
        if let Some((from, len)) = g.shifted_run(t) {
            for y in t.y_lo..t.y_hi - 1 {
                src[y * g.out_w + t.x_hi..(y + 1) * g.out_w + t.x_lo].fill(0.0);
            }
            let src = &src[t.y_lo * g.out_w + t.x_lo..][..len];
            for (d, s) in dst[from..from + len].iter_mut().zip(src) {
                *d += s;
            }
            continue;
        }
        for (y, src) in src.chunks(g.out_w).enumerate().take(t.y_hi).skip(t.y_lo) {
            let dst = &mut dst[(t.y0 + (y - t.y_lo) * sy) * g.w..][..g.w];
            let src = &src[t.x_lo..t.x_hi];
            if sx == 1 {
                for (d, s) in dst[t.x0..t.x0 + src.len()].iter_mut().zip(src) {
                    *d += s;
                }
            } else {
                for (d, s) in dst[t.x0..].iter_mut().step_by(sx).zip(src) {
                    *d += s;
                }
            }
        }
    }
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
        // Shifted copies: an output shorter than the input, a one-row image.
        check(2, [2, 3], [6, 5], [3, 1], [1, 1], [0, 0], [1, 1]);
        check(2, [2, 3], [1, 4], [3, 3], [1, 1], [1, 1], [1, 1]);
        check(2, [2, 3], [5, 9], [3, 3], [1, 1], [1, 1], [1, 1]);
        // Planes large enough that each image is its own product (with a 1×1 kernel, the
        // image itself), and small planes grouped with a remainder group.
        check(2, [3, 4], [17, 16], [3, 3], [1, 1], [1, 1], [1, 1]);
        check(2, [3, 4], [17, 16], [1, 1], [1, 1], [0, 0], [1, 1]);
        check(11, [3, 4], [6, 7], [1, 1], [1, 1], [0, 0], [1, 1]);
        check(11, [3, 4], [10, 10], [3, 3], [2, 2], [1, 1], [1, 1]);
        // More images than one partial sum of the weight gradient holds.
        check(
            IMAGES_PER_PARTIAL_SUM * 2 + 3,
            [3, 4],
            [5, 5],
            [3, 3],
            [1, 1],
            [1, 1],
            [1, 1],
        );
    }

    #[test]
    fn gradients_are_the_same_on_any_number_of_threads() {
        // Three groups of images, and one group that gemm threads itself.
        for (n, c_out) in [(21, 5), (3, 40)] {
            same_on_any_number_of_threads(n, c_out);
        }
    }

    fn same_on_any_number_of_threads(n: usize, c_out: usize) {
        let device = Default::default();
        let conv = Conv2dConfig::new([3, c_out], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_bias(false)
            .init::<Train>(&device);
        let x = Tensor::<Train, 4>::random([n, 3, 6, 6], Distribution::Normal(0.0, 1.0), &device)
            .require_grad();
        let grads_on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let grads = conv2d(&conv, x.clone()).powi_scalar(2).sum().backward();
                let w = conv.weight.grad(&grads).unwrap().to_data();
                let y = conv2d(&conv, x.clone().detach()).to_data();
                (w, x.grad(&grads).unwrap().to_data(), y)
            })
        };
        let one = grads_on(1);
        for threads in [2, 3] {
            let many = grads_on(threads);
            assert_eq!(one.0, many.0, "weight gradient on {threads} threads");
            assert_eq!(one.1, many.1, "input gradient on {threads} threads");
            assert_eq!(one.2, many.2, "output on {threads} threads");
        }
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
    fn grouped_convolutions_use_burns_and_plain_flex_infers_as_burn_does() {
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
        // Inference on plain flex takes the image-by-image forward pass.
        for (kernel, stride, pad) in [(3, 1, 1), (7, 2, 3), (1, 2, 0)] {
            let conv = Conv2dConfig::new([2, 3], [kernel, kernel])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .with_bias(false)
                .init::<Flex>(&device);
            let x =
                Tensor::<Flex, 4>::random([3, 2, 9, 8], Distribution::Normal(0.0, 1.0), &device);
            assert!(fast_options(&conv, &x).is_some());
            conv2d(&conv, x.clone())
                .to_data()
                .assert_approx_eq::<f32>(&conv.forward(x).to_data(), Tolerance::absolute(1e-4));
        }
        let biased = Conv2dConfig::new([2, 3], [3, 3]).init::<Flex>(&device);
        let x = Tensor::<Flex, 4>::random([2, 2, 5, 5], Distribution::Normal(0.0, 1.0), &device);
        assert!(fast_options(&biased, &x).is_none());
    }
}
