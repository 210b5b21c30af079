//! A run folder's checkpoints and its lock: `checkpoints/epoch-NNNN` written whole and
//! named by `checkpoints/latest`, the newest that loads found on resume (else the spare
//! kept before it), and `RunLock`, which keeps a second process out. The GAN trainer
//! keeps its checkpoints the same way.

use std::path::{Path, PathBuf};

use burn::record::FullPrecisionSettings;
use vista_data::write_atomic;

use vista_format::{CheckpointDir, Checkpointed, RunDir, checkpoint_name, is_checkpoint_name};

use super::RunState;
use super::config::{RunOptions, TrainConfig};
use crate::error::{Error, Result};
use crate::record::RunRecorder;

pub(crate) fn recorder() -> RunRecorder<FullPrecisionSettings> {
    RunRecorder::new()
}

/// `checkpoints/` of a run folder (a classifier's or a GAN's: both keep them alike).
fn checkpoints(dir: &Path) -> PathBuf {
    RunDir::new(dir).checkpoints()
}

/// The folder named by `checkpoints/latest`, if any. Anything but one `epoch-NNNN`
/// name is an error.
pub fn latest_checkpoint(dir: &Path) -> Result<Option<PathBuf>> {
    let latest = RunDir::new(dir).latest();
    match vista_data::read_limited(&latest, 64) {
        Ok(bytes) => {
            let name = String::from_utf8_lossy(&bytes);
            let name = name.trim();
            if !is_checkpoint_name(name) {
                return Err(Error::BadCheckpoint {
                    path: latest,
                    why: format!("it names `{name}`, not a checkpoint (epoch-NNNN)"),
                });
            }
            Ok(Some(checkpoints(dir).join(name)))
        }
        Err(vista_format::Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The run's checkpoints, newest first: the one `latest` names, then the others (the
/// spare), so a resume can fall back when the newest does not load.
fn checkpoints_newest_first(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = latest_checkpoint(dir)?.into_iter().collect();
    let root = checkpoints(dir);
    let mut others: Vec<PathBuf> = match std::fs::read_dir(&root) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(is_checkpoint_name)
                    && std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
                    && !out.contains(p)
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    others.sort();
    others.reverse();
    out.extend(others);
    Ok(out)
}

/// The newest checkpoint of `dir` that `load` accepts, with what it loaded. A newest one
/// damaged by a crash or a full disk falls back to the spare kept before it, with a
/// warning. `None` when there is no checkpoint; the newest one's error when none loads.
pub(crate) fn resume_newest<T>(
    dir: &Path,
    observer: &vista_format::Observers,
    mut load: impl FnMut(&Path) -> Result<T>,
) -> Result<Option<(PathBuf, T)>> {
    let mut failure = None;
    for ckpt in checkpoints_newest_first(dir)? {
        match load(&ckpt) {
            Ok(found) => {
                if let Some(e) = failure {
                    observer.warn(&format!(
                        "the newest checkpoint does not load ({e}); resuming from {}",
                        ckpt.display()
                    ));
                }
                return Ok(Some((ckpt, found)));
            }
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    failure.map_or(Ok(None), Err)
}

/// Holds a run folder for one process: an advisory lock (`flock`) on `<dir>/.lock`,
/// released when dropped or when the process dies. A second process on the same folder
/// gets an error naming the folder and the holder's pid.
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

impl RunLock {
    /// Locks the run folder `dir` (created if missing) for this process and writes its
    /// pid into the lock file; a folder another process holds is [`Error::Busy`].
    pub fn acquire(dir: &Path) -> Result<RunLock> {
        use std::io::{Read, Seek, Write};
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = RunDir::new(dir).lock();
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        if file.try_lock().is_err() {
            let mut holder = String::new();
            let _ = file.take(32).read_to_string(&mut holder);
            return Err(Error::Busy {
                dir: dir.to_path_buf(),
                pid: holder.trim().to_string(),
            });
        }
        file.set_len(0).map_err(|e| Error::io(&path, e))?;
        file.rewind().map_err(|e| Error::io(&path, e))?;
        write!(file, "{}", std::process::id()).map_err(|e| Error::io(&path, e))?;
        Ok(RunLock { _file: file })
    }
}

/// Writes checkpoint `checkpoints/epoch-NNNN` of the run in `dir`: `fill` writes its
/// files into a temporary folder, which is renamed into place and then named in
/// `checkpoints/latest`; older checkpoints but the previous one (a spare) are removed.
pub(crate) fn write_checkpoint(
    dir: &Path,
    epoch: usize,
    fill: impl FnOnce(&CheckpointDir) -> Result<()>,
) -> Result<()> {
    let root = checkpoints(dir);
    let name = checkpoint_name(epoch);
    let tmp = root.join(format!(".{name}.tmp"));
    let fin = root.join(&name);
    if std::fs::symlink_metadata(&tmp).is_ok() {
        // Left by a crash while filling: incomplete. (A link is removed as a link.)
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    fill(&CheckpointDir::new(&tmp))?;
    vista_data::sync_dir(&tmp)?;
    if std::fs::symlink_metadata(&fin).is_ok() {
        // Left by a crash between the rename and the pointer update: complete, but
        // older than what we hold now.
        std::fs::remove_dir_all(&fin).map_err(|e| Error::io(&fin, e))?;
    }
    vista_data::fault_point("rename").map_err(|e| Error::io(&fin, e))?;
    std::fs::rename(&tmp, &fin).map_err(|e| Error::io(&fin, e))?;
    vista_data::sync_dir(&root)?;
    write_atomic(&RunDir::new(dir).latest(), name.as_bytes())?;
    // Older checkpoints are ours to remove; keep the previous one as a spare.
    let mut old: Vec<PathBuf> = std::fs::read_dir(&root)
        .map_err(|e| Error::io(&root, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| is_checkpoint_name(n) && n != name)
        })
        .collect();
    old.sort();
    if old.len() > 1 {
        for p in &old[..old.len() - 1] {
            std::fs::remove_dir_all(p).map_err(|e| Error::io(p, e))?;
        }
    }
    Ok(())
}

/// Refuses to start a run over one that has checkpoints, unless resuming.
pub(crate) fn refuse_started_run(dir: &Path, opts: &RunOptions, what: &'static str) -> Result<()> {
    if latest_checkpoint(dir)?.is_some() && !opts.resume {
        return Err(Error::RunExists {
            dir: dir.to_path_buf(),
            what,
        });
    }
    Ok(())
}

/// The largest JSON file of a run read (a state holds every step's loss).
/// Reads a JSON file the run wrote (its config or a checkpoint's state), with
/// `vista_format`'s size limit; a file that does not parse is [`Error::State`].
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    vista_format::read_json(path).map_err(|e| match e {
        vista_format::Error::Json { path, source } => Error::State { path, source },
        e => e.into(),
    })
}

pub(super) fn read_state(path: &Path) -> Result<RunState> {
    read_json(path)
}

pub(super) fn read_config(path: &Path) -> Result<TrainConfig> {
    read_json(path)
}
