//! Every Cloudflare answer the client decodes (envelopes of records, load balancers, pools).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| qovery_dr_providers::fuzz::cloudflare_envelopes(data));
