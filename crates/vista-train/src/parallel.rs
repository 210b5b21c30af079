//! What both trainers (the Learner and the GAN's) do after their shards ran: sum the
//! shards' gradients in device order on the first device, and synchronize batch norm's
//! running statistics. The shards themselves run through `vista_models::on_shards`.

use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::backend::AutodiffBackend;

/// The sum of the shards' gradients of `module`, on `main`, added in shard order (so the
/// result does not depend on which thread finished first); one shard's as they are.
pub(crate) fn merge_grads<B: AutodiffBackend, M: AutodiffModule<B>>(
    mut grads: Vec<GradientsParams>,
    module: &M,
    main: &B::Device,
) -> GradientsParams {
    if grads.len() == 1 {
        return grads.pop().expect("one shard");
    }
    let mut acc = GradientsAccumulator::<M>::new();
    for g in grads {
        acc.accumulate(module, g.to_device(main, module));
    }
    acc.grads()
}

/// Batch norm's running statistics keep one pending update per thread and average them
/// when synchronized; the shard threads are new at every step, so after a step of
/// several shards they are synchronized at once (taking a record does), or later steps
/// would read stale values. burn leaves the average on the device of whichever shard it
/// met first, so with shards on other devices (several GPUs) the module comes back on
/// `devices[0]`.
pub(crate) fn sync_batch_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: M,
    devices: &[B::Device],
    shards: usize,
) -> M {
    if shards <= 1 {
        return module;
    }
    let _ = module.clone().into_record();
    let main = &devices[0];
    if devices.iter().any(|d| d != main) {
        module.fork(main)
    } else {
        module
    }
}
