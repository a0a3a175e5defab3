//! The control socket's request protocol, as a pure function so it can be
//! unit-tested and fuzzed without a socket.
//!
//! A client connects to the control socket, writes one command line
//! (`stats`, `reload` or `rules`, newline-terminated or ended by closing its
//! write side) and reads one reply line: JSON, `{"error": "..."}` when the
//! request is not understood. The server reads at most
//! [`MAX_REQUEST_BYTES`] bytes of a request; the rest of the line is never
//! read.
//!
//! No-panic contract: [`parse_request`] accepts arbitrary bytes (not UTF-8,
//! NULs, no newline, control characters) and returns `Ok` or an
//! [`RequestError`] whose [`RequestError::to_json`] is always one line of
//! valid JSON, at most a few hundred bytes long whatever the input.

use std::fmt;

use crate::text::json_str;

/// Bytes of a request the server reads (the command and its newline).
pub const MAX_REQUEST_BYTES: usize = 256;

/// Characters of an unknown command echoed back in the error reply.
pub const MAX_ECHO_CHARS: usize = 40;

/// A control-socket command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ControlCommand {
    /// Counters of the running dataplane (`rampart stats`).
    Stats,
    /// Load the config again (`rampart reload`, like SIGHUP).
    Reload,
    /// Per-rule hit counters (`rampart stats --rules`).
    Rules,
}

impl ControlCommand {
    pub const ALL: [ControlCommand; 3] = [
        ControlCommand::Stats,
        ControlCommand::Reload,
        ControlCommand::Rules,
    ];

    /// The word a client sends.
    pub const fn name(self) -> &'static str {
        match self {
            ControlCommand::Stats => "stats",
            ControlCommand::Reload => "reload",
            ControlCommand::Rules => "rules",
        }
    }
}

impl fmt::Display for ControlCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Nothing but whitespace before the end of the line.
    #[error("empty request; known commands: stats, reload, rules")]
    Empty,
    /// The line is not UTF-8.
    #[error("request is not UTF-8 text; known commands: stats, reload, rules")]
    NotUtf8,
    /// A word that is not a command; holds at most [`MAX_ECHO_CHARS`]
    /// characters of it.
    #[error("unknown command {0:?}; known: stats, reload, rules")]
    Unknown(String),
}

impl RequestError {
    /// The reply to send: one line of JSON, `{"error":"..."}`.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{\"error\":");
        json_str(&mut out, &self.to_string());
        out.push('}');
        out
    }
}

/// Parses one request as read from the socket: the bytes up to and
/// including the first newline (or all of them when there is none), of
/// which only the first [`MAX_REQUEST_BYTES`] count. Surrounding
/// whitespace (and a `\r\n` ending) is ignored; commands are exact,
/// lower-case words.
pub fn parse_request(bytes: &[u8]) -> Result<ControlCommand, RequestError> {
    let bytes = &bytes[..bytes.len().min(MAX_REQUEST_BYTES)];
    let line = match bytes.iter().position(|&b| b == b'\n') {
        Some(end) => &bytes[..end],
        None => bytes,
    };
    let line = match std::str::from_utf8(line) {
        Ok(s) => s,
        // Cut inside a multi-byte character by the length bound: the
        // valid prefix is what the client meant to send so far.
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&line[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return Err(RequestError::NotUtf8),
    };
    let word = line.trim();
    if word.is_empty() {
        return Err(RequestError::Empty);
    }
    ControlCommand::ALL
        .into_iter()
        .find(|c| c.name() == word)
        .ok_or_else(|| RequestError::Unknown(word.chars().take(MAX_ECHO_CHARS).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_with_any_line_ending() {
        for c in ControlCommand::ALL {
            for line in [
                format!("{c}"),
                format!("{c}\n"),
                format!("{c}\r\n"),
                format!("  {c}\t\n"),
                format!("{c}\nstats\n"),
            ] {
                assert_eq!(parse_request(line.as_bytes()), Ok(c), "{line:?}");
            }
        }
    }

    #[test]
    fn refusals_say_why() {
        assert_eq!(parse_request(b""), Err(RequestError::Empty));
        assert_eq!(parse_request(b" \r\n"), Err(RequestError::Empty));
        assert_eq!(parse_request(b"\nstats"), Err(RequestError::Empty));
        assert_eq!(parse_request(b"\xff\xfe\n"), Err(RequestError::NotUtf8));
        assert_eq!(
            parse_request(b"STATS\n"),
            Err(RequestError::Unknown("STATS".into()))
        );
        assert_eq!(
            parse_request(b"stats please\n"),
            Err(RequestError::Unknown("stats please".into()))
        );
        let long = "x".repeat(1000);
        assert_eq!(
            parse_request(long.as_bytes()),
            Err(RequestError::Unknown("x".repeat(MAX_ECHO_CHARS)))
        );
    }

    #[test]
    fn bytes_past_the_bound_are_ignored() {
        let mut req = vec![b' '; MAX_REQUEST_BYTES - 5];
        req.extend_from_slice(b"stats");
        assert_eq!(parse_request(&req), Ok(ControlCommand::Stats));
        req.extend_from_slice(b"xyz\n");
        assert_eq!(parse_request(&req), Ok(ControlCommand::Stats));
        let mut req = vec![b' '; MAX_REQUEST_BYTES];
        req.extend_from_slice(b"stats\n");
        assert_eq!(parse_request(&req), Err(RequestError::Empty));
    }

    #[test]
    fn a_character_cut_by_the_bound_is_not_an_encoding_error() {
        let mut req = vec![b'a'; MAX_REQUEST_BYTES - 1];
        req.extend_from_slice("é".as_bytes());
        assert_eq!(
            parse_request(&req),
            Err(RequestError::Unknown("a".repeat(MAX_ECHO_CHARS)))
        );
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_or_get_a_one_line_json_refusal(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
        ) {
            match parse_request(&bytes) {
                Ok(c) => {
                    let word = c.name().as_bytes();
                    proptest::prop_assert!(bytes.windows(word.len()).any(|w| w == word), "{}", c);
                }
                Err(e) => {
                    let j = e.to_json();
                    proptest::prop_assert!(j.starts_with("{\"error\":\"") && j.ends_with("\"}"), "{}", j);
                    proptest::prop_assert!(j.chars().all(|c| c >= ' '), "{:?}", j);
                    proptest::prop_assert!(j.len() < 512, "{} bytes", j.len());
                }
            }
        }
    }

    #[test]
    fn error_replies_are_one_line_of_json() {
        for e in [
            RequestError::Empty,
            RequestError::NotUtf8,
            RequestError::Unknown("a\"b\\c\u{1}\u{7f}\u{2028}".into()),
        ] {
            let j = e.to_json();
            assert!(j.starts_with("{\"error\":\"") && j.ends_with("\"}"), "{j}");
            assert!(!j.contains('\n'));
            assert!(j.chars().all(|c| c >= ' '), "{j:?}");
        }
    }
}
