//! The MySQL compressed protocol (CLIENT_COMPRESS / CLIENT_ZSTD_COMPRESSION_ALGORITHM).
//!
//! Each compressed packet has a 7-byte header: 3-byte compressed length, 1-byte compressed
//! sequence id, 3-byte uncompressed length (0 = the payload is stored as is). The payload holds
//! MySQL packets (several, or a part of one): the stream of payloads is the ordinary protocol.
//! Each payload is an independent zlib stream (or zstd frame), so decoding can restart at any
//! compressed-packet boundary after a gap.
//!
//! Bounds: zlib output is streamed through a fixed scratch buffer, never accumulated; output
//! beyond the declared uncompressed length (at most 16 MiB - 1 per packet) is a decompression
//! bomb: reported, and the rest of that packet skipped. zstd input is collected per packet up to
//! [`MAX_ZSTD_INPUT`] because the decoder reads from a complete buffer.

use std::io::Read;

use flate2::{Decompress, FlushDecompress, Status};

use super::framing::{header_chain, ChainEnd, Pos};

/// Scratch output buffer size for one decompression step.
const SCRATCH: usize = 32 * 1024;
/// Largest zstd-compressed payload collected for decoding.
pub const MAX_ZSTD_INPUT: usize = 1 << 20;
/// How far into a chunk a resynchronisation scan looks for a header.
const HUNT_WINDOW: usize = 4096;

/// What the decompressor hands up.
#[derive(Debug)]
pub enum Decoded<'a> {
    /// Uncompressed protocol bytes. `first` is where the first byte came from (the start of
    /// its compressed packet when it is that packet's first output), `cur` the rest.
    Data {
        bytes: &'a [u8],
        first: Pos,
        cur: Pos,
    },
    /// `len` uncompressed bytes are lost (corrupt or bounded packet): the layer above must
    /// resynchronise.
    Lost { len: u64, problem: Problem },
    /// Bytes skipped while hunting for a compressed header.
    Skipped { len: u64 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The payload inflated beyond its declared length.
    Bomb,
    /// zlib/zstd refused the payload, or it ended short of the declared length.
    Corrupt(String),
    /// A zstd payload larger than we are willing to buffer.
    TooLarge,
    /// The capture lost bytes of this direction.
    Gap,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompressionStats {
    pub packets: u64,
    pub compressed_bytes: u64,
    pub decompressed_bytes: u64,
    pub bombs: u64,
    pub errors: u64,
}

#[derive(Debug, PartialEq, Eq)]
enum Body {
    Header,
    Raw,
    /// Compressed; the algorithm is decided by the first payload byte.
    Undecided,
    Zlib,
    Zstd,
    Skip,
}

pub struct Decompressor {
    header: [u8; 7],
    header_have: usize,
    body: Body,
    comp_left: usize,
    declared: usize,
    produced: usize,
    packet_start: Pos,
    emitted_any: bool,
    /// Lost framing: look for a plausible compressed header before decoding again.
    pub hunting: bool,
    zlib: Option<Box<Decompress>>,
    scratch: Vec<u8>,
    zstd_input: Vec<u8>,
    pub stats: CompressionStats,
}

impl std::fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decompressor")
            .field("body", &self.body)
            .field("hunting", &self.hunting)
            .field("stats", &self.stats)
            .finish()
    }
}

impl Decompressor {
    pub fn new(hunting: bool) -> Self {
        Decompressor {
            header: [0; 7],
            header_have: 0,
            body: Body::Header,
            comp_left: 0,
            declared: 0,
            produced: 0,
            packet_start: Pos::default(),
            emitted_any: false,
            hunting,
            zlib: None,
            scratch: Vec::new(),
            zstd_input: Vec::new(),
            stats: CompressionStats::default(),
        }
    }

    /// The capture lost bytes: drop the packet in progress and hunt for the next header.
    pub fn lose_sync(&mut self) {
        self.header_have = 0;
        self.body = Body::Header;
        self.comp_left = 0;
        self.zstd_input = Vec::new();
        self.hunting = true;
    }

    pub fn feed(&mut self, bytes: &[u8], pos: Pos, sink: &mut dyn FnMut(Decoded<'_>)) {
        let mut at = 0usize;
        while at < bytes.len() {
            let Some(rest) = bytes.get(at..) else { break };
            if self.hunting {
                match find_compressed_header(rest) {
                    Some(off) => {
                        if off > 0 {
                            sink(Decoded::Skipped { len: off as u64 });
                        }
                        at += off;
                        self.hunting = false;
                        self.header_have = 0;
                        self.body = Body::Header;
                        continue;
                    }
                    None => {
                        sink(Decoded::Skipped {
                            len: rest.len() as u64,
                        });
                        return;
                    }
                }
            }
            match self.body {
                Body::Header => {
                    if self.header_have == 0 {
                        self.packet_start = pos;
                        self.emitted_any = false;
                    }
                    let n = (7 - self.header_have).min(rest.len());
                    for (d, s) in self
                        .header
                        .iter_mut()
                        .skip(self.header_have)
                        .zip(rest.iter().take(n))
                    {
                        *d = *s;
                    }
                    self.header_have += n;
                    at += n;
                    if self.header_have == 7 {
                        self.header_have = 0;
                        let [a, b, c, _seq, d, e, f] = self.header;
                        self.comp_left = u32::from_le_bytes([a, b, c, 0]) as usize;
                        self.declared = u32::from_le_bytes([d, e, f, 0]) as usize;
                        self.produced = 0;
                        self.stats.packets += 1;
                        self.stats.compressed_bytes += self.comp_left as u64 + 7;
                        self.body = match (self.comp_left, self.declared) {
                            (0, _) => Body::Header,
                            (_, 0) => Body::Raw,
                            _ => Body::Undecided,
                        };
                    }
                }
                Body::Raw => {
                    let n = self.comp_left.min(rest.len());
                    let first = if self.emitted_any {
                        pos
                    } else {
                        self.packet_start
                    };
                    self.emitted_any = true;
                    self.stats.decompressed_bytes += n as u64;
                    sink(Decoded::Data {
                        bytes: rest.get(..n).unwrap_or(&[]),
                        first,
                        cur: pos,
                    });
                    self.comp_left -= n;
                    at += n;
                    if self.comp_left == 0 {
                        self.body = Body::Header;
                    }
                }
                Body::Undecided => {
                    if rest.first() == Some(&0x28) {
                        self.body = Body::Zstd;
                        self.zstd_input.clear();
                        if self.comp_left > MAX_ZSTD_INPUT {
                            self.stats.errors += 1;
                            sink(Decoded::Lost {
                                len: self.declared as u64,
                                problem: Problem::TooLarge,
                            });
                            self.body = Body::Skip;
                        }
                    } else {
                        self.body = Body::Zlib;
                        match self.zlib.as_mut() {
                            Some(z) => z.reset(true),
                            None => self.zlib = Some(Box::new(Decompress::new(true))),
                        }
                    }
                }
                Body::Zlib => {
                    let n = self.comp_left.min(rest.len());
                    let input = rest.get(..n).unwrap_or(&[]);
                    self.inflate(input, pos, sink);
                    self.comp_left -= n;
                    at += n;
                    if self.comp_left == 0 {
                        self.finish_packet(sink);
                    }
                }
                Body::Zstd => {
                    let n = self.comp_left.min(rest.len());
                    self.zstd_input
                        .extend_from_slice(rest.get(..n).unwrap_or(&[]));
                    self.comp_left -= n;
                    at += n;
                    if self.comp_left == 0 {
                        self.unzstd(pos, sink);
                        self.zstd_input = Vec::new();
                        self.finish_packet(sink);
                    }
                }
                Body::Skip => {
                    let n = self.comp_left.min(rest.len());
                    self.comp_left -= n;
                    at += n;
                    if self.comp_left == 0 {
                        self.body = Body::Header;
                    }
                }
            }
        }
    }

    fn finish_packet(&mut self, sink: &mut dyn FnMut(Decoded<'_>)) {
        if self.body != Body::Skip && self.produced < self.declared {
            self.stats.errors += 1;
            sink(Decoded::Lost {
                len: (self.declared - self.produced) as u64,
                problem: Problem::Corrupt(format!(
                    "compressed packet inflated to {} of {} declared bytes",
                    self.produced, self.declared
                )),
            });
        }
        self.body = Body::Header;
    }

    /// Hands up freshly produced output, enforcing the declared length. Returns false when the
    /// packet turned out to be a bomb.
    fn deliver(&mut self, made: usize, pos: Pos, sink: &mut dyn FnMut(Decoded<'_>)) -> bool {
        let allowed = self.declared.saturating_sub(self.produced);
        let give = made.min(allowed);
        if give > 0 {
            let first = if self.emitted_any {
                pos
            } else {
                self.packet_start
            };
            self.emitted_any = true;
            self.produced += give;
            self.stats.decompressed_bytes += give as u64;
            sink(Decoded::Data {
                bytes: self.scratch.get(..give).unwrap_or(&[]),
                first,
                cur: pos,
            });
        }
        if made > allowed {
            self.stats.bombs += 1;
            sink(Decoded::Lost {
                len: 0,
                problem: Problem::Bomb,
            });
            self.body = Body::Skip;
            return false;
        }
        true
    }

    fn inflate(&mut self, mut input: &[u8], pos: Pos, sink: &mut dyn FnMut(Decoded<'_>)) {
        if self.scratch.len() != SCRATCH {
            self.scratch = vec![0; SCRATCH];
        }
        let Some(mut z) = self.zlib.take() else {
            self.body = Body::Skip;
            return;
        };
        loop {
            let (in0, out0) = (z.total_in(), z.total_out());
            let res = z.decompress(input, &mut self.scratch, FlushDecompress::None);
            let used = usize::try_from(z.total_in() - in0).unwrap_or(input.len());
            let made = usize::try_from(z.total_out() - out0).unwrap_or(0);
            input = input.get(used..).unwrap_or(&[]);
            if made > 0 && !self.deliver(made, pos, sink) {
                break;
            }
            match res {
                Err(e) => {
                    self.stats.errors += 1;
                    sink(Decoded::Lost {
                        len: self.declared.saturating_sub(self.produced) as u64,
                        problem: Problem::Corrupt(format!("zlib: {e}")),
                    });
                    self.body = Body::Skip;
                    break;
                }
                Ok(Status::StreamEnd) => {
                    // Trailing bytes after the zlib stream are ignored; a later shortfall is
                    // reported by finish_packet.
                    break;
                }
                Ok(_) => {
                    if (used == 0 && made == 0) || (input.is_empty() && made < self.scratch.len()) {
                        break;
                    }
                }
            }
        }
        self.zlib = Some(z);
    }

    fn unzstd(&mut self, pos: Pos, sink: &mut dyn FnMut(Decoded<'_>)) {
        if self.scratch.len() != SCRATCH {
            self.scratch = vec![0; SCRATCH];
        }
        let input = std::mem::take(&mut self.zstd_input);
        let mut dec = match ruzstd::decoding::StreamingDecoder::new(input.as_slice()) {
            Ok(d) => d,
            Err(e) => {
                self.stats.errors += 1;
                sink(Decoded::Lost {
                    len: self.declared as u64,
                    problem: Problem::Corrupt(format!("zstd: {e}")),
                });
                self.body = Body::Skip;
                return;
            }
        };
        loop {
            match dec.read(&mut self.scratch) {
                Ok(0) => break,
                Ok(made) => {
                    if !self.deliver(made, pos, sink) {
                        break;
                    }
                }
                Err(e) => {
                    self.stats.errors += 1;
                    sink(Decoded::Lost {
                        len: self.declared.saturating_sub(self.produced) as u64,
                        problem: Problem::Corrupt(format!("zstd: {e}")),
                    });
                    self.body = Body::Skip;
                    break;
                }
            }
        }
    }
}

/// A compressed-packet header at `off` whose payload looks like what it claims to be: stored
/// MySQL packets whose headers chain through it, or a zlib/zstd stream start; and whose length
/// fits the bytes that follow (ends at the end of the chunk, runs past it, or is followed by
/// another plausible header).
pub fn plausible_compressed_header(bytes: &[u8], off: usize, depth: u8) -> bool {
    let Some(&[c0, c1, c2, _seq, d0, d1, d2]) = bytes.get(off..off + 7) else {
        return false;
    };
    let comp = u32::from_le_bytes([c0, c1, c2, 0]) as usize;
    let declared = u32::from_le_bytes([d0, d1, d2, 0]) as usize;
    if comp == 0 {
        return false;
    }
    let payload_start = off + 7;
    let avail = bytes.len() - payload_start.min(bytes.len());
    let payload = bytes
        .get(payload_start..payload_start + comp.min(avail))
        .unwrap_or(&[]);
    let body_ok = if declared == 0 {
        // Stored: the payload must begin with MySQL headers that chain to its end (or beyond
        // what was captured).
        if payload.len() < 4 {
            return false;
        }
        let (n, end) = header_chain(payload, 0, 64);
        let whole = payload.len() == comp;
        match end {
            ChainEnd::Exact => n >= 1 && whole,
            ChainEnd::Beyond => !whole && off == 0,
            ChainEnd::Broken => false,
        }
    } else {
        let zlib = match (payload.first(), payload.get(1)) {
            (Some(&0x78), Some(&b)) => (0x7800u32 | u32::from(b)) % 31 == 0,
            (Some(&0x78), None) => true,
            _ => false,
        };
        let zstd = payload.get(..4) == Some(&[0x28, 0xb5, 0x2f, 0xfd]);
        // MySQL stores a payload raw when compression does not shrink it.
        (zlib || zstd) && comp <= declared + 64
    };
    if !body_ok {
        return false;
    }
    let end = payload_start + comp;
    match end.cmp(&bytes.len()) {
        std::cmp::Ordering::Equal => true,
        // Running past the chunk cannot be checked: only trusted at a segment start.
        std::cmp::Ordering::Greater => off == 0,
        std::cmp::Ordering::Less => depth > 0 && plausible_compressed_header(bytes, end, depth - 1),
    }
}

fn find_compressed_header(bytes: &[u8]) -> Option<usize> {
    (0..bytes.len().min(HUNT_WINDOW)).find(|&off| plausible_compressed_header(bytes, off, 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{write::ZlibEncoder, Compression};
    use std::io::Write;

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn run(d: &mut Decompressor, chunks: &[&[u8]]) -> (Vec<u8>, Vec<String>) {
        let mut data = Vec::new();
        let mut problems = Vec::new();
        for c in chunks {
            d.feed(c, Pos::default(), &mut |e| match e {
                Decoded::Data { bytes, .. } => data.extend_from_slice(bytes),
                Decoded::Lost { problem, .. } => problems.push(format!("{problem:?}")),
                Decoded::Skipped { .. } => problems.push("skipped".into()),
            });
        }
        (data, problems)
    }

    #[test]
    fn zlib_packet_split_anywhere_inflates() {
        let plain: Vec<u8> = (0..5000u32).map(|i| (i % 7) as u8).collect();
        let z = zlib(&plain);
        let mut framed = vec![];
        framed.extend_from_slice(&(z.len() as u32).to_le_bytes()[..3]);
        framed.push(0);
        framed.extend_from_slice(&(plain.len() as u32).to_le_bytes()[..3]);
        framed.extend_from_slice(&z);
        for cut in [0, 3, 7, 8, 20, framed.len() - 1] {
            let mut d = Decompressor::new(false);
            let (data, problems) = run(&mut d, &[&framed[..cut], &framed[cut..]]);
            assert_eq!(data, plain, "cut {cut}");
            assert!(problems.is_empty());
        }
    }

    #[test]
    fn bomb_is_bounded() {
        let plain = vec![0u8; 4 << 20];
        let z = zlib(&plain);
        let mut framed = vec![];
        framed.extend_from_slice(&(z.len() as u32).to_le_bytes()[..3]);
        framed.push(0);
        // Claims 100 bytes.
        framed.extend_from_slice(&[100, 0, 0]);
        framed.extend_from_slice(&z);
        let mut d = Decompressor::new(false);
        let (data, problems) = run(&mut d, &[&framed]);
        assert_eq!(data.len(), 100);
        assert_eq!(problems, vec!["Bomb".to_string()]);
        assert_eq!(d.stats.bombs, 1);
    }

    #[test]
    fn zstd_packet_inflates_and_is_bounded() {
        let plain: Vec<u8> = (0..3000u32).map(|i| (i % 11) as u8).collect();
        let z = ruzstd::encoding::compress_to_vec(
            plain.as_slice(),
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        let frame = |declared: usize| {
            let mut f = (z.len() as u32).to_le_bytes()[..3].to_vec();
            f.push(0);
            f.extend_from_slice(&(declared as u32).to_le_bytes()[..3]);
            f.extend_from_slice(&z);
            f
        };
        let framed = frame(plain.len());
        let mut d = Decompressor::new(false);
        let (data, problems) = run(&mut d, &[&framed[..10], &framed[10..]]);
        assert_eq!(data, plain);
        assert!(problems.is_empty());
        let mut d = Decompressor::new(false);
        let (data, problems) = run(&mut d, &[&frame(100)]);
        assert_eq!(data.len(), 100);
        assert_eq!(problems, vec!["Bomb".to_string()]);
        // Corrupt frames are reported, not fatal.
        let mut bad = frame(plain.len());
        let n = bad.len();
        for b in bad[12..n].iter_mut().step_by(3) {
            *b ^= 0x5a;
        }
        let mut d = Decompressor::new(false);
        let _ = run(&mut d, &[&bad]);
        // Random single-byte corruptions of both formats: never a panic.
        let zl = {
            let zz = zlib(&plain);
            let mut f = (zz.len() as u32).to_le_bytes()[..3].to_vec();
            f.push(0);
            f.extend_from_slice(&(plain.len() as u32).to_le_bytes()[..3]);
            f.extend_from_slice(&zz);
            f
        };
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for i in 0..4000 {
            let mut f = if i % 2 == 0 {
                framed.clone()
            } else {
                zl.clone()
            };
            for _ in 0..1 + i % 4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let k = 7 + (x as usize) % (f.len() - 7);
                f[k] = (x >> 32) as u8;
            }
            let mut d = Decompressor::new(false);
            let (data, _) = run(&mut d, &[&f]);
            assert!(data.len() <= plain.len());
        }
    }

    #[test]
    fn hunting_finds_a_stored_packet() {
        let inner = [5u8, 0, 0, 0, 3, b's', b'e', b'l', b'1'];
        let mut framed = vec![9u8, 0, 0, 0, 0, 0, 0];
        framed.extend_from_slice(&inner);
        let garbage = [0xaau8, 0xbb, 0xcc];
        let mut d = Decompressor::new(true);
        let (data, problems) = run(&mut d, &[&[&garbage[..], &framed].concat()]);
        assert_eq!(data, inner);
        assert_eq!(problems, vec!["skipped".to_string()]);
    }
}
