//! Leader-epoch fencing. Outbox's leader sends each mutation request with its leadership epoch
//! (`Outbox-Epoch`, which only grows when leadership moves) and the lineage that epoch counts
//! in (`Outbox-Scope`: an id made with the outbox's database, so another browser's outbox,
//! counting its own epochs from 1, is another lineage). The server keeps the highest epoch it
//! has accepted per user and scope (the user is the request's authenticated one, `""` when
//! anonymous) and refuses a lower one, so a deposed leader's late request cannot apply after a
//! newer leader's. Each user's outbox has its own leaders: alice's epochs never fence bob's,
//! whatever scope either sends.
//!
//! The writer thread checks and records epochs, one job at a time, inside the SQLite
//! transaction that applies the job's transactions: the check and the apply cannot be
//! interleaved with another request's, and a job that is rolled back leaves no epoch behind.

use crate::error::ApiError;
use axum::http::HeaderMap;
use rusqlite::{Connection, OptionalExtension};

/// The request header carrying the sender's leadership epoch (a `u64`).
pub const EPOCH_HEADER: &str = "outbox-epoch";
/// The request header carrying the sender's user scope; absent means `""`.
pub const SCOPE_HEADER: &str = "outbox-scope";
/// The answer header (`true`) on a `409 STALE_EPOCH`.
pub const FENCED_HEADER: &str = "outbox-fenced";

/// A request's claim of leadership: its user, scope and epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fence {
    /// The authenticated user (`""` when anonymous).
    pub user: String,
    /// The user scope (`""` when the header is absent).
    pub scope: String,
    /// The leadership epoch.
    pub epoch: u64,
}

impl Fence {
    /// Reads the fencing headers of a request by `user`. No `Outbox-Epoch` means no fencing
    /// (`None`); one that is not a `u64`, a scope that is not UTF-8, or either header given
    /// twice is a `400 BAD_REQUEST`.
    pub(crate) fn from_headers(headers: &HeaderMap, user: &str) -> Result<Option<Self>, ApiError> {
        let Some(epoch) = single(headers, EPOCH_HEADER)? else {
            return Ok(None);
        };
        let epoch = epoch.trim().parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "the Outbox-Epoch header must be an unsigned 64-bit integer, not {epoch:?}"
            ))
        })?;
        let scope = single(headers, SCOPE_HEADER)?.unwrap_or_default();
        Ok(Some(Self {
            user: user.to_owned(),
            scope,
            epoch,
        }))
    }

    /// `Ok` when this epoch is at least the highest recorded for the user's scope; otherwise
    /// `409 STALE_EPOCH`.
    pub(crate) fn check(&self, conn: &Connection) -> Result<(), ApiError> {
        match highest_epoch(conn, &self.user, &self.scope)? {
            Some(highest) if self.epoch < highest => Err(ApiError::stale_epoch(
                &self.user,
                &self.scope,
                self.epoch,
                highest,
            )),
            _ => Ok(()),
        }
    }

    /// Records this epoch as the user's scope's highest, unless a higher one is recorded
    /// already.
    pub(crate) fn record(&self, conn: &Connection) -> Result<(), ApiError> {
        if highest_epoch(conn, &self.user, &self.scope)?.is_some_and(|h| h >= self.epoch) {
            return Ok(());
        }
        conn.prepare_cached(
            "INSERT INTO leader_epochs (user, scope, epoch) VALUES (?1, ?2, ?3)
             ON CONFLICT (user, scope) DO UPDATE SET epoch = excluded.epoch",
        )?
        .execute((&self.user, &self.scope, self.epoch.to_string()))?;
        Ok(())
    }
}

/// The highest epoch recorded for `user`'s `scope`, if any. Epochs are stored as decimal
/// text: SQLite integers are signed, and an epoch may use all 64 bits.
pub(crate) fn highest_epoch(
    conn: &Connection,
    user: &str,
    scope: &str,
) -> Result<Option<u64>, ApiError> {
    let text: Option<String> = conn
        .prepare_cached("SELECT epoch FROM leader_epochs WHERE user = ?1 AND scope = ?2")?
        .query_row([user, scope], |r| r.get(0))
        .optional()?;
    text.map(|t| {
        t.parse::<u64>()
            .map_err(|_| ApiError::internal(format!("stored epoch {t:?} is not a u64")))
    })
    .transpose()
}

/// The one value of header `name`, as text; `None` when absent.
fn single(headers: &HeaderMap, name: &str) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::bad_request(format!(
            "the {name} header is given more than once"
        )));
    }
    std::str::from_utf8(value.as_bytes())
        .map(|s| Some(s.to_owned()))
        .map_err(|_| ApiError::bad_request(format!("the {name} header is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_bytes(value).unwrap());
        }
        h
    }

    #[test]
    fn headers_are_read_and_checked() {
        assert_eq!(Fence::from_headers(&headers(&[]), ""), Ok(None));
        assert_eq!(
            Fence::from_headers(&headers(&[(SCOPE_HEADER, b"u1")]), ""),
            Ok(None),
            "a scope without an epoch fences nothing"
        );
        assert_eq!(
            Fence::from_headers(&headers(&[(EPOCH_HEADER, b"18446744073709551615")]), ""),
            Ok(Some(Fence {
                user: String::new(),
                scope: String::new(),
                epoch: u64::MAX
            }))
        );
        assert_eq!(
            Fence::from_headers(
                &headers(&[(EPOCH_HEADER, b"7"), (SCOPE_HEADER, b"u1")]),
                "bob"
            ),
            Ok(Some(Fence {
                user: "bob".into(),
                scope: "u1".into(),
                epoch: 7
            }))
        );
        let bad: [&[(&'static str, &[u8])]; 7] = [
            &[(EPOCH_HEADER, b"")],
            &[(EPOCH_HEADER, b"x")],
            &[(EPOCH_HEADER, b"-1")],
            &[(EPOCH_HEADER, b"1.0")],
            &[(EPOCH_HEADER, b"18446744073709551616")],
            &[(EPOCH_HEADER, b"1"), (EPOCH_HEADER, b"2")],
            &[(EPOCH_HEADER, b"1"), (SCOPE_HEADER, b"\xff")],
        ];
        for h in bad {
            let err = Fence::from_headers(&headers(h), "").unwrap_err();
            assert_eq!(err.code, ErrorCode::BadRequest, "{h:?}");
        }
    }

    #[test]
    fn the_highest_epoch_is_kept_per_scope_over_all_64_bits() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::db::open_writer(&dir.path().join("db.sqlite3")).unwrap();
        let f = |scope: &str, epoch| Fence {
            user: String::new(),
            scope: scope.into(),
            epoch,
        };
        assert_eq!(f("", 0).check(&conn), Ok(()));
        f("", u64::MAX - 1).record(&conn).unwrap();
        f("", 3).record(&conn).unwrap();
        assert_eq!(highest_epoch(&conn, "", "").unwrap(), Some(u64::MAX - 1));
        assert_eq!(
            f("", 3).check(&conn).unwrap_err().code,
            ErrorCode::StaleEpoch
        );
        assert_eq!(f("", u64::MAX - 1).check(&conn), Ok(()));
        f("", u64::MAX).record(&conn).unwrap();
        assert_eq!(highest_epoch(&conn, "", "").unwrap(), Some(u64::MAX));
        assert_eq!(f("other", 1).check(&conn), Ok(()));
        assert_eq!(highest_epoch(&conn, "", "other").unwrap(), None);
    }

    #[test]
    fn the_highest_epoch_is_kept_per_user_and_scope() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::db::open_writer(&dir.path().join("db.sqlite3")).unwrap();
        let f = |user: &str, scope: &str, epoch| Fence {
            user: user.into(),
            scope: scope.into(),
            epoch,
        };
        f("alice", "s", 9).record(&conn).unwrap();
        assert_eq!(f("bob", "s", 1).check(&conn), Ok(()));
        assert_eq!(f("", "s", 1).check(&conn), Ok(()));
        f("bob", "s", 2).record(&conn).unwrap();
        assert_eq!(highest_epoch(&conn, "alice", "s").unwrap(), Some(9));
        assert_eq!(highest_epoch(&conn, "bob", "s").unwrap(), Some(2));
        assert_eq!(
            f("alice", "s", 8).check(&conn).unwrap_err().code,
            ErrorCode::StaleEpoch
        );
    }
}
