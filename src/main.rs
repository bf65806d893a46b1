//! The `crebito` binary: `serve` (default), `migrate` and `healthcheck`.

use std::process::ExitCode;

use clap::Parser;
use crebito::configuration::{Cli, Command};
use crebito::startup::{Application, Store};
use crebito::{shutdown, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or_else(|| {
        Cli::parse_from(["crebito", "serve"])
            .command
            .expect("serve parses")
    });
    telemetry::init_tracing();

    let threads = match &command {
        Command::Serve(args) => args.threads,
        Command::Migrate(_) => Some(1),
        Command::Healthcheck(args) => {
            return match crebito::healthcheck::check(&args.listen) {
                Ok(()) => ExitCode::SUCCESS,
                Err(why) => {
                    eprintln!("crebito: unhealthy: {why}");
                    ExitCode::FAILURE
                }
            };
        }
    };
    // One thread: a current-thread runtime, without the work-stealing machinery (what the
    // contest stack runs, each instance on a fraction of a core).
    let mut rt = match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    rt.enable_all();
    let rt = match rt.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("crebito: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };

    rt.block_on(async move {
        match command {
            Command::Serve(args) => {
                let app = match Application::build(args).await {
                    Ok(app) => app,
                    Err(e) => {
                        tracing::error!("{e}");
                        return ExitCode::FAILURE;
                    }
                };
                match app.run_until(shutdown::signal()).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        tracing::error!("server failed: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
            Command::Migrate(args) => match Store::open(&args).await {
                Ok(store) => {
                    tracing::info!(store = %store.describe(), database = %args.database_url.redacted(), "schema is up to date");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    tracing::error!("{e}");
                    ExitCode::FAILURE
                }
            },
            Command::Healthcheck(_) => unreachable!("answered before the runtime starts"),
        }
    })
}
