//! The `lightbox` command line, driven as a user would: real binary, real files,
//! exit codes and messages checked.

mod common;

use std::path::Path;
use std::process::{Command, Output};

/// Run `lightbox`, whatever its exit status.
fn lightbox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lightbox"))
        .args(args)
        .output()
        .expect("run lightbox")
}

/// Run `lightbox`, which must succeed (see `common::run_ok`).
fn lightbox_ok(args: &[&str]) -> Output {
    common::run_ok(Command::new(env!("CARGO_BIN_EXE_lightbox")).args(args))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

fn small_study(dir: &Path) {
    lightbox_ok(&[
        "synth",
        dir.to_str().expect("utf8"),
        "--what",
        "ct",
        "--slices",
        "12",
        "--size",
        "64",
    ]);
}

#[test]
fn series_lists_the_study_and_names_bad_files() {
    let tmp = common::tempdir();
    small_study(tmp.path());
    std::fs::write(tmp.path().join("notes.txt"), b"not a DICOM file at all").expect("write");
    // A truncated copy of a real slice.
    let first = std::fs::read_dir(tmp.path().join("ct"))
        .expect("dir")
        .next()
        .expect("file")
        .expect("entry")
        .path();
    let bytes = std::fs::read(&first).expect("read");
    std::fs::write(tmp.path().join("truncated.dcm"), &bytes[..bytes.len() / 2]).expect("write");

    let out = lightbox(&["series", tmp.path().to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(2), "partial success exits 2");
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("Patient PHANTOM^CHEST (LBX0001)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("12 image(s) 64×64, axial, sorted by position, slice spacing 1.000 mm"),
        "{stdout}"
    );
    assert!(stdout.contains("left R right L top A bottom P"), "{stdout}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("notes.txt") && stderr.contains("truncated.dcm"),
        "{stderr}"
    );
    assert!(
        stderr.contains("7FE0,0010"),
        "the truncated file names its Pixel Data: {stderr}"
    );

    let out = lightbox(&["series", tmp.path().to_str().expect("utf8"), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["failures"].as_array().map(|a| a.len()), Some(2));
    assert_eq!(
        v["patients"][0]["studies"][0]["series"][0]["display_sets"][0]["frames"]
            .as_array()
            .map(|a| a.len()),
        Some(12)
    );
}

#[test]
fn render_writes_a_windowed_png() {
    let tmp = common::tempdir();
    small_study(tmp.path());
    let mut files: Vec<_> = std::fs::read_dir(tmp.path().join("ct"))
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let out_png = tmp.path().join("lung.png");
    let out = lightbox_ok(&[
        "render",
        files[0].to_str().expect("utf8"),
        "--preset",
        "lung",
        "--out",
        out_png.to_str().expect("utf8"),
    ]);
    assert!(
        text(&out.stdout).contains("C -600 W 1500"),
        "{}",
        text(&out.stdout)
    );
    let img = image::open(&out_png).expect("png").to_luma8();
    assert_eq!(img.dimensions(), (64, 64));
    // Air (-1000 HU) in a lung window: ((-1000 - (-600.5)) / 1499 + 0.5) * 255 = 59.5,
    // ± 1.5 levels of the phantom's ±8 HU noise. The spine (posterior midline) is white.
    let air = img.get_pixel(0, 0).0[0];
    assert!((57..=62).contains(&air), "air renders as {air}");
    assert!(img.get_pixel(32, 32 + (62.0 / (358.4 / 64.0)) as u32).0[0] > 245);

    // The same slice, 16-bit output and explicit window.
    let out16 = tmp.path().join("w.png");
    lightbox_ok(&[
        "render",
        files[0].to_str().expect("utf8"),
        "--window",
        "-600,1500",
        "--16bit",
        "-o",
        out16.to_str().expect("utf8"),
    ]);
    let img16 = image::open(&out16).expect("png").to_luma16();
    let air16 = img16.get_pixel(0, 0).0[0] as f64;
    assert!(
        (air16 / 257.0 - air as f64).abs() <= 1.0,
        "16-bit {air16} vs 8-bit {air}"
    );
}

#[test]
fn errors_are_one_clear_line() {
    let out = lightbox(&["render", "/nonexistent/file.dcm"]);
    assert_eq!(out.status.code(), Some(1));
    let e = text(&out.stderr);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.contains("/nonexistent/file.dcm") && e.contains("cannot read"),
        "{e}"
    );

    let tmp = common::tempdir();
    small_study(tmp.path());
    let f = std::fs::read_dir(tmp.path().join("ct"))
        .expect("dir")
        .next()
        .expect("f")
        .expect("e")
        .path();
    let out = lightbox(&["render", f.to_str().expect("utf8"), "--window", "40"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--window expects CENTER,WIDTH"),
        "{}",
        text(&out.stderr)
    );
    let out = lightbox(&["render", f.to_str().expect("utf8"), "--frame", "3"]);
    assert!(
        text(&out.stderr).contains("frame 3 does not exist"),
        "{}",
        text(&out.stderr)
    );
    let out = lightbox(&["render", f.to_str().expect("utf8"), "--voi", "5"]);
    assert!(
        text(&out.stderr).contains("VOI 5 does not exist: the image has 2 window(s)"),
        "{}",
        text(&out.stderr)
    );
    let out = lightbox(&["render", f.to_str().expect("utf8"), "--preset", "kidney"]);
    assert!(
        text(&out.stderr).contains("unknown preset"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn dump_prints_text_and_dicom_json() {
    let tmp = common::tempdir();
    small_study(tmp.path());
    let f = std::fs::read_dir(tmp.path().join("ct"))
        .expect("dir")
        .next()
        .expect("f")
        .expect("e")
        .path();
    let out = lightbox_ok(&["dump", f.to_str().expect("utf8")]);
    let t = text(&out.stdout);
    assert!(
        t.contains("(0010,0010) PN PatientName") && t.contains("PHANTOM^CHEST"),
        "{t}"
    );
    assert!(
        t.contains("(0028,1050) DS WindowCenter") && t.contains("40\\-600"),
        "{t}"
    );
    let out = lightbox(&["dump", f.to_str().expect("utf8"), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["00100010"]["vr"], "PN");
    assert_eq!(v["00100010"]["Value"][0]["Alphabetic"], "PHANTOM^CHEST");
    assert!(v.get("7FE00010").is_none(), "pixel data is not dumped");
}

#[test]
fn volume_reports_geometry_time_and_memory() {
    let tmp = common::tempdir();
    small_study(tmp.path());
    let out = lightbox_ok(&["volume", tmp.path().to_str().expect("utf8")]);
    let t = text(&out.stdout);
    assert!(t.contains("Dimensions  64 × 64 × 12"), "{t}");
    assert!(t.contains("Spacing     5.6000 × 5.6000 × 1.0000 mm"), "{t}");
    assert!(t.contains("rescale slope 1 intercept -1024"), "{t}");
    assert!(t.contains("Memory      peak RSS"), "{t}");
    let out = lightbox(&["volume", tmp.path().to_str().expect("utf8"), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["volume"]["dims"], serde_json::json!([64, 64, 12]));
    assert_eq!(v["voxel_bytes"], 64 * 64 * 12 * 2);
    let out = lightbox(&[
        "volume",
        tmp.path().to_str().expect("utf8"),
        "--series",
        "1.2.3",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no series 1.2.3"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn render_a_folder_picks_slices_in_position_order() {
    let tmp = common::tempdir();
    small_study(tmp.path());
    let ct = tmp.path().join("ct");
    let first = tmp.path().join("first.png");
    let out = lightbox_ok(&[
        "render",
        ct.to_str().expect("utf8"),
        "--slice",
        "0",
        "-o",
        first.to_str().expect("utf8"),
    ]);
    // Slice 0 is the first of the reading order (axial: superior first): the file
    // whose Image Position z is largest.
    let shown = text(&out.stdout);
    let file = shown.split(" frame ").next().expect("file").to_string();
    let h = lightbox::dicom::read_header(Path::new(&file)).expect("header");
    let z0 = h.frames[0].image_position.expect("ipp")[2];
    for e in std::fs::read_dir(&ct).expect("dir") {
        let other = lightbox::dicom::read_header(&e.expect("entry").path()).expect("header");
        assert!(other.frames[0].image_position.expect("ipp")[2] <= z0);
    }
    let out = lightbox(&["render", ct.to_str().expect("utf8"), "--slice", "12"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--slice 12 does not exist: the stack has 12 slices"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn import_and_cache_commands_with_a_config_file() {
    let tmp = common::tempdir();
    small_study(tmp.path());
    let cfg = tmp.path().join("config.toml");
    let cache = tmp.path().join("cache");
    std::fs::write(
        &cfg,
        format!(
            "ae_title = \"READ1\"\ncache_root = {:?}\ncache_max_mb = 0\n",
            cache.display().to_string()
        ),
    )
    .expect("config");
    let command = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lightbox"));
        cmd.args(args)
            .env("LIGHTBOX_CONFIG", &cfg)
            .env_remove("LIGHTBOX_CACHE");
        cmd
    };
    let run = |args: &[&str]| command(args).output().expect("run");
    let run_ok = |args: &[&str]| common::run_ok(&mut command(args));
    let out = run(&["config", "show"]);
    let t = text(&out.stdout);
    assert!(
        t.contains("ae_title     = \"READ1\"  (file)") && t.contains("cache_max_mb = 0  (file)"),
        "{t}"
    );

    let out = run_ok(&["import", tmp.path().join("ct").to_str().expect("utf8")]);
    assert!(
        text(&out.stdout).starts_with("12 instance(s) stored in 1 series of 1 study(ies)"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        cache.join("index.sqlite").exists(),
        "the configured cache root is used"
    );

    let out = run(&["cache", "ls", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let uid = v[0]["study_uid"].as_str().expect("uid").to_string();
    assert_eq!(v[0]["instances"], 12);
    let out = run(&["cache", "ls", "--instances", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let series = &v[0]["series_list"][0];
    assert_eq!(series["modality"], "CT");
    let numbers: Vec<i64> = series["instance_list"]
        .as_array()
        .expect("instances")
        .iter()
        .map(|i| i["instance_number"].as_i64().expect("n"))
        .collect();
    assert_eq!(numbers, (1..=12).collect::<Vec<_>>());
    run_ok(&["cache", "pin", &uid]);
    let out = run(&["cache", "evict"]);
    assert!(
        text(&out.stdout).contains("0 study(ies) evicted"),
        "pinned: {}",
        text(&out.stdout)
    );
    run_ok(&["cache", "unpin", &uid]);
    let out = run(&["cache", "evict"]);
    assert!(
        text(&out.stdout).contains(&format!("evicted {uid}")),
        "{}",
        text(&out.stdout)
    );
    run_ok(&["cache", "verify"]);
    let out = run(&["cache", "pin", "1.2.3"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no study 1.2.3 in the cache"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_cache_before_the_subcommand_is_the_subcommands_cache() {
    let tmp = common::tempdir();
    let cache = tmp.path().join("cache");
    let c = cache.to_str().expect("utf8");
    // `--cache DIR demo`: "demo" is the subcommand, not a path to open. With no
    // display the viewer cannot open, but the demo studies are in DIR by then.
    let out = Command::new(env!("CARGO_BIN_EXE_lightbox"))
        .args(["--cache", c, "demo", "--slices", "4", "--size", "16"])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("run lightbox");
    let err = text(&out.stderr);
    assert!(!err.contains("no such file or folder"), "{err}");
    assert!(err.contains("writing the demo studies into"), "{err}");
    let studies = lightbox::store::Store::open(&cache)
        .expect("cache")
        .studies()
        .expect("studies");
    assert!(
        studies.len() >= 2,
        "the demo is in the cache given: {studies:?}"
    );

    // A path that does not exist is said before anything is made.
    let other = tmp.path().join("not-made");
    let out = lightbox(&["--cache", other.to_str().expect("utf8"), "no-such-folder"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no-such-folder: no such file or folder"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !other.exists(),
        "the cache folder is not created for a mistake"
    );
}
