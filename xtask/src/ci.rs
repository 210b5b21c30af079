//! `cargo xtask ci`: what CI runs, in the order that fails fastest, ending with the
//! smoke run of `cargo xtask reproduce` and a short smoke of each fuzz target.

use anyhow::{Result, bail};

use crate::util::{cargo, has, root, run as sh};

pub fn run_ci() -> Result<()> {
    sh(cargo().args(["fmt", "--all", "--", "--check"]))?;
    sh(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The CUDA backend must keep compiling even on machines without a GPU.
    sh(cargo().args(["check", "-p", "vista-cli", "--features", "cuda"]))?;
    // The models without the flex kernels: burn's own layers must keep compiling.
    sh(cargo().args([
        "check",
        "-p",
        "vista-models",
        "--no-default-features",
        "--lib",
        "--tests",
    ]))?;
    test()?;
    examples()?;
    // The whole competition pipeline on a few thousand images, so it cannot silently
    // break: every stage, the report and the committed expectations.
    smoke_reproduce("target/reproduce-smoke", &[])?;
    // The article's recipe (pretrained ResNet-50 fine-tuned at 64 -> 128 -> 150 px,
    // Inception v3, models trained further from A's weights) on the CPU, with the
    // committed 1/16-width Places365-layout checkpoint standing in for the real file: the
    // GPU recipe's logic is checked on every commit and only the device differs on a GPU.
    let weights = root().join(ARTICLE_FIXTURE).display().to_string();
    smoke_reproduce(
        "target/reproduce-article-smoke",
        &["--preset", "article", "--weights", &weights],
    )?;
    // A short smoke of each parser's fuzzer; the long runs are `cargo xtask fuzz`.
    crate::fuzz::fuzz(FUZZ_SMOKE_SECONDS)
}

/// `cargo xtask reproduce --smoke --fresh --check` with `extra` options into `out`
/// (relative to the repository). It runs the binary the tests just built, not a release
/// build: that would compile every dependency a second time for a run of a minute.
fn smoke_reproduce(out: &str, extra: &[&str]) -> Result<()> {
    let mut args: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
    args.extend(["--smoke", "--fresh", "--check", "--profile", "dev", "--out"].map(String::from));
    args.push(root().join(out).display().to_string());
    crate::reproduce::run(&args)
}

/// A ResNet-50 at 1/16 of its width in the layout of Places365's release (legacy
/// `.pth.tar`, `{'state_dict': {'module.…'}}`), made by the fixture script with torchvision.
pub(crate) const ARTICLE_FIXTURE: &str = "tests/data/models/resnet50_w16_places.pth.tar";

/// The library's examples, which each check their model learned.
const EXAMPLES: [&str; 3] = ["fit_one_cycle", "fine_tune", "tta_ensemble"];

/// Builds the examples with the workspace's features (as the tests were built, so
/// nothing compiles twice) and runs each.
fn examples() -> Result<()> {
    sh(cargo().args(["build", "--workspace", "--examples"]))?;
    for name in EXAMPLES {
        let bin = root().join("target/debug/examples").join(name);
        sh(std::process::Command::new(&bin).current_dir(root()))?;
    }
    Ok(())
}

/// Seconds each fuzz target runs in CI.
const FUZZ_SMOKE_SECONDS: u64 = 20;

/// The test command of the README: nextest when installed, else `cargo test`.
pub fn test() -> Result<()> {
    let cargo_path = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    if has(&cargo_path, &["nextest"]) {
        // nextest does not run doctests; they go first so that nextest's summary of the
        // whole suite is the run's closing line.
        sh(cargo().args(["test", "--workspace", "--doc"]))?;
        sh(cargo().args(["nextest", "run", "--workspace", "--no-fail-fast"]))
    } else {
        sh(cargo().args(["test", "--workspace", "--no-fail-fast"]))
    }
}

pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        None => run_ci(),
        Some("test") => test(),
        Some(other) => bail!("unknown option `{other}` (usage: cargo xtask ci [test])"),
    }
}
