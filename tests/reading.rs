//! The most frequent act of reading, driven with real events through
//! `egui_kittest` on lavapipe: wheel notches (line deltas from a mouse, point
//! deltas from a touchpad) move one slice each whatever the frame rate, ctrl +
//! wheel zooms about the pointer, shift + wheel pages, the scroll bar jumps;
//! axial stacks read superior first with the Instance Number in the annotation;
//! and after every step of a long scroll and of cine the viewport shows the CPU
//! rendering of the slice its annotation names — never a black frame, never a
//! stale image.

mod common;
#[path = "common/viewer.rs"]
mod viewer;

use std::time::Duration;

use eframe::egui;
use egui_kittest::Harness;
use lightbox::ui::App;
use viewer::*;

/// One wheel event as winit sends it (no modifiers unless given).
fn wheel(
    h: &mut Harness<'static, App>,
    unit: egui::MouseWheelUnit,
    dy: f32,
    modifiers: egui::Modifiers,
) {
    h.event(egui::Event::MouseWheel {
        unit,
        delta: egui::vec2(0.0, dy),
        phase: egui::TouchPhase::Move,
        source: egui::MouseWheelSource::Unknown,
        modifiers,
    });
}

fn index(h: &Harness<'static, App>, i: usize) -> usize {
    h.state().viewport(i).expect("vp").index
}

/// The demo with the pointer over the active viewport's image.
fn hovered_demo(size: usize, slices: usize) -> (tempfile::TempDir, Harness<'static, App>) {
    let (tmp, mut h) = demo_app(size, slices);
    let c = size as f64 / 2.0;
    let centre = h.state().screen_of(0, [c, c]).expect("drawn");
    h.hover_at(centre);
    h.step();
    (tmp, h)
}

#[test]
fn one_wheel_notch_is_one_slice_for_mouse_and_touchpad() {
    let (_tmp, mut h) = hovered_demo(64, 60);
    let none = egui::Modifiers::NONE;
    let start = index(&h, 0);
    // Three notches down, one per frame, then many frames with no input (egui's
    // smoothed delta would still be moving): three slices.
    for _ in 0..3 {
        wheel(&mut h, egui::MouseWheelUnit::Line, -1.0, none);
        h.step();
    }
    h.run_steps(10);
    assert_eq!(index(&h, 0), start + 3);
    // Five notches in one frame (a fast spin): five slices.
    for _ in 0..5 {
        wheel(&mut h, egui::MouseWheelUnit::Line, -1.0, none);
    }
    h.run_steps(10);
    assert_eq!(index(&h, 0), start + 8);
    // Back up two.
    wheel(&mut h, egui::MouseWheelUnit::Line, 2.0, none);
    h.run_steps(10);
    assert_eq!(index(&h, 0), start + 6);
    // A touchpad: point deltas add up to a notch's worth of points per slice.
    let line = h.ctx.options(|o| o.input_options.line_scroll_speed);
    for _ in 0..4 {
        wheel(&mut h, egui::MouseWheelUnit::Point, -line / 4.0, none);
        h.step();
    }
    h.run_steps(5);
    assert_eq!(
        index(&h, 0),
        start + 7,
        "four quarter-notches are one slice"
    );
    wheel(&mut h, egui::MouseWheelUnit::Point, -line * 2.5, none);
    h.run_steps(5);
    assert_eq!(
        index(&h, 0),
        start + 9,
        "two and a half notches: two slices, a half kept"
    );
    wheel(&mut h, egui::MouseWheelUnit::Point, -line * 0.5, none);
    h.run_steps(5);
    assert_eq!(index(&h, 0), start + 10, "the half kept and another half");
    // Shift + wheel pages (ten slices a notch).
    wheel(
        &mut h,
        egui::MouseWheelUnit::Line,
        1.0,
        egui::Modifiers::SHIFT,
    );
    h.run_steps(5);
    assert_eq!(index(&h, 0), start);
}

#[test]
fn ctrl_wheel_zooms_about_the_pointer() {
    let (_tmp, mut h) = hovered_demo(64, 20);
    let before = index(&h, 0);
    let zoom = h.state().viewport(0).expect("vp").zoom;
    // Off centre, over an image point.
    let q = [16.5, 20.5];
    let p = h.state().screen_of(0, q).expect("drawn");
    h.hover_at(p);
    h.step();
    for _ in 0..3 {
        wheel(
            &mut h,
            egui::MouseWheelUnit::Line,
            1.0,
            egui::Modifiers::CTRL,
        );
        h.step();
    }
    h.run_steps(3);
    let v = h.state().viewport(0).expect("vp");
    assert!(
        (v.zoom / zoom - 1.1f32.powi(3)).abs() < 1e-3,
        "three notches zoom by 1.1³: {} → {}",
        zoom,
        v.zoom
    );
    assert_eq!(v.index, before, "ctrl + wheel does not scroll");
    let after = h.state().screen_of(0, q).expect("drawn");
    assert!(
        after.distance(p) < 0.5,
        "the point under the pointer stays there: {p:?} → {after:?}"
    );
}

#[test]
fn the_scroll_bar_shows_the_position_and_jumps_where_clicked() {
    let (_tmp, mut h) = hovered_demo(64, 100);
    let rect = h.state().viewport(0).expect("vp").rect.expect("drawn");
    let bar = lightbox::ui::viewport::scroll_bar_rect(rect);
    let at = egui::pos2(bar.center().x, bar.min.y + bar.height() * 0.75);
    h.hover_at(at);
    h.step();
    h.drag_at(at);
    h.step();
    h.drop_at(at);
    h.run_steps(3);
    assert_eq!(index(&h, 0), 75, "a click three quarters down the bar");
    // Dragging along it follows the pointer.
    h.drag_at(at);
    h.step();
    for k in 1..=5 {
        h.hover_at(egui::pos2(at.x, at.y - bar.height() * 0.1 * k as f32));
        h.step();
    }
    h.drop_at(egui::pos2(at.x, bar.min.y + bar.height() * 0.25));
    h.run_steps(3);
    assert_eq!(index(&h, 0), 25);
}

#[test]
fn axial_stacks_read_superior_first_with_their_instance_numbers() {
    let (_tmp, mut h) = hovered_demo(64, 40);
    let z_of = |h: &Harness<'static, App>| {
        h.state().header_of(0).expect("image").frames[0]
            .image_position
            .expect("position")[2]
    };
    h.key_press(egui::Key::Home);
    h.run_steps(3);
    assert_eq!(index(&h, 0), 0);
    let top = z_of(&h);
    let label = viewport_label(&h, 0);
    let number = h
        .state()
        .header_of(0)
        .expect("image")
        .instance_number
        .expect("number");
    assert!(
        label.contains(&format!("Im {number}  1/40")),
        "Home: the Instance Number and the stack position: {label:?}"
    );
    // One step down goes toward the feet.
    h.key_press(egui::Key::ArrowDown);
    h.run_steps(3);
    assert!(
        z_of(&h) < top,
        "down moves inferior: {} then {}",
        top,
        z_of(&h)
    );
    h.key_press(egui::Key::End);
    h.run_steps(3);
    let bottom = z_of(&h);
    assert!(bottom < top, "End is the most inferior slice");
    let label = viewport_label(&h, 0);
    let number = h
        .state()
        .header_of(0)
        .expect("image")
        .instance_number
        .expect("number");
    assert!(label.contains(&format!("Im {number}  40/40")), "{label:?}");
}

/// The rendered frame shows, in viewport 0, the CPU rendering of the slice its
/// annotation names, and that is the slice the state says.
fn assert_shows_annotated_slice(h: &mut Harness<'static, App>, what: &str) {
    let (k, _) = annotated_position(h, 0);
    assert_eq!(
        k,
        index(h, 0),
        "{what}: the annotation names the slice shown"
    );
    let frame = h.render().expect("render");
    let want = reference_of(h, 0);
    let wrong = mismatches(h, 0, &frame, &want);
    assert!(
        wrong.is_empty(),
        "{what}: slice {k} is not what the viewport shows at {} points: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(6)]
    );
}

#[test]
fn every_step_of_a_long_scroll_and_of_cine_shows_the_annotated_slice() {
    let (_tmp, mut h) = hovered_demo(64, 400);
    // The pointer (which egui_kittest draws) off the sampled points, still over
    // the image for the wheel.
    let corner = h.state().screen_of(0, [2.0, 2.0]).expect("drawn");
    h.hover_at(corner);
    h.step();
    // Nearest interpolation: a screen pixel shows exactly one image pixel's grey.
    h.key_press(egui::Key::B);
    h.run_steps(2);
    let misses = h.state().draws_without_texture();
    // A hundred steps, one frame each: keys, then wheel notches, both ways.
    for step in 0..100 {
        match step {
            0..40 => h.key_press(egui::Key::ArrowDown),
            40..60 => h.key_press(egui::Key::ArrowUp),
            60..90 => wheel(
                &mut h,
                egui::MouseWheelUnit::Line,
                -1.0,
                egui::Modifiers::NONE,
            ),
            _ => wheel(
                &mut h,
                egui::MouseWheelUnit::Line,
                1.0,
                egui::Modifiers::NONE,
            ),
        }
        h.step();
        assert_shows_annotated_slice(&mut h, &format!("scroll step {step}"));
    }
    assert_eq!(index(&h, 0), 200 + 40 - 20 + 30 - 10);
    // Cine: every frame advanced shows its slice.
    h.key_press(egui::Key::Space);
    h.step();
    let mut seen = std::collections::BTreeSet::new();
    for k in 0..30 {
        std::thread::sleep(Duration::from_millis(40));
        h.step();
        seen.insert(index(&h, 0));
        assert_shows_annotated_slice(&mut h, &format!("cine frame {k}"));
    }
    h.key_press(egui::Key::Space);
    h.step();
    assert!(seen.len() >= 5, "cine moved through the stack: {seen:?}");
    assert_eq!(
        h.state().draws_without_texture(),
        misses,
        "a decoded slice was drawn without its texture"
    );
}

#[test]
fn the_slice_order_can_be_reversed_and_the_image_shown_stays() {
    let (_tmp, mut h) = hovered_demo(64, 40);
    let sop = |h: &Harness<'static, App>| {
        h.state()
            .header_of(0)
            .expect("image")
            .sop_instance_uid
            .clone()
    };
    let z = |h: &Harness<'static, App>| {
        h.state().header_of(0).expect("image").frames[0]
            .image_position
            .expect("position")[2]
    };
    let before = (sop(&h), index(&h, 0));
    h.key_press_modifiers(egui::Modifiers::CTRL, egui::Key::R);
    h.run_steps(3);
    assert_eq!(sop(&h), before.0, "the same image stays on screen");
    assert_eq!(index(&h, 0), 39 - before.1);
    let (k, n) = annotated_position(&h, 0);
    assert_eq!((k, n), (39 - before.1, 40));
    h.key_press(egui::Key::Home);
    h.run_steps(3);
    let first = z(&h);
    h.key_press(egui::Key::ArrowDown);
    h.run_steps(3);
    assert!(z(&h) > first, "reversed: feet first, down moves superior");
    // And back to the reading order.
    h.key_press_modifiers(egui::Modifiers::CTRL, egui::Key::R);
    h.key_press(egui::Key::Home);
    h.run_steps(3);
    assert!(z(&h) > first);
}
