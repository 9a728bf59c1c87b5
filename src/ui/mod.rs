//! The viewer: an eframe (winit + wgpu) window with egui panels. A study list from
//! the local cache (searchable), the open study's series strip, a grid of viewports
//! drawn by the GPU display pipeline, annotations, and the reading shortcuts.
//! Loading and decoding run on worker threads; the UI never waits for them.
//!
//! The rooms: `app` (the state, grouped by concern, and the frame loop), `command`
//! (every action with its label, tooltip and shortcut, and `App::handle`, the one
//! place they change state), `session` (open, receive, hang, drop), `residency`
//! (frames and textures kept near each viewport), `mpr`, `vr` (MPR's 3-D view),
//! `export`, `measurements`,
//! `order` (a stack's slice order), `tags`, `sync` (scroll/view following, locate, cine), `panels` (browser, series
//! strip, toolbar, viewport grid), `viewport` (one viewport: state, input, drawing,
//! annotations), `theme` (colours and sizes), `pacs`, `annotations`, `loader`,
//! `bench`.

pub mod annotations;
mod app;
mod arriving;
mod bench;
pub mod command;
mod export;
mod help;
pub mod loader;
mod measurements;
mod mpr;
mod order;
pub mod pacs;
mod panels;
mod residency;
mod session;
pub mod stand_in;
mod sync;
mod tags;
pub mod theme;
pub mod viewport;
mod vr;

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
pub use session::names_of;
pub use vr::VR_MODES;

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
    /// Files skipped importing what was given (listed in the skipped-files panel).
    pub skipped: Vec<(PathBuf, String)>,
    /// What was given on the command line, as the reader would name it (for "no
    /// images in …" when none of it held an image).
    pub given: Option<String>,
    /// Where the window's size and maximised state are remembered (none: not
    /// remembered, as in tests).
    pub window_state: Option<PathBuf>,
    /// Where MPR's 3-D view is ray-cast: on the GPU (`render::vr`) or by the
    /// CPU reference on a worker thread; None: on the GPU when the adapter is
    /// hardware (a software adapter such as lavapipe is slower than the CPU
    /// renderer).
    pub vr_on_gpu: Option<bool>,
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
            skipped: Vec::new(),
            given: None,
            window_state: None,
            vr_on_gpu: None,
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

/// `~/.config/lightbox/window.json`: the window's size and state at the last exit.
pub fn default_window_state() -> Option<PathBuf> {
    crate::hanging::user_dir().and_then(|d| d.parent().map(|p| p.join("window.json")))
}

/// The window as it was: its size when not maximised, where it was, and whether
/// it was maximised.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WindowState {
    /// Inner size in points (when not maximised).
    pub size: [f32; 2],
    /// Outer position in points, when known.
    pub position: Option<[f32; 2]>,
    pub maximized: bool,
}

impl WindowState {
    /// What was remembered (none on a first start, or a file that does not parse).
    pub fn read(path: &std::path::Path) -> Option<WindowState> {
        let text = std::fs::read_to_string(path).ok()?;
        let s: WindowState = serde_json::from_str(&text).ok()?;
        (s.size[0] >= 200.0 && s.size[1] >= 150.0 && s.size.iter().all(|v| v.is_finite()))
            .then_some(s)
    }

    /// Remember it (the folder is made when missing).
    pub fn write(&self, path: &std::path::Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_string(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text)
    }

    /// The window now; maximised or full screen, the size it had before is kept
    /// (what it goes back to).
    pub fn of(info: &egui::ViewportInfo, before: Option<&WindowState>) -> Option<WindowState> {
        let maximized = info.maximized.unwrap_or(false);
        let full = info.fullscreen.unwrap_or(false);
        let inner = info.inner_rect?;
        if full {
            return before.copied();
        }
        if maximized {
            let mut s = before.copied().unwrap_or(WindowState {
                size: DEFAULT_SIZE,
                position: None,
                maximized: true,
            });
            s.maximized = true;
            return Some(s);
        }
        Some(WindowState {
            size: [inner.width(), inner.height()],
            position: info.outer_rect.map(|r| [r.min.x, r.min.y]),
            maximized: false,
        })
    }
}

/// The window's size when it is not maximised and nothing was remembered.
const DEFAULT_SIZE: [f32; 2] = [1400.0, 900.0];

/// Start the viewer (blocks until the window is closed): maximised on the first
/// start, as it was left afterwards.
pub fn run(launch: Launch) -> Result<()> {
    let remembered = launch.window_state.as_deref().and_then(WindowState::read);
    let mut viewport = egui::ViewportBuilder::default().with_title("Lightbox");
    viewport = match remembered {
        Some(s) => {
            let v = viewport.with_inner_size(s.size).with_maximized(s.maximized);
            match s.position {
                Some(p) if !s.maximized => v.with_position(p),
                _ => v,
            }
        }
        None => viewport.with_inner_size(DEFAULT_SIZE).with_maximized(true),
    };
    let options = eframe::NativeOptions {
        renderer: eframe::Renderer::Wgpu,
        viewport,
        ..Default::default()
    };
    eframe::run_native(
        "Lightbox",
        options,
        Box::new(move |cc| Ok(Box::new(App::create(launch, cc)?))),
    )
    .map_err(|e| Error::Usage(format!("viewer: {e}")))
}

#[cfg(test)]
mod tests {
    use super::WindowState;
    use eframe::egui;

    #[test]
    fn the_window_state_is_remembered_and_a_maximised_window_keeps_its_size() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("sub").join("window.json");
        assert_eq!(WindowState::read(&path), None, "first start");
        let mut info = egui::ViewportInfo {
            inner_rect: Some(egui::Rect::from_min_size(
                egui::pos2(10.0, 20.0),
                egui::vec2(1200.0, 800.0),
            )),
            maximized: Some(false),
            ..Default::default()
        };
        let small = WindowState::of(&info, None).expect("state");
        assert_eq!((small.size, small.maximized), ([1200.0, 800.0], false));
        info.maximized = Some(true);
        info.inner_rect = Some(egui::Rect::from_min_size(
            egui::Pos2::ZERO,
            egui::vec2(1920.0, 1050.0),
        ));
        let max = WindowState::of(&info, Some(&small)).expect("state");
        assert_eq!((max.size, max.maximized), ([1200.0, 800.0], true));
        max.write(&path).expect("write");
        assert_eq!(WindowState::read(&path), Some(max));
        std::fs::write(&path, "not json").expect("write");
        assert_eq!(WindowState::read(&path), None);
    }
}
