//! Small file-system helpers every crate uses for files that matter: atomic, durable
//! writes that never follow a symbolic link, bounded reads, moves that never replace
//! anything, and the fault-injection points the durability tests drive.
//!
//! A write goes to a fresh temporary file with a random name in the destination's
//! folder (opened with `O_EXCL`, so a link planted at a predictable name is never
//! followed), is flushed and fsynced, renamed over the destination, and the folder is
//! fsynced so the rename itself survives a power cut.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result, io_err};

/// The folder a path lives in (`.` for a bare file name).
fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Refuses a path that is a symbolic link: vista's own files are never written through
/// one, since a dataset or run folder from someone else could point it anywhere.
pub fn refuse_symlink(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(Error::Symlink {
            path: path.to_path_buf(),
        }),
        _ => Ok(()),
    }
}

/// Writes `bytes` to `path` atomically and durably (see the module's documentation).
/// A symbolic link at `path` is refused, not followed or replaced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Like [`write_atomic`], for writers that stream: `fill` writes the whole content.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut std::io::BufWriter<&std::fs::File>) -> std::io::Result<()>,
) -> Result<()> {
    refuse_symlink(path)?;
    let dir = parent_of(path);
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    sweep_stale_temporaries(dir, &name);
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    let file = tmp.as_file();
    {
        let mut w = std::io::BufWriter::new(file);
        fault_point("write").map_err(io_err(tmp.path()))?;
        fill(&mut w).map_err(io_err(tmp.path()))?;
        w.flush().map_err(io_err(tmp.path()))?;
    }
    fault_point("fsync").map_err(io_err(tmp.path()))?;
    file.sync_all().map_err(io_err(tmp.path()))?;
    fault_point("rename").map_err(io_err(path))?;
    tmp.persist(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    sync_dir(dir)
}

/// Removes the temporaries an earlier write of `name` left in `dir` when its process was
/// killed: regular files named `.<name>.XXXXXX.tmp` exactly as [`write_atomic_with`]
/// names them (six random characters). Best effort: what cannot be removed stays.
fn sweep_stale_temporaries(dir: &Path, name: &str) {
    let prefix = format!(".{name}.");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(n) = file_name.to_str() else {
            continue;
        };
        let is_ours = n
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .is_some_and(|r| r.len() == 6 && r.bytes().all(|b| b.is_ascii_alphanumeric()));
        // `file_type` does not follow links: a link of that name is left alone.
        if is_ours && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Fsyncs a folder, so that renames and new entries in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    fault_point("fsync").map_err(io_err(dir))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Reads a whole file of at most `limit` bytes; a larger one is [`Error::TooBig`] and is
/// not read. The length is checked on the open file and again while reading, so a file
/// that grows in between cannot exceed the limit either.
pub fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let size = file.metadata().map_err(io_err(path))?.len();
    let too_big = |size| Error::TooBig {
        path: path.to_path_buf(),
        size,
        limit,
    };
    if size > limit {
        return Err(too_big(size));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err(path))?;
    if bytes.len() as u64 > limit {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Renames `from` to `to` only if nothing is at `to` (`renameat2` with
/// `RENAME_NOREPLACE`; where the file system lacks it, a hard link and an unlink, which
/// refuse an existing destination as well). A symbolic link is moved as a link. The
/// destination's folder is fsynced.
pub fn rename_noreplace(from: &Path, to: &Path) -> Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    fault_point("rename").map_err(io_err(to))?;
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => {}
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
            std::fs::hard_link(from, to).map_err(io_err(to))?;
            std::fs::remove_file(from).map_err(io_err(from))?;
        }
        Err(e) => {
            return Err(Error::Io {
                path: to.to_path_buf(),
                source: e.into(),
            });
        }
    }
    sync_dir(parent_of(to))?;
    if parent_of(from) != parent_of(to) {
        sync_dir(parent_of(from))?;
    }
    Ok(())
}

/// A fault-injection point. The durability tests set `VISTA_FAULT_AT=N` (and optionally
/// `VISTA_FAULT_KIND=write|fsync|rename` to count only that kind) to make the N-th
/// such operation of the process fail with an I/O error, or, with
/// `VISTA_FAULT_MODE=abort`, end the process on the spot as a kill would. Unset, each
/// point costs one relaxed atomic load.
pub fn fault_point(kind: &str) -> std::io::Result<()> {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    struct Plan {
        at: u64,
        kind: Option<String>,
        abort: bool,
    }
    static PLAN: OnceLock<Option<Plan>> = OnceLock::new();
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let plan = PLAN.get_or_init(|| {
        let at = std::env::var("VISTA_FAULT_AT").ok()?.parse().ok()?;
        Some(Plan {
            at,
            kind: std::env::var("VISTA_FAULT_KIND").ok(),
            abort: std::env::var("VISTA_FAULT_MODE").is_ok_and(|m| m == "abort"),
        })
    });
    let Some(plan) = plan else { return Ok(()) };
    if plan.kind.as_deref().is_some_and(|k| k != kind) {
        return Ok(());
    }
    let n = COUNT.fetch_add(1, Ordering::Relaxed) + 1;
    if n != plan.at {
        return Ok(());
    }
    if plan.abort {
        eprintln!("vista: injected abort at {kind} #{n}");
        std::process::abort();
    }
    Err(std::io::Error::other(format!(
        "injected fault at {kind} #{n}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_writers_temporary_is_swept_by_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join(".a.json.Ab3dE9.tmp");
        let other = dir.path().join(".b.json.Ab3dE9.tmp");
        let unlike = dir.path().join(".a.json.notours.tmp");
        for p in [&stale, &other, &unlike] {
            std::fs::write(p, b"half").unwrap();
        }
        write_atomic(&dir.path().join("a.json"), b"{}").unwrap();
        assert!(!stale.exists());
        assert!(other.exists() && unlike.exists());
    }

    #[test]
    fn write_atomic_replaces_a_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn write_atomic_refuses_a_symlink_and_leaves_its_target_alone() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("victim.jpg");
        std::fs::write(&target, b"original").unwrap();
        let link = dir.path().join("vista-clean.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(
            write_atomic(&link, b"evil"),
            Err(Error::Symlink { .. })
        ));
        assert_eq!(std::fs::read(&target).unwrap(), b"original");
    }

    #[test]
    fn read_limited_refuses_a_large_file_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(8 << 30).unwrap();
        assert!(matches!(
            read_limited(&p, 1 << 20),
            Err(Error::TooBig { size, .. }) if size == 8 << 30
        ));
        std::fs::write(&p, b"small").unwrap();
        assert_eq!(read_limited(&p, 5).unwrap(), b"small");
    }

    #[test]
    fn rename_noreplace_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"a").unwrap();
        std::fs::write(&b, b"b").unwrap();
        assert!(rename_noreplace(&a, &b).is_err());
        assert_eq!(std::fs::read(&b).unwrap(), b"b");
        assert_eq!(std::fs::read(&a).unwrap(), b"a");
        std::fs::remove_file(&b).unwrap();
        rename_noreplace(&a, &b).unwrap();
        assert!(!a.exists());
        assert_eq!(std::fs::read(&b).unwrap(), b"a");
    }

    #[test]
    fn rename_noreplace_moves_a_link_as_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t");
        std::fs::write(&target, b"t").unwrap();
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let moved = dir.path().join("m");
        rename_noreplace(&link, &moved).unwrap();
        assert!(std::fs::symlink_metadata(&moved).unwrap().is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"t");
    }
}
