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
    let diff = match args.device {
        DeviceSpec::Cpu => matmul_check::<Cpu>(&Default::default())?,
        #[cfg(feature = "cuda")]
        DeviceSpec::Cuda(n) => matmul_check::<Gpu>(&burn::backend::cuda::CudaDevice::new(n))?,
        #[cfg(not(feature = "cuda"))]
        DeviceSpec::Cuda(_) => {
            bail!("this vista was built without CUDA; rebuild with `--features cuda`")
        }
    };
    println!(
        "{:?}: 256x256 matmul matches the CPU result within {diff:.2e}",
        args.device
    );
    if diff > 1e-2 {
        bail!("the device's result differs from the CPU's by {diff}");
    }
    Ok(())
}
