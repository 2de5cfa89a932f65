//! The channel between the engine and the daemon: line framing over a reader and a writer.

use std::io::{self, BufRead, Write};

use crate::message::{parse_line, CheckpointReply, ChildMessage, DaemonMessage, ParsedLine};

/// What came back after a checkpoint request.
#[derive(Debug)]
pub(crate) enum Reply {
    /// The daemon's checkpoint reply.
    Checkpoint(CheckpointReply),
    /// The input ended (the daemon closed the child's stdin).
    Eof,
    /// Another message arrived instead; it is kept for the main loop.
    Unexpected(String),
}

/// Sends child messages and receives the daemon's checkpoint replies.
pub(crate) trait Transport {
    /// Writes one message and flushes it.
    fn send(&mut self, message: &ChildMessage) -> io::Result<()>;
    /// Waits for the reply to the checkpoint request just sent.
    fn recv_reply(&mut self) -> io::Result<Reply>;
}

/// Longest part of a skipped line quoted in the log.
const EXCERPT_CHARS: usize = 120;

/// A short, printable quote of a line for log messages.
pub(crate) fn excerpt(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut quoted: String = text.chars().take(EXCERPT_CHARS).collect();
    if text.chars().nth(EXCERPT_CHARS).is_some() {
        quoted.push_str("...");
    }
    format!("{quoted:?} ({} bytes)", line.len())
}

/// JSON lines over any reader and writer: input lines end in `\n` (a `\r` before it is dropped),
/// output messages are framed `\n{json}\n` and flushed one by one.
pub(crate) struct LineTransport<R, W> {
    reader: R,
    writer: W,
    line: Vec<u8>,
    out: Vec<u8>,
    pending: Option<ParsedLine>,
}

impl<R: BufRead, W: Write> LineTransport<R, W> {
    pub(crate) fn new(reader: R, writer: W) -> Self {
        LineTransport {
            reader,
            writer,
            line: Vec::with_capacity(64 * 1024),
            out: Vec::with_capacity(256),
            pending: None,
        }
    }

    /// The next meaningful line: blank lines are skipped, junk is logged and skipped.
    /// `None` at end of input.
    pub(crate) fn next_message(&mut self) -> io::Result<Option<ParsedLine>> {
        if let Some(parsed) = self.pending.take() {
            return Ok(Some(parsed));
        }
        loop {
            self.line.clear();
            if self.reader.read_until(b'\n', &mut self.line)? == 0 {
                return Ok(None);
            }
            let mut end = self.line.len();
            if self.line[..end].ends_with(b"\n") {
                end -= 1;
            }
            if self.line[..end].ends_with(b"\r") {
                end -= 1;
            }
            match parse_line(&self.line[..end]) {
                ParsedLine::Blank => continue,
                ParsedLine::Junk { cause } => {
                    tracing::warn!(
                        "skipping a line that is not a protocol message ({cause}): {}",
                        excerpt(&self.line[..end])
                    );
                    continue;
                }
                parsed => return Ok(Some(parsed)),
            }
        }
    }
}

impl<R: BufRead, W: Write> Transport for LineTransport<R, W> {
    fn send(&mut self, message: &ChildMessage) -> io::Result<()> {
        self.out.clear();
        self.out.push(b'\n');
        serde_json::to_writer(&mut self.out, message).map_err(io::Error::other)?;
        self.out.push(b'\n');
        self.writer.write_all(&self.out)?;
        self.writer.flush()
    }

    fn recv_reply(&mut self) -> io::Result<Reply> {
        match self.next_message()? {
            None => Ok(Reply::Eof),
            Some(ParsedLine::Message(DaemonMessage::CheckpointReply(reply))) => {
                Ok(Reply::Checkpoint(reply))
            }
            Some(other) => {
                let action = match &other {
                    ParsedLine::Message(message) => message.action().to_owned(),
                    ParsedLine::UnknownAction(action) | ParsedLine::Malformed { action, .. } => {
                        action.clone()
                    }
                    ParsedLine::Blank | ParsedLine::Junk { .. } => String::new(),
                };
                self.pending = Some(other);
                Ok(Reply::Unexpected(action))
            }
        }
    }
}
