//! `cargo xtask`: the one entry point for automation (CI, the reproduction run, benchmarks).
//! It runs cargo and the `vista` binary as processes; of vista's crates it links only
//! `vista-format` (no burn), to read what the binary writes as the types it writes.

mod bench;
mod bench_clean;
mod bench_lr;
mod bench_photos;
mod ci;
mod fuzz;
mod gpu_check;
mod report;
mod reproduce;
mod util;

use anyhow::{Result, bail};

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  ci                       formatting, lints, the CUDA build check and the test suite
  fuzz [SECONDS]           each fuzz target for SECONDS (default 60; nightly and cargo-fuzz)
  reproduce [options]      the competition run, end to end (see `cargo xtask reproduce --help`)
  gpu-check [options]      device check, CUDA benchmarks and the article smoke run on a GPU,
                           as JSON (see `cargo xtask gpu-check --help`)
  bench data               the loader benchmark (criterion)
  bench models             training-step throughput per model, beside PyTorch
  bench train              time to accuracy on the embedded data, beside fastai
  bench clean              noisy-label benchmark of cleaning (detection, accuracy with/without)
  bench photos             peak memory and epoch time on 12-MP JPEGs (--n 10000 --cache-mb 512)
  bench lr-policy          LR finder suggestions over seeds, and the accuracy of each LR policy
";

fn main() {
    if let Err(err) = run() {
        eprintln!("xtask: {err:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = args
        .split_first()
        .map_or(("", &[][..]), |(c, r)| (c.as_str(), r));
    match cmd {
        "ci" => ci::run(rest),
        "fuzz" => fuzz::run(rest),
        "reproduce" => reproduce::run(rest),
        "gpu-check" => gpu_check::run(rest),
        "bench" => bench::run(rest),
        "" | "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n{USAGE}"),
    }
}
