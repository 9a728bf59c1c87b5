//! `lightbox listen`: the Storage SCP in the foreground, receiving C-STORE (and
//! answering C-ECHO) into the cache until the process ends.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::error::{Error, NetFailure, Result};

/// `lightbox listen`.
pub(super) fn cmd_listen(
    port: Option<u16>,
    aet: Option<String>,
    bind: &str,
    cache: Option<PathBuf>,
) -> Result<ExitCode> {
    let cfg = crate::config::load(&crate::config::default_path())?;
    let port = port.unwrap_or(cfg.scp_port.0);
    let ae = aet.unwrap_or(cfg.ae_title.0);
    if !crate::config::valid_ae_title(&ae) {
        return Err(Error::Usage(format!("{ae:?} is not a valid AE title")));
    }
    let root = cache.unwrap_or(cfg.cache_root.0);
    // Open once up front: a cache that cannot be opened is reported before listening.
    drop(crate::store::Store::open(&root)?);
    let listener = std::net::TcpListener::bind((bind, port)).map_err(|e| {
        crate::net::failure(
            format!("{bind}:{port}"),
            NetFailure::Local(format!("cannot listen: {e}")),
        )
    })?;
    let mut scp = crate::net::ScpConfig::new(&ae, &root);
    scp.allowed_aes = cfg.allowed_aes.0;
    scp.durability = cfg.durability.0;
    scp.max_associations = cfg.scp_max_associations.0;
    scp.artim = std::time::Duration::from_secs(cfg.scp_artim_timeout_s.0);
    scp.timeout = std::time::Duration::from_secs(cfg.scp_idle_timeout_s.0);
    out!(
        "Storage SCP {ae} listening on {bind}:{port}, storing into {}{}",
        root.display(),
        if scp.allowed_aes.is_empty() {
            String::new()
        } else {
            format!(", accepting {}", scp.allowed_aes.join(", "))
        }
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stats = std::sync::Arc::new(crate::net::ScpStats::default());
    crate::net::serve(listener, scp, stop, stats)?;
    Ok(ExitCode::SUCCESS)
}
