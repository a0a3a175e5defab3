//! TCP header view (RFC 9293).

use super::{be16, be32, checksum, Malformed};

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ_NUM: Range<usize> = 4..8;
    pub const ACK_NUM: Range<usize> = 8..12;
    pub const DOFF_FLAGS: Range<usize> = 12..14;
    pub const WIN_SIZE: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = field::URGENT.end;

/// TCP flags (the low 9 bits of the data-offset/flags word).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u16);

impl Flags {
    pub const EMPTY: Flags = Flags(0);
    pub const FIN: Flags = Flags(0x001);
    pub const SYN: Flags = Flags(0x002);
    pub const RST: Flags = Flags(0x004);
    pub const PSH: Flags = Flags(0x008);
    pub const ACK: Flags = Flags(0x010);
    pub const URG: Flags = Flags(0x020);
    pub const ECE: Flags = Flags(0x040);
    pub const CWR: Flags = Flags(0x080);
    /// ECN nonce (RFC 3540, historic; now AE in AccECN).
    pub const NS: Flags = Flags(0x100);

    pub const fn bits(self) -> u16 {
        self.0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any flag of `other` is set.
    pub const fn intersects(self, other: Flags) -> bool {
        self.0 & other.0 != 0
    }

    pub const fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }
}

impl core::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl core::ops::BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

impl core::ops::BitAnd for Flags {
    type Output = Flags;
    fn bitand(self, rhs: Flags) -> Flags {
        Flags(self.0 & rhs.0)
    }
}

impl core::fmt::Debug for Flags {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const NAMES: [&str; 9] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR", "NS"];
        f.write_str("Flags(")?;
        let mut first = true;
        for (i, n) in NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(n)?;
                first = false;
            }
        }
        f.write_str(")")
    }
}

/// A view of a TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Validates the fixed header and the data offset against the buffer
    /// (which must end where the IP payload ends).
    pub fn new_checked(buffer: T) -> Result<Packet<T>, Malformed> {
        let p = Packet::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<(), Malformed> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Malformed::TruncatedTcp);
        }
        let hl = self.header_len();
        if hl < HEADER_LEN || hl > len {
            return Err(Malformed::BadTcpDataOffset);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn src_port(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::SRC_PORT])
    }

    pub fn dst_port(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::DST_PORT])
    }

    pub fn seq_number(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::SEQ_NUM])
    }

    pub fn ack_number(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::ACK_NUM])
    }

    /// Header length in bytes (data offset * 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DOFF_FLAGS.start] >> 4) * 4
    }

    pub fn flags(&self) -> Flags {
        Flags(be16(&self.buffer.as_ref()[field::DOFF_FLAGS]) & 0x01ff)
    }

    pub fn window_len(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::WIN_SIZE])
    }

    pub fn checksum(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    pub fn urgent_at(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::URGENT])
    }

    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// Sequence space the segment occupies: payload plus SYN and FIN.
    pub fn segment_len(&self) -> u32 {
        let f = self.flags();
        self.payload().len() as u32
            + u32::from(f.contains(Flags::SYN))
            + u32::from(f.contains(Flags::FIN))
    }

    /// Verifies the checksum over the whole buffer with a pseudo-header sum
    /// from [`checksum::pseudo_header`] (length = buffer length).
    pub fn verify_checksum(&self, pseudo: u16) -> bool {
        checksum::verify_with(pseudo, self.buffer.as_ref())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_src_port(&mut self, v: u16) {
        self.buffer.as_mut()[field::SRC_PORT].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_dst_port(&mut self, v: u16) {
        self.buffer.as_mut()[field::DST_PORT].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_seq_number(&mut self, v: u32) {
        self.buffer.as_mut()[field::SEQ_NUM].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_ack_number(&mut self, v: u32) {
        self.buffer.as_mut()[field::ACK_NUM].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the header length (bytes, a multiple of 4) and the flags.
    pub fn set_header_len_and_flags(&mut self, header_len: usize, flags: Flags) {
        let v = (((header_len / 4) as u16 & 0x0f) << 12) | (flags.0 & 0x01ff);
        self.buffer.as_mut()[field::DOFF_FLAGS].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_window_len(&mut self, v: u16) {
        self.buffer.as_mut()[field::WIN_SIZE].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_urgent_at(&mut self, v: u16) {
        self.buffer.as_mut()[field::URGENT].copy_from_slice(&v.to_be_bytes());
    }

    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[HEADER_LEN..hl]
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[hl..]
    }

    /// Computes and stores the checksum over the whole buffer.
    pub fn fill_checksum(&mut self, pseudo: u16) {
        self.set_checksum(0);
        let c = checksum::checksum_with(pseudo, self.buffer.as_ref());
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::proto;

    #[rustfmt::skip]
    const SYN: [u8; 28] = [
        0xc3, 0x50,             // source port 50000
        0x00, 0x50,             // destination port 80
        0x00, 0x00, 0x03, 0xe8, // sequence number 1000
        0x00, 0x00, 0x00, 0x00, // acknowledgment number 0
        0x70,                   // data offset 7 (28 bytes), reserved 0, NS 0
        0x02,                   // flags SYN
        0xff, 0xff,             // window 65535
        0x00, 0x00,             // checksum (filled in the test)
        0x00, 0x00,             // urgent pointer
        0x02, 0x04, 0x05, 0xb4, // option MSS 1460
        0x01, 0x01, 0x04, 0x02, // NOP, NOP, SACK permitted
    ];

    fn pseudo() -> u16 {
        checksum::pseudo_header_v4(
            [192, 0, 2, 1],
            [198, 51, 100, 2],
            proto::TCP,
            SYN.len() as u16,
        )
    }

    #[test]
    fn reads_fields() {
        let mut b = SYN;
        Packet::new_unchecked(&mut b[..]).fill_checksum(pseudo());
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (50000, 80));
        assert_eq!((p.seq_number(), p.ack_number()), (1000, 0));
        assert_eq!(p.header_len(), 28);
        assert_eq!(p.flags(), Flags::SYN);
        assert_eq!(p.window_len(), 65535);
        assert_eq!(p.urgent_at(), 0);
        assert_eq!(p.options(), &SYN[20..]);
        assert!(p.payload().is_empty());
        assert_eq!(p.segment_len(), 1);
        assert!(p.verify_checksum(pseudo()));
        assert!(!p.verify_checksum(pseudo().wrapping_add(1)));
    }

    #[test]
    fn round_trips_through_setters() {
        let mut b = [0u8; 28];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_src_port(50000);
        p.set_dst_port(80);
        p.set_seq_number(1000);
        p.set_ack_number(0);
        p.set_header_len_and_flags(28, Flags::SYN);
        p.set_window_len(65535);
        p.set_urgent_at(0);
        p.options_mut().copy_from_slice(&SYN[20..]);
        assert_eq!(b, SYN);
    }

    #[test]
    fn flags_newtype() {
        let f = Flags::SYN | Flags::ACK;
        assert!(
            f.contains(Flags::SYN)
                && f.contains(Flags::ACK)
                && !f.contains(Flags::SYN | Flags::FIN)
        );
        assert!(f.intersects(Flags::SYN | Flags::FIN));
        assert_eq!(f & Flags::ACK, Flags::ACK);
        assert_eq!(format!("{f:?}"), "Flags(SYN|ACK)");
        let all = [
            Flags::FIN,
            Flags::SYN,
            Flags::RST,
            Flags::PSH,
            Flags::ACK,
            Flags::URG,
            Flags::ECE,
            Flags::CWR,
        ];
        assert_eq!(all.iter().fold(Flags::EMPTY, |a, b| a | *b).bits(), 0xff);
        let mut b = SYN;
        b[12] = 0x51; // data offset 5, NS set
        b[13] = 0xff;
        assert_eq!(Packet::new_checked(&b[..]).unwrap().flags().bits(), 0x1ff);
    }

    #[test]
    fn malformed() {
        assert_eq!(
            Packet::new_checked(&SYN[..19]).unwrap_err(),
            Malformed::TruncatedTcp
        );
        let mut b = SYN;
        b[12] = 0x40; // data offset 4
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            Malformed::BadTcpDataOffset
        );
        b[12] = 0x80; // data offset 8 = 32 bytes > 28
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            Malformed::BadTcpDataOffset
        );
    }
}
