//! Field primitives shared by SoupBinTCP and OUCH: fixed-width ASCII fields and bounds-checked
//! big-endian cursors.

use std::fmt;

/// Encoding into a caller buffer failed; nothing meaningful was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("output buffer too small: {needed_bytes} bytes needed, {available_bytes} available")]
    BufferTooSmall { needed_bytes: usize, available_bytes: usize },
    #[error("field {field} is {len_bytes} bytes long, at most {max_bytes} fit")]
    FieldTooLong { field: &'static str, len_bytes: usize, max_bytes: usize },
    #[error("field {field} holds a byte outside printable ASCII (0x20..=0x7e)")]
    FieldNotPrintable { field: &'static str },
    #[error("number {value} does not fit the {width}-character numeric field {field}")]
    NumberTooWide { field: &'static str, value: u64, width: usize },
    #[error("payload of {len_bytes} bytes exceeds the {max_bytes}-byte SoupBinTCP packet limit")]
    PayloadTooLarge { len_bytes: usize, max_bytes: usize },
}

/// A fixed-width alpha field: printable ASCII, left-justified, padded on the right with spaces
/// (the padding rule both SoupBinTCP 3.0 and OUCH 5.0 use for alpha fields).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Alpha<const N: usize>([u8; N]);

impl<const N: usize> Alpha<N> {
    /// All spaces: the "not specified" value (for example a blank requested session).
    pub const BLANK: Self = Self([b' '; N]);

    /// Builds a field from text, padding with spaces. Errors if the text is longer than `N`
    /// or holds a byte outside printable ASCII.
    pub fn new(field: &'static str, text: &str) -> Result<Self, EncodeError> {
        let bytes = text.as_bytes();
        if bytes.len() > N {
            return Err(EncodeError::FieldTooLong { field, len_bytes: bytes.len(), max_bytes: N });
        }
        if !bytes.iter().all(|b| is_printable(*b)) {
            return Err(EncodeError::FieldNotPrintable { field });
        }
        let mut out = [b' '; N];
        out[..bytes.len()].copy_from_slice(bytes);
        Ok(Self(out))
    }

    /// Wraps raw wire bytes; `None` if any byte is outside printable ASCII.
    pub fn from_wire(raw: [u8; N]) -> Option<Self> {
        raw.iter().all(|b| is_printable(*b)).then_some(Self(raw))
    }

    /// The bytes exactly as they travel on the wire, padding included.
    pub fn as_wire(&self) -> &[u8; N] {
        &self.0
    }

    /// The text with right padding removed.
    pub fn as_str(&self) -> &str {
        let end = self.0.iter().rposition(|b| *b != b' ').map_or(0, |i| i + 1);
        // Invariant: every byte is printable ASCII, checked at construction, so it is UTF-8.
        std::str::from_utf8(&self.0[..end]).unwrap_or_default()
    }

    /// The text with spaces removed on both sides. Some clients (ouch-connect 5.0.1)
    /// right-justify alpha login fields against the spec, so credentials compare on this.
    pub fn trimmed(&self) -> &str {
        self.as_str().trim_start_matches(' ')
    }

    pub fn is_blank(&self) -> bool {
        self.0.iter().all(|b| *b == b' ')
    }
}

impl<const N: usize> fmt::Debug for Alpha<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

pub(crate) fn is_printable(b: u8) -> bool {
    (0x20..=0x7e).contains(&b)
}

/// Reads fixed offsets from a slice whose length the caller has already checked; every read is
/// within the checked prefix, so indexing cannot fail.
pub(crate) struct Rd<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Rd<'a> {
    pub(crate) fn new(b: &'a [u8], pos: usize) -> Self {
        Self { b, pos }
    }
    pub(crate) fn u8(&mut self) -> u8 {
        let v = self.b[self.pos];
        self.pos += 1;
        v
    }
    pub(crate) fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.b[self.pos..self.pos + N]);
        self.pos += N;
        out
    }
    pub(crate) fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.array())
    }
    pub(crate) fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.array())
    }
    pub(crate) fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.array())
    }
    pub(crate) fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.array())
    }
}

/// Writes into a buffer whose length was checked against the total message size up front.
pub(crate) struct Wr<'a> {
    pub(crate) b: &'a mut [u8],
    pub(crate) pos: usize,
}

impl<'a> Wr<'a> {
    /// Checks that `needed_bytes` fit before any byte is written.
    pub(crate) fn new(b: &'a mut [u8], needed_bytes: usize) -> Result<Self, EncodeError> {
        if b.len() < needed_bytes {
            return Err(EncodeError::BufferTooSmall { needed_bytes, available_bytes: b.len() });
        }
        Ok(Self { b, pos: 0 })
    }
    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.b[self.pos..self.pos + v.len()].copy_from_slice(v);
        self.pos += v.len();
    }
    pub(crate) fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.bytes(&v.to_be_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.bytes(&v.to_be_bytes());
    }
    pub(crate) fn i32(&mut self, v: i32) {
        self.bytes(&v.to_be_bytes());
    }
}
