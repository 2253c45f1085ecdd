//! Arbitrary bytes -> `certzone::tsig::verify_message`, held to hickory's
//! `TSigner::verify_message_byte` on the same message.
//!
//! Input: one control byte, then a message. Bit 0: checked as a later message of a chain,
//! after a fixed previous MAC. Bit 1: the message is first decoded and signed with the key
//! below (when it decodes), so that the MAC check passes and what follows it is reached.
//! Checked: nothing panics, and both agree: the same MAC, time and window when one
//! accepts, an error from both otherwise (hickory is skipped where it overflows, below).
#![no_main]

use certzone::tsig::verify_message;
use hickory_proto::{
    op::Message,
    rr::{Name, TSigner, rdata::tsig::TsigAlgorithm},
    serialize::binary::{BinDecodable, BinEncodable},
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&control, message)) = data.split_first() else {
        return;
    };
    let name = Name::from_ascii("fuzz.").unwrap();
    let signer = TSigner::new(vec![7; 32], TsigAlgorithm::HmacSha256, name, 300).unwrap();
    let signed;
    let message = if control & 2 == 2 {
        let Some(bytes) = sign(message, &signer) else {
            return;
        };
        signed = bytes;
        &signed[..]
    } else {
        message
    };
    let previous = [9u8; 32];
    let (previous, first) = if control & 1 == 1 {
        (Some(&previous[..]), false)
    } else {
        (None, true)
    };
    let ours = verify_message(&signer, message, previous, first);
    if hickory_overflows(message) {
        return;
    }
    let theirs = signer.verify_message_byte(message, previous, first);
    match (ours, theirs) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(_), Err(_)) => {}
        (Ok(_), Err(e)) => panic!("accepted what hickory refuses: {e}"),
        (Err(e), Ok(_)) => panic!("refused what hickory accepts: {e}"),
    }
});

/// hickory 0.26.3 adds the answer and authority counts as `u16`
/// (`signed_bitmessage_to_buf`): over 65535 together that overflows, a panic in this
/// build, a wrong count in a release one. This fuzz target found it; `verify_message`
/// counts in `usize`.
fn hickory_overflows(message: &[u8]) -> bool {
    let count = |at: usize| match message.get(at..at + 2) {
        Some(b) => u32::from(u16::from_be_bytes([b[0], b[1]])),
        None => 0,
    };
    count(6) + count(8) > u32::from(u16::MAX)
}

/// The message decoded, signed with `signer` and encoded again; `None` if it does not go.
fn sign(bytes: &[u8], signer: &TSigner) -> Option<Vec<u8>> {
    let mut message = Message::from_bytes(bytes).ok()?;
    message.finalize(signer, 1_800_000_000).ok()?;
    message.to_bytes().ok()
}
