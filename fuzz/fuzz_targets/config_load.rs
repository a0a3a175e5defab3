#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: rampart_fuzz::init("config_load"),
    |data: &[u8]| rampart_fuzz::config::config_load(data)
);
