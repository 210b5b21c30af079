//! Running a model over shards of a batch, one thread per device: the data parallelism
//! that training and inference share.

use std::sync::{Arc, Mutex};
use std::thread;

use burn::module::Module;
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use crate::registry::Classifier;

/// Splits `n` rows into at most `devices` contiguous, non-empty, near-equal ranges.
pub fn shard_ranges(n: usize, devices: usize) -> Vec<std::ops::Range<usize>> {
    let shards = devices.clamp(1, n.max(1));
    let per = n.div_ceil(shards);
    (0..shards)
        .map(|i| (i * per).min(n)..((i + 1) * per).min(n))
        .filter(|r| !r.is_empty() || n == 0)
        .collect()
}

/// Softmax probabilities of `images` (row-major `[n, 3, size, size]`), sharded over the
/// devices' threads.
pub fn infer_probs<B: Backend, M: Classifier<B> + Module<B>>(
    model: &M,
    devices: &[B::Device],
    images: &[f32],
    size: usize,
) -> Vec<f32> {
    let image_len = 3 * size * size;
    let n = images.len() / image_len;
    let run = |model: &M, device: &B::Device, images: &[f32]| -> Vec<f32> {
        let rows = images.len() / image_len;
        let x = Tensor::<B, 4>::from_data(
            TensorData::new(images.to_vec(), [rows, 3, size, size]),
            device,
        );
        softmax(model.logits(x), 1)
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .expect("probabilities are f32")
    };
    let many = devices.len() > 1 && n > 1;
    on_shards(n, devices, |r, device| {
        let part = &images[r.start * image_len..r.end * image_len];
        if many {
            run(&model.clone().fork(device), device, part)
        } else {
            run(model, device, part)
        }
    })
    .concat()
}

/// Runs `f` on each shard of `n` rows with its device: inline when there is one shard,
/// else each shard inside its own single-thread rayon pool. Results come in shard order.
///
/// burn-flex splits its kernels over rayon's global pool. Called from plain threads, every
/// kernel went through rayon's cross-thread hand-off (a lock, a sleep, a wake-up) and the
/// shard threads and the pool's threads contended for the cores: about 1.4 cores busy,
/// a sixth of the time in the kernel. Inside a one-thread pool a shard's kernels run
/// inline on that thread, and there are as many busy threads as shards
/// (ARCHITECTURE.md's "Performance" gives the measured gain).
pub fn on_shards<D: Sync, T: Send>(
    n: usize,
    devices: &[D],
    f: impl Fn(std::ops::Range<usize>, &D) -> T + Sync,
) -> Vec<T> {
    let shards = shard_ranges(n, devices.len());
    if shards.len() == 1 {
        return vec![f(shards[0].clone(), &devices[0])];
    }
    let pools = shard_pools(shards.len());
    let f = &f;
    thread::scope(|sc| {
        let handles: Vec<_> = shards
            .into_iter()
            .zip(devices)
            .zip(pools)
            .map(|((r, device), pool)| sc.spawn(move || pool.install(|| f(r, device))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a data-parallel shard panicked"))
            .collect()
    })
}

/// `n` single-thread rayon pools, kept for the whole process so that each shard's thread
/// (and its allocator cache) lives across steps.
fn shard_pools(n: usize) -> Vec<Arc<rayon::ThreadPool>> {
    static POOLS: Mutex<Vec<Arc<rayon::ThreadPool>>> = Mutex::new(Vec::new());
    let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    while pools.len() < n {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .thread_name(|_| "vista-shard".into())
            .stack_size(SHARD_STACK)
            .build()
            .expect("a thread for a data-parallel shard");
        pools.push(Arc::new(pool));
    }
    pools[..n].to_vec()
}

/// A shard thread's stack: backward passes through deep graphs recurse.
const SHARD_STACK: usize = 64 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_row_once() {
        for n in 0..20 {
            for d in 1..5 {
                let r = shard_ranges(n, d);
                let covered: Vec<usize> = r.iter().cloned().flatten().collect();
                assert_eq!(covered, (0..n).collect::<Vec<_>>(), "n={n} d={d}");
                assert!(r.len() <= d);
            }
        }
    }
}
