//! IPv4 header view (RFC 791) with an options iterator.

use super::{be16, checksum, Malformed};

mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = field::DST_ADDR.end;
/// Longest header (IHL 15).
pub const MAX_HEADER_LEN: usize = 60;

const FLAG_RESERVED: u16 = 0x8000;
const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// IPv4 option kinds (copied flag, class and number as one byte).
pub mod option_kind {
    pub const END: u8 = 0;
    pub const NOP: u8 = 1;
    pub const RECORD_ROUTE: u8 = 7;
    pub const TIMESTAMP: u8 = 68;
    pub const SECURITY: u8 = 130;
    pub const LOOSE_SOURCE_ROUTE: u8 = 131;
    pub const STREAM_ID: u8 = 136;
    pub const STRICT_SOURCE_ROUTE: u8 = 137;
    pub const ROUTER_ALERT: u8 = 148;
}

/// One IPv4 option: `len` is its total length including kind and length
/// bytes (1 for NOP), `data` what follows the length byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpOption<'a> {
    pub kind: u8,
    pub len: u8,
    pub data: &'a [u8],
}

/// Iterator over the options of a header. Stops at End of Options List;
/// yields `Err(Malformed::BadIpOption)` once for a malformed option and then
/// ends.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    rest: &'a [u8],
}

impl<'a> Options<'a> {
    /// Options from the raw option bytes (header bytes 20..IHL*4).
    pub fn new(bytes: &'a [u8]) -> Options<'a> {
        Options { rest: bytes }
    }
}

/// Per-kind sanity checks beyond the generic length rule.
fn well_formed(kind: u8, len: usize, data: &[u8]) -> bool {
    let pointer = data.first().copied().unwrap_or(0);
    match kind {
        // type, length, pointer (>= 4), then 4-byte addresses.
        option_kind::RECORD_ROUTE
        | option_kind::LOOSE_SOURCE_ROUTE
        | option_kind::STRICT_SOURCE_ROUTE => len >= 3 && pointer >= 4 && (len - 3) & 3 == 0,
        // type, length, pointer (>= 5), overflow/flags, then data.
        option_kind::TIMESTAMP => len >= 4 && pointer >= 5,
        option_kind::STREAM_ID => len == 4,
        option_kind::SECURITY => len >= 3,
        option_kind::ROUTER_ALERT => len == 4,
        _ => true,
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<IpOption<'a>, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&kind, tail) = self.rest.split_first()?;
        match kind {
            option_kind::END => {
                self.rest = &[];
                None
            }
            option_kind::NOP => {
                self.rest = tail;
                Some(Ok(IpOption {
                    kind,
                    len: 1,
                    data: &[],
                }))
            }
            _ => {
                let len = tail.first().copied().unwrap_or(0);
                let n = usize::from(len);
                if n < 2 || n > self.rest.len() {
                    self.rest = &[];
                    return Some(Err(Malformed::BadIpOption));
                }
                let (opt, after) = self.rest.split_at(n);
                let data = opt.get(2..).unwrap_or(&[]);
                if !well_formed(kind, n, data) {
                    self.rest = &[];
                    return Some(Err(Malformed::BadIpOption));
                }
                self.rest = after;
                Some(Ok(IpOption { kind, len, data }))
            }
        }
    }
}

/// Summary of the options a header carries: one bit per option kind the
/// screens look at, plus OTHER and BAD.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct OptionSet(pub u8);

impl OptionSet {
    pub const EMPTY: OptionSet = OptionSet(0);
    pub const RECORD_ROUTE: OptionSet = OptionSet(1 << 0);
    pub const TIMESTAMP: OptionSet = OptionSet(1 << 1);
    pub const SECURITY: OptionSet = OptionSet(1 << 2);
    pub const LOOSE_SOURCE_ROUTE: OptionSet = OptionSet(1 << 3);
    pub const STREAM_ID: OptionSet = OptionSet(1 << 4);
    pub const STRICT_SOURCE_ROUTE: OptionSet = OptionSet(1 << 5);
    /// Any other option kind (NOP and End are not recorded).
    pub const OTHER: OptionSet = OptionSet(1 << 6);
    /// A malformed option was found (iteration stopped there).
    pub const BAD: OptionSet = OptionSet(1 << 7);

    /// The bit for an option kind.
    pub const fn for_kind(kind: u8) -> OptionSet {
        match kind {
            option_kind::END | option_kind::NOP => OptionSet::EMPTY,
            option_kind::RECORD_ROUTE => OptionSet::RECORD_ROUTE,
            option_kind::TIMESTAMP => OptionSet::TIMESTAMP,
            option_kind::SECURITY => OptionSet::SECURITY,
            option_kind::LOOSE_SOURCE_ROUTE => OptionSet::LOOSE_SOURCE_ROUTE,
            option_kind::STREAM_ID => OptionSet::STREAM_ID,
            option_kind::STRICT_SOURCE_ROUTE => OptionSet::STRICT_SOURCE_ROUTE,
            _ => OptionSet::OTHER,
        }
    }

    /// Summarises raw option bytes.
    pub fn from_options(bytes: &[u8]) -> OptionSet {
        let mut set = 0u8;
        for opt in Options::new(bytes) {
            set |= match opt {
                Ok(o) => OptionSet::for_kind(o.kind).0,
                Err(_) => OptionSet::BAD.0,
            };
        }
        OptionSet(set)
    }

    pub const fn bits(self) -> u8 {
        self.0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: OptionSet) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any bit of `other` is set.
    pub const fn intersects(self, other: OptionSet) -> bool {
        self.0 & other.0 != 0
    }

    /// Loose or strict source route (the `source-route-option` screen).
    pub const fn has_source_route(self) -> bool {
        self.intersects(OptionSet(
            OptionSet::LOOSE_SOURCE_ROUTE.0 | OptionSet::STRICT_SOURCE_ROUTE.0,
        ))
    }

    pub const fn is_bad(self) -> bool {
        self.contains(OptionSet::BAD)
    }
}

impl core::ops::BitOr for OptionSet {
    type Output = OptionSet;
    fn bitor(self, rhs: OptionSet) -> OptionSet {
        OptionSet(self.0 | rhs.0)
    }
}

impl core::ops::BitOrAssign for OptionSet {
    fn bitor_assign(&mut self, rhs: OptionSet) {
        self.0 |= rhs.0;
    }
}

impl core::fmt::Debug for OptionSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const NAMES: [&str; 8] = ["RR", "TS", "SEC", "LSRR", "SID", "SSRR", "OTHER", "BAD"];
        let mut first = true;
        f.write_str("OptionSet(")?;
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

/// A view of an IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Validates version, IHL and total length against the buffer (which may
    /// be longer than the packet: Ethernet padding).
    pub fn new_checked(buffer: T) -> Result<Packet<T>, Malformed> {
        let p = Packet::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<(), Malformed> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Malformed::TruncatedIpv4);
        }
        if self.version() != 4 {
            return Err(Malformed::BadIpv4Version);
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(Malformed::BadIhl);
        }
        if len < hl {
            return Err(Malformed::TruncatedIpv4);
        }
        let total = usize::from(self.total_len());
        if total < hl || total > len {
            return Err(Malformed::BadIpv4TotalLength);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL * 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    pub fn total_len(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::LENGTH])
    }

    pub fn ident(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::IDENT])
    }

    fn flags_offset(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::FLG_OFF])
    }

    /// The reserved ("evil") flag bit.
    pub fn reserved_flag(&self) -> bool {
        self.flags_offset() & FLAG_RESERVED != 0
    }

    pub fn dont_frag(&self) -> bool {
        self.flags_offset() & FLAG_DF != 0
    }

    pub fn more_frags(&self) -> bool {
        self.flags_offset() & FLAG_MF != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (self.flags_offset() & OFFSET_MASK) << 3
    }

    /// Whether this is a fragment (MF set or non-zero offset).
    pub fn is_fragment(&self) -> bool {
        self.flags_offset() & (FLAG_MF | OFFSET_MASK) != 0
    }

    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The protocol of the payload.
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    pub fn checksum(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    pub fn src_addr(&self) -> [u8; 4] {
        let b = &self.buffer.as_ref()[field::SRC_ADDR];
        [b[0], b[1], b[2], b[3]]
    }

    pub fn dst_addr(&self) -> [u8; 4] {
        let b = &self.buffer.as_ref()[field::DST_ADDR];
        [b[0], b[1], b[2], b[3]]
    }

    /// Whether the header checksum is correct.
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(&self.buffer.as_ref()[..self.header_len()])
    }

    /// Raw option bytes (header bytes 20..IHL*4).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// Iterator over the options.
    pub fn options_iter(&self) -> Options<'_> {
        Options::new(self.options())
    }

    /// Summary of the options (empty without options).
    pub fn option_set(&self) -> OptionSet {
        OptionSet::from_options(self.options())
    }

    /// The payload: header end to total length (Ethernet padding excluded).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets version 4 and the header length in bytes (a multiple of 4).
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((header_len / 4) as u8 & 0x0f);
    }

    pub fn set_dscp_ecn(&mut self, dscp: u8, ecn: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = (dscp << 2) | (ecn & 0x03);
    }

    pub fn set_total_len(&mut self, len: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&len.to_be_bytes());
    }

    pub fn set_ident(&mut self, ident: u16) {
        self.buffer.as_mut()[field::IDENT].copy_from_slice(&ident.to_be_bytes());
    }

    /// Sets DF, MF and the fragment offset (bytes, a multiple of 8).
    pub fn set_flags_and_offset(&mut self, dont_frag: bool, more_frags: bool, offset_bytes: u16) {
        let mut v = (offset_bytes >> 3) & OFFSET_MASK;
        if dont_frag {
            v |= FLAG_DF;
        }
        if more_frags {
            v |= FLAG_MF;
        }
        self.buffer.as_mut()[field::FLG_OFF].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    pub fn set_protocol(&mut self, protocol: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = protocol;
    }

    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    pub fn set_src_addr(&mut self, addr: [u8; 4]) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr);
    }

    pub fn set_dst_addr(&mut self, addr: [u8; 4]) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr);
    }

    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[HEADER_LEN..hl]
    }

    /// Computes and stores the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = checksum::checksum(&self.buffer.as_ref()[..hl]);
        self.set_checksum(c);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, total) = (self.header_len(), usize::from(self.total_len()));
        &mut self.buffer.as_mut()[hl..total]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rustfmt::skip]
    const HEADER: [u8; 24] = [
        0x45,                   // version 4, IHL 5 (20 bytes)
        0xb8,                   // DSCP 46 (EF), ECN 0
        0x00, 0x18,             // total length 24
        0x12, 0x34,             // identification 0x1234
        0x40, 0x00,             // flags DF, fragment offset 0
        0x40,                   // TTL 64
        0x11,                   // protocol UDP
        0x00, 0x00,             // checksum (filled in the test)
        0xc0, 0x00, 0x02, 0x01, // source 192.0.2.1
        0xc6, 0x33, 0x64, 0x02, // destination 198.51.100.2
        0xde, 0xad, 0xbe, 0xef, // payload
    ];

    fn header() -> [u8; 24] {
        let mut h = HEADER;
        Packet::new_unchecked(&mut h[..]).fill_checksum();
        h
    }

    #[test]
    fn reads_fields() {
        let h = header();
        let p = Packet::new_checked(&h[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!((p.dscp(), p.ecn()), (46, 0));
        assert_eq!(p.total_len(), 24);
        assert_eq!(p.ident(), 0x1234);
        assert!(p.dont_frag() && !p.more_frags() && !p.is_fragment() && !p.reserved_flag());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), crate::flow::proto::UDP);
        assert_eq!(p.src_addr(), [192, 0, 2, 1]);
        assert_eq!(p.dst_addr(), [198, 51, 100, 2]);
        assert!(p.verify_checksum());
        assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert!(p.options().is_empty());
        assert!(p.option_set().is_empty());
    }

    #[test]
    fn round_trips_through_setters() {
        let mut b = [0u8; 24];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_version_and_header_len(20);
        p.set_dscp_ecn(46, 0);
        p.set_total_len(24);
        p.set_ident(0x1234);
        p.set_flags_and_offset(true, false, 0);
        p.set_ttl(64);
        p.set_protocol(17);
        p.set_src_addr([192, 0, 2, 1]);
        p.set_dst_addr([198, 51, 100, 2]);
        p.payload_mut().copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        p.fill_checksum();
        assert_eq!(b, header());
    }

    #[test]
    fn fragment_fields() {
        let mut h = header();
        Packet::new_unchecked(&mut h[..]).set_flags_and_offset(false, true, 1480);
        let p = Packet::new_checked(&h[..]).unwrap();
        assert!(p.more_frags() && p.is_fragment() && !p.dont_frag());
        assert_eq!(p.frag_offset(), 1480);
        assert!(!p.verify_checksum());
    }

    #[test]
    fn malformed_headers() {
        let h = header();
        assert_eq!(
            Packet::new_checked(&h[..19]).unwrap_err(),
            Malformed::TruncatedIpv4
        );
        let mut v = h;
        v[0] = 0x65; // version 6
        assert_eq!(
            Packet::new_checked(&v[..]).unwrap_err(),
            Malformed::BadIpv4Version
        );
        let mut v = h;
        v[0] = 0x44; // IHL 4
        assert_eq!(Packet::new_checked(&v[..]).unwrap_err(), Malformed::BadIhl);
        let mut v = h;
        v[0] = 0x47; // IHL 7 = 28 bytes > 24 in buffer
        assert_eq!(
            Packet::new_checked(&v[..]).unwrap_err(),
            Malformed::TruncatedIpv4
        );
        let mut v = h;
        v[3] = 19; // total length below header length
        assert_eq!(
            Packet::new_checked(&v[..]).unwrap_err(),
            Malformed::BadIpv4TotalLength
        );
        let mut v = h;
        v[3] = 25; // total length beyond buffer
        assert_eq!(
            Packet::new_checked(&v[..]).unwrap_err(),
            Malformed::BadIpv4TotalLength
        );
        // Ethernet padding after total length is fine.
        let mut padded = [0u8; 30];
        padded[..24].copy_from_slice(&h);
        assert_eq!(Packet::new_checked(&padded[..]).unwrap().payload().len(), 4);
    }

    #[rustfmt::skip]
    const OPTIONS: [u8; 36] = [
        0x01,                         // NOP
        0x83, 0x07, 0x04,             // loose source route, len 7, pointer 4
        0x0a, 0x00, 0x00, 0x01,       //   route entry 10.0.0.1
        0x07, 0x07, 0x04,             // record route, len 7, pointer 4
        0x00, 0x00, 0x00, 0x00,       //   empty slot
        0x44, 0x08, 0x05, 0x00,       // timestamp, len 8, pointer 5, oflw/flg 0
        0x00, 0x00, 0x00, 0x00,       //   timestamp slot
        0x82, 0x03, 0x00,             // security, len 3 (RFC 1108 minimal)
        0x88, 0x04, 0x12, 0x34,       // stream id, len 4, id 0x1234
        0x89, 0x03, 0x04,             // strict source route, len 3, pointer 4
        0x00,                         // end of options list
        0xff, 0x00,                   // after END: ignored padding
    ];

    #[test]
    fn options_iterator_yields_kinds_and_lengths() {
        let kinds: Vec<(u8, u8)> = Options::new(&OPTIONS)
            .map(|o| o.map(|o| (o.kind, o.len)).unwrap())
            .collect();
        assert_eq!(
            kinds,
            vec![
                (1, 1),
                (131, 7),
                (7, 7),
                (68, 8),
                (130, 3),
                (136, 4),
                (137, 3)
            ]
        );
        let set = OptionSet::from_options(&OPTIONS);
        assert!(set.contains(
            OptionSet::LOOSE_SOURCE_ROUTE
                | OptionSet::STRICT_SOURCE_ROUTE
                | OptionSet::RECORD_ROUTE
                | OptionSet::TIMESTAMP
                | OptionSet::SECURITY
                | OptionSet::STREAM_ID
        ));
        assert!(set.has_source_route() && !set.is_bad() && !set.contains(OptionSet::OTHER));
        assert_eq!(format!("{set:?}"), "OptionSet(RR|TS|SEC|LSRR|SID|SSRR)");
    }

    #[test]
    fn bad_options() {
        // Length byte missing.
        assert_eq!(
            Options::new(&[0x83]).next(),
            Some(Err(Malformed::BadIpOption))
        );
        // Length below 2.
        assert_eq!(
            Options::new(&[0x94, 0x01, 0, 0]).next(),
            Some(Err(Malformed::BadIpOption))
        );
        // Length beyond the header.
        assert_eq!(
            Options::new(&[0x07, 0x0b, 0x04, 0]).next(),
            Some(Err(Malformed::BadIpOption))
        );
        // Route pointer below 4.
        assert_eq!(
            Options::new(&[0x83, 0x07, 0x01, 0, 0, 0, 0, 0]).next(),
            Some(Err(Malformed::BadIpOption))
        );
        // Stream id of the wrong length.
        assert_eq!(
            Options::new(&[0x88, 0x03, 0x00, 0x00]).next(),
            Some(Err(Malformed::BadIpOption))
        );
        // The error ends iteration; the set records BAD.
        let bad = [0x01, 0x83, 0xff, 0x00];
        assert_eq!(Options::new(&bad).count(), 2);
        assert!(OptionSet::from_options(&bad).is_bad());
        // Unknown but well-formed kinds are OTHER.
        assert_eq!(
            OptionSet::from_options(&[0x94, 0x04, 0x00, 0x00]),
            OptionSet::OTHER
        );
    }

    #[test]
    fn header_with_options() {
        let mut b = [0u8; 60];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_version_and_header_len(56);
        p.set_total_len(60);
        p.options_mut().copy_from_slice(&OPTIONS);
        p.fill_checksum();
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.header_len(), 56);
        assert!(p.verify_checksum());
        assert_eq!(p.options_iter().count(), 7);
        assert!(p.option_set().has_source_route());
        assert_eq!(p.payload().len(), 4);
    }
}
