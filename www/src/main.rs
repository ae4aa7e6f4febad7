//! `outbox-server`: runs Outbox's reference server. Prints one line, `listening on
//! http://HOST:PORT`, to stdout once bound; logs go to stderr.

use outbox_www::{start, Config, ConfigError};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_args(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(ConfigError::HelpRequested) => {
            eprint!("{}", outbox_www::config::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("outbox-server: {e}");
            return ExitCode::from(2);
        }
    };
    let data = config.db_path();
    let faults = config.faults;
    let (auth, demo_users) = (config.auth, config.demo_users);
    let server = match start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("outbox-server: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    #[allow(clippy::print_stdout, reason = "the one line scripts and tests parse")]
    {
        println!("listening on {}", server.url());
    }
    eprintln!(
        "outbox-server: database {}{}, auth {auth}",
        data.display(),
        if faults { ", fault switches ON" } else { "" }
    );
    if demo_users {
        let users = outbox_www::auth::store::DEMO_USERS;
        let tokens: Vec<String> = users
            .iter()
            .map(|u| format!("{u}: Bearer {}", outbox_www::auth::store::demo_token(u)))
            .collect();
        eprintln!(
            "outbox-server: demo users (password = name): {}",
            tokens.join(", ")
        );
    }
    wait_for_stop().await;
    eprintln!("outbox-server: stopping");
    server.shutdown().await;
    ExitCode::SUCCESS
}

/// Ctrl-C, or SIGTERM on Unix.
async fn wait_for_stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
