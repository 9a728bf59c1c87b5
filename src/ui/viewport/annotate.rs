//! What is written on a viewport: its border, corner annotations, orientation
//! markers (from the image plane, or Patient Orientation on projection images),
//! scale bar, the probe read-out and the reference line beneath them — outlined,
//! and laid out (see `legible`) so that nothing overlaps or is cut.

use super::legible::{Placer, Slide, Text, outlined_dashed, outlined_line, outside_boxes};
use super::legible::{shorten, width};
use super::*;
use crate::imaging::geometry::{EdgeLabels, ImagePlane};
use crate::imaging::lut::{Voi, Window};
use crate::imaging::render::DisplayPlan;
use crate::ui::theme;
use eframe::egui::{self, Align2, FontId, Pos2, Rect, Vec2};

impl Viewport {
    pub(super) fn frame_border(&self, painter: &egui::Painter, rect: Rect, active: bool) {
        let color = if active {
            theme::ACTIVE_BORDER
        } else {
            theme::BORDER
        };
        painter.rect_stroke(
            rect.shrink(0.5),
            0.0,
            egui::Stroke::new(1.0, color),
            egui::StrokeKind::Inside,
        );
    }

    /// Write the corner texts, the lossy note, the orientation markers and the
    /// scale bar (and draw the reference line beneath them), laid out so that no
    /// two overlap and none enters the scroll bar's strip; records the boxes in
    /// `drawn`. Returns the corner texts in full (for screen readers).
    pub(super) fn annotate(
        &mut self,
        painter: &egui::Painter,
        rect: Rect,
        view: &FrameView<'_>,
        voi_text: &str,
        points_per_mm: f32,
        magnification: f32,
    ) -> Vec<String> {
        let h = view.header;
        let ppp = painter.ctx().pixels_per_point();
        let size = theme::text_size(rect.size(), ppp);
        let mono = FontId::monospace(size);
        let mut placer = Placer::new(Placer::area_of(rect), Vec::new());
        let area = placer.area;
        let info = h.frame(view.frame).ok();
        let live = crate::ui::annotations::Live {
            image: format!("{}/{}", self.index + 1, view.count),
            position: view.position.clone().unwrap_or_default(),
            // A slab's thickness is the slab's, not the plane's sampling.
            thickness: view
                .slab
                .map(|s| s.thickness_mm)
                .or(info.and_then(|f| f.slice_thickness))
                .map(|t| format!("thk {} mm", crate::imaging::reslice::format_mm(t)))
                .unwrap_or_default(),
            // "C 40 W 400 inv (file)": a narrow corner drops where the window came
            // from before the inversion.
            window: match (self.invert, voi_text.rfind(" (")) {
                (false, _) => voi_text.to_string(),
                (true, Some(i)) => format!("{} inv{}", &voi_text[..i], &voi_text[i..]),
                (true, None) => format!("{voi_text} inv"),
            },
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
        let corner = |lines: &Option<Vec<String>>| -> Vec<String> {
            let text = crate::ui::annotations::fill(lines.as_deref().unwrap_or_default(), h, &live);
            text.lines().map(str::to_string).collect()
        };
        let c = &view.corners;
        let [tl, tr, bl, br] = [
            corner(&c.top_left),
            corner(&c.top_right),
            corner(&c.bottom_left),
            corner(&c.bottom_right),
        ];
        let mut written = [&tl, &tr, &bl, &br].map(|l| l.join("\n")).to_vec();
        // The two corners of a row share its width: each keeps what it needs when
        // both fit, else the shorter keeps its own and the longer is shortened;
        // what the left one leaves unused once shortened goes to the right one
        // (the window, the study), and back.
        let natural = |lines: &[String]| {
            lines
                .iter()
                .map(|l| width(painter, l, &mono))
                .fold(0.0, f32::max)
        };
        let cut = |lines: &[String], max: f32| -> Vec<String> {
            lines
                .iter()
                .map(|l| shorten(painter, l, &mono, max))
                .filter(|l| !l.is_empty())
                .collect()
        };
        let row = area.width() - 4.0 * theme::ANNOTATION_INSET;
        let pair = |left: &[String], right: &[String]| {
            let (a, b) = share(row, natural(left), natural(right));
            let l = cut(left, a);
            let r = cut(right, (row - natural(&l)).max(b));
            let l = cut(left, (row - natural(&r)).max(a));
            (l, r)
        };
        let (tl, tr) = pair(&tl, &tr);
        let (bl, br) = pair(&bl, &br);
        let mut texts: Vec<(Pos2, Text)> = Vec::new();
        for (kind, mut lines, at, align) in [
            ("top_left", tl, area.left_top(), Align2::LEFT_TOP),
            ("top_right", tr, area.right_top(), Align2::RIGHT_TOP),
            ("bottom_left", bl, area.left_bottom(), Align2::LEFT_BOTTOM),
            (
                "bottom_right",
                br,
                area.right_bottom(),
                Align2::RIGHT_BOTTOM,
            ),
        ] {
            // A viewport too short for all lines: the last ones go.
            while !lines.is_empty() {
                let t = Text::new(painter, &lines.join("\n"), &mono, theme::ANNOTATION);
                let r = align.anchor_size(at, t.size());
                if let Some(p) = placer.place_text(kind, &t, r.min, Align2::LEFT_TOP, &[]) {
                    texts.push((p, t));
                    break;
                }
                lines.pop();
            }
        }
        // Lossy compression: its own line above the bottom right corner, in the
        // warning colour.
        if let Some(note) = &h.lossy {
            let line = shorten(painter, note, &mono, area.width());
            let t = Text::new(painter, &line, &mono, theme::NOTE);
            let bottom = placer.get("bottom_right").map_or(area.max.y, |r| r.min.y);
            let at = Pos2::new(area.max.x, bottom);
            if let Some(p) = placer.place_text("lossy", &t, at, Align2::RIGHT_BOTTOM, &[Slide::Up])
            {
                texts.push((p, t));
            }
        }
        // A study still arriving: how many images are to come, under the top
        // right corner.
        if let Some(note) = &view.arriving {
            let line = shorten(painter, note, &mono, area.width());
            let t = Text::new(painter, &line, &mono, theme::NOTE);
            let top = placer.get("top_right").map_or(area.min.y, |r| r.max.y);
            let at = Pos2::new(area.max.x, top);
            if let Some(p) =
                placer.place_text("arriving", &t, at, Align2::RIGHT_TOP, &[Slide::Down])
            {
                texts.push((p, t));
            }
            written.push(note.clone());
        }
        // How the image was made (an MPR plane of a tilted or uneven stack),
        // under the top right corner.
        if let Some(note) = &view.note {
            let line = shorten(painter, note, &mono, area.width());
            let t = Text::new(painter, &line, &mono, theme::NOTE);
            let top = placer
                .get("arriving")
                .or(placer.get("top_right"))
                .map_or(area.min.y, |r| r.max.y);
            let at = Pos2::new(area.max.x, top);
            if let Some(p) = placer.place_text("note", &t, at, Align2::RIGHT_TOP, &[Slide::Down]) {
                texts.push((p, t));
            }
            written.push(note.clone());
        }
        // A slab: its mode and thickness, under the top left corner.
        if let Some(note) = view.slab.map(|s| s.label()) {
            let line = shorten(painter, &note, &mono, area.width());
            let t = Text::new(painter, &line, &mono, theme::NOTE);
            let top = placer.get("top_left").map_or(area.min.y, |r| r.max.y);
            let at = Pos2::new(area.min.x, top);
            if let Some(p) = placer.place_text("slab", &t, at, Align2::LEFT_TOP, &[Slide::Down]) {
                texts.push((p, t));
            }
            written.push(note.clone());
        }
        // Orientation markers on all four edges: from the image plane, else (a
        // projection image) from Patient Orientation; they turn and flip with the
        // image.
        let labels = info
            .and_then(|f| ImagePlane::new(f.image_position?, f.image_orientation?, [1.0, 1.0]))
            .map(|plane| plane.edge_labels())
            .or_else(|| {
                let o = h.patient_orientation.as_ref()?;
                info.is_none_or(|f| f.image_orientation.is_none())
                    .then(|| EdgeLabels::from_patient_orientation(o))
            })
            .map(|l| l.turned(self.rotation, self.flip_h, self.flip_v));
        let middle = area.center();
        if let Some(l) = labels {
            let big = FontId::proportional(size + theme::MARKER_EXTRA);
            for (kind, label, at, align, dirs) in [
                (
                    "marker_left",
                    &l.left,
                    Pos2::new(area.min.x, middle.y),
                    Align2::LEFT_CENTER,
                    &[Slide::Down, Slide::Up, Slide::Right][..],
                ),
                (
                    "marker_right",
                    &l.right,
                    Pos2::new(area.max.x, middle.y),
                    Align2::RIGHT_CENTER,
                    &[Slide::Down, Slide::Up, Slide::Left][..],
                ),
                (
                    "marker_top",
                    &l.top,
                    Pos2::new(middle.x, area.min.y),
                    Align2::CENTER_TOP,
                    &[Slide::Down][..],
                ),
                (
                    "marker_bottom",
                    &l.bottom,
                    Pos2::new(middle.x, area.max.y),
                    Align2::CENTER_BOTTOM,
                    &[Slide::Up][..],
                ),
            ] {
                if label.is_empty() {
                    continue;
                }
                let t = Text::new(painter, label, &big, theme::MARKER);
                if let Some(p) = placer.place_text(kind, &t, at, align, dirs) {
                    texts.push((p, t));
                }
            }
        }
        // Scale bar: 5 cm (or 1 cm when zoomed in) along the right edge below the
        // marker, with the calibration basis; none when the image has no spacing
        // (it would be a lie) or no length fits.
        let mut bar = None;
        if h.calibration.spacing_mm.is_some() {
            let ppmm = points_per_mm.max(1e-6);
            let first = if area.height() / ppmm > 150.0 {
                50.0
            } else {
                10.0
            };
            let small = FontId::proportional(size - 1.0);
            let sizes = [50.0f32, 10.0, 5.0].into_iter().filter(|m| *m <= first);
            // Each length with its calibration basis, then (a narrow viewport)
            // without it.
            let choices = sizes.flat_map(|mm| {
                let cm = mm / 10.0;
                [
                    (mm, format!("{cm} cm {}", h.calibration.basis.label())),
                    (mm, format!("{cm} cm")),
                ]
            });
            for (mm, text) in choices {
                let len = mm * ppmm;
                if len < 10.0 {
                    break;
                }
                let label = Text::new(painter, &text, &small, theme::SCALE);
                let x = area.max.x - 2.0;
                let group = |y0: f32| {
                    let line = Rect::from_min_max(
                        Pos2::new(x - 7.0, y0 - 2.0),
                        Pos2::new(area.max.x, y0 + len + 2.0),
                    );
                    let text = Align2::RIGHT_BOTTOM
                        .anchor_size(Pos2::new(x - 9.0, y0 + len + 2.0), label.size());
                    vec![
                        ("scale", line, format!("{mm} mm"), theme::SCALE),
                        ("scale_label", text, label.text.clone(), theme::SCALE),
                    ]
                };
                let placed = placer
                    .place(group(middle.y), &[Slide::Down])
                    .map(|o| middle.y + o.y)
                    .or_else(|| {
                        placer
                            .place(group(middle.y - len), &[Slide::Up])
                            .map(|o| middle.y - len + o.y)
                    });
                if let Some(y0) = placed {
                    let min = placer.get("scale_label").map_or(area.min, |r| r.min);
                    texts.push((min, label));
                    bar = Some((x, y0, len));
                    break;
                }
            }
        }
        // Beneath the writing: the reference line of the active slice, broken where
        // it would cross a box.
        if let (Some((a, b)), Some(map)) = (view.reference, self.mapping) {
            let boxes: Vec<Rect> = placer.boxes.iter().map(|d| d.rect).collect();
            for (p, q) in outside_boxes(map.screen(a), map.screen(b), &boxes) {
                outlined_dashed(painter, &[p, q], 1.0, theme::REFERENCE_LINE, 6.0, 4.0);
            }
        }
        if let Some((x, y0, len)) = bar {
            let (top, bottom) = (Pos2::new(x, y0), Pos2::new(x, y0 + len));
            outlined_line(painter, top, bottom, 1.5, theme::SCALE);
            for end in [top, bottom] {
                outlined_line(painter, end, end - Vec2::new(5.0, 0.0), 1.5, theme::SCALE);
            }
        }
        for (at, t) in &texts {
            t.paint(painter, *at);
        }
        self.drawn = placer.boxes;
        written
    }

    /// The probe read-out for image point `q` (the pointer), in the first free
    /// place above the bottom left corner text (else below the top left one),
    /// shortened to what fits; recorded in `drawn` as "probe".
    pub(super) fn draw_probe(
        &mut self,
        painter: &egui::Painter,
        rect: Rect,
        view: &FrameView<'_>,
        plan: &DisplayPlan,
        q: [f64; 2],
    ) {
        self.drawn.retain(|d| d.kind != "probe");
        let Some(p) = probe(view, plan, q) else {
            return;
        };
        let size = theme::text_size(rect.size(), painter.ctx().pixels_per_point());
        let mono = FontId::monospace(size);
        let mut placer = Placer::new(Placer::area_of(rect), std::mem::take(&mut self.drawn));
        let area = placer.area;
        let above = placer.get("bottom_left").map_or(area.max.y, |r| r.min.y);
        let below = placer.get("top_left").map_or(area.min.y, |r| r.max.y);
        for text in p.variants() {
            let t = Text::new(painter, &text, &mono, theme::PROBE);
            if t.size().x > area.width() {
                continue;
            }
            let at = placer
                .place_text(
                    "probe",
                    &t,
                    Pos2::new(area.min.x, above),
                    Align2::LEFT_BOTTOM,
                    &[Slide::Up],
                )
                .or_else(|| {
                    placer.place_text(
                        "probe",
                        &t,
                        Pos2::new(area.min.x, below),
                        Align2::LEFT_TOP,
                        &[Slide::Down],
                    )
                });
            if let Some(at) = at {
                t.paint(painter, at);
                break;
            }
        }
        self.drawn = placer.boxes;
    }
}

/// Widths for the two corners of a row `row` wide that need `a` and `b`.
fn share(row: f32, a: f32, b: f32) -> (f32, f32) {
    let half = row / 2.0;
    if a + b <= row {
        (a, b)
    } else if a <= half {
        (a, row - a)
    } else if b <= half {
        (row - b, b)
    } else {
        (half, half)
    }
}

/// What the probe reads under the pointer.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Probe {
    /// "[120, 96]"
    pub(super) pixel: String,
    /// "stored 1064" (grey images whose stored value differs from the value).
    pub(super) stored: Option<String>,
    /// "value 40 HU", "RGB 10 20 30"
    pub(super) value: String,
    /// "(12.5, -80.0, 100.0) mm", when the image has geometry.
    pub(super) position: Option<String>,
}

impl Probe {
    /// The read-out from longest to shortest: on one line, the position on a
    /// second, without the stored value, the value alone.
    pub(super) fn variants(&self) -> Vec<String> {
        let head = |stored: bool| {
            [
                Some(self.pixel.clone()),
                self.stored.clone().filter(|_| stored),
            ]
            .into_iter()
            .flatten()
            .chain(std::iter::once(self.value.clone()))
            .collect::<Vec<_>>()
            .join("  ")
        };
        let mut out = Vec::new();
        match &self.position {
            Some(pos) => {
                out.push(format!("{}  {pos}", head(true)));
                out.push(format!("{}\n{pos}", head(true)));
                out.push(format!("{}\n{pos}", head(false)));
            }
            None => out.push(head(true)),
        }
        out.push(head(false));
        out.push(self.value.clone());
        out
    }
}

/// A modality value: whole numbers as such, else to a tenth.
fn value_text(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e9 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// The probe for image point `q`: stored value, modality value (HU for CT) and
/// patient position, or nothing outside the image.
pub(super) fn probe(view: &FrameView<'_>, plan: &DisplayPlan, q: [f64; 2]) -> Option<Probe> {
    use crate::dicom::pixels::Samples;
    let px = view.pixels.filter(|_| view.preview.is_none())?;
    let (c, r) = (q[0].floor(), q[1].floor());
    if c < 0.0 || r < 0.0 || c >= px.columns as f64 || r >= px.rows as f64 {
        return None;
    }
    let i = r as usize * px.columns as usize + c as usize;
    let (stored, value) = match (&px.samples, plan) {
        (Samples::Mono(v), DisplayPlan::Gray(g)) => {
            let s = *v.get(i)?;
            let m = g.modality.apply(s as i64);
            let unit = if view.header.modality.as_deref() == Some("CT") {
                " HU"
            } else {
                ""
            };
            (
                (m != s as f64).then(|| format!("stored {s}")),
                format!("value {}{unit}", value_text(m)),
            )
        }
        (Samples::Mono(v), _) => (None, format!("stored {}", v.get(i)?)),
        (Samples::Rgb(v), _) => {
            let k = i * 3;
            (
                None,
                format!("RGB {} {} {}", v.get(k)?, v.get(k + 1)?, v.get(k + 2)?),
            )
        }
    };
    let position = view
        .header
        .frame(view.frame)
        .ok()
        .and_then(|f| ImagePlane::new(f.image_position?, f.image_orientation?, f.pixel_spacing?))
        .map(|plane| {
            let p = plane.patient_point(c, r);
            format!("({:.1}, {:.1}, {:.1}) mm", p.x, p.y, p.z)
        });
    Some(Probe {
        pixel: format!("[{c:.0}, {r:.0}]"),
        stored,
        value,
        position,
    })
}

/// The window a plan applies (for W/L drags that start from it).
pub(super) fn current_window(plan: &DisplayPlan) -> Window {
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
