//! ARP view (RFC 826): recognised so the firewall can pass it through; only
//! the fixed part and the address fields it announces are validated.

use super::{be16, Malformed};

mod field {
    use core::ops::Range;
    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    pub const ADDRS: usize = 8;
}

/// Length of the fixed part (before the addresses).
pub const FIXED_LEN: usize = field::ADDRS;

/// Hardware type Ethernet.
pub const HARDWARE_ETHERNET: u16 = 1;

/// ARP operations.
pub mod operation {
    pub const REQUEST: u16 = 1;
    pub const REPLY: u16 = 2;
}

/// A view of an ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Packet<T>, Malformed> {
        let p = Packet::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The fixed part and both address pairs must be present.
    pub fn check_len(&self) -> Result<(), Malformed> {
        let b = self.buffer.as_ref();
        if b.len() < FIXED_LEN || b.len() < self.total_len() {
            Err(Malformed::TruncatedArp)
        } else {
            Ok(())
        }
    }

    /// Length announced by the hardware and protocol address lengths.
    fn total_len(&self) -> usize {
        let b = self.buffer.as_ref();
        FIXED_LEN + 2 * (usize::from(b[field::HLEN]) + usize::from(b[field::PLEN]))
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn hardware_type(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::HTYPE])
    }

    pub fn protocol_type(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::PTYPE])
    }

    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    pub fn operation(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::OPER])
    }

    fn addr(&self, index: usize) -> &[u8] {
        let h = usize::from(self.hardware_len());
        let p = usize::from(self.protocol_len());
        let (start, len) = match index {
            0 => (field::ADDRS, h),
            1 => (field::ADDRS + h, p),
            2 => (field::ADDRS + h + p, h),
            _ => (field::ADDRS + 2 * h + p, p),
        };
        &self.buffer.as_ref()[start..start + len]
    }

    pub fn sender_hardware_addr(&self) -> &[u8] {
        self.addr(0)
    }

    pub fn sender_protocol_addr(&self) -> &[u8] {
        self.addr(1)
    }

    pub fn target_hardware_addr(&self) -> &[u8] {
        self.addr(2)
    }

    pub fn target_protocol_addr(&self) -> &[u8] {
        self.addr(3)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_hardware_type(&mut self, v: u16) {
        self.buffer.as_mut()[field::HTYPE].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_protocol_type(&mut self, v: u16) {
        self.buffer.as_mut()[field::PTYPE].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_hardware_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::HLEN] = v;
    }

    pub fn set_protocol_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::PLEN] = v;
    }

    pub fn set_operation(&mut self, v: u16) {
        self.buffer.as_mut()[field::OPER].copy_from_slice(&v.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::ethertype;

    #[rustfmt::skip]
    const REQUEST: [u8; 28] = [
        0x00, 0x01,                         // hardware type Ethernet
        0x08, 0x00,                         // protocol type IPv4
        0x06,                               // hardware address length
        0x04,                               // protocol address length
        0x00, 0x01,                         // operation request
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // sender MAC
        0x0a, 0x00, 0x00, 0x01,             // sender IP 10.0.0.1
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // target MAC (unknown)
        0x0a, 0x00, 0x00, 0x02,             // target IP 10.0.0.2
    ];

    #[test]
    fn reads_request() {
        let p = Packet::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(p.hardware_type(), HARDWARE_ETHERNET);
        assert_eq!(p.protocol_type(), ethertype::IPV4);
        assert_eq!(p.operation(), operation::REQUEST);
        assert_eq!(p.sender_hardware_addr(), &[2, 0, 0, 0, 0, 1]);
        assert_eq!(p.sender_protocol_addr(), &[10, 0, 0, 1]);
        assert_eq!(p.target_hardware_addr(), &[0; 6]);
        assert_eq!(p.target_protocol_addr(), &[10, 0, 0, 2]);
    }

    #[test]
    fn writes_fixed_part() {
        let mut b = [0u8; 8];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_hardware_type(HARDWARE_ETHERNET);
        p.set_protocol_type(ethertype::IPV4);
        p.set_hardware_len(6);
        p.set_protocol_len(4);
        p.set_operation(operation::REQUEST);
        assert_eq!(b, REQUEST[..8]);
    }

    #[test]
    fn truncated() {
        assert_eq!(
            Packet::new_checked(&REQUEST[..7]).unwrap_err(),
            Malformed::TruncatedArp
        );
        assert_eq!(
            Packet::new_checked(&REQUEST[..27]).unwrap_err(),
            Malformed::TruncatedArp
        );
        // Announced lengths of 255 cannot fit.
        let mut big = REQUEST;
        big[4] = 0xff;
        assert_eq!(
            Packet::new_checked(&big[..]).unwrap_err(),
            Malformed::TruncatedArp
        );
    }
}
