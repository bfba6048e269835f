//! A progress bar on stderr for long offline runs: bytes of the capture file read so far, out
//! of its length ([`PacketSource::progress`]).
//!
//! The bar is drawn only when the command line asked for it ([`enable`]: stderr is a terminal,
//! no `--no-progress`, no `WIRELAG_NO_PROGRESS`, and stdout is not a terminal that the command
//! writes to while it reads), only once a read has lasted [`SHOW_AFTER`] (or
//! `WIRELAG_PROGRESS_AFTER_MS`), and it is cleared when
//! the read ends (also on an error), before the command prints its report. [`pipeline::run`]
//! holds the one [`Meter`], so every command that reads a file gets it; the meter looks at the
//! source every [`POLL_EVERY`] packets, so reading pays one decrement and one branch per packet.
//!
//! [`pipeline::run`]: crate::pipeline::run

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::capture::PacketSource;

/// Packets between two looks at the source (and the clock).
pub const POLL_EVERY: u32 = 4096;
/// Reads shorter than this never show a bar.
pub const SHOW_AFTER: Duration = Duration::from_secs(1);
/// Milliseconds to wait before the bar shows, instead of [`SHOW_AFTER`]: lets a test (or a
/// look by eye) see the bar on a small capture.
pub const SHOW_AFTER_ENV: &str = "WIRELAG_PROGRESS_AFTER_MS";
/// Set in the environment (to anything but an empty string or "0"), no bar is drawn.
pub const NO_PROGRESS_ENV: &str = "WIRELAG_NO_PROGRESS";

/// What the bar shows: bytes read of the file's length and the time left.
const TEMPLATE: &str =
    "wirelag: reading {bytes}/{total_bytes} [{bar:30}] {percent:>3}%, {eta} left";

static ENABLED: AtomicBool = AtomicBool::new(false);
static SHOW_AFTER_MS: AtomicU64 = AtomicU64::new(SHOW_AFTER.as_millis() as u64);

/// Allows (or forbids) the bar for the rest of the process. Off unless called: library users
/// and tests never see a bar.
pub fn enable(on: bool) {
    if let Some(ms) = std::env::var(SHOW_AFTER_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        SHOW_AFTER_MS.store(ms, Ordering::Relaxed);
    }
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether the bar may be drawn, given the command line's choice (`--no-progress`), the
/// environment, where stderr and stdout go, and whether the command writes its output to stdout
/// while it reads (a bar on the same terminal would be interleaved with those lines, and the
/// scrolling output shows the progress anyway).
pub fn wanted(no_progress_flag: bool, writes_stdout_while_reading: bool) -> bool {
    use std::io::IsTerminal;
    let env_off = std::env::var_os(NO_PROGRESS_ENV).is_some_and(|v| !v.is_empty() && v != "0");
    decide(
        no_progress_flag || env_off,
        std::io::stderr().is_terminal(),
        std::io::stdout().is_terminal(),
        writes_stdout_while_reading,
    )
}

fn decide(off: bool, stderr_tty: bool, stdout_tty: bool, streams_stdout: bool) -> bool {
    !off && stderr_tty && !(stdout_tty && streams_stdout)
}

/// The progress of one read. Inert (and free) when the bar is not enabled or the source has no
/// known length.
pub struct Meter {
    active: bool,
    countdown: u32,
    started: Instant,
    show_after: Duration,
    bar: Option<ProgressBar>,
}

impl Meter {
    pub fn start(source: &dyn PacketSource) -> Meter {
        Meter {
            active: ENABLED.load(Ordering::Relaxed) && source.progress().is_some(),
            countdown: POLL_EVERY,
            started: Instant::now(),
            show_after: Duration::from_millis(SHOW_AFTER_MS.load(Ordering::Relaxed)),
            bar: None,
        }
    }

    /// Called once per packet.
    #[inline]
    pub fn packet(&mut self, source: &dyn PacketSource) {
        if !self.active {
            return;
        }
        self.countdown -= 1;
        if self.countdown == 0 {
            self.countdown = POLL_EVERY;
            self.poll(source);
        }
    }

    #[cold]
    fn poll(&mut self, source: &dyn PacketSource) {
        let Some(p) = source.progress() else { return };
        match &self.bar {
            Some(bar) => bar.set_position(p.consumed),
            None if self.started.elapsed() >= self.show_after => {
                // Made hidden at the bytes read so far, with the estimate restarted there, so
                // the time left is not computed from a jump of the whole first second's bytes.
                let bar =
                    ProgressBar::with_draw_target(Some(p.total), ProgressDrawTarget::hidden());
                bar.set_style(style());
                bar.set_position(p.consumed);
                bar.reset_eta();
                bar.set_draw_target(ProgressDrawTarget::stderr());
                self.bar = Some(bar);
            }
            None => {}
        }
    }

    /// Whether a bar is on screen (for tests).
    pub fn is_drawing(&self) -> bool {
        self.bar.is_some()
    }

    /// Clears the bar (also done on drop).
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        self.active = false;
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.finish();
    }
}

fn style() -> ProgressStyle {
    // A fixed template: it is checked by the tests, so the fallback never shows in practice.
    ProgressStyle::with_template(TEMPLATE)
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{CaptureError, RawPacket, ReadProgress, SourceSummary};

    struct Sized(u64);
    impl PacketSource for Sized {
        fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError> {
            Ok(None)
        }
        fn summary(&self) -> SourceSummary {
            SourceSummary::default()
        }
        fn progress(&self) -> Option<ReadProgress> {
            Some(ReadProgress {
                consumed: self.0,
                total: 100,
            })
        }
    }

    #[test]
    fn the_style_template_parses() {
        assert!(ProgressStyle::with_template(TEMPLATE).is_ok());
    }

    #[test]
    fn the_bar_is_wanted_only_on_a_terminal_and_not_over_streamed_output() {
        assert!(decide(false, true, false, true));
        assert!(decide(false, true, true, false));
        assert!(!decide(false, true, true, true));
        assert!(!decide(false, false, false, false));
        assert!(!decide(true, true, false, false));
    }

    #[test]
    fn an_inert_meter_never_polls_and_a_short_read_shows_nothing() {
        // Not enabled (the default in tests): inert.
        let source = Sized(10);
        let mut m = Meter::start(&source);
        for _ in 0..3 * POLL_EVERY {
            m.packet(&source);
        }
        assert!(!m.active && !m.is_drawing());

        // Active but under SHOW_AFTER: polls, draws nothing.
        let mut m = Meter {
            active: true,
            countdown: POLL_EVERY,
            started: Instant::now(),
            show_after: SHOW_AFTER,
            bar: None,
        };
        for _ in 0..2 * POLL_EVERY {
            m.packet(&source);
        }
        assert!(!m.is_drawing());
        // Past SHOW_AFTER, the next poll makes the bar (hidden here: stderr is no terminal).
        m.show_after = Duration::ZERO;
        for _ in 0..POLL_EVERY {
            m.packet(&source);
        }
        assert!(m.is_drawing());
        m.finish();
        assert!(!m.is_drawing());
    }
}
