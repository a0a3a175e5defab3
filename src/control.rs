//! The control socket: a Unix stream socket (mode 0660) that answers one
//! command per connection (`stats`, `reload`, `rules`; the request format is
//! [`rampart_events::request`]), served from the main lcore without
//! blocking it.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use rampart_events::request::{parse_request, ControlCommand, MAX_REQUEST_BYTES};

pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ControlSocket {
    /// Listens at `path`, replacing a stale socket file but never a live
    /// listener or a non-socket file.
    pub fn bind(path: &Path, mode: u32) -> anyhow::Result<ControlSocket> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| {
                format!(
                    "control socket {}: creating its directory {}",
                    path.display(),
                    dir.display()
                )
            })?;
        }
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_socket() {
                bail!("{} exists and is not a socket", path.display());
            }
            if UnixStream::connect(path).is_ok() {
                bail!("{} is in use by a running rampart", path.display());
            }
            std::fs::remove_file(path)
                .with_context(|| format!("removing stale {}", path.display()))?;
        }
        let listener =
            UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        listener.set_nonblocking(true)?;
        Ok(ControlSocket {
            listener,
            path: path.to_path_buf(),
        })
    }

    /// Answers the clients waiting now, one command line each; requests
    /// that are not a command get an `{"error": ...}` reply without
    /// reaching `handle`.
    pub fn serve(&self, mut handle: impl FnMut(ControlCommand) -> String) {
        while let Ok((stream, _)) = self.listener.accept() {
            let _ = answer(stream, &mut handle);
        }
    }
}

fn answer(
    stream: UnixStream,
    handle: &mut impl FnMut(ControlCommand) -> String,
) -> std::io::Result<()> {
    // A client that does not send its command promptly is dropped; the
    // control plane never waits on one for long.
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    stream.set_write_timeout(Some(Duration::from_millis(500)))?;
    let mut line = Vec::new();
    BufReader::new((&stream).take(MAX_REQUEST_BYTES as u64)).read_until(b'\n', &mut line)?;
    let reply = match parse_request(&line) {
        Ok(command) => handle(command),
        Err(e) => e.to_json(),
    };
    (&stream).write_all(reply.as_bytes())?;
    (&stream).write_all(b"\n")
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Client side: sends `command`, returns the reply.
pub fn request(path: &Path, command: &str) -> anyhow::Result<String> {
    let mut s = UnixStream::connect(path)
        .with_context(|| format!("connecting to {} (is rampart running?)", path.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(format!("{command}\n").as_bytes())?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    Ok(reply)
}

/// Gives `path` to `group` (a name from /etc/group, or a number).
pub fn set_group(path: &Path, group: &str) -> anyhow::Result<()> {
    let gid = match group.parse::<u32>() {
        Ok(gid) => gid,
        Err(_) => {
            let groups = std::fs::read_to_string("/etc/group").context("reading /etc/group")?;
            groups
                .lines()
                .filter_map(|l| {
                    let mut f = l.split(':');
                    let name = f.next()?;
                    let gid = f.nth(1)?.parse::<u32>().ok()?;
                    (name == group).then_some(gid)
                })
                .next()
                .with_context(|| format!("events.socket_group: no group named {group:?}"))?
        }
    };
    std::os::unix::fs::chown(path, None, Some(gid))
        .with_context(|| format!("giving {} to group {group}", path.display()))
}
