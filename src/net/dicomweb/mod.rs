//! DICOMweb nodes (`protocol = "dicomweb"`): QIDO-RS for `find` (the same keys
//! and answers as C-FIND), WADO-RS for `retrieve` (objects as stored, streamed
//! into the cache), over HTTP or HTTPS, with a bearer token, a token command or
//! basic authentication.
//!
//! The client is `ureq` (blocking, rustls with the ring provider, no timeouts
//! unless set: they are) and a multipart reader of our own ([`multipart`]):
//! `dicom-web` buffers each instance whole and asks for no transfer syntax, so the
//! server transcodes (see ARCHITECTURE.md).

mod connector;
pub mod multipart;
mod stow;

pub use stow::{Stowed, stow};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use super::find::{FindOutcome, Level, Match, Query};
use super::retrieve::{Progress, Report, Request};
use super::scu::Peer;
use super::{failure, status};
use crate::config::Node;
use crate::error::{Error, NetFailure, Result};
use crate::store::{ExpectedInstance, Ingest, Retrieval, RetrievalSeries, RetrievalState, Store};

/// What WADO-RS is asked for: the objects as the server stores them.
const ACCEPT_DICOM: &str = "multipart/related; type=\"application/dicom\"; transfer-syntax=*";
/// Answers asked for per QIDO-RS request (the rest by `offset`).
const QIDO_PAGE: usize = 1000;
/// Largest QIDO answer read (JSON).
const MAX_QIDO_BYTES: u64 = 256 << 20;

/// How requests are authorised.
#[derive(Debug)]
enum Auth {
    None,
    /// The whole header value.
    Fixed(String),
    /// A command printing a token, and the last token with when it expires.
    Command(Vec<String>, Mutex<Option<(String, Instant)>>),
}

/// Tokens from a command that says nothing of their expiry are reused this long.
const TOKEN_TTL: Duration = Duration::from_secs(300);
/// A token is fetched again this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// A token command's output: a plain token on the first line, or an OAuth2 token
/// response (RFC 6749 5.1: `access_token`, `expires_in`); how long to use it.
fn parse_token(out: &str) -> (String, Duration) {
    let text = out.trim();
    if text.starts_with('{')
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(text)
    {
        let token = v["access_token"]
            .as_str()
            .or_else(|| v["token"].as_str())
            .unwrap_or("")
            .trim()
            .to_string();
        let ttl = v["expires_in"]
            .as_u64()
            .map(|s| Duration::from_secs(s).saturating_sub(TOKEN_MARGIN))
            .unwrap_or(TOKEN_TTL);
        return (token, ttl);
    }
    (
        text.lines().next().unwrap_or("").trim().to_string(),
        TOKEN_TTL,
    )
}

/// A DICOMweb service.
#[derive(Debug)]
pub struct Client {
    label: String,
    base: String,
    agent: ureq::Agent,
    auth: Auth,
    /// The name an HTTPS server's certificate is checked against.
    server_name: String,
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Percent-encode a query value. `^` (the PN component separator), `*` and `?`
/// (wildcards) and `,` (QIDO's list separator) go as they are: servers match on
/// the raw query (Orthanc's plugin does not decode `%5E`).
fn encode(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~*?^,:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    /// The client of a DICOMweb node (its CA file trusted for HTTPS, our
    /// certificate sent when configured).
    pub fn new(peer: &Peer) -> Result<Client> {
        let n = &peer.node;
        let label = peer.label();
        let local = |m: String| failure(label.as_str(), NetFailure::Local(m));
        let url = n
            .url
            .clone()
            .ok_or_else(|| local("a DICOMweb node needs url".into()))?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .user_agent(concat!("lightbox/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(n.connect_timeout_s.max(1))))
            .timeout_recv_response(Some(Duration::from_secs(n.dimse_timeout_s.max(1))))
            .timeout_per_read(Some(Duration::from_secs(n.dimse_timeout_s.max(1))))
            .build();
        // HTTPS: the TLS of DIMSE nodes (tls_ca as CAs or a pinned certificate,
        // tls_server_name, our certificate), by a connector of our own.
        let agent = if url.starts_with("https://") {
            use ureq::unversioned::transport::{Connector, TcpConnector};
            let tls = connector::Tls {
                config: super::tls::client_config(n, &peer.identity)?,
                server_name: super::tls::server_name(n).to_string(),
            };
            let chain = ().chain(TcpConnector::default()).chain(tls);
            ureq::Agent::with_parts(
                config,
                chain,
                ureq::unversioned::resolver::DefaultResolver::default(),
            )
        } else {
            config.into()
        };
        let auth = match (&n.bearer_token, &n.token_command, &n.username) {
            (Some(t), _, _) => Auth::Fixed(format!("Bearer {}", t.trim())),
            (_, Some(cmd), _) if !cmd.is_empty() => Auth::Command(cmd.clone(), Mutex::new(None)),
            (_, _, Some(u)) => Auth::Fixed(format!(
                "Basic {}",
                base64(format!("{u}:{}", n.password.as_deref().unwrap_or("")).as_bytes())
            )),
            _ => Auth::None,
        };
        Ok(Client {
            label,
            base: url.trim_end_matches('/').to_string(),
            agent,
            auth,
            server_name: super::tls::server_name(n).to_string(),
        })
    }

    fn fail(&self, kind: NetFailure) -> Error {
        failure(self.label.as_str(), kind)
    }

    /// The Authorization header, running the token command when its token is old.
    fn authorization(&self, fresh: bool) -> Result<Option<String>> {
        match &self.auth {
            Auth::None => Ok(None),
            Auth::Fixed(v) => Ok(Some(v.clone())),
            Auth::Command(argv, cache) => {
                let mut c = cache
                    .lock()
                    .map_err(|_| self.fail(NetFailure::Local("token cache poisoned".into())))?;
                if !fresh
                    && let Some((t, until)) = c.as_ref()
                    && Instant::now() < *until
                {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let out = std::process::Command::new(&argv[0])
                    .args(&argv[1..])
                    .stdin(std::process::Stdio::null())
                    .output()
                    .map_err(|e| {
                        self.fail(NetFailure::Local(format!(
                            "token_command {:?} did not run: {e}",
                            argv[0]
                        )))
                    })?;
                let (token, ttl) = parse_token(&String::from_utf8_lossy(&out.stdout));
                if !out.status.success() || token.is_empty() {
                    return Err(self.fail(NetFailure::Local(format!(
                        "token_command {:?} gave no token ({}): {}",
                        argv[0],
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    ))));
                }
                *c = Some((token.clone(), Instant::now() + ttl));
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// GET `path` (after the base URL) with `accept`; a 401 runs the token
    /// command once more and tries again. Non-2xx answers are errors naming the
    /// status and what the server said.
    ///
    /// A connection the server closed while it idled in the pool (Orthanc keeps
    /// idle connections 1 s; on a slow link that passes while its last answer
    /// is still on the way) fails before any answer: the GET, idempotent, is
    /// sent once more on a new connection.
    fn get(&self, path: &str, accept: &str) -> Result<ureq::http::Response<ureq::Body>> {
        let url = format!("{}{path}", self.base);
        let mut fresh_token = false;
        let mut resent = false;
        loop {
            let mut rq = self.agent.get(&url).header("Accept", accept);
            if let Some(a) = self.authorization(fresh_token)? {
                rq = rq.header("Authorization", a);
            }
            let resp = match rq.call() {
                Ok(r) => r,
                Err(ureq::Error::Io(io))
                    if !resent
                        && matches!(
                            io.kind(),
                            std::io::ErrorKind::UnexpectedEof
                                | std::io::ErrorKind::ConnectionReset
                                | std::io::ErrorKind::ConnectionAborted
                                | std::io::ErrorKind::BrokenPipe
                        ) =>
                {
                    tracing::debug!("{}: {path}: {io}; sending it again", self.label);
                    resent = true;
                    continue;
                }
                Err(e) => return Err(self.transport_error(e)),
            };
            let code = resp.status().as_u16();
            if code == 401 && matches!(self.auth, Auth::Command(..)) && !fresh_token {
                fresh_token = true;
                continue;
            }
            if (200..300).contains(&code) {
                return Ok(resp);
            }
            let mut body = String::new();
            let _ = resp
                .into_body()
                .into_with_config()
                .limit(4096)
                .reader()
                .read_to_string(&mut body);
            let kind = match code {
                401 | 403 => NetFailure::Rejected(format!(
                    "HTTP {code} for {path}: not authorised (check bearer_token, token_command \
                     or username/password) {}",
                    body.trim()
                )),
                _ => NetFailure::Operation(format!("HTTP {code} for {path}: {}", body.trim())),
            };
            if code == 401 && fresh_token {
                return Err(self.fail(NetFailure::Rejected(format!(
                    "HTTP 401 for {path} with a fresh token: {}",
                    body.trim()
                ))));
            }
            return Err(self.fail(kind));
        }
    }

    fn transport_error(&self, e: ureq::Error) -> Error {
        let kind = match &e {
            ureq::Error::Io(io) => {
                if let Some(t) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                    NetFailure::Tls(super::tls::explain(t, Some(&self.server_name)))
                } else if io.kind() == std::io::ErrorKind::ConnectionRefused {
                    NetFailure::Connect(format!(
                        "connection refused ({io}); is the DICOMweb service running at {}?",
                        self.base
                    ))
                } else {
                    NetFailure::Aborted(io.to_string())
                }
            }
            ureq::Error::Timeout(t) => NetFailure::Timeout(format!("{t:?} ({e})")),
            ureq::Error::HostNotFound => NetFailure::Connect(format!("host not found ({e})")),
            _ => NetFailure::Aborted(e.to_string()),
        };
        self.fail(kind)
    }

    /// GET `path` as DICOM JSON: its array of objects, read up to
    /// `MAX_QIDO_BYTES` (no content, or only white space: none).
    fn json(&self, path: &str) -> Result<Vec<serde_json::Value>> {
        let resp = self.get(path, "application/dicom+json")?;
        if resp.status().as_u16() == 204 {
            return Ok(Vec::new());
        }
        let mut text = Vec::new();
        resp.into_body()
            .into_with_config()
            .limit(MAX_QIDO_BYTES)
            .reader()
            .read_to_end(&mut text)
            .map_err(|e| self.fail(NetFailure::Aborted(format!("reading {path}: {e}"))))?;
        if text.iter().all(u8::is_ascii_whitespace) {
            return Ok(Vec::new());
        }
        serde_json::from_slice(&text).map_err(|e| {
            self.fail(NetFailure::Operation(format!(
                "{path}: not DICOM JSON: {e}"
            )))
        })
    }

    /// A QIDO-RS query: the JSON answers.
    fn qido(&self, path: &str) -> Result<Vec<InMemDicomObject>> {
        self.json(path)?
            .into_iter()
            .map(|v| {
                dicom_json::from_value::<InMemDicomObject>(v).map_err(|e| {
                    self.fail(NetFailure::Operation(format!(
                        "{path}: a bad DICOM JSON answer: {e}"
                    )))
                })
            })
            .collect()
    }
}

/// Where each instance of a series lies, by SOP Instance UID: Image Position and
/// Orientation (Patient) from a WADO-RS metadata answer.
type Geometry = HashMap<String, (Option<[f64; 3]>, Option<[f64; 6]>)>;

/// The numbers of a DICOM JSON attribute (DS comes as JSON numbers, or from
/// some servers as strings).
fn json_numbers<const N: usize>(o: &serde_json::Value, tag: &str) -> Option<[f64; N]> {
    let v = o.get(tag)?.get("Value")?.as_array()?;
    let nums: Vec<f64> = v
        .iter()
        .map(|x| x.as_f64().or_else(|| x.as_str()?.trim().parse().ok()))
        .collect::<Option<_>>()?;
    if nums.len() != N || !nums.iter().all(|x| x.is_finite()) {
        return None;
    }
    let mut out = [0.0; N];
    out.copy_from_slice(&nums);
    Some(out)
}

impl Client {
    /// WADO-RS `/metadata` of a series, reduced to where each image lies. Read
    /// as plain JSON (only four attributes are wanted; bulk data URIs and
    /// private elements of the full answer are left alone).
    fn series_geometry(&self, study: &str, series: &str) -> Result<Geometry> {
        let values = self.json(&format!("/studies/{study}/series/{series}/metadata"))?;
        Ok(values
            .iter()
            .filter_map(|o| {
                let sop = o.get("00080018")?.get("Value")?.get(0)?.as_str()?;
                Some((
                    sop.to_string(),
                    (json_numbers(o, "00200032"), json_numbers(o, "00200037")),
                ))
            })
            .collect())
    }

    /// Every answer of a QIDO-RS query, page by page.
    fn qido_all(&self, path: &str) -> Result<Vec<InMemDicomObject>> {
        let mut all = Vec::new();
        loop {
            let sep = if path.contains('?') { "&" } else { "?" };
            let page = self.qido(&format!(
                "{path}{sep}limit={QIDO_PAGE}&offset={}",
                all.len()
            ))?;
            let n = page.len();
            all.extend(page);
            if n < QIDO_PAGE {
                return Ok(all);
            }
        }
    }
}

/// The QIDO-RS resource and parameters of a query: matching keys as
/// `keyword=value`, return keys as `includefield`, the limit.
fn qido_path(q: &Query) -> std::result::Result<String, String> {
    let k = &q.keys;
    let uid = |v: &Option<String>| v.clone().unwrap_or_default();
    let resource = match q.level {
        Level::Patient => {
            return Err("DICOMweb has no PATIENT level query: query studies".into());
        }
        Level::Study => "/studies".to_string(),
        Level::Series => format!("/studies/{}/series", uid(&k.study_uid)),
        Level::Image => format!(
            "/studies/{}/series/{}/instances",
            uid(&k.study_uid),
            uid(&k.series_uid)
        ),
    };
    let mut params = Vec::new();
    let id = q.identifier();
    for e in id.iter() {
        let tag = e.header().tag;
        // The level is the resource; the UIDs above it are in the path.
        if tag == tags::QUERY_RETRIEVE_LEVEL
            || (q.level != Level::Study && tag == tags::STUDY_INSTANCE_UID)
            || (q.level == Level::Image && tag == tags::SERIES_INSTANCE_UID)
        {
            continue;
        }
        let name = format!("{:04X}{:04X}", tag.group(), tag.element());
        let value = e
            .value()
            .to_str()
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        if value.is_empty() {
            params.push(format!("includefield={name}"));
        } else {
            params.push(format!("{name}={}", encode(&value)));
        }
    }
    Ok(format!("{resource}?{}", params.join("&")))
}

/// QIDO-RS with a C-FIND query: the same matches.
pub fn find(
    peer: &Peer,
    q: &Query,
    cancel: &AtomicBool,
    on_match: &mut dyn FnMut(&Match),
) -> Result<FindOutcome> {
    let client = Client::new(peer)?;
    let path = qido_path(q).map_err(Error::Usage)?;
    let mut out = FindOutcome {
        matches: Vec::new(),
        status: status::SUCCESS,
        cancelled: false,
        partial_keys: false,
    };
    // Large answers in pages (limit/offset), until a page comes back short.
    let page = match q.limit {
        Some(l) => l.min(QIDO_PAGE),
        None => QIDO_PAGE,
    };
    let mut offset = 0;
    loop {
        let sep = if path.ends_with('?') { "" } else { "&" };
        let answers = client.qido(&format!("{path}{sep}limit={page}&offset={offset}"))?;
        let n = answers.len();
        for attrs in answers {
            if cancel.load(Ordering::Relaxed) || q.limit.is_some_and(|l| out.matches.len() >= l) {
                out.cancelled = true;
                return Ok(out);
            }
            let m = Match {
                level: q.level,
                attrs,
            };
            on_match(&m);
            out.matches.push(m);
        }
        offset += n;
        if n < page || q.limit.is_some_and(|l| out.matches.len() >= l) {
            return Ok(out);
        }
    }
}

fn text(o: &InMemDicomObject, tag: Tag) -> Option<String> {
    crate::dicom::attr::string(o, tag).filter(|s| !s.is_empty())
}

/// A piece of a WADO-RS retrieve: a whole series, or some of its instances.
#[derive(Debug, Clone)]
enum Unit {
    Series(String),
    Instances(String, Vec<String>),
}

/// WADO-RS: retrieve a study (or the request's series) into the cache, asking
/// for the stored transfer syntaxes, only what the cache lacks, series in
/// parallel over the node's `parallel` connections, each answer's parts streamed
/// into staging files; the study marked complete or incomplete as for C-MOVE.
pub fn retrieve(
    peer: &Peer,
    req: &Request,
    ingest: &Arc<Ingest>,
    cancel: &AtomicBool,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Report> {
    let t0 = Instant::now();
    let client = Client::new(peer)?;
    let study = &req.study_uid;
    let store = Store::open(ingest.root())?;
    let cached: HashSet<String> = store.sop_uids_of_study(study)?;
    // 1. Plan: the series, and each one's instances.
    let series: Vec<String> = if req.series.is_empty() {
        client
            .qido_all(&format!("/studies/{study}/series?includefield=0020000E"))?
            .iter()
            .filter_map(|o| text(o, tags::SERIES_INSTANCE_UID))
            .collect()
    } else {
        req.series.clone()
    };
    // Each series' instances with their numbers (its middle image comes first).
    let mut listed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut middles: BTreeMap<String, String> = BTreeMap::new();
    let mut instances: Vec<ExpectedInstance> = Vec::new();
    for s in &series {
        let mut sops: Vec<(Option<i64>, String)> = client
            .qido_all(&format!(
                "/studies/{study}/series/{s}/instances?includefield=00080018&includefield=00200013"
            ))?
            .iter()
            .filter_map(|o| {
                // IS, a JSON number in DICOM JSON.
                let number = crate::dicom::attr::int(o, tags::INSTANCE_NUMBER);
                Some((number, text(o, tags::SOP_INSTANCE_UID)?))
            })
            .collect();
        sops.sort_by(|a, b| (a.0.is_none(), a.0, &a.1).cmp(&(b.0.is_none(), b.0, &b.1)));
        if let Some((_, mid)) = sops.get(sops.len() / 2)
            && sops.len() > 1
        {
            middles.insert(s.clone(), mid.clone());
        }
        instances.extend(sops.iter().map(|(number, sop)| ExpectedInstance {
            series_uid: s.clone(),
            sop_uid: sop.clone(),
            number: *number,
            position: None,
            orientation: None,
        }));
        listed.insert(s.clone(), sops.into_iter().map(|(_, u)| u).collect());
    }
    let expected: usize = listed.values().map(Vec::len).sum();
    let already_cached = listed
        .values()
        .flatten()
        .filter(|u| cached.contains(*u))
        .count();
    progress(Progress::Planned {
        series: listed.len(),
        instances: expected,
        already_cached,
    });
    store.set_retrieval(&Retrieval {
        study_uid: study.clone(),
        node: peer.node.name.clone(),
        state: RetrievalState::InProgress,
        expected,
        cached: already_cached,
        note: None,
    })?;
    let expect: Vec<RetrievalSeries> = listed
        .iter()
        .map(|(s, sops)| RetrievalSeries {
            series_uid: s.clone(),
            expected: sops.len(),
            middle_sop: middles.get(s).cloned(),
        })
        .collect();
    store.set_retrieval_series(study, &expect)?;
    store.set_retrieval_instances(study, &instances)?;
    // With `middle_first`, each series' missing middle image is one request
    // ahead of everything else; the series then follows whole (WADO-RS cannot
    // leave one out: the middle comes twice, and is stored once).
    let firsts: Vec<Unit> = middles
        .iter()
        .filter(|(_, m)| req.middle_first && !cached.contains(*m))
        .map(|(s, m)| Unit::Instances(s.clone(), vec![m.clone()]))
        .collect();
    let rest: Vec<Unit> = listed
        .iter()
        .filter_map(|(s, sops)| {
            let missing: Vec<String> = sops
                .iter()
                .filter(|u| !cached.contains(*u))
                .filter(|u| !(req.middle_first && middles.get(s) == Some(*u)))
                .cloned()
                .collect();
            if missing.is_empty() {
                None
            } else if sops.iter().all(|u| !cached.contains(u)) {
                Some(Unit::Series(s.clone()))
            } else {
                Some(Unit::Instances(s.clone(), missing))
            }
        })
        .collect();
    // 2. Fetch: the middle images (all of them before anything else), then
    // the rest.
    let to_fetch = expected - already_cached;
    let queue: Mutex<Vec<Unit>> = Mutex::new(Vec::new());
    // By SOP Instance UID: a middle image fetched first comes again with its series.
    let received: Mutex<HashSet<String>> = Mutex::new(HashSet::new());
    let problems: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let failed_instances: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let problem = |p: String| {
        if let Ok(mut v) = problems.lock() {
            v.push(p);
        }
    };
    for (k, phase) in [firsts, rest].into_iter().enumerate() {
        // Once the middle images are in: where every image of the series still
        // to come lies (WADO-RS `/metadata`), so a viewer showing the study
        // places them in their stacks before their pixels come.
        if k == 1 && req.middle_first && !phase.is_empty() && !cancel.load(Ordering::Relaxed) {
            let wanted: HashSet<&str> = phase
                .iter()
                .map(|u| match u {
                    Unit::Series(s) | Unit::Instances(s, _) => s.as_str(),
                })
                .collect();
            let mut placed = 0;
            for s in wanted {
                match client.series_geometry(study, s) {
                    Ok(g) => {
                        for i in instances.iter_mut().filter(|i| i.series_uid == s) {
                            if let Some(&(position, orientation)) = g.get(&i.sop_uid) {
                                i.position = position.or(i.position);
                                i.orientation = orientation.or(i.orientation);
                                placed += 1;
                            }
                        }
                    }
                    // Not every server has it: the viewer then places what is
                    // to come by Instance Number, as for DIMSE.
                    Err(e) => tracing::debug!("{}: series metadata: {e}", client.label),
                }
            }
            if placed > 0
                && let Err(e) = store.set_retrieval_instances(study, &instances)
            {
                tracing::debug!("recording where the images lie: {e}");
            }
        }
        if phase.is_empty() {
            continue;
        }
        let workers = req.parallel.max(1).min(phase.len());
        // Workers pop from the end.
        if let Ok(mut q) = queue.lock() {
            *q = phase.into_iter().rev().collect();
        }
        std::thread::scope(|sc| {
            for _ in 0..workers {
                sc.spawn(|| {
                    while let Some(unit) = queue.lock().ok().and_then(|mut q| q.pop()) {
                        if cancel.load(Ordering::Relaxed) {
                            break;
                        }
                        let paths: Vec<String> = match &unit {
                            Unit::Series(s) => vec![format!("/studies/{study}/series/{s}")],
                            Unit::Instances(s, sops) => sops
                                .iter()
                                .map(|i| format!("/studies/{study}/series/{s}/instances/{i}"))
                                .collect(),
                        };
                        for path in paths {
                            if cancel.load(Ordering::Relaxed) {
                                break;
                            }
                            let got = fetch(&client, &path, ingest, &|sop| {
                                let n = match received.lock() {
                                    Ok(mut r) => {
                                        if !r.insert(sop.to_string()) {
                                            return;
                                        }
                                        r.len()
                                    }
                                    Err(_) => return,
                                };
                                progress(Progress::Received {
                                    received: n,
                                    to_fetch,
                                });
                            });
                            if let Err((e, rejected)) = got {
                                problem(e.to_string());
                                if let Ok(mut f) = failed_instances.lock() {
                                    f.extend(rejected);
                                }
                            }
                        }
                    }
                });
            }
        });
    }
    // 3. Account: everything received is durable and indexed first.
    if let Err(e) = ingest.flush() {
        problem(e.to_string());
    }
    let cached = store.sop_uids_of_study(study)?;
    let missing_instances: Vec<String> = listed
        .values()
        .flatten()
        .filter(|u| !cached.contains(*u))
        .cloned()
        .collect();
    let missing = missing_instances.len();
    let mut problems = problems.into_inner().unwrap_or_default();
    let cancelled = cancel.load(Ordering::Relaxed);
    if cancelled {
        problems.push("cancelled".into());
    }
    if missing > 0 {
        problems.push(format!(
            "{missing} of {expected} instance(s) listed by the node are not in the cache"
        ));
    }
    let complete = problems.is_empty();
    store.set_retrieval(&Retrieval {
        study_uid: study.clone(),
        node: peer.node.name.clone(),
        state: if complete {
            RetrievalState::Complete
        } else {
            RetrievalState::Incomplete
        },
        expected,
        cached: expected - missing,
        note: (!problems.is_empty()).then(|| problems.join("; ")),
    })?;
    Ok(Report {
        study_uid: study.clone(),
        node: peer.label(),
        method: "WADO-RS".into(),
        series: listed.len(),
        expected,
        already_cached,
        received: received.lock().map(|r| r.len()).unwrap_or(0),
        failed: 0,
        warnings: 0,
        failed_instances: failed_instances.into_inner().unwrap_or_default(),
        missing,
        missing_instances,
        complete,
        cancelled,
        problems,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// One WADO-RS request: each part streamed into its staging file and handed to
/// the cache writer. An answer cut short keeps what came whole.
fn fetch(
    client: &Client,
    path: &str,
    ingest: &Ingest,
    on_stored: &dyn Fn(&str),
) -> std::result::Result<usize, (Error, Vec<String>)> {
    let resp = client
        .get(path, ACCEPT_DICOM)
        .map_err(|e| (e, Vec::new()))?;
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let boundary = multipart::boundary(&ct, Some("application/dicom")).map_err(|m| {
        (
            client.fail(NetFailure::Operation(format!("{path}: {m}"))),
            Vec::new(),
        )
    })?;
    let mut parts = multipart::Parts::new(resp.into_body().into_reader(), &boundary);
    let mut stored = 0;
    let mut rejected = Vec::new();
    loop {
        let mut receiving = match ingest.begin(&[]) {
            Ok(r) => r,
            Err(e) => return Err((e, rejected)),
        };
        let mut write_error = None;
        let next = parts.next_part(&mut |chunk| {
            if write_error.is_none()
                && let Err(e) = receiving.write(chunk)
            {
                write_error = Some(e);
            }
            Ok(())
        });
        let headers = match next {
            Ok(Some(h)) => h,
            Ok(None) => return Ok(stored),
            Err(e) => {
                return Err((
                    client.fail(NetFailure::Aborted(format!(
                        "{path}: {e} after {stored} object(s)"
                    ))),
                    rejected,
                ));
            }
        };
        if let Some(e) = write_error {
            return Err((e, rejected));
        }
        let ty = headers.get("content-type").unwrap_or("");
        if !ty.to_ascii_lowercase().starts_with("application/dicom") {
            rejected.push(format!("{path}: a part of type {ty:?}"));
            continue;
        }
        match receiving.finish("wado-rs") {
            Ok(receipt) => {
                stored += 1;
                on_stored(&receipt.sop_instance_uid);
            }
            Err(e) => rejected.push(format!("{path}: {e}")),
        }
    }
}

/// `echo` for a DICOMweb node: one QIDO-RS request.
pub fn echo(peer: &Peer) -> Result<f64> {
    let t = Instant::now();
    Client::new(peer)?.qido("/studies?limit=1")?;
    Ok(t.elapsed().as_secs_f64() * 1e3)
}

/// Whether a node speaks DICOMweb.
pub fn is_dicomweb(n: &Node) -> bool {
    n.protocol == crate::config::Protocol::Dicomweb
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::find::{Keys, Model};

    #[test]
    fn queries_become_qido_resources_and_parameters() {
        let mut q = Query::new(Level::Study);
        q.model = Model::StudyRoot;
        q.keys = Keys {
            patient_name: Some("DOE^J*".into()),
            date: Some("20240101-".into()),
            ..Default::default()
        };
        let p = qido_path(&q).expect("path");
        assert!(p.starts_with("/studies?"), "{p}");
        assert!(p.contains("00100010=DOE^J*"), "{p}");
        assert!(p.contains("00080020=20240101-"), "{p}");
        assert!(p.contains("includefield=00081030"), "{p}");
        let mut s = Query::new(Level::Series);
        s.keys.study_uid = Some("1.2.3".into());
        let p = qido_path(&s).expect("path");
        assert!(
            p.starts_with("/studies/1.2.3/series?") && !p.contains("0020000D="),
            "{p}"
        );
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(
            parse_token("abc.def\nmore\n"),
            ("abc.def".into(), TOKEN_TTL)
        );
        assert_eq!(
            parse_token("{\"access_token\": \"t0k\", \"expires_in\": 3600}"),
            ("t0k".into(), Duration::from_secs(3540))
        );
        assert_eq!(
            parse_token("{\"access_token\": \"x\", \"expires_in\": 30}").1,
            Duration::ZERO
        );
        assert_eq!(base64(b"ab"), "YWI=");
    }
}
