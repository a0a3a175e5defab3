//! 802.1Q / 802.1ad VLAN tag view: the 4 bytes that follow a VLAN TPID
//! (tag control information, then the encapsulated EtherType).

use super::{be16, Malformed};

mod field {
    use core::ops::{Range, RangeFrom};
    pub const TCI: Range<usize> = 0..2;
    pub const ETHERTYPE: Range<usize> = 2..4;
    pub const PAYLOAD: RangeFrom<usize> = 4..;
}

/// Length of one tag (after its TPID).
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// A view of one VLAN tag and what follows it.
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

    pub fn check_len(&self) -> Result<(), Malformed> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Malformed::TruncatedVlan)
        } else {
            Ok(())
        }
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Tag control information: PCP (3 bits), DEI (1), VID (12).
    pub fn tci(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::TCI])
    }

    /// Priority code point.
    pub fn pcp(&self) -> u8 {
        (self.tci() >> 13) as u8
    }

    /// Drop eligible indicator.
    pub fn dei(&self) -> bool {
        self.tci() & 0x1000 != 0
    }

    /// VLAN identifier.
    pub fn vid(&self) -> u16 {
        self.tci() & 0x0fff
    }

    /// The encapsulated EtherType (another TPID when tags are stacked).
    pub fn ethertype(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::ETHERTYPE])
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_tci(&mut self, tci: u16) {
        self.buffer.as_mut()[field::TCI].copy_from_slice(&tci.to_be_bytes());
    }

    /// Sets the VID, keeping PCP and DEI.
    pub fn set_vid(&mut self, vid: u16) {
        let tci = (self.tci() & 0xf000) | (vid & 0x0fff);
        self.set_tci(tci);
    }

    pub fn set_ethertype(&mut self, ethertype: u16) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&ethertype.to_be_bytes());
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::{self, ethertype};

    #[rustfmt::skip]
    const QINQ: [u8; 22] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // destination MAC (broadcast)
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // source MAC
        0x88, 0xa8,                         // TPID 802.1ad (S-tag)
        0xa0, 0x64,                         // PCP 5, DEI 0, VID 100
        0x81, 0x00,                         // TPID 802.1Q (C-tag)
        0x10, 0x07,                         // PCP 0, DEI 1, VID 7
        0x08, 0x06,                         // EtherType ARP
    ];

    #[test]
    fn reads_stacked_tags() {
        let eth = ethernet::Frame::new_checked(&QINQ[..]).unwrap();
        assert_eq!(eth.ethertype(), ethertype::QINQ);
        let outer = Packet::new_checked(eth.payload()).unwrap();
        assert_eq!((outer.pcp(), outer.dei(), outer.vid()), (5, false, 100));
        assert_eq!(outer.ethertype(), ethertype::VLAN);
        let inner = Packet::new_checked(outer.payload()).unwrap();
        assert_eq!((inner.pcp(), inner.dei(), inner.vid()), (0, true, 7));
        assert_eq!(inner.ethertype(), ethertype::ARP);
    }

    #[test]
    fn writes_tag() {
        let mut b = [0u8; 4];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_tci(0xa000);
        p.set_vid(100);
        p.set_ethertype(ethertype::VLAN);
        assert_eq!(b, QINQ[14..18]);
    }

    #[test]
    fn truncated() {
        assert_eq!(
            Packet::new_checked(&QINQ[14..17]).unwrap_err(),
            Malformed::TruncatedVlan
        );
    }
}
