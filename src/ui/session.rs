//! What is open: studies opened from the cache (with their relevant priors), the
//! loader's results taken in, hanging them by protocol (or the fallback order),
//! the layout, and files dropped on the window.

use std::path::PathBuf;
use std::time::Instant;

use eframe::egui::{self};

use super::loader::Loaded;
use super::viewport::Viewport;
use super::*;
use crate::imaging::lut::{self, Window};
use crate::store::{Store, StudyRow};

/// What importing dropped files gave: the studies to open and how many files
/// failed, or why the import failed.
pub(super) type DropResult = std::result::Result<(Vec<String>, usize), String>;

impl App {
    pub(super) fn refresh_studies(&mut self) {
        match Store::open(&self.launch.cache).and_then(|s| s.studies()) {
            Ok(mut s) => {
                match self.browser.sort {
                    SortBy::Date => s.sort_by(|a, b| b.date.cmp(&a.date)),
                    SortBy::Name => s.sort_by(|a, b| {
                        a.patient_name
                            .to_lowercase()
                            .cmp(&b.patient_name.to_lowercase())
                            .then(b.date.cmp(&a.date))
                    }),
                }
                self.browser.studies = s;
            }
            Err(e) => self.session.status = format!("cache: {e}"),
        }
    }

    /// Ask the PACS nodes configured with `fetch_priors` for this study's priors
    /// (they are retrieved in the background and hung when they arrive).
    pub(super) fn look_for_remote_priors(&mut self, uid: &str) {
        let Some(me) = self.browser.studies.iter().find(|s| s.study_uid == uid) else {
            return;
        };
        let me = study_facts(me);
        let cached = self.browser.cached_uids();
        self.browser.pacs.fetch_priors(&me, &cached);
    }

    /// A study and its relevant priors in the cache (see
    /// [`crate::hanging::relevant_priors`]): the newest two.
    pub(super) fn with_priors(&self, uid: &str) -> Vec<String> {
        let mut out = vec![uid.to_string()];
        let Some(me) = self.browser.studies.iter().find(|s| s.study_uid == uid) else {
            return out;
        };
        let all: Vec<crate::hanging::StudyFacts> =
            self.browser.studies.iter().map(study_facts).collect();
        out.extend(crate::hanging::relevant_priors(&study_facts(me), &all, 2));
        out
    }

    /// Open studies from the cache: their files are scanned and decoded in the
    /// background; viewports fill as soon as the first frames arrive.
    pub(super) fn open(&mut self, study_uids: &[String]) {
        // One study: its relevant priors hang themselves (same patient, older,
        // sharing a modality, the newest two).
        let study_uids = if study_uids.len() == 1 {
            self.look_for_remote_priors(&study_uids[0]);
            self.with_priors(&study_uids[0])
        } else {
            study_uids.to_vec()
        };
        self.session.open_study = study_uids.first().cloned();
        let store = match Store::open(&self.launch.cache) {
            Ok(s) => s,
            Err(e) => {
                self.session.status = format!("cache: {e}");
                return;
            }
        };
        let mut files = Vec::new();
        // A study opened partly must say so: index errors are collected and shown.
        let mut problems = Vec::new();
        for uid in &study_uids {
            if let Err(e) = store.touch(uid) {
                tracing::warn!("cache: {e}");
            }
            let series = store.series_of(uid).unwrap_or_else(|e| {
                problems.push(e.to_string());
                Vec::new()
            });
            for se in series {
                let instances = store.instances_of(&se.series_uid).unwrap_or_else(|e| {
                    problems.push(e.to_string());
                    Vec::new()
                });
                for i in instances {
                    files.push(if i.linked {
                        PathBuf::from(&i.path)
                    } else {
                        self.launch.cache.join(&i.path)
                    });
                }
            }
        }
        self.session.notice = problems.first().map(|p| {
            format!(
                "opened in part: {p}{}",
                if problems.len() > 1 {
                    format!(" (and {} more)", problems.len() - 1)
                } else {
                    String::new()
                }
            )
        });
        self.session.sets.clear();
        self.residency.slots.clear();
        self.residency.thumbs.clear();
        self.session.measurements.clear();
        for v in &mut self.grid.viewports {
            *v = Viewport::new();
        }
        self.timing.opened_at = Some(Instant::now());
        self.timing.first_image_ms = None;
        self.session.status = format!("loading {} file(s)…", files.len());
        let (tx, rx) = loader::channel_pair();
        if let Err(e) = loader::load(files, tx, self.ctx.clone()) {
            self.session.status = format!("cannot start the loader: {e}");
        }
        self.session.rx = Some(rx);
    }

    /// Take what the loader has finished.
    pub(super) fn receive(&mut self, frame: &eframe::Frame) {
        let Some(rx) = &self.session.rx else { return };
        let mut got = Vec::new();
        while let Ok(m) = rx.try_recv() {
            got.push(m);
        }
        for m in got {
            match m {
                Loaded::Study {
                    headers,
                    sets,
                    failures,
                    ..
                } => {
                    self.session.headers = headers;
                    self.residency.slots = sets
                        .iter()
                        .map(|s| (0..s.set.frames.len()).map(|_| Slot::default()).collect())
                        .collect();
                    self.residency.thumbs = vec![None; sets.len()];
                    self.session.mpr.clear();
                    self.session.sets = sets;
                    self.session.failures = failures;
                    self.hang();
                    if let Some((r, c)) = self.launch.force_layout {
                        self.set_layout(r, c);
                    }
                    self.load_measurements();
                }
                Loaded::Frame { set, index, pixels } => {
                    let mid = self.session.sets.get(set).map(|s| s.set.frames.len() / 2);
                    let mid_failed = mid
                        .and_then(|m| self.residency.slots.get(set)?.get(m))
                        .is_some_and(|s| s.error.is_some());
                    if let Some(slot) = self
                        .residency
                        .slots
                        .get_mut(set)
                        .and_then(|s| s.get_mut(index))
                    {
                        match pixels {
                            Ok(p) => slot.pixels = Some(p),
                            Err(e) => slot.error = Some(e),
                        }
                    }
                    if (Some(index) == mid || mid_failed)
                        && self.residency.thumbs.get(set).is_some_and(Option::is_none)
                    {
                        self.make_thumbnail(set, index);
                    }
                }
            }
        }
        self.keep_resident(frame);
    }

    /// Hanging: by the best hanging protocol that applies to today's study (the
    /// newest open), else today's largest display set first, the same modality of
    /// older studies (priors) next, then the rest.
    pub(super) fn hang(&mut self) {
        let candidates: Vec<crate::hanging::Candidate> = self
            .session
            .sets
            .iter()
            .map(|s| {
                let h = s
                    .set
                    .frames
                    .first()
                    .and_then(|f| self.session.headers.get(f.instance));
                crate::hanging::Candidate {
                    study_uid: s.study_uid.clone(),
                    study_date: s.study_date.clone(),
                    study_description: s.study_description.clone(),
                    modality: s.modality.clone(),
                    body_part: h.and_then(|h| h.body_part.clone()).unwrap_or_default(),
                    series_description: s.series_description.clone(),
                    frames: s.set.frames.len(),
                }
            })
            .collect();
        if let Some(h) = crate::hanging::hang(&self.session.protocols, &candidates) {
            self.set_layout(h.layout.0, h.layout.1);
            for (k, (pick, window)) in h.viewports.iter().zip(&h.windows).enumerate() {
                let Some(v) = self.grid.viewports.get_mut(k) else {
                    continue;
                };
                *v = Viewport::new();
                match pick {
                    Ok(set) => {
                        v.set = Some(*set);
                        v.index = self.session.sets[*set].set.frames.len() / 2;
                        v.window = window
                            .as_deref()
                            .and_then(|w| lut::preset(w).map(|p| Window::new(p.center, p.width)));
                    }
                    Err(why) => v.note = Some(why.clone()),
                }
            }
            // Viewports beyond the protocol's rules: the sets not hung yet.
            let rules = h.viewports.len();
            for k in rules..self.grid.viewports.len() {
                let shown: Vec<usize> = self
                    .grid
                    .viewports
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i < k)
                    .filter_map(|(_, v)| v.set)
                    .collect();
                let next = (0..self.session.sets.len()).find(|s| !shown.contains(s));
                let v = &mut self.grid.viewports[k];
                *v = Viewport::new();
                if let Some(set) = next {
                    v.set = Some(set);
                    v.index = self.session.sets[set].set.frames.len() / 2;
                }
            }
            self.grid.active = 0;
            self.session.hanging_protocol = Some(h.protocol);
            return;
        }
        self.session.hanging_protocol = None;
        let picks = crate::hanging::fallback_order(&candidates);
        for (v, &set) in self.grid.viewports.iter_mut().zip(&picks) {
            v.set = Some(set);
            v.index = self.session.sets[set].set.frames.len() / 2;
        }
    }

    pub(super) fn set_layout(&mut self, rows: usize, cols: usize) {
        self.grid.layout = (rows, cols);
        self.grid.maximized = None;
        let n = rows * cols;
        while self.grid.viewports.len() < n {
            let mut v = Viewport::new();
            // Fill new viewports with sets not shown yet.
            let shown: Vec<usize> = self.grid.viewports.iter().filter_map(|v| v.set).collect();
            if let Some(s) = (0..self.session.sets.len()).find(|s| !shown.contains(s)) {
                v.set = Some(s);
                v.index = self.session.sets[s].set.frames.len() / 2;
            }
            self.grid.viewports.push(v);
        }
        self.grid.viewports.truncate(n);
        self.grid.active = self.grid.active.min(n - 1);
    }

    /// Show display set `set` in viewport `v`, at its middle image.
    pub(super) fn show_set(&mut self, v: usize, set: usize) {
        let Some(n) = self.session.sets.get(set).map(|s| s.set.frames.len()) else {
            return;
        };
        if let Some(vp) = self.grid.viewports.get_mut(v) {
            *vp = Viewport::new();
            vp.set = Some(set);
            vp.index = n / 2;
        }
        self.grid.active = v;
    }

    /// Files or folders dropped on the window: imported into the cache on a worker
    /// thread, then opened.
    pub(super) fn files_dropped(&mut self, ctx: &egui::Context) {
        let paths: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        });
        if !paths.is_empty() && self.session.dropped.is_none() {
            self.session.status = format!("importing {} dropped item(s)…", paths.len());
            let (tx, rx) = std::sync::mpsc::channel();
            let (cache, ctx2) = (self.launch.cache.clone(), ctx.clone());
            let spawned = std::thread::Builder::new()
                .name("import-drop".into())
                .spawn(move || {
                    let r = Store::open(&cache)
                        .and_then(|mut s| s.import(&paths, crate::store::ImportMode::Copy))
                        .map(|report| {
                            let mut uids = std::collections::BTreeSet::new();
                            for p in &paths {
                                if let Ok(s) = crate::scan::scan(p) {
                                    uids.extend(s.headers.into_iter().map(|h| h.study_uid));
                                }
                            }
                            (uids.into_iter().collect(), report.failures.len())
                        })
                        .map_err(|e| e.to_string());
                    let _ = tx.send(r);
                    ctx2.request_repaint();
                });
            match spawned {
                Ok(_) => self.session.dropped = Some(rx),
                Err(e) => self.session.status = format!("import: cannot start a thread: {e}"),
            }
        }
        let done = self
            .session
            .dropped
            .as_ref()
            .and_then(|rx| rx.try_recv().ok());
        if let Some(r) = done {
            self.session.dropped = None;
            self.refresh_studies();
            match r {
                Ok((uids, failures)) => {
                    self.session.status = if failures > 0 {
                        format!("{failures} dropped file(s) could not be imported")
                    } else {
                        String::new()
                    };
                    if !uids.is_empty() {
                        self.open(&uids);
                    }
                }
                Err(e) => self.session.status = format!("import failed: {e}"),
            }
        }
    }
}

/// What prior selection needs of a study in the cache.
pub(super) fn study_facts(s: &StudyRow) -> crate::hanging::StudyFacts {
    crate::hanging::StudyFacts {
        study_uid: s.study_uid.clone(),
        patient_id: s.patient_id.clone(),
        date: s.date.clone().unwrap_or_default(),
        modalities: s.modalities.clone(),
    }
}
