//! What a config can know of DPDK's virtual device drivers before DPDK
//! starts: which argument keys each driver takes, and which arguments
//! name a file or a kernel interface the driver opens when it probes.
//!
//! A vdev the driver refuses (an unknown key, a capture that is not
//! there) makes no port, and EAL still starts: `rampart run` would only
//! find the port missing, with the cause in DPDK's log. Checked here, the
//! mistake is reported by `check-config` with its place in the file.
//!
//! A driver not in [`DRIVERS`] passes unchecked (DPDK judges it when it
//! starts). The checks that need the machine (a file exists, a group is
//! known) go through [`Host`]: this crate makes no system calls, the
//! `rampart` binary implements it.

/// What the driver does with an argument's value when it probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// Nothing a config check can see.
    Plain,
    /// Opens it for reading (a capture to replay).
    ReadFile,
    /// Creates or truncates it (a capture to write): its directory must
    /// exist and be writable.
    WriteFile,
    /// A kernel network interface it attaches to.
    Interface,
}

/// A vdev driver: its name, the other names DPDK takes for it
/// (`RTE_PMD_REGISTER_ALIAS`), and the argument keys it accepts.
#[derive(Debug)]
pub struct Driver {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub keys: &'static [(&'static str, Arg)],
}

/// The vdev drivers Rampart's tests, benchmarks and docs use, with the
/// keys each accepts in DPDK 22.11: each driver's `valid_arguments` list
/// that `rte_kvargs_parse` checks at probe (an argument not in it fails
/// the probe), as in `drivers/net/{pcap,null,ring,tap,virtio,vhost,
/// af_packet}` of DPDK v22.11 and the `RTE_PMD_REGISTER_PARAM_STRING` of
/// each (the `PMD_INFO_STRING` of Debian 12's `librte_net_*.so.23`).
pub const DRIVERS: &[Driver] = &[
    Driver {
        name: "net_pcap",
        aliases: &["eth_pcap"],
        keys: &[
            ("rx_pcap", Arg::ReadFile),
            ("tx_pcap", Arg::WriteFile),
            ("rx_iface", Arg::Interface),
            ("rx_iface_in", Arg::Interface),
            ("tx_iface", Arg::Interface),
            ("iface", Arg::Interface),
            ("phy_mac", Arg::Plain),
            ("infinite_rx", Arg::Plain),
        ],
    },
    Driver {
        name: "net_null",
        aliases: &["eth_null"],
        keys: &[
            ("size", Arg::Plain),
            ("copy", Arg::Plain),
            ("no-rx", Arg::Plain),
        ],
    },
    Driver {
        name: "net_ring",
        aliases: &["eth_ring"],
        keys: &[("nodeaction", Arg::Plain), ("internal", Arg::Plain)],
    },
    Driver {
        name: "net_tap",
        aliases: &["eth_tap"],
        // `iface` is the interface the driver creates, not one it needs.
        keys: &[
            ("iface", Arg::Plain),
            ("mac", Arg::Plain),
            ("remote", Arg::Interface),
            ("persist", Arg::Plain),
        ],
    },
    Driver {
        name: "net_virtio_user",
        aliases: &["virtio_user"],
        // `path` may be a socket the driver itself creates (`server=1`).
        keys: &[
            ("path", Arg::Plain),
            ("mac", Arg::Plain),
            ("cq", Arg::Plain),
            ("queue_size", Arg::Plain),
            ("queues", Arg::Plain),
            ("iface", Arg::Plain),
            ("server", Arg::Plain),
            ("mrg_rxbuf", Arg::Plain),
            ("in_order", Arg::Plain),
            ("packed_vq", Arg::Plain),
            ("speed", Arg::Plain),
            ("vectorized", Arg::Plain),
        ],
    },
    Driver {
        name: "net_vhost",
        aliases: &["eth_vhost"],
        // `iface` is a vhost-user socket path, created in server mode.
        keys: &[
            ("iface", Arg::Plain),
            ("queues", Arg::Plain),
            ("client", Arg::Plain),
            ("iommu-support", Arg::Plain),
            ("postcopy-support", Arg::Plain),
            ("tso", Arg::Plain),
            ("linear-buffer", Arg::Plain),
            ("ext-buffer", Arg::Plain),
            ("legacy-ol-flags", Arg::Plain),
        ],
    },
    Driver {
        name: "net_af_packet",
        aliases: &["eth_af_packet"],
        keys: &[
            ("iface", Arg::Interface),
            ("qpairs", Arg::Plain),
            ("blocksz", Arg::Plain),
            ("framesz", Arg::Plain),
            ("framecnt", Arg::Plain),
            ("qdisc_bypass", Arg::Plain),
        ],
    },
];

impl Driver {
    /// What the driver does with `key`, `None` if it refuses the key.
    pub fn arg(&self, key: &str) -> Option<Arg> {
        self.keys.iter().find(|(k, _)| *k == key).map(|(_, a)| *a)
    }

    /// The accepted keys, comma-separated, for messages.
    pub fn key_list(&self) -> String {
        let keys: Vec<&str> = self.keys.iter().map(|(k, _)| *k).collect();
        keys.join(", ")
    }
}

/// The driver of a vdev name (`net_pcap0`): DPDK picks the driver whose
/// name or alias starts the device name; the longest such name wins here.
/// `None` for a driver this table does not know.
pub fn driver(vdev_name: &str) -> Option<&'static Driver> {
    DRIVERS
        .iter()
        .flat_map(|d| {
            std::iter::once(d.name)
                .chain(d.aliases.iter().copied())
                .map(move |n| (n, d))
        })
        .filter(|(n, _)| vdev_name.starts_with(n))
        .max_by_key(|(n, _)| n.len())
        .map(|(_, d)| d)
}

/// One `key=value` argument of a device string, with the byte offset of
/// its key in the string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevArg<'a> {
    pub key: &'a str,
    pub value: &'a str,
    pub offset: usize,
}

/// The arguments after a vdev's name (`net_pcap0,rx_pcap=a.pcap` gives
/// `rx_pcap` = `a.pcap`); a bare `key` has an empty value.
pub fn args(device: &str) -> Vec<DevArg<'_>> {
    let mut out = Vec::new();
    let mut offset = 0;
    for (i, part) in device.split(',').enumerate() {
        if i > 0 {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            out.push(DevArg { key, value, offset });
        }
        offset += part.len() + 1;
    }
    out
}

/// What would make DPDK refuse `device` and create no port: arguments its
/// driver does not take and, with a `host`, files and interfaces that are
/// not there. Each with the byte offset of its argument in `device`.
/// Empty for a PCI address or a driver not in [`DRIVERS`].
pub fn problems(device: &str, host: Option<&dyn Host>) -> Vec<(usize, String)> {
    let name = device.split(',').next().unwrap_or("");
    let Some(driver) = driver(name) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for a in args(device) {
        let Some(kind) = driver.arg(a.key) else {
            let hint = closest_key(a.key, driver)
                .map(|k| format!(" (did you mean '{k}'?)"))
                .unwrap_or_default();
            let msg = format!(
                "{} does not take the argument '{}'{hint}; it takes {}",
                driver.name,
                a.key,
                driver.key_list()
            );
            out.push((a.offset, msg));
            continue;
        };
        let Some(host) = host else { continue };
        let checked = match kind {
            Arg::Plain => Ok(()),
            Arg::ReadFile => host.readable_file(a.value),
            Arg::WriteFile => host.writable_file(a.value),
            Arg::Interface => host.interface(a.value),
        };
        if let Err(why) = checked {
            let msg = format!(
                "{}={}: {why} ({} would not create the port)",
                a.key, a.value, driver.name
            );
            out.push((a.offset, msg));
        }
    }
    out
}

/// The driver's key `key` is most likely a typo of: one edit away, or the
/// same but for `-` and `_`.
fn closest_key(key: &str, driver: &Driver) -> Option<&'static str> {
    let norm = |k: &str| k.replace('-', "_").to_ascii_lowercase();
    driver
        .keys
        .iter()
        .map(|(k, _)| *k)
        .find(|k| norm(k) == norm(key))
        .or_else(|| {
            driver
                .keys
                .iter()
                .map(|(k, _)| *k)
                .find(|k| crate::config::build::edit_distance(k, key) <= 2)
        })
}

/// The checks of a config that need the machine: that a file a driver
/// opens is there, that a group is known to NSS. The pipeline makes no
/// system calls; `rampart check-config` and `rampart run` pass the
/// binary's implementation, tests a fake. Each returns why not, as a
/// phrase to follow the value in a message.
pub trait Host {
    /// `path` exists and this process can read it.
    fn readable_file(&self, path: &str) -> Result<(), String>;
    /// `path` can be created or truncated: its directory exists and is
    /// writable (and `path` itself, when it exists).
    fn writable_file(&self, path: &str) -> Result<(), String>;
    /// A kernel network interface of that name exists.
    fn interface(&self, name: &str) -> Result<(), String>;
    /// NSS knows the group (a name, or a number taken as a gid).
    fn group(&self, spec: &str) -> Result<(), String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drivers_are_found_by_name_and_alias() {
        assert_eq!(driver("net_pcap0").unwrap().name, "net_pcap");
        assert_eq!(driver("eth_pcap1").unwrap().name, "net_pcap");
        assert_eq!(driver("virtio_user0").unwrap().name, "net_virtio_user");
        assert_eq!(driver("net_virtio_user1").unwrap().name, "net_virtio_user");
        assert_eq!(driver("net_null").unwrap().name, "net_null");
        assert!(driver("net_bonding0").is_none());
        assert!(driver("0000:03:00.0").is_none());
    }

    #[test]
    fn args_carry_their_offsets() {
        let d = "net_pcap0,rx_pcap=a.pcap,infinite_rx=1,bare";
        let a = args(d);
        assert_eq!(a.len(), 3);
        assert_eq!((a[0].key, a[0].value), ("rx_pcap", "a.pcap"));
        assert_eq!(&d[a[1].offset..], "infinite_rx=1,bare");
        assert_eq!((a[2].key, a[2].value, a[2].offset), ("bare", "", 39));
        assert!(args("net_null0").is_empty());
    }
}
