//! Big-endian, length-prefixed byte encoding used by the manifest and the
//! signed byte string, and base64/TXT chunking used for TXT records.
//!
//! Owns the primitive encodings only; it knows nothing of what the fields
//! mean. The reader never trusts a length before checking what is left, so a
//! hostile length cannot make it allocate.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::error::BundleError;
use super::limits::TXT_CHUNK;

/// Appends fixed-width big-endian integers and byte strings.
#[derive(Default)]
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.0.extend_from_slice(v);
    }
}

/// Reads what a [`Writer`] wrote; every shortfall is a `Malformed` error
/// naming `what`.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    what: &'a str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'a str) -> Self {
        Self { rest: bytes, what }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], BundleError> {
        if n > self.rest.len() {
            return Err(BundleError::malformed(self.what, "truncated"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], BundleError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, BundleError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, BundleError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, BundleError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Fails unless everything was consumed: trailing bytes would be data
    /// that nobody checks.
    pub(crate) fn finish(self) -> Result<(), BundleError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(BundleError::malformed(self.what, "trailing bytes"))
        }
    }
}

/// Base64 (RFC 4648, padded) split into TXT character-strings: every string
/// is 255 bytes except a shorter, non-empty last one. One canonical split
/// means one byte string has exactly one rdata.
pub(crate) fn to_txt_chunks(data: &[u8]) -> Vec<Vec<u8>> {
    let text = STANDARD.encode(data);
    text.as_bytes()
        .chunks(TXT_CHUNK)
        .map(<[u8]>::to_vec)
        .collect()
}

/// Inverse of [`to_txt_chunks`]; refuses any other split, text longer than
/// `max_bytes` can encode to (checked before decoding), non-canonical base64,
/// and more than `max_bytes` once decoded.
pub(crate) fn from_txt_chunks(
    chunks: &[Box<[u8]>],
    max_bytes: usize,
    what: &dyn std::fmt::Display,
) -> Result<Vec<u8>, BundleError> {
    check_split(chunks, what)?;
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    if total > super::limits::b64_len(max_bytes) {
        return Err(BundleError::TooLarge {
            what: "txt record data",
            got: total,
            limit: super::limits::b64_len(max_bytes),
        });
    }
    let text: Vec<u8> = chunks.concat();
    let data = STANDARD
        .decode(text)
        .map_err(|_| BundleError::malformed(what.to_string(), "not canonical base64"))?;
    // The text limit rounds up to whole base64 quads: the decoded length is exact.
    if data.len() > max_bytes {
        return Err(BundleError::TooLarge {
            what: "txt record data",
            got: data.len(),
            limit: max_bytes,
        });
    }
    Ok(data)
}

fn check_split(chunks: &[Box<[u8]>], what: &dyn std::fmt::Display) -> Result<(), BundleError> {
    let Some((last, full)) = chunks.split_last() else {
        return Err(BundleError::malformed(
            what.to_string(),
            "no character-string",
        ));
    };
    let full_ok = full.iter().all(|c| c.len() == TXT_CHUNK);
    if !full_ok || last.is_empty() || last.len() > TXT_CHUNK {
        return Err(BundleError::malformed(
            what.to_string(),
            "not split in 255-byte strings",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(chunks: Vec<Vec<u8>>) -> Vec<Box<[u8]>> {
        chunks.into_iter().map(Vec::into_boxed_slice).collect()
    }

    #[test]
    fn chunks_round_trip_at_every_boundary() {
        for n in [1usize, 190, 191, 192, 193, 400, 1000] {
            let data: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let chunks = boxed(to_txt_chunks(&data));
            assert_eq!(from_txt_chunks(&chunks, n, &"t").unwrap(), data);
        }
    }

    #[test]
    fn other_splits_are_refused() {
        let data = vec![7u8; 400];
        let mut chunks = to_txt_chunks(&data);
        let moved = chunks[0].pop().unwrap();
        chunks[1].insert(0, moved);
        assert!(from_txt_chunks(&boxed(chunks), 400, &"t").is_err());
        assert!(from_txt_chunks(&[], 400, &"t").is_err());
    }

    #[test]
    fn decoded_size_is_exact() {
        // 4 bytes encode to 8 characters, which could hold 6: 5 bytes are refused
        let chunks = boxed(to_txt_chunks(&[1u8; 5]));
        let err = from_txt_chunks(&chunks, 4, &"t").unwrap_err();
        assert!(
            matches!(
                err,
                BundleError::TooLarge {
                    got: 5,
                    limit: 4,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn size_is_checked_before_decoding() {
        let chunks = boxed(to_txt_chunks(&[0u8; 100]));
        let err = from_txt_chunks(&chunks, 10, &"t").unwrap_err();
        assert!(matches!(err, BundleError::TooLarge { .. }));
    }

    #[test]
    fn reader_refuses_short_and_trailing_input() {
        let mut r = Reader::new(&[1, 2, 3], "t");
        assert!(r.u16().is_ok());
        assert!(r.u16().is_err());
        let mut r = Reader::new(&[1, 2, 3], "t");
        r.u8().unwrap();
        assert!(r.finish().is_err());
    }
}
