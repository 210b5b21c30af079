//! Fuzzes the image probe and decoder on arbitrary bytes: they must return an image or
//! a problem, never panic, and never allocate past the pixel limit.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// A small pixel limit keeps each run fast; the limit itself is what is under test.
const MAX_PIXELS: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(img) = vista_data::decode_rgb_bytes(data, MAX_PIXELS) {
        assert!(u64::from(img.width()) * u64::from(img.height()) <= MAX_PIXELS);
    }
});
