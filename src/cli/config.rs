//! `lightbox config show` (the effective configuration and where each value came
//! from) and `lightbox nodes` (the PACS nodes in it).

use std::process::ExitCode;

use clap::Subcommand;

use super::to_json;
use crate::config::RetrieveMethod;
use crate::error::Result;

#[derive(Debug, Subcommand)]
pub(super) enum ConfigAction {
    /// Print the effective configuration.
    Show {
        #[arg(long)]
        json: bool,
    },
}

/// `lightbox config show`.
pub(super) fn cmd_config_show(json: bool) -> Result<ExitCode> {
    let path = crate::config::default_path();
    let c = crate::config::load(&path)?;
    if json {
        out!("{}", to_json(&c)?);
        return Ok(ExitCode::SUCCESS);
    }
    match &c.file {
        Some(f) => out!("# from {}", f.display()),
        None => out!("# {} does not exist: defaults", path.display()),
    }
    let o = |o: crate::config::Origin| format!("{o:?}").to_lowercase();
    out!("ae_title     = {:?}  ({})", c.ae_title.0, o(c.ae_title.1));
    out!("scp_port     = {}  ({})", c.scp_port.0, o(c.scp_port.1));
    out!(
        "allowed_aes  = {:?}  ({})",
        c.allowed_aes.0,
        o(c.allowed_aes.1)
    );
    out!(
        "cache_root   = {:?}  ({})",
        c.cache_root.0.display().to_string(),
        o(c.cache_root.1)
    );
    out!(
        "slices_per_notch = {}  ({})",
        c.slices_per_notch.0,
        o(c.slices_per_notch.1)
    );
    match c.cache_max_mb.0 {
        Some(v) => out!("cache_max_mb = {v}  ({})", o(c.cache_max_mb.1)),
        None => out!("cache_max_mb = none  (default: no cap)"),
    }
    out!(
        "durability   = {:?}  ({})",
        format!("{:?}", c.durability.0).to_lowercase(),
        o(c.durability.1)
    );
    out!(
        "scp_max_associations = {}  ({})",
        c.scp_max_associations.0,
        o(c.scp_max_associations.1)
    );
    out!(
        "scp_artim_timeout_s = {}  ({})",
        c.scp_artim_timeout_s.0,
        o(c.scp_artim_timeout_s.1)
    );
    out!(
        "scp_idle_timeout_s = {}  ({})",
        c.scp_idle_timeout_s.0,
        o(c.scp_idle_timeout_s.1)
    );
    let path = |p: &Option<std::path::PathBuf>| {
        p.as_ref()
            .map(|p| format!("{:?}", p.display().to_string()))
            .unwrap_or_else(|| "(none)".into())
    };
    out!(
        "tls_port = {}  ({})",
        c.tls_port
            .0
            .map(|p| p.to_string())
            .unwrap_or_else(|| "(none)".into()),
        o(c.tls_port.1)
    );
    let t = &c.tls.0;
    out!(
        "tls_certificate = {}  tls_private_key = {}  ({})",
        path(&t.certificate),
        path(&t.private_key),
        o(c.tls.1)
    );
    out!(
        "tls_client_ca = {}  tls_allow_anonymous = {}  ({})",
        path(&t.client_ca),
        t.allow_anonymous,
        o(c.tls.1)
    );
    for n in &c.nodes {
        out!(
            "node {:?}: {}@{}:{} retrieve={:?} parallel={}  (file)",
            n.name,
            n.ae_title,
            n.host,
            n.port,
            n.retrieve,
            n.parallel
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `lightbox nodes`.
pub(super) fn cmd_nodes(json: bool) -> Result<ExitCode> {
    let cfg = crate::config::load(&crate::config::default_path())?;
    if json {
        out!("{}", to_json(&cfg.nodes)?);
        return Ok(ExitCode::SUCCESS);
    }
    if cfg.nodes.is_empty() {
        out!(
            "no nodes configured (add [[nodes]] to {})",
            cfg.file
                .clone()
                .unwrap_or_else(crate::config::default_path)
                .display()
        );
    }
    for n in &cfg.nodes {
        out!(
            "{:<12} {}@{}:{}  retrieve {}{}  parallel {}  max PDU {}  timeouts {} s / {} s{}",
            n.name,
            n.ae_title,
            n.host,
            n.port,
            match n.retrieve {
                RetrieveMethod::Move => "C-MOVE",
                RetrieveMethod::Get => "C-GET",
            },
            if n.get_fallback && n.retrieve == RetrieveMethod::Move {
                " (C-GET fallback)"
            } else {
                ""
            },
            n.parallel,
            n.max_pdu,
            n.connect_timeout_s,
            n.dimse_timeout_s,
            if n.tls {
                format!(
                    "  TLS (name {}, trusting {})",
                    crate::net::tls::server_name(n),
                    n.tls_ca
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "the system's CAs".into())
                )
            } else {
                String::new()
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}
