//! The channel between the engine and the daemon: line framing over a reader and a writer.

use std::io::{self, Read, Write};

use crate::message::{
    CheckpointReply, ChildMessage, DaemonMessage, ParsedLine, parse_line, unanswerable_known_action,
};
use crate::scan::{self, ScannedBatch};
use kcl_protocol::Action;

/// What came back after a checkpoint request.
#[derive(Debug)]
pub(crate) enum Reply {
    /// The daemon's checkpoint reply.
    Checkpoint(CheckpointReply),
    /// The input ended (the daemon closed the child's stdin).
    Eof,
    /// Another message arrived instead; it is kept for the main loop.
    Unexpected(String),
    /// A checkpoint reply that could not be read (the cause).
    Malformed(String),
}

/// Sends child messages and receives the daemon's checkpoint replies.
pub(crate) trait Transport {
    /// Writes one message and flushes it.
    fn send(&mut self, message: &ChildMessage) -> io::Result<()>;
    /// Waits for the reply to the checkpoint request just sent.
    fn recv_reply(&mut self) -> io::Result<Reply>;

    /// Takes back a line buffer whose batch is done, to read into again.
    fn recycle(&mut self, buffer: Vec<u8>) {
        let _ = buffer;
    }
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

/// What the main loop gets from the daemon.
pub(crate) enum Incoming {
    /// A `processRecords` line decoded by the fast path.
    Batch(ScannedBatch),
    /// Any other meaningful line.
    Parsed(ParsedLine),
}

/// Bytes read at a time (more when a line is longer).
const READ_CHUNK: usize = 64 * 1024;

/// JSON lines over any reader and writer: input lines end in `\n` (a `\r` before it is dropped),
/// output messages are framed `\n{json}\n` and flushed one by one.
///
/// Input is read straight into one growing buffer and each line is parsed where it lies: a 14 MB
/// `processRecords` line is copied once, from the pipe, and never again.
pub(crate) struct LineTransport<R, W> {
    reader: R,
    writer: W,
    buffer: Vec<u8>,
    /// The unread part of `buffer` is `start..end`; no newline lies in `start..scanned`.
    start: usize,
    end: usize,
    scanned: usize,
    eof: bool,
    out: Vec<u8>,
    pending: Option<Incoming>,
    /// The small buffer used while a batch holds the big one.
    spare: Option<Vec<u8>>,
}

impl<R: Read, W: Write> LineTransport<R, W> {
    pub(crate) fn new(reader: R, writer: W) -> Self {
        LineTransport {
            reader,
            writer,
            buffer: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            scanned: 0,
            eof: false,
            out: Vec::with_capacity(256),
            pending: None,
            spare: None,
        }
    }

    /// Whether the input has ended and everything in it was read.
    pub(crate) fn input_ended(&self) -> bool {
        self.eof && self.start == self.end && self.pending.is_none()
    }

    /// Whether input was read that the engine has not had yet (so the next read does not wait).
    pub(crate) fn has_unread_line(&self) -> bool {
        self.pending.is_some() || self.start < self.end
    }

    /// The next line's range in `buffer` (terminator excluded); `None` at the end of input.
    fn next_line(&mut self) -> io::Result<Option<(usize, usize)>> {
        loop {
            if let Some(offset) = memchr::memchr(b'\n', &self.buffer[self.scanned..self.end]) {
                let newline = self.scanned + offset;
                let line = (self.start, newline);
                self.start = newline + 1;
                self.scanned = self.start;
                return Ok(Some(trim_cr(&self.buffer, line)));
            }
            self.scanned = self.end;
            if self.eof {
                if self.start == self.end {
                    return Ok(None);
                }
                let line = (self.start, self.end); // a last line without a terminator
                self.start = self.end;
                return Ok(Some(trim_cr(&self.buffer, line)));
            }
            self.fill()?;
        }
    }

    /// Hands the buffer over (with the line just read) and goes on with a new one holding what
    /// was read past that line.
    fn take_buffer(&mut self) -> Vec<u8> {
        let leftover = self.end - self.start;
        // A small buffer holds what comes next until the big one is given back (`recycle`).
        let mut next = self.spare.take().unwrap_or_default();
        if next.len() < leftover + READ_CHUNK {
            next.resize(leftover + READ_CHUNK, 0);
        }
        next[..leftover].copy_from_slice(&self.buffer[self.start..self.end]);
        let taken = std::mem::replace(&mut self.buffer, next);
        self.end = leftover;
        self.scanned = 0;
        self.start = 0;
        taken
    }

    /// Reads more input, making room first.
    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.scanned -= self.start;
            self.start = 0;
        }
        if self.buffer.len() - self.end < READ_CHUNK {
            // Only one chunk past the data is initialised (and so resident); the vector's own
            // capacity growth keeps the reallocations amortised.
            self.buffer.resize(self.end + READ_CHUNK, 0);
        }
        loop {
            match self.reader.read(&mut self.buffer[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            }
        }
    }

    /// The next meaningful input: blank lines are skipped, junk is logged and skipped.
    /// `None` at end of input.
    pub(crate) fn next_incoming(&mut self) -> io::Result<Option<Incoming>> {
        if let Some(incoming) = self.pending.take() {
            return Ok(Some(incoming));
        }
        while let Some((start, end)) = self.next_line()? {
            let line = &self.buffer[start..end];
            if line.starts_with(scan::PREFIX) {
                if let Some(layout) = scan::layout(line) {
                    // The records will live in this buffer: continue with a new one.
                    let buffer = self.take_buffer();
                    return Ok(Some(Incoming::Batch(scan::decode_in_place(
                        buffer, start, layout,
                    ))));
                }
            }
            match parse_line(line) {
                ParsedLine::Blank => continue,
                ParsedLine::Junk { cause } => {
                    match unanswerable_known_action(line) {
                        Some((action, reason)) => tracing::error!(
                            "skipping a line that is not a protocol message ({cause}) although it names the daemon action {action:?}: {reason}; no status is sent, and if the daemon did send it, it waits for one forever: {}",
                            excerpt(line)
                        ),
                        None => tracing::warn!(
                            "skipping a line that is not a protocol message ({cause}): {}",
                            excerpt(line)
                        ),
                    }
                    continue;
                }
                parsed => return Ok(Some(Incoming::Parsed(parsed))),
            }
        }
        Ok(None)
    }
}

fn trim_cr(buffer: &[u8], (start, end): (usize, usize)) -> (usize, usize) {
    if end > start && buffer[end - 1] == b'\r' {
        (start, end - 1)
    } else {
        (start, end)
    }
}

impl<R: Read, W: Write> Transport for LineTransport<R, W> {
    fn send(&mut self, message: &ChildMessage) -> io::Result<()> {
        self.out.clear();
        self.out.push(b'\n');
        serde_json::to_writer(&mut self.out, message).map_err(io::Error::other)?;
        self.out.push(b'\n');
        self.writer.write_all(&self.out)?;
        self.writer.flush()
    }

    fn recycle(&mut self, mut buffer: Vec<u8>) {
        // Read into the big, already initialised buffer again (no zeroing, no page faults, one
        // line-sized buffer in all); keep the small one for the next hand-over.
        let unread = self.end - self.start;
        if buffer.len() < unread + READ_CHUNK {
            buffer.resize(unread + READ_CHUNK, 0);
        }
        buffer[..unread].copy_from_slice(&self.buffer[self.start..self.end]);
        let mut small = std::mem::replace(&mut self.buffer, buffer);
        small.truncate(READ_CHUNK.max(unread));
        self.spare = Some(small);
        self.end = unread;
        self.scanned = 0;
        self.start = 0;
    }

    fn recv_reply(&mut self) -> io::Result<Reply> {
        match self.next_incoming()? {
            None => Ok(Reply::Eof),
            Some(Incoming::Parsed(ParsedLine::Message(DaemonMessage::CheckpointReply(reply)))) => {
                Ok(Reply::Checkpoint(reply))
            }
            // The answer to this request, unreadable: not an action to handle later.
            Some(Incoming::Parsed(ParsedLine::Malformed { action, cause }))
                if action == Action::Checkpoint.as_str() =>
            {
                Ok(Reply::Malformed(cause))
            }
            Some(other) => {
                let action = match &other {
                    Incoming::Batch(_) => Action::ProcessRecords.as_str().to_owned(),
                    Incoming::Parsed(ParsedLine::Message(message)) => message.action().to_owned(),
                    Incoming::Parsed(
                        ParsedLine::UnknownAction(action) | ParsedLine::Malformed { action, .. },
                    ) => action.clone(),
                    Incoming::Parsed(ParsedLine::Blank | ParsedLine::Junk { .. }) => String::new(),
                };
                self.pending = Some(other);
                Ok(Reply::Unexpected(action))
            }
        }
    }
}
