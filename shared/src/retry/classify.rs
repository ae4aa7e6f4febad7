//! Which failures are worth retrying, decided by kind and status, never by message text.

use crate::model::{ErrorCode, Millis, TxError};
use serde::{Deserialize, Serialize};

/// Whether a failed attempt may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Worth another attempt (network errors, timeouts, 5xx, 408, 429).
    Retriable,
    /// Retrying cannot help (4xx other than 401/408/429, a `NonRetriableError`, an unknown
    /// mutation function).
    NonRetriable,
    /// The call needs (fresh) credentials (401): the outbox pauses until they come.
    Unauthorized,
}

/// How one attempt failed, as the mutation function (or the HTTP one) reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptError {
    /// Retry or not.
    pub kind: ErrorKind,
    /// The error to record.
    pub error: TxError,
    /// The server asked to wait at least this long (`Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<Millis>,
}

impl AttemptError {
    /// A retriable failure.
    pub fn retriable(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Retriable,
            error: TxError::new(ErrorCode::Retriable, message),
            retry_after_ms: None,
        }
    }

    /// No answer at all (network down, connection dropped): retried, not counted against the
    /// retry budget.
    pub fn network(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Retriable,
            error: TxError::new(ErrorCode::Network, message),
            retry_after_ms: None,
        }
    }

    /// The server wants (fresh) credentials (401).
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Unauthorized,
            error: TxError::new(ErrorCode::Unauthorized, message),
            retry_after_ms: None,
        }
    }

    /// A failure that must not be retried.
    pub fn non_retriable(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::NonRetriable,
            error: TxError::new(ErrorCode::NonRetriable, message),
            retry_after_ms: None,
        }
    }

    /// No mutation function by that name.
    pub fn unknown_mutation_fn(name: &str) -> Self {
        Self {
            kind: ErrorKind::NonRetriable,
            error: TxError::new(
                ErrorCode::UnknownMutationFn,
                format!("no mutation function is registered as {name:?}"),
            ),
            retry_after_ms: None,
        }
    }

    /// The server refused the call because a newer leader has called it since (the request's
    /// `Outbox-Epoch` is older than one the server has seen): the caller is a deposed leader
    /// and must step down; the transaction is left to the current leader.
    pub fn fenced(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::NonRetriable,
            error: TxError::new(ErrorCode::Fenced, message),
            retry_after_ms: None,
        }
    }

    /// Whether another attempt may help.
    pub fn is_retriable(&self) -> bool {
        self.kind == ErrorKind::Retriable
    }
}

/// Classifies an HTTP answer. `None` for a success (2xx); otherwise the attempt error, with
/// `Retry-After` (already parsed to ms) honoured for retriable statuses.
pub fn classify_http(status: u16, retry_after_ms: Option<Millis>) -> Option<AttemptError> {
    if (200..300).contains(&status) {
        return None;
    }
    let retriable = matches!(status, 408 | 429) || !(200..500).contains(&status);
    let mut err = if status == 401 {
        AttemptError::unauthorized("server answered 401: credentials needed")
    } else if retriable {
        AttemptError::retriable(format!("server answered {status}"))
    } else {
        AttemptError::non_retriable(format!("server answered {status}"))
    };
    err.error.status = Some(status);
    if retriable {
        err.retry_after_ms = retry_after_ms;
    }
    Some(err)
}

/// Parses a `Retry-After` header: delta-seconds, or an HTTP date (RFC 7231 IMF-fixdate) given
/// `now`. Returns the wait in ms, or `None` when unreadable.
pub fn parse_retry_after(value: &str, now: Millis) -> Option<Millis> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(secs.saturating_mul(1000));
    }
    let at = parse_imf_fixdate(v)?;
    Some(at.saturating_sub(now))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` → ms since the Unix epoch.
fn parse_imf_fixdate(s: &str) -> Option<Millis> {
    let rest = s.split_once(", ")?.1;
    let mut parts = rest.split(' ');
    let day: u64 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
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
    // Four digits, as the format has it: no year can overflow the arithmetic below.
    let year: i64 = parts.next().filter(|y| y.len() == 4)?.parse().ok()?;
    let mut hms = parts.next()?.split(':');
    let h: u64 = hms.next()?.parse().ok()?;
    let m: u64 = hms.next()?.parse().ok()?;
    let sec: u64 = hms.next()?.parse().ok()?;
    if parts.next()? != "GMT" || day == 0 || day > 31 || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(year, month, i64::try_from(day).ok()?);
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + m * 60 + sec;
    Some(secs * 1000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_xx_is_final_except_401_408_and_429() {
        assert_eq!(
            classify_http(401, None).map(|e| (e.kind, e.error.code)),
            Some((ErrorKind::Unauthorized, ErrorCode::Unauthorized))
        );
        for s in [400, 403, 404, 409, 410, 413, 422, 451, 499] {
            assert_eq!(
                classify_http(s, None).map(|e| e.kind),
                Some(ErrorKind::NonRetriable),
                "{s}"
            );
        }
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert_eq!(
                classify_http(s, None).map(|e| e.kind),
                Some(ErrorKind::Retriable),
                "{s}"
            );
        }
        for s in [200, 201, 204, 299] {
            assert_eq!(classify_http(s, None), None, "{s}");
        }
    }

    #[test]
    fn status_and_retry_after_are_carried() {
        let e = classify_http(503, Some(2000)).unwrap();
        assert_eq!(e.error.status, Some(503));
        assert_eq!(e.retry_after_ms, Some(2000));
        assert_eq!(classify_http(400, Some(2000)).unwrap().retry_after_ms, None);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("120", 0), Some(120_000));
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        let at = 784_111_777_000;
        assert_eq!(parse_retry_after(date, at - 5000), Some(5000));
        assert_eq!(parse_retry_after(date, at + 5000), Some(0));
        for bad in ["", "soon", "-1", "Sun, 06 Foo 1994 08:49:37 GMT", "1.5"] {
            assert_eq!(parse_retry_after(bad, 0), None, "{bad}");
        }
    }

    #[test]
    fn a_year_of_more_than_four_digits_is_refused_not_overflowed() {
        // Year 9999 is the furthest a date can say; beyond it the days, seconds and
        // milliseconds would overflow.
        let far = parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", 0);
        assert_eq!(far, Some(253_402_300_799_000));
        for bad in [
            "Sun, 06 Nov 9999999999 08:49:37 GMT",
            "Sun, 06 Nov -9223372036854775808 08:49:37 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, 0), None, "{bad}");
        }
    }
}
