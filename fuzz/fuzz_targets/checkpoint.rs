//! Fuzzes the `.pth` reader (zip and legacy formats) on arbitrary bytes: parsing must give
//! a checkpoint or an error, never a panic, and every tensor it accepts must gather to
//! exactly its element count within the file's tensor budget.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vista_format::TorchFile;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = TorchFile::from_bytes(data) else {
        return;
    };
    let mut total = 0u64;
    for (_, t) in &file.tensors {
        let numel: usize = t.shape.iter().product();
        if let Ok(values) = file.to_f32(t) {
            assert_eq!(values.len(), numel);
            total += numel as u64 * t.dtype.size() as u64;
        }
    }
    // The budget: 4 times the storages' bytes, at most the file's length, plus 1 MiB.
    assert!(total <= 4 * data.len() as u64 + (1 << 20));
});
