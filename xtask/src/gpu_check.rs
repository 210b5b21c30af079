//! `cargo xtask gpu-check`: what a CUDA machine must show, as one command that fits in
//! 8 minutes and writes its results to one JSON file.
//!
//! The checks, each a process with its own time limit (together 8 minutes), its log kept
//! beside the results:
//! 1. `vista device --device DEV`: a matmul on the GPU matches the CPU's;
//! 2. `vista bench models --device DEV`: training-step images per second of ResNet-18 and
//!    ResNet-50 at 64, 128 and 150 px, batch 64 and 128;
//! 3. `cargo xtask reproduce --preset article --smoke --check --device DEV`, with the
//!    committed 1/16-width Places-layout ResNet-50 as `--weights`: every stage of the
//!    article's recipe on the GPU.
//!
//! Two ways to run it:
//! - on the GPU machine, in a checkout with cargo: `cargo xtask gpu-check` builds vista with
//!   `--features cuda` and runs the checks;
//! - built here, run there without cargo or network: `cargo xtask gpu-check --prepare`
//!   builds `target/gpu-check/vista` (with CUDA) and `target/gpu-check/xtask`, stripped,
//!   and writes `target/gpu-check/run.sh`. Copy the repository (`data/`, `tests/data/` and
//!   `xtask/reproduce-expected.json` are what the checks read) with `target/gpu-check/` to
//!   the GPU machine and run `target/gpu-check/run.sh [OUT]` from the repository root.
//!
//! The results (`OUT/gpu-check.json`, default `target/gpu-check/results`) are written
//! after every check, so a run cut short still leaves what it measured.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use vista_format::{ModelBench, write_json};

use crate::ci::ARTICLE_FIXTURE;
use crate::util::{Profile, build_vista, cargo, machine, root, run as sh};

const HELP: &str = "\
usage: cargo xtask gpu-check [options]

  --device DEV       the GPU to check (default cuda:0)
  --vista BIN        a vista built with --features cuda (default: build one here)
  --out DIR          results folder (default target/gpu-check/results)
  --models LIST      architectures to benchmark (default resnet18,resnet50)
  --sizes LIST       image sizes (default 64,128,150)
  --batches LIST     batch sizes (default 64,128)
  --no-reproduce     skip the article preset's smoke run
  --prepare          build target/gpu-check/{vista,xtask,run.sh} to carry to a GPU
                     machine without cargo or network, and stop
";

/// Where `--prepare` puts what travels to the GPU machine.
const BUNDLE: &str = "target/gpu-check";

#[derive(Debug)]
struct Options {
    device: String,
    vista: Option<PathBuf>,
    out: PathBuf,
    models: String,
    sizes: String,
    batches: Vec<usize>,
    reproduce: bool,
    prepare: bool,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        device: "cuda:0".into(),
        vista: None,
        out: root().join(BUNDLE).join("results"),
        models: "resnet18,resnet50".into(),
        sizes: "64,128,150".into(),
        batches: vec![64, 128],
        reproduce: true,
        prepare: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .with_context(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--device" => o.device = value()?,
            "--vista" => o.vista = Some(PathBuf::from(value()?)),
            "--out" => o.out = PathBuf::from(value()?),
            "--models" => o.models = value()?,
            "--sizes" => o.sizes = value()?,
            "--batches" => {
                o.batches = value()?
                    .split(',')
                    .map(|b| b.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .context("--batches takes a comma-separated list of integers")?;
            }
            "--no-reproduce" => o.reproduce = false,
            "--prepare" => o.prepare = true,
            "--help" | "-h" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            other => bail!("unknown option `{other}`\n{HELP}"),
        }
    }
    Ok(o)
}

/// One check's outcome.
#[derive(Debug, Serialize)]
struct Check {
    name: String,
    command: String,
    passed: bool,
    /// Why it failed: the exit status, or the time limit.
    failure: Option<String>,
    wall_s: f64,
    /// The log's last lines (the whole log is `OUT/<name>.log`).
    tail: String,
}

/// `OUT/gpu-check.json`.
#[derive(Debug, Serialize)]
struct Results {
    /// The CPU of the machine the checks ran on.
    machine: String,
    /// `nvidia-smi`'s name of the GPUs, where it could be asked.
    gpu: Option<String>,
    device: String,
    vista: String,
    passed: bool,
    checks: Vec<Check>,
    /// `vista bench models` on the device, one row per model, size and batch.
    bench: Vec<ModelBench>,
}

pub fn run(args: &[String]) -> Result<()> {
    let o = parse(args)?;
    if o.prepare {
        return prepare();
    }
    let bin = match &o.vista {
        Some(bin) => bin.clone(),
        None => build_vista(Profile::Release, o.device.starts_with("cuda"))?,
    };
    std::fs::create_dir_all(&o.out).with_context(|| format!("creating {}", o.out.display()))?;
    let mut results = Results {
        machine: machine(),
        gpu: gpu_name(),
        device: o.device.clone(),
        vista: bin.display().to_string(),
        passed: false,
        checks: Vec::new(),
        bench: Vec::new(),
    };
    let json = o.out.join("gpu-check.json");
    let save =
        |r: &Results| write_json(&json, r).with_context(|| format!("writing {}", json.display()));

    let mut device = Command::new(&bin);
    device.args(["device", "--device", &o.device]);
    results
        .checks
        .push(check(&o.out, "device", device, Duration::from_secs(45))?);
    save(&results)?;

    for &batch in &o.batches {
        let mut bench = Command::new(&bin);
        bench.args([
            "bench", "models", "--device", &o.device, "--models", &o.models,
        ]);
        bench.args([
            "--sizes",
            &o.sizes,
            "--batch",
            &batch.to_string(),
            "--steps",
            "5",
        ]);
        let name = format!("bench-batch-{batch}");
        let c = check(&o.out, &name, bench, Duration::from_secs(105))?;
        let log = std::fs::read_to_string(o.out.join(format!("{name}.log"))).unwrap_or_default();
        results.bench.extend(bench_rows(&log));
        results.checks.push(c);
        save(&results)?;
    }

    if o.reproduce {
        let xtask = std::env::current_exe().context("finding this xtask")?;
        let mut reproduce = Command::new(xtask);
        reproduce.args([
            "reproduce",
            "--preset",
            "article",
            "--smoke",
            "--check",
            "--fresh",
        ]);
        reproduce.args(["--device", &o.device, "--vista"]).arg(&bin);
        reproduce.arg("--weights").arg(root().join(ARTICLE_FIXTURE));
        reproduce.arg("--out").arg(o.out.join("reproduce"));
        let c = check(&o.out, "reproduce", reproduce, Duration::from_secs(225))?;
        results.checks.push(c);
    }
    results.passed = results.checks.iter().all(|c| c.passed);
    save(&results)?;
    for c in &results.checks {
        let verdict = if c.passed { "passed" } else { "FAILED" };
        eprintln!("{:<18} {verdict} in {:.1} s", c.name, c.wall_s);
    }
    eprintln!("results: {}", json.display());
    if !results.passed {
        bail!("the GPU check failed; see {}", json.display());
    }
    Ok(())
}

/// The JSON rows `vista bench models` printed.
fn bench_rows(log: &str) -> Vec<ModelBench> {
    log.lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| vista_format::parse_json(l).ok())
        .collect()
}

/// Runs `cmd` with its output in `OUT/<name>.log`, killed at `limit`.
fn check(out: &Path, name: &str, mut cmd: Command, limit: Duration) -> Result<Check> {
    let command = format!("{cmd:?}");
    eprintln!("gpu-check {name}: {command}");
    let log_path = out.join(format!("{name}.log"));
    // A fresh file, never through a link left in the folder.
    match std::fs::remove_file(&log_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing {}", log_path.display()));
        }
        _ => {}
    }
    let log = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let start = Instant::now();
    let mut child = cmd
        .stdout(log.try_clone()?)
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {command}"))?;
    let failure = loop {
        if let Some(status) = child.try_wait()? {
            break (!status.success()).then(|| format!("exited with {status}"));
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break Some(format!("killed after its limit of {} s", limit.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Ok(Check {
        name: name.into(),
        command,
        passed: failure.is_none(),
        failure,
        wall_s: (start.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        tail: tail(&log_path, 20),
    })
}

/// The last `n` lines of a file (progress bars' carriage returns folded).
fn tail(path: &Path, n: usize) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.rsplit('\r').next().unwrap_or(l))
        .collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn gpu_name() -> Option<String> {
    let out = Command::new("nvidia-smi")
        .args(["--query-gpu=name", "--format=csv,noheader"])
        .output()
        .ok()?;
    let names = String::from_utf8_lossy(&out.stdout)
        .trim()
        .replace('\n', "; ");
    (out.status.success() && !names.is_empty()).then_some(names)
}

/// Builds what travels to a GPU machine without cargo: vista with CUDA, this xtask, both
/// stripped, and the script that runs the check from a copy of the repository.
fn prepare() -> Result<()> {
    let dir = root().join(BUNDLE);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let vista = build_vista(Profile::Release, true)?;
    sh(cargo().args(["build", "--release", "-p", "xtask"]))?;
    let xtask = root().join("target/release/xtask");
    for (from, name) in [(vista, "vista"), (xtask, "xtask")] {
        let to = dir.join(name);
        std::fs::copy(&from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        // Debug line tables are most of the binary's size; the copy does without them.
        sh(Command::new("strip").arg(&to))?;
    }
    let script = dir.join("run.sh");
    std::fs::write(&script, RUN_SH).with_context(|| format!("writing {}", script.display()))?;
    sh(Command::new("chmod").arg("+x").arg(&script))?;
    eprintln!(
        "prepared {}: copy the repository with it to the GPU machine and run \
         `{BUNDLE}/run.sh [OUT]` from the repository root",
        dir.display()
    );
    Ok(())
}

/// Run from the repository root on the GPU machine: the prebuilt binaries read the
/// repository there, not where they were built.
const RUN_SH: &str = r#"#!/bin/sh
# The GPU check with the binaries `cargo xtask gpu-check --prepare` built; run from the
# repository root. Results: ${1:-target/gpu-check/results}/gpu-check.json
set -e
here=$(cd "$(dirname "$0")" && pwd)
export XTASK_ROOT="$(pwd)"
export VISTA_EMBEDDED_DATA="$(pwd)/data/fashion-mnist"
out="${1:-target/gpu-check/results}"
[ $# -gt 0 ] && shift
exec "$here/xtask" gpu-check --vista "$here/vista" --out "$out" "$@"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_rows_are_read_back_from_the_log() {
        let log = "progress\n{\"model\":\"resnet18\",\"size\":64,\"batch\":64,\"backend\":\"cuda\",\"img_per_s\":1234.5}\n{broken\n";
        let rows = bench_rows(log);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].model, "resnet18");
        assert_eq!(rows[0].img_per_s, Some(1234.5));
    }

    #[test]
    fn a_check_past_its_limit_is_killed_and_failed() {
        let dir = std::env::temp_dir().join(format!("gpu-check-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut sleep = Command::new("sh");
        sleep.args(["-c", "echo started; sleep 30"]);
        let c = check(&dir, "slow", sleep, Duration::from_millis(300)).unwrap();
        assert!(!c.passed);
        assert!(c.failure.unwrap().contains("limit"));
        assert!(c.wall_s < 10.0);
        assert_eq!(c.tail, "started");
        let mut fail = Command::new("sh");
        fail.args(["-c", "echo oops >&2; exit 3"]);
        let c = check(&dir, "fails", fail, Duration::from_secs(10)).unwrap();
        assert!(!c.passed && c.failure.unwrap().contains("exit"));
        assert_eq!(c.tail, "oops");
        // A link left where a log goes is replaced, not written through.
        let outside = dir.join("outside.txt");
        std::fs::write(&outside, "keep").unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("linked.log")).unwrap();
        let mut echo = Command::new("sh");
        echo.args(["-c", "echo fine"]);
        let c = check(&dir, "linked", echo, Duration::from_secs(10)).unwrap();
        assert!(c.passed);
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
