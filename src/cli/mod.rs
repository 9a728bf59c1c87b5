//! `lightbox` subcommands: thin wrappers over the library. Each prints its result
//! on stdout; failures are one line on stderr naming the file and the reason.
//! Exit codes: 0 success, 1 failure, 2 partial success (some files unreadable).
//!
//! This file parses the arguments and dispatches; each command family has a file:
//! `view` (the viewer), `render` (render, dump), `series` (series, volume), `synth`
//! (synth, demo), `cache` (import, cache), `listen`, `config` (config, nodes),
//! `anonymize`, `net` (echo, find, retrieve, send), `audit`. What a command needs that is not
//! about the command line lives in the library (e.g. [`crate::export`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `println!` that ends the program quietly when stdout is closed (`| head`), as a
/// command-line tool killed by SIGPIPE would, instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

mod anonymize;
mod audit;
mod cache;
mod config;
mod listen;
mod net;
mod render;
mod series;
mod synth;
mod view;

use crate::error::{Error, Result};
use crate::scan;

#[derive(Debug, Parser)]
#[command(
    name = "lightbox",
    version,
    about = "Lightbox: a diagnostic DICOM display workstation"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Files, folders or CD/USB roots to open in the viewer (imported into the
    /// cache first). With nothing, the viewer opens on the cache's study list.
    paths: Vec<PathBuf>,
    /// Cache folder (for the viewer, and for a subcommand given after it:
    /// `lightbox --cache DIR demo` is `lightbox demo --cache DIR`).
    #[arg(long)]
    cache: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Open the viewer on the synthetic demo studies (CT with its prior side by
    /// side, MR, CR), generating them into the cache on first use.
    Demo {
        /// Cache folder.
        #[arg(long)]
        cache: Option<PathBuf>,
        /// CT slices (the prior has half).
        #[arg(long, default_value_t = 400)]
        slices: usize,
        /// CT matrix size.
        #[arg(long, default_value_t = 512)]
        size: usize,
        /// Viewport grid, e.g. 2x2 (default: the hanging protocol's).
        #[arg(long, value_parser = view::parse_layout)]
        layout: Option<(usize, usize)>,
    },
    /// Open the viewer (on files, folders or CDs, or on the cache's study list).
    View {
        paths: Vec<PathBuf>,
        /// Cache folder.
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Viewport grid, e.g. 2x2 (default: the hanging protocol's).
        #[arg(long, value_parser = view::parse_layout)]
        layout: Option<(usize, usize)>,
    },
    /// Render one frame through the CPU display pipeline to a PNG.
    Render(render::RenderArgs),
    /// Print a file's header (text, or the DICOM JSON model with --json).
    Dump {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// List patients, studies, series and display sets under a folder, with geometry checks.
    Series {
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Load a series into a 16-bit volume and report its geometry, range, time and memory.
    Volume {
        dir: PathBuf,
        /// Series Instance UID (default: the largest stack found).
        #[arg(long)]
        series: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Write deterministic synthetic studies (CT phantom, MR, CR) into a folder.
    Synth(synth::SynthArgs),
    /// Import files, folders or CD/USB roots (DICOMDIR) into the local cache.
    Import {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Index the files where they are instead of copying them (read-only media).
        #[arg(long)]
        link: bool,
        /// Cache folder (default: $LIGHTBOX_CACHE or ~/.local/share/lightbox/cache).
        #[arg(long)]
        cache: Option<PathBuf>,
    },
    /// Run the Storage SCP: receive C-STORE (and answer C-ECHO) into the cache.
    Listen {
        /// Port (default: scp_port from the configuration, 11112).
        #[arg(long)]
        port: Option<u16>,
        /// Our AE title (default: ae_title from the configuration, LIGHTBOX).
        #[arg(long)]
        aet: Option<String>,
        /// Address to listen on.
        #[arg(long, default_value = "0.0.0.0")]
        bind: String,
        /// Also listen for DICOM over TLS on this port (default: tls_port from the
        /// configuration; needs tls_certificate and tls_private_key).
        #[arg(long)]
        tls_port: Option<u16>,
        /// Cache folder.
        #[arg(long)]
        cache: Option<PathBuf>,
    },
    /// The audit trail: who opened, queried, retrieved, sent, exported or deleted
    /// what, and refused associations (PS3.15 audit messages, one JSON a line).
    Audit {
        /// Events on or after this date (YYYY-MM-DD or YYYYMMDD, UTC).
        #[arg(long)]
        since: Option<String>,
        /// Events about this study (Study Instance UID).
        #[arg(long)]
        study: Option<String>,
        /// The messages as JSON.
        #[arg(long)]
        json: bool,
        /// Cache folder.
        #[arg(long)]
        cache: Option<PathBuf>,
    },
    /// List the PACS nodes in the configuration.
    Nodes {
        #[arg(long)]
        json: bool,
    },
    /// Verify a PACS node (C-ECHO): round trip and the services it accepts.
    Echo(net::EchoArgs),
    /// Query a PACS node (C-FIND) at patient, study, series or image level.
    Find(net::FindArgs),
    /// Retrieve a study or series from a PACS node into the cache (C-MOVE or C-GET).
    Retrieve(net::RetrieveArgs),
    /// Send files, folders, or a cached study or series to a PACS node (C-STORE),
    /// as stored; what the node acknowledged is not sent again.
    Send(net::SendArgs),
    /// De-identify DICOM files or folders into a new folder (DICOM PS3.15 Basic
    /// Application Level Confidentiality Profile: names, IDs, dates and UIDs
    /// replaced, private tags and overlays removed).
    Anonymize(anonymize::AnonymizeArgs),
    /// Show the effective configuration and where each value came from.
    Config {
        #[command(subcommand)]
        action: config::ConfigAction,
    },
    /// Inspect and repair the local cache.
    Cache {
        #[command(subcommand)]
        action: cache::CacheAction,
        /// Cache folder (default: $LIGHTBOX_CACHE or ~/.local/share/lightbox/cache).
        #[arg(long, global = true)]
        cache: Option<PathBuf>,
    },
}

/// Entry point used by `main`.
pub fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LIGHTBOX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let Some(command) = cli.command else {
        return finish(view::cmd_view(&cli.paths, cli.cache, None));
    };
    if !cli.paths.is_empty() {
        // `lightbox FILE demo`: a path before a subcommand is not a path to open.
        return finish(Err(Error::Usage(format!(
            "{}: give paths to open after `view`, or the subcommand first",
            cli.paths[0].display()
        ))));
    }
    // A --cache before the subcommand counts as one after it (the subcommand's
    // own wins when both are given).
    let global = cli.cache;
    let or_global = |c: Option<PathBuf>| c.or_else(|| global.clone());
    // The audit trail goes to the cache in use (commands given a cache of their
    // own set theirs).
    if let Ok(root) = cache_root(global.clone()) {
        crate::audit::set_default_root(&root);
    }
    let result = match command {
        Command::Demo {
            cache,
            slices,
            size,
            layout,
        } => synth::cmd_demo(or_global(cache), slices, size, layout),
        Command::View {
            paths,
            cache,
            layout,
        } => view::cmd_view(&paths, or_global(cache), layout),
        Command::Render(a) => render::cmd_render(a),
        Command::Dump { file, json } => render::cmd_dump(&file, json),
        Command::Series { dir, json } => series::cmd_series(&dir, json),
        Command::Volume { dir, series, json } => series::cmd_volume(&dir, series.as_deref(), json),
        Command::Synth(a) => synth::cmd_synth(a),
        Command::Import { paths, link, cache } => cache::cmd_import(&paths, link, or_global(cache)),
        Command::Cache { action, cache } => cache::cmd_cache(action, or_global(cache)),
        Command::Anonymize(a) => anonymize::cmd_anonymize(a),
        Command::Config {
            action: config::ConfigAction::Show { json },
        } => config::cmd_config_show(json),
        Command::Listen {
            port,
            aet,
            bind,
            tls_port,
            cache,
        } => listen::cmd_listen(port, aet, &bind, tls_port, or_global(cache)),
        Command::Nodes { json } => config::cmd_nodes(json),
        Command::Audit {
            since,
            study,
            json,
            cache,
        } => audit::cmd_audit(since, study, json, or_global(cache)),
        Command::Echo(a) => net::cmd_echo(a),
        Command::Find(a) => net::cmd_find(a),
        Command::Retrieve(mut a) => {
            a.cache = or_global(a.cache);
            net::cmd_retrieve(a)
        }
        Command::Send(mut a) => {
            a.cache = or_global(a.cache);
            net::cmd_send(a)
        }
    };
    finish(result)
}

fn finish(result: Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lightbox: {e}");
            ExitCode::from(1)
        }
    }
}

/// The cache folder given on the command line, or the configuration's.
fn cache_root(cache: Option<PathBuf>) -> Result<PathBuf> {
    Ok(match cache {
        Some(c) => c,
        None => {
            crate::config::load(&crate::config::default_path())?
                .cache_root
                .0
        }
    })
}

/// A folder to scan: one that does not exist is the user's mistake.
fn scan_dir(dir: &Path) -> Result<scan::Scan> {
    if !dir.exists() {
        return Err(Error::Usage(format!(
            "{}: no such file or folder",
            dir.display()
        )));
    }
    scan::scan(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })
}

/// The files that could not be read, on stderr.
fn report_failures(failures: &[(PathBuf, String)]) {
    if !failures.is_empty() {
        eprintln!("{} file(s) skipped:", failures.len());
        for (_, reason) in failures {
            eprintln!("  {reason}");
        }
    }
}

/// 0 when every file was read, 2 when some were, 1 when none were.
fn exit_for(scan: &scan::Scan) -> ExitCode {
    match (scan.headers.is_empty(), scan.failures.is_empty()) {
        (_, true) => ExitCode::SUCCESS,
        (true, false) => ExitCode::from(1),
        (false, false) => ExitCode::from(2),
    }
}

/// Pretty JSON for stdout (`--json`).
fn to_json(v: impl serde::Serialize) -> Result<String> {
    serde_json::to_string_pretty(&v).map_err(json_error)
}

/// A value of the JSON model, to add fields to before printing.
fn json_value(v: impl serde::Serialize) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(json_error)
}

/// Our own types always serialise; should one not, it is reported as what could
/// not be written, not as the user's mistake.
fn json_error(e: serde_json::Error) -> Error {
    Error::Write {
        path: PathBuf::from("stdout"),
        reason: format!("JSON: {e}"),
    }
}
