#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: rampart_fuzz::init("pcap_trace"),
    |data: &[u8]| rampart_fuzz::trace::pcap_trace(data)
);
