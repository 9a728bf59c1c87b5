//! The viewer's command vocabulary: every toolbar button, key, menu entry and
//! context action is a [`Command`], which knows its label (also its accessible
//! name), tooltip and shortcuts. Keys, the toolbar, the F1 help table and the
//! accessibility labels are all generated from it, so they cannot drift apart; and
//! [`App::handle`] is the one place a command changes the viewer's state.
//!
//! Direct manipulation inside a viewport (a W/L, pan or zoom drag, the wheel,
//! drawing a measurement) edits that viewport's plain state as the pointer moves;
//! what it finishes (a measurement drawn or edited, a point located, a series
//! dropped, a double click) comes back to [`App::handle`] as a command too.

use eframe::egui::{self, Key, Modifiers};

use super::App;
use super::mpr::SlabChange;
use super::viewport::{Shape, Tool, Viewport};
use crate::imaging::lut::{self, Window};

/// Layouts offered as buttons (rows, columns).
pub const LAYOUTS: [(usize, usize); 6] = [(1, 1), (1, 2), (2, 1), (2, 2), (2, 3), (3, 3)];

/// The measurement tools, in toolbar order.
pub const TOOLS: [Tool; 6] = [
    Tool::Window,
    Tool::Length,
    Tool::Angle,
    Tool::Cobb,
    Tool::Ellipse,
    Tool::Rect,
];

/// Keys of the window presets, in the order of [`lut::CT_PRESETS`].
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

/// Something the reader asks of the viewer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Command {
    PreviousImage,
    NextImage,
    PageBack,
    PageForward,
    FirstImage,
    LastImage,
    PreviousSeries,
    NextSeries,
    /// Reverse the active stack's slice order (from the reading order).
    ReverseStack,
    /// A window preset: index into [`lut::CT_PRESETS`].
    Preset(usize),
    FileWindow,
    Invert,
    Reset,
    Fit,
    OneToOne,
    RotateClockwise,
    FlipHorizontal,
    FlipVertical,
    ToggleInterpolation,
    ToggleOverlays,
    ToggleShutter,
    SetTool(Tool),
    /// Back to the window tool, dropping a measurement being drawn.
    Cancel,
    DeleteLastMeasurement,
    ToggleLink,
    ToggleSyncView,
    ToggleReverseWlDrag,
    ToggleCine,
    CineFaster,
    CineSlower,
    Mpr,
    /// The active reformat as a slab: thin ▸ MIP ▸ MinIP ▸ AvgIP ▸ thin.
    CycleSlab,
    /// The active slab thicker or thinner.
    SlabThicker,
    SlabThinner,
    /// The MPR's crosshair back to orthogonal planes through the middle voxel.
    ResetCrosshair,
    /// The 3-D view's next preset (bone, soft tissue, angio, lung, MR, MIP).
    NextVrMode,
    Layout(usize, usize),
    ToggleTags,
    ToggleHelp,
    ExportImage,
    ExportView,
    ExportDeidentified,
    // Added for issue 11 (the feel of reading), together:
    /// Full screen on or off (F11).
    ToggleFullscreen,
    // Context actions of a viewport.
    /// Make viewport N the active one.
    Activate(usize),
    /// Maximise viewport N, or restore the grid.
    ToggleMaximise(usize),
    /// Show display set `set` in viewport `viewport` (a thumbnail dropped on it).
    ShowSeries {
        viewport: usize,
        set: usize,
    },
    /// Show the patient point under image point `point` of image `index` of set
    /// `set` in viewport `from` in every other viewport of its frame of reference.
    Locate {
        from: usize,
        set: usize,
        index: usize,
        point: [f64; 2],
    },
    /// A measurement finished on image `index` of set `set`.
    AddMeasurement {
        set: usize,
        index: usize,
        shape: Shape,
    },
    /// Measurement `pos` (in the list) moved.
    EditMeasurement {
        pos: usize,
        shape: Shape,
    },
    /// Measurement `pos` (in the list) removed.
    DeleteMeasurement(usize),
    /// The active MPR plane's slab (None: thin), from the toolbar's control.
    SetSlab(Option<crate::imaging::reslice::Slab>),
}

/// A key with the modifiers it needs (ctrl: the platform's command key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortcut {
    pub key: Key,
    pub ctrl: bool,
}

const fn key(key: Key) -> Shortcut {
    Shortcut { key, ctrl: false }
}

const fn ctrl(key: Key) -> Shortcut {
    Shortcut { key, ctrl: true }
}

impl Shortcut {
    /// As shown in the help and tooltips ("ctrl + Up").
    pub fn text(&self) -> String {
        let k = match self.key {
            Key::ArrowUp => "Up",
            Key::ArrowDown => "Down",
            Key::ArrowLeft => "Left",
            Key::ArrowRight => "Right",
            Key::PageUp => "PgUp",
            Key::PageDown => "PgDn",
            Key::Questionmark => "?",
            Key::Plus => "+",
            Key::Equals => "=",
            Key::Minus => "-",
            other => other.name(),
        };
        if self.ctrl {
            format!("ctrl + {k}")
        } else {
            k.to_string()
        }
    }
}

impl Command {
    /// Every command a key, button or menu can give (context actions excluded).
    pub fn all() -> Vec<Command> {
        use Command::*;
        let mut v = vec![
            PreviousImage,
            NextImage,
            PageBack,
            PageForward,
            FirstImage,
            LastImage,
            PreviousSeries,
            NextSeries,
            ReverseStack,
        ];
        v.extend((0..lut::CT_PRESETS.len()).map(Preset));
        v.extend([
            FileWindow,
            Invert,
            Reset,
            Fit,
            OneToOne,
            RotateClockwise,
            FlipHorizontal,
            FlipVertical,
            ToggleInterpolation,
            ToggleOverlays,
            ToggleShutter,
        ]);
        v.extend(TOOLS.iter().map(|&t| SetTool(t)));
        v.extend([
            Cancel,
            DeleteLastMeasurement,
            ToggleLink,
            ToggleSyncView,
            ToggleReverseWlDrag,
            ToggleCine,
            CineFaster,
            CineSlower,
            Mpr,
            CycleSlab,
            SlabThicker,
            SlabThinner,
            ResetCrosshair,
            NextVrMode,
        ]);
        v.extend(LAYOUTS.iter().map(|&(r, c)| Layout(r, c)));
        v.extend([
            ToggleTags,
            ExportImage,
            ExportView,
            ExportDeidentified,
            ToggleFullscreen,
            ToggleHelp,
        ]);
        v
    }

    /// The name on its button or menu entry (and its accessible label).
    pub fn label(&self) -> String {
        use Command::*;
        match self {
            PreviousImage => "previous image".into(),
            NextImage => "next image".into(),
            PageBack => "10 images back".into(),
            PageForward => "10 images forward".into(),
            FirstImage => "first image".into(),
            LastImage => "last image".into(),
            PreviousSeries => "previous series".into(),
            NextSeries => "next series".into(),
            ReverseStack => "reverse slice order".into(),
            Preset(i) => lut::CT_PRESETS
                .get(*i)
                .map(|p| p.0.to_string())
                .unwrap_or_default(),
            FileWindow => "file's window".into(),
            Invert => "invert".into(),
            Reset => "reset".into(),
            Fit => "fit".into(),
            OneToOne => "1:1".into(),
            RotateClockwise => "rotate".into(),
            FlipHorizontal => "flip horizontally".into(),
            FlipVertical => "flip vertically".into(),
            ToggleInterpolation => "bilinear".into(),
            ToggleOverlays => "overlays".into(),
            ToggleShutter => "shutter".into(),
            SetTool(t) => tool_name(*t).into(),
            Cancel => "cancel".into(),
            DeleteLastMeasurement => "delete last measurement".into(),
            ToggleLink => "link (K)".into(),
            ToggleSyncView => "sync W/L".into(),
            ToggleReverseWlDrag => "reverse W/L drag".into(),
            ToggleCine => "cine (space)".into(),
            CineFaster => "cine faster".into(),
            CineSlower => "cine slower".into(),
            Mpr => "MPR (M)".into(),
            CycleSlab => "slab".into(),
            SlabThicker => "slab thicker".into(),
            SlabThinner => "slab thinner".into(),
            ResetCrosshair => "reset MPR".into(),
            NextVrMode => "3-D preset".into(),
            Layout(r, c) => format!("{r}×{c}"),
            ToggleTags => "tags (T)".into(),
            ToggleHelp => "help (F1)".into(),
            ExportImage => "image as PNG".into(),
            ExportView => "view as PNG, with annotations".into(),
            ExportDeidentified => "series, de-identified…".into(),
            ToggleFullscreen => "full screen (F11)".into(),
            Activate(_)
            | ToggleMaximise(_)
            | ShowSeries { .. }
            | Locate { .. }
            | AddMeasurement { .. }
            | EditMeasurement { .. }
            | DeleteMeasurement(_)
            | SetSlab(_) => String::new(),
        }
    }

    /// What it does, for tooltips and the help table.
    pub fn tooltip(&self) -> String {
        use Command::*;
        match self {
            PreviousImage | NextImage => "previous / next image".into(),
            PageBack | PageForward => "10 images back / forward".into(),
            FirstImage | LastImage => "first / last image".into(),
            PreviousSeries | NextSeries => "previous / next series in this viewport".into(),
            ReverseStack => {
                "reverse this stack's slice order (default: axial head first, sagittal right first, coronal front first)"
                    .into()
            }
            Preset(i) => lut::CT_PRESETS
                .get(*i)
                .map(|(n, c, w)| format!("{n} window: centre {c}, width {w}"))
                .unwrap_or_default(),
            FileWindow => "the file's window".into(),
            Invert => "invert".into(),
            Reset => "reset window, zoom and pan".into(),
            Fit => "fit to the viewport".into(),
            OneToOne => "1:1 (one image pixel per screen pixel)".into(),
            RotateClockwise => "rotate 90° clockwise".into(),
            FlipHorizontal => "flip horizontally".into(),
            FlipVertical => "flip vertically".into(),
            ToggleInterpolation => "bilinear / nearest interpolation".into(),
            ToggleOverlays => "overlay planes on or off".into(),
            ToggleShutter => "display shutter on or off".into(),
            SetTool(Tool::Window) => "left drag sets the window".into(),
            SetTool(Tool::Length) => "length".into(),
            SetTool(Tool::Angle) => "angle (drag one arm, click the other)".into(),
            SetTool(Tool::Cobb) => "Cobb angle (drag two lines)".into(),
            SetTool(Tool::Ellipse) => "ellipse ROI".into(),
            SetTool(Tool::Rect) => "rectangle ROI".into(),
            Cancel => "back to window, dropping a measurement being drawn".into(),
            DeleteLastMeasurement => "remove the last measurement on this image".into(),
            ToggleLink => "link scrolling of all viewports (priors: keeps today's offset)".into(),
            ToggleSyncView => "window follows in viewports of the same modality; zoom and pan in the same frame of reference or when linked".into(),
            ToggleReverseWlDrag => "reverse the window/level drag directions".into(),
            ToggleCine => "cine play / pause".into(),
            CineFaster | CineSlower => "cine frame rate up / down".into(),
            Mpr => "MPR: the stack's three planes through a crosshair and its 3-D view (2×2): drag the centre to move it, a line to move that plane, a line's handle to turn the planes (oblique); again: back to the layout before".into(),
            CycleSlab => "MPR: the active reformat as a thick slab — MIP, MinIP, AvgIP, thin again (10 mm to start)".into(),
            SlabThicker => "MPR: the active slab thicker".into(),
            SlabThinner => "MPR: the active slab thinner".into(),
            ResetCrosshair => "MPR: the crosshair back to orthogonal planes through the middle of the stack".into(),
            NextVrMode => "MPR's 3-D view: the next preset (bone, soft tissue, angio, lung, MR, MIP); drag to turn, right-drag moves its window, wheel zooms".into(),
            Layout(r, c) => format!("{r} row(s) × {c} column(s) of viewports"),
            ToggleTags => "the active image's header".into(),
            ToggleHelp => "this help".into(),
            ExportImage => "export the image as PNG (the file's pixels, window as shown)".into(),
            ExportView => "export the view as PNG, with its annotations".into(),
            ExportDeidentified => "export the series de-identified (PS3.15 Basic Profile)".into(),
            ToggleFullscreen => "full screen on or off".into(),
            Activate(_)
            | ToggleMaximise(_)
            | ShowSeries { .. }
            | Locate { .. }
            | AddMeasurement { .. }
            | EditMeasurement { .. }
            | DeleteMeasurement(_)
            | SetSlab(_) => String::new(),
        }
    }

    /// The keys that give it (none for buttons-only commands).
    pub fn shortcuts(&self) -> Vec<Shortcut> {
        use Command::*;
        match self {
            PreviousImage => vec![key(Key::ArrowUp), key(Key::ArrowLeft)],
            NextImage => vec![key(Key::ArrowDown), key(Key::ArrowRight)],
            PageBack => vec![key(Key::PageUp)],
            PageForward => vec![key(Key::PageDown)],
            FirstImage => vec![key(Key::Home)],
            LastImage => vec![key(Key::End)],
            PreviousSeries => vec![ctrl(Key::ArrowUp)],
            NextSeries => vec![ctrl(Key::ArrowDown)],
            ReverseStack => vec![ctrl(Key::R)],
            Preset(i) => PRESET_KEYS
                .get(*i)
                .map(|&k| vec![key(k)])
                .unwrap_or_default(),
            FileWindow => vec![key(Key::Num0)],
            Invert => vec![key(Key::I)],
            Reset => vec![key(Key::R)],
            Fit => vec![key(Key::F)],
            OneToOne => vec![key(Key::Z)],
            RotateClockwise => vec![key(Key::O)],
            FlipHorizontal => vec![key(Key::H)],
            FlipVertical => vec![key(Key::V)],
            ToggleInterpolation => vec![key(Key::B)],
            ToggleOverlays => vec![key(Key::Y)],
            ToggleShutter => vec![key(Key::U)],
            SetTool(Tool::Window) => vec![key(Key::W)],
            SetTool(Tool::Length) => vec![key(Key::L)],
            SetTool(Tool::Angle) => vec![key(Key::A)],
            SetTool(Tool::Cobb) => vec![key(Key::C)],
            SetTool(Tool::Ellipse) => vec![key(Key::E)],
            SetTool(Tool::Rect) => vec![key(Key::Q)],
            Cancel => vec![key(Key::Escape)],
            DeleteLastMeasurement => vec![key(Key::Delete)],
            ToggleLink => vec![key(Key::K)],
            ToggleCine => vec![key(Key::Space)],
            CineFaster => vec![key(Key::Plus), key(Key::Equals)],
            CineSlower => vec![key(Key::Minus)],
            Mpr => vec![key(Key::M)],
            CycleSlab => vec![key(Key::S)],
            SlabThicker => vec![key(Key::CloseBracket)],
            SlabThinner => vec![key(Key::OpenBracket)],
            ResetCrosshair => vec![key(Key::X)],
            NextVrMode => vec![key(Key::P)],
            ToggleTags => vec![key(Key::T)],
            ToggleHelp => vec![key(Key::F1), key(Key::Questionmark)],
            ExportImage => vec![ctrl(Key::E)],
            ExportView => vec![ctrl(Key::S)],
            ExportDeidentified => vec![ctrl(Key::D)],
            ToggleFullscreen => vec![key(Key::F11)],
            _ => vec![],
        }
    }

    /// The command a key press gives, if any.
    pub fn for_key(pressed: Key, modifiers: Modifiers) -> Option<Command> {
        let ctrl = modifiers.command || modifiers.ctrl;
        Command::all().into_iter().find(|c| {
            c.shortcuts()
                .iter()
                .any(|s| s.key == pressed && s.ctrl == ctrl)
        })
    }

    /// Its tooltip with its shortcuts ("invert (I)").
    pub fn hover_text(&self) -> String {
        let keys: Vec<String> = self.shortcuts().iter().map(Shortcut::text).collect();
        if keys.is_empty() {
            self.tooltip()
        } else {
            format!("{} ({})", self.tooltip(), keys.join(" or "))
        }
    }
}

/// The name of a measurement tool on its button.
pub fn tool_name(t: Tool) -> &'static str {
    match t {
        Tool::Window => "W/L",
        Tool::Length => "length",
        Tool::Angle => "angle",
        Tool::Cobb => "Cobb",
        Tool::Ellipse => "ellipse ROI",
        Tool::Rect => "rect ROI",
    }
}

pub use super::help::{GESTURES, TOOLBAR_ONLY, help_rows};

impl App {
    /// The commands the keys pressed this frame give, in the order they were
    /// pressed (several presses in one frame are all counted).
    pub(super) fn key_commands(&self, ctx: &egui::Context) -> Vec<Command> {
        // Typing in a text field (search, filters) is not a shortcut.
        if ctx.egui_wants_keyboard_input() {
            return Vec::new();
        }
        ctx.input(|i| {
            i.events
                .iter()
                .filter_map(|e| match e {
                    egui::Event::Key {
                        key,
                        pressed: true,
                        modifiers,
                        ..
                    } => Command::for_key(*key, *modifiers),
                    _ => None,
                })
                .collect()
        })
    }

    /// A button for a command: its icon, its label as the accessible name, its
    /// tooltip with the shortcut (built only when shown); clicked, the command is
    /// queued for [`App::handle`].
    pub(super) fn command_button(
        ui: &mut egui::Ui,
        command: Command,
        selected: Option<bool>,
        queue: &mut Vec<Command>,
    ) {
        let r = super::panels::icon_button(ui, command, selected, command.label());
        if r.clicked() {
            queue.push(command);
        }
    }

    /// Carry out a command: the one place the viewer's state changes on request.
    pub fn handle(&mut self, command: Command) {
        use Command::*;
        let count = self
            .grid
            .viewports
            .get(self.grid.active)
            .and_then(|v| v.set)
            .and_then(|s| self.session.sets.get(s))
            .map(|s| s.set.frames.len())
            .unwrap_or(0);
        let active = self.grid.active;
        match command {
            PreviousImage => self.with_active(|v| v.step(-1, count)),
            NextImage => self.with_active(|v| v.step(1, count)),
            PageBack => self.with_active(|v| v.step(-10, count)),
            PageForward => self.with_active(|v| v.step(10, count)),
            FirstImage => self.with_active(|v| v.index = 0),
            LastImage => self.with_active(|v| v.index = count.saturating_sub(1)),
            ReverseStack => self.reverse_stack(),
            PreviousSeries | NextSeries => {
                let step = if command == NextSeries { 1 } else { -1 };
                if let Some(set) = self.grid.viewports.get(active).and_then(|v| v.set)
                    && !self.session.sets.is_empty()
                {
                    let n = self.session.sets.len() as i64;
                    let next = (set as i64 + step).rem_euclid(n) as usize;
                    self.show_set(active, next);
                }
            }
            Preset(i) => {
                if let Some(&(_, c, w)) = lut::CT_PRESETS.get(i) {
                    self.with_active(|v| v.window = Some(Window::new(c, w)));
                }
            }
            FileWindow => self.with_active(|v| v.window = None),
            Invert => self.with_active(|v| v.invert = !v.invert),
            Reset => self.with_active(Viewport::reset),
            Fit => self.with_active(|v| {
                v.zoom = 1.0;
                v.pan = egui::Vec2::ZERO;
            }),
            OneToOne => self.with_active(|v| v.one_to_one = true),
            RotateClockwise => self.with_active(Viewport::rotate),
            FlipHorizontal => self.with_active(|v| v.flip_h = !v.flip_h),
            FlipVertical => self.with_active(|v| v.flip_v = !v.flip_v),
            ToggleInterpolation => self.with_active(|v| v.bilinear = !v.bilinear),
            ToggleOverlays => self.with_active(|v| v.overlays = !v.overlays),
            ToggleShutter => self.with_active(|v| v.shutter = !v.shutter),
            SetTool(t) => self.grid.tool = t,
            Cancel => {
                self.grid.tool = Tool::Window;
                self.with_active(|v| {
                    v.pending = None;
                    v.drawing = None;
                });
            }
            DeleteLastMeasurement => {
                if let Some(v) = self.grid.viewports.get(active)
                    && let Some(set) = v.set
                    && let Some(pos) = self
                        .session
                        .measurements
                        .iter()
                        .rposition(|m| m.set == set && m.index == v.index)
                {
                    self.delete_measurement(pos);
                }
            }
            ToggleLink => self.toggle_link(),
            ToggleSyncView => self.grid.sync_view = !self.grid.sync_view,
            ToggleReverseWlDrag => self.grid.invert_wl_drag = !self.grid.invert_wl_drag,
            ToggleCine => {
                let fps = self.file_frame_rate();
                self.grid.cine = match self.grid.cine {
                    Some(_) => None,
                    None => Some(fps),
                };
            }
            CineFaster => {
                if let Some(fps) = self.grid.cine.as_mut() {
                    *fps = (*fps * 1.25).min(60.0);
                }
            }
            CineSlower => {
                if let Some(fps) = self.grid.cine.as_mut() {
                    *fps = (*fps / 1.25).max(1.0);
                }
            }
            Mpr => self.toggle_mpr(),
            CycleSlab => self.change_slab(SlabChange::Cycle),
            SlabThicker => self.change_slab(SlabChange::Thicker),
            SlabThinner => self.change_slab(SlabChange::Thinner),
            ResetCrosshair => self.reset_crosshair(),
            NextVrMode => self.next_vr_mode(),
            Layout(r, c) => {
                // A layout chosen by hand ends MPR where it is.
                self.grid.mpr_saved = None;
                self.set_layout(r, c);
            }
            ToggleTags => self.panels.show_tags = !self.panels.show_tags,
            ToggleHelp => self.panels.show_help = !self.panels.show_help,
            ExportImage => self.export_image(),
            ExportView => self.export_view(),
            ExportDeidentified => self.exports.deid.open = true,
            ToggleFullscreen => {
                let full = self.ctx.input(|i| i.viewport().fullscreen.unwrap_or(false));
                self.ctx
                    .send_viewport_cmd(egui::ViewportCommand::Fullscreen(!full));
            }
            Activate(i) => {
                if i < self.grid.viewports.len() {
                    self.grid.active = i;
                }
            }
            ToggleMaximise(i) => {
                self.grid.maximized = match self.grid.maximized {
                    Some(_) => None,
                    None => Some(i),
                };
            }
            ShowSeries { viewport, set } => self.show_set(viewport, set),
            Locate {
                from,
                set,
                index,
                point,
            } => self.locate(from, set, index, point),
            AddMeasurement { set, index, shape } => self.add_measurement(set, index, shape),
            EditMeasurement { pos, shape } => self.edit_measurement(pos, shape),
            DeleteMeasurement(pos) => self.delete_measurement(pos),
            SetSlab(slab) => {
                if let Some(set) = self.active_set() {
                    self.set_slab(set, slab);
                }
            }
        }
    }

    /// Apply a change to the active viewport.
    fn with_active(&mut self, f: impl FnOnce(&mut Viewport)) {
        if let Some(v) = self.grid.viewports.get_mut(self.grid.active) {
            f(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shortcut_gives_one_command() {
        let mut seen: Vec<Shortcut> = Vec::new();
        for c in Command::all() {
            for s in c.shortcuts() {
                assert!(!seen.contains(&s), "{} is bound twice", s.text());
                seen.push(s);
                let m = Modifiers {
                    ctrl: s.ctrl,
                    command: s.ctrl,
                    ..Default::default()
                };
                assert_eq!(Command::for_key(s.key, m), Some(c), "{}", s.text());
            }
        }
        assert_eq!(
            Command::for_key(Key::ArrowDown, Modifiers::CTRL),
            Some(Command::NextSeries)
        );
        assert_eq!(
            Command::for_key(Key::ArrowDown, Modifiers::NONE),
            Some(Command::NextImage)
        );
    }

    #[test]
    fn presets_follow_the_preset_table() {
        for (i, (name, _, _)) in lut::CT_PRESETS.iter().enumerate() {
            assert_eq!(Command::Preset(i).label(), *name);
            assert_eq!(Command::Preset(i).shortcuts().len(), 1);
        }
    }
}
