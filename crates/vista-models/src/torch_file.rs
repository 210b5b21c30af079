//! A reader for PyTorch checkpoint files that honours tensor strides.
//!
//! burn-store 0.21's reader ignores a tensor's strides and offset, so checkpoints holding
//! non-contiguous tensors (weights converted from TensorFlow, such as the
//! EfficientNet-Lite0 `.pth`, were saved as permuted views) load scrambled. This module
//! runs the small part of the pickle machine `torch.save` uses and gathers every tensor
//! through its own strides.
//!
//! Formats: the zip archive of PyTorch >= 1.6 (`<name>/data.pkl` + `<name>/data/<key>`),
//! and the legacy stream of PyTorch 0.1.10–1.5 (magic, protocol, system info and main
//! pickles, the storage-key list, then each storage as an 8-byte count and raw data).

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// Element types of PyTorch storages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F64,
    F32,
    F16,
    Bf16,
    I64,
    I32,
    I16,
    I8,
    U8,
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

    pub fn size(self) -> usize {
        match self {
            Dtype::F64 | Dtype::I64 => 8,
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F16 | Dtype::Bf16 | Dtype::I16 => 2,
            Dtype::I8 | Dtype::U8 | Dtype::Bool => 1,
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, Dtype::F64 | Dtype::F32 | Dtype::F16 | Dtype::Bf16)
    }
}

/// One tensor of a checkpoint, by reference into its storage.
#[derive(Debug, Clone)]
pub struct TensorRef {
    pub dtype: Dtype,
    pub storage: String,
    pub offset: usize,
    pub shape: Vec<usize>,
    pub stride: Vec<usize>,
}

/// A checkpoint: named tensors and the raw bytes of their storages.
#[derive(Debug)]
pub struct TorchFile {
    /// Tensors by their dotted path in the saved object (`state_dict.module.conv1.weight`).
    pub tensors: Vec<(String, TensorRef)>,
    storages: HashMap<String, Vec<u8>>,
}

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Zip(#[from] zip::result::ZipError),
    #[error("not a PyTorch checkpoint: {0}")]
    Format(String),
}

fn bad(msg: impl Into<String>) -> ReadError {
    ReadError::Format(msg.into())
}

/// Values of the pickle machine; only what `torch.save` produces is modelled.
#[derive(Debug, Clone)]
enum Val {
    None,
    Int(i64),
    Str(String),
    Tuple(Vec<Val>),
    List(Vec<Val>),
    Dict(Vec<(Val, Val)>),
    Global(String, String),
    /// A storage named by a persistent id: dtype, key, and element offset of a legacy view.
    Storage(Dtype, String, usize),
    Tensor(TensorRef),
    /// Anything else (objects of user classes): kept as a placeholder.
    Opaque,
    Mark,
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Val>,
    memo: HashMap<u32, Val>,
}

impl<'a> Machine<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            pos: 0,
            stack: Vec::new(),
            memo: HashMap::new(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ReadError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| bad("pickle ends early"))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, ReadError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, ReadError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn line(&mut self) -> Result<String, ReadError> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&c| c == b'\n')
            .ok_or_else(|| bad("unterminated line in pickle"))?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    fn memo_put(&mut self, i: u32) -> Result<(), ReadError> {
        let v = self.top()?.clone();
        self.memo.insert(i, v);
        Ok(())
    }

    fn memo_get(&mut self, i: u32) -> Result<(), ReadError> {
        let v = self
            .memo
            .get(&i)
            .cloned()
            .ok_or_else(|| bad("pickle memo miss"))?;
        self.stack.push(v);
        Ok(())
    }

    fn pop(&mut self) -> Result<Val, ReadError> {
        self.stack
            .pop()
            .ok_or_else(|| bad("pickle stack underflow"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Val>, ReadError> {
        let at = self
            .stack
            .iter()
            .rposition(|v| matches!(v, Val::Mark))
            .ok_or_else(|| bad("pickle mark missing"))?;
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        Ok(items)
    }

    fn top(&mut self) -> Result<&mut Val, ReadError> {
        self.stack
            .last_mut()
            .ok_or_else(|| bad("pickle stack underflow"))
    }

    /// Runs until STOP and returns the result.
    fn run(&mut self) -> Result<Val, ReadError> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?;
                }
                0x95 => {
                    self.take(8)?;
                }
                b'.' => return self.pop(),
                b'(' => self.stack.push(Val::Mark),
                b'}' => self.stack.push(Val::Dict(Vec::new())),
                b']' => self.stack.push(Val::List(Vec::new())),
                b')' => self.stack.push(Val::Tuple(Vec::new())),
                b'N' => self.stack.push(Val::None),
                // Booleans, floats and bytes never name a tensor; their values are not kept.
                0x88 | 0x89 => self.stack.push(Val::Opaque),
                b'J' => {
                    let b = self.take(4)?;
                    self.stack.push(Val::Int(i64::from(i32::from_le_bytes([
                        b[0], b[1], b[2], b[3],
                    ]))));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Val::Int(i64::from(v)));
                }
                b'M' => {
                    let b = self.take(2)?;
                    self.stack
                        .push(Val::Int(i64::from(u16::from_le_bytes([b[0], b[1]]))));
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    let mut v: i64 = 0;
                    for (i, &byte) in b.iter().enumerate().take(8) {
                        v |= i64::from(byte) << (8 * i);
                    }
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                        v -= 1 << (8 * n);
                    }
                    self.stack.push(Val::Int(v));
                }
                b'G' => {
                    self.take(8)?;
                    self.stack.push(Val::Opaque);
                }
                // Text with a 4-byte or a 1-byte length (unicode or protocol-0 strings).
                b'X' | b'T' | 0x8c | b'U' => {
                    let n = if matches!(op, b'X' | b'T') {
                        self.u32()? as usize
                    } else {
                        self.u8()? as usize
                    };
                    let s = String::from_utf8_lossy(self.take(n)?).into_owned();
                    self.stack.push(Val::Str(s));
                }
                // Bytes never name a tensor; they are skipped.
                b'B' | b'C' => {
                    let n = if op == b'B' {
                        self.u32()? as usize
                    } else {
                        self.u8()? as usize
                    };
                    self.take(n)?;
                    self.stack.push(Val::Opaque);
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Val::Global(module, name));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Val::Str(m), Val::Str(n)) => self.stack.push(Val::Global(m, n)),
                        _ => return Err(bad("STACK_GLOBAL needs two strings")),
                    }
                }
                b'q' => {
                    let i = u32::from(self.u8()?);
                    self.memo_put(i)?;
                }
                b'r' => {
                    let i = self.u32()?;
                    self.memo_put(i)?;
                }
                0x94 => self.memo_put(self.memo.len() as u32)?,
                b'h' => {
                    let i = u32::from(self.u8()?);
                    self.memo_get(i)?;
                }
                b'j' => {
                    let i = self.u32()?;
                    self.memo_get(i)?;
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Val::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let at = self
                        .stack
                        .len()
                        .checked_sub(n)
                        .ok_or_else(|| bad("pickle stack underflow"))?;
                    let items = self.stack.split_off(at);
                    self.stack.push(Val::Tuple(items));
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Val::List(items));
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = items
                        .chunks(2)
                        .filter(|c| c.len() == 2)
                        .map(|c| (c[0].clone(), c[1].clone()))
                        .collect();
                    self.stack.push(Val::Dict(pairs));
                }
                b'a' => {
                    let v = self.pop()?;
                    if let Val::List(l) = self.top()? {
                        l.push(v);
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    if let Val::List(l) = self.top()? {
                        l.extend(items);
                    }
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    if let Val::Dict(d) = self.top()? {
                        d.push((k, v));
                    }
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    if let Val::Dict(d) = self.top()? {
                        d.extend(
                            items
                                .chunks(2)
                                .filter(|c| c.len() == 2)
                                .map(|c| (c[0].clone(), c[1].clone())),
                        );
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    self.stack.push(persistent_load(pid)?);
                }
                b'R' => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    self.stack.push(reduce(func, args)?);
                }
                0x81 => {
                    let _args = self.pop()?;
                    let _cls = self.pop()?;
                    self.stack.push(Val::Opaque);
                }
                b'b' => {
                    // BUILD sets an object's state; tensors and dicts keep what they hold.
                    self.pop()?;
                }
                other => return Err(bad(format!("unsupported pickle opcode 0x{other:02x}"))),
            }
        }
    }
}

fn persistent_load(pid: Val) -> Result<Val, ReadError> {
    let Val::Tuple(items) = pid else {
        return Err(bad("persistent id is not a tuple"));
    };
    let storage_type = match items.get(1) {
        Some(Val::Global(_, name)) | Some(Val::Str(name)) => name.clone(),
        _ => return Err(bad("persistent id without a storage type")),
    };
    let dtype = Dtype::from_storage(&storage_type)
        .ok_or_else(|| bad(format!("unknown storage {storage_type}")))?;
    let key = match items.get(2) {
        Some(Val::Str(k)) => k.clone(),
        _ => return Err(bad("persistent id without a storage key")),
    };
    // Legacy files may name a view into another storage: (view_key, offset, size).
    if let Some(Val::Tuple(view)) = items.get(5)
        && let (Some(Val::Str(root)), Some(Val::Int(offset))) = (view.first(), view.get(1))
    {
        let _ = root;
        return Ok(Val::Storage(dtype, key, *offset as usize));
    }
    Ok(Val::Storage(dtype, key, 0))
}

fn ints(v: &Val) -> Option<Vec<usize>> {
    match v {
        Val::Tuple(items) | Val::List(items) => items
            .iter()
            .map(|x| {
                if let Val::Int(i) = x {
                    usize::try_from(*i).ok()
                } else {
                    None
                }
            })
            .collect(),
        _ => None,
    }
}

fn reduce(func: Val, args: Val) -> Result<Val, ReadError> {
    let Val::Global(module, name) = &func else {
        return Ok(Val::Opaque);
    };
    let args = match args {
        Val::Tuple(a) => a,
        _ => return Ok(Val::Opaque),
    };
    match (module.as_str(), name.as_str()) {
        ("torch._utils", "_rebuild_tensor" | "_rebuild_tensor_v2") => {
            let Some(Val::Storage(dtype, key, view_offset)) = args.first() else {
                return Err(bad("tensor without storage"));
            };
            let offset = match args.get(1) {
                Some(Val::Int(o)) => *o as usize,
                _ => 0,
            };
            let shape = args
                .get(2)
                .and_then(ints)
                .ok_or_else(|| bad("tensor without a size"))?;
            let stride = args
                .get(3)
                .and_then(ints)
                .ok_or_else(|| bad("tensor without strides"))?;
            Ok(Val::Tensor(TensorRef {
                dtype: *dtype,
                storage: key.clone(),
                offset: offset + view_offset,
                shape,
                stride,
            }))
        }
        ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => {
            Ok(args.into_iter().next().unwrap_or(Val::Opaque))
        }
        ("torch._tensor", "_rebuild_from_type_v2") => {
            let mut it = args.into_iter();
            let (f, _ty, a) = (it.next(), it.next(), it.next());
            match (f, a) {
                (Some(f), Some(a)) => reduce(f, a),
                _ => Ok(Val::Opaque),
            }
        }
        ("collections", "OrderedDict") => Ok(Val::Dict(Vec::new())),
        _ => Ok(Val::Opaque),
    }
}

/// Every tensor under `v`, with dict keys joined by dots.
fn collect(v: Val, prefix: &str, out: &mut Vec<(String, TensorRef)>) {
    match v {
        Val::Tensor(t) => out.push((prefix.to_owned(), t)),
        Val::Dict(pairs) => {
            for (k, v) in pairs {
                let key = match k {
                    Val::Str(s) => s,
                    Val::Int(i) => i.to_string(),
                    _ => continue,
                };
                let path = if prefix.is_empty() {
                    key
                } else {
                    format!("{prefix}.{key}")
                };
                collect(v, &path, out);
            }
        }
        Val::List(items) | Val::Tuple(items) => {
            for (i, v) in items.into_iter().enumerate() {
                let path = if prefix.is_empty() {
                    i.to_string()
                } else {
                    format!("{prefix}.{i}")
                };
                collect(v, &path, out);
            }
        }
        _ => {}
    }
}

impl TorchFile {
    /// Reads a checkpoint in the zip or the legacy format.
    pub fn read(path: &Path) -> Result<Self, ReadError> {
        let bytes = std::fs::read(path)?;
        if bytes.starts_with(b"PK") {
            Self::read_zip(&bytes)
        } else {
            Self::read_legacy(&bytes)
        }
    }

    fn read_zip(bytes: &[u8]) -> Result<Self, ReadError> {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))?;
        let names: Vec<String> = archive.file_names().map(str::to_owned).collect();
        let pkl = names
            .iter()
            .find(|n| n.ends_with("data.pkl"))
            .ok_or_else(|| bad("zip without data.pkl"))?
            .clone();
        let prefix = pkl.trim_end_matches("data.pkl").to_owned();
        let mut data = Vec::new();
        archive.by_name(&pkl)?.read_to_end(&mut data)?;
        let root = Machine::new(&data).run()?;
        let mut tensors = Vec::new();
        collect(root, "", &mut tensors);
        let mut storages = HashMap::new();
        for (_, t) in &tensors {
            if storages.contains_key(&t.storage) {
                continue;
            }
            let mut raw = Vec::new();
            archive
                .by_name(&format!("{prefix}data/{}", t.storage))?
                .read_to_end(&mut raw)?;
            storages.insert(t.storage.clone(), raw);
        }
        Ok(Self { tensors, storages })
    }

    fn read_legacy(bytes: &[u8]) -> Result<Self, ReadError> {
        let mut m = Machine::new(bytes);
        // Magic number (a 10-byte long), protocol version, system info: checked by
        // parsing, not by value, as every PyTorch since 0.1.10 writes them alike.
        let _magic = m.run()?;
        let _protocol = m.run()?;
        let _sys_info = m.run()?;
        let root = m.run()?;
        let keys = m.run()?;
        let Val::List(keys) = keys else {
            return Err(bad("legacy file without its storage list"));
        };
        let mut tensors = Vec::new();
        collect(root, "", &mut tensors);
        let sizes: HashMap<&str, usize> = tensors
            .iter()
            .map(|(_, t)| (t.storage.as_str(), t.dtype.size()))
            .collect();
        let mut storages = HashMap::new();
        let mut pos = m.pos;
        for key in keys {
            let Val::Str(key) = key else {
                return Err(bad("storage key is not a string"));
            };
            let count = bytes
                .get(pos..pos + 8)
                .ok_or_else(|| bad("storage data ends early"))?;
            let count = u64::from_le_bytes(count.try_into().expect("8 bytes")) as usize;
            let elem = sizes.get(key.as_str()).copied().unwrap_or(4);
            let end = pos + 8 + count * elem;
            let raw = bytes
                .get(pos + 8..end)
                .ok_or_else(|| bad(format!("storage {key} ends early")))?;
            storages.insert(key, raw.to_vec());
            pos = end;
        }
        Ok(Self { tensors, storages })
    }

    /// A float tensor's values in row-major order, gathered through its strides.
    pub fn to_f32(&self, t: &TensorRef) -> Result<Vec<f32>, ReadError> {
        let raw = self
            .storages
            .get(&t.storage)
            .ok_or_else(|| bad(format!("storage {} missing", t.storage)))?;
        let size = t.dtype.size();
        let read = |i: usize| -> Option<f32> {
            let b = raw.get(i * size..(i + 1) * size)?;
            Some(match t.dtype {
                Dtype::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                Dtype::F64 => f64::from_le_bytes(b.try_into().ok()?) as f32,
                Dtype::F16 => f16_to_f32(u16::from_le_bytes([b[0], b[1]])),
                Dtype::Bf16 => f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16),
                _ => return None,
            })
        };
        let n: usize = t.shape.iter().product();
        let mut out = Vec::with_capacity(n);
        let mut index = vec![0usize; t.shape.len()];
        for _ in 0..n {
            let at = t.offset
                + index
                    .iter()
                    .zip(&t.stride)
                    .map(|(i, s)| i * s)
                    .sum::<usize>();
            out.push(
                read(at).ok_or_else(|| bad(format!("tensor reads past storage {}", t.storage)))?,
            );
            for d in (0..index.len()).rev() {
                index[d] += 1;
                if index[d] < t.shape[d] {
                    break;
                }
                index[d] = 0;
            }
        }
        Ok(out)
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
    fn half_precision_converts_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert!(f16_to_f32(0x7e00).is_nan());
    }
}
