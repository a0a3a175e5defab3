#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: rampart_fuzz::init("pipeline"),
    |data: &[u8]| rampart_fuzz::pipeline::pipeline(data)
);
