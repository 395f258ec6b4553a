//! Image references: parsing never panics, and normalisation is idempotent
//! (what an `ImageRef` prints parses back to the same reference).
#![no_main]

use libfuzzer_sys::fuzz_target;
use qovery_dr_core::ImageRef;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(image) = text.parse::<ImageRef>() {
        let printed = image.to_string();
        let again: ImageRef = printed.parse().unwrap_or_else(|e| panic!("{printed:?} does not parse back: {e}"));
        assert_eq!(again, image, "{text:?} -> {printed:?}");
    }
});
