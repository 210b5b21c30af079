//! The part of Python's pickle machine that `torch.save` uses, built so that no input can
//! make it execute code, recurse, copy deeply or grow without bound.
//!
//! Nothing is executed: GLOBAL only names a callable, and REDUCE of a callable this module
//! does not model (`os.system`, `builtins.eval`, any user class) yields an opaque
//! placeholder. Values live in an arena of nodes addressed by index, so the memo and the
//! stack share objects instead of cloning them: `pickle.dumps` writes a shared object once
//! and refers to it with BINGET, and a copy per reference would turn a few hundred bytes
//! into 2^40 nodes. Sharing also keeps the semantics of a container memoized before it is
//! filled (EMPTY_LIST, BINPUT, APPENDS), which pickle writes for every list and dict, and
//! dropping the arena is a flat loop over a `Vec` whatever the nesting.
//!
//! The walk that names tensors ([`Arena::tensors`]) is iterative with an explicit stack,
//! skips subtrees that hold no tensor, and stops at the limits in `torch_file.rs`.

use std::collections::HashMap;

use super::{
    Dtype, MAX_DEPTH, MAX_KEY_BYTES, MAX_MEMO, MAX_NODES, MAX_RANK, MAX_STORAGE_KEY_BYTES,
    MAX_TENSORS, MAX_VALUES, MAX_WALK_STEPS, ReadError, TensorRef, bad, over,
};

/// Pickle opcodes, as CPython's `Lib/pickle.py` names them.
mod op {
    pub const MARK: u8 = b'(';
    pub const STOP: u8 = b'.';
    pub const POP: u8 = b'0';
    pub const POP_MARK: u8 = b'1';
    pub const DUP: u8 = b'2';
    pub const BINFLOAT: u8 = b'G';
    pub const BININT: u8 = b'J';
    pub const BININT1: u8 = b'K';
    pub const BININT2: u8 = b'M';
    pub const NONE: u8 = b'N';
    pub const BINPERSID: u8 = b'Q';
    pub const REDUCE: u8 = b'R';
    pub const BINSTRING: u8 = b'T';
    pub const SHORT_BINSTRING: u8 = b'U';
    pub const BINUNICODE: u8 = b'X';
    pub const BINBYTES: u8 = b'B';
    pub const SHORT_BINBYTES: u8 = b'C';
    pub const APPEND: u8 = b'a';
    pub const BUILD: u8 = b'b';
    pub const GLOBAL: u8 = b'c';
    pub const DICT: u8 = b'd';
    pub const EMPTY_DICT: u8 = b'}';
    pub const APPENDS: u8 = b'e';
    pub const BINGET: u8 = b'h';
    pub const LONG_BINGET: u8 = b'j';
    pub const LIST: u8 = b'l';
    pub const EMPTY_LIST: u8 = b']';
    pub const BINPUT: u8 = b'q';
    pub const LONG_BINPUT: u8 = b'r';
    pub const SETITEM: u8 = b's';
    pub const TUPLE: u8 = b't';
    pub const EMPTY_TUPLE: u8 = b')';
    pub const SETITEMS: u8 = b'u';
    pub const PROTO: u8 = 0x80;
    pub const NEWOBJ: u8 = 0x81;
    pub const TUPLE1: u8 = 0x85;
    pub const TUPLE2: u8 = 0x86;
    pub const TUPLE3: u8 = 0x87;
    pub const NEWTRUE: u8 = 0x88;
    pub const NEWFALSE: u8 = 0x89;
    pub const LONG1: u8 = 0x8a;
    pub const LONG4: u8 = 0x8b;
    pub const SHORT_BINUNICODE: u8 = 0x8c;
    pub const BINUNICODE8: u8 = 0x8d;
    pub const BINBYTES8: u8 = 0x8e;
    pub const EMPTY_SET: u8 = 0x8f;
    pub const ADDITEMS: u8 = 0x90;
    pub const FROZENSET: u8 = 0x91;
    pub const NEWOBJ_EX: u8 = 0x92;
    pub const STACK_GLOBAL: u8 = 0x93;
    pub const MEMOIZE: u8 = 0x94;
    pub const FRAME: u8 = 0x95;
    pub const BYTEARRAY8: u8 = 0x96;
}

/// A value on the stack, in the memo or inside a container: small and `Copy`, so sharing
/// an object costs one index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Val {
    None,
    Bool(bool),
    Int(i64),
    /// Anything this reader does not model (floats, bytes, objects of user classes).
    Opaque,
    Ref(usize),
}

/// An object in the arena.
#[derive(Debug)]
pub(super) enum Node {
    Str(Box<str>),
    /// An integer wider than 64 bits, as little-endian two's complement (the legacy
    /// format's magic number is one).
    Long(Box<[u8]>),
    Tuple(Vec<Val>),
    List(Vec<Val>),
    Dict(Vec<(Val, Val)>),
    Global(Box<str>, Box<str>),
    /// A storage named by a persistent id, and the element offset of a legacy view into it.
    Storage {
        dtype: Dtype,
        key: Box<str>,
        offset: usize,
    },
    /// Boxed, as it is much larger than the other nodes.
    Tensor(Box<TensorRef>),
    /// A tensor whose arguments do not describe one; reported, with its key, only if the
    /// walk reaches it.
    BadTensor(String),
}

/// The objects of one file's pickles and the budgets they have used.
#[derive(Debug, Default)]
pub(super) struct Arena {
    nodes: Vec<Node>,
    values: usize,
}

/// One run of the machine over one pickle; the memo and stack are the pickle's own.
struct Machine<'a> {
    arena: &'a mut Arena,
    data: &'a [u8],
    pos: usize,
    stack: Vec<Val>,
    marks: Vec<usize>,
    memo: HashMap<u32, Val>,
}

fn truncated() -> ReadError {
    ReadError::Truncated("the pickle ends before its STOP".into())
}

impl Arena {
    /// Runs the pickle that starts at `pos` in `data` to its STOP; returns its value and
    /// the position after it.
    pub(super) fn run(&mut self, data: &[u8], pos: usize) -> Result<(Val, usize), ReadError> {
        let mut m = Machine {
            arena: self,
            data,
            pos,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
        };
        let v = m.run()?;
        Ok((v, m.pos))
    }

    pub(super) fn node(&self, v: Val) -> Option<&Node> {
        match v {
            Val::Ref(i) => self.nodes.get(i),
            _ => None,
        }
    }

    fn add(&mut self, n: Node) -> Result<Val, ReadError> {
        if self.nodes.len() >= MAX_NODES {
            return Err(over("pickle objects", MAX_NODES as u64));
        }
        self.nodes.push(n);
        Ok(Val::Ref(self.nodes.len() - 1))
    }

    pub(super) fn str(&self, v: Val) -> Option<&str> {
        match self.node(v) {
            Some(Node::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// The items of a tuple or list.
    fn items(&self, v: Val) -> Option<&[Val]> {
        match self.node(v) {
            Some(Node::Tuple(items) | Node::List(items)) => Some(items),
            _ => None,
        }
    }

    /// A list of strings (the legacy format's storage keys).
    pub(super) fn strings(&self, v: Val) -> Option<Vec<String>> {
        self.items(v)?
            .iter()
            .map(|&s| self.str(s).map(str::to_owned))
            .collect()
    }

    /// The little-endian bytes of an integer, however wide.
    pub(super) fn int_bytes(&self, v: Val) -> Option<Vec<u8>> {
        match (v, self.node(v)) {
            (Val::Int(i), _) => Some(i.to_le_bytes().to_vec()),
            (_, Some(Node::Long(b))) => Some(b.to_vec()),
            _ => None,
        }
    }

    /// The value under a string key of a dict.
    pub(super) fn dict_get(&self, v: Val, key: &str) -> Option<Val> {
        match self.node(v) {
            Some(Node::Dict(pairs)) => pairs
                .iter()
                .find(|(k, _)| self.str(*k) == Some(key))
                .map(|&(_, v)| v),
            _ => None,
        }
    }

    /// The element type of every storage a persistent id named.
    pub(super) fn storage_dtypes(&self) -> Result<HashMap<&str, Dtype>, ReadError> {
        let mut out = HashMap::new();
        for n in &self.nodes {
            if let Node::Storage { dtype, key, .. } = n
                && let Some(old) = out.insert(&**key, *dtype)
                && old != *dtype
            {
                return Err(ReadError::Storage {
                    key: key.to_string(),
                    problem: format!("named as {old:?} and as {dtype:?}"),
                });
            }
        }
        Ok(out)
    }

    /// The child of container `id` at position `k`, with the key it is reached by.
    fn child(&self, id: usize, k: usize) -> Option<(Key, Val)> {
        match &self.nodes[id] {
            Node::Tuple(items) | Node::List(items) => items.get(k).map(|&v| (Key::Index(k), v)),
            Node::Dict(pairs) => pairs.get(k).map(|&(key, v)| (Key::Val(key), v)),
            _ => None,
        }
    }

    /// Which nodes are tensors or reach one, found by an iterative depth-first search.
    /// A cycle is cut where the search meets a node it is still inside of; the walk then
    /// sees the same cut, so it cannot go round a cycle that holds no tensor.
    fn reaches_tensor(&self, root: usize) -> Vec<bool> {
        #[derive(Clone, Copy, PartialEq)]
        enum Seen {
            No,
            Inside,
            Done,
        }
        let mut seen = vec![Seen::No; self.nodes.len()];
        let mut has = vec![false; self.nodes.len()];
        let mut stack = vec![(root, 0usize)];
        seen[root] = Seen::Inside;
        while let Some((id, k)) = stack.last_mut() {
            let id = *id;
            match self.child(id, *k) {
                Some((_, v)) => {
                    *k += 1;
                    if let Val::Ref(c) = v {
                        match seen[c] {
                            Seen::No => {
                                seen[c] = Seen::Inside;
                                stack.push((c, 0));
                            }
                            Seen::Done => has[id] |= has[c],
                            Seen::Inside => {}
                        }
                    }
                }
                None => {
                    has[id] |= matches!(self.nodes[id], Node::Tensor(_) | Node::BadTensor(_));
                    seen[id] = Seen::Done;
                    stack.pop();
                    if let Some(&(parent, _)) = stack.last() {
                        has[parent] |= has[id];
                    }
                }
            }
        }
        has
    }

    /// Every tensor under `root`, named by its dict keys and list positions joined with
    /// dots (`state_dict.layer1.0.conv1.weight`). A tensor reached by several paths is
    /// listed under each.
    pub(super) fn tensors(&self, root: Val) -> Result<Vec<(String, TensorRef)>, ReadError> {
        let mut out = Vec::new();
        let Val::Ref(root) = root else {
            return Ok(out);
        };
        let has = self.reaches_tensor(root);
        if !has[root] {
            return Ok(out);
        }
        let mut path = String::new();
        let mut emit = |path: &str, node: &Node| -> Result<(), ReadError> {
            match node {
                Node::Tensor(t) => {
                    if out.len() >= MAX_TENSORS {
                        return Err(over("tensors", MAX_TENSORS as u64));
                    }
                    out.push((path.to_owned(), TensorRef::clone(t)));
                    Ok(())
                }
                Node::BadTensor(problem) => Err(ReadError::Tensor {
                    key: path.to_owned(),
                    problem: problem.clone(),
                }),
                _ => Ok(()),
            }
        };
        emit("", &self.nodes[root])?;
        // Each frame is a container being walked, the next child to look at, and the
        // length of the path up to the container.
        let mut frames = vec![(root, 0usize, 0usize)];
        let mut steps = 0usize;
        while let Some((id, k, len)) = frames.last_mut() {
            steps += 1;
            if steps > MAX_WALK_STEPS {
                return Err(over("steps walking the pickle", MAX_WALK_STEPS as u64));
            }
            let (id, len) = (*id, *len);
            let Some((key, v)) = self.child(id, *k) else {
                frames.pop();
                continue;
            };
            *k += 1;
            let Val::Ref(c) = v else { continue };
            if !has[c] {
                continue;
            }
            path.truncate(len);
            if len > 0 {
                path.push('.');
            }
            match key {
                Key::Index(i) => path.push_str(&i.to_string()),
                Key::Val(Val::Int(i)) => path.push_str(&i.to_string()),
                Key::Val(k) => match self.str(k) {
                    Some(s) if s.len() <= MAX_KEY_BYTES => path.push_str(s),
                    Some(_) => return Err(over("bytes in a key", MAX_KEY_BYTES as u64)),
                    None => continue,
                },
            }
            if path.len() > MAX_KEY_BYTES {
                return Err(over("bytes in a key", MAX_KEY_BYTES as u64));
            }
            match &self.nodes[c] {
                node @ (Node::Tensor(_) | Node::BadTensor(_)) => emit(&path, node)?,
                _ => {
                    if frames.len() >= MAX_DEPTH {
                        return Err(over("levels of nesting", MAX_DEPTH as u64));
                    }
                    frames.push((c, 0, path.len()));
                }
            }
        }
        Ok(out)
    }
}

/// How the walk reached a child: its position in a tuple or list, or its dict key.
#[derive(Debug, Clone, Copy)]
enum Key {
    Index(usize),
    Val(Val),
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ReadError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(truncated)?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ReadError> {
        let b = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, ReadError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, ReadError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A length stored as a little-endian u64, which must fit in what remains.
    fn len8(&mut self) -> Result<usize, ReadError> {
        let n = u64::from_le_bytes(self.array()?);
        usize::try_from(n).map_err(|_| truncated())
    }

    fn line(&mut self) -> Result<String, ReadError> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&c| c == b'\n')
            .ok_or_else(truncated)?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    fn push(&mut self, v: Val) -> Result<(), ReadError> {
        self.arena.values += 1;
        if self.arena.values > MAX_VALUES {
            return Err(over("pickle values", MAX_VALUES as u64));
        }
        self.stack.push(v);
        Ok(())
    }

    fn push_node(&mut self, n: Node) -> Result<(), ReadError> {
        let v = self.arena.add(n)?;
        self.push(v)
    }

    fn pop(&mut self) -> Result<Val, ReadError> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err(bad("pickle pops past a mark"));
        }
        self.stack
            .pop()
            .ok_or_else(|| bad("pickle stack underflow"))
    }

    fn top(&self) -> Result<Val, ReadError> {
        self.stack
            .last()
            .copied()
            .ok_or_else(|| bad("pickle stack underflow"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Val>, ReadError> {
        let at = self.marks.pop().ok_or_else(|| bad("pickle mark missing"))?;
        Ok(self.stack.split_off(at.min(self.stack.len())))
    }

    fn pairs(items: Vec<Val>) -> Result<Vec<(Val, Val)>, ReadError> {
        if !items.len().is_multiple_of(2) {
            return Err(bad("pickle dict items come in pairs"));
        }
        Ok(items.chunks_exact(2).map(|c| (c[0], c[1])).collect())
    }

    fn memo_put(&mut self, i: u32) -> Result<(), ReadError> {
        let v = self.top()?;
        if self.memo.len() >= MAX_MEMO && !self.memo.contains_key(&i) {
            return Err(over("pickle memo entries", MAX_MEMO as u64));
        }
        self.memo.insert(i, v);
        Ok(())
    }

    fn memo_get(&mut self, i: u32) -> Result<(), ReadError> {
        let v = *self
            .memo
            .get(&i)
            .ok_or_else(|| bad(format!("pickle memo has no entry {i}")))?;
        self.push(v)
    }

    fn container(&mut self, v: Val) -> Option<&mut Node> {
        match v {
            Val::Ref(i) => self.arena.nodes.get_mut(i),
            _ => None,
        }
    }

    /// Appends to the list on top of the stack; appends to anything else (a list
    /// subclass's opaque object) are dropped.
    fn extend_list(&mut self, items: Vec<Val>) -> Result<(), ReadError> {
        let top = self.top()?;
        if let Some(Node::List(l)) = self.container(top) {
            l.extend(items);
        }
        Ok(())
    }

    fn extend_dict(&mut self, pairs: Vec<(Val, Val)>) -> Result<(), ReadError> {
        let top = self.top()?;
        if let Some(Node::Dict(d)) = self.container(top) {
            d.extend(pairs);
        }
        Ok(())
    }

    fn text(&mut self, n: usize) -> Result<(), ReadError> {
        let s = String::from_utf8_lossy(self.take(n)?).into();
        self.push_node(Node::Str(s))
    }

    /// Runs until STOP and returns the result.
    fn run(&mut self) -> Result<Val, ReadError> {
        loop {
            let code = self.u8()?;
            match code {
                op::PROTO => {
                    self.u8()?;
                }
                op::FRAME => {
                    self.take(8)?;
                }
                op::STOP => {
                    let v = self.pop()?;
                    return Ok(v);
                }
                op::MARK => {
                    self.arena.values += 1;
                    if self.arena.values > MAX_VALUES {
                        return Err(over("pickle values", MAX_VALUES as u64));
                    }
                    self.marks.push(self.stack.len());
                }
                op::POP => {
                    self.pop()?;
                }
                op::POP_MARK => {
                    self.pop_mark()?;
                }
                op::DUP => {
                    let v = self.top()?;
                    self.push(v)?;
                }
                op::EMPTY_DICT => self.push_node(Node::Dict(Vec::new()))?,
                op::EMPTY_LIST => self.push_node(Node::List(Vec::new()))?,
                op::EMPTY_TUPLE => self.push_node(Node::Tuple(Vec::new()))?,
                op::NONE => self.push(Val::None)?,
                op::NEWTRUE => self.push(Val::Bool(true))?,
                op::NEWFALSE => self.push(Val::Bool(false))?,
                op::BININT => {
                    let v = i32::from_le_bytes(self.array()?);
                    self.push(Val::Int(i64::from(v)))?;
                }
                op::BININT1 => {
                    let v = self.u8()?;
                    self.push(Val::Int(i64::from(v)))?;
                }
                op::BININT2 => {
                    let v = u16::from_le_bytes(self.array()?);
                    self.push(Val::Int(i64::from(v)))?;
                }
                op::LONG1 | op::LONG4 => {
                    let n = if code == op::LONG1 {
                        usize::from(self.u8()?)
                    } else {
                        self.u32()? as usize
                    };
                    let b = self.take(n)?;
                    if n <= 8 {
                        // Sign-extend from the top byte: pickle's longs are two's complement.
                        let fill = if b.last().is_some_and(|&x| x & 0x80 != 0) {
                            0xff
                        } else {
                            0
                        };
                        let mut a = [fill; 8];
                        a[..n].copy_from_slice(b);
                        self.push(Val::Int(i64::from_le_bytes(a)))?;
                    } else {
                        let b: Box<[u8]> = b.into();
                        self.push_node(Node::Long(b))?;
                    }
                }
                // Floats never name a tensor; their values are not kept.
                op::BINFLOAT => {
                    self.take(8)?;
                    self.push(Val::Opaque)?;
                }
                op::BINUNICODE | op::BINSTRING => {
                    let n = self.u32()? as usize;
                    self.text(n)?;
                }
                op::SHORT_BINUNICODE | op::SHORT_BINSTRING => {
                    let n = usize::from(self.u8()?);
                    self.text(n)?;
                }
                op::BINUNICODE8 => {
                    let n = self.len8()?;
                    self.text(n)?;
                }
                // Bytes never name a tensor; they are skipped.
                op::BINBYTES | op::SHORT_BINBYTES | op::BINBYTES8 | op::BYTEARRAY8 => {
                    let n = match code {
                        op::BINBYTES => self.u32()? as usize,
                        op::SHORT_BINBYTES => usize::from(self.u8()?),
                        _ => self.len8()?,
                    };
                    self.take(n)?;
                    self.push(Val::Opaque)?;
                }
                op::GLOBAL => {
                    let module = self.line()?.into();
                    let name = self.line()?.into();
                    self.push_node(Node::Global(module, name))?;
                }
                op::STACK_GLOBAL => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Some(m), Some(n)) = (self.arena.str(module), self.arena.str(name)) else {
                        return Err(bad("STACK_GLOBAL needs two strings"));
                    };
                    let g = Node::Global(m.into(), n.into());
                    self.push_node(g)?;
                }
                op::BINPUT => {
                    let i = u32::from(self.u8()?);
                    self.memo_put(i)?;
                }
                op::LONG_BINPUT => {
                    let i = self.u32()?;
                    self.memo_put(i)?;
                }
                op::MEMOIZE => {
                    let i = u32::try_from(self.memo.len())
                        .map_err(|_| over("pickle memo entries", MAX_MEMO as u64))?;
                    self.memo_put(i)?;
                }
                op::BINGET => {
                    let i = u32::from(self.u8()?);
                    self.memo_get(i)?;
                }
                op::LONG_BINGET => {
                    let i = self.u32()?;
                    self.memo_get(i)?;
                }
                op::TUPLE => {
                    let items = self.pop_mark()?;
                    self.push_node(Node::Tuple(items))?;
                }
                op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                    let n = usize::from(code - op::TUPLE1 + 1);
                    let floor = self.marks.last().copied().unwrap_or(0);
                    let at = self
                        .stack
                        .len()
                        .checked_sub(n)
                        .filter(|&at| at >= floor)
                        .ok_or_else(|| bad("pickle stack underflow"))?;
                    let items = self.stack.split_off(at);
                    self.push_node(Node::Tuple(items))?;
                }
                op::LIST => {
                    let items = self.pop_mark()?;
                    self.push_node(Node::List(items))?;
                }
                op::DICT => {
                    let items = self.pop_mark()?;
                    let pairs = Self::pairs(items)?;
                    self.push_node(Node::Dict(pairs))?;
                }
                op::APPEND => {
                    let v = self.pop()?;
                    self.extend_list(vec![v])?;
                }
                op::APPENDS => {
                    let items = self.pop_mark()?;
                    self.extend_list(items)?;
                }
                op::SETITEM => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.extend_dict(vec![(k, v)])?;
                }
                op::SETITEMS => {
                    let items = self.pop_mark()?;
                    let pairs = Self::pairs(items)?;
                    self.extend_dict(pairs)?;
                }
                // Sets never hold a tensor of a state dict; their items are dropped.
                op::EMPTY_SET => self.push(Val::Opaque)?,
                op::ADDITEMS => {
                    self.pop_mark()?;
                }
                op::FROZENSET => {
                    self.pop_mark()?;
                    self.push(Val::Opaque)?;
                }
                op::BINPERSID => {
                    let pid = self.pop()?;
                    let storage = self.persistent_load(pid)?;
                    self.push_node(storage)?;
                }
                op::REDUCE => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let v = self.reduce(func, args)?;
                    self.push(v)?;
                }
                op::NEWOBJ => {
                    self.pop()?;
                    self.pop()?;
                    self.push(Val::Opaque)?;
                }
                op::NEWOBJ_EX => {
                    self.pop()?;
                    self.pop()?;
                    self.pop()?;
                    self.push(Val::Opaque)?;
                }
                op::BUILD => {
                    // BUILD sets an object's state; tensors and dicts keep what they hold.
                    self.pop()?;
                }
                other => return Err(bad(format!("unsupported pickle opcode 0x{other:02x}"))),
            }
        }
    }

    /// A storage from its persistent id: `('storage', storage_type, key, location, numel)`,
    /// with a sixth item `(view_key, offset, numel)` for a legacy view into `key`.
    fn persistent_load(&self, pid: Val) -> Result<Node, ReadError> {
        let a = &*self.arena;
        let items = a
            .items(pid)
            .ok_or_else(|| bad("persistent id is not a tuple"))?;
        let storage_type = match items.get(1).and_then(|&v| a.node(v)) {
            Some(Node::Global(_, name) | Node::Str(name)) => name,
            _ => return Err(bad("persistent id without a storage type")),
        };
        let dtype = Dtype::from_storage(storage_type)
            .ok_or_else(|| bad(format!("unknown storage type {storage_type}")))?;
        let key = items
            .get(2)
            .and_then(|&v| a.str(v))
            .ok_or_else(|| bad("persistent id without a storage key"))?;
        if key.len() > MAX_STORAGE_KEY_BYTES {
            return Err(over("bytes in a storage key", MAX_STORAGE_KEY_BYTES as u64));
        }
        let offset = match items.get(5).and_then(|&v| a.items(v)) {
            Some(view) => match view.get(1) {
                Some(&Val::Int(o)) => usize::try_from(o).map_err(|_| ReadError::Storage {
                    key: key.into(),
                    problem: format!("a view at offset {o}"),
                })?,
                _ => return Err(bad("legacy storage view without an offset")),
            },
            None => 0,
        };
        Ok(Node::Storage {
            dtype,
            key: key.into(),
            offset,
        })
    }

    /// Non-negative integers from a tuple or list (a size or a stride).
    fn dims(&self, v: Val, what: &str) -> Result<Vec<usize>, String> {
        let items = self
            .arena
            .items(v)
            .ok_or_else(|| format!("its {what} is not a tuple"))?;
        if items.len() > MAX_RANK {
            return Err(format!(
                "its {what} has {} dimensions, more than {MAX_RANK}",
                items.len()
            ));
        }
        items
            .iter()
            .map(|x| match x {
                Val::Int(i) => usize::try_from(*i).map_err(|_| format!("its {what} holds {i}")),
                _ => Err(format!("its {what} holds a non-integer")),
            })
            .collect()
    }

    /// `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ..)`, checked for
    /// what can be checked before the storage's length is known.
    fn rebuild_tensor(&self, args: &[Val]) -> Result<TensorRef, String> {
        let Some(Node::Storage { dtype, key, offset }) =
            args.first().and_then(|&v| self.arena.node(v))
        else {
            return Err("it has no storage".into());
        };
        let own = match args.get(1) {
            Some(&Val::Int(o)) => usize::try_from(o).map_err(|_| format!("its offset is {o}"))?,
            _ => return Err("it has no offset".into()),
        };
        let shape = self.dims(args.get(2).copied().unwrap_or(Val::None), "size")?;
        let stride = self.dims(args.get(3).copied().unwrap_or(Val::None), "stride")?;
        if shape.len() != stride.len() {
            return Err(format!(
                "it has {} sizes but {} strides",
                shape.len(),
                stride.len()
            ));
        }
        let offset = own
            .checked_add(*offset)
            .ok_or_else(|| "its offset overflows".to_string())?;
        Ok(TensorRef {
            dtype: *dtype,
            storage: key.to_string(),
            offset,
            shape,
            stride,
        })
    }

    /// What REDUCE makes of `func(*args)`: tensors, parameters and ordered dicts are
    /// modelled; every other call, whatever it names, becomes an opaque placeholder and is
    /// never run.
    fn reduce(&mut self, func: Val, args: Val) -> Result<Val, ReadError> {
        let (mut func, mut args) = (func, args);
        // `_rebuild_from_type_v2(func, type, args, state)` wraps another call; unwrapping it
        // in a loop keeps hostile chains of wrappers off the call stack.
        for _ in 0..MAX_DEPTH {
            let Some(Node::Global(module, name)) = self.arena.node(func) else {
                return Ok(Val::Opaque);
            };
            let Some(Node::Tuple(a)) = self.arena.node(args) else {
                return Ok(Val::Opaque);
            };
            match (&**module, &**name) {
                ("torch._utils", "_rebuild_tensor" | "_rebuild_tensor_v2") => {
                    let node = match self.rebuild_tensor(a) {
                        Ok(t) => Node::Tensor(Box::new(t)),
                        Err(problem) => Node::BadTensor(problem),
                    };
                    return self.arena.add(node);
                }
                ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => {
                    return Ok(a.first().copied().unwrap_or(Val::Opaque));
                }
                ("torch._tensor", "_rebuild_from_type_v2") => match (a.first(), a.get(2)) {
                    (Some(&f), Some(&inner)) => (func, args) = (f, inner),
                    _ => return Ok(Val::Opaque),
                },
                ("collections", "OrderedDict") => return self.arena.add(Node::Dict(Vec::new())),
                _ => return Ok(Val::Opaque),
            }
        }
        Err(over("nested tensor rebuilds", MAX_DEPTH as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pickle bytes from opcodes and their arguments.
    struct Pk(Vec<u8>);

    impl Pk {
        fn new() -> Self {
            Pk(vec![op::PROTO, 2])
        }
        fn op(mut self, code: u8) -> Self {
            self.0.push(code);
            self
        }
        fn str(mut self, s: &str) -> Self {
            self.0.push(op::BINUNICODE);
            self.0.extend((s.len() as u32).to_le_bytes());
            self.0.extend(s.as_bytes());
            self
        }
        fn int(mut self, i: u8) -> Self {
            self.0.extend([op::BININT1, i]);
            self
        }
        fn put(mut self, i: u8) -> Self {
            self.0.extend([op::BINPUT, i]);
            self
        }
        fn get(mut self, i: u8) -> Self {
            self.0.extend([op::BINGET, i]);
            self
        }
        fn global(mut self, module: &str, name: &str) -> Self {
            self.0.push(op::GLOBAL);
            self.0.extend(format!("{module}\n{name}\n").as_bytes());
            self
        }
        /// A one-dimensional float tensor of `n` elements on storage `key`.
        fn tensor(self, key: &str, n: u8) -> Self {
            self.global("torch._utils", "_rebuild_tensor_v2")
                .op(op::MARK)
                .op(op::MARK)
                .str("storage")
                .global("torch", "FloatStorage")
                .str(key)
                .str("cpu")
                .int(n)
                .op(op::TUPLE)
                .op(op::BINPERSID)
                .int(0)
                .int(n)
                .op(op::TUPLE1)
                .int(1)
                .op(op::TUPLE1)
                .op(op::NEWFALSE)
                .op(op::TUPLE)
                .op(op::REDUCE)
        }
        fn run(mut self) -> Result<Vec<(String, TensorRef)>, ReadError> {
            self.0.push(op::STOP);
            let mut arena = Arena::default();
            let (root, end) = arena.run(&self.0, 0)?;
            assert_eq!(end, self.0.len());
            arena.tensors(root)
        }
    }

    fn keys(t: &[(String, TensorRef)]) -> Vec<&str> {
        t.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn a_list_memoized_before_it_is_filled_comes_back_filled() {
        // {'a': [t0, t1], 'b': <memo of the list>}, as pickle writes a shared list: the
        // memo entry is made while the list is still empty.
        let t = Pk::new()
            .op(op::EMPTY_DICT)
            .op(op::MARK)
            .str("a")
            .op(op::EMPTY_LIST)
            .put(1)
            .op(op::MARK)
            .tensor("0", 2)
            .tensor("1", 3)
            .op(op::APPENDS)
            .str("b")
            .get(1)
            .op(op::SETITEMS)
            .run()
            .unwrap();
        assert_eq!(keys(&t), ["a.0", "a.1", "b.0", "b.1"]);
        assert_eq!(t[3].1.storage, "1");
        assert_eq!(t[3].1.shape, [3]);
    }

    #[test]
    fn a_dict_memoized_before_it_is_filled_comes_back_filled() {
        // {'model': sd, 'ema': sd} with sd an OrderedDict filled after its BINPUT, as
        // `torch.save` writes one state dict saved under two names.
        let t = Pk::new()
            .op(op::EMPTY_DICT)
            .op(op::MARK)
            .str("model")
            .global("collections", "OrderedDict")
            .op(op::EMPTY_TUPLE)
            .op(op::REDUCE)
            .put(7)
            .op(op::MARK)
            .str("w")
            .tensor("0", 4)
            .op(op::SETITEMS)
            .str("ema")
            .get(7)
            .op(op::SETITEMS)
            .run()
            .unwrap();
        assert_eq!(keys(&t), ["model.w", "ema.w"]);
    }

    #[test]
    fn a_list_that_holds_itself_ends_the_walk() {
        // l = []; l.append(l); {'l': l, 'w': t}: the cycle holds no tensor and is skipped.
        let t = Pk::new()
            .op(op::EMPTY_DICT)
            .op(op::MARK)
            .str("l")
            .op(op::EMPTY_LIST)
            .put(0)
            .get(0)
            .op(op::APPEND)
            .str("w")
            .tensor("0", 1)
            .op(op::SETITEMS)
            .run()
            .unwrap();
        assert_eq!(keys(&t), ["w"]);
        // [t, <itself>]: the tensor repeats under 1.1.1...; the walk stops at the depth limit.
        let err = Pk::new()
            .op(op::EMPTY_LIST)
            .put(0)
            .tensor("0", 1)
            .op(op::APPEND)
            .get(0)
            .op(op::APPEND)
            .run()
            .unwrap_err();
        assert!(matches!(err, ReadError::Limit { .. }), "{err}");
    }

    #[test]
    fn reduce_of_an_unknown_callable_is_a_placeholder() {
        let t = Pk::new()
            .op(op::EMPTY_DICT)
            .op(op::MARK)
            .str("x")
            .global("os", "system")
            .str("exit 1")
            .op(op::TUPLE1)
            .op(op::REDUCE)
            .str("w")
            .tensor("0", 1)
            .op(op::SETITEMS)
            .run()
            .unwrap();
        assert_eq!(keys(&t), ["w"]);
    }

    #[test]
    fn malformed_pickles_are_errors() {
        let cases: [&[u8]; 8] = [
            b"",
            b"\x80\x02",
            b"\x80\x02.",
            b"\x80\x02h\x05.",
            b"\x80\x02(\x85.",
            b"\x80\x02K\x01(a.",
            b"\x80\x02}(K\x01u.",
            b"\x80\x02X\xff\xff\xff\xffab.",
        ];
        for data in cases {
            let r = Arena::default().run(data, 0);
            assert!(r.is_err(), "{data:?} parsed");
        }
    }

    #[test]
    fn tensors_with_bad_arguments_are_reported_by_key() {
        let err = Pk::new()
            .op(op::EMPTY_DICT)
            .str("w")
            .global("torch._utils", "_rebuild_tensor_v2")
            .op(op::MARK)
            .int(0)
            .int(0)
            .op(op::TUPLE)
            .op(op::REDUCE)
            .op(op::SETITEM)
            .run()
            .unwrap_err();
        assert!(
            matches!(&err, ReadError::Tensor { key, .. } if key == "w"),
            "{err}"
        );
    }
}
