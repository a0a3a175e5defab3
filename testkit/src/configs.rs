//! Config text that many tests and benchmarks spell out: the two
//! interfaces of a firewall between an untrust and a trust zone (or in one
//! zone), the `net_pcap` devices of a capture replay, the `[dataplane]`
//! and `[events]` lines of a test directory, the zones, a screen, a
//! `[[policy]]` block ([`policy`], a builder) and a default policy. All
//! but [`pcap_devices`] (device strings) return TOML lines to splice into
//! a config, ending in a newline.

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
    one_way_pair((untrust, "untrust"), (trust, "trust"))
}

/// Interface `ge-0/0/0` (on device `first.0`, zone `first.1`) forwarding
/// into `ge-0/0/1` (on `second.0`, zone `second.1`), which has no peer.
fn one_way_pair(first: (&str, &str), second: (&str, &str)) -> String {
    format!(
        r#"[[interface]]
name = "ge-0/0/0"
device = "{}"
zone = "{}"
peer = "ge-0/0/1"
[[interface]]
name = "ge-0/0/1"
device = "{}"
zone = "{}"
"#,
        first.0, first.1, second.0, second.1
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

/// Interface `ge-0/0/0` (on `first`) forwarding into `ge-0/0/1` (on
/// `second`), both in zone `z`, and the table `[zone.z]`.
pub fn one_zone_pair(first: &str, second: &str) -> String {
    one_way_pair((first, "z"), (second, "z")) + "[zone.z]\n"
}

/// `[zone.untrust]` and `[zone.trust]`, neither with a screen.
pub const UNTRUST_AND_TRUST_ZONES: &str = "[zone.untrust]\n[zone.trust]\n";

/// `[zone.untrust]` with screen `screen`, and `[zone.trust]` without.
pub fn untrust_screened_zones(screen: &str) -> String {
    format!("[zone.untrust]\nscreen = \"{screen}\"\n[zone.trust]\n")
}

/// The table `[screen.{name}]` with each of `checks` (names separated by
/// spaces) set to `true`.
pub fn screen(name: &str, checks: &str) -> String {
    let mut text = format!("[screen.{name}]\n");
    for check in checks.split_whitespace() {
        text += &format!("{check} = true\n");
    }
    text
}

/// The `[events]` table: the event socket `{dir}/events.sock` and the
/// control socket `{dir}/control.sock`.
pub fn event_sockets(dir: impl Display) -> String {
    format!("[events]\nsocket = \"{dir}/events.sock\"\ncontrol_socket = \"{dir}/control.sock\"\n")
}

/// `[dataplane]` with `eal = {eal}` (a TOML array), then the `[events]`
/// table of [`event_sockets`] in `dir`.
pub fn dataplane_with_sockets(eal: &str, dir: impl Display) -> String {
    format!("[dataplane]\neal = {eal}\n{}", event_sockets(dir))
}

/// A `[[policy]]` block named `name` from zone `from` to zone `to`; every
/// address and application is `any` and it permits, until said otherwise.
/// Its text is its `Display` (`.to_string()`, or `{}` in a `format!`).
pub fn policy(name: &str, (from, to): (&str, &str)) -> Policy {
    Policy {
        name: name.into(),
        from: from.into(),
        to: to.into(),
        source: vec!["any".into()],
        destination: vec!["any".into()],
        application: vec!["any".into()],
        then: "permit".into(),
        log: None,
        audit: false,
    }
}

/// A `[[policy]]` block being written: see [`policy`].
#[derive(Clone, Debug)]
pub struct Policy {
    name: String,
    from: String,
    to: String,
    source: Vec<String>,
    destination: Vec<String>,
    application: Vec<String>,
    then: String,
    log: Option<String>,
    audit: bool,
}

fn list(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

impl Policy {
    /// `source-address = [address]`.
    pub fn source(self, address: &str) -> Self {
        self.sources(&[address])
    }

    /// `source-address = [addresses…]`.
    pub fn sources(mut self, addresses: &[&str]) -> Self {
        self.source = list(addresses);
        self
    }

    /// `destination-address = [address]`.
    pub fn destination(self, address: &str) -> Self {
        self.destinations(&[address])
    }

    /// `destination-address = [addresses…]`.
    pub fn destinations(mut self, addresses: &[&str]) -> Self {
        self.destination = list(addresses);
        self
    }

    /// `application = [application]`.
    pub fn application(self, application: &str) -> Self {
        self.applications(&[application])
    }

    /// `application = [applications…]`.
    pub fn applications(mut self, applications: &[&str]) -> Self {
        self.application = list(applications);
        self
    }

    /// `then = "action"` (`permit`, `deny` or `reject`).
    pub fn then(mut self, action: &str) -> Self {
        self.then = action.into();
        self
    }

    /// `log = [events…]` (`session-init`, `session-close`).
    pub fn log(mut self, events: &[&str]) -> Self {
        self.log = Some(quoted(&list(events)));
        self
    }

    /// `log = true`: every event of the policy is logged.
    pub fn log_all(mut self) -> Self {
        self.log = Some("true".into());
        self
    }

    /// `audit = true`.
    pub fn audit(mut self) -> Self {
        self.audit = true;
        self
    }
}

fn quoted(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", items.join(", "))
}

impl Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "[[policy]]")?;
        writeln!(f, "name = \"{}\"", self.name)?;
        writeln!(f, "from-zone = \"{}\"", self.from)?;
        writeln!(f, "to-zone = \"{}\"", self.to)?;
        writeln!(f, "source-address = {}", quoted(&self.source))?;
        writeln!(f, "destination-address = {}", quoted(&self.destination))?;
        writeln!(f, "application = {}", quoted(&self.application))?;
        writeln!(f, "then = \"{}\"", self.then)?;
        if let Some(log) = &self.log {
            writeln!(f, "log = {log}")?;
        }
        if self.audit {
            writeln!(f, "audit = true")?;
        }
        Ok(())
    }
}

/// The `[default-policy]` table: `then = "action"` and `log = true`.
pub fn default_policy_logged(action: &str) -> String {
    format!("[default-policy]\nthen = \"{action}\"\nlog = true\n")
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

    #[test]
    fn a_policy_writes_the_block_tests_wrote_out() {
        let text = policy("allow-web", ("untrust", "trust"))
            .destination("web")
            .applications(&["junos-http", "junos-dns-udp"])
            .then("permit")
            .log(&["session-init", "session-close"])
            .to_string();
        assert_eq!(
            text,
            r#"[[policy]]
name = "allow-web"
from-zone = "untrust"
to-zone = "trust"
source-address = ["any"]
destination-address = ["web"]
application = ["junos-http", "junos-dns-udp"]
then = "permit"
log = ["session-init", "session-close"]
"#
        );
        let audited = policy("a", ("untrust", "trust"))
            .then("deny")
            .log_all()
            .audit()
            .to_string();
        assert!(audited
            .ends_with("application = [\"any\"]\nthen = \"deny\"\nlog = true\naudit = true\n"));
        assert_eq!(
            event_sockets("/d"),
            "[events]\nsocket = \"/d/events.sock\"\ncontrol_socket = \"/d/control.sock\"\n"
        );
    }
}
