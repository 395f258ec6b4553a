//! DR plans in every format: parsing and validation never panic; the same text gives the
//! same plan (or the same errors) every time; a plan that loads serializes to JSON (what
//! the dry run and the documents print) without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qovery_dr_core::plan::{DrPlan, PlanFormat};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for format in [PlanFormat::Toml, PlanFormat::Yaml, PlanFormat::Json] {
        let first = DrPlan::parse(text, format);
        let again = DrPlan::parse(text, format);
        match (&first, &again) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "the same text gave two plans"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "the same text gave two errors"),
            _ => panic!("the same text loaded once and failed once"),
        }
        if let Ok(plan) = first {
            serde_json::to_string(&plan).expect("a loaded plan serializes");
        }
    }
});
