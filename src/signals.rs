//! Ctrl-C, SIGTERM and SIGHUP as a flag that long-running commands poll.
//!
//! `inject delay`, the proxy and `experiment` must revert what they changed when asked to stop;
//! a flag they check between steps keeps that logic in ordinary code instead of in a handler.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Set once SIGINT, SIGTERM or SIGHUP arrives (or when [`StopFlag::request`] is called).
#[derive(Clone, Debug, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// A flag no signal sets: for tests and for callers that stop on their own.
    pub fn new() -> Self {
        Self::default()
    }

    /// A flag set by SIGINT, SIGTERM and SIGHUP. A second Ctrl-C while the flag is already set
    /// still only sets the flag: cleanup is never cut short by an impatient key press.
    pub fn from_signals() -> std::io::Result<Self> {
        let flag = Self::new();
        for sig in [
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ] {
            signal_hook::flag::register(sig, Arc::clone(&flag.0))?;
        }
        Ok(flag)
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Sleeps until `deadline` (None: forever) or until the flag is set, polling every 50 ms.
    /// Returns true when it was woken by the flag.
    pub fn wait_until(&self, deadline: Option<Instant>) -> bool {
        loop {
            if self.is_set() {
                return true;
            }
            let step = Duration::from_millis(50);
            match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    std::thread::sleep(step.min(d - now));
                }
                None => std::thread::sleep(step),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_returns_at_deadline_or_on_request() {
        let f = StopFlag::new();
        assert!(!f.wait_until(Some(Instant::now() + Duration::from_millis(10))));
        let g = f.clone();
        let t = std::thread::spawn(move || g.wait_until(None));
        f.request();
        assert!(t.join().unwrap());
    }
}
