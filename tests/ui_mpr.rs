//! MPR in the viewer, driven like a reader would through `egui_kittest` (real
//! pointer and key events, the wgpu renderer on lavapipe): M hangs the stack's
//! three planes with a crosshair whose lines follow the slice shown, dragging
//! its centre moves the other planes, turning a line's handle gives oblique
//! planes whose orientation is the handle's and whose pixels are the reference
//! reslicer's, half a turn about the vertical swaps the sagittal's left and
//! right labels, X puts everything back, and S makes a plane a MIP slab.

mod common;
#[path = "common/viewer.rs"]
mod viewer;

use eframe::egui;
use egui_kittest::Harness;
use lightbox::imaging::reslice::{self, Options, PlaneSpec, Slab, SlabMode};
use lightbox::ui::App;
use nalgebra::Vector3;
use viewer::*;

/// A left drag from `a` to `b` in small steps, as a hand would.
fn drag(h: &mut Harness<'static, App>, a: egui::Pos2, b: egui::Pos2) {
    h.hover_at(a);
    h.step();
    h.drag_at(a);
    h.step();
    for k in 1..=8 {
        h.hover_at(a + (b - a) * (k as f32 / 8.0));
        h.step();
    }
    h.drop_at(b);
    h.run_steps(3);
}

/// M over the first viewport, then every plane drawn.
fn into_mpr(h: &mut Harness<'static, App>) {
    let centre = h.state().screen_of(0, [32.0, 32.0]).expect("drawn");
    h.hover_at(centre);
    h.step();
    h.key_press(egui::Key::M);
    h.run_steps(2);
    step_until(h, "the three planes drawn", |a| {
        (0..3).all(|i| {
            a.crosshair(i).is_some() && a.viewport(i).is_some_and(|v| v.last_drawn.is_some())
        })
    });
}

fn description(h: &Harness<'static, App>, i: usize) -> String {
    h.state()
        .header_of(i)
        .and_then(|x| x.series_description.clone())
        .unwrap_or_default()
}

/// The normal (row × column) of the image viewport `i` shows.
fn normal(h: &Harness<'static, App>, i: usize) -> Vector3<f64> {
    let o = h.state().header_of(i).expect("image").frames[0]
        .image_orientation
        .expect("orientation");
    Vector3::new(o[0], o[1], o[2]).cross(&Vector3::new(o[3], o[4], o[5]))
}

/// The crosshair's centre and plane `q`'s line on viewport `i`, on screen: the
/// centre and a unit direction.
fn line_on_screen(h: &Harness<'static, App>, i: usize, q: usize) -> (egui::Pos2, egui::Vec2) {
    let c = h.state().crosshair(i).expect("crosshair");
    let d = c.lines.iter().find(|l| l.plane == q).expect("the line").dir;
    let a = h.state().screen_of(i, c.centre).expect("drawn");
    let b = h
        .state()
        .screen_of(i, [c.centre[0] + d[0], c.centre[1] + d[1]])
        .expect("drawn");
    (a, (b - a).normalized())
}

/// Where plane `q`'s handle on viewport `i` is (the one toward `towards`).
fn handle(h: &Harness<'static, App>, i: usize, q: usize, sign: f32) -> (egui::Pos2, egui::Pos2) {
    let (c, d) = line_on_screen(h, i, q);
    let rect = h.state().viewport(i).expect("vp").rect.expect("drawn");
    (c, c + d * (sign * 0.3 * rect.width().min(rect.height())))
}

fn turn(v: egui::Vec2, degrees: f32) -> egui::Vec2 {
    let (s, c) = degrees.to_radians().sin_cos();
    egui::vec2(c * v.x - s * v.y, s * v.x + c * v.y)
}

/// The pixels viewport `i` shows against the reference reslicer's cut of the
/// stack (read afresh as a volume) for the plane its header describes, with
/// `slab`; pixels under the crosshair's lines, handles and frame, under what
/// is written on the image and in the scroll bar's strip are not compared. Rows or columns thinner than a screen pixel are compared with
/// their neighbours. Returns (pixels compared, mismatches).
fn against_reslicer(
    h: &mut Harness<'static, App>,
    i: usize,
    slab: Option<Slab>,
) -> (usize, Vec<String>) {
    let hd = h.state().header_of(i).expect("plane").clone();
    let dir = hd.path.parent().expect("series folder");
    let scan = lightbox::scan::scan(dir).expect("scan");
    let patients = lightbox::model::build(&scan.headers);
    let set = patients[0].studies[0]
        .series
        .iter()
        .flat_map(|s| &s.display_sets)
        .max_by_key(|d| d.frames.len())
        .expect("the stack");
    let vol = lightbox::volume::load(set, &scan.headers).expect("volume");
    let info = &hd.frames[0];
    let px = hd.pixel.as_ref().expect("pixels");
    let spec = PlaneSpec::of_image(&hd).expect("the plane");
    let (slope, intercept) = (info.rescale.slope, info.rescale.intercept);
    let opts = Options {
        slab,
        padding: vol.modality_range().expect("range").0,
        ..Options::default()
    };
    let cut: Vec<i32> = reslice::reslice(&vol, &spec, &opts)
        .expect("reslice")
        .iter()
        .map(|m| ((m - intercept) / slope).round() as i32)
        .collect();
    let pixels = lightbox::dicom::FramePixels {
        rows: px.rows,
        columns: px.columns,
        bits_stored: px.bits_stored,
        samples: lightbox::dicom::Samples::Mono(cut),
    };
    let v = h.state().viewport(i).expect("vp").clone();
    let want = lightbox::imaging::render::render(&hd, 0, &pixels, &v.options()).expect("render");
    let cross = h.state().crosshair(i).expect("crosshair");
    let lines: Vec<(egui::Pos2, egui::Vec2)> = cross
        .lines
        .iter()
        .map(|l| line_on_screen(h, i, l.plane))
        .collect();
    let rect = v.rect.expect("drawn");
    let handles: Vec<egui::Pos2> = cross
        .lines
        .iter()
        .flat_map(|l| [handle(h, i, l.plane, 1.0).1, handle(h, i, l.plane, -1.0).1])
        .collect();
    // (The value probe follows the pointer: away with it.)
    h.remove_cursor();
    h.run_steps(2);
    let frame = h.render().expect("render");
    let ppp = h.ctx.pixels_per_point();
    let (w, ht) = (want.width as usize, want.height as usize);
    let mut bad = Vec::new();
    let mut checked = 0;
    for r in (1..ht - 1).step_by(2) {
        for c in (1..w - 1).step_by(2) {
            let at = h
                .state()
                .screen_of(i, [c as f64 + 0.5, r as f64 + 0.5])
                .expect("drawn");
            let covered = lines.iter().any(|(p, d)| {
                let v = at - *p;
                (v.x * d.y - v.y * d.x).abs() < 4.0
            }) || handles.iter().any(|q| q.distance(at) < 8.0)
                || v.drawn.iter().any(|d| d.rect.expand(2.0).contains(at))
                || !rect.shrink(5.0).contains(at)
                || at.x > rect.max.x - lightbox::ui::theme::SCROLL_STRIP - 3.0;
            if covered {
                continue;
            }
            let got = frame.get_pixel((at.x * ppp) as u32, (at.y * ppp) as u32).0[0] as i32;
            checked += 1;
            let near = (r - 1..=r + 1)
                .flat_map(|rr| (c - 1..=c + 1).map(move |cc| rr * w + cc))
                .any(|k| (want.data[k] as i32 - got).abs() <= 2);
            if !near {
                bad.push(format!("({c},{r}): {got} vs {}", want.data[r * w + c]));
            }
        }
    }
    (checked, bad)
}

#[test]
fn mpr_hangs_three_planes_whose_crosshair_follows_the_slice() {
    let (_tmp, mut h) = demo_app(64, 12);
    into_mpr(&mut h);
    assert_eq!(h.state().layout(), (2, 2));
    assert!(
        description(&h, 0).starts_with("MPR axial"),
        "{}",
        description(&h, 0)
    );
    assert!(
        description(&h, 1).starts_with("MPR coronal"),
        "{}",
        description(&h, 1)
    );
    assert!(
        description(&h, 2).starts_with("MPR sagittal"),
        "{}",
        description(&h, 2)
    );
    // The stack reads superior first and the reformats have the head up, so
    // axial image i is row i of the others: the axial plane's line on them is
    // level, through that row; one image up the stack moves it one row up.
    let axial_row = |h: &Harness<'static, App>, v: usize| {
        let c = h.state().crosshair(v).expect("crosshair");
        let d = c
            .lines
            .iter()
            .find(|l| l.plane == 0)
            .expect("the axial line")
            .dir;
        assert!(d[1].abs() < 1e-9 * d[0].abs(), "level: {d:?}");
        c.centre[1]
    };
    let i = h.state().viewport(0).expect("vp").index as f64;
    for v in [1, 2] {
        assert!((axial_row(&h, v) - (i + 0.5)).abs() < 1e-6, "viewport {v}");
    }
    let over_axial = h.state().screen_of(0, [10.0, 10.0]).expect("drawn");
    h.hover_at(over_axial);
    h.step();
    h.key_press(egui::Key::ArrowUp);
    h.run_steps(3);
    assert_eq!(h.state().viewport(0).expect("vp").index as f64, i - 1.0);
    for v in [1, 2] {
        assert!((axial_row(&h, v) - (i - 0.5)).abs() < 1e-6, "viewport {v}");
    }
    // Shift-click a point on the coronal, three rows from the top: the axial
    // viewport goes to that slice (the fourth from the top of the stack).
    let p = h.state().screen_of(1, [20.5, 3.5]).expect("drawn");
    let shift = egui::Modifiers::SHIFT;
    h.hover_at(p);
    h.step();
    h.event(egui::Event::ModifiersChanged(shift));
    for pressed in [true, false] {
        h.event(egui::Event::PointerButton {
            pos: p,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: shift,
        });
        h.step();
    }
    h.event(egui::Event::ModifiersChanged(egui::Modifiers::NONE));
    h.run_steps(2);
    assert_eq!(h.state().viewport(0).expect("vp").index, 3);
    // Drag the crosshair's centre on the coronal to column 10, row 7: the
    // sagittal goes to column 10 and the axial to image 7; the coronal stays.
    let coronal_index = h.state().viewport(1).expect("vp").index;
    let from = h
        .state()
        .screen_of(1, h.state().crosshair(1).expect("crosshair").centre)
        .expect("drawn");
    let to = h.state().screen_of(1, [10.5, 7.5]).expect("drawn");
    drag(&mut h, from, to);
    assert_eq!(h.state().viewport(0).expect("vp").index, 7, "axial");
    assert_eq!(h.state().viewport(2).expect("vp").index, 10, "sagittal");
    assert_eq!(h.state().viewport(1).expect("vp").index, coronal_index);
    let c = h.state().crosshair(1).expect("crosshair").centre;
    assert!(
        (c[0] - 10.5).abs() < 0.01 && (c[1] - 7.5).abs() < 0.01,
        "{c:?}"
    );
    // Scrolling the sagittal moves the centre along its normal: the
    // sagittal's line on the axial moves with it.
    let over_sagittal = h.state().screen_of(2, [20.0, 2.0]).expect("drawn");
    click(&mut h, over_sagittal);
    assert_eq!(h.state().active(), 2);
    h.key_press(egui::Key::ArrowDown);
    h.run_steps(3);
    assert_eq!(h.state().viewport(2).expect("vp").index, 11);
    let c = h.state().crosshair(0).expect("crosshair").centre;
    assert!(
        (c[0] - 11.5).abs() < 0.01,
        "the sagittal line on the axial: {c:?}"
    );
}

#[test]
fn turning_a_handle_gives_oblique_planes_as_the_handle_says_cut_by_the_reslicer() {
    let (_tmp, mut h) = demo_app(64, 40);
    into_mpr(&mut h);
    let home = [normal(&h, 0), normal(&h, 1), normal(&h, 2)];
    // On the axial, the sagittal line's handle turned 30° clockwise on screen.
    let (c, grip) = handle(&h, 0, 2, 1.0);
    let target = c + turn(grip - c, 30.0);
    // The sagittal's scale and where its crosshair centre is on screen.
    let on_screen = |h: &Harness<'static, App>, v: usize| {
        let map = h.state().viewport(v).expect("vp").mapping.expect("drawn");
        let centre = h.state().crosshair(v).expect("crosshair").centre;
        (map.points_per_mm, map.screen(centre))
    };
    let before = on_screen(&h, 2);
    drag(&mut h, grip, target);
    step_until(&mut h, "the turned sagittal drawn", |a| {
        a.viewport(2).is_some_and(|v| v.last_drawn.is_some())
    });
    // Turned, it keeps its scale and its centre on screen (its images are
    // larger now: they cover the volume at any angle).
    let after = on_screen(&h, 2);
    assert!(
        (after.0 - before.0).abs() < 1e-3 * before.0,
        "{before:?} -> {after:?}"
    );
    assert!(
        (after.1 - before.1).length() < 1.0,
        "{before:?} -> {after:?}"
    );
    // The axial is as it was; the other two are turned 30° about its normal
    // (clockwise on screen, seen from the feet, is +30° about +z here).
    let z = home[0];
    let rz =
        nalgebra::Rotation3::from_axis_angle(&nalgebra::Unit::new_normalize(z), 30f64.to_radians());
    assert!((normal(&h, 0) - home[0]).norm() < 1e-9);
    for v in [1, 2] {
        let got = normal(&h, v);
        let want = rz * home[v];
        assert!(
            (got - want).norm() < 0.02,
            "viewport {v}: {got:?} (want {want:?})"
        );
    }
    assert!(
        description(&h, 2).starts_with("MPR oblique sagittal"),
        "{}",
        description(&h, 2)
    );
    // The sagittal's line on the axial now runs where the handle went.
    let (_, d) = line_on_screen(&h, 0, 2);
    let want = (target - c).normalized();
    assert!(d.dot(want).abs() > 0.999, "line {d:?} vs handle {want:?}");
    // Its pixels (nearest display: one value per image pixel) are the
    // reference reslicer's cut of the plane its header describes.
    let over_sagittal = h.state().screen_of(2, [20.0, 2.0]).expect("drawn");
    click(&mut h, over_sagittal);
    assert_eq!(h.state().active(), 2);
    h.key_press(egui::Key::B);
    step_until(&mut h, "the oblique plane drawn", |a| {
        a.viewport(2).is_some_and(|v| v.last_drawn.is_some())
    });
    let (checked, bad) = against_reslicer(&mut h, 2, None);
    assert!(checked > 300, "{checked}");
    assert!(
        bad.is_empty(),
        "{} of {checked}: {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
    // Now the coronal's handle on the sagittal: a double oblique axial.
    let (c, grip) = handle(&h, 2, 0, 1.0);
    drag(&mut h, grip, c + turn(grip - c, -20.0));
    assert!(
        (normal(&h, 0) - home[0]).norm() > 0.2,
        "the axial is oblique now"
    );
    assert!(
        description(&h, 0).starts_with("MPR oblique axial"),
        "{}",
        description(&h, 0)
    );
    // X: all three planes home again, at the scale they had.
    h.key_press(egui::Key::X);
    h.run_steps(3);
    for (v, n) in home.iter().enumerate() {
        assert!((normal(&h, v) - n).norm() < 1e-9, "viewport {v}");
    }
    step_until(&mut h, "the sagittal drawn at home", |a| {
        a.viewport(2).is_some_and(|v| v.last_drawn.is_some())
    });
    let back = on_screen(&h, 2);
    assert!(
        (back.0 - before.0).abs() < 1e-3 * before.0,
        "{before:?} -> {back:?}"
    );
    assert!(
        description(&h, 2).starts_with("MPR sagittal"),
        "{}",
        description(&h, 2)
    );
}

/// The orientation marker written at edge `kind` of viewport `i`.
/// Where a viewport's image lies as its annotation says it ("z 12.5 mm").
fn position_text(h: &Harness<'static, App>, i: usize) -> String {
    let label = viewport_label(h, i);
    let at = label
        .find(" z ")
        .unwrap_or_else(|| panic!("no position: {label}"));
    let rest = &label[at + 1..];
    let end = rest.find(" mm").unwrap_or_else(|| panic!("no mm: {label}"));
    rest[..end + 3].to_string()
}

/// Arrow keys over viewport `i` until it shows image `index`.
fn go_to(h: &mut Harness<'static, App>, i: usize, index: usize) {
    let over = h.state().screen_of(i, [10.0, 10.0]).expect("drawn");
    h.hover_at(over);
    h.step();
    for _ in 0..64 {
        let at = h.state().viewport(i).expect("vp").index;
        if at == index {
            break;
        }
        h.key_press(if at < index {
            egui::Key::ArrowDown
        } else {
            egui::Key::ArrowUp
        });
        h.run_steps(2);
    }
    assert_eq!(h.state().viewport(i).expect("vp").index, index);
    h.run_steps(3);
}

#[test]
fn m_opens_at_the_slice_being_read_and_m_again_goes_to_the_crosshair() {
    let (_tmp, mut h) = demo_app(64, 12);
    let stack = h.state().viewport(0).expect("vp").set;
    // Reading the 3rd slice from the top: M puts the axial plane there.
    go_to(&mut h, 0, 2);
    let reading = position_text(&h, 0);
    into_mpr(&mut h);
    assert!(description(&h, 0).starts_with("MPR axial"));
    h.run_steps(3);
    assert_eq!(
        position_text(&h, 0),
        reading,
        "the axial plane opens at the slice read"
    );
    // The crosshair's axial line on the coronal runs through that slice's row.
    let c = h.state().crosshair(1).expect("crosshair");
    assert!((c.centre[1] - 2.5).abs() < 1e-6, "{:?}", c.centre);
    // Moved to the 9th in MPR, M again: the stack is on the 9th.
    go_to(&mut h, 0, 8);
    let found = position_text(&h, 0);
    assert_ne!(found, reading);
    h.key_press(egui::Key::M);
    h.run_steps(4);
    assert_eq!(
        h.state().viewport(0).expect("vp").set,
        stack,
        "the layout MPR replaced"
    );
    assert_eq!(h.state().viewport(0).expect("vp").index, 8);
    assert_eq!(position_text(&h, 0), found, "the stack at the crosshair");
}

fn marker(h: &Harness<'static, App>, i: usize, kind: &str) -> String {
    h.state()
        .viewport(i)
        .expect("vp")
        .drawn
        .iter()
        .find(|d| d.kind == kind)
        .map(|d| d.text.clone())
        .unwrap_or_default()
}

#[test]
fn half_a_turn_about_the_vertical_swaps_the_sagittal_left_and_right() {
    let (_tmp, mut h) = demo_app(64, 12);
    into_mpr(&mut h);
    let (left, right) = (marker(&h, 2, "marker_left"), marker(&h, 2, "marker_right"));
    assert_eq!(
        (left.as_str(), right.as_str()),
        ("A", "P"),
        "a sagittal at home"
    );
    let (top, bottom) = (marker(&h, 2, "marker_top"), marker(&h, 2, "marker_bottom"));
    // Two quarter turns of the sagittal's line on the axial (about the
    // patient's long axis).
    for _ in 0..2 {
        let (c, grip) = handle(&h, 0, 2, 1.0);
        drag(&mut h, grip, c + turn(grip - c, 90.0));
    }
    h.run_steps(3);
    assert_eq!(marker(&h, 2, "marker_left"), right, "left and right swap");
    assert_eq!(marker(&h, 2, "marker_right"), left);
    assert_eq!(marker(&h, 2, "marker_top"), top, "head still up");
    assert_eq!(marker(&h, 2, "marker_bottom"), bottom);
}

#[test]
fn s_turns_a_reformat_into_a_mip_slab_that_the_reference_reslicer_agrees_with() {
    let (_tmp, mut h) = demo_app(64, 40);
    into_mpr(&mut h);
    // Activate the coronal, nearest display (one screen pixel per image pixel).
    let coronal = h.state().screen_of(1, [20.0, 14.0]).expect("drawn");
    click(&mut h, coronal);
    assert_eq!(h.state().active(), 1);
    h.key_press(egui::Key::B);
    h.key_press(egui::Key::S);
    h.run_steps(2);
    step_until(&mut h, "the slab drawn", |a| a.decoded().0 > 0);
    h.run_steps(4);
    let label = viewport_label(&h, 1);
    assert!(label.contains("MIP 10.0 mm"), "{label}");
    // The corner's thickness is the slab's, not the thin plane's.
    assert!(label.contains("thk 10.0 mm"), "{label}");
    assert_eq!(label.matches("thk ").count(), 1, "{label}");
    let (checked, bad) = against_reslicer(
        &mut h,
        1,
        Some(Slab {
            thickness_mm: 10.0,
            mode: SlabMode::Mip,
        }),
    );
    assert!(checked > 300, "{checked}");
    assert!(
        bad.is_empty(),
        "{} of {checked} pixels: {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
    let (_, thin) = against_reslicer(&mut h, 1, None);
    assert!(
        !thin.is_empty(),
        "the thin plane would pass too: the comparison proves nothing"
    );
    // S again: MinIP; ] thicker; S twice more: thin again.
    h.key_press(egui::Key::S);
    h.key_press(egui::Key::CloseBracket);
    h.run_steps(3);
    let label = viewport_label(&h, 1);
    assert!(label.contains("MinIP 15.0 mm"), "{label}");
    h.key_press(egui::Key::S);
    h.key_press(egui::Key::S);
    h.run_steps(3);
    let label = viewport_label(&h, 1);
    assert!(
        !label.contains("MIP") && !label.contains("MinIP") && !label.contains("AvgIP"),
        "{label}"
    );
    // S again (a 10 mm MIP), then the slab's face on the axial dragged to
    // 10 mm from the coronal's line: a 20 mm MIP.
    h.key_press(egui::Key::S);
    h.run_steps(3);
    let c = h.state().crosshair(0).expect("crosshair on the axial");
    let line = c
        .lines
        .iter()
        .find(|l| l.plane == 1)
        .expect("the coronal's line");
    let o = line.slab.expect("its slab's faces");
    let centre = h.state().screen_of(0, c.centre).expect("drawn");
    // 40 points along the line from the centre (clear of the centre).
    let along = (h
        .state()
        .screen_of(0, [c.centre[0] + line.dir[0], c.centre[1] + line.dir[1]])
        .expect("drawn")
        - centre)
        .normalized()
        * 40.0;
    let face = h
        .state()
        .screen_of(0, [c.centre[0] + o[0], c.centre[1] + o[1]])
        .expect("drawn")
        - centre;
    let grip = centre + face + along;
    drag(&mut h, grip, grip + face);
    let label = viewport_label(&h, 1);
    assert!(label.contains("MIP 20.0 mm"), "{label}");
}

/// The 3-D view's picture on screen against the reference renderer's picture
/// of the stack (read afresh as a volume) for the same view: (pixels
/// compared, mismatches beyond 2 of 255 in a channel, lit pixels).
fn vr_against_reference(h: &mut Harness<'static, App>, preset: &str) -> (usize, usize, usize) {
    use lightbox::imaging::vr::{self, Mode, TransferFunction};
    let v = h.state().viewport(3).expect("vp").clone();
    let view = v.vr.clone().expect("a 3-D view");
    let ([w, ht], full) = h.state().vr_picture(3).expect("a picture");
    assert!(full, "the full picture");
    let hd = h.state().header_of(0).expect("a plane").clone();
    let dir = hd.path.parent().expect("series folder");
    let scan = lightbox::scan::scan(dir).expect("scan");
    let patients = lightbox::model::build(&scan.headers);
    let set = patients[0].studies[0]
        .series
        .iter()
        .flat_map(|s| &s.display_sets)
        .max_by_key(|d| d.frames.len())
        .expect("the stack");
    let vol = lightbox::volume::load(set, &scan.headers).expect("volume");
    let range = vol.modality_range().expect("range");
    let tf = TransferFunction::named(preset)
        .expect("preset")
        .for_range(range);
    let mut opts = vr::Options::new(Mode::Composite(tf));
    if view.crop != [[0.0; 3], [1.0; 3]] {
        // The crop box's fractions of the volume, in voxel coordinates (the
        // volume's box runs from −0.5 to n − 0.5).
        let at = |a: usize, t: f64| -0.5 + t * vol.dims[a] as f64;
        opts.crop = Some([
            std::array::from_fn(|a| at(a, view.crop[0][a])),
            std::array::from_fn(|a| at(a, view.crop[1][a])),
        ]);
    }
    let want = vr::render(
        &vol,
        &vr::View {
            pan: view.pan,
            azimuth_deg: view.azimuth_deg,
            elevation_deg: view.elevation_deg,
            columns: w,
            rows: ht,
            zoom: view.zoom,
        },
        &opts,
    )
    .expect("reference");
    h.remove_cursor();
    h.run_steps(2);
    let frame = h.render().expect("render");
    let ppp = h.ctx.pixels_per_point();
    let rect = v.rect.expect("drawn");
    let size = egui::vec2(w as f32, ht as f32) / ppp;
    let shown = egui::Rect::from_min_size(((rect.center() - size / 2.0) * ppp).round() / ppp, size);
    let (mut checked, mut bad, mut lit) = (0, 0, 0);
    for y in 0..ht {
        for x in 0..w {
            let at = shown.min + egui::vec2(x as f32 + 0.5, y as f32 + 0.5) / ppp;
            if !rect.shrink(4.0).contains(at)
                || v.drawn.iter().any(|d| d.rect.expand(2.0).contains(at))
            {
                continue;
            }
            let got = frame.get_pixel((at.x * ppp) as u32, (at.y * ppp) as u32).0;
            let k = 3 * (y * w + x);
            checked += 1;
            if (0..3).any(|c| (got[c] as i32 - want.rgb[k + c] as i32).abs() > 2) {
                bad += 1;
            }
            if want.rgb[k] > 40 {
                lit += 1;
            }
        }
    }
    (checked, bad, lit)
}

#[test]
fn the_3d_view_is_the_reference_rendering_and_turns_with_a_drag() {
    let (_tmp, mut h) = demo_app(64, 40);
    into_mpr(&mut h);
    assert_eq!(h.state().layout(), (2, 2));
    step_until(&mut h, "the 3-D view's full picture", |a| {
        a.vr_picture(3).is_some_and(|(_, full)| full)
    });
    let label = viewport_label(&h, 3);
    assert!(label.contains("3D VR bone"), "{label}");
    assert!(label.contains("azimuth 0°"), "{label}");
    let (checked, bad, lit) = vr_against_reference(&mut h, "bone");
    assert!(checked > 10_000, "{checked}");
    assert!(lit > 50, "the bone shows: {lit}");
    assert_eq!(bad, 0, "{bad} of {checked} pixels differ");
    // From the front: the patient's right on the left.
    let edge = |h: &Harness<'static, App>, kind: &str| -> String {
        h.state()
            .viewport(3)
            .expect("vp")
            .drawn
            .iter()
            .find(|d| d.kind == kind)
            .map(|d| d.text.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        (edge(&h, "marker_left"), edge(&h, "marker_right")),
        ("R".into(), "L".into())
    );
    // A drag of 225 points to the left turns it 90° (0.4° a point): from
    // the patient's left, anterior on the left.
    let rect = h.state().viewport(3).expect("vp").rect.expect("drawn");
    let from = rect.center() + egui::vec2(100.0, 0.0);
    drag(&mut h, from, from - egui::vec2(225.0, 0.0));
    let az = h
        .state()
        .viewport(3)
        .expect("vp")
        .vr
        .as_ref()
        .expect("3-D")
        .azimuth_deg;
    assert!((az - 90.0).abs() < 1e-6, "azimuth {az}");
    step_until(&mut h, "the turned picture", |a| {
        a.vr_picture(3).is_some_and(|(_, full)| full)
    });
    assert_eq!(
        (edge(&h, "marker_left"), edge(&h, "marker_right")),
        ("A".into(), "P".into())
    );
    let (checked, bad, _) = vr_against_reference(&mut h, "bone");
    assert_eq!(bad, 0, "turned: {bad} of {checked} pixels differ");
    // P: the soft-tissue preset (with a plane active, P still means the
    // 3-D view, the only one on screen); R: back to the front.
    let mode = |h: &Harness<'static, App>| {
        h.state()
            .viewport(3)
            .and_then(|v| v.vr.as_ref())
            .map(|v| v.mode)
    };
    let axial = h.state().screen_of(0, [10.0, 10.0]).expect("drawn");
    click(&mut h, axial);
    assert_eq!(h.state().active(), 0);
    let before = mode(&h);
    h.key_press(egui::Key::P);
    h.run_steps(1);
    assert_ne!(mode(&h), before, "P with the axial active");
    let over = rect.center();
    click(&mut h, over);
    assert_eq!(h.state().active(), 3);
    h.key_press(egui::Key::R);
    h.run_steps(2);
    step_until(&mut h, "the soft-tissue picture", |a| {
        a.vr_picture(3).is_some_and(|(_, full)| full)
    });
    let label = viewport_label(&h, 3);
    assert!(
        label.contains("3D VR soft-tissue") && label.contains("azimuth 0°"),
        "{label}"
    );
    let (checked, bad, lit) = vr_against_reference(&mut h, "soft-tissue");
    assert!(lit > 1000, "soft tissue shows: {lit}");
    assert_eq!(bad, 0, "soft tissue: {bad} of {checked} pixels differ");
    // The crop box: its columns' high face (the patient's left, on the
    // picture's right from the front) dragged halfway across; then a middle
    // drag pans. The picture is the reference's with that box and pan.
    h.hover_at(over);
    h.run_steps(2);
    let (c, [w, ht]) = h.state().vr_crop(3).expect("the crop box");
    let ppp = h.ctx.pixels_per_point();
    let size = egui::vec2(w as f32, ht as f32) / ppp;
    let min = ((rect.center() - size / 2.0) * ppp).round() / ppp;
    let (_, at, dir) = *c.faces.iter().find(|f| f.0 == (0, 1)).expect("the face");
    let grip = min + egui::vec2(at[0], at[1]) / ppp;
    let half = egui::vec2(dir[0], dir[1]) / ppp * 0.5;
    drag(&mut h, grip, grip - half);
    let crop = h
        .state()
        .viewport(3)
        .expect("vp")
        .vr
        .as_ref()
        .expect("3-D")
        .crop;
    assert!((crop[1][0] - 0.5).abs() < 0.05, "{crop:?}");
    assert_eq!(crop[0], [0.0; 3]);
    h.event(egui::Event::PointerButton {
        pos: over,
        button: egui::PointerButton::Middle,
        pressed: true,
        modifiers: egui::Modifiers::NONE,
    });
    h.step();
    for k in 1..=4 {
        h.hover_at(over + egui::vec2(0.0, 10.0 * k as f32));
        h.step();
    }
    h.event(egui::Event::PointerButton {
        pos: over + egui::vec2(0.0, 40.0),
        button: egui::PointerButton::Middle,
        pressed: false,
        modifiers: egui::Modifiers::NONE,
    });
    h.run_steps(3);
    let pan = h
        .state()
        .viewport(3)
        .expect("vp")
        .vr
        .as_ref()
        .expect("3-D")
        .pan;
    assert!(pan[1] < -0.05 && pan[0].abs() < 1e-9, "{pan:?}");
    step_until(&mut h, "the cropped, panned picture", |a| {
        a.vr_picture(3).is_some_and(|(_, full)| full)
    });
    let (checked, bad, _) = vr_against_reference(&mut h, "soft-tissue");
    assert_eq!(
        bad, 0,
        "cropped and panned: {bad} of {checked} pixels differ"
    );
    // The pointer elsewhere, the box is hidden but the corner says so.
    let axial = h.state().screen_of(0, [10.0, 10.0]).expect("drawn");
    h.hover_at(axial);
    h.run_steps(2);
    assert!(
        viewport_label(&h, 3).contains("cropped"),
        "{}",
        viewport_label(&h, 3)
    );
    // M and M again: the 3-D view as the reader left it.
    let left = h
        .state()
        .viewport(3)
        .and_then(|v| v.vr.clone())
        .expect("3-D");
    h.key_press(egui::Key::M);
    h.run_steps(2);
    assert!(h.state().viewport(3).and_then(|v| v.vr.as_ref()).is_none());
    h.key_press(egui::Key::M);
    h.run_steps(2);
    assert_eq!(h.state().viewport(3).and_then(|v| v.vr.clone()), Some(left));
}

/// On a hardware GPU the 3-D view is ray-cast in the frame by `render::vr`
/// (here forced onto lavapipe): what reaches the screen is the reference
/// renderer's picture, before and after a turn, and with a crop box.
#[test]
fn the_3d_view_drawn_on_the_gpu_is_the_reference_rendering() {
    let (_tmp, launch) = demo_launch(64, 40);
    let mut h = viewer(lightbox::ui::Launch {
        vr_on_gpu: Some(true),
        ..launch
    });
    wait_decoded(&mut h);
    into_mpr(&mut h);
    step_until(&mut h, "the 3-D view planned", |a| {
        a.vr_picture(3).is_some_and(|(_, full)| full)
    });
    let label = viewport_label(&h, 3);
    assert!(label.contains("3D VR bone"), "{label}");
    let (checked, bad, lit) = vr_against_reference(&mut h, "bone");
    assert!(checked > 10_000, "{checked}");
    assert!(lit > 50, "the bone shows: {lit}");
    assert_eq!(bad, 0, "{bad} of {checked} pixels differ");
    // Turned 90° by a drag, then the soft-tissue preset.
    let rect = h.state().viewport(3).expect("vp").rect.expect("drawn");
    let from = rect.center() + egui::vec2(100.0, 0.0);
    drag(&mut h, from, from - egui::vec2(225.0, 0.0));
    step_until(&mut h, "the turned view planned", |a| {
        a.vr_picture(3).is_some_and(|(_, full)| full)
    });
    let (checked, bad, _) = vr_against_reference(&mut h, "bone");
    assert_eq!(bad, 0, "turned: {bad} of {checked} pixels differ");
    click(&mut h, rect.center());
    h.key_press(egui::Key::P);
    h.run_steps(2);
    step_until(&mut h, "the soft-tissue view planned", |a| {
        a.vr_picture(3).is_some_and(|(_, full)| full)
    });
    let (checked, bad, lit) = vr_against_reference(&mut h, "soft-tissue");
    assert!(lit > 1000, "soft tissue shows: {lit}");
    assert_eq!(bad, 0, "soft tissue: {bad} of {checked} pixels differ");
    // The crop box's high column face dragged halfway in.
    h.hover_at(rect.center());
    h.run_steps(2);
    let (c, [w, ht]) = h.state().vr_crop(3).expect("the crop box");
    let ppp = h.ctx.pixels_per_point();
    let size = egui::vec2(w as f32, ht as f32) / ppp;
    let min = ((rect.center() - size / 2.0) * ppp).round() / ppp;
    let (_, at, dir) = *c.faces.iter().find(|f| f.0 == (0, 1)).expect("the face");
    let grip = min + egui::vec2(at[0], at[1]) / ppp;
    drag(&mut h, grip, grip - egui::vec2(dir[0], dir[1]) / ppp * 0.5);
    step_until(&mut h, "the cropped view planned", |a| {
        a.vr_picture(3).is_some_and(|(_, full)| full)
    });
    let (checked, bad, _) = vr_against_reference(&mut h, "soft-tissue");
    assert_eq!(bad, 0, "cropped: {bad} of {checked} pixels differ");
}

/// The distances in the measurement list: (value in mm, its label).
fn distances(h: &Harness<'static, App>) -> Vec<(f64, String)> {
    use egui_kittest::kittest::{NodeT, Queryable};
    h.query_all_by_label_contains("mm (Pixel Spacing)")
        .filter_map(|n| n.accesskit_node().label())
        .filter_map(|l| Some((l.split_whitespace().next()?.parse().ok()?, l)))
        .collect()
}

#[test]
fn a_length_on_the_coronal_is_kept_in_patient_space_and_comes_back_after_reopening() {
    let (_tmp, launch) = demo_launch(64, 40);
    let mut h = viewer(launch.clone());
    wait_decoded(&mut h);
    into_mpr(&mut h);
    // L, then a length on the coronal, away from the crosshair's lines: 40
    // columns across and 12 rows down.
    h.key_press(egui::Key::L);
    h.run_steps(2);
    let (a, b) = ([10.5, 5.5], [50.5, 17.5]);
    let from = h.state().screen_of(1, a).expect("drawn");
    let to = h.state().screen_of(1, b).expect("drawn");
    drag(&mut h, from, to);
    let hd = h.state().header_of(1).expect("coronal").clone();
    let [rs, cs] = hd.frames[0].pixel_spacing.expect("spacing");
    let want = ((40.0 * cs).powi(2) + (12.0 * rs).powi(2)).sqrt();
    let got = distances(&h);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        (got[0].0 - want).abs() < 0.05 * want.max(1.0),
        "{got:?} vs {want}"
    );
    let coronal_index = h.state().viewport(1).expect("vp").index;
    // Turning the coronal away takes the length off it (it lies on no plane
    // shown); X brings the plane, and the length, back.
    let (c, grip) = handle(&h, 0, 1, 1.0);
    drag(&mut h, grip, c + turn(grip - c, 25.0));
    assert!(
        distances(&h).is_empty(),
        "not on a turned plane: {:?}",
        distances(&h)
    );
    h.key_press(egui::Key::X);
    h.run_steps(3);
    assert_eq!(distances(&h).len(), 1, "back with its plane");
    drop(h);

    // Reopened: the same length on the same coronal image after M.
    let mut h = viewer(launch);
    wait_decoded(&mut h);
    into_mpr(&mut h);
    h.run_steps(2);
    let again = distances(&h);
    assert_eq!(again.len(), 1, "kept in the cache: {again:?}");
    assert!((again[0].0 - got[0].0).abs() < 1e-6, "{again:?} vs {got:?}");
    assert_eq!(h.state().viewport(1).expect("vp").index, coronal_index);
    assert!(
        again[0].1.contains(&format!("im {}", coronal_index + 1)),
        "{}",
        again[0].1
    );
}

/// A 48² stack of `heights` (mm), each slice shifted `shift` mm along y per
/// mm of height (a gantry tilt), of a field that varies along all three axes,
/// imported into a fresh cache and opened 1×1.
fn odd_stack(
    seed: &str,
    heights: &[f64],
    shift: f64,
) -> (tempfile::TempDir, Harness<'static, App>) {
    use lightbox::store::{ImportMode, Store};
    use lightbox::ui::Launch;
    let tmp = common::tempdir();
    let dir = tmp.path().join("src");
    let mut spec = lightbox::synth::SeriesSpec::axial(seed, heights.len(), 48, 1.0);
    let origin = spec.positions[0];
    spec.positions = heights
        .iter()
        .map(|z| [origin[0], origin[1] + shift * z, *z])
        .collect();
    let zs = heights.to_vec();
    lightbox::synth::write_series(&dir, &spec, |k, c, r| {
        let y = r as f64 + shift * zs[k];
        (1024.0 + 6.0 * zs[k] + 7.0 * c as f64 - 5.0 * y).round() as i32
    })
    .expect("write");
    let cache = tmp.path().join("cache");
    let mut store = Store::open(&cache).expect("cache");
    store.import(&[dir], ImportMode::Copy).expect("import");
    let study = store.studies().expect("studies")[0].study_uid.clone();
    drop(store);
    let launch = Launch {
        open_studies: vec![study],
        layout: (1, 1),
        export_dir: tmp.path().join("exports"),
        ..Launch::new(cache)
    };
    let mut h = viewer(launch);
    wait_decoded(&mut h);
    (tmp, h)
}

#[test]
fn a_tilted_and_an_uneven_stack_are_cut_in_patient_space_and_say_so() {
    // 20° of gantry tilt: the slices slide 0.36 mm along y per mm.
    let heights: Vec<f64> = (0..40).map(|k| k as f64 * 1.5).collect();
    let (_tmp, mut h) = odd_stack("tilted-mpr", &heights, 20f64.to_radians().tan());
    into_mpr(&mut h);
    let label = viewport_label(&h, 1);
    assert!(label.contains("gantry tilt 20.0°"), "{label}");
    for v in [1, 2] {
        // Nearest display: one value per image pixel.
        let inside = h.state().screen_of(v, [5.0, 3.0]).expect("drawn");
        click(&mut h, inside);
        h.key_press(egui::Key::B);
        h.run_steps(3);
        let (checked, bad) = against_reslicer(&mut h, v, None);
        assert!(checked > 100, "viewport {v}: {checked}");
        assert!(
            bad.is_empty(),
            "tilted, viewport {v}: {:?}",
            &bad[..bad.len().min(5)]
        );
    }
    drop(h);
    // Uneven: 1 mm apart, then 3 mm apart.
    let heights: Vec<f64> = (0..30)
        .map(|k| {
            if k < 15 {
                k as f64
            } else {
                14.0 + 3.0 * (k - 14) as f64
            }
        })
        .collect();
    let (_tmp, mut h) = odd_stack("uneven-mpr", &heights, 0.0);
    into_mpr(&mut h);
    let label = viewport_label(&h, 1);
    assert!(label.contains("uneven slices"), "{label}");
    let inside = h.state().screen_of(1, [5.0, 3.0]).expect("drawn");
    click(&mut h, inside);
    h.key_press(egui::Key::B);
    h.run_steps(3);
    let (checked, bad) = against_reslicer(&mut h, 1, None);
    assert!(checked > 100, "{checked}");
    assert!(bad.is_empty(), "uneven: {:?}", &bad[..bad.len().min(5)]);
}
