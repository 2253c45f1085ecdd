//! Rate-limited log lines for what strangers can cause at will (too many connections,
//! unsigned NOTIFY, refused transfers, dropped queries): at most one line per
//! [`INTERVAL`] for each kind, carrying how many were left out, so a flood cannot fill
//! the disk.
//!
//! Owns only the counting; callers decide the level and the words.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

/// At most one line per kind this often.
pub(crate) const INTERVAL: Duration = Duration::from_secs(10);

/// One kind of repeated line.
pub(crate) struct RateLog {
    state: Mutex<State>,
}

struct State {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLog {
    pub(crate) const fn new() -> Self {
        Self {
            state: Mutex::new(State {
                last: None,
                suppressed: 0,
            }),
        }
    }

    /// `Some(left out since the last line)` when a line may be written now; `None` counts
    /// this one as left out.
    pub(crate) fn allow(&self) -> Option<u64> {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match state.last {
            Some(last) if now.saturating_duration_since(last) < INTERVAL => {
                state.suppressed += 1;
                None
            }
            _ => {
                state.last = Some(now);
                Some(std::mem::take(&mut state.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count_left_out() {
        let log = RateLog::new();
        let start = Instant::now();
        assert_eq!(log.allow_at(start), Some(0));
        for i in 1..=5 {
            assert_eq!(log.allow_at(start + Duration::from_millis(i)), None);
        }
        assert_eq!(log.allow_at(start + INTERVAL), Some(5));
        assert_eq!(log.allow_at(start + INTERVAL), None);
    }
}
