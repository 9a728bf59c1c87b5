//! The benchmark modes: a W/L drag (`LIGHTBOX_BENCH_WL=N`), scrolling
//! (`LIGHTBOX_BENCH_SCROLL=N`: one slice step per frame), cine
//! (`LIGHTBOX_BENCH_CINE=FPS`: five seconds of cine, frames shown against due)
//! and MPR (`LIGHTBOX_BENCH_MPR=N`: M, then N turns of the crosshair and of
//! the 3-D view, timed until drawn; the peak memory against the voxels open).

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
        // Start once everything is decoded and the textures around the slice are
        // prepared (the drag itself must upload nothing).
        if self.timing.all_decoded_ms.is_none() || self.residency.prefetch_pending {
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

/// The scroll benchmark's state: one step of the active viewport per frame.
#[derive(Debug)]
pub(super) struct BenchScroll {
    pub(super) steps: usize,
    pub(super) intervals: Vec<f64>,
    pub(super) last: Option<Instant>,
    /// Viewport draws (after a step) without the texture of the slice they name.
    pub(super) misses_before: Option<u64>,
}

/// The cine benchmark's state.
#[derive(Debug)]
pub(super) struct BenchCine {
    pub(super) fps: f32,
    /// When cine started, and the frames shown since.
    pub(super) started: Option<(Instant, usize)>,
    /// The slice shown last frame.
    pub(super) last_index: Option<usize>,
}

/// The median and 95th percentile of `v` (sorted in place).
fn median_p95(v: &mut [f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[(v.len() * 95 / 100).min(v.len() - 1)])
}

impl App {
    /// Ready to measure: everything decoded, the textures around each viewport
    /// prepared.
    fn bench_ready(&self) -> bool {
        self.timing.all_decoded_ms.is_some() && !self.residency.prefetch_pending
    }

    /// One frame of the scroll benchmark: the frame time of each step (a step is
    /// drawn in the frame that makes it) and the draws that showed anything but
    /// the slice they name.
    pub(super) fn bench_scroll_step(&mut self, ctx: &egui::Context) {
        if !self.bench_ready()
            && self
                .timing
                .bench_scroll
                .as_ref()
                .is_some_and(|b| b.last.is_none())
        {
            return;
        }
        // `LIGHTBOX_BENCH_ACTIVE=i`: scroll viewport i (the prior is viewport 1).
        if self
            .timing
            .bench_scroll
            .as_ref()
            .is_some_and(|b| b.last.is_none())
            && let Some(i) = std::env::var("LIGHTBOX_BENCH_ACTIVE")
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .filter(|&i| i < self.grid.viewports.len())
        {
            self.grid.active = i;
        }
        let misses = self.residency.misses;
        let count = self
            .grid
            .viewports
            .get(self.grid.active)
            .and_then(|v| self.session.sets.get(v.set?))
            .map(|s| s.set.frames.len())
            .unwrap_or(0);
        let layout = self.grid.layout;
        let Some(b) = self.timing.bench_scroll.as_mut() else {
            return;
        };
        let now = Instant::now();
        match b.last {
            None => b.misses_before = Some(misses),
            Some(t) => b.intervals.push(now.duration_since(t).as_secs_f64() * 1e3),
        }
        b.last = Some(now);
        if b.intervals.len() >= b.steps {
            let (med, p95) = median_p95(&mut b.intervals);
            println!(
                "scroll {} steps on a {count}-slice stack in {}x{}: median {med:.1} ms, p95 {p95:.1} ms per step, steps drawn without their slice: {}",
                b.intervals.len(),
                layout.0,
                layout.1,
                misses - b.misses_before.unwrap_or(misses)
            );
            self.timing.bench_scroll = None;
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            return;
        }
        // Down through the stack, back up at the end.
        let k = b.intervals.len();
        if let Some(v) = self.grid.viewports.get_mut(self.grid.active) {
            let forward = (k / count.max(1)).is_multiple_of(2);
            v.step(if forward { 1 } else { -1 }, count);
        }
        ctx.request_repaint();
    }

    /// One frame of the cine benchmark: five seconds of cine at the asked rate,
    /// then the frames shown against the frames due.
    pub(super) fn bench_cine_step(&mut self, ctx: &egui::Context) {
        if !self.bench_ready() {
            return;
        }
        let index = self.grid.viewports.get(self.grid.active).map(|v| v.index);
        let Some(b) = self.timing.bench_cine.as_mut() else {
            return;
        };
        let now = Instant::now();
        match b.started {
            None => {
                b.started = Some((now, 0));
                self.grid.cine = Some(b.fps);
                self.grid.cine_last = now;
            }
            Some((t, shown)) => {
                let shown = shown + usize::from(index != b.last_index);
                b.started = Some((t, shown));
                let secs = now.duration_since(t).as_secs_f64();
                if secs >= 5.0 {
                    let due = (secs * b.fps as f64).floor() as usize;
                    println!(
                        "cine at {:.0} frames/s for {secs:.1} s: {shown} frames shown of {due} due ({:.0}%)",
                        b.fps,
                        100.0 * shown as f64 / due.max(1) as f64
                    );
                    self.grid.cine = None;
                    self.timing.bench_cine = None;
                    ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                    return;
                }
            }
        }
        b.last_index = index;
        ctx.request_repaint();
    }
}

/// The MPR benchmark's state (`LIGHTBOX_BENCH_MPR=N`): M on the active stack,
/// then N turns of the crosshair and N turns of the 3-D view.
#[derive(Debug)]
pub(super) struct BenchMpr {
    pub(super) turns: usize,
    pub(super) phase: MprPhase,
    /// M pressed, the planes' time, the 3-D view's first full picture's time.
    pub(super) opened: Option<(Instant, Option<f64>, Option<f64>)>,
    /// The time of each turn of the crosshair (until both turned planes are
    /// drawn) and of the 3-D view (until its full picture is shown).
    pub(super) plane_turns: Vec<f64>,
    pub(super) vr_turns: Vec<f64>,
    pub(super) since: Option<Instant>,
}

/// Where the MPR benchmark is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MprPhase {
    Open,
    TurnPlanes,
    TurnVolume,
}

impl App {
    /// Whether viewports `0..3` show their planes and the 3-D view its full
    /// picture of the view it has now.
    fn mpr_drawn(&self) -> (bool, bool) {
        let planes = (0..3).all(|i| {
            self.grid.viewports.get(i).is_some_and(|v| {
                v.set.is_some_and(|s| {
                    self.residency
                        .slots
                        .get(s)
                        .and_then(|x| x.get(v.index))
                        .is_some_and(|x| x.texture.is_some())
                })
            })
        });
        let vr = self.vr_picture(3).is_some_and(|(_, full)| full);
        (planes, vr)
    }

    /// One frame of the MPR benchmark.
    pub(super) fn bench_mpr_step(&mut self, ctx: &egui::Context) {
        if !self.bench_ready() {
            return;
        }
        ctx.request_repaint();
        let now = Instant::now();
        let (planes, vr) = self.mpr_drawn();
        let Some(phase) = self.timing.bench_mpr.as_ref().map(|b| b.phase) else {
            return;
        };
        match phase {
            MprPhase::Open => {
                let opened = self.timing.bench_mpr.as_ref().and_then(|b| b.opened);
                let Some((t0, p, v)) = opened else {
                    self.grid.active = 0;
                    self.toggle_mpr();
                    if let Some(b) = self.timing.bench_mpr.as_mut() {
                        b.opened = Some((now, None, None));
                    }
                    return;
                };
                let ms = now.duration_since(t0).as_secs_f64() * 1e3;
                let p = p.or(planes.then_some(ms));
                let v = v.or(vr.then_some(ms));
                if let Some(b) = self.timing.bench_mpr.as_mut() {
                    b.opened = Some((t0, p, v));
                    if p.is_some() && v.is_some() {
                        b.phase = MprPhase::TurnPlanes;
                        b.since = None;
                    }
                }
            }
            MprPhase::TurnPlanes => {
                let Some(b) = self.timing.bench_mpr.as_mut() else {
                    return;
                };
                match b.since {
                    Some(t) if planes => {
                        b.plane_turns
                            .push(now.duration_since(t).as_secs_f64() * 1e3);
                        b.since = None;
                    }
                    Some(_) => return,
                    None => {}
                }
                if b.plane_turns.len() >= b.turns {
                    b.phase = MprPhase::TurnVolume;
                    b.since = None;
                    return;
                }
                b.since = Some(now);
                // Turn the other two planes 3° on the first viewport's plane.
                let turn = self.grid.viewports.first().and_then(|v| {
                    let cross = self.crosshair_view(v.set?, v.index)?;
                    let c = cross.centre;
                    let (s, co) = (3f64.to_radians().sin(), 3f64.to_radians().cos());
                    let from = [c[0] + 20.0, c[1]];
                    let to = [c[0] + 20.0 * co, c[1] + 20.0 * s];
                    Some((v.set?, v.index, from, to))
                });
                if let Some((set, index, from, to)) = turn {
                    self.move_crosshair(
                        set,
                        index,
                        super::viewport::CrossAction::Rotate { from, to },
                    );
                }
            }
            MprPhase::TurnVolume => {
                let Some(b) = self.timing.bench_mpr.as_mut() else {
                    return;
                };
                match b.since {
                    Some(t) if vr => {
                        b.vr_turns.push(now.duration_since(t).as_secs_f64() * 1e3);
                        b.since = None;
                    }
                    Some(_) => return,
                    None => {}
                }
                if b.vr_turns.len() >= b.turns {
                    self.bench_mpr_report();
                    ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                    return;
                }
                b.since = Some(now);
                if let Some(v) = self.grid.viewports.get_mut(3).and_then(|v| v.vr.as_mut()) {
                    v.azimuth_deg = (v.azimuth_deg + 15.0) % 360.0;
                }
            }
        }
    }

    fn bench_mpr_report(&mut self) {
        let Some(mut b) = self.timing.bench_mpr.take() else {
            return;
        };
        let voxels: usize = self
            .session
            .sets
            .iter()
            .enumerate()
            .filter(|(_, ls)| ls.derived.is_none())
            .filter_map(|(s, ls)| {
                let n = ls.set.frames.len();
                let h = self
                    .session
                    .sets
                    .get(s)?
                    .set
                    .frames
                    .first()
                    .and_then(|f| self.session.headers.get(f.instance))?;
                let p = h.pixel.as_ref()?;
                Some(p.rows as usize * p.columns as usize * n * 2)
            })
            .sum();
        let rss = crate::volume::peak_rss_bytes().unwrap_or(0);
        let (open_planes, open_vr) = b
            .opened
            .map(|(_, p, v)| (p.unwrap_or(f64::NAN), v.unwrap_or(f64::NAN)))
            .unwrap_or((f64::NAN, f64::NAN));
        let (pm, p95) = median_p95(&mut b.plane_turns);
        let (vm, v95) = median_p95(&mut b.vr_turns);
        let size = self.vr_picture(3).map(|(s, _)| s).unwrap_or([0, 0]);
        println!(
            "mpr: planes drawn {open_planes:.0} ms after M, the 3-D view's first full picture {open_vr:.0} ms; \
             a 3° turn of the crosshair until both turned planes are drawn: median {pm:.0} ms, p95 {p95:.0} ms; \
             a 15° turn of the 3-D view ({}x{}) until its full picture: median {vm:.0} ms, p95 {v95:.0} ms; \
             peak RSS {} MB = {:.2}x the {} MB of voxels open",
            size[0],
            size[1],
            rss >> 20,
            rss as f64 / voxels.max(1) as f64,
            voxels >> 20
        );
        if let Some((anon, file, shmem)) = crate::volume::rss_breakdown() {
            println!(
                "mpr: resident now: anonymous {} MB = {:.2}x the voxels, file-backed {} MB \
                 (program and library code), shared {} MB",
                anon >> 20,
                anon as f64 / voxels.max(1) as f64,
                file >> 20,
                shmem >> 20
            );
        }
    }
}
