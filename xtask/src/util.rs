//! Running commands: print them, time them, fail with the command in the message.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// The workspace root (xtask's manifest sits one level below it).
pub fn root() -> PathBuf {
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
