//! Reading length-prefixed DNS messages off a stream (RFC 1035 4.2.2, RFC 7858) with two
//! clocks: a connection may wait up to its idle time for a message's first byte, and the
//! rest of that message must then come within the message time, however it trickles in.
//!
//! Owns the read buffer (empty until a byte comes, so an idle connection holds none) and
//! the deadlines. Pipelined queries that came together are taken from the buffer without
//! another read.

use std::{io, time::Duration};

use tokio::{
    io::{AsyncRead, AsyncReadExt},
    time::{Instant, timeout_at},
};

/// Bytes read at a time while no longer message is pending.
const READ_CHUNK: usize = 4096;
/// A buffer grown past this for one large message is not kept afterwards.
const KEEP_CAPACITY: usize = 16 << 10;

/// Why no message came.
#[derive(Debug)]
pub(super) enum Stop {
    /// The peer closed between messages.
    Closed,
    /// No first byte within the idle time.
    Idle,
    /// A message started but did not finish within the message time.
    Slow,
    Io(io::Error),
}

#[derive(Default)]
pub(super) struct Frames {
    buffer: Vec<u8>,
    /// Start of the unread bytes in `buffer`.
    start: usize,
    /// Length (prefix included) of the message handed out last, dropped on the next call.
    handed: usize,
}

impl Frames {
    /// The next message. Waits up to `idle` for its first byte, then up to `message` for
    /// the rest.
    pub(super) async fn next<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        idle: Duration,
        message: Duration,
    ) -> Result<&[u8], Stop> {
        self.start += std::mem::take(&mut self.handed);
        let mut deadline = if self.unread() == 0 {
            self.compact();
            Instant::now() + idle
        } else {
            Instant::now() + message
        };
        loop {
            if let Some(length) = self.complete() {
                self.handed = length + 2;
                return Ok(&self.buffer[self.start + 2..self.start + 2 + length]);
            }
            let waiting_first = self.unread() == 0;
            self.compact();
            let wanted = self.wanted().max(READ_CHUNK);
            self.buffer.reserve(wanted);
            let read = timeout_at(deadline, stream.read_buf(&mut self.buffer)).await;
            match read {
                Err(_) if waiting_first => return Err(Stop::Idle),
                Err(_) => return Err(Stop::Slow),
                Ok(Ok(0)) if waiting_first => return Err(Stop::Closed),
                Ok(Ok(0)) => return Err(Stop::Io(io::ErrorKind::UnexpectedEof.into())),
                Ok(Ok(_)) if waiting_first => deadline = Instant::now() + message,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(Stop::Io(e)),
            }
        }
    }

    fn unread(&self) -> usize {
        self.buffer.len() - self.start
    }

    /// The length of the message at `start`, if all of it is here.
    fn complete(&self) -> Option<usize> {
        let unread = &self.buffer[self.start..];
        let length = usize::from(u16::from_be_bytes([*unread.first()?, *unread.get(1)?]));
        (unread.len() >= length + 2).then_some(length)
    }

    /// Bytes still missing for the message at `start`.
    fn wanted(&self) -> usize {
        let unread = &self.buffer[self.start..];
        match unread {
            [a, b, ..] => {
                (usize::from(u16::from_be_bytes([*a, *b])) + 2).saturating_sub(unread.len())
            }
            _ => 2,
        }
    }

    /// Moves unread bytes to the front; lets go of a buffer grown for one large message.
    fn compact(&mut self) {
        if self.start == 0 {
            return;
        }
        self.buffer.drain(..self.start);
        self.start = 0;
        if self.buffer.is_empty() && self.buffer.capacity() > KEEP_CAPACITY {
            self.buffer = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn pipelined_and_split_messages_come_out_whole() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        let mut frames = Frames::default();
        use tokio::io::AsyncWriteExt;
        client.write_all(&[0, 3, 1, 2, 3, 0, 2, 9]).await.unwrap();
        assert_eq!(
            frames.next(&mut server, LONG, LONG).await.unwrap(),
            &[1, 2, 3]
        );
        let writer = tokio::spawn(async move {
            client.write_all(&[8]).await.unwrap();
            client
        });
        assert_eq!(frames.next(&mut server, LONG, LONG).await.unwrap(), &[9, 8]);
        drop(writer.await.unwrap());
        assert!(matches!(
            frames.next(&mut server, LONG, LONG).await,
            Err(Stop::Closed)
        ));
    }

    #[tokio::test]
    async fn a_started_message_gets_the_message_time_not_a_new_idle_time() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        use tokio::io::AsyncWriteExt;
        let mut frames = Frames::default();
        let short = Duration::from_millis(100);
        assert!(matches!(
            frames.next(&mut server, short, LONG).await,
            Err(Stop::Idle)
        ));
        client.write_all(&[0, 10, 1]).await.unwrap();
        let mut frames = Frames::default();
        let started = Instant::now();
        assert!(matches!(
            frames.next(&mut server, LONG, short).await,
            Err(Stop::Slow)
        ));
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
