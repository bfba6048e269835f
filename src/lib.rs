//! wirelag: packet-capture and protocol-timing analyzer.
//!
//! The binary is a thin shell over this library: capture sources ([`capture`]) feed the
//! [`pipeline`], which decodes frames with the pure `wirelag-dissectors` crate, tracks TCP
//! streams with Wireshark's numbering and hands frames and reassembled payload to the
//! [`commands`]' printers. See ARCHITECTURE.md.

pub mod amplify;
pub mod analysis;
pub mod capture;
pub mod cli;
pub mod commands;
pub mod fields;
pub mod filter;
pub mod frame_info;
pub mod handoff;
pub mod inject;
pub mod interfaces;
pub mod json_writer;
pub mod pipeline;
pub mod progress;
pub mod report;
pub mod signals;
pub mod timefmt;

/// A mistake in how wirelag was called (exit code 2), as opposed to a failure of the system.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Exit code for an error: 2 for bad input or usage (unreadable capture, bad filter, no such
/// stream), 1 for anything else.
pub fn exit_code_for(e: &anyhow::Error) -> u8 {
    let input = e.chain().any(|c| {
        c.downcast_ref::<capture::CaptureError>().is_some()
            || c.downcast_ref::<filter::FilterError>().is_some()
            || c.downcast_ref::<UsageError>().is_some()
    });
    if input {
        2
    } else {
        1
    }
}
