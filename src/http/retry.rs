//! The retry policy: which answers are retried, how long to wait before each attempt, and how
//! `Retry-After` (seconds or an HTTP date) bends the wait. Pure functions of the attempt
//! number, the header and a random number, so the numbers are testable without a clock.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

/// When and how long to retry.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so `max_retries + 1` attempts in all).
    pub max_retries: u32,
    /// The wait before the first retry, before jitter.
    pub base_delay: Duration,
    /// The wait never exceeds this, before jitter (and `Retry-After` is capped by
    /// `max_retry_after`, not by this).
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is not waited for: the call fails at once, with the
    /// server's number in the message (a scheduler retries the whole run later).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// 5 retries, 1 s doubling to at most 30 s, jittered; `Retry-After` honoured up to 5 min.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

/// Whether an HTTP status is worth another attempt.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0-based), with `jitter01` in [0, 1):
    /// "equal jitter", half the exponential step fixed and half random, so concurrent
    /// clients spread out but none retries immediately.
    pub fn backoff(&self, retry: u32, jitter01: f64) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry.min(16)))
            .min(self.max_delay);
        let half = exp / 2;
        half + half.mul_f64(jitter01.clamp(0.0, 1.0))
    }

    /// The wait before retry number `retry`, given the server's `Retry-After` (already parsed).
    /// The server's number wins when present (a server that says "in 10 s" means it); `None`
    /// when it asks for longer than `max_retry_after`.
    pub fn delay(
        &self,
        retry: u32,
        retry_after: Option<Duration>,
        jitter01: f64,
    ) -> Option<Duration> {
        match retry_after {
            Some(d) if d > self.max_retry_after => None,
            Some(d) => Some(d),
            None => Some(self.backoff(retry, jitter01)),
        }
    }
}

/// Parses a `Retry-After` value: delta-seconds (`"120"`) or an HTTP date
/// (`"Mon, 23 Nov 2026 12:00:00 GMT"`, relative to `now`; a past date means no wait).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = parse_http_date(v)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses an RFC 1123 date (`Sun, 06 Nov 1994 08:49:37 GMT`), the form HTTP servers send.
pub fn parse_http_date(v: &str) -> Option<SystemTime> {
    let mut it = v.split_whitespace();
    let _weekday = it.next()?;
    let day: i64 = it.next()?.parse().ok()?;
    let month = match it.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if it.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = crate::util::calendar::days_from_civil(year, month, day);
    let secs = days * 86_400 + h * 3600 + m * 60 + s;
    let secs = u64::try_from(secs).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Waits between attempts. Production sleeps on tokio's timer; tests record the delays.
pub trait Sleeper: Send + Sync {
    /// Waits for `d`.
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// Sleeps on tokio's timer.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_equal_jitter() {
        let p = RetryPolicy::default();
        let s = |r, j| p.backoff(r, j).as_millis();
        assert_eq!(s(0, 0.0), 500);
        assert_eq!(s(0, 0.999_999), 999);
        assert_eq!(s(1, 0.0), 1000);
        assert_eq!(s(2, 0.5), 3000);
        assert_eq!(s(4, 0.0), 8000);
        // 2^5 s = 32 s is over the 30 s cap.
        assert_eq!(s(5, 0.0), 15_000);
        assert_eq!(s(5, 1.0), 30_000);
        assert_eq!(s(40, 1.0), 30_000);
    }

    #[test]
    fn retry_after_wins_and_too_long_gives_up() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(7)), 0.3),
            Some(Duration::from_secs(7))
        );
        assert_eq!(p.delay(0, Some(Duration::from_secs(301)), 0.3), None);
        assert_eq!(p.delay(1, None, 0.0), Some(Duration::from_secs(1)));
    }

    #[test]
    fn retry_after_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_435_200); // Mon, 23 Nov 2026 12:00:00 GMT
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Mon, 23 Nov 2026 12:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Mon, 23 Nov 2026 11:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(
            parse_retry_after("Mon, 32 Nov 2026 12:00:00 GMT", now),
            None
        );
    }

    #[test]
    fn retryable_statuses_are_exactly_the_transient_ones() {
        let retried: Vec<u16> = (100..600).filter(|s| retryable_status(*s)).collect();
        assert_eq!(retried, vec![429, 500, 502, 503, 504]);
    }
}
