//! Writing frames to a pcap file (nanosecond resolution, host byte order, as libpcap writes
//! them), so captures taken by `experiment` can be re-read by wirelag, tshark and tcpdump.

use std::io::Write;

use super::RawPacket;
use wirelag_dissectors::link::LinkType;

/// Magic number of a nanosecond-resolution pcap file.
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;

pub struct PcapWriter<W: Write> {
    out: W,
    link_type: LinkType,
    snaplen: u32,
    pub packets: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header.
    pub fn new(mut out: W, link_type: LinkType, snaplen: u32) -> std::io::Result<Self> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&MAGIC_NANOS.to_ne_bytes());
        h.extend_from_slice(&2u16.to_ne_bytes());
        h.extend_from_slice(&4u16.to_ne_bytes());
        h.extend_from_slice(&0i32.to_ne_bytes()); // thiszone
        h.extend_from_slice(&0u32.to_ne_bytes()); // sigfigs
        h.extend_from_slice(&snaplen.to_ne_bytes());
        h.extend_from_slice(&link_type.code().to_ne_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter {
            out,
            link_type,
            snaplen,
            packets: 0,
        })
    }

    /// Appends one frame. A frame of another link type than the file's is an error (pcap files
    /// have one link type), as is a timestamp before 1970 or after 2106.
    pub fn write(&mut self, p: &RawPacket<'_>) -> std::io::Result<()> {
        if p.link_type != self.link_type {
            return Err(std::io::Error::other(format!(
                "frame of link type {} in a {} capture",
                p.link_type.name(),
                self.link_type.name()
            )));
        }
        let secs = u32::try_from(p.ts.secs())
            .map_err(|_| std::io::Error::other("timestamp outside the pcap range"))?;
        let keep = p.data.len().min(self.snaplen as usize);
        let data = p.data.get(..keep).unwrap_or(p.data);
        let caplen = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let mut h = [0u8; 16];
        h[..4].copy_from_slice(&secs.to_ne_bytes());
        h[4..8].copy_from_slice(&p.ts.subsec_nanos().to_ne_bytes());
        h[8..12].copy_from_slice(&caplen.to_ne_bytes());
        h[12..].copy_from_slice(&p.orig_len.max(caplen).to_ne_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(data)?;
        self.packets += 1;
        Ok(())
    }

    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::file::FileSource;
    use crate::capture::PacketSource;
    use wirelag_dissectors::Timestamp;

    #[test]
    fn written_frames_read_back_identically() {
        let dir = std::env::temp_dir().join(format!("wirelag-writer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.pcap");
        let frames: Vec<(Timestamp, Vec<u8>, u32)> = (0..5u8)
            .map(|i| {
                (
                    Timestamp::from_secs_nanos(1_700_000_000 + i64::from(i), 123_456_789),
                    vec![i; 60 + usize::from(i)],
                    200,
                )
            })
            .collect();
        let mut w = PcapWriter::new(
            std::io::BufWriter::new(std::fs::File::create(&path).unwrap()),
            LinkType::Ethernet,
            64,
        )
        .unwrap();
        for (ts, data, len) in &frames {
            w.write(&RawPacket {
                ts: *ts,
                orig_len: *len,
                link_type: LinkType::Ethernet,
                interface: 0,
                data,
            })
            .unwrap();
        }
        assert!(w
            .write(&RawPacket {
                ts: frames[0].0,
                orig_len: 1,
                link_type: LinkType::Raw,
                interface: 0,
                data: &[0x45],
            })
            .is_err());
        w.finish().unwrap();
        let mut src = FileSource::open(&path).unwrap();
        let mut n = 0;
        while let Some(p) = src.next_packet().unwrap() {
            let (ts, data, len) = &frames[n];
            assert_eq!(p.ts, *ts);
            assert_eq!(p.orig_len, *len);
            assert_eq!(p.data, &data[..data.len().min(64)]);
            n += 1;
        }
        assert_eq!(n, 5);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
