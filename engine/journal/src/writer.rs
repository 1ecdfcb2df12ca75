//! Opening (recovery) and the group-commit writer.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};

use crate::config::{Durability, JournalConfig};
use crate::error::{AppendError, JournalError};
use crate::format::{
    encode_record, record_total_bytes, segment_file_name, SegmentHeader, SEGMENT_HEADER_BYTES, TEMP_SUFFIX,
};
use crate::reader::JournalReader;
use crate::scan::{list_segments, scan_segment, JournalLocation, TornTail};

/// Entry point: `Journal::open` recovers the journal and returns its writer.
#[derive(Debug)]
pub struct Journal;

/// What recovery found, and the way to replay it.
#[derive(Clone, Debug)]
pub struct Recovery {
    pub location: JournalLocation,
    /// Segments in sequence order, as validated.
    pub segments: Vec<SegmentSummary>,
    /// Records in the journal after recovery (torn records excluded).
    pub record_count: u64,
    /// First and last sequence held; `None` for an empty journal.
    pub first_sequence: Option<u64>,
    pub last_sequence: Option<u64>,
    /// The torn tail that was cut off, if the last run crashed mid-commit.
    pub truncation: Option<TornTail>,
    /// Half-created segment files of a crashed roll-over, removed (they never hold records).
    pub removed_temp_files: Vec<PathBuf>,
    /// True when the directory held no segment and a first one was created.
    pub created: bool,
}

/// One validated segment.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SegmentSummary {
    pub path: PathBuf,
    pub first_sequence: u64,
    pub record_count: u64,
    /// Offset just past the last record.
    pub data_end_offset: u64,
    pub file_bytes: u64,
    pub first_timestamp_ns: Option<u64>,
    pub last_timestamp_ns: Option<u64>,
}

impl SegmentSummary {
    pub fn last_sequence(&self) -> Option<u64> {
        (self.record_count > 0).then(|| self.first_sequence + self.record_count - 1)
    }
}

impl Recovery {
    /// Sequence the writer expects next.
    pub fn next_sequence(&self) -> u64 {
        self.last_sequence.map_or_else(|| self.segments.first().map_or(1, |s| s.first_sequence), |s| s + 1)
    }

    /// Reads the recovered records with `sequence >= from_sequence`, in order, one segment
    /// buffer at a time. After loading a snapshot taken at sequence S, call with S + 1.
    pub fn replay_from(&self, from_sequence: u64) -> Result<JournalReader, JournalError> {
        JournalReader::new(self.location.clone(), &self.segments, from_sequence)
    }
}

impl Journal {
    /// Opens (or creates) the journal in `config.dir`: validates every record of every segment,
    /// cuts off a torn tail (reported in `Recovery::truncation`), refuses any other damage with
    /// `JournalError::Corrupt`, and returns a writer positioned after the last record.
    /// Takes an exclusive lock so that two engines never write one journal.
    pub fn open(config: &JournalConfig) -> Result<(JournalWriter, Recovery), JournalError> {
        config.validate()?;
        let location = JournalLocation::new(&config.dir, &config.file_prefix);
        let dir = &config.dir;
        std::fs::create_dir_all(dir).map_err(JournalError::io("create directory", dir))?;
        let lock_path = dir.join(format!("{}.lock", config.file_prefix));
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(JournalError::io("open lock file", &lock_path))?;
        let lock = Flock::lock(lock_file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
            if errno == nix::errno::Errno::EWOULDBLOCK {
                JournalError::Locked {
                    dir: dir.clone(),
                    prefix: config.file_prefix.clone(),
                    lock: lock_path.clone(),
                }
            } else {
                JournalError::Io { action: "lock", path: lock_path.clone(), source: errno.into() }
            }
        })?;

        let listing = list_segments(&location)?;
        for temp in &listing.temp_files {
            std::fs::remove_file(temp).map_err(JournalError::io("remove", temp))?;
        }
        if !listing.temp_files.is_empty() {
            sync_dir(dir)?;
        }

        let mut segments = Vec::with_capacity(listing.segments.len());
        let mut truncation = None;
        let mut expected_first = None;
        let mut record_count = 0u64;
        let last_index = listing.segments.len().checked_sub(1);
        for (index, segment) in listing.segments.iter().enumerate() {
            let is_last = Some(index) == last_index;
            let scan = scan_segment(&location, segment, expected_first, is_last, &mut |_, _| Ok(()))?;
            if let Some(tail) = &scan.tail {
                debug_assert!(is_last, "only the newest segment can have a torn tail");
                cut_tail(&segment.path, tail.offset, scan.header.segment_bytes, config.durability)?;
                truncation = Some(tail.clone());
            }
            expected_first = Some(scan.next_sequence());
            record_count += scan.records;
            segments.push(SegmentSummary {
                path: segment.path.clone(),
                first_sequence: scan.header.first_sequence,
                record_count: scan.records,
                data_end_offset: scan.data_end,
                file_bytes: scan.header.segment_bytes,
                first_timestamp_ns: scan.first_timestamp_ns,
                last_timestamp_ns: scan.last_timestamp_ns,
            });
        }

        let created = segments.is_empty();
        let (file, segment_bytes, write_offset) = match segments.last() {
            Some(last) => {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&last.path)
                    .map_err(JournalError::io("open", &last.path))?;
                (file, last.file_bytes, last.data_end_offset)
            }
            None => {
                let (file, path) =
                    create_segment(&location, 1, config.segment_size_bytes, config.durability)?;
                segments.push(SegmentSummary {
                    path,
                    first_sequence: 1,
                    record_count: 0,
                    data_end_offset: SEGMENT_HEADER_BYTES,
                    file_bytes: config.segment_size_bytes,
                    first_timestamp_ns: None,
                    last_timestamp_ns: None,
                });
                (file, config.segment_size_bytes, SEGMENT_HEADER_BYTES)
            }
        };
        let first_sequence = segments.first().map(|s| s.first_sequence).filter(|_| record_count > 0);
        let recovery = Recovery {
            location: location.clone(),
            record_count,
            first_sequence,
            last_sequence: first_sequence.map(|first| first + record_count - 1),
            segments,
            truncation,
            removed_temp_files: listing.temp_files,
            created,
        };
        let next_sequence = recovery.next_sequence();
        let writer = JournalWriter {
            location,
            durability: config.durability,
            new_segment_bytes: config.segment_size_bytes,
            max_payload_bytes: config.max_record_payload_bytes,
            _lock: lock,
            path: recovery.segments.last().expect("a segment exists").path.clone(),
            file,
            segment_bytes,
            write_offset,
            buffer: vec![0u8; config.write_buffer_bytes as usize].into_boxed_slice(),
            buffered_bytes: 0,
            spill: None,
            next_sequence,
            batch_first_sequence: next_sequence,
            poisoned: false,
        };
        Ok((writer, recovery))
    }
}

/// Restores a torn segment to "records, then zeroes to the preallocated size": the damaged bytes
/// are dropped and the space re-preallocated, so later appends never sit next to stale garbage.
fn cut_tail(
    path: &Path,
    offset: u64,
    segment_bytes: u64,
    durability: Durability,
) -> Result<(), JournalError> {
    let file = OpenOptions::new().write(true).open(path).map_err(JournalError::io("open", path))?;
    file.set_len(offset).map_err(JournalError::io("truncate", path))?;
    preallocate(&file, path, segment_bytes)?;
    if durability == Durability::Fsync {
        file.sync_all().map_err(JournalError::io("fsync", path))?;
    }
    Ok(())
}

/// Reserves `segment_bytes` of disk for a segment file (zeroes), so that appending to it never
/// fails for lack of space; where the file system cannot, the file is extended sparse.
pub fn preallocate(file: &File, path: &Path, segment_bytes: u64) -> Result<(), JournalError> {
    let len = i64::try_from(segment_bytes).expect("segment size is validated to 2^40");
    match nix::fcntl::fallocate(file.as_raw_fd(), nix::fcntl::FallocateFlags::empty(), 0, len) {
        Ok(()) => Ok(()),
        // A filesystem without fallocate (tmpfs has it; some FUSE ones do not): a sparse file
        // still reads back as zeroes, which is all the format needs.
        Err(nix::errno::Errno::EOPNOTSUPP) => {
            file.set_len(segment_bytes).map_err(JournalError::io("extend", path))
        }
        Err(errno) => {
            Err(JournalError::Io { action: "preallocate", path: path.to_owned(), source: errno.into() })
        }
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(JournalError::io("fsync directory", dir))
}

/// Creates a segment atomically: a crash leaves either no segment or a complete, preallocated
/// one with a valid header (a leftover `.tmp` is removed on the next open).
fn create_segment(
    location: &JournalLocation,
    first_sequence: u64,
    segment_bytes: u64,
    durability: Durability,
) -> Result<(File, PathBuf), JournalError> {
    let path = location.segment_path(first_sequence);
    let temp = location
        .dir
        .join(format!("{}{TEMP_SUFFIX}", segment_file_name(&location.file_prefix, first_sequence)));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp)
        .map_err(JournalError::io("create", &temp))?;
    preallocate(&file, &temp, segment_bytes)?;
    let created_unix_ns = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let header = SegmentHeader { first_sequence, segment_bytes, created_unix_ns };
    file.write_all_at(&header.encode(), 0).map_err(JournalError::io("write header of", &temp))?;
    if durability == Durability::Fsync {
        file.sync_all().map_err(JournalError::io("fsync", &temp))?;
    }
    std::fs::rename(&temp, &path).map_err(JournalError::io("rename into place", &temp))?;
    if durability == Durability::Fsync {
        sync_dir(&location.dir)?;
    }
    Ok((file, path))
}

/// Outcome of one `commit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitStats {
    /// Records in this commit (0: nothing was buffered, no I/O done).
    pub records: u64,
    pub bytes_written: u64,
    /// Every record up to this sequence is durable (per the configured durability); 0 while the
    /// journal is empty.
    pub durable_sequence: u64,
    /// Whether this commit started a new segment.
    pub rolled_segment: bool,
    /// Time spent in the write and, in `fsync` mode, the `fdatasync` (0 when nothing was
    /// buffered): what the engine's commit-latency histogram records.
    pub duration_ns: u64,
}

/// Appends records into a preallocated buffer and writes them in one batch per `commit`.
/// Single-threaded by design: the engine's journal thread owns it.
pub struct JournalWriter {
    location: JournalLocation,
    durability: Durability,
    new_segment_bytes: u64,
    max_payload_bytes: u32,
    _lock: Flock<File>,
    path: PathBuf,
    file: File,
    segment_bytes: u64,
    /// Offset in `file` where the next commit writes.
    write_offset: u64,
    buffer: Box<[u8]>,
    buffered_bytes: usize,
    /// When the buffered batch does not fit the current segment: the buffer offset where the
    /// next segment begins, and that segment's first sequence.
    spill: Option<(usize, u64)>,
    next_sequence: u64,
    batch_first_sequence: u64,
    poisoned: bool,
}

impl std::fmt::Debug for JournalWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalWriter")
            .field("segment", &self.path)
            .field("write_offset", &self.write_offset)
            .field("buffered_bytes", &self.buffered_bytes)
            .field("next_sequence", &self.next_sequence)
            .finish_non_exhaustive()
    }
}

impl JournalWriter {
    /// Copies one record into the write buffer: no system call, no allocation. `sequence` must
    /// be `next_sequence()` (the sequencer is the only source of sequences; anything else is a
    /// bug and panics). On `Err` nothing was buffered.
    #[inline]
    pub fn append(&mut self, sequence: u64, timestamp_ns: u64, payload: &[u8]) -> Result<(), AppendError> {
        assert_eq!(sequence, self.next_sequence, "journal sequences must be consecutive");
        if payload.len() > self.max_payload_bytes as usize {
            return Err(AppendError::PayloadTooLarge {
                payload_bytes: payload.len(),
                max_bytes: self.max_payload_bytes,
            });
        }
        let record_bytes = record_total_bytes(payload.len());
        let free_bytes = self.buffer.len() - self.buffered_bytes;
        if record_bytes > free_bytes {
            return Err(AppendError::BufferFull { record_bytes, free_bytes });
        }
        let end_in_segment = self.write_offset + (self.buffered_bytes + record_bytes) as u64;
        if self.spill.is_none() && end_in_segment > self.segment_bytes {
            self.spill = Some((self.buffered_bytes, sequence));
        }
        if let Some((spill_at, _)) = self.spill {
            // Config validation makes a whole buffer fit in one fresh segment.
            assert!(
                SEGMENT_HEADER_BYTES + (self.buffered_bytes - spill_at + record_bytes) as u64
                    <= self.new_segment_bytes
            );
        }
        let batch_index =
            u32::try_from(sequence - self.batch_first_sequence).expect("batch bounded by buffer");
        let out = &mut self.buffer[self.buffered_bytes..self.buffered_bytes + record_bytes];
        encode_record(out, sequence, timestamp_ns, batch_index, payload);
        self.buffered_bytes += record_bytes;
        self.next_sequence += 1;
        Ok(())
    }

    /// Writes the buffered batch with one `pwrite` (two when it spills into a new segment) and,
    /// in `fsync` mode, one `fdatasync`; returns once the batch is durable. Outputs of these
    /// commands may be released after this returns. After an `Err` the writer is poisoned.
    pub fn commit(&mut self) -> Result<CommitStats, JournalError> {
        self.commit_notifying(&mut |_| {})
    }

    /// [`commit`](Self::commit), calling `written(last)` after each `pwrite` and before its
    /// `fdatasync`: every record up to `last` is then complete in the file (the page cache), so
    /// a reader on another thread may read it (a primary ships it to its standby while its own
    /// sync runs), though it is not durable yet.
    pub fn commit_notifying(&mut self, written: &mut dyn FnMut(u64)) -> Result<CommitStats, JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned);
        }
        let records = self.next_sequence - self.batch_first_sequence;
        if records == 0 {
            return Ok(CommitStats {
                records: 0,
                bytes_written: 0,
                durable_sequence: self.next_sequence - 1,
                rolled_segment: false,
                duration_ns: 0,
            });
        }
        let started = Instant::now();
        self.poisoned = true;
        let (here_bytes, spill) = match self.spill {
            Some((at, first_sequence)) => (at, Some(first_sequence)),
            None => (self.buffered_bytes, None),
        };
        if here_bytes > 0 {
            let last_here = spill.map_or(self.next_sequence, |first| first) - 1;
            self.write_and_sync(0, here_bytes, last_here, written)?;
        }
        if let Some(first_sequence) = spill {
            // The old segment is durable before the new one exists: recovery relies on every
            // segment but the newest being complete.
            let (file, path) =
                create_segment(&self.location, first_sequence, self.new_segment_bytes, self.durability)?;
            self.file = file;
            self.path = path;
            self.segment_bytes = self.new_segment_bytes;
            self.write_offset = SEGMENT_HEADER_BYTES;
            self.write_and_sync(here_bytes, self.buffered_bytes, self.next_sequence - 1, written)?;
        }
        let stats = CommitStats {
            records,
            bytes_written: self.buffered_bytes as u64,
            durable_sequence: self.next_sequence - 1,
            rolled_segment: spill.is_some(),
            duration_ns: u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX),
        };
        self.buffered_bytes = 0;
        self.spill = None;
        self.batch_first_sequence = self.next_sequence;
        self.poisoned = false;
        Ok(stats)
    }

    /// [`append`](Self::append), committing the buffered batch first when the buffer is full:
    /// how a writer that never holds records back appends. `Some` carries the commit it made
    /// (the durable mark moved: outputs up to it may be released). A payload over
    /// `max_record_payload_bytes` is `JournalError::PayloadTooLarge`, and nothing is buffered.
    #[inline]
    pub fn append_or_commit(
        &mut self,
        sequence: u64,
        timestamp_ns: u64,
        payload: &[u8],
    ) -> Result<Option<CommitStats>, JournalError> {
        match self.append(sequence, timestamp_ns, payload) {
            Ok(()) => Ok(None),
            Err(AppendError::BufferFull { .. }) => {
                let committed = self.commit()?;
                // Config validation makes an empty buffer hold one record of the largest payload,
                // and the payload passed that check above.
                self.append(sequence, timestamp_ns, payload)
                    .expect("an empty write buffer holds one record of any accepted payload");
                Ok(Some(committed))
            }
            Err(AppendError::PayloadTooLarge { payload_bytes, max_bytes }) => {
                Err(JournalError::PayloadTooLarge { payload_bytes, max_bytes })
            }
        }
    }

    fn write_and_sync(
        &mut self,
        from: usize,
        to: usize,
        last_sequence: u64,
        written: &mut dyn FnMut(u64),
    ) -> Result<(), JournalError> {
        self.file
            .write_all_at(&self.buffer[from..to], self.write_offset)
            .map_err(JournalError::io("write", &self.path))?;
        self.write_offset += (to - from) as u64;
        written(last_sequence);
        if self.durability == Durability::Fsync {
            self.file.sync_data().map_err(JournalError::io("fdatasync", &self.path))?;
        }
        Ok(())
    }

    /// The sequence `append` expects next.
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    /// Last sequence made durable by a commit (0 for an empty journal).
    pub fn durable_sequence(&self) -> u64 {
        self.batch_first_sequence - 1
    }

    /// Records appended since the last commit.
    pub fn buffered_records(&self) -> u64 {
        self.next_sequence - self.batch_first_sequence
    }

    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    /// Segment file currently written.
    pub fn current_segment(&self) -> &Path {
        &self.path
    }
}
