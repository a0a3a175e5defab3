#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: rampart_fuzz::init("wire_parse"),
    |data: &[u8]| rampart_fuzz::wire::wire_parse(data)
);
