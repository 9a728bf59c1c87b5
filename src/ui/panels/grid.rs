//! The viewport grid: each viewport laid out, drawn and its interaction applied.

use eframe::egui::{self, Rect, Vec2};

use super::super::command::Command;
use super::super::viewport::FrameView;
use super::super::*;

impl App {
    /// The wheel over a viewport moves through its stack: handled before the
    /// frame is drawn (and its texture uploaded), so the step shows in the frame
    /// of the event; every wheel event counts, one notch = `slices_per_notch`.
    pub(in crate::ui) fn wheel_scroll(&mut self, ctx: &egui::Context) {
        let wheel = super::super::viewport::wheel_input(ctx);
        if wheel.slices == 0.0 {
            return;
        }
        let Some(i) = self
            .grid
            .viewports
            .iter()
            .position(|v| v.hovered && v.set.is_some())
        else {
            return;
        };
        let count = self.grid.viewports[i]
            .set
            .and_then(|s| self.session.sets.get(s))
            .map(|s| s.set.frames.len())
            .unwrap_or(0);
        let per_notch = self.launch.slices_per_notch;
        self.grid.viewports[i].wheel_step(wheel.slices, per_notch, count);
        self.handle(Command::Activate(i));
    }

    pub(in crate::ui) fn viewports_ui(&mut self, ui: &mut egui::Ui) {
        // Set again by the viewports drawn this frame.
        for v in &mut self.grid.viewports {
            v.hovered = false;
        }
        let area = ui.available_rect_before_wrap();
        ui.allocate_rect(area, egui::Sense::hover());
        let (rows, cols) = self.grid.layout;
        let cells: Vec<(usize, Rect)> = match self.grid.maximized {
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
        let active_slice = self.grid.viewports.get(self.grid.active).and_then(|v| {
            let (fr, h) = self.session.frame(v.set?, v.index)?;
            Some((
                super::super::measurements::plane_of(h, fr.frame)?,
                h.frame_of_reference_uid.clone()?,
            ))
        });
        for (i, rect) in cells {
            let Some(mut vp) = self.grid.viewports.get(i).cloned() else {
                continue;
            };
            if let Some(frame) = self.vr_frame(i) {
                let act = vp.show_vr(ui, rect, i as u64, i == self.grid.active, &frame);
                self.grid.viewports[i] = vp;
                if act.clicked {
                    self.handle(Command::Activate(i));
                }
                if act.double_clicked {
                    self.handle(Command::ToggleMaximise(i));
                }
                continue;
            }
            // An MPR plane shows the crosshair instead of the reference line.
            let crosshair = vp.set.and_then(|s| self.crosshair_view(s, vp.index));
            let reference = match (&active_slice, i != self.grid.active && crosshair.is_none()) {
                (Some((slice, for_uid)), true) => vp.set.and_then(|s| {
                    let (fr, h) = self.session.frame(s, vp.index)?;
                    if h.frame_of_reference_uid.as_ref() != Some(for_uid) {
                        return None;
                    }
                    let px = h.pixel.as_ref()?;
                    let target = super::super::measurements::plane_of(h, fr.frame)?;
                    let (a, b) = crate::imaging::geometry::reference_line(
                        &target, px.columns, px.rows, slice,
                    )?;
                    // Pixel indices → the viewport's image coordinates (centres +0.5).
                    Some(([a[0] + 0.5, a[1] + 0.5], [b[0] + 0.5, b[1] + 0.5]))
                }),
                _ => None,
            };
            // A stack still arriving says how many images are to come.
            let arriving = vp
                .set
                .and_then(|s| self.session.frame(s, vp.index))
                .and_then(|(_, h)| self.arriving_series(&h.series_uid))
                .filter(|(cached, listed)| cached < listed)
                .map(|(cached, listed)| format!("arriving: {cached} of {listed} images"));
            let view = vp.set.and_then(|s| {
                let ls = self.session.sets.get(s)?;
                let slot = self.residency.slots.get(s)?.get(vp.index)?;
                let fr = ls.set.frames.get(vp.index)?;
                Some(FrameView {
                    corners: self.session.annotation_layouts.corners(&ls.modality),
                    // The slice's patient coordinate on the axis it is
                    // perpendicular to (its position along the normal if oblique).
                    position: ls.set.geometry.as_ref().and_then(|g| {
                        let p = *g.positions_mm.get(vp.index)?;
                        let ip = self
                            .session
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
                        .residency
                        .overlay_textures
                        .get(&(s, vp.index))
                        .map(|v| v.iter().map(|(t, b)| (t.id(), *b)).collect())
                        .unwrap_or_default(),
                    set: s,
                    reference,
                    invert_wl_drag: self.grid.invert_wl_drag,
                    header: self.session.headers.get(fr.instance)?,
                    frame: fr.frame,
                    pixels: self.residency.expanded.get(&(s, vp.index)),
                    preview: slot.preview,
                    error: slot.error.as_deref(),
                    texture: slot.texture.clone(),
                    count: ls.set.frames.len(),
                    decoded: self.residency.slots[s]
                        .iter()
                        .map(|x| x.full().is_some())
                        .collect(),
                    tool: self.grid.tool,
                    shapes: self
                        .session
                        .measurements
                        .iter()
                        .enumerate()
                        .filter(|(_, m)| m.set == s && m.index == vp.index)
                        .map(|(k, m)| (k, m.shape))
                        .collect(),
                    arriving: arriving.clone(),
                    slab: ls.slab,
                    crosshair: crosshair.clone(),
                    note: match slot.preview {
                        Some(levels) => {
                            Some(format!("PREVIEW at 1/{} resolution: decoding", 1 << levels))
                        }
                        None => ls
                            .derived
                            .and_then(|(src, _)| self.session.mpr.get(&src)?.src.note.clone()),
                    },
                })
            });
            let has_image = view.as_ref().is_some_and(|v| v.texture.is_some());
            if view
                .as_ref()
                .is_some_and(|v| v.texture.is_none() && v.error.is_none() && v.pixels.is_some())
            {
                self.residency.misses += 1;
            }
            let act = vp.show(ui, rect, i as u64, i == self.grid.active, view);
            if act.clicked {
                self.handle(Command::Activate(i));
            }
            if let Some(set) = act.dropped_set {
                self.grid.viewports[i] = vp;
                self.handle(Command::ShowSeries { viewport: i, set });
                continue;
            }
            if let (Some(shape), Some(set)) = (act.new_shape, vp.set) {
                self.handle(Command::AddMeasurement {
                    set,
                    index: vp.index,
                    shape,
                });
            }
            if let (Some(action), Some(set)) = (act.crosshair, vp.set) {
                self.grid.viewports[i] = vp.clone();
                self.move_crosshair(set, vp.index, action);
                vp = self.grid.viewports[i].clone();
            }
            if let Some((pos, shape)) = act.edited {
                self.handle(Command::EditMeasurement { pos, shape });
            }
            if let (Some(point), Some(set)) = (act.locate, vp.set) {
                self.grid.viewports[i] = vp.clone();
                self.handle(Command::Locate {
                    from: i,
                    set,
                    index: vp.index,
                    point,
                });
                vp = self.grid.viewports[i].clone();
            }
            if act.double_clicked {
                self.handle(Command::ToggleMaximise(i));
            }
            if has_image && self.timing.first_image_ms.is_none() {
                self.timing.first_image_ms = self
                    .timing
                    .opened_at
                    .map(|t| t.elapsed().as_secs_f64() * 1e3);
                if self.timing.report {
                    let since_start = PROCESS_START
                        .get()
                        .map(|t| t.elapsed().as_secs_f64() * 1e3)
                        .unwrap_or(f64::NAN);
                    println!("first image: {since_start:.0} ms after process start");
                }
            }
            self.grid.viewports[i] = vp;
        }
    }
}
