//! What the bridges report while they run, and the backoff they retry with.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alluvium::{Db, Start};

use crate::error::Result;

/// A progress report, printed about once a second by the `alluvium` tool.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// "published" or "ingested".
    pub verb: &'static str,
    /// Messages the broker acknowledged (publish) or changes written (ingest) by this process.
    pub count: u64,
    /// Of `count`, messages the broker reported as duplicates (publish).
    pub duplicates: u64,
    /// Changes per second since the previous report.
    pub rate_per_s: f64,
    /// The position: the subscription's (publish) or the stream sequence stored (ingest).
    pub position: u64,
    /// Records not yet done: database changes after the position (publish), or stream messages
    /// after the stored stream sequence (ingest).
    pub lag_records: u64,
    /// How old the newest change done is, when records lag behind: the view is that many
    /// seconds behind its source. `None` before the first change is done.
    pub lag_s: Option<f64>,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} (", self.verb, self.count)?;
        if self.verb == "published" {
            write!(f, "{} duplicates, ", self.duplicates)?;
        }
        write!(
            f,
            "{:.0}/s)  position {}  lag {} records",
            self.rate_per_s, self.position, self.lag_records
        )?;
        match self.lag_s {
            Some(s) => write!(f, ", {s:.1} s"),
            None => Ok(()),
        }
    }
}

impl Progress {
    /// Where a publisher starts: its durable subscription `name` (created at the oldest
    /// retained change if missing) and that subscription's position.
    pub fn of_publisher(db: &Db, name: &str) -> Result<Progress> {
        if !db.subscriptions().iter().any(|s| s.name == name) {
            db.create_subscription(name, Start::Beginning)?;
        }
        Ok(Progress {
            verb: "published",
            position: db.open_subscription(name)?.position()?,
            ..Progress::default()
        })
    }
}

/// Seconds from `commit_time_us` to now (0 if the clock went back).
pub fn age_s(commit_time_us: u64) -> f64 {
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    now_us.saturating_sub(commit_time_us) as f64 / 1e6
}

/// Exponential backoff: 100 ms, doubling, at most 5 s; reset after progress.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: Backoff::FIRST,
        }
    }
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    /// The delay before the next try; the one after doubles.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(Backoff::MAX);
        delay
    }

    /// Back to the first delay.
    pub fn reset(&mut self) {
        self.next = Backoff::FIRST;
    }

    /// What a bridge does after a run failed with `e`: a transient failure gives the delay
    /// before the next run (the first delay again when the run made `progressed`), reported
    /// as a note; any other failure is handed back.
    pub fn after_failure(
        &mut self,
        e: crate::error::BridgeError,
        progressed: bool,
        report: &mut dyn FnMut(Report<'_>),
    ) -> crate::error::Result<Duration> {
        if !e.is_transient() {
            return Err(e);
        }
        if progressed {
            self.reset();
        }
        let delay = self.next_delay();
        report(Report::Note(format!("{e}; retrying in {delay:?}")));
        Ok(delay)
    }
}

/// What a running bridge tells its caller.
#[derive(Debug)]
pub enum Report<'a> {
    /// About once a second, and once at the end.
    Progress(&'a Progress),
    /// A one-off event: where a run resumed, a retry after a broker error.
    Note(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::BridgeError;

    #[test]
    fn transient_failures_back_off_and_progress_resets_the_delay() {
        let mut backoff = Backoff::default();
        let mut notes = Vec::new();
        let mut report = |r: Report<'_>| {
            if let Report::Note(n) = r {
                notes.push(n);
            }
        };
        let down = || BridgeError::Broker("connection refused".into());
        let delays: Vec<_> = [false, false, true, false]
            .into_iter()
            .map(|progressed| backoff.after_failure(down(), progressed, &mut report).ok())
            .collect();
        let ms = |n| Some(Duration::from_millis(n));
        assert_eq!(delays, [ms(100), ms(200), ms(100), ms(200)]);
        let fatal = backoff.after_failure(BridgeError::Message("bad".into()), true, &mut report);
        assert!(matches!(fatal, Err(BridgeError::Message(_))));
        assert_eq!(notes.len(), 4);
        assert!(
            notes[0].contains("connection refused; retrying in 100ms"),
            "{notes:?}"
        );
    }
}
