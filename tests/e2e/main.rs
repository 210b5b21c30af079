//! End-to-end tests: run the `vista` binary on the committed fixtures, as a user would,
//! plus the repository-wide checks of ARCHITECTURE.md's invariants (`tidy`).

mod clean;
mod data;
mod durability;
mod eval;
mod gan;
mod own_data;
mod tidy;
mod torch;
mod train;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Runs `vista ARGS` from the repository root with a private cache folder.
pub fn vista(args: &[&str], cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vista"))
        .args(args)
        .arg("--quiet")
        .current_dir(root())
        .env("VISTA_CACHE_DIR", cache)
        .output()
        .expect("the vista binary runs")
}

pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
