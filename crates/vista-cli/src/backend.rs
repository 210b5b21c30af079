//! Concrete backends, chosen here at the edge: flex (pure Rust) on the CPU, CUDA on
//! NVIDIA GPUs when built with `--features cuda`. Library crates stay generic over `B`.

use anyhow::{Result, bail};
use burn::tensor::{Distribution, Tensor};

/// The CPU backend: burn's flex, pure Rust.
pub type Cpu = burn::backend::Flex;
/// The CUDA backend.
#[cfg(feature = "cuda")]
pub type Gpu = burn::backend::Cuda;

/// A device named on the command line: `cpu` or `cuda:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    Cpu,
    Cuda(usize),
}

impl std::str::FromStr for DeviceSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse) {
                Some(Ok(n)) => Ok(DeviceSpec::Cuda(n)),
                _ => Err(format!(
                    "`{s}` is not a device; use `cpu`, `cuda` or `cuda:N`"
                )),
            },
        }
    }
}

/// Data-parallel shards on the CPU: one per core, each a thread running its part of the
/// batch (burn-flex's kernels run inline on it). On a GPU one shard takes the batch.
pub fn cpu_shards() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The default number of shards a batch is cut into on `device`.
pub fn default_shards(device: DeviceSpec) -> usize {
    match device {
        DeviceSpec::Cpu => cpu_shards(),
        DeviceSpec::Cuda(_) => 1,
    }
}

/// Calls `$body` with `$B` bound to the training (autodiff) backend of the
/// [`DeviceSpec`] `$spec`, and `$dev` to its device: the one place that turns `--device`
/// into a backend for training.
macro_rules! with_training_backend {
    ($spec:expr, |$B:ident, $dev:ident| $body:expr) => {
        match $spec {
            $crate::backend::DeviceSpec::Cpu => {
                type $B = burn::backend::Autodiff<$crate::backend::Cpu>;
                let $dev = Default::default();
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::backend::DeviceSpec::Cuda(n) => {
                type $B = burn::backend::Autodiff<$crate::backend::Gpu>;
                let $dev = burn::backend::cuda::CudaDevice::new(n);
                $body
            }
            #[cfg(not(feature = "cuda"))]
            $crate::backend::DeviceSpec::Cuda(_) => {
                anyhow::bail!("this vista was built without CUDA; rebuild with `--features cuda`")
            }
        }
    };
}

/// Calls `$body` with `$B` bound to the inference backend of `$spec` and `$devices` to
/// the devices a batch is sharded over ([`default_shards`]): the one place that turns
/// `--device` into a backend for prediction.
macro_rules! with_inference_backend {
    ($spec:expr, |$B:ident, $devices:ident| $body:expr) => {
        match $spec {
            $crate::backend::DeviceSpec::Cpu => {
                type $B = $crate::backend::Cpu;
                let $devices: Vec<burn::backend::flex::FlexDevice> =
                    vec![Default::default(); $crate::backend::cpu_shards()];
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::backend::DeviceSpec::Cuda(n) => {
                type $B = $crate::backend::Gpu;
                let $devices = vec![burn::backend::cuda::CudaDevice::new(n)];
                $body
            }
            #[cfg(not(feature = "cuda"))]
            $crate::backend::DeviceSpec::Cuda(_) => {
                anyhow::bail!("this vista was built without CUDA; rebuild with `--features cuda`")
            }
        }
    };
}

pub(crate) use {with_inference_backend, with_training_backend};

#[derive(Debug, clap::Args)]
pub struct DeviceArgs {
    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
}

/// Multiplies two random 256x256 matrices on the backend and checks the result against
/// the same product computed on the CPU backend.
fn matmul_check<B: burn::tensor::backend::Backend>(device: &B::Device) -> Result<f32> {
    let cpu = Default::default();
    let a = Tensor::<Cpu, 2>::random([256, 256], Distribution::Normal(0.0, 1.0), &cpu);
    let b = Tensor::<Cpu, 2>::random([256, 256], Distribution::Normal(0.0, 1.0), &cpu);
    let want = a.clone().matmul(b.clone());
    let on = |t: Tensor<Cpu, 2>| Tensor::<B, 2>::from_data(t.into_data().convert::<f32>(), device);
    let got = on(a).matmul(on(b)).into_data().convert::<f32>();
    let want = want.into_data().convert::<f32>();
    let diff = got
        .to_vec::<f32>()?
        .iter()
        .zip(want.to_vec::<f32>()?)
        .map(|(g, w)| (g - w).abs())
        .fold(0.0, f32::max);
    Ok(diff)
}

pub fn run(args: &DeviceArgs) -> Result<()> {
    let compiled = if cfg!(feature = "cuda") {
        "cpu (flex), cuda"
    } else {
        "cpu (flex)"
    };
    println!("backends compiled in: {compiled}");
    let diff = with_inference_backend!(args.device, |B, devices| matmul_check::<B>(&devices[0])?);
    println!(
        "{:?}: 256x256 matmul matches the CPU result within {diff:.2e}",
        args.device
    );
    if diff > 1e-2 {
        bail!("the device's result differs from the CPU's by {diff}");
    }
    Ok(())
}
