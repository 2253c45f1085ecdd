//! How DoH answers leave: each in TLS records of its own, the records of a burst in one
//! system call.
//!
//! dnsperf's DoH client (nghttp2 under OpenSSL, `-m doh`) takes one answer per `SSL_read`
//! and drops a second answer that came in the same TLS record, then waits 100 ms for the
//! socket to become readable again: when HTTP/2 packed several answers into one record,
//! it lost half its queries and stalled. BIND writes each answer on its own. So
//! [`PerAnswer`], between HTTP/2 and TLS, ends every write after a frame that ends a
//! stream (END_STREAM on DATA or HEADERS), which makes that stream's answer the end of a
//! record; and [`Coalesce`], between TLS and TCP, keeps the records until HTTP/2 flushes,
//! so a burst of answers still costs one `write`.
//!
//! Owns only where writes are cut and when bytes reach the socket; frames pass unchanged.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// HTTP/2 frame header length (RFC 9113 4.1).
const FRAME_HEADER: usize = 9;
/// END_STREAM, on DATA (type 0) and HEADERS (type 1) frames.
const END_STREAM: u8 = 0x1;
/// Bytes [`Coalesce`] holds before it writes without waiting for a flush.
const COALESCE_MAX: usize = 64 << 10;

/// Ends each write after the first frame that closes a stream.
pub(super) struct PerAnswer<S> {
    inner: S,
    frames: Frames,
}

impl<S> PerAnswer<S> {
    pub(super) fn new(inner: S) -> Self {
        Self {
            inner,
            frames: Frames::default(),
        }
    }
}

/// Where the outgoing byte stream is among frames.
#[derive(Clone, Copy, Default)]
struct Frames {
    header: [u8; FRAME_HEADER],
    /// Header bytes seen of the current frame.
    have: usize,
    /// Payload bytes of the current frame still to come.
    payload: usize,
    /// Whether the current frame ends a stream.
    ends_stream: bool,
}

impl Frames {
    /// Walks `bytes`; returns how many belong up to and including the end of the first
    /// frame that ends a stream (all of them if none ends within).
    fn scan(&mut self, bytes: &[u8]) -> usize {
        let mut at = 0;
        while at < bytes.len() {
            if self.have < FRAME_HEADER {
                let take = (FRAME_HEADER - self.have).min(bytes.len() - at);
                self.header[self.have..self.have + take].copy_from_slice(&bytes[at..at + take]);
                self.have += take;
                at += take;
                if self.have < FRAME_HEADER {
                    break;
                }
                let h = self.header;
                self.payload = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
                self.ends_stream = h[3] <= 1 && h[4] & END_STREAM != 0;
            }
            let take = self.payload.min(bytes.len() - at);
            self.payload -= take;
            at += take;
            if self.payload == 0 {
                self.have = 0;
                if self.ends_stream {
                    break;
                }
            }
        }
        at
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PerAnswer<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut probe = self.frames;
        let cut = probe.scan(buf);
        let written = ready!(Pin::new(&mut self.inner).poll_write(cx, &buf[..cut]))?;
        self.frames.scan(&buf[..written]);
        Poll::Ready(Ok(written))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for PerAnswer<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

/// Holds written bytes until a flush (or [`COALESCE_MAX`] of them).
pub(super) struct Coalesce<S> {
    inner: S,
    pending: Vec<u8>,
    sent: usize,
}

impl<S> Coalesce<S> {
    pub(super) fn new(inner: S) -> Self {
        Self {
            inner,
            pending: Vec::new(),
            sent: 0,
        }
    }
}

impl<S: AsyncWrite + Unpin> Coalesce<S> {
    /// Writes out what is held.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.pending.clear();
        self.sent = 0;
        // A burst's buffer is not kept by an idle connection.
        if self.pending.capacity() > COALESCE_MAX {
            self.pending = Vec::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Coalesce<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.pending.len() >= COALESCE_MAX {
            ready!(self.poll_drain(cx))?;
        }
        let take = buf
            .len()
            .min(COALESCE_MAX.saturating_sub(self.pending.len()).max(1));
        self.pending.extend_from_slice(&buf[..take]);
        Poll::Ready(Ok(take))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Coalesce<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u8, payload: usize) -> Vec<u8> {
        let mut f = vec![
            0,
            (payload >> 8) as u8,
            payload as u8,
            kind,
            flags,
            0,
            0,
            0,
            stream,
        ];
        f.resize(FRAME_HEADER + payload, 0xaa);
        f
    }

    #[test]
    fn writes_end_after_each_stream_end() {
        // SETTINGS ACK, HEADERS 1, DATA 1 (END_STREAM), HEADERS 3, DATA 3 (END_STREAM).
        let mut bytes = frame(4, 1, 0, 0);
        bytes.extend(frame(1, 4, 1, 20));
        let first = bytes.len() + FRAME_HEADER + 300;
        bytes.extend(frame(0, 1, 1, 300));
        bytes.extend(frame(1, 4, 3, 20));
        bytes.extend(frame(0, 1, 3, 50));
        let mut frames = Frames::default();
        assert_eq!(
            frames.scan(&bytes),
            first,
            "SETTINGS ACK (flag 1) is not a stream's end"
        );
        assert_eq!(frames.scan(&bytes[first..]), bytes.len() - first);
    }

    #[test]
    fn frames_split_across_writes_are_followed() {
        let mut bytes = frame(1, 5, 1, 10);
        let end = bytes.len();
        bytes.extend(frame(0, 0, 3, 10));
        let mut frames = Frames::default();
        // Headers ending stream 1 (END_HEADERS | END_STREAM), cut mid-header, then mid-payload.
        assert_eq!(frames.scan(&bytes[..4]), 4);
        assert_eq!(frames.scan(&bytes[4..12]), 8);
        assert_eq!(frames.scan(&bytes[12..]), end - 12);
        assert_eq!(frames.scan(&bytes[end..]), bytes.len() - end);
    }
}
