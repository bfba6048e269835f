//! Pure decoding for wirelag: bytes and capture timestamps in, typed results out.
//!
//! This crate is the hard boundary of the project: no libpcap, no threads, no clocks, no
//! printing, no OS. Everything here can be fuzzed and tested anywhere. Every accessor works on
//! checked views (see [`link`], [`ip`], [`tcp`]) so that malformed input becomes an error value,
//! never a panic.
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod ip;
pub mod link;
pub mod mysql;
pub mod packet;
pub mod sql;
pub mod tcp;
#[doc(hidden)]
pub mod testutil;
pub mod time;

pub use packet::{decode_frame, DecodeNote, Decoded};
pub use time::Timestamp;
