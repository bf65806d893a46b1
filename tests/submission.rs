//! The contest submission, as `scripts/submission` writes it, against the contest's rules
//! (`docs/src/challenge.md`, "Delivering: the rules the submission follows"): a folder with a `docker-compose.yml` that needs
//! nothing else (no `.env`, no build, no file outside the folder), every service limited and
//! the sums within 1.5 CPU and 550 MB, the load balancer on port 9999 distributing round robin
//! over two API instances and one database, public pinned images, a README. Checked on the
//! generated folder, against the rules, never against the files it was made from. That the
//! native stack runs the same configuration is checked on a running stack (tests/stack.rs).

mod common;

use std::path::Path;
use std::process::Command;

use common::nginx::{self, BALANCING_METHODS};
use serde_yaml::Value;

fn strings(v: &Value) -> Vec<&str> {
    v.as_sequence()
        .map(|s| s.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// `repo/name:tag` → (name without registry or tag, tag).
fn image_parts(image: &str) -> (&str, &str) {
    let (name, tag) = image
        .rsplit_once(':')
        .filter(|(_, t)| !t.contains('/'))
        .unwrap_or_else(|| panic!("{image}: no tag (it would pull `latest`)"));
    (name.rsplit('/').next().unwrap(), tag)
}

/// Both folders the script writes follow the rules: the default and the contest opt-in.
#[test]
fn the_submission_folder_follows_the_contest_rules() {
    for flags in [&[][..], &["--contest"][..]] {
        let (_tmp, dir) = common::submission_with(flags);
        assert_follows_the_contest_rules(&dir);
    }
}

/// The default submission keeps the money: PostgreSQL with its own durability (none of
/// fsync, synchronous commit, full-page writes turned off), the instances in the durable
/// profile, and a README that says so. `--contest` is the explicit opt-in: all three off, the
/// contest profile, and a README that says plainly what it gives up.
#[test]
fn the_submission_is_durable_by_default_and_contest_only_when_asked() {
    let durability = ["fsync", "synchronous_commit", "full_page_writes"];
    for (flags, profile) in [(&[][..], "durable"), (&["--contest"][..], "contest")] {
        let (_tmp, dir) = common::submission_with(flags);
        let compose: Value =
            serde_yaml::from_str(&std::fs::read_to_string(dir.join("docker-compose.yml")).unwrap())
                .unwrap();
        let settings = common::pg_settings(
            &common::postgres_args(&compose["services"]["db"]["command"]).unwrap(),
        );
        let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
        for api in ["api1", "api2"] {
            // `api2` merges `api1`'s environment: resolve the anchors first.
            let mut c = compose.clone();
            c.apply_merge().unwrap();
            assert_eq!(
                c["services"][api]["environment"]["CREBITO_PG_PROFILE"], profile,
                "{api}"
            );
        }
        match profile {
            "durable" => {
                for name in durability {
                    assert!(!settings.contains_key(name), "{name} is left on");
                }
                assert!(readme.contains("the durable profile"), "{readme}");
                assert!(readme.contains("loses nothing that was answered 200"));
            }
            _ => {
                for name in durability {
                    assert_eq!(settings[name], "off", "{name}");
                }
                assert!(readme.contains("the contest profile (`scripts/submission --contest`)"));
                assert!(
                    readme.contains("a power cut can lose every transaction answered 200"),
                    "the README says what it gives up: {readme}"
                );
            }
        }
    }
}

fn assert_follows_the_contest_rules(dir: &Path) {
    assert_eq!(
        dir.parent().unwrap().file_name().unwrap(),
        "participantes",
        "the contest's unit of delivery"
    );
    let text = std::fs::read_to_string(dir.join("docker-compose.yml")).unwrap();
    assert!(
        !text.contains('$'),
        "literal values: the folder has no .env to interpolate from"
    );
    assert!(!dir.join(".env").exists());
    let mut compose: Value = serde_yaml::from_str(&text).expect("valid YAML");
    compose.apply_merge().unwrap();
    for key in compose.as_mapping().unwrap().keys() {
        let key = key.as_str().unwrap();
        assert!(
            ["name", "services", "volumes", "networks"].contains(&key),
            "top-level {key}"
        );
    }

    let services = compose["services"].as_mapping().unwrap();
    let (mut cpus, mut memory) = (0.0, 0.0);
    let (mut dbs, mut apis, mut lbs) = (Vec::new(), Vec::new(), Vec::new());
    for (name, svc) in services {
        let name = name.as_str().unwrap();
        assert!(
            svc["profiles"].is_null(),
            "{name}: nothing outside the envelope, even behind a profile"
        );
        assert!(
            svc["build"].is_null(),
            "{name}: the organizers pull, never build"
        );
        let image = svc["image"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: an image"));
        let (base, tag) = image_parts(image);
        assert!(
            tag != "latest" && tag.starts_with(|c: char| c.is_ascii_digit()),
            "{name}: {image} is pinned to a version"
        );
        assert!(
            !image.ends_with(":local") && (base != "crebito" || image.contains('/')),
            "{name}: {image} is a published image, not a local build"
        );
        let limits = &svc["deploy"]["resources"]["limits"];
        let cpu: f64 = limits["cpus"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: deploy.resources.limits.cpus"))
            .parse()
            .unwrap();
        let mem: f64 = limits["memory"]
            .as_str()
            .and_then(|m| m.strip_suffix("MB"))
            .unwrap_or_else(|| panic!("{name}: deploy.resources.limits.memory in MB"))
            .parse()
            .unwrap();
        assert!(cpu > 0.0 && mem > 0.0, "{name}");
        cpus += cpu;
        memory += mem;
        for volume in strings(&svc["volumes"]) {
            assert!(mount_is_allowed(volume, dir), "{name} mounts {volume}");
        }
        match base {
            "postgres" => dbs.push(name),
            "crebito" => apis.push(name),
            "nginx" => lbs.push(name),
            other => panic!("{name}: unexpected image {other}"),
        }
    }
    assert!(cpus <= 1.5 + 1e-9, "{cpus} CPUs > 1.5");
    assert!(memory <= 550.0, "{memory} MB > 550");
    assert_eq!(
        (dbs.len(), apis.len(), lbs.len()),
        (1, 2, 1),
        "one database, two instances, one load balancer"
    );

    // The instances: this version's published image.
    for api in &apis {
        let (_, tag) = image_parts(services[*api]["image"].as_str().unwrap());
        assert_eq!(
            tag,
            env!("CARGO_PKG_VERSION"),
            "{api} pulls this version's image"
        );
    }

    // The database: the PostgreSQL major version every test and benchmark here ran.
    let (_, tag) = image_parts(services[dbs[0]]["image"].as_str().unwrap());
    let major: u32 = tag.split(['.', '-']).next().unwrap().parse().unwrap();
    assert_eq!(
        major,
        common::local_postgres_major(),
        "the deployed PostgreSQL is the measured one"
    );

    // The load balancer: port 9999, round robin over exactly the two instances' sockets.
    let lb = &services[lbs[0]];
    assert!(
        lb["network_mode"] == "host" || strings(&lb["ports"]).contains(&"9999:9999"),
        "port 9999 reachable"
    );
    let conf_file = strings(&lb["volumes"])
        .into_iter()
        .find(|v| v.ends_with(":/etc/nginx/nginx.conf:ro"))
        .expect("nginx.conf mounted")
        .split(':')
        .next()
        .unwrap();
    let conf = std::fs::read_to_string(dir.join(conf_file)).unwrap();
    let all = nginx::directives(&conf);
    let public: Vec<_> = all
        .iter()
        .filter(|d| d.name() == "listen" && d.words[1].trim_start_matches("0.0.0.0:") == "9999")
        .collect();
    assert_eq!(public.len(), 1, "one server listens on 9999");
    let upstream = nginx::upstream(&all, "crebito");
    for d in &upstream {
        assert!(
            !BALANCING_METHODS.contains(&d.name()),
            "round robin, as the rules ask: {:?}",
            d.words
        );
    }
    let servers: Vec<&str> = upstream
        .iter()
        .filter(|d| d.name() == "server")
        .map(|d| d.words[1].as_str())
        .collect();
    let sockets: Vec<String> = apis
        .iter()
        .map(|api| {
            let cmd = strings(&services[*api]["command"]);
            let at = cmd.iter().position(|a| *a == "--listen").expect("--listen");
            cmd[at + 1].to_string()
        })
        .collect();
    assert_eq!(servers, sockets, "nginx balances over the two instances");

    // The README: name, stack, a public source link.
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(readme.starts_with("# crebito\n"), "{readme}");
    assert!(readme.contains("**Stack**") && readme.contains("PostgreSQL"));
    assert!(
        readme.contains("**Source**: https://"),
        "a public source link"
    );
}

/// nginx itself accepts the folder's configuration (socket paths moved to a temporary
/// directory, the port to loopback: the only rewrites the native launcher makes as well).
#[test]
fn nginx_accepts_the_submitted_config() {
    let (_tmp, dir) = common::submission();
    let nginx = nginx::binary();
    let work = tempfile::tempdir().unwrap();
    let conf = std::fs::read_to_string(dir.join("nginx.conf"))
        .unwrap()
        .replace(
            "/run/crebito",
            &work.path().join("run").display().to_string(),
        )
        .replace("listen 9999 ", "listen 127.0.0.1:9999 ");
    let path = work.path().join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    common::succeed(
        Command::new(nginx)
            .args(["-t", "-p"])
            .arg(work.path())
            .arg("-c")
            .arg(&path)
            .arg("-g")
            .arg(format!("pid {}/nginx.pid;", work.path().display())),
    );
}

/// What a submitted service may mount: a named volume, or a file of the folder itself
/// (`./file:…`) — nothing from outside it (an absolute path, `..`, `~`), which the organizers'
/// machine would not have.
fn mount_is_allowed(volume: &str, folder: &std::path::Path) -> bool {
    let source = volume.split(':').next().unwrap_or_default();
    match source.strip_prefix("./") {
        Some(file) => {
            !file.split('/').any(|part| part == ".." || part.is_empty())
                && folder.join(file).is_file()
        }
        None => {
            !source.is_empty()
                && source
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        }
    }
}

#[test]
fn a_mount_from_outside_the_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nginx.conf"), "events {}").unwrap();
    assert!(mount_is_allowed(
        "./nginx.conf:/etc/nginx/nginx.conf:ro",
        dir.path()
    ));
    assert!(mount_is_allowed("pgsocket:/var/run/postgresql", dir.path()));
    for outside in [
        "../deploy/nginx.conf:/etc/nginx/nginx.conf:ro",
        "./../nginx.conf:/etc/nginx/nginx.conf",
        "/etc/nginx/nginx.conf:/etc/nginx/nginx.conf",
        "~/nginx.conf:/etc/nginx/nginx.conf",
        "./missing.conf:/etc/nginx/nginx.conf",
        ".:/data",
    ] {
        assert!(!mount_is_allowed(outside, dir.path()), "{outside}");
    }
}
