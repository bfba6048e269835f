//! Offline captures: pcap (µs, ns and the "modified" Kuznetzov variant) and pcapng, read in pure
//! Rust without libpcap.
//!
//! The file is read through one refillable buffer (1 MiB, or less for small files) and every
//! packet handed out is a slice of that buffer, so memory stays bounded whatever the file size and
//! no packet costs an allocation. The buffer only grows when a single record is larger than it,
//! and records are capped at [`MAX_RECORD_LEN`].
//!
//! A file that stops in the middle of a record (a capture still being written, or a copy cut
//! short) is not an error: the packets before the cut are delivered, then the source ends and
//! [`SourceSummary::truncated`] says where the cut record starts. Damage that cannot be a simple
//! cut (impossible lengths, mismatched pcapng block trailers) is a [`CaptureError::Corrupt`].

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use wirelag_dissectors::link::{linktype_name, LinkType};
use wirelag_dissectors::Timestamp;

use super::{CaptureError, PacketSource, RawPacket, SourceSummary, Truncation};

/// Largest captured length accepted for one packet. tcpdump itself never writes more than
/// 256 KiB per packet (except for D-Bus), but other tools do, so the cap is far above that while
/// still refusing the multi-gigabyte lengths that a corrupt header would claim.
pub const MAX_RECORD_LEN: u32 = 64 * 1024 * 1024;

/// Room for a pcapng packet block's fixed fields and options on top of [`MAX_RECORD_LEN`].
const MAX_PARSED_BLOCK_LEN: u32 = MAX_RECORD_LEN + 64 * 1024;

/// 1 MiB: the bytes a read just copied are still in the CPU's L2 cache when the dissectors
/// reach them. With 4 MiB, `analyze` measured slower on a shared 2-core machine (best of runs:
/// 62 vs 59 ms on the 41 MB sysbench capture, 0.99 vs 0.65 s on its 10x copy), the difference
/// being cache misses on each MySQL header's first touch.
const READ_BUFFER_LEN: usize = 1024 * 1024;
/// Small files get a buffer their own size, but never one so small it refills every few records.
const MIN_READ_BUFFER_LEN: usize = 64 * 1024;

// Magic numbers as read in little-endian order from the first four bytes.
const PCAP_MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const PCAP_MAGIC_NANOS: u32 = 0xa1b2_3c4d;
/// Alexey Kuznetzov's patched libpcap: µs timestamps, 8 extra bytes per record header.
const PCAP_MAGIC_MODIFIED: u32 = 0xa1b2_cd34;
const PCAP_FILE_HEADER_LEN: usize = 24;
const PCAP_LINKTYPE_OFFSET: u64 = 20;

const PCAPNG_BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
const BLOCK_SECTION_HEADER: u32 = 0x0a0d_0d0a;
const BLOCK_INTERFACE_DESCRIPTION: u32 = 1;
const BLOCK_OBSOLETE_PACKET: u32 = 2;
const BLOCK_SIMPLE_PACKET: u32 = 3;
const BLOCK_ENHANCED_PACKET: u32 = 6;

const OPTION_END: u16 = 0;
const OPTION_IF_TSRESOL: u16 = 9;
const OPTION_IF_TSOFFSET: u16 = 14;
/// pcapng's default interface resolution: 10^-6 s.
const DEFAULT_TSRESOL: u8 = 6;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// A pcap or pcapng file being read front to back.
pub struct FileSource {
    path: PathBuf,
    input: ReadBuffer,
    format: Format,
    link_types: Vec<LinkType>,
    packets: u64,
    snaplen: Option<u32>,
    truncated: Option<Truncation>,
    /// The file's length when it was opened (for progress reporting).
    file_len: u64,
    /// Set once the end, a truncation or an error has been reported; later calls return `None`.
    finished: bool,
}

enum Format {
    Pcap(PcapLayout),
    Pcapng(PcapngState),
}

/// What the pcap file header says about every record.
struct PcapLayout {
    order: ByteOrder,
    /// 1000 for µs files, 1 for ns files.
    nanos_per_frac_unit: u64,
    record_header_len: usize,
    link_type: LinkType,
    /// Files older than format 2.3 store the original length before the captured length.
    lengths_swapped: bool,
}

struct PcapngState {
    order: ByteOrder,
    /// Interfaces of the current section; a new section header starts a new list.
    interfaces: Vec<Interface>,
    /// Simple packet blocks carry no timestamp; they are given the one of the packet before.
    last_ts: Timestamp,
}

struct Interface {
    linktype: u32,
    link_type: Option<LinkType>,
    snaplen: u32,
    clock: InterfaceClock,
}

/// Where the next packet sits in the read buffer and what it is.
struct PacketAt {
    ts: Timestamp,
    orig_len: u32,
    link_type: LinkType,
    interface: u32,
    data_start: usize,
    data_len: usize,
}

enum Step {
    Packet(PacketAt),
    End,
    Truncated(Truncation),
}

/// The file ends inside the record or block starting at `offset`: what came before is kept.
fn truncated_at(offset: u64, detail: String) -> Step {
    Step::Truncated(Truncation { offset, detail })
}

impl FileSource {
    /// Opens a capture file and reads its header; the format is told by its magic number, not by
    /// the file name.
    pub fn open(path: &Path) -> Result<FileSource, CaptureError> {
        Self::open_with_buffer_limit(path, READ_BUFFER_LEN)
    }

    /// Opens for reading only the first record or few (a small buffer, grown if a record
    /// needs it): no need to read and page in a full-size buffer for one timestamp.
    pub fn open_for_peek(path: &Path) -> Result<FileSource, CaptureError> {
        Self::open_with_buffer_limit(path, MIN_READ_BUFFER_LEN)
    }

    /// `buffer_limit` exists so tests can force many refills with small files.
    fn open_with_buffer_limit(
        path: &Path,
        buffer_limit: usize,
    ) -> Result<FileSource, CaptureError> {
        let open_error = |source| CaptureError::Open {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(open_error)?;
        let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let capacity = usize::try_from(file_len)
            .unwrap_or(usize::MAX)
            .clamp(MIN_READ_BUFFER_LEN.min(buffer_limit), buffer_limit.max(16));
        let mut input = ReadBuffer::new(file, capacity);

        // A directory opens fine on Linux and only fails here: still a "cannot open".
        input.fill(PCAP_FILE_HEADER_LEN).map_err(open_error)?;
        let head = input.unconsumed();
        let Some(magic) = head.first_chunk::<4>().copied() else {
            let magic = if head.is_empty() {
                "none (the file is empty)".to_string()
            } else {
                format!("0x{} (the file is only {} bytes)", hex(head), head.len())
            };
            return Err(CaptureError::NotACapture {
                path: path.to_path_buf(),
                magic,
            });
        };

        let mut source = FileSource {
            path: path.to_path_buf(),
            input,
            format: Format::Pcapng(PcapngState {
                order: ByteOrder::Little,
                interfaces: Vec::new(),
                last_ts: Timestamp::default(),
            }),
            link_types: Vec::new(),
            packets: 0,
            file_len,
            snaplen: None,
            truncated: None,
            finished: false,
        };
        if u32::from_le_bytes(magic) == BLOCK_SECTION_HEADER {
            source.start_pcapng()?;
        } else {
            source.start_pcap(magic)?;
        }
        Ok(source)
    }

    fn start_pcap(&mut self, magic: [u8; 4]) -> Result<(), CaptureError> {
        let (order, nanos_per_frac_unit, record_header_len) = match u32::from_le_bytes(magic) {
            PCAP_MAGIC_MICROS => (ByteOrder::Little, 1000, 16),
            PCAP_MAGIC_NANOS => (ByteOrder::Little, 1, 16),
            PCAP_MAGIC_MODIFIED => (ByteOrder::Little, 1000, 24),
            _ => match u32::from_be_bytes(magic) {
                PCAP_MAGIC_MICROS => (ByteOrder::Big, 1000, 16),
                PCAP_MAGIC_NANOS => (ByteOrder::Big, 1, 16),
                PCAP_MAGIC_MODIFIED => (ByteOrder::Big, 1000, 24),
                _ => {
                    return Err(CaptureError::NotACapture {
                        path: self.path.clone(),
                        magic: format!("0x{}", hex(&magic)),
                    })
                }
            },
        };
        let header = self.input.unconsumed();
        let fields = (
            order.u16(header, 4),
            order.u16(header, 6),
            order.u32(header, 16),
            order.u32(header, 20),
        );
        let (Some(major), Some(minor), Some(snaplen), Some(linktype_field)) = fields else {
            return Err(self.corrupt(
                0,
                format!(
                    "pcap file header needs {PCAP_FILE_HEADER_LEN} bytes, the file has {}",
                    header.len()
                ),
            ));
        };
        // The upper 16 bits carry FCS information, not the link type.
        let linktype = linktype_field & 0xffff;
        let Some(link_type) = LinkType::from_linktype(linktype) else {
            return Err(CaptureError::UnsupportedLinkType {
                path: self.path.clone(),
                linktype,
                name: linktype_name(linktype),
                offset: PCAP_LINKTYPE_OFFSET,
            });
        };
        self.input.consume(PCAP_FILE_HEADER_LEN);
        self.link_types.push(link_type);
        self.snaplen = (snaplen != 0).then_some(snaplen);
        self.format = Format::Pcap(PcapLayout {
            order,
            nanos_per_frac_unit,
            record_header_len,
            link_type,
            lengths_swapped: major < 2 || (major == 2 && minor < 3),
        });
        Ok(())
    }

    /// Checks the byte-order magic so that a damaged file fails at open; the section header
    /// block itself is read by the block loop like any later one.
    fn start_pcapng(&mut self) -> Result<(), CaptureError> {
        let head = self.input.unconsumed();
        let Some(byte_order_magic) = head.get(8..12) else {
            return Err(self.corrupt(
                0,
                format!(
                    "pcapng section header needs at least 12 bytes, the file has {}",
                    head.len()
                ),
            ));
        };
        if ByteOrder::from_pcapng_magic(byte_order_magic).is_none() {
            let detail = format!(
                "pcapng byte-order magic is 0x{}, expected 0x1a2b3c4d in either byte order",
                hex(byte_order_magic)
            );
            return Err(self.corrupt(8, detail));
        }
        Ok(())
    }

    fn corrupt(&self, offset: u64, detail: String) -> CaptureError {
        CaptureError::Corrupt {
            path: self.path.clone(),
            offset,
            detail,
        }
    }

    fn read_next(&mut self) -> Result<Step, CaptureError> {
        let FileSource {
            path,
            input,
            format,
            link_types,
            snaplen,
            ..
        } = self;
        match format {
            Format::Pcap(layout) => next_pcap_record(path, input, layout),
            Format::Pcapng(state) => next_pcapng_packet(path, input, state, link_types, snaplen),
        }
    }
}

impl PacketSource for FileSource {
    fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError> {
        if self.finished {
            return Ok(None);
        }
        match self.read_next() {
            Ok(Step::Packet(at)) => {
                self.packets += 1;
                let end = at.data_start.saturating_add(at.data_len);
                let data = self.input.buf.get(at.data_start..end).unwrap_or(&[]);
                Ok(Some(RawPacket {
                    ts: at.ts,
                    orig_len: at.orig_len,
                    link_type: at.link_type,
                    interface: at.interface,
                    data,
                }))
            }
            Ok(Step::End) => {
                self.finished = true;
                Ok(None)
            }
            Ok(Step::Truncated(truncation)) => {
                self.finished = true;
                self.truncated = Some(truncation);
                Ok(None)
            }
            Err(error) => {
                self.finished = true;
                Err(error)
            }
        }
    }

    fn summary(&self) -> SourceSummary {
        SourceSummary {
            format: match self.format {
                Format::Pcap(_) => "pcap",
                Format::Pcapng(_) => "pcapng",
            },
            link_types: self.link_types.clone(),
            packets: self.packets,
            truncated: self.truncated.clone(),
            dropped: None,
            interface_dropped: None,
            snaplen: self.snaplen,
        }
    }

    fn progress(&self) -> Option<super::ReadProgress> {
        Some(super::ReadProgress {
            consumed: self.input.offset(),
            total: self.file_len,
        })
    }
}

fn read_error(path: &Path, offset: u64, source: io::Error) -> CaptureError {
    CaptureError::Read {
        path: path.to_path_buf(),
        offset,
        source,
    }
}

fn next_pcap_record(
    path: &Path,
    input: &mut ReadBuffer,
    layout: &PcapLayout,
) -> Result<Step, CaptureError> {
    let record_start = input.offset();
    let header_len = layout.record_header_len;
    if !input
        .fill(header_len)
        .map_err(|e| read_error(path, record_start, e))?
    {
        let left = input.available();
        if left == 0 {
            return Ok(Step::End);
        }
        let detail = format!("record header needs {header_len} bytes, {left} left");
        return Ok(truncated_at(record_start, detail));
    }
    let header = input.unconsumed();
    let order = layout.order;
    let fields = (
        order.u32(header, 0),
        order.u32(header, 4),
        order.u32(header, 8),
        order.u32(header, 12),
    );
    let (Some(ts_sec), Some(ts_frac), Some(first_len), Some(second_len)) = fields else {
        // fill() guaranteed the header bytes; this only keeps the parse total.
        let detail = "record header could not be read".to_string();
        return Err(CaptureError::Corrupt {
            path: path.to_path_buf(),
            offset: record_start,
            detail,
        });
    };
    let (captured_len, orig_len) = if layout.lengths_swapped {
        (second_len, first_len)
    } else {
        (first_len, second_len)
    };
    if captured_len > MAX_RECORD_LEN {
        let detail = format!(
            "record claims {captured_len} captured bytes, more than the {} MiB limit",
            MAX_RECORD_LEN >> 20
        );
        return Err(CaptureError::Corrupt {
            path: path.to_path_buf(),
            offset: record_start,
            detail,
        });
    }
    // Lossless: bounded by MAX_RECORD_LEN above.
    let data_len = captured_len as usize;
    let record_len = header_len + data_len;
    if !input
        .fill(record_len)
        .map_err(|e| read_error(path, record_start, e))?
    {
        let left = input.available().saturating_sub(header_len);
        let detail = format!("record data needs {data_len} bytes, {left} left");
        return Ok(truncated_at(record_start, detail));
    }
    let data_start = input.pos + header_len;
    input.consume(record_len);
    // u32 seconds times 1e9 plus u32 fractions times 1000 stays far below i64::MAX.
    let nanos = u64::from(ts_sec) * NANOS_PER_SEC + u64::from(ts_frac) * layout.nanos_per_frac_unit;
    Ok(Step::Packet(PacketAt {
        ts: Timestamp::from_nanos(i64::try_from(nanos).unwrap_or(i64::MAX)),
        orig_len,
        link_type: layout.link_type,
        interface: 0,
        data_start,
        data_len,
    }))
}

/// Reads pcapng blocks until the next packet, handling section and interface blocks on the way
/// and skipping every other kind.
fn next_pcapng_packet(
    path: &Path,
    input: &mut ReadBuffer,
    state: &mut PcapngState,
    link_types: &mut Vec<LinkType>,
    snaplen: &mut Option<u32>,
) -> Result<Step, CaptureError> {
    let corrupt = |offset: u64, detail: String| CaptureError::Corrupt {
        path: path.to_path_buf(),
        offset,
        detail,
    };
    loop {
        let block_start = input.offset();
        let io_error = |e| read_error(path, block_start, e);
        if !input.fill(8).map_err(io_error)? {
            let left = input.available();
            if left == 0 {
                return Ok(Step::End);
            }
            let detail = format!("block header needs 8 bytes, {left} left");
            return Ok(truncated_at(block_start, detail));
        }
        // The section header's type reads the same in both byte orders, so it can be recognised
        // before its byte-order magic is known.
        let block_type = state.order.u32(input.unconsumed(), 0).unwrap_or(0);
        if block_type == BLOCK_SECTION_HEADER {
            if !input.fill(12).map_err(io_error)? {
                let left = input.available();
                let detail = format!("section header block needs at least 12 bytes, {left} left");
                return Ok(truncated_at(block_start, detail));
            }
            let magic = input.unconsumed().get(8..12).unwrap_or(&[]);
            let Some(order) = ByteOrder::from_pcapng_magic(magic) else {
                let detail = format!(
                    "pcapng byte-order magic is 0x{}, expected 0x1a2b3c4d in either byte order",
                    hex(magic)
                );
                return Err(corrupt(block_start + 8, detail));
            };
            state.order = order;
        }
        let order = state.order;
        let total_len = order.u32(input.unconsumed(), 4).unwrap_or(0);
        let kind = block_kind_name(block_type);
        let min_len = min_block_len(block_type);
        if total_len % 4 != 0 {
            return Err(corrupt(
                block_start,
                format!("{kind} length {total_len} is not a multiple of 4"),
            ));
        }
        if total_len < min_len {
            return Err(corrupt(
                block_start,
                format!("{kind} length {total_len} is below its minimum of {min_len}"),
            ));
        }
        if total_len > MAX_PARSED_BLOCK_LEN {
            if is_parsed_block(block_type) {
                let detail = format!(
                    "{kind} length {total_len} exceeds the {} MiB limit",
                    MAX_PARSED_BLOCK_LEN >> 20
                );
                return Err(corrupt(block_start, detail));
            }
            // Nothing in a skipped block is needed, so however large it is it streams past.
            match skip_block(input, total_len, order).map_err(io_error)? {
                SkipOutcome::Skipped(trailer) if trailer == total_len => continue,
                SkipOutcome::Skipped(trailer) => {
                    let detail = format!("{kind} trailing length {trailer} does not match its leading length {total_len}");
                    return Err(corrupt(block_start, detail));
                }
                SkipOutcome::Truncated(left) => {
                    let detail = format!("{kind} needs {total_len} bytes, {left} left");
                    return Ok(truncated_at(block_start, detail));
                }
            }
        }
        // Lossless: total_len <= MAX_PARSED_BLOCK_LEN here.
        let block_len = total_len as usize;
        if !input.fill(block_len).map_err(io_error)? {
            let left = input.available();
            let detail = format!("{kind} needs {block_len} bytes, {left} left");
            return Ok(truncated_at(block_start, detail));
        }
        let block = input.unconsumed().get(..block_len).unwrap_or(&[]);
        let trailer = order.u32(block, block_len - 4).unwrap_or(0);
        if trailer != total_len {
            let detail = format!(
                "{kind} trailing length {trailer} does not match its leading length {total_len}"
            );
            return Err(corrupt(block_start, detail));
        }
        let body = block.get(8..block_len - 4).unwrap_or(&[]);
        let body_start = input.pos + 8;

        match block_type {
            BLOCK_SECTION_HEADER => {
                let major = order.u16(body, 4).unwrap_or(0);
                let minor = order.u16(body, 6).unwrap_or(0);
                if major != 1 {
                    return Err(corrupt(
                        block_start,
                        format!("unsupported pcapng version {major}.{minor}"),
                    ));
                }
                state.interfaces.clear();
            }
            BLOCK_INTERFACE_DESCRIPTION => {
                let interface =
                    parse_interface(body, order).map_err(|detail| corrupt(block_start, detail))?;
                if let Some(link_type) = interface.link_type {
                    if !link_types.contains(&link_type) {
                        link_types.push(link_type);
                    }
                }
                if snaplen.is_none() && interface.snaplen != 0 {
                    *snaplen = Some(interface.snaplen);
                }
                state.interfaces.push(interface);
            }
            BLOCK_ENHANCED_PACKET | BLOCK_OBSOLETE_PACKET => {
                let fields = if block_type == BLOCK_ENHANCED_PACKET {
                    (
                        order.u32(body, 0),
                        order.u32(body, 4),
                        order.u32(body, 8),
                        order.u32(body, 12),
                        order.u32(body, 16),
                    )
                } else {
                    // Packet block: a 16-bit interface id and a 16-bit drop count.
                    (
                        order.u16(body, 0).map(u32::from),
                        order.u32(body, 4),
                        order.u32(body, 8),
                        order.u32(body, 12),
                        order.u32(body, 16),
                    )
                };
                let (
                    Some(interface_id),
                    Some(ts_high),
                    Some(ts_low),
                    Some(captured_len),
                    Some(orig_len),
                ) = fields
                else {
                    return Err(corrupt(
                        block_start,
                        format!("{kind} is too short for its fixed fields"),
                    ));
                };
                let interface = interface_for(state, interface_id).ok_or_else(|| {
                    let known = state.interfaces.len();
                    corrupt(block_start, format!("{kind} refers to interface {interface_id}, but the section describes {known}"))
                })?;
                let Some(link_type) = interface.link_type else {
                    return Err(unsupported_link_type(path, interface.linktype, block_start));
                };
                const FIXED_FIELDS_LEN: usize = 20;
                let room = body.len().saturating_sub(FIXED_FIELDS_LEN);
                let data_len = usize::try_from(captured_len).unwrap_or(usize::MAX);
                if data_len > room {
                    let detail = format!("{kind} captured length {captured_len} exceeds the {room} bytes of packet data in the block");
                    return Err(corrupt(block_start, detail));
                }
                let ts = interface
                    .clock
                    .timestamp((u64::from(ts_high) << 32) | u64::from(ts_low));
                state.last_ts = ts;
                input.consume(block_len);
                return Ok(Step::Packet(PacketAt {
                    ts,
                    orig_len,
                    link_type,
                    interface: interface_id,
                    data_start: body_start + FIXED_FIELDS_LEN,
                    data_len,
                }));
            }
            BLOCK_SIMPLE_PACKET => {
                let orig_len = order.u32(body, 0).unwrap_or(0);
                let interface = interface_for(state, 0).ok_or_else(|| {
                    corrupt(
                        block_start,
                        format!("{kind} needs interface 0, but the section describes none"),
                    )
                })?;
                let Some(link_type) = interface.link_type else {
                    return Err(unsupported_link_type(path, interface.linktype, block_start));
                };
                // No captured length is stored: the frame is cut by the snaplen and the padding
                // after it is not data.
                let room = body.len().saturating_sub(4);
                let mut data_len = usize::try_from(orig_len).unwrap_or(usize::MAX).min(room);
                if interface.snaplen != 0 {
                    data_len =
                        data_len.min(usize::try_from(interface.snaplen).unwrap_or(usize::MAX));
                }
                input.consume(block_len);
                return Ok(Step::Packet(PacketAt {
                    ts: state.last_ts,
                    orig_len,
                    link_type,
                    interface: 0,
                    data_start: body_start + 4,
                    data_len,
                }));
            }
            _ => {}
        }
        input.consume(block_len);
    }
}

fn interface_for(state: &PcapngState, interface_id: u32) -> Option<&Interface> {
    state.interfaces.get(usize::try_from(interface_id).ok()?)
}

fn unsupported_link_type(path: &Path, linktype: u32, offset: u64) -> CaptureError {
    CaptureError::UnsupportedLinkType {
        path: path.to_path_buf(),
        linktype,
        name: linktype_name(linktype),
        offset,
    }
}

fn is_parsed_block(block_type: u32) -> bool {
    matches!(
        block_type,
        BLOCK_SECTION_HEADER
            | BLOCK_INTERFACE_DESCRIPTION
            | BLOCK_OBSOLETE_PACKET
            | BLOCK_SIMPLE_PACKET
            | BLOCK_ENHANCED_PACKET
    )
}

/// Smallest total length each block type can have: 12 bytes of framing plus its fixed fields.
fn min_block_len(block_type: u32) -> u32 {
    match block_type {
        BLOCK_SECTION_HEADER => 28,
        BLOCK_INTERFACE_DESCRIPTION => 20,
        BLOCK_SIMPLE_PACKET => 16,
        BLOCK_ENHANCED_PACKET | BLOCK_OBSOLETE_PACKET => 32,
        _ => 12,
    }
}

fn block_kind_name(block_type: u32) -> String {
    match block_type {
        BLOCK_SECTION_HEADER => "section header block".to_string(),
        BLOCK_INTERFACE_DESCRIPTION => "interface description block".to_string(),
        BLOCK_OBSOLETE_PACKET => "packet block".to_string(),
        BLOCK_SIMPLE_PACKET => "simple packet block".to_string(),
        BLOCK_ENHANCED_PACKET => "enhanced packet block".to_string(),
        other => format!("block of type 0x{other:08x}"),
    }
}

fn parse_interface(body: &[u8], order: ByteOrder) -> Result<Interface, String> {
    let (Some(linktype), Some(snaplen)) = (order.u16(body, 0), order.u32(body, 4)) else {
        return Err("interface description block is too short for its fixed fields".to_string());
    };
    let linktype = u32::from(linktype);
    let mut tsresol = DEFAULT_TSRESOL;
    let mut offset_secs = 0i64;
    let mut options = body.get(8..).unwrap_or(&[]);
    while let (Some(code), Some(value_len)) = (order.u16(options, 0), order.u16(options, 2)) {
        if code == OPTION_END {
            break;
        }
        let value_len = usize::from(value_len);
        let Some(value) = options.get(4..4 + value_len) else {
            let room = options.len() - 4;
            return Err(format!(
                "interface option {code} claims {value_len} bytes, only {room} remain in the block"
            ));
        };
        match code {
            OPTION_IF_TSRESOL => match value {
                [resolution] => tsresol = *resolution,
                _ => {
                    return Err(format!(
                        "if_tsresol option has {value_len} bytes, expected 1"
                    ))
                }
            },
            OPTION_IF_TSOFFSET => match order.u64(value, 0) {
                Some(raw) if value_len == 8 => offset_secs = i64::from_ne_bytes(raw.to_ne_bytes()),
                _ => {
                    return Err(format!(
                        "if_tsoffset option has {value_len} bytes, expected 8"
                    ))
                }
            },
            _ => {}
        }
        let padded_len = (value_len + 3) & !3;
        // The last option's padding may be missing; what is left is then simply empty.
        options = options.get(4 + padded_len..).unwrap_or(&[]);
    }
    Ok(Interface {
        linktype,
        link_type: LinkType::from_linktype(linktype),
        snaplen,
        clock: InterfaceClock::new(tsresol, offset_secs),
    })
}

/// Turns an interface's 64-bit timestamps into nanoseconds since the epoch, exactly and without
/// floating point, whatever its `if_tsresol`.
#[derive(Clone, Copy, Debug)]
struct InterfaceClock {
    /// `None` when one unit is finer than 10^-38 s: every timestamp is then below one ns.
    units_per_sec: Option<u128>,
    /// Set when a unit is a whole number of ns (10^-0..10^-9, 2^-0..2^-9): a multiplication
    /// then suffices, which keeps the common µs and ns captures off the 128-bit division.
    nanos_per_unit: Option<u64>,
    offset_secs: i64,
}

impl InterfaceClock {
    fn new(tsresol: u8, offset_secs: i64) -> InterfaceClock {
        let exponent = u32::from(tsresol & 0x7f);
        let units_per_sec = if tsresol & 0x80 != 0 {
            1u128.checked_shl(exponent)
        } else {
            10u128.checked_pow(exponent)
        };
        let nanos_per_unit = units_per_sec
            .and_then(|units| u64::try_from(units).ok())
            .filter(|&units| units != 0 && NANOS_PER_SEC % units == 0)
            .map(|units| NANOS_PER_SEC / units);
        InterfaceClock {
            units_per_sec,
            nanos_per_unit,
            offset_secs,
        }
    }

    fn timestamp(&self, units: u64) -> Timestamp {
        let since_offset: i128 = match (self.nanos_per_unit, self.units_per_sec) {
            (Some(nanos_per_unit), _) => i128::from(units) * i128::from(nanos_per_unit),
            (None, Some(units_per_sec)) => {
                let units = u128::from(units);
                let secs = units / units_per_sec;
                // Finer-than-ns fractions are truncated, as Wireshark does. Cannot overflow:
                // the fraction is below 2^64 and the factor below 2^30.
                let nanos = (units % units_per_sec) * u128::from(NANOS_PER_SEC) / units_per_sec;
                i128::try_from(secs * u128::from(NANOS_PER_SEC) + nanos).unwrap_or(i128::MAX)
            }
            (None, None) => 0,
        };
        let total =
            since_offset.saturating_add(i128::from(self.offset_secs) * i128::from(NANOS_PER_SEC));
        Timestamp::from_nanos(i64::try_from(total).unwrap_or(if total < 0 {
            i64::MIN
        } else {
            i64::MAX
        }))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ByteOrder {
    Little,
    Big,
}

impl ByteOrder {
    fn from_pcapng_magic(magic: &[u8]) -> Option<ByteOrder> {
        let magic = *magic.first_chunk::<4>()?;
        if u32::from_le_bytes(magic) == PCAPNG_BYTE_ORDER_MAGIC {
            Some(ByteOrder::Little)
        } else if u32::from_be_bytes(magic) == PCAPNG_BYTE_ORDER_MAGIC {
            Some(ByteOrder::Big)
        } else {
            None
        }
    }

    fn u16(self, bytes: &[u8], at: usize) -> Option<u16> {
        let raw = *bytes.get(at..)?.first_chunk::<2>()?;
        Some(match self {
            ByteOrder::Little => u16::from_le_bytes(raw),
            ByteOrder::Big => u16::from_be_bytes(raw),
        })
    }

    fn u32(self, bytes: &[u8], at: usize) -> Option<u32> {
        let raw = *bytes.get(at..)?.first_chunk::<4>()?;
        Some(match self {
            ByteOrder::Little => u32::from_le_bytes(raw),
            ByteOrder::Big => u32::from_be_bytes(raw),
        })
    }

    fn u64(self, bytes: &[u8], at: usize) -> Option<u64> {
        let raw = *bytes.get(at..)?.first_chunk::<8>()?;
        Some(match self {
            ByteOrder::Little => u64::from_le_bytes(raw),
            ByteOrder::Big => u64::from_be_bytes(raw),
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

enum SkipOutcome {
    /// Skipped; carries the block's trailing length.
    Skipped(u32),
    /// The file ended inside the block; carries the bytes that were left from its start.
    Truncated(u64),
}

/// Streams past a block too large to hold, keeping only its trailing length field.
fn skip_block(input: &mut ReadBuffer, total_len: u32, order: ByteOrder) -> io::Result<SkipOutcome> {
    let to_trailer = u64::from(total_len) - 4;
    let skipped = input.discard(to_trailer)?;
    if skipped < to_trailer || !input.fill(4)? {
        return Ok(SkipOutcome::Truncated(skipped + input.available() as u64));
    }
    let trailer = order.u32(input.unconsumed(), 0).unwrap_or(0);
    input.consume(4);
    Ok(SkipOutcome::Skipped(trailer))
}

/// A window onto the file: `buf[pos..end]` holds bytes read but not yet consumed, and
/// `buf[..pos]` still holds the record handed out last (it stays valid until the next fill).
struct ReadBuffer {
    file: File,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// File offset of `buf[0]`.
    base: u64,
    at_eof: bool,
}

impl ReadBuffer {
    fn new(file: File, capacity: usize) -> ReadBuffer {
        ReadBuffer {
            file,
            buf: vec![0; capacity],
            pos: 0,
            end: 0,
            base: 0,
            at_eof: false,
        }
    }

    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn available(&self) -> usize {
        self.end - self.pos
    }

    fn unconsumed(&self) -> &[u8] {
        self.buf.get(self.pos..self.end).unwrap_or(&[])
    }

    fn consume(&mut self, len: usize) {
        self.pos = self.pos.saturating_add(len).min(self.end);
    }

    /// Makes at least `wanted` unconsumed bytes available. `Ok(false)` when the file ends first;
    /// whatever it had is then available.
    fn fill(&mut self, wanted: usize) -> io::Result<bool> {
        if self.available() >= wanted {
            return Ok(true);
        }
        if self.buf.len() - self.pos < wanted {
            // Move the partial record to the front so the read can append the rest of it.
            self.buf.copy_within(self.pos..self.end, 0);
            self.base += self.pos as u64;
            self.end -= self.pos;
            self.pos = 0;
        }
        while self.available() < wanted {
            if self.at_eof {
                return Ok(false);
            }
            if self.end == self.buf.len() {
                // Grown step by step, only while the file really has more, so that a corrupt
                // length near the end of a small file does not allocate what it claims.
                let grown = self
                    .buf
                    .len()
                    .saturating_mul(2)
                    .clamp(self.buf.len() + 1, wanted.max(self.buf.len() + 1));
                self.buf.resize(grown, 0);
            }
            let spare = self.buf.get_mut(self.end..).unwrap_or_default();
            match self.file.read(spare) {
                Ok(0) => self.at_eof = true,
                Ok(read) => self.end += read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Consumes up to `len` bytes without keeping them; returns how many there were.
    fn discard(&mut self, len: u64) -> io::Result<u64> {
        let mut done = 0u64;
        loop {
            let step = usize::try_from(len - done)
                .unwrap_or(usize::MAX)
                .min(self.available());
            self.consume(step);
            done += step as u64;
            if done == len {
                return Ok(done);
            }
            let wanted = usize::try_from(len - done)
                .unwrap_or(usize::MAX)
                .min(self.buf.len());
            if !self.fill(wanted)? && self.available() == 0 {
                return Ok(done);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A capture written to the temp dir, removed again when dropped.
    struct TempCapture(PathBuf);

    impl TempCapture {
        fn new(bytes: &[u8]) -> TempCapture {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let name = format!(
                "wirelag-file-test-{}-{}.cap",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            let path = std::env::temp_dir().join(name);
            std::fs::write(&path, bytes).unwrap();
            TempCapture(path)
        }
    }

    impl Drop for TempCapture {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn put_u16(out: &mut Vec<u8>, order: ByteOrder, v: u16) {
        out.extend_from_slice(&match order {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        });
    }

    fn put_u32(out: &mut Vec<u8>, order: ByteOrder, v: u32) {
        out.extend_from_slice(&match order {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        });
    }

    fn put_u64(out: &mut Vec<u8>, order: ByteOrder, v: u64) {
        out.extend_from_slice(&match order {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        });
    }

    struct Record<'a> {
        secs: u32,
        frac: u32,
        data: &'a [u8],
        orig_len: u32,
    }

    fn record(secs: u32, frac: u32, data: &[u8]) -> Record<'_> {
        Record {
            secs,
            frac,
            data,
            orig_len: data.len() as u32,
        }
    }

    fn pcap_header(order: ByteOrder, magic: u32, linktype: u32) -> Vec<u8> {
        let mut out = Vec::new();
        put_u32(&mut out, order, magic);
        put_u16(&mut out, order, 2);
        put_u16(&mut out, order, 4);
        put_u32(&mut out, order, 0);
        put_u32(&mut out, order, 0);
        put_u32(&mut out, order, 65535);
        put_u32(&mut out, order, linktype);
        out
    }

    fn pcap(order: ByteOrder, magic: u32, linktype: u32, records: &[Record]) -> Vec<u8> {
        let mut out = pcap_header(order, magic, linktype);
        for r in records {
            put_u32(&mut out, order, r.secs);
            put_u32(&mut out, order, r.frac);
            put_u32(&mut out, order, r.data.len() as u32);
            put_u32(&mut out, order, r.orig_len);
            if magic == PCAP_MAGIC_MODIFIED {
                out.extend_from_slice(&[0; 8]);
            }
            out.extend_from_slice(r.data);
        }
        out
    }

    fn block(order: ByteOrder, block_type: u32, body: &[u8]) -> Vec<u8> {
        let padded = (body.len() + 3) & !3;
        let total = (12 + padded) as u32;
        let mut out = Vec::new();
        put_u32(&mut out, order, block_type);
        put_u32(&mut out, order, total);
        out.extend_from_slice(body);
        out.resize(8 + padded, 0);
        put_u32(&mut out, order, total);
        out
    }

    fn shb(order: ByteOrder) -> Vec<u8> {
        let mut body = Vec::new();
        put_u32(&mut body, order, PCAPNG_BYTE_ORDER_MAGIC);
        put_u16(&mut body, order, 1);
        put_u16(&mut body, order, 0);
        put_u64(&mut body, order, u64::MAX);
        block(order, BLOCK_SECTION_HEADER, &body)
    }

    fn option(order: ByteOrder, code: u16, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_u16(&mut out, order, code);
        put_u16(&mut out, order, value.len() as u16);
        out.extend_from_slice(value);
        out.resize((out.len() + 3) & !3, 0);
        out
    }

    fn idb(order: ByteOrder, linktype: u16, snaplen: u32, options: &[Vec<u8>]) -> Vec<u8> {
        let mut body = Vec::new();
        put_u16(&mut body, order, linktype);
        put_u16(&mut body, order, 0);
        put_u32(&mut body, order, snaplen);
        for o in options {
            body.extend_from_slice(o);
        }
        if !options.is_empty() {
            body.extend_from_slice(&[0; 4]);
        }
        block(order, BLOCK_INTERFACE_DESCRIPTION, &body)
    }

    fn epb(order: ByteOrder, interface: u32, ts: u64, data: &[u8], orig_len: u32) -> Vec<u8> {
        let mut body = Vec::new();
        put_u32(&mut body, order, interface);
        put_u32(&mut body, order, (ts >> 32) as u32);
        put_u32(&mut body, order, ts as u32);
        put_u32(&mut body, order, data.len() as u32);
        put_u32(&mut body, order, orig_len);
        body.extend_from_slice(data);
        block(order, BLOCK_ENHANCED_PACKET, &body)
    }

    fn spb(order: ByteOrder, data: &[u8], orig_len: u32) -> Vec<u8> {
        let mut body = Vec::new();
        put_u32(&mut body, order, orig_len);
        body.extend_from_slice(data);
        block(order, BLOCK_SIMPLE_PACKET, &body)
    }

    #[derive(Debug, PartialEq)]
    struct Seen {
        ns: i64,
        orig_len: u32,
        link_type: LinkType,
        interface: u32,
        data: Vec<u8>,
    }

    fn drain(source: &mut FileSource) -> (Vec<Seen>, Option<CaptureError>) {
        let mut seen = Vec::new();
        loop {
            match source.next_packet() {
                Ok(Some(p)) => seen.push(Seen {
                    ns: p.ts.as_nanos(),
                    orig_len: p.orig_len,
                    link_type: p.link_type,
                    interface: p.interface,
                    data: p.data.to_vec(),
                }),
                Ok(None) => return (seen, None),
                Err(e) => return (seen, Some(e)),
            }
        }
    }

    fn read_bytes(bytes: &[u8]) -> (Vec<Seen>, SourceSummary, Option<CaptureError>) {
        let file = TempCapture::new(bytes);
        let mut source = FileSource::open(&file.0).unwrap();
        let (seen, error) = drain(&mut source);
        (seen, source.summary(), error)
    }

    fn open_error(bytes: &[u8]) -> CaptureError {
        let file = TempCapture::new(bytes);
        match FileSource::open(&file.0) {
            Ok(_) => panic!("expected an error at open"),
            Err(e) => e,
        }
    }

    #[test]
    fn pcap_micro_and_nano_in_both_byte_orders() {
        let a = [0xaa; 14];
        let b = [0xbb; 60];
        for order in [ByteOrder::Little, ByteOrder::Big] {
            for (magic, nanos_per_frac) in [
                (PCAP_MAGIC_MICROS, 1000),
                (PCAP_MAGIC_NANOS, 1),
                (PCAP_MAGIC_MODIFIED, 1000),
            ] {
                let mut cut = record(1_700_000_001, 999_999, &b);
                cut.orig_len = 1514;
                let bytes = pcap(order, magic, 1, &[record(1_700_000_000, 123_456, &a), cut]);
                let (seen, summary, error) = read_bytes(&bytes);
                assert!(error.is_none(), "{error:?}");
                assert_eq!(
                    seen,
                    vec![
                        Seen {
                            ns: 1_700_000_000_000_000_000 + 123_456 * nanos_per_frac,
                            orig_len: 14,
                            link_type: LinkType::Ethernet,
                            interface: 0,
                            data: a.to_vec()
                        },
                        Seen {
                            ns: 1_700_000_001_000_000_000 + 999_999 * nanos_per_frac,
                            orig_len: 1514,
                            link_type: LinkType::Ethernet,
                            interface: 0,
                            data: b.to_vec()
                        },
                    ],
                    "{order:?} magic {magic:#x}"
                );
                assert_eq!(
                    summary,
                    SourceSummary {
                        format: "pcap",
                        link_types: vec![LinkType::Ethernet],
                        packets: 2,
                        snaplen: Some(65535),
                        ..SourceSummary::default()
                    }
                );
            }
        }
    }

    #[test]
    fn pcap_linktype_upper_bits_carry_fcs_not_the_type() {
        let bytes = pcap(
            ByteOrder::Little,
            PCAP_MAGIC_MICROS,
            0x1000_0071,
            &[record(1, 0, &[0; 16])],
        );
        let (seen, summary, error) = read_bytes(&bytes);
        assert!(error.is_none());
        assert_eq!(seen.len(), 1);
        assert_eq!(summary.link_types, vec![LinkType::LinuxSll]);
    }

    #[test]
    fn pcap_before_version_2_3_swaps_the_lengths() {
        let mut bytes = pcap(ByteOrder::Little, PCAP_MAGIC_MICROS, 1, &[]);
        bytes[6] = 2; // minor version 2
        bytes.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
        bytes.extend_from_slice(&100u32.to_le_bytes()); // original length first
        bytes.extend_from_slice(&4u32.to_le_bytes());
        bytes.extend_from_slice(&[1, 2, 3, 4]);
        let (seen, _, error) = read_bytes(&bytes);
        assert!(error.is_none());
        assert_eq!(seen[0].orig_len, 100);
        assert_eq!(seen[0].data, vec![1, 2, 3, 4]);
    }

    #[test]
    fn pcapng_sections_interfaces_resolutions_and_simple_packets() {
        let le = ByteOrder::Little;
        let be = ByteOrder::Big;
        let mut bytes = shb(le);
        bytes.extend(idb(le, 1, 0, &[option(le, OPTION_IF_TSRESOL, &[9])]));
        // 2^-10 s units and a 100 s offset; 101 is raw IP.
        bytes.extend(idb(
            le,
            101,
            65535,
            &[
                option(le, 2, b"eth1"),
                option(le, OPTION_IF_TSRESOL, &[0x80 | 10]),
                option(le, OPTION_IF_TSOFFSET, &100i64.to_le_bytes()),
            ],
        ));
        bytes.extend(block(le, 4, &[1, 2, 3, 4, 5])); // a name resolution block, skipped
        bytes.extend(epb(le, 0, 1_700_000_000_123_456_789, &[0xa0; 15], 15));
        bytes.extend(epb(le, 1, (1000 << 10) + 512, &[0x45; 20], 1500));
        bytes.extend(spb(le, &[0xc0; 7], 7));
        bytes.extend(block(le, 5, &[0; 16])); // an interface statistics block, skipped
                                              // A second section in the other byte order: interface ids start over.
        bytes.extend(shb(be));
        bytes.extend(idb(be, 113, 0, &[]));
        bytes.extend(epb(be, 0, 1_000_001, &[0x5e; 16], 16));

        let (seen, summary, error) = read_bytes(&bytes);
        assert!(error.is_none(), "{error:?}");
        assert_eq!(
            seen,
            vec![
                Seen {
                    ns: 1_700_000_000_123_456_789,
                    orig_len: 15,
                    link_type: LinkType::Ethernet,
                    interface: 0,
                    data: vec![0xa0; 15]
                },
                Seen {
                    ns: 1_100_500_000_000,
                    orig_len: 1500,
                    link_type: LinkType::Raw,
                    interface: 1,
                    data: vec![0x45; 20]
                },
                Seen {
                    ns: 1_100_500_000_000,
                    orig_len: 7,
                    link_type: LinkType::Ethernet,
                    interface: 0,
                    data: vec![0xc0; 7]
                },
                Seen {
                    ns: 1_000_001_000,
                    orig_len: 16,
                    link_type: LinkType::LinuxSll,
                    interface: 0,
                    data: vec![0x5e; 16]
                },
            ]
        );
        assert_eq!(
            summary,
            SourceSummary {
                format: "pcapng",
                link_types: vec![LinkType::Ethernet, LinkType::Raw, LinkType::LinuxSll],
                packets: 4,
                snaplen: Some(65535),
                ..SourceSummary::default()
            }
        );
    }

    #[test]
    fn obsolete_packet_block_is_read() {
        let le = ByteOrder::Little;
        let mut bytes = shb(le);
        bytes.extend(idb(le, 1, 0, &[]));
        let mut body = Vec::new();
        put_u16(&mut body, le, 0);
        put_u16(&mut body, le, 0);
        put_u32(&mut body, le, 0);
        put_u32(&mut body, le, 2_500_000);
        put_u32(&mut body, le, 3);
        put_u32(&mut body, le, 60);
        body.extend_from_slice(&[9, 8, 7]);
        bytes.extend(block(le, BLOCK_OBSOLETE_PACKET, &body));
        let (seen, _, error) = read_bytes(&bytes);
        assert!(error.is_none());
        assert_eq!(
            seen,
            vec![Seen {
                ns: 2_500_000_000,
                orig_len: 60,
                link_type: LinkType::Ethernet,
                interface: 0,
                data: vec![9, 8, 7]
            }]
        );
    }

    #[test]
    fn simple_packet_is_cut_to_the_snaplen() {
        let le = ByteOrder::Little;
        let mut bytes = shb(le);
        bytes.extend(idb(le, 1, 4, &[]));
        bytes.extend(spb(le, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 10));
        let (seen, summary, error) = read_bytes(&bytes);
        assert!(error.is_none());
        assert_eq!(seen[0].data, vec![1, 2, 3, 4]);
        assert_eq!(seen[0].orig_len, 10);
        assert_eq!(seen[0].ns, 0);
        assert_eq!(summary.snaplen, Some(4));
    }

    #[test]
    fn timestamps_convert_exactly_at_any_resolution() {
        let at = |tsresol: u8, offset: i64, units: u64| {
            InterfaceClock::new(tsresol, offset)
                .timestamp(units)
                .as_nanos()
        };
        assert_eq!(
            at(9, 0, 1_700_000_000_123_456_789),
            1_700_000_000_123_456_789
        );
        assert_eq!(at(6, 0, 1_700_000_000_123_456), 1_700_000_000_123_456_000);
        assert_eq!(at(0, 0, 5), 5_000_000_000);
        // 10^-12 s units: finer than ns, so truncated.
        assert_eq!(at(12, 0, 9_700_000_000_123_456_789), 9_700_000_000_123_456);
        assert_eq!(at(12, 0, 1_234_567), 1_234);
        // 2^-20 s units: 5.5 s, and one unit is 953.67 ns, truncated.
        assert_eq!(at(0x80 | 20, 0, (5 << 20) + (1 << 19)), 5_500_000_000);
        assert_eq!(at(0x80 | 20, 0, 1), 953);
        assert_eq!(at(0x80 | 3, 0, 9), 1_125_000_000);
        assert_eq!(at(0x80 | 32, 0, 3 << 31), 1_500_000_000);
        assert_eq!(at(6, -10, 1_000_000), -9_000_000_000);
        // Extreme resolutions neither panic nor overflow.
        assert_eq!(at(100, 7, u64::MAX), 7_000_000_000);
        assert_eq!(at(38, 0, u64::MAX), 0);
        assert_eq!(at(0x80 | 127, 0, u64::MAX), 0);
        assert_eq!(at(0x80 | 63, 0, u64::MAX), 1_999_999_999);
        assert_eq!(at(9, 0, u64::MAX), i64::MAX);
        assert_eq!(at(0, i64::MIN, 0), i64::MIN);
    }

    #[test]
    fn pcap_truncated_in_record_header_delivers_earlier_packets() {
        let mut bytes = pcap(
            ByteOrder::Little,
            PCAP_MAGIC_MICROS,
            1,
            &[record(1, 0, &[1; 10]), record(2, 0, &[2; 20])],
        );
        bytes.extend_from_slice(&[0; 7]);
        let (seen, summary, error) = read_bytes(&bytes);
        assert!(error.is_none());
        assert_eq!(seen.len(), 2);
        assert_eq!(summary.packets, 2);
        assert_eq!(
            summary.truncated,
            Some(Truncation {
                offset: 24 + 26 + 36,
                detail: "record header needs 16 bytes, 7 left".to_string()
            })
        );
    }

    #[test]
    fn pcap_truncated_in_record_data_delivers_earlier_packets() {
        let mut bytes = pcap(
            ByteOrder::Big,
            PCAP_MAGIC_NANOS,
            1,
            &[record(1, 0, &[1; 10]), record(2, 0, &[2; 30])],
        );
        bytes.truncate(bytes.len() - 25);
        let (seen, summary, error) = read_bytes(&bytes);
        assert!(error.is_none());
        assert_eq!(seen.len(), 1);
        assert_eq!(
            summary.truncated,
            Some(Truncation {
                offset: 24 + 26,
                detail: "record data needs 30 bytes, 5 left".to_string()
            })
        );
    }

    #[test]
    fn pcapng_truncated_block_delivers_earlier_packets() {
        let le = ByteOrder::Little;
        let mut bytes = shb(le);
        bytes.extend(idb(le, 1, 0, &[]));
        bytes.extend(epb(le, 0, 1, &[1; 20], 20));
        let cut_at = bytes.len() as u64;
        bytes.extend(epb(le, 0, 2, &[2; 20], 20));
        bytes.truncate(bytes.len() - 10);
        let (seen, summary, error) = read_bytes(&bytes);
        assert!(error.is_none());
        assert_eq!(seen.len(), 1);
        assert_eq!(
            summary.truncated,
            Some(Truncation {
                offset: cut_at,
                detail: "enhanced packet block needs 52 bytes, 42 left".to_string()
            })
        );

        // Cut inside the next block's 8-byte header.
        bytes.truncate(cut_at as usize + 5);
        let (_, summary, _) = read_bytes(&bytes);
        assert_eq!(
            summary.truncated.map(|t| (t.offset, t.detail)),
            Some((cut_at, "block header needs 8 bytes, 5 left".to_string()))
        );
    }

    #[test]
    fn file_that_ends_on_a_record_boundary_is_not_truncated() {
        let bytes = pcap(ByteOrder::Little, PCAP_MAGIC_MICROS, 1, &[]);
        let (seen, summary, error) = read_bytes(&bytes);
        assert!(seen.is_empty() && error.is_none() && summary.truncated.is_none());
        assert_eq!(summary.link_types, vec![LinkType::Ethernet]);
    }

    #[test]
    fn garbage_short_and_empty_files_are_not_captures() {
        let error = open_error(b"<html><body>not a capture</body></html>");
        assert!(
            matches!(&error, CaptureError::NotACapture { magic, .. } if magic == "0x3c68746d"),
            "{error:?}"
        );
        assert!(error
            .to_string()
            .contains("magic number 0x3c68746d at byte offset 0"));
        assert!(
            matches!(open_error(b""), CaptureError::NotACapture { magic, .. } if magic.contains("empty"))
        );
        assert!(
            matches!(open_error(b"\xd4\xc3"), CaptureError::NotACapture { magic, .. } if magic.starts_with("0xd4c3 "))
        );
    }

    #[test]
    fn short_file_header_is_corrupt() {
        let bytes = pcap(ByteOrder::Little, PCAP_MAGIC_MICROS, 1, &[]);
        assert!(matches!(
            open_error(&bytes[..10]),
            CaptureError::Corrupt { offset: 0, .. }
        ));
        assert!(matches!(
            open_error(&shb(ByteOrder::Little)[..9]),
            CaptureError::Corrupt { offset: 0, .. }
        ));
        let mut bad_magic = shb(ByteOrder::Little);
        bad_magic[8] = 0x99;
        assert!(matches!(
            open_error(&bad_magic),
            CaptureError::Corrupt { offset: 8, .. }
        ));
    }

    #[test]
    fn missing_file_is_an_open_error() {
        let path =
            std::env::temp_dir().join(format!("wirelag-no-such-file-{}.pcap", std::process::id()));
        assert!(matches!(
            FileSource::open(&path),
            Err(CaptureError::Open { .. })
        ));
        assert!(matches!(
            FileSource::open(&std::env::temp_dir()),
            Err(CaptureError::Open { .. })
        ));
    }

    #[test]
    fn corrupt_block_length_in_the_middle_names_its_offset() {
        let le = ByteOrder::Little;
        let mut head = shb(le);
        head.extend(idb(le, 1, 0, &[]));
        head.extend(epb(le, 0, 1, &[1; 20], 20));
        let bad_at = head.len();
        let tail = epb(le, 0, 2, &[2; 20], 20);

        // Length not a multiple of 4.
        let mut bytes = head.clone();
        bytes.extend(&tail);
        bytes[bad_at + 4] = 0x33;
        bytes.extend(epb(le, 0, 3, &[3; 20], 20));
        let (seen, _, error) = read_bytes(&bytes);
        assert_eq!(seen.len(), 1);
        assert!(
            matches!(error, Some(CaptureError::Corrupt { offset, .. }) if offset == bad_at as u64),
            "{error:?}"
        );

        // Trailing length differs from the leading one.
        let mut bytes = head.clone();
        bytes.extend(&tail);
        let trailer_at = bytes.len() - 4;
        bytes[trailer_at] = 0x40;
        bytes.extend(epb(le, 0, 3, &[3; 20], 20));
        let (seen, _, error) = read_bytes(&bytes);
        assert_eq!(seen.len(), 1);
        let Some(CaptureError::Corrupt { offset, detail, .. }) = error else {
            panic!("{error:?}")
        };
        assert_eq!(offset, bad_at as u64);
        assert!(
            detail.contains("trailing length 64 does not match its leading length 52"),
            "{detail}"
        );

        // Shorter than the smallest block.
        let mut bytes = head.clone();
        bytes.extend(&tail);
        bytes[bad_at + 4] = 8;
        let (_, _, error) = read_bytes(&bytes);
        assert!(
            matches!(error, Some(CaptureError::Corrupt { offset, .. }) if offset == bad_at as u64)
        );

        // Captured length larger than the block.
        let mut bytes = head.clone();
        bytes.extend(&tail);
        bytes[bad_at + 8 + 12] = 21;
        let (_, _, error) = read_bytes(&bytes);
        assert!(
            matches!(&error, Some(CaptureError::Corrupt { offset, detail, .. }) if *offset == bad_at as u64 && detail.contains("captured length 21")),
            "{error:?}"
        );

        // Unknown interface.
        let mut bytes = head;
        bytes.extend(epb(le, 3, 2, &[2; 20], 20));
        let (_, _, error) = read_bytes(&bytes);
        assert!(
            matches!(&error, Some(CaptureError::Corrupt { offset, detail, .. }) if *offset == bad_at as u64 && detail.contains("interface 3")),
            "{error:?}"
        );
    }

    #[test]
    fn oversized_pcap_record_is_corrupt_at_its_start() {
        let mut bytes = pcap(
            ByteOrder::Little,
            PCAP_MAGIC_MICROS,
            1,
            &[record(1, 0, &[1; 10])],
        );
        let bad_at = bytes.len() as u64;
        put_u32(&mut bytes, ByteOrder::Little, 2);
        put_u32(&mut bytes, ByteOrder::Little, 0);
        put_u32(&mut bytes, ByteOrder::Little, MAX_RECORD_LEN + 1);
        put_u32(&mut bytes, ByteOrder::Little, MAX_RECORD_LEN + 1);
        bytes.extend_from_slice(&[0; 100]);
        let (seen, _, error) = read_bytes(&bytes);
        assert_eq!(seen.len(), 1);
        assert!(matches!(error, Some(CaptureError::Corrupt { offset, .. }) if offset == bad_at));
    }

    #[test]
    fn unsupported_link_types_are_reported_with_their_offset() {
        let bytes = pcap(
            ByteOrder::Little,
            PCAP_MAGIC_MICROS,
            105,
            &[record(1, 0, &[1; 10])],
        );
        let error = open_error(&bytes);
        assert!(
            matches!(&error, CaptureError::UnsupportedLinkType { linktype: 105, offset: 20, name, .. } if name == "IEEE 802.11"),
            "{error:?}"
        );

        // In pcapng an undecodable interface only matters once a packet uses it.
        let le = ByteOrder::Little;
        let mut bytes = shb(le);
        bytes.extend(idb(le, 1, 0, &[]));
        bytes.extend(idb(le, 105, 0, &[]));
        bytes.extend(epb(le, 0, 1, &[1; 20], 20));
        let bad_at = bytes.len() as u64;
        bytes.extend(epb(le, 1, 2, &[2; 20], 20));
        let (seen, summary, error) = read_bytes(&bytes);
        assert_eq!(seen.len(), 1);
        assert_eq!(summary.link_types, vec![LinkType::Ethernet]);
        assert!(
            matches!(error, Some(CaptureError::UnsupportedLinkType { linktype: 105, offset, .. }) if offset == bad_at)
        );
    }

    #[test]
    fn tiny_read_buffers_give_the_same_packets() {
        let le = ByteOrder::Little;
        let mut pcapng = shb(le);
        pcapng.extend(idb(le, 1, 0, &[option(le, OPTION_IF_TSRESOL, &[9])]));
        let mut records = Vec::new();
        let payloads: Vec<Vec<u8>> = (0..50u8)
            .map(|i| vec![i; usize::from(i) * 7 % 90])
            .collect();
        for (i, payload) in payloads.iter().enumerate() {
            pcapng.extend(epb(le, 0, i as u64 * 1_000, payload, payload.len() as u32));
            records.push(record(i as u32, 0, payload));
        }
        let pcap = pcap(ByteOrder::Big, PCAP_MAGIC_MICROS, 1, &records);
        for bytes in [pcap, pcapng] {
            let file = TempCapture::new(&bytes);
            let mut reference = FileSource::open(&file.0).unwrap();
            let (expected, _) = drain(&mut reference);
            assert_eq!(expected.len(), 50);
            for limit in [1, 16, 31, 64, 100] {
                let mut source = FileSource::open_with_buffer_limit(&file.0, limit).unwrap();
                let (seen, error) = drain(&mut source);
                assert!(error.is_none());
                assert_eq!(seen, expected, "buffer limit {limit}");
            }
        }
    }

    #[test]
    fn huge_skipped_blocks_stream_past_without_growing_the_buffer() {
        let le = ByteOrder::Little;
        let mut bytes = block(le, 0x0bad, &[7; 1000]);
        bytes.extend_from_slice(&[0xee; 8]);
        let file = TempCapture::new(&bytes);
        let mut input = ReadBuffer::new(File::open(&file.0).unwrap(), 64);
        assert!(input.fill(8).unwrap());
        assert!(matches!(
            skip_block(&mut input, 1012, le).unwrap(),
            SkipOutcome::Skipped(1012)
        ));
        assert_eq!(input.offset(), 1012);
        assert_eq!(input.buf.len(), 64);

        let file = TempCapture::new(&bytes[..600]);
        let mut input = ReadBuffer::new(File::open(&file.0).unwrap(), 64);
        input.fill(8).unwrap();
        assert!(matches!(
            skip_block(&mut input, 1012, le).unwrap(),
            SkipOutcome::Truncated(600)
        ));
    }

    #[test]
    fn damaged_files_never_panic() {
        let le = ByteOrder::Little;
        let mut pcapng = shb(le);
        pcapng.extend(idb(
            le,
            1,
            0,
            &[
                option(le, OPTION_IF_TSRESOL, &[0x80 | 30]),
                option(le, OPTION_IF_TSOFFSET, &[1; 8]),
            ],
        ));
        pcapng.extend(epb(le, 0, 1, &[1; 20], 20));
        pcapng.extend(spb(le, &[2; 9], 9));
        pcapng.extend(block(le, 4, &[0; 8]));
        pcapng.extend(shb(ByteOrder::Big));
        pcapng.extend(idb(ByteOrder::Big, 113, 0, &[]));
        pcapng.extend(epb(ByteOrder::Big, 0, 1, &[1; 20], 20));
        let pcap = pcap(
            ByteOrder::Little,
            PCAP_MAGIC_MODIFIED,
            1,
            &[record(1, 0, &[1; 10]), record(2, 0, &[2; 30])],
        );
        for original in [pcapng, pcap] {
            let mut variants: Vec<Vec<u8>> = (0..original.len())
                .map(|n| original[..n].to_vec())
                .collect();
            for at in 0..original.len() {
                for value in [0x00, 0xff, 0x80, 0x03] {
                    let mut damaged = original.clone();
                    damaged[at] = value;
                    variants.push(damaged);
                }
            }
            for bytes in variants {
                let file = TempCapture::new(&bytes);
                if let Ok(mut source) = FileSource::open_with_buffer_limit(&file.0, 32) {
                    let _ = drain(&mut source);
                    let _ = source.summary();
                }
            }
        }
    }
}
