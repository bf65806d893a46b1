//! What a request is for, parsed once from its path: the handlers match on it (which one
//! answers) and the metrics label by it (which series counts it). A module of its own so
//! that neither of those two depends on the other.

/// A request's route; `Other` is every path the API does not serve (404).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Transacoes,
    Extrato,
    Healthz,
    Metrics,
    Other,
}

impl Route {
    pub const ALL: [Route; 5] = [
        Route::Transacoes,
        Route::Extrato,
        Route::Healthz,
        Route::Metrics,
        Route::Other,
    ];

    /// The label of its metrics series.
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Transacoes => "transacoes",
            Route::Extrato => "extrato",
            Route::Healthz => "healthz",
            Route::Metrics => "metrics",
            Route::Other => "other",
        }
    }

    /// The route of a path, with the client id segment of the two client routes as sent
    /// (parsed by the handler: a bad id is a 404 of that route); "" for the others.
    pub fn of(path: &str) -> (Route, &str) {
        match path {
            "/healthz" => return (Route::Healthz, ""),
            "/metrics" => return (Route::Metrics, ""),
            _ => {}
        }
        let Some(rest) = path.strip_prefix("/clientes/") else {
            return (Route::Other, "");
        };
        match rest.split_once('/') {
            Some((id, "transacoes")) => (Route::Transacoes, id),
            Some((id, "extrato")) => (Route::Extrato, id),
            _ => (Route::Other, ""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_routes() {
        assert_eq!(
            Route::of("/clientes/1/transacoes"),
            (Route::Transacoes, "1")
        );
        assert_eq!(Route::of("/clientes/abc/extrato"), (Route::Extrato, "abc"));
        assert_eq!(Route::of("/healthz"), (Route::Healthz, ""));
        assert_eq!(Route::of("/metrics"), (Route::Metrics, ""));
        assert_eq!(Route::of("/clientes//extrato"), (Route::Extrato, ""));
        for other in [
            "/",
            "/clientes",
            "/clientes/1",
            "/clientes/1/extrato/",
            "/clientes/1/x",
            "/clientes/1/2/extrato",
            "/metrics/api1",
            "/healthz/",
        ] {
            assert_eq!(Route::of(other).0, Route::Other, "{other}");
        }
    }
}
