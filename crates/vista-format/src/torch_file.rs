//! A reader for PyTorch checkpoint files that honours tensor strides and treats every
//! file as hostile.
//!
//! burn-store 0.21's reader ignores a tensor's strides and offset, so checkpoints holding
//! non-contiguous tensors (weights converted from TensorFlow, such as the
//! EfficientNet-Lite0 `.pth`, were saved as permuted views) load scrambled. This module
//! runs the small part of the pickle machine `torch.save` uses (`pickle.rs`) and gathers
//! every tensor through its own strides.
//!
//! Formats: the zip archive of PyTorch >= 1.6 (`<name>/data.pkl` + `<name>/data/<key>`,
//! read by `zip.rs`), and the legacy stream of PyTorch 0.1.10–1.5 (magic, protocol,
//! system info and main pickles, the storage-key list, then each storage as an 8-byte
//! element count and raw data).
//!
//! # Untrusted input
//!
//! A downloaded checkpoint is untrusted, so reading one never executes code (a callable
//! the pickle names is never called; see `pickle.rs`), never recurses on the file's
//! nesting, checks every size, stride and offset with checked arithmetic, and stays
//! within these limits, each an error ([`ReadError::Limit`]) when exceeded:
//!
//! - the file: at most 8 GiB, and read whole only by [`TorchFile::read`];
//!   [`TorchFile::read_tensor_list`] reads the pickles, the zip directory and the legacy
//!   storages' 8-byte counts, never a storage's bytes;
//! - a pickle: at most 64 MiB; its machine pushes at most 2^22 values, creates at most
//!   2^20 objects and keeps at most 2^20 memo entries;
//! - the walk that names tensors: at most 1000 levels of nesting (Python's default
//!   recursion limit, which `pickle.dumps` itself runs into), 2^22 steps, 1024 bytes per
//!   key, 65,536 tensors, rank 64, 256 bytes per storage key;
//! - a zip archive: at most 2^17 entries, a 16 MiB central directory and 1024-byte entry
//!   names; entries must be stored, as PyTorch writes them: a compressed entry is refused
//!   rather than inflated, so no declared size is ever trusted;
//! - a tensor: shape and stride of equal length, and the last element it reads lies
//!   inside its storage;
//! - the tensor budget: the bytes of all tensors (elements times element size, a storage
//!   viewed by several tensors counted once per view) may not exceed 4 times the bytes
//!   of the storages they view, counted at most up to the file's length, plus 1 MiB.
//!   This admits tied weights and a few views per storage and refuses a stride-0
//!   expansion of a small storage into a huge tensor. [`TorchFile::to_f32`] allocates 4
//!   bytes an element, so materializing every tensor of a file allocates at most 4 times
//!   the budget (twice it for float tensors, which are all that loading converts).

mod pickle;
mod zip;

use std::borrow::Cow;
use std::collections::{HashMap, TryReserveError};
use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use pickle::{Arena, Val};

/// The largest file [`TorchFile::read`] loads into memory.
const MAX_FILE_BYTES: u64 = 8 << 30;
/// The largest pickle (`data.pkl`, or the legacy format's pickles together).
const MAX_PICKLE_BYTES: usize = 64 << 20;
/// Values the pickle machine may push, marks included; each costs at most a few words.
const MAX_VALUES: usize = 1 << 22;
/// Objects (strings, containers, tensors) the pickle machine may create.
const MAX_NODES: usize = 1 << 20;
const MAX_MEMO: usize = 1 << 20;
const MAX_DEPTH: usize = 1000;
/// Children the walk that names tensors may look at; objects shared many times over
/// (a tuple of two copies of a tuple of two copies of ...) unfold past it.
const MAX_WALK_STEPS: usize = 1 << 22;
const MAX_KEY_BYTES: usize = 1024;
const MAX_TENSORS: usize = 1 << 16;
const MAX_RANK: usize = 64;
const MAX_STORAGE_KEY_BYTES: usize = 256;
/// Storages a legacy file may list.
const MAX_STORAGES: usize = 1 << 17;
const MAX_ZIP_ENTRIES: usize = 1 << 17;
const MAX_ENTRY_NAME_BYTES: usize = 1024;
const MAX_CENTRAL_DIRECTORY_BYTES: usize = 16 << 20;
/// The tensor budget is `TENSOR_BYTES_FACTOR` times the storages' bytes plus
/// `TENSOR_BYTES_SLACK` (see the module docs).
const TENSOR_BYTES_FACTOR: u64 = 4;
const TENSOR_BYTES_SLACK: u64 = 1 << 20;

/// `torch.serialization.MAGIC_NUMBER` (0x1950a86a20f9469cfc6c) as the legacy format's
/// first pickle writes it: a little-endian LONG1.
const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
/// `torch.serialization.PROTOCOL_VERSION`, the legacy format's second pickle.
const LEGACY_PROTOCOL: i64 = 1001;

/// Element types of PyTorch storages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// 64-bit float (`DoubleStorage`).
    F64,
    /// 32-bit float (`FloatStorage`).
    F32,
    /// 16-bit IEEE half float (`HalfStorage`).
    F16,
    /// 16-bit bfloat16 (`BFloat16Storage`).
    Bf16,
    /// 64-bit signed integer (`LongStorage`).
    I64,
    /// 32-bit signed integer (`IntStorage`).
    I32,
    /// 16-bit signed integer (`ShortStorage`).
    I16,
    /// 8-bit signed integer (`CharStorage`).
    I8,
    /// 8-bit unsigned integer (`ByteStorage`).
    U8,
    /// Boolean, one byte each (`BoolStorage`).
    Bool,
}

impl Dtype {
    fn from_storage(name: &str) -> Option<Self> {
        Some(match name {
            "DoubleStorage" => Dtype::F64,
            "FloatStorage" => Dtype::F32,
            "HalfStorage" => Dtype::F16,
            "BFloat16Storage" => Dtype::Bf16,
            "LongStorage" => Dtype::I64,
            "IntStorage" => Dtype::I32,
            "ShortStorage" => Dtype::I16,
            "CharStorage" => Dtype::I8,
            "ByteStorage" => Dtype::U8,
            "BoolStorage" => Dtype::Bool,
            _ => return None,
        })
    }

    /// Bytes of one element.
    pub fn size(self) -> usize {
        match self {
            Dtype::F64 | Dtype::I64 => 8,
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F16 | Dtype::Bf16 | Dtype::I16 => 2,
            Dtype::I8 | Dtype::U8 | Dtype::Bool => 1,
        }
    }

    /// Whether the elements are floating-point numbers (of any width).
    pub fn is_float(self) -> bool {
        matches!(self, Dtype::F64 | Dtype::F32 | Dtype::F16 | Dtype::Bf16)
    }
}

/// One tensor of a checkpoint, by reference into its storage (offset, shape and stride
/// in elements).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorRef {
    /// Element type of the storage.
    pub dtype: Dtype,
    /// Key of the storage the tensor views, as the file names it.
    pub storage: String,
    /// Position of the tensor's first element in the storage, in elements.
    pub offset: usize,
    /// Size of each dimension.
    pub shape: Vec<usize>,
    /// Step between neighbours along each dimension, in elements.
    pub stride: Vec<usize>,
}

/// A checkpoint: named tensors and the bytes of the file that holds their storages.
pub struct TorchFile {
    /// Tensors by their dotted path in the saved object (`state_dict.module.conv1.weight`),
    /// each checked against its storage and the file's tensor budget.
    pub tensors: Vec<(String, TensorRef)>,
    bytes: Vec<u8>,
    storages: HashMap<String, Span>,
    budget: u64,
}

impl fmt::Debug for TorchFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The file's bytes would drown everything else.
        f.debug_struct("TorchFile")
            .field("tensors", &self.tensors)
            .field("bytes", &self.bytes.len())
            .field("storages", &self.storages.len())
            .field("budget", &self.budget)
            .finish()
    }
}

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The file is not laid out as a PyTorch checkpoint; the text says what is wrong.
    #[error("not a PyTorch checkpoint: {0}")]
    Format(String),
    /// The file ends before something it declares; the text says what.
    #[error("the file ends early: {0}")]
    Truncated(String),
    /// The file exceeds one of the limits in this module's docs.
    #[error("the checkpoint exceeds this reader's limit of {limit} {what}")]
    Limit {
        /// What is counted, e.g. `bytes of pickle` or `tensors`.
        what: &'static str,
        /// The most of it the reader accepts.
        limit: u64,
    },
    /// A tensor is malformed or does not fit its storage.
    #[error("tensor `{key}`: {problem}")]
    Tensor {
        /// The tensor's dotted path in the saved object.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A storage is missing, malformed or cannot be read.
    #[error("storage `{key}`: {problem}")]
    Storage {
        /// The storage's key, as the file names it.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
    /// Memory for the file's bytes or a converted tensor could not be reserved.
    #[error("cannot allocate {bytes} bytes")]
    Alloc {
        /// The bytes that were asked for.
        bytes: u64,
        /// The allocator's error.
        #[source]
        source: TryReserveError,
    },
}

fn bad(msg: impl Into<String>) -> ReadError {
    ReadError::Format(msg.into())
}

fn over(what: &'static str, limit: u64) -> ReadError {
    ReadError::Limit { what, limit }
}

/// Reserves room for `n` more items, as an error instead of an abort when memory is short.
fn reserve<T>(v: &mut Vec<T>, n: usize) -> Result<(), ReadError> {
    v.try_reserve_exact(n).map_err(|source| ReadError::Alloc {
        bytes: (n as u64).saturating_mul(size_of::<T>() as u64),
        source,
    })
}

/// Where a storage's bytes lie in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u64,
    len: u64,
}

/// Random access to a file's bytes, in memory or on disk.
trait Source {
    fn size(&self) -> u64;
    /// Exactly `len` bytes at `offset`, or [`ReadError::Truncated`].
    fn read_at(&mut self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, ReadError>;
}

fn past_end(offset: u64, len: usize) -> ReadError {
    ReadError::Truncated(format!(
        "{len} bytes at offset {offset} lie past the end of the file"
    ))
}

impl Source for &[u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn read_at(&mut self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, ReadError> {
        usize::try_from(offset)
            .ok()
            .and_then(|s| self.get(s..s.checked_add(len)?))
            .map(Cow::Borrowed)
            .ok_or_else(|| past_end(offset, len))
    }
}

/// A file on disk, read piece by piece.
struct FileSource {
    file: File,
    size: u64,
}

impl Source for FileSource {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&mut self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, ReadError> {
        if offset.checked_add(len as u64).is_none_or(|e| e > self.size) {
            return Err(past_end(offset, len));
        }
        self.file.seek(SeekFrom::Start(offset))?;
        let mut buf = Vec::new();
        reserve(&mut buf, len)?;
        (&mut self.file).take(len as u64).read_to_end(&mut buf)?;
        if buf.len() < len {
            return Err(past_end(offset, len));
        }
        Ok(Cow::Owned(buf))
    }
}

/// What parsing finds: tensors and where their storages lie, all checked.
struct Parsed {
    tensors: Vec<(String, TensorRef)>,
    storages: HashMap<String, Span>,
    budget: u64,
}

type Tensors = Vec<(String, TensorRef)>;

fn parse(src: &mut impl Source) -> Result<Parsed, ReadError> {
    let zip = src.size() >= 2 && *src.read_at(0, 2)? == *b"PK";
    let (tensors, storages) = if zip {
        parse_zip(src)?
    } else {
        parse_legacy(src)?
    };
    let budget = check_tensors(&tensors, &storages, src.size())?;
    Ok(Parsed {
        tensors,
        storages,
        budget,
    })
}

/// `data.pkl` at the archive's top level or in its one folder.
fn is_data_pkl(name: &str) -> bool {
    name == "data.pkl"
        || name
            .strip_suffix("/data.pkl")
            .is_some_and(|p| !p.is_empty() && !p.contains('/'))
}

fn parse_zip(src: &mut impl Source) -> Result<(Tensors, HashMap<String, Span>), ReadError> {
    let archive = zip::Archive::open(src)?;
    let pickles: Vec<&zip::Entry> = archive
        .entries
        .iter()
        .filter(|e| is_data_pkl(&e.name))
        .collect();
    let pkl = match pickles[..] {
        [pkl] => pkl,
        [] => return Err(bad("zip archive without data.pkl")),
        _ => return Err(bad("zip archive with several data.pkl")),
    };
    let prefix = &pkl.name[..pkl.name.len() - "data.pkl".len()];
    // PyTorch >= 2.1 records the byte order; storages are read little-endian.
    if let Some(e) = archive.get(&format!("{prefix}byteorder")) {
        let span = archive.span(src, e)?;
        if span.len > 16 || *src.read_at(span.start, span.len as usize)? != *b"little" {
            return Err(bad("the checkpoint is not little-endian"));
        }
    }
    let span = archive.span(src, pkl)?;
    if span.len > MAX_PICKLE_BYTES as u64 {
        return Err(over("bytes of pickle", MAX_PICKLE_BYTES as u64));
    }
    let data = src.read_at(span.start, span.len as usize)?;
    let mut arena = Arena::default();
    let (root, _) = arena.run(&data, 0)?;
    drop(data);
    let tensors = arena.tensors(root)?;
    drop(arena);
    let mut storages = HashMap::new();
    for (_, t) in &tensors {
        if storages.contains_key(&t.storage) {
            continue;
        }
        let name = format!("{prefix}data/{}", t.storage);
        let e = archive.get(&name).ok_or_else(|| ReadError::Storage {
            key: t.storage.clone(),
            problem: format!("the archive has no `{name}`"),
        })?;
        storages.insert(t.storage.clone(), archive.span(src, e)?);
    }
    Ok((tensors, storages))
}

/// What the legacy format's pickles hold: the tensors, the storage keys in the order
/// their data follows, each storage's element type, and where the data starts.
type LegacyPickles = (Tensors, Vec<String>, HashMap<String, Dtype>, usize);

fn legacy_pickles(head: &[u8]) -> Result<LegacyPickles, ReadError> {
    let mut arena = Arena::default();
    let (magic, pos) = arena.run(head, 0)?;
    if arena.int_bytes(magic).as_deref() != Some(&LEGACY_MAGIC[..]) {
        return Err(bad("the legacy format's magic number is wrong"));
    }
    let (protocol, pos) = arena.run(head, pos)?;
    if protocol != Val::Int(LEGACY_PROTOCOL) {
        return Err(bad("unknown legacy protocol version"));
    }
    let (sys_info, pos) = arena.run(head, pos)?;
    if arena.dict_get(sys_info, "little_endian") == Some(Val::Bool(false)) {
        return Err(bad("the checkpoint is not little-endian"));
    }
    let (root, pos) = arena.run(head, pos)?;
    let (keys, pos) = arena.run(head, pos)?;
    let keys = arena
        .strings(keys)
        .ok_or_else(|| bad("legacy file without its storage list"))?;
    if keys.len() > MAX_STORAGES {
        return Err(over("storages", MAX_STORAGES as u64));
    }
    let tensors = arena.tensors(root)?;
    let dtypes = arena
        .storage_dtypes()?
        .into_iter()
        .map(|(k, d)| (k.to_owned(), d))
        .collect();
    Ok((tensors, keys, dtypes, pos))
}

fn parse_legacy(src: &mut impl Source) -> Result<(Tensors, HashMap<String, Span>), ReadError> {
    let size = src.size();
    // The pickles come first and their end is only known by running them: read a
    // prefix, and double it while the pickles run past it, so that storage bytes are
    // read at most as far as the pickles themselves reach.
    let cap = size.min(MAX_PICKLE_BYTES as u64) as usize;
    let mut want = cap.min(64 << 10);
    let (tensors, keys, dtypes, pos) = loop {
        let head = src.read_at(0, want)?;
        match legacy_pickles(&head) {
            Ok(found) => break found,
            Err(ReadError::Truncated(_)) if want < cap => want = cap.min(want * 2),
            Err(ReadError::Truncated(_)) if (cap as u64) < size => {
                return Err(over("bytes of pickle", MAX_PICKLE_BYTES as u64));
            }
            Err(e) => return Err(e),
        }
    };
    let mut storages = HashMap::new();
    let mut pos = pos as u64;
    for key in keys {
        let mut count = [0u8; 8];
        count.copy_from_slice(&src.read_at(pos, 8)?);
        let count = u64::from_le_bytes(count);
        let storage = |problem: String| ReadError::Storage {
            key: key.clone(),
            problem,
        };
        let dtype = dtypes
            .get(&key)
            .ok_or_else(|| storage("no persistent id names its element type".into()))?;
        let start = pos + 8;
        let end = count
            .checked_mul(dtype.size() as u64)
            .and_then(|len| start.checked_add(len))
            .filter(|&end| end <= size)
            .ok_or_else(|| {
                ReadError::Truncated(format!(
                    "storage `{key}` of {count} elements runs past the end of the file"
                ))
            })?;
        let span = Span {
            start,
            len: end - start,
        };
        if storages.insert(key.clone(), span).is_some() {
            return Err(storage("listed twice".into()));
        }
        pos = end;
    }
    Ok((tensors, storages))
}

/// Checks a tensor against a storage of `storage_bytes` bytes; returns its element count.
fn check_layout(t: &TensorRef, storage_bytes: u64) -> Result<usize, String> {
    if t.shape.len() != t.stride.len() {
        return Err(format!(
            "it has {} sizes but {} strides",
            t.shape.len(),
            t.stride.len()
        ));
    }
    if t.shape.len() > MAX_RANK {
        return Err(format!("its rank is more than {MAX_RANK}"));
    }
    let elements = storage_bytes / t.dtype.size() as u64;
    let numel = t
        .shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| format!("its element count {:?} overflows", t.shape))?;
    if numel == 0 {
        return if t.offset as u64 <= elements {
            Ok(0)
        } else {
            Err(format!(
                "its offset {} lies past storage `{}` of {elements} elements",
                t.offset, t.storage
            ))
        };
    }
    let last = t
        .shape
        .iter()
        .zip(&t.stride)
        .try_fold(t.offset, |at, (&d, &s)| {
            (d - 1).checked_mul(s).and_then(|x| at.checked_add(x))
        })
        .ok_or_else(|| "the index of its last element overflows".to_string())?;
    if last as u64 >= elements {
        return Err(format!(
            "it reads element {last} of storage `{}`, which holds {elements}",
            t.storage
        ));
    }
    Ok(numel)
}

/// Checks every tensor against its storage and the file's tensor budget (see the module
/// docs); returns the budget.
fn check_tensors(
    tensors: &Tensors,
    storages: &HashMap<String, Span>,
    file_size: u64,
) -> Result<u64, ReadError> {
    let storage_bytes = storages
        .values()
        .fold(0u64, |n, s| n.saturating_add(s.len))
        .min(file_size);
    let budget = storage_bytes
        .saturating_mul(TENSOR_BYTES_FACTOR)
        .saturating_add(TENSOR_BYTES_SLACK);
    let mut total = 0u64;
    for (key, t) in tensors {
        let problem = |problem: String| ReadError::Tensor {
            key: key.clone(),
            problem,
        };
        let span = storages
            .get(&t.storage)
            .ok_or_else(|| problem(format!("its storage `{}` is missing", t.storage)))?;
        let numel = check_layout(t, span.len).map_err(problem)?;
        total = (numel as u64)
            .checked_mul(t.dtype.size() as u64)
            .and_then(|bytes| total.checked_add(bytes))
            .filter(|&total| total <= budget)
            .ok_or_else(|| {
                problem(format!(
                    "with it the tensors hold more than {budget} bytes, the budget of \
                     {TENSOR_BYTES_FACTOR} times their storages' {storage_bytes} bytes plus \
                     {TENSOR_BYTES_SLACK}"
                ))
            })?;
    }
    Ok(budget)
}

/// Reads one element as f32.
type Decode = fn(&[u8]) -> f32;

fn decoder(dtype: Dtype) -> Decode {
    // Each slice is exactly `dtype.size()` bytes long.
    match dtype {
        Dtype::F64 => {
            |b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
        }
        Dtype::F32 => |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        Dtype::F16 => |b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])),
        Dtype::Bf16 => |b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16),
        Dtype::I64 => {
            |b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
        }
        Dtype::I32 => |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32,
        Dtype::I16 => |b| f32::from(i16::from_le_bytes([b[0], b[1]])),
        Dtype::I8 => |b| f32::from(b[0] as i8),
        Dtype::U8 => |b| f32::from(b[0]),
        Dtype::Bool => |b| f32::from(u8::from(b[0] != 0)),
    }
}

impl TorchFile {
    /// Reads a checkpoint in the zip or the legacy format.
    pub fn read(path: &Path) -> Result<Self, ReadError> {
        let file = File::open(path)?;
        let size = file.metadata()?.len();
        if size > MAX_FILE_BYTES {
            return Err(over("bytes of file", MAX_FILE_BYTES));
        }
        let mut bytes = Vec::new();
        reserve(&mut bytes, size as usize)?;
        // The file may grow while it is read; the cap holds all the same.
        file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(over("bytes of file", MAX_FILE_BYTES));
        }
        Self::from_vec(bytes)
    }

    /// Parses a checkpoint held in memory, keeping `bytes` as its storages.
    pub fn from_vec(bytes: Vec<u8>) -> Result<Self, ReadError> {
        let p = parse(&mut bytes.as_slice())?;
        Ok(Self {
            tensors: p.tensors,
            bytes,
            storages: p.storages,
            budget: p.budget,
        })
    }

    /// Parses a checkpoint held in memory, copying the bytes only once they parse: the
    /// entry point for fuzzing, with [`TorchFile::materialize_all`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ReadError> {
        let p = parse(&mut &*bytes)?;
        let mut owned = Vec::new();
        reserve(&mut owned, bytes.len())?;
        owned.extend_from_slice(bytes);
        Ok(Self {
            tensors: p.tensors,
            bytes: owned,
            storages: p.storages,
            budget: p.budget,
        })
    }

    /// The tensors of the checkpoint at `path`, checked as [`TorchFile::read`] checks
    /// them, without reading any storage's bytes.
    pub fn read_tensor_list(path: &Path) -> Result<Vec<(String, TensorRef)>, ReadError> {
        let file = File::open(path)?;
        let size = file.metadata()?.len();
        Ok(parse(&mut FileSource { file, size })?.tensors)
    }

    /// A tensor's values in row-major order, gathered through its strides, as f32
    /// (integers and booleans converted).
    pub fn to_f32(&self, t: &TensorRef) -> Result<Vec<f32>, ReadError> {
        let storage = |problem: String| ReadError::Storage {
            key: t.storage.clone(),
            problem,
        };
        let span = self
            .storages
            .get(&t.storage)
            .ok_or_else(|| storage("not in this file".into()))?;
        let raw = usize::try_from(span.start)
            .ok()
            .zip(usize::try_from(span.len).ok())
            .and_then(|(s, n)| self.bytes.get(s..s.checked_add(n)?))
            .ok_or_else(|| storage("lies outside the file".into()))?;
        let n = check_layout(t, raw.len() as u64)
            .map_err(|p| storage(format!("a tensor on it is invalid: {p}")))?;
        let size = t.dtype.size();
        if (n as u64).saturating_mul(size as u64) > self.budget {
            return Err(over("bytes of tensors", self.budget));
        }
        let mut out = Vec::new();
        reserve(&mut out, n)?;
        let decode = decoder(t.dtype);
        let mut index = vec![0usize; t.shape.len()];
        // `check_layout` bounds every index visited by the last one, so the steps below
        // neither overflow nor leave the storage.
        let mut at = t.offset;
        for _ in 0..n {
            let b = at
                .checked_mul(size)
                .and_then(|s| raw.get(s..s.checked_add(size)?))
                .ok_or_else(|| storage(format!("element {at} lies outside it")))?;
            out.push(decode(b));
            for d in (0..index.len()).rev() {
                index[d] += 1;
                if index[d] < t.shape[d] {
                    at += t.stride[d];
                    break;
                }
                at -= (t.shape[d] - 1) * t.stride[d];
                index[d] = 0;
            }
        }
        Ok(out)
    }

    /// Every tensor's values, as [`TorchFile::to_f32`] gives them, in the order of
    /// [`TorchFile::tensors`].
    pub fn materialize_all(&self) -> Result<Vec<(&str, Vec<f32>)>, ReadError> {
        self.tensors
            .iter()
            .map(|(k, t)| Ok((k.as_str(), self.to_f32(t)?)))
            .collect()
    }
}

/// IEEE 754 half to single precision.
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: normalize.
            let mut e = 127 - 15 + 1;
            let mut f = f;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((f & 0x3ff) << 13)
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 127 - 15) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/models")
            .join(name)
    }

    /// `make_reader_fixtures.py` saves the same four views in both formats.
    fn check(file: &str) {
        let f = TorchFile::read(&fixture(file)).unwrap();
        let get = |k: &str| {
            let (_, t) = f
                .tensors
                .iter()
                .find(|(n, _)| n == k)
                .unwrap_or_else(|| panic!("{file} lacks {k}"));
            (t.shape.clone(), f.to_f32(t).unwrap())
        };
        // arange(24).reshape(2, 3, 4).permute(2, 0, 1): element [i, j, k] = 12 j + 4 k + i.
        let (shape, v) = get("permuted");
        assert_eq!(shape, [4, 2, 3]);
        let want: Vec<f32> = (0..4)
            .flat_map(|i| {
                (0..2).flat_map(move |j| (0..3).map(move |k| (12 * j + 4 * k + i) as f32))
            })
            .collect();
        assert_eq!(v, want);
        assert_eq!(get("sliced"), (vec![4], vec![3.0, 4.0, 5.0, 6.0]));
        assert_eq!(get("half"), (vec![3], vec![0.5, -2.0, 65504.0]));
        assert_eq!(get("bfloat"), (vec![2], vec![1.5, -3.0]));
        assert!(
            f.tensors
                .iter()
                .any(|(n, t)| n == "nested.count" && t.dtype == Dtype::I64)
        );
    }

    #[test]
    fn reads_strided_views_in_the_zip_format() {
        check("reader_zip.pth");
    }

    #[test]
    fn reads_strided_views_in_the_legacy_format() {
        check("reader_legacy.pth");
    }

    #[test]
    fn a_text_file_is_not_a_checkpoint() {
        let dir = std::env::temp_dir().join(format!("vista-torch-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.pth");
        std::fs::write(&p, "hello").unwrap();
        assert!(TorchFile::read(&p).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_entry_point_finds_the_same_tensors() {
        for file in ["reader_zip.pth", "reader_legacy.pth"] {
            let read = TorchFile::read(&fixture(file)).unwrap();
            let bytes = std::fs::read(fixture(file)).unwrap();
            let from_bytes = TorchFile::from_bytes(&bytes).unwrap();
            let listed = TorchFile::read_tensor_list(&fixture(file)).unwrap();
            assert_eq!(read.tensors, from_bytes.tensors, "{file}");
            assert_eq!(read.tensors, listed, "{file}");
            let all = from_bytes.materialize_all().unwrap();
            assert_eq!(all.len(), read.tensors.len());
            let count = all.iter().find(|(k, _)| *k == "nested.count").unwrap();
            assert_eq!(count.1, [7.0]);
        }
    }

    fn tensor(offset: usize, shape: &[usize], stride: &[usize]) -> TensorRef {
        TensorRef {
            dtype: Dtype::F32,
            storage: "0".into(),
            offset,
            shape: shape.to_vec(),
            stride: stride.to_vec(),
        }
    }

    #[test]
    fn layouts_are_checked_against_the_storage() {
        // A storage of 6 floats.
        let check = |t: TensorRef| check_layout(&t, 24);
        assert_eq!(check(tensor(0, &[2, 3], &[3, 1])), Ok(6));
        assert_eq!(check(tensor(0, &[3, 2], &[1, 3])), Ok(6));
        assert_eq!(check(tensor(5, &[], &[])), Ok(1));
        assert_eq!(check(tensor(6, &[0], &[1])), Ok(0));
        assert_eq!(check(tensor(0, &[4, 4], &[0, 0])), Ok(16));
        assert!(check(tensor(6, &[], &[])).is_err());
        assert!(check(tensor(1, &[2, 3], &[3, 1])).is_err());
        assert!(check(tensor(0, &[2, 3], &[3])).is_err());
        assert!(check(tensor(usize::MAX, &[2], &[1])).is_err());
        assert!(check(tensor(0, &[2, usize::MAX], &[0, 0])).is_err());
        assert!(check(tensor(0, &[2, 2], &[usize::MAX, 1])).is_err());
        assert!(check(tensor(7, &[0], &[1])).is_err());
    }

    #[test]
    fn hand_made_tensor_refs_are_checked_before_gathering() {
        let f = TorchFile::read(&fixture("reader_zip.pth")).unwrap();
        let (_, t) = f.tensors.iter().find(|(k, _)| k == "sliced").unwrap();
        let mut huge = t.clone();
        huge.shape = vec![1 << 40];
        huge.stride = vec![0];
        assert!(f.to_f32(&huge).is_err());
        let mut missing = t.clone();
        missing.storage = "no such storage".into();
        assert!(f.to_f32(&missing).is_err());
    }

    #[test]
    fn half_precision_converts_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert!(f16_to_f32(0x7e00).is_nan());
    }
}
