//! Prometheus metrics for `GET /metrics`: requests by route and status, latency histograms,
//! open connections.
//!
//! Metrics are plain atomics indexed by route and status: recording one request costs a
//! few relaxed increments and no allocation, lock or map lookup. Rendering happens only
//! when scraped. They live in the HTTP layer because everything they count is HTTP.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use hyper::StatusCode;

use super::route::Route;

/// Status codes the API can answer; anything else is counted under `other`.
const STATUSES: [u16; 11] = [200, 400, 404, 405, 408, 413, 422, 500, 503, 504, 0];
/// Histogram bucket upper bounds, in microseconds: fine around a millisecond, where the
/// contest's tail lives, coarse up to the 250 ms SLA and beyond.
const BUCKETS_US: [u64; 19] = [
    50, 100, 150, 200, 300, 400, 500, 750, 1_000, 1_500, 2_000, 2_500, 5_000, 10_000, 25_000,
    50_000, 100_000, 250_000, 1_000_000,
];
const ROUTES: usize = Route::ALL.len();

/// A latency histogram in the Prometheus layout (cumulative on rendering).
#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS_US.len()],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let us = elapsed.as_micros() as u64;
        if let Some(b) = BUCKETS_US.iter().position(|&le| us <= le) {
            self.buckets[b].fetch_add(1, Relaxed);
        }
        self.sum_us.fetch_add(us, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    fn render(&self, out: &mut String, metric: &str, route: &str) {
        let mut cumulative = 0;
        for (i, le) in BUCKETS_US.iter().enumerate() {
            cumulative += self.buckets[i].load(Relaxed);
            let _ = writeln!(
                out,
                "{metric}_bucket{{route=\"{route}\",le=\"{}\"}} {cumulative}",
                *le as f64 / 1e6
            );
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(
            out,
            "{metric}_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "{metric}_sum{{route=\"{route}\"}} {}",
            self.sum_us.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{metric}_count{{route=\"{route}\"}} {count}");
    }
}

#[derive(Default)]
struct PerRoute {
    by_status: [AtomicU64; STATUSES.len()],
    /// Request head to response.
    latency: Histogram,
    /// The store's part of it (the ledger call), for the per-hop breakdown.
    store: Histogram,
}

/// Process-wide counters, shared by every connection.
#[derive(Default)]
pub struct Metrics {
    routes: [PerRoute; ROUTES],
    connections_open: AtomicI64,
    connections_total: AtomicU64,
}

impl Metrics {
    pub fn observe(&self, route: Route, status: StatusCode, elapsed: Duration) {
        let r = &self.routes[route as usize];
        let code = status.as_u16();
        let i = STATUSES
            .iter()
            .position(|&s| s == code)
            .unwrap_or(STATUSES.len() - 1);
        r.by_status[i].fetch_add(1, Relaxed);
        r.latency.observe(elapsed);
    }

    /// Time spent waiting for the store (the ledger call) in a request on `route`.
    pub fn observe_store(&self, route: Route, elapsed: Duration) {
        self.routes[route as usize].store.observe(elapsed);
    }

    pub fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Relaxed);
        self.connections_total.fetch_add(1, Relaxed);
    }

    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Relaxed);
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        out.push_str(
            "# HELP crebito_http_requests_total HTTP requests answered, by route and status.\n",
        );
        out.push_str("# TYPE crebito_http_requests_total counter\n");
        for route in Route::ALL {
            let r = &self.routes[route as usize];
            for (i, code) in STATUSES.iter().enumerate() {
                let n = r.by_status[i].load(Relaxed);
                if n == 0 {
                    continue;
                }
                let status = if *code == 0 {
                    "other".to_string()
                } else {
                    code.to_string()
                };
                let _ = writeln!(
                    out,
                    "crebito_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                    route.as_str()
                );
            }
        }
        out.push_str("# HELP crebito_http_request_duration_seconds Time from request head to response, by route.\n");
        out.push_str("# TYPE crebito_http_request_duration_seconds histogram\n");
        for route in Route::ALL {
            self.routes[route as usize].latency.render(
                &mut out,
                "crebito_http_request_duration_seconds",
                route.as_str(),
            );
        }
        out.push_str("# HELP crebito_store_duration_seconds Time waiting for the store (one round trip), by route.\n");
        out.push_str("# TYPE crebito_store_duration_seconds histogram\n");
        for route in [Route::Transacoes, Route::Extrato] {
            self.routes[route as usize].store.render(
                &mut out,
                "crebito_store_duration_seconds",
                route.as_str(),
            );
        }
        out.push_str("# HELP crebito_connections_open Client connections open now.\n");
        out.push_str("# TYPE crebito_connections_open gauge\n");
        let _ = writeln!(
            out,
            "crebito_connections_open {}",
            self.connections_open.load(Relaxed)
        );
        out.push_str("# HELP crebito_connections_total Client connections accepted.\n");
        out.push_str("# TYPE crebito_connections_total counter\n");
        let _ = writeln!(
            out,
            "crebito_connections_total {}",
            self.connections_total.load(Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_renders() {
        let m = Metrics::default();
        m.observe(Route::Transacoes, StatusCode::OK, Duration::from_micros(80));
        m.observe(
            Route::Transacoes,
            StatusCode::UNPROCESSABLE_ENTITY,
            Duration::from_micros(3000),
        );
        m.observe(
            Route::Other,
            StatusCode::IM_A_TEAPOT,
            Duration::from_secs(5),
        );
        let text = m.render();
        assert!(
            text.contains("crebito_http_requests_total{route=\"transacoes\",status=\"200\"} 1\n")
        );
        assert!(
            text.contains("crebito_http_requests_total{route=\"transacoes\",status=\"422\"} 1\n")
        );
        assert!(text.contains("crebito_http_requests_total{route=\"other\",status=\"other\"} 1\n"));
        assert!(text.contains(
            "crebito_http_request_duration_seconds_bucket{route=\"transacoes\",le=\"0.0001\"} 1\n"
        ));
        assert!(text.contains(
            "crebito_http_request_duration_seconds_bucket{route=\"transacoes\",le=\"0.005\"} 2\n"
        ));
        m.observe_store(Route::Transacoes, Duration::from_micros(120));
        let text = m.render();
        assert!(text.contains(
            "crebito_store_duration_seconds_bucket{route=\"transacoes\",le=\"0.0001\"} 0\n"
        ));
        assert!(text.contains(
            "crebito_store_duration_seconds_bucket{route=\"transacoes\",le=\"0.00015\"} 1\n"
        ));
        assert!(text.contains("crebito_store_duration_seconds_count{route=\"extrato\"} 0\n"));
        assert!(text.contains(
            "crebito_http_request_duration_seconds_bucket{route=\"other\",le=\"1\"} 0\n"
        ));
        assert!(text.contains(
            "crebito_http_request_duration_seconds_bucket{route=\"other\",le=\"+Inf\"} 1\n"
        ));
        assert!(
            text.contains("crebito_http_request_duration_seconds_count{route=\"transacoes\"} 2\n")
        );
    }
}
