//! `wirelag live`: capture on an interface and print frames as they arrive (text lines or JSON
//! Lines), then the conversation table. The interactive TUI builds on the same pipeline later.

use std::io::Write;
use std::time::Duration as StdDuration;

use wirelag_dissectors::tcp::stream::{NoPayload, TrackerConfig};

use crate::capture::live::{LiveOptions, LiveSource};
use crate::commands::frames::{frame_json_line, frame_line};
use crate::commands::streams;
use crate::commands::{frame_matches, parse_filter};
use crate::pipeline::{self, Pipeline};

pub struct LiveArgs {
    pub interface: String,
    pub bpf: Option<String>,
    pub display_filter: Option<String>,
    pub json_lines: bool,
    pub count: Option<u64>,
    pub duration: Option<f64>,
    pub snaplen: i32,
}

pub fn run(args: &LiveArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let filter = parse_filter(args.display_filter.as_deref())?;
    if let Some(f) = &filter {
        if f.fields()
            .iter()
            .any(|x| x.name() == "mysql" || x.name().starts_with("mysql."))
        {
            anyhow::bail!(crate::UsageError(
                "live: mysql.* display-filter fields need a capture file (a request's fields are known only when its response arrives); capture with tcpdump -w and use wirelag frames/analyze".into()
            ));
        }
    }
    let opts = LiveOptions {
        interface: args.interface.clone(),
        bpf: args.bpf.clone(),
        snaplen: args.snaplen,
        max_packets: args.count,
        duration: args.duration.map(StdDuration::from_secs_f64),
        ..LiveOptions::default()
    };
    let mut source = LiveSource::open(&opts)?;
    // On stderr so that JSON Lines on stdout stay clean; scripts wait for this line.
    eprintln!(
        "wirelag: capturing on {}{}",
        args.interface,
        args.bpf
            .as_deref()
            .map_or(String::new(), |b| format!(" (BPF: {b})"))
    );
    let mut pipeline = Pipeline::new(TrackerConfig::default());
    let summary = pipeline::run(&mut source, &mut pipeline, &mut NoPayload, &mut |rec| {
        if frame_matches(filter.as_ref(), rec) {
            if args.json_lines {
                writeln!(out, "{}", frame_json_line(rec)?)?;
            } else {
                writeln!(out, "{}", frame_line(rec))?;
            }
            out.flush()?;
        }
        Ok(true)
    })?;
    if !args.json_lines {
        writeln!(out)?;
        let selected = vec![true; pipeline.table().streams().len()];
        streams::print_text(
            pipeline.table(),
            &selected,
            pipeline.first_ts().unwrap_or_default(),
            out,
        )?;
        writeln!(
            out,
            "{} packets captured; dropped by kernel: {}; dropped by interface: {}",
            pipeline.frames(),
            summary.dropped.map_or("unknown".into(), |d| d.to_string()),
            summary
                .interface_dropped
                .map_or("unknown".into(), |d| d.to_string())
        )?;
    }
    out.flush()?;
    Ok(())
}
