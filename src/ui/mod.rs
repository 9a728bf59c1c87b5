//! The viewer: an eframe (winit + wgpu) window with egui panels. A study list from
//! the local cache (searchable), the open study's series strip, a grid of viewports
//! drawn by the GPU display pipeline, annotations, and the reading shortcuts.
//! Loading and decoding run on worker threads; the UI never waits for them.
//!
//! The rooms: `app` (the state, grouped by concern, and the frame loop), `command`
//! (every action with its label, tooltip and shortcut, and `App::handle`, the one
//! place they change state), `session` (open, receive, hang, drop), `residency`
//! (frames and textures kept near each viewport), `mpr`, `export`, `measurements`,
//! `order` (a stack's slice order), `tags`, `sync` (scroll/view following, locate, cine), `panels` (browser, series
//! strip, toolbar, viewport grid), `viewport` (one viewport: state, input, drawing,
//! annotations), `theme` (colours and sizes), `pacs`, `annotations`, `loader`,
//! `bench`.

pub mod annotations;
mod app;
mod bench;
pub mod command;
mod export;
pub mod loader;
mod measurements;
mod mpr;
mod order;
pub mod pacs;
mod panels;
mod residency;
mod session;
mod sync;
mod tags;
pub mod theme;
pub mod viewport;

use std::path::PathBuf;
use std::time::Instant;

use eframe::egui;

use crate::error::{Error, Result};

pub use app::App;
use app::*;
use bench::{BenchCine, BenchScroll, BenchWl};
use export::DeidForm;
use measurements::Meas;
use residency::{OverlayPlane, Slot};
use session::DropResult;

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
    /// Slices one mouse-wheel notch moves (touchpad pixel deltas in proportion).
    pub slices_per_notch: f32,
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
            slices_per_notch: 1.0,
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
