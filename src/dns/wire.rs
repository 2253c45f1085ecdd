//! Small byte-level helpers on DNS messages (RFC 1035 4.1.1 header) that avoid a full parse.

use hickory_proto::op::ResponseCode;

pub(crate) const HEADER_LEN: usize = 12;

/// The message id, if there is a header.
pub(crate) fn id(message: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*message.first()?, *message.get(1)?]))
}

/// Overwrites the message id in place.
pub(crate) fn set_id(message: &mut [u8], id: u16) {
    if message.len() >= 2 {
        message[..2].copy_from_slice(&id.to_be_bytes());
    }
}

/// A response that is only a header: same id and opcode, QR set, the given rcode, no
/// records. Used for messages too broken to parse. `None` if there is no header at all,
/// or if the message is itself a response (never answer a response).
pub(crate) fn header_only_response(query: &[u8], rcode: ResponseCode) -> Option<Vec<u8>> {
    let header = query.get(..HEADER_LEN)?;
    if header[2] & 0x80 != 0 {
        return None;
    }
    let mut out = vec![0u8; HEADER_LEN];
    out[..2].copy_from_slice(&header[..2]);
    // QR=1, opcode and RD copied.
    out[2] = 0x80 | (header[2] & 0x79);
    out[3] = rcode.low();
    Some(out)
}

/// A truncated copy of `response` for a UDP client: header and question only, TC set.
pub(crate) fn truncated(response: &[u8]) -> Option<Vec<u8>> {
    let header = response.get(..HEADER_LEN)?;
    let qdcount = u16::from_be_bytes([header[4], header[5]]);
    let mut end = HEADER_LEN;
    for _ in 0..qdcount {
        end = skip_name(response, end)? + 4;
    }
    let mut out = response.get(..end)?.to_vec();
    out[2] |= 0x02;
    out[6..12].fill(0);
    Some(out)
}

/// Whether the message is a response (QR set): never to be answered.
pub(crate) fn is_response(message: &[u8]) -> bool {
    message.get(2).is_some_and(|flags| flags & 0x80 != 0)
}

/// The opcode (RFC 1035 4.1.1), if there is a header.
pub(crate) fn opcode(message: &[u8]) -> Option<u8> {
    Some((message.get(2)? >> 3) & 0x0F)
}

/// The type of the first question, if there is one.
pub(crate) fn question_type(message: &[u8]) -> Option<u16> {
    let qdcount = u16::from_be_bytes([*message.get(4)?, *message.get(5)?]);
    if qdcount == 0 {
        return None;
    }
    let at = skip_name(message, HEADER_LEN)?;
    Some(u16::from_be_bytes([
        *message.get(at)?,
        *message.get(at + 1)?,
    ]))
}

/// The offset just past the (possibly compressed) name at `at`.
fn skip_name(message: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *message.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xC0 == 0xC0 => return Some(at + 2),
            l => at += 1 + usize::from(l),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_question_and_sets_tc() {
        // id 0x1234, QR, one question "a." A IN, one answer record (ignored).
        let mut msg = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        msg.extend_from_slice(&[1, b'a', 0, 0, 1, 0, 1]);
        msg.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
        let t = truncated(&msg).unwrap();
        assert_eq!(t.len(), 19);
        assert_eq!(t[2] & 0x02, 0x02);
        assert_eq!(&t[6..12], &[0; 6]);
    }

    #[test]
    fn header_only_response_refuses_responses_and_stubs() {
        assert!(header_only_response(&[0; 5], ResponseCode::FormErr).is_none());
        let resp = [0, 1, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(header_only_response(&resp, ResponseCode::FormErr).is_none());
        let q = [0xab, 0xcd, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xff];
        let r = header_only_response(&q, ResponseCode::FormErr).unwrap();
        assert_eq!(&r[..4], &[0xab, 0xcd, 0x81, 1]);
    }
}
