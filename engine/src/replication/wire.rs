//! The replication protocol between a primary and its standby, over one TCP connection.
//!
//! Every frame: `u32` length of what follows up to the checksum (kind + body, little-endian,
//! at most [`MAX_FRAME_BYTES`]), `u8` kind, the body, `u32` CRC32C of kind + body. A frame that
//! is too long, of an unknown kind, fails its checksum or does not parse is a [`WireError`]
//! naming what was wrong; the connection is then closed and nothing of the frame applied.
//!
//! The handshake proves both ends hold the shared secret without sending it, each over the
//! other's fresh nonce (HMAC-SHA256), and names the cluster (a standby of another cluster is
//! refused):
//! 1. primary -> standby `Challenge { epoch, epoch_first_sequence, nonce_p }` (and the
//!    protocol magic and version): the primary's epoch and the sequence it began at;
//! 2. standby -> primary `Hello { cluster, epoch, next_sequence, nonce_s, mac_s }`;
//! 3. primary -> standby `Welcome { mac_p }`, or `Refused { reason }` and close.
//!
//! Each proof covers both nonces, the cluster, the standby's next sequence and both epochs.
//! Then the primary sends `Records` (each record: sequence, timestamp, payload, exactly as its
//! journal holds them) and `Heartbeat`s, both carrying its own durable mark (the standby's lag)
//! and whether the standby holds everything the primary acknowledged (promotable); the standby
//! answers `Ack { durable_through }` after each group commit of its journal.

use std::io::Read;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Sent first by the primary: a peer that is not a Petrel primary fails here.
pub const MAGIC: [u8; 8] = *b"PTRLREPL";
pub const VERSION: u16 = 1;
/// Largest frame (kind + body): a batch of records stops short of it.
pub const MAX_FRAME_BYTES: usize = 1 << 20;
/// Payload bytes a primary puts in one `Records` frame (each record adds 20 bytes of header).
pub const RECORDS_FRAME_PAYLOAD_BYTES: usize = 256 << 10;
pub const NONCE_BYTES: usize = 16;
pub const MAC_BYTES: usize = 32;

const KIND_CHALLENGE: u8 = 1;
const KIND_HELLO: u8 = 2;
const KIND_WELCOME: u8 = 3;
const KIND_REFUSED: u8 = 4;
const KIND_RECORDS: u8 = 5;
const KIND_ACK: u8 = 6;
const KIND_HEARTBEAT: u8 = 7;
const KIND_STATE_HASH: u8 = 8;
const KIND_FILE_CHUNK: u8 = 9;
const KIND_REBUILT: u8 = 10;
/// Data bytes in one `FileChunk` frame.
pub const FILE_CHUNK_BYTES: usize = 512 << 10;
/// Longest path of a file in a `FileChunk`.
const FILE_PATH_BYTES_MAX: usize = 255;

pub type Nonce = [u8; NONCE_BYTES];
pub type Tag = [u8; MAC_BYTES];

/// What is wrong with the bytes a peer sent.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("connection closed by the peer")]
    Closed,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {0} bytes exceeds the limit of {MAX_FRAME_BYTES}")]
    TooLong(usize),
    #[error("empty frame")]
    Empty,
    #[error("frame checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): not a Petrel replication peer, or damaged bytes")]
    Checksum { stored: u32, computed: u32 },
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    #[error("malformed {kind} frame: {why}")]
    Malformed { kind: &'static str, why: String },
    #[error("expected a {expected} frame, got {got}")]
    Unexpected { expected: &'static str, got: &'static str },
}

/// One record as shipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireRecord<'a> {
    pub sequence: u64,
    pub timestamp_ns: u64,
    pub payload: &'a [u8],
}

/// A decoded frame; `Records` borrows the reader's buffer.
#[derive(Debug)]
pub enum Frame<'a> {
    Challenge {
        magic: [u8; 8],
        version: u16,
        epoch: u64,
        epoch_first_sequence: u64,
        nonce: Nonce,
    },
    Hello {
        version: u16,
        cluster: &'a [u8],
        epoch: u64,
        policy: u8,
        next_sequence: u64,
        nonce: Nonce,
        mac: Tag,
    },
    Welcome {
        mac: Tag,
    },
    Refused {
        reason: &'a str,
    },
    Records {
        primary_durable: u64,
        promotable: bool,
        records: RecordIter<'a>,
    },
    Ack {
        durable_through: u64,
    },
    Heartbeat {
        primary_durable: u64,
        promotable: bool,
    },
    /// The primary's state hash after `sequence`, sent right after that record.
    StateHash {
        sequence: u64,
        hash: u128,
    },
    /// Part of a file of a backup the standby rebuilds from (it lacks records the primary's
    /// retention deleted): `path` inside the backup, the file's size, where `data` goes.
    FileChunk {
        path: &'a str,
        file_bytes: u64,
        offset: u64,
        data: &'a [u8],
    },
    /// The backup is whole: this many files and bytes were sent.
    Rebuilt {
        files: u32,
        bytes: u64,
    },
}

impl Frame<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            Frame::Challenge { .. } => "Challenge",
            Frame::Hello { .. } => "Hello",
            Frame::Welcome { .. } => "Welcome",
            Frame::Refused { .. } => "Refused",
            Frame::Records { .. } => "Records",
            Frame::Ack { .. } => "Ack",
            Frame::Heartbeat { .. } => "Heartbeat",
            Frame::StateHash { .. } => "StateHash",
            Frame::FileChunk { .. } => "FileChunk",
            Frame::Rebuilt { .. } => "Rebuilt",
        }
    }
}

/// The records of a `Records` frame, checked for shape when the frame was read.
#[derive(Clone, Debug)]
pub struct RecordIter<'a> {
    rest: &'a [u8],
    left: u32,
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = WireRecord<'a>;
    fn next(&mut self) -> Option<WireRecord<'a>> {
        if self.left == 0 {
            return None;
        }
        let (sequence, timestamp_ns) = (le_u64(self.rest, 0), le_u64(self.rest, 8));
        let len = le_u32(self.rest, 16) as usize;
        let payload = &self.rest[20..20 + len];
        self.rest = &self.rest[20 + len..];
        self.left -= 1;
        Some(WireRecord { sequence, timestamp_ns, payload })
    }
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}

/// What a proof covers besides the secret: which side proves ("primary" or "standby", so one
/// side's proof is never valid for the other), the cluster, the prover's nonce pair (the other
/// side's first) and the handshake's numbers (next sequence, both epochs).
#[derive(Clone, Copy)]
pub struct Proof<'a> {
    pub label: &'a [u8],
    pub cluster: &'a [u8],
    pub first: &'a Nonce,
    pub second: &'a Nonce,
    pub numbers: [u64; 4],
}

impl Proof<'_> {
    fn hmac(&self, secret: &[u8]) -> Hmac<Sha256> {
        let mut h = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes a key of any length");
        for part in [self.label, &[self.cluster.len() as u8][..], self.cluster, self.first, self.second] {
            h.update(part);
        }
        for n in self.numbers {
            h.update(&n.to_le_bytes());
        }
        h
    }

    /// HMAC-SHA256 of the fields under the shared secret.
    pub fn tag(&self, secret: &[u8]) -> Tag {
        self.hmac(secret).finalize().into_bytes().into()
    }

    /// Whether `tag` proves the secret for these fields (compared in constant time).
    pub fn holds(&self, secret: &[u8], tag: &Tag) -> bool {
        self.hmac(secret).verify_slice(tag).is_ok()
    }
}

/// A fresh nonce from the kernel's random source.
pub fn nonce() -> std::io::Result<Nonce> {
    let mut n = [0u8; NONCE_BYTES];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut n)?;
    Ok(n)
}

/// Builds frames into one reusable buffer (no allocation once it has grown).
#[derive(Default)]
pub struct FrameWriter {
    buf: Vec<u8>,
    /// Records in the `Records` frame being built, and where its count goes.
    records: Option<(usize, u32)>,
}

impl FrameWriter {
    pub fn new() -> FrameWriter {
        FrameWriter::default()
    }

    fn begin(&mut self, kind: u8) {
        self.buf.clear();
        self.buf.extend_from_slice(&[0; 4]);
        self.buf.push(kind);
    }

    fn finish(&mut self) -> &[u8] {
        let len = self.buf.len() - 4;
        self.buf[..4].copy_from_slice(&(len as u32).to_le_bytes());
        let crc = crc32c::crc32c(&self.buf[4..]);
        self.buf.extend_from_slice(&crc.to_le_bytes());
        &self.buf
    }

    pub fn challenge(&mut self, epoch: u64, epoch_first_sequence: u64, nonce: &Nonce) -> &[u8] {
        self.begin(KIND_CHALLENGE);
        self.buf.extend_from_slice(&MAGIC);
        self.buf.extend_from_slice(&VERSION.to_le_bytes());
        self.buf.extend_from_slice(&epoch.to_le_bytes());
        self.buf.extend_from_slice(&epoch_first_sequence.to_le_bytes());
        self.buf.extend_from_slice(nonce);
        self.finish()
    }

    pub fn hello(
        &mut self,
        cluster: &[u8],
        epoch: u64,
        policy: u8,
        next_sequence: u64,
        nonce: &Nonce,
        mac: &Tag,
    ) -> &[u8] {
        self.begin(KIND_HELLO);
        self.buf.extend_from_slice(&VERSION.to_le_bytes());
        self.buf.push(cluster.len() as u8);
        self.buf.extend_from_slice(cluster);
        self.buf.extend_from_slice(&epoch.to_le_bytes());
        self.buf.push(policy);
        self.buf.extend_from_slice(&next_sequence.to_le_bytes());
        self.buf.extend_from_slice(nonce);
        self.buf.extend_from_slice(mac);
        self.finish()
    }

    pub fn welcome(&mut self, mac: &Tag) -> &[u8] {
        self.begin(KIND_WELCOME);
        self.buf.extend_from_slice(mac);
        self.finish()
    }

    pub fn refused(&mut self, reason: &str) -> &[u8] {
        self.begin(KIND_REFUSED);
        let reason = &reason.as_bytes()[..reason.len().min(512)];
        self.buf.extend_from_slice(reason);
        self.finish()
    }

    pub fn ack(&mut self, durable_through: u64) -> &[u8] {
        self.begin(KIND_ACK);
        self.buf.extend_from_slice(&durable_through.to_le_bytes());
        self.finish()
    }

    pub fn heartbeat(&mut self, primary_durable: u64, promotable: bool) -> &[u8] {
        self.begin(KIND_HEARTBEAT);
        self.buf.extend_from_slice(&primary_durable.to_le_bytes());
        self.buf.push(u8::from(promotable));
        self.finish()
    }

    pub fn state_hash(&mut self, sequence: u64, hash: u128) -> &[u8] {
        self.begin(KIND_STATE_HASH);
        self.buf.extend_from_slice(&sequence.to_le_bytes());
        self.buf.extend_from_slice(&hash.to_le_bytes());
        self.finish()
    }

    pub fn file_chunk(&mut self, path: &str, file_bytes: u64, offset: u64, data: &[u8]) -> &[u8] {
        assert!(path.len() <= FILE_PATH_BYTES_MAX && data.len() <= FILE_CHUNK_BYTES);
        self.begin(KIND_FILE_CHUNK);
        self.buf.extend_from_slice(&(path.len() as u16).to_le_bytes());
        self.buf.extend_from_slice(path.as_bytes());
        self.buf.extend_from_slice(&file_bytes.to_le_bytes());
        self.buf.extend_from_slice(&offset.to_le_bytes());
        self.buf.extend_from_slice(data);
        self.finish()
    }

    pub fn rebuilt(&mut self, files: u32, bytes: u64) -> &[u8] {
        self.begin(KIND_REBUILT);
        self.buf.extend_from_slice(&files.to_le_bytes());
        self.buf.extend_from_slice(&bytes.to_le_bytes());
        self.finish()
    }

    /// Starts a `Records` frame; add records with [`record`](Self::record), then
    /// [`finish_records`](Self::finish_records).
    pub fn begin_records(&mut self, primary_durable: u64, promotable: bool) {
        self.begin(KIND_RECORDS);
        self.buf.extend_from_slice(&primary_durable.to_le_bytes());
        self.buf.push(u8::from(promotable));
        self.records = Some((self.buf.len(), 0));
        self.buf.extend_from_slice(&0u32.to_le_bytes());
    }

    pub fn record(&mut self, sequence: u64, timestamp_ns: u64, payload: &[u8]) {
        let (_, count) = self.records.as_mut().expect("begin_records first");
        *count += 1;
        self.buf.extend_from_slice(&sequence.to_le_bytes());
        self.buf.extend_from_slice(&timestamp_ns.to_le_bytes());
        self.buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(payload);
    }

    pub fn finish_records(&mut self) -> &[u8] {
        let (at, count) = self.records.take().expect("begin_records first");
        self.buf[at..at + 4].copy_from_slice(&count.to_le_bytes());
        self.finish()
    }
}

/// Reads frames from a blocking stream through one reusable buffer.
#[derive(Default)]
pub struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    pub fn new() -> FrameReader {
        FrameReader::default()
    }

    /// The next whole frame. Honours the stream's read timeout (`Io` of kind `WouldBlock` or
    /// `TimedOut` when nothing at all arrived: a frame started is read to its end).
    pub fn read<'a>(&'a mut self, stream: &mut impl Read) -> Result<Frame<'a>, WireError> {
        let mut len = [0u8; 4];
        read_exact_or_closed(stream, &mut len, true)?;
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_FRAME_BYTES {
            return Err(WireError::TooLong(len));
        }
        if len == 0 {
            return Err(WireError::Empty);
        }
        self.buf.resize(len + 4, 0);
        read_exact_or_closed(stream, &mut self.buf, false)?;
        let stored = le_u32(&self.buf, len);
        let computed = crc32c::crc32c(&self.buf[..len]);
        if stored != computed {
            return Err(WireError::Checksum { stored, computed });
        }
        parse(&self.buf[..len])
    }
}

/// Reads all of `buf`. `first`: nothing of the frame has been read yet, so a timeout may be
/// returned as it is; once a frame started, the rest is waited for.
fn read_exact_or_closed(stream: &mut impl Read, buf: &mut [u8], first: bool) -> Result<(), WireError> {
    let mut n = 0;
    while n < buf.len() {
        match stream.read(&mut buf[n..]) {
            Ok(0) => return Err(WireError::Closed),
            Ok(read) => n += read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
                    && !(first && n == 0) => {}
            Err(e) => return Err(WireError::Io(e)),
        }
    }
    Ok(())
}

fn malformed(kind: &'static str, why: impl Into<String>) -> WireError {
    WireError::Malformed { kind, why: why.into() }
}

fn exact(kind: &'static str, body: &[u8], want: usize) -> Result<(), WireError> {
    if body.len() == want {
        Ok(())
    } else {
        Err(malformed(kind, format!("{} body bytes, expected {want}", body.len())))
    }
}

fn parse(frame: &[u8]) -> Result<Frame<'_>, WireError> {
    let (kind, body) = (frame[0], &frame[1..]);
    match kind {
        KIND_CHALLENGE => {
            exact("Challenge", body, 8 + 2 + 16 + NONCE_BYTES)?;
            Ok(Frame::Challenge {
                magic: body[..8].try_into().expect("8"),
                version: le_u16(body, 8),
                epoch: le_u64(body, 10),
                epoch_first_sequence: le_u64(body, 18),
                nonce: body[26..].try_into().expect("nonce"),
            })
        }
        KIND_HELLO => {
            if body.len() < 3 {
                return Err(malformed("Hello", "shorter than its fixed fields"));
            }
            let cluster_len = body[2] as usize;
            exact("Hello", body, 3 + cluster_len + 17 + NONCE_BYTES + MAC_BYTES)?;
            let at = 3 + cluster_len;
            Ok(Frame::Hello {
                version: le_u16(body, 0),
                cluster: &body[3..at],
                epoch: le_u64(body, at),
                policy: body[at + 8],
                next_sequence: le_u64(body, at + 9),
                nonce: body[at + 17..at + 17 + NONCE_BYTES].try_into().expect("nonce"),
                mac: body[at + 17 + NONCE_BYTES..].try_into().expect("mac"),
            })
        }
        KIND_WELCOME => {
            exact("Welcome", body, MAC_BYTES)?;
            Ok(Frame::Welcome { mac: body.try_into().expect("mac") })
        }
        KIND_REFUSED => std::str::from_utf8(body)
            .map(|reason| Frame::Refused { reason })
            .map_err(|_| malformed("Refused", "reason is not UTF-8")),
        KIND_RECORDS => parse_records(body),
        KIND_ACK => {
            exact("Ack", body, 8)?;
            Ok(Frame::Ack { durable_through: le_u64(body, 0) })
        }
        KIND_HEARTBEAT => {
            exact("Heartbeat", body, 9)?;
            Ok(Frame::Heartbeat { primary_durable: le_u64(body, 0), promotable: flag("Heartbeat", body[8])? })
        }
        KIND_STATE_HASH => {
            exact("StateHash", body, 24)?;
            Ok(Frame::StateHash {
                sequence: le_u64(body, 0),
                hash: u128::from_le_bytes(body[8..24].try_into().expect("16 bytes")),
            })
        }
        KIND_FILE_CHUNK => parse_file_chunk(body),
        KIND_REBUILT => {
            exact("Rebuilt", body, 12)?;
            Ok(Frame::Rebuilt { files: le_u32(body, 0), bytes: le_u64(body, 4) })
        }
        other => Err(WireError::UnknownKind(other)),
    }
}

fn parse_file_chunk(body: &[u8]) -> Result<Frame<'_>, WireError> {
    if body.len() < 2 {
        return Err(malformed("FileChunk", "shorter than its fixed fields"));
    }
    let path_len = le_u16(body, 0) as usize;
    if path_len > FILE_PATH_BYTES_MAX || body.len() < 2 + path_len + 16 {
        return Err(malformed("FileChunk", format!("a path of {path_len} bytes does not fit")));
    }
    let path = std::str::from_utf8(&body[2..2 + path_len])
        .map_err(|_| malformed("FileChunk", "the path is not UTF-8"))?;
    let (file_bytes, offset) = (le_u64(body, 2 + path_len), le_u64(body, 10 + path_len));
    let data = &body[18 + path_len..];
    if offset.checked_add(data.len() as u64).is_none_or(|end| end > file_bytes) {
        return Err(malformed(
            "FileChunk",
            format!("{} bytes at offset {offset} pass the end of a {file_bytes}-byte file", data.len()),
        ));
    }
    Ok(Frame::FileChunk { path, file_bytes, offset, data })
}

/// Checks the shape of every record once, so that iterating cannot fail.
fn flag(kind: &'static str, byte: u8) -> Result<bool, WireError> {
    match byte {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(malformed(kind, format!("flag byte {other} is neither 0 nor 1"))),
    }
}

fn parse_records(body: &[u8]) -> Result<Frame<'_>, WireError> {
    if body.len() < 13 {
        return Err(malformed("Records", "shorter than its fixed fields"));
    }
    let primary_durable = le_u64(body, 0);
    let promotable = flag("Records", body[8])?;
    let count = le_u32(body, 9);
    let records = &body[13..];
    let mut at = 0usize;
    let mut previous = None;
    for i in 0..count {
        if records.len() - at < 20 {
            return Err(malformed("Records", format!("record {i} of {count} is cut short")));
        }
        let sequence = le_u64(records, at);
        let len = le_u32(records, at + 16) as usize;
        if records.len() - at - 20 < len {
            return Err(malformed(
                "Records",
                format!("record {i} (sequence {sequence}) claims {len} payload bytes past the frame's end"),
            ));
        }
        if previous.is_some_and(|p: u64| p + 1 != sequence) {
            return Err(malformed(
                "Records",
                format!("sequence {sequence} does not follow {}", previous.unwrap_or(0)),
            ));
        }
        previous = Some(sequence);
        at += 20 + len;
    }
    if at != records.len() {
        return Err(malformed(
            "Records",
            format!("{} bytes after the last of {count} records", records.len() - at),
        ));
    }
    Ok(Frame::Records { primary_durable, promotable, records: RecordIter { rest: records, left: count } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_any_flipped_bit_is_refused() {
        let mut w = FrameWriter::new();
        w.begin_records(9, true);
        w.record(7, 70, b"seven");
        w.record(8, 80, b"");
        let bytes = w.finish_records().to_vec();
        let mut r = FrameReader::new();
        match r.read(&mut &bytes[..]).expect("valid frame") {
            Frame::Records { primary_durable, promotable, records } => {
                assert_eq!((primary_durable, promotable), (9, true));
                let got: Vec<_> = records.collect();
                assert_eq!(
                    got,
                    [
                        WireRecord { sequence: 7, timestamp_ns: 70, payload: b"seven" },
                        WireRecord { sequence: 8, timestamp_ns: 80, payload: b"" },
                    ]
                );
            }
            other => panic!("{other:?}"),
        }
        for bit in 32..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(FrameReader::new().read(&mut &damaged[..]).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn file_chunks_round_trip_and_a_chunk_past_its_file_is_malformed() {
        let mut w = FrameWriter::new();
        let bytes = w.file_chunk("journal/input-1.seg", 10, 4, b"abcdef").to_vec();
        match FrameReader::new().read(&mut &bytes[..]).expect("valid frame") {
            Frame::FileChunk { path, file_bytes, offset, data } => {
                assert_eq!((path, file_bytes, offset, data), ("journal/input-1.seg", 10, 4, &b"abcdef"[..]))
            }
            other => panic!("{other:?}"),
        }
        let bytes = w.rebuilt(3, 99).to_vec();
        assert!(matches!(
            FrameReader::new().read(&mut &bytes[..]),
            Ok(Frame::Rebuilt { files: 3, bytes: 99 })
        ));
        let past = w.file_chunk("manifest.json", 5, 4, b"ab").to_vec();
        let err = FrameReader::new().read(&mut &past[..]).unwrap_err().to_string();
        assert!(err.contains("pass the end of a 5-byte file"), "{err}");
    }

    #[test]
    fn a_proof_covers_the_secret_the_side_the_cluster_the_nonces_and_the_numbers() {
        let (a, b) = ([1u8; NONCE_BYTES], [2u8; NONCE_BYTES]);
        let secret = b"0123456789abcdef";
        let proof = Proof { label: b"standby", cluster: b"c1", first: &a, second: &b, numbers: [5, 1, 1, 0] };
        let tag = proof.tag(secret);
        assert!(proof.holds(secret, &tag));
        assert!(!proof.holds(b"0123456789abcdeX", &tag));
        assert!(!Proof { label: b"primary", ..proof }.holds(secret, &tag));
        assert!(!Proof { cluster: b"c2", ..proof }.holds(secret, &tag));
        assert!(!Proof { first: &b, second: &a, ..proof }.holds(secret, &tag));
        assert!(!Proof { numbers: [5, 2, 1, 0], ..proof }.holds(secret, &tag));
    }

    #[test]
    fn a_records_frame_with_a_gap_or_a_lying_length_is_malformed() {
        let mut w = FrameWriter::new();
        w.begin_records(9, false);
        w.record(7, 70, b"a");
        w.record(9, 90, b"b");
        let bytes = w.finish_records().to_vec();
        assert!(matches!(FrameReader::new().read(&mut &bytes[..]), Err(WireError::Malformed { .. })));
        let too_long = (MAX_FRAME_BYTES as u32 + 1).to_le_bytes();
        assert!(matches!(FrameReader::new().read(&mut &too_long[..]), Err(WireError::TooLong(_))));
    }
}
