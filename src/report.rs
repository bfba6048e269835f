//! Pieces of JSON shared by every report: the capture summary and endpoint objects.

use std::io::Write;
use std::path::Path;

use serde::Serialize;
use wirelag_dissectors::tcp::stream::Endpoint;

use crate::capture::SourceSummary;
use crate::pipeline::{DecodeCounters, Pipeline};
use crate::timefmt::rfc3339_us;

#[derive(Serialize)]
pub struct EndpointJson {
    pub ip: String,
    pub port: u16,
}

impl From<Endpoint> for EndpointJson {
    fn from(e: Endpoint) -> Self {
        EndpointJson {
            ip: e.ip.to_string(),
            port: e.port,
        }
    }
}

#[derive(Serialize)]
pub struct TruncationJson {
    pub offset: u64,
    pub detail: String,
}

#[derive(Serialize)]
pub struct DecodeJson {
    pub tcp_frames: u64,
    pub not_ip: u64,
    pub not_tcp: u64,
    pub ip_fragments: u64,
    pub malformed: u64,
    pub snaplen_cut: u64,
    pub time_went_back: u64,
}

impl From<DecodeCounters> for DecodeJson {
    fn from(c: DecodeCounters) -> Self {
        DecodeJson {
            tcp_frames: c.tcp_frames,
            not_ip: c.not_ip,
            not_tcp: c.not_tcp,
            ip_fragments: c.ip_fragments,
            malformed: c.malformed(),
            snaplen_cut: c.snaplen_cut,
            time_went_back: c.time_went_back,
        }
    }
}

/// The `capture` object of every report.
#[derive(Serialize)]
pub struct CaptureJson {
    pub file: String,
    pub format: &'static str,
    pub link_types: Vec<&'static str>,
    pub packets: u64,
    pub first: Option<String>,
    pub first_epoch_us: Option<i64>,
    pub last: Option<String>,
    pub last_epoch_us: Option<i64>,
    pub duration_us: i64,
    pub snaplen: Option<u32>,
    pub streams: usize,
    pub truncated: Option<TruncationJson>,
    pub dropped: Option<u64>,
    pub decode: DecodeJson,
}

impl CaptureJson {
    pub fn new(file: &Path, summary: &SourceSummary, pipeline: &Pipeline) -> Self {
        let first = pipeline.first_ts();
        let last = pipeline.last_ts();
        CaptureJson {
            file: file.display().to_string(),
            format: summary.format,
            link_types: summary.link_types.iter().map(|l| l.name()).collect(),
            packets: pipeline.frames(),
            first: first.map(rfc3339_us),
            first_epoch_us: first.map(|t| t.epoch_us()),
            last: last.map(rfc3339_us),
            last_epoch_us: last.map(|t| t.epoch_us()),
            duration_us: match (first, last) {
                (Some(a), Some(b)) => b.since(a).as_micros(),
                _ => 0,
            },
            snaplen: summary.snaplen,
            streams: pipeline.table().streams().len(),
            truncated: summary.truncated.as_ref().map(|t| TruncationJson {
                offset: t.offset,
                detail: t.detail.clone(),
            }),
            dropped: summary.dropped,
            decode: pipeline.counters().into(),
        }
    }
}

/// Where a report goes. Besides writing, it can take a whole spilled section straight from its
/// file: for a file, a pipe or /dev/null behind it, std's `io::copy` then moves the bytes in the
/// kernel (copy_file_range, sendfile, splice) instead of through a user-space buffer, which was
/// most of the time `analyze` spends after the analysis on a large capture.
pub trait ReportOut: Write {
    /// Appends the rest of `file` (from its current offset to its end). The default body is
    /// compiled for each implementing type, so for `BufWriter<File>` std's kernel-copy
    /// specialisation applies (it flushes the buffer first).
    fn append_file(&mut self, file: &mut std::fs::File) -> std::io::Result<u64> {
        std::io::copy(file, self)
    }

    /// A descriptor that appends where this output stands (its buffer flushed first), for a
    /// section written as it is produced from another thread; None when the output has none.
    /// Until that section ends nothing else may be written here.
    fn stream_handle(&mut self) -> std::io::Result<Option<std::fs::File>> {
        Ok(None)
    }
}

impl ReportOut for Vec<u8> {}

impl ReportOut for std::io::BufWriter<std::fs::File> {
    fn stream_handle(&mut self) -> std::io::Result<Option<std::fs::File>> {
        self.flush()?;
        // A duplicate shares the file offset: its writes land where this buffer's next ones
        // would have, and this buffer's later writes follow them.
        self.get_ref().try_clone().map(Some)
    }
}

/// Standard output, behind a buffer of our own; a descriptor when one could be duplicated
/// (std's stdout is line-buffered: each write is scanned for its last newline, which showed in
/// profiles of reports of hundreds of MB).
pub enum Stdout {
    Fd(std::io::BufWriter<std::fs::File>),
    Locked(std::io::BufWriter<std::io::StdoutLock<'static>>),
}

impl Stdout {
    pub fn new() -> Stdout {
        use std::os::fd::AsFd;
        let stdout = std::io::stdout();
        match stdout.as_fd().try_clone_to_owned() {
            Ok(fd) => Stdout::Fd(std::io::BufWriter::with_capacity(
                1 << 16,
                std::fs::File::from(fd),
            )),
            Err(_) => Stdout::Locked(std::io::BufWriter::with_capacity(1 << 16, stdout.lock())),
        }
    }
}

impl Default for Stdout {
    fn default() -> Self {
        Stdout::new()
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stdout::Fd(w) => w.write(buf),
            Stdout::Locked(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Stdout::Fd(w) => w.write_all(buf),
            Stdout::Locked(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stdout::Fd(w) => w.flush(),
            Stdout::Locked(w) => w.flush(),
        }
    }
}

impl ReportOut for Stdout {
    fn append_file(&mut self, file: &mut std::fs::File) -> std::io::Result<u64> {
        match self {
            Stdout::Fd(w) => w.append_file(file),
            Stdout::Locked(w) => std::io::copy(file, w),
        }
    }

    fn stream_handle(&mut self) -> std::io::Result<Option<std::fs::File>> {
        match self {
            Stdout::Fd(w) => w.stream_handle(),
            Stdout::Locked(_) => Ok(None),
        }
    }
}

/// A file written atomically: the bytes go to a temporary file in the same directory, which
/// [`AtomicFile::commit`] syncs and renames over `path`, so a crash (or an error before the
/// commit, which removes the temporary file) never leaves half a report. Streams: a report of any
/// size is written without holding it in memory.
pub struct AtomicFile {
    tmp: std::path::PathBuf,
    path: std::path::PathBuf,
    file: Option<std::io::BufWriter<std::fs::File>>,
}

impl AtomicFile {
    pub fn create(path: &Path) -> anyhow::Result<AtomicFile> {
        use anyhow::Context;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "report".into());
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let f = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        Ok(AtomicFile {
            tmp,
            path: path.to_path_buf(),
            file: Some(std::io::BufWriter::with_capacity(1 << 16, f)),
        })
    }

    pub fn commit(mut self) -> anyhow::Result<()> {
        use anyhow::Context;
        let Some(w) = self.file.take() else {
            anyhow::bail!("{} was already committed", self.path.display());
        };
        let f = w
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("cannot write {}", self.tmp.display()))?;
        f.sync_all()
            .with_context(|| format!("cannot sync {}", self.tmp.display()))?;
        drop(f);
        std::fs::rename(&self.tmp, &self.path).with_context(|| {
            format!(
                "cannot rename {} to {}",
                self.tmp.display(),
                self.path.display()
            )
        })
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.file.as_mut() {
            Some(f) => f.write(buf),
            None => Err(std::io::Error::other("report already committed")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl ReportOut for AtomicFile {
    fn append_file(&mut self, file: &mut std::fs::File) -> std::io::Result<u64> {
        match self.file.as_mut() {
            Some(f) => f.append_file(file),
            None => Err(std::io::Error::other("report already committed")),
        }
    }

    fn stream_handle(&mut self) -> std::io::Result<Option<std::fs::File>> {
        match self.file.as_mut() {
            Some(f) => f.stream_handle(),
            None => Err(std::io::Error::other("report already committed")),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            // Not committed: the half-written temporary file goes.
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `bytes` to `path` atomically (see [`AtomicFile`]).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_file_appears_only_on_commit() {
        let dir = std::env::temp_dir().join(format!("wirelag-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.json");
        let mut f = AtomicFile::create(&path).unwrap();
        f.write_all(b"{\"half\":").unwrap();
        drop(f);
        assert!(!path.exists());
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "temp file left"
        );
        let mut f = AtomicFile::create(&path).unwrap();
        f.write_all(b"{}").unwrap();
        assert!(!path.exists());
        f.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
        write_atomically(&path, b"[]").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"[]");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
