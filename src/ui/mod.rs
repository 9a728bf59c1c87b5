//! The viewer: an eframe (winit + wgpu) window with egui panels. A study list from
//! the local cache (searchable), the open study's series strip, a grid of viewports
//! drawn by the GPU display pipeline, annotations, and the reading shortcuts.
//! Loading and decoding run on worker threads; the UI never waits for them.

pub mod annotations;
pub mod loader;
pub mod pacs;
pub mod viewport;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::Instant;

use eframe::egui::{self, Color32, Key, Rect, Vec2};

use crate::dicom::ImageHeader;
use crate::dicom::pixels::FramePixels;
use crate::error::{Error, Result};
use crate::imaging::lut::{self, Window};
use crate::render::{GpuDisplay, ImageTexture};
use crate::store::{Store, StudyRow};
use loader::{Compact, Loaded, LoadedSet};
use viewport::{FrameView, Shape, Tool, ViewerGpu, Viewport};

/// When the process started (set by `main`), for the time-to-first-image report.
pub static PROCESS_START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// How the viewer starts.
#[derive(Debug, Clone)]
pub struct Launch {
    pub cache: PathBuf,
    /// Studies to open at once (their UIDs in the cache), current first.
    pub open_studies: Vec<String>,
    /// Initial layout (rows, columns).
    pub layout: (usize, usize),
    /// PACS nodes for the browser's tabs, our AE title and Storage SCP port.
    pub pacs: pacs::PacsSettings,
    /// Where exports (PNG, de-identified series) are written.
    pub export_dir: PathBuf,
    /// The user's hanging protocols (added to the built-in ones).
    pub protocol_dir: Option<PathBuf>,
    /// A layout asked for on the command line (over the hanging protocol's).
    pub force_layout: Option<(usize, usize)>,
    /// The user's corner annotation layouts (over `assets/annotations.toml`).
    pub annotation_file: Option<PathBuf>,
}

impl Launch {
    /// The viewer on a cache, nothing open, one viewport, no PACS.
    pub fn new(cache: PathBuf) -> Launch {
        Launch {
            cache,
            open_studies: Vec::new(),
            layout: (1, 1),
            pacs: pacs::PacsSettings::default(),
            export_dir: default_export_dir(),
            protocol_dir: None,
            force_layout: None,
            annotation_file: None,
        }
    }
}

/// `~/.config/lightbox/annotations.toml`.
pub fn default_annotation_file() -> Option<PathBuf> {
    crate::hanging::user_dir().and_then(|d| d.parent().map(|p| p.join("annotations.toml")))
}

/// `~/Lightbox exports` (the current folder when there is no home).
pub fn default_export_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join("Lightbox exports")
}

/// The W/L drag benchmark's state.
#[derive(Debug)]
struct BenchWl {
    frames: usize,
    uploads_before: Option<u64>,
    intervals: Vec<f64>,
    last: Option<Instant>,
}

/// The de-identified export form.
#[derive(Debug, Clone)]
struct DeidForm {
    open: bool,
    options: crate::dicom::anonymize::Options,
}

/// Which tab the study browser shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BrowserTab {
    Local,
    /// A PACS node (index into the configured nodes).
    Node(usize),
}

/// How the local study list is sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortBy {
    /// Newest study first.
    Date,
    Name,
}

/// Start the viewer (blocks until the window is closed).
pub fn run(launch: Launch) -> Result<()> {
    let options = eframe::NativeOptions {
        renderer: eframe::Renderer::Wgpu,
        viewport: egui::ViewportBuilder::default()
            .with_title("Lightbox")
            .with_inner_size([1400.0, 900.0]),
        ..Default::default()
    };
    eframe::run_native(
        "Lightbox",
        options,
        Box::new(move |cc| Ok(Box::new(App::create(launch, cc)?))),
    )
    .map_err(|e| Error::Usage(format!("viewer: {e}")))
}

/// One frame slot of a display set.
#[derive(Default)]
struct Slot {
    pixels: Option<Arc<Compact>>,
    error: Option<String>,
    texture: Option<Arc<ImageTexture>>,
}

/// The viewer application (public for UI tests, which drive it through
/// `egui_kittest`).
pub struct App {
    launch: Launch,
    studies: Vec<StudyRow>,
    search: String,
    tab: BrowserTab,
    sort: SortBy,
    /// A study the user asked to delete, waiting for confirmation.
    confirm_delete: Option<String>,
    pacs: pacs::Pacs,
    ctx: egui::Context,
    rx: Option<Receiver<Loaded>>,
    headers: Arc<Vec<ImageHeader>>,
    sets: Vec<LoadedSet>,
    slots: Vec<Vec<Slot>>,
    viewports: Vec<Viewport>,
    layout: (usize, usize),
    active: usize,
    maximized: Option<usize>,
    status: String,
    failures: Vec<String>,
    opened_at: Option<Instant>,
    first_image_ms: Option<f64>,
    frame_ms: f64,
    last_frame: Instant,
    show_help: bool,
    /// `LIGHTBOX_TIMING=1`: print time to first image and to all images decoded
    /// (from process start), then close — for benchmarks.
    timing: bool,
    all_decoded_ms: Option<f64>,
    tool: Tool,
    measurements: Vec<Meas>,
    /// The frames on screen, expanded for the imaging code (rebuilt as they change).
    expanded: std::collections::HashMap<(usize, usize), Arc<FramePixels>>,
    /// Their overlay planes as textures, with their boxes in image coordinates.
    overlay_textures: std::collections::HashMap<(usize, usize), Vec<OverlayPlane>>,
    /// Manual scroll link across frames of reference (priors): the offset of each
    /// viewport from the active one along the slice normal, captured when linked.
    link: Option<Vec<f64>>,
    /// Tag browser: shown, its filter, and the dump of the image it shows.
    show_tags: bool,
    tag_filter: String,
    tags: Option<(PathBuf, String, Vec<crate::dicom::dump::Node>)>,
    /// Cine: frames per second of the active viewport, when playing.
    cine: Option<f32>,
    cine_last: Instant,
    /// A thumbnail per display set (its middle frame), once decoded.
    thumbs: Vec<Option<egui::TextureHandle>>,
    /// Files dropped on the window, being imported.
    dropped: Option<Receiver<DropResult>>,
    /// Window, zoom and pan follow the active viewport in viewports of the same
    /// modality and frame of reference (or all, when linked).
    sync_view: bool,
    /// Left-drag W/L direction: false = right widens, down raises the level
    /// (brighter image... as most workstations); true = the other way round.
    invert_wl_drag: bool,
    deid: DeidForm,
    /// Messages from exports running on other threads.
    export_tx: std::sync::mpsc::Sender<String>,
    export_rx: Receiver<String>,
    /// What the last export wrote (or why it failed).
    pub last_export: Option<String>,
    protocols: Vec<crate::hanging::Protocol>,
    annotation_layouts: annotations::Layouts,
    /// Stacks reformatted (MPR), by source set.
    mpr: std::collections::HashMap<usize, Arc<crate::imaging::mpr::Source>>,
    /// A message for the status bar (why MPR is not possible, ...).
    pub notice: Option<String>,
    /// Today's study of what is open (the first asked for).
    open_study: Option<String>,
    /// `LIGHTBOX_BENCH_WL=N`: once everything is decoded, change the active
    /// viewport's window on N frames in a row (a W/L drag), report frame times and
    /// texture uploads, and close.
    bench_wl: Option<BenchWl>,
    /// The protocol that hung the open studies.
    pub hanging_protocol: Option<String>,
}

/// What importing dropped files gave: the studies to open and how many files
/// failed, or why the import failed.
/// An overlay plane as a texture, with its box in image coordinates (left,
/// top, right, bottom).
type OverlayPlane = (egui::TextureHandle, [f64; 4]);

type DropResult = std::result::Result<(Vec<String>, usize), String>;

/// A measurement on screen: where it is and its row in the cache index.
#[derive(Debug, Clone, Copy)]
struct Meas {
    id: i64,
    set: usize,
    index: usize,
    shape: Shape,
}

/// A shape's points as kept in the cache: patient coordinates when the image has
/// a plane (so they survive any re-sorting or reformatting), else image ones.
fn stored_points(h: &ImageHeader, frame: u32, shape: &Shape) -> (&'static str, Vec<[f64; 3]>) {
    match plane_of(h, frame) {
        Some(plane) => (
            "patient",
            shape
                .points()
                .iter()
                .map(|q| {
                    let v = plane.patient_point(q[0] - 0.5, q[1] - 0.5);
                    [v.x, v.y, v.z]
                })
                .collect(),
        ),
        None => (
            "image",
            shape.points().iter().map(|q| [q[0], q[1], 0.0]).collect(),
        ),
    }
}

/// The image plane of a frame (for patient coordinates), if it has one.
fn plane_of(h: &ImageHeader, frame: u32) -> Option<crate::imaging::geometry::ImagePlane> {
    let f = h.frame(frame).ok()?;
    crate::imaging::geometry::ImagePlane::new(
        f.image_position?,
        f.image_orientation?,
        f.pixel_spacing.unwrap_or([1.0, 1.0]),
    )
}

const PRESET_KEYS: [Key; 8] = [
    Key::Num1,
    Key::Num2,
    Key::Num3,
    Key::Num4,
    Key::Num5,
    Key::Num6,
    Key::Num7,
    Key::Num8,
];

/// Shortcuts, in one place (shown by F1 / ?).
const SHORTCUTS: &[(&str, &str)] = &[
    ("wheel / up, down arrows", "previous / next image"),
    ("ctrl + up, down", "previous / next series in this viewport"),
    ("PgUp / PgDn", "10 images back / forward"),
    ("Home / End", "first / last image"),
    (
        "left or right drag",
        "window: sideways width, up-down level (\"reverse W/L drag\" swaps them)",
    ),
    ("middle drag", "pan"),
    ("ctrl + wheel / ctrl + drag", "zoom"),
    (
        "F / Z",
        "fit to the viewport / 1:1 (one image pixel per screen pixel)",
    ),
    (
        "drag a thumbnail",
        "show that series in the viewport it is dropped on",
    ),
    ("drop files or a folder", "import into the cache and open"),
    (
        "1 … 8",
        "CT presets: brain, subdural, stroke, lung, mediastinum, abdomen, liver, bone",
    ),
    ("0", "the file's window"),
    ("I", "invert"),
    ("R", "reset window, zoom and pan"),
    ("B", "bilinear / nearest interpolation"),
    ("Y / U", "overlay planes / display shutter on or off"),
    (
        "M",
        "MPR: the stack with its two orthogonal reformats (1×3)",
    ),
    (
        "shift + click",
        "show this point in the other viewports of its frame of reference",
    ),
    (
        "O / H / V",
        "rotate 90° clockwise / flip horizontally / vertically",
    ),
    (
        "L / A / C",
        "length / angle (drag one arm, click the other) / Cobb (drag two lines)",
    ),
    ("E / Q / Esc", "ellipse / rectangle ROI / back to window"),
    (
        "K",
        "link scrolling of all viewports (priors: keeps today's offset)",
    ),
    ("space", "cine play / pause (+ / - frame rate)"),
    ("Delete", "remove the last measurement on this image"),
    ("double click", "maximise / restore the viewport"),
    ("F1 or ?", "this help"),
];

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("launch", &self.launch).finish()
    }
}

impl App {
    /// The app for an eframe creation context with the wgpu renderer.
    pub fn create(launch: Launch, cc: &eframe::CreationContext<'_>) -> Result<App> {
        let rs = cc.wgpu_render_state.as_ref().ok_or_else(|| {
            Error::Usage("the viewer needs the wgpu renderer (no GPU adapter found)".into())
        })?;
        let gpu = GpuDisplay::new(&rs.device, rs.target_format);
        rs.renderer
            .write()
            .callback_resources
            .insert(ViewerGpu::new(gpu));
        Ok(App::new(launch, cc.egui_ctx.clone()))
    }

    /// Images decoded so far, and in all.
    pub fn decoded(&self) -> (usize, usize) {
        let acquired = || {
            self.slots
                .iter()
                .zip(&self.sets)
                .filter(|(_, ls)| ls.derived.is_none())
                .map(|(s, _)| s)
        };
        let done = acquired()
            .map(|s| s.iter().filter(|x| x.pixels.is_some()).count())
            .sum();
        (done, acquired().map(Vec::len).sum())
    }

    /// The PACS tabs' state.
    pub fn pacs(&self) -> &pacs::Pacs {
        &self.pacs
    }

    /// A viewport's state.
    pub fn viewport(&self, i: usize) -> Option<&Viewport> {
        self.viewports.get(i)
    }

    /// The active viewport.
    pub fn active(&self) -> usize {
        self.active
    }

    /// Rows and columns of the viewport grid.
    pub fn layout(&self) -> (usize, usize) {
        self.layout
    }

    /// Where an image point (column, row) of viewport `i` is on screen, as last drawn.
    pub fn screen_of(&self, i: usize, p: [f64; 2]) -> Option<egui::Pos2> {
        Some(self.viewports.get(i)?.mapping?.screen(p))
    }

    /// The header of the image viewport `i` shows.
    pub fn header_of(&self, i: usize) -> Option<&ImageHeader> {
        let v = self.viewports.get(i)?;
        let ls = self.sets.get(v.set?)?;
        self.headers.get(ls.set.frames.get(v.index)?.instance)
    }

    fn new(launch: Launch, ctx: egui::Context) -> App {
        let layout = launch.layout;
        let (export_tx, export_rx) = std::sync::mpsc::channel();
        let (protocols, problems) = crate::hanging::load(launch.protocol_dir.as_deref());
        let (annotation_layouts, more) =
            annotations::Layouts::load(launch.annotation_file.as_deref());
        for p in problems.iter().chain(&more) {
            tracing::warn!("{p}");
        }
        let mut app = App {
            studies: Vec::new(),
            search: String::new(),
            tab: BrowserTab::Local,
            sort: SortBy::Date,
            confirm_delete: None,
            pacs: pacs::Pacs::new(launch.pacs.clone(), launch.cache.clone(), ctx.clone()),
            ctx,
            rx: None,
            headers: Arc::new(Vec::new()),
            sets: Vec::new(),
            slots: Vec::new(),
            viewports: (0..layout.0 * layout.1).map(|_| Viewport::new()).collect(),
            layout,
            active: 0,
            maximized: None,
            status: String::new(),
            failures: Vec::new(),
            opened_at: None,
            first_image_ms: None,
            frame_ms: 0.0,
            last_frame: Instant::now(),
            show_help: false,
            timing: std::env::var_os("LIGHTBOX_TIMING").is_some(),
            all_decoded_ms: None,
            tool: Tool::Window,
            measurements: Vec::new(),
            expanded: std::collections::HashMap::new(),
            overlay_textures: std::collections::HashMap::new(),
            link: None,
            show_tags: false,
            tag_filter: String::new(),
            tags: None,
            cine: None,
            cine_last: Instant::now(),
            thumbs: Vec::new(),
            dropped: None,
            sync_view: true,
            invert_wl_drag: false,
            deid: DeidForm {
                open: false,
                options: crate::dicom::anonymize::Options::default(),
            },
            export_tx,
            export_rx,
            last_export: None,
            protocols,
            annotation_layouts,
            mpr: std::collections::HashMap::new(),
            notice: None,
            open_study: None,
            hanging_protocol: None,
            bench_wl: std::env::var("LIGHTBOX_BENCH_WL")
                .ok()
                .and_then(|v| v.parse().ok())
                .map(|frames| BenchWl {
                    frames,
                    uploads_before: None,
                    intervals: Vec::new(),
                    last: None,
                }),
            launch,
        };
        app.refresh_studies();
        let open = app.launch.open_studies.clone();
        if !open.is_empty() {
            app.open(&open);
        }
        app
    }

    fn refresh_studies(&mut self) {
        match Store::open(&self.launch.cache).and_then(|s| s.studies()) {
            Ok(mut s) => {
                match self.sort {
                    SortBy::Date => s.sort_by(|a, b| b.date.cmp(&a.date)),
                    SortBy::Name => s.sort_by(|a, b| {
                        a.patient_name
                            .to_lowercase()
                            .cmp(&b.patient_name.to_lowercase())
                            .then(b.date.cmp(&a.date))
                    }),
                }
                self.studies = s;
            }
            Err(e) => self.status = format!("cache: {e}"),
        }
    }

    /// Ask the PACS nodes configured with `fetch_priors` for this study's priors
    /// (they are retrieved in the background and hung when they arrive).
    fn look_for_remote_priors(&mut self, uid: &str) {
        let Some(me) = self.studies.iter().find(|s| s.study_uid == uid) else {
            return;
        };
        let (pid, date) = (me.patient_id.clone(), me.date.clone().unwrap_or_default());
        let mods = me.modalities.clone();
        let cached: std::collections::HashSet<String> =
            self.studies.iter().map(|s| s.study_uid.clone()).collect();
        self.pacs.fetch_priors(uid, &pid, &date, &mods, &cached);
    }

    /// A study and its relevant priors in the cache: the same patient (by ID),
    /// older, sharing a modality; the newest two.
    fn with_priors(&self, uid: &str) -> Vec<String> {
        let mut out = vec![uid.to_string()];
        let Some(me) = self.studies.iter().find(|s| s.study_uid == uid) else {
            return out;
        };
        if me.patient_id.trim().is_empty() {
            return out;
        }
        let mods = &me.modalities;
        let mut priors: Vec<&StudyRow> = self
            .studies
            .iter()
            .filter(|s| {
                s.study_uid != uid
                    && s.patient_id == me.patient_id
                    && s.date < me.date
                    && s.modalities.iter().any(|m| mods.contains(m))
            })
            .collect();
        priors.sort_by(|a, b| b.date.cmp(&a.date));
        out.extend(priors.iter().take(2).map(|s| s.study_uid.clone()));
        out
    }

    /// Open studies from the cache: their files are scanned and decoded in the
    /// background; viewports fill as soon as the first frames arrive.
    fn open(&mut self, study_uids: &[String]) {
        // One study: its relevant priors hang themselves (same patient, older,
        // sharing a modality, the newest two).
        let study_uids = if study_uids.len() == 1 {
            self.look_for_remote_priors(&study_uids[0]);
            self.with_priors(&study_uids[0])
        } else {
            study_uids.to_vec()
        };
        self.open_study = study_uids.first().cloned();
        let store = match Store::open(&self.launch.cache) {
            Ok(s) => s,
            Err(e) => {
                self.status = format!("cache: {e}");
                return;
            }
        };
        let mut files = Vec::new();
        for uid in &study_uids {
            let _ = store.touch(uid);
            for se in store.series_of(uid).unwrap_or_default() {
                for i in store.instances_of(&se.series_uid).unwrap_or_default() {
                    files.push(if i.linked {
                        PathBuf::from(&i.path)
                    } else {
                        self.launch.cache.join(&i.path)
                    });
                }
            }
        }
        self.sets.clear();
        self.slots.clear();
        self.thumbs.clear();
        self.measurements.clear();
        for v in &mut self.viewports {
            *v = Viewport::new();
        }
        self.opened_at = Some(Instant::now());
        self.first_image_ms = None;
        self.status = format!("loading {} file(s)…", files.len());
        let (tx, rx) = loader::channel_pair();
        loader::load(files, tx, self.ctx.clone());
        self.rx = Some(rx);
    }

    /// Take what the loader has finished.
    fn receive(&mut self, frame: &eframe::Frame) {
        let Some(rx) = &self.rx else { return };
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
                    self.headers = headers;
                    self.slots = sets
                        .iter()
                        .map(|s| (0..s.set.frames.len()).map(|_| Slot::default()).collect())
                        .collect();
                    self.thumbs = vec![None; sets.len()];
                    self.mpr.clear();
                    self.sets = sets;
                    self.failures = failures;
                    self.hang();
                    if let Some((r, c)) = self.launch.force_layout {
                        self.set_layout(r, c);
                    }
                    self.load_measurements();
                }
                Loaded::Frame { set, index, pixels } => {
                    let mid = self.sets.get(set).map(|s| s.set.frames.len() / 2);
                    let mid_failed = mid
                        .and_then(|m| self.slots.get(set)?.get(m))
                        .is_some_and(|s| s.error.is_some());
                    if let Some(slot) = self.slots.get_mut(set).and_then(|s| s.get_mut(index)) {
                        match pixels {
                            Ok(p) => slot.pixels = Some(p),
                            Err(e) => slot.error = Some(e),
                        }
                    }
                    if (Some(index) == mid || mid_failed)
                        && self.thumbs.get(set).is_some_and(Option::is_none)
                    {
                        self.make_thumbnail(set, index);
                    }
                }
            }
        }
        // Expand and upload what the viewports show (W/L never uploads); keep GPU
        // textures only near what is shown, so memory stays near the voxel bytes.
        let shown: Vec<(usize, usize)> = self
            .viewports
            .iter()
            .filter_map(|v| v.set.map(|s| (s, v.index)))
            .collect();
        self.reformat(&shown);
        self.expanded.retain(|k, _| shown.contains(k));
        self.overlay_textures.retain(|k, _| shown.contains(k));
        for &(set, index) in &shown {
            if self.overlay_textures.contains_key(&(set, index)) {
                continue;
            }
            let Some(fr) = self.sets.get(set).and_then(|s| s.set.frames.get(index)) else {
                continue;
            };
            let Some(h) = self.headers.get(fr.instance) else {
                continue;
            };
            let planes = h
                .overlays
                .iter()
                .filter(|o| o.on_frame(fr.frame))
                .map(|o| {
                    let (w, hh) = (o.columns as usize, o.rows as usize);
                    let mut rgba = vec![0u8; w * hh * 4];
                    for r in 0..o.rows {
                        for c in 0..o.columns {
                            if o.bit(fr.frame, c, r) {
                                let i = (r as usize * w + c as usize) * 4;
                                rgba[i..i + 4].copy_from_slice(&[255, 255, 255, 255]);
                            }
                        }
                    }
                    let tex = self.ctx.load_texture(
                        format!("overlay-{set}-{index}-{:04x}", o.group),
                        egui::ColorImage::from_rgba_unmultiplied([w, hh], &rgba),
                        egui::TextureOptions::NEAREST,
                    );
                    let (l, t) = (o.origin[1] as f64 - 1.0, o.origin[0] as f64 - 1.0);
                    (tex, [l, t, l + w as f64, t + hh as f64])
                })
                .collect();
            self.overlay_textures.insert((set, index), planes);
        }
        for &(set, index) in &shown {
            if self.expanded.contains_key(&(set, index)) {
                continue;
            }
            if let Some(c) = self
                .slots
                .get(set)
                .and_then(|s| s.get(index))
                .and_then(|s| s.pixels.as_ref())
            {
                self.expanded.insert((set, index), Arc::new(c.expand()));
            }
        }
        const KEEP: usize = 48;
        for (set, slots) in self.slots.iter_mut().enumerate() {
            for (i, slot) in slots.iter_mut().enumerate() {
                if slot.texture.is_some()
                    && !shown
                        .iter()
                        .any(|&(s, j)| s == set && i.abs_diff(j) <= KEEP)
                {
                    slot.texture = None;
                }
            }
        }
        let Some(rs) = frame.wgpu_render_state() else {
            return;
        };
        for &(set, index) in &shown {
            let Some(slot) = self.slots.get_mut(set).and_then(|s| s.get_mut(index)) else {
                continue;
            };
            if slot.texture.is_none()
                && let Some(p) = self.expanded.get(&(set, index))
            {
                let renderer = rs.renderer.read();
                if let Some(g) = renderer.callback_resources.get::<ViewerGpu>() {
                    match g.gpu.upload(&rs.device, &rs.queue, p) {
                        Ok(t) => slot.texture = Some(Arc::new(t)),
                        Err(e) => slot.error = Some(e.to_string()),
                    }
                }
            }
        }
    }

    /// Reformat the active viewport's stack (MPR): its two orthogonal planes are
    /// added as display sets and hung beside it (1×3), with reference lines.
    pub fn start_mpr(&mut self) {
        use crate::imaging::mpr::{Plane, Source};
        let Some(src_set) = self.viewports.get(self.active).and_then(|v| v.set) else {
            return;
        };
        if self.sets[src_set].derived.is_some() {
            self.notice = Some("MPR: choose an acquired stack, not a reformat".into());
            return;
        }
        if let Some(existing) = self
            .sets
            .iter()
            .position(|s| s.derived.map(|d| d.0) == Some(src_set))
        {
            // Already reformatted: hang it again.
            self.hang_mpr(src_set, existing);
            return;
        }
        let src = match Source::new(&self.sets[src_set].set, &self.headers) {
            Ok(s) => s,
            Err(e) => {
                self.notice = Some(e.to_string());
                return;
            }
        };
        let mut headers: Vec<ImageHeader> = self.headers.as_ref().clone();
        let first_new = self.sets.len();
        for plane in [Plane::AcrossRows, Plane::AcrossColumns] {
            let base = headers.len();
            let count = src.count(plane);
            headers.extend((0..count).map(|k| src.header(plane, k)));
            let (positions, normal) = src.positions(plane);
            let name = plane.label(src.plane);
            let h0 = &headers[base];
            let orientation = h0.frames[0].image_orientation.unwrap_or_default();
            let step = match plane {
                Plane::AcrossRows => src.rs,
                Plane::AcrossColumns => src.cs,
            };
            let from = &self.sets[src_set];
            let ls = LoadedSet {
                label: format!("MPR {name} ({count})"),
                modality: from.modality.clone(),
                study_uid: from.study_uid.clone(),
                study_date: from.study_date.clone(),
                study_description: from.study_description.clone(),
                series_description: format!("MPR {name}"),
                set: crate::model::DisplaySet {
                    frames: (0..count)
                        .map(|k| crate::model::FrameRef {
                            instance: base + k,
                            frame: 0,
                        })
                        .collect(),
                    rows: src.slices as u32,
                    columns: match plane {
                        Plane::AcrossRows => src.columns,
                        Plane::AcrossColumns => src.rows,
                    },
                    sorted_by: from.set.sorted_by,
                    geometry: Some(crate::model::StackGeometry {
                        plane: name,
                        orientation,
                        normal,
                        spacing_mm: Some(step),
                        min_spacing_mm: Some(step),
                        max_spacing_mm: Some(step),
                        positions_mm: positions,
                        issues: Vec::new(),
                    }),
                    multiframe: false,
                },
                derived: Some((src_set, plane)),
            };
            self.slots
                .push((0..count).map(|_| Slot::default()).collect());
            self.thumbs.push(None);
            self.sets.push(ls);
        }
        self.headers = Arc::new(headers);
        self.mpr.insert(src_set, Arc::new(src));
        self.hang_mpr(src_set, first_new);
    }

    /// The source stack and its two reformats side by side.
    fn hang_mpr(&mut self, src_set: usize, first_derived: usize) {
        let keep = self.viewports.get(self.active).cloned();
        self.set_layout(1, 3);
        if let Some(v) = keep {
            self.viewports[0] = v;
        }
        let window = self.viewports[0].window.clone();
        for (k, set) in [(1, first_derived), (2, first_derived + 1)] {
            let n = self.sets[set].set.frames.len();
            let v = &mut self.viewports[k];
            *v = Viewport::new();
            v.set = Some(set);
            v.index = n / 2;
            v.window = window.clone();
        }
        self.viewports[0].set = Some(src_set);
        self.active = 0;
        self.notice = None;
    }

    /// Compute the reformatted images on screen (and drop the others), once every
    /// slice of their stack is decoded.
    fn reformat(&mut self, shown: &[(usize, usize)]) {
        for set in 0..self.sets.len() {
            let Some((src_set, plane)) = self.sets[set].derived else {
                continue;
            };
            for (i, slot) in self.slots[set].iter_mut().enumerate() {
                if slot.pixels.is_some()
                    && !shown.iter().any(|&(s, j)| s == set && j.abs_diff(i) <= 2)
                {
                    slot.pixels = None;
                }
            }
            let mid = self.sets[set].set.frames.len() / 2;
            let mut wanted: Vec<usize> = shown
                .iter()
                .filter(|&&(s, i)| {
                    s == set && self.slots[set].get(i).is_some_and(|x| x.pixels.is_none())
                })
                .map(|&(_, i)| i)
                .collect();
            if self.thumbs.get(set).is_some_and(Option::is_none) {
                wanted.push(mid);
            }
            if wanted.is_empty() {
                continue;
            }
            let Some(src) = self.mpr.get(&src_set).cloned() else {
                continue;
            };
            let frames: Option<Vec<Arc<Compact>>> = self.slots[src_set]
                .iter()
                .map(|s| s.pixels.clone())
                .collect();
            let Some(frames) = frames else {
                continue; // still decoding: the viewport shows "loading…"
            };
            for k in wanted {
                if self.slots[set].get(k).is_none_or(|s| s.pixels.is_some()) {
                    continue;
                }
                let data = src.image(plane, k, &|s, i| frames[s].sample(i));
                let bits = frames[0].bits_stored;
                let h = &self.headers[self.sets[set].set.frames[k].instance];
                let (rows, columns) = h
                    .pixel
                    .as_ref()
                    .map(|p| (p.rows, p.columns))
                    .unwrap_or((0, 0));
                let px = FramePixels {
                    rows,
                    columns,
                    bits_stored: bits,
                    samples: crate::dicom::pixels::Samples::Mono(data),
                };
                self.slots[set][k].pixels = Some(Arc::new(Compact::new(px)));
                self.slots[set][k].texture = None;
                if k == mid && self.thumbs.get(set).is_some_and(Option::is_none) {
                    self.make_thumbnail(set, k);
                }
            }
        }
    }

    /// The series strip's thumbnail of a set, from one of its decoded frames (the
    /// CPU reference pipeline, box-filtered down).
    fn make_thumbnail(&mut self, set: usize, index: usize) {
        let Some(c) = self
            .slots
            .get(set)
            .and_then(|s| s.get(index))
            .and_then(|s| s.pixels.as_ref())
        else {
            return;
        };
        let Some(fr) = self.sets.get(set).and_then(|s| s.set.frames.get(index)) else {
            return;
        };
        let Some(h) = self.headers.get(fr.instance) else {
            return;
        };
        let px = c.expand();
        let Ok(r) = crate::imaging::render::render(
            h,
            fr.frame,
            &px,
            &crate::imaging::render::RenderOptions::default(),
        ) else {
            return;
        };
        let image = thumbnail(&r, 72);
        let tex =
            self.ctx
                .load_texture(format!("thumb-{set}"), image, egui::TextureOptions::LINEAR);
        if let Some(t) = self.thumbs.get_mut(set) {
            *t = Some(tex);
        }
    }

    /// A file name in the export folder that does not exist yet.
    fn export_path(&self, stem: &str, ext: &str) -> std::result::Result<PathBuf, String> {
        let dir = &self.launch.export_dir;
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let stem: String = stem
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        (1..10_000)
            .map(|k| {
                if k == 1 {
                    dir.join(format!("{stem}.{ext}"))
                } else {
                    dir.join(format!("{stem}-{k}.{ext}"))
                }
            })
            .find(|p| !p.exists())
            .ok_or_else(|| format!("{}: too many exports named {stem}", dir.display()))
    }

    /// The active viewport's image as PNG: the CPU reference pipeline with the
    /// viewport's window and inversion, turned and flipped as shown, at the image's
    /// own resolution, without annotations.
    pub fn export_image(&mut self) {
        let r = (|| -> std::result::Result<PathBuf, String> {
            let v = self.viewports.get(self.active).ok_or("no viewport")?;
            let set = v.set.ok_or("nothing shown")?;
            let fr = self.sets[set].set.frames.get(v.index).ok_or("no image")?;
            let h = self.headers.get(fr.instance).ok_or("no header")?;
            let slot = &self.slots[set][v.index];
            let px = slot.pixels.as_ref().ok_or("not decoded yet")?.expand();
            let r = crate::imaging::render::render(h, fr.frame, &px, &v.options())
                .map_err(|e| e.to_string())?;
            let bytes: Vec<u8> = r.data.iter().map(|&x| x.min(255) as u8).collect();
            let mut img = if r.channels == 1 {
                image::GrayImage::from_raw(r.width, r.height, bytes).map(image::DynamicImage::from)
            } else {
                image::RgbImage::from_raw(r.width, r.height, bytes).map(image::DynamicImage::from)
            }
            .ok_or("rendered size mismatch")?;
            for _ in 0..v.rotation % 4 {
                img = img.rotate90();
            }
            if v.flip_h {
                img = img.fliph();
            }
            if v.flip_v {
                img = img.flipv();
            }
            let ls = &self.sets[set];
            let path = self.export_path(
                &format!(
                    "{}-{}-im{}",
                    ls.modality,
                    ls.label.split(" (").next().unwrap_or(""),
                    v.index + 1
                ),
                "png",
            )?;
            img.save(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(path)
        })();
        self.report_export(r.map(|p| format!("saved {}", p.display())));
    }

    /// The active viewport as shown, annotations and measurements included: a
    /// screenshot of its rectangle, saved when the frame has been read back.
    pub fn export_view(&mut self) {
        let Some(rect) = self.viewports.get(self.active).and_then(|v| v.rect) else {
            self.report_export(Err("nothing shown".into()));
            return;
        };
        let path = match self.export_path("view", "png") {
            Ok(p) => p,
            Err(e) => {
                self.report_export(Err(e));
                return;
            }
        };
        let (tx, ctx) = (self.export_tx.clone(), self.ctx.clone());
        let ppp = self.ctx.pixels_per_point();
        self.ctx.request_screenshot(move |shot| {
            let part = shot.region(&rect, Some(ppp));
            let [w, h] = part.size;
            let rgba: Vec<u8> = part.pixels.iter().flat_map(|c| c.to_array()).collect();
            let msg = match image::RgbaImage::from_raw(w as u32, h as u32, rgba) {
                Some(img) => match img.save(&path) {
                    Ok(()) => format!("saved {}", path.display()),
                    Err(e) => format!("export failed: {}: {e}", path.display()),
                },
                None => "export failed: screenshot size mismatch".into(),
            };
            let _ = tx.send(msg);
            ctx.request_repaint();
        });
    }

    /// The active viewport's series, de-identified, into a new folder (on a
    /// worker thread).
    pub fn export_series_deidentified(&mut self) {
        let Some(set) = self.viewports.get(self.active).and_then(|v| v.set) else {
            self.report_export(Err("nothing shown".into()));
            return;
        };
        let files: Vec<PathBuf> = {
            let mut seen = std::collections::BTreeSet::new();
            self.sets[set]
                .set
                .frames
                .iter()
                .filter_map(|f| self.headers.get(f.instance))
                .filter(|h| seen.insert(h.path.clone()))
                .map(|h| h.path.clone())
                .collect()
        };
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let out = match self.export_path(&format!("deidentified-{stamp}"), "d") {
            Ok(p) => p.with_extension(""),
            Err(e) => {
                self.report_export(Err(e));
                return;
            }
        };
        let (tx, ctx) = (self.export_tx.clone(), self.ctx.clone());
        let opts = self.deid.options.clone();
        self.last_export = Some(format!("de-identifying {} file(s)…", files.len()));
        std::thread::spawn(move || {
            let msg = match crate::dicom::anonymize::export(&files, &out, &opts) {
                Ok(r) if r.refused.is_empty() => {
                    format!(
                        "saved {} de-identified file(s) in {}",
                        r.written.len(),
                        out.display()
                    )
                }
                Ok(r) => format!(
                    "saved {} de-identified file(s) in {}; {} refused: {}",
                    r.written.len(),
                    out.display(),
                    r.refused.len(),
                    r.refused.first().map(|x| x.1.as_str()).unwrap_or("")
                ),
                Err(e) => format!("export failed: {e}"),
            };
            let _ = tx.send(msg);
            ctx.request_repaint();
        });
    }

    fn report_export(&mut self, r: std::result::Result<String, String>) {
        self.last_export = Some(match r {
            Ok(m) => m,
            Err(e) => format!("export failed: {e}"),
        });
    }

    /// The de-identified export form.
    fn deid_window(&mut self, ctx: &egui::Context) {
        let mut open = self.deid.open;
        let mut go = false;
        egui::Window::new("Export series, de-identified")
            .open(&mut open)
            .collapsible(false)
            .show(ctx, |ui| {
                ui.label("DICOM PS3.15 Basic Application Level Confidentiality Profile: names, IDs and UIDs replaced; private tags, overlays and identifying attributes removed.");
                egui::Grid::new("deid").num_columns(2).show(ui, |ui| {
                    let l = ui.label("Patient name");
                    ui.text_edit_singleline(&mut self.deid.options.patient_name)
                        .labelled_by(l.id);
                    ui.end_row();
                    let l = ui.label("Patient ID");
                    ui.text_edit_singleline(&mut self.deid.options.patient_id)
                        .labelled_by(l.id);
                    ui.end_row();
                });
                ui.checkbox(&mut self.deid.options.keep_dates, "keep dates (longitudinal option)");
                ui.checkbox(
                    &mut self.deid.options.keep_descriptions,
                    "keep study/series descriptions (check them first)",
                );
                ui.label(format!("into a new folder in {}", self.launch.export_dir.display()));
                if ui.button("export series").clicked() {
                    go = true;
                }
            });
        self.deid.open = open && !go;
        if go {
            self.export_series_deidentified();
        }
    }

    /// Files or folders dropped on the window: imported into the cache on a worker
    /// thread, then opened.
    fn files_dropped(&mut self, ctx: &egui::Context) {
        let paths: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        });
        if !paths.is_empty() && self.dropped.is_none() {
            self.status = format!("importing {} dropped item(s)…", paths.len());
            let (tx, rx) = std::sync::mpsc::channel();
            let (cache, ctx2) = (self.launch.cache.clone(), ctx.clone());
            std::thread::spawn(move || {
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
            self.dropped = Some(rx);
        }
        let done = self.dropped.as_ref().and_then(|rx| rx.try_recv().ok());
        if let Some(r) = done {
            self.dropped = None;
            self.refresh_studies();
            match r {
                Ok((uids, failures)) => {
                    self.status = if failures > 0 {
                        format!("{failures} dropped file(s) could not be imported")
                    } else {
                        String::new()
                    };
                    if !uids.is_empty() {
                        self.open(&uids);
                    }
                }
                Err(e) => self.status = format!("import failed: {e}"),
            }
        }
    }

    /// Measurements kept in the cache for the open images, placed back on them.
    fn load_measurements(&mut self) {
        self.measurements.clear();
        let Ok(store) = Store::open(&self.launch.cache) else {
            return;
        };
        let mut at: std::collections::HashMap<(String, u32), (usize, usize)> =
            std::collections::HashMap::new();
        for (s, ls) in self.sets.iter().enumerate() {
            for (i, f) in ls.set.frames.iter().enumerate() {
                if let Some(h) = self.headers.get(f.instance) {
                    at.insert((h.sop_instance_uid.clone(), f.frame), (s, i));
                }
            }
        }
        let sops: Vec<String> = self
            .headers
            .iter()
            .map(|h| h.sop_instance_uid.clone())
            .collect();
        for m in store.measurements_of(&sops).unwrap_or_default() {
            let Some(&(set, index)) = at.get(&(m.sop_uid.clone(), m.frame)) else {
                continue;
            };
            let fr = &self.sets[set].set.frames[index];
            let Some(h) = self.headers.get(fr.instance) else {
                continue;
            };
            let to_image = |p: [f64; 3]| -> Option<[f64; 2]> {
                if m.space == "patient" {
                    let plane = plane_of(h, fr.frame)?;
                    let (c, r) = plane.image_point(&nalgebra::Point3::new(p[0], p[1], p[2]));
                    Some([c + 0.5, r + 0.5])
                } else {
                    Some([p[0], p[1]])
                }
            };
            let points: Option<Vec<[f64; 2]>> = m.points.iter().map(|p| to_image(*p)).collect();
            let Some(shape) = points.and_then(|p| Shape::from_points(&m.kind, &p)) else {
                continue;
            };
            self.measurements.push(Meas {
                id: m.id,
                set,
                index,
                shape,
            });
        }
    }

    /// Keep a new measurement (in patient coordinates when the image has a plane).
    fn add_measurement(&mut self, set: usize, index: usize, shape: Shape) {
        let Some(fr) = self.sets.get(set).and_then(|s| s.set.frames.get(index)) else {
            return;
        };
        let Some(h) = self.headers.get(fr.instance) else {
            return;
        };
        if self.sets[set].derived.is_some() {
            self.measurements.push(Meas {
                id: -1,
                set,
                index,
                shape,
            });
            self.notice = Some("measurements on MPR images are kept for this session only".into());
            return;
        }
        let kind = shape.kind();
        let (space, points) = stored_points(h, fr.frame, &shape);
        let row = crate::store::MeasurementRow {
            id: 0,
            sop_uid: h.sop_instance_uid.clone(),
            frame: fr.frame,
            kind: kind.into(),
            space: space.into(),
            points,
        };
        let id = Store::open(&self.launch.cache)
            .and_then(|s| s.add_measurement(&row))
            .unwrap_or_else(|e| {
                self.status = format!("measurement not saved: {e}");
                -1
            });
        self.measurements.push(Meas {
            id,
            set,
            index,
            shape,
        });
    }

    /// A measurement moved: kept in the cache (patient coordinates) too.
    fn edit_measurement(&mut self, pos: usize, shape: Shape) {
        let Some(m) = self.measurements.get_mut(pos) else {
            return;
        };
        m.shape = shape;
        let (id, set, index) = (m.id, m.set, m.index);
        if id < 0 {
            return;
        }
        let Some(fr) = self.sets.get(set).and_then(|s| s.set.frames.get(index)) else {
            return;
        };
        let Some(h) = self.headers.get(fr.instance) else {
            return;
        };
        let (_, points) = stored_points(h, fr.frame, &shape);
        if let Err(e) =
            Store::open(&self.launch.cache).and_then(|s| s.update_measurement(id, &points))
        {
            self.notice = Some(format!("measurement not updated in the cache: {e}"));
        }
    }

    fn delete_measurement(&mut self, pos: usize) {
        let m = self.measurements.remove(pos);
        if m.id >= 0
            && let Err(e) = Store::open(&self.launch.cache).and_then(|s| s.delete_measurement(m.id))
        {
            self.status = format!("measurement not deleted from the cache: {e}");
        }
    }

    /// The measurement list: value with calibration, where it is; click to go
    /// there, "del" to delete.
    fn measurement_list(&mut self, ui: &mut egui::Ui) {
        ui.heading("Measurements");
        if self.measurements.is_empty() {
            ui.label("L length, A angle, C Cobb angle,\nE ellipse ROI, Q rectangle ROI");
        }
        let mut goto = None;
        let mut delete = None;
        for (k, m) in self.measurements.iter().enumerate() {
            let Some(ls) = self.sets.get(m.set) else {
                continue;
            };
            let Some(h) = ls
                .set
                .frames
                .get(m.index)
                .and_then(|f| self.headers.get(f.instance))
            else {
                continue;
            };
            let value = m.shape.value_label(&h.calibration);
            ui.horizontal(|ui| {
                if ui
                    .small_button("del")
                    .on_hover_text("delete this measurement")
                    .clicked()
                {
                    delete = Some(k);
                }
                // Truncated, never widening the panel (which would move the
                // image under the pointer).
                if ui
                    .add(
                        egui::Button::new(format!("{value}  {} im {}", ls.modality, m.index + 1))
                            .frame(false)
                            .truncate(),
                    )
                    .on_hover_text("go to this image")
                    .clicked()
                {
                    goto = Some((m.set, m.index));
                }
            });
        }
        if let Some((set, index)) = goto
            && let Some(v) = self.viewports.get_mut(self.active)
        {
            if v.set != Some(set) {
                *v = Viewport::new();
                v.set = Some(set);
            }
            v.index = index;
        }
        if let Some(k) = delete {
            self.delete_measurement(k);
        }
    }

    /// The tag browser: every element of the active image's header (sequences
    /// indented), filtered by tag, keyword or value.
    fn tag_browser(&mut self, ctx: &egui::Context) {
        let path = self.header_of(self.active).map(|h| h.path.clone());
        let Some(path) = path else {
            self.show_tags = false;
            return;
        };
        if self.tags.as_ref().map(|t| &t.0) != Some(&path) {
            let (text, tree) = match crate::dicom::open(&path, crate::dicom::ReadMode::HeaderOnly) {
                Ok(o) => (
                    crate::dicom::dump::to_text(&o),
                    crate::dicom::dump::to_tree(&o),
                ),
                Err(e) => (e.to_string(), Vec::new()),
            };
            self.tags = Some((path.clone(), text, tree));
        }
        let mut open = self.show_tags;
        let needle = self.tag_filter.to_lowercase();
        egui::Window::new("Tags")
            .open(&mut open)
            .default_size([620.0, 600.0])
            .show(ctx, |ui| {
                ui.horizontal(|ui| {
                    let label = ui.label("Filter");
                    ui.text_edit_singleline(&mut self.tag_filter)
                        .labelled_by(label.id);
                });
                ui.label(path.display().to_string());
                ui.separator();
                egui::ScrollArea::vertical().show(ui, |ui| {
                    match &self.tags {
                        // Filtered: every matching line, sequences opened up.
                        Some((_, text, _)) if !needle.is_empty() => {
                            for line in text.lines() {
                                if line.to_lowercase().contains(&needle) {
                                    ui.monospace(line);
                                }
                            }
                        }
                        // Unfiltered: sequences fold.
                        Some((_, _, tree)) if !tree.is_empty() => {
                            tag_tree(ui, tree, "tags");
                        }
                        Some((_, text, _)) => {
                            ui.monospace(text);
                        }
                        None => {}
                    }
                });
            });
        self.show_tags = open;
    }

    /// Position of a viewport's current slice along its stack's normal (mm), and
    /// its frame of reference.
    fn position(&self, v: &Viewport) -> Option<(f64, [f64; 3], Option<String>)> {
        let ls = self.sets.get(v.set?)?;
        let g = ls.set.geometry.as_ref()?;
        let z = *g.positions_mm.get(v.index)?;
        let for_uid = ls
            .set
            .frames
            .get(v.index)
            .and_then(|f| self.headers.get(f.instance))
            .and_then(|h| h.frame_of_reference_uid.clone());
        Some((z, g.normal, for_uid))
    }

    /// Link (or unlink) all viewports to the active one, keeping today's offsets.
    fn toggle_link(&mut self) {
        if self.link.is_some() {
            self.link = None;
            return;
        }
        let Some((z0, _, _)) = self
            .viewports
            .get(self.active)
            .and_then(|v| self.position(v))
        else {
            return;
        };
        self.link = Some(
            self.viewports
                .iter()
                .map(|v| self.position(v).map(|p| p.0 - z0).unwrap_or(0.0))
                .collect(),
        );
    }

    /// Scroll the other viewports with the active one: by patient position when
    /// they share its frame of reference (and parallel slices), else by the offset
    /// captured when the user linked them.
    fn sync(&mut self) {
        let Some(active) = self.viewports.get(self.active) else {
            return;
        };
        let Some((z0, n0, for0)) = self.position(active) else {
            return;
        };
        let mut targets = Vec::new();
        for (i, v) in self.viewports.iter().enumerate() {
            if i == self.active {
                continue;
            }
            let Some((_, n, for_uid)) = self.position(v) else {
                continue;
            };
            let parallel = (n[0] * n0[0] + n[1] * n0[1] + n[2] * n0[2]).abs() > 0.99;
            let target = match (&self.link, for_uid.is_some() && for_uid == for0) {
                (Some(offsets), _) => z0 + offsets.get(i).copied().unwrap_or(0.0),
                (None, true) if parallel => z0,
                _ => continue,
            };
            let Some(g) = v
                .set
                .and_then(|s| self.sets.get(s))
                .and_then(|ls| ls.set.geometry.as_ref())
            else {
                continue;
            };
            if let Some((idx, _)) = g
                .positions_mm
                .iter()
                .enumerate()
                .min_by(|a, b| (a.1 - target).abs().total_cmp(&(b.1 - target).abs()))
            {
                targets.push((i, idx));
            }
        }
        for (i, idx) in targets {
            self.viewports[i].index = idx;
        }
    }

    /// Window and inversion follow the active viewport in the other viewports of
    /// the same modality (today's CT and its priors read at the same window); zoom
    /// and pan too where they share its frame of reference, or when linked.
    fn sync_views(&mut self) {
        let Some(a) = self.viewports.get(self.active).cloned() else {
            return;
        };
        let Some(set) = a.set else { return };
        let modality = self.sets.get(set).map(|s| s.modality.clone());
        let for0 = self.position(&a).and_then(|p| p.2);
        let mut updates = Vec::new();
        for (i, v) in self.viewports.iter().enumerate() {
            if i == self.active {
                continue;
            }
            let Some(s) = v.set else { continue };
            if self.sets.get(s).map(|x| x.modality.clone()) != modality {
                continue;
            }
            let same_space = self.link.is_some()
                || (for0.is_some() && self.position(v).and_then(|p| p.2) == for0);
            updates.push((i, same_space));
        }
        for (i, same_space) in updates {
            let v = &mut self.viewports[i];
            v.window = a.window.clone();
            v.invert = a.invert;
            if same_space {
                v.zoom = a.zoom;
                v.pan = a.pan;
            }
        }
    }

    /// Show the patient point under image point `q` of viewport `from` in every
    /// other viewport of its frame of reference: each scrolls to its slice nearest
    /// to the point (shift-click; in MPR, click the coronal to find the axial).
    fn locate(&mut self, from: usize, set: usize, index: usize, q: [f64; 2]) {
        let Some(fr) = self.sets.get(set).and_then(|s| s.set.frames.get(index)) else {
            return;
        };
        let Some(h) = self.headers.get(fr.instance) else {
            return;
        };
        let (Some(plane), Some(for_uid)) =
            (plane_of(h, fr.frame), h.frame_of_reference_uid.clone())
        else {
            return;
        };
        let p = plane.patient_point(q[0] - 0.5, q[1] - 0.5);
        let mut moves = Vec::new();
        for (i, v) in self.viewports.iter().enumerate() {
            if i == from {
                continue;
            }
            let Some(ls) = v.set.and_then(|s| self.sets.get(s)) else {
                continue;
            };
            let same = ls
                .set
                .frames
                .first()
                .and_then(|f| self.headers.get(f.instance))
                .and_then(|h| h.frame_of_reference_uid.as_ref())
                == Some(&for_uid);
            let Some(g) = ls.set.geometry.as_ref().filter(|_| same) else {
                continue;
            };
            let d = g.normal[0] * p.x + g.normal[1] * p.y + g.normal[2] * p.z;
            if let Some((k, _)) = g
                .positions_mm
                .iter()
                .enumerate()
                .min_by(|a, b| (a.1 - d).abs().total_cmp(&(b.1 - d).abs()))
            {
                moves.push((i, k));
            }
        }
        for (i, k) in moves {
            self.viewports[i].index = k;
        }
    }

    /// The frame rate the active image asks for (Recommended Display Frame Rate,
    /// Cine Rate, or 1000 / Frame Time), 10 frames/s when it says nothing.
    fn file_frame_rate(&self) -> f32 {
        let Some(h) = self.header_of(self.active) else {
            return 10.0;
        };
        let get = |k: &str| -> Option<f32> {
            h.annotation_attrs
                .iter()
                .find(|(a, _)| *a == k)
                .and_then(|(_, v)| v.trim().parse::<f32>().ok())
                .filter(|x| x.is_finite() && *x > 0.0)
        };
        get("RecommendedDisplayFrameRate")
            .or_else(|| get("CineRate"))
            .or_else(|| get("FrameTime").map(|ms| 1000.0 / ms))
            .map(|f| f.clamp(1.0, 60.0))
            .unwrap_or(10.0)
    }

    /// Advance the active viewport's cine.
    fn cine_step(&mut self, ctx: &egui::Context) {
        let Some(fps) = self.cine else {
            self.cine_last = Instant::now();
            return;
        };
        let due = self.cine_last.elapsed().as_secs_f32() >= 1.0 / fps;
        if due {
            self.cine_last = Instant::now();
            if let Some(v) = self.viewports.get_mut(self.active)
                && let Some(set) = v.set
            {
                let n = self.sets[set].set.frames.len().max(1);
                v.index = (v.index + 1) % n;
            }
        }
        ctx.request_repaint_after(std::time::Duration::from_secs_f32(1.0 / fps / 2.0));
    }

    /// Hanging: by the best hanging protocol that applies to today's study (the
    /// newest open), else today's largest display set first, the same modality of
    /// older studies (priors) next, then the rest.
    fn hang(&mut self) {
        let candidates: Vec<crate::hanging::Candidate> = self
            .sets
            .iter()
            .map(|s| {
                let h = s
                    .set
                    .frames
                    .first()
                    .and_then(|f| self.headers.get(f.instance));
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
        if let Some(h) = crate::hanging::hang(&self.protocols, &candidates) {
            self.set_layout(h.layout.0, h.layout.1);
            for (k, (pick, window)) in h.viewports.iter().zip(&h.windows).enumerate() {
                let Some(v) = self.viewports.get_mut(k) else {
                    continue;
                };
                *v = Viewport::new();
                match pick {
                    Ok(set) => {
                        v.set = Some(*set);
                        v.index = self.sets[*set].set.frames.len() / 2;
                        v.window = window.as_deref().and_then(|w| {
                            lut::CT_PRESETS
                                .iter()
                                .find(|p| p.0.eq_ignore_ascii_case(w))
                                .map(|p| Window::new(p.1, p.2))
                        });
                    }
                    Err(why) => v.note = Some(why.clone()),
                }
            }
            // Viewports beyond the protocol's rules: the sets not hung yet.
            let rules = h.viewports.len();
            for k in rules..self.viewports.len() {
                let shown: Vec<usize> = self
                    .viewports
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i < k)
                    .filter_map(|(_, v)| v.set)
                    .collect();
                let next = (0..self.sets.len()).find(|s| !shown.contains(s));
                let v = &mut self.viewports[k];
                *v = Viewport::new();
                if let Some(set) = next {
                    v.set = Some(set);
                    v.index = self.sets[set].set.frames.len() / 2;
                }
            }
            self.active = 0;
            self.hanging_protocol = Some(h.protocol);
            return;
        }
        self.hanging_protocol = None;
        let mut order: Vec<usize> = (0..self.sets.len()).collect();
        order.sort_by(|&a, &b| {
            let (sa, sb) = (&self.sets[a], &self.sets[b]);
            sb.study_date
                .cmp(&sa.study_date)
                .then(sb.set.frames.len().cmp(&sa.set.frames.len()))
        });
        let Some(&first) = order.first() else { return };
        let modality = self.sets[first].modality.clone();
        let first_study = self.sets[first].study_uid.clone();
        let mut picks = vec![first];
        // Priors of the same modality, newest first, largest set of each study.
        let mut seen = vec![first_study];
        for &i in &order {
            let s = &self.sets[i];
            if s.modality == modality && !seen.contains(&s.study_uid) {
                seen.push(s.study_uid.clone());
                picks.push(i);
            }
        }
        for &i in &order {
            if !picks.contains(&i) {
                picks.push(i);
            }
        }
        for (v, &set) in self.viewports.iter_mut().zip(&picks) {
            v.set = Some(set);
            v.index = self.sets[set].set.frames.len() / 2;
        }
    }

    fn keys(&mut self, ctx: &egui::Context) {
        // Typing in a text field (search, filters) is not a shortcut.
        if ctx.egui_wants_keyboard_input() {
            return;
        }
        let count = self
            .viewports
            .get(self.active)
            .and_then(|v| v.set)
            .map(|s| self.sets[s].set.frames.len())
            .unwrap_or(0);
        let cine_fps = self.file_frame_rate();
        let Some(v) = self.viewports.get_mut(self.active) else {
            return;
        };
        let mut delete = None;
        let mut toggle_link = false;
        let mut page_series = 0i64;
        let mut start_mpr = false;
        ctx.input(|i| {
            if i.modifiers.ctrl {
                if i.key_pressed(Key::ArrowUp) {
                    page_series = -1;
                }
                if i.key_pressed(Key::ArrowDown) {
                    page_series = 1;
                }
            } else {
                if i.key_pressed(Key::ArrowUp) || i.key_pressed(Key::ArrowLeft) {
                    v.step(-1, count);
                }
                if i.key_pressed(Key::ArrowDown) || i.key_pressed(Key::ArrowRight) {
                    v.step(1, count);
                }
            }
            if i.key_pressed(Key::F) {
                v.zoom = 1.0;
                v.pan = Vec2::ZERO;
            }
            if i.key_pressed(Key::Z) {
                v.one_to_one = true;
            }
            if i.key_pressed(Key::PageUp) {
                v.step(-10, count);
            }
            if i.key_pressed(Key::PageDown) {
                v.step(10, count);
            }
            if i.key_pressed(Key::Home) {
                v.index = 0;
            }
            if i.key_pressed(Key::End) {
                v.index = count.saturating_sub(1);
            }
            for (k, (_, c, w)) in PRESET_KEYS.iter().zip(lut::CT_PRESETS) {
                if i.key_pressed(*k) {
                    v.window = Some(Window::new(*c, *w));
                }
            }
            if i.key_pressed(Key::Num0) {
                v.window = None;
            }
            if i.key_pressed(Key::I) {
                v.invert = !v.invert;
            }
            if i.key_pressed(Key::R) {
                v.reset();
            }
            if i.key_pressed(Key::B) {
                v.bilinear = !v.bilinear;
            }
            if i.key_pressed(Key::Y) {
                v.overlays = !v.overlays;
            }
            if i.key_pressed(Key::M) {
                start_mpr = true;
            }
            if i.key_pressed(Key::U) {
                v.shutter = !v.shutter;
            }
            if i.key_pressed(Key::O) {
                v.rotate();
            }
            if i.key_pressed(Key::H) {
                v.flip_h = !v.flip_h;
            }
            if i.key_pressed(Key::V) {
                v.flip_v = !v.flip_v;
            }
            if i.key_pressed(Key::F1) || i.key_pressed(Key::Questionmark) {
                self.show_help = !self.show_help;
            }
            if i.key_pressed(Key::L) {
                self.tool = Tool::Length;
            }
            if i.key_pressed(Key::K) {
                toggle_link = true;
            }
            if i.key_pressed(Key::T) {
                self.show_tags = !self.show_tags;
            }
            if i.key_pressed(Key::Space) {
                self.cine = match self.cine {
                    Some(_) => None,
                    None => Some(cine_fps),
                };
            }
            if let Some(fps) = self.cine.as_mut() {
                if i.key_pressed(Key::Plus) || i.key_pressed(Key::Equals) {
                    *fps = (*fps * 1.25).min(60.0);
                }
                if i.key_pressed(Key::Minus) {
                    *fps = (*fps / 1.25).max(1.0);
                }
            }
            if i.key_pressed(Key::E) {
                self.tool = Tool::Ellipse;
            }
            if i.key_pressed(Key::A) {
                self.tool = Tool::Angle;
            }
            if i.key_pressed(Key::C) {
                self.tool = Tool::Cobb;
            }
            if i.key_pressed(Key::Q) {
                self.tool = Tool::Rect;
            }
            if i.key_pressed(Key::Escape) {
                self.tool = Tool::Window;
                v.pending = None;
                v.drawing = None;
            }
            if i.key_pressed(Key::Delete)
                && let Some(set) = v.set
            {
                delete = self
                    .measurements
                    .iter()
                    .rposition(|m| m.set == set && m.index == v.index);
            }
        });
        if let Some(pos) = delete {
            self.delete_measurement(pos);
        }
        if page_series != 0
            && let Some(set) = self.viewports.get(self.active).and_then(|v| v.set)
            && !self.sets.is_empty()
        {
            let n = self.sets.len() as i64;
            let next = (set as i64 + page_series).rem_euclid(n) as usize;
            let active = self.active;
            self.show_set(active, next);
        }
        if toggle_link {
            self.toggle_link();
        }
        if start_mpr {
            self.start_mpr();
        }
    }

    fn set_layout(&mut self, rows: usize, cols: usize) {
        self.layout = (rows, cols);
        self.maximized = None;
        let n = rows * cols;
        while self.viewports.len() < n {
            let mut v = Viewport::new();
            // Fill new viewports with sets not shown yet.
            let shown: Vec<usize> = self.viewports.iter().filter_map(|v| v.set).collect();
            if let Some(s) = (0..self.sets.len()).find(|s| !shown.contains(s)) {
                v.set = Some(s);
                v.index = self.sets[s].set.frames.len() / 2;
            }
            self.viewports.push(v);
        }
        self.viewports.truncate(n);
        self.active = self.active.min(n - 1);
    }

    fn browser(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            if ui
                .selectable_label(self.tab == BrowserTab::Local, "Local")
                .clicked()
            {
                self.tab = BrowserTab::Local;
            }
            for (i, name) in self.pacs.node_names().iter().enumerate() {
                if ui
                    .selectable_label(self.tab == BrowserTab::Node(i), name)
                    .on_hover_text("query and retrieve from this PACS")
                    .clicked()
                {
                    self.tab = BrowserTab::Node(i);
                    self.pacs.node = i;
                }
            }
        });
        ui.separator();
        match self.tab {
            BrowserTab::Local => self.local_studies(ui),
            BrowserTab::Node(_) => {
                let cached: std::collections::HashSet<String> =
                    self.studies.iter().map(|s| s.study_uid.clone()).collect();
                let action = self.pacs.ui(ui, &cached);
                if let Some(pacs::Action::Open(uid)) = action {
                    self.open(&[uid]);
                }
            }
        }
    }

    /// The local cache's studies: search, sort, open, pin, delete.
    fn local_studies(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let label = ui.label("Search");
            ui.text_edit_singleline(&mut self.search)
                .labelled_by(label.id)
                .on_hover_text("name, ID, date, modality or description");
        });
        ui.horizontal(|ui| {
            ui.label("Sort");
            for (s, name) in [(SortBy::Date, "date"), (SortBy::Name, "name")] {
                if ui.selectable_label(self.sort == s, name).clicked() {
                    self.sort = s;
                    self.refresh_studies();
                }
            }
            if ui.button("Refresh").clicked() {
                self.refresh_studies();
            }
        });
        if let Some(uid) = self.confirm_delete.clone() {
            ui.colored_label(
                Color32::from_rgb(230, 160, 60),
                "Delete this study from the local cache?",
            );
            ui.horizontal(|ui| {
                if ui.button("delete").clicked() {
                    match Store::open(&self.launch.cache).and_then(|mut s| s.remove_study(&uid)) {
                        Ok(n) => self.status = format!("{n} file(s) removed from the cache"),
                        Err(e) => self.status = format!("not deleted: {e}"),
                    }
                    self.confirm_delete = None;
                    self.refresh_studies();
                }
                if ui.button("keep").clicked() {
                    self.confirm_delete = None;
                }
            });
        }
        ui.separator();
        let needle = self.search.to_lowercase();
        let mut open = None;
        let mut pin = None;
        let mut delete = None;
        egui::ScrollArea::vertical().show(ui, |ui| {
            for s in &self.studies {
                let text = format!(
                    "{}  {}\n{}  {}  {}{}",
                    s.patient_name.replace('^', " "),
                    s.patient_id,
                    s.date.clone().unwrap_or_default(),
                    s.modalities_label(),
                    s.description.clone().unwrap_or_default(),
                    match s.retrieval {
                        Some(crate::store::RetrievalState::Incomplete) => "  (incomplete)",
                        _ => "",
                    }
                );
                if !needle.is_empty() && !text.to_lowercase().contains(&needle) {
                    continue;
                }
                let r = ui.selectable_label(false, text);
                if r.clicked() {
                    open = Some(s.study_uid.clone());
                }
                r.context_menu(|ui| {
                    if ui.button("open").clicked() {
                        open = Some(s.study_uid.clone());
                    }
                    if ui
                        .button(if s.pinned {
                            "unpin"
                        } else {
                            "pin (never evicted)"
                        })
                        .clicked()
                    {
                        pin = Some((s.study_uid.clone(), !s.pinned));
                    }
                    if ui.button("delete…").clicked() {
                        delete = Some(s.study_uid.clone());
                    }
                });
                if s.pinned {
                    ui.colored_label(Color32::from_rgb(120, 180, 255), "pinned");
                }
            }
        });
        if let Some(uid) = open {
            self.open(&[uid]);
        }
        if let Some((uid, p)) = pin {
            if let Err(e) = Store::open(&self.launch.cache).and_then(|s| s.set_pinned(&uid, p)) {
                self.status = format!("pin: {e}");
            }
            self.refresh_studies();
        }
        if delete.is_some() {
            self.confirm_delete = delete;
        }
    }

    /// One thumbnail per display set (never fewer than series); click to show it
    /// in the active viewport, or drag it onto any viewport.
    fn series_strip(&mut self, ui: &mut egui::Ui) {
        let mut assign = None;
        egui::ScrollArea::horizontal()
            .id_salt("series-strip")
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    for (i, s) in self.sets.iter().enumerate() {
                        let loaded = self.slots[i].iter().filter(|s| s.pixels.is_some()).count();
                        let n = s.set.frames.len();
                        let label = format!(
                            "{} {}\n{}\n{}",
                            s.modality,
                            s.label,
                            s.study_date,
                            if s.derived.is_some() {
                                format!("{n} im, reformatted")
                            } else if loaded < n {
                                format!("{loaded}/{n} loading")
                            } else {
                                format!("{n} im")
                            }
                        );
                        let shown = self.viewports.iter().any(|v| v.set == Some(i));
                        let id = ui.scope_id().with(("series", i));
                        let r = ui.dnd_drag_source(id, viewport::SeriesDrag(i), |ui| {
                            let button = match self.thumbs.get(i).and_then(|t| t.as_ref()) {
                                Some(t) => egui::Button::image_and_text(
                                    egui::Image::new(t).max_size(Vec2::splat(72.0)),
                                    label,
                                ),
                                None => egui::Button::new(label).min_size(Vec2::new(72.0, 72.0)),
                            };
                            ui.add(button.selected(shown)).on_hover_text(format!(
                                "{}\nclick: show in the active viewport; drag onto a viewport",
                                s.series_description
                            ))
                        });
                        if r.inner.clicked() {
                            assign = Some(i);
                        }
                    }
                });
            });
        if let Some(i) = assign {
            let active = self.active;
            self.show_set(active, i);
        }
    }

    /// Show display set `set` in viewport `v`, at its middle image.
    fn show_set(&mut self, v: usize, set: usize) {
        let Some(n) = self.sets.get(set).map(|s| s.set.frames.len()) else {
            return;
        };
        if let Some(vp) = self.viewports.get_mut(v) {
            *vp = Viewport::new();
            vp.set = Some(set);
            vp.index = n / 2;
        }
        self.active = v;
    }

    fn toolbar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            ui.label("Layout");
            for (r, c) in [(1, 1), (1, 2), (2, 1), (2, 2), (2, 3), (3, 3)] {
                if ui
                    .selectable_label(self.layout == (r, c), format!("{r}×{c}"))
                    .clicked()
                {
                    self.set_layout(r, c);
                }
            }
            ui.menu_button("N×M", |ui| {
                let (mut r, mut c) = self.layout;
                ui.horizontal(|ui| {
                    ui.label("rows");
                    ui.add(egui::DragValue::new(&mut r).range(1..=6));
                    ui.label("columns");
                    ui.add(egui::DragValue::new(&mut c).range(1..=6));
                });
                if (r, c) != self.layout {
                    self.set_layout(r, c);
                }
            });
            ui.separator();
            ui.label("W/L");
            for (name, c, w) in lut::CT_PRESETS {
                if ui.button(*name).clicked()
                    && let Some(v) = self.viewports.get_mut(self.active)
                {
                    v.window = Some(Window::new(*c, *w));
                }
            }
            if ui.button("invert").clicked()
                && let Some(v) = self.viewports.get_mut(self.active)
            {
                v.invert = !v.invert;
            }
            if ui.button("reset").clicked()
                && let Some(v) = self.viewports.get_mut(self.active)
            {
                v.reset();
            }
            ui.separator();
            ui.label("Tool");
            for (t, name) in [
                (Tool::Window, "W/L"),
                (Tool::Length, "length"),
                (Tool::Angle, "angle"),
                (Tool::Cobb, "Cobb"),
                (Tool::Ellipse, "ellipse ROI"),
                (Tool::Rect, "rect ROI"),
            ] {
                if ui.selectable_label(self.tool == t, name).clicked() {
                    self.tool = t;
                }
            }
            ui.separator();
            if ui
                .selectable_label(self.link.is_some(), "link (K)")
                .on_hover_text("scroll all viewports together, keeping their offsets")
                .clicked()
            {
                self.toggle_link();
            }
            let cine = match self.cine {
                Some(fps) => format!("cine {fps:.0} fps (space)"),
                None => "cine (space)".into(),
            };
            if ui.selectable_label(self.cine.is_some(), cine).clicked() {
                let fps = self.file_frame_rate();
                self.cine = match self.cine {
                    Some(_) => None,
                    None => Some(fps),
                };
            }
            if ui
                .selectable_label(self.sync_view, "sync W/L")
                .on_hover_text(
                    "window follows in viewports of the same modality; zoom and pan in the same frame of reference or when linked",
                )
                .clicked()
            {
                self.sync_view = !self.sync_view;
            }
            if ui
                .selectable_label(self.invert_wl_drag, "reverse W/L drag")
                .on_hover_text("reverse the window/level drag directions")
                .clicked()
            {
                self.invert_wl_drag = !self.invert_wl_drag;
            }
            if ui
                .button("MPR (M)")
                .on_hover_text("reformat the active stack into its two orthogonal planes")
                .clicked()
            {
                self.start_mpr();
            }
            if ui.selectable_label(self.show_tags, "tags (T)").clicked() {
                self.show_tags = !self.show_tags;
            }
            ui.menu_button("export", |ui| {
                if ui.button("image as PNG").clicked() {
                    self.export_image();
                    ui.close();
                }
                if ui.button("view as PNG, with annotations").clicked() {
                    self.export_view();
                    ui.close();
                }
                if ui.button("series, de-identified…").clicked() {
                    self.deid.open = true;
                    ui.close();
                }
            });
            ui.separator();
            if ui.button("help (F1)").clicked() {
                self.show_help = !self.show_help;
            }
        });
    }

    fn viewports(&mut self, ui: &mut egui::Ui) {
        let area = ui.available_rect_before_wrap();
        ui.allocate_rect(area, egui::Sense::hover());
        let (rows, cols) = self.layout;
        let cells: Vec<(usize, Rect)> = match self.maximized {
            Some(i) => vec![(i, area)],
            None => (0..rows * cols)
                .map(|i| {
                    let (r, c) = (i / cols, i % cols);
                    let size = Vec2::new(area.width() / cols as f32, area.height() / rows as f32);
                    let min = area.min + Vec2::new(c as f32 * size.x, r as f32 * size.y);
                    (i, Rect::from_min_size(min, size).shrink(1.0))
                })
                .collect(),
        };
        // The active viewport's slice, for reference lines on the others.
        let active_slice = self.viewports.get(self.active).and_then(|v| {
            let fr = self.sets.get(v.set?)?.set.frames.get(v.index)?;
            let h = self.headers.get(fr.instance)?;
            Some((plane_of(h, fr.frame)?, h.frame_of_reference_uid.clone()?))
        });
        for (i, rect) in cells {
            let Some(mut vp) = self.viewports.get(i).cloned() else {
                continue;
            };
            let reference = match (&active_slice, i != self.active) {
                (Some((slice, for_uid)), true) => vp.set.and_then(|s| {
                    let fr = self.sets.get(s)?.set.frames.get(vp.index)?;
                    let h = self.headers.get(fr.instance)?;
                    if h.frame_of_reference_uid.as_ref() != Some(for_uid) {
                        return None;
                    }
                    let px = h.pixel.as_ref()?;
                    let target = plane_of(h, fr.frame)?;
                    let (a, b) = crate::imaging::geometry::reference_line(
                        &target, px.columns, px.rows, slice,
                    )?;
                    // Pixel indices → the viewport's image coordinates (centres +0.5).
                    Some(([a[0] + 0.5, a[1] + 0.5], [b[0] + 0.5, b[1] + 0.5]))
                }),
                _ => None,
            };
            let view = vp.set.and_then(|s| {
                let ls = self.sets.get(s)?;
                let slot = self.slots.get(s)?.get(vp.index)?;
                let fr = ls.set.frames.get(vp.index)?;
                Some(FrameView {
                    corners: self.annotation_layouts.corners(&ls.modality),
                    // The slice's patient coordinate on the axis it is
                    // perpendicular to (its position along the normal if oblique).
                    position: ls.set.geometry.as_ref().and_then(|g| {
                        let p = *g.positions_mm.get(vp.index)?;
                        let ip = self
                            .headers
                            .get(fr.instance)
                            .and_then(|h| h.frame(fr.frame).ok()?.image_position);
                        let axis = (0..3).find(|&a| g.normal[a].abs() > 0.999);
                        Some(match (axis, ip) {
                            (Some(a), Some(ip)) => {
                                format!("{} {:.1} mm", ["x", "y", "z"][a], ip[a])
                            }
                            _ => format!("pos {p:.1} mm"),
                        })
                    }),
                    overlays: self
                        .overlay_textures
                        .get(&(s, vp.index))
                        .map(|v| v.iter().map(|(t, b)| (t.id(), *b)).collect())
                        .unwrap_or_default(),
                    set: s,
                    reference,
                    invert_wl_drag: self.invert_wl_drag,
                    header: self.headers.get(fr.instance)?,
                    frame: fr.frame,
                    pixels: self.expanded.get(&(s, vp.index)),
                    error: slot.error.as_deref(),
                    texture: slot.texture.clone(),
                    count: ls.set.frames.len(),
                    tool: self.tool,
                    shapes: self
                        .measurements
                        .iter()
                        .enumerate()
                        .filter(|(_, m)| m.set == s && m.index == vp.index)
                        .map(|(k, m)| (k, m.shape))
                        .collect(),
                })
            });
            let has_image = view.as_ref().is_some_and(|v| v.texture.is_some());
            let act = vp.show(ui, rect, i as u64, i == self.active, view);
            if act.clicked {
                self.active = i;
            }
            if let Some(set) = act.dropped_set {
                self.viewports[i] = vp;
                self.show_set(i, set);
                continue;
            }
            if let (Some(shape), Some(set)) = (act.new_shape, vp.set) {
                self.add_measurement(set, vp.index, shape);
            }
            if let Some((pos, shape)) = act.edited {
                self.edit_measurement(pos, shape);
            }
            if let (Some(q), Some(set)) = (act.locate, vp.set) {
                self.viewports[i] = vp.clone();
                self.locate(i, set, vp.index, q);
                vp = self.viewports[i].clone();
            }
            if act.double_clicked {
                self.maximized = if self.maximized.is_some() {
                    None
                } else {
                    Some(i)
                };
            }
            if has_image && self.first_image_ms.is_none() {
                self.first_image_ms = self.opened_at.map(|t| t.elapsed().as_secs_f64() * 1e3);
                if self.timing {
                    let since_start = PROCESS_START
                        .get()
                        .map(|t| t.elapsed().as_secs_f64() * 1e3)
                        .unwrap_or(f64::NAN);
                    println!("first image: {since_start:.0} ms after process start");
                }
            }
            self.viewports[i] = vp;
        }
    }
}

impl App {
    /// One frame of the W/L drag benchmark (after everything is decoded).
    fn bench_step(&mut self, ctx: &egui::Context, frame: &eframe::Frame) {
        if self.all_decoded_ms.is_none() {
            return;
        }
        let uploads = frame.wgpu_render_state().and_then(|rs| {
            let r = rs.renderer.read();
            r.callback_resources
                .get::<ViewerGpu>()
                .map(|g| g.gpu.uploads())
        });
        let size = self
            .header_of(self.active)
            .and_then(|h| h.pixel.as_ref())
            .map(|p| (p.columns, p.rows))
            .unwrap_or((0, 0));
        let Some(b) = self.bench_wl.as_mut() else {
            return;
        };
        let now = Instant::now();
        if b.uploads_before.is_none() {
            b.uploads_before = uploads;
        } else if let Some(t) = b.last {
            b.intervals.push(now.duration_since(t).as_secs_f64() * 1e3);
        }
        b.last = Some(now);
        if b.intervals.len() >= b.frames {
            let mut v = b.intervals.clone();
            v.sort_by(f64::total_cmp);
            let med = v[v.len() / 2];
            let p95 = v[(v.len() * 95 / 100).min(v.len() - 1)];
            let (w, h) = size;
            println!(
                "wl drag on {w}x{h}: {} frames, median {med:.1} ms, p95 {p95:.1} ms, texture uploads during the drag: {}",
                v.len(),
                uploads.unwrap_or(0) - b.uploads_before.unwrap_or(0)
            );
            self.bench_wl = None;
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            return;
        }
        // The drag: the window narrows and widens, the level moves, every frame.
        let k = b.intervals.len() as f64;
        if let Some(v) = self.viewports.get_mut(self.active) {
            v.window = Some(Window::new(
                40.0 + 100.0 * (k / 7.0).sin(),
                400.0 + 300.0 * (k / 11.0).cos(),
            ));
        }
        ctx.request_repaint();
    }
}

impl eframe::App for App {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        let now = Instant::now();
        self.frame_ms =
            0.9 * self.frame_ms + 0.1 * now.duration_since(self.last_frame).as_secs_f64() * 1e3;
        self.last_frame = now;
        self.receive(frame);
        let ctx = ui.ctx().clone();
        self.files_dropped(&ctx);
        // PACS work (finds, retrieves, priors) reports whichever tab is shown.
        self.pacs.poll();
        if std::mem::take(&mut self.pacs.arrived) {
            self.refresh_studies();
        }
        if let Some(study) = self.pacs.priors_arrived.take()
            && self.open_study.as_deref() == Some(study.as_str())
        {
            // Its priors are in the cache now: hang them beside it.
            self.open(std::slice::from_ref(&study));
        }
        let before = self.viewports.get(self.active).map(|v| (v.set, v.index));
        let active_before = self.active;
        let view_before = self.viewports.get(self.active).map(view_state);
        self.keys(&ctx);
        self.cine_step(&ctx);
        if self.bench_wl.is_some() {
            self.bench_step(&ctx, frame);
        }
        egui::Panel::left("studies")
            .default_size(300.0)
            .show(ui, |ui| self.browser(ui));
        egui::Panel::top("toolbar").show(ui, |ui| self.toolbar(ui));
        egui::Panel::right("measurements")
            .resizable(true)
            .default_size(250.0)
            .max_size(480.0)
            .show(ui, |ui| self.measurement_list(ui));
        egui::Panel::bottom("series").show(ui, |ui| {
            self.series_strip(ui);
            ui.horizontal(|ui| {
                let (loaded, total) = self.decoded();
                ui.colored_label(
                    Color32::GRAY,
                    format!(
                        "{loaded}/{total} images decoded  first image {}  frame {:.1} ms{}{}",
                        self.first_image_ms
                            .map(|m| format!("{m:.0} ms"))
                            .unwrap_or_else(|| "-".into()),
                        self.frame_ms,
                        if self.failures.is_empty() {
                            String::new()
                        } else {
                            format!("  {} unreadable file(s)", self.failures.len())
                        },
                        if self.status.is_empty() || loaded > 0 {
                            String::new()
                        } else {
                            format!("  {}", self.status)
                        }
                    ),
                );
                if let Some(n) = &self.notice {
                    ui.separator();
                    ui.colored_label(Color32::from_rgb(230, 160, 60), n);
                }
                if let Some(p) = &self.pacs.prior_status {
                    ui.separator();
                    ui.label(p);
                }
                if let Some(p) = &self.hanging_protocol {
                    ui.separator();
                    ui.label(format!("hanging: {p}"));
                }
                if let Some(m) = &self.last_export {
                    ui.separator();
                    ui.label(m);
                }
            });
        });
        egui::CentralPanel::default()
            .frame(egui::Frame::new().fill(Color32::BLACK))
            .show(ui, |ui| self.viewports(ui));
        if self.viewports.get(self.active).map(|v| (v.set, v.index)) != before {
            self.sync();
        }
        if self.sync_view
            && self.active == active_before
            && self.viewports.get(self.active).map(view_state) != view_before
        {
            self.sync_views();
        }
        if self.show_tags {
            self.tag_browser(&ctx);
        }
        if self.deid.open {
            self.deid_window(&ctx);
        }
        while let Ok(m) = self.export_rx.try_recv() {
            self.last_export = Some(m);
        }
        if self.show_help {
            egui::Window::new("Shortcuts")
                .collapsible(false)
                .show(&ctx, |ui| {
                    egui::Grid::new("keys").striped(true).show(ui, |ui| {
                        for (k, what) in SHORTCUTS {
                            ui.monospace(*k);
                            ui.label(*what);
                            ui.end_row();
                        }
                    });
                });
        }
        // Keep decoding progress visible while the loader works.
        // Reformats are computed on demand: only acquired images are "pending".
        let pending = self
            .slots
            .iter()
            .zip(&self.sets)
            .filter(|(_, ls)| ls.derived.is_none())
            .any(|(s, _)| s.iter().any(|x| x.pixels.is_none() && x.error.is_none()));
        if pending {
            ctx.request_repaint_after(std::time::Duration::from_millis(50));
        } else if !self.slots.is_empty() && self.all_decoded_ms.is_none() {
            let since_start = PROCESS_START
                .get()
                .map(|t| t.elapsed().as_secs_f64() * 1e3)
                .unwrap_or(f64::NAN);
            self.all_decoded_ms = Some(since_start);
            if self.timing && self.bench_wl.is_none() {
                let images: usize = self.slots.iter().map(Vec::len).sum();
                println!("all {images} images decoded: {since_start:.0} ms after process start");
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
        }
    }
}

/// A header tree: plain elements as lines, sequences and their items folding.
fn tag_tree(ui: &mut egui::Ui, nodes: &[crate::dicom::dump::Node], salt: &str) {
    for (k, n) in nodes.iter().enumerate() {
        if n.items.is_empty() {
            ui.monospace(&n.line);
            continue;
        }
        let id = format!("{salt}/{k}");
        egui::CollapsingHeader::new(egui::RichText::new(&n.line).monospace())
            .id_salt(&id)
            .show(ui, |ui| {
                for (i, item) in n.items.iter().enumerate() {
                    egui::CollapsingHeader::new(format!("item {}", i + 1))
                        .id_salt(format!("{id}/{i}"))
                        .default_open(n.items.len() == 1)
                        .show(ui, |ui| tag_tree(ui, item, &format!("{id}/{i}")));
                }
            });
    }
}

/// What view synchronisation compares: window, inversion, zoom and pan.
fn view_state(v: &Viewport) -> (Option<(f64, f64)>, bool, f32, Vec2) {
    (
        v.window.as_ref().map(|w| (w.center, w.width)),
        v.invert,
        v.zoom,
        v.pan,
    )
}

/// A thumbnail of a rendered frame, at most `max` pixels on its longer side, by
/// averaging the source pixels each thumbnail pixel covers.
fn thumbnail(r: &crate::imaging::render::Rendered, max: usize) -> egui::ColorImage {
    let (w, h) = (r.width as usize, r.height as usize);
    let scale = (max as f64 / w.max(h).max(1) as f64).min(1.0);
    let (tw, th) = (
        ((w as f64 * scale).round() as usize).max(1),
        ((h as f64 * scale).round() as usize).max(1),
    );
    let ch = r.channels as usize;
    let k = r.max_level.max(1) as f64;
    let mut rgba = Vec::with_capacity(tw * th * 4);
    for ty in 0..th {
        let (y0, y1) = (ty * h / th, ((ty + 1) * h / th).max(ty * h / th + 1));
        for tx in 0..tw {
            let (x0, x1) = (tx * w / tw, ((tx + 1) * w / tw).max(tx * w / tw + 1));
            let mut sum = [0.0f64; 3];
            let mut n = 0.0f64;
            for y in y0..y1.min(h) {
                for x in x0..x1.min(w) {
                    let i = (y * w + x) * ch;
                    for (c, s) in sum.iter_mut().enumerate() {
                        *s += r.data.get(i + c.min(ch - 1)).copied().unwrap_or(0) as f64;
                    }
                    n += 1.0;
                }
            }
            for s in sum {
                rgba.push((s / n.max(1.0) / k * 255.0).round() as u8);
            }
            rgba.push(255);
        }
    }
    egui::ColorImage::from_rgba_unmultiplied([tw, th], &rgba)
}
