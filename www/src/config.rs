//! The server's settings: command-line flags with embedded defaults.

use crate::auth::AuthMode;
use std::net::IpAddr;
use std::path::PathBuf;

/// Collection names that would be hidden behind the fixed `/api/...` routes.
const RESERVED_COLLECTIONS: [&str; 6] =
    ["mutations", "changes", "feed", "login", "logout", "session"];

/// PBKDF2-HMAC-SHA256 rounds for new password hashes (OWASP's 2023 advice).
pub const PASSWORD_ITERATIONS: u32 = 600_000;

/// The default [`Config::page_bytes`]: 4 MiB, about what a tab reads in one message.
pub const PAGE_BYTES: usize = 4 * 1024 * 1024;

/// Everything the server needs to start. [`Config::default`] is what the binary runs with when
/// given no flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The address to bind (`--host`, default `127.0.0.1`).
    pub host: String,
    /// The port to bind (`--port`, default 8787); 0 picks a free one.
    pub port: u16,
    /// Where the database file `outbox.sqlite3` lives (`--data-dir`, default `www/data`).
    pub data_dir: PathBuf,
    /// The demo's static files, served at `/` (`--static`, default `www/static`).
    pub static_dir: PathBuf,
    /// The built wasm, served at `/pkg/` (`--pkg`, default `www/pkg`).
    pub pkg_dir: PathBuf,
    /// The collections mutations may touch (`--collections`, comma separated, default `todos`).
    pub collections: Vec<String>,
    /// The largest request body accepted, in bytes (`--max-body-bytes`, default 1 MiB).
    pub max_body_bytes: usize,
    /// Whether the fault switches under `/_test/` are on (`--faults`; loopback hosts only).
    pub faults: bool,
    /// How many live feed entries wait for a slow subscriber before it falls back to reading
    /// the database (no flag; default 1024).
    pub feed_buffer: usize,
    /// The most bytes of entries one read of the change log holds (no flag; default
    /// [`PAGE_BYTES`]): a `GET /api/changes` answer, or a page of the feed's backlog. A read
    /// always holds at least one entry, so an answer may be larger by one entry.
    pub page_bytes: usize,
    /// Who may call the API (`--auth required|optional|off`, default `optional`).
    pub auth: AuthMode,
    /// Whether the demo users alice and bob exist, with the well-known tokens `demo-alice` and
    /// `demo-bob` (`--demo-users`, default on; loopback hosts only).
    pub demo_users: bool,
    /// PBKDF2 rounds for the password hashes this server creates (no flag; default
    /// [`PASSWORD_ITERATIONS`]). Stored hashes keep the count they were made with.
    pub password_iterations: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 8787,
            data_dir: PathBuf::from("www/data"),
            static_dir: PathBuf::from("www/static"),
            pkg_dir: PathBuf::from("www/pkg"),
            collections: vec!["todos".to_owned()],
            max_body_bytes: 1024 * 1024,
            faults: false,
            feed_buffer: 1024,
            page_bytes: PAGE_BYTES,
            auth: AuthMode::default(),
            demo_users: true,
            password_iterations: PASSWORD_ITERATIONS,
        }
    }
}

/// Why the flags could not be turned into a [`Config`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A flag this server does not know.
    #[error("unknown flag {0:?} (try --help)")]
    UnknownFlag(String),
    /// A flag that needs a value came last.
    #[error("flag {0} needs a value")]
    MissingValue(String),
    /// A value that does not parse.
    #[error("bad value {value:?} for {flag}: {reason}")]
    BadValue {
        /// The flag.
        flag: String,
        /// What was given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `--faults` with a host that is not loopback.
    #[error("--faults is only allowed on a loopback host, not {0:?}")]
    FaultsOffLoopback(String),
    /// Demo users (whose tokens are well known) with a host that is not loopback.
    #[error(
        "--demo-users (well-known tokens demo-alice, demo-bob) is only allowed on a loopback \
         host, not {0:?}: add --demo-users=false"
    )]
    DemoUsersOffLoopback(String),
    /// `--help` was asked for; the caller prints [`USAGE`].
    #[error("help requested")]
    HelpRequested,
}

/// The text `--help` prints.
pub const USAGE: &str = "\
outbox-server: Outbox's reference server

USAGE: outbox-server [FLAGS]

  --host <addr>            address to bind (default 127.0.0.1)
  --port <n>               port to bind, 0 = any free port (default 8787)
  --data-dir <dir>         folder of the database file outbox.sqlite3 (default www/data)
  --static <dir>           static files served at / (default www/static)
  --pkg <dir>              built wasm served at /pkg/ (default www/pkg)
  --collections <a,b>      collections mutations may touch (default todos)
  --max-body-bytes <n>     largest request body accepted (default 1048576)
  --faults                 enable the fault switches under /_test/ (loopback hosts only)
  --auth <mode>            required | optional | off: whether /api needs a bearer token
                           (default optional: anonymous allowed, a given token must be valid)
  --demo-users[=false]     demo users alice and bob, passwords = names, tokens demo-alice and
                           demo-bob (default on; loopback hosts only)
  --help                   print this
";

impl Config {
    /// Reads flags (without the program name), starting from the defaults, and checks the
    /// result with [`Config::validate`].
    pub fn from_args<I, S>(args: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut cfg = Self::default();
        let mut args = args.into_iter().map(Into::into);
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
                _ => (arg.clone(), None),
            };
            if flag == "--faults" && inline.is_none() {
                cfg.faults = true;
                continue;
            }
            if flag == "--demo-users" && inline.is_none() {
                cfg.demo_users = true;
                continue;
            }
            if flag == "--help" || flag == "-h" {
                return Err(ConfigError::HelpRequested);
            }
            if !matches!(
                flag.as_str(),
                "--host"
                    | "--port"
                    | "--data-dir"
                    | "--static"
                    | "--pkg"
                    | "--collections"
                    | "--max-body-bytes"
                    | "--faults"
                    | "--auth"
                    | "--demo-users"
            ) {
                return Err(ConfigError::UnknownFlag(arg));
            }
            let value = match inline.or_else(|| args.next()) {
                Some(v) => v,
                None => return Err(ConfigError::MissingValue(flag)),
            };
            cfg.set(&flag, value)?;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    fn set(&mut self, flag: &str, value: String) -> Result<(), ConfigError> {
        let bad = |reason: &str| ConfigError::BadValue {
            flag: flag.to_owned(),
            value: value.clone(),
            reason: reason.to_owned(),
        };
        match flag {
            "--host" => self.host = value,
            "--port" => self.port = value.parse().map_err(|_| bad("not a port number"))?,
            "--data-dir" => self.data_dir = PathBuf::from(value),
            "--static" => self.static_dir = PathBuf::from(value),
            "--pkg" => self.pkg_dir = PathBuf::from(value),
            "--collections" => {
                self.collections = value
                    .split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            "--max-body-bytes" => {
                self.max_body_bytes = value.parse().map_err(|_| bad("not a byte count"))?;
            }
            "--faults" => {
                self.faults = value.parse().map_err(|_| bad("expected true or false"))?;
            }
            "--auth" => self.auth = value.parse().map_err(|e: String| bad(&e))?,
            "--demo-users" => {
                self.demo_users = value.parse().map_err(|_| bad("expected true or false"))?;
            }
            _ => return Err(ConfigError::UnknownFlag(flag.to_owned())),
        }
        Ok(())
    }

    /// Checks the settings together: at least one valid collection name, a non-zero body
    /// limit, and fault switches only on a loopback host.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |flag: &str, value: &str, reason: &str| ConfigError::BadValue {
            flag: flag.to_owned(),
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        if self.collections.is_empty() {
            return Err(bad(
                "--collections",
                "",
                "at least one collection is needed",
            ));
        }
        for c in &self.collections {
            let plain = c
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-');
            if !plain || RESERVED_COLLECTIONS.contains(&c.as_str()) {
                return Err(bad(
                    "--collections",
                    c,
                    "use letters, digits, _ and -, and not mutations, changes, feed, login, \
                     logout or session",
                ));
            }
        }
        if self.feed_buffer == 0 {
            return Err(bad("feed_buffer", "0", "must be at least 1"));
        }
        if self.page_bytes == 0 {
            return Err(bad("page_bytes", "0", "must be at least 1"));
        }
        if self.max_body_bytes == 0 {
            return Err(bad("--max-body-bytes", "0", "must be at least 1"));
        }
        if self.password_iterations == 0 {
            return Err(bad("password_iterations", "0", "must be at least 1"));
        }
        if self.faults && !is_loopback_host(&self.host) {
            return Err(ConfigError::FaultsOffLoopback(self.host.clone()));
        }
        if self.demo_users && !is_loopback_host(&self.host) {
            return Err(ConfigError::DemoUsersOffLoopback(self.host.clone()));
        }
        Ok(())
    }

    /// The database file inside the data folder.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("outbox.sqlite3")
    }
}

/// Whether `host` names only this machine: `localhost` or a loopback address.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_flags_gives_the_defaults() {
        assert_eq!(
            Config::from_args(Vec::<String>::new()),
            Ok(Config::default())
        );
    }

    #[test]
    fn flags_override_defaults_in_both_spellings() {
        let c = Config::from_args([
            "--port=0",
            "--data-dir",
            "/tmp/x",
            "--collections",
            "todos, notes",
            "--faults",
        ])
        .unwrap();
        assert_eq!(c.port, 0);
        assert_eq!(c.db_path(), PathBuf::from("/tmp/x/outbox.sqlite3"));
        assert_eq!(c.collections, vec!["todos", "notes"]);
        assert!(c.faults);
    }

    #[test]
    fn auth_flags_are_read() {
        let c = Config::default();
        assert_eq!((c.auth, c.demo_users), (AuthMode::Optional, true));
        let c = Config::from_args(["--auth", "required", "--demo-users=false"]).unwrap();
        assert_eq!((c.auth, c.demo_users), (AuthMode::Required, false));
        let c = Config::from_args(["--auth=off", "--demo-users"]).unwrap();
        assert_eq!((c.auth, c.demo_users), (AuthMode::Off, true));
        for bad in [&["--auth", "yes"][..], &["--demo-users=maybe"], &["--auth"]] {
            assert!(Config::from_args(bad.iter().copied()).is_err(), "{bad:?}");
        }
        assert!(matches!(
            Config::from_args(["--collections", "login"]),
            Err(ConfigError::BadValue { .. })
        ));
    }

    #[test]
    fn demo_users_need_a_loopback_host() {
        assert_eq!(
            Config::from_args(["--host", "0.0.0.0"]),
            Err(ConfigError::DemoUsersOffLoopback("0.0.0.0".into()))
        );
        let c = Config::from_args(["--host", "0.0.0.0", "--demo-users=false"]).unwrap();
        assert!(!c.demo_users);
    }

    #[test]
    fn faults_need_a_loopback_host() {
        for host in ["0.0.0.0", "192.0.2.1", "example.com", "::"] {
            assert_eq!(
                Config::from_args(["--faults", "--host", host]),
                Err(ConfigError::FaultsOffLoopback(host.to_owned()))
            );
        }
        for host in ["127.0.0.1", "127.8.0.1", "localhost", "::1", "[::1]"] {
            assert!(
                Config::from_args(["--faults", "--host", host]).is_ok(),
                "{host}"
            );
        }
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        assert!(matches!(
            Config::from_args(["--port", "x"]),
            Err(ConfigError::BadValue { .. })
        ));
        assert!(matches!(
            Config::from_args(["--port"]),
            Err(ConfigError::MissingValue(_))
        ));
        assert!(matches!(
            Config::from_args(["--nope"]),
            Err(ConfigError::UnknownFlag(_))
        ));
        assert!(matches!(
            Config::from_args(["--collections", "feed"]),
            Err(ConfigError::BadValue { .. })
        ));
    }
}
