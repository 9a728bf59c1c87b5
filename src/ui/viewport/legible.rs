//! Writing that reads on any image, and where it goes. Text is drawn with a dark
//! edge (eight copies a point off in [`theme::OUTLINE`], the colour on top), lines
//! over a wider dark stroke; [`Placer`] puts boxes on a viewport so that none
//! overlaps another or leaves the viewport (less the scroll bar's strip), and
//! records them ([`Drawn`]) for tests and for what is drawn later in the frame.

use crate::ui::theme;
use eframe::egui::{self, Align2, Color32, FontId, Galley, Pos2, Rect, Shape, Stroke, Vec2};
use std::sync::Arc;

/// One box written on a viewport in its last frame: what it is, where (points,
/// the dark edge included), its text and colour.
#[derive(Debug, Clone, PartialEq)]
pub struct Drawn {
    /// "top_left", "top_right", "bottom_left", "bottom_right" (corner text),
    /// "lossy", "marker_left", "marker_right", "marker_top", "marker_bottom",
    /// "scale" (the bar), "scale_label", "probe".
    pub kind: &'static str,
    pub rect: Rect,
    pub text: String,
    pub color: Color32,
}

/// Text laid out once: measured, placed, then painted with its edge.
#[derive(Debug, Clone)]
pub(super) struct Text {
    pub(super) galley: Arc<Galley>,
    pub(super) text: String,
    pub(super) color: Color32,
}

impl Text {
    pub(super) fn new(painter: &egui::Painter, text: &str, font: &FontId, color: Color32) -> Text {
        Text {
            galley: painter.layout_no_wrap(text.to_string(), font.clone(), Color32::PLACEHOLDER),
            text: text.to_string(),
            color,
        }
    }

    /// Its size with the dark edge.
    pub(super) fn size(&self) -> Vec2 {
        self.galley.size() + Vec2::splat(2.0 * theme::OUTLINE_WIDTH)
    }

    /// Paint it with its box's corner at `min`.
    pub(super) fn paint(&self, painter: &egui::Painter, min: Pos2) {
        paint_outlined(painter, min, &self.galley, self.color);
    }
}

/// The width of `text` in `font` (widest line), points.
pub(super) fn width(painter: &egui::Painter, text: &str, font: &FontId) -> f32 {
    painter
        .layout_no_wrap(text.to_string(), font.clone(), Color32::PLACEHOLDER)
        .size()
        .x
}

fn paint_outlined(painter: &egui::Painter, min: Pos2, galley: &Arc<Galley>, color: Color32) {
    let d = theme::OUTLINE_WIDTH;
    let at = min + Vec2::splat(d);
    for (dx, dy) in [
        (-1.0, -1.0),
        (0.0, -1.0),
        (1.0, -1.0),
        (-1.0, 0.0),
        (1.0, 0.0),
        (-1.0, 1.0),
        (0.0, 1.0),
        (1.0, 1.0),
    ] {
        painter.galley(
            at + Vec2::new(dx, dy) * d,
            Arc::clone(galley),
            theme::OUTLINE,
        );
    }
    painter.galley(at, Arc::clone(galley), color);
}

/// Text with a dark edge, anchored at `pos` like `Painter::text`, moved inside
/// `area` where it would stick out (a measurement's label near the viewport's
/// edge); its box.
pub fn outlined_text_within(
    painter: &egui::Painter,
    area: Rect,
    pos: Pos2,
    align: Align2,
    text: &str,
    font: FontId,
    color: Color32,
) -> Rect {
    let t = Text::new(painter, text, &font, color);
    let r = inside(align.anchor_size(pos, t.size()), area);
    t.paint(painter, r.min);
    r
}

/// `r` moved (not shrunk) to lie inside `area` as far as it can.
pub(super) fn inside(r: Rect, area: Rect) -> Rect {
    let dx = if r.min.x < area.min.x {
        area.min.x - r.min.x
    } else if r.max.x > area.max.x {
        (area.max.x - r.max.x).max(area.min.x - r.min.x)
    } else {
        0.0
    };
    let dy = if r.min.y < area.min.y {
        area.min.y - r.min.y
    } else if r.max.y > area.max.y {
        (area.max.y - r.max.y).max(area.min.y - r.min.y)
    } else {
        0.0
    };
    r.translate(Vec2::new(dx, dy))
}

/// A shape stroked `width` wide in `color` over a dark stroke two edges wider.
pub fn outlined_stroke(
    painter: &egui::Painter,
    width: f32,
    color: Color32,
    shape: impl Fn(Stroke) -> Shape,
) {
    painter.add(shape(Stroke::new(
        width + 2.0 * theme::OUTLINE_WIDTH,
        theme::OUTLINE,
    )));
    painter.add(shape(Stroke::new(width, color)));
}

/// A straight line with a dark edge.
pub fn outlined_line(painter: &egui::Painter, a: Pos2, b: Pos2, width: f32, color: Color32) {
    outlined_stroke(painter, width, color, |s| Shape::line_segment([a, b], s));
}

/// A dashed line with a dark edge.
pub fn outlined_dashed(
    painter: &egui::Painter,
    points: &[Pos2],
    width: f32,
    color: Color32,
    dash: f32,
    gap: f32,
) {
    outlined_stroke(painter, width, color, |s| {
        Shape::Vec(Shape::dashed_line(points, s, dash, gap))
    });
}

/// Whether two boxes share more than an edge.
pub fn overlap(a: Rect, b: Rect) -> bool {
    a.min.x < b.max.x && b.min.x < a.max.x && a.min.y < b.max.y && b.min.y < a.max.y
}

/// The pieces of the segment `a`–`b` outside every box (a reference line broken
/// where it would cross text).
pub fn outside_boxes(a: Pos2, b: Pos2, boxes: &[Rect]) -> Vec<(Pos2, Pos2)> {
    // Parameter intervals (0..1 along the segment) inside each box (Liang–Barsky).
    let d = b - a;
    let mut inside: Vec<(f32, f32)> = boxes
        .iter()
        .filter_map(|r| {
            let (mut t0, mut t1) = (0.0f32, 1.0f32);
            for (p, q) in [
                (-d.x, a.x - r.min.x),
                (d.x, r.max.x - a.x),
                (-d.y, a.y - r.min.y),
                (d.y, r.max.y - a.y),
            ] {
                if p == 0.0 {
                    if q < 0.0 {
                        return None;
                    }
                } else {
                    let t = q / p;
                    if p < 0.0 {
                        t0 = t0.max(t);
                    } else {
                        t1 = t1.min(t);
                    }
                }
            }
            (t0 < t1).then_some((t0, t1))
        })
        .collect();
    inside.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut out = Vec::new();
    let mut from = 0.0f32;
    for (t0, t1) in inside {
        if t0 > from {
            out.push((a + d * from, a + d * t0));
        }
        from = from.max(t1);
    }
    if from < 1.0 {
        out.push((a + d * from, b));
    }
    out
}

/// Boxes placed on a viewport so far, within its `area`.
#[derive(Debug, Clone)]
pub(super) struct Placer {
    pub(super) area: Rect,
    pub(super) boxes: Vec<Drawn>,
}

/// Which way a box slides when the place it wants is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slide {
    Up,
    Down,
    Left,
    Right,
}

impl Placer {
    /// The writable part of a viewport: `rect` less the scroll bar's strip, inset.
    pub(super) fn area_of(rect: Rect) -> Rect {
        Rect::from_min_max(
            rect.min,
            Pos2::new(rect.max.x - theme::SCROLL_STRIP, rect.max.y),
        )
        .shrink(theme::ANNOTATION_INSET)
    }

    pub(super) fn new(area: Rect, boxes: Vec<Drawn>) -> Placer {
        Placer { area, boxes }
    }

    /// Whether `r` lies in the area and keeps the gap to every box placed.
    pub(super) fn free(&self, r: Rect) -> bool {
        self.area.contains_rect(r) && self.hit(r).is_none()
    }

    fn hit(&self, r: Rect) -> Option<Rect> {
        self.boxes
            .iter()
            .map(|b| b.rect.expand(theme::ANNOTATION_INSET / 2.0))
            .find(|b| overlap(*b, r))
    }

    /// Where the group of boxes `rs` (moved together) first fits sliding `dir`
    /// from where they are: the offset, or None when they would leave the area.
    pub(super) fn slide(&self, rs: &[Rect], dir: Slide) -> Option<Vec2> {
        let mut off = Vec2::ZERO;
        let gap = theme::ANNOTATION_INSET / 2.0 + 0.5;
        for _ in 0..64 {
            let moved: Vec<Rect> = rs.iter().map(|r| r.translate(off)).collect();
            if moved.iter().any(|r| !self.area.contains_rect(*r)) {
                return None;
            }
            let Some((r, b)) = moved.iter().find_map(|r| self.hit(*r).map(|b| (*r, b))) else {
                return Some(off);
            };
            off += match dir {
                Slide::Down => Vec2::new(0.0, b.max.y - r.min.y + gap),
                Slide::Up => Vec2::new(0.0, b.min.y - r.max.y - gap),
                Slide::Right => Vec2::new(b.max.x - r.min.x + gap, 0.0),
                Slide::Left => Vec2::new(b.min.x - r.max.x - gap, 0.0),
            };
        }
        None
    }

    /// Place a group of boxes: where they are (only there when `dirs` is empty),
    /// else slid each way of `dirs` in turn; records them and returns the offset applied, or None (not placed).
    pub(super) fn place(
        &mut self,
        group: Vec<(&'static str, Rect, String, Color32)>,
        dirs: &[Slide],
    ) -> Option<Vec2> {
        let rs: Vec<Rect> = group.iter().map(|g| g.1).collect();
        let off = if dirs.is_empty() {
            rs.iter().all(|r| self.free(*r)).then_some(Vec2::ZERO)?
        } else {
            dirs.iter().find_map(|d| self.slide(&rs, *d))?
        };
        for (kind, rect, text, color) in group {
            self.boxes.push(Drawn {
                kind,
                rect: rect.translate(off),
                text,
                color,
            });
        }
        Some(off)
    }

    /// Place one text anchored at `pos`; its box's corner when placed.
    pub(super) fn place_text(
        &mut self,
        kind: &'static str,
        t: &Text,
        pos: Pos2,
        align: Align2,
        dirs: &[Slide],
    ) -> Option<Pos2> {
        let r = inside(align.anchor_size(pos, t.size()), self.area);
        let off = self.place(vec![(kind, r, t.text.clone(), t.color)], dirs)?;
        Some(r.min + off)
    }

    /// The box of kind `kind`, if placed.
    pub(super) fn get(&self, kind: &str) -> Option<Rect> {
        self.boxes.iter().find(|b| b.kind == kind).map(|b| b.rect)
    }
}

/// `line` shortened to `max` points wide in `font`: fields (separated by two
/// spaces) that do not fit are dropped when short (an index, a thickness); else
/// the words that fit are kept ("C 40 W 400 (file)" → "C 40 W 400", "PHANTOM
/// CHEST" → "PHANTOM…"), and a long word is cut with "…".
pub(super) fn shorten(painter: &egui::Painter, line: &str, font: &FontId, max: f32) -> String {
    let fits = |s: &str| width(painter, s, font) <= max;
    if fits(line) {
        return line.to_string();
    }
    let fields: Vec<&str> = line.split("  ").collect();
    let mut kept = 0;
    while kept < fields.len() && fits(&fields[..=kept].join("  ")) {
        kept += 1;
    }
    if kept > 0 && kept < fields.len() && fields[kept].chars().count() <= 12 {
        return fields[..kept].join("  ");
    }
    // The longest prefix that fits with the ellipsis, cut anywhere.
    let chars: Vec<char> = line.chars().collect();
    let (mut lo, mut hi) = (0usize, chars.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        let s: String = chars[..mid].iter().collect::<String>() + "…";
        if fits(&s) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    // Better whole words, when they keep most of it.
    let words: Vec<&str> = line.split(' ').collect();
    for n in (1..words.len()).rev() {
        let head = words[..n].join(" ");
        let head = head.trim_end();
        if head.is_empty() || head.chars().count() * 2 < lo {
            break;
        }
        let rest = words[n..].join(" ");
        // A note in brackets goes without a trace; anything else leaves "…".
        let word = if rest.trim_start().starts_with('(') {
            head.to_string()
        } else {
            format!("{head}…")
        };
        if fits(&word) {
            return word;
        }
    }
    if lo == 0 {
        return String::new();
    }
    chars[..lo]
        .iter()
        .collect::<String>()
        .trim_end()
        .to_string()
        + "…"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_broken_where_it_crosses_boxes() {
        let (a, b) = (Pos2::new(0.0, 10.0), Pos2::new(100.0, 10.0));
        let boxes = [
            Rect::from_min_max(Pos2::new(20.0, 0.0), Pos2::new(30.0, 20.0)),
            Rect::from_min_max(Pos2::new(25.0, 5.0), Pos2::new(40.0, 15.0)),
            Rect::from_min_max(Pos2::new(90.0, 50.0), Pos2::new(95.0, 60.0)),
        ];
        let pieces = outside_boxes(a, b, &boxes);
        assert_eq!(pieces.len(), 2, "{pieces:?}");
        assert!((pieces[0].1.x - 20.0).abs() < 1e-4 && (pieces[1].0.x - 40.0).abs() < 1e-4);
        assert_eq!(pieces[1].1, b);
        // A line inside one box leaves nothing.
        let all = [Rect::from_min_max(
            Pos2::new(-1.0, 0.0),
            Pos2::new(101.0, 20.0),
        )];
        assert!(outside_boxes(a, b, &all).is_empty());
    }

    #[test]
    fn boxes_slide_past_what_is_placed() {
        let area = Rect::from_min_max(Pos2::ZERO, Pos2::new(200.0, 200.0));
        let taken = Rect::from_min_max(Pos2::new(0.0, 0.0), Pos2::new(100.0, 40.0));
        let mut p = Placer::new(
            area,
            vec![Drawn {
                kind: "top_left",
                rect: taken,
                text: String::new(),
                color: theme::ANNOTATION,
            }],
        );
        let want = Rect::from_min_size(Pos2::new(10.0, 10.0), Vec2::new(20.0, 20.0));
        let off = p
            .place(
                vec![("x", want, String::new(), theme::MARKER)],
                &[Slide::Down],
            )
            .expect("placed");
        assert!(off.x == 0.0 && off.y > 30.0, "{off:?}");
        let placed = p.get("x").expect("recorded");
        assert!(!overlap(placed, taken) && area.contains_rect(placed));
        // Nowhere to go: not placed.
        let huge = Rect::from_min_size(Pos2::new(0.0, 0.0), Vec2::new(200.0, 190.0));
        assert!(
            p.place(
                vec![("y", huge, String::new(), theme::MARKER)],
                &[Slide::Up]
            )
            .is_none()
        );
        assert!(p.get("y").is_none());
    }

    #[test]
    fn long_lines_lose_notes_and_words_before_letters() {
        let ctx = egui::Context::default();
        let mut out = Vec::new();
        let mut frame = ctx.run_ui(egui::RawInput::default(), |ui| {
            let painter = ui.painter();
            let font = FontId::monospace(10.0);
            let w = width(painter, "0123456789", &font) / 10.0;
            for (line, chars) in [
                ("C 40 W 400 (file)", 13.0),
                ("PHANTOM CHEST", 9.0),
                ("Im 7/12  z 200.0 mm  thk 1.0 mm", 22.0),
                ("20260105  CT CHEST ABDOMEN (synthetic)", 15.0),
                ("Short", 9.0),
                ("ABCDEFGHIJKLMNOP", 6.0),
            ] {
                let s = shorten(painter, line, &font, w * chars + 0.5);
                assert!(width(painter, &s, &font) <= w * chars + 0.5, "{s}");
                out.push(s);
            }
        });
        frame.textures_delta.clear();
        assert_eq!(
            out,
            [
                "C 40 W 400",
                "PHANTOM…",
                "Im 7/12  z 200.0 mm",
                "20260105  CT…",
                "Short",
                "ABCDE…"
            ]
        );
    }

    #[test]
    fn a_box_is_moved_inside_the_area() {
        let area = Rect::from_min_max(Pos2::ZERO, Pos2::new(100.0, 100.0));
        let r = inside(
            Rect::from_min_size(Pos2::new(90.0, -5.0), Vec2::splat(20.0)),
            area,
        );
        assert_eq!(r.min, Pos2::new(80.0, 0.0));
    }
}
