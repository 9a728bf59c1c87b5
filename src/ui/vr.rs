//! Volume rendering in the viewer: MPR's fourth viewport shows the stack
//! ray-cast by the reference renderer (`imaging::vr`) from the stack's one
//! volume (`mpr::shared_volume`: the decoded frames, held once) on a worker
//! thread, never on the UI thread. While the reader turns it, a preview at a
//! third of the size and half the samples follows the pointer; once the view
//! has been still for a moment, the full picture replaces it. The newest
//! view wins: a picture still being made for an older one is shown only if
//! nothing newer is ready, and no more than one is made at a time per
//! viewport. The occupancy grid (empty-space skipping) is made once per stack.
//!
//! On a hardware GPU (or when `Launch::vr_on_gpu` says so) the view is
//! ray-cast by `render::vr` instead, drawn in the frame: the rays are planned
//! here on the UI thread (the reference renderer's own plan) and the paint
//! callback (`viewport::gpu::VrCallback`) uploads the stack's block once and
//! writes a uniform per view; the occupancy grid and the value range are made
//! on a worker first.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use super::viewport::{CropOnPicture, GpuVrFrame, VrFrame, VrView};
use super::*;
use crate::imaging::lut::Window;
use crate::imaging::vr::{self, Mode, Occupancy, Options, TransferFunction};

/// What P steps through: the transfer-function presets (`assets/vr`), then
/// a MIP.
pub const VR_MODES: [&str; 6] = ["bone", "soft-tissue", "angio", "lung", "mr", "mip"];

/// A view still for this long gets its full picture.
const SETTLE: Duration = Duration::from_millis(250);
/// The full picture's longer side is at most this many pixels.
const MAX_SIDE: usize = 1024;

/// A picture asked for: the view, its size in pixels, a preview or not.
#[derive(Debug, Clone, PartialEq)]
struct Request {
    view: VrView,
    size: [usize; 2],
    preview: bool,
}

type Made = Result<(vr::Rendered, Arc<Occupancy>, (f64, f64)), String>;

/// A picture shown: its texture, the request it answers, the patient's
/// directions at its edges, the window it was drawn through.
struct Shown {
    texture: egui::TextureHandle,
    req: Request,
    edges: [String; 4],
    window: (f64, f64),
    camera: vr::Camera,
}

/// A view drawn on the GPU: what the paint callback draws, its size in
/// pixels, the view it answers, the patient's directions at its edges, the
/// window, and the camera.
struct GpuShown {
    frame: GpuVrFrame,
    size: [usize; 2],
    view: VrView,
    edges: [String; 4],
    window: (f64, f64),
    camera: vr::Camera,
}

/// A stack's occupancy grid and range of values, made on a worker.
type Prepared = Result<(Arc<Occupancy>, (f64, f64)), String>;

/// Pictures of the volume renderings on screen, by viewport.
#[derive(Default)]
pub(super) struct VrPictures {
    /// Ray-cast on the GPU (see the module's documentation).
    pub(super) on_gpu: bool,
    gpu: HashMap<usize, GpuShown>,
    /// Value ranges by stack, and the workers making a stack's grid and range.
    ranges: HashMap<usize, (f64, f64)>,
    preparing: HashMap<usize, Receiver<Prepared>>,
    shown: HashMap<usize, Shown>,
    making: HashMap<usize, (Request, Receiver<Made>)>,
    /// When each viewport's view last changed (a preview until it settles).
    moved: HashMap<usize, (VrView, Instant)>,
    /// Occupancy grids, by stack (display set).
    occupancy: HashMap<usize, Arc<Occupancy>>,
}

impl std::fmt::Debug for VrPictures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VrPictures")
            .field("shown", &self.shown.len())
            .field("making", &self.making.len())
            .finish()
    }
}

/// The rendering mode of `view` on a volume whose values span `range`, with
/// `first_window` the stack's own (a MIP's default), and the window it is
/// drawn through.
fn mode_of(view: &VrView, range: (f64, f64), first_window: Option<Window>) -> (Mode, (f64, f64)) {
    let name = VR_MODES.get(view.mode).copied().unwrap_or("mip");
    match TransferFunction::named(name) {
        Some(tf) => {
            let mut tf = tf.for_range(range);
            if let Some((c, w)) = view.window {
                tf = tf.with_window(c, w);
            }
            let window = tf.window;
            (Mode::Composite(tf), window)
        }
        None => {
            let (c, w) = view.window.unwrap_or_else(|| match first_window {
                Some(w) => (w.center, w.width),
                None => ((range.0 + range.1) / 2.0, (range.1 - range.0).max(1.0)),
            });
            (Mode::Mip(Window::new(c, w)), (c, w))
        }
    }
}

impl App {
    /// The stack's default mode: the MR preset for MR, bone otherwise.
    pub(super) fn default_vr_mode(&self, source: usize) -> usize {
        let mr = self
            .session
            .sets
            .get(source)
            .is_some_and(|s| s.modality == "MR");
        VR_MODES
            .iter()
            .position(|&m| m == if mr { "mr" } else { "bone" })
            .unwrap_or(0)
    }

    /// P: the active volume rendering's next mode (its window back to the
    /// mode's own).
    /// With another viewport active, the 3-D view on screen (an MPR hangs
    /// one): P means only that.
    pub(super) fn next_vr_mode(&mut self) {
        let at = if self
            .grid
            .viewports
            .get(self.grid.active)
            .is_some_and(|v| v.vr.is_some())
        {
            Some(self.grid.active)
        } else {
            self.grid.viewports.iter().position(|v| v.vr.is_some())
        };
        match at
            .and_then(|i| self.grid.viewports.get_mut(i))
            .and_then(|v| v.vr.as_mut())
        {
            Some(v) => {
                v.mode = (v.mode + 1) % VR_MODES.len();
                v.window = None;
            }
            None => {
                self.session.notice = Some("P changes the 3-D view's preset: press M first".into());
            }
        }
    }

    /// Start, take in and drop the pictures of the volume renderings shown.
    pub(super) fn keep_vr(&mut self) {
        if self.vr.on_gpu {
            self.keep_vr_gpu();
            return;
        }
        let ppp = self.ctx.pixels_per_point();
        let mut wanted: Vec<(usize, Request)> = Vec::new();
        for (i, vp) in self.grid.viewports.iter().enumerate() {
            let (Some(view), Some(rect)) = (vp.vr.clone(), vp.rect) else {
                continue;
            };
            let now = Instant::now();
            let moved = match self.vr.moved.get(&i) {
                Some((v, at)) if *v == view => *at,
                _ if !self.vr.moved.contains_key(&i) => now - SETTLE * 2,
                _ => now,
            };
            self.vr.moved.insert(i, (view.clone(), moved));
            let preview = now.duration_since(moved) < SETTLE;
            let (mut w, mut h) = (
                (rect.width() * ppp).max(16.0) as usize,
                (rect.height() * ppp).max(16.0) as usize,
            );
            let longer = w.max(h);
            if longer > MAX_SIDE {
                w = w * MAX_SIDE / longer;
                h = h * MAX_SIDE / longer;
            }
            if preview {
                (w, h) = ((w / 3).max(8), (h / 3).max(8));
            }
            wanted.push((
                i,
                Request {
                    view,
                    size: [w, h],
                    preview,
                },
            ));
        }
        let live: Vec<usize> = wanted.iter().map(|w| w.0).collect();
        self.vr.shown.retain(|i, _| live.contains(i));
        self.vr.making.retain(|i, _| live.contains(i));
        self.vr.moved.retain(|i, _| live.contains(i));
        let mut busy = false;
        for (i, want) in wanted {
            // A picture made: shown (whatever view it was for: the newest
            // ready one beats none).
            if let Some((req, rx)) = self.vr.making.get(&i) {
                match rx.try_recv() {
                    Ok(Ok((made, occupancy, window))) => {
                        let image =
                            egui::ColorImage::from_rgb([made.columns, made.rows], &made.rgb);
                        let texture = self.ctx.load_texture(
                            format!("vr-{i}"),
                            image,
                            egui::TextureOptions::LINEAR,
                        );
                        let edges = made.plan.camera.edge_labels();
                        let camera = made.plan.camera.clone();
                        self.vr.occupancy.insert(req.view.source, occupancy);
                        let shown = Shown {
                            texture,
                            req: req.clone(),
                            edges,
                            window,
                            camera,
                        };
                        self.vr.shown.insert(i, shown);
                        self.vr.making.remove(&i);
                    }
                    Ok(Err(e)) => {
                        self.session.notice = Some(format!("3-D view: {e}"));
                        self.vr.making.remove(&i);
                    }
                    Err(std::sync::mpsc::TryRecvError::Empty) => {
                        busy = true;
                        continue;
                    }
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                        self.vr.making.remove(&i);
                    }
                }
            }
            if self.vr.shown.get(&i).is_some_and(|s| s.req == want) {
                continue;
            }
            busy = true;
            if let Err(e) = self.make_vr(i, want) {
                self.session.notice = Some(format!("3-D view: {e}"));
            }
        }
        if busy || self.vr.shown.values().any(|s| s.req.preview) {
            self.ctx.request_repaint_after(Duration::from_millis(30));
        }
    }

    /// On the GPU: the rays of each volume rendering's view planned (once a
    /// worker has made its stack's occupancy grid and value range).
    fn keep_vr_gpu(&mut self) {
        let ppp = self.ctx.pixels_per_point();
        let live: Vec<usize> = (0..self.grid.viewports.len())
            .filter(|&i| self.grid.viewports[i].vr.is_some())
            .collect();
        self.vr.gpu.retain(|i, _| live.contains(i));
        let mut busy = false;
        for i in live {
            let vp = &self.grid.viewports[i];
            let (Some(view), Some(rect)) = (vp.vr.clone(), vp.rect) else {
                continue;
            };
            let size = [
                (rect.width() * ppp).max(16.0) as usize,
                (rect.height() * ppp).max(16.0) as usize,
            ];
            if self
                .vr
                .gpu
                .get(&i)
                .is_some_and(|g| g.view == view && g.size == size)
            {
                continue;
            }
            let source = view.source;
            let Some(volume) = self.shared_volume(source) else {
                busy = true;
                continue; // still decoding
            };
            // The stack's grid and range, made once on a worker.
            if let Some(rx) = self.vr.preparing.get(&source) {
                match rx.try_recv() {
                    Ok(Ok((occupancy, range))) => {
                        self.vr.occupancy.insert(source, occupancy);
                        self.vr.ranges.insert(source, range);
                        self.vr.preparing.remove(&source);
                    }
                    Ok(Err(e)) => {
                        self.session.notice = Some(format!("3-D view: {e}"));
                        self.vr.preparing.remove(&source);
                        continue;
                    }
                    Err(_) => {
                        busy = true;
                        continue;
                    }
                }
            }
            let (Some(occupancy), Some(&range)) = (
                self.vr.occupancy.get(&source).cloned(),
                self.vr.ranges.get(&source),
            ) else {
                let (tx, rx) = channel();
                let worker = volume.clone();
                let started = std::thread::Builder::new()
                    .name("vr".into())
                    .spawn(move || {
                        let view = worker.view();
                        let made = Occupancy::of(&view)
                            .map_err(|e| e.to_string())
                            .and_then(|o| {
                                let range = view
                                    .modality_range()
                                    .ok_or_else(|| "the volume is empty".to_string())?;
                                Ok((Arc::new(o), range))
                            });
                        let _ = tx.send(made);
                    });
                match started {
                    Ok(_) => {
                        self.vr.preparing.insert(source, rx);
                        busy = true;
                    }
                    Err(e) => self.session.notice = Some(format!("3-D view: {e}")),
                }
                continue;
            };
            let first_window = self
                .session
                .frame(source, 0)
                .and_then(|(fr, h)| h.frame(fr.frame).ok()?.windows.first().cloned());
            let (mode, window) = mode_of(&view, range, first_window);
            let mut opts = Options::new(mode);
            if view.crop != [[0.0; 3], [1.0; 3]] {
                opts.crop = Some(crop_box(volume.block.dims, &view.crop));
            }
            let planned = {
                let v = volume.view();
                vr::plan(
                    &v,
                    &vr::View {
                        azimuth_deg: view.azimuth_deg,
                        elevation_deg: view.elevation_deg,
                        columns: size[0],
                        rows: size[1],
                        zoom: view.zoom,
                        pan: view.pan,
                    },
                    None,
                )
            };
            let plan = match planned {
                Ok(p) => p,
                Err(e) => {
                    self.session.notice = Some(format!("3-D view: {e}"));
                    continue;
                }
            };
            let camera = plan.camera.clone();
            self.vr.gpu.insert(
                i,
                GpuShown {
                    frame: GpuVrFrame {
                        block: Arc::clone(&volume.block),
                        patient_from_voxel: volume.patient_from_voxel,
                        slice_coords: volume.slice_coords.clone().map(Arc::new),
                        rescale: volume.rescale,
                        plan,
                        opts,
                        occupancy,
                    },
                    size,
                    view,
                    edges: camera.edge_labels(),
                    window,
                    camera,
                },
            );
            self.ctx.request_repaint();
        }
        if busy {
            self.ctx.request_repaint_after(Duration::from_millis(30));
        }
    }

    /// Start making the picture `want` asks for viewport `i` on a worker.
    fn make_vr(&mut self, i: usize, want: Request) -> std::io::Result<()> {
        let source = want.view.source;
        let Some(volume) = self.shared_volume(source) else {
            return Ok(()); // still decoding
        };
        let first_window = self
            .session
            .frame(source, 0)
            .and_then(|(fr, h)| h.frame(fr.frame).ok()?.windows.first().cloned());
        let occupancy = self.vr.occupancy.get(&source).cloned();
        let (tx, rx) = channel();
        let req = want.clone();
        std::thread::Builder::new()
            .name("vr".into())
            .spawn(move || {
                let made = render(&volume.view(), &req, occupancy, first_window);
                let _ = tx.send(made);
            })?;
        self.vr.making.insert(i, (want, rx));
        Ok(())
    }

    /// The picture of viewport `i`'s volume rendering as last drawn: its size
    /// in pixels, and whether it is the full picture of the view as it is now
    /// (not a preview, nothing newer being made).
    pub fn vr_picture(&self, i: usize) -> Option<([usize; 2], bool)> {
        let view = self.grid.viewports.get(i)?.vr.as_ref()?;
        if self.vr.on_gpu {
            let g = self.vr.gpu.get(&i)?;
            return Some((g.size, g.view == *view));
        }
        let req = &self.vr.shown.get(&i)?.req;
        let full = !req.preview && *view == req.view && !self.vr.making.contains_key(&i);
        Some((req.size, full))
    }

    /// The crop box as viewport `i`'s 3-D picture shows it, and the
    /// picture's size in pixels.
    pub fn vr_crop(&self, i: usize) -> Option<(CropOnPicture, [usize; 2])> {
        let f = self.vr_frame(i)?;
        let size = f.picture.map(|(_, s)| s).or(f.gpu.map(|(_, s)| s))?;
        Some((f.crop?, size))
    }

    /// What viewport `i` draws of its volume rendering.
    pub(super) fn vr_frame(&self, i: usize) -> Option<VrFrame> {
        let view = self.grid.viewports.get(i)?.vr.as_ref()?;
        if self.vr.on_gpu {
            return Some(self.vr_frame_gpu(i, view));
        }
        let shown = self.vr.shown.get(&i);
        // The label names the picture on screen (its preset and window) until
        // the new one replaces it.
        let mode = shown.map_or(view.mode, |s| s.req.view.mode);
        let name = VR_MODES.get(mode).copied().unwrap_or("mip");
        let window = shown.map(|s| s.window).unwrap_or((0.0, 1.0));
        let what = if name == "mip" {
            "MIP".to_string()
        } else {
            format!("VR {name}")
        };
        let preview = shown.is_some_and(|s| s.req.preview) || self.vr.making.contains_key(&i);
        Some(VrFrame {
            picture: shown.map(|s| (s.texture.id(), s.req.size)),
            gpu: None,
            window,
            corners: [
                match shown {
                    Some(_) => format!(
                        "3D {what}  C {:.0} W {:.0}{}",
                        window.0,
                        window.1,
                        if preview { "  (preview)" } else { "" }
                    ),
                    None => format!("3D {what}"),
                },
                position_line(view),
            ],
            edges: shown.map(|s| s.edges.clone()).unwrap_or_default(),
            preview,
            crop: shown.and_then(|s| self.crop_on_picture(view, &s.camera)),
        })
    }

    /// What viewport `i` draws of its volume rendering on the GPU.
    fn vr_frame_gpu(&self, i: usize, view: &VrView) -> VrFrame {
        let g = self.vr.gpu.get(&i);
        let name = VR_MODES.get(view.mode).copied().unwrap_or("mip");
        let what = if name == "mip" {
            "MIP".to_string()
        } else {
            format!("VR {name}")
        };
        VrFrame {
            picture: None,
            gpu: g.map(|g| (g.frame.clone(), g.size)),
            window: g.map(|g| g.window).unwrap_or((0.0, 1.0)),
            corners: [
                match g {
                    Some(g) => format!("3D {what}  C {:.0} W {:.0}", g.window.0, g.window.1),
                    None => format!("3D {what}"),
                },
                position_line(view),
            ],
            edges: g.map(|g| g.edges.clone()).unwrap_or_default(),
            preview: false,
            crop: g.and_then(|g| self.crop_on_picture(view, &g.camera)),
        }
    }

    /// The crop box of `view` as the picture taken by `camera` shows it.
    fn crop_on_picture(&self, view: &VrView, camera: &vr::Camera) -> Option<CropOnPicture> {
        let volume = self.session.mpr.get(&view.source)?.volume.as_ref()?;
        let m = volume.patient_from_voxel;
        let dims = volume.block.dims;
        let [lo, hi] = crop_box(dims, &view.crop);
        let at = |q: [f64; 3]| -> [f32; 2] {
            let p = m * nalgebra::Vector4::new(q[0], q[1], q[2], 1.0);
            let d = nalgebra::Vector3::new(p.x, p.y, p.z) - camera.origin.coords;
            [
                (d.dot(&camera.right) / camera.pixel_mm + 0.5) as f32,
                (d.dot(&camera.down) / camera.pixel_mm + 0.5) as f32,
            ]
        };
        let corners = std::array::from_fn(|k| {
            at(std::array::from_fn(|a| {
                if k >> a & 1 == 1 { hi[a] } else { lo[a] }
            }))
        });
        let mid: [f64; 3] = std::array::from_fn(|a| (lo[a] + hi[a]) / 2.0);
        let faces = (0..3)
            .flat_map(|a| [(a, 0), (a, 1)])
            .map(|(a, side)| {
                let mut q = mid;
                q[a] = if side == 0 { lo[a] } else { hi[a] };
                // The whole volume along the axis, on the picture.
                let step = m.fixed_view::<3, 1>(0, a) * dims[a] as f64;
                let dir = [
                    (step.dot(&camera.right) / camera.pixel_mm) as f32,
                    (step.dot(&camera.down) / camera.pixel_mm) as f32,
                ];
                ((a, side), at(q), dir)
            })
            .collect();
        Some(CropOnPicture { corners, faces })
    }
}

/// A crop box given as fractions of a volume of `dims` voxels, in voxel
/// coordinates (the volume's box runs from −0.5 to n − 0.5).
fn crop_box(dims: [usize; 3], f: &[[f64; 3]; 2]) -> vr::Crop {
    let at = |a: usize, t: f64| -0.5 + t.clamp(0.0, 1.0) * dims[a] as f64;
    [
        std::array::from_fn(|a| at(a, f[0][a])),
        std::array::from_fn(|a| at(a, f[1][a])),
    ]
}

/// Make one picture (on a worker thread).
fn render(
    volume: &crate::volume::VolumeView<'_>,
    req: &Request,
    occupancy: Option<Arc<Occupancy>>,
    first_window: Option<Window>,
) -> Made {
    let occupancy = match occupancy {
        Some(o) => o,
        None => Arc::new(Occupancy::of(volume).map_err(|e| e.to_string())?),
    };
    let range = volume
        .modality_range()
        .ok_or_else(|| "the volume is empty".to_string())?;
    let (mode, window) = mode_of(&req.view, range, first_window);
    let mut opts = Options::new(mode);
    if req.view.crop != [[0.0; 3], [1.0; 3]] {
        opts.crop = Some(crop_box(volume.dims, &req.view.crop));
    }
    if req.preview {
        // Half the samples along each ray: the finest spacing, not half of it.
        opts.step_mm = Some(vr::finest_spacing(volume));
    }
    let view = vr::View {
        pan: req.view.pan,
        azimuth_deg: req.view.azimuth_deg,
        elevation_deg: req.view.elevation_deg,
        columns: req.size[0],
        rows: req.size[1],
        zoom: req.view.zoom,
    };
    let made = vr::render_with(volume, &view, &opts, &occupancy).map_err(|e| e.to_string())?;
    Ok((made, occupancy, window))
}

/// The 3-D view's second corner line: where it looks from, how near, and
/// "cropped" while the crop box leaves part of the volume out (the box itself
/// shows only under the pointer).
fn position_line(view: &VrView) -> String {
    let cropped = view.crop != [[0.0; 3], [1.0; 3]];
    format!(
        "azimuth {:.0}°  elevation {:.0}°  zoom {:.2}×{}",
        view.azimuth_deg,
        view.elevation_deg,
        view.zoom,
        if cropped { "  cropped" } else { "" }
    )
}
