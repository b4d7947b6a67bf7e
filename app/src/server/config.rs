//! One typed set of settings, from command-line flags with environment fallbacks (and a `.env` file,
//! loaded before parsing). `console-sessions --help` is the reference.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The command line of the `console-sessions` binary.
#[derive(Debug, Parser)]
#[command(
    name = "console-sessions",
    version,
    about = "Server-side sessions you can see: review devices, sign them out, administer every session."
)]
pub struct Cli {
    /// Settings shared by every subcommand.
    #[command(flatten)]
    pub settings: Settings,
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Apply migrations, then serve the web application (the default).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Every setting of the application.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Database to use: sqlite://path/to/file.db (created when missing) or postgres://user:pass@host/db.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://data/console-sessions.db",
        global = true,
        hide_env_values = true
    )]
    pub database_url: String,

    /// Address to listen on (cargo-leptos' own variable).
    #[arg(
        long = "addr",
        env = "LEPTOS_SITE_ADDR",
        default_value = "127.0.0.1:3000",
        global = true
    )]
    pub addr: SocketAddr,

    /// Folder holding the built site: the `pkg/` folder with the wasm, JS and CSS, and public files.
    #[arg(
        long,
        env = "LEPTOS_SITE_ROOT",
        default_value = "target/site",
        global = true
    )]
    pub site_root: String,

    /// Log format.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
}

impl Settings {
    /// Settings for tests and embedding: defaults, with this database and an ephemeral port.
    pub fn for_tests(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            site_root: "target/site".to_owned(),
            log_format: LogFormat::Text,
        }
    }
}
