//! The Internet checksum (RFC 1071) and the IPv4/IPv6 pseudo-headers.
//!
//! Partial sums are ones' complement sums folded to 16 bits (not
//! complemented), so they combine with [`combine`]. A header checksum is
//! `!combine(&[pseudo, sum(bytes)])`; bytes that include a correct checksum
//! sum to `0xffff`.

use super::IpVersion;
use crate::flow::Addr;

/// Folds a wide ones' complement accumulator to 16 bits.
#[inline(always)]
fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Ones' complement sum of `data` as big-endian 16-bit words (an odd last
/// byte is padded with zero), folded to 16 bits.
pub fn sum(data: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        acc += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
    }
    let mut tail = [0u8; 4];
    for (t, r) in tail.iter_mut().zip(chunks.remainder()) {
        *t = *r;
    }
    acc += u64::from(u32::from_be_bytes(tail));
    fold(acc)
}

/// Ones' complement sum of partial sums.
pub fn combine(parts: &[u16]) -> u16 {
    fold(parts.iter().map(|p| u64::from(*p)).sum())
}

/// The checksum to store for `data` (whose checksum field is zero).
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// Whether `data`, including its checksum field, sums correctly.
pub fn verify(data: &[u8]) -> bool {
    sum(data) == 0xffff
}

/// Partial sum of the IPv4 pseudo-header (RFC 768/793).
pub fn pseudo_header_v4(src: [u8; 4], dst: [u8; 4], protocol: u8, len: u16) -> u16 {
    let l = len.to_be_bytes();
    let mut b = [0u8; 12];
    b[0..4].copy_from_slice(&src);
    b[4..8].copy_from_slice(&dst);
    b[9] = protocol;
    b[10] = l[0];
    b[11] = l[1];
    sum(&b)
}

/// Partial sum of the IPv6 pseudo-header (RFC 8200 section 8.1).
pub fn pseudo_header_v6(src: [u8; 16], dst: [u8; 16], protocol: u8, len: u32) -> u16 {
    let mut b = [0u8; 40];
    b[0..16].copy_from_slice(&src);
    b[16..32].copy_from_slice(&dst);
    b[32..36].copy_from_slice(&len.to_be_bytes());
    b[39] = protocol;
    sum(&b)
}

/// Pseudo-header partial sum for either version (`Addr` in the unified
/// space; for `V4` its low 32 bits are used).
pub fn pseudo_header(version: IpVersion, src: Addr, dst: Addr, protocol: u8, len: u32) -> u16 {
    match version {
        IpVersion::V4 => {
            pseudo_header_v4(src.ipv4_octets(), dst.ipv4_octets(), protocol, len as u16)
        }
        IpVersion::V6 => pseudo_header_v6(src.ipv6_octets(), dst.ipv6_octets(), protocol, len),
    }
}

/// Checksum to store for an upper-layer message with a pseudo-header.
pub fn checksum_with(pseudo: u16, data: &[u8]) -> u16 {
    !combine(&[pseudo, sum(data)])
}

/// Whether an upper-layer message (with its checksum field) verifies
/// against a pseudo-header.
pub fn verify_with(pseudo: u16, data: &[u8]) -> bool {
    combine(&[pseudo, sum(data)]) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Word-at-a-time reference implementation.
    fn reference(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        for w in data.chunks(2) {
            let hi = u32::from(w[0]) << 8;
            let lo = w.get(1).map_or(0, |b| u32::from(*b));
            acc += hi | lo;
        }
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&d), 0xddf2);
        assert_eq!(checksum(&d), !0xddf2);
    }

    #[test]
    fn matches_reference_for_every_length() {
        let data: Vec<u8> = (0..200u32).map(|i| (i * 37 + 11) as u8).collect();
        for n in 0..data.len() {
            assert_eq!(sum(&data[..n]), reference(&data[..n]), "len {n}");
        }
    }

    #[test]
    fn known_ipv4_header_verifies() {
        // Wikipedia's IPv4 header checksum example; checksum b861.
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert!(verify(&h));
        let mut z = h;
        z[10] = 0;
        z[11] = 0;
        assert_eq!(checksum(&z), 0xb861);
    }
}
