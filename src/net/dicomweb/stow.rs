//! STOW-RS: objects posted to a DICOMweb node's `/studies` in batches, each file
//! as stored, streamed from disk; the server's answer says what it acknowledged.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::{Auth, Client, MAX_QIDO_BYTES};
use crate::error::{Error, NetFailure, Result};
use crate::net::scu::Peer;
use crate::net::status;

/// A STOW-RS request body: the files, each a part as stored (the Part 10 file
/// whole), read lazily, one open at a time.
struct StowBody {
    files: std::collections::VecDeque<std::path::PathBuf>,
    boundary: String,
    /// What is being read now.
    current: Option<Box<dyn Read + Send>>,
    closed: bool,
}

impl Read for StowBody {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(r) = self.current.as_mut() {
                let n = r.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                self.current = None;
            }
            match self.files.pop_front() {
                Some(f) => {
                    let head = format!(
                        "--{}\r\nContent-Type: application/dicom\r\n\r\n",
                        self.boundary
                    );
                    let file = std::fs::File::open(&f).map_err(|e| {
                        std::io::Error::new(e.kind(), format!("{}: {e}", f.display()))
                    })?;
                    self.current = Some(Box::new(
                        std::io::Cursor::new(head.into_bytes())
                            .chain(file)
                            .chain(std::io::Cursor::new(b"\r\n".to_vec())),
                    ));
                }
                None if !self.closed => {
                    self.closed = true;
                    self.current = Some(Box::new(std::io::Cursor::new(
                        format!("--{}--\r\n", self.boundary).into_bytes(),
                    )));
                }
                None => return Ok(0),
            }
        }
    }
}

/// What a STOW-RS send did.
#[derive(Debug, Default)]
pub struct Stowed {
    /// Acknowledged: index into the items, and the record for the ledger.
    pub acknowledged: Vec<(usize, crate::store::SentRecord)>,
    /// Refused by the server (index, reason).
    pub failed: Vec<(usize, String)>,
    /// Never sent (cancelled).
    pub unsent: usize,
    pub problems: Vec<String>,
    pub bytes: u64,
}

/// Objects a STOW-RS request carries at most.
const STOW_BATCH: usize = 50;
/// Bytes a STOW-RS request carries at most (Orthanc 1.7 takes < 4 GB).
const STOW_BATCH_BYTES: u64 = 256 << 20;

/// STOW-RS: `todo` (indices into `items`) posted to the node's `/studies` in
/// batches, over `parallel` connections, each file as stored; the server's answer
/// (Referenced / Failed SOP Sequence) says what it acknowledged.
pub fn stow(
    peer: &Peer,
    items: &[crate::net::send::Item],
    todo: &[usize],
    parallel: usize,
    cancel: &AtomicBool,
    on_done: &(dyn Fn(usize) + Sync),
) -> Result<Stowed> {
    let client = Client::new(peer)?;
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut bytes = 0u64;
    for &i in todo {
        let size = std::fs::metadata(&items[i].path)
            .map(|m| m.len())
            .unwrap_or(0);
        let full = batches
            .last()
            .is_none_or(|b| b.len() >= STOW_BATCH || bytes + size > STOW_BATCH_BYTES);
        if full {
            batches.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        if let Some(b) = batches.last_mut() {
            b.push(i);
        }
    }
    batches.reverse();
    let queue = Mutex::new(batches);
    let out = Mutex::new(Stowed::default());
    let done = AtomicUsize::new(0);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|sc| {
        for _ in 0..parallel.max(1) {
            sc.spawn(|| {
                while let Some(batch) = queue.lock().ok().and_then(|mut q| q.pop()) {
                    if cancel.load(Ordering::Relaxed) {
                        if let Ok(mut o) = out.lock() {
                            o.unsent += batch.len();
                        }
                        continue;
                    }
                    let r = post_batch(&client, items, &batch);
                    let n = done.fetch_add(batch.len(), Ordering::Relaxed) + batch.len();
                    on_done(n);
                    let Ok(mut o) = out.lock() else { continue };
                    match r {
                        Ok((acked, failed, sent_bytes)) => {
                            o.bytes += sent_bytes;
                            o.acknowledged.extend(acked);
                            o.failed.extend(failed);
                        }
                        Err(e) => {
                            o.problems.push(e.to_string());
                            o.failed
                                .extend(batch.iter().map(|&i| (i, format!("not stored: {e}"))));
                            if let Ok(mut f) = first_error.lock() {
                                f.get_or_insert(e);
                            }
                        }
                    }
                }
            });
        }
    });
    let out = out.into_inner().unwrap_or_default();
    // Nothing got through at all: the node's error is the answer.
    if out.acknowledged.is_empty()
        && !todo.is_empty()
        && let Some(e) = first_error.into_inner().ok().flatten()
        && matches!(
            &e,
            Error::Network {
                kind: NetFailure::Connect(_) | NetFailure::Rejected(_) | NetFailure::Tls(_),
                ..
            }
        )
    {
        return Err(e);
    }
    Ok(out)
}

type BatchResult = (
    Vec<(usize, crate::store::SentRecord)>,
    Vec<(usize, String)>,
    u64,
);

/// One STOW-RS request; a 401 with a token command is retried once with a
/// fresh token (the body is read again from the files).
fn post_batch(
    client: &Client,
    items: &[crate::net::send::Item],
    batch: &[usize],
) -> Result<BatchResult> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let boundary = format!(
        "lightbox-{}-{nanos:x}-{}",
        std::process::id(),
        batch.first().copied().unwrap_or(0)
    );
    let url = format!("{}/studies", client.base);
    let mut resp = None;
    for attempt in 0..2 {
        let body = StowBody {
            files: batch.iter().map(|&i| items[i].path.clone()).collect(),
            boundary: boundary.clone(),
            current: None,
            closed: false,
        };
        let mut rq = client
            .agent
            .post(&url)
            .header("Accept", "application/dicom+json")
            .content_type(format!(
                "multipart/related; type=\"application/dicom\"; boundary={boundary}"
            ));
        if let Some(a) = client.authorization(attempt > 0)? {
            rq = rq.header("Authorization", a);
        }
        let r = rq
            .send(ureq::SendBody::from_owned_reader(body))
            .map_err(|e| client.transport_error(e))?;
        if r.status().as_u16() == 401 && matches!(client.auth, Auth::Command(..)) && attempt == 0 {
            continue;
        }
        resp = Some(r);
        break;
    }
    let Some(resp) = resp else {
        return Err(client.fail(NetFailure::Rejected("HTTP 401 with a fresh token".into())));
    };
    let code = resp.status().as_u16();
    let mut text = String::new();
    let _ = resp
        .into_body()
        .into_with_config()
        .limit(MAX_QIDO_BYTES)
        .reader()
        .read_to_string(&mut text);
    if !matches!(code, 200 | 202 | 409) {
        let kind = match code {
            401 | 403 => {
                NetFailure::Rejected(format!("HTTP {code}: not authorised {}", text.trim()))
            }
            _ => NetFailure::Operation(format!("STOW-RS answered HTTP {code}: {}", text.trim())),
        };
        return Err(client.fail(kind));
    }
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    let uids_in = |seq: &str| -> Vec<(String, Option<u64>)> {
        v[seq]["Value"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|it| {
                        let uid = it["00081155"]["Value"][0].as_str()?.to_string();
                        Some((uid, it["00081197"]["Value"][0].as_u64()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let acked: HashSet<String> = uids_in("00081199").into_iter().map(|(u, _)| u).collect();
    let failed: BTreeMap<String, Option<u64>> = uids_in("00081198").into_iter().collect();
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    let mut bytes = 0;
    for &i in batch {
        let it = &items[i];
        if acked.contains(&it.sop_uid) {
            bytes += it.size;
            ok.push((
                i,
                crate::store::SentRecord {
                    sop_uid: it.sop_uid.clone(),
                    size: it.size,
                    transfer_syntax: it.transfer_syntax.clone(),
                    status: status::SUCCESS,
                },
            ));
        } else if let Some(reason) = failed.get(&it.sop_uid) {
            bad.push((
                i,
                match reason {
                    Some(r) => format!("refused by the server (failure reason 0x{r:04X})"),
                    None => "refused by the server".into(),
                },
            ));
        } else {
            bad.push((i, format!("not in the server's answer (HTTP {code})")));
        }
    }
    Ok((ok, bad, bytes))
}
