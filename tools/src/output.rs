//! Printing: the output options every command takes, byte encodings, aligned tables, JSON
//! lines, and a stdout writer that turns a closed pipe into a quiet exit.

use std::io::{self, BufWriter, Stdout, Write};

use base64::Engine;
use clap::ValueEnum;
use serde::Serialize;

/// How keys or values are printed (and, for `get`/`put`/`delete`/`scan`, read from the
/// command line).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Encoding {
    /// UTF-8 where printable; `\xNN` for any other byte and `\\` for a backslash.
    Utf8,
    /// Lowercase hexadecimal, two digits a byte.
    Hex,
    /// Standard base64 with padding.
    Base64,
}

/// Output options shared by every inspection command.
#[derive(clap::Args, Clone, Debug)]
pub struct OutputArgs {
    /// Print one JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
    /// How to print keys (and read keys given on the command line).
    #[arg(long, value_enum, default_value_t = Encoding::Utf8)]
    pub key_encoding: Encoding,
    /// How to print values (and read values given on the command line).
    #[arg(long, value_enum, default_value_t = Encoding::Utf8)]
    pub value_encoding: Encoding,
}

impl OutputArgs {
    /// A key, printed.
    pub fn key(&self, bytes: &[u8]) -> String {
        encode(bytes, self.key_encoding)
    }

    /// A value, printed.
    pub fn value(&self, bytes: &[u8]) -> String {
        encode(bytes, self.value_encoding)
    }
}

/// Prints `bytes` in `encoding`. Never lossy: every encoding can be read back.
pub fn encode(bytes: &[u8], encoding: Encoding) -> String {
    match encoding {
        Encoding::Utf8 => escape_utf8(bytes),
        Encoding::Hex => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(bytes),
    }
}

/// Reads bytes given in `encoding` (the inverse of [`encode`]).
pub fn decode(text: &str, encoding: Encoding) -> Result<Vec<u8>, String> {
    match encoding {
        Encoding::Utf8 => unescape_utf8(text),
        Encoding::Hex => decode_hex(text),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| format!("{text:?} is not base64: {e}")),
    }
}

fn escape_utf8(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => {
                    let mut buf = [0u8; 4];
                    c.encode_utf8(&mut buf)
                        .bytes()
                        .for_each(|b| push_hex_escape(&mut out, b));
                }
                c => out.push(c),
            }
        }
        chunk
            .invalid()
            .iter()
            .for_each(|&b| push_hex_escape(&mut out, b));
    }
    out
}

fn push_hex_escape(out: &mut String, b: u8) {
    out.push_str(&format!("\\x{b:02x}"));
}

fn unescape_utf8(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\\') {
        out.extend_from_slice(&rest.as_bytes()[..at]);
        let escape = &rest[at..];
        if let Some(after) = escape.strip_prefix("\\\\") {
            out.push(b'\\');
            rest = after;
        } else if let Some(b) = escape.get(2..4).filter(|_| escape.starts_with("\\x")) {
            out.push(hex_byte(b).ok_or_else(|| bad_escape(text))?);
            rest = &escape[4..];
        } else {
            return Err(bad_escape(text));
        }
    }
    out.extend_from_slice(rest.as_bytes());
    Ok(out)
}

fn bad_escape(text: &str) -> String {
    format!("{text:?}: a backslash must start \\\\ or \\xNN (two hex digits)")
}

fn decode_hex(text: &str) -> Result<Vec<u8>, String> {
    let bad = || format!("{text:?} is not hexadecimal (two digits a byte)");
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return Err(bad());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| hex_byte(&text[i..i + 2]).ok_or_else(bad))
        .collect()
}

/// Two hexadecimal digits as a byte (no sign, no other characters).
fn hex_byte(digits: &str) -> Option<u8> {
    let all_hex = digits.len() == 2 && digits.bytes().all(|b| b.is_ascii_hexdigit());
    all_hex
        .then(|| u8::from_str_radix(digits, 16).ok())
        .flatten()
}

/// Standard output, buffered, optionally flushed after every line.
///
/// Every write returns `io::Result`, so a reader that went away (`| head`) surfaces as
/// `BrokenPipe`, which `main` turns into a quiet exit with status 0.
pub struct Out {
    w: BufWriter<Stdout>,
    flush_each_line: bool,
}

impl Out {
    /// Buffered standard output.
    pub fn new() -> Self {
        Out {
            w: BufWriter::new(io::stdout()),
            flush_each_line: false,
        }
    }

    /// Standard output flushed after every line, for output that follows a live database.
    pub fn line_flushed() -> Self {
        Out {
            flush_each_line: true,
            ..Out::new()
        }
    }

    /// Prints one line.
    pub fn line(&mut self, text: &str) -> io::Result<()> {
        self.w.write_all(text.as_bytes())?;
        self.end_line()
    }

    /// Prints one JSON object on its own line.
    pub fn json<T: Serialize>(&mut self, value: &T) -> io::Result<()> {
        let text = serde_json::to_string(value)?;
        self.line(&text)
    }

    fn end_line(&mut self) -> io::Result<()> {
        self.w.write_all(b"\n")?;
        if self.flush_each_line {
            self.w.flush()?;
        }
        Ok(())
    }

    /// Flushes what is buffered.
    pub fn finish(mut self) -> io::Result<()> {
        self.w.flush()
    }
}

/// Column alignment.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// Rows of text printed in aligned columns, a chunk at a time so that a dump of millions of
/// entries does not sit in memory. Column widths only grow from chunk to chunk.
pub struct Table {
    columns: Vec<(&'static str, Align)>,
    widths: Vec<usize>,
    rows: Vec<Vec<String>>,
    header_done: bool,
}

/// Rows held before a chunk is printed.
const TABLE_CHUNK_ROWS: usize = 512;

impl Table {
    /// A table with these column headers.
    pub fn new(columns: &[(&'static str, Align)]) -> Self {
        Table {
            columns: columns.to_vec(),
            widths: columns.iter().map(|(h, _)| h.chars().count()).collect(),
            rows: Vec::new(),
            header_done: false,
        }
    }

    /// Adds a row, printing the chunk once it is full.
    pub fn row(&mut self, out: &mut Out, cells: Vec<String>) -> io::Result<()> {
        for (w, cell) in self.widths.iter_mut().zip(&cells) {
            *w = (*w).max(cell.chars().count());
        }
        self.rows.push(cells);
        if self.rows.len() >= TABLE_CHUNK_ROWS {
            self.print_chunk(out)?;
        }
        Ok(())
    }

    /// Prints the rows still held (and the header, if nothing was printed yet).
    pub fn finish(mut self, out: &mut Out) -> io::Result<()> {
        if self.rows.is_empty() && !self.header_done {
            return Ok(());
        }
        self.print_chunk(out)
    }

    fn print_chunk(&mut self, out: &mut Out) -> io::Result<()> {
        if !self.header_done {
            self.header_done = true;
            let header: Vec<String> = self.columns.iter().map(|(h, _)| h.to_string()).collect();
            out.line(&self.format(&header))?;
        }
        for row in std::mem::take(&mut self.rows) {
            out.line(&self.format(&row))?;
        }
        Ok(())
    }

    fn format(&self, cells: &[String]) -> String {
        let last = cells.len().saturating_sub(1);
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let (width, align) = (self.widths[i], self.columns[i].1);
            let pad = width.saturating_sub(cell.chars().count());
            match align {
                Align::Right => line.push_str(&format!("{}{cell}", " ".repeat(pad))),
                Align::Left if i == last => line.push_str(cell),
                Align::Left => line.push_str(&format!("{cell}{}", " ".repeat(pad))),
            }
            if i != last {
                line.push_str("  ");
            }
        }
        line.truncate(line.trim_end().len());
        line
    }
}

/// A byte count for people: `512 B`, `4.0 KiB`, `1.5 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{n} B"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}

pub use alluvium::inspect::utc_time;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_encoding_reads_back_what_it_printed() {
        let samples: [&[u8]; 5] = [
            b"user:1",
            b"",
            b"a\\b",
            b"\x00\xff\n\xc3",
            "héllo ✓".as_bytes(),
        ];
        for bytes in samples {
            for enc in [Encoding::Utf8, Encoding::Hex, Encoding::Base64] {
                assert_eq!(
                    decode(&encode(bytes, enc), enc).as_deref(),
                    Ok(bytes),
                    "{enc:?}"
                );
            }
        }
        assert_eq!(encode(b"a\\b\x00\xff", Encoding::Utf8), "a\\\\b\\x00\\xff");
        assert_eq!(encode("é\n".as_bytes(), Encoding::Utf8), "é\\x0a");
    }

    #[test]
    fn malformed_input_is_refused() {
        assert!(decode("\\q", Encoding::Utf8).is_err());
        assert!(decode("\\x4", Encoding::Utf8).is_err());
        assert!(decode("abc", Encoding::Hex).is_err());
        assert!(decode("é0", Encoding::Hex).is_err());
        assert!(decode("!!", Encoding::Base64).is_err());
        assert!(decode("+f", Encoding::Hex).is_err());
        assert!(decode("\\x+f", Encoding::Utf8).is_err());
    }
}
