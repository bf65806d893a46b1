//! Connections: accept, bound, time out, shut down gracefully.
//!
//! Plain hyper (HTTP/1.1 only, the contest's protocol) rather than a framework: with two
//! routes a router buys nothing, and owning the connection loop makes every bound explicit:
//! - at most `max_connections` open at once (a semaphore, as in mini-redis): the next
//!   client waits in the kernel's accept queue instead of exhausting file descriptors;
//! - headers bounded in size (`max_buf_size`) and in time (`header_read_timeout`, which in
//!   hyper also ends idle keep-alive connections), bodies bounded in [`super::Limits`];
//! - on shutdown, stop accepting, let in-flight requests finish, then return.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;

use super::routes::{App, handle};
use crate::store::Ledger;

/// Where the server listens: a TCP address or a Unix socket path.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// `http://ADDR` or `unix:PATH`, for logs and tests.
    pub fn describe(&self) -> String {
        match self {
            Listener::Tcp(l) => l
                .local_addr()
                .map(|a| format!("http://{a}"))
                .unwrap_or_else(|_| "tcp:?".into()),
            Listener::Unix(_, p) => format!("unix:{}", p.display()),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Connection-level bounds (their defaults and ranges: `crate::configuration`).
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Connections served at once; at least 1.
    pub max_connections: usize,
    /// Time to send a request head, and that an idle keep-alive connection is kept.
    pub header_timeout: Duration,
    /// How long in-flight requests get to finish once shutdown starts.
    pub shutdown_grace: Duration,
}

/// Serves until `shutdown` resolves, then drains open connections (up to the grace period).
pub async fn serve<L: Ledger>(
    listener: Listener,
    app: Arc<App<L>>,
    limits: ConnLimits,
    shutdown: impl std::future::Future<Output = ()>,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(16 * 1024)
        .keep_alive(true);
    tokio::pin!(shutdown);

    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = permits.clone().acquire_owned() => p.expect("semaphore never closed"),
        };
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = accept(&listener) => a,
        };
        let io = match accepted {
            Ok(io) => io,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        app.metrics.connection_opened();
        let app = app.clone();
        let service = {
            let app = app.clone();
            service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(&app, req).await) }
            })
        };
        let conn = graceful.watch(builder.serve_connection(io, service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            app.metrics.connection_closed();
            drop(permit);
        });
    }

    drop(listener);
    tracing::info!("shutting down: waiting for in-flight requests");
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all connections closed"),
        _ = tokio::time::sleep(limits.shutdown_grace) => tracing::warn!("grace period over, closing remaining connections"),
    }
    Ok(())
}

/// Either kind of stream, boxed behind hyper's IO adapter.
type Io = TokioIo<Box<dyn Stream>>;

trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

async fn accept(listener: &Listener) -> io::Result<Io> {
    match listener {
        Listener::Tcp(l) => {
            let (s, _) = l.accept().await?;
            s.set_nodelay(true)?;
            Ok(TokioIo::new(Box::new(s)))
        }
        Listener::Unix(l, _) => {
            let (s, _) = l.accept().await?;
            Ok(TokioIo::new(Box::new(s)))
        }
    }
}
