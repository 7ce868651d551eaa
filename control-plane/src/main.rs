//! `tenantd`: the server. See the README for a tour.

use std::process::ExitCode;

use clap::Parser;
use control_plane::config::{Config, NodeConfig, ServerConfig};
use control_plane::startup::{Application, Overrides, shutdown_signal};

/// The tenantd server: one shared sign-in for every company, each in its own database.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(flatten)]
    server: ServerConfig,
    #[command(
        flatten,
        next_help_heading = "Nodes (several tenantd sharing one directory)"
    )]
    node: NodeConfig,
    /// Create a demo company with an admin (if missing) and print how to sign in.
    #[arg(long)]
    demo: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    control_plane::telemetry::init();
    control_plane::startup::private_files();
    let mut cli = Cli::parse();
    // The demo is for trying things out: its invitation and reset links are logged.
    cli.server.dev |= cli.demo;
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tenantd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let app =
        Application::build_node(cli.config, cli.server, &cli.node, Overrides::default()).await?;
    control_plane::service::demo::greet(&app.state, app.port, app.internal_port, cli.demo).await?;
    app.run_until(shutdown_signal()).await
}
