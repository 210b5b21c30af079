//! `cargo xtask bench ...`: the benchmarks, side by side where a reference exists.

use anyhow::{Result, bail};

use crate::util::{cargo, run as run_cmd};

pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("data") => run_cmd(cargo().args(["bench", "-p", "vista-data", "--bench", "loader"])),
        _ => bail!("usage: cargo xtask bench data"),
    }
}
