//! The machine's side of config checking ([`rampart_pipeline::config::Host`]):
//! `check-config` and `run` load configs through it, so a capture that is
//! not there, a kernel interface that does not exist or a socket group
//! NSS does not know is refused with its place in the file before DPDK
//! starts, instead of leaving a port missing after.

use std::fs::{self, OpenOptions};
use std::io::ErrorKind;
use std::path::Path;

use rampart_pipeline::config::Host;

/// This machine, as this process sees it (relative paths from the
/// working directory, as DPDK's drivers open them).
pub struct System;

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::NotFound => "does not exist".into(),
        ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

impl Host for System {
    fn readable_file(&self, path: &str) -> Result<(), String> {
        if path.is_empty() {
            return Err("no file named".into());
        }
        let meta = fs::metadata(path).map_err(|e| io_reason(&e))?;
        if meta.is_dir() {
            return Err("is a directory".into());
        }
        // A FIFO or device is opened by the driver only: opening it here
        // could block until a writer comes.
        if meta.is_file() {
            fs::File::open(path).map_err(|e| format!("cannot be read: {}", io_reason(&e)))?;
        }
        Ok(())
    }

    fn writable_file(&self, path: &str) -> Result<(), String> {
        if path.is_empty() {
            return Err("no file named".into());
        }
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => return Err("is a directory".into()),
            Ok(meta) if meta.is_file() => {
                // Opened without truncating: the check changes nothing.
                return OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map(drop)
                    .map_err(|e| format!("cannot be written: {}", io_reason(&e)));
            }
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io_reason(&e)),
        }
        let dir = match Path::new(path).parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        match fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(format!("{} is not a directory", dir.display())),
            Err(e) => return Err(format!("directory {}: {}", dir.display(), io_reason(&e))),
        }
        // The one sure test of writability (root, ACLs, read-only mounts):
        // create a file there; it is removed when dropped.
        tempfile::Builder::new()
            .prefix(".rampart-check")
            .tempfile_in(dir)
            .map(drop)
            .map_err(|e| {
                format!(
                    "directory {} is not writable: {}",
                    dir.display(),
                    io_reason(&e)
                )
            })
    }

    fn interface(&self, name: &str) -> Result<(), String> {
        // libpcap's pseudo-device for every interface.
        if name == "any" {
            return Ok(());
        }
        let class = Path::new("/sys/class/net");
        // Without sysfs (some containers) nothing can be said: DPDK judges.
        if !class.is_dir() {
            return Ok(());
        }
        if name.is_empty() || name.contains('/') || !class.join(name).exists() {
            return Err("no such network interface".into());
        }
        Ok(())
    }

    fn group(&self, spec: &str) -> Result<(), String> {
        rampart_events::resolve_group(spec)
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_pipeline::config::Config;

    fn config(device: &str, events: &str) -> String {
        format!(
            "[[interface]]\nname = \"a\"\ndevice = \"{device}\"\nzone = \"z\"\n[zone.z]\n{events}"
        )
    }

    #[test]
    fn missing_capture_is_refused_with_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.pcap");
        fs::write(&input, b"").unwrap();
        let d = dir.path().display();
        let good = config(
            &format!("net_pcap0,rx_pcap={d}/in.pcap,tx_pcap={d}/out.pcap"),
            "",
        );
        assert!(Config::from_str_on_host(&good, "c.toml", &System).is_ok());
        assert!(
            !dir.path().join("out.pcap").exists(),
            "checking creates nothing"
        );
        let bad = config("net_pcap0,rx_pcap=/nonexistent.pcap", "");
        let e = Config::from_str_on_host(&bad, "c.toml", &System).unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.toml:3:21: interface[a].device: rx_pcap=/nonexistent.pcap: does not exist \
             (net_pcap would not create the port)\n"
        );
        let bad = config("net_pcap0,tx_pcap=/nonexistent/out.pcap", "");
        let e = Config::from_str_on_host(&bad, "c.toml", &System).unwrap_err();
        assert!(
            e.to_string()
                .contains("tx_pcap=/nonexistent/out.pcap: directory /nonexistent: does not exist"),
            "{e}"
        );
        let bad = config("net_pcap0,iface=rampart-none0", "");
        let e = Config::from_str_on_host(&bad, "c.toml", &System).unwrap_err();
        assert!(e.to_string().contains("no such network interface"), "{e}");
        let good = config("net_pcap0,iface=lo", "");
        assert!(Config::from_str_on_host(&good, "c.toml", &System).is_ok());
    }

    #[test]
    fn unknown_group_is_refused_with_its_place() {
        let bad = config(
            "net_null0",
            "[events]\nsocket_group = \"rampart-no-such-group\"\n",
        );
        let e = Config::from_str_on_host(&bad, "c.toml", &System).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "c.toml:7:16: events.socket_group: group \"rampart-no-such-group\": no such group"
            ),
            "{e}"
        );
        let good = config("net_null0", "[events]\ncontrol_socket_group = \"root\"\n");
        assert!(Config::from_str_on_host(&good, "c.toml", &System).is_ok());
    }
}
