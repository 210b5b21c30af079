//! The part of the zip format that PyTorch's checkpoints use, read without trusting any
//! declared count, size or offset.
//!
//! PyTorch writes every entry stored (uncompressed), 64-byte aligned, with zip64 records
//! once the archive is large (`caffe2/serialize/inline_container.cc`). This reader
//! follows the APPNOTE layout (end record, zip64 locator and end record, central
//! directory, local headers) and checks each number against the file before using it.
//! It finds entries and their byte ranges; it never inflates: a compressed entry is
//! refused when it is used, as inflating is how a few megabytes claim gigabytes.

use std::collections::HashMap;

use super::{
    MAX_CENTRAL_DIRECTORY_BYTES, MAX_ENTRY_NAME_BYTES, MAX_ZIP_ENTRIES, ReadError, Source, Span,
    bad, over,
};

const END_SIGNATURE: u32 = 0x0605_4b50;
const END_LEN: usize = 22;
/// The end record's comment is at most this long, so the record lies in the last 64 KiB.
const MAX_COMMENT: usize = 0xffff;
const ZIP64_LOCATOR_SIGNATURE: u32 = 0x0706_4b50;
const ZIP64_LOCATOR_LEN: usize = 20;
const ZIP64_END_SIGNATURE: u32 = 0x0606_4b50;
const ZIP64_END_LEN: usize = 56;
const CENTRAL_SIGNATURE: u32 = 0x0201_4b50;
const CENTRAL_LEN: usize = 46;
const LOCAL_SIGNATURE: u32 = 0x0403_4b50;
const LOCAL_LEN: usize = 30;
const ZIP64_EXTRA_ID: u16 = 0x0001;
const METHOD_STORED: u16 = 0;
const FLAG_ENCRYPTED: u16 = 1;

fn u16_at(b: &[u8], at: usize) -> Result<u16, ReadError> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| bad("zip record ends early"))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, ReadError> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| bad("zip record ends early"))
}

fn u64_at(b: &[u8], at: usize) -> Result<u64, ReadError> {
    b.get(at..at + 8)
        .map(|s| {
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            u64::from_le_bytes(a)
        })
        .ok_or_else(|| bad("zip record ends early"))
}

/// One file of the archive, as its central directory describes it.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) name: String,
    method: u16,
    flags: u16,
    compressed: u64,
    size: u64,
    header: u64,
}

/// The central directory of an archive.
#[derive(Debug)]
pub(super) struct Archive {
    pub(super) entries: Vec<Entry>,
    by_name: HashMap<String, usize>,
    /// Where the central directory starts: every entry's data lies before it.
    directory: u64,
}

/// Where the central directory is and how many entries it declares.
struct End {
    entries: u64,
    size: u64,
    offset: u64,
    /// Where the records after the central directory start.
    limit: u64,
}

fn find_end(src: &mut impl Source) -> Result<End, ReadError> {
    let len = src.size();
    let tail_len = len.min((END_LEN + MAX_COMMENT) as u64) as usize;
    if tail_len < END_LEN {
        return Err(ReadError::Truncated(
            "the zip archive is shorter than its end record".into(),
        ));
    }
    // PyTorch writes no comment, so the end record is usually the file's last 22 bytes;
    // only when it is not is the whole region a comment may cover read.
    let last = src.read_at(len - END_LEN as u64, END_LEN)?;
    let bare = u32_at(&last, 0)? == END_SIGNATURE && u16_at(&last, 20)? == 0;
    drop(last);
    let tail_len = if bare { END_LEN } else { tail_len };
    let tail_start = len - tail_len as u64;
    let tail = src.read_at(tail_start, tail_len)?;
    // The end record is the last signature whose comment runs exactly to the end of the
    // file; only that one candidate is tried, so a file of signatures costs one pass.
    let at = (0..=tail.len() - END_LEN)
        .rev()
        .find(|&i| {
            u32_at(&tail, i).is_ok_and(|s| s == END_SIGNATURE)
                && u16_at(&tail, i + 20).is_ok_and(|c| i + END_LEN + usize::from(c) == tail.len())
        })
        .ok_or_else(|| ReadError::Truncated("no zip end record at the end of the file".into()))?;
    let disk = u16_at(&tail, at + 4)?;
    let directory_disk = u16_at(&tail, at + 6)?;
    let on_disk = u16_at(&tail, at + 8)?;
    let entries = u16_at(&tail, at + 10)?;
    let size = u32_at(&tail, at + 12)?;
    let offset = u32_at(&tail, at + 16)?;
    let end_pos = tail_start + at as u64;
    drop(tail);
    let zip64 = entries == u16::MAX || size == u32::MAX || offset == u32::MAX;
    if !zip64 {
        if disk != 0 || directory_disk != 0 || on_disk != entries {
            return Err(bad("multi-disk zip archives are not supported"));
        }
        return Ok(End {
            entries: u64::from(entries),
            size: u64::from(size),
            offset: u64::from(offset),
            limit: end_pos,
        });
    }
    let locator_pos = end_pos
        .checked_sub(ZIP64_LOCATOR_LEN as u64)
        .ok_or_else(|| bad("zip64 end record without its locator"))?;
    let locator = src.read_at(locator_pos, ZIP64_LOCATOR_LEN)?;
    if u32_at(&locator, 0)? != ZIP64_LOCATOR_SIGNATURE {
        return Err(bad("zip64 end record without its locator"));
    }
    let end64_pos = u64_at(&locator, 8)?;
    drop(locator);
    if end64_pos
        .checked_add(ZIP64_END_LEN as u64)
        .is_none_or(|e| e > locator_pos)
    {
        return Err(bad("zip64 end record lies outside the file"));
    }
    let end64 = src.read_at(end64_pos, ZIP64_END_LEN)?;
    if u32_at(&end64, 0)? != ZIP64_END_SIGNATURE {
        return Err(bad("zip64 end record has a wrong signature"));
    }
    let (disk, directory_disk) = (u32_at(&end64, 16)?, u32_at(&end64, 20)?);
    let (on_disk, entries) = (u64_at(&end64, 24)?, u64_at(&end64, 32)?);
    if disk != 0 || directory_disk != 0 || on_disk != entries {
        return Err(bad("multi-disk zip archives are not supported"));
    }
    Ok(End {
        entries,
        size: u64_at(&end64, 40)?,
        offset: u64_at(&end64, 48)?,
        limit: end64_pos,
    })
}

/// Reads the zip64 extra field's values for the fields that hold their all-ones marker.
fn zip64_extra(
    extra: &[u8],
    size: &mut u64,
    compressed: &mut u64,
    header: &mut u64,
) -> Result<(), ReadError> {
    let mut p = 0;
    while p + 4 <= extra.len() {
        let id = u16_at(extra, p)?;
        let n = usize::from(u16_at(extra, p + 2)?);
        let data = extra
            .get(p + 4..p + 4 + n)
            .ok_or_else(|| bad("zip extra field runs past its header"))?;
        if id == ZIP64_EXTRA_ID {
            let mut q = 0;
            for field in [size, compressed, header] {
                if *field == u64::from(u32::MAX) {
                    *field = u64_at(data, q)?;
                    q += 8;
                }
            }
            return Ok(());
        }
        p += 4 + n;
    }
    Ok(())
}

impl Archive {
    /// Reads the central directory, within [`MAX_ZIP_ENTRIES`] entries and
    /// [`MAX_CENTRAL_DIRECTORY_BYTES`].
    pub(super) fn open(src: &mut impl Source) -> Result<Self, ReadError> {
        let end = find_end(src)?;
        if end.entries > MAX_ZIP_ENTRIES as u64 {
            return Err(over("zip entries", MAX_ZIP_ENTRIES as u64));
        }
        if end.size > MAX_CENTRAL_DIRECTORY_BYTES as u64 {
            return Err(over(
                "bytes of zip central directory",
                MAX_CENTRAL_DIRECTORY_BYTES as u64,
            ));
        }
        if end
            .offset
            .checked_add(end.size)
            .is_none_or(|e| e > end.limit)
        {
            return Err(bad("the zip central directory lies outside the file"));
        }
        if end.entries.saturating_mul(CENTRAL_LEN as u64) > end.size {
            return Err(bad(format!(
                "the zip central directory is too short for its {} entries",
                end.entries
            )));
        }
        let directory = src.read_at(end.offset, end.size as usize)?;
        let mut entries = Vec::with_capacity(end.entries as usize);
        let mut by_name = HashMap::with_capacity(end.entries as usize);
        let mut p = 0usize;
        for _ in 0..end.entries {
            let d = directory
                .get(p..)
                .filter(|d| d.len() >= CENTRAL_LEN)
                .ok_or_else(|| bad("the zip central directory ends early"))?;
            if u32_at(d, 0)? != CENTRAL_SIGNATURE {
                return Err(bad("a zip central directory entry has a wrong signature"));
            }
            let flags = u16_at(d, 8)?;
            let method = u16_at(d, 10)?;
            let mut compressed = u64::from(u32_at(d, 20)?);
            let mut size = u64::from(u32_at(d, 24)?);
            let name_len = usize::from(u16_at(d, 28)?);
            let extra_len = usize::from(u16_at(d, 30)?);
            let comment_len = usize::from(u16_at(d, 32)?);
            let mut header = u64::from(u32_at(d, 42)?);
            if name_len > MAX_ENTRY_NAME_BYTES {
                return Err(over(
                    "bytes in a zip entry name",
                    MAX_ENTRY_NAME_BYTES as u64,
                ));
            }
            let name = d
                .get(CENTRAL_LEN..CENTRAL_LEN + name_len)
                .ok_or_else(|| bad("a zip entry name runs past the central directory"))?;
            let name = std::str::from_utf8(name)
                .map_err(|_| bad("a zip entry name is not UTF-8"))?
                .to_owned();
            let extra_at = CENTRAL_LEN + name_len;
            let extra = d
                .get(extra_at..extra_at + extra_len)
                .ok_or_else(|| bad("a zip extra field runs past the central directory"))?;
            zip64_extra(extra, &mut size, &mut compressed, &mut header)?;
            p += extra_at + extra_len + comment_len;
            if by_name.insert(name.clone(), entries.len()).is_some() {
                return Err(bad(format!("the zip archive holds `{name}` twice")));
            }
            entries.push(Entry {
                name,
                method,
                flags,
                compressed,
                size,
                header,
            });
        }
        Ok(Self {
            entries,
            by_name,
            directory: end.offset,
        })
    }

    pub(super) fn get(&self, name: &str) -> Option<&Entry> {
        self.by_name.get(name).map(|&i| &self.entries[i])
    }

    /// Where an entry's bytes lie in the file; it must be stored, and lie before the
    /// central directory.
    pub(super) fn span(&self, src: &mut impl Source, e: &Entry) -> Result<Span, ReadError> {
        let name = &e.name;
        if e.flags & FLAG_ENCRYPTED != 0 {
            return Err(bad(format!("zip entry `{name}` is encrypted")));
        }
        if e.method != METHOD_STORED {
            return Err(bad(format!(
                "zip entry `{name}` is compressed (method {}); PyTorch stores checkpoint \
                 entries uncompressed, and this reader does not inflate them",
                e.method
            )));
        }
        if e.compressed != e.size {
            return Err(bad(format!(
                "stored zip entry `{name}` declares {} bytes and {} compressed bytes",
                e.size, e.compressed
            )));
        }
        let local = src.read_at(e.header, LOCAL_LEN)?;
        if u32_at(&local, 0)? != LOCAL_SIGNATURE {
            return Err(bad(format!("zip entry `{name}` has no local header")));
        }
        let skip =
            LOCAL_LEN as u64 + u64::from(u16_at(&local, 26)?) + u64::from(u16_at(&local, 28)?);
        drop(local);
        let start = e.header.checked_add(skip);
        let end = start.and_then(|s| s.checked_add(e.size));
        match (start, end) {
            (Some(start), Some(end)) if end <= self.directory => Ok(Span { start, len: e.size }),
            _ => Err(bad(format!(
                "zip entry `{name}` declares {} bytes, more than the archive holds",
                e.size
            ))),
        }
    }
}
