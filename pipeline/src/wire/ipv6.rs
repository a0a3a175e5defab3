//! IPv6 header view (RFC 8200) and a bounded extension-header walker.

use super::{be16, be32, Malformed};

mod field {
    use core::ops::Range;
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const PAYLOAD_LEN: Range<usize> = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Range<usize> = 8..24;
    pub const DST_ADDR: Range<usize> = 24..40;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// Most extension headers the walker accepts before giving up with
/// [`Malformed::Ipv6ExtChainTooLong`].
pub const MAX_EXT_HEADERS: usize = 8;

/// Next-header values of the extension headers and terminators.
pub mod next_header {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    /// Encapsulating Security Payload: the walk stops (its payload is opaque).
    pub const ESP: u8 = 50;
    pub const AUTH: u8 = 51;
    /// No next header: the walk stops, nothing follows.
    pub const NO_NEXT_HEADER: u8 = 59;
    pub const DEST_OPTIONS: u8 = 60;
    pub const MOBILITY: u8 = 135;
    pub const HIP: u8 = 139;
    pub const SHIM6: u8 = 140;
}

/// Whether a next-header value is an extension header the walker steps
/// over (ESP and No Next Header end the walk as the upper layer).
#[inline(always)]
pub const fn is_extension_header(nh: u8) -> bool {
    matches!(
        nh,
        next_header::HOP_BY_HOP
            | next_header::ROUTING
            | next_header::FRAGMENT
            | next_header::AUTH
            | next_header::DEST_OPTIONS
            | next_header::MOBILITY
            | next_header::HIP
            | next_header::SHIM6
    )
}

/// The contents of a fragment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fragment {
    /// Fragment offset in bytes.
    pub offset: u16,
    pub more_fragments: bool,
    pub ident: u32,
}

/// One extension header found by the walker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtHeader {
    /// Its next-header value (what it is).
    pub kind: u8,
    /// Offset from the start of the IPv6 header.
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
    /// The next-header value it carries (what follows it).
    pub next_header: u8,
    /// Set for a fragment header.
    pub fragment: Option<Fragment>,
}

/// Iterator over the extension headers of a packet. Bounded: after
/// [`MAX_EXT_HEADERS`] headers it yields `Err(Ipv6ExtChainTooLong)`; a header
/// running past the payload yields `Err(TruncatedIpv6Ext)`; either ends the
/// iteration. The walk also ends after the fragment header of a non-first
/// fragment (what follows is not a header).
#[derive(Debug, Clone)]
pub struct ExtHeaders<'a> {
    /// The IPv6 packet up to the end of its payload.
    packet: &'a [u8],
    offset: usize,
    next: u8,
    count: usize,
    done: bool,
}

impl<'a> ExtHeaders<'a> {
    /// The next-header value after the last header yielded so far (the
    /// upper-layer protocol once the iterator has ended without error).
    pub fn next_header(&self) -> u8 {
        self.next
    }

    /// Offset (from the IPv6 header start) just past the last header yielded.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl Iterator for ExtHeaders<'_> {
    type Item = Result<ExtHeader, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || !is_extension_header(self.next) {
            return None;
        }
        if self.count >= MAX_EXT_HEADERS {
            self.done = true;
            return Some(Err(Malformed::Ipv6ExtChainTooLong));
        }
        let rest = self.packet.get(self.offset..).unwrap_or(&[]);
        let (Some(&nh), Some(&len_byte)) = (rest.first(), rest.get(1)) else {
            self.done = true;
            return Some(Err(Malformed::TruncatedIpv6Ext));
        };
        let len = match self.next {
            next_header::FRAGMENT => 8,
            next_header::AUTH => (usize::from(len_byte) + 2) * 4,
            _ => (usize::from(len_byte) + 1) * 8,
        };
        let Some(hdr) = rest.get(..len) else {
            self.done = true;
            return Some(Err(Malformed::TruncatedIpv6Ext));
        };
        let fragment = if self.next == next_header::FRAGMENT {
            let off_m = be16(&hdr[2..4]);
            let frag = Fragment {
                offset: off_m & 0xfff8,
                more_fragments: off_m & 1 != 0,
                ident: be32(&hdr[4..8]),
            };
            if frag.offset != 0 {
                // A non-first fragment: what follows is data, not headers.
                self.done = true;
            }
            Some(frag)
        } else {
            None
        };
        let ext = ExtHeader {
            kind: self.next,
            offset: self.offset,
            len,
            next_header: nh,
            fragment,
        };
        self.offset += len;
        self.next = nh;
        self.count += 1;
        Some(Ok(ext))
    }
}

/// Where the extension-header chain leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    /// Upper-layer protocol (TCP, UDP, ICMPv6, ESP, No Next Header...). For
    /// a non-first fragment, the next header of the fragment header.
    pub protocol: u8,
    /// Offset of the upper-layer header from the start of the IPv6 header.
    pub offset: usize,
    /// The fragment header, if any.
    pub fragment: Option<Fragment>,
    /// Number of extension headers stepped over.
    pub ext_count: u8,
}

/// A view of an IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Validates the version and the payload length against the buffer
    /// (which may be longer: Ethernet padding).
    pub fn new_checked(buffer: T) -> Result<Packet<T>, Malformed> {
        let p = Packet::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<(), Malformed> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Malformed::TruncatedIpv6);
        }
        if self.version() != 6 {
            return Err(Malformed::BadIpv6Version);
        }
        if HEADER_LEN + usize::from(self.payload_len()) > len {
            return Err(Malformed::BadIpv6PayloadLength);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn ver_tc_flow(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::VER_TC_FLOW])
    }

    pub fn version(&self) -> u8 {
        (self.ver_tc_flow() >> 28) as u8
    }

    pub fn traffic_class(&self) -> u8 {
        (self.ver_tc_flow() >> 20) as u8
    }

    pub fn dscp(&self) -> u8 {
        self.traffic_class() >> 2
    }

    pub fn ecn(&self) -> u8 {
        self.traffic_class() & 0x03
    }

    pub fn flow_label(&self) -> u32 {
        self.ver_tc_flow() & 0x000f_ffff
    }

    pub fn payload_len(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::PAYLOAD_LEN])
    }

    /// Header length plus payload length.
    pub fn total_len(&self) -> usize {
        HEADER_LEN + usize::from(self.payload_len())
    }

    /// The next header of the fixed header.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    pub fn src_addr(&self) -> [u8; 16] {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC_ADDR]);
        a
    }

    pub fn dst_addr(&self) -> [u8; 16] {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST_ADDR]);
        a
    }

    /// The payload (after the fixed header, bounded by the payload length).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.total_len()]
    }

    /// Iterator over the extension headers (never panics, even on a view
    /// made with `new_unchecked`).
    pub fn ext_headers(&self) -> ExtHeaders<'_> {
        let b = self.buffer.as_ref();
        let end = HEADER_LEN.saturating_add(b.get(4..6).map_or(0, |l| usize::from(be16(l))));
        let packet = b.get(..end).unwrap_or(b);
        ExtHeaders {
            packet,
            offset: HEADER_LEN,
            next: b
                .get(field::NEXT_HEADER)
                .copied()
                .unwrap_or(next_header::NO_NEXT_HEADER),
            count: 0,
            done: false,
        }
    }

    /// Walks the extension headers to the upper layer.
    pub fn upper_layer(&self) -> Result<UpperLayer, Malformed> {
        let mut walk = self.ext_headers();
        let mut fragment = None;
        let mut ext_count = 0u8;
        for h in &mut walk {
            let h = h?;
            ext_count += 1;
            if h.fragment.is_some() {
                fragment = h.fragment;
            }
        }
        Ok(UpperLayer {
            protocol: walk.next_header(),
            offset: walk.offset(),
            fragment,
            ext_count,
        })
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets version 6, traffic class and flow label.
    pub fn set_version_tc_flow(&mut self, traffic_class: u8, flow_label: u32) {
        let v = (6u32 << 28) | (u32::from(traffic_class) << 20) | (flow_label & 0x000f_ffff);
        self.buffer.as_mut()[field::VER_TC_FLOW].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_payload_len(&mut self, len: u16) {
        self.buffer.as_mut()[field::PAYLOAD_LEN].copy_from_slice(&len.to_be_bytes());
    }

    pub fn set_next_header(&mut self, nh: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = nh;
    }

    pub fn set_hop_limit(&mut self, hop_limit: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = hop_limit;
    }

    pub fn set_src_addr(&mut self, addr: [u8; 16]) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr);
    }

    pub fn set_dst_addr(&mut self, addr: [u8; 16]) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.total_len();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// Writes an 8-byte fragment header into `out[..8]`.
pub fn write_fragment_header(out: &mut [u8], next_header: u8, frag: Fragment) {
    out[0] = next_header;
    out[1] = 0;
    let off_m = (frag.offset & 0xfff8) | u16::from(frag.more_fragments);
    out[2..4].copy_from_slice(&off_m.to_be_bytes());
    out[4..8].copy_from_slice(&frag.ident.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::proto;

    #[rustfmt::skip]
    const HEADER: [u8; 40] = [
        0x6b, 0x81, 0x23, 0x45, // version 6, traffic class 0xb8 (DSCP 46), flow label 0x12345
        0x00, 0x00,             // payload length 0
        0x3b,                   // next header: no next header
        0x40,                   // hop limit 64
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // source 2001:db8::1
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // destination 2001:db8::2
    ];

    /// A packet: fixed header with `nh`, then `ext` bytes as payload.
    fn with_ext(nh: u8, ext: &[u8]) -> Vec<u8> {
        let mut v = HEADER.to_vec();
        v[6] = nh;
        v[4..6].copy_from_slice(&(ext.len() as u16).to_be_bytes());
        v.extend_from_slice(ext);
        v
    }

    #[test]
    fn reads_fields() {
        let p = Packet::new_checked(&HEADER[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!((p.traffic_class(), p.dscp(), p.ecn()), (0xb8, 46, 0));
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(p.payload_len(), 0);
        assert_eq!(p.next_header(), next_header::NO_NEXT_HEADER);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr()[15], 1);
        assert_eq!(p.dst_addr()[15], 2);
        assert!(p.payload().is_empty());
        let up = p.upper_layer().unwrap();
        assert_eq!(
            (up.protocol, up.offset, up.fragment, up.ext_count),
            (59, 40, None, 0)
        );
    }

    #[test]
    fn round_trips_through_setters() {
        let mut b = [0u8; 40];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_version_tc_flow(0xb8, 0x12345);
        p.set_payload_len(0);
        p.set_next_header(59);
        p.set_hop_limit(64);
        p.set_src_addr(HEADER[8..24].try_into().unwrap());
        p.set_dst_addr(HEADER[24..40].try_into().unwrap());
        assert_eq!(b, HEADER);
    }

    #[test]
    fn malformed_headers() {
        assert_eq!(
            Packet::new_checked(&HEADER[..39]).unwrap_err(),
            Malformed::TruncatedIpv6
        );
        let mut v = HEADER;
        v[0] = 0x4b;
        assert_eq!(
            Packet::new_checked(&v[..]).unwrap_err(),
            Malformed::BadIpv6Version
        );
        let mut v = HEADER;
        v[5] = 1; // payload length 1, no payload bytes
        assert_eq!(
            Packet::new_checked(&v[..]).unwrap_err(),
            Malformed::BadIpv6PayloadLength
        );
    }

    #[rustfmt::skip]
    const CHAIN: [u8; 48] = [
        // hop-by-hop options (8 bytes)
        0x2b,                   // next header: routing
        0x00,                   // hdr ext len 0 -> 8 bytes
        0x01, 0x04, 0, 0, 0, 0, // PadN option, 4 bytes of padding
        // routing (24 bytes)
        0x2c,                   // next header: fragment
        0x02,                   // hdr ext len 2 -> 24 bytes
        0x04, 0x00,             // routing type 4 (SRH), segments left 0
        0, 0, 0, 0,             // reserved
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // one segment
        // fragment (8 bytes)
        0x3c,                   // next header: destination options
        0x00,                   // reserved
        0x00, 0x01,             // offset 0, M = 1 (first fragment)
        0xca, 0xfe, 0xf0, 0x0d, // identification
        // destination options (8 bytes)
        0x11,                   // next header: UDP
        0x00,                   // 8 bytes
        0x01, 0x04, 0, 0, 0, 0, // PadN
    ];

    #[test]
    fn walks_a_chain_to_the_upper_layer() {
        let v = with_ext(next_header::HOP_BY_HOP, &CHAIN);
        let p = Packet::new_checked(&v[..]).unwrap();
        let kinds: Vec<(u8, usize, usize)> = p
            .ext_headers()
            .map(|h| h.unwrap())
            .map(|h| (h.kind, h.offset, h.len))
            .collect();
        assert_eq!(
            kinds,
            vec![(0, 40, 8), (43, 48, 24), (44, 72, 8), (60, 80, 8)]
        );
        let up = p.upper_layer().unwrap();
        assert_eq!(up.protocol, proto::UDP);
        assert_eq!(up.offset, 88);
        assert_eq!(up.ext_count, 4);
        assert_eq!(
            up.fragment,
            Some(Fragment {
                offset: 0,
                more_fragments: true,
                ident: 0xcafe_f00d
            })
        );
    }

    #[test]
    fn non_first_fragment_stops_the_walk() {
        #[rustfmt::skip]
        let frag = [
            0x06,                   // next header: TCP
            0x00,                   // reserved
            0x05, 0xc8,             // offset 1480 (185 * 8), M = 0
            0, 0, 0, 0x07,          // identification 7
            0x3c, 0x00, 0, 0, 0, 0, 0, 0, // data that looks like a header, not walked
        ];
        let v = with_ext(next_header::FRAGMENT, &frag);
        let up = Packet::new_checked(&v[..]).unwrap().upper_layer().unwrap();
        assert_eq!(up.protocol, proto::TCP);
        assert_eq!(up.offset, 48);
        assert_eq!(
            up.fragment,
            Some(Fragment {
                offset: 1480,
                more_fragments: false,
                ident: 7
            })
        );
    }

    #[test]
    fn auth_header_length_and_esp_stop() {
        #[rustfmt::skip]
        let ah = [
            0x32,                   // next header: ESP
            0x04,                   // payload len 4 -> (4 + 2) * 4 = 24 bytes
            0, 0,                   // reserved
            0, 0, 0, 1,             // SPI
            0, 0, 0, 1,             // sequence
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ICV (12 bytes)
            0xde, 0xad, 0xbe, 0xef, // ESP: opaque
        ];
        let v = with_ext(next_header::AUTH, &ah);
        let up = Packet::new_checked(&v[..]).unwrap().upper_layer().unwrap();
        assert_eq!(
            (up.protocol, up.offset, up.ext_count),
            (next_header::ESP, 64, 1)
        );
    }

    #[test]
    fn a_chain_that_never_ends_is_an_error_not_a_loop() {
        // Nine destination-options headers each pointing at another one.
        let one = [0x3c, 0x00, 0x01, 0x04, 0, 0, 0, 0];
        let ext: Vec<u8> = one.iter().copied().cycle().take(8 * 9).collect();
        let v = with_ext(next_header::DEST_OPTIONS, &ext);
        let p = Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.upper_layer().unwrap_err(), Malformed::Ipv6ExtChainTooLong);
        assert_eq!(p.ext_headers().count(), MAX_EXT_HEADERS + 1);
        // The same with fewer headers: the chain runs off the payload.
        let v = with_ext(next_header::DEST_OPTIONS, &ext[..8 * 3]);
        let p = Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.upper_layer().unwrap_err(), Malformed::TruncatedIpv6Ext);
        // A header whose length runs past the payload.
        let v = with_ext(next_header::HOP_BY_HOP, &[0x11, 0x01, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            Packet::new_checked(&v[..])
                .unwrap()
                .upper_layer()
                .unwrap_err(),
            Malformed::TruncatedIpv6Ext
        );
        // Exactly MAX_EXT_HEADERS headers is fine.
        let mut ext8 = ext[..8 * 8].to_vec();
        ext8[8 * 7] = 59;
        let v = with_ext(next_header::DEST_OPTIONS, &ext8);
        assert_eq!(
            Packet::new_checked(&v[..])
                .unwrap()
                .upper_layer()
                .unwrap()
                .ext_count,
            8
        );
    }

    #[test]
    fn fragment_header_writer_round_trips() {
        let mut b = [0u8; 8];
        let f = Fragment {
            offset: 1480,
            more_fragments: true,
            ident: 0xdead_beef,
        };
        write_fragment_header(&mut b, proto::UDP, f);
        let v = with_ext(next_header::FRAGMENT, &b);
        let up = Packet::new_checked(&v[..]).unwrap().upper_layer().unwrap();
        assert_eq!(up.fragment, Some(f));
        assert_eq!(up.protocol, proto::UDP);
    }
}
