//! The `users` and `tokens` tables (schema version 3): the demo users' seeding, password and
//! token look-ups, and issuing and revoking tokens. Passwords and tokens are stored hashed
//! only (see [`super::password`] and [`super::token`]).

use super::password::{PasswordHash, SALT_LEN};
use super::token::token_hash;
use crate::db::DbError;
use rusqlite::{Connection, OptionalExtension};

/// The demo users, seeded with `--demo-users` (the default). Each one's password is its name,
/// and each has the well-known token `demo-<name>`.
pub const DEMO_USERS: [&str; 2] = ["alice", "bob"];

/// The well-known token of demo user `name`.
pub fn demo_token(name: &str) -> String {
    format!("demo-{name}")
}

/// With `on`, creates each missing demo user (password = name, hashed with `iterations`
/// rounds and its salt from `salts`) and makes sure its well-known token is valid, restoring one
/// revoked by a logout. Without, deletes the demo users and every token they hold, so the
/// well-known tokens stop working. One SQLite transaction; a user of the same name that is not
/// a demo user is left alone and gets no well-known token.
pub fn seed_demo_users(
    conn: &Connection,
    on: bool,
    iterations: u32,
    salts: [[u8; SALT_LEN]; DEMO_USERS.len()],
    now_ms: i64,
) -> Result<(), DbError> {
    let tx = conn.unchecked_transaction()?;
    if on {
        for (name, salt) in DEMO_USERS.into_iter().zip(salts) {
            let demo: Option<bool> = tx
                .prepare_cached("SELECT demo FROM users WHERE name = ?1")?
                .query_row([name], |r| r.get(0))
                .optional()?;
            match demo {
                Some(false) => continue,
                Some(true) => {}
                None => {
                    let hash = PasswordHash::new(name, salt, iterations);
                    tx.prepare_cached(
                        "INSERT INTO users (name, password, demo) VALUES (?1, ?2, 1)",
                    )?
                    .execute((name, hash.encode()))?;
                }
            }
            tx.prepare_cached(
                "INSERT INTO tokens (hash, user, created_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (hash) DO NOTHING",
            )?
            .execute((token_hash(&demo_token(name)), name, now_ms))?;
        }
    } else {
        tx.execute_batch(
            "DELETE FROM tokens WHERE user IN (SELECT name FROM users WHERE demo = 1);
             DELETE FROM users WHERE demo = 1;",
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// The stored password hash of `user`, if there is such a user.
pub fn password_of(conn: &Connection, user: &str) -> Result<Option<String>, rusqlite::Error> {
    conn.prepare_cached("SELECT password FROM users WHERE name = ?1")?
        .query_row([user], |r| r.get(0))
        .optional()
}

/// The user holding the token whose hash is `hash`, if it is valid.
pub fn user_of_token(conn: &Connection, hash: &str) -> Result<Option<String>, rusqlite::Error> {
    conn.prepare_cached("SELECT user FROM tokens WHERE hash = ?1")?
        .query_row([hash], |r| r.get(0))
        .optional()
}

/// Records a token (by its hash) issued to `user`.
pub fn insert_token(
    conn: &Connection,
    hash: &str,
    user: &str,
    created_ms: i64,
) -> Result<(), rusqlite::Error> {
    conn.prepare_cached("INSERT INTO tokens (hash, user, created_ms) VALUES (?1, ?2, ?3)")?
        .execute((hash, user, created_ms))?;
    Ok(())
}

/// Revokes the token whose hash is `hash`; whether there was one.
pub fn delete_token(conn: &Connection, hash: &str) -> Result<bool, rusqlite::Error> {
    Ok(conn
        .prepare_cached("DELETE FROM tokens WHERE hash = ?1")?
        .execute([hash])?
        > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::db::open_writer(&dir.path().join("db.sqlite3")).unwrap();
        (dir, conn)
    }

    const SALTS: [[u8; SALT_LEN]; 2] = [[3; SALT_LEN], [4; SALT_LEN]];

    #[test]
    fn demo_users_are_seeded_with_their_tokens_and_removed_when_off() {
        let (_dir, conn) = open();
        seed_demo_users(&conn, true, 2, SALTS, 1).unwrap();
        let alice = token_hash("demo-alice");
        assert_eq!(
            user_of_token(&conn, &alice).unwrap().as_deref(),
            Some("alice")
        );
        let stored = password_of(&conn, "bob").unwrap().unwrap();
        assert!(PasswordHash::decode(&stored).unwrap().verify("bob"));

        // A revoked demo token comes back at the next start; the password is not re-hashed.
        assert!(delete_token(&conn, &alice).unwrap());
        assert!(!delete_token(&conn, &alice).unwrap());
        seed_demo_users(&conn, true, 2, [[9; SALT_LEN]; 2], 2).unwrap();
        assert!(user_of_token(&conn, &alice).unwrap().is_some());
        assert_eq!(password_of(&conn, "bob").unwrap(), Some(stored));

        insert_token(&conn, "issued", "alice", 3).unwrap();
        seed_demo_users(&conn, false, 2, SALTS, 4).unwrap();
        assert_eq!(user_of_token(&conn, &alice).unwrap(), None);
        assert_eq!(user_of_token(&conn, "issued").unwrap(), None);
        assert_eq!(password_of(&conn, "alice").unwrap(), None);
    }

    #[test]
    fn a_real_user_of_a_demo_name_is_left_alone() {
        let (_dir, conn) = open();
        let hash = PasswordHash::new("secret", [1; SALT_LEN], 2).encode();
        conn.execute(
            "INSERT INTO users (name, password, demo) VALUES ('alice', ?1, 0)",
            [&hash],
        )
        .unwrap();
        seed_demo_users(&conn, true, 2, SALTS, 1).unwrap();
        assert_eq!(password_of(&conn, "alice").unwrap(), Some(hash.clone()));
        assert_eq!(
            user_of_token(&conn, &token_hash("demo-alice")).unwrap(),
            None
        );
        seed_demo_users(&conn, false, 2, SALTS, 1).unwrap();
        assert_eq!(password_of(&conn, "alice").unwrap(), Some(hash));
    }
}
