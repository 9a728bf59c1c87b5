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
pub(super) type DropResult = std::result::Result<(Vec<String>, Vec<(PathBuf, String)>), String>;

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
        self.browser.scroll_to_open = true;
        // A new study is hung by its own protocol: the reader's choice for the
        // last one, its MPR and its layout do not carry over.
        self.session.protocol_choice = crate::hanging::Choice::Automatic;
        self.grid.mpr_saved = None;
        self.session.opened_from = study_uids.first().and_then(|u| {
            let s = self.browser.studies.iter().find(|s| &s.study_uid == u)?;
            Some(match s.description.as_deref() {
                Some(d) if !d.trim().is_empty() => format!("the study \"{}\"", d.trim()),
                _ => "this study".to_string(),
            })
        });
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
            // Opened for reading: in the audit trail, with the patient.
            {
                use crate::audit::{Action, Event, EventId, Role};
                let who = store.patient_of(uid).ok().flatten();
                let (id, name, n) = who.unwrap_or_default();
                Event::new(
                    EventId::InstancesAccessed,
                    Action::Read,
                    "lightbox",
                    Role::Application,
                )
                .study(uid, Some(n))
                .patient(&id, &name)
                .describe("opened in the viewer")
                .record(&self.launch.cache);
            }
            files.extend(super::arriving::files_of(
                &store,
                &self.launch.cache,
                uid,
                &mut problems,
            ));
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
        self.session.failures.clear();
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
        // A study still being retrieved keeps growing as its images arrive.
        let retrieving: Vec<String> = study_uids
            .iter()
            .filter(|u| self.is_retrieving(&store, u))
            .cloned()
            .collect();
        let mut arriving =
            super::arriving::Arriving::new(retrieving, files.iter().cloned().collect());
        arriving.expect_from(&store);
        let expected = super::arriving::expected_instances(&store, &arriving.studies);
        self.session.arriving = Some(arriving);
        let (tx, rx) = loader::channel_pair();
        if let Err(e) = loader::load(files, expected, tx.clone(), self.ctx.clone()) {
            self.session.status = format!("cannot start the loader: {e}");
        }
        self.session.rx = Some(rx);
        self.session.tx = Some(tx);
    }

    /// Take what the loader has finished.
    pub(super) fn receive(&mut self) {
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
                    grown: true,
                    ..
                } => self.take_grown(headers, sets, failures),
                Loaded::Study {
                    headers,
                    sets,
                    failures,
                    ..
                } => {
                    if let Some(a) = &mut self.session.arriving {
                        a.growing = false;
                    }
                    self.session.frame_at = super::arriving::frame_index(&sets);
                    self.session.acquired = headers.len();
                    self.session.headers = headers;
                    self.residency.slots = sets
                        .iter()
                        .map(|s| (0..s.set.frames.len()).map(|_| Slot::default()).collect())
                        .collect();
                    self.residency.thumbs = vec![None; sets.len()];
                    self.session.mpr.clear();
                    self.session.sets = sets;
                    // Keep what the import before this open skipped (a folder
                    // given on the command line or dropped), add the loader's.
                    self.session.failures.extend(failures);
                    self.session.status.clear();
                    self.panels.show_skipped = !self.session.failures.is_empty();
                    self.hang();
                    let all: Vec<usize> = (0..self.grid.viewports.len()).collect();
                    self.open_at_middles(&all);
                    // A layout asked for on the command line: for the first study.
                    if let Some((r, c)) = self.launch.force_layout.take() {
                        self.set_layout(r, c);
                    }
                    self.load_measurements();
                }
                Loaded::Frame {
                    at,
                    pixels,
                    preview,
                } => {
                    let Some(&(set, index)) = self.session.frame_at.get(&at) else {
                        continue;
                    };
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
                        // A preview never replaces the full frame; either
                        // replaces a preview (its texture and expanded
                        // samples made again).
                        if preview.is_some() && slot.full().is_some() {
                            continue;
                        }
                        match pixels {
                            Ok(p) => slot.pixels = Some(p),
                            Err(e) => slot.error = Some(e),
                        }
                        slot.preview = preview;
                        slot.texture = None;
                        self.residency.expanded.remove(&(set, index));
                    }
                    if (Some(index) == mid || mid_failed)
                        && self.residency.thumbs.get(set).is_some_and(Option::is_none)
                    {
                        self.make_thumbnail(set, index);
                    }
                }
            }
        }
    }

    /// Hanging: by the protocol chosen in the toolbar, or (automatic) the best
    /// hanging protocol that applies to today's study (the newest open), its
    /// empty viewports given the sets not shown yet and the layout shrunk rather
    /// than leave panes empty; with no protocol, one viewport per display set in
    /// the layout that fits (see [`crate::hanging::arrange`]). Every viewport
    /// starts afresh (zoom, pan, window): nothing carries over from the study
    /// shown before.
    pub(super) fn hang(&mut self) {
        let candidates: Vec<crate::hanging::Candidate> = self
            .session
            .sets
            .iter()
            .filter(|s| s.derived.is_none())
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
        let h = crate::hanging::arrange(
            &self.session.protocols,
            &candidates,
            &self.session.protocol_choice,
        );
        self.grid.mpr_saved = None;
        self.grid.maximized = None;
        self.grid.layout = h.layout;
        let n = h.layout.0 * h.layout.1;
        self.grid.viewports = (0..n).map(|_| Viewport::new()).collect();
        for (k, pick) in h.viewports.iter().enumerate() {
            let v = &mut self.grid.viewports[k];
            match pick {
                Ok(set) => {
                    v.set = Some(*set);
                    v.index = self.session.sets[*set].set.frames.len() / 2;
                    v.window = h
                        .windows
                        .get(k)
                        .and_then(|w| w.as_deref())
                        .and_then(|w| lut::preset(w).map(|p| Window::new(p.center, p.width)));
                }
                Err(why) if !why.is_empty() => v.note = Some(why.clone()),
                Err(_) => {}
            }
        }
        if self.session.sets.is_empty() {
            let note = self.no_images_note();
            if let Some(v) = self.grid.viewports.first_mut() {
                v.note = Some(note);
            }
        }
        self.grid.active = 0;
        self.grid.link = None;
        self.session.hanging_protocol = Some(h.protocol);
    }

    /// What an empty study or folder says in its viewport.
    pub(super) fn no_images_note(&self) -> String {
        let what = self
            .session
            .opened_from
            .clone()
            .unwrap_or_else(|| "this study".into());
        if self.is_arriving() {
            return format!("{what} is being retrieved: its images show as they arrive");
        }
        match self.session.failures.len() {
            0 => format!("no images in {what}"),
            n => format!("no images in {what}: {n} file(s) skipped"),
        }
    }

    /// Hang the open studies again with the protocol chosen (or automatic).
    pub(super) fn choose_protocol(&mut self, choice: crate::hanging::Choice) {
        self.session.protocol_choice = choice;
        if !self.session.sets.is_empty() {
            // The reformats stay cached; the layout they were hung in is left.
            self.hang();
        }
    }

    /// Nothing could be opened from `from` (a folder given or dropped with no
    /// image in it): the viewer is emptied and says so in its viewport, with the
    /// files skipped and why in the skipped-files panel.
    pub(super) fn show_nothing(&mut self, from: String, failures: Vec<(PathBuf, String)>) {
        self.session.rx = None;
        self.session.tx = None;
        self.session.arriving = None;
        self.session.open_study = None;
        self.session.sets.clear();
        self.session.headers = std::sync::Arc::new(Vec::new());
        self.session.mpr.clear();
        self.session.measurements.clear();
        self.residency.slots.clear();
        self.residency.thumbs.clear();
        self.session.opened_from = Some(from);
        self.session.failures = failures;
        self.session.status.clear();
        self.panels.show_skipped = !self.session.failures.is_empty();
        self.hang();
        self.session.hanging_protocol = None;
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
            self.session.dropped_names = names_of(&paths);
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
                            (uids.into_iter().collect(), report.failures)
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
                    self.session.status = if failures.is_empty() {
                        String::new()
                    } else {
                        format!("{} dropped file(s) could not be imported", failures.len())
                    };
                    let from = std::mem::take(&mut self.session.dropped_names);
                    if uids.is_empty() {
                        self.show_nothing(from, failures);
                    } else {
                        self.open(&uids);
                        self.session.opened_from = Some(from);
                        self.session.failures = failures;
                        self.panels.show_skipped = !self.session.failures.is_empty();
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

/// How the reader would name what was given ("ct-folder", "3 items").
pub fn names_of(paths: &[PathBuf]) -> String {
    match paths {
        [one] => one
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| one.display().to_string()),
        many => format!("{} items", many.len()),
    }
}
