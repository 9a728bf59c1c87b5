//! The viewer application: its state, grouped by concern, and the frame loop.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::Instant;

use eframe::egui::{self};

use super::loader::{Loaded, LoadedSet};
use super::viewport::{Tool, ViewerGpu, Viewport};
use super::*;
use crate::dicom::ImageHeader;
use crate::dicom::pixels::FramePixels;
use crate::error::{Error, Result};
use crate::render::GpuDisplay;
use crate::store::StudyRow;
use crate::ui::theme;

/// While images decode: how soon to look again when a viewport is waiting for
/// the frame it shows, and otherwise (the progress count only).
const LOADING_SHOWN_POLL: std::time::Duration = std::time::Duration::from_millis(60);
/// How long a status-bar notice stays.
pub(super) const NOTICE_SHOWN: std::time::Duration = std::time::Duration::from_secs(15);
const LOADING_PROGRESS_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// Which tab the study browser shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BrowserTab {
    Local,
    /// A PACS node (index into the configured nodes).
    Node(usize),
}

/// How the local study list is sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SortBy {
    /// Newest study first.
    Date,
    Name,
}

/// The viewer application (public for UI tests, which drive it through
/// `egui_kittest`). Its state is grouped by concern; each group is plain data that
/// the commands and panels edit.
pub struct App {
    pub(super) launch: Launch,
    pub(super) ctx: egui::Context,
    pub(super) browser: Browser,
    pub(super) session: Session,
    pub(super) grid: Grid,
    pub(super) residency: Residency,
    /// Pictures of the volume renderings shown (see `vr`).
    pub(super) vr: super::vr::VrPictures,
    pub(super) exports: Exports,
    pub(super) panels: Panels,
    pub(super) timing: Timing,
}

/// The study browser: the local list and the PACS tabs.
pub(super) struct Browser {
    pub(super) studies: Vec<StudyRow>,
    pub(super) search: String,
    pub(super) tab: BrowserTab,
    pub(super) sort: SortBy,
    /// A study the user asked to delete, waiting for confirmation.
    pub(super) confirm_delete: Option<String>,
    /// Scroll the list to the open study at the next draw (it was just opened).
    pub(super) scroll_to_open: bool,
    pub(super) pacs: pacs::Pacs,
}

/// What is open: headers, display sets, what the loader sent, how it was hung.
pub(super) struct Session {
    pub(super) rx: Option<Receiver<Loaded>>,
    /// The loader's sender, for scans of images that arrive later.
    pub(super) tx: Option<std::sync::mpsc::Sender<Loaded>>,
    /// Studies open while they are retrieved (see `arriving`).
    pub(super) arriving: Option<super::arriving::Arriving>,
    /// Where each frame of the open sets is: (set, index).
    pub(super) frame_at: std::collections::HashMap<crate::model::FrameRef, (usize, usize)>,
    /// How many of `headers` the loader read (after them: reformats' headers).
    pub(super) acquired: usize,
    pub(super) headers: Arc<Vec<ImageHeader>>,
    pub(super) sets: Vec<LoadedSet>,
    /// Files skipped while opening (not DICOM, unreadable, not imported), with
    /// the reason: listed in the skipped-files panel.
    pub(super) failures: Vec<(PathBuf, String)>,
    /// What was opened, as the reader would name it ("the study \"CT CHEST\"",
    /// a folder's name), for "no images in …".
    pub(super) opened_from: Option<String>,
    /// The names of what is being imported from a drop.
    pub(super) dropped_names: String,
    /// How the open studies are hung: automatic or the reader's choice.
    pub(super) protocol_choice: crate::hanging::Choice,
    pub(super) status: String,
    /// A message for the status bar (why MPR is not possible, ...).
    pub(super) notice: Option<String>,
    /// The notice on the status bar and since when: it goes after
    /// [`NOTICE_SHOWN`], so a hint does not outstay what it was about.
    pub(super) notice_since: Option<(String, Instant)>,
    /// Today's study of what is open (the first asked for).
    pub(super) open_study: Option<String>,
    pub(super) protocols: Vec<crate::hanging::Protocol>,
    /// The protocol that hung the open studies (or "one viewport per series").
    pub(super) hanging_protocol: Option<String>,
    /// Files dropped on the window, being imported.
    pub(super) dropped: Option<Receiver<DropResult>>,
    pub(super) annotation_layouts: annotations::Layouts,
    pub(super) measurements: Vec<Meas>,
    /// Measurements on MPR planes read from the cache, waiting for their
    /// stack to be reformatted (see `measurements::place_on_mpr`).
    pub(super) mpr_rows: Vec<crate::store::MeasurementRow>,
    /// Stacks reformatted (MPR), by source set.
    pub(super) mpr: std::collections::HashMap<usize, super::mpr::MprSet>,
}

/// The viewport grid and how its viewports are read together.
pub(super) struct Grid {
    pub(super) viewports: Vec<Viewport>,
    pub(super) layout: (usize, usize),
    pub(super) active: usize,
    pub(super) maximized: Option<usize>,
    /// Manual scroll link across frames of reference (priors): the offset of each
    /// viewport from the active one along the slice normal, captured when linked.
    pub(super) link: Option<Vec<f64>>,
    /// Window, zoom and pan follow the active viewport in viewports of the same
    /// modality and frame of reference (or all, when linked).
    pub(super) sync_view: bool,
    /// Left-drag W/L direction: false = right widens, down raises the level
    /// (brighter image... as most workstations); true = the other way round.
    pub(super) invert_wl_drag: bool,
    pub(super) tool: Tool,
    /// Cine: frames per second of the active viewport, when playing.
    pub(super) cine: Option<f32>,
    pub(super) cine_last: Instant,
    /// Cine frames shown since an instant (reset every two seconds), and the rate
    /// last measured.
    pub(super) cine_stats: Option<(Instant, u32)>,
    pub(super) cine_rate: Option<f32>,
    /// In MPR: the grid it replaced, given back by M.
    pub(super) mpr_saved: Option<SavedGrid>,
}

/// A grid as it was: layout, viewports (what each showed, zoom, window), which
/// was active or maximised.
#[derive(Debug, Clone)]
pub(super) struct SavedGrid {
    pub(super) layout: (usize, usize),
    pub(super) viewports: Vec<Viewport>,
    pub(super) active: usize,
    pub(super) maximized: Option<usize>,
}

/// Pixels kept near the viewports (see `residency`).
pub(super) struct Residency {
    pub(super) slots: Vec<Vec<Slot>>,
    /// The frames on screen, expanded for the imaging code (rebuilt as they change).
    pub(super) expanded: std::collections::HashMap<(usize, usize), Arc<FramePixels>>,
    /// Their overlay planes as textures, with their boxes in image coordinates.
    pub(super) overlay_textures: std::collections::HashMap<(usize, usize), Vec<OverlayPlane>>,
    /// A thumbnail per display set (its middle frame), once decoded.
    pub(super) thumbs: Vec<Option<egui::TextureHandle>>,
    /// Per viewport: the set and slice it showed last frame, and which way it
    /// moves through the stack (+1 or −1), for prefetching.
    pub(super) travel: std::collections::HashMap<usize, (usize, usize, i64)>,
    /// Prefetch uploads still to do (the next frame goes on with them).
    pub(super) prefetch_pending: bool,
    /// Viewport draws of a decoded slice without its texture (shown as the last
    /// image under "loading…"): the goal is none.
    pub(super) misses: u64,
}

/// Exports running on other threads and what they said.
pub(super) struct Exports {
    pub(super) deid: DeidForm,
    pub(super) tx: std::sync::mpsc::Sender<String>,
    pub(super) rx: Receiver<String>,
    /// What the last export wrote (or why it failed).
    pub(super) last: Option<String>,
}

/// Windows over the viewports: help, tag browser.
pub(super) struct Panels {
    pub(super) show_help: bool,
    /// The skipped-files panel (opens by itself when files were skipped).
    pub(super) show_skipped: bool,
    /// Where the window's size is remembered, and what was last written.
    pub(super) window_memory: Option<(PathBuf, Option<super::WindowState>)>,
    pub(super) window_saved_at: Option<Instant>,
    /// Tag browser: shown, its filter, and the dump of the image it shows.
    pub(super) show_tags: bool,
    pub(super) tag_filter: String,
    pub(super) tags: Option<(PathBuf, String, Vec<crate::dicom::dump::Node>)>,
}

/// Time to first image, frame times, and the benchmark modes.
pub(super) struct Timing {
    pub(super) opened_at: Option<Instant>,
    pub(super) first_image_ms: Option<f64>,
    pub(super) frame_ms: f64,
    pub(super) last_frame: Instant,
    /// Frames drawn since the window opened.
    pub(super) frames: u64,
    /// `LIGHTBOX_TIMING=1`: print time to first image and to all images decoded
    /// (from process start), then close — for benchmarks.
    pub(super) report: bool,
    pub(super) all_decoded_ms: Option<f64>,
    /// When every image first had something on screen (a JPEG 2000 stack's
    /// previews before its full frames), and how many were previews then.
    pub(super) first_look: Option<(f64, usize)>,
    /// `LIGHTBOX_BENCH_WL=N`: once everything is decoded, change the active
    /// viewport's window on N frames in a row (a W/L drag), report frame times and
    /// texture uploads, and close.
    pub(super) bench_wl: Option<BenchWl>,
    /// `LIGHTBOX_BENCH_SCROLL=N`: step the active viewport one slice per frame,
    /// N times; report step times and steps drawn without their slice.
    pub(super) bench_scroll: Option<BenchScroll>,
    /// `LIGHTBOX_BENCH_CINE=FPS`: five seconds of cine; report frames shown / due.
    pub(super) bench_cine: Option<BenchCine>,
    /// `LIGHTBOX_BENCH_MPR=N`: M on the first viewport, N turns of the
    /// crosshair and of the 3-D view; report their times and the peak memory.
    pub(super) bench_mpr: Option<super::bench::BenchMpr>,
}

impl Browser {
    /// The study UIDs in the local cache (to tell a PACS answer already cached).
    pub(super) fn cached_uids(&self) -> std::collections::HashSet<String> {
        self.studies.iter().map(|s| s.study_uid.clone()).collect()
    }
}

impl App {
    /// The display set the active viewport shows.
    pub(super) fn active_set(&self) -> Option<usize> {
        self.grid.viewports.get(self.grid.active)?.set
    }
}

impl Session {
    /// Frame `index` of display set `set`, and the header of its instance.
    pub(super) fn frame(
        &self,
        set: usize,
        index: usize,
    ) -> Option<(&crate::model::FrameRef, &ImageHeader)> {
        let fr = self.sets.get(set)?.set.frames.get(index)?;
        Some((fr, self.headers.get(fr.instance)?))
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("launch", &self.launch).finish()
    }
}

impl App {
    /// What the last export wrote (or why it failed).
    pub fn last_export(&self) -> Option<&str> {
        self.exports.last.as_deref()
    }

    /// How many display sets are open (reformats included).
    pub fn display_sets(&self) -> usize {
        self.session.sets.len()
    }

    /// The files skipped while opening, with why.
    pub fn skipped(&self) -> &[(PathBuf, String)] {
        &self.session.failures
    }

    /// The hanging protocol that hung the open studies, if one did.
    pub fn hanging_protocol(&self) -> Option<&str> {
        self.session.hanging_protocol.as_deref()
    }

    /// The app for an eframe creation context with the wgpu renderer.
    pub fn create(launch: Launch, cc: &eframe::CreationContext<'_>) -> Result<App> {
        let rs = cc.wgpu_render_state.as_ref().ok_or_else(|| {
            Error::Gpu("the viewer needs the wgpu renderer (no GPU adapter found)".into())
        })?;
        let gpu = GpuDisplay::new(&rs.device, rs.target_format);
        rs.renderer
            .write()
            .callback_resources
            .insert(ViewerGpu::new(gpu, rs.target_format));
        let hardware =
            rs.adapter.get_info().device_type != eframe::egui_wgpu::wgpu::DeviceType::Cpu;
        let on_gpu = launch.vr_on_gpu.unwrap_or(hardware);
        let mut app = App::new(launch, cc.egui_ctx.clone());
        app.vr.on_gpu = on_gpu;
        Ok(app)
    }

    /// When every image first had something on screen (ms after process
    /// start), and how many of them were reduced-resolution previews then.
    pub fn first_look(&self) -> Option<(f64, usize)> {
        self.timing.first_look
    }

    /// Images decoded so far, and in all.
    pub fn decoded(&self) -> (usize, usize) {
        let done = self.acquired().filter(|x| x.full().is_some()).count();
        (done, self.acquired().count())
    }

    /// The slots of acquired images (reformats are computed on demand, not
    /// loaded).
    fn acquired(&self) -> impl Iterator<Item = &Slot> {
        self.residency
            .slots
            .iter()
            .zip(&self.session.sets)
            .filter(|(_, ls)| ls.derived.is_none())
            .flat_map(|(s, _)| s)
    }

    /// How often a viewport drew a decoded slice without its texture (the last
    /// image under "loading…"); the goal is never.
    pub fn draws_without_texture(&self) -> u64 {
        self.residency.misses
    }

    /// The PACS tabs' state.
    pub fn pacs(&self) -> &pacs::Pacs {
        &self.browser.pacs
    }

    /// A viewport's state.
    pub fn viewport(&self, i: usize) -> Option<&Viewport> {
        self.grid.viewports.get(i)
    }

    /// The active viewport.
    pub fn active(&self) -> usize {
        self.grid.active
    }

    /// Rows and columns of the viewport grid.
    pub fn layout(&self) -> (usize, usize) {
        self.grid.layout
    }

    /// Where an image point (column, row) of viewport `i` is on screen, as last drawn.
    pub fn screen_of(&self, i: usize, p: [f64; 2]) -> Option<egui::Pos2> {
        Some(self.grid.viewports.get(i)?.mapping?.screen(p))
    }

    /// The MPR crosshair on viewport `i` (image coordinates), when it shows an
    /// MPR plane.
    pub fn crosshair(&self, i: usize) -> Option<super::viewport::CrosshairView> {
        let v = self.grid.viewports.get(i)?;
        self.crosshair_view(v.set?, v.index)
    }

    /// The header of the image viewport `i` shows.
    pub fn header_of(&self, i: usize) -> Option<&ImageHeader> {
        let v = self.grid.viewports.get(i)?;
        Some(self.session.frame(v.set?, v.index)?.1)
    }

    pub(super) fn new(launch: Launch, ctx: egui::Context) -> App {
        let layout = launch.layout;
        let (export_tx, export_rx) = std::sync::mpsc::channel();
        let (protocols, problems) = crate::hanging::load(launch.protocol_dir.as_deref());
        let (annotation_layouts, more) =
            annotations::Layouts::load(launch.annotation_file.as_deref());
        for p in problems.iter().chain(&more) {
            tracing::warn!("{p}");
        }
        let mut app = App {
            browser: Browser {
                studies: Vec::new(),
                search: String::new(),
                tab: BrowserTab::Local,
                sort: SortBy::Date,
                confirm_delete: None,
                scroll_to_open: true,
                pacs: pacs::Pacs::new(launch.pacs.clone(), launch.cache.clone(), ctx.clone()),
            },
            ctx,
            session: Session {
                rx: None,
                tx: None,
                arriving: None,
                frame_at: std::collections::HashMap::new(),
                acquired: 0,
                headers: Arc::new(Vec::new()),
                sets: Vec::new(),
                failures: Vec::new(),
                opened_from: None,
                dropped_names: String::new(),
                protocol_choice: crate::hanging::Choice::Automatic,
                status: String::new(),
                notice: None,
                notice_since: None,
                open_study: None,
                protocols,
                hanging_protocol: None,
                dropped: None,
                annotation_layouts,
                measurements: Vec::new(),
                mpr_rows: Vec::new(),
                mpr: std::collections::HashMap::new(),
            },
            grid: Grid {
                viewports: (0..layout.0 * layout.1).map(|_| Viewport::new()).collect(),
                layout,
                active: 0,
                maximized: None,
                link: None,
                sync_view: true,
                invert_wl_drag: false,
                tool: Tool::Window,
                cine: None,
                cine_last: Instant::now(),
                cine_stats: None,
                cine_rate: None,
                mpr_saved: None,
            },
            vr: super::vr::VrPictures::default(),
            residency: Residency {
                slots: Vec::new(),
                expanded: std::collections::HashMap::new(),
                overlay_textures: std::collections::HashMap::new(),
                thumbs: Vec::new(),
                travel: std::collections::HashMap::new(),
                prefetch_pending: false,
                misses: 0,
            },
            exports: Exports {
                deid: DeidForm {
                    open: false,
                    options: crate::dicom::anonymize::Options::default(),
                },
                tx: export_tx,
                rx: export_rx,
                last: None,
            },
            panels: Panels {
                show_help: false,
                show_skipped: false,
                window_memory: launch
                    .window_state
                    .clone()
                    .map(|p| (p.clone(), super::WindowState::read(&p))),
                window_saved_at: None,
                show_tags: false,
                tag_filter: String::new(),
                tags: None,
            },
            timing: Timing {
                opened_at: None,
                first_image_ms: None,
                frame_ms: 0.0,
                last_frame: Instant::now(),
                frames: 0,
                report: std::env::var_os("LIGHTBOX_TIMING").is_some(),
                all_decoded_ms: None,
                first_look: None,
                bench_wl: std::env::var("LIGHTBOX_BENCH_WL")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .map(|frames| BenchWl {
                        frames,
                        uploads_before: None,
                        intervals: Vec::new(),
                        last: None,
                    }),
                bench_scroll: std::env::var("LIGHTBOX_BENCH_SCROLL")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .map(|steps| BenchScroll {
                        steps,
                        intervals: Vec::new(),
                        last: None,
                        misses_before: None,
                    }),
                bench_cine: std::env::var("LIGHTBOX_BENCH_CINE")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .map(|fps| BenchCine {
                        fps,
                        started: None,
                        last_index: None,
                    }),
                bench_mpr: std::env::var("LIGHTBOX_BENCH_MPR")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .map(|turns| super::bench::BenchMpr {
                        turns,
                        phase: super::bench::MprPhase::Open,
                        opened: None,
                        plane_turns: Vec::new(),
                        vr_turns: Vec::new(),
                        since: None,
                    }),
            },
            launch,
        };
        app.refresh_studies();
        let open = app.launch.open_studies.clone();
        let skipped = std::mem::take(&mut app.launch.skipped);
        let given = app.launch.given.take();
        if !open.is_empty() {
            app.open(&open);
            if let Some(g) = given {
                app.session.opened_from = Some(g);
            }
            app.panels.show_skipped = !skipped.is_empty();
            app.session.failures = skipped;
        } else if let Some(g) = given {
            // Files or folders were given and none held an image.
            app.show_nothing(g, skipped);
        }
        app
    }
}

impl eframe::App for App {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        let now = Instant::now();
        // The frame interval while frames follow each other (an idle pause, when
        // nothing asked for a repaint, is not a frame time).
        let interval = now.duration_since(self.timing.last_frame).as_secs_f64() * 1e3;
        if interval < 500.0 {
            self.timing.frame_ms = 0.9 * self.timing.frame_ms + 0.1 * interval;
        }
        self.timing.last_frame = now;
        self.timing.frames += 1;
        self.receive();
        self.poll_arrivals();
        let ctx = ui.ctx().clone();
        self.files_dropped(&ctx);
        // PACS work (finds, retrieves, priors) reports whichever tab is shown.
        self.browser.pacs.poll();
        if std::mem::take(&mut self.browser.pacs.arrived) {
            self.refresh_studies();
        }
        // Priors being fetched for the study open: watched as they arrive, and
        // hung beside it (what the reader looks at stays as it is).
        for (of, prior) in std::mem::take(&mut self.browser.pacs.priors_queued) {
            if self.session.open_study.as_deref() == Some(of.as_str()) {
                self.watch_study(prior);
            }
        }
        let before = self
            .grid
            .viewports
            .get(self.grid.active)
            .map(|v| (v.set, v.index));
        let active_before = self.grid.active;
        let view_before = self
            .grid
            .viewports
            .get(self.grid.active)
            .map(super::sync::view_state);
        for c in self.key_commands(&ctx) {
            self.handle(c);
        }
        self.wheel_scroll(&ctx);
        self.follow_crosshair();
        self.cine_step(&ctx);
        if self.timing.bench_wl.is_some() {
            self.bench_step(&ctx, frame);
        }
        if self.timing.bench_scroll.is_some() {
            self.bench_scroll_step(&ctx);
        }
        if self.timing.bench_cine.is_some() {
            self.bench_cine_step(&ctx);
        }
        if self.timing.bench_mpr.is_some() {
            self.bench_mpr_step(&ctx);
        }
        // What the keys, cine and the scroll benchmark moved to is uploaded
        // before it is drawn.
        self.keep_resident(frame);
        self.keep_vr();
        egui::Panel::left("studies")
            .default_size(300.0)
            .show(ui, |ui| self.browser_ui(ui));
        egui::Panel::top("toolbar").show(ui, |ui| self.toolbar(ui));
        egui::Panel::right("measurements")
            .resizable(true)
            .default_size(250.0)
            .max_size(480.0)
            .show(ui, |ui| self.measurement_list(ui));
        egui::Panel::bottom("series").show(ui, |ui| {
            self.series_strip(ui);
            self.status_bar(ui);
        });
        egui::CentralPanel::default()
            .frame(egui::Frame::new().fill(theme::BACKGROUND))
            .show(ui, |ui| self.viewports_ui(ui));
        if self
            .grid
            .viewports
            .get(self.grid.active)
            .map(|v| (v.set, v.index))
            != before
        {
            self.sync();
        }
        if self.grid.sync_view
            && self.grid.active == active_before
            && self
                .grid
                .viewports
                .get(self.grid.active)
                .map(super::sync::view_state)
                != view_before
        {
            self.sync_views();
        }
        if self.panels.show_tags {
            self.tag_browser(&ctx);
        }
        if self.exports.deid.open {
            self.deid_window(&ctx);
        }
        while let Ok(m) = self.exports.rx.try_recv() {
            self.exports.last = Some(m);
        }
        self.help_window(&ctx);
        self.skipped_window(&ctx);
        self.remember_window(&ctx);
        // Keep decoding progress visible while the loader works.
        // Reformats are computed on demand: only acquired images are "pending".
        let pending = self
            .acquired()
            .any(|x| x.full().is_none() && x.error.is_none());
        let since_start = || {
            PROCESS_START
                .get()
                .map(|t| t.elapsed().as_secs_f64() * 1e3)
                .unwrap_or(f64::NAN)
        };
        if self.timing.first_look.is_none()
            && !self.residency.slots.is_empty()
            && self
                .acquired()
                .all(|x| x.pixels.is_some() || x.error.is_some())
        {
            let since_start = since_start();
            let previews = self.acquired().filter(|x| x.preview.is_some()).count();
            self.timing.first_look = Some((since_start, previews));
            if self.timing.report {
                println!(
                    "all {} images on screen: {since_start:.0} ms after process start \
                     ({previews} as previews)",
                    self.acquired().count()
                );
            }
        }
        if pending {
            // While frames arrive, repaint soon only if a viewport is waiting for
            // its own frame; otherwise twice a second is enough for the progress
            // count. Every repaint draws the whole window, and on a software
            // adapter (lavapipe) that takes the cores the decoders need: with a
            // repaint per arriving frame the viewer's full JPEG 2000 decode took
            // twice the headless time.
            let waiting = self.grid.viewports.iter().any(|v| {
                v.set
                    .and_then(|s| self.residency.slots.get(s))
                    .and_then(|s| s.get(v.index))
                    .is_some_and(|x| x.full().is_none() && x.error.is_none())
            });
            ctx.request_repaint_after(if waiting {
                LOADING_SHOWN_POLL
            } else {
                LOADING_PROGRESS_POLL
            });
        } else if !self.residency.slots.is_empty() && self.timing.all_decoded_ms.is_none() {
            let since_start = since_start();
            self.timing.all_decoded_ms = Some(since_start);
            // One frame more: what waits for every image (the prefetch, the
            // benchmarks, MPR's volume) starts there, not at the next input.
            ctx.request_repaint();
            if self.timing.report
                && self.timing.bench_wl.is_none()
                && self.timing.bench_scroll.is_none()
                && self.timing.bench_cine.is_none()
                && self.timing.bench_mpr.is_none()
            {
                let images: usize = self.residency.slots.iter().map(Vec::len).sum();
                println!(
                    "all {images} images decoded: {since_start:.0} ms after process start \
                     ({} frames drawn)",
                    self.timing.frames
                );
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
        }
    }
}
