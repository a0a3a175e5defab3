//! ICMP (RFC 792) type numbers and their classes; the header view is
//! [`super::icmp::Packet`].
pub use super::icmp::{Packet, HEADER_LEN, NO_PSEUDO_HEADER};

/// ICMP message types.
pub mod msg_type {
    pub const ECHO_REPLY: u8 = 0;
    pub const DEST_UNREACHABLE: u8 = 3;
    pub const SOURCE_QUENCH: u8 = 4;
    pub const REDIRECT: u8 = 5;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const PARAM_PROBLEM: u8 = 12;
    pub const TIMESTAMP: u8 = 13;
    pub const TIMESTAMP_REPLY: u8 = 14;
}

/// Destination unreachable codes.
pub mod unreachable {
    pub const NET: u8 = 0;
    pub const HOST: u8 = 1;
    pub const PROTOCOL: u8 = 2;
    pub const PORT: u8 = 3;
    pub const FRAG_NEEDED: u8 = 4;
    /// Communication administratively prohibited (RFC 1812).
    pub const ADMIN_PROHIBITED: u8 = 13;
}

/// Whether a type is echo request or reply (identifier is the flow's port).
pub const fn is_echo(t: u8) -> bool {
    matches!(t, msg_type::ECHO_REQUEST | msg_type::ECHO_REPLY)
}

/// Whether a type is an error message (which must never be answered with
/// another ICMP error, RFC 1122 3.2.2).
pub const fn is_error(t: u8) -> bool {
    matches!(
        t,
        msg_type::DEST_UNREACHABLE
            | msg_type::SOURCE_QUENCH
            | msg_type::REDIRECT
            | msg_type::TIME_EXCEEDED
            | msg_type::PARAM_PROBLEM
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Malformed;

    #[rustfmt::skip]
    const ECHO: [u8; 12] = [
        0x08,                   // type echo request
        0x00,                   // code 0
        0x00, 0x00,             // checksum (filled in the test)
        0x12, 0x34,             // identifier 0x1234
        0x00, 0x01,             // sequence 1
        0x61, 0x62, 0x63, 0x64, // data "abcd"
    ];

    #[test]
    fn reads_fields() {
        let mut b = ECHO;
        Packet::new_unchecked(&mut b[..]).fill_checksum(NO_PSEUDO_HEADER);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.msg_type(), p.msg_code()), (msg_type::ECHO_REQUEST, 0));
        assert_eq!((p.echo_ident(), p.echo_seq_no()), (0x1234, 1));
        assert_eq!(p.rest_of_header(), [0x12, 0x34, 0, 1]);
        assert_eq!(p.data(), b"abcd");
        assert!(p.verify_checksum(NO_PSEUDO_HEADER));
        assert!(is_echo(p.msg_type()) && !is_error(p.msg_type()));
    }

    #[test]
    fn builds_dest_unreachable() {
        let mut b = [0u8; 12];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_msg_type(msg_type::DEST_UNREACHABLE);
        p.set_msg_code(unreachable::ADMIN_PROHIBITED);
        p.set_rest_of_header([0; 4]);
        p.data_mut().copy_from_slice(&[0x45, 0, 0, 20]);
        p.fill_checksum(NO_PSEUDO_HEADER);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.msg_type(), p.msg_code()), (3, 13));
        assert!(p.verify_checksum(NO_PSEUDO_HEADER) && is_error(3));
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
