#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: rampart_fuzz::init("event_decode"),
    |data: &[u8]| rampart_fuzz::events::event_decode(data)
);
