//! Unix socket files and small config files made without following symlinks.
//!
//! The dataplane listens on two Unix stream sockets (the event socket and
//! the control socket) whose mode and group decide who may connect. Doing
//! `bind(path)` then `chmod(path)` / `chown(path)` is racy: a user who can
//! write the socket's directory can swap the fresh socket for a symlink in
//! between, and the chown follows the link (it hands the link's target to
//! the attacker's group). [`SocketFile::bind`] instead
//!
//! 1. opens the directory once and does every later step relative to that
//!    directory fd (a swapped parent cannot redirect anything),
//! 2. binds through `/proc/self/fd/<dirfd>/<name>`,
//! 3. opens the new socket file `O_PATH | O_NOFOLLOW` relative to the
//!    directory fd, checks (fstat) that it is a socket owned by us, and
//!    proves it is *our listener's* inode by connecting through
//!    `/proc/self/fd/<fd>` and finding that connection (with a random nonce)
//!    in our own accept queue,
//! 4. changes group and mode through `/proc/self/fd/<fd>`, a magic link that
//!    resolves to the pinned inode itself, never to whatever the name points
//!    at now. (`fchmod`/`fchown` refuse an `O_PATH` fd with `EBADF`, and a
//!    socket cannot be opened for reading, so the magic link is the way.)
//!
//! The socket is created with the process umask; the binary sets umask 077
//! at start, so there is no moment at which the socket is wider than asked.
//!
//! Group names are resolved through NSS ([`resolve_group`]), not by reading
//! `/etc/group`.

use std::collections::hash_map::RandomState;
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use nix::errno::Errno;
use nix::fcntl::{openat, renameat, OFlag, AT_FDCWD};
use nix::sys::socket::{recv, MsgFlags};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, Mode, SFlag};
use nix::unistd::{fsync, geteuid, unlinkat, Gid, Group, UnlinkatFlags};

/// What went wrong, naming the file and the step.
#[derive(Debug, thiserror::Error)]
pub enum SockFileError {
    #[error("{what} {path}: {reason}")]
    BadPath {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{what} {path}: mode {mode:#o} has bits outside 0777")]
    BadMode {
        what: &'static str,
        path: PathBuf,
        mode: u32,
    },
    #[error("{what} {path}: exists and is not a socket; refusing to remove it")]
    NotASocket { what: &'static str, path: PathBuf },
    #[error("{what} {path}: in use by a running process (another rampart?)")]
    InUse { what: &'static str, path: PathBuf },
    #[error(
        "{what} {path}: socket path was replaced while it was being set up ({detail}); \
         someone who can write its directory is interfering"
    )]
    Replaced {
        what: &'static str,
        path: PathBuf,
        detail: String,
    },
    #[error("{what} {path}: {op}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        op: String,
        #[source]
        source: io::Error,
    },
    #[error("group {spec:?}: no such group (looked up through NSS)")]
    UnknownGroup { spec: String },
    #[error("group {spec:?}: looking it up through NSS: {source}")]
    GroupLookup {
        spec: String,
        #[source]
        source: io::Error,
    },
}

/// A group resolved through NSS (`getgrnam_r`), or a decimal number (taken
/// as a gid as is, like `chown :N`).
pub fn resolve_group(spec: &str) -> Result<u32, SockFileError> {
    if spec.is_empty() {
        return Err(SockFileError::UnknownGroup {
            spec: spec.to_string(),
        });
    }
    if spec.bytes().all(|b| b.is_ascii_digit()) {
        // u32::MAX is (gid_t)-1, "leave unchanged" to chown: not a group.
        return match spec.parse::<u32>() {
            Ok(gid) if gid != u32::MAX => Ok(gid),
            _ => Err(SockFileError::UnknownGroup {
                spec: spec.to_string(),
            }),
        };
    }
    match Group::from_name(spec) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        Ok(None) => Err(SockFileError::UnknownGroup {
            spec: spec.to_string(),
        }),
        Err(errno) => Err(SockFileError::GroupLookup {
            spec: spec.to_string(),
            source: errno.into(),
        }),
    }
}

/// A listening Unix socket file created without following symlinks.
///
/// Dropping it unlinks the path only while the path is still this inode.
#[derive(Debug)]
pub struct SocketFile {
    listener: UnixListener,
    /// Connections accepted while bind checked the socket, handed out
    /// first by [`accept`](Self::accept).
    early: Mutex<VecDeque<UnixStream>>,
    path: PathBuf,
    what: &'static str,
    /// The directory the socket was bound in (opened once, at bind).
    dir: OwnedFd,
    /// The socket's name in `dir`.
    name: OsString,
    /// `O_PATH | O_NOFOLLOW` fd of the socket inode.
    inode: OwnedFd,
    dev: u64,
    ino: u64,
}

#[cfg(test)]
thread_local! {
    /// Runs between bind and the open/check/chmod/chown of the new socket:
    /// the tests swap the socket there, as a racing attacker would.
    static AFTER_BIND_HOOK: std::cell::RefCell<Option<Box<dyn FnOnce()>>> =
        const { std::cell::RefCell::new(None) };
}

fn after_bind_hook() {
    #[cfg(test)]
    if let Some(hook) = AFTER_BIND_HOOK.with(|h| h.borrow_mut().take()) {
        hook();
    }
}

fn proc_fd(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn proc_fd_name(dir: &impl AsRawFd, name: &OsStr) -> PathBuf {
    proc_fd(dir).join(name)
}

/// Splits `path` into the directory to open and the final name.
fn split(what: &'static str, path: &Path) -> Result<(PathBuf, OsString), SockFileError> {
    let bad = |reason: &str| SockFileError::BadPath {
        what,
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let name = path
        .file_name()
        .ok_or_else(|| bad("has no file name"))?
        .to_os_string();
    if path.as_os_str().as_bytes().ends_with(b"/") {
        return Err(bad("ends with '/'"));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name))
}

fn dir_mode(dir_group_access: bool) -> Mode {
    if dir_group_access {
        Mode::from_bits_truncate(0o711)
    } else {
        Mode::from_bits_truncate(0o700)
    }
}

/// Opens directory `dir` (following symlinks in an existing path: an admin
/// may point /var/run at /run), creating it and missing ancestors with
/// `mode` exactly (umask notwithstanding) when absent. Each directory we
/// create is made with `mkdirat` relative to its parent's fd and reopened
/// `O_NOFOLLOW`, so only directories we made get chmod'ed.
fn open_or_create_dir(dir: &Path, mode: Mode) -> Result<OwnedFd, (String, io::Error)> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    match openat(AT_FDCWD, dir, flags, Mode::empty()) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err((format!("opening directory {}", dir.display()), e.into())),
    }
    let (parent, name) = match (dir.parent(), dir.file_name()) {
        (Some(p), Some(n)) => (
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            },
            n,
        ),
        _ => {
            return Err((
                format!("opening directory {}", dir.display()),
                Errno::ENOENT.into(),
            ))
        }
    };
    let parent_fd = open_or_create_dir(parent, mode)?;
    let created = match mkdirat(&parent_fd, name, mode) {
        Ok(()) => true,
        Err(Errno::EEXIST) => false,
        Err(e) => return Err((format!("creating directory {}", dir.display()), e.into())),
    };
    let fd = openat(&parent_fd, name, flags | OFlag::O_NOFOLLOW, Mode::empty())
        .map_err(|e| (format!("opening directory {}", dir.display()), e.into()))?;
    if created {
        let st = fstat(&fd).map_err(|e| (format!("fstat of {}", dir.display()), e.into()))?;
        if st.st_uid == geteuid().as_raw() {
            fchmod(&fd, mode).map_err(|e| {
                (
                    format!("setting mode {:#o} on {}", mode.bits(), dir.display()),
                    e.into(),
                )
            })?;
        }
    }
    Ok(fd)
}

fn is_type(st: &nix::sys::stat::FileStat, t: SFlag) -> bool {
    (st.st_mode & SFlag::S_IFMT.bits()) == t.bits()
}

fn nonce() -> [u8; 16] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut out = [0u8; 16];
    for chunk in out.chunks_mut(8) {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u32(std::process::id());
        chunk.copy_from_slice(&h.finish().to_ne_bytes());
    }
    out
}

impl SocketFile {
    /// Binds a listening Unix stream socket at `path` and gives it `mode`
    /// (permission bits, at most 0777) and, if given, group `gid`, on the
    /// inode itself. `what` names the socket in errors ("events socket").
    ///
    /// The parent directory is created if missing (with missing ancestors),
    /// mode 0700, or 0711 when `dir_group_access` is set: search (x) but not
    /// read (r) for group and others lets them reach a socket whose name
    /// they know, while the socket's own mode and group decide who connects.
    /// 0750 would instead tie the directory to one group (a second chown to
    /// get wrong or forget on reload) and let that group list it; 0711
    /// reveals nothing and grants nothing beyond what the socket grants. An
    /// existing directory is left as it is (see
    /// [`directory_warning`](Self::directory_warning)).
    ///
    /// An existing socket at `path` with no listener is removed; one with a
    /// live listener is [`SockFileError::InUse`]; anything else (a file, a
    /// symlink, a directory) is [`SockFileError::NotASocket`] and left alone.
    /// The listener is non-blocking.
    pub fn bind(
        what: &'static str,
        path: &Path,
        mode: u32,
        gid: Option<u32>,
        dir_group_access: bool,
    ) -> Result<SocketFile, SockFileError> {
        let owned = || path.to_path_buf();
        let io = |op: &str| {
            let op = op.to_string();
            move |e: io::Error| SockFileError::Io {
                what,
                path: path.to_path_buf(),
                op,
                source: e,
            }
        };
        let nix = |op: &str| {
            let f = io(op);
            move |e: Errno| f(e.into())
        };
        if mode & !0o777 != 0 {
            return Err(SockFileError::BadMode {
                what,
                path: owned(),
                mode,
            });
        }
        let (dir_path, name) = split(what, path)?;
        let dir =
            open_or_create_dir(&dir_path, dir_mode(dir_group_access)).map_err(|(op, source)| {
                SockFileError::Io {
                    what,
                    path: owned(),
                    op,
                    source,
                }
            })?;

        remove_stale(what, path, &dir, &name)?;

        // Bind through the directory fd: a parent swapped for a symlink now
        // cannot move the socket elsewhere. sun_path holds 107 bytes, so the
        // name may be up to ~80 bytes, however long the directory path.
        let bind_path = proc_fd_name(&dir, &name);
        let listener = match UnixListener::bind(&bind_path) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                return Err(SockFileError::BadPath {
                    what,
                    path: owned(),
                    reason: format!(
                        "socket name too long to bind as {} (sun_path holds 107 bytes)",
                        bind_path.display()
                    ),
                })
            }
            Err(e) => return Err(io("binding (through /proc/self/fd; is /proc mounted?)")(e)),
        };
        listener
            .set_nonblocking(true)
            .map_err(io("setting non-blocking"))?;

        after_bind_hook();

        let replaced = |detail: String| SockFileError::Replaced {
            what,
            path: owned(),
            detail,
        };
        // O_PATH | O_NOFOLLOW on a symlink yields the link itself: fstat
        // then says "symlink", never the target's type.
        let inode = match openat(
            &dir,
            name.as_os_str(),
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Err(replaced("it is gone".into())),
            Err(e) => return Err(nix("opening the new socket O_PATH|O_NOFOLLOW")(e)),
        };
        let st = fstat(&inode).map_err(nix("fstat of the new socket"))?;
        if !is_type(&st, SFlag::S_IFSOCK) {
            return Err(replaced(format!(
                "it is now not a socket (mode {:#o})",
                st.st_mode
            )));
        }
        let euid = geteuid().as_raw();
        if st.st_uid != euid {
            return Err(replaced(format!(
                "it is now owned by uid {}, not {euid}",
                st.st_uid
            )));
        }
        let mut early = VecDeque::new();
        if !connects_to(&listener, &inode, &mut early).map_err(io("checking the socket is ours"))? {
            return Err(replaced(
                "it is now another socket, not our listener's".into(),
            ));
        }

        let file = SocketFile {
            listener,
            early: Mutex::new(early),
            path: owned(),
            what,
            dir,
            name,
            inode,
            dev: st.st_dev,
            ino: st.st_ino,
        };
        file.set_access(mode, gid)?;
        Ok(file)
    }

    /// Changes mode and group of the bound socket (a config reload), on the
    /// inode held since bind: a path swapped since cannot redirect it.
    /// When the group changes, the mode is first narrowed to the bits common
    /// to the old and new mode, so neither group ever has more than it was
    /// or will be granted.
    pub fn set_access(&self, mode: u32, gid: Option<u32>) -> Result<(), SockFileError> {
        let what = self.what;
        let io = |op: String| {
            move |e: io::Error| SockFileError::Io {
                what,
                path: self.path.clone(),
                op,
                source: e,
            }
        };
        if mode & !0o777 != 0 {
            return Err(SockFileError::BadMode {
                what,
                path: self.path.clone(),
                mode,
            });
        }
        let magic = proc_fd(&self.inode);
        let chmod = |m: u32| {
            std::fs::set_permissions(&magic, std::fs::Permissions::from_mode(m)).map_err(io(
                format!(
                    "setting mode {m:#o} (through {}; is /proc mounted?)",
                    magic.display()
                ),
            ))
        };
        let st = fstat(&self.inode).map_err(|e| io("fstat of the socket".into())(e.into()))?;
        let current = st.st_mode & 0o777;
        if let Some(gid) = gid.filter(|&g| g != st.st_gid) {
            if current & !mode != 0 {
                chmod(current & mode)?;
            }
            nix::unistd::chown(&magic, None, Some(Gid::from_raw(gid))).map_err(|e| {
                io(format!(
                    "giving it to group {gid} (through {}; is /proc mounted?)",
                    magic.display()
                ))(e.into())
            })?;
        }
        chmod(mode)
    }

    /// The next connection (callers set its blocking mode): first those that arrived while bind checked the socket, then the
    /// listener's. `WouldBlock` when there is none.
    pub fn accept(&self) -> io::Result<UnixStream> {
        let early = self
            .early
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop_front();
        match early {
            Some(s) => Ok(s),
            None => self.listener.accept().map(|(s, _)| s),
        }
    }

    /// The listener (non-blocking). Its `local_addr()` is the
    /// `/proc/self/fd/<dirfd>/<name>` path it was bound through, not
    /// [`path`](Self::path).
    pub fn listener(&self) -> &UnixListener {
        &self.listener
    }

    /// The path as given to [`bind`](Self::bind).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A warning for the operator if the socket's directory lets someone
    /// other than root and us replace the socket after it is made (it is
    /// group- or world-writable and not sticky, or owned by another user),
    /// else None.
    pub fn directory_warning(&self) -> Option<String> {
        let st = fstat(&self.dir).ok()?;
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let euid = geteuid().as_raw();
        if st.st_uid != 0 && st.st_uid != euid {
            return Some(format!(
                "{} {}: its directory {} is owned by uid {}, who could replace the socket",
                self.what,
                self.path.display(),
                dir.display(),
                st.st_uid
            ));
        }
        let sticky = st.st_mode & 0o1000 != 0;
        if st.st_mode & 0o022 != 0 && !sticky {
            return Some(format!(
                "{} {}: its directory {} (mode {:#o}) is writable by {} and not sticky: \
                 they could replace the socket; make it 0755 or 0711",
                self.what,
                self.path.display(),
                dir.display(),
                st.st_mode & 0o7777,
                if st.st_mode & 0o002 != 0 {
                    "everyone"
                } else {
                    "its group"
                },
            ));
        }
        None
    }
}

impl Drop for SocketFile {
    /// Unlinks the path only if it is still our inode. (A swap between the
    /// check and the unlink remains possible for someone who can write the
    /// directory; [`SocketFile::directory_warning`] flags such directories.)
    fn drop(&mut self) {
        if let Ok(st) = fstatat(
            &self.dir,
            self.name.as_os_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            if st.st_dev == self.dev && st.st_ino == self.ino {
                let _ = unlinkat(&self.dir, self.name.as_os_str(), UnlinkatFlags::NoRemoveDir);
            }
        }
    }
}

/// Removes a stale socket `name` in `dir`, if any.
fn remove_stale(
    what: &'static str,
    path: &Path,
    dir: &OwnedFd,
    name: &OsStr,
) -> Result<(), SockFileError> {
    let io = |op: &str, e: io::Error| SockFileError::Io {
        what,
        path: path.to_path_buf(),
        op: op.to_string(),
        source: e,
    };
    let old = match openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(io("opening the existing path O_PATH|O_NOFOLLOW", e.into())),
    };
    let st = fstat(&old).map_err(|e| io("fstat of the existing path", e.into()))?;
    if !is_type(&st, SFlag::S_IFSOCK) {
        return Err(SockFileError::NotASocket {
            what,
            path: path.to_path_buf(),
        });
    }
    // Connect to that very inode: ECONNREFUSED means no listener.
    match UnixStream::connect(proc_fd(&old)) {
        Ok(_) => {
            return Err(SockFileError::InUse {
                what,
                path: path.to_path_buf(),
            })
        }
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {}
        // A full backlog: someone is listening.
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
            return Err(SockFileError::InUse {
                what,
                path: path.to_path_buf(),
            })
        }
        Err(e) => return Err(io("probing the existing socket for a listener", e)),
    }
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(io("removing the stale socket", e.into())),
    }
}

/// True if a connection through the inode fd `inode` lands in `listener`'s
/// accept queue (recognised by a nonce, peeked so nothing is consumed).
/// Clients that connected between bind and this check (only root or our
/// own uid can: the socket has the umask's mode until `set_access`) are
/// real consumers that started early; they are kept in `early`, in order,
/// for [`SocketFile::accept`] to hand out, never closed.
fn connects_to(
    listener: &UnixListener,
    inode: &OwnedFd,
    early: &mut VecDeque<UnixStream>,
) -> io::Result<bool> {
    let mut client = match UnixStream::connect(proc_fd(inode)) {
        Ok(c) => c,
        // A socket inode nobody listens on: not our (listening) socket.
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => return Ok(false),
        Err(e) => return Err(e),
    };
    let nonce = nonce();
    client.write_all(&nonce)?;
    loop {
        match listener.accept() {
            Ok((conn, _)) => {
                conn.set_nonblocking(true)?;
                let mut got = [0u8; 16];
                // Peek: an early client's first bytes (a control request)
                // stay for whoever serves it.
                let n = loop {
                    match recv(conn.as_raw_fd(), &mut got, MsgFlags::MSG_PEEK) {
                        Ok(n) => break n,
                        Err(Errno::EINTR) => {}
                        Err(_) => break 0,
                    }
                };
                if n == got.len() && got == nonce {
                    return Ok(true);
                }
                early.push_back(conn);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Writes `bytes` to `path` atomically, mode 0600, without following a
/// symlink at `path`: see [`write_file_atomic_mode`].
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<(), SockFileError> {
    write_file_atomic_mode(path, bytes, 0o600)
}

/// Writes `bytes` to `path` atomically without following a symlink at
/// `path`: a temp file in the same directory is created
/// `O_CREAT | O_EXCL | O_NOFOLLOW` and given `mode` exactly (umask
/// notwithstanding), written, fsynced, then renamed over `path` (rename
/// replaces a symlink, it never writes through one) and the directory is
/// fsynced. The directory must exist.
pub fn write_file_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<(), SockFileError> {
    const WHAT: &str = "file";
    let io = |op: &str, e: io::Error| SockFileError::Io {
        what: WHAT,
        path: path.to_path_buf(),
        op: op.to_string(),
        source: e,
    };
    if mode & !0o777 != 0 {
        return Err(SockFileError::BadMode {
            what: WHAT,
            path: path.to_path_buf(),
            mode,
        });
    }
    let (dir_path, name) = split(WHAT, path)?;
    let dir = openat(
        AT_FDCWD,
        &dir_path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        io(
            &format!("opening directory {}", dir_path.display()),
            e.into(),
        )
    })?;

    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut attempts = 0;
    let (tmp_name, fd) = loop {
        let mut tmp = OsString::from(".");
        tmp.push(&name);
        tmp.push(format!(
            ".{}.{}.tmp",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        match openat(
            &dir,
            tmp.as_os_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600 & mode),
        ) {
            Ok(fd) => break (tmp, fd),
            Err(Errno::EEXIST) if attempts < 100 => attempts += 1,
            Err(e) => return Err(io("creating a temporary file", e.into())),
        }
    };
    let result = (|| {
        fchmod(&fd, Mode::from_bits_truncate(mode))
            .map_err(|e| io(&format!("setting mode {mode:#o}"), e.into()))?;
        let mut file = std::fs::File::from(fd);
        file.write_all(bytes)
            .map_err(|e| io("writing the temporary file", e))?;
        file.sync_all()
            .map_err(|e| io("fsync of the temporary file", e))?;
        renameat(&dir, tmp_name.as_os_str(), &dir, name.as_os_str())
            .map_err(|e| io("renaming the temporary file over it", e.into()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = unlinkat(&dir, tmp_name.as_os_str(), UnlinkatFlags::NoRemoveDir);
        return result;
    }
    fsync(dir.as_fd()).map_err(|e| io("fsync of its directory", e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt};

    const NOGROUP: u32 = 65534;

    fn set_hook(f: impl FnOnce() + 'static) {
        AFTER_BIND_HOOK.with(|h| *h.borrow_mut() = Some(Box::new(f)));
    }

    fn victim(dir: &Path) -> PathBuf {
        let v = dir.join("victim");
        std::fs::write(&v, b"secret").unwrap();
        std::fs::set_permissions(&v, std::fs::Permissions::from_mode(0o600)).unwrap();
        v
    }

    fn assert_untouched(v: &Path) {
        let md = std::fs::metadata(v).unwrap();
        assert_eq!(md.mode() & 0o7777, 0o600, "victim mode changed");
        assert_eq!(md.gid(), 0, "victim group changed");
        assert_eq!(md.uid(), 0, "victim owner changed");
        assert_eq!(std::fs::read(v).unwrap(), b"secret");
    }

    fn bind(path: &Path) -> Result<SocketFile, SockFileError> {
        SocketFile::bind("events socket", path, 0o660, Some(NOGROUP), false)
    }

    #[test]
    fn binds_with_mode_and_group_and_accepts() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("events.sock");
        let sock = bind(&path).unwrap();
        let md = std::fs::symlink_metadata(&path).unwrap();
        assert!(md.file_type().is_socket());
        assert_eq!(md.mode() & 0o7777, 0o660);
        assert_eq!(md.gid(), NOGROUP);
        assert_eq!(sock.path(), path);
        // The self-check connection was consumed; a client's is the next.
        assert_eq!(
            sock.listener().accept().unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let _c = UnixStream::connect(&path).unwrap();
        sock.listener().accept().unwrap();
        assert!(sock.directory_warning().is_none(), "tempdir is 0700");
    }

    #[test]
    fn a_client_connecting_while_bind_checks_the_socket_is_kept_with_its_bytes() {
        use std::io::Read;
        use std::sync::{Arc, Mutex};
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("control.sock");
        let early: Arc<Mutex<Option<UnixStream>>> = Arc::default();
        let (slot, at) = (early.clone(), path.clone());
        // A consumer or operator that started first, polling for the path,
        // connects between bind and the self-check and sends at once.
        set_hook(move || {
            let mut c = UnixStream::connect(&at).unwrap();
            c.write_all(b"{\"cmd\":\"stats\"}\n").unwrap();
            *slot.lock().unwrap() = Some(c);
        });
        let sock = bind(&path).unwrap();
        let mut served = sock.accept().expect("the early client is handed out");
        served.set_nonblocking(false).unwrap();
        let mut request = [0u8; 16];
        served.read_exact(&mut request).unwrap();
        assert_eq!(&request, b"{\"cmd\":\"stats\"}\n", "its request is intact");
        served.write_all(b"ok").unwrap();
        let mut reply = [0u8; 2];
        let mut client = early.lock().unwrap().take().unwrap();
        client.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"ok");
        assert_eq!(
            sock.accept().unwrap_err().kind(),
            io::ErrorKind::WouldBlock,
            "the self-check's own connection is not handed out"
        );
    }

    #[test]
    fn symlink_at_path_is_refused_and_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let v = victim(tmp.path());
        let path = tmp.path().join("events.sock");
        symlink(&v, &path).unwrap();
        let err = bind(&path).unwrap_err();
        assert!(matches!(err, SockFileError::NotASocket { .. }), "{err}");
        assert!(err.to_string().contains("exists and is not a socket"));
        assert!(std::fs::symlink_metadata(&path).unwrap().is_symlink());
        assert_untouched(&v);
    }

    #[test]
    fn symlink_to_stale_socket_is_refused_and_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("other.sock");
        drop(UnixListener::bind(&target).unwrap());
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        let path = tmp.path().join("events.sock");
        symlink(&target, &path).unwrap();
        let err = bind(&path).unwrap_err();
        assert!(matches!(err, SockFileError::NotASocket { .. }), "{err}");
        assert!(std::fs::symlink_metadata(&path).unwrap().is_symlink());
        let md = std::fs::symlink_metadata(&target).unwrap();
        assert!(md.file_type().is_socket());
        assert_eq!((md.mode() & 0o777, md.gid()), (0o600, 0));
    }

    #[test]
    fn race_socket_swapped_for_symlink_after_bind() {
        let tmp = tempfile::tempdir().unwrap();
        let v = victim(tmp.path());
        let path = tmp.path().join("events.sock");
        let (p, vv) = (path.clone(), v.clone());
        set_hook(move || {
            std::fs::remove_file(&p).unwrap();
            symlink(&vv, &p).unwrap();
        });
        let err = bind(&path).unwrap_err();
        assert!(matches!(err, SockFileError::Replaced { .. }), "{err}");
        assert!(
            err.to_string().contains("socket path was replaced"),
            "{err}"
        );
        assert_untouched(&v);
        // Our failed bind left the attacker's link alone (and did not unlink it).
        assert!(std::fs::symlink_metadata(&path).unwrap().is_symlink());
    }

    #[test]
    fn race_socket_swapped_for_file_after_bind() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("events.sock");
        let p = path.clone();
        set_hook(move || {
            std::fs::remove_file(&p).unwrap();
            std::fs::write(&p, b"x").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        });
        let err = bind(&path).unwrap_err();
        assert!(matches!(err, SockFileError::Replaced { .. }), "{err}");
        assert_untouched_mode(&path, 0o600);
    }

    fn assert_untouched_mode(p: &Path, mode: u32) {
        let md = std::fs::symlink_metadata(p).unwrap();
        assert_eq!((md.mode() & 0o7777, md.gid()), (mode, 0));
    }

    #[test]
    fn race_socket_swapped_for_another_root_socket_after_bind() {
        // Same type, same owner: only the self-connect check tells them apart.
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("events.sock");
        let p = path.clone();
        let other: std::rc::Rc<std::cell::RefCell<Option<UnixListener>>> = Default::default();
        let o = other.clone();
        set_hook(move || {
            std::fs::remove_file(&p).unwrap();
            *o.borrow_mut() = Some(UnixListener::bind(&p).unwrap());
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        });
        let err = bind(&path).unwrap_err();
        assert!(matches!(err, SockFileError::Replaced { .. }), "{err}");
        assert_untouched_mode(&path, 0o600);
    }

    #[test]
    fn race_parent_swapped_for_symlink_after_bind() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("run");
        std::fs::create_dir(&run).unwrap();
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        // A root file where the path would lead after the swap.
        let v = elsewhere.join("events.sock");
        std::fs::write(&v, b"secret").unwrap();
        std::fs::set_permissions(&v, std::fs::Permissions::from_mode(0o600)).unwrap();
        let path = run.join("events.sock");
        let (r, e, moved) = (run.clone(), elsewhere.clone(), tmp.path().join("moved"));
        let m = moved.clone();
        set_hook(move || {
            std::fs::rename(&r, &m).unwrap();
            symlink(&e, &r).unwrap();
        });
        let sock = bind(&path).unwrap();
        assert_untouched(&v);
        // Our socket, in the directory we opened, got the mode and group.
        let md = std::fs::symlink_metadata(moved.join("events.sock")).unwrap();
        assert!(md.file_type().is_socket());
        assert_eq!((md.mode() & 0o777, md.gid()), (0o660, NOGROUP));
        drop(sock);
        assert!(
            !moved.join("events.sock").exists(),
            "drop unlinks our inode"
        );
        assert_untouched(&v);
    }

    #[test]
    fn set_access_changes_the_inode_not_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("control.sock");
        let sock = SocketFile::bind("control socket", &path, 0o600, None, false).unwrap();
        let md = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!((md.mode() & 0o777, md.gid()), (0o600, 0));

        sock.set_access(0o660, Some(NOGROUP)).unwrap();
        let md = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!((md.mode() & 0o777, md.gid()), (0o660, NOGROUP));
        sock.set_access(0o640, None).unwrap();
        let md = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!((md.mode() & 0o777, md.gid()), (0o640, NOGROUP));

        // Moved aside and replaced by a symlink: set_access still reaches
        // our socket and leaves the link's target alone.
        let v = victim(tmp.path());
        let aside = tmp.path().join("aside.sock");
        std::fs::rename(&path, &aside).unwrap();
        symlink(&v, &path).unwrap();
        sock.set_access(0o666, Some(0)).unwrap();
        assert_untouched(&v);
        let md = std::fs::symlink_metadata(&aside).unwrap();
        assert_eq!((md.mode() & 0o777, md.gid()), (0o666, 0));

        assert!(matches!(
            sock.set_access(0o4777, None),
            Err(SockFileError::BadMode { .. })
        ));
    }

    #[test]
    fn created_directory_modes() {
        // 077 is what the binary runs with; the modes must still be exact.
        let old_umask = nix::sys::stat::umask(Mode::from_bits_truncate(0o077));
        let tmp = tempfile::tempdir().unwrap();
        let private = tmp.path().join("a/b/rampart");
        let _s1 = SocketFile::bind("s", &private.join("x.sock"), 0o600, None, false).unwrap();
        assert_eq!(std::fs::metadata(&private).unwrap().mode() & 0o7777, 0o700);
        assert_eq!(
            std::fs::metadata(tmp.path().join("a")).unwrap().mode() & 0o7777,
            0o700
        );
        let shared = tmp.path().join("c/rampart");
        let s2 = SocketFile::bind("s", &shared.join("x.sock"), 0o660, None, true).unwrap();
        assert_eq!(std::fs::metadata(&shared).unwrap().mode() & 0o7777, 0o711);
        assert_eq!(
            std::fs::metadata(tmp.path().join("c")).unwrap().mode() & 0o7777,
            0o711
        );
        assert!(s2.directory_warning().is_none());
        // An existing directory keeps its mode.
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
        drop(s2);
        let _s3 = SocketFile::bind("s", &shared.join("x.sock"), 0o660, None, false).unwrap();
        assert_eq!(std::fs::metadata(&shared).unwrap().mode() & 0o7777, 0o755);
        nix::sys::stat::umask(old_umask);
    }

    #[test]
    fn stale_socket_replaced_live_in_use_file_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("events.sock");
        drop(UnixListener::bind(&path).unwrap()); // stale: no listener
        let sock = bind(&path).unwrap();
        let err = bind(&path).unwrap_err();
        assert!(matches!(err, SockFileError::InUse { .. }), "{err}");
        assert!(err.to_string().contains(&path.display().to_string()));
        // The live socket survived the probe.
        let _c = UnixStream::connect(&path).unwrap();
        drop(sock);

        let live = tmp.path().join("live.sock");
        let _other = UnixListener::bind(&live).unwrap();
        assert!(matches!(bind(&live), Err(SockFileError::InUse { .. })));

        let file = tmp.path().join("notes");
        std::fs::write(&file, b"keep").unwrap();
        let err = bind(&file).unwrap_err();
        assert!(matches!(err, SockFileError::NotASocket { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "events socket {}: exists and is not a socket; refusing to remove it",
                file.display()
            )
        );
        assert_eq!(std::fs::read(&file).unwrap(), b"keep");
    }

    #[test]
    fn drop_removes_our_socket_only() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("events.sock");
        drop(bind(&path).unwrap());
        assert!(
            std::fs::symlink_metadata(&path).is_err(),
            "our socket removed"
        );

        let sock = bind(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"someone else's").unwrap();
        drop(sock);
        assert_eq!(std::fs::read(&path).unwrap(), b"someone else's");
    }

    #[test]
    fn directory_warning_for_writable_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let sock = bind(&dir.join("e.sock")).unwrap();
        let w = sock.directory_warning().expect("0777 dir warns");
        assert!(w.contains("not sticky"), "{w}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(sock.directory_warning().is_none());
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o775)).unwrap();
        assert!(sock.directory_warning().unwrap().contains("its group"));
    }

    #[test]
    fn long_directory_paths_bind() {
        // Longer than sun_path: binding through the directory fd still works.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d".repeat(60)).join("e".repeat(60));
        let path = dir.join("events.sock");
        assert!(path.as_os_str().len() > 108);
        let sock = bind(&path).unwrap();
        assert!(std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_socket());
        drop(sock);
        let err = bind(&dir.join("n".repeat(100))).unwrap_err();
        assert!(matches!(err, SockFileError::BadPath { .. }), "{err}");
    }

    #[test]
    fn write_file_atomic_replaces_symlink_not_target() {
        let tmp = tempfile::tempdir().unwrap();
        let v = victim(tmp.path());
        let path = tmp.path().join("state.json");
        symlink(&v, &path).unwrap();
        write_file_atomic(&path, b"{\"new\":1}").unwrap();
        let md = std::fs::symlink_metadata(&path).unwrap();
        assert!(md.file_type().is_file());
        assert_eq!(md.mode() & 0o7777, 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"new\":1}");
        assert_untouched(&v);

        write_file_atomic_mode(&path, b"two", 0o644).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o644);
        // No temp files left behind.
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn resolve_group_through_nss() {
        assert_eq!(resolve_group("root").unwrap(), 0);
        assert_eq!(resolve_group("nogroup").unwrap(), NOGROUP);
        assert_eq!(resolve_group("1234").unwrap(), 1234);
        let err = resolve_group("no-such-group-rampart").unwrap_err();
        assert!(matches!(err, SockFileError::UnknownGroup { .. }));
        assert_eq!(
            err.to_string(),
            "group \"no-such-group-rampart\": no such group (looked up through NSS)"
        );
        assert!(resolve_group("").is_err());
        assert!(resolve_group("4294967295").is_err());
    }
}
