//! One handle on whatever the native launchers start (deploy/native/stack, and
//! deploy/native/cluster, which is the stack in its Citus layout): up on a free block of
//! ports in a directory of its own, every command run with the same PORT and STACK_DIR,
//! the facts read from the launcher's own contract (`env`: its stack.env; `status --json`)
//! rather than re-derived, and `down` when the handle is dropped, however the test ends.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

pub struct Launched {
    script: &'static str,
    pub port: u16,
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
    up: bool,
}

pub fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl Launched {
    /// `deploy/native/stack up ARGS` with ENV added.
    pub fn stack(args: &[&str], env: &[(&str, &str)]) -> Launched {
        Launched::up("stack", args, env)
    }

    /// `deploy/native/cluster up` (two workers) with ENV added.
    pub fn cluster(env: &[(&str, &str)]) -> Launched {
        Launched::up("cluster", &[], &[&[("CITUS_WORKERS", "2")], env].concat())
    }

    fn up(script: &'static str, args: &[&str], env: &[(&str, &str)]) -> Launched {
        let port = super::free_port_block();
        let launched = Launched {
            script,
            port,
            dir: std::env::temp_dir().join(format!("crebito-{script}-test-{port}")),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            up: true,
        };
        let out = launched.run(&[&["up"], args].concat());
        assert!(out.status.success(), "{script} up failed:\n{}", text(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).lines().last(),
            Some(launched.fact("STACK_URL").as_str()),
            "`up` prints the URL it serves"
        );
        launched
    }

    /// The launcher with this stack's PORT, STACK_DIR and environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(super::repo().join("deploy/native").join(self.script));
        cmd.args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("PORT", self.port.to_string())
            .env("STACK_DIR", &self.dir)
            .env("CREBITO_BIN", env!("CARGO_BIN_EXE_crebito"));
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("the launcher runs")
    }

    /// Runs a launcher command that must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        super::succeed(&mut self.command(args))
    }

    pub fn psql(&self, sql: &str) -> String {
        self.ok(&[
            "psql",
            "-X",
            "-q",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
    }

    /// One fact of stack.env (STACK_URL, STACK_OPS_URL, STACK_PG_PORT_W2, …).
    pub fn fact(&self, key: &str) -> String {
        self.ok(&["env", key])
    }

    pub fn url(&self) -> String {
        self.fact("STACK_URL")
    }

    /// `status --json`: every service with its pid, limits, use, OOM kills and restarts.
    pub fn status(&self) -> Value {
        serde_json::from_str(&self.ok(&["status", "--json"])).expect("status --json is JSON")
    }

    /// One service of `status --json`.
    pub fn service(&self, name: &str) -> Value {
        self.status()["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no service {name}"))
            .clone()
    }

    pub fn pid(&self, name: &str) -> u32 {
        self.service(name)["pid"].as_u64().expect("a pid") as u32
    }

    pub fn down(&mut self) -> Output {
        self.up = false;
        self.run(&["down"])
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        if self.up {
            let _ = self.down();
        }
    }
}
