//! OCI manifests and indexes as a registry sync walks them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| qovery_dr_providers::fuzz::oci_manifest(data));
