//! `crebito healthcheck`: asks a running instance's `GET /healthz` and exits 0 only on a
//! 200. The container image is `FROM scratch` (no shell, no curl), so Compose's health check
//! runs the binary itself against the address the instance listens on.

use std::io::{Read, Write};
use std::time::Duration;

use crate::configuration::ListenAddr;

/// The whole exchange gets this long; a hung instance is unhealthy.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Whether the instance at `addr` answers `/healthz` with 200 (its store is reachable).
pub fn check(addr: &ListenAddr) -> Result<(), String> {
    let request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let mut answer = Vec::with_capacity(256);
    let mut exchange = |stream: &mut dyn ReadWrite| -> std::io::Result<()> {
        stream.write_all(request)?;
        stream.take(4096).read_to_end(&mut answer).map(drop)
    };
    let result = match addr {
        ListenAddr::Tcp(a) => {
            let mut s =
                std::net::TcpStream::connect_timeout(a, TIMEOUT).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(TIMEOUT))
                .and(s.set_write_timeout(Some(TIMEOUT)))
                .map_err(|e| e.to_string())?;
            exchange(&mut s)
        }
        ListenAddr::Unix(p) => {
            let mut s = std::os::unix::net::UnixStream::connect(p).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(TIMEOUT))
                .and(s.set_write_timeout(Some(TIMEOUT)))
                .map_err(|e| e.to_string())?;
            exchange(&mut s)
        }
    };
    result.map_err(|e| e.to_string())?;
    match answer.get(..12) {
        Some(b"HTTP/1.1 200") => Ok(()),
        _ => Err(
            String::from_utf8_lossy(answer.split(|b| *b == b'\r').next().unwrap_or_default())
                .into_owned(),
        ),
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}
