//! Server-Sent Events, parsed incrementally from bytes as they arrive (the browser glue reads a
//! `fetch` body: unlike `EventSource` it can send headers, and it works the same in a worker).
//!
//! Follows the WHATWG event-stream rules that matter here: lines end in `\n`, `\r\n` or `\r`;
//! a blank line dispatches the event; `:` starts a comment; `data` lines are joined with `\n`;
//! an event without data is not dispatched; `id` is kept across events (the last one seen); a
//! field without a colon has an empty value; one space after the colon is dropped. Bytes that
//! are not UTF-8 are replaced, never a panic.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// `event:` (`"message"` when the stream names none).
    pub event: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
    /// The last `id:` seen, if any.
    pub id: Option<String>,
}

/// The incremental parser: feed it chunks, take the events they complete.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of a line not ended yet.
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` first in the next one belongs to it.
    after_cr: bool,
    event: String,
    data: String,
    has_data: bool,
    id: Option<String>,
    /// The event's data grew past `max_line`: it is dropped when it ends.
    too_big: bool,
    /// Bytes buffered at most in one line, and in one event's data; a longer line is dropped,
    /// and so is an event with more data (a hostile or broken stream cannot make the parser
    /// grow without bound).
    max_line: usize,
}

/// The longest line kept by default: 16 MiB.
pub const MAX_LINE: usize = 16 << 20;

impl SseParser {
    /// A parser that keeps lines of up to [`MAX_LINE`] bytes.
    pub fn new() -> Self {
        Self::with_max_line(MAX_LINE)
    }

    /// A parser that drops lines longer than `max_line` bytes, and events with more data.
    pub fn with_max_line(max_line: usize) -> Self {
        Self {
            max_line,
            ..Self::default()
        }
    }

    /// Takes the next chunk of the stream; returns the events it completes, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        let mut rest = chunk;
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        while let Some(end) = rest.iter().position(|b| *b == b'\n' || *b == b'\r') {
            let (head, tail) = rest.split_at(end);
            self.take_bytes(head);
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, &mut out);
            rest = &tail[1..];
            if tail[0] == b'\r' {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.take_bytes(rest);
        out
    }

    fn take_bytes(&mut self, bytes: &[u8]) {
        if self.line.len() + bytes.len() > self.max_line {
            // Too long to be ours: dropped, and so is the rest of that line.
            self.line.clear();
            self.line.extend_from_slice(b":");
            return;
        }
        self.line.extend_from_slice(bytes);
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if self.has_data && !self.too_big {
                out.push(SseEvent {
                    event: if self.event.is_empty() {
                        "message".to_owned()
                    } else {
                        std::mem::take(&mut self.event)
                    },
                    data: std::mem::take(&mut self.data),
                    id: self.id.clone(),
                });
            }
            self.event.clear();
            self.data.clear();
            self.has_data = false;
            self.too_big = false;
            return;
        }
        let text = String::from_utf8_lossy(line);
        if text.starts_with(':') {
            return;
        }
        let (field, value) = match text.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (text.as_ref(), ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                if self.data.len() + value.len() + 1 > self.max_line {
                    self.too_big = true;
                    self.data.clear();
                } else if !self.too_big {
                    if self.has_data {
                        self.data.push('\n');
                    }
                    self.data.push_str(value);
                }
                self.has_data = true;
            }
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ev(event: &str, data: &str, id: Option<&str>) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
            id: id.map(Into::into),
        }
    }

    #[test]
    fn events_are_dispatched_on_blank_lines_with_their_id() {
        let mut p = SseParser::new();
        let got = p.push(b": keep-alive\n\nevent: change\nid: 7\ndata: {\"seq\":7}\n\ndata: x\n\n");
        assert_eq!(
            got,
            vec![
                ev("change", "{\"seq\":7}", Some("7")),
                ev("message", "x", Some("7"))
            ]
        );
    }

    #[test]
    fn data_lines_join_and_every_line_ending_counts() {
        let mut p = SseParser::new();
        let got = p.push(b"data: a\r\ndata:b\rdata\n\r\n");
        assert_eq!(got, vec![ev("message", "a\nb\n", None)]);
    }

    #[test]
    fn an_event_without_data_is_not_dispatched_and_its_name_is_forgotten() {
        let mut p = SseParser::new();
        assert!(p.push(b"event: change\n\n").is_empty());
        assert_eq!(p.push(b"data: 1\n\n"), vec![ev("message", "1", None)]);
    }

    #[test]
    fn a_line_that_is_too_long_is_dropped_whole() {
        let mut p = SseParser::with_max_line(8);
        let got = p.push(b"data: 0123456789\n\ndata: ok\n\n");
        assert_eq!(got, vec![ev("message", "ok", None)]);
    }

    #[test]
    fn an_event_with_too_much_data_is_dropped_and_the_buffer_stays_bounded() {
        let mut p = SseParser::with_max_line(64);
        for _ in 0..100_000 {
            assert!(p.push(b"data: xxxxxxxx\n").is_empty());
            assert!(p.data.len() <= 64, "{} bytes buffered", p.data.len());
        }
        // The oversized event ends and is dropped whole; the next one comes through.
        assert!(p.push(b"\n").is_empty());
        let got = p.push(b"data: a\ndata: b\n\n");
        assert_eq!(got, vec![ev("message", "a\nb", None)]);
    }

    #[test]
    fn bad_utf8_is_replaced_not_a_panic() {
        let mut p = SseParser::new();
        let got = p.push(b"data: \xff\xfe\n\n");
        assert_eq!(got.len(), 1);
        assert!(got[0].data.contains('\u{fffd}'));
    }

    proptest! {
        /// However the stream is cut into chunks (a CRLF split across two included), the same
        /// events come out.
        #[test]
        fn chunking_does_not_change_the_events(
            cuts in proptest::collection::vec(0usize..200, 0..12),
            crlf in any::<bool>(),
        ) {
            let nl = if crlf { "\r\n" } else { "\n" };
            let stream = format!(
                "event: change{nl}id: 1{nl}data: {{\"a\":\"é\"}}{nl}{nl}: c{nl}data: x{nl}data: y{nl}{nl}id: 2{nl}event: change{nl}data: z{nl}{nl}"
            );
            let bytes = stream.as_bytes();
            let whole = SseParser::new().push(bytes);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut p = SseParser::new();
            let mut got = Vec::new();
            let mut at = 0;
            for c in cuts.into_iter().chain([bytes.len()]) {
                got.extend(p.push(&bytes[at..c]));
                at = c;
            }
            prop_assert_eq!(whole.len(), 3);
            prop_assert_eq!(got, whole);
        }
    }
}
