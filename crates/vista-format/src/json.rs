//! JSON files of vista's own, read with a size limit into their one type and written
//! atomically.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::fsutil::{read_limited, write_atomic};

/// The largest JSON artefact read back (metrics of long runs, flag manifests of big
/// datasets, GAN step records).
pub const MAX_JSON_BYTES: u64 = 256 << 20;

/// Reads `path` (at most [`MAX_JSON_BYTES`]) as a `T`.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    read_json_limited(path, MAX_JSON_BYTES)
}

/// Reads `path` (at most `limit` bytes) as a `T`.
pub fn read_json_limited<T: DeserializeOwned>(path: &Path, limit: u64) -> Result<T> {
    let bytes = read_limited(path, limit)?;
    serde_json::from_slice(&bytes).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `value` to `path` as pretty JSON, atomically.
pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })?;
    write_atomic(path, &bytes)
}

/// Parses one line of a command's `--json` output as a `T`.
pub fn parse_json<T: DeserializeOwned>(text: &str) -> std::result::Result<T, serde_json::Error> {
    serde_json::from_str(text.trim())
}
