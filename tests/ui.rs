//! The viewer driven like a user would, through `egui_kittest` (AccessKit labels,
//! real pointer and key events) with the wgpu renderer on lavapipe: open the demo
//! study and its prior, scroll, window, measure a known distance on the phantom,
//! export, change the layout, search the study list, and check after slice jumps
//! that the pixels on screen are the CPU rendering of the slice annotated.

mod common;
#[path = "common/viewer.rs"]
mod viewer;

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use lightbox::store::{ImportMode, Store};
use lightbox::synth;
use lightbox::ui::{App, Launch};
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
    h.run_steps(2);
}

/// The values of the distance measurements listed (in mm, Pixel Spacing).
fn distances(h: &Harness<'static, App>) -> Vec<(f64, String)> {
    h.query_all_by_label_contains("mm (Pixel Spacing)")
        .filter_map(|n| n.accesskit_node().label())
        .filter_map(|l| Some((l.split_whitespace().next()?.parse().ok()?, l)))
        .collect()
}

/// The values of the angles listed whose label starts with `prefix`, in degrees.
fn degrees(h: &Harness<'static, App>, prefix: &str) -> Vec<f64> {
    h.query_all_by_label_contains("°")
        .filter_map(|n| n.accesskit_node().label())
        .filter_map(|l| {
            l.strip_prefix(prefix)?
                .split('°')
                .next()
                .and_then(|v| v.trim().parse().ok())
        })
        .collect()
}

/// Patient (x, y) in mm on viewport 0's slice → its image point (column, row),
/// pixel centres at +0.5; and the pixel spacing (row, column).
fn patient_to_image(
    h: &Harness<'static, App>,
) -> (impl Fn(f64, f64) -> [f64; 2] + use<>, [f64; 2]) {
    let header = h.state().header_of(0).expect("image");
    let f = header.frame(0).expect("frame");
    let (p, s) = (
        f.image_position.expect("pos"),
        f.pixel_spacing.expect("spacing"),
    );
    (
        move |x: f64, y: f64| [(x - p[0]) / s[1] + 0.5, (y - p[1]) / s[0] + 0.5],
        s,
    )
}

/// Choose `item` in the toolbar's export menu.
fn export_menu(h: &mut Harness<'static, App>, item: &str) {
    h.get_by_label("export").click();
    h.run_steps(2);
    h.get_by_label(item).click();
    h.run_steps(2);
}

/// The file or folder in `dir` whose name starts with `name`.
fn exported(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    std::fs::read_dir(dir)
        .expect("export folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(name))
        })
        .unwrap_or_else(|| panic!("no {name}* in {}", dir.display()))
}

#[test]
fn the_demo_hangs_with_its_prior_and_scrolling_and_presets_follow() {
    let (_tmp, mut h) = demo_app(128, 24);
    // The CT and its prior hang side by side, each at its middle slice.
    assert_eq!(h.state().layout(), (1, 2));
    let (v0, v1) = (
        h.state().viewport(0).expect("vp").clone(),
        h.state().viewport(1).expect("vp").clone(),
    );
    assert_eq!((v0.index, v1.index), (12, 6));
    let d0 = h.state().header_of(0).expect("image").study_date.clone();
    let d1 = h.state().header_of(1).expect("image").study_date.clone();
    assert!(d0 > d1, "current ({d0:?}) left, prior ({d1:?}) right");

    // Scroll: three images down with the arrow keys in the active viewport.
    let centre = h.state().screen_of(0, [64.0, 64.0]).expect("drawn");
    h.hover_at(centre);
    h.step();
    for _ in 0..3 {
        h.key_press(egui::Key::ArrowDown);
        h.step();
    }
    assert_eq!(h.state().viewport(0).expect("vp").index, 15);

    // Window: the lung preset by its key, then the toolbar button for bone.
    h.key_press(egui::Key::Num4);
    h.step();
    let w = h
        .state()
        .viewport(0)
        .expect("vp")
        .window
        .clone()
        .expect("window");
    assert_eq!((w.center, w.width), (-600.0, 1500.0));
    h.get_by_label("bone").click();
    h.run_steps(2);
    let w = h
        .state()
        .viewport(0)
        .expect("vp")
        .window
        .clone()
        .expect("window");
    assert_eq!((w.center, w.width), (400.0, 1800.0));
    // The prior (same modality) is read at the same window.
    let w1 = h.state().viewport(1).expect("vp").window.clone();
    assert_eq!(w1.map(|w| (w.center, w.width)), Some((400.0, 1800.0)));
}

#[test]
fn a_distance_is_measured_edited_and_deleted() {
    let (tmp, mut h) = demo_app(128, 24);
    let cache_dir = tmp.path().join("cache");
    // Measure the phantom's body, 320 mm wide at y = 0, edge to edge.
    let header = h.state().header_of(0).expect("image").clone();
    let (at, s) = patient_to_image(&h);
    let (a, b) = (
        h.state().screen_of(0, at(-160.0, 0.0)).expect("a"),
        h.state().screen_of(0, at(160.0, 0.0)).expect("b"),
    );
    h.key_press(egui::Key::L);
    h.step();
    drag(&mut h, a, b);
    let (mm, label) = distances(&h)
        .into_iter()
        .next()
        .expect("the measurement is listed");
    // Half a pixel of error at most (the pointer lands on screen points).
    assert!((mm - 320.0).abs() < 0.5 * s[1], "{label}");

    // Edit it: drag its right end 20 mm to the left; the value follows, and the
    // cache keeps the moved point (in patient coordinates).
    let c = h.state().screen_of(0, at(140.0, 0.0)).expect("c");
    drag(&mut h, b, c);
    let (mm, label) = distances(&h)
        .into_iter()
        .next()
        .expect("the measurement is listed");
    assert!((mm - 300.0).abs() < 0.5 * s[1], "{label}");
    let stored = Store::open(&cache_dir)
        .expect("cache")
        .measurements_of(std::slice::from_ref(&header.sop_instance_uid))
        .expect("measurements");
    assert_eq!(stored.len(), 1);
    let x_end = stored[0].points[1][0];
    assert!(
        (x_end - 140.0).abs() < 0.5 * s[1],
        "stored end at x = {x_end}"
    );
    // Delete removes it, from the cache too.
    h.hover_at(c);
    h.step();
    h.key_press(egui::Key::Delete);
    h.run_steps(2);
    assert!(
        Store::open(&cache_dir)
            .expect("cache")
            .measurements_of(std::slice::from_ref(&header.sop_instance_uid))
            .expect("measurements")
            .is_empty()
    );
}

#[test]
fn measurements_through_a_turned_image_keep_their_values() {
    let (_tmp, mut h) = demo_app(128, 24);
    let (at, s) = patient_to_image(&h);
    // Rotate a quarter turn and flip horizontally: the patient's left, which was on
    // the screen's right, now points down; measuring the body (320 mm wide at
    // y = 0) through the turned image gives its length.
    let centre = h.state().screen_of(0, [64.0, 64.0]).expect("drawn");
    h.hover_at(centre);
    h.step();
    h.key_press(egui::Key::O);
    h.step();
    h.key_press(egui::Key::H);
    h.run_steps(2);
    let (a, b) = (
        h.state().screen_of(0, at(-160.0, 0.0)).expect("a"),
        h.state().screen_of(0, at(160.0, 0.0)).expect("b"),
    );
    assert!(b.y - a.y > 100.0 && (b.x - a.x).abs() < 1.0, "{a:?} {b:?}");
    h.key_press(egui::Key::L);
    h.step();
    drag(&mut h, a, b);
    let values: Vec<f64> = distances(&h).into_iter().map(|(v, _)| v).collect();
    assert_eq!(values.len(), 1, "{values:?}");
    assert!(
        values.iter().all(|v| (v - 320.0).abs() < 0.5 * s[1]),
        "{values:?}"
    );

    // An angle: drag one arm to the vertex, click the end of the other: a right
    // angle in the patient, however the image is turned.
    h.key_press(egui::Key::A);
    h.step();
    let pt =
        |h: &Harness<'static, App>, x: f64, y: f64| h.state().screen_of(0, at(x, y)).expect("pt");
    let (arm, vertex, other) = (pt(&h, -100.0, 0.0), pt(&h, 0.0, 0.0), pt(&h, 0.0, -80.0));
    drag(&mut h, arm, vertex);
    h.hover_at(other);
    h.step();
    h.drag_at(other);
    h.step();
    h.drop_at(other);
    h.run_steps(2);
    let a = degrees(&h, "");
    assert!(a.len() == 1 && (a[0] - 90.0).abs() < 1.0, "{a:?}");

    // A Cobb angle: two endplates drawn as lines, tilted +20° and −15°.
    h.key_press(egui::Key::C);
    h.step();
    let tilt = |deg: f64, y: f64| {
        let (dx, dy) = (deg.to_radians().cos() * 60.0, deg.to_radians().sin() * 60.0);
        ((-dx, y - dy), (dx, y + dy))
    };
    for (deg, y) in [(20.0, -60.0), (-15.0, 60.0)] {
        let ((x0, y0), (x1, y1)) = tilt(deg, y);
        let (p, q) = (pt(&h, x0, y0), pt(&h, x1, y1));
        drag(&mut h, p, q);
    }
    let c = degrees(&h, "Cobb ");
    assert!(c.len() == 1 && (c[0] - 35.0).abs() < 1.0, "{c:?}");
}

#[test]
fn the_image_export_is_the_turned_image_at_its_window() {
    let (tmp, mut h) = demo_app(128, 24);
    let export_dir = tmp.path().join("exports");
    // The bone window, a quarter turn clockwise and a horizontal flip.
    h.get_by_label("bone").click();
    h.run_steps(2);
    let centre = h.state().screen_of(0, [64.0, 64.0]).expect("drawn");
    h.hover_at(centre);
    h.step();
    h.key_press(egui::Key::O);
    h.step();
    h.key_press(egui::Key::H);
    h.run_steps(2);
    let v0 = h.state().viewport(0).expect("vp").clone();
    assert_eq!(
        (v0.rotation, v0.flip_h, v0.window.as_ref().map(|w| w.width)),
        (1, true, Some(1800.0))
    );
    // Export the image as shown (turned and flipped, bone window), without
    // annotations: the spine (posterior, down in the file) is on the right after a
    // quarter turn clockwise and a horizontal flip, and the grey levels are the
    // CPU reference's for that window.
    export_menu(&mut h, "image as PNG");
    let shown = image::open(exported(&export_dir, "CT-"))
        .expect("png")
        .to_luma8();
    let (w, hgt) = shown.dimensions();
    let bright: Vec<(u32, u32)> = shown
        .enumerate_pixels()
        .filter(|(_, _, p)| p.0[0] > 200)
        .map(|(x, y, _)| (x, y))
        .collect();
    let cx = bright.iter().map(|p| p.0 as f64).sum::<f64>() / bright.len() as f64;
    let cy = bright.iter().map(|p| p.1 as f64).sum::<f64>() / bright.len() as f64;
    assert!(
        cx > 0.6 * w as f64 && (cy / hgt as f64 - 0.5).abs() < 0.1,
        "spine at {cx}, {cy}"
    );
    let reference = {
        let mut v: Vec<u8> = reference_of(&h, 0).data.iter().map(|&x| x as u8).collect();
        v.sort_unstable();
        v
    };
    let mut got: Vec<u8> = shown.pixels().map(|p| p.0[0]).collect();
    got.sort_unstable();
    assert_eq!(
        got, reference,
        "the exported grey levels are the reference rendering's"
    );
}

#[test]
fn the_view_export_is_the_viewport_with_its_annotations() {
    let (tmp, mut h) = demo_app(128, 24);
    let export_dir = tmp.path().join("exports");
    // The patient's name is written in the corner, as the annotation layout writes
    // it (the `^` between name components shown as a space): screen readers get
    // the corner texts.
    let label = viewport_label(&h, 0);
    assert!(
        label.lines().any(|l| l == "PHANTOM CHEST"),
        "the patient's name is written: {label:?}"
    );
    export_menu(&mut h, "view as PNG, with annotations");
    h.run_steps(2);
    let view = image::open(exported(&export_dir, "view"))
        .expect("png")
        .to_rgb8();
    let v0 = h.state().viewport(0).expect("vp").clone();
    let rect = v0.rect.expect("drawn");
    // The viewport's rectangle, to the pixel (its edges fall on half points).
    assert!(
        (view.width() as f32 - rect.width()).abs() <= 1.0
            && (view.height() as f32 - rect.height()).abs() <= 1.0,
        "{}×{} vs {rect:?}",
        view.width(),
        view.height()
    );
    // Text in the top-left corner, counted only where the image is black there
    // (or not drawn): bright pixels where the image is bright are not text.
    let reference = reference_of(&h, 0);
    let (cols, rows) = (reference.width as i64, reference.height as i64);
    let grey = |c: i64, r: i64| -> u16 {
        if (0..cols).contains(&c) && (0..rows).contains(&r) {
            reference.data[(r * cols + c) as usize]
        } else {
            0
        }
    };
    let map = v0.mapping.expect("drawn");
    let ppp = h.ctx.pixels_per_point();
    let dark_under = |x: u32, y: u32| {
        let p = rect.min + egui::vec2(x as f32 + 0.5, y as f32 + 0.5) / ppp;
        let [c, r] = map.image(p);
        let (c, r) = (c.floor() as i64, r.floor() as i64);
        // The neighbours too: an edge may fall a pixel either way.
        (-1..=1).all(|dc| (-1..=1).all(|dr| grey(c + dc, r + dr) < 40))
    };
    let corner: Vec<(u32, u32)> = (4..150)
        .flat_map(|x| (4..40).map(move |y| (x, y)))
        .filter(|&(x, y)| dark_under(x, y))
        .collect();
    assert!(
        corner.len() > 2000,
        "the image is black (or absent) under most of the corner: {} pixels",
        corner.len()
    );
    let text_pixels = corner
        .iter()
        .filter(|&&(x, y)| view.get_pixel(x, y).0.iter().all(|&c| c > 150))
        .count();
    assert!(
        text_pixels > 30,
        "the patient's name is written in the corner: {text_pixels} text pixels"
    );
}

#[test]
fn the_series_export_is_de_identified() {
    let (tmp, mut h) = demo_app(128, 24);
    let export_dir = tmp.path().join("exports");
    // The series, de-identified, into a new folder.
    export_menu(&mut h, "series, de-identified…");
    h.get_by_label("export series").click();
    h.run_steps(2);
    step_until(&mut h, "the de-identified export", |a| {
        a.last_export().is_some_and(|m| !m.contains('…'))
    });
    let msg = h
        .state()
        .last_export()
        .map(str::to_string)
        .expect("a message");
    assert!(msg.starts_with("saved 24 de-identified file(s)"), "{msg}");
    let folder = exported(&export_dir, "deidentified");
    let files = lightbox::scan::list_files(&folder).expect("list");
    assert_eq!(files.len(), 24);
    let hd = lightbox::dicom::read_header(&files[0]).expect("header");
    assert_eq!(hd.patient_name.as_deref(), Some("ANONYMOUS"));
}

#[test]
fn the_tag_browser_shows_the_active_header_filtered() {
    let (_tmp, mut h) = demo_app(128, 24);
    h.key_press(egui::Key::T);
    h.run_steps(2);
    let text = egui::accesskit::Role::TextInput;
    h.get_by_role_and_label(text, "Filter").focus();
    h.step();
    h.get_by_role_and_label(text, "Filter")
        .type_text("PatientName");
    h.run_steps(2);
    // Plain text is exposed as the node's value.
    let shown = |h: &Harness<'static, App>, what: &str| -> Vec<String> {
        h.query_all_by(|n| n.value().is_some_and(|v| v.contains(what)))
            .filter_map(|n| n.accesskit_node().value())
            .collect()
    };
    let lines = shown(&h, "(0010,0010)");
    assert!(
        !lines.is_empty() && lines.iter().all(|l| l.contains("PHANTOM^CHEST")),
        "{lines:?}"
    );
    assert!(shown(&h, "(0028,0010)").is_empty(), "the filter hides Rows");
    h.key_press(egui::Key::Escape);
    h.get_by_label("tags (T)").click();
    h.run_steps(2);
}

#[test]
fn a_dropped_thumbnail_replaces_the_prior_and_the_scout_shows_the_slice() {
    let (_tmp, mut h) = demo_app(128, 24);
    // Drag today's series from the thumbnail strip onto the right viewport: it
    // replaces the prior there.
    let today = h
        .state()
        .header_of(0)
        .expect("image")
        .study_date
        .clone()
        .expect("date");
    let card = h
        .query_all_by_label_contains("\ncurrent ")
        .find(|n| {
            n.accesskit_node()
                .label()
                .is_some_and(|l| l.contains("Axial"))
        })
        .expect("a thumbnail card for today's series")
        .rect()
        .center();
    let target = h.state().screen_of(1, [64.0, 64.0]).expect("drawn");
    drag(&mut h, card, target);
    assert_eq!(
        h.state().header_of(1).expect("image").study_date,
        Some(today),
        "the dropped series is shown"
    );

    // Layout 2×2 from the toolbar: four viewports.
    h.get_by_label("2×2").click();
    h.run_steps(2);
    assert_eq!(h.state().layout(), (2, 2));
    assert!(h.state().viewport(3).is_some());
    // The scout hangs in a new viewport, with the active axial slice's reference
    // line across it at that slice's height.
    let scout = (0..4)
        .find(|&i| {
            h.state()
                .header_of(i)
                .is_some_and(|x| x.series_description.as_deref() == Some("Scout"))
        })
        .expect("the scout is shown");
    let active = h.state().active();
    assert_ne!(active, scout);
    let z = h
        .state()
        .header_of(active)
        .expect("axial")
        .frame(0)
        .expect("f")
        .image_position
        .expect("p")[2];
    let sf = h
        .state()
        .header_of(scout)
        .expect("scout")
        .frame(0)
        .expect("f")
        .clone();
    let top = sf.image_position.expect("p")[2];
    let row = (top - z) / sf.pixel_spacing.expect("s")[0] + 0.5;
    let (a, b) = h
        .state()
        .viewport(scout)
        .expect("vp")
        .reference
        .expect("a reference line");
    assert!(
        (a[1] - row).abs() < 1e-6 && (b[1] - row).abs() < 1e-6,
        "{a:?} {b:?} row {row}"
    );
}

#[test]
fn searching_the_study_list_leaves_the_matching_study() {
    let (_tmp, mut h) = demo_app(128, 24);
    // The study list's entries (the viewports, which also name the patient in
    // their corner texts, are not entries).
    let listed = |h: &Harness<'static, App>| -> Vec<String> {
        h.query_all_by_label_contains("PHANTOM")
            .filter(|n| n.accesskit_node().role() != egui::accesskit::Role::Image)
            .filter_map(|n| n.accesskit_node().label())
            .collect()
    };
    let before = listed(&h);
    assert!(
        before.iter().any(|l| l.contains("CHEST")) && before.iter().any(|l| l.contains("HEAD")),
        "{before:?}"
    );
    // Search the study list: only the head MR is left.
    let search = || egui::accesskit::Role::TextInput;
    h.get_by_role_and_label(search(), "Search").focus();
    h.step();
    h.get_by_role_and_label(search(), "Search")
        .type_text("HEAD");
    h.run_steps(2);
    let studies = listed(&h);
    assert!(
        !studies.is_empty() && studies.iter().all(|l| l.contains("HEAD")),
        "{studies:?}"
    );
}

#[test]
fn after_each_jump_the_viewport_shows_the_slice_it_names() {
    // A tall stack, so that the textures kept around the shown slice are dropped
    // and new ones uploaded on every jump (a freed texture's address may be reused:
    // the image must still be the new slice's).
    let (_tmp, mut h) = demo_app(64, 400);
    assert_eq!(h.state().viewport(0).expect("vp").index, 200);
    // Nearest interpolation: a screen pixel shows exactly one image pixel's grey.
    h.remove_cursor();
    h.key_press(egui::Key::B);
    h.run_steps(2);
    assert!(!h.state().viewport(0).expect("vp").bilinear);
    let ppp = h.ctx.pixels_per_point();
    // Sample points: every fourth pixel of the image, away from its edges.
    let grid: Vec<(usize, usize)> = (8..=56)
        .step_by(4)
        .flat_map(|r| (8..=56).step_by(4).map(move |c| (c, r)))
        .collect();
    let mut renders = std::collections::HashMap::new();
    renders.insert(200, reference_of(&h, 0));
    let mut previous = 200;
    use egui::Key::{ArrowDown, ArrowUp, End, Home, PageDown, PageUp};
    let steps = [
        (End, 399),
        (Home, 0),
        (PageDown, 10),
        (PageDown, 20),
        (PageDown, 30),
        (PageUp, 20),
        (ArrowDown, 21),
        (ArrowDown, 22),
        (ArrowUp, 21),
        (End, 399),
        (PageUp, 389),
        (Home, 0),
    ];
    for (key, expected) in steps {
        h.key_press(key);
        h.run_steps(3);
        let index = h.state().viewport(0).expect("vp").index;
        assert_eq!(index, expected, "after {key:?}");
        // The annotation names the slice the state says is shown.
        let label = viewport_label(&h, 0);
        assert!(
            label.contains(&format!("  {}/400", index + 1)),
            "after {key:?}: {label:?}"
        );
        let frame = h.render().expect("render");
        let rect = h.state().viewport(0).expect("vp").rect.expect("drawn");
        let cols = renders
            .entry(index)
            .or_insert_with(|| reference_of(&h, 0))
            .width as usize;
        let grey = |i: usize, c: usize, r: usize| renders[&i].data[r * cols + c] as i32;
        // The slices jumped between differ at enough of the sampled points for a
        // stale image to show.
        let differ = grid
            .iter()
            .filter(|&&(c, r)| (grey(previous, c, r) - grey(index, c, r)).abs() > 4)
            .count();
        eprintln!(
            "slices {previous} → {index}: {differ} of {} points differ",
            grid.len()
        );
        assert!(
            differ >= 10,
            "slices {previous} and {index} differ at {differ} sampled points only"
        );
        let wrong: Vec<String> = grid
            .iter()
            .filter_map(|&(c, r)| {
                let at = h
                    .state()
                    .screen_of(0, [c as f64 + 0.5, r as f64 + 0.5])
                    .expect("drawn");
                assert!(rect.contains(at), "{at:?} outside {rect:?}");
                let px = frame.get_pixel((at.x * ppp) as u32, (at.y * ppp) as u32).0;
                let want = grey(index, c, r);
                let ok = px[..3].iter().all(|&g| (g as i32 - want).abs() <= 2);
                (!ok).then(|| format!("({c},{r}): {:?} vs {want}", &px[..3]))
            })
            .collect();
        assert!(
            wrong.is_empty(),
            "after {key:?} the viewport does not show slice {index} at {} of {} points: {:?}",
            wrong.len(),
            grid.len(),
            &wrong[..wrong.len().min(8)]
        );
        previous = index;
    }
}

#[test]
fn the_pacs_tab_finds_retrieves_and_opens_a_study() {
    use lightbox::ui::pacs::{PacsSettings, RetrieveState};
    let tmp = common::tempdir();
    let src = tmp.path().join("src");
    synth::write_demo(&src, 6, 64).expect("demo");
    let files = lightbox::scan::list_files(&src).expect("list");
    let scp_port = common::free_port();
    let orthanc = common::pacs::Orthanc::start(tmp.path(), &[("lightbox", "LIGHTBOX", scp_port)]);
    orthanc.upload(&files);
    let mr: Vec<_> = files
        .iter()
        .filter(|f| {
            lightbox::dicom::read_header(f).is_ok_and(|h| h.modality.as_deref() == Some("MR"))
        })
        .collect();
    assert!(!mr.is_empty());
    let mut node = lightbox::config::Node::ad_hoc("127.0.0.1", orthanc.dicom, "ORTHANC");
    node.name = "orthanc".into();
    let cache = tmp.path().join("cache");
    let launch = Launch {
        pacs: PacsSettings {
            nodes: vec![node],
            ae_title: "LIGHTBOX".into(),
            scp_port,
            ..Default::default()
        },
        ..Launch::new(cache.clone())
    };
    let mut h = viewer(launch);
    h.run_steps(2);
    h.get_by_label("orthanc").click();
    h.run_steps(2);
    let text = egui::accesskit::Role::TextInput;
    for (field, value) in [("Patient name", "PHANTOM*"), ("Modality", "MR")] {
        h.get_by_role_and_label(text, field).focus();
        h.step();
        h.get_by_role_and_label(text, field).type_text(value);
        h.step();
    }
    h.get_by_label("Find").click();
    step_until(&mut h, "C-FIND answers", |a| !a.pacs().results().is_empty());
    let results = h.state().pacs().results().to_vec();
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0].patient_name, "PHANTOM HEAD");
    assert_eq!(results[0].instances, Some(mr.len()));
    let uid = results[0].study_uid.clone();

    h.get_by_label("retrieve").click();
    step_until(&mut h, "the retrieve", |a| {
        matches!(
            a.pacs().state_of(&uid),
            Some(RetrieveState::Done { .. } | RetrieveState::Failed(_))
        )
    });
    assert!(
        matches!(
            h.state().pacs().state_of(&uid),
            Some(RetrieveState::Done { complete: true, .. })
        ),
        "{:?}",
        h.state().pacs().state_of(&uid)
    );
    let store = Store::open(&cache).expect("cache");
    let n: usize = store
        .series_of(&uid)
        .expect("series")
        .iter()
        .map(|s| store.instances_of(&s.series_uid).expect("instances").len())
        .sum();
    assert_eq!(n, mr.len(), "every MR image is cached");

    // Now cached: it opens from the tab.
    h.get_by_label("open").click();
    step_until(&mut h, "decoding", |a| {
        let (done, total) = a.decoded();
        total == mr.len() && done == total
    });
    assert_eq!(
        h.state().header_of(0).expect("shown").study_uid,
        uid,
        "the retrieved study is on screen"
    );
}

#[test]
fn the_pacs_tab_finds_and_retrieves_from_a_dicomweb_node() {
    use lightbox::ui::pacs::{PacsSettings, RetrieveState};
    let plugin = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so";
    assert!(
        std::path::Path::new(plugin).exists(),
        "{plugin} is missing: install Debian's orthanc-dicomweb (as .ci/run does)"
    );
    let tmp = common::tempdir();
    let src = tmp.path().join("src");
    synth::write_demo(&src, 6, 64).expect("demo");
    let files = lightbox::scan::list_files(&src).expect("list");
    let orthanc = common::pacs::Orthanc::start_with(
        tmp.path(),
        serde_json::Map::new(),
        serde_json::json!({
            "Plugins": [plugin],
            "DicomWeb": {"Enable": true, "Root": "/dicom-web/", "EnableWado": false}
        }),
    );
    orthanc.upload(&files);
    let config = tmp.path().join("web.toml");
    std::fs::write(
        &config,
        format!(
            "[[nodes]]\nname = \"cloud\"\nprotocol = \"dicomweb\"\n\
             url = \"http://127.0.0.1:{}/dicom-web\"\n",
            orthanc.http
        ),
    )
    .expect("config");
    let node = lightbox::config::load(&config).expect("config").nodes[0].clone();
    let cache = tmp.path().join("cache");
    let launch = Launch {
        pacs: PacsSettings {
            nodes: vec![node],
            ae_title: "LIGHTBOX".into(),
            ..Default::default()
        },
        ..Launch::new(cache.clone())
    };
    let mut h = viewer(launch);
    h.run_steps(2);
    h.get_by_label("cloud").click();
    h.run_steps(2);
    let text = egui::accesskit::Role::TextInput;
    h.get_by_role_and_label(text, "Modality").focus();
    h.step();
    h.get_by_role_and_label(text, "Modality").type_text("MR");
    h.step();
    h.get_by_label("Find").click();
    step_until(&mut h, "QIDO-RS answers", |a| {
        !a.pacs().results().is_empty()
    });
    let results = h.state().pacs().results().to_vec();
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0].patient_name, "PHANTOM HEAD");
    let uid = results[0].study_uid.clone();
    h.get_by_label("retrieve").click();
    step_until(&mut h, "the WADO-RS retrieve", |a| {
        matches!(
            a.pacs().state_of(&uid),
            Some(RetrieveState::Done { .. } | RetrieveState::Failed(_))
        )
    });
    assert!(
        matches!(
            h.state().pacs().state_of(&uid),
            Some(RetrieveState::Done { complete: true, .. })
        ),
        "{:?}",
        h.state().pacs().state_of(&uid)
    );
    let store = Store::open(&cache).expect("cache");
    let mr = files
        .iter()
        .filter(|f| {
            lightbox::dicom::read_header(f).is_ok_and(|h| h.modality.as_deref() == Some("MR"))
        })
        .count();
    let n: usize = store
        .series_of(&uid)
        .expect("series")
        .iter()
        .map(|s| store.instances_of(&s.series_uid).expect("instances").len())
        .sum();
    assert_eq!(n, mr, "every MR image is cached");
}

#[test]
fn opening_a_study_from_the_list_brings_its_prior_and_hangs_them() {
    let tmp = common::tempdir();
    let src = tmp.path().join("src");
    synth::write_demo(&src, 8, 64).expect("demo");
    let cache = tmp.path().join("cache");
    Store::open(&cache)
        .expect("cache")
        .import(&[src], ImportMode::Copy)
        .expect("import");
    let launch = Launch::new(cache);
    let mut h = viewer(launch);
    h.run_steps(2);
    // Today's CT from the local list, by its date and description.
    h.query_all_by_label_contains("2026-01-05")
        .find(|n| {
            n.accesskit_node()
                .label()
                .is_some_and(|l| l.contains("CT CHEST"))
        })
        .expect("today's CT in the list")
        .click();
    h.run_steps(2);
    step_until(&mut h, "decoding", |a| {
        let (done, total) = a.decoded();
        total > 0 && done == total
    });
    assert_eq!(h.state().hanging_protocol(), Some("CT chest with prior"));
    assert_eq!(h.state().layout(), (1, 2));
    let date = |i| h.state().header_of(i).and_then(|x| x.study_date.clone());
    assert_eq!(date(0).as_deref(), Some("20260105"));
    assert_eq!(
        date(1).as_deref(),
        Some("20240105"),
        "the prior hangs itself"
    );
}

#[test]
fn a_cached_study_is_sent_from_its_menu_and_arrives_at_the_node() {
    use lightbox::ui::pacs::{PacsSettings, SendState};
    let tmp = common::tempdir();
    let src = tmp.path().join("src");
    synth::write_demo(&src, 6, 64).expect("demo");
    let cache = tmp.path().join("cache");
    Store::open(&cache)
        .expect("cache")
        .import(std::slice::from_ref(&src), ImportMode::Copy)
        .expect("import");
    // The archive: DCMTK's storescp, writing what it receives.
    let port = common::free_port();
    let out = tmp.path().join("archive");
    std::fs::create_dir_all(&out).expect("mkdir");
    let _archive = common::KillOnDrop(
        std::process::Command::new(common::require_tool("storescp", "dcmtk"))
            .args(["+B", "-od", out.to_str().expect("utf8"), "-aet", "STORESCP"])
            .arg(port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("storescp"),
    );
    common::wait_port(port, "storescp");
    let mut node = lightbox::config::Node::ad_hoc("127.0.0.1", port, "STORESCP");
    node.name = "archive".into();
    let launch = Launch {
        pacs: PacsSettings {
            nodes: vec![node],
            ae_title: "LIGHTBOX".into(),
            ..Default::default()
        },
        ..Launch::new(cache.clone())
    };
    let mut h = viewer(launch);
    h.run_steps(2);
    // Today's CT, by its row in the Local list: its menu, "send to", the node.
    h.query_all_by_label_contains("2026-01-05")
        .find(|n| {
            n.accesskit_node()
                .label()
                .is_some_and(|l| l.contains("CT CHEST"))
        })
        .expect("today's CT in the list")
        .click_secondary();
    h.run_steps(2);
    h.get_by_label("send to").click();
    h.run_steps(2);
    // The node in the submenu, beside "send to" (a PACS tab carries its name too).
    let menu = h.get_by_label("send to").rect();
    h.query_all_by_label("archive")
        .min_by(|a, b| {
            let d = |n: &egui_kittest::Node<'_>| (n.rect().center() - menu.center()).length();
            d(a).total_cmp(&d(b))
        })
        .expect("the node in the send-to menu")
        .click();
    h.run_steps(1);
    let store = Store::open(&cache).expect("cache");
    let ct = store
        .studies()
        .expect("studies")
        .into_iter()
        .find(|s| s.date.as_deref() == Some("20260105"))
        .expect("today's CT cached");
    drop(store);
    step_until(&mut h, "the send", |a| {
        a.pacs()
            .sends_of(&ct.study_uid)
            .iter()
            .any(|(_, st)| matches!(st, SendState::Done { .. } | SendState::Failed(_)))
    });
    let states = h.state().pacs().sends_of(&ct.study_uid);
    assert!(
        matches!(states[0].1, SendState::Done { complete: true, .. }),
        "{states:?}"
    );
    // Every instance of the study arrived, and only those.
    let arrived = lightbox::scan::list_files(&out).expect("list");
    assert_eq!(arrived.len(), ct.instances, "one file per instance");
    for f in &arrived {
        let hd = lightbox::dicom::read_header(f).expect("a received file reads");
        assert_eq!(hd.study_uid, ct.study_uid);
    }
    // The row says so.
    h.run_steps(2);
    assert!(
        h.query_all_by_label_contains("archive").count() > 0,
        "the outcome is shown under the study"
    );
}

/// Snapshot comparison: a few pixels may differ across CPUs (lavapipe's vector
/// width), not a moved annotation or a missing image.
fn snapshot(h: &mut Harness<'static, App>, name: &str) {
    // The status bar's timings change from run to run: masked.
    let status = h
        .query_all_by_label_contains("images decoded")
        .next()
        .expect("status bar")
        .rect();
    h.remove_cursor();
    h.run_steps(2);
    h.mask(egui::Rect::from_min_max(
        status.min,
        egui::pos2(status.max.x + 600.0, status.max.y),
    ));
    h.snapshot_options(
        name,
        &egui_kittest::SnapshotOptions::new().max_failed_pixels(40),
    );
}

#[test]
fn the_reading_layouts_look_as_they_did() {
    let (_tmp, mut h) = demo_app(64, 12);
    h.set_size(egui::vec2(960.0, 600.0));
    h.run_steps(3);
    snapshot(&mut h, "demo-ct-with-prior");
    let centre = h.state().screen_of(0, [32.0, 32.0]).expect("drawn");
    h.hover_at(centre);
    h.step();
    h.key_press(egui::Key::M);
    h.run_steps(2);
    step_until(&mut h, "the reformats and the 3-D view", |a| {
        (0..3).all(|i| a.viewport(i).is_some_and(|v| v.last_drawn.is_some()))
            && a.vr_picture(3).is_some_and(|(_, full)| full)
    });
    snapshot(&mut h, "demo-mpr");
}

/// A folder dropped on the window, as winit reports it.
#[derive(Debug)]
struct Dropped(std::path::PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        Err("a folder".into())
    }
}

#[test]
fn a_folder_dropped_on_the_window_is_imported_and_opened() {
    let tmp = common::tempdir();
    let mr = tmp.path().join("mr");
    synth::write_mr(
        &mr,
        &synth::MrSpec {
            slices: 5,
            size: 32,
            ..Default::default()
        },
    )
    .expect("mr");
    let cache = tmp.path().join("cache");
    let launch = Launch::new(cache.clone());
    let mut h = viewer(launch);
    h.run_steps(2);
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped(mr.clone())));
    h.run_steps(2);
    step_until(&mut h, "import and decoding", |a| {
        let (done, total) = a.decoded();
        total == 5 && done == 5
    });
    assert_eq!(
        h.state()
            .header_of(0)
            .and_then(|x| x.modality.clone())
            .as_deref(),
        Some("MR")
    );
    let studies = Store::open(&cache)
        .expect("cache")
        .studies()
        .expect("studies");
    assert_eq!(studies.len(), 1, "the dropped folder is in the cache");
    assert_eq!(studies[0].instances, 5);
}

#[test]
fn priors_on_the_pacs_are_fetched_and_hang_themselves() {
    use lightbox::ui::pacs::PacsSettings;
    let tmp = common::tempdir();
    let current = synth::CtSpec {
        slices: 6,
        size: 64,
        ..Default::default()
    };
    let prior = synth::CtSpec {
        slices: 4,
        size: 64,
        seed: "lightbox-ct-prior".into(),
        study_date: "20240105".into(),
        ..Default::default()
    };
    synth::write_ct(&tmp.path().join("current"), &current).expect("ct");
    synth::write_ct(&tmp.path().join("prior"), &prior).expect("prior");
    let cache = tmp.path().join("cache");
    Store::open(&cache)
        .expect("cache")
        .import(&[tmp.path().join("current")], ImportMode::Copy)
        .expect("import");
    // The PACS holds both studies; only today's is cached.
    let scp_port = common::free_port();
    let orthanc = common::pacs::Orthanc::start(tmp.path(), &[("lightbox", "LIGHTBOX", scp_port)]);
    let mut all = lightbox::scan::list_files(&tmp.path().join("current")).expect("list");
    all.extend(lightbox::scan::list_files(&tmp.path().join("prior")).expect("list"));
    orthanc.upload(&all);
    let today = lightbox::dicom::read_header(&all[0])
        .expect("header")
        .study_uid;
    let mut node = lightbox::config::Node::ad_hoc("127.0.0.1", orthanc.dicom, "ORTHANC");
    node.name = "orthanc".into();
    node.fetch_priors = true;
    let launch = Launch {
        open_studies: vec![today],
        pacs: PacsSettings {
            nodes: vec![node],
            ae_title: "LIGHTBOX".into(),
            scp_port,
            ..Default::default()
        },
        ..Launch::new(cache.clone())
    };
    let prior_uid = lightbox::dicom::read_header(all.last().expect("prior files"))
        .expect("header")
        .study_uid;
    let mut h = viewer(launch);
    step_until_or(
        &mut h,
        "the prior to arrive and hang",
        |a| a.header_of(1).and_then(|x| x.study_date.clone()).as_deref() == Some("20240105"),
        |a| {
            format!(
                "priors: {:?}, the prior's retrieve: {:?}",
                a.pacs().prior_status,
                a.pacs().state_of(&prior_uid)
            )
        },
    );
    assert_eq!(h.state().hanging_protocol(), Some("CT chest with prior"));
    assert_eq!(
        h.state()
            .header_of(0)
            .and_then(|x| x.study_date.clone())
            .as_deref(),
        Some("20260105")
    );
    assert_eq!(
        Store::open(&cache)
            .expect("cache")
            .studies()
            .expect("studies")
            .len(),
        2,
        "the prior is in the cache now"
    );
}

#[test]
fn ten_key_presses_in_one_frame_advance_ten_slices() {
    let (_tmp, mut h) = demo_app(64, 40);
    let centre = h.state().screen_of(0, [32.0, 32.0]).expect("drawn");
    h.hover_at(centre);
    h.step();
    let before = h.state().viewport(0).expect("vp").index;
    // All ten arrive before the next frame: every one is a step.
    for _ in 0..10 {
        h.key_press(egui::Key::ArrowDown);
    }
    h.step();
    assert_eq!(h.state().viewport(0).expect("vp").index, before + 10);
}
