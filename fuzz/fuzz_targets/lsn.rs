//! PostgreSQL LSNs (`X/Y`): parsing never panics and printing round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qovery_dr_core::Lsn;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(lsn) = text.parse::<Lsn>() {
        let printed = lsn.to_string();
        assert_eq!(printed.parse::<Lsn>().ok(), Some(lsn), "{text:?} -> {printed:?}");
    }
});
