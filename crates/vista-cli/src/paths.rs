//! Where vista keeps its caches, how the `embedded` dataset name is resolved, and how
//! a command loads the dataset it names.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use vista_data::{LoadOptions, Loaded, OnBadImage, fashion_mnist, load};

/// The dataset name that stands for the embedded Fashion-MNIST.
pub const EMBEDDED: &str = "embedded";

/// `$VISTA_CACHE_DIR`, else `$XDG_CACHE_HOME/vista`, else `~/.cache/vista`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("VISTA_CACHE_DIR") {
        return dir.into();
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("vista");
    }
    std::env::var_os("HOME").map_or_else(
        || PathBuf::from(".vista-cache"),
        |h| PathBuf::from(h).join(".cache/vista"),
    )
}

/// The folder with Fashion-MNIST's IDX files: `$VISTA_EMBEDDED_DATA`, else the
/// repository's `data/fashion-mnist` this binary was built from.
pub fn embedded_source() -> PathBuf {
    std::env::var_os("VISTA_EMBEDDED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist"))
}

/// Writes the embedded dataset into the cache (once) and returns its folder.
pub fn materialize_embedded(
    out: Option<&Path>,
    opts: &fashion_mnist::MaterializeOptions,
) -> Result<PathBuf> {
    let out = out.map_or_else(|| cache_dir().join("fashion-mnist"), Path::to_path_buf);
    let src = embedded_source();
    fashion_mnist::materialize(&src, &out, opts).with_context(|| {
        format!(
            "preparing the embedded Fashion-MNIST from {}",
            src.display()
        )
    })
}

/// Resolves a dataset argument: `embedded`, or a path as given.
pub fn resolve_data(arg: &Path, progress: bool) -> Result<PathBuf> {
    if arg == Path::new(EMBEDDED) && !arg.exists() {
        let opts = fashion_mnist::MaterializeOptions {
            observer: crate::observe::terminal(progress),
            ..Default::default()
        };
        return materialize_embedded(None, &opts);
    }
    Ok(arg.to_path_buf())
}

/// Decodes the dataset at `path`, reporting skipped files.
pub(crate) fn load_data_at(
    path: &Path,
    on_bad_image: OnBadImage,
    max_side: Option<u32>,
    progress: bool,
) -> Result<Loaded> {
    let opts = LoadOptions {
        on_bad_image,
        max_side,
        observer: crate::observe::terminal(progress),
        ..LoadOptions::default()
    };
    load_data_with(path, &opts)
}

/// Decodes the dataset at `path` with `opts`, reporting skipped files.
pub(crate) fn load_data_with(path: &Path, opts: &LoadOptions) -> Result<Loaded> {
    let loaded = load(path, opts).with_context(|| format!("loading {}", path.display()))?;
    if !loaded.report.is_empty() {
        eprintln!(
            "{} bad files skipped (see `vista data check`)",
            loaded.report.problems.len()
        );
    }
    Ok(loaded)
}
