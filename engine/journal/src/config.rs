use std::path::PathBuf;

use serde::Deserialize;

use crate::format::{record_total_bytes, PAYLOAD_BYTES_LIMIT, SEGMENT_HEADER_BYTES};

/// How far a committed batch is pushed before `commit` returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// `commit` returns after `fdatasync`: acknowledged records survive a process crash, a
    /// kernel crash and a power loss (given a disk that honours cache flushes).
    #[default]
    Fsync,
    /// `commit` returns after the data is handed to the kernel: acknowledged records survive a
    /// process crash (SIGKILL, panic) but may be lost, or the journal refused, after a kernel
    /// crash or power loss. For development and benchmarks of everything but the disk.
    None,
}

/// Which old segments may be deleted. Segments holding any record newer than the latest
/// snapshot are never deleted, whatever the policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Retention {
    /// Keep every segment: the journal is the audit trail.
    #[default]
    KeepAll,
    /// Keep at least this many of the newest segments; older ones go once a snapshot covers them.
    KeepSegments(u32),
}

/// Configuration of one journal (the engine keeps two: input commands and output messages,
/// distinguished by `file_prefix`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    /// Directory holding the segment files (created if missing).
    pub dir: PathBuf,
    /// Segment files are named `{file_prefix}-{first_sequence:020}.seg`.
    #[serde(default = "default_file_prefix")]
    pub file_prefix: String,
    /// Size each segment is preallocated to; a multiple of 4096.
    #[serde(default = "default_segment_size_bytes")]
    pub segment_size_bytes: u64,
    #[serde(default)]
    pub durability: Durability,
    #[serde(default)]
    pub retention: Retention,
    /// Largest payload `append` accepts.
    #[serde(default = "default_max_record_payload_bytes")]
    pub max_record_payload_bytes: u32,
    /// Size of the group-commit buffer, allocated once at open: the most bytes one commit writes.
    #[serde(default = "default_write_buffer_bytes")]
    pub write_buffer_bytes: u32,
}

fn default_file_prefix() -> String {
    "journal".to_owned()
}
const fn default_segment_size_bytes() -> u64 {
    256 << 20
}
const fn default_max_record_payload_bytes() -> u32 {
    4096
}
const fn default_write_buffer_bytes() -> u32 {
    4 << 20
}

/// A configuration that cannot work, with the key at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("journal.file_prefix {0:?} must be 1 to 64 characters of [A-Za-z0-9_]")]
    FilePrefix(String),
    #[error(
        "journal.segment_size_bytes = {value} must be a multiple of 4096 between {min} and 2^40 \
         and hold the write buffer ({write_buffer_bytes} bytes) plus the 4096-byte header"
    )]
    SegmentSize { value: u64, min: u64, write_buffer_bytes: u32 },
    #[error("journal.max_record_payload_bytes = {value} must be between 1 and {PAYLOAD_BYTES_LIMIT}")]
    MaxPayload { value: u32 },
    #[error(
        "journal.write_buffer_bytes = {value} must hold at least one record of \
         max_record_payload_bytes ({min} bytes) and be at most 1 GiB"
    )]
    WriteBuffer { value: u32, min: u32 },
    #[error("journal.retention keep_segments must be at least 1")]
    Retention,
}

impl JournalConfig {
    /// A configuration with the documented defaults for everything but the directory.
    pub fn new(dir: impl Into<PathBuf>) -> JournalConfig {
        JournalConfig {
            dir: dir.into(),
            file_prefix: default_file_prefix(),
            segment_size_bytes: default_segment_size_bytes(),
            durability: Durability::default(),
            retention: Retention::default(),
            max_record_payload_bytes: default_max_record_payload_bytes(),
            write_buffer_bytes: default_write_buffer_bytes(),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_file_prefix(&self.file_prefix)?;
        if self.max_record_payload_bytes == 0 || self.max_record_payload_bytes as usize > PAYLOAD_BYTES_LIMIT
        {
            return Err(ConfigError::MaxPayload { value: self.max_record_payload_bytes });
        }
        let min_buffer = record_total_bytes(self.max_record_payload_bytes as usize) as u32;
        if self.write_buffer_bytes < min_buffer || self.write_buffer_bytes > 1 << 30 {
            return Err(ConfigError::WriteBuffer { value: self.write_buffer_bytes, min: min_buffer });
        }
        // A commit spills into at most one new segment only if a whole buffer fits in one.
        let min_segment = (SEGMENT_HEADER_BYTES + u64::from(self.write_buffer_bytes))
            .max(crate::format::SEGMENT_HEADER_BYTES + crate::format::RECORD_BYTES_LIMIT as u64)
            .next_multiple_of(SEGMENT_HEADER_BYTES);
        if !crate::format::segment_bytes_valid(self.segment_size_bytes)
            || self.segment_size_bytes < min_segment
        {
            return Err(ConfigError::SegmentSize {
                value: self.segment_size_bytes,
                min: min_segment,
                write_buffer_bytes: self.write_buffer_bytes,
            });
        }
        if self.retention == Retention::KeepSegments(0) {
            return Err(ConfigError::Retention);
        }
        Ok(())
    }
}

pub(crate) fn validate_file_prefix(prefix: &str) -> Result<(), ConfigError> {
    let ok =
        (1..=64).contains(&prefix.len()) && prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::FilePrefix(prefix.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_toml_section_deserializes_with_defaults_and_rejects_unknown_keys() {
        let config: JournalConfig = toml::from_str(
            r#"
            dir = "/var/lib/petrel/journal"
            file_prefix = "input"
            durability = "none"
            retention = { keep_segments = 8 }
            "#,
        )
        .expect("valid journal config");
        assert_eq!(config.file_prefix, "input");
        assert_eq!(config.durability, Durability::None);
        assert_eq!(config.retention, Retention::KeepSegments(8));
        assert_eq!(config.segment_size_bytes, default_segment_size_bytes());
        config.validate().expect("defaults are valid");

        let keep_all: JournalConfig =
            toml::from_str("dir = \"/j\"\nretention = \"keep_all\"").expect("keep_all");
        assert_eq!(keep_all.retention, Retention::KeepAll);
        assert_eq!(keep_all.durability, Durability::Fsync);

        let err = toml::from_str::<JournalConfig>("dir = \"/j\"\nsegment_bytes = 4096").unwrap_err();
        assert!(err.to_string().contains("unknown field `segment_bytes`"), "{err}");
    }

    #[test]
    fn validation_names_the_bad_key() {
        let mut config = JournalConfig::new("/j");
        config.file_prefix = "in/put".into();
        assert_eq!(config.validate(), Err(ConfigError::FilePrefix("in/put".into())));
        let mut config = JournalConfig::new("/j");
        config.segment_size_bytes = 1 << 20; // smaller than the 4 MiB default write buffer
        assert!(matches!(config.validate(), Err(ConfigError::SegmentSize { .. })));
        let mut config = JournalConfig::new("/j");
        config.write_buffer_bytes = 64;
        assert!(matches!(config.validate(), Err(ConfigError::WriteBuffer { .. })));
        let mut config = JournalConfig::new("/j");
        config.max_record_payload_bytes = (PAYLOAD_BYTES_LIMIT + 1) as u32;
        assert!(matches!(config.validate(), Err(ConfigError::MaxPayload { .. })));
    }
}
