//! Offline captures: pcap (µs, ns and the "modified" Kuznetzov variant) and pcapng, read in pure
//! Rust without libpcap. The `pcap-parser` crate parses the file header, the records and the
//! blocks; this module owns the reading around it.
//!
//! The file is read through one refillable buffer (1 MiB, or less for small files) and every
//! packet handed out is a slice of that buffer, so memory stays bounded whatever the file size and
//! no packet costs an allocation. The buffer only grows when a single record is larger than it,
//! and records are capped at [`MAX_RECORD_LEN`]. pcap-parser's own readers (`LegacyPcapReader`,
//! `PcapNGReader`) are not used: they drop the `io::Error` of a failed read (`ReadError`), end a
//! cut file with `UnexpectedEof` without saying where the cut record starts, leave a record
//! larger than their buffer to the caller (`BufferTooSmall`, then `grow`), and the pcapng one
//! parses every block type in full, options included, even those this reader skips. Its parsing
//! functions work on any byte slice and say "need more bytes" with `nom::Err::Incomplete`, which
//! is all this reader needs.
//!
//! A file that stops in the middle of a record (a capture still being written, or a copy cut
//! short) is not an error: the packets before the cut are delivered, then the source ends and
//! [`SourceSummary::truncated`] says where the cut record starts. Damage that cannot be a simple
//! cut (impossible lengths, mismatched pcapng block trailers) is a [`CaptureError::Corrupt`].
//!
//! What pcap-parser (0.17) lacks, and so is kept here:
//! - big-endian "modified" pcap files and the swapped length fields of files older than format
//!   2.3 (its record parsers know neither): [`parse_variant_record`];
//! - the pcapng generic block header on its own: its block parsers need the whole block in
//!   memory, so the 8-byte header is read first ([`BlockHeader`]) to refuse impossible lengths
//!   before reading what they claim, to stream past huge blocks that are skipped anyway, and to
//!   name the block in truncation messages. pcap-parser also checks neither that a length is a
//!   multiple of 4 nor (for section headers and simple packets) the trailing length;
//! - the obsolete packet block (type 2), which it treats as unknown: [`parse_obsolete_packet`];
//! - timestamps: its `build_ts` keeps seconds in a u32, takes an unsigned offset and goes through
//!   `build_ts_resolution`, which refuses every power-of-two `if_tsresol`; its IDB `if_tsoffset`
//!   is always decoded little-endian. [`InterfaceClock`] converts exactly, and `if_tsoffset` is
//!   decoded in the section's byte order from the option pcap-parser parsed;
//! - an interface option whose length runs past its block is silently dropped by pcap-parser;
//!   here it is reported, as an impossible length.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use pcap_parser::nom;
use pcap_parser::pcap::{
    parse_pcap_frame, parse_pcap_frame_be, parse_pcap_frame_modified, parse_pcap_header,
    LegacyPcapBlock, PcapHeader,
};
use pcap_parser::pcapng::{
    parse_enhancedpacketblock_be, parse_enhancedpacketblock_le, parse_interfacedescriptionblock_be,
    parse_interfacedescriptionblock_le, parse_sectionheaderblock, parse_simplepacketblock_be,
    parse_simplepacketblock_le, InterfaceDescriptionBlock, OptionCode, BOM_MAGIC, EPB_MAGIC,
    IDB_MAGIC, SHB_MAGIC, SPB_MAGIC,
};
use pcap_parser::PcapError;
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

const PCAP_FILE_HEADER_LEN: usize = 24;
const PCAP_LINKTYPE_OFFSET: u64 = 20;
/// Alexey Kuznetzov's patched libpcap, written big-endian: pcap-parser only knows the
/// little-endian form of this magic.
const PCAP_MAGIC_MODIFIED_BIG: [u8; 4] = [0xa1, 0xb2, 0xcd, 0x34];
/// The big-endian µs magic: the modified format's file header is otherwise the same.
const PCAP_MAGIC_MICROS_BIG: [u8; 4] = [0xa1, 0xb2, 0xc3, 0xd4];

/// Obsolete packet block, superseded by the enhanced packet block; pcap-parser has no parser.
const BLOCK_OBSOLETE_PACKET: u32 = 2;

/// pcapng's default interface resolution: 10^-6 s.
const DEFAULT_TSRESOL: u8 = 6;

const NANOS_PER_SEC: u64 = 1_000_000_000;

type ParseResult<'a, T> = nom::IResult<&'a [u8], T, PcapError<&'a [u8]>>;

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
    records: RecordLayout,
    /// 1000 for µs files, 1 for ns files.
    nanos_per_frac_unit: u64,
    link_type: LinkType,
}

/// How a pcap record header is laid out, and so which parser reads it.
#[derive(Clone, Copy, Debug)]
enum RecordLayout {
    /// pcap-parser's `parse_pcap_frame`.
    Little,
    /// pcap-parser's `parse_pcap_frame_be`.
    Big,
    /// pcap-parser's `parse_pcap_frame_modified`.
    ModifiedLittle,
    /// What pcap-parser does not read: big-endian modified records, and files older than format
    /// 2.3, which store the original length before the captured length.
    Variant {
        order: ByteOrder,
        header_len: usize,
        lengths_swapped: bool,
    },
}

impl RecordLayout {
    fn header_len(self) -> usize {
        match self {
            RecordLayout::Little | RecordLayout::Big => 16,
            RecordLayout::ModifiedLittle => 24,
            RecordLayout::Variant { header_len, .. } => header_len,
        }
    }

    #[inline]
    fn parse(self, input: &[u8]) -> ParseResult<'_, LegacyPcapBlock<'_>> {
        match self {
            RecordLayout::Little => parse_pcap_frame(input),
            RecordLayout::Big => parse_pcap_frame_be(input),
            RecordLayout::ModifiedLittle => parse_pcap_frame_modified(input),
            RecordLayout::Variant {
                order,
                header_len,
                lengths_swapped,
            } => parse_variant_record(input, order, header_len, lengths_swapped),
        }
    }
}

/// A record pcap-parser cannot read, parsed the way its `parse_pcap_frame` parses the others
/// (same result, same `Incomplete` when the buffer holds less than the record).
fn parse_variant_record(
    input: &[u8],
    order: ByteOrder,
    header_len: usize,
    lengths_swapped: bool,
) -> ParseResult<'_, LegacyPcapBlock<'_>> {
    let incomplete = |have: usize, need: usize| nom::Err::Incomplete(nom::Needed::new(need - have));
    let (Some(header), Some(after_header)) = (input.get(..header_len), input.get(header_len..))
    else {
        return Err(incomplete(input.len(), header_len));
    };
    let field = |at| order.u32(header, at).unwrap_or(0);
    let (first_len, second_len) = (field(8), field(12));
    let (caplen, origlen) = if lengths_swapped {
        (second_len, first_len)
    } else {
        (first_len, second_len)
    };
    let data_len = usize::try_from(caplen).unwrap_or(usize::MAX);
    let (Some(data), Some(rest)) = (after_header.get(..data_len), after_header.get(data_len..))
    else {
        return Err(incomplete(after_header.len(), data_len));
    };
    let record = LegacyPcapBlock {
        ts_sec: field(0),
        ts_usec: field(4),
        caplen,
        origlen,
        data,
    };
    Ok((rest, record))
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

/// Where `inner`, a slice a parser returned from `outer`, starts within it.
fn offset_within(outer: &[u8], inner: &[u8]) -> usize {
    (inner.as_ptr() as usize).saturating_sub(outer.as_ptr() as usize)
}

/// One line for a pcap-parser error, without the raw input bytes its `Display` would print.
fn parse_failure(kind: impl std::fmt::Display, error: nom::Err<PcapError<&[u8]>>) -> String {
    match error {
        nom::Err::Incomplete(_) => format!("{kind} contents run past its length"),
        nom::Err::Error(PcapError::NomError(_, check) | PcapError::OwnedNomError(_, check))
        | nom::Err::Failure(PcapError::NomError(_, check) | PcapError::OwnedNomError(_, check)) => {
            format!("{kind} is malformed ({} check)", check.description())
        }
        nom::Err::Error(other) | nom::Err::Failure(other) => format!("{kind}: {other}"),
    }
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
        // The section header's type reads the same in both byte orders.
        if u32::from_le_bytes(magic) == SHB_MAGIC {
            source.start_pcapng()?;
        } else {
            source.start_pcap(magic)?;
        }
        Ok(source)
    }

    fn start_pcap(&mut self, magic: [u8; 4]) -> Result<(), CaptureError> {
        let head = self.input.unconsumed();
        let head = head.get(..PCAP_FILE_HEADER_LEN).unwrap_or(head);
        let modified_big = magic == PCAP_MAGIC_MODIFIED_BIG;
        let parsed = if modified_big {
            // Read as the big-endian µs header it otherwise is; the records differ (below).
            let mut header = head.to_vec();
            if let Some(magic) = header.first_chunk_mut::<4>() {
                *magic = PCAP_MAGIC_MICROS_BIG;
            }
            parse_pcap_header(&header)
                .map(|(_, header)| header)
                .map_err(|error| matches!(error, nom::Err::Incomplete(_)))
        } else {
            parse_pcap_header(head)
                .map(|(_, header)| header)
                .map_err(|error| matches!(error, nom::Err::Incomplete(_)))
        };
        let header: PcapHeader = match parsed {
            Ok(header) => header,
            Err(true) => {
                return Err(self.corrupt(
                    0,
                    format!(
                        "pcap file header needs {PCAP_FILE_HEADER_LEN} bytes, the file has {}",
                        head.len()
                    ),
                ))
            }
            Err(false) => {
                return Err(CaptureError::NotACapture {
                    path: self.path.clone(),
                    magic: format!("0x{}", hex(&magic)),
                })
            }
        };
        // The upper 16 bits carry FCS information, not the link type.
        let linktype = u32::from_ne_bytes(header.network.0.to_ne_bytes()) & 0xffff;
        let Some(link_type) = LinkType::from_linktype(linktype) else {
            return Err(CaptureError::UnsupportedLinkType {
                path: self.path.clone(),
                linktype,
                name: linktype_name(linktype),
                offset: PCAP_LINKTYPE_OFFSET,
            });
        };
        let order = if header.is_bigendian() {
            ByteOrder::Big
        } else {
            ByteOrder::Little
        };
        let modified = modified_big || header.is_modified_format();
        let lengths_swapped =
            header.version_major < 2 || (header.version_major == 2 && header.version_minor < 3);
        let records = match (order, modified, lengths_swapped) {
            (ByteOrder::Little, false, false) => RecordLayout::Little,
            (ByteOrder::Big, false, false) => RecordLayout::Big,
            (ByteOrder::Little, true, false) => RecordLayout::ModifiedLittle,
            _ => RecordLayout::Variant {
                order,
                header_len: if modified { 24 } else { 16 },
                lengths_swapped,
            },
        };
        self.input.consume(PCAP_FILE_HEADER_LEN);
        self.link_types.push(link_type);
        self.snaplen = (header.snaplen != 0).then_some(header.snaplen);
        self.format = Format::Pcap(PcapLayout {
            records,
            nanos_per_frac_unit: if header.is_nanosecond_precision() {
                1
            } else {
                1000
            },
            link_type,
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
            return Err(self.corrupt(8, byte_order_magic_error(byte_order_magic)));
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

fn byte_order_magic_error(magic: &[u8]) -> String {
    format!(
        "pcapng byte-order magic is 0x{}, expected 0x1a2b3c4d in either byte order",
        hex(magic)
    )
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

/// Parses the next record where it lies in the buffer; when pcap-parser says it needs more
/// bytes, the buffer is filled up to what the record needs (after checking the claimed length
/// against the cap) and the record parsed again.
fn next_pcap_record(
    path: &Path,
    input: &mut ReadBuffer,
    layout: &PcapLayout,
) -> Result<Step, CaptureError> {
    let record_start = input.offset();
    let header_len = layout.records.header_len();
    let too_long = |captured_len: u64| CaptureError::Corrupt {
        path: path.to_path_buf(),
        offset: record_start,
        detail: format!(
            "record claims {captured_len} captured bytes, more than the {} MiB limit",
            MAX_RECORD_LEN >> 20
        ),
    };
    loop {
        let unconsumed = input.unconsumed();
        let needed = match layout.records.parse(unconsumed) {
            Ok((_, record)) => {
                // A buffer grown for an earlier record could hold one past the cap.
                if record.caplen > MAX_RECORD_LEN {
                    return Err(too_long(u64::from(record.caplen)));
                }
                let data_start = input.pos + offset_within(unconsumed, record.data);
                let data_len = record.data.len();
                // u32 seconds times 1e9 plus u32 fractions times 1000 stays far below i64::MAX.
                let nanos = u64::from(record.ts_sec) * NANOS_PER_SEC
                    + u64::from(record.ts_usec) * layout.nanos_per_frac_unit;
                let packet = PacketAt {
                    ts: Timestamp::from_nanos(i64::try_from(nanos).unwrap_or(i64::MAX)),
                    orig_len: record.origlen,
                    link_type: layout.link_type,
                    interface: 0,
                    data_start,
                    data_len,
                };
                input.consume(header_len + data_len);
                return Ok(Step::Packet(packet));
            }
            Err(nom::Err::Incomplete(nom::Needed::Size(more))) => more.get(),
            Err(nom::Err::Incomplete(nom::Needed::Unknown)) => 1,
            Err(error) => {
                // pcap-parser's record parsers only ever need more bytes; this keeps it total.
                let detail = parse_failure("record", error);
                return Err(CaptureError::Corrupt {
                    path: path.to_path_buf(),
                    offset: record_start,
                    detail,
                });
            }
        };
        let have = unconsumed.len();
        let wanted = have.saturating_add(needed);
        let header_complete = have >= header_len;
        let data_len = wanted - header_len.min(wanted);
        if header_complete && data_len > MAX_RECORD_LEN as usize {
            return Err(too_long(data_len as u64));
        }
        if !input
            .fill(wanted)
            .map_err(|e| read_error(path, record_start, e))?
        {
            let left = input.available();
            if left == 0 {
                return Ok(Step::End);
            }
            let detail = if left < header_len {
                format!("record header needs {header_len} bytes, {left} left")
            } else {
                format!(
                    "record data needs {data_len} bytes, {} left",
                    left - header_len
                )
            };
            return Ok(truncated_at(record_start, detail));
        }
    }
}

/// A pcapng block's type and total length, read before the block is in memory.
struct BlockHeader {
    block_type: u32,
    total_len: u32,
}

impl BlockHeader {
    fn read(head: &[u8], order: ByteOrder) -> Option<BlockHeader> {
        Some(BlockHeader {
            block_type: order.u32(head, 0)?,
            total_len: order.u32(head, 4)?,
        })
    }
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
        if state.order.u32(input.unconsumed(), 0) == Some(SHB_MAGIC) {
            if !input.fill(12).map_err(io_error)? {
                let left = input.available();
                let detail = format!("section header block needs at least 12 bytes, {left} left");
                return Ok(truncated_at(block_start, detail));
            }
            let magic = input.unconsumed().get(8..12).unwrap_or(&[]);
            let Some(order) = ByteOrder::from_pcapng_magic(magic) else {
                return Err(corrupt(block_start + 8, byte_order_magic_error(magic)));
            };
            state.order = order;
        }
        let order = state.order;
        let Some(BlockHeader {
            block_type,
            total_len,
        }) = BlockHeader::read(input.unconsumed(), order)
        else {
            // fill(8) guaranteed the header bytes; this only keeps the parse total.
            return Err(corrupt(block_start, "block header unreadable".to_string()));
        };
        let kind = BlockKind(block_type);
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
        let block_pos = input.pos;
        let block = input.unconsumed().get(..block_len).unwrap_or(&[]);
        let trailer = order.u32(block, block_len - 4).unwrap_or(0);
        if trailer != total_len {
            let detail = format!(
                "{kind} trailing length {trailer} does not match its leading length {total_len}"
            );
            return Err(corrupt(block_start, detail));
        }
        let malformed = |error| corrupt(block_start, parse_failure(kind, error));

        match block_type {
            SHB_MAGIC => {
                let (_, section) = parse_sectionheaderblock(block).map_err(malformed)?;
                if section.major_version != 1 {
                    return Err(corrupt(
                        block_start,
                        format!(
                            "unsupported pcapng version {}.{}",
                            section.major_version, section.minor_version
                        ),
                    ));
                }
                state.interfaces.clear();
            }
            IDB_MAGIC => {
                let (_, description) = match order {
                    ByteOrder::Little => parse_interfacedescriptionblock_le(block),
                    ByteOrder::Big => parse_interfacedescriptionblock_be(block),
                }
                .map_err(malformed)?;
                let interface = interface_from(&description, block, order)
                    .map_err(|detail| corrupt(block_start, detail))?;
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
            EPB_MAGIC | BLOCK_OBSOLETE_PACKET => {
                let parsed = if block_type == EPB_MAGIC {
                    match order {
                        ByteOrder::Little => parse_enhancedpacketblock_le(block),
                        ByteOrder::Big => parse_enhancedpacketblock_be(block),
                    }
                    .ok()
                    .map(|(_, epb)| PacketFields {
                        interface_id: epb.if_id,
                        ts_high: epb.ts_high,
                        ts_low: epb.ts_low,
                        caplen: epb.caplen,
                        orig_len: epb.origlen,
                        data: epb.data,
                    })
                } else {
                    parse_obsolete_packet(block, order)
                };
                let Some(packet) = parsed else {
                    // With the whole block in memory, only a captured length larger than the
                    // room in the block makes either parser fail.
                    let captured_len = order.u32(block, 20).unwrap_or(0);
                    let room = block_len - 32;
                    let detail = format!("{kind} captured length {captured_len} exceeds the {room} bytes of packet data in the block");
                    return Err(corrupt(block_start, detail));
                };
                let interface_id = packet.interface_id;
                let interface = interface_for(state, interface_id).ok_or_else(|| {
                    let known = state.interfaces.len();
                    corrupt(block_start, format!("{kind} refers to interface {interface_id}, but the section describes {known}"))
                })?;
                let Some(link_type) = interface.link_type else {
                    return Err(unsupported_link_type(path, interface.linktype, block_start));
                };
                let ts = interface
                    .clock
                    .timestamp((u64::from(packet.ts_high) << 32) | u64::from(packet.ts_low));
                // The parsers hand out the data with its padding.
                let data_len = usize::try_from(packet.caplen)
                    .unwrap_or(usize::MAX)
                    .min(packet.data.len());
                let at = PacketAt {
                    ts,
                    orig_len: packet.orig_len,
                    link_type,
                    interface: interface_id,
                    data_start: block_pos + offset_within(block, packet.data),
                    data_len,
                };
                state.last_ts = ts;
                input.consume(block_len);
                return Ok(Step::Packet(at));
            }
            SPB_MAGIC => {
                let (_, simple) = match order {
                    ByteOrder::Little => parse_simplepacketblock_le(block),
                    ByteOrder::Big => parse_simplepacketblock_be(block),
                }
                .map_err(malformed)?;
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
                let mut data_len = usize::try_from(simple.origlen)
                    .unwrap_or(usize::MAX)
                    .min(simple.data.len());
                if interface.snaplen != 0 {
                    data_len =
                        data_len.min(usize::try_from(interface.snaplen).unwrap_or(usize::MAX));
                }
                let at = PacketAt {
                    ts: state.last_ts,
                    orig_len: simple.origlen,
                    link_type,
                    interface: 0,
                    data_start: block_pos + offset_within(block, simple.data),
                    data_len,
                };
                input.consume(block_len);
                return Ok(Step::Packet(at));
            }
            _ => {}
        }
        input.consume(block_len);
    }
}

/// The fields of an enhanced or obsolete packet block that make a packet.
struct PacketFields<'a> {
    interface_id: u32,
    ts_high: u32,
    ts_low: u32,
    caplen: u32,
    orig_len: u32,
    /// The packet data with its padding.
    data: &'a [u8],
}

/// The obsolete packet block, which pcap-parser does not parse: an enhanced packet block whose
/// interface id is 16 bits, followed by a 16-bit drop count. `block` is the whole block, its
/// lengths already checked.
fn parse_obsolete_packet(block: &[u8], order: ByteOrder) -> Option<PacketFields<'_>> {
    let fields = (
        order.u16(block, 8),
        order.u32(block, 12),
        order.u32(block, 16),
        order.u32(block, 20),
        order.u32(block, 24),
    );
    let (Some(interface_id), Some(ts_high), Some(ts_low), Some(caplen), Some(orig_len)) = fields
    else {
        return None;
    };
    let room = block.get(28..block.len().saturating_sub(4)).unwrap_or(&[]);
    let data_len = usize::try_from(caplen).unwrap_or(usize::MAX);
    if data_len > room.len() {
        return None;
    }
    Some(PacketFields {
        interface_id: u32::from(interface_id),
        ts_high,
        ts_low,
        caplen,
        orig_len,
        data: room,
    })
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
        SHB_MAGIC | IDB_MAGIC | BLOCK_OBSOLETE_PACKET | SPB_MAGIC | EPB_MAGIC
    )
}

/// Smallest total length each block type can have: 12 bytes of framing plus its fixed fields
/// (pcap-parser's minimum for each block it parses).
fn min_block_len(block_type: u32) -> u32 {
    match block_type {
        SHB_MAGIC => 28,
        IDB_MAGIC => 20,
        SPB_MAGIC => 16,
        EPB_MAGIC | BLOCK_OBSOLETE_PACKET => 32,
        _ => 12,
    }
}

/// A block's name for messages. Formatted only when a message is made: building a `String` for
/// every block cost an allocation per packet.
#[derive(Clone, Copy)]
struct BlockKind(u32);

impl std::fmt::Display for BlockKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            SHB_MAGIC => f.write_str("section header block"),
            IDB_MAGIC => f.write_str("interface description block"),
            BLOCK_OBSOLETE_PACKET => f.write_str("packet block"),
            SPB_MAGIC => f.write_str("simple packet block"),
            EPB_MAGIC => f.write_str("enhanced packet block"),
            other => write!(f, "block of type 0x{other:08x}"),
        }
    }
}

/// The interface an IDB describes, from the fields and options pcap-parser parsed. `block` is
/// the whole block, read only to name an option that overruns it.
fn interface_from(
    description: &InterfaceDescriptionBlock<'_>,
    block: &[u8],
    order: ByteOrder,
) -> Result<Interface, String> {
    let linktype = u32::from_ne_bytes(description.linktype.0.to_ne_bytes());
    let mut tsresol = DEFAULT_TSRESOL;
    let mut offset_secs = 0i64;
    let mut ended = false;
    let mut parsed_len = 0usize;
    for option in &description.options {
        parsed_len += 4 + option.value.len();
        let value = option.as_bytes().unwrap_or(&[]);
        match option.code {
            OptionCode::EndOfOpt => {
                ended = true;
                break;
            }
            OptionCode::IfTsresol => match value {
                [resolution] => tsresol = *resolution,
                _ => {
                    return Err(format!(
                        "if_tsresol option has {} bytes, expected 1",
                        option.len
                    ))
                }
            },
            OptionCode::IfTsoffset => match value.first_chunk::<8>() {
                Some(raw) if value.len() == 8 => offset_secs = order.i64(*raw),
                _ => {
                    return Err(format!(
                        "if_tsoffset option has {} bytes, expected 8",
                        option.len
                    ))
                }
            },
            _ => {}
        }
    }
    if !ended {
        // pcap-parser stops at an option that runs past the block without saying so.
        let options = block.get(16..block.len().saturating_sub(4)).unwrap_or(&[]);
        let rest = options.get(parsed_len..).unwrap_or(&[]);
        if let (Some(code), Some(value_len)) = (order.u16(rest, 0), order.u16(rest, 2)) {
            let room = rest.len() - 4;
            return Err(format!(
                "interface option {code} claims {value_len} bytes, only {room} remain in the block"
            ));
        }
    }
    Ok(Interface {
        linktype,
        link_type: LinkType::from_linktype(linktype),
        snaplen: description.snaplen,
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

    #[inline]
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
        if u32::from_le_bytes(magic) == BOM_MAGIC {
            Some(ByteOrder::Little)
        } else if u32::from_be_bytes(magic) == BOM_MAGIC {
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

    fn i64(self, raw: [u8; 8]) -> i64 {
        match self {
            ByteOrder::Little => i64::from_le_bytes(raw),
            ByteOrder::Big => i64::from_be_bytes(raw),
        }
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
    #[inline]
    fn fill(&mut self, wanted: usize) -> io::Result<bool> {
        if self.available() >= wanted {
            return Ok(true);
        }
        self.refill(wanted)
    }

    /// The part of [`ReadBuffer::fill`] that reads: kept out of line so that the check every
    /// record makes stays a compare in its caller.
    #[inline(never)]
    fn refill(&mut self, wanted: usize) -> io::Result<bool> {
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

    // Magic numbers as read in little-endian order from the first four bytes.
    const PCAP_MAGIC_MICROS: u32 = 0xa1b2_c3d4;
    const PCAP_MAGIC_NANOS: u32 = 0xa1b2_3c4d;
    /// Alexey Kuznetzov's patched libpcap: µs timestamps, 8 extra bytes per record header.
    const PCAP_MAGIC_MODIFIED: u32 = 0xa1b2_cd34;

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
        put_u32(&mut body, order, BOM_MAGIC);
        put_u16(&mut body, order, 1);
        put_u16(&mut body, order, 0);
        put_u64(&mut body, order, u64::MAX);
        block(order, SHB_MAGIC, &body)
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
        block(order, IDB_MAGIC, &body)
    }

    fn epb(order: ByteOrder, interface: u32, ts: u64, data: &[u8], orig_len: u32) -> Vec<u8> {
        let mut body = Vec::new();
        put_u32(&mut body, order, interface);
        put_u32(&mut body, order, (ts >> 32) as u32);
        put_u32(&mut body, order, ts as u32);
        put_u32(&mut body, order, data.len() as u32);
        put_u32(&mut body, order, orig_len);
        body.extend_from_slice(data);
        block(order, EPB_MAGIC, &body)
    }

    fn spb(order: ByteOrder, data: &[u8], orig_len: u32) -> Vec<u8> {
        let mut body = Vec::new();
        put_u32(&mut body, order, orig_len);
        body.extend_from_slice(data);
        block(order, SPB_MAGIC, &body)
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
        bytes.extend(idb(le, 1, 0, &[option(le, OptionCode::IfTsresol.0, &[9])]));
        // 2^-10 s units and a 100 s offset; 101 is raw IP.
        bytes.extend(idb(
            le,
            101,
            65535,
            &[
                option(le, 2, b"eth1"),
                option(le, OptionCode::IfTsresol.0, &[0x80 | 10]),
                option(le, OptionCode::IfTsoffset.0, &100i64.to_le_bytes()),
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
    fn big_endian_tsoffset_and_binary_tsresol_are_read_in_the_section_byte_order() {
        // pcap-parser decodes if_tsoffset little-endian whatever the section, and refuses every
        // power-of-two resolution: both are done here.
        let be = ByteOrder::Big;
        let mut bytes = shb(be);
        bytes.extend(idb(
            be,
            1,
            0,
            &[
                option(be, OptionCode::IfTsresol.0, &[0x80 | 10]),
                option(be, OptionCode::IfTsoffset.0, &(-100i64).to_be_bytes()),
            ],
        ));
        bytes.extend(epb(be, 0, (1000 << 10) + 256, &[0x11; 14], 14));
        let (seen, _, error) = read_bytes(&bytes);
        assert!(error.is_none(), "{error:?}");
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].ns, 900_250_000_000);
    }

    #[test]
    fn interface_option_running_past_its_block_is_corrupt() {
        let le = ByteOrder::Little;
        let mut bytes = shb(le);
        let idb_at = bytes.len() as u64;
        let mut block = idb(le, 1, 0, &[option(le, 2, b"eth0")]);
        // The if_name option (at 16..) now claims 40 bytes; the block has 8 after its header.
        block[18] = 40;
        bytes.extend(block);
        let (seen, _, error) = read_bytes(&bytes);
        assert!(seen.is_empty());
        let Some(CaptureError::Corrupt { offset, detail, .. }) = error else {
            panic!("{error:?}")
        };
        assert_eq!(offset, idb_at);
        assert_eq!(
            detail,
            "interface option 2 claims 40 bytes, only 8 remain in the block"
        );
    }

    #[test]
    fn progress_counts_the_bytes_consumed_of_the_file() {
        let le = ByteOrder::Little;
        let mut pcapng = shb(le);
        pcapng.extend(idb(le, 1, 0, &[]));
        pcapng.extend(epb(le, 0, 1, &[1; 20], 20));
        pcapng.extend(epb(le, 0, 2, &[2; 30], 30));
        let pcap = pcap(
            ByteOrder::Little,
            PCAP_MAGIC_MICROS,
            1,
            &[record(1, 0, &[1; 10]), record(2, 0, &[2; 30])],
        );
        for (bytes, first_end) in [(pcapng, 28 + 20 + 52), (pcap, 24 + 26)] {
            let total = bytes.len() as u64;
            let file = TempCapture::new(&bytes);
            let mut source = FileSource::open_with_buffer_limit(&file.0, 16).unwrap();
            let progress = |source: &FileSource| source.progress().map(|p| (p.consumed, p.total));
            assert!(source.next_packet().unwrap().is_some());
            assert_eq!(progress(&source), Some((first_end, total)));
            assert!(source.next_packet().unwrap().is_some());
            assert!(source.next_packet().unwrap().is_none());
            assert_eq!(progress(&source), Some((total, total)));
        }
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
        pcapng.extend(idb(le, 1, 0, &[option(le, OptionCode::IfTsresol.0, &[9])]));
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
                option(le, OptionCode::IfTsresol.0, &[0x80 | 30]),
                option(le, OptionCode::IfTsoffset.0, &[1; 8]),
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
