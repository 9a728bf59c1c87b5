//! One viewport: which display set and slice it shows, its window, zoom and pan;
//! the mapping from screen to image; drawing through the GPU display pipeline (an
//! `egui_wgpu` paint callback); corner annotations and orientation markers.

use std::collections::HashMap;
use std::sync::Arc;

use eframe::egui::{self, Color32, FontId, Pos2, Rect, Sense, Vec2};
use eframe::egui_wgpu::{self, wgpu};

use crate::dicom::ImageHeader;
use crate::dicom::pixels::FramePixels;
use crate::imaging::geometry::ImagePlane;
use crate::imaging::lut::{Voi, Window};
use crate::imaging::render::{self, DisplayPlan, RenderOptions, VoiChoice};
use crate::render::{GpuDisplay, ImageTexture, Placement, Prepared};

/// GPU state shared by all viewports (lives in egui_wgpu's callback resources).
#[derive(Debug)]
pub struct ViewerGpu {
    pub gpu: GpuDisplay,
    prepared: HashMap<u64, (usize, Prepared)>,
}

impl ViewerGpu {
    pub fn new(gpu: GpuDisplay) -> ViewerGpu {
        ViewerGpu {
            gpu,
            prepared: HashMap::new(),
        }
    }
}

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
}

/// `screen = a · image + t` (points; image in pixel coordinates, centres at +0.5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    /// Row-major 2×2.
    pub a: [f32; 4],
    pub t: Pos2,
    /// Screen points per millimetre.
    pub points_per_mm: f32,
}

impl Affine {
    pub fn screen(&self, q: [f64; 2]) -> Pos2 {
        let (x, y) = (q[0] as f32, q[1] as f32);
        Pos2::new(
            self.a[0] * x + self.a[1] * y + self.t.x,
            self.a[2] * x + self.a[3] * y + self.t.y,
        )
    }

    fn inverse(&self) -> [f32; 4] {
        let [a, b, c, d] = self.a;
        let det = a * d - b * c;
        [d / det, -b / det, -c / det, a / det]
    }

    pub fn image(&self, p: Pos2) -> [f64; 2] {
        let [a, b, c, d] = self.inverse();
        let (x, y) = (p.x - self.t.x, p.y - self.t.y);
        [(a * x + b * y) as f64, (c * x + d * y) as f64]
    }
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
    pub error: Option<&'a str>,
    pub texture: Option<Arc<ImageTexture>>,
    pub count: usize,
    pub tool: Tool,
    /// Measurements on this image, with their place in the app's list.
    pub shapes: Vec<(usize, Shape)>,
}

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
}

struct ImageCallback {
    key: u64,
    texture: Arc<ImageTexture>,
    plan: DisplayPlan,
    placement: Placement,
    shutter: Option<crate::imaging::overlay::Shutter>,
}

impl egui_wgpu::CallbackTrait for ImageCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen: &egui_wgpu::ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(r) = resources.get_mut::<ViewerGpu>() else {
            return Vec::new();
        };
        let id = Arc::as_ptr(&self.texture) as usize;
        let shutter = self.shutter.as_ref();
        // Same image and LUTs: only the uniforms change (window, zoom, pan).
        let updated = match r.prepared.get(&self.key) {
            Some((tex, p)) if *tex == id => r.gpu.update(
                queue,
                p,
                &self.texture,
                &self.plan,
                &self.placement,
                shutter,
            ),
            _ => false,
        };
        if !updated {
            let p = r
                .gpu
                .prepare(device, &self.texture, &self.plan, &self.placement, shutter);
            r.prepared.insert(self.key, (id, p));
        }
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        if let Some(r) = resources.get::<ViewerGpu>()
            && let Some((_, p)) = r.prepared.get(&self.key)
        {
            r.gpu.draw(pass, p);
        }
    }
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

    /// Back to the file's window, fit to the viewport.
    pub fn reset(&mut self) {
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

    /// Millimetres per image pixel (row spacing, column spacing); 1 when unknown.
    fn spacing(header: &ImageHeader, frame: u32) -> (f32, f32) {
        header
            .frame(frame)
            .ok()
            .and_then(|f| f.pixel_spacing)
            .or(header.imager_pixel_spacing)
            .map(|s| (s[0] as f32, s[1] as f32))
            .filter(|s| s.0 > 0.0 && s.1 > 0.0)
            .unwrap_or((1.0, 1.0))
    }

    /// The image → screen mapping: fit (rotated extents), zoom, rotation, flips, pan.
    fn affine(&self, rect: Rect, w: f32, h: f32, rs: f32, cs: f32) -> Affine {
        let (ex, ey) = if self.rotation % 2 == 1 {
            (h * rs, w * cs)
        } else {
            (w * cs, h * rs)
        };
        let s = (rect.width() / ex).min(rect.height() / ey) * self.zoom;
        // M = F · R^k · diag(cs·s, rs·s), applied about the image centre.
        let mut m = [cs * s, 0.0, 0.0, rs * s];
        for _ in 0..self.rotation % 4 {
            // Clockwise on screen (y down): (x, y) → (−y, x).
            m = [-m[2], -m[3], m[0], m[1]];
        }
        if self.flip_h {
            m[0] = -m[0];
            m[1] = -m[1];
        }
        if self.flip_v {
            m[2] = -m[2];
            m[3] = -m[3];
        }
        let c = rect.center() + self.pan;
        let (hx, hy) = (w / 2.0, h / 2.0);
        Affine {
            a: m,
            t: Pos2::new(c.x - (m[0] * hx + m[1] * hy), c.y - (m[2] * hx + m[3] * hy)),
            points_per_mm: s,
        }
    }

    /// Rotate a quarter turn clockwise.
    pub fn rotate(&mut self) {
        self.rotation = (self.rotation + 1) % 4;
    }

    /// Show the viewport in `rect`: the image, its annotations, and input.
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        rect: Rect,
        key: u64,
        active: bool,
        view: Option<FrameView<'_>>,
    ) -> Interaction {
        let response = ui.interact(
            rect,
            ui.scope_id().with(("viewport", key)),
            Sense::click_and_drag(),
        );
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 0.0, Color32::BLACK);
        self.rect = Some(rect);
        let mut out = Interaction {
            clicked: response.clicked() || response.drag_started(),
            double_clicked: response.double_clicked(),
            new_shape: None,
            edited: None,
            locate: None,
            dropped_set: response.dnd_release_payload::<SeriesDrag>().map(|p| p.0),
        };
        let drop_target = response.dnd_hover_payload::<SeriesDrag>().is_some();
        let Some(view) = view else {
            painter.text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                match &self.note {
                    Some(n) => format!("{n}\ndrag a series here"),
                    None => "drag a series here".into(),
                },
                FontId::proportional(14.0),
                Color32::GRAY,
            );
            self.frame_border(&painter, rect, active);
            return out;
        };
        let (rs, cs) = Self::spacing(view.header, view.frame);
        // Input: scroll slices, W/L with the left button, pan with the middle one,
        // zoom with ctrl + wheel.
        if response.hovered() {
            let (scroll, ctrl) = ui.input(|i| (i.smooth_scroll_delta.y, i.modifiers.ctrl));
            if scroll != 0.0 {
                if ctrl {
                    self.zoom = (self.zoom * (1.0 + scroll * 0.002)).clamp(0.05, 40.0);
                } else {
                    let step = if scroll > 0.0 { -1 } else { 1 };
                    self.step(step, view.count);
                }
                out.clicked = true;
            }
        }
        if response.dragged_by(egui::PointerButton::Middle) {
            self.pan += response.drag_delta();
        }
        let plan = view
            .pixels
            .and_then(|p| render::display_plan(view.header, view.frame, p, &self.options()).ok());
        let ppp = ui.ctx().pixels_per_point();
        let (w, h) = (
            view.pixels.map(|p| p.columns).unwrap_or(1) as f32,
            view.pixels.map(|p| p.rows).unwrap_or(1) as f32,
        );
        if std::mem::take(&mut self.one_to_one) {
            // The fit scale (zoom 1) in points per mm; 1:1 puts one column of
            // image pixels on one physical pixel.
            let fit = self.affine(rect, w, h, rs, cs).points_per_mm / self.zoom;
            self.zoom = (1.0 / (ppp * cs * fit)).clamp(0.05, 40.0);
        }
        let map = self.affine(rect, w, h, rs, cs);
        self.mapping = Some(map);
        let to_image = |p: Pos2| map.image(p);
        if response.clicked()
            && ui.input(|i| i.modifiers.shift)
            && let Some(p) = response.interact_pointer_pos()
        {
            out.locate = Some(to_image(p));
        }
        // Editing: a press on a measurement's point (within 8 points) drags that
        // point, whatever the tool.
        let origin = ui.input(|i| i.pointer.press_origin());
        if response.drag_started_by(egui::PointerButton::Primary)
            && let Some(p) = origin
        {
            let near = view
                .shapes
                .iter()
                .flat_map(|(pos, s)| {
                    s.points()
                        .into_iter()
                        .enumerate()
                        .map(move |(k, q)| (*pos, k, *s, q))
                })
                .map(|(pos, k, s, q)| (pos, k, s, map.screen(q).distance(p)))
                .filter(|x| x.3 < 8.0)
                .min_by(|a, b| a.3.total_cmp(&b.3));
            if let Some((pos, k, s, _)) = near {
                self.editing = Some((pos, k, s));
            }
        }
        if let Some((pos, k, s)) = self.editing {
            if response.dragged_by(egui::PointerButton::Primary)
                && let Some(p) = response.interact_pointer_pos()
            {
                self.editing = Some((pos, k, s.with_point(k, to_image(p))));
            }
            if response.drag_stopped() {
                out.edited = Some((pos, s));
                self.editing = None;
            }
        }
        let editing = self.editing.is_some() || out.edited.is_some();
        // A two-stroke shape is forgotten when the image or the tool changes.
        if self.pending.is_some()
            && (self.pending_at != (view.set, self.index)
                || !matches!(view.tool, Tool::Angle | Tool::Cobb))
        {
            self.pending = None;
        }
        if view.tool != Tool::Window && !editing {
            // The drag starts where the button went down, not where egui noticed
            // the movement.
            if response.drag_started_by(egui::PointerButton::Primary)
                && let Some(p) = origin.or(response.interact_pointer_pos())
            {
                let q = to_image(p);
                self.drawing = Some((q, q));
            }
            if response.dragged_by(egui::PointerButton::Primary)
                && let (Some(p), Some(d)) = (response.interact_pointer_pos(), self.drawing.as_mut())
            {
                d.1 = to_image(p);
            }
            let stroke = if response.drag_stopped() {
                self.drawing
                    .take()
                    .filter(|(a, b)| (a[0] - b[0]).abs() + (a[1] - b[1]).abs() > 1.0)
            } else if response.clicked()
                && view.tool == Tool::Angle
                && let Some((_, v)) = self.pending
                && let Some(p) = response.interact_pointer_pos()
            {
                // The angle's second arm may be placed with a click.
                Some((v, to_image(p)))
            } else {
                None
            };
            if let Some((a, b)) = stroke {
                out.new_shape = match (view.tool, self.pending.take()) {
                    (Tool::Ellipse, _) => Some(Shape::Ellipse(a, b)),
                    (Tool::Rect, _) => Some(Shape::Rect(a, b)),
                    (Tool::Angle, Some((p, v))) => Some(Shape::Angle(p, v, b)),
                    (Tool::Cobb, Some((p, q))) => Some(Shape::Cobb([p, q], [a, b])),
                    (Tool::Angle | Tool::Cobb, None) => {
                        self.pending = Some((a, b));
                        self.pending_at = (view.set, self.index);
                        None
                    }
                    _ => Some(Shape::Line(a, b)),
                };
            }
        }
        let ctrl = ui.input(|i| i.modifiers.ctrl);
        let primary = response.dragged_by(egui::PointerButton::Primary);
        if primary && ctrl {
            // Ctrl + drag: zoom (up enlarges).
            let d = response.drag_delta();
            self.zoom = (self.zoom * (1.0 - d.y * 0.005)).clamp(0.05, 40.0);
        } else if ((primary && view.tool == Tool::Window && !editing)
            || response.dragged_by(egui::PointerButton::Secondary))
            && let Some((plan, _)) = &plan
        {
            let d = response.drag_delta();
            let sign = if view.invert_wl_drag { -1.0 } else { 1.0 };
            let current = current_window(plan);
            let scale = (current.width / 400.0).max(1.0);
            self.window = Some(Window::new(
                current.center - sign * d.y as f64 * scale,
                (current.width + sign * d.x as f64 * scale).max(1.0),
            ));
        }
        match (&plan, &view.texture) {
            (Some((plan, voi_text)), Some(texture)) => {
                // Framebuffer pixel (relative to the viewport) → image pixel:
                // image = A⁻¹ (pixel / ppp + rect.min − t).
                let [a, b, c, d] = map.inverse();
                let (ox, oy) = (rect.min.x - map.t.x, rect.min.y - map.t.y);
                let placement = Placement {
                    m: [
                        [a / ppp, b / ppp, a * ox + b * oy],
                        [c / ppp, d / ppp, c * ox + d * oy],
                    ],
                    origin: [rect.min.x * ppp, rect.min.y * ppp],
                    bilinear: self.bilinear,
                };
                ui.painter().add(egui_wgpu::Callback::new_paint_callback(
                    rect,
                    ImageCallback {
                        key,
                        texture: Arc::clone(texture),
                        plan: plan.clone(),
                        placement,
                        shutter: view.header.shutter.clone().filter(|_| self.shutter),
                    },
                ));
                let magnification = map.points_per_mm * cs * ppp;
                self.annotate(
                    &painter,
                    rect,
                    &view,
                    voi_text,
                    map.points_per_mm,
                    magnification,
                );
                // Probe: the value and patient position under the pointer.
                if let Some(p) = response.hover_pos()
                    && let Some(text) = probe(&view, plan, map.image(p))
                {
                    painter.text(
                        Pos2::new(rect.min.x + 6.0, rect.max.y - 40.0),
                        egui::Align2::LEFT_BOTTOM,
                        text,
                        FontId::monospace(12.0),
                        Color32::from_rgb(160, 220, 255),
                    );
                }
                let to_screen = |q: [f64; 2]| map.screen(q);
                if self.overlays {
                    for (tex, [l, t, r, b]) in &view.overlays {
                        let mut mesh = egui::Mesh::with_texture(*tex);
                        let corners = [[*l, *t], [*r, *t], [*r, *b], [*l, *b]];
                        let uvs = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)];
                        for (q, (u, v)) in corners.iter().zip(uvs) {
                            mesh.vertices.push(egui::epaint::Vertex {
                                pos: map.screen(*q),
                                uv: Pos2::new(u, v),
                                color: Color32::WHITE,
                            });
                        }
                        mesh.add_triangle(0, 1, 2);
                        mesh.add_triangle(0, 2, 3);
                        painter.add(egui::Shape::mesh(mesh));
                    }
                }
                self.reference = view.reference;
                if let Some((a, b)) = view.reference {
                    painter.add(egui::Shape::dashed_line(
                        &[to_screen(a), to_screen(b)],
                        egui::Stroke::new(1.0, Color32::from_rgb(255, 220, 80)),
                        6.0,
                        4.0,
                    ));
                }
                let modality = match plan {
                    DisplayPlan::Gray(g) => Some(&g.modality),
                    _ => None,
                };
                let mut shapes: Vec<Shape> = view
                    .shapes
                    .iter()
                    .map(|(pos, s)| match self.editing {
                        Some((e, _, edited)) if e == *pos => edited,
                        _ => *s,
                    })
                    .collect();
                let hover = response.hover_pos().map(|p| map.image(p));
                match (view.tool, self.pending, self.drawing) {
                    (Tool::Ellipse, _, Some((a, b))) => shapes.push(Shape::Ellipse(a, b)),
                    (Tool::Rect, _, Some((a, b))) => shapes.push(Shape::Rect(a, b)),
                    (Tool::Angle, Some((p, v)), d) => {
                        if let Some(c) = d.map(|d| d.1).or(hover) {
                            shapes.push(Shape::Angle(p, v, c));
                        } else {
                            shapes.push(Shape::Line(p, v));
                        }
                    }
                    (Tool::Cobb, Some((p, q)), Some((a, b))) => {
                        shapes.push(Shape::Cobb([p, q], [a, b]))
                    }
                    (Tool::Cobb, Some((p, q)), None) => shapes.push(Shape::Line(p, q)),
                    (_, _, Some((a, b))) => shapes.push(Shape::Line(a, b)),
                    _ => {}
                }
                for shape in &shapes {
                    draw_measurement(&painter, rect, &view, modality, *shape, &to_screen);
                }
            }
            _ => {
                let msg = match view.error {
                    Some(e) => format!("cannot display this image:\n{e}"),
                    None => "loading…".to_string(),
                };
                painter.text(
                    rect.center(),
                    egui::Align2::CENTER_CENTER,
                    msg,
                    FontId::proportional(14.0),
                    Color32::from_rgb(230, 160, 60),
                );
            }
        }
        self.frame_border(&painter, rect, active);
        if drop_target {
            painter.rect_stroke(
                rect.shrink(2.0),
                0.0,
                egui::Stroke::new(3.0, Color32::from_rgb(120, 255, 140)),
                egui::StrokeKind::Inside,
            );
        }
        out
    }

    fn frame_border(&self, painter: &egui::Painter, rect: Rect, active: bool) {
        let color = if active {
            Color32::from_rgb(90, 160, 255)
        } else {
            Color32::from_gray(60)
        };
        painter.rect_stroke(
            rect.shrink(0.5),
            0.0,
            egui::Stroke::new(1.0, color),
            egui::StrokeKind::Inside,
        );
    }

    /// Move `step` slices, clamped to the stack.
    pub fn step(&mut self, step: i64, count: usize) {
        if count == 0 {
            return;
        }
        let i = (self.index as i64 + step).clamp(0, count as i64 - 1);
        self.index = i as usize;
    }

    fn annotate(
        &self,
        painter: &egui::Painter,
        rect: Rect,
        view: &FrameView<'_>,
        voi_text: &str,
        points_per_mm: f32,
        magnification: f32,
    ) {
        let h = view.header;
        let font = FontId::monospace(12.0);
        let color = Color32::from_rgb(220, 220, 200);
        let pad = 6.0;
        // Each corner gets at most half the width (monospace: ~7.3 points a char).
        let fit = |text: String| -> String {
            let max = ((rect.width() / 2.0 - pad) / 7.3).max(4.0) as usize;
            text.lines()
                .map(|l| {
                    if l.chars().count() > max {
                        let mut t: String = l.chars().take(max.saturating_sub(1)).collect();
                        t.push('…');
                        t
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let info = h.frame(view.frame).ok();
        let live = super::annotations::Live {
            image: format!("{}/{}", self.index + 1, view.count),
            position: view.position.clone().unwrap_or_default(),
            thickness: info
                .and_then(|f| f.slice_thickness)
                .map(|t| format!("thk {t:.1} mm"))
                .unwrap_or_default(),
            window: format!("{voi_text}{}", if self.invert { "  inv" } else { "" }),
            zoom: format!("{magnification:.2}×"),
            transform: [
                (!self.rotation.is_multiple_of(4))
                    .then(|| format!("rot {}°", 90 * (self.rotation % 4) as u32)),
                self.flip_h.then(|| "flip H".to_string()),
                self.flip_v.then(|| "flip V".to_string()),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("  "),
        };
        let corner = |lines: &Option<Vec<String>>| {
            fit(super::annotations::fill(
                lines.as_deref().unwrap_or_default(),
                h,
                &live,
            ))
        };
        let c = &view.corners;
        for (text, at, align) in [
            (
                corner(&c.top_left),
                rect.min + Vec2::splat(pad),
                egui::Align2::LEFT_TOP,
            ),
            (
                corner(&c.top_right),
                Pos2::new(rect.max.x - pad, rect.min.y + pad),
                egui::Align2::RIGHT_TOP,
            ),
            (
                corner(&c.bottom_left),
                Pos2::new(rect.min.x + pad, rect.max.y - pad),
                egui::Align2::LEFT_BOTTOM,
            ),
            (
                corner(&c.bottom_right),
                Pos2::new(rect.max.x - pad, rect.max.y - pad),
                egui::Align2::RIGHT_BOTTOM,
            ),
        ] {
            painter.text(at, align, text, font.clone(), color);
        }
        // Lossy compression: its own line, in the warning colour.
        if let Some(note) = &h.lossy {
            painter.text(
                Pos2::new(rect.max.x - pad, rect.max.y - pad - 32.0),
                egui::Align2::RIGHT_BOTTOM,
                fit(note.clone()),
                font.clone(),
                Color32::from_rgb(255, 150, 60),
            );
        }
        // Orientation markers on all four edges, from the image plane.
        if let Some(f) = info
            && let (Some(p), Some(o)) = (f.image_position, f.image_orientation)
            && let Some(plane) = ImagePlane::new(p, o, [1.0, 1.0])
        {
            let mut l = plane.edge_labels();
            // The labels turn and flip with the image.
            for _ in 0..self.rotation % 4 {
                l = crate::imaging::geometry::EdgeLabels {
                    top: l.left,
                    right: l.top,
                    bottom: l.right,
                    left: l.bottom,
                };
            }
            if self.flip_h {
                std::mem::swap(&mut l.left, &mut l.right);
            }
            if self.flip_v {
                std::mem::swap(&mut l.top, &mut l.bottom);
            }
            let c = rect.center();
            let big = FontId::proportional(15.0);
            let mark = Color32::from_rgb(255, 220, 120);
            painter.text(
                Pos2::new(rect.min.x + pad, c.y),
                egui::Align2::LEFT_CENTER,
                &l.left,
                big.clone(),
                mark,
            );
            painter.text(
                Pos2::new(rect.max.x - pad, c.y),
                egui::Align2::RIGHT_CENTER,
                &l.right,
                big.clone(),
                mark,
            );
            // Below the three annotation lines at the top.
            painter.text(
                Pos2::new(c.x, rect.min.y + pad + 44.0),
                egui::Align2::CENTER_TOP,
                &l.top,
                big.clone(),
                mark,
            );
            // Above the two annotation lines at the bottom.
            painter.text(
                Pos2::new(c.x, rect.max.y - pad - 32.0),
                egui::Align2::CENTER_BOTTOM,
                &l.bottom,
                big,
                mark,
            );
        }
        // Scale bar: 5 cm (or 1 cm when zoomed in), with the calibration basis;
        // none when the image has no spacing (it would be a lie).
        if h.calibration.spacing_mm.is_none() {
            return;
        }
        let mm_per_point = 1.0 / points_per_mm.max(1e-6);
        let bar_mm = if rect.height() * mm_per_point > 150.0 {
            50.0
        } else {
            10.0
        };
        let len = bar_mm / mm_per_point;
        let x = rect.max.x - pad - 4.0;
        let y0 = rect.center().y - len / 2.0;
        painter.line_segment(
            [Pos2::new(x, y0), Pos2::new(x, y0 + len)],
            egui::Stroke::new(1.5, color),
        );
        painter.text(
            Pos2::new(x - 4.0, y0 + len),
            egui::Align2::RIGHT_BOTTOM,
            format!("{:.0} cm {}", bar_mm / 10.0, h.calibration.basis.label()),
            FontId::proportional(11.0),
            color,
        );
    }
}

/// The probe line for image point `q`: stored value, modality value (HU for CT)
/// and patient position, or nothing outside the image.
fn probe(view: &FrameView<'_>, plan: &DisplayPlan, q: [f64; 2]) -> Option<String> {
    use crate::dicom::pixels::Samples;
    let px = view.pixels?;
    let (c, r) = (q[0].floor(), q[1].floor());
    if c < 0.0 || r < 0.0 || c >= px.columns as f64 || r >= px.rows as f64 {
        return None;
    }
    let i = r as usize * px.columns as usize + c as usize;
    let value = match (&px.samples, plan) {
        (Samples::Mono(v), DisplayPlan::Gray(g)) => {
            let s = *v.get(i)?;
            let m = g.modality.apply(s as i64);
            let unit = if view.header.modality.as_deref() == Some("CT") {
                " HU"
            } else {
                ""
            };
            format!("stored {s}  value {m:.1}{unit}")
        }
        (Samples::Mono(v), _) => format!("stored {}", v.get(i)?),
        (Samples::Rgb(v), _) => {
            let k = i * 3;
            format!("RGB {} {} {}", v.get(k)?, v.get(k + 1)?, v.get(k + 2)?)
        }
    };
    let position = view
        .header
        .frame(view.frame)
        .ok()
        .and_then(|f| {
            crate::imaging::geometry::ImagePlane::new(
                f.image_position?,
                f.image_orientation?,
                f.pixel_spacing?,
            )
        })
        .map(|plane| {
            let p = plane.patient_point(c, r);
            format!("  ({:.1}, {:.1}, {:.1}) mm", p.x, p.y, p.z)
        })
        .unwrap_or_default();
    Some(format!("[{c:.0}, {r:.0}]  {value}{position}"))
}

/// Draw a measurement and its value (always with its calibration).
fn draw_measurement(
    painter: &egui::Painter,
    rect: Rect,
    view: &FrameView<'_>,
    modality: Option<&crate::imaging::lut::ModalityTransform>,
    shape: Shape,
    to_screen: &dyn Fn([f64; 2]) -> Pos2,
) {
    use crate::imaging::measure;
    let color = Color32::from_rgb(120, 255, 140);
    let stroke = egui::Stroke::new(1.5, color);
    let font = FontId::proportional(13.0);
    let cal = &view.header.calibration;
    match shape {
        Shape::Line(a, b) => {
            let (pa, pb) = (to_screen(a), to_screen(b));
            painter.line_segment([pa, pb], stroke);
            let m = measure::length(a, b, cal);
            // Above the middle of the line, kept inside the viewport.
            let mid = pa + (pb - pa) / 2.0 - Vec2::new(0.0, 6.0);
            let mid = Pos2::new(mid.x.clamp(rect.min.x + 90.0, rect.max.x - 90.0), mid.y);
            painter.text(mid, egui::Align2::CENTER_BOTTOM, m.label(), font, color);
        }
        Shape::Ellipse(a, b) | Shape::Rect(a, b) => {
            let (pa, pb) = (to_screen(a), to_screen(b));
            let r = Rect::from_two_pos(pa, pb);
            let ellipse = matches!(shape, Shape::Ellipse(..));
            if ellipse {
                painter.add(egui::Shape::ellipse_stroke(
                    r.center(),
                    r.size() / 2.0,
                    stroke,
                ));
            } else {
                painter.rect_stroke(r, 0.0, stroke, egui::StrokeKind::Middle);
            }
            let text = match (view.pixels, modality) {
                (Some(px), Some(m)) => match &px.samples {
                    crate::dicom::pixels::Samples::Mono(v) => {
                        let stats = if ellipse {
                            measure::ellipse_stats(v, px.columns, px.rows, a, b, m, cal)
                        } else {
                            measure::rect_stats(v, px.columns, px.rows, a, b, m, cal)
                        };
                        stats.map(|s| {
                            let unit = if view.header.modality.as_deref() == Some("CT") {
                                " HU"
                            } else {
                                ""
                            };
                            format!(
                                "mean {:.1}{unit}  SD {:.1}\nmin {:.0}  max {:.0}\narea {}",
                                s.mean,
                                s.sd,
                                s.min,
                                s.max,
                                s.area.label()
                            )
                        })
                    }
                    _ => None,
                },
                _ => None,
            };
            // Beside the region, on the side with room.
            let (at, align) = if r.max.x + 230.0 < rect.max.x {
                (
                    Pos2::new(r.max.x + 6.0, r.center().y),
                    egui::Align2::LEFT_CENTER,
                )
            } else {
                (
                    Pos2::new(r.min.x - 6.0, r.center().y),
                    egui::Align2::RIGHT_CENTER,
                )
            };
            painter.text(
                at,
                align,
                text.unwrap_or_else(|| "no grey values here".into()),
                font,
                color,
            );
        }
        Shape::Angle(a, v, c) => {
            let (pa, pv, pc) = (to_screen(a), to_screen(v), to_screen(c));
            painter.line_segment([pa, pv], stroke);
            painter.line_segment([pv, pc], stroke);
            painter.text(
                pv + Vec2::new(8.0, -8.0),
                egui::Align2::LEFT_BOTTOM,
                shape.value_label(cal),
                font,
                color,
            );
        }
        Shape::Cobb(l1, l2) => {
            let (p1, q1, p2, q2) = (
                to_screen(l1[0]),
                to_screen(l1[1]),
                to_screen(l2[0]),
                to_screen(l2[1]),
            );
            painter.line_segment([p1, q1], stroke);
            painter.line_segment([p2, q2], stroke);
            // A dashed connector between the line middles, the value beside it.
            let (m1, m2) = (p1 + (q1 - p1) / 2.0, p2 + (q2 - p2) / 2.0);
            painter.add(egui::Shape::dashed_line(
                &[m1, m2],
                egui::Stroke::new(1.0, color),
                4.0,
                4.0,
            ));
            let mid = m1 + (m2 - m1) / 2.0;
            painter.text(
                mid + Vec2::new(8.0, 0.0),
                egui::Align2::LEFT_CENTER,
                shape.value_label(cal),
                font,
                color,
            );
        }
    }
}

/// The window a plan applies (for W/L drags that start from it).
fn current_window(plan: &DisplayPlan) -> Window {
    match plan {
        DisplayPlan::Gray(g) => match &g.voi {
            Voi::Window { window, .. } => window.clone(),
            Voi::Identity { min, max } => Window::new((min + max) / 2.0, (max - min).max(1.0)),
            Voi::Lut(l) => {
                let n = l.data.len() as f64;
                Window::new(l.first_mapped as f64 + n / 2.0, n.max(1.0))
            }
        },
        _ => Window::new(128.0, 256.0),
    }
}
