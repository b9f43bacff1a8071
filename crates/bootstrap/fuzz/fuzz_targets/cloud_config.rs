#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for options in &common::OPTIONS {
        match capd_bootstrap::plan_cloud_config(data, options) {
            Ok(plan) => common::check(&plan),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
});
