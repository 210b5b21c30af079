//! Dropout with reproducible masks under data parallelism.
//!
//! burn's `Dropout` draws its masks from the backend's one global generator; when shards
//! of a batch run forward on several threads at once, the order in which they draw
//! depends on thread timing, and so do the masks. Here each thread draws from its own
//! generator, which the training loop seeds per step and shard ([`seed_dropout`]).
//! A thread never seeded falls back to burn's behaviour.

use std::cell::RefCell;

use burn::nn::Dropout;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

thread_local! {
    static RNG: RefCell<Option<ChaCha8Rng>> = const { RefCell::new(None) };
}

/// Seeds this thread's dropout masks.
pub fn seed_dropout(seed: u64) {
    RNG.with(|r| *r.borrow_mut() = Some(ChaCha8Rng::seed_from_u64(seed)));
}

/// `dropout.forward(x)`, with the mask from this thread's generator when it is seeded.
/// Off (the identity) outside autodiff, as burn's is.
pub fn dropout<B: Backend, const D: usize>(d: &Dropout, x: Tensor<B, D>) -> Tensor<B, D> {
    if !B::ad_enabled(&x.device()) || d.prob == 0.0 {
        return x;
    }
    let keep = 1.0 - d.prob;
    let mask = RNG.with(|r| {
        r.borrow_mut().as_mut().map(|rng| {
            let n = x.shape().num_elements();
            let scale = (1.0 / keep) as f32;
            (0..n)
                .map(|_| {
                    if rng.random::<f64>() < keep {
                        scale
                    } else {
                        0.0
                    }
                })
                .collect::<Vec<f32>>()
        })
    });
    match mask {
        Some(m) => {
            let mask = Tensor::<B, D>::from_data(TensorData::new(m, x.shape()), &x.device());
            x * mask
        }
        None => d.forward(x),
    }
}
