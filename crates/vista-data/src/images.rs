//! Decoded images held in memory up to a budget, and beyond it in an unnamed file on disk.
//!
//! A dataset's decoded pixels can outgrow memory (10,000 phone photos at 258 px are
//! 2.7 GB), so [`Images`] keeps each image either in memory or in a spill file: an
//! unnamed temporary file (`O_TMPFILE` on Linux) that no other process can open and that
//! vanishes when the last handle closes, a crash or a kill included, so no run ever
//! leaves one behind. A spilled image is read back (one positioned read, no lock) each
//! time a batch needs it; the operating system keeps what it can of the file in its page
//! cache, outside the process, and drops it under pressure. The pixels are the same
//! either way, so what spills never changes a result.
//!
//! [`ImageSource`] is what readers of images take: [`Images`], a slice or a `Vec` of
//! [`RgbImage`].

use std::borrow::Cow;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use image::RgbImage;

use crate::error::{Error, Result};

/// Images that can be read one at a time by index, from any thread.
pub trait ImageSource: Sync {
    /// The number of images.
    fn count(&self) -> usize;

    /// Image `i`, borrowed when it is in memory.
    ///
    /// # Panics
    /// When `i` is out of range, or (for spilled images) when the spill file can no longer
    /// be read, which only a failing disk does.
    fn image(&self, i: usize) -> Cow<'_, RgbImage>;
}

impl ImageSource for [RgbImage] {
    fn count(&self) -> usize {
        self.len()
    }

    fn image(&self, i: usize) -> Cow<'_, RgbImage> {
        Cow::Borrowed(&self[i])
    }
}

impl<const N: usize> ImageSource for [RgbImage; N] {
    fn count(&self) -> usize {
        N
    }

    fn image(&self, i: usize) -> Cow<'_, RgbImage> {
        Cow::Borrowed(&self[i])
    }
}

impl ImageSource for Vec<RgbImage> {
    fn count(&self) -> usize {
        self.len()
    }

    fn image(&self, i: usize) -> Cow<'_, RgbImage> {
        Cow::Borrowed(&self[i])
    }
}

/// A list of decoded images, each in memory or in a spill file. Cloning it, taking a
/// subset ([`Images::pick`]) or appending ([`Images::chain`]) shares the pixels.
#[derive(Debug, Clone, Default)]
pub struct Images {
    slots: Vec<Slot>,
}

#[derive(Debug, Clone)]
enum Slot {
    Memory(Arc<RgbImage>),
    Spilled {
        file: Arc<File>,
        offset: u64,
        width: u32,
        height: u32,
    },
}

impl Images {
    /// No images.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True without images.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Width and height of image `i`, without reading it.
    ///
    /// # Panics
    /// When `i` is out of range.
    pub fn dimensions(&self, i: usize) -> (u32, u32) {
        match &self.slots[i] {
            Slot::Memory(img) => img.dimensions(),
            Slot::Spilled { width, height, .. } => (*width, *height),
        }
    }

    /// Image `i`, borrowed when it is in memory, read back when it was spilled.
    ///
    /// # Panics
    /// As [`ImageSource::image`].
    pub fn get(&self, i: usize) -> Cow<'_, RgbImage> {
        match &self.slots[i] {
            Slot::Memory(img) => Cow::Borrowed(img),
            Slot::Spilled {
                file,
                offset,
                width,
                height,
            } => {
                let mut raw = vec![0u8; 3 * *width as usize * *height as usize];
                if let Err(e) = read_exact_at(file, &mut raw, *offset) {
                    panic!("reading back a spilled decoded image failed: {e}");
                }
                Cow::Owned(
                    RgbImage::from_raw(*width, *height, raw).expect("the length was computed"),
                )
            }
        }
    }

    /// Every image in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Cow<'_, RgbImage>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// The images at `indices`, in that order (repeats allowed), sharing the pixels.
    ///
    /// # Panics
    /// When an index is out of range.
    pub fn pick(&self, indices: impl IntoIterator<Item = usize>) -> Self {
        Self {
            slots: indices.into_iter().map(|i| self.slots[i].clone()).collect(),
        }
    }

    /// These images followed by `other`'s.
    pub fn chain(mut self, other: Images) -> Self {
        self.slots.extend(other.slots);
        self
    }

    /// Every image as an owned [`RgbImage`] (spilled ones read back).
    pub fn to_vec(&self) -> Vec<RgbImage> {
        self.iter().map(Cow::into_owned).collect()
    }

    /// Bytes of pixels held in memory (images shared with other lists count in each).
    pub fn memory_bytes(&self) -> u64 {
        (self.slots.iter())
            .map(|s| match s {
                Slot::Memory(img) => img.as_raw().len() as u64,
                Slot::Spilled { .. } => 0,
            })
            .sum()
    }

    /// The number of images kept in a spill file rather than in memory.
    pub fn spilled(&self) -> usize {
        (self.slots.iter())
            .filter(|s| matches!(s, Slot::Spilled { .. }))
            .count()
    }

    /// Bytes of pixels kept in spill files.
    pub fn spilled_bytes(&self) -> u64 {
        (self.slots.iter())
            .map(|s| match s {
                Slot::Memory(_) => 0,
                Slot::Spilled { width, height, .. } => 3 * u64::from(*width) * u64::from(*height),
            })
            .sum()
    }
}

impl ImageSource for Images {
    fn count(&self) -> usize {
        self.len()
    }

    fn image(&self, i: usize) -> Cow<'_, RgbImage> {
        self.get(i)
    }
}

impl From<Vec<RgbImage>> for Images {
    fn from(images: Vec<RgbImage>) -> Self {
        images.into_iter().collect()
    }
}

impl FromIterator<RgbImage> for Images {
    fn from_iter<I: IntoIterator<Item = RgbImage>>(iter: I) -> Self {
        Self {
            slots: (iter.into_iter())
                .map(|img| Slot::Memory(Arc::new(img)))
                .collect(),
        }
    }
}

/// Where decoded images go while a dataset is decoded: memory while the budget lasts,
/// then a spill file. Shared by the decoding threads.
#[derive(Debug)]
pub struct ImageStore {
    /// Bytes of memory still free for pixels.
    left: AtomicU64,
    dir: PathBuf,
    spill: std::sync::OnceLock<std::result::Result<Arc<File>, String>>,
    /// The next free offset in the spill file.
    end: AtomicU64,
}

/// One image placed by an [`ImageStore`].
#[derive(Debug, Clone)]
pub struct Stored(Slot);

impl ImageStore {
    /// A store keeping up to `budget` bytes of pixels in memory and spilling the rest
    /// into an unnamed file created in `dir` when first needed.
    pub fn new(budget: u64, dir: &Path) -> Self {
        Self {
            left: AtomicU64::new(budget),
            dir: dir.to_path_buf(),
            spill: std::sync::OnceLock::new(),
            end: AtomicU64::new(0),
        }
    }

    /// Keeps `img` in memory when the budget allows, else writes it to the spill file.
    pub fn put(&self, img: RgbImage) -> Result<Stored> {
        let len = img.as_raw().len() as u64;
        let fits = (self.left)
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(len)
            })
            .is_ok();
        if fits {
            return Ok(Stored(Slot::Memory(Arc::new(img))));
        }
        // A folder that takes no file (read-only, gone) leaves the system's temporary one.
        let file = match self.spill.get_or_init(|| {
            (tempfile::tempfile_in(&self.dir))
                .or_else(|first| tempfile::tempfile().map_err(|_| first))
                .map(Arc::new)
                .map_err(|e| e.to_string())
        }) {
            Ok(file) => file.clone(),
            Err(e) => {
                return Err(Error::Io {
                    path: self.dir.clone(),
                    source: std::io::Error::other(format!(
                        "creating a file for decoded images beyond the memory budget: {e}"
                    )),
                });
            }
        };
        let offset = self.end.fetch_add(len, Ordering::Relaxed);
        write_all_at(&file, img.as_raw(), offset).map_err(|e| Error::Io {
            path: self.dir.clone(),
            source: std::io::Error::new(
                e.kind(),
                format!("writing decoded images beyond the memory budget: {e}"),
            ),
        })?;
        let (width, height) = img.dimensions();
        Ok(Stored(Slot::Spilled {
            file,
            offset,
            width,
            height,
        }))
    }
}

impl FromIterator<Stored> for Images {
    fn from_iter<I: IntoIterator<Item = Stored>>(iter: I) -> Self {
        Self {
            slots: iter.into_iter().map(|s| s.0).collect(),
        }
    }
}

/// The default memory budget for decoded pixels: an eighth of the memory the process
/// may use (the machine's, or its container's limit when lower), or 2 GiB where neither
/// can be read.
pub fn default_cache_budget() -> u64 {
    let machine = total_memory();
    let limit = cgroup_limit();
    let memory = match (machine, limit) {
        (Some(m), Some(l)) => Some(m.min(l)),
        (m, l) => m.or(l),
    };
    memory.map_or(2 << 30, |total| total / 8)
}

/// The machine's memory in bytes, from `/proc/meminfo` (Linux).
fn total_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The lowest memory limit (cgroup v2's `memory.max`) on the process's own cgroup and
/// those above it, or cgroup v1's `memory.limit_in_bytes`, when one is set.
fn cgroup_limit() -> Option<u64> {
    let read = |p: &Path| -> Option<u64> { std::fs::read_to_string(p).ok()?.trim().parse().ok() };
    let own = std::fs::read_to_string("/proc/self/cgroup").ok();
    let path = (own.as_deref())
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("0::")))
        .unwrap_or("/");
    let mut dir = Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
    let mut lowest: Option<u64> = None;
    for _ in 0..64 {
        if let Some(v) = read(&dir.join("memory.max")) {
            lowest = Some(lowest.map_or(v, |l| l.min(v)));
        }
        if dir == Path::new("/sys/fs/cgroup") || !dir.pop() {
            break;
        }
    }
    // cgroup v1 reports "no limit" as a number near 2^63.
    let v1 =
        read(Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes")).filter(|&v| v < 1 << 60);
    match (lowest, v1) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(unix)]
fn write_all_at(file: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(windows)]
fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_write(file, buf, offset)? {
            0 => return Err(std::io::ErrorKind::WriteZero.into()),
            n => {
                buf = &buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(seed: u8, w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([seed, (x as u8).wrapping_mul(7), (y as u8) ^ seed])
        })
    }

    #[test]
    fn images_past_the_budget_spill_and_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let originals: Vec<RgbImage> = (0..6).map(|i| image(i, 5 + u32::from(i), 4)).collect();
        // Room for the first two images only (15 + 18 bytes of 3x... pixels).
        let budget = (originals[0].len() + originals[1].len()) as u64;
        let store = ImageStore::new(budget, dir.path());
        let images: Images = (originals.iter())
            .map(|img| store.put(img.clone()).unwrap())
            .collect();
        assert_eq!(images.len(), 6);
        assert_eq!(images.spilled(), 4);
        assert_eq!(images.memory_bytes(), budget);
        for (i, original) in originals.iter().enumerate() {
            assert_eq!(images.dimensions(i), original.dimensions());
            assert_eq!(&*images.get(i), original, "image {i}");
        }
        let picked = images.pick([5, 0, 5]);
        assert_eq!(&*picked.get(0), &originals[5]);
        assert_eq!(&*picked.get(1), &originals[0]);
        let chained = picked.chain(Images::from(vec![image(9, 2, 2)]));
        assert_eq!(chained.len(), 4);
        assert_eq!(chained.to_vec()[3], image(9, 2, 2));
        // The spill file has no name: the folder stays empty.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_spill_folder_that_takes_no_file_leaves_the_temporary_folder() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let store = ImageStore::new(0, &missing);
        let images: Images = [store.put(image(1, 2, 2)).unwrap()].into_iter().collect();
        assert_eq!(images.spilled(), 1);
        assert_eq!(&*images.get(0), &image(1, 2, 2));
        assert!(!missing.exists());
    }

    #[test]
    fn the_default_budget_is_a_fraction_of_memory() {
        let budget = default_cache_budget();
        assert!(budget >= 64 << 20, "{budget}");
    }
}
