//! The in-process Storage SCP a C-MOVE sends to: listening on the request's
//! `scp_bind`:`scp_port` under our calling AE title for the duration of the fetch,
//! storing into the same ingest as the rest of the retrieve, and telling the
//! workers (through [`Shared::inbox`]) which instances arrived. For a TLS node it
//! listens for TLS, with our certificate and the client CAs of the configuration.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::fetch::Shared;
use crate::error::{NetFailure, Result};
use crate::net::inbound::Stored;
use crate::net::scp::{self, ScpConfig, ScpStats};
use crate::net::{failure, status};

/// Our Storage SCP for the duration of a C-MOVE.
pub(super) struct LocalScp {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<()>>,
}

impl LocalScp {
    /// Listen, and serve on a thread of its own ("scp-accept").
    pub(super) fn start(shared: &Shared<'_>) -> Result<LocalScp> {
        let req = shared.req;
        let at = format!("{}:{}", req.scp_bind, req.scp_port);
        let listener = TcpListener::bind((req.scp_bind.as_str(), req.scp_port)).map_err(|e| {
            failure(
                at.as_str(),
                NetFailure::Local(format!(
                    "cannot listen for C-MOVE ({e}); is `lightbox listen` running on that \
                     port? use --scp-port, or --method get"
                )),
            )
        })?;
        let mut cfg = ScpConfig::new(&shared.peer.calling_ae, shared.ingest.root());
        cfg.durability = shared.ingest.durability();
        // The retrieve records the transfer itself.
        cfg.audit_transfers = false;
        // A TLS node sends its sub-operations over TLS too.
        if shared.peer.node.tls {
            cfg.tls = Some(crate::net::tls::server_config(&shared.peer.identity)?);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let sink = Arc::clone(&shared.inbox);
        let observer: scp::Observer = Arc::new(move |_calling: &str, s: &Stored| {
            if s.status == status::SUCCESS
                && let Ok(mut v) = sink.lock()
            {
                v.push(s.sop_instance_uid.clone());
            }
        });
        let ingest = Arc::clone(shared.ingest);
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("scp-accept".into())
            .spawn(move || {
                scp::serve_with(
                    listener,
                    cfg,
                    ingest,
                    stop2,
                    Arc::new(ScpStats::default()),
                    Some(observer),
                )
            })
            .map_err(|e| {
                failure(
                    at.as_str(),
                    NetFailure::Local(format!("cannot start the Storage SCP: {e}")),
                )
            })?;
        Ok(LocalScp { stop, thread })
    }

    /// Stop listening, wait for the associations in progress, and flush.
    pub(super) fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Ok(Err(e)) = self.thread.join() {
            tracing::warn!("Storage SCP for C-MOVE: {e}");
        }
    }
}
