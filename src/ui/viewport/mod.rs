//! One viewport: which display set and slice it shows, its window, zoom and pan;
//! the mapping from screen to image; drawing through the GPU display pipeline (an
//! `egui_wgpu` paint callback); corner annotations and orientation markers.
//!
//! Its rooms: `show` (input and painting), `transform` (screen↔image), `gpu` (the
//! paint callback), `annotate` (corner text, markers, scale bar, probe), `draw`
//! (measurements), `scroll` (wheel notches, the stack scroll bar).

mod annotate;
mod crosshair;
mod draw;
mod gpu;
mod legible;
mod scroll;
mod show;
mod transform;
mod vr;

use crate::dicom::ImageHeader;
use crate::dicom::pixels::FramePixels;
use crate::imaging::lut::Window;
use crate::imaging::render::{RenderOptions, VoiChoice};
use crate::render::ImageTexture;
use eframe::egui::{self, Rect, Vec2};
use std::sync::Arc;

use annotate::*;
use draw::*;
pub use gpu::ViewerGpu;
pub use scroll::{PAGE, SCROLL_BAR_WIDTH, WheelInput, scroll_bar_rect, wheel_input};

use gpu::*;
pub use legible::Drawn;
pub use transform::Affine;

/// What a left drag does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tool {
    #[default]
    Window,
    Length,
    Angle,
    Cobb,
    Ellipse,
    Rect,
}

/// A measurement's shape, in image pixel coordinates (column, row).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    Line([f64; 2], [f64; 2]),
    /// The ellipse inscribed in the box between two corners.
    Ellipse([f64; 2], [f64; 2]),
    /// The box between two corners.
    Rect([f64; 2], [f64; 2]),
    /// Arm end, vertex, arm end.
    Angle([f64; 2], [f64; 2], [f64; 2]),
    /// Two lines (endplates).
    Cobb([[f64; 2]; 2], [[f64; 2]; 2]),
}

impl Shape {
    /// The kind stored in the cache index.
    pub fn kind(&self) -> &'static str {
        match self {
            Shape::Line(..) => "length",
            Shape::Ellipse(..) => "ellipse",
            Shape::Rect(..) => "rectangle",
            Shape::Angle(..) => "angle",
            Shape::Cobb(..) => "cobb",
        }
    }

    /// Its defining points (image coordinates), in order.
    pub fn points(&self) -> Vec<[f64; 2]> {
        match *self {
            Shape::Line(a, b) | Shape::Ellipse(a, b) | Shape::Rect(a, b) => vec![a, b],
            Shape::Angle(a, v, c) => vec![a, v, c],
            Shape::Cobb([a, b], [c, d]) => vec![a, b, c, d],
        }
    }

    /// The shape of a stored kind and its points (None when they do not fit).
    pub fn from_points(kind: &str, p: &[[f64; 2]]) -> Option<Shape> {
        Some(match (kind, p) {
            ("length", [a, b]) => Shape::Line(*a, *b),
            ("ellipse", [a, b]) => Shape::Ellipse(*a, *b),
            ("rectangle", [a, b]) => Shape::Rect(*a, *b),
            ("angle", [a, v, c]) => Shape::Angle(*a, *v, *c),
            ("cobb", [a, b, c, d]) => Shape::Cobb([*a, *b], [*c, *d]),
            _ => return None,
        })
    }

    /// The same shape with point `k` moved to `p`.
    pub fn with_point(&self, k: usize, p: [f64; 2]) -> Shape {
        let mut pts = self.points();
        if let Some(q) = pts.get_mut(k) {
            *q = p;
        }
        Shape::from_points(self.kind(), &pts).unwrap_or(*self)
    }

    /// Its value with the calibration basis, for shapes that need no pixels.
    pub fn value_label(&self, cal: &crate::dicom::header::Calibration) -> String {
        use crate::imaging::measure;
        match *self {
            Shape::Line(a, b) => measure::length(a, b, cal).label(),
            Shape::Angle(a, v, c) => measure::angle(a, v, c, cal)
                .map(|x| x.label())
                .unwrap_or_else(|| "angle".into()),
            Shape::Cobb(l1, l2) => measure::cobb(l1, l2, cal)
                .map(|x| format!("Cobb {}", x.label()))
                .unwrap_or_else(|| "Cobb".into()),
            Shape::Ellipse(..) => "ellipse ROI".into(),
            Shape::Rect(..) => "rectangle ROI".into(),
        }
    }
}

/// The image a viewport drew last: its stack (series UID, columns, rows), its
/// texture and its display plan.
pub type LastDrawn = (
    (String, u32, u32),
    Arc<ImageTexture>,
    crate::imaging::render::DisplayPlan,
);

/// Viewport state.
#[derive(Debug, Clone, Default)]
pub struct Viewport {
    /// A shape being drawn (image coordinates).
    pub drawing: Option<([f64; 2], [f64; 2])>,
    /// A measurement being edited: its place in the app's list, which of its
    /// points moves, and its shape as dragged so far.
    pub editing: Option<(usize, usize, Shape)>,
    /// The finished first stroke of a two-stroke shape (angle: arm and vertex;
    /// Cobb: the first line), on image `pending_at` of set `pending_set`.
    pub pending: Option<([f64; 2], [f64; 2])>,
    pub pending_at: (usize, usize),
    /// Display set shown (index into the app's sets).
    pub set: Option<usize>,
    pub index: usize,
    /// A window the user chose (None: the file's, or the default).
    pub window: Option<Window>,
    pub invert: bool,
    pub zoom: f32,
    pub pan: Vec2,
    pub bilinear: bool,
    /// Quarter turns clockwise.
    pub rotation: u8,
    pub flip_h: bool,
    pub flip_v: bool,
    /// Image → screen mapping as last drawn.
    pub mapping: Option<Affine>,
    /// Where the viewport was last drawn (points).
    pub rect: Option<Rect>,
    /// Why it is empty (a hanging protocol rule nothing fitted).
    pub note: Option<String>,
    /// Apply the image's Display Shutter (on by default).
    pub shutter: bool,
    /// Draw the image's overlay planes (on by default).
    pub overlays: bool,
    /// Set the zoom to 1:1 (one image pixel per screen pixel) at the next draw.
    pub one_to_one: bool,
    /// The reference line as last drawn (image coordinates).
    pub reference: Option<([f64; 2], [f64; 2])>,
    /// Wheel notches (in slices) not yet turned into a step: a touchpad's pixel
    /// deltas add up here until they make a whole slice.
    pub wheel: f32,
    /// The pointer was over it (and nothing above it) when it was last drawn:
    /// the wheel scrolls it.
    pub hovered: bool,
    /// The image last drawn (its series and size, texture and display plan):
    /// drawn again, under "loading…", while the slice asked for in the same stack
    /// is still being decoded, so a step never shows a black viewport.
    pub last_drawn: Option<LastDrawn>,
    /// What was written on the image in the last frame, and where.
    pub drawn: Vec<Drawn>,
    /// The part of an MPR crosshair being dragged.
    pub cross_grab: Option<CrossGrab>,
    /// A volume rendering instead of a display set.
    pub vr: Option<VrView>,
    /// The crop-box face being dragged (axis, side).
    pub crop_grab: Option<(usize, usize)>,
}

/// What the viewport needs to draw its current frame.
#[derive(Debug)]
pub struct FrameView<'a> {
    /// The display set shown.
    pub set: usize,
    /// Reverse the W/L drag directions.
    pub invert_wl_drag: bool,
    /// Where the active viewport's slice cuts this image (image coordinates).
    pub reference: Option<([f64; 2], [f64; 2])>,
    /// Where the slice is along its stack ("z 120.0 mm"), when it has geometry.
    pub position: Option<String>,
    /// The corner annotation templates for this image's modality.
    pub corners: super::annotations::Corners,
    /// Overlay planes as textures, each with its box in image coordinates
    /// (left, top, right, bottom).
    pub overlays: Vec<(egui::TextureId, [f64; 4])>,
    pub header: &'a ImageHeader,
    pub frame: u32,
    pub pixels: Option<&'a Arc<FramePixels>>,
    /// `pixels` are a reduced-resolution preview (the levels dropped): drawn,
    /// but no value is read off them (probe, ROI statistics).
    pub preview: Option<u32>,
    pub error: Option<&'a str>,
    pub texture: Option<Arc<ImageTexture>>,
    pub count: usize,
    /// Which slices of the stack are decoded (for the scroll bar).
    pub decoded: Vec<bool>,
    pub tool: Tool,
    /// Measurements on this image, with their place in the app's list.
    pub shapes: Vec<(usize, Shape)>,
    /// The study is still arriving: "arriving: 120 of 400 images".
    pub arriving: Option<String>,
    /// A reformat shown as a slab (annotated "MIP 10.0 mm", and its
    /// thickness is the slab's).
    pub slab: Option<crate::imaging::reslice::Slab>,
    /// An MPR plane: its crosshair.
    pub crosshair: Option<CrosshairView>,
    /// What the reader should know of how the image was made (an MPR plane
    /// of a tilted or unevenly spaced stack).
    pub note: Option<String>,
}

/// An MPR's crosshair on a viewport's image (image coordinates): where the
/// planes meet, each other plane's line, and the colour of this viewport's own
/// plane.
#[derive(Debug, Clone, PartialEq)]
pub struct CrosshairView {
    pub centre: [f64; 2],
    pub lines: Vec<CrossLine>,
    pub colour: egui::Color32,
}

/// Another plane's line on an MPR image: which plane, the line's direction
/// and colour, and, when that plane is a slab, the offset from the line to
/// each of the slab's faces (image coordinates).
#[derive(Debug, Clone, PartialEq)]
pub struct CrossLine {
    pub plane: usize,
    pub dir: [f64; 2],
    pub colour: egui::Color32,
    pub slab: Option<[f64; 2]>,
}

/// What a drag on the crosshair asks (image coordinates).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CrossAction {
    /// Put the centre here.
    MoveCentre([f64; 2]),
    /// Move plane `other` (its line) through this point.
    MoveLine { other: usize, to: [f64; 2] },
    /// Turn the other planes about this image's normal, by the angle from
    /// `from` to `to` about the centre.
    Rotate { from: [f64; 2], to: [f64; 2] },
    /// Make plane `other` a slab whose face passes through this point.
    Slab { other: usize, to: [f64; 2] },
}

/// The part of the crosshair a drag holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CrossGrab {
    Centre,
    Line(usize),
    /// A face of that plane's slab.
    Slab(usize),
    /// A line's handle; the pointer's last image point.
    Handle([f64; 2]),
}

/// A volume rendering in a viewport (MPR's fourth): which stack, from where,
/// how near, in which mode, through which window. Plain state: a drag edits
/// it, the renderer follows it.
#[derive(Debug, Clone, PartialEq)]
pub struct VrView {
    /// The stack's display set.
    pub source: usize,
    pub azimuth_deg: f64,
    pub elevation_deg: f64,
    pub zoom: f64,
    /// Index into [`crate::ui::VR_MODES`].
    pub mode: usize,
    /// The mode's window as the reader moved it (centre, width; modality
    /// units); None: the preset's own.
    pub window: Option<(f64, f64)>,
    /// The camera moved sideways and down, in lengths of the view's shorter
    /// side (see `imaging::vr::View::pan`).
    pub pan: [f64; 2],
    /// The crop box: its low and high faces along the volume's columns, rows
    /// and slices, as fractions of the volume (0 and 1: uncropped).
    pub crop: [[f64; 3]; 2],
}

impl VrView {
    /// From the front, the whole volume in view, in mode `mode`.
    pub fn new(source: usize, mode: usize) -> VrView {
        VrView {
            source,
            azimuth_deg: 0.0,
            elevation_deg: 0.0,
            zoom: 1.0,
            mode,
            window: None,
            pan: [0.0, 0.0],
            crop: [[0.0; 3], [1.0; 3]],
        }
    }
}

/// What a viewport draws of a volume rendering: the picture (its texture and
/// size in pixels), the window it is drawn with, what is written in its
/// corners, the patient's directions at its edges (left, right, top,
/// bottom), whether it is a quick preview (the view still moving), and the
/// crop box as the picture shows it.
#[derive(Debug, Clone)]
pub struct VrFrame {
    pub picture: Option<(egui::TextureId, [usize; 2])>,
    /// On the GPU instead: what to draw, and the picture's size in pixels.
    pub gpu: Option<(GpuVrFrame, [usize; 2])>,
    pub window: (f64, f64),
    pub corners: [String; 2],
    pub edges: [String; 4],
    pub preview: bool,
    pub crop: Option<CropOnPicture>,
}

/// What the GPU needs to draw a volume rendering: the stack's shared block,
/// where it lies (affine, real slice positions), its rescale, the rays, how
/// they become pixels, and the occupancy grid.
#[derive(Debug, Clone)]
pub struct GpuVrFrame {
    pub block: Arc<crate::volume::SharedVolume>,
    pub patient_from_voxel: nalgebra::Matrix4<f64>,
    pub slice_coords: Option<Arc<crate::imaging::reslice::SliceCoords>>,
    pub rescale: crate::imaging::lut::Rescale,
    pub plan: crate::imaging::vr::Plan,
    pub opts: crate::imaging::vr::Options,
    pub occupancy: Arc<crate::imaging::vr::Occupancy>,
}

/// The crop box drawn over a volume rendering, in the picture's pixels: its
/// eight corners (bit 0: high column face, bit 1: high row face, bit 2: high
/// slice face) and, per face (axis, 0 low / 1 high), the handle's place and
/// how far it moves on the picture when the face moves across the whole
/// volume.
#[derive(Debug, Clone, PartialEq)]
pub struct CropOnPicture {
    pub corners: [[f32; 2]; 8],
    pub faces: Vec<CropFace>,
}

/// A face of the crop box on the picture: (axis, side), its handle, its
/// travel across the whole volume (picture pixels).
pub type CropFace = ((usize, usize), [f32; 2], [f32; 2]);

/// Drag-and-drop payload: a display set dragged from the series strip.
#[derive(Debug, Clone, Copy)]
pub struct SeriesDrag(pub usize);

/// What a user did in the viewport this frame.
#[derive(Debug, Default)]
pub struct Interaction {
    /// A series was dropped here.
    pub dropped_set: Option<usize>,
    /// Shift-click: the image point to show in every viewport of the same frame
    /// of reference.
    pub locate: Option<[f64; 2]>,
    pub clicked: bool,
    pub double_clicked: bool,
    /// A measurement just finished.
    pub new_shape: Option<Shape>,
    /// A measurement moved (its place in the app's list, its new shape).
    pub edited: Option<(usize, Shape)>,
    /// The crosshair dragged.
    pub crosshair: Option<CrossAction>,
}

impl Viewport {
    pub fn new() -> Viewport {
        Viewport {
            zoom: 1.0,
            bilinear: true,
            shutter: true,
            overlays: true,
            ..Default::default()
        }
    }

    /// Back to the file's window, fit to the viewport (a volume rendering:
    /// from the front, its preset's window).
    pub fn reset(&mut self) {
        if let Some(v) = self.vr.as_mut() {
            *v = VrView::new(v.source, v.mode);
        }
        self.window = None;
        self.invert = false;
        self.zoom = 1.0;
        self.pan = Vec2::ZERO;
        self.rotation = 0;
        self.flip_h = false;
        self.flip_v = false;
    }

    /// The display options the viewport applies (its window and inversion).
    pub fn options(&self) -> RenderOptions {
        RenderOptions {
            voi: match &self.window {
                Some(w) => VoiChoice::Explicit(w.clone()),
                None => VoiChoice::Auto,
            },
            invert: self.invert,
            ignore_shutter: !self.shutter,
            ..Default::default()
        }
    }

    /// Rotate a quarter turn clockwise.
    pub fn rotate(&mut self) {
        self.rotation = (self.rotation + 1) % 4;
    }

    /// Turn `slices` of wheel (positive: toward the previous slice, as egui's
    /// scroll delta) into whole steps, `per_notch` slices a notch; fractions (a
    /// touchpad's points) are kept for the next event.
    pub fn wheel_step(&mut self, slices: f32, per_notch: f32, count: usize) -> bool {
        self.wheel -= slices * per_notch;
        let whole = self.wheel.trunc();
        if whole == 0.0 {
            return false;
        }
        self.wheel -= whole;
        self.step(whole as i64, count);
        true
    }

    /// Move `step` slices, clamped to the stack.
    pub fn step(&mut self, step: i64, count: usize) {
        if count == 0 {
            return;
        }
        let i = (self.index as i64 + step).clamp(0, count as i64 - 1);
        self.index = i as usize;
    }
}
