//! Command line of sipmask: parses arguments and calls into the library.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sipmask::config::Config;

#[derive(Parser)]
#[command(
    name = "sipmask",
    version,
    about = "SIP B2BUA that masks phone numbers behind virtual numbers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve SIP (UDP and TCP) on the config's addresses.
    Serve {
        /// Config file (default: the embedded config/sipmask.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory (overrides storage.data_dir).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Database shared by several nodes, postgresql://user@host:port/db
        /// (overrides SIPMASK_DATABASE_URL and storage.url).
        #[arg(long)]
        database_url: Option<String>,
        /// This node's name among the nodes of one database (overrides
        /// storage.node).
        #[arg(long)]
        node: Option<String>,
        /// Listen address, repeatable (overrides sip.listen).
        #[arg(long)]
        listen: Vec<String>,
        /// Where calls to real numbers go: host:port[;transport=tcp] (overrides sip.trunk).
        #[arg(long)]
        trunk: Option<String>,
        /// HTTP API address (overrides api.listen; "" turns the API off).
        #[arg(long)]
        api_listen: Option<String>,
        /// A network (CIDR) whose requests are taken, repeatable (adds to sip.trusted).
        #[arg(long = "trust")]
        trust: Vec<String>,
    },
    /// Manage API tenants.
    Tenants {
        #[command(subcommand)]
        command: TenantsCommand,
    },
    /// Call records of the operator's (command-line) bindings.
    Calls {
        #[command(flatten)]
        common: Common,
        /// Only calls of this binding.
        #[arg(long)]
        binding: Option<i64>,
        /// Most records, oldest first.
        #[arg(long, default_value_t = 1000)]
        limit: u32,
    },
    /// Manage tenants' API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage app accounts (phones register and call with them).
    Accounts {
        #[command(subcommand)]
        command: AccountsCommand,
    },
    /// Manage bindings in the data directory.
    Bindings {
        #[command(subcommand)]
        command: BindingsCommand,
    },
    /// Validate a config file and report every problem.
    CheckConfig {
        /// The file.
        file: PathBuf,
    },
}

#[derive(clap::Args)]
struct Common {
    /// Config file (default: embedded).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory (overrides storage.data_dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Database URL, postgresql://user@host:port/db (overrides
    /// SIPMASK_DATABASE_URL and storage.url).
    #[arg(long)]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum TenantsCommand {
    /// Create a tenant and print its first API key (shown once).
    Add {
        #[command(flatten)]
        common: Common,
        /// Tenant name: letters, digits, '.', '_', '-'.
        name: String,
    },
    /// List tenants and their key ids.
    List {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Issue another key for a tenant and print it (shown once).
    Add {
        #[command(flatten)]
        common: Common,
        /// Tenant name.
        tenant: String,
    },
    /// Revoke a tenant's key by id (see `tenants list`); effective at once.
    Revoke {
        #[command(flatten)]
        common: Common,
        /// Tenant name.
        tenant: String,
        /// Key id, `key_...`.
        key_id: String,
    },
}

#[derive(clap::Args)]
struct Password {
    /// The password (8 to 128 characters). Visible to other users of the
    /// machine in the process list: prefer --password-stdin.
    #[arg(long, required_unless_present = "password_stdin")]
    password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
}

impl Password {
    fn read(self) -> anyhow::Result<String> {
        match self.password {
            Some(p) => Ok(p),
            None => {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                Ok(line.trim_end_matches(['\r', '\n']).to_string())
            }
        }
    }
}

#[derive(Subcommand)]
enum AccountsCommand {
    /// Create an account; its phones register as sip:NAME@<this server>.
    Add {
        #[command(flatten)]
        common: Common,
        /// The tenant it belongs to (default: the operator's own).
        #[arg(long)]
        tenant: Option<String>,
        /// Account name: a letter, then letters, digits, '.', '_', '-'.
        name: String,
        #[command(flatten)]
        password: Password,
    },
    /// List accounts with their tenant and registered contacts.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Remove an account; its registrations go with it.
    Remove {
        #[command(flatten)]
        common: Common,
        /// Account name.
        name: String,
    },
    /// Set an account's password.
    Passwd {
        #[command(flatten)]
        common: Common,
        /// Account name.
        name: String,
        #[command(flatten)]
        password: Password,
    },
}

#[derive(Subcommand)]
enum BindingsCommand {
    /// Import a CSV file with header caller,virtual,callee (all or nothing).
    Import {
        #[command(flatten)]
        common: Common,
        /// The CSV file.
        file: PathBuf,
    },
    /// List every binding with its counters.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Add one binding.
    Add {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        args: Box<sipmask::cli::AddArgs>,
    },
    /// Remove a binding by id.
    Remove {
        #[command(flatten)]
        common: Common,
        /// Binding id (see `list`).
        id: i64,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each said once: our errors already name
/// their cause in their own message (`file: cannot read: No such file`).
fn chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    Ok(match path {
        Some(p) => Config::read(p)?,
        None => Config::embedded()?,
    })
}

/// Where the data lives: the flags over `SIPMASK_DATABASE_URL` over the
/// config.
fn location(cfg: &Config, common: &Common) -> sipmask::store::Location {
    let mut at = cfg.storage.location();
    if let Some(d) = &common.data_dir {
        at.dir = d.clone();
    }
    at.url = database_url(&cfg.storage.url, common.database_url.clone());
    at
}

/// Where the data went, for a message: the data dir, or the database
/// (without its password).
fn described(at: &sipmask::store::Location) -> String {
    if at.url.is_empty() {
        return at.dir.display().to_string();
    }
    match at.url.split_once('@') {
        Some((_, host)) => format!("the database at {host}"),
        None => "the database".into(),
    }
}

/// The database URL: the flag, else the environment, else the config.
fn database_url(configured: &str, flag: Option<String>) -> String {
    flag.or_else(|| std::env::var("SIPMASK_DATABASE_URL").ok())
        .unwrap_or_else(|| configured.to_string())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            config,
            data_dir: dir,
            database_url: url,
            node,
            listen,
            trunk,
            api_listen,
            trust,
        } => {
            let mut cfg = load_config(config.as_ref())?;
            if let Some(d) = dir {
                cfg.storage.data_dir = d;
            }
            cfg.storage.url = database_url(&cfg.storage.url, url);
            if let Some(n) = node {
                cfg.storage.node = n;
            }
            if !listen.is_empty() {
                cfg.sip.listen = listen;
            }
            if let Some(t) = trunk {
                cfg.sip.trunk = t;
            }
            if let Some(a) = api_listen {
                cfg.api.listen = a;
            }
            cfg.sip.trusted.extend(trust);
            let problems = cfg.validate("");
            if !problems.is_empty() {
                let list: Vec<String> = problems
                    .iter()
                    .map(|p| format!("command line: {p}"))
                    .collect();
                anyhow::bail!("{}", list.join("\n"));
            }
            let logs = init_logs(&cfg.log.level);
            let served = serve(cfg);
            if let Some(l) = logs {
                l.flush();
            }
            served
        }
        Command::Bindings { command } => bindings(command),
        Command::Tenants { command } => tenants(command),
        Command::Keys { command } => keys(command),
        Command::Accounts { command } => accounts(command),
        Command::Calls {
            common,
            binding,
            limit,
        } => {
            let cfg = load_config(common.config.as_ref())?;
            sipmask::cli::list_calls(
                location(&cfg, &common),
                binding,
                limit,
                &mut std::io::stdout().lock(),
            )?;
            Ok(())
        }
        Command::CheckConfig { file } => {
            Config::read(&file)?;
            println!("{}: ok", file.display());
            Ok(())
        }
    }
}

fn tenants(command: TenantsCommand) -> anyhow::Result<()> {
    match command {
        TenantsCommand::Add { common, name } => {
            let cfg = load_config(common.config.as_ref())?;
            let key = sipmask::cli::add_tenant(location(&cfg, &common), &name)?;
            println!("{key}");
        }
        TenantsCommand::List { common } => {
            let cfg = load_config(common.config.as_ref())?;
            let mut out = std::io::stdout().lock();
            for (name, keys) in sipmask::cli::list_tenants(location(&cfg, &common))? {
                let ids: Vec<&str> = keys.iter().map(|(id, _)| id.as_str()).collect();
                writeln!(out, "{name}\t{}", ids.join(","))?;
            }
        }
    }
    Ok(())
}

fn accounts(command: AccountsCommand) -> anyhow::Result<()> {
    match command {
        AccountsCommand::Add {
            common,
            tenant,
            name,
            password,
        } => {
            let cfg = load_config(common.config.as_ref())?;
            let dir = location(&cfg, &common);
            let pw = password.read()?;
            sipmask::cli::add_account(&dir, &cfg.registrar.realm, tenant.as_deref(), &name, &pw)?;
            println!("added account {name}");
        }
        AccountsCommand::List { common } => {
            let cfg = load_config(common.config.as_ref())?;
            let mut out = std::io::stdout().lock();
            for (name, tenant, contacts) in sipmask::cli::list_accounts(location(&cfg, &common))? {
                writeln!(out, "{name}\t{tenant}\t{contacts} registered")?;
            }
        }
        AccountsCommand::Remove { common, name } => {
            let cfg = load_config(common.config.as_ref())?;
            sipmask::cli::remove_account(location(&cfg, &common), &name)?;
            println!("removed account {name}");
        }
        AccountsCommand::Passwd {
            common,
            name,
            password,
        } => {
            let cfg = load_config(common.config.as_ref())?;
            let dir = location(&cfg, &common);
            let pw = password.read()?;
            sipmask::cli::set_password(&dir, &cfg.registrar.realm, &name, &pw)?;
            println!("password of {name} set");
        }
    }
    Ok(())
}

fn keys(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Add { common, tenant } => {
            let cfg = load_config(common.config.as_ref())?;
            let (id, key) = sipmask::cli::add_key(location(&cfg, &common), &tenant)?;
            eprintln!("issued {id}");
            println!("{key}");
        }
        KeysCommand::Revoke {
            common,
            tenant,
            key_id,
        } => {
            let cfg = load_config(common.config.as_ref())?;
            if !sipmask::cli::revoke_key(location(&cfg, &common), &tenant, &key_id)? {
                anyhow::bail!("tenant {tenant:?} has no key {key_id:?}");
            }
            println!("revoked {key_id}");
        }
    }
    Ok(())
}

fn bindings(command: BindingsCommand) -> anyhow::Result<()> {
    match command {
        BindingsCommand::Import { common, file } => {
            let cfg = load_config(common.config.as_ref())?;
            let dir = location(&cfg, &common);
            let n = sipmask::cli::import(&cfg, &dir, &file)?;
            println!("imported {n} bindings into {}", described(&dir));
        }
        BindingsCommand::List { common } => {
            let cfg = load_config(common.config.as_ref())?;
            sipmask::cli::list(location(&cfg, &common), &mut std::io::stdout().lock())?;
        }
        BindingsCommand::Add { common, args } => {
            let cfg = load_config(common.config.as_ref())?;
            let id = sipmask::cli::add(&cfg, location(&cfg, &common), *args)?;
            println!("added binding {id}");
        }
        BindingsCommand::Remove { common, id } => {
            let cfg = load_config(common.config.as_ref())?;
            if !sipmask::cli::remove(location(&cfg, &common), id)? {
                anyhow::bail!("no binding {id}");
            }
            println!("removed binding {id}");
        }
    }
    Ok(())
}

/// Logs to standard output in batches (`sipmask::logs`); the writer comes
/// back so what gathered is written at exit. Without the batching thread,
/// line by line.
fn init_logs(level: &str) -> Option<sipmask::logs::Batched> {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| level.to_string());
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only for a person at a terminal, not in files or journals;
    // there the same text comes from the cheaper `Line`.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi);
    match sipmask::logs::Batched::start() {
        Ok(logs) if ansi => {
            fmt.with_writer(logs.clone()).init();
            Some(flush_before_panics(logs))
        }
        Ok(logs) => {
            fmt.fmt_fields(sipmask::logs::Fields)
                .event_format(sipmask::logs::Line)
                .with_writer(logs.clone())
                .init();
            Some(flush_before_panics(logs))
        }
        Err(_) => {
            fmt.init();
            None
        }
    }
}

/// The lines before a panic come before its message.
fn flush_before_panics(logs: sipmask::logs::Batched) -> sipmask::logs::Batched {
    let before = logs.clone();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        before.flush();
        hook(info);
    }));
    logs
}

fn serve(cfg: Config) -> anyhow::Result<()> {
    let drain = Duration::from_secs(cfg.shutdown.drain_secs);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        // Watched before the start: a SIGTERM while it starts (the
        // sockets may answer before it returns) stops it cleanly after.
        let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
        let server = sipmask::server::Server::start(cfg).await?;
        wait_for_signal(term).await;
        tracing::info!(live_calls = server.live_calls(), "stopping: no new calls");
        server.shutdown(drain).await;
        Ok(())
    })
}

async fn wait_for_signal(term: std::io::Result<tokio::signal::unix::Signal>) {
    let mut term = match term {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops sipmask");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
