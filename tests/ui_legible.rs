//! What is written on an image reads on any image and never collides, checked as
//! a reader would look at it, through `egui_kittest` with the wgpu renderer on
//! lavapipe: on a white and on a black image the corner text, orientation markers,
//! scale bar label, lossy note and probe read-out have a dark edge around their colour (the
//! contrast measured in the rendered frame); no two annotation boxes overlap, none
//! enters the scroll bar's strip or leaves the viewport, at 1920×1080, at 1400×900
//! and in MPR (2×2, and three narrow planes); a DX shows R/L/H/F from its Patient Orientation, and they turn
//! with the image.

mod common;
#[path = "common/viewer.rs"]
mod viewer;

use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::Harness;
use lightbox::store::{ImportMode, Store};
use lightbox::synth;
use lightbox::ui::command::Command;
use lightbox::ui::viewport::Drawn;
use lightbox::ui::{App, Launch, theme};

/// The viewer on `studies` imported from `src` into a fresh cache.
fn open(
    tmp: &tempfile::TempDir,
    studies: Vec<String>,
    layout: (usize, usize),
    size: (f32, f32),
) -> Harness<'static, App> {
    let cache = tmp.path().join("cache");
    Store::open(&cache)
        .expect("cache")
        .import(&[tmp.path().join("src")], ImportMode::Copy)
        .expect("import");
    let launch = Launch {
        open_studies: studies,
        layout,
        export_dir: tmp.path().join("exports"),
        ..Launch::new(cache)
    };
    let mut h = viewer::viewer_sized(launch, size.0, size.1);
    viewer::wait_decoded(&mut h);
    h
}

/// The demo CT and its prior (1×2), as `lightbox demo` opens them.
fn demo(size: (f32, f32)) -> (tempfile::TempDir, Harness<'static, App>) {
    let tmp = common::tempdir();
    let (_, current, prior) = synth::write_demo(&tmp.path().join("src"), 12, 64).expect("demo");
    let h = open(&tmp, vec![current, prior], (1, 2), size);
    (tmp, h)
}

/// A one-slice CT of 1024² pixels all at `stored` (HU = stored − 1024), under the
/// soft-tissue window 40/400: white at 4095, black at 0.
fn flat_ct(stored: i32) -> (tempfile::TempDir, Harness<'static, App>) {
    let tmp = common::tempdir();
    let mut spec = synth::SeriesSpec::axial(&format!("flat-{stored}"), 1, 1024, 1.0);
    spec.patient_name = "FLAT^IMAGE".into();
    let files =
        synth::write_series(&tmp.path().join("src"), &spec, |_, _, _| stored).expect("write");
    // Said to have been through lossy compression: the warning is written too.
    for f in files {
        use dicom_core::{DataElement, PrimitiveValue, VR};
        use dicom_dictionary_std::tags;
        let mut obj = dicom_object::open_file(&f).expect("open");
        for (tag, vr, v) in [
            (tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "01"),
            (tags::LOSSY_IMAGE_COMPRESSION_RATIO, VR::DS, "10"),
            (tags::LOSSY_IMAGE_COMPRESSION_METHOD, VR::CS, "ISO_10918_1"),
        ] {
            obj.put(DataElement::new(tag, vr, PrimitiveValue::from(v)));
        }
        obj.write_to_file(&f).expect("write");
    }
    let h = open(&tmp, vec![spec.study_uid.clone()], (1, 1), (1100.0, 800.0));
    (tmp, h)
}

fn drawn(h: &Harness<'static, App>, i: usize) -> Vec<Drawn> {
    h.state().viewport(i).expect("vp").drawn.clone()
}

fn find<'a>(d: &'a [Drawn], kind: &str) -> &'a Drawn {
    d.iter()
        .find(|b| b.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} in {:?}", kinds(d)))
}

fn kinds(d: &[Drawn]) -> Vec<&'static str> {
    d.iter().map(|b| b.kind).collect()
}

/// Relative luminance (WCAG) of an sRGB pixel.
fn luminance(p: [u8; 4]) -> f64 {
    let lin = |c: u8| {
        let c = c as f64 / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(p[0]) + 0.7152 * lin(p[1]) + 0.0722 * lin(p[2])
}

/// Inside box `b` of the rendered frame: the pixels of the box's own colour, the
/// dark edge's pixels, how many of the former have the latter within 2 pixels,
/// and the contrast ratio between the brightest and the darkest of them.
fn measure(frame: &image::RgbaImage, ppp: f32, b: &Drawn) -> (usize, usize, usize, f64) {
    let (x0, y0) = ((b.rect.min.x * ppp) as i64, (b.rect.min.y * ppp) as i64);
    let (x1, y1) = ((b.rect.max.x * ppp) as i64, (b.rect.max.y * ppp) as i64);
    let at = |x: i64, y: i64| {
        (x >= 0 && y >= 0 && (x as u32) < frame.width() && (y as u32) < frame.height())
            .then(|| frame.get_pixel(x as u32, y as u32).0)
    };
    let want = b.color.to_array();
    let is_text = |p: [u8; 4]| (0..3).all(|k| (p[k] as i32 - want[k] as i32).abs() <= 40);
    let is_dark = |p: [u8; 4]| luminance(p) < 0.02;
    let (mut text, mut dark, mut edged) = (0, 0, 0);
    let (mut hi, mut lo) = (0.0f64, 1.0f64);
    for y in y0..y1 {
        for x in x0..x1 {
            let Some(p) = at(x, y) else { continue };
            if is_dark(p) {
                dark += 1;
                lo = lo.min(luminance(p));
            }
            if is_text(p) {
                text += 1;
                hi = hi.max(luminance(p));
                let near = (-2..=2)
                    .flat_map(|dy| (-2..=2).map(move |dx| (dx, dy)))
                    .any(|(dx, dy)| at(x + dx, y + dy).is_some_and(is_dark));
                edged += near as usize;
            }
        }
    }
    (text, dark, edged, (hi + 0.05) / (lo + 0.05))
}

/// Viewport 0 of a flat image zoomed 1:1 (the image covers the viewport), the
/// pointer over it: every box written reads — its colour is there, nearly all of
/// it edged in near-black, contrast at least 4.5:1.
fn readable_on(stored: i32, background: &str) {
    let (_tmp, mut h) = flat_ct(stored);
    h.state_mut().handle(Command::OneToOne);
    h.run_steps(2);
    let rect = h.state().viewport(0).expect("vp").rect.expect("drawn");
    let (a, b) = (
        h.state().screen_of(0, [0.0, 0.0]).expect("drawn"),
        h.state().screen_of(0, [1024.0, 1024.0]).expect("drawn"),
    );
    assert!(
        a.x <= rect.min.x && a.y <= rect.min.y && b.x >= rect.max.x && b.y >= rect.max.y,
        "the image covers the viewport: {a:?}–{b:?} over {rect:?}"
    );
    h.hover_at(rect.center());
    h.run_steps(3);
    let ppp = h.ctx.pixels_per_point();
    let frame = h.render().expect("render");
    // The image really is {background} here.
    let middle = frame
        .get_pixel(
            (rect.center().x * ppp) as u32,
            (rect.center().y * ppp + 40.0) as u32,
        )
        .0;
    let want_lum = if stored > 0 { 1.0 } else { 0.0 };
    assert!(
        (luminance(middle) - want_lum).abs() < 0.05,
        "a {background} image: {middle:?}"
    );
    let d = drawn(&h, 0);
    for kind in [
        "top_left",
        "top_right",
        "bottom_left",
        "bottom_right",
        "marker_left",
        "marker_right",
        "marker_top",
        "marker_bottom",
        "scale_label",
        "probe",
        "lossy",
    ] {
        let b = find(&d, kind);
        let (text, dark, edged, contrast) = measure(&frame, ppp, b);
        eprintln!(
            "{background} {kind} {:?}: {text} text pixels, {dark} dark, {edged} edged, contrast {contrast:.1}",
            b.text
        );
        assert!(
            text >= 5 && dark >= 5,
            "{kind} on {background}: {text} pixels of its colour, {dark} dark ones"
        );
        assert!(
            edged * 10 >= text * 9,
            "{kind} on {background}: only {edged} of {text} text pixels have a dark edge"
        );
        assert!(
            contrast > 4.5,
            "{kind} on {background}: contrast {contrast:.2}"
        );
    }
}

#[test]
fn annotations_read_on_a_white_image() {
    readable_on(4095, "white");
}

#[test]
fn annotations_read_on_a_black_image() {
    readable_on(0, "black");
}

/// Viewport `i`'s boxes, the pointer over it: none overlaps another, all lie in
/// the viewport less the scroll bar's strip; the corners, markers, scale bar and
/// probe are all there (nothing dropped to make room).
fn laid_out(h: &mut Harness<'static, App>, i: usize, what: &str) {
    let rect = h.state().viewport(i).expect("vp").rect.expect("drawn");
    h.hover_at(rect.center());
    h.run_steps(3);
    let d = drawn(h, i);
    let area = egui::Rect::from_min_max(
        rect.min,
        egui::pos2(rect.max.x - theme::SCROLL_STRIP, rect.max.y),
    );
    for kind in [
        "top_left",
        "top_right",
        "bottom_left",
        "bottom_right",
        "marker_left",
        "marker_right",
        "marker_top",
        "marker_bottom",
        "scale",
        "scale_label",
        "probe",
    ] {
        let b = find(&d, kind);
        assert!(
            !b.text.trim().is_empty(),
            "{what}, viewport {i}: {kind} is empty"
        );
    }
    for b in &d {
        assert!(
            area.contains_rect(b.rect),
            "{what}, viewport {i}: {} {:?} at {:?} is not inside {area:?}",
            b.kind,
            b.text,
            b.rect
        );
    }
    for (k, a) in d.iter().enumerate() {
        for b in &d[k + 1..] {
            let o = a.rect.intersect(b.rect);
            assert!(
                o.width() <= 0.0 || o.height() <= 0.0,
                "{what}, viewport {i}: {} {:?} at {:?} overlaps {} {:?} at {:?}",
                a.kind,
                a.text,
                a.rect,
                b.kind,
                b.text,
                b.rect
            );
        }
    }
    eprintln!("{what}, viewport {i}: {:?}", kinds(&d));
}

#[test]
fn annotation_boxes_never_overlap_at_1920_by_1080() {
    let (_tmp, mut h) = demo((1920.0, 1080.0));
    assert_eq!(h.state().layout(), (1, 2));
    for i in 0..2 {
        laid_out(&mut h, i, "1920×1080");
    }
}

#[test]
fn annotation_boxes_never_overlap_at_1400_by_900_and_in_mpr() {
    let (_tmp, mut h) = demo((1400.0, 900.0));
    for i in 0..2 {
        laid_out(&mut h, i, "1400×900");
    }
    let centre = h
        .state()
        .viewport(0)
        .expect("vp")
        .rect
        .expect("drawn")
        .center();
    h.hover_at(centre);
    h.step();
    h.key_press(egui::Key::M);
    h.run_steps(2);
    let start = Instant::now();
    while (0..3).any(|i| h.state().viewport(i).is_none_or(|v| v.last_drawn.is_none())) {
        assert!(start.elapsed() < Duration::from_secs(60), "the reformats");
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    h.run_steps(2);
    assert_eq!(h.state().layout(), (2, 2));
    for i in 0..3 {
        laid_out(&mut h, i, "MPR 2×2");
    }
    // A narrower window: narrow viewports, whose corners are shortened, not
    // run together (the long study line is cut with "…" or loses its
    // trailing fields).
    h.set_size(egui::vec2(1100.0, 900.0));
    h.run_steps(3);
    for i in 0..3 {
        let w = h
            .state()
            .viewport(i)
            .expect("vp")
            .rect
            .expect("drawn")
            .width();
        assert!(w < 400.0, "a narrow viewport: {w}");
        laid_out(&mut h, i, "MPR, narrow");
    }
    let d = drawn(&h, 1);
    let tr = find(&d, "top_right");
    let tl = find(&d, "top_left");
    assert!(tl.rect.max.x < tr.rect.min.x, "{tl:?} {tr:?}");
}

#[test]
fn a_dx_shows_markers_from_patient_orientation_that_turn_with_it() {
    let tmp = common::tempdir();
    let mut spec = synth::SeriesSpec::axial("dx-orientation", 1, 256, 1.0);
    spec.modality = "DX".into();
    spec.sop_class = "1.2.840.10008.5.1.4.1.1.1.1".into(); // DX for presentation
    spec.imager_spacing_only = true; // no Image Orientation; Patient Orientation L\F
    spec.pixel_spacing = [0.5, 0.5];
    spec.rescale = None;
    spec.windows = vec![(2048.0, 4096.0, "FULL".into())];
    spec.slice_thickness = None;
    synth::write_series(&tmp.path().join("src"), &spec, |_, c, r| {
        ((c + r) * 8) as i32
    })
    .expect("write");
    let mut h = open(&tmp, vec![spec.study_uid.clone()], (1, 1), (1400.0, 900.0));
    let header = h.state().header_of(0).expect("image").clone();
    assert_eq!(header.modality.as_deref(), Some("DX"));
    assert!(header.frame(0).expect("frame").image_orientation.is_none());
    assert_eq!(
        header.patient_orientation,
        Some(["L".to_string(), "F".to_string()])
    );
    let rect = h.state().viewport(0).expect("vp").rect.expect("drawn");
    let markers = |h: &Harness<'static, App>| {
        let d = drawn(h, 0);
        let c = rect.center();
        let at = |kind: &str| {
            let b = find(&d, kind);
            let m = b.rect.center();
            // Each marker sits at its own edge of the viewport.
            let ok = match kind {
                "marker_left" => m.x < c.x - rect.width() / 3.0,
                "marker_right" => m.x > c.x + rect.width() / 3.0,
                "marker_top" => m.y < c.y - rect.height() / 3.0,
                _ => m.y > c.y + rect.height() / 3.0,
            };
            assert!(ok, "{kind} {:?} at {m:?} in {rect:?}", b.text);
            b.text.clone()
        };
        [
            at("marker_left"),
            at("marker_right"),
            at("marker_top"),
            at("marker_bottom"),
        ]
    };
    // Rows run toward the patient's left, columns toward the feet.
    assert_eq!(markers(&h), ["R", "L", "H", "F"].map(String::from));
    h.state_mut().handle(Command::RotateClockwise);
    h.run_steps(2);
    // A quarter turn clockwise: the right side comes to the top, the feet to the left.
    assert_eq!(markers(&h), ["F", "H", "R", "L"].map(String::from));
}
