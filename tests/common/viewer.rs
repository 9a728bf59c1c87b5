//! The viewer in a test harness (`egui_kittest` with the wgpu renderer on
//! lavapipe), and what a user would look at in it: the viewport's accessible
//! label (its corner texts), and whether the pixels on screen are the CPU
//! reference rendering of the slice the annotation names.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use lightbox::store::{ImportMode, Store};
use lightbox::synth;
use lightbox::ui::{App, Launch};

/// The viewer in a `w`×`h` window drawn by wgpu (lavapipe).
pub fn viewer_sized(launch: Launch, w: f32, h: f32) -> Harness<'static, App> {
    Harness::builder()
        .with_size((w, h))
        .wgpu()
        .build_eframe(move |cc| App::create(launch, cc).expect("viewer"))
}

/// The viewer in a 1400×900 window.
pub fn viewer(launch: Launch) -> Harness<'static, App> {
    viewer_sized(launch, 1400.0, 900.0)
}

/// Step until every image is decoded (bounded), then a few frames more.
pub fn wait_decoded(harness: &mut Harness<'static, App>) {
    let start = Instant::now();
    loop {
        harness.step();
        let (done, total) = harness.state().decoded();
        if total > 0 && done == total {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "loading: {done}/{total}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    harness.run_steps(3);
}

/// Step the harness until `done` holds (bounded; the workers run on their own
/// threads), then two frames more.
pub fn step_until(h: &mut Harness<'static, App>, what: &str, done: impl Fn(&App) -> bool) {
    step_until_or(h, what, done, |_| String::new());
}

/// [`step_until`], and when it times out, what `explain` says of the app then
/// (the status lines a user would read to learn why).
pub fn step_until_or(
    h: &mut Harness<'static, App>,
    what: &str,
    done: impl Fn(&App) -> bool,
    explain: impl Fn(&App) -> String,
) {
    let start = Instant::now();
    while !done(h.state()) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out: {what}; {}",
            explain(h.state())
        );
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    h.run_steps(2);
}

/// The demo (a `slices`-slice CT of `size`² pixels and its prior) imported into a
/// fresh cache and open 1×2, every image decoded.
pub fn demo_app(size: usize, slices: usize) -> (tempfile::TempDir, Harness<'static, App>) {
    let (tmp, launch) = demo_launch(size, slices);
    let mut harness = viewer(launch);
    wait_decoded(&mut harness);
    (tmp, harness)
}

/// The demo imported into a fresh cache, and how to open it 1×2 (for a test
/// that opens the viewer more than once on the same cache).
pub fn demo_launch(size: usize, slices: usize) -> (tempfile::TempDir, Launch) {
    let tmp = crate::common::tempdir();
    let src = tmp.path().join("src");
    let (_, current, prior) = synth::write_demo(&src, slices, size).expect("demo");
    let cache = tmp.path().join("cache");
    Store::open(&cache)
        .expect("cache")
        .import(&[src], ImportMode::Copy)
        .expect("import");
    let launch = Launch {
        open_studies: vec![current, prior],
        layout: (1, 2),
        export_dir: tmp.path().join("exports"),
        ..Launch::new(cache)
    };
    (tmp, launch)
}

/// A left click at `p` (pointer moved there first), as a hand makes it.
pub fn click(h: &mut Harness<'static, App>, p: egui::Pos2) {
    h.hover_at(p);
    h.step();
    for pressed in [true, false] {
        h.event(egui::Event::PointerButton {
            pos: p,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: egui::Modifiers::NONE,
        });
        h.step();
    }
}

/// The CPU reference rendering of what viewport `i` shows, with its display options.
pub fn reference_of(h: &Harness<'static, App>, i: usize) -> lightbox::imaging::render::Rendered {
    let hd = h.state().header_of(i).expect("image");
    let v = h.state().viewport(i).expect("vp");
    let img = lightbox::dicom::Image::open(&hd.path).expect("open");
    lightbox::imaging::render::render(hd, 0, &img.frame(0).expect("frame"), &v.options())
        .expect("render")
}

/// What viewport `i` tells screen readers: its corner texts, one line each.
pub fn viewport_label(h: &Harness<'static, App>, i: usize) -> String {
    let rect = h.state().viewport(i).expect("vp").rect.expect("drawn");
    let labels: Vec<String> = h
        .query_all_by_role(egui::accesskit::Role::Image)
        .filter(|n| n.rect().center().distance(rect.center()) < 2.0)
        .filter_map(|n| n.accesskit_node().label())
        .collect();
    assert_eq!(
        labels.len(),
        1,
        "one image node on viewport {i}: {labels:?}"
    );
    labels[0].clone()
}

/// The stack position the annotation of viewport `i` names ("72/400" → 71, 400).
pub fn annotated_position(h: &Harness<'static, App>, i: usize) -> (usize, usize) {
    let label = viewport_label(h, i);
    label
        .split_whitespace()
        .find_map(|w| {
            let (a, b) = w.split_once('/')?;
            Some((a.parse::<usize>().ok()?.checked_sub(1)?, b.parse().ok()?))
        })
        .unwrap_or_else(|| panic!("no position n/N in {label:?}"))
}

/// Screen pixels of viewport `i` (in the rendered `frame`) that are not the CPU
/// reference rendering `want` of its slice, at every fourth image pixel away from
/// the edges: a description of each (empty when the viewport shows `want`).
/// Needs nearest-neighbour display (key B) so one screen pixel is one image pixel.
pub fn mismatches(
    h: &Harness<'static, App>,
    i: usize,
    frame: &image::RgbaImage,
    want: &lightbox::imaging::render::Rendered,
) -> Vec<String> {
    let ppp = h.ctx.pixels_per_point();
    let rect = h.state().viewport(i).expect("vp").rect.expect("drawn");
    let (w, ht) = (want.width as usize, want.height as usize);
    let grid: Vec<(usize, usize)> = (8..ht.saturating_sub(8))
        .step_by(4)
        .flat_map(|r| (8..w.saturating_sub(8)).step_by(4).map(move |c| (c, r)))
        .collect();
    grid.iter()
        .filter_map(|&(c, r)| {
            let at = h
                .state()
                .screen_of(i, [c as f64 + 0.5, r as f64 + 0.5])
                .expect("drawn");
            assert!(rect.contains(at), "{at:?} outside {rect:?}");
            let px = frame.get_pixel((at.x * ppp) as u32, (at.y * ppp) as u32).0;
            let g = want.data[r * w + c] as i32;
            let ok = px[..3].iter().all(|&v| (v as i32 - g).abs() <= 2);
            (!ok).then(|| format!("({c},{r}): {:?} vs {g}", &px[..3]))
        })
        .collect()
}
