//! Starting and stopping the server: the database, the writer, and a custom accept loop that
//! serves each TCP connection with hyper and can close it without writing a byte (for the
//! drop-reply and offline fault switches).

use crate::auth::store::seed_demo_users;
use crate::auth::{now_ms, random_bytes};
use crate::config::{Config, ConfigError};
use crate::db::{open_writer, DbError, Readers};
use crate::faults::Faults;
use crate::routes::router;
use crate::state::AppState;
use crate::writer::Writer;
use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch, Notify};
use tokio::task::JoinSet;
use tower::ServiceExt;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The settings are not valid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data folder or the socket.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// No random bytes for the demo users' salts.
    #[error("randomness: {0}")]
    Random(getrandom::Error),
}

/// A connection's controls, handed to its requests as an extension: a handler can close the
/// connection without an answer, and the offline switch closes API connections.
#[derive(Debug, Default)]
pub struct ConnCtl {
    dropped: AtomicBool,
    notify: Notify,
    api: AtomicBool,
}

impl ConnCtl {
    /// Closes the connection now, without writing anything more.
    pub fn drop_now(&self) {
        self.dropped.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }

    /// Marks the connection as carrying `/api` requests.
    pub fn mark_api(&self) {
        self.api.store(true, Ordering::SeqCst);
    }

    /// Whether it carries `/api` requests.
    pub fn is_api(&self) -> bool {
        self.api.load(Ordering::SeqCst)
    }

    async fn dropped(&self) {
        while !self.dropped.load(Ordering::SeqCst) {
            self.notify.notified().await;
        }
    }
}

/// A running server. Stop it with [`Server::shutdown`]; dropping it stops accepting too.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    accept: Option<tokio::task::JoinHandle<()>>,
    writer: Arc<Writer>,
}

impl Server {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, closes every connection, lets the writer finish what is queued and
    /// closes the database.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        // The accept task ends by itself on the signal; a panic in it changes nothing here.
        if let Some(accept) = self.accept.take() {
            let _ = accept.await;
        }
        if let Some(thread) = self.writer.stop().await {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

/// Opens the database, starts the writer and binds the socket. The returned server is
/// accepting connections.
pub async fn start(config: Config) -> Result<Server, StartError> {
    config.validate()?;
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::Io {
        what: format!("creating {}", config.data_dir.display()),
        source,
    })?;
    let db_path = config.db_path();
    let salts = [
        random_bytes().map_err(StartError::Random)?,
        random_bytes().map_err(StartError::Random)?,
    ];
    let conn = {
        let p = db_path.clone();
        let (demo, iterations) = (config.demo_users, config.password_iterations);
        tokio::task::spawn_blocking(move || {
            let conn = open_writer(&p)?;
            seed_demo_users(&conn, demo, iterations, salts, now_ms())?;
            Ok::<_, DbError>(conn)
        })
        .await
        .map_err(|e| DbError::Task(e.to_string()))??
    };
    let (feed, _) = broadcast::channel(config.feed_buffer);
    let faults = config.faults.then(|| Arc::new(Faults::default()));
    let writer = Arc::new(Writer::start(conn, feed.clone(), faults.clone())?);
    let host = config
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let listener = TcpListener::bind((host.as_str(), config.port))
        .await
        .map_err(|source| StartError::Io {
            what: format!("binding {}:{}", config.host, config.port),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Io {
        what: "reading the bound address".into(),
        source,
    })?;
    let keep_alive = !config.faults;
    let offline = faults.as_ref().map(|f| f.offline_watch());
    let app = AppState {
        collections: Arc::new(config.collections.iter().cloned().collect::<HashSet<_>>()),
        config: Arc::new(config),
        writer: writer.clone(),
        readers: Readers::new(db_path),
        feed,
        faults,
    };
    let (shutdown, shutdown_rx) = watch::channel(false);
    let accept = tokio::spawn(accept_loop(
        listener,
        router(app),
        keep_alive,
        offline,
        shutdown_rx,
    ));
    Ok(Server {
        addr,
        shutdown,
        accept: Some(accept),
        writer,
    })
}

async fn accept_loop(
    listener: TcpListener,
    app: Router,
    keep_alive: bool,
    offline: Option<watch::Receiver<bool>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(serve_conn(
                        stream,
                        app.clone(),
                        keep_alive,
                        offline.clone(),
                        shutdown.clone(),
                    ));
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, keep serving.
                    eprintln!("outbox-server: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.shutdown().await;
}

/// Serves one connection until it ends, its requests drop it, the offline switch turns on
/// while it carries `/api` requests, or the server stops. Returning drops the hyper
/// connection, which closes the socket without writing anything more.
async fn serve_conn(
    stream: TcpStream,
    app: Router,
    keep_alive: bool,
    mut offline: Option<watch::Receiver<bool>>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Small answers go out at once; failing to set it only costs latency.
    let _ = stream.set_nodelay(true);
    let ctl = Arc::new(ConnCtl::default());
    let svc = {
        let ctl = ctl.clone();
        hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ctl.clone());
            app.clone().oneshot(req.map(Body::new))
        })
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .keep_alive(keep_alive)
        .serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    loop {
        tokio::select! {
            biased;
            () = ctl.dropped() => return,
            _ = shutdown.changed() => return,
            goes_offline = offline_changed(&mut offline) => {
                if goes_offline && ctl.is_api() {
                    return;
                }
            }
            _ = conn.as_mut() => return,
        }
    }
}

/// Waits for the offline switch to change; `true` when it is now on. Never resolves without
/// fault switches.
async fn offline_changed(offline: &mut Option<watch::Receiver<bool>>) -> bool {
    match offline {
        Some(rx) => match rx.changed().await {
            Ok(()) => *rx.borrow_and_update(),
            Err(_) => {
                *offline = None;
                false
            }
        },
        None => std::future::pending().await,
    }
}
