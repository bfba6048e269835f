//! The subcommands. Each reads a capture through the shared pipeline and prints through its own
//! printer (text or JSON).

pub mod analyze;
pub mod experiment;
pub mod follow;
pub mod frames;
pub mod generated;
pub mod interfaces;
pub mod live;
pub mod streams;

use std::path::Path;

use anyhow::Context;

use wirelag_dissectors::tcp::stream::TrackerConfig;

use crate::analysis::{Analyzer, MysqlFrameIndex};
use crate::capture::file::FileSource;
use crate::capture::SourceSummary;
use crate::fields::FrameFields;
use crate::filter::DisplayFilter;
use crate::pipeline::{self, FrameRecord, Pipeline};

/// Opens a capture file (pcap or pcapng).
pub fn open_capture(path: &Path) -> anyhow::Result<FileSource> {
    FileSource::open(path).map_err(anyhow::Error::new)
}

pub fn parse_filter(text: Option<&str>) -> anyhow::Result<Option<DisplayFilter>> {
    text.map(|t| DisplayFilter::parse(t).map_err(anyhow::Error::new))
        .transpose()
}

/// Does the frame pass the display filter (no filter: every frame)?
pub fn frame_matches(filter: Option<&DisplayFilter>, rec: &FrameRecord<'_>) -> bool {
    filter.is_none_or(|f| f.matches(&FrameFields::new(rec)))
}

/// Like [`frame_matches`], with the MySQL facts of a first pass for `mysql.*` fields.
pub fn frame_matches_with(
    filter: Option<&DisplayFilter>,
    rec: &FrameRecord<'_>,
    mysql: Option<&MysqlFrameIndex>,
) -> bool {
    filter.is_none_or(|f| f.matches(&FrameFields::with_mysql(rec, mysql)))
}

/// A filter that mentions `mysql.*` fields needs the dissector's per-frame facts: a first pass
/// over the capture collects them (`decode_as`: extra MySQL ports).
pub fn mysql_index_for(
    filter: Option<&DisplayFilter>,
    path: &Path,
    decode_as: &[u16],
) -> anyhow::Result<Option<MysqlFrameIndex>> {
    let Some(f) = filter else { return Ok(None) };
    if !f
        .fields()
        .iter()
        .any(|field| field.name() == "mysql" || field.name().starts_with("mysql."))
    {
        return Ok(None);
    }
    let mut analyzer =
        Analyzer::new(decode_as.to_vec()).context("cannot create temporary files")?;
    analyzer.index_frames();
    let mut source = open_capture(path)?;
    let mut pipeline = Pipeline::new(TrackerConfig {
        reassemble: true,
        ..TrackerConfig::default()
    });
    pipeline::run(&mut source, &mut pipeline, &mut analyzer, &mut |_| Ok(true))?;
    analyzer
        .finish(pipeline.table())
        .context("temporary files")?;
    Ok(Some(analyzer.take_frame_index()))
}

/// Outcome of a command whose output was produced: a truncated capture still fails the process
/// (exit 2) after printing what was read, with a one-line error naming the byte offset.
pub fn truncation_error(path: &Path, summary: &SourceSummary, packets: u64) -> anyhow::Result<()> {
    if let Some(t) = &summary.truncated {
        return Err(crate::capture::CaptureError::Corrupt {
            path: path.to_path_buf(),
            offset: t.offset,
            detail: format!(
                "capture truncated ({}); the {packets} packets before the cut were analysed",
                t.detail
            ),
        })
        .context("incomplete capture");
    }
    Ok(())
}
