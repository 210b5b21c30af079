//! One convolution's training step (forward, then backward to the input and the weight)
//! on the flex CPU backend: burn's `Conv2d::forward` against vista's [`conv2d`], which
//! records its own im2col backward pass on `Autodiff<Flex>`.
//!
//! Run: `MIMALLOC_PURGE_DELAY=-1 RAYON_NUM_THREADS=1 cargo bench -p vista-models --bench
//! conv`, which allocates as the `vista` binary does (mimalloc, freed pages kept) and
//! computes as one training shard does (one thread). The shapes are ResNet-18/8's 3x3
//! convolutions at 28 px on one core's shard of a 128-image batch (64 images), and one
//! stride-2 convolution; compare `burn` with `vista` in each group.

use std::hint::black_box;

use burn::backend::{Autodiff, Flex};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{Distribution, Tensor};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use vista_models::conv2d;

type B = Autodiff<Flex>;

/// The `vista` binary's allocator: with the system's, fresh pages for the column
/// matrices dominate the measurement.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn step(conv: &Conv2d<B>, x: &Tensor<B, 4>, ours: bool) {
    let y = if ours {
        conv2d(conv, x.clone())
    } else {
        conv.forward(x.clone())
    };
    black_box(y.sum().backward());
}

fn bench(c: &mut Criterion) {
    let device = Default::default();
    let n = 64;
    for (channels, size, stride) in [(8, 28, 1), (16, 14, 1), (32, 7, 1), (64, 4, 1), (8, 28, 2)] {
        let out = if stride == 1 { channels } else { channels * 2 };
        let conv = Conv2dConfig::new([channels, out], [3, 3])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_bias(false)
            .init::<B>(&device);
        let x = Tensor::<B, 4>::random(
            [n, channels, size, size],
            Distribution::Normal(0.0, 1.0),
            &device,
        )
        .require_grad();
        let mut group = c.benchmark_group(format!(
            "conv3x3 {channels}->{out} at {size} px, stride {stride}"
        ));
        group.throughput(Throughput::Elements(n as u64));
        for (name, ours) in [("burn", false), ("vista", true)] {
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| step(&conv, &x, ours))
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
