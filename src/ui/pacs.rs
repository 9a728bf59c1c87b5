//! The study browser's PACS tab: one per configured node. A C-FIND at study level
//! with the same keys as `lightbox find`, answers filling the table as they come;
//! retrieve (C-MOVE or C-GET, as the node is configured) into the local cache with
//! a progress bar per study and a cancel button. Finds and retrieves run on worker
//! threads; the UI only reads their messages. Retrieves run one at a time (a
//! C-MOVE needs our Storage SCP's port), queued in the order asked. Sending a
//! cached study or series to a node (from the Local tab's and the series strip's
//! menus) runs on a thread per send, its state shown under the study.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};

use dicom_dictionary_std::tags;
use eframe::egui::{self};

use crate::config::Node;
use crate::hanging::StudyFacts;
use crate::net::find::{self, Keys, Level, Model, Query};
use crate::net::retrieve::{self, Progress, Request};
use crate::net::scu::Peer;
use crate::net::send;
use crate::store::{Durability, Ingest};
use crate::ui::theme;

/// What the viewer knows of the network (from the configuration).
#[derive(Debug, Clone)]
pub struct PacsSettings {
    pub nodes: Vec<Node>,
    /// Our AE title.
    pub ae_title: String,
    /// Port of our Storage SCP during a C-MOVE.
    pub scp_port: u16,
    /// Port of our TLS Storage SCP during a C-MOVE from a TLS node.
    pub tls_port: Option<u16>,
    /// Our TLS identity.
    pub identity: crate::config::TlsIdentity,
    pub durability: Durability,
}

impl Default for PacsSettings {
    fn default() -> PacsSettings {
        PacsSettings {
            nodes: Vec::new(),
            ae_title: "LIGHTBOX".into(),
            scp_port: 11112,
            tls_port: None,
            identity: crate::config::TlsIdentity::default(),
            durability: Durability::Batched,
        }
    }
}

/// A study a node answered with.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteStudy {
    pub study_uid: String,
    pub patient_name: String,
    pub patient_id: String,
    pub date: String,
    pub modalities: String,
    pub description: String,
    pub accession: String,
    pub instances: Option<usize>,
}

/// Where a retrieve stands.
#[derive(Debug, Clone, PartialEq)]
pub enum RetrieveState {
    Queued,
    Running { received: usize, to_fetch: usize },
    Done { complete: bool, text: String },
    Failed(String),
}

enum Msg {
    /// Priors a node has for the study opened (node, study opened, their UIDs).
    Priors(usize, String, Vec<String>),
    /// A node could not be asked for priors (node, why).
    PriorsFailed(usize, String),
    Match(u64, RemoteStudy),
    FindDone(u64, Result<String, String>),
    Progress(String, usize, usize),
    RetrieveDone(String, Result<retrieve::Report, String>),
    /// A send's progress: (study, node), objects answered, objects to send.
    SendProgress((String, usize), usize, usize),
    SendDone((String, usize), Result<send::Report, String>),
}

/// Where sending a study (or a series) to a node stands.
#[derive(Debug, Clone, PartialEq)]
pub enum SendState {
    Running { done: usize, to_send: usize },
    Done { complete: bool, text: String },
    Failed(String),
}

struct Job {
    peer: Peer,
    req: Request,
    cancel: Arc<AtomicBool>,
}

/// What the user asked the app to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Open a study now in the cache.
    Open(String),
}

/// The PACS tabs' state.
pub struct Pacs {
    settings: PacsSettings,
    cache: PathBuf,
    /// The node shown.
    pub node: usize,
    name: String,
    patient_id: String,
    date: String,
    modality: String,
    accession: String,
    description: String,
    referring: String,
    study_uid: String,
    results: Vec<RemoteStudy>,
    /// Generation of the find whose answers are shown (older answers are dropped).
    generation: u64,
    finding: Option<Arc<AtomicBool>>,
    find_status: String,
    jobs: HashMap<String, (RetrieveState, Arc<AtomicBool>)>,
    /// Sends from the cache, by (study UID, node index).
    sends: HashMap<(String, usize), SendState>,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    worker: Option<Sender<Job>>,
    /// Studies retrieved since the app last asked (it refreshes its list).
    pub arrived: bool,
    /// Priors being fetched, by prior study UID: the study they are priors of.
    prior_of: HashMap<String, String>,
    /// Priors whose retrieve was just queued, or just ended: (the study they are
    /// priors of, the prior). The app watches them arrive and hangs them beside
    /// it.
    pub priors_queued: Vec<(String, String)>,
    /// What the prior search is doing, for the status bar.
    pub prior_status: Option<String>,
    ctx: egui::Context,
}

impl std::fmt::Debug for Pacs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pacs")
            .field("nodes", &self.settings.nodes.len())
            .finish()
    }
}

fn opt(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

impl Pacs {
    pub fn new(settings: PacsSettings, cache: PathBuf, ctx: egui::Context) -> Pacs {
        let (tx, rx) = channel();
        Pacs {
            settings,
            cache,
            node: 0,
            name: String::new(),
            patient_id: String::new(),
            date: String::new(),
            modality: String::new(),
            accession: String::new(),
            description: String::new(),
            referring: String::new(),
            study_uid: String::new(),
            results: Vec::new(),
            generation: 0,
            finding: None,
            find_status: String::new(),
            jobs: HashMap::new(),
            sends: HashMap::new(),
            tx,
            rx,
            worker: None,
            arrived: false,
            prior_of: HashMap::new(),
            priors_queued: Vec::new(),
            prior_status: None,
            ctx,
        }
    }

    /// Configured node names (one tab each).
    pub fn node_names(&self) -> Vec<String> {
        self.settings.nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// The answers shown.
    pub fn results(&self) -> &[RemoteStudy] {
        &self.results
    }

    /// A study's retrieve state.
    pub fn state_of(&self, study_uid: &str) -> Option<&RetrieveState> {
        self.jobs.get(study_uid).map(|j| &j.0)
    }

    fn peer(&self, node: usize) -> Option<Peer> {
        let node = self.settings.nodes.get(node)?.clone();
        Some(Peer::new(node, &self.settings.ae_title).with_identity(self.settings.identity.clone()))
    }

    fn query(&self) -> Query {
        let mut q = Query::new(Level::Study);
        q.model = Model::StudyRoot;
        q.keys = Keys {
            patient_name: opt(&self.name),
            patient_id: opt(&self.patient_id),
            accession: opt(&self.accession),
            date: opt(&self.date),
            modality: opt(&self.modality).map(|m| m.to_uppercase()),
            study_description: opt(&self.description),
            referring_physician: opt(&self.referring),
            study_uid: opt(&self.study_uid),
            ..Default::default()
        };
        q.limit = Some(1000);
        q
    }

    /// Start a C-FIND with the form's keys (cancelling one under way).
    pub fn start_find(&mut self) {
        if let Some(c) = self.finding.take() {
            c.store(true, Ordering::Relaxed);
        }
        let Some(peer) = self.peer(self.node) else {
            return;
        };
        let q = self.query();
        if let Err(e) = q.validate() {
            self.find_status = e.to_string();
            return;
        }
        self.generation += 1;
        self.results.clear();
        self.find_status = format!("querying {}…", peer.label());
        let generation = self.generation;
        let cancel = Arc::new(AtomicBool::new(false));
        self.finding = Some(Arc::clone(&cancel));
        let (tx, ctx) = (self.tx.clone(), self.ctx.clone());
        let spawned = std::thread::Builder::new()
            .name("find".into())
            .spawn(move || {
                let mut on_match = |m: &find::Match| {
                    let get = |t| m.get(t).unwrap_or_default();
                    let Some(uid) = m.get(tags::STUDY_INSTANCE_UID) else {
                        return;
                    };
                    let _ = tx.send(Msg::Match(
                        generation,
                        RemoteStudy {
                            study_uid: uid,
                            patient_name: get(tags::PATIENT_NAME).replace('^', " "),
                            patient_id: get(tags::PATIENT_ID),
                            date: get(tags::STUDY_DATE),
                            modalities: get(tags::MODALITIES_IN_STUDY).replace('\\', "/"),
                            description: get(tags::STUDY_DESCRIPTION),
                            accession: get(tags::ACCESSION_NUMBER),
                            instances: m.count(tags::NUMBER_OF_STUDY_RELATED_INSTANCES),
                        },
                    ));
                    ctx.request_repaint();
                };
                let r = find::find(&peer, &q, &cancel, &mut on_match)
                    .map(|o| {
                        let n = o.matches.len();
                        format!(
                            "{n} stud{} on {}{}{}",
                            if n == 1 { "y" } else { "ies" },
                            peer.label(),
                            if o.cancelled { " (stopped)" } else { "" },
                            if o.partial_keys {
                                " (the node ignored some keys)"
                            } else {
                                ""
                            }
                        )
                    })
                    .map_err(|e| e.to_string());
                let _ = tx.send(Msg::FindDone(generation, r));
                ctx.request_repaint();
            });
        if let Err(e) = spawned {
            self.finding = None;
            self.find_status = format!("query failed: cannot start a thread: {e}");
        }
    }

    /// Queue a retrieve of a study into the cache (from the node shown).
    pub fn start_retrieve(&mut self, study_uid: &str) {
        let node = self.node;
        self.start_retrieve_from(node, study_uid);
    }

    /// Look on every node configured with `fetch_priors` for older studies of
    /// `patient_id` sharing a modality with the study opened; the newest two not
    /// cached are retrieved, each named in [`Self::priors_queued`] as its
    /// retrieve is queued.
    pub fn fetch_priors(&mut self, me: &StudyFacts, cached: &HashSet<String>) {
        if me.patient_id.trim().is_empty() || find::check_date(&me.date).is_err() {
            return;
        }
        for (k, node) in self.settings.nodes.iter().enumerate() {
            if !node.fetch_priors {
                continue;
            }
            let peer = Peer::new(node.clone(), &self.settings.ae_title)
                .with_identity(self.settings.identity.clone());
            let mut q = Query::new(Level::Study);
            q.model = Model::StudyRoot;
            q.keys = Keys {
                patient_id: Some(me.patient_id.clone()),
                date: Some(format!("-{}", me.date)),
                ..Default::default()
            };
            q.limit = Some(200);
            let (tx, ctx) = (self.tx.clone(), self.ctx.clone());
            let (me, cached) = (me.clone(), cached.clone());
            self.prior_status = Some(format!("looking for priors on {}…", node.name));
            let name = node.name.clone();
            let spawned = std::thread::Builder::new()
                .name("find-priors".into())
                .spawn(move || {
                    let cancel = AtomicBool::new(false);
                    let mut found: Vec<StudyFacts> = Vec::new();
                    let mut on_match = |m: &find::Match| {
                        let Some(uid) = m.get(tags::STUDY_INSTANCE_UID) else {
                            return;
                        };
                        if cached.contains(&uid) {
                            return;
                        }
                        found.push(StudyFacts {
                            study_uid: uid,
                            // The node was asked for this patient only.
                            patient_id: me.patient_id.clone(),
                            date: m.get(tags::STUDY_DATE).unwrap_or_default(),
                            modalities: m
                                .get(tags::MODALITIES_IN_STUDY)
                                .unwrap_or_default()
                                .split('\\')
                                .map(|x| x.trim().to_string())
                                .filter(|x| !x.is_empty())
                                .collect(),
                        });
                    };
                    let msg = match find::find(&peer, &q, &cancel, &mut on_match) {
                        Ok(_) => Msg::Priors(
                            k,
                            me.study_uid.clone(),
                            crate::hanging::relevant_priors(&me, &found, 2),
                        ),
                        // A failed query is not "no priors": say so.
                        Err(e) => Msg::PriorsFailed(k, e.to_string()),
                    };
                    let _ = tx.send(msg);
                    ctx.request_repaint();
                });
            if let Err(e) = spawned {
                self.prior_status = Some(format!("priors on {name}: cannot start a thread: {e}"));
            }
        }
    }

    /// Queue a retrieve of a study into the cache from node `node`.
    pub fn start_retrieve_from(&mut self, node: usize, study_uid: &str) {
        let Some(peer) = self.peer(node) else {
            return;
        };
        if matches!(
            self.state_of(study_uid),
            Some(RetrieveState::Queued | RetrieveState::Running { .. })
        ) {
            return;
        }
        let req = Request {
            study_uid: study_uid.to_string(),
            series: Vec::new(),
            method: peer.node.retrieve,
            parallel: peer.node.parallel.max(1),
            scp_port: match (peer.node.tls, self.settings.tls_port) {
                (true, Some(p)) => p,
                _ => self.settings.scp_port,
            },
            scp_bind: "0.0.0.0".into(),
            // A study opened while it arrives shows its middle slices first.
            middle_first: true,
        };
        let cancel = Arc::new(AtomicBool::new(false));
        self.jobs.insert(
            study_uid.to_string(),
            (RetrieveState::Queued, Arc::clone(&cancel)),
        );
        let worker = self.worker.get_or_insert_with(|| {
            let (jtx, jrx) = channel::<Job>();
            let (tx, ctx) = (self.tx.clone(), self.ctx.clone());
            let (cache, durability) = (self.cache.clone(), self.settings.durability);
            let spawned = std::thread::Builder::new()
                .name("retrieve".into())
                .spawn(move || {
                    while let Ok(job) = jrx.recv() {
                        let study = job.req.study_uid.clone();
                        if job.cancel.load(Ordering::Relaxed) {
                            let _ = tx.send(Msg::RetrieveDone(study, Err("cancelled".into())));
                            ctx.request_repaint();
                            continue;
                        }
                        let progress = |p: Progress| {
                            if let Progress::Received { received, to_fetch } = p {
                                let _ = tx.send(Msg::Progress(study.clone(), received, to_fetch));
                                ctx.request_repaint();
                            } else if let Progress::Planned {
                                instances,
                                already_cached,
                                ..
                            } = p
                            {
                                let _ = tx.send(Msg::Progress(
                                    study.clone(),
                                    0,
                                    instances.saturating_sub(already_cached),
                                ));
                                ctx.request_repaint();
                            }
                        };
                        let r = Ingest::start(&cache, durability)
                            .map(Arc::new)
                            .and_then(|ingest| {
                                retrieve::retrieve(
                                    &job.peer,
                                    &job.req,
                                    &ingest,
                                    &job.cancel,
                                    &progress,
                                )
                            })
                            .map_err(|e| e.to_string());
                        let _ = tx.send(Msg::RetrieveDone(study, r));
                        ctx.request_repaint();
                    }
                });
            if let Err(e) = spawned {
                tracing::error!("cannot start the retrieve worker: {e}");
            }
            jtx
        });
        if worker.send(Job { peer, req, cancel }).is_err() {
            // The worker could not start (or stopped): say so on the study.
            self.worker = None;
            if let Some(j) = self.jobs.get_mut(study_uid) {
                j.0 = RetrieveState::Failed("the retrieve worker is not running".into());
            }
        }
    }

    /// Send a cached study (or one of its series) to a node, on a thread of its
    /// own; what the node acknowledged before is not sent again.
    pub fn start_send(&mut self, node: usize, study_uid: &str, series: Option<String>) {
        let Some(peer) = self.peer(node) else {
            return;
        };
        let key = (study_uid.to_string(), node);
        if matches!(self.sends.get(&key), Some(SendState::Running { .. })) {
            return;
        }
        self.sends.insert(
            key.clone(),
            SendState::Running {
                done: 0,
                to_send: 0,
            },
        );
        let (tx, ctx, cache) = (self.tx.clone(), self.ctx.clone(), self.cache.clone());
        let study = study_uid.to_string();
        let spawned = std::thread::Builder::new()
            .name("send".into())
            .spawn(move || {
                let progress = |p: send::Progress| {
                    let (done, to_send) = match p {
                        send::Progress::Planned {
                            objects,
                            already_sent,
                        } => (0, objects - already_sent),
                        send::Progress::Sent { done, to_send } => (done, to_send),
                        send::Progress::Note(_) => return,
                    };
                    let _ = tx.send(Msg::SendProgress(key.clone(), done, to_send));
                    ctx.request_repaint();
                };
                let opts = send::Options {
                    parallel: peer.node.parallel.max(1),
                    force: false,
                };
                let cancel = AtomicBool::new(false);
                let r = crate::store::Store::open(&cache)
                    .and_then(|store| {
                        let items = send::from_cache(&store, &study, series.as_slice())?;
                        send::send(&peer, items, Some(store), &opts, &cancel, &progress)
                    })
                    .map_err(|e| e.to_string());
                let _ = tx.send(Msg::SendDone(key, r));
                ctx.request_repaint();
            });
        if let Err(e) = spawned {
            self.sends.insert(
                (study_uid.to_string(), node),
                SendState::Failed(format!("cannot start a thread: {e}")),
            );
        }
    }

    /// Sends of a study to each node, with the node's name.
    pub fn sends_of(&self, study_uid: &str) -> Vec<(String, &SendState)> {
        let mut v: Vec<(usize, &SendState)> = self
            .sends
            .iter()
            .filter(|((s, _), _)| s == study_uid)
            .map(|((_, n), st)| (*n, st))
            .collect();
        v.sort_by_key(|(n, _)| *n);
        v.into_iter()
            .map(|(n, st)| {
                let name = self
                    .settings
                    .nodes
                    .get(n)
                    .map(|x| x.name.clone())
                    .unwrap_or_default();
                (name, st)
            })
            .collect()
    }

    /// Cancel a queued or running retrieve (C-CANCEL; what arrived stays cached).
    pub fn cancel(&mut self, study_uid: &str) {
        if let Some((_, c)) = self.jobs.get(study_uid) {
            c.store(true, Ordering::Relaxed);
        }
    }

    /// Take the workers' messages.
    pub fn poll(&mut self) {
        while let Ok(m) = self.rx.try_recv() {
            match m {
                Msg::PriorsFailed(node, why) => {
                    let name = self
                        .settings
                        .nodes
                        .get(node)
                        .map(|n| n.name.clone())
                        .unwrap_or_default();
                    self.prior_status = Some(format!("priors on {name}: query failed: {why}"));
                }
                Msg::Priors(node, study, uids) => {
                    self.prior_status = if uids.is_empty() {
                        None
                    } else {
                        Some(format!("retrieving {} prior(s)…", uids.len()))
                    };
                    for uid in uids {
                        self.prior_of.insert(uid.clone(), study.clone());
                        self.start_retrieve_from(node, &uid);
                        self.priors_queued.push((study.clone(), uid));
                    }
                }
                Msg::Match(g, s) if g == self.generation => self.results.push(s),
                Msg::FindDone(g, r) if g == self.generation => {
                    self.finding = None;
                    self.find_status = match r {
                        Ok(t) => t,
                        Err(e) => format!("query failed: {e}"),
                    };
                }
                Msg::Progress(study, received, to_fetch) => {
                    if let Some(j) = self.jobs.get_mut(&study) {
                        // Its first images are in: the study can be opened (the
                        // local list shows it) while the rest arrive.
                        if received > 0
                            && !matches!(j.0, RetrieveState::Running { received: r, .. } if r > 0)
                        {
                            self.arrived = true;
                        }
                        j.0 = RetrieveState::Running { received, to_fetch };
                    }
                }
                Msg::RetrieveDone(study, r) => {
                    let state = match r {
                        Ok(rep) => {
                            self.arrived = true;
                            let cached = rep.expected - rep.missing;
                            RetrieveState::Done {
                                complete: rep.complete,
                                text: if rep.complete {
                                    format!("{cached} images cached")
                                } else if rep.cancelled {
                                    format!("cancelled: {cached}/{} cached", rep.expected)
                                } else {
                                    format!(
                                        "incomplete: {cached}/{} cached{}",
                                        rep.expected,
                                        rep.problems
                                            .first()
                                            .map(|p| format!(" ({p})"))
                                            .unwrap_or_default()
                                    )
                                },
                            }
                        }
                        Err(e) => RetrieveState::Failed(e),
                    };
                    if let Some(of) = self.prior_of.remove(&study) {
                        if self.prior_of.is_empty() {
                            self.prior_status = None;
                        }
                        // Named again when it ends: the app makes sure what came
                        // is open (whatever its watch saw while it ran).
                        self.priors_queued.push((of, study.clone()));
                    }
                    if let Some(j) = self.jobs.get_mut(&study) {
                        j.0 = state;
                    }
                }
                Msg::SendProgress(key, done, to_send) => {
                    self.sends.insert(key, SendState::Running { done, to_send });
                }
                Msg::SendDone(key, r) => {
                    let state = match r {
                        Ok(rep) => {
                            let acked = rep.sent + rep.already_sent;
                            SendState::Done {
                                complete: rep.complete,
                                text: if rep.complete {
                                    format!("{acked}/{} acknowledged", rep.objects)
                                } else {
                                    format!(
                                        "incomplete: {acked}/{} acknowledged{}",
                                        rep.objects,
                                        rep.failed
                                            .first()
                                            .map(|f| format!(" ({})", f.reason))
                                            .or_else(|| {
                                                rep.problems.first().map(|p| format!(" ({p})"))
                                            })
                                            .unwrap_or_default()
                                    )
                                },
                            }
                        }
                        Err(e) => SendState::Failed(e),
                    };
                    self.sends.insert(key, state);
                }
                _ => {}
            }
        }
    }

    /// The tab for the selected node: query form, answers, retrieves.
    /// (The app calls [`Self::poll`] every frame, whichever tab is shown.)
    pub fn ui(&mut self, ui: &mut egui::Ui, cached: &HashSet<String>) -> Option<Action> {
        let Some(node) = self.settings.nodes.get(self.node) else {
            ui.label(
                "No PACS configured: add a [[nodes]] entry to the configuration (lightbox config).",
            );
            return None;
        };
        // A DICOMweb node by its URL (QIDO-RS/WADO-RS), a DIMSE one by its
        // address and retrieve method.
        ui.label(match node.url.as_deref() {
            Some(url) if crate::net::dicomweb::is_dicomweb(node) => format!(
                "{} — {} (QIDO-RS, WADO-RS)",
                node.name,
                url.trim_end_matches('/')
            ),
            _ => format!(
                "{} — {}@{}:{} ({})",
                node.name,
                node.ae_title,
                node.host,
                node.port,
                match node.retrieve {
                    crate::config::RetrieveMethod::Move => "C-MOVE",
                    crate::config::RetrieveMethod::Get => "C-GET",
                }
            ),
        });
        let mut submit = false;
        egui::Grid::new("pacs-keys").num_columns(2).show(ui, |ui| {
            for (label, value, hint) in [
                ("Patient name", &mut self.name, "SMITH*"),
                ("Patient ID", &mut self.patient_id, ""),
                ("Date", &mut self.date, "20240101- or 20240101-20241231"),
                ("Modality", &mut self.modality, "CT"),
                ("Accession", &mut self.accession, ""),
                ("Description", &mut self.description, "*CHEST*"),
                ("Referring", &mut self.referring, "SMITH*"),
                ("Study UID", &mut self.study_uid, ""),
            ] {
                let l = ui.label(label);
                let r = ui
                    .add(egui::TextEdit::singleline(value).hint_text(hint))
                    .labelled_by(l.id);
                if r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                    submit = true;
                }
                ui.end_row();
            }
        });
        ui.horizontal(|ui| {
            if ui.button("Find").clicked() {
                submit = true;
            }
            if let Some(c) = &self.finding
                && ui.button("Stop").clicked()
            {
                c.store(true, Ordering::Relaxed);
            }
        });
        if submit {
            self.start_find();
        }
        if !self.find_status.is_empty() {
            ui.colored_label(theme::MUTED, &self.find_status);
        }
        ui.separator();
        let mut action = None;
        let mut retrieve = None;
        let mut cancel = None;
        egui::ScrollArea::vertical()
            .id_salt("pacs-results")
            .show(ui, |ui| {
                for s in &self.results {
                    ui.label(format!(
                        "{}  {}\n{}  {}  {}{}",
                        s.patient_name,
                        s.patient_id,
                        s.date,
                        s.modalities,
                        s.description,
                        s.instances
                            .map(|n| format!("  {n} images"))
                            .unwrap_or_default()
                    ));
                    ui.horizontal(|ui| match self.jobs.get(&s.study_uid).map(|j| &j.0) {
                        Some(RetrieveState::Queued) => {
                            ui.label("queued");
                            if ui.small_button("cancel").clicked() {
                                cancel = Some(s.study_uid.clone());
                            }
                        }
                        Some(RetrieveState::Running { received, to_fetch }) => {
                            let f = if *to_fetch > 0 {
                                *received as f32 / *to_fetch as f32
                            } else {
                                0.0
                            };
                            ui.add(
                                egui::ProgressBar::new(f)
                                    .desired_width(140.0)
                                    .text(format!("{received}/{to_fetch}")),
                            );
                            if ui.small_button("cancel").clicked() {
                                cancel = Some(s.study_uid.clone());
                            }
                            // Opened while it arrives: images show as they come.
                            if ui
                                .small_button("open")
                                .on_hover_text("open now: the images show as they arrive")
                                .clicked()
                            {
                                action = Some(Action::Open(s.study_uid.clone()));
                            }
                        }
                        state => {
                            match state {
                                Some(RetrieveState::Done { complete, text }) => {
                                    ui.colored_label(
                                        if *complete { theme::OK } else { theme::WARNING },
                                        text,
                                    );
                                }
                                Some(RetrieveState::Failed(e)) => {
                                    ui.colored_label(theme::ERROR, e).on_hover_text(e);
                                }
                                _ => {}
                            }
                            let have = cached.contains(&s.study_uid);
                            if ui
                                .small_button(if have { "retrieve again" } else { "retrieve" })
                                .clicked()
                            {
                                retrieve = Some(s.study_uid.clone());
                            }
                            if have && ui.small_button("open").clicked() {
                                action = Some(Action::Open(s.study_uid.clone()));
                            }
                        }
                    });
                    ui.separator();
                }
            });
        if let Some(uid) = retrieve {
            self.start_retrieve(&uid);
        }
        if let Some(uid) = cancel {
            self.cancel(&uid);
        }
        action
    }
}
