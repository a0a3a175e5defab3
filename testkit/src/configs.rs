//! Config text that many tests and benchmarks spell out: the two
//! interfaces of a firewall between an untrust and a trust zone, and the
//! `net_pcap` devices of a capture replay. The pairs return TOML lines to
//! splice into a config (ending in a newline); the zones' own tables
//! (`[zone.untrust]`, `[zone.trust]`, with a screen or not) stay with the
//! caller.

use std::fmt::Display;

/// Interface `ge-0/0/0` (zone untrust, on `untrust`) and `ge-0/0/1`
/// (zone trust, on `trust`), each the other's peer: traffic crosses both
/// ways.
pub fn untrust_trust_pair(untrust: &str, trust: &str) -> String {
    untrust_into_trust(untrust, trust) + "peer = \"ge-0/0/0\"\n"
}

/// Interface `ge-0/0/0` (zone untrust, on `untrust`) forwarding into
/// `ge-0/0/1` (zone trust, on `trust`), which has no peer: a replay into
/// a sink.
pub fn untrust_into_trust(untrust: &str, trust: &str) -> String {
    format!(
        r#"[[interface]]
name = "ge-0/0/0"
device = "{untrust}"
zone = "untrust"
peer = "ge-0/0/1"
[[interface]]
name = "ge-0/0/1"
device = "{trust}"
zone = "trust"
"#
    )
}

/// The devices of a capture replay: `net_pcap0` reads `input`,
/// `net_pcap1` reads `empty`; what they send goes to `{out}0.pcap` and
/// `{out}1.pcap`.
pub fn pcap_devices(
    input: impl Display,
    empty: impl Display,
    out: impl Display,
) -> (String, String) {
    (
        format!("net_pcap0,rx_pcap={input},tx_pcap={out}0.pcap"),
        format!("net_pcap1,rx_pcap={empty},tx_pcap={out}1.pcap"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interface_pairs_are_the_config_text_tests_wrote_out() {
        let one_way = untrust_into_trust("net_null0", "net_null1");
        assert_eq!(
            untrust_trust_pair("net_null0", "net_null1"),
            format!("{one_way}peer = \"ge-0/0/0\"\n")
        );
        assert!(one_way.starts_with("[[interface]]\nname = \"ge-0/0/0\"\ndevice = \"net_null0\"\n"));
        let (a, b) = pcap_devices("in.pcap", "empty.pcap", "/d/out");
        assert_eq!(a, "net_pcap0,rx_pcap=in.pcap,tx_pcap=/d/out0.pcap");
        assert_eq!(b, "net_pcap1,rx_pcap=empty.pcap,tx_pcap=/d/out1.pcap");
    }
}
