//! `lightbox listen`: the Storage SCP in the foreground, receiving C-STORE (and
//! answering C-ECHO) into the cache until the process ends — on `scp_port`, and
//! over TLS on `tls_port` when one is configured.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::error::{Error, NetFailure, Result};
use crate::store::Ingest;

fn bind_at(bind: &str, port: u16) -> Result<std::net::TcpListener> {
    std::net::TcpListener::bind((bind, port)).map_err(|e| {
        crate::net::failure(
            format!("{bind}:{port}"),
            NetFailure::Local(format!("cannot listen: {e}")),
        )
    })
}

/// `lightbox listen`.
pub(super) fn cmd_listen(
    port: Option<u16>,
    aet: Option<String>,
    bind: &str,
    tls_port: Option<u16>,
    cache: Option<PathBuf>,
) -> Result<ExitCode> {
    let cfg = crate::config::load(&crate::config::default_path())?;
    let port = port.unwrap_or(cfg.scp_port.0);
    let ae = aet.unwrap_or(cfg.ae_title.0);
    if !crate::config::valid_ae_title(&ae) {
        return Err(Error::Usage(format!("{ae:?} is not a valid AE title")));
    }
    let tls_port = tls_port.or(cfg.tls_port.0);
    if tls_port == Some(port) {
        return Err(Error::Usage(format!(
            "the TLS port cannot be the plain port ({port})"
        )));
    }
    // Certificates and keys are read before listening: a bad one is reported now.
    let tls = match tls_port {
        Some(_) => Some(crate::net::tls::server_config(&cfg.tls.0)?),
        None => None,
    };
    let root = cache.unwrap_or(cfg.cache_root.0);
    // Open once up front: a cache that cannot be opened is reported before listening.
    drop(crate::store::Store::open(&root)?);
    let listener = bind_at(bind, port)?;
    let tls_listener = match tls_port {
        Some(p) => Some(bind_at(bind, p)?),
        None => None,
    };
    let mut scp = crate::net::ScpConfig::new(&ae, &root);
    scp.allowed_aes = cfg.allowed_aes.0;
    scp.durability = cfg.durability.0;
    scp.max_associations = cfg.scp_max_associations.0;
    scp.artim = std::time::Duration::from_secs(cfg.scp_artim_timeout_s.0);
    scp.timeout = std::time::Duration::from_secs(cfg.scp_idle_timeout_s.0);
    out!(
        "Storage SCP {ae} listening on {bind}:{port}{}, storing into {}{}",
        match tls_port {
            Some(p) => format!(" and {bind}:{p} (TLS{})", {
                if cfg.tls.0.client_ca.is_none() {
                    ", any client"
                } else if cfg.tls.0.allow_anonymous {
                    ", client certificates checked when sent"
                } else {
                    ", client certificates required"
                }
            }),
            None => String::new(),
        },
        root.display(),
        if scp.allowed_aes.is_empty() {
            String::new()
        } else {
            format!(", accepting {}", scp.allowed_aes.join(", "))
        }
    );
    {
        use crate::audit::{Action, Event, EventId, Role, kind};
        Event::new(
            EventId::ApplicationActivity,
            Action::Execute,
            &ae,
            Role::Application,
        )
        .kind(kind::application_start())
        .describe(format!(
            "Storage SCP on {bind}:{port}{}",
            tls_port
                .map(|p| format!(" and {bind}:{p} (TLS)"))
                .unwrap_or_default()
        ))
        .record(&root);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(crate::net::ScpStats::default());
    let ingest = Arc::new(Ingest::start(&root, scp.durability)?);
    // The TLS listener on a thread of its own, into the same cache writer; each
    // listener has its own scp_max_associations.
    let tls_thread = match (tls_listener, tls) {
        (Some(l), Some(t)) => {
            let mut c = scp.clone();
            c.tls = Some(t);
            let (ingest, stop, stats) =
                (Arc::clone(&ingest), Arc::clone(&stop), Arc::clone(&stats));
            Some(
                std::thread::Builder::new()
                    .name("scp-accept-tls".into())
                    .spawn(move || crate::net::scp::serve_with(l, c, ingest, stop, stats, None))
                    .map_err(|e| {
                        crate::net::failure(
                            format!("{bind}:{}", tls_port.unwrap_or_default()),
                            NetFailure::Local(format!("cannot start the TLS listener: {e}")),
                        )
                    })?,
            )
        }
        _ => None,
    };
    let plain = crate::net::scp::serve_with(listener, scp, ingest, Arc::clone(&stop), stats, None);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(t) = tls_thread
        && let Ok(Err(e)) = t.join()
    {
        tracing::warn!("TLS listener: {e}");
    }
    plain?;
    Ok(ExitCode::SUCCESS)
}
