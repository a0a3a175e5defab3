//! UDP header view (RFC 768).

use super::{be16, checksum, Malformed};

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

pub const HEADER_LEN: usize = field::CHECKSUM.end;

/// A view of a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Validates the header and the length field against the buffer (the IP
    /// payload; the length field may be shorter).
    pub fn new_checked(buffer: T) -> Result<Packet<T>, Malformed> {
        let p = Packet::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<(), Malformed> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Malformed::TruncatedUdp);
        }
        let l = usize::from(self.len());
        if l < HEADER_LEN || l > len {
            return Err(Malformed::BadUdpLength);
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

    /// The length field (header plus payload).
    pub fn len(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// Whether the length field is zero (never true for a checked view).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn checksum(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// The payload, bounded by the length field.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// Verifies the checksum (datagram bounded by the length field) with a
    /// pseudo-header sum; a zero checksum (none, IPv4 only) passes.
    pub fn verify_checksum(&self, pseudo: u16) -> bool {
        self.checksum() == 0
            || checksum::verify_with(pseudo, &self.buffer.as_ref()[..usize::from(self.len())])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_src_port(&mut self, v: u16) {
        self.buffer.as_mut()[field::SRC_PORT].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_dst_port(&mut self, v: u16) {
        self.buffer.as_mut()[field::DST_PORT].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_len(&mut self, v: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let l = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..l]
    }

    /// Computes and stores the checksum (0 is sent as 0xffff).
    pub fn fill_checksum(&mut self, pseudo: u16) {
        self.set_checksum(0);
        let l = usize::from(self.len());
        let c = checksum::checksum_with(pseudo, &self.buffer.as_ref()[..l]);
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::proto;

    #[rustfmt::skip]
    const DNS: [u8; 12] = [
        0xd4, 0x31,             // source port 54321
        0x00, 0x35,             // destination port 53
        0x00, 0x0c,             // length 12
        0x00, 0x00,             // checksum (filled in the test)
        0x12, 0x34, 0x01, 0x00, // payload: DNS id, flags
    ];

    fn pseudo() -> u16 {
        checksum::pseudo_header_v6(
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0xff; 16],
            proto::UDP,
            12,
        )
    }

    #[test]
    fn reads_fields() {
        let mut b = DNS;
        Packet::new_unchecked(&mut b[..]).fill_checksum(pseudo());
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.len()), (54321, 53, 12));
        assert_eq!(p.payload(), &[0x12, 0x34, 0x01, 0x00]);
        assert!(p.verify_checksum(pseudo()));
        assert!(!p.is_empty());
    }

    #[test]
    fn round_trips_through_setters() {
        let mut b = [0u8; 12];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_src_port(54321);
        p.set_dst_port(53);
        p.set_len(12);
        p.payload_mut().copy_from_slice(&DNS[8..]);
        assert_eq!(b, DNS);
    }

    #[test]
    fn malformed() {
        assert_eq!(
            Packet::new_checked(&DNS[..7]).unwrap_err(),
            Malformed::TruncatedUdp
        );
        let mut b = DNS;
        b[5] = 7; // length below the header
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            Malformed::BadUdpLength
        );
        b[5] = 13; // length beyond the buffer
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            Malformed::BadUdpLength
        );
        b[5] = 10; // shorter than the buffer: fine, payload bounded by it
        assert_eq!(Packet::new_checked(&b[..]).unwrap().payload().len(), 2);
    }
}
