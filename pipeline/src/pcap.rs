//! Classic libpcap capture files: the reader feeds `rampart trace` and
//! tests, the writer builds the demo and test captures. Control-path code
//! (it allocates); the dataplane reads captures through DPDK's `net_pcap`.

use std::io::{self, Read, Write};

/// Link type of Ethernet captures.
pub const LINKTYPE_ETHERNET: u32 = 1;

/// Largest record accepted, whatever snap length a file claims (libpcap's
/// `MAXIMUM_SNAPLEN`): a record is read into memory at its stated length.
pub const MAX_RECORD_LEN: u32 = 262_144;

const MAGIC_USEC: u32 = 0xa1b2_c3d4;
const MAGIC_NSEC: u32 = 0xa1b2_3c4d;

/// One captured frame and its timestamp in nanoseconds since the epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub ts_ns: u64,
    pub data: Vec<u8>,
    /// Length on the wire (may exceed `data.len()` when the capture was cut).
    pub orig_len: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    #[error("not a pcap file (magic {0:#010x}); pcapng is not supported, convert with `editcap -F pcap`")]
    BadMagic(u32),
    #[error("unsupported link type {0}; only Ethernet (1) captures can be replayed")]
    LinkType(u32),
    #[error("record {index}: length {len} exceeds the snap length {snaplen}")]
    BadRecord {
        index: usize,
        len: u32,
        snaplen: u32,
    },
    #[error("truncated pcap file: {0}")]
    Truncated(&'static str),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Reads every record of a capture.
pub fn read_all(mut input: impl Read) -> Result<Vec<Record>, PcapError> {
    let mut header = [0u8; 24];
    input
        .read_exact(&mut header)
        .map_err(|_| PcapError::Truncated("file header"))?;
    let magic_le = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes"));
    let (big_endian, nanos) = match magic_le {
        MAGIC_USEC => (false, false),
        MAGIC_NSEC => (false, true),
        m if m.swap_bytes() == MAGIC_USEC => (true, false),
        m if m.swap_bytes() == MAGIC_NSEC => (true, true),
        m => return Err(PcapError::BadMagic(m)),
    };
    let word = |b: &[u8]| {
        let v = u32::from_le_bytes(b.try_into().expect("4 bytes"));
        if big_endian {
            v.swap_bytes()
        } else {
            v
        }
    };
    let snaplen = word(&header[16..20]).clamp(65535, MAX_RECORD_LEN);
    let linktype = word(&header[20..24]) & 0x0fff_ffff;
    if linktype != LINKTYPE_ETHERNET {
        return Err(PcapError::LinkType(linktype));
    }
    let mut out = Vec::new();
    loop {
        let mut rec = [0u8; 16];
        match read_full(&mut input, &mut rec)? {
            0 => break,
            16 => {}
            _ => return Err(PcapError::Truncated("record header")),
        }
        let secs = word(&rec[0..4]) as u64;
        let frac = word(&rec[4..8]) as u64;
        let incl = word(&rec[8..12]);
        let orig = word(&rec[12..16]);
        if incl > snaplen {
            return Err(PcapError::BadRecord {
                index: out.len(),
                len: incl,
                snaplen,
            });
        }
        let mut data = vec![0u8; incl as usize];
        input
            .read_exact(&mut data)
            .map_err(|_| PcapError::Truncated("record data"))?;
        let ts_ns = secs * 1_000_000_000 + if nanos { frac } else { frac * 1000 };
        out.push(Record {
            ts_ns,
            data,
            orig_len: orig,
        });
    }
    Ok(out)
}

fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// Writes a nanosecond-resolution Ethernet capture.
pub struct Writer<W: Write> {
    out: W,
}

impl<W: Write> Writer<W> {
    pub fn new(mut out: W) -> io::Result<Writer<W>> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&MAGIC_NSEC.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&65535u32.to_le_bytes());
        h.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&h)?;
        Ok(Writer { out })
    }

    pub fn write(&mut self, ts_ns: u64, frame: &[u8]) -> io::Result<()> {
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&((ts_ns / 1_000_000_000) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&((ts_ns % 1_000_000_000) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        h[12..16].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(frame)
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_bytes_and_nanoseconds() {
        let mut w = Writer::new(Vec::new()).unwrap();
        w.write(1_700_000_000_123_456_789, &[1, 2, 3]).unwrap();
        w.write(1_700_000_001_000_000_000, &[0xff; 60]).unwrap();
        let bytes = w.finish().unwrap();
        let recs = read_all(&bytes[..]).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].ts_ns, 1_700_000_000_123_456_789);
        assert_eq!(recs[0].data, vec![1, 2, 3]);
        assert_eq!(recs[1].data.len(), 60);
    }

    #[test]
    fn reads_microsecond_big_endian_files() {
        // A big-endian microsecond header, one 2-byte record at 5 s + 7 us.
        let mut f = vec![0xa1, 0xb2, 0xc3, 0xd4, 0, 2, 0, 4];
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&[0, 0, 0xff, 0xff, 0, 0, 0, 1]);
        f.extend_from_slice(&[0, 0, 0, 5, 0, 0, 0, 7, 0, 0, 0, 2, 0, 0, 0, 2, 0xaa, 0xbb]);
        let recs = read_all(&f[..]).unwrap();
        assert_eq!(recs[0].ts_ns, 5_000_007_000);
        assert_eq!(recs[0].data, vec![0xaa, 0xbb]);
    }

    #[test]
    fn rejects_garbage_and_truncation_without_panicking() {
        assert!(matches!(
            read_all(&[0u8; 3][..]),
            Err(PcapError::Truncated(_))
        ));
        assert!(matches!(
            read_all(&[0u8; 24][..]),
            Err(PcapError::BadMagic(0))
        ));
        let mut w = Writer::new(Vec::new()).unwrap();
        w.write(0, &[1; 10]).unwrap();
        let bytes = w.finish().unwrap();
        assert!(matches!(
            read_all(&bytes[..bytes.len() - 1]),
            Err(PcapError::Truncated("record data"))
        ));
    }

    #[test]
    fn a_huge_snap_length_does_not_allow_huge_records() {
        // Found by the pcap_trace fuzz target: a header claiming a 4 GiB
        // snap length let a record header ask for a 4 GiB buffer.
        let mut w = Writer::new(Vec::new()).unwrap();
        w.write(0, &[1; 10]).unwrap();
        let mut bytes = w.finish().unwrap();
        bytes[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        bytes[32..36].copy_from_slice(&0xf000_0000u32.to_le_bytes());
        assert!(matches!(
            read_all(&bytes[..]),
            Err(PcapError::BadRecord {
                index: 0,
                len: 0xf000_0000,
                snaplen: MAX_RECORD_LEN
            })
        ));
        // Records up to the limit still read (jumbo frames and more).
        let mut w = Writer::new(Vec::new()).unwrap();
        w.write(0, &vec![7; MAX_RECORD_LEN as usize]).unwrap();
        let mut bytes = w.finish().unwrap();
        bytes[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(read_all(&bytes[..]).unwrap()[0].data.len(), 262_144);
    }
}
