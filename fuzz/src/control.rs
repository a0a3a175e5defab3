//! `control_request`: arbitrary bytes as a control-socket request. Either a
//! known command or a one-line JSON refusal of bounded size.

use rampart_events::request::{parse_request, MAX_REQUEST_BYTES};

pub fn control_request(data: &[u8]) {
    match parse_request(data) {
        Ok(command) => {
            // The command word is in the part of the request that counts.
            let head = &data[..data.len().min(MAX_REQUEST_BYTES)];
            let word = command.name().as_bytes();
            assert!(head.windows(word.len()).any(|w| w == word));
        }
        Err(e) => {
            let reply = e.to_json();
            assert!(reply.starts_with("{\"error\":\"") && reply.ends_with("\"}"));
            assert!(!reply.contains('\n'), "one line: {reply:?}");
            assert!(
                reply.chars().all(|c| c >= ' '),
                "no raw control characters: {reply:?}"
            );
            assert!(reply.len() < 512, "bounded reply: {} bytes", reply.len());
        }
    }
}
