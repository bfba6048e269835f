// PLACEHOLDER until the real reader lands (pcap only, µs, little-endian).
use super::*;
use std::io::Read;
use std::path::{Path, PathBuf};
use wirelag_dissectors::link::LinkType;
use wirelag_dissectors::Timestamp;
pub struct FileSource {
    data: Vec<u8>,
    pos: usize,
    link: LinkType,
    n: u64,
    path: PathBuf,
    nano: bool,
}
impl FileSource {
    pub fn open(path: &Path) -> Result<FileSource, CaptureError> {
        let mut data = Vec::new();
        std::fs::File::open(path)
            .map_err(|e| CaptureError::Open {
                path: path.into(),
                source: e,
            })?
            .read_to_end(&mut data)
            .map_err(|e| CaptureError::Open {
                path: path.into(),
                source: e,
            })?;
        let magic = u32::from_le_bytes(data[0..4].try_into().unwrap());
        let nano = magic == 0xa1b23c4d;
        if magic != 0xa1b2c3d4 && !nano {
            return Err(CaptureError::NotACapture {
                path: path.into(),
                magic: format!("{magic:#x}"),
            });
        }
        let lt = u32::from_le_bytes(data[20..24].try_into().unwrap());
        let link = LinkType::from_linktype(lt).ok_or(CaptureError::UnsupportedLinkType {
            path: path.into(),
            linktype: lt,
            name: String::new(),
            offset: 20,
        })?;
        Ok(FileSource {
            data,
            pos: 24,
            link,
            n: 0,
            path: path.into(),
            nano,
        })
    }
}
impl PacketSource for FileSource {
    fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError> {
        let _ = &self.path;
        if self.pos + 16 > self.data.len() {
            return Ok(None);
        }
        let h = &self.data[self.pos..self.pos + 16];
        let s = u32::from_le_bytes(h[0..4].try_into().unwrap()) as i64;
        let f = u32::from_le_bytes(h[4..8].try_into().unwrap());
        let incl = u32::from_le_bytes(h[8..12].try_into().unwrap()) as usize;
        let orig = u32::from_le_bytes(h[12..16].try_into().unwrap());
        let start = self.pos + 16;
        if start + incl > self.data.len() {
            return Ok(None);
        }
        self.pos = start + incl;
        self.n += 1;
        Ok(Some(RawPacket {
            ts: Timestamp::from_secs_nanos(s, if self.nano { f } else { f * 1000 }),
            orig_len: orig,
            link_type: self.link,
            interface: 0,
            data: &self.data[start..start + incl],
        }))
    }
    fn summary(&self) -> SourceSummary {
        SourceSummary {
            format: "pcap",
            link_types: vec![self.link],
            packets: self.n,
            ..Default::default()
        }
    }
}
