//! Capture sources: where frames come from. Offline files (pcap, pcapng) are read in pure Rust
//! (`file`); live interfaces go through libpcap (`live`). Both sit behind [`PacketSource`] so the
//! pipeline, the tests and the TUI never care which one they have.

pub mod file;
pub mod live;
pub mod writer;

use std::path::PathBuf;

use wirelag_dissectors::link::LinkType;
use wirelag_dissectors::Timestamp;

/// One captured frame, borrowed from the source's buffer until the next call.
#[derive(Clone, Copy, Debug)]
pub struct RawPacket<'a> {
    pub ts: Timestamp,
    /// Length on the wire (may exceed `data.len()` when the snaplen cut the frame).
    pub orig_len: u32,
    pub link_type: LinkType,
    /// pcapng interface index (0 for pcap and live captures).
    pub interface: u32,
    pub data: &'a [u8],
}

/// Facts about a finished (or interrupted) read, for the report's capture summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceSummary {
    /// "pcap", "pcapng" or "live".
    pub format: &'static str,
    /// Link types seen, in order of first appearance.
    pub link_types: Vec<LinkType>,
    pub packets: u64,
    /// Set when the file ends inside a record: the packets before the cut were delivered.
    pub truncated: Option<Truncation>,
    /// Packets the kernel or libpcap dropped (live only).
    pub dropped: Option<u64>,
    pub interface_dropped: Option<u64>,
    /// Nonzero snaplen when the file header states one.
    pub snaplen: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Truncation {
    /// Byte offset in the file where the incomplete record starts.
    pub offset: u64,
    pub detail: String,
}

/// Why a capture could not be read. Every variant renders as one clear line.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: read error at byte offset {offset}: {source}")]
    Read {
        path: PathBuf,
        offset: u64,
        source: std::io::Error,
    },
    #[error("{path}: not a pcap or pcapng capture (magic number {magic} at byte offset 0)")]
    NotACapture { path: PathBuf, magic: String },
    #[error("{path}: unsupported link type {linktype} ({name}) at byte offset {offset}")]
    UnsupportedLinkType {
        path: PathBuf,
        linktype: u32,
        name: String,
        offset: u64,
    },
    #[error("{path}: corrupt capture at byte offset {offset}: {detail}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        detail: String,
    },
    #[error("live capture on {iface}: {detail}")]
    Live { iface: String, detail: String },
}

/// A source of frames in capture order.
pub trait PacketSource {
    /// The next frame, `Ok(None)` at the end (including a clean stop after a truncated record,
    /// which is then reported in [`PacketSource::summary`]).
    fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError>;

    /// What has been read so far.
    fn summary(&self) -> SourceSummary;

    /// How far through its input the source is, for a progress bar; `None` for sources of
    /// unknown length (live capture).
    fn progress(&self) -> Option<ReadProgress> {
        None
    }
}

/// Bytes of a file consumed so far out of its length when opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadProgress {
    pub consumed: u64,
    pub total: u64,
}
