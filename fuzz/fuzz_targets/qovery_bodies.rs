//! Every JSON body the Qovery client decodes, through the provider's conversions.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| qovery_dr_providers::fuzz::qovery_bodies(data));
