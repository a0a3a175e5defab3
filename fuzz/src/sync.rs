//! `sync_message`: arbitrary bytes as a datagram on the HA sync link.
//! Either a message of this protocol version, whose records encode back
//! to the bytes they came from, or a refusal; never a panic. A decoded
//! message's sequence number then goes through the FT-FW receiver.

use rampart_cluster::ftfw::Receiver;
use rampart_cluster::wire::{Header, Message, HEADER};

pub fn sync_message(data: &[u8]) {
    let Ok(message) = Message::decode(data) else {
        return;
    };
    let h = *message.header();
    let mut again = Vec::new();
    h.encode(&mut again);
    assert_eq!(again[..], data[..HEADER], "the header encodes back");
    match &message {
        Message::Update(_, records) => {
            for r in records {
                r.encode(&mut again);
            }
            assert_eq!(again, data, "records encode back");
        }
        Message::Close(_, closed) => {
            for c in closed {
                c.encode(&mut again);
            }
            assert_eq!(again, data, "closes encode back");
        }
        Message::Heartbeat(..) | Message::Control(_) => {}
    }
    let mut rx = Receiver::default();
    if h.kind.sequenced() {
        let _ = rx.arrive(h.epoch, h.seq);
        let _ = rx.arrive(h.epoch, h.seq.wrapping_add(h.a));
        let _ = rx.heartbeat(h.epoch, h.b);
    }
    let _: Option<Header> = Header::decode(data).ok().map(|(h, _)| h);
}
