//! `cargo xtask fuzz [SECONDS]`: runs each fuzz target of `fuzz/` (cargo-fuzz, libFuzzer,
//! on the nightly toolchain) for SECONDS (default 60), starting from the committed corpus.
//! New corpus entries go to `target/fuzz-corpus/`, so the committed corpus only changes
//! by hand; a crash fails the run and leaves its input in `fuzz/artifacts/<target>/`,
//! to be added to the target's corpus once fixed.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::util::{root, run as sh};

/// The targets, each with the longest input it is given.
const TARGETS: [(&str, usize); 3] = [("checkpoint", 8192), ("image", 65536), ("dataset", 4096)];

/// `cargo +nightly ...` through rustup, with the calling cargo's toolchain cleared.
fn nightly_cargo() -> Command {
    let mut cmd = Command::new("cargo");
    cmd.arg("+nightly")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .current_dir(root().join("fuzz"));
    cmd
}

fn has_cargo_fuzz() -> bool {
    nightly_cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Installs cargo-fuzz when missing; an error when there is no nightly toolchain.
pub fn ensure_tools() -> Result<()> {
    let nightly = nightly_cargo()
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !nightly {
        bail!("fuzzing needs the nightly toolchain: rustup toolchain install nightly");
    }
    if !has_cargo_fuzz() {
        sh(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}

pub fn fuzz(seconds: u64) -> Result<()> {
    ensure_tools()?;
    // No sanitizer: the targets are safe Rust, and libFuzzer's coverage guidance and
    // its own checks (panics, timeouts, memory) are what they need.
    let flags = ["-O", "--sanitizer", "none"];
    sh(nightly_cargo().args(["fuzz", "build"]).args(flags))?;
    for (target, max_len) in TARGETS {
        let corpus = root().join("target/fuzz-corpus").join(target);
        std::fs::create_dir_all(&corpus)
            .with_context(|| format!("creating {}", corpus.display()))?;
        let seeds = root().join("fuzz/corpus").join(target);
        sh(nightly_cargo()
            .args(["fuzz", "run"])
            .args(flags)
            .arg(target)
            .arg(&corpus)
            .arg(&seeds)
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg(format!("-max_len={max_len}"))
            .args(["-rss_limit_mb=2048", "-timeout=10", "-print_final_stats=1"]))
        .with_context(|| {
            format!("fuzz target `{target}` failed: its input is in fuzz/artifacts/{target}/")
        })?;
    }
    Ok(())
}

pub fn run(args: &[String]) -> Result<()> {
    let seconds = match args {
        [] => 60,
        [s] => s
            .parse()
            .with_context(|| format!("`{s}` is not a number of seconds"))?,
        _ => bail!("usage: cargo xtask fuzz [SECONDS]"),
    };
    fuzz(seconds)
}
