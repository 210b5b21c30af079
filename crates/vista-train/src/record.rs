//! The recorder of every model and optimizer file a run writes (`model.bin`,
//! checkpoints, the GAN's networks): burn's bincode record format, byte for byte the
//! one `BinFileRecorder` writes, with the guarantees burn 0.21's recorder lacks.
//!
//! - Writes are atomic and durable: a temporary file, flushed (burn's writer drops its
//!   `BufWriter` without a flush, so a late `ENOSPC` passed as success) and fsynced, then
//!   renamed over the old file, and the folder fsynced. burn's writer removes the old
//!   file first, so a crash left no model at all.
//! - Reads are bounded: a run folder may come from someone else, and bincode trusts
//!   the lengths it reads (a 73-byte file can ask for 2^62 bytes). A file is read only
//!   up to [`MAX_RECORD_BYTES`], and decoding may claim at most a small multiple of the
//!   file's own length; decoding errors are errors, never panics.
//! - Loading is checked: burn compares a record's tensor shapes with the module's by
//!   `panic!`, and a decoded file may hold any shape; [`load_checked`] turns that panic
//!   into an error naming the file, without printing it.

use std::cell::Cell;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use burn::record::{FileRecorder, PrecisionSettings, Recorder, RecorderError};
use burn::tensor::backend::Backend;
use serde::Serialize;
use serde::de::DeserializeOwned;

thread_local! {
    /// Set while [`load_checked`] runs on this thread: its panics are not printed.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Runs `load` (burn's `load_file` or `load_record` of a file vista did not write),
/// returning a panic inside it as [`Error::Record`](crate::Error::Record) on `path`.
/// The panic hook in place is kept for every other panic; only those inside `load` on
/// this thread go unprinted.
pub(crate) fn load_checked<T>(
    path: &Path,
    load: impl FnOnce() -> crate::Result<T>,
) -> crate::Result<T> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
    QUIET.with(|q| q.set(true));
    let result = std::panic::catch_unwind(AssertUnwindSafe(load));
    QUIET.with(|q| q.set(false));
    result.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("the record does not fit the model");
        // burn's messages are framed in blank lines and `===` banners.
        let message = message
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("==="))
            .collect::<Vec<_>>()
            .join(" ");
        Err(crate::Error::record(
            path,
            RecorderError::DeserializeError(format!("it does not fit the model: {message}")),
        ))
    })
}

/// The largest record file read (a full-width ResNet-152 in f32 is about 240 MB).
pub const MAX_RECORD_BYTES: u64 = 16 << 30;

/// burn's bincode record file format, written atomically and read with limits.
#[derive(Debug, Default, Clone)]
pub struct RunRecorder<S: PrecisionSettings> {
    _settings: PhantomData<S>,
}

impl<S: PrecisionSettings> RunRecorder<S> {
    /// A recorder storing floats at the precision of `S`.
    pub fn new() -> Self {
        Self {
            _settings: PhantomData,
        }
    }
}

fn unknown(e: impl std::fmt::Display) -> RecorderError {
    RecorderError::Unknown(e.to_string())
}

/// Decodes `bytes` allowing bincode to claim at most a bounded multiple of their length
/// (bincode's limit is a constant, so the smallest of a ladder of limits at least twice
/// the length is used: at most 8 times the length, never less than 1 MiB).
fn decode_bounded<I: DeserializeOwned>(bytes: &[u8]) -> Result<I, RecorderError> {
    use bincode::config::standard;
    macro_rules! ladder {
        ($($limit:expr),*) => {$(
            if bytes.len() <= $limit / 2 {
                return bincode::serde::decode_from_slice(bytes, standard().with_limit::<{ $limit }>())
                    .map(|(item, _)| item)
                    .map_err(unknown);
            }
        )*};
    }
    ladder!(
        1 << 20,
        1 << 22,
        1 << 24,
        1 << 26,
        1 << 28,
        1 << 30,
        1 << 32,
        1 << 34,
        1 << 36
    );
    Err(unknown(format!(
        "a record of {} bytes is larger than vista reads",
        bytes.len()
    )))
}

impl<S: PrecisionSettings, B: Backend> Recorder<B> for RunRecorder<S> {
    type Settings = S;
    type RecordArgs = PathBuf;
    type RecordOutput = ();
    type LoadArgs = PathBuf;

    fn save_item<I: Serialize>(&self, item: I, mut file: PathBuf) -> Result<(), RecorderError> {
        file.set_extension(<Self as FileRecorder<B>>::file_extension());
        vista_data::write_atomic_with(&file, |w| {
            bincode::serde::encode_into_std_write(&item, w, bincode::config::standard())
                .map(|_| ())
                .map_err(std::io::Error::other)
        })
        .map_err(unknown)
    }

    fn load_item<I: DeserializeOwned>(&self, file: &mut PathBuf) -> Result<I, RecorderError> {
        file.set_extension(<Self as FileRecorder<B>>::file_extension());
        let bytes = vista_data::read_limited(file, MAX_RECORD_BYTES).map_err(|e| match e {
            vista_format::Error::Io { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                RecorderError::FileNotFound(file.display().to_string())
            }
            e => unknown(e),
        })?;
        decode_bounded(&bytes)
    }
}

impl<S: PrecisionSettings, B: Backend> FileRecorder<B> for RunRecorder<S> {
    fn file_extension() -> &'static str {
        "bin"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_length_prefix_larger_than_the_file_is_an_error_not_an_allocation() {
        // A bincode varint announcing a 2^62-byte vector, then nothing.
        let mut bytes = vec![0xfd];
        bytes.extend_from_slice(&(1u64 << 62).to_le_bytes());
        assert!(decode_bounded::<Vec<u8>>(&bytes).is_err());
        assert!(decode_bounded::<Vec<f32>>(&bytes).is_err());
        assert!(decode_bounded::<String>(&[]).is_err());
        let ok =
            bincode::serde::encode_to_vec(vec![1.5f32; 10], bincode::config::standard()).unwrap();
        assert_eq!(decode_bounded::<Vec<f32>>(&ok).unwrap(), vec![1.5f32; 10]);
    }
}
