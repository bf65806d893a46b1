//! Static checks of the deployment files: the Compose files, nginx.conf, the Dockerfile
//! and the native launcher must agree with each other and with the contest's budget.
//! (There is no Docker engine to run Compose here; the native stack runs for real in
//! tests/stack.rs. nginx.conf's own answers, which need no stack, run here: its refusal past
//! the in-flight bound, its 502 and 504, and an instance's own errors passed through.)

mod common;

use std::collections::BTreeMap;

use std::path::Path;
use std::process::Command;

use common::{deploy_env as env_file, read, repo};
use serde_yaml::Value;

/// Replaces `${VAR}` with its value from deploy/.env, as Compose does; unknown vars fail.
fn interpolate(text: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closing brace") + start;
        let name = &rest[start + 2..end];
        out.push_str(
            env.get(name)
                .unwrap_or_else(|| panic!("${{{name}}} is not in deploy/.env")),
        );
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn compose(file: &str) -> Value {
    compose_with(file, &env_file())
}

fn compose_with(file: &str, env: &BTreeMap<String, String>) -> Value {
    let mut v: Value = serde_yaml::from_str(&interpolate(&read(file), env)).unwrap();
    v.apply_merge().unwrap();
    v
}

const COMPOSE_FILES: [&str; 2] = [
    "deploy/docker-compose.yml",
    "deploy/docker-compose.prod.yml",
];

fn services(c: &Value) -> &serde_yaml::Mapping {
    c["services"].as_mapping().expect("services")
}

/// The contest's services: every service of a contest file (what is outside the envelope,
/// observability, lives in its own override file).
fn contest_services(c: &Value) -> impl Iterator<Item = (&Value, &Value)> {
    services(c).iter().inspect(|(name, svc)| {
        assert!(
            svc["profiles"].is_null(),
            "{name:?}: no profiles in a contest file"
        )
    })
}

fn memory_mb(s: &str) -> f64 {
    s.strip_suffix("MB")
        .unwrap_or_else(|| panic!("memory in MB, as the contest asks: {s}"))
        .parse()
        .unwrap()
}

#[test]
fn compose_limits_add_up_to_the_contest_budget() {
    for file in COMPOSE_FILES {
        let c = compose(file);
        let (mut cpus, mut mem) = (0.0, 0.0);
        for (name, svc) in contest_services(&c) {
            let limits = &svc["deploy"]["resources"]["limits"];
            let cpu: f64 = limits["cpus"]
                .as_str()
                .unwrap_or_else(|| panic!("{file}: {name:?} declares cpus"))
                .parse()
                .unwrap();
            let m = memory_mb(
                limits["memory"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{file}: {name:?} declares memory")),
            );
            assert!(cpu > 0.0 && m > 0.0);
            cpus += cpu;
            mem += m;
        }
        assert!(cpus <= 1.5 + 1e-9, "{file}: {cpus} CPUs > 1.5");
        assert!(mem <= 550.0, "{file}: {mem} MB > 550");
        eprintln!("{file}: {cpus} CPU, {mem} MB");
    }
}

#[test]
fn services_sockets_and_ports_agree_between_compose_nginx_and_the_launcher() {
    let nginx = read("deploy/nginx.conf");
    let directives = common::nginx::directives(&nginx);
    let has = |words: &[&str]| directives.iter().any(|d| d.words == words);
    for d in common::nginx::upstream(&directives, "crebito") {
        assert!(
            !common::nginx::BALANCING_METHODS.contains(&d.name()),
            "round robin, as the contest rules ask: {:?}",
            d.words
        );
    }
    assert!(
        nginx.contains("listen 9999 "),
        "nginx listens on 9999 (the launcher rewrites this exact token)"
    );
    assert!(has(&["proxy_set_header", "Connection", ""]) && has(&["proxy_http_version", "1.1"]));
    assert!(has(&["access_log", "off"]));
    for file in COMPOSE_FILES {
        let c = compose(file);
        let names: Vec<&str> = contest_services(&c)
            .map(|(k, _)| k.as_str().unwrap())
            .collect();
        assert_eq!(names, ["db", "api1", "api2", "nginx"], "{file}");
        for api in ["api1", "api2"] {
            let svc = &c["services"][api];
            let cmd: Vec<&str> = svc["command"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            let sock = format!("/run/crebito/{api}.sock");
            assert_eq!(
                cmd,
                ["serve", "--listen", &format!("unix:{sock}")],
                "{file}: {api}"
            );
            assert!(
                has(&["server", &format!("unix:{sock}"), "max_fails=0"]),
                "nginx.conf upstream has {sock}"
            );
            let vols: Vec<&str> = svc["volumes"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert!(
                vols.contains(&"sockets:/run/crebito")
                    && vols.contains(&"pgsocket:/var/run/postgresql")
            );
            let env = &svc["environment"];
            assert_eq!(env["CREBITO_PG_PROFILE"], "durable", "{file}: the default");
            assert_eq!(
                (
                    env["CREBITO_PG_CONNECTIONS"].as_str(),
                    env["CREBITO_PG_SPILL"].as_str()
                ),
                (Some("2"), Some("true")),
                "{file}: a second connection, the first's spill"
            );
            assert!(
                env["DATABASE_URL"]
                    .as_str()
                    .unwrap()
                    .contains("host=/var/run/postgresql")
            );
            assert_eq!(
                svc["depends_on"]["db"]["condition"], "service_healthy",
                "health-gated start"
            );
            let health: Vec<&str> = svc["healthcheck"]["test"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(
                health,
                [
                    "CMD",
                    "/crebito",
                    "healthcheck",
                    "--listen",
                    &format!("unix:{sock}")
                ],
                "{file}: {api} checks its own socket"
            );
        }
        let lb = &c["services"]["nginx"];
        assert!(
            lb["volumes"]
                .as_sequence()
                .unwrap()
                .contains(&Value::from("sockets:/run/crebito"))
        );
        assert!(
            lb["volumes"]
                .as_sequence()
                .unwrap()
                .contains(&Value::from("./nginx.conf:/etc/nginx/nginx.conf:ro"))
        );
        assert!(
            lb["network_mode"] == "host"
                || lb["ports"]
                    .as_sequence()
                    .is_some_and(|p| p.contains(&Value::from("9999:9999"))),
            "{file}: port 9999 published"
        );
        let db_image = c["services"]["db"]["image"].as_str().unwrap();
        let major: u32 = db_image
            .trim_start_matches("postgres:")
            .split(['.', '-'])
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("{file}: a versioned postgres image: {db_image}"));
        assert_eq!(
            major,
            common::local_postgres_major(),
            "{file}: deploys the PostgreSQL major version the tests and benchmarks run"
        );
        for api in ["api1", "api2"] {
            assert_eq!(
                c["services"][api]["environment"]["CREBITO_MAX_CONNECTIONS"], "1024",
                "{file}: {api} gets deploy/.env's connection bound"
            );
        }
        assert!(
            c["services"]["db"]["healthcheck"]["test"]
                .as_sequence()
                .is_some()
        );
        for (name, svc) in contest_services(&c) {
            assert_eq!(
                svc["restart"], "unless-stopped",
                "{file}: {name:?} restarts"
            );
            assert!(
                svc["healthcheck"]["test"].is_sequence(),
                "{file}: {name:?} health"
            );
        }
        for api in ["api1", "api2"] {
            assert_eq!(
                lb["depends_on"][api]["condition"], "service_healthy",
                "{file}: nginx waits for healthy instances"
            );
        }
    }
    assert!(
        compose("deploy/docker-compose.prod.yml")["services"]["api1"]["build"].is_null(),
        "prod pulls, never builds"
    );
    assert!(
        compose("deploy/docker-compose.prod.yml")["services"]["api1"]["image"]
            .as_str()
            .unwrap()
            .contains('/')
    );

    // The native launcher's use of the same files is checked on a running stack
    // (tests/stack.rs: its processes' command lines and cgroup limits).
    let env = env_file();
    assert_eq!(
        env["CREBITO_PG_PROFILE"], "durable",
        "the default keeps the money"
    );
    assert_eq!(
        (
            env["CREBITO_PG_CONNECTIONS"].as_str(),
            env["CREBITO_PG_SPILL"].as_str()
        ),
        ("2", "true"),
        "a second connection for the write that meets the first's flush (performance.md)"
    );
    let total: f64 = ["DB_CPUS", "API_CPUS", "API_CPUS", "LB_CPUS"]
        .iter()
        .map(|k| env[*k].parse::<f64>().unwrap())
        .sum();
    assert!(total <= 1.5 + 1e-9);
}

/// The Citus Compose file runs the topology that deploy/native/cluster runs (and the tests
/// exercise): a coordinator and two workers with Citus preloaded, the workers registered
/// before any instance starts, the instances in the Citus layout on the coordinator.
#[test]
fn the_citus_compose_file_describes_the_cluster_the_native_launcher_runs() {
    let c = compose("deploy/docker-compose.citus.yml");
    let env = env_file();
    for node in ["coordinator", "worker1", "worker2"] {
        let svc = &c["services"][node];
        assert_eq!(svc["image"], env["CITUS_IMAGE"].as_str(), "{node}");
        let cmd = svc["command"].as_str().unwrap();
        assert!(
            cmd.contains("shared_preload_libraries=citus"),
            "{node}: {cmd}"
        );
        // Against the rules of a sane node, not against the file it was filled from:
        // PostgreSQL's shared buffers leave at least half of the node's memory limit to its
        // backends (an oversized setting would be OOM-killed at the first busy minute).
        let shared_mb: f64 = cmd
            .split_whitespace()
            .find_map(|w| w.strip_prefix("shared_buffers="))
            .and_then(|v| v.strip_suffix("MB"))
            .unwrap_or_else(|| panic!("{node}: shared_buffers in MB: {cmd}"))
            .parse()
            .unwrap();
        let limit_mb = memory_mb(
            svc["deploy"]["resources"]["limits"]["memory"]
                .as_str()
                .unwrap_or_else(|| panic!("{node}: a memory limit")),
        );
        assert!(
            shared_mb * 2.0 <= limit_mb,
            "{node}: shared_buffers {shared_mb} MB of {limit_mb} MB"
        );
        assert!(!cmd.contains("fsync=off"), "{node}: the cluster is durable");
        assert_eq!(svc["restart"], "unless-stopped");
        assert!(svc["healthcheck"]["test"].is_sequence());
    }
    assert_eq!(
        c["services"]["worker1"]["deploy"]["resources"]["limits"]["memory"],
        format!("{}MB", env["CITUS_WORKER_MEMORY_MB"]).as_str()
    );
    let init = &c["services"]["cluster-init"];
    let args: Vec<&str> = init["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for w in ["worker1", "worker2"] {
        assert!(args.contains(&format!("SELECT citus_add_node('{w}', 5432)").as_str()));
        assert_eq!(init["depends_on"][w]["condition"], "service_healthy");
    }
    for api in ["api1", "api2"] {
        let svc = &c["services"][api];
        assert_eq!(svc["environment"]["CREBITO_PG_LAYOUT"], "citus");
        assert!(
            svc["environment"]["DATABASE_URL"]
                .as_str()
                .unwrap()
                .contains("@coordinator:5432/")
        );
        assert_eq!(
            svc["depends_on"]["cluster-init"]["condition"],
            "service_completed_successfully"
        );
    }
    // The same nginx configuration as the contest stack, waiting for healthy instances.
    assert_eq!(
        c["services"]["nginx"]["volumes"][0],
        "./nginx.conf:/etc/nginx/nginx.conf:ro"
    );
    // The native launcher reads the same worker budget.
    let launcher = read("deploy/native/lib/cgroup.sh");
    assert!(launcher.contains("CITUS_WORKER_CPUS") && launcher.contains("CITUS_WORKER_MEMORY_MB"));
}

/// What a running crebito (on SQLite, a free port) answers on `/metrics`.
fn served_metrics() -> String {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let _server = common::KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_crebito"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--database-url")
            .arg(format!("sqlite://{}", dir.path().join("m.db").display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let answer = std::net::TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
            use std::io::{Read, Write};
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
            let mut text = String::new();
            s.read_to_string(&mut text)?;
            Ok(text)
        });
        match answer {
            Ok(text) if text.starts_with("HTTP/1.1 200") => return text,
            _ => assert!(
                std::time::Instant::now() < deadline,
                "crebito did not serve /metrics"
            ),
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The observability override: its own file, apart from the contest files, scraping
/// what exists (nginx's operations server, the exporters), and a provisioned Grafana
/// dashboard whose every query names a metric crebito or an exporter exports. (That the
/// exporters' metrics have series is checked live, in tests/stack.rs.)
#[test]
fn the_observability_profile_and_dashboard_are_consistent() {
    let obs = compose("deploy/docker-compose.observability.yml");
    let names: Vec<&str> = services(&obs).keys().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "prometheus",
            "postgres-exporter",
            "nginx-exporter",
            "grafana"
        ]
    );
    for file in COMPOSE_FILES {
        let base = compose(file);
        for name in &names {
            assert!(
                base["services"][name].is_null(),
                "{file}: {name} only in the override file"
            );
        }
        // What the override's services use from the base file exists there.
        assert!(base["volumes"]["pgsocket"].is_null() && base["volumes"].get("pgsocket").is_some());
    }
    let prom: Value = serde_yaml::from_str(&read("deploy/observability/prometheus.yml")).unwrap();
    let jobs: Vec<&str> = prom["scrape_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|j| j["job_name"].as_str().unwrap())
        .collect();
    assert_eq!(jobs, ["crebito", "postgres", "nginx"]);
    let nginx = read("deploy/nginx.conf");
    assert!(nginx.contains("listen 127.0.0.1:9998;") && nginx.contains("stub_status;"));
    for api in ["api1", "api2"] {
        assert!(nginx.contains(&format!("location = /metrics/{api}")));
        assert!(read("deploy/observability/prometheus.yml").contains(&format!("/metrics/{api}")));
    }
    let grafana = &obs["services"]["grafana"];
    let mounts: Vec<&str> = grafana["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for m in &mounts {
        let file = m.split(':').next().unwrap().trim_start_matches("./");
        assert!(
            repo().join("deploy").join(file).exists(),
            "{m} mounts an existing file"
        );
    }
    let datasources: Value =
        serde_yaml::from_str(&read("deploy/observability/grafana/datasources.yml")).unwrap();
    let uid = datasources["datasources"][0]["uid"].as_str().unwrap();
    let dash: serde_json::Value =
        serde_json::from_str(&read("deploy/observability/grafana/crebito.json")).unwrap();
    let crebito_metrics = served_metrics();
    let panels = dash["panels"].as_array().unwrap();
    assert!(panels.len() >= 8);
    for metric in common::dashboard_metrics(&dash) {
        if let Some(base) = metric.strip_prefix("crebito_") {
            let base = base.trim_end_matches("_bucket");
            assert!(
                crebito_metrics.contains(&format!("\n# TYPE crebito_{base} ")),
                "crebito's /metrics has crebito_{base}:\n{crebito_metrics}"
            );
        } else {
            assert!(
                ["pg_", "nginx_"].iter().any(|p| metric.starts_with(p)) || metric == "up",
                "{metric}: from an exporter of the profile"
            );
        }
    }
    for p in panels {
        assert_eq!(p["datasource"]["uid"], uid, "{}", p["title"]);
        assert!(!p["targets"].as_array().unwrap().is_empty());
    }
}

/// deploy/nginx.conf run for real, as the native launcher rewrites it (socket directory,
/// ports) and with a test's own rewrites, in front of whatever stand-ins for the instances
/// the test put in `run` (the socket directory). Stopped with SIGTERM when dropped, not
/// SIGKILL: the master then stops its workers too.
struct RealNginx {
    work: tempfile::TempDir,
    run: std::path::PathBuf,
    port: u16,
    child: Option<std::process::Child>,
}

impl RealNginx {
    /// The directories, before any stand-in binds a socket in `run`.
    fn prepare() -> RealNginx {
        use std::os::unix::fs::PermissionsExt;
        let work = tempfile::tempdir().unwrap();
        let run = work.path().join("run");
        std::fs::create_dir(&run).unwrap();
        // As root nginx's workers run as nobody: they must reach the sockets (as in
        // deploy/native/stack).
        for dir in [work.path(), run.as_path()] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        RealNginx {
            work,
            run,
            port: 0,
            child: None,
        }
    }

    /// `run/{api}.sock`, bound and open to nginx's workers.
    fn bind(&self, api: &str) -> std::os::unix::net::UnixListener {
        use std::os::unix::fs::PermissionsExt;
        let sock = self.run.join(format!("{api}.sock"));
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o777)).unwrap();
        listener
    }

    /// Starts nginx; each rewrite, like the launcher's, must find its text.
    fn start(mut self, rewrites: &[(&str, &str)]) -> RealNginx {
        self.port = common::free_port();
        let ops = common::free_port();
        let mut conf = read("deploy/nginx.conf");
        let moved = [
            ("/run/crebito", self.run.display().to_string()),
            ("listen 9999 ", format!("listen 127.0.0.1:{} ", self.port)),
            ("listen 127.0.0.1:9998;", format!("listen 127.0.0.1:{ops};")),
        ];
        let own = rewrites.iter().map(|(from, to)| (*from, to.to_string()));
        for (from, to) in moved.into_iter().chain(own) {
            assert!(
                conf.contains(from),
                "deploy/nginx.conf no longer has `{from}`"
            );
            conf = conf.replace(from, &to);
        }
        let path = self.work.path().join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let log = std::fs::File::create(self.work.path().join("nginx.log")).unwrap();
        self.child = Some(
            Command::new(common::nginx::binary())
                .arg("-p")
                .arg(self.work.path())
                .arg("-c")
                .arg(&path)
                .arg("-g")
                .arg(format!(
                    "daemon off; pid {}/nginx.pid;",
                    self.work.path().display()
                ))
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "nginx did not start:\n{}",
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        self
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.work.path().join("nginx.log")).unwrap_or_default()
    }

    /// Sends `request` (a whole HTTP/1.1 request, `Connection: close`) on a new connection.
    fn send(&self, request: &str) -> std::net::TcpStream {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        s.write_all(request.as_bytes()).unwrap();
        s
    }

    /// The whole answer to `request`: its status code, its Retry-After values, its body.
    fn ask(&self, request: &str) -> Answer {
        use std::io::Read;
        let mut text = String::new();
        self.send(request)
            .read_to_string(&mut text)
            .unwrap_or_else(|e| panic!("no answer ({e}):\n{}", self.log()));
        Answer::parse(text)
    }
}

impl Drop for RealNginx {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            // SAFETY: kill(2) on the nginx master this test started.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
}

/// A keyed POST, as a careful client sends it: the one whose outcome matters.
fn keyed_post() -> String {
    let body = r#"{"valor": 1, "tipo": "c", "descricao": "retry"}"#;
    format!(
        "POST /clientes/1/transacoes HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Idempotency-Key: 5b0e4d1e-retry-after\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

struct Answer {
    text: String,
    status: u16,
    retry_after: Vec<String>,
    body: String,
}

impl Answer {
    /// nginx's own refusal: `status`, exactly one `Retry-After: 1`, and `body`; `log` (nginx's)
    /// is shown when it is not.
    fn assert_nginx_own(&self, status: u16, body: &str, log: &str) {
        assert_eq!(self.status, status, "{}\n{log}", self.text);
        assert_eq!(
            self.retry_after,
            ["1"],
            "one Retry-After, of 1 s: {}",
            self.text
        );
        assert_eq!(self.body, body);
    }

    fn parse(text: String) -> Answer {
        let (head, body) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("a complete answer: {text:?}"));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.strip_prefix("HTTP/1.1 "))
            .and_then(|l| l.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("an HTTP/1.1 status line: {text}"));
        let retry_after = lines
            .filter_map(|l| l.split_once(':'))
            .filter(|(name, _)| name.eq_ignore_ascii_case("retry-after"))
            .map(|(_, value)| value.trim().to_string())
            .collect();
        let body = body.to_string();
        Answer {
            text,
            status,
            retry_after,
            body,
        }
    }
}

/// Reads a request's head from a stand-in instance's connection (its body, if any, is left).
fn read_head(conn: &mut std::os::unix::net::UnixStream) -> String {
    use std::io::Read;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Stand-ins for both instances that take every request, say so on the channel, and never
/// answer.
fn holding_instances(nginx: &RealNginx) -> std::sync::mpsc::Receiver<&'static str> {
    let (seen, requests) = std::sync::mpsc::channel();
    for api in ["api1", "api2"] {
        let listener = nginx.bind(api);
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for mut conn in listener.incoming().map_while(Result::ok) {
                read_head(&mut conn);
                let _ = seen.send(api);
                held.push(conn);
            }
        });
    }
    requests
}

/// nginx.conf's in-flight bound, run for real: past it nginx answers at once, from
/// `@overloaded`, 503 with `Retry-After: 1` (what crebito's own 503s and 504s say) and
/// "overloaded: not applied, retry". deploy/nginx.conf as the native launcher rewrites it
/// (socket directory, ports) and one rewrite more, the bound from 512 down to 1; behind it a
/// stand-in for both instances that takes a request and never answers, so one request holds
/// the only slot. (The bound under a real flood, with PostgreSQL frozen: tests/stack.rs.)
#[test]
fn past_its_in_flight_bound_nginx_refuses_at_once_with_retry_after() {
    let nginx = RealNginx::prepare();
    let requests = holding_instances(&nginx);
    let nginx = nginx.start(&[("limit_conn inflight 512;", "limit_conn inflight 1;")]);

    // One request in flight: it reached an instance, which holds it.
    let _holding = nginx.send(&get("/clientes/1/extrato"));
    requests
        .recv_timeout(std::time::Duration::from_secs(10))
        .unwrap_or_else(|_| {
            panic!(
                "the first request never reached an instance:\n{}",
                nginx.log()
            )
        });

    // The next one is refused at once, and told when to come back.
    let answer = nginx.ask(&get("/clientes/2/extrato"));
    answer.assert_nginx_own(503, "overloaded: not applied, retry\n", &nginx.log());
}

/// nginx's own 502, run for real: no instance to reach (api1's socket absent, api2's there
/// but refusing: bound, then closed), so nginx, having tried both, answers 502 from
/// `@upstream_failed` with `Retry-After: 1` and a body that says the outcome is unknown and a
/// keyed retry safe. For a GET and for a keyed POST with its body.
#[test]
fn nginx_own_502_says_outcome_unknown_with_retry_after() {
    let nginx = RealNginx::prepare();
    drop(nginx.bind("api2")); // the socket file stays; connecting to it is refused
    let nginx = nginx.start(&[]);
    for request in [get("/clientes/1/extrato"), keyed_post()] {
        nginx.ask(&request).assert_nginx_own(
            502,
            "upstream failed: outcome unknown, retry with the same Idempotency-Key\n",
            &nginx.log(),
        );
    }
}

/// nginx's own 504, run for real: proxy_read_timeout lowered from 60 s to 1 s, stand-ins for
/// both instances that take the request and never answer; the keyed POST reached one (so
/// its outcome is unknown indeed), and nginx answers 504 from `@upstream_timed_out` with
/// `Retry-After: 1`.
#[test]
fn nginx_own_504_says_outcome_unknown_with_retry_after() {
    let nginx = RealNginx::prepare();
    let requests = holding_instances(&nginx);
    let nginx = nginx.start(&[("proxy_read_timeout 60s;", "proxy_read_timeout 1s;")]);
    let answer = nginx.ask(&keyed_post());
    assert!(
        requests.try_recv().is_ok(),
        "the POST reached an instance:\n{}",
        nginx.log()
    );
    answer.assert_nginx_own(
        504,
        "upstream timed out: outcome unknown, retry with the same Idempotency-Key\n",
        &nginx.log(),
    );
}

/// What an instance answers passes through nginx as it was written: its 503 and 504 (crebito's
/// own bodies, one `Retry-After: 1`) and a 502 (which crebito never sends: no Retry-After
/// added either) are not replaced by nginx's `@overloaded`, `@upstream_failed` or
/// `@upstream_timed_out`, whose error_page only answers for nginx itself
/// (proxy_intercept_errors off). Stand-ins for both instances answer the status the path
/// names.
#[test]
fn an_instance_own_502_503_and_504_pass_through_nginx_untouched() {
    let nginx = RealNginx::prepare();
    for api in ["api1", "api2"] {
        let listener = nginx.bind(api);
        std::thread::spawn(move || {
            use std::io::Write;
            for mut conn in listener.incoming().map_while(Result::ok) {
                let head = read_head(&mut conn);
                let status = head.split_whitespace().nth(1).unwrap_or_default();
                let (line, retry_after, body) = match status {
                    "/502" => ("502 Bad Gateway", "", "an instance's own 502\n"),
                    "/503" => (
                        "503 Service Unavailable",
                        "Retry-After: 1\r\n",
                        "store unavailable: not applied, retry",
                    ),
                    _ => (
                        "504 Gateway Timeout",
                        "Retry-After: 1\r\n",
                        "outcome unknown: retry with the same Idempotency-Key to apply it at most once",
                    ),
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {line}\r\nContent-Type: text/plain; charset=utf-8\r\n{retry_after}\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
    }
    let nginx = nginx.start(&[]);
    for (status, retry_after, body) in [
        (502, &[][..], "an instance's own 502\n"),
        (503, &["1"][..], "store unavailable: not applied, retry"),
        (
            504,
            &["1"][..],
            "outcome unknown: retry with the same Idempotency-Key to apply it at most once",
        ),
    ] {
        let answer = nginx.ask(&get(&format!("/{status}")));
        assert_eq!(answer.status, status, "{}\n{}", answer.text, nginx.log());
        assert_eq!(answer.retry_after, retry_after, "{}", answer.text);
        assert_eq!(answer.body, body, "the instance's own body");
    }
}

/// No tracked file (reports included) names an absolute path of the machine it was made on:
/// the clone's own location, the folder around it (the development machines' work root, where
/// reports are made), the home directory, a test's temporary directory. A clone elsewhere must
/// read the same.
#[test]
fn no_tracked_file_names_a_path_of_this_machine() {
    let root = repo().canonicalize().unwrap();
    let mut needles = vec![
        format!("{}/", root.display()),
        format!("{}/", root.parent().unwrap().display()),
        "/tmp/.tmp".to_string(),
    ];
    if let Some(home) = std::env::var_os("HOME").filter(|h| h.len() > 1) {
        needles.push(format!("{}/", Path::new(&home).display()));
    }
    needles.retain(|n| n != "/" && n != "/tmp/");
    let files = common::succeed(
        Command::new("git")
            .args(["ls-files", "-z"])
            .current_dir(&root),
    );
    let mut found = Vec::new();
    // This file names the needles themselves.
    for file in files
        .split('\0')
        .filter(|f| !f.is_empty() && *f != "tests/deploy.rs")
    {
        let Ok(text) = std::fs::read_to_string(root.join(file)) else {
            continue; // binary (images) or removed in the work tree
        };
        for needle in &needles {
            if let Some(at) = text.find(needle.as_str()) {
                let line = text[..at].lines().count().max(1);
                found.push(format!("{file}:{line}: {needle}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "machine paths in tracked files:\n{}",
        found.join("\n")
    );
}

/// The Citus source the suite builds is the pinned release: anything else is refused, with a
/// message saying so (never built).
#[test]
fn a_citus_tarball_with_other_content_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("citus-13.2.2.tar.gz");
    let mut gz = Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::fs::File::create(&fake).unwrap())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut gz.stdin.take().unwrap(), b"not citus").unwrap();
    assert!(gz.wait().unwrap().success());
    let out = Command::new(repo().join("deploy/native/citus"))
        .arg("fetch")
        .env("CITUS_TARBALL", &fake)
        .env("CITUS_CACHE", dir.path().join("cache"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("is not Citus 13.2.2's release"), "{stderr}");
    assert!(
        !dir.path().join("cache").exists(),
        "nothing built or cached"
    );
}

/// The LazyFS source the fault suite builds is the pinned release: anything else is refused,
/// saying so, and nothing is built.
#[test]
fn a_lazyfs_tarball_with_other_content_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("lazyfs-0.3.0");
    std::fs::create_dir_all(tree.join("lazyfs")).unwrap();
    std::fs::write(tree.join("lazyfs/CMakeLists.txt"), "not lazyfs\n").unwrap();
    let fake = dir.path().join("lazyfs-0.3.0.tar.gz");
    common::succeed(
        Command::new("tar")
            .arg("-czf")
            .arg(&fake)
            .arg("-C")
            .arg(dir.path())
            .arg("lazyfs-0.3.0"),
    );
    let out = Command::new(repo().join("deploy/native/lazyfs"))
        .arg("fetch")
        .env("LAZYFS_TARBALL", &fake)
        .env("LAZYFS_CACHE", dir.path().join("cache"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("is not LazyFS 0.3.0's release"), "{stderr}");
    assert!(
        !dir.path().join("cache").exists(),
        "nothing built or cached"
    );
}

/// One variable, CREBITO_PG_PROFILE, decides durability in the Compose files as in the native
/// stack: the database's command (a shell that picks the profile's flags, run here for real
/// with a stand-in for the image's entrypoint) and the instances' profile follow it. The
/// default is durable (PostgreSQL's own fsync, synchronous commit and full-page writes); the
/// contest opt-in turns all three off; anything else refuses to start. Each equals what
/// `scripts/submission` (`--contest`) writes as literal flags.
#[test]
fn compose_durability_follows_the_one_profile_variable_and_matches_the_submission() {
    let durability = ["fsync", "synchronous_commit", "full_page_writes"];
    for (profile, flags) in [("durable", &[][..]), ("contest", &["--contest"][..])] {
        let mut env = env_file();
        env.insert("CREBITO_PG_PROFILE".into(), profile.into());
        let (_tmp, folder) = common::submission_with(flags);
        let submitted: Value = serde_yaml::from_str(
            &std::fs::read_to_string(folder.join("docker-compose.yml")).unwrap(),
        )
        .unwrap();
        let submitted = common::pg_settings(
            &common::postgres_args(&submitted["services"]["db"]["command"]).unwrap(),
        );
        for file in COMPOSE_FILES {
            let c = compose_with(file, &env);
            let args = common::postgres_args(&c["services"]["db"]["command"])
                .unwrap_or_else(|e| panic!("{file} ({profile}): the db refused to start: {e}"));
            let settings = common::pg_settings(&args);
            assert_eq!(settings["listen_addresses"], "", "{file}: Unix socket only");
            assert_eq!(settings["shared_buffers"], "96MB", "{file}: PG_FLAGS");
            for name in durability {
                match profile {
                    // Unset: PostgreSQL's defaults, all on.
                    "durable" => assert!(!settings.contains_key(name), "{file}: {name} set"),
                    _ => assert_eq!(settings[name], "off", "{file} ({profile}): {name}"),
                }
            }
            assert_eq!(settings, submitted, "{file} ({profile}) = the submission's");
            for api in ["api1", "api2"] {
                assert_eq!(
                    c["services"][api]["environment"]["CREBITO_PG_PROFILE"], profile,
                    "{file}: {api} follows the same variable"
                );
            }
        }
    }
    let mut env = env_file();
    env.insert("CREBITO_PG_PROFILE".into(), "fast".into());
    for file in COMPOSE_FILES {
        let err = common::postgres_args(&compose_with(file, &env)["services"]["db"]["command"])
            .expect_err("an unknown profile must not start");
        assert!(err.contains("must be durable or contest"), "{file}: {err}");
    }
}
