//! Formatting pieces every output format uses: numbers, addresses and
//! times written without the formatting machinery, JSON string literals,
//! and the byte scans that tell whether a name can be copied as it is.
//! A leaf: it imports no other module of the crate.

use std::fmt::Write as _;

/// Days since 1970-01-01 to (year, month, day) (H. Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Appends `ts_ns` (ns since the Unix epoch) as RFC 3339 UTC with
/// `frac_digits` (0..=9) fractional digits: `2024-05-01T12:00:00.123456789Z`.
pub fn write_rfc3339(out: &mut String, ts_ns: u64, frac_digits: u32) {
    let secs = ts_ns / 1_000_000_000;
    let nanos = ts_ns % 1_000_000_000;
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let sod = secs % 86_400;
    // Fixed-width digits by hand into one buffer, validated once: every
    // event line starts with this.
    let mut b = *b"0000-00-00T00:00:00.000000000Z";
    let mut put = |at: usize, width: usize, mut v: u64| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y.clamp(0, 9999) as u64);
    put(5, 2, mo.into());
    put(8, 2, d.into());
    put(11, 2, sod / 3600);
    put(14, 2, (sod / 60) % 60);
    put(17, 2, sod % 60);
    let digits = frac_digits.min(9) as usize;
    put(20, 9, nanos);
    // "...:SS" + (".ddd" if any fraction digits) + "Z".
    let end = if digits > 0 { 20 + digits } else { 19 };
    b[end] = b'Z';
    out.push_str(std::str::from_utf8(&b[..=end]).unwrap_or_default());
}

/// Whether any byte of `s` must be escaped in a JSON string (a control
/// character, `"` or a backslash): names are checked on every line.
pub(crate) fn json_needs_escape(s: &[u8]) -> bool {
    any_byte(
        s,
        |x| has_byte_below(x, 0x20) || has_byte(x, b'"') || has_byte(x, b'\\'),
        |b| b < 0x20 || b == b'"' || b == b'\\',
    )
}

/// Whether `s` holds a byte up to the space or a non-ASCII byte (the
/// Junos renderer's test for names it can copy as they are).
pub(crate) fn has_space_or_non_ascii(s: &[u8]) -> bool {
    any_byte(
        s,
        |x| has_byte_below(x, 0x21) || x & HIGH_BITS != 0,
        |b| b <= b' ' || b >= 0x80,
    )
}

/// Whether a byte of `s` passes a test, looked at 8 bytes at a time
/// (`word`: the test on a little-endian word of 8; `byte`: on the rest).
#[inline(always)]
fn any_byte(s: &[u8], word: impl Fn(u64) -> bool, byte: impl Fn(u8) -> bool) -> bool {
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        if word(u64::from_le_bytes(w)) {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| byte(b))
}

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Whether a byte of `x` is below `n` (`n` <= 128; exact as a yes/no).
const fn has_byte_below(x: u64, n: u8) -> bool {
    x.wrapping_sub(LOW_BITS * n as u64) & !x & HIGH_BITS != 0
}

/// Whether a byte of `x` equals `b`.
const fn has_byte(x: u64, b: u8) -> bool {
    has_byte_below(x ^ (LOW_BITS * b as u64), 1)
}

/// Appends `s` as a JSON string literal.
pub fn json_str(out: &mut String, s: &str) {
    out.push('"');
    // Names rarely need escaping: copy them whole when they do not.
    if !json_needs_escape(s.as_bytes()) {
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `v` as 16 lowercase hex digits (a boot id).
pub(crate) fn push_hex16(out: &mut String, v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..16).rev() {
        out.push(HEX[(v >> (shift * 4)) as usize & 15] as char);
    }
}

/// Appends `v` in decimal (without the formatting machinery: renderers
/// write millions of these per second).
pub(crate) fn push_u64(out: &mut String, v: u64) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// "0" to "255".
static OCTETS: [&str; 256] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
    "17", "18", "19", "20", "21", "22", "23", "24", "25", "26", "27", "28", "29", "30", "31", "32",
    "33", "34", "35", "36", "37", "38", "39", "40", "41", "42", "43", "44", "45", "46", "47", "48",
    "49", "50", "51", "52", "53", "54", "55", "56", "57", "58", "59", "60", "61", "62", "63", "64",
    "65", "66", "67", "68", "69", "70", "71", "72", "73", "74", "75", "76", "77", "78", "79", "80",
    "81", "82", "83", "84", "85", "86", "87", "88", "89", "90", "91", "92", "93", "94", "95", "96",
    "97", "98", "99", "100", "101", "102", "103", "104", "105", "106", "107", "108", "109", "110",
    "111", "112", "113", "114", "115", "116", "117", "118", "119", "120", "121", "122", "123",
    "124", "125", "126", "127", "128", "129", "130", "131", "132", "133", "134", "135", "136",
    "137", "138", "139", "140", "141", "142", "143", "144", "145", "146", "147", "148", "149",
    "150", "151", "152", "153", "154", "155", "156", "157", "158", "159", "160", "161", "162",
    "163", "164", "165", "166", "167", "168", "169", "170", "171", "172", "173", "174", "175",
    "176", "177", "178", "179", "180", "181", "182", "183", "184", "185", "186", "187", "188",
    "189", "190", "191", "192", "193", "194", "195", "196", "197", "198", "199", "200", "201",
    "202", "203", "204", "205", "206", "207", "208", "209", "210", "211", "212", "213", "214",
    "215", "216", "217", "218", "219", "220", "221", "222", "223", "224", "225", "226", "227",
    "228", "229", "230", "231", "232", "233", "234", "235", "236", "237", "238", "239", "240",
    "241", "242", "243", "244", "245", "246", "247", "248", "249", "250", "251", "252", "253",
    "254", "255",
];

/// Appends an address: dotted quad for IPv4 (written by hand, the common
/// case), the standard text form for IPv6.
pub(crate) fn push_ip(out: &mut String, bytes: &[u8; 16], ipv6: bool) {
    if ipv6 {
        let _ = write!(out, "{}", std::net::Ipv6Addr::from(*bytes));
        return;
    }
    for (i, b) in bytes[12..].iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(OCTETS[usize::from(*b)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_addresses_are_written_as_display_would() {
        for (i, o) in OCTETS.iter().enumerate() {
            assert_eq!(*o, i.to_string());
        }
        for v in [0u64, 7, 10, 65535, 4_294_967_295, u64::MAX] {
            let mut s = String::new();
            push_u64(&mut s, v);
            assert_eq!(s, v.to_string());
        }
        let mut s = String::new();
        push_ip(&mut s, &crate::types::ipv4_mapped([192, 0, 2, 255]), false);
        assert_eq!(s, "192.0.2.255");
    }
}
