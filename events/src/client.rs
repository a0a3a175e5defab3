//! The consumer loop behind `rampart events`: like `tail -F`, it waits for
//! the event socket to appear, reads records, and reconnects when the
//! dataplane goes away.

use std::io::{self, BufRead, BufReader, Read};
use std::ops::ControlFlow;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::decode::{decode, read_frame, DecodeError, NameCache, Record, MAX_FRAME};

/// What the consumer loop reports to its handler.
#[derive(Debug)]
pub enum ConsumeEvent<'a> {
    /// Connected to the socket (again).
    Connected,
    /// A record, with the names learned so far (already updated with it if
    /// it is a hello or name table).
    Record(&'a Record<'a>, &'a NameCache),
    /// A frame that failed to decode (skipped).
    BadRecord(&'a DecodeError),
    /// The connection ended; the loop will wait and reconnect.
    Disconnected(&'a io::Error),
    /// The dataplane closed the connection before its hello: every
    /// consumer slot is taken by consumers that keep up. The loop tries
    /// again, less often each time (up to [`MAX_REFUSED_RETRY`]).
    Refused,
    /// Every record received so far has been handled and the next read may
    /// wait: the moment to flush buffered output.
    Idle,
    /// The socket could not be reached (no such file, or nobody listens
    /// on it); the loop waits and tries again.
    Waiting(&'a io::Error),
}

#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    /// Delay between connection attempts while the socket is absent.
    pub retry_interval: Duration,
    /// Return instead of reconnecting when the connection ends.
    pub once: bool,
    /// Checked at least every `retry_interval`; set it to stop the loop.
    pub stop: Option<Arc<AtomicBool>>,
}

impl Default for ConsumeOptions {
    fn default() -> Self {
        ConsumeOptions {
            retry_interval: Duration::from_millis(500),
            once: false,
            stop: None,
        }
    }
}

impl ConsumeOptions {
    fn stopped(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
    }
}

/// Runs until `handler` returns `Break`, `opts.stop` is set, or (with
/// `opts.once`) the connection ends. The name cache starts empty on each
/// connection (the hub sends hello + names first).
pub fn consume<F>(socket_path: &Path, opts: &ConsumeOptions, mut handler: F) -> io::Result<()>
where
    F: FnMut(ConsumeEvent<'_>) -> ControlFlow<()>,
{
    let mut names = NameCache::new();
    consume_frames(socket_path, opts, |event| match event {
        FrameEvent::Connected => {
            names = NameCache::new();
            handler(ConsumeEvent::Connected)
        }
        FrameEvent::Frame(frame) => match decode(frame) {
            Ok(rec) => {
                names.observe(&rec);
                handler(ConsumeEvent::Record(&rec, &names))
            }
            Err(e) => handler(ConsumeEvent::BadRecord(&e)),
        },
        FrameEvent::Disconnected(e) => handler(ConsumeEvent::Disconnected(e)),
        FrameEvent::Refused => handler(ConsumeEvent::Refused),
        FrameEvent::Idle => handler(ConsumeEvent::Idle),
        FrameEvent::Waiting(e) => handler(ConsumeEvent::Waiting(e)),
    })
}

/// What [`consume_frames`] reports: [`ConsumeEvent`] before decoding.
#[derive(Debug)]
pub enum FrameEvent<'a> {
    Connected,
    /// One record's bytes, with its size prefix.
    Frame(&'a [u8]),
    Disconnected(&'a io::Error),
    Refused,
    Idle,
    Waiting(&'a io::Error),
}

/// The longest wait between two attempts after refusals.
pub const MAX_REFUSED_RETRY: Duration = Duration::from_secs(2);

/// The loop of [`consume`] without decoding: each record's bytes as they
/// came (for a consumer that hands them on, e.g. to merge streams).
pub fn consume_frames<F>(
    socket_path: &Path,
    opts: &ConsumeOptions,
    mut handler: F,
) -> io::Result<()>
where
    F: FnMut(FrameEvent<'_>) -> ControlFlow<()>,
{
    let mut frame = Vec::with_capacity(4096);
    // Reached a dataplane before (and was served, or refused a slot).
    let mut reached_before = false;
    let mut refused_retry = opts.retry_interval;
    loop {
        if opts.stopped() {
            return Ok(());
        }
        let stream = match UnixStream::connect(socket_path) {
            Ok(s) => s,
            Err(e) => {
                // `once` waits for the first connection like any consumer,
                // but does not come back after it ends, nor wait for a
                // dataplane that refused it and then went away.
                if opts.once && reached_before {
                    return Err(e);
                }
                if handler(FrameEvent::Waiting(&e)).is_break() {
                    return Ok(());
                }
                std::thread::sleep(opts.retry_interval);
                continue;
            }
        };
        stream.set_read_timeout(Some(opts.retry_interval))?;
        let mut reader = BufReader::with_capacity(256 << 10, TimeoutRetry { s: stream, opts });
        // The hub refuses a consumer by closing before its hello.
        match reader.fill_buf() {
            Ok([]) => {
                reached_before = true;
                if handler(FrameEvent::Refused).is_break() {
                    return Ok(());
                }
                std::thread::sleep(refused_retry);
                refused_retry = (refused_retry * 2).min(MAX_REFUSED_RETRY.max(opts.retry_interval));
                continue;
            }
            Err(_) if opts.stopped() => return Ok(()),
            _ => {}
        }
        refused_retry = opts.retry_interval;
        reached_before = true;
        if handler(FrameEvent::Connected).is_break() {
            return Ok(());
        }
        let err = loop {
            if reader.buffer().is_empty() && handler(FrameEvent::Idle).is_break() {
                return Ok(());
            }
            // A frame wholly in the reader's buffer (all but one in each
            // buffer fill) is handed over where it lies, without a copy.
            if let Some(n) = whole_frame(reader.buffer()) {
                if handler(FrameEvent::Frame(&reader.buffer()[..n])).is_break() {
                    return Ok(());
                }
                reader.consume(n);
                continue;
            }
            match read_frame(&mut reader, &mut frame) {
                Ok(true) => {}
                Ok(false) => break io::Error::from(io::ErrorKind::UnexpectedEof),
                Err(e) => break e,
            }
            if handler(FrameEvent::Frame(&frame)).is_break() {
                return Ok(());
            }
        };
        if opts.stopped() {
            return Ok(());
        }
        if handler(FrameEvent::Disconnected(&err)).is_break() || opts.once {
            return Ok(());
        }
        std::thread::sleep(opts.retry_interval);
    }
}

/// The length (with its prefix) of the size-prefixed frame at the start of
/// `buf` if `buf` holds all of it; a prefix beyond [`MAX_FRAME`] is left
/// to [`read_frame`], which reports it.
fn whole_frame(buf: &[u8]) -> Option<usize> {
    let prefix = buf.get(..4)?;
    let n = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    (n <= MAX_FRAME && 4 + n <= buf.len()).then_some(4 + n)
}

/// Read that retries timeouts until the stop flag is set.
struct TimeoutRetry<'a> {
    s: UnixStream,
    opts: &'a ConsumeOptions,
}

impl Read for TimeoutRetry<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.s.read(buf) {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if self.opts.stopped() {
                        return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "stopped"));
                    }
                }
                r => return r,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixListener;

    /// Frames arrive in pieces of every size, straddle the reader's buffer
    /// and one is larger than it: each is handed over whole, in order,
    /// byte for byte, whether it was read in place or copied.
    #[test]
    fn frames_come_whole_and_in_order_however_the_stream_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let mut sent = Vec::new();
        let mut stream = Vec::new();
        for i in 0..3000usize {
            // Mostly small records, now and then one of 300 KiB (more than
            // the 256 KiB reader buffer).
            let len = if i % 1000 == 999 {
                300 << 10
            } else {
                1 + i * 7 % 500
            };
            let body: Vec<u8> = (0..len).map(|j| (i + j) as u8).collect();
            let mut frame = (len as u32).to_le_bytes().to_vec();
            frame.extend_from_slice(&body);
            stream.extend_from_slice(&frame);
            sent.push(frame);
        }
        let writer = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut at = 0;
            let mut piece = 1;
            while at < stream.len() {
                let end = (at + piece).min(stream.len());
                s.write_all(&stream[at..end]).unwrap();
                at = end;
                piece = piece * 7 % 70_001 + 1;
            }
        });
        let opts = ConsumeOptions {
            retry_interval: Duration::from_millis(10),
            once: true,
            stop: None,
        };
        let mut got = Vec::new();
        consume_frames(&path, &opts, |ev| {
            if let FrameEvent::Frame(f) = ev {
                got.push(f.to_vec());
            }
            ControlFlow::Continue(())
        })
        .unwrap();
        writer.join().unwrap();
        assert_eq!(got.len(), sent.len());
        assert!(got == sent, "a frame differs");
    }
}
