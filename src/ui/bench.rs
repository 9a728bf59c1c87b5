//! The W/L drag benchmark mode (`LIGHTBOX_BENCH_WL=N`).

use std::time::Instant;

use eframe::egui::{self};

use super::viewport::ViewerGpu;
use super::*;
use crate::imaging::lut::Window;

/// The W/L drag benchmark's state.
#[derive(Debug)]
pub(super) struct BenchWl {
    pub(super) frames: usize,
    pub(super) uploads_before: Option<u64>,
    pub(super) intervals: Vec<f64>,
    pub(super) last: Option<Instant>,
}

impl App {
    /// One frame of the W/L drag benchmark (after everything is decoded).
    pub(super) fn bench_step(&mut self, ctx: &egui::Context, frame: &eframe::Frame) {
        if self.timing.all_decoded_ms.is_none() {
            return;
        }
        let uploads = frame.wgpu_render_state().and_then(|rs| {
            let r = rs.renderer.read();
            r.callback_resources
                .get::<ViewerGpu>()
                .map(|g| g.gpu.uploads())
        });
        let size = self
            .header_of(self.grid.active)
            .and_then(|h| h.pixel.as_ref())
            .map(|p| (p.columns, p.rows))
            .unwrap_or((0, 0));
        let Some(b) = self.timing.bench_wl.as_mut() else {
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
            self.timing.bench_wl = None;
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            return;
        }
        // The drag: the window narrows and widens, the level moves, every frame.
        let k = b.intervals.len() as f64;
        if let Some(v) = self.grid.viewports.get_mut(self.grid.active) {
            v.window = Some(Window::new(
                40.0 + 100.0 * (k / 7.0).sin(),
                400.0 + 300.0 * (k / 11.0).cos(),
            ));
        }
        ctx.request_repaint();
    }
}
