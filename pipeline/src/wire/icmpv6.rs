//! ICMPv6 (RFC 4443) type numbers and their classes; the header view is
//! [`super::icmp::Packet`].
pub use super::icmp::{Packet, HEADER_LEN, NO_PSEUDO_HEADER};

/// ICMPv6 message types.
pub mod msg_type {
    pub const DEST_UNREACHABLE: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const PARAM_PROBLEM: u8 = 4;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
    pub const ROUTER_SOLICIT: u8 = 133;
    pub const ROUTER_ADVERT: u8 = 134;
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    pub const NEIGHBOR_ADVERT: u8 = 136;
    pub const REDIRECT: u8 = 137;
}

/// Destination unreachable codes.
pub mod unreachable {
    pub const NO_ROUTE: u8 = 0;
    /// Communication with destination administratively prohibited.
    pub const ADMIN_PROHIBITED: u8 = 1;
    pub const BEYOND_SCOPE: u8 = 2;
    pub const ADDRESS: u8 = 3;
    pub const PORT: u8 = 4;
    pub const SOURCE_POLICY: u8 = 5;
    pub const REJECT_ROUTE: u8 = 6;
}

/// Whether a type is echo request or reply (identifier is the flow's port).
pub const fn is_echo(t: u8) -> bool {
    matches!(t, msg_type::ECHO_REQUEST | msg_type::ECHO_REPLY)
}

/// Whether a type is an error message (types below 128, which must never
/// be answered with another ICMPv6 error, RFC 4443 2.4).
pub const fn is_error(t: u8) -> bool {
    t < 128
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::proto;
    use crate::wire::{checksum, Malformed};

    #[rustfmt::skip]
    const ECHO: [u8; 12] = [
        0x80,                   // type echo request (128)
        0x00,                   // code 0
        0x00, 0x00,             // checksum (filled in the test)
        0x12, 0x34,             // identifier 0x1234
        0x00, 0x01,             // sequence 1
        0x61, 0x62, 0x63, 0x64, // data "abcd"
    ];

    fn pseudo(len: u32) -> u16 {
        let mut src = [0u8; 16];
        src[..2].copy_from_slice(&[0x20, 0x01]);
        src[15] = 1;
        checksum::pseudo_header_v6(src, [0xfe; 16], proto::ICMPV6, len)
    }

    #[test]
    fn reads_fields() {
        let mut b = ECHO;
        Packet::new_unchecked(&mut b[..]).fill_checksum(pseudo(12));
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.msg_type(), p.msg_code()), (msg_type::ECHO_REQUEST, 0));
        assert_eq!((p.echo_ident(), p.echo_seq_no()), (0x1234, 1));
        assert_eq!(p.rest_of_header(), [0x12, 0x34, 0, 1]);
        assert_eq!(p.data(), b"abcd");
        assert!(p.verify_checksum(pseudo(12)));
        assert!(!p.verify_checksum(pseudo(13)));
        assert!(is_echo(p.msg_type()) && !is_error(p.msg_type()));
    }

    #[test]
    fn builds_dest_unreachable() {
        let mut b = [0u8; 12];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_msg_type(msg_type::DEST_UNREACHABLE);
        p.set_msg_code(unreachable::ADMIN_PROHIBITED);
        p.set_rest_of_header([0; 4]);
        p.data_mut().copy_from_slice(&[0x60, 0, 0, 0]);
        p.fill_checksum(pseudo(12));
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.msg_type(), p.msg_code()), (1, 1));
        assert!(p.verify_checksum(pseudo(12)) && is_error(1));
    }

    #[test]
    fn round_trips_through_setters() {
        let mut b = [0u8; 12];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_msg_type(msg_type::ECHO_REQUEST);
        p.set_echo_ident(0x1234);
        p.set_echo_seq_no(1);
        p.data_mut().copy_from_slice(b"abcd");
        assert_eq!(b, ECHO);
    }

    #[test]
    fn truncated() {
        assert_eq!(
            Packet::new_checked(&ECHO[..7]).unwrap_err(),
            Malformed::TruncatedIcmp
        );
    }
}
