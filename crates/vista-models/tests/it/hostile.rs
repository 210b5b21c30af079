//! The checkpoint reader against hostile files: the corpus in `tests/data/hostile/`
//! (made by `make_hostile.py` there, which says what each file attacks), and truncated
//! and corrupted copies of the reader's own fixtures. Every case ends in an error or in
//! the result its test documents, never in a panic, and within a stated peak of memory
//! counted by the allocator in `alloc.rs`.

use std::path::PathBuf;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vista_models::{Error, Inspection, ReadError, TorchFile, inspect};

use crate::alloc::peak;

fn hostile(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/hostile")
        .join(name)
}

/// The peak each way of reading a corpus file must stay under. The largest file is
/// 600 KB; the reader holds it, its pickle and the pickle's objects, and 32 MiB leaves
/// room for that many times over while a 2^40-node copy or a 64 MiB inflation is far out.
const PEAK: usize = 32 << 20;

/// A whole file's tensors, materialized.
type Values = Vec<(String, Vec<f32>)>;

/// What each way into the reader made of one file.
struct Outcome {
    /// `TorchFile::read`, then every tensor materialized.
    read: Result<Values, ReadError>,
    /// `TorchFile::read_tensor_list`: the keys alone.
    list: Result<Vec<String>, ReadError>,
    inspect: Result<Inspection, Error>,
}

fn open(name: &str) -> Outcome {
    let path = hostile(name);
    let (read, bytes) = peak(|| {
        let file = TorchFile::read(&path)?;
        let values = file.materialize_all()?;
        Ok(values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    });
    assert!(bytes < PEAK, "{name}: reading peaked at {bytes} bytes");
    let (list, bytes) = peak(|| {
        let tensors = TorchFile::read_tensor_list(&path)?;
        Ok(tensors.into_iter().map(|(k, _)| k).collect())
    });
    assert!(bytes < PEAK, "{name}: listing peaked at {bytes} bytes");
    let (inspect, bytes) = peak(|| inspect(&path));
    assert!(bytes < PEAK, "{name}: inspecting peaked at {bytes} bytes");
    Outcome {
        read,
        list,
        inspect,
    }
}

/// The reader's error inside `inspect`'s.
fn read_error(e: &Error) -> &ReadError {
    match e {
        Error::Read { source, .. } => source
            .downcast_ref::<ReadError>()
            .unwrap_or_else(|| panic!("not a ReadError: {source}")),
        other => panic!("not a read error: {other}"),
    }
}

/// Asserts that every way in refuses `name` with an error `expected` accepts.
fn assert_refused(name: &str, expected: impl Fn(&ReadError) -> bool) {
    let o = open(name);
    let read = o.read.expect_err(name);
    assert!(expected(&read), "{name}: read: {read}");
    let list = o.list.expect_err(name);
    assert!(expected(&list), "{name}: list: {list}");
    let inspected = o.inspect.expect_err(name);
    let inner = read_error(&inspected);
    assert!(expected(inner), "{name}: inspect: {inspected}");
}

fn is_limit(e: &ReadError) -> bool {
    matches!(e, ReadError::Limit { .. })
}

fn is_tensor_error(e: &ReadError, says: &str) -> bool {
    matches!(e, ReadError::Tensor { key, problem } if key == "weight" && problem.contains(says))
}

fn is_format(e: &ReadError, says: &str) -> bool {
    matches!(e, ReadError::Format(m) if m.contains(says))
}

#[test]
fn shared_tuples_unfold_to_a_limit_not_to_two_to_the_forty() {
    assert_refused("shared_tuple_bomb.pth", is_limit);
}

#[test]
fn a_list_memoized_many_times_is_shared_not_copied() {
    let o = open("memo_list_bomb.pth");
    assert_eq!(o.read.unwrap(), [("weight".to_string(), vec![1.0, 1.0])]);
    assert_eq!(o.list.unwrap(), ["weight"]);
    assert_eq!(o.inspect.unwrap().tensors.len(), 1);
}

#[test]
fn a_state_dict_saved_under_two_names_loads_under_both() {
    // pickle memoizes the OrderedDict before it fills it; a copy taken at the memo would
    // leave `ema` empty.
    let o = open("shared_state_dict.pth");
    let want = vec![
        ("model.w".to_string(), vec![1.0, 2.0]),
        ("ema.w".to_string(), vec![1.0, 2.0]),
    ];
    assert_eq!(o.read.unwrap(), want);
}

#[test]
fn deep_nesting_is_refused_without_recursing() {
    assert_refused(
        "deep_nesting.pth",
        // A list's key grows with its depth, so the key's limit may come first.
        |e| matches!(e, ReadError::Limit { what, .. } if what.contains("nesting") || what.contains("key")),
    );
}

#[test]
fn a_compressed_storage_is_refused_not_inflated() {
    // 64 MiB of zeros deflated to 64 KiB: an inflating reader would peak past `PEAK`.
    assert_refused("deflate_bomb.pth", |e| is_format(e, "compressed"));
}

#[test]
fn sizes_strides_and_offsets_are_checked() {
    assert_refused("huge_shape.pth", |e| is_tensor_error(e, "overflows"));
    assert_refused("stride0_expansion.pth", |e| is_tensor_error(e, "budget"));
    assert_refused("shape_stride_mismatch.pth", |e| {
        is_tensor_error(e, "2 sizes but 1 strides")
    });
    assert_refused("offset_out_of_range.pth", |e| {
        is_tensor_error(e, "reads element 6")
    });
    assert_refused("offset_overflow.pth", |e| is_tensor_error(e, "overflows"));
    assert_refused("negative_stride.pth", |e| is_tensor_error(e, "holds -1"));
}

#[test]
fn zero_dimensional_tensors_fit_no_architecture() {
    for name in [
        "zero_dim_resnet.pth",
        "zero_dim_inception.pth",
        "zero_dim_efficientnet.pth",
    ] {
        let o = open(name);
        assert!(o.read.unwrap().iter().all(|(_, v)| v == &[1.0]), "{name}");
        let found = o.inspect.unwrap();
        assert!(found.tensors.iter().all(|t| t.shape.is_empty()), "{name}");
        assert_eq!(found.guess, None, "{name}");
    }
}

#[test]
fn the_legacy_magic_number_is_compared() {
    assert_refused("legacy_wrong_magic.pth", |e| is_format(e, "magic"));
}

#[test]
fn truncated_files_are_errors() {
    for name in ["truncated_zip.pth", "truncated_legacy.pth"] {
        assert_refused(name, |e| matches!(e, ReadError::Truncated(_)));
    }
}

#[test]
fn pickled_calls_are_never_run() {
    // The files' pickles call `os.system` and `eval` to create this file.
    let marker = std::path::Path::new("/tmp/vista-hostile-pickle-ran");
    let _ = std::fs::remove_file(marker);
    for name in ["pickle_exec.pth", "pickle_exec_legacy.pth"] {
        let o = open(name);
        assert_eq!(o.read.unwrap(), [("weight".to_string(), vec![1.0, 1.0])]);
        assert_eq!(o.list.unwrap(), ["weight"]);
        o.inspect.unwrap();
    }
    assert!(!marker.exists(), "a pickled call ran");
}

#[test]
fn hostile_zip_records_are_checked() {
    let o = open("zip64_ok.pth");
    assert_eq!(
        o.read.unwrap(),
        [("weight".to_string(), vec![1.0, 2.0, 3.0, 4.0])]
    );
    assert_refused(
        "zip_many_entries.pth",
        |e| matches!(e, ReadError::Limit { what, .. } if what.contains("zip entries")),
    );
    assert_refused("zip_huge_size.pth", |e| {
        is_format(e, "more than the archive holds")
    });
    assert_refused(
        "zip_long_name.pth",
        |e| matches!(e, ReadError::Limit { what, .. } if what.contains("name")),
    );
}

/// A legacy-format checkpoint (as `torch.save(.., _use_new_zipfile_serialization=False)`
/// writes one) holding a float tensor `w` of `n` zeros, built from raw pickle opcodes.
fn legacy_checkpoint(n: u32) -> Vec<u8> {
    fn text(b: &mut Vec<u8>, t: &str) {
        b.extend([0x8c, t.len() as u8]); // SHORT_BINUNICODE
        b.extend(t.as_bytes());
    }
    let mut b = vec![0x80, 2, 0x8a, 10]; // PROTO 2, LONG1 of 10 bytes: the magic number
    b.extend([
        0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, b'.',
    ]);
    b.extend([0x80, 2, b'M']); // the protocol version, BININT2 1001
    b.extend(1001u16.to_le_bytes());
    b.extend([b'.', 0x80, 2, b'}']); // system info {"little_endian": True}
    text(&mut b, "little_endian");
    b.extend([0x88, b's', b'.', 0x80, 2, b'}']); // the saved dict
    text(&mut b, "w");
    b.extend(b"ctorch._utils\n_rebuild_tensor_v2\n(("); // GLOBAL, MARK, MARK
    text(&mut b, "storage");
    b.extend(b"ctorch\nFloatStorage\n");
    text(&mut b, "0");
    text(&mut b, "cpu");
    b.push(b'J');
    b.extend(n.to_le_bytes());
    b.extend(b"NtQK\0J"); // None, TUPLE, BINPERSID; offset 0; the size
    b.extend(n.to_le_bytes());
    b.extend([0x85, b'K', 1, 0x85, 0x89]); // (n,), (1,), False
    b.extend(b"ccollections\nOrderedDict\n)RtRs.");
    b.extend([0x80, 2, b']']); // the storage keys
    text(&mut b, "0");
    b.extend(b"a.");
    b.extend(u64::from(n).to_le_bytes());
    b.resize(b.len() + 4 * n as usize, 0);
    b
}

#[test]
fn inspect_reads_no_storage() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, path) in [
        ("zip", crate::fixtures().join("resnet18_w8.pth")),
        ("legacy", tmp.path().join("legacy.pth")),
    ] {
        if name == "legacy" {
            std::fs::write(&path, legacy_checkpoint(1 << 20)).unwrap();
            let file = TorchFile::read(&path).unwrap();
            assert_eq!(file.tensors.len(), 1);
            assert_eq!(file.tensors[0].1.shape, [1 << 20]);
        }
        let size = std::fs::metadata(&path).unwrap().len() as usize;
        let (listed, bytes) = peak(|| TorchFile::read_tensor_list(&path));
        assert!(!listed.unwrap().is_empty(), "{name}");
        assert!(
            bytes < size / 2,
            "{name}: listing peaked at {bytes} bytes of a {size}-byte file"
        );
    }
    let path = crate::fixtures().join("resnet18_w8.pth");
    let (found, _) = peak(|| inspect(&path));
    assert!(found.unwrap().guess.is_some());
}

/// Parses `bytes` and materializes every tensor; returns the peak allocation.
fn parse_all(bytes: &[u8]) -> (Result<usize, ReadError>, usize) {
    peak(|| {
        let file = TorchFile::from_bytes(bytes)?;
        Ok(file.materialize_all()?.len())
    })
}

#[test]
fn every_truncation_of_a_good_file_is_an_error() {
    for name in ["reader_zip.pth", "reader_legacy.pth"] {
        let bytes = std::fs::read(crate::fixtures().join(name)).unwrap();
        assert!(parse_all(&bytes).0.is_ok());
        for n in 0..bytes.len() {
            let (r, peak) = parse_all(&bytes[..n]);
            assert!(r.is_err(), "{name} cut to {n} bytes parsed");
            assert!(peak < 1 << 20, "{name} cut to {n} bytes peaked at {peak}");
        }
    }
}

#[test]
fn corrupted_copies_of_good_files_stay_within_the_budget() {
    // Flipped bytes may still parse, so the bound is the tensor budget: 4 bytes of f32
    // per element of at most 4 x 2 KB of storage + 1 MiB, plus the file and its objects.
    let mut rng = ChaCha8Rng::seed_from_u64(20);
    for name in ["reader_zip.pth", "reader_legacy.pth"] {
        let good = std::fs::read(crate::fixtures().join(name)).unwrap();
        for case in 0..3000 {
            let mut bytes = good.clone();
            for _ in 0..rng.random_range(1..=4) {
                let i = rng.random_range(0..bytes.len());
                bytes[i] = rng.random();
            }
            let (_, peak) = parse_all(&bytes);
            assert!(peak < 8 << 20, "{name} case {case} peaked at {peak}");
        }
    }
}
