//! The DNS wire format read straight from bytes (RFC 1035 4.1): the one name scanner every
//! caller uses (queries on the hot path, stored records, transfers in, prepared answers),
//! and the header fields and small rewrites that avoid a full parse.
//!
//! Owns byte-level reading only. It must not decide what a message means (`dns`), keep
//! anything, or do I/O. Pure: nothing here allocates except [`expand_name`] into the
//! caller's buffer and the two functions that return a new message.

use hickory_proto::op::ResponseCode;

/// The fixed header before the question.
pub const HEADER_LEN: usize = 12;
/// The longest name in wire form, root label included (RFC 1035 2.3.4).
pub const MAX_NAME: usize = 255;
/// The most compression pointers one name may follow: a pointer must point backwards, so
/// this is far above any real message and ends loops early.
const MAX_POINTERS: usize = 128;

/// What a name's length byte says comes next (RFC 1035 4.1.4; 0x40 and 0x80 are the
/// retired extended label types, refused).
enum Label {
    Root,
    Data(usize),
    Pointer,
    Unknown,
}

#[inline]
fn label(len: u8) -> Label {
    match len {
        0 => Label::Root,
        1..=63 => Label::Data(usize::from(len)),
        _ if len & 0xC0 == 0xC0 => Label::Pointer,
        _ => Label::Unknown,
    }
}

/// The offset just past the (possibly compressed) name at `at` in `message`: after its
/// root label, or after the first pointer. `None` when it runs past the message, holds a
/// label of an unknown kind, or ends at its root over [`MAX_NAME`] bytes. Pointers are not
/// followed, so the labels they lead to are not counted.
pub fn skip_name(message: &[u8], start: usize) -> Option<usize> {
    let mut at = start;
    loop {
        match label(*message.get(at)?) {
            Label::Root => return (at + 1 - start <= MAX_NAME).then_some(at + 1),
            Label::Pointer => return (at + 2 <= message.len()).then_some(at + 2),
            Label::Data(len) => at += 1 + len,
            Label::Unknown => return None,
        }
    }
}

/// The uncompressed name at the start of `bytes`, root label included: `None` for a
/// pointer, a label of an unknown kind, a name over [`MAX_NAME`] or one that runs past the
/// bytes. The prepared-answer key is read with this on every UDP query: no allocation.
#[inline]
pub fn uncompressed_name(bytes: &[u8]) -> Option<&[u8]> {
    let mut at = 0;
    loop {
        match label(*bytes.get(at)?) {
            Label::Root => break,
            Label::Data(len) => at += 1 + len,
            Label::Pointer | Label::Unknown => return None,
        }
    }
    let len = at + 1;
    (len <= MAX_NAME).then(|| &bytes[..len])
}

/// The length of the uncompressed name at the start of `wire`, for bytes this process
/// wrote itself (the zone store's records): no checks beyond staying inside `wire`.
#[inline]
pub fn name_len(wire: &[u8]) -> usize {
    let mut at = 0;
    while let Some(&len) = wire.get(at) {
        at += 1 + usize::from(len);
        if len == 0 {
            break;
        }
    }
    at.min(wire.len())
}

/// Appends the name at `at` in `message` to `out` uncompressed, pointers followed (each
/// must point backwards); returns the offset just after the name where it starts (after
/// its first pointer, if any).
pub fn expand_name(
    message: &[u8],
    mut at: usize,
    out: &mut Vec<u8>,
) -> Result<usize, &'static str> {
    let mut after = None;
    let mut total = 0usize;
    for _ in 0..MAX_POINTERS {
        let len = *message.get(at).ok_or("a name that runs past the message")?;
        match label(len) {
            Label::Root => {
                out.push(0);
                return Ok(after.unwrap_or(at + 1));
            }
            Label::Pointer => {
                let low = *message
                    .get(at + 1)
                    .ok_or("a pointer that runs past the message")?;
                let target = usize::from(u16::from_be_bytes([len & 0x3F, low]));
                if target >= at {
                    return Err("a name pointer that does not point backwards");
                }
                after.get_or_insert(at + 2);
                at = target;
            }
            Label::Unknown => return Err("a label of an unknown kind"),
            Label::Data(n) => {
                let label = message
                    .get(at..at + 1 + n)
                    .ok_or("a label that runs past the message")?;
                total += label.len();
                if total >= MAX_NAME {
                    return Err("a name longer than 255 bytes");
                }
                out.extend_from_slice(label);
                at += label.len();
            }
        }
    }
    Err("a name with too many pointers")
}

/// The message id, if there is a header.
pub fn id(message: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*message.first()?, *message.get(1)?]))
}

/// Overwrites the message id in place.
pub fn set_id(message: &mut [u8], id: u16) {
    if message.len() >= 2 {
        message[..2].copy_from_slice(&id.to_be_bytes());
    }
}

/// A response that is only a header: same id and opcode, QR set, the given rcode, no
/// records. Used for messages too broken to parse. `None` if there is no header at all,
/// or if the message is itself a response (never answer a response).
pub fn header_only_response(query: &[u8], rcode: ResponseCode) -> Option<Vec<u8>> {
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
pub fn truncated(response: &[u8]) -> Option<Vec<u8>> {
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
pub fn is_response(message: &[u8]) -> bool {
    message.get(2).is_some_and(|flags| flags & 0x80 != 0)
}

/// The opcode (RFC 1035 4.1.1), if there is a header.
pub fn opcode(message: &[u8]) -> Option<u8> {
    Some((message.get(2)? >> 3) & 0x0F)
}

/// The type of the first question, if there is one.
pub fn question_type(message: &[u8]) -> Option<u16> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `www.example.` in wire form.
    const WWW: &[u8] = b"\x03www\x07example\x00";

    #[test]
    fn an_uncompressed_name_is_read_to_its_root_label() {
        let mut bytes = WWW.to_vec();
        bytes.extend_from_slice(&[0, 1, 0, 1]);
        assert_eq!(uncompressed_name(&bytes), Some(WWW));
        assert_eq!(skip_name(&bytes, 0), Some(WWW.len()));
        assert_eq!(name_len(&bytes), WWW.len());
        assert_eq!(uncompressed_name(&[0]), Some(&[0][..]));
        assert_eq!(skip_name(&[0], 0), Some(1));
    }

    #[test]
    fn a_pointer_ends_a_scan_and_is_refused_where_names_are_uncompressed() {
        // header, then `www.example.`, then `mail` + a pointer to `example.` at 16
        let mut message = vec![0; HEADER_LEN];
        message.extend_from_slice(WWW);
        let second = message.len();
        message.extend_from_slice(b"\x04mail\xC0\x10");
        assert_eq!(skip_name(&message, second), Some(message.len()));
        assert_eq!(uncompressed_name(&message[second..]), None);
        let mut out = Vec::new();
        assert_eq!(expand_name(&message, second, &mut out), Ok(message.len()));
        assert_eq!(out, b"\x04mail\x07example\x00");
        // a pointer whose second byte is missing
        assert_eq!(skip_name(&[0xC0], 0), None);
    }

    #[test]
    fn loops_and_forward_pointers_are_refused() {
        let mut looped = vec![0; HEADER_LEN];
        looped.extend_from_slice(&[0xC0, 12]);
        assert!(expand_name(&looped, HEADER_LEN, &mut Vec::new()).is_err());
        let mut forward = vec![0; HEADER_LEN];
        forward.extend_from_slice(&[0xC0, 14, 0]);
        assert!(expand_name(&forward, HEADER_LEN, &mut Vec::new()).is_err());
        // a chain of backward pointers longer than any real message needs
        let mut chain = vec![0u8];
        for i in 0..200u16 {
            let previous = if i == 0 { 0 } else { 1 + 2 * (i - 1) };
            chain.extend_from_slice(&(0xC000 | previous).to_be_bytes());
        }
        let last = chain.len() - 2;
        assert_eq!(
            expand_name(&chain, last, &mut Vec::new()),
            Err("a name with too many pointers")
        );
    }

    #[test]
    fn lengths_are_bounded_by_label_and_name() {
        // labels of 64..=191 are the retired extended types
        for len in [0x40, 0x7F, 0x80, 0xBF] {
            assert_eq!(uncompressed_name(&[len, 0]), None);
            assert_eq!(skip_name(&[len, 0], 0), None);
            assert!(expand_name(&[len, 0], 0, &mut Vec::new()).is_err());
        }
        // three labels of 63, one of `last` and the root
        let name = |last: u8| {
            let mut name = Vec::new();
            for len in [63, 63, 63, last] {
                name.push(len);
                name.extend(std::iter::repeat_n(b'a', usize::from(len)));
            }
            name.push(0);
            name
        };
        let over = name(62);
        assert_eq!(over.len(), 256);
        assert_eq!(uncompressed_name(&over), None);
        assert_eq!(skip_name(&over, 0), None);
        assert!(expand_name(&over, 0, &mut Vec::new()).is_err());
        let most = name(61);
        assert_eq!(uncompressed_name(&most).map(<[u8]>::len), Some(255));
        assert_eq!(skip_name(&most, 0), Some(255));
        let mut out = Vec::new();
        assert_eq!(expand_name(&most, 0, &mut out), Ok(255));
        assert_eq!(out, most);
    }

    #[test]
    fn truncated_input_never_reads_past_the_end() {
        let cut = &WWW[..WWW.len() - 1];
        for end in 0..=cut.len() {
            let bytes = &cut[..end];
            assert_eq!(uncompressed_name(bytes), None);
            assert_eq!(skip_name(bytes, 0), None);
            assert!(expand_name(bytes, 0, &mut Vec::new()).is_err());
            assert!(name_len(bytes) <= bytes.len());
        }
        assert_eq!(skip_name(WWW, WWW.len()), None);
    }

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
