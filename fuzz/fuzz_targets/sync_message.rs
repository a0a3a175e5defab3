#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: rampart_fuzz::init("sync_message"),
    |data: &[u8]| rampart_fuzz::sync::sync_message(data)
);
