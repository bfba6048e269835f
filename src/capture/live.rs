// PLACEHOLDER until the real live source lands.
use super::*;
#[derive(Default)]
pub struct LiveOptions {
    pub interface: String,
    pub bpf: Option<String>,
    pub snaplen: i32,
    pub max_packets: Option<u64>,
    pub duration: Option<std::time::Duration>,
}
pub struct LiveSource;
impl LiveSource {
    pub fn open(o: &LiveOptions) -> Result<LiveSource, CaptureError> {
        Err(CaptureError::Live {
            iface: o.interface.clone(),
            detail: "placeholder".into(),
        })
    }
}
impl PacketSource for LiveSource {
    fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError> {
        Ok(None)
    }
    fn summary(&self) -> SourceSummary {
        SourceSummary::default()
    }
}
