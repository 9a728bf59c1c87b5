//! A study opened while it is being retrieved (by this viewer's PACS tab or by
//! `lightbox retrieve` in another process, over DIMSE or DICOMweb): the cache's
//! index is looked at a few times a second for the study's new instances, which
//! are scanned, grouped in with what is open and decoded — what was decoded,
//! what the viewports show (the same image, wherever it now sorts) and the
//! viewports themselves carry over. A retrieve fetches each series' middle image
//! first, so the slice a stack opens at is the first to come. Each viewport of
//! an arriving study says how many images are still to come.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::loader::{self, LoadedSet};
use super::viewport::Viewport;
use super::*;
use crate::model::FrameRef;
use crate::store::{RetrievalState, Store};

/// How often the index is asked for new instances.
const POLL: Duration = Duration::from_millis(300);
/// A retrieve in another process that stored nothing for this long is taken as
/// gone (killed, or its node silent): the viewer stops waiting and says so.
const GIVE_UP: Duration = Duration::from_secs(60);

/// What is known of studies still arriving (made for every open; `studies`
/// empty when nothing is).
#[derive(Debug)]
pub(super) struct Arriving {
    pub(super) studies: Vec<String>,
    /// Files already handed to the loader.
    pub(super) known: HashSet<PathBuf>,
    pub(super) next_poll: Instant,
    pub(super) last_new: Instant,
    /// A scan of new files is under way (its display sets not taken yet).
    pub(super) growing: bool,
    /// Per study: images in the cache and images the node listed.
    pub(super) counts: HashMap<String, (usize, usize)>,
    /// Per series: the same.
    pub(super) series: HashMap<String, (usize, usize)>,
    /// Per series: the middle image, fetched first (the slice a stack opens at).
    pub(super) middles: HashMap<String, String>,
    /// The index, kept open between polls (opening it sweeps the cache's
    /// temporaries and staging folders: not work for three times a second).
    index: Option<Store>,
}

impl Arriving {
    pub(super) fn new(studies: Vec<String>, known: HashSet<PathBuf>) -> Arriving {
        let now = Instant::now();
        Arriving {
            studies,
            known,
            next_poll: now,
            last_new: now,
            // The first load's display sets come first.
            growing: true,
            counts: HashMap::new(),
            series: HashMap::new(),
            middles: HashMap::new(),
            index: None,
        }
    }
}

/// The middle image of each series a retrieve expects, by series.
fn middles_of(expect: &[crate::store::RetrievalSeries]) -> HashMap<String, String> {
    expect
        .iter()
        .filter_map(|e| Some((e.series_uid.clone(), e.middle_sop.clone()?)))
        .collect()
}

impl Arriving {
    /// What the retrieves of the studies arriving expect (read at open, so the
    /// first hanging opens each stack at its middle image).
    pub(super) fn expect_from(&mut self, store: &Store) {
        for uid in &self.studies {
            let expect = store.retrieval_series(uid).unwrap_or_default();
            self.middles.extend(middles_of(&expect));
        }
    }
}

/// The instances the retrieves of `studies` list (for their stand-ins).
pub(super) fn expected_instances(
    store: &Store,
    studies: &[String],
) -> Vec<crate::store::ExpectedInstance> {
    studies
        .iter()
        .flat_map(|u| store.retrieval_instances(u).unwrap_or_default())
        .collect()
}

/// The files of study `uid` in the cache, by series (index errors go to
/// `problems`).
pub(super) fn files_by_series(
    store: &Store,
    cache: &Path,
    uid: &str,
    problems: &mut Vec<String>,
) -> Vec<(String, Vec<PathBuf>)> {
    let series = store.series_of(uid).unwrap_or_else(|e| {
        problems.push(e.to_string());
        Vec::new()
    });
    series
        .into_iter()
        .map(|se| {
            let instances = store.instances_of(&se.series_uid).unwrap_or_else(|e| {
                problems.push(e.to_string());
                Vec::new()
            });
            let files = instances
                .into_iter()
                .map(|i| {
                    if i.linked {
                        PathBuf::from(&i.path)
                    } else {
                        cache.join(&i.path)
                    }
                })
                .collect();
            (se.series_uid, files)
        })
        .collect()
}

/// The files of study `uid` in the cache (index errors go to `problems`).
pub(super) fn files_of(
    store: &Store,
    cache: &Path,
    uid: &str,
    problems: &mut Vec<String>,
) -> Vec<PathBuf> {
    files_by_series(store, cache, uid, problems)
        .into_iter()
        .flat_map(|(_, f)| f)
        .collect()
}

/// Where each frame of `sets` is (set, index).
pub(super) fn frame_index(sets: &[LoadedSet]) -> HashMap<FrameRef, (usize, usize)> {
    let mut at = HashMap::new();
    for (s, ls) in sets.iter().enumerate() {
        for (i, f) in ls.set.frames.iter().enumerate() {
            at.insert(*f, (s, i));
        }
    }
    at
}

impl App {
    /// Is `uid` being retrieved, by this viewer or (by the index) anyone?
    pub(super) fn is_retrieving(&self, store: &Store, uid: &str) -> bool {
        use super::pacs::RetrieveState;
        if matches!(
            self.browser.pacs.state_of(uid),
            Some(RetrieveState::Queued | RetrieveState::Running { .. })
        ) {
            return true;
        }
        matches!(
            store.retrieval(uid),
            Ok(Some(r)) if r.state == RetrievalState::InProgress
        )
    }

    /// Images still to come for study `uid`, when it is arriving: (in the
    /// cache, listed by the node).
    pub fn arriving_count(&self, uid: &str) -> Option<(usize, usize)> {
        self.session.arriving.as_ref()?.counts.get(uid).copied()
    }

    /// Images of series `uid` still to come, when its study is arriving: (in
    /// the cache, listed by the node).
    pub fn arriving_series(&self, uid: &str) -> Option<(usize, usize)> {
        self.session.arriving.as_ref()?.series.get(uid).copied()
    }

    /// Viewports `only` showing a stack still arriving open at its middle image
    /// (by Instance Number, the one the retrieve fetched first) once it is here.
    pub(super) fn open_at_middles(&mut self, only: &[usize]) {
        let Some(a) = &self.session.arriving else {
            return;
        };
        for (k, v) in self.grid.viewports.iter_mut().enumerate() {
            if !only.contains(&k) {
                continue;
            }
            let Some(ls) = v.set.and_then(|s| self.session.sets.get(s)) else {
                continue;
            };
            let at = ls.set.frames.iter().position(|f| {
                self.session
                    .headers
                    .get(f.instance)
                    .is_some_and(|h| a.middles.get(&h.series_uid) == Some(&h.sop_instance_uid))
            });
            if let Some(i) = at {
                v.index = i;
            }
        }
    }

    /// Images of the open stacks that stand in for images still to come.
    pub fn stand_ins(&self) -> usize {
        self.session
            .sets
            .iter()
            .flat_map(|ls| &ls.set.frames)
            .filter(|f| {
                self.session
                    .headers
                    .get(f.instance)
                    .is_some_and(|h| h.stand_in.is_some())
            })
            .count()
    }

    /// Whether anything open is still arriving.
    pub fn is_arriving(&self) -> bool {
        self.session
            .arriving
            .as_ref()
            .is_some_and(|a| !a.studies.is_empty())
    }

    /// Add study `uid` (a prior being retrieved) to what is open, as its images
    /// arrive.
    ///
    /// Asked again when its retrieve ends: if its images are not all open by
    /// then, it is looked for once more at once (the last poll of the watch may
    /// have come before the last of them was indexed).
    pub(super) fn watch_study(&mut self, uid: String) {
        let Some(a) = &mut self.session.arriving else {
            return;
        };
        if !a.studies.contains(&uid) {
            a.studies.push(uid);
            a.next_poll = Instant::now();
            a.last_new = Instant::now();
        }
    }

    /// Look in the index for what arrived of the studies still arriving, and
    /// hand new files to the loader (one scan at a time).
    pub(super) fn poll_arrivals(&mut self) {
        let Some(a) = &self.session.arriving else {
            return;
        };
        if a.studies.is_empty() {
            return;
        }
        let now = Instant::now();
        if now < a.next_poll {
            self.ctx
                .request_repaint_after(a.next_poll.saturating_duration_since(now).max(POLL / 4));
            return;
        }
        let kept = self.session.arriving.as_mut().and_then(|a| a.index.take());
        let store = match kept.map_or_else(|| Store::open(&self.launch.cache), Ok) {
            Ok(s) => s,
            Err(_) => {
                self.ctx.request_repaint_after(POLL);
                return;
            }
        };
        let Some(a) = &self.session.arriving else {
            return;
        };
        let studies = a.studies.clone();
        let mut still = false;
        let mut new_files = Vec::new();
        let mut counts = HashMap::new();
        let mut per_series = HashMap::new();
        let mut middles = HashMap::new();
        for uid in &studies {
            still |= self.is_retrieving(&store, uid);
            let expect = store.retrieval_series(uid).unwrap_or_default();
            let mut cached = 0;
            for (series, files) in files_by_series(&store, &self.launch.cache, uid, &mut Vec::new())
            {
                cached += files.len();
                let listed = expect
                    .iter()
                    .find(|e| e.series_uid == series)
                    .map_or(files.len(), |e| e.expected.max(files.len()));
                per_series.insert(series, (files.len(), listed));
                new_files.extend(files.into_iter().filter(|f| !a.known.contains(f)));
            }
            middles.extend(middles_of(&expect));
            let listed = match store.retrieval(uid) {
                Ok(Some(r)) => r.expected.max(cached),
                _ => cached,
            };
            counts.insert(uid.clone(), (cached, listed));
        }
        let Some(a) = &mut self.session.arriving else {
            return;
        };
        let expected = if new_files.is_empty() || a.growing || self.grid.mpr_saved.is_some() {
            Vec::new()
        } else {
            expected_instances(&store, &studies)
        };
        a.index = Some(store);
        a.counts = counts;
        a.series = per_series;
        a.middles = middles;
        a.next_poll = now + POLL;
        // A scan under way: the counts are fresh, new files wait for it. In MPR
        // too: the reformats are not disturbed; what came is added once the
        // reader leaves it (M).
        if a.growing || self.grid.mpr_saved.is_some() {
            self.ctx.request_repaint_after(POLL);
            return;
        }
        if !new_files.is_empty() {
            a.last_new = now;
        }
        // A retrieve of this viewer's own is never given up on (a prior waits
        // in the queue behind today's study); one in another process is, once
        // nothing has come for a minute.
        let ours = studies.iter().any(|u| {
            matches!(
                self.browser.pacs.state_of(u),
                Some(
                    super::pacs::RetrieveState::Queued | super::pacs::RetrieveState::Running { .. }
                )
            )
        });
        let Some(a) = &mut self.session.arriving else {
            return;
        };
        let stale = !ours && now.duration_since(a.last_new) > GIVE_UP;
        if new_files.is_empty() && (!still || stale) {
            if still {
                self.session.notice = Some(
                    "no image of the study has arrived for a minute: the retrieve may have stopped"
                        .into(),
                );
            }
            a.studies.clear();
            a.counts.clear();
            a.series.clear();
            return;
        }
        self.ctx.request_repaint_after(POLL);
        if new_files.is_empty() {
            return;
        }
        a.known.extend(new_files.iter().cloned());
        a.growing = true;
        // The loader's headers only: reformats' headers (after them) are not
        // images to group; their sets are dropped when the study grows.
        let headers = &self.session.headers;
        let base = if self.session.acquired < headers.len() {
            Arc::new(headers[..self.session.acquired].to_vec())
        } else {
            Arc::clone(headers)
        };
        let Some(tx) = self.session.tx.clone() else {
            return;
        };
        if let Err(e) = loader::grow(base, new_files, expected, tx, self.ctx.clone()) {
            self.session.status = format!("cannot start the loader: {e}");
            if let Some(a) = &mut self.session.arriving {
                a.growing = false;
            }
        }
    }

    /// Take display sets grown by arrivals: decoded frames, textures, thumbnails
    /// and what each viewport shows move to where their frames now are; new sets
    /// fill empty viewports (or, when nothing was shown yet, the study is hung).
    pub(super) fn take_grown(
        &mut self,
        headers: Arc<Vec<crate::dicom::ImageHeader>>,
        sets: Vec<LoadedSet>,
        failures: Vec<(PathBuf, String)>,
    ) {
        if let Some(a) = &mut self.session.arriving {
            a.growing = false;
        }
        self.session.failures.extend(failures);
        let was_empty = self.session.sets.iter().all(|s| s.derived.is_some());
        let old_sets = std::mem::take(&mut self.session.sets);
        let mut old_slots = std::mem::take(&mut self.residency.slots);
        let mut old_thumbs = std::mem::take(&mut self.residency.thumbs);
        let at = frame_index(&sets);
        // Where an acquired frame is now (reformats are dropped: their headers'
        // indices now belong to the new images).
        let moved = |s: usize, i: usize| -> Option<(usize, usize)> {
            let ls = old_sets.get(s).filter(|ls| ls.derived.is_none())?;
            at.get(ls.set.frames.get(i)?).copied()
        };
        let mut slots: Vec<Vec<Slot>> = sets
            .iter()
            .map(|s| (0..s.set.frames.len()).map(|_| Slot::default()).collect())
            .collect();
        for (s, v) in old_slots.iter_mut().enumerate() {
            for (i, slot) in v.iter_mut().enumerate() {
                if let Some((ns, ni)) = moved(s, i) {
                    slots[ns][ni] = std::mem::take(slot);
                }
            }
        }
        let mut thumbs = vec![None; sets.len()];
        for (s, t) in old_thumbs.iter_mut().enumerate() {
            let Some(mid) = old_sets.get(s).map(|ls| ls.set.frames.len() / 2) else {
                continue;
            };
            if let Some((ns, _)) = moved(s, mid) {
                thumbs[ns] = t.take();
            }
        }
        // A viewport on a stand-in whose image came: that image, wherever it
        // now sorts.
        let by_sop: HashMap<&str, (usize, usize)> = at
            .iter()
            .filter_map(|(f, &p)| {
                let h = headers.get(f.instance)?;
                h.stand_in
                    .is_none()
                    .then_some((h.sop_instance_uid.as_str(), p))
            })
            .collect();
        let old_headers = Arc::clone(&self.session.headers);
        let moved = |s: usize, i: usize| -> Option<(usize, usize)> {
            moved(s, i).or_else(|| {
                let f = old_sets.get(s)?.set.frames.get(i)?;
                let h = old_headers.get(f.instance)?;
                h.stand_in?;
                by_sop.get(h.sop_instance_uid.as_str()).copied()
            })
        };
        for v in &mut self.grid.viewports {
            if let Some(s) = v.set {
                match moved(s, v.index) {
                    Some((ns, ni)) => {
                        v.set = Some(ns);
                        v.index = ni;
                    }
                    None => v.set = None,
                }
            }
        }
        self.residency.slots = slots;
        self.residency.thumbs = thumbs;
        self.residency.expanded.clear();
        self.residency.overlay_textures.clear();
        self.residency.travel.clear();
        self.session.mpr.clear();
        self.session.acquired = headers.len();
        self.session.headers = headers;
        self.session.frame_at = at;
        self.session.sets = sets;
        let studies = |v: &[LoadedSet]| -> HashSet<String> {
            v.iter().map(|s| s.study_uid.clone()).collect()
        };
        let new_study = !studies(&self.session.sets).is_subset(&studies(&old_sets));
        if was_empty {
            self.hang();
            let all: Vec<usize> = (0..self.grid.viewports.len()).collect();
            self.open_at_middles(&all);
        } else if new_study {
            // A prior came: hung by the protocol again, every viewport that shows
            // what it showed before kept as the reader left it.
            let before: Vec<Viewport> = self.grid.viewports.clone();
            let layout = self.grid.layout;
            let active = self.grid.active;
            self.hang();
            let mut fresh = Vec::new();
            for (k, v) in self.grid.viewports.iter_mut().enumerate() {
                match before.iter().find(|b| b.set.is_some() && b.set == v.set) {
                    Some(b) => *v = b.clone(),
                    None => fresh.push(k),
                }
            }
            if self.grid.layout == layout {
                self.grid.active = active.min(self.grid.viewports.len().saturating_sub(1));
            }
            self.open_at_middles(&fresh);
        } else {
            // New series go into viewports that show nothing.
            let shown: HashSet<usize> = self.grid.viewports.iter().filter_map(|v| v.set).collect();
            let mut unshown = (0..self.session.sets.len()).filter(|s| !shown.contains(s));
            for v in &mut self.grid.viewports {
                if v.set.is_none()
                    && let Some(s) = unshown.next()
                {
                    v.set = Some(s);
                    v.index = self.session.sets[s].set.frames.len() / 2;
                    v.note = None;
                }
            }
        }
        self.load_measurements();
        // Thumbnails of sets whose middle frame is decoded already.
        for s in 0..self.session.sets.len() {
            let mid = self.session.sets[s].set.frames.len() / 2;
            let ready = self
                .residency
                .slots
                .get(s)
                .and_then(|v| v.get(mid))
                .is_some_and(|x| x.pixels.is_some());
            if ready && self.residency.thumbs.get(s).is_some_and(Option::is_none) {
                self.make_thumbnail(s, mid);
            }
        }
    }
}
