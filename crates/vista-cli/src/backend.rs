//! Concrete backends, chosen here at the edge: flex (pure Rust) on the CPU, CUDA on
//! NVIDIA GPUs when built with `--features cuda`. Library crates stay generic over `B`.

use anyhow::{Result, bail};
use burn::tensor::{Distribution, Tensor};

/// The CPU backend: burn's flex, pure Rust.
pub type Cpu = burn::backend::Flex;
/// The CUDA backend.
#[cfg(feature = "cuda")]
pub type Gpu = burn::backend::Cuda;

/// The devices named on the command line (`--device`, alias `--devices`): `cpu`,
/// `cuda`, `cuda:N`, a comma-separated list of one kind (`cuda:0,cuda:1` trains
/// data-parallel on both GPUs; `cpu,cpu` is two CPU shards), or `all` (every CUDA GPU
/// this vista can see, else the CPU).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The CPU: `Some(n)` for `n` listed devices, one shard each; `None` for plain
    /// `cpu`, one shard per core.
    Cpu(Option<usize>),
    /// These CUDA GPUs, in order; the first holds the model.
    Cuda(Vec<usize>),
}

/// At most this many devices in one `--device` list.
const MAX_DEVICES: usize = 64;

impl std::str::FromStr for DeviceSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |d: &str| {
            format!(
                "`{d}` is not a device; use `cpu`, `cuda`, `cuda:N`, a comma-separated list of them, or `all`"
            )
        };
        if s == "all" {
            let n = cuda_count();
            return Ok(if n == 0 {
                DeviceSpec::Cpu(None)
            } else {
                DeviceSpec::Cuda((0..n).collect())
            });
        }
        let names: Vec<&str> = s.split(',').map(str::trim).collect();
        if names.len() > MAX_DEVICES {
            return Err(format!(
                "at most {MAX_DEVICES} devices, not {}",
                names.len()
            ));
        }
        if names.len() == 1 && names[0] == "cpu" {
            return Ok(DeviceSpec::Cpu(None));
        }
        if names.iter().all(|d| *d == "cpu") {
            return Ok(DeviceSpec::Cpu(Some(names.len())));
        }
        let mut ids = Vec::with_capacity(names.len());
        for d in names {
            let id = match d {
                "cuda" => 0,
                "cpu" => {
                    return Err(format!(
                        "`{s}` mixes the CPU and CUDA; one run uses one kind of device"
                    ));
                }
                _ => match d.strip_prefix("cuda:").map(str::parse::<usize>) {
                    Some(Ok(n)) => n,
                    _ => return Err(bad(d)),
                },
            };
            if ids.contains(&id) {
                return Err(format!("`cuda:{id}` is listed twice in `{s}`"));
            }
            ids.push(id);
        }
        Ok(DeviceSpec::Cuda(ids))
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSpec::Cpu(None) => f.write_str("cpu"),
            DeviceSpec::Cpu(Some(n)) => f.write_str(&vec!["cpu"; *n].join(",")),
            DeviceSpec::Cuda(ids) => {
                let names: Vec<String> = ids.iter().map(|i| format!("cuda:{i}")).collect();
                f.write_str(&names.join(","))
            }
        }
    }
}

impl DeviceSpec {
    /// Whether the devices are CUDA GPUs.
    pub fn is_cuda(&self) -> bool {
        matches!(self, DeviceSpec::Cuda(_))
    }

    /// How many devices the list names (plain `cpu` is one).
    pub fn count(&self) -> usize {
        match self {
            DeviceSpec::Cpu(n) => n.unwrap_or(1),
            DeviceSpec::Cuda(ids) => ids.len(),
        }
    }
}

/// The CUDA GPUs this vista can see: none when it was built without CUDA, has no
/// driver, or the driver sees no GPU.
pub fn cuda_count() -> usize {
    #[cfg(feature = "cuda")]
    {
        // burn asks the driver through a client on the first GPU; without a driver that
        // client's thread panics. The panic is the answer "none", not a message.
        use burn::tensor::backend::Backend;
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let n = std::panic::catch_unwind(|| <Gpu as Backend>::device_count(0)).unwrap_or(0);
        std::panic::set_hook(hook);
        n
    }
    #[cfg(not(feature = "cuda"))]
    {
        0
    }
}

/// Fails with a plain message where a listed GPU is not there (no driver, or fewer GPUs).
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub fn check_cuda(ids: &[usize]) -> Result<()> {
    let n = cuda_count();
    if let Some(id) = ids.iter().find(|&&id| id >= n) {
        if n == 0 {
            bail!(
                "cuda:{id} is not available: no CUDA driver could be loaded (libcuda.so) or it sees no GPU; use --device cpu"
            );
        }
        bail!(
            "cuda:{id} is not available: the driver sees {n} GPU(s), cuda:0 to cuda:{}",
            n - 1
        );
    }
    Ok(())
}

/// Data-parallel shards on the CPU: one per core, each a thread running its part of the
/// batch (burn-flex's kernels run inline on it). On a GPU one shard takes the batch.
pub fn cpu_shards() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The default number of shards a batch is cut into on `device`: one per core for plain
/// `cpu`, else one per listed device.
pub fn default_shards(device: &DeviceSpec) -> usize {
    match device {
        DeviceSpec::Cpu(None) => cpu_shards(),
        d => d.count(),
    }
}

/// Calls `$body` with `$B` bound to the training (autodiff) backend of the
/// [`DeviceSpec`] `$spec`, and `$devices` to its listed devices (the first holds the
/// model): the one place that turns `--device` into a backend for training.
macro_rules! with_training_backend {
    ($spec:expr, |$B:ident, $devices:ident| $body:expr) => {
        match &$spec {
            $crate::backend::DeviceSpec::Cpu(n) => {
                type $B = burn::backend::Autodiff<$crate::backend::Cpu>;
                let $devices: Vec<burn::backend::flex::FlexDevice> =
                    vec![Default::default(); n.unwrap_or(1)];
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::backend::DeviceSpec::Cuda(ids) => {
                $crate::backend::check_cuda(ids)?;
                type $B = burn::backend::Autodiff<$crate::backend::Gpu>;
                let $devices: Vec<burn::backend::cuda::CudaDevice> = ids
                    .iter()
                    .map(|&i| burn::backend::cuda::CudaDevice::new(i))
                    .collect();
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
        match &$spec {
            $crate::backend::DeviceSpec::Cpu(n) => {
                type $B = $crate::backend::Cpu;
                let $devices: Vec<burn::backend::flex::FlexDevice> =
                    vec![Default::default(); n.unwrap_or_else($crate::backend::cpu_shards)];
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::backend::DeviceSpec::Cuda(ids) => {
                $crate::backend::check_cuda(ids)?;
                type $B = $crate::backend::Gpu;
                let $devices: Vec<burn::backend::cuda::CudaDevice> = ids
                    .iter()
                    .map(|&i| burn::backend::cuda::CudaDevice::new(i))
                    .collect();
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
    /// `cpu`, `cuda`, `cuda:N`, a comma-separated list of them, or `all`.
    #[arg(long, visible_alias = "devices", default_value = "cpu")]
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
    let diffs = with_inference_backend!(args.device, |B, devices| {
        let mut diffs = Vec::new();
        for d in devices.iter().take(args.device.count()) {
            diffs.push((format!("{d:?}"), matmul_check::<B>(d)?));
        }
        diffs
    });
    for (name, diff) in &diffs {
        println!("{name}: 256x256 matmul matches the CPU result within {diff:.2e}");
        if *diff > 1e-2 {
            bail!("{name}'s result differs from the CPU's by {diff}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::DeviceSpec;

    fn parse(s: &str) -> Result<DeviceSpec, String> {
        s.parse()
    }

    #[test]
    fn device_lists_parse_into_one_kind_of_device() {
        assert_eq!(parse("cpu"), Ok(DeviceSpec::Cpu(None)));
        assert_eq!(parse("cpu,cpu"), Ok(DeviceSpec::Cpu(Some(2))));
        assert_eq!(parse("cuda"), Ok(DeviceSpec::Cuda(vec![0])));
        assert_eq!(parse("cuda:1"), Ok(DeviceSpec::Cuda(vec![1])));
        assert_eq!(parse("cuda:0,cuda:1"), Ok(DeviceSpec::Cuda(vec![0, 1])));
        assert_eq!(parse("cuda:2, cuda:0"), Ok(DeviceSpec::Cuda(vec![2, 0])));
        for (bad, says) in [
            ("cpu,cuda:0", "mixes"),
            ("cuda:0,cuda:0", "twice"),
            ("cuda:x", "not a device"),
            ("gpu", "not a device"),
            ("", "not a device"),
            ("cuda:0,", "not a device"),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
        let many = vec!["cpu"; 65].join(",");
        assert!(parse(&many).unwrap_err().contains("at most"));
    }

    #[test]
    fn a_device_list_prints_as_it_is_written_and_sets_the_shards() {
        for s in ["cpu", "cpu,cpu", "cuda:0", "cuda:0,cuda:1"] {
            assert_eq!(parse(s).unwrap().to_string(), s);
        }
        assert_eq!(super::default_shards(&parse("cuda:0,cuda:1").unwrap()), 2);
        assert_eq!(super::default_shards(&parse("cpu,cpu,cpu").unwrap()), 3);
        assert_eq!(
            super::default_shards(&parse("cpu").unwrap()),
            super::cpu_shards()
        );
    }

    #[test]
    fn a_gpu_that_is_not_there_is_a_plain_error() {
        if super::cuda_count() == 0 {
            let err = super::check_cuda(&[0]).unwrap_err().to_string();
            assert!(err.contains("cuda:0 is not available"), "{err}");
            assert!(super::check_cuda(&[]).is_ok());
        }
    }

    #[test]
    fn all_devices_without_cuda_is_the_cpu() {
        if !cfg!(feature = "cuda") {
            assert_eq!(parse("all"), Ok(DeviceSpec::Cpu(None)));
        }
    }
}
