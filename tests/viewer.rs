//! The real application in a real window: `lightbox demo` under Xvfb (X server
//! without a screen) on Mesa's software Vulkan, screenshot with ImageMagick's
//! `import`; the screenshot must show the CT phantom windowed for soft tissue —
//! black lungs, grey soft tissue, white bone — in both viewports (current and prior).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A free X display number.
fn free_display() -> u32 {
    (90..200)
        .find(|n| !Path::new(&format!("/tmp/.X{n}-lock")).exists())
        .expect("a free X display")
}

/// Share of pixels in `[x0, x1) × [y0, y1)` that are black, mid-grey and white.
fn tones(img: &image::RgbImage, x0: u32, x1: u32, y0: u32, y1: u32) -> (f64, f64, f64) {
    let (mut black, mut grey, mut white, mut n) = (0, 0, 0, 0);
    for y in y0..y1 {
        for x in x0..x1 {
            let p = img.get_pixel(x, y);
            let (r, g, b) = (p[0] as i32, p[1] as i32, p[2] as i32);
            n += 1;
            if (r - g).abs() > 8 || (g - b).abs() > 8 {
                continue; // text and markers are coloured
            }
            match g {
                0..=20 => black += 1,
                80..=180 => grey += 1,
                240..=255 => white += 1,
                _ => {}
            }
        }
    }
    let n = n as f64;
    (black as f64 / n, grey as f64 / n, white as f64 / n)
}

#[test]
fn the_demo_opens_in_a_real_window_and_shows_the_phantom() {
    let xvfb = common::require_tool("Xvfb", "xvfb");
    let import = common::require_tool("import", "imagemagick");
    let tmp = common::tempdir();
    let n = free_display();
    let display = format!(":{n}");
    let _x = common::KillOnDrop(
        Command::new(xvfb)
            .args([&display, "-screen", "0", "1400x900x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb"),
    );
    let runtime = tmp.path().join("xdg");
    std::fs::create_dir_all(&runtime).expect("mkdir");
    let log = std::fs::File::create(tmp.path().join("viewer.log")).expect("log");
    let _app = common::KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_lightbox"))
            .args(["demo", "--slices", "40", "--size", "192", "--cache"])
            .arg(tmp.path().join("cache"))
            .env("DISPLAY", &display)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env_remove("WAYLAND_DISPLAY")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start lightbox demo"),
    );
    // Bounded wait for the window to show both images (the demo data are generated
    // first, in a debug build).
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("viewer-demo.png");
    let start = Instant::now();
    let mut last = String::new();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the viewer did not show the phantom: {last}\nlog:\n{}",
            std::fs::read_to_string(tmp.path().join("viewer.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(1000));
        let ok = Command::new(&import)
            .args(["-display", &display, "-window", "root"])
            .arg(&shot)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            last = "no screenshot yet".into();
            continue;
        }
        let Ok(img) = image::open(&shot) else {
            continue;
        };
        let img = img.to_rgb8();
        let (w, h) = img.dimensions();
        // The viewports fill the right of the study list: look at the middle of
        // each half of that area.
        let (left, right) = ((w as f64 * 0.22) as u32, w);
        let mid = (left + right) / 2;
        let (y0, y1) = (h * 30 / 100, h * 60 / 100);
        let a = tones(
            &img,
            left + (mid - left) / 4,
            mid - (mid - left) / 4,
            y0,
            y1,
        );
        let b = tones(
            &img,
            mid + (right - mid) / 4,
            right - (right - mid) / 4,
            y0,
            y1,
        );
        last = format!("current {a:?}, prior {b:?} (black, grey, white)");
        let phantom = |t: (f64, f64, f64)| t.0 > 0.05 && t.1 > 0.2 && t.2 > 0.002;
        if phantom(a) && phantom(b) {
            eprintln!("screenshot {}: {last}", shot.display());
            break;
        }
    }
}
