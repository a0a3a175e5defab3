//! The control socket's request protocol, as a pure function so it can be
//! unit-tested and fuzzed without a socket.
//!
//! A client connects to the control socket, writes one command line and
//! reads one reply line: JSON, `{"error": "..."}` when the request is not
//! understood. Commands: `stats`, `reload`, `rules`, and
//! `sessions [KEY=VALUE ...]` / `sessions-clear [KEY=VALUE ...]` with the
//! flow filter's words ([`crate::filter::FILTER_KEYS`]) and, for a listing,
//! `limit=N` and `after=WORKER:SLOT` (the previous page's `next`); a clear
//! with no filter must say `all=yes`. The server reads at most
//! [`MAX_REQUEST_BYTES`] bytes of a request; the rest of the line is never
//! read.
//!
//! No-panic contract: [`parse_request`] accepts arbitrary bytes (not UTF-8,
//! NULs, no newline, control characters) and returns `Ok` or an
//! [`RequestError`] whose [`RequestError::to_json`] is always one line of
//! valid JSON, at most a few hundred bytes long whatever the input.

use std::fmt;

use crate::filter::FlowFilter;
use crate::text::json_str;

/// Bytes of a request the server reads (the command, its arguments and
/// its newline).
pub const MAX_REQUEST_BYTES: usize = 1024;

/// Characters of an unknown command echoed back in the error reply.
pub const MAX_ECHO_CHARS: usize = 40;

/// Sessions in one page of a listing, at most.
pub const MAX_SESSIONS_PAGE: u32 = 1000;

/// A control-socket command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlCommand {
    /// Counters of the running dataplane (`rampart stats`).
    Stats,
    /// Load the config again (`rampart reload`, like SIGHUP).
    Reload,
    /// Per-rule hit counters (`rampart stats --rules`).
    Rules,
    /// List one page of sessions, or end the matching sessions
    /// (`rampart sessions`, `rampart sessions clear`).
    Sessions(SessionRequest),
    /// The high-availability pair: role, peer, sync counters (`rampart
    /// cluster status`).
    Cluster,
    /// Hand the active role to the peer, or take it (`rampart cluster
    /// failover`).
    ClusterFailover,
}

/// Where a listing of sessions goes on: a worker and a slot of its table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SessionCursor {
    pub worker: u16,
    pub slot: u32,
}

impl fmt::Display for SessionCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.worker, self.slot)
    }
}

impl std::str::FromStr for SessionCursor {
    type Err = ();

    /// `WORKER:SLOT`, as [`SessionCursor`]'s `Display` writes it.
    fn from_str(s: &str) -> Result<SessionCursor, ()> {
        let (w, slot) = s.split_once(':').ok_or(())?;
        Ok(SessionCursor {
            worker: w.parse().map_err(|_| ())?,
            slot: slot.parse().map_err(|_| ())?,
        })
    }
}

/// `sessions` and `sessions-clear`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionRequest {
    /// End the matching sessions instead of listing them.
    pub clear: bool,
    pub filter: FlowFilter,
    /// A listing's page: where it starts and how many sessions it holds
    /// at most (capped at [`MAX_SESSIONS_PAGE`]).
    pub after: SessionCursor,
    pub limit: u32,
}

impl SessionRequest {
    /// The request line a client sends (without its newline).
    pub fn to_line(&self) -> String {
        let mut words = vec![if self.clear {
            "sessions-clear"
        } else {
            "sessions"
        }
        .to_owned()];
        words.extend(self.filter.words());
        if self.clear {
            if self.filter.is_empty() {
                words.push("all=yes".to_owned());
            }
        } else {
            words.push(format!("limit={}", self.limit));
            words.push(format!("after={}", self.after));
        }
        words.join(" ")
    }

    fn parse(clear: bool, args: &str) -> Result<SessionRequest, RequestError> {
        let mut r = SessionRequest {
            clear,
            limit: MAX_SESSIONS_PAGE,
            ..SessionRequest::default()
        };
        let mut all = false;
        let bad = |m: String| RequestError::BadArgument(m.chars().take(200).collect());
        for word in args.split_whitespace() {
            let (k, v) = word
                .split_once('=')
                .ok_or_else(|| bad(format!("{word:?} is not KEY=VALUE")))?;
            match (k, clear) {
                ("limit", false) => {
                    r.limit = v
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=MAX_SESSIONS_PAGE).contains(n))
                        .ok_or_else(|| bad(format!("limit: 1 to {MAX_SESSIONS_PAGE}")))?
                }
                ("after", false) => {
                    r.after = v
                        .parse()
                        .map_err(|()| bad("after: WORKER:SLOT, as a page's next".to_owned()))?
                }
                ("all", true) if v == "yes" => all = true,
                _ => r.filter.set(k, v).map_err(bad)?,
            }
        }
        if clear && r.filter.is_empty() && !all {
            return Err(bad(
                "sessions-clear without a filter ends every session: say all=yes".to_owned(),
            ));
        }
        Ok(r)
    }
}

impl ControlCommand {
    /// The commands without arguments.
    pub const WORDS: [ControlCommand; 5] = [
        ControlCommand::Stats,
        ControlCommand::Reload,
        ControlCommand::Rules,
        ControlCommand::Cluster,
        ControlCommand::ClusterFailover,
    ];

    /// The word a client sends.
    pub const fn name(&self) -> &'static str {
        match self {
            ControlCommand::Stats => "stats",
            ControlCommand::Reload => "reload",
            ControlCommand::Rules => "rules",
            ControlCommand::Cluster => "cluster",
            ControlCommand::ClusterFailover => "cluster-failover",
            ControlCommand::Sessions(r) if r.clear => "sessions-clear",
            ControlCommand::Sessions(_) => "sessions",
        }
    }
}

impl fmt::Display for ControlCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const KNOWN: &str = "stats, reload, rules, sessions, sessions-clear, cluster, cluster-failover";

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Nothing but whitespace before the end of the line.
    #[error("empty request; known commands: {KNOWN}")]
    Empty,
    /// The line is not UTF-8.
    #[error("request is not UTF-8 text; known commands: {KNOWN}")]
    NotUtf8,
    /// A word that is not a command; holds at most [`MAX_ECHO_CHARS`]
    /// characters of it.
    #[error("unknown command {0:?}; known: {KNOWN}")]
    Unknown(String),
    /// A `sessions` argument that is not understood (at most 200
    /// characters of why).
    #[error("{0}")]
    BadArgument(String),
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
    let line = line.trim();
    if line.is_empty() {
        return Err(RequestError::Empty);
    }
    if let Some(c) = ControlCommand::WORDS.into_iter().find(|c| c.name() == line) {
        return Ok(c);
    }
    let (word, args) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    match word {
        "sessions" => SessionRequest::parse(false, args).map(ControlCommand::Sessions),
        "sessions-clear" => SessionRequest::parse(true, args).map(ControlCommand::Sessions),
        _ => Err(RequestError::Unknown(
            line.chars().take(MAX_ECHO_CHARS).collect(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_with_any_line_ending() {
        for c in ControlCommand::WORDS {
            for line in [
                format!("{c}"),
                format!("{c}\n"),
                format!("{c}\r\n"),
                format!("  {c}\t\n"),
                format!("{c}\nstats\n"),
            ] {
                assert_eq!(parse_request(line.as_bytes()), Ok(c.clone()), "{line:?}");
            }
        }
    }

    #[test]
    fn sessions_requests_carry_their_filter_and_page() {
        let Ok(ControlCommand::Sessions(r)) = parse_request(
            b"sessions destination-prefix=192.0.2.0/24 port=80 protocol=tcp zone=trust limit=5 after=1:77\n",
        ) else {
            panic!("parsed")
        };
        assert!(!r.clear);
        assert_eq!(
            (r.limit, r.after),
            (
                5,
                SessionCursor {
                    worker: 1,
                    slot: 77
                }
            )
        );
        assert_eq!(r.filter.port, Some(80));
        assert_eq!(r.filter.zone.as_deref(), Some("trust"));
        assert_eq!(
            parse_request(r.to_line().as_bytes()),
            Ok(ControlCommand::Sessions(r.clone()))
        );
        let Ok(ControlCommand::Sessions(all)) = parse_request(b"sessions") else {
            panic!("parsed")
        };
        assert_eq!(
            (all.limit, all.after),
            (MAX_SESSIONS_PAGE, SessionCursor::default())
        );
        for clear in ["sessions-clear policy=allow-web", "sessions-clear all=yes"] {
            let Ok(ControlCommand::Sessions(c)) = parse_request(clear.as_bytes()) else {
                panic!("{clear}")
            };
            assert!(c.clear);
            assert_eq!(
                parse_request(c.to_line().as_bytes()),
                Ok(ControlCommand::Sessions(c))
            );
        }
        for (bad, says) in [
            ("sessions-clear", "all=yes"),
            ("sessions-clear all=no", "unknown filter"),
            ("sessions port", "not KEY=VALUE"),
            ("sessions limit=0", "limit: 1 to"),
            ("sessions-clear limit=5", "unknown filter"),
            ("sessions after=x", "WORKER:SLOT"),
            ("sessions port=99999", "not a port"),
        ] {
            match parse_request(bad.as_bytes()) {
                Err(RequestError::BadArgument(m)) => assert!(m.contains(says), "{bad}: {m}"),
                other => panic!("{bad}: {other:?}"),
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
