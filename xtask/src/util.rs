//! Running commands: print them, time them, fail with the command in the message.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::de::DeserializeOwned;

/// The workspace root (xtask's manifest sits one level below it).
pub fn root() -> PathBuf {
    // A prebuilt xtask runs in a copy of the repository elsewhere (`gpu-check`'s script
    // names it); otherwise the workspace it was built in.
    if let Some(dir) = std::env::var_os("XTASK_ROOT") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// The cargo that runs xtask, so CI and users get the same toolchain.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// Runs `cmd`, echoing it and its duration; a non-zero exit is an error naming it.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}").replace('"', "");
    eprintln!("$ {shown}");
    let start = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("starting `{shown}`"))?;
    eprintln!("  ({:.1} s)", start.elapsed().as_secs_f64());
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// True when `program --version` runs.
pub fn has(program: &str, sub: &[&str]) -> bool {
    Command::new(program)
        .args(sub)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The cargo profile the `vista` binary is built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// What users run, and what every measurement is taken with.
    Release,
    /// The test suite's build: CI's smoke reproduction reuses it instead of compiling
    /// every dependency a second time (the numbers are the same; only speed differs).
    Dev,
}

impl Profile {
    pub fn parse(name: &str) -> Result<Profile> {
        match name {
            "release" => Ok(Profile::Release),
            "dev" => Ok(Profile::Dev),
            other => bail!("unknown profile `{other}` (release or dev)"),
        }
    }
}

/// Builds the `vista` binary (with the `cuda` feature when asked) and returns its path:
/// the one place that knows where cargo puts it.
pub fn build_vista(profile: Profile, cuda: bool) -> Result<PathBuf> {
    let mut cmd = cargo();
    match profile {
        Profile::Release => cmd.args(["build", "--release", "-p", "vista-cli"]),
        // The test suite's own build, with the dependencies' features unified as the tests
        // unify them (`-p vista-cli` alone would compile burn again with fewer): after the
        // tests this is a no-op, and `vista` is the binary the end-to-end tests ran.
        Profile::Dev => cmd.args(["build", "--workspace", "--tests"]),
    };
    if cuda {
        cmd.args(["--features", "vista-cli/cuda"]);
    }
    run(&mut cmd)?;
    let dir = match profile {
        Profile::Release => "release",
        Profile::Dev => "debug",
    };
    Ok(root().join("target").join(dir).join("vista"))
}

/// Runs `vista ARGS` with its output and progress bars on the terminal.
pub fn vista(bin: &Path, args: &[String]) -> Result<()> {
    eprintln!("$ vista {}", args.join(" "));
    let status = Command::new(bin)
        .args(args)
        .status()
        .with_context(|| format!("starting {}", bin.display()))?;
    if !status.success() {
        bail!("`vista {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Runs `vista ARGS --json` (progress on the terminal) and reads the one JSON object it
/// prints as the type that command's summary has in `vista_format`.
pub fn vista_json<T: DeserializeOwned>(bin: &Path, args: &[String]) -> Result<T> {
    eprintln!("$ vista {} --json", args.join(" "));
    let out = Command::new(bin)
        .args(args)
        .arg("--json")
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("starting {}", bin.display()))?;
    if !out.status.success() {
        bail!("`vista {} --json` failed ({})", args.join(" "), out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    vista_format::parse_json(&text)
        .with_context(|| format!("`vista {} --json` printed {text:?}", args.join(" ")))
}

/// Splits a command line written as one string into arguments.
pub fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

/// The machine figures are measured on: the CPU's model name, its widest SIMD level and
/// the cores this process may use, e.g. `Intel(R) Xeon(R) Processor, AVX-512, 2 cores`.
pub fn machine() -> String {
    let name = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{name}, {}, {cores} cores", simd_level())
}

/// The widest vector instructions the CPU offers, as the kernels see them.
fn simd_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            "AVX-512"
        } else if std::arch::is_x86_feature_detected!("avx2") {
            "AVX2"
        } else {
            "SSE"
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        "NEON"
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        "no SIMD detected"
    }
}
