#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: rampart_fuzz::init("control_request"),
    |data: &[u8]| rampart_fuzz::control::control_request(data)
);
