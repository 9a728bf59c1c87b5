//! Helpers shared by the integration tests: finding the real third-party tools and
//! files the tests run against, and reading their outputs. A missing tool is a test
//! failure with a message that says what to install — never a silent skip.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod pacs;
pub mod pki;

/// Path of an executable on PATH, or a panic telling how to install it.
pub fn require_tool(name: &str, package: &str) -> PathBuf {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output();
    match out {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        _ => panic!(
            "required tool `{name}` not found: install it with `apt-get install {package}` (.ci/run does this)"
        ),
    }
}

/// Python with pydicom 3.0.2, or a panic telling how to install it.
pub fn python() -> String {
    let py = std::env::var("LIGHTBOX_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py)
        .args(["-c", "import pydicom, numpy"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`{py}` cannot import pydicom and numpy: run `pip install pydicom==3.0.2 numpy pylibjpeg pylibjpeg-openjpeg pylibjpeg-libjpeg` (.ci/run does this)"
    );
    py
}

/// pydicom's bundled test files (real third-party files covering many syntaxes).
pub fn pydicom_test_files() -> PathBuf {
    let py = python();
    let out = Command::new(&py)
        .args([
            "-c",
            "import pydicom, os; print(os.path.join(os.path.dirname(pydicom.__file__), 'data', 'test_files'))",
        ])
        .output()
        .expect("run python");
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        dir.is_dir(),
        "pydicom test files not found at {}",
        dir.display()
    );
    dir
}

/// Every `.dcm` file of pydicom's corpus, sorted.
pub fn pydicom_corpus() -> Vec<PathBuf> {
    let dir = pydicom_test_files();
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read corpus")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "dcm"))
        .collect();
    v.sort();
    v
}

/// A binary PGM (P5) or PPM (P6) file, 8 or 16 bits.
#[derive(Debug)]
pub struct Pnm {
    pub width: u32,
    pub height: u32,
    pub channels: u8,
    pub maxval: u32,
    pub data: Vec<u16>,
}

pub fn read_pnm(path: &Path) -> Pnm {
    let bytes = std::fs::read(path).expect("read pnm");
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes[i] == b'#' {
            while bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(String::from_utf8_lossy(&bytes[start..i]).to_string());
    }
    i += 1; // single whitespace after maxval
    let channels = match fields[0].as_str() {
        "P5" => 1,
        "P6" => 3,
        other => panic!("{}: unsupported PNM type {other}", path.display()),
    };
    let width: u32 = fields[1].parse().expect("width");
    let height: u32 = fields[2].parse().expect("height");
    let maxval: u32 = fields[3].parse().expect("maxval");
    let body = &bytes[i..];
    let data = if maxval < 256 {
        body.iter().map(|&b| b as u16).collect()
    } else {
        body.chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect()
    };
    Pnm {
        width,
        height,
        channels,
        maxval,
        data,
    }
}

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Run a command (a tool, or the `lightbox` binary) to completion and return its
/// output; unless it succeeded, panic naming the command line, its exit status and
/// what it wrote (see [`check_ok`]).
#[track_caller]
pub fn run_ok(cmd: &mut Command) -> Output {
    let line = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {line}: {e}"));
    check_ok(&line, out)
}

/// The output of `what` (a command line, or a name) when it succeeded; else a panic
/// with its exit status, its stderr and the end of its stdout. For outputs collected
/// elsewhere (a thread, a spawned child); [`run_ok`] runs and checks in one.
#[track_caller]
pub fn check_ok(what: &str, out: Output) -> Output {
    if !out.status.success() {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let tail: String = {
            let chars: Vec<char> = stdout.chars().collect();
            chars[chars.len().saturating_sub(4000)..].iter().collect()
        };
        panic!(
            "{what} failed ({}):\n--- stderr\n{}\n--- stdout (end)\n{tail}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    out
}

/// The small two-study fixture the cache, DICOMDIR and SCP tests share: the
/// synthetic CT phantom under `dir/ct` and the MR under `dir/mr` (each its own
/// patient and study), `ct_slices` and `mr_slices` images of `size`² pixels.
pub fn ct_mr_study(dir: &Path, ct_slices: usize, mr_slices: usize, size: usize) {
    use lightbox::synth;
    synth::write_ct(
        &dir.join("ct"),
        &synth::CtSpec {
            slices: ct_slices,
            size,
            ..Default::default()
        },
    )
    .expect("ct");
    synth::write_mr(
        &dir.join("mr"),
        &synth::MrSpec {
            slices: mr_slices,
            size,
            ..Default::default()
        },
    )
    .expect("mr");
}

/// Images in [`small_ct_mr_study`]: 8 CT and 3 MR slices.
pub const SMALL_CT_SLICES: usize = 8;
pub const SMALL_MR_SLICES: usize = 3;

/// [`ct_mr_study`] at its smallest useful size: 8 CT and 3 MR slices of 32² pixels.
pub fn small_ct_mr_study(dir: &Path) {
    ct_mr_study(dir, SMALL_CT_SLICES, SMALL_MR_SLICES, 32);
}

/// Stored values of one frame as decoded by pydicom.
#[derive(Debug, Clone)]
pub struct OracleFrame {
    pub frame: u32,
    pub shape: Vec<usize>,
    pub values: Vec<i32>,
}

/// What pydicom made of one file.
#[derive(Debug, Clone)]
pub struct OracleRecord {
    pub frames: Vec<OracleFrame>,
    pub error: Option<String>,
}

/// Decode `files` with pydicom (tests/oracle/pixels.py) in one Python process.
pub fn pydicom_oracle(files: &[PathBuf]) -> std::collections::HashMap<PathBuf, OracleRecord> {
    let py = python();
    let out = tempfile::tempdir().expect("tempdir");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/pixels.py");
    // Checked by name: the command line lists every file.
    let output = check_ok(
        "pydicom oracle (tests/oracle/pixels.py)",
        Command::new(py)
            .arg(&script)
            .arg(out.path())
            .args(files)
            .output()
            .expect("run pydicom oracle"),
    );
    let mut map = std::collections::HashMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("oracle json");
        let file = PathBuf::from(v["file"].as_str().expect("file"));
        let error = v["error"].as_str().map(str::to_string);
        let frames = v["frames"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|f| {
                        let raw = std::fs::read(f["raw"].as_str().expect("raw")).expect("read raw");
                        OracleFrame {
                            frame: f["frame"].as_u64().expect("frame") as u32,
                            shape: f["shape"]
                                .as_array()
                                .expect("shape")
                                .iter()
                                .map(|x| x.as_u64().expect("dim") as usize)
                                .collect(),
                            values: raw
                                .chunks_exact(4)
                                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                                .collect(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        map.insert(file, OracleRecord { frames, error });
    }
    map
}

/// A free TCP port on 127.0.0.1 for a test's server. Taken below Linux's
/// ephemeral range (32768–60999), where the kernel also picks the local ports
/// of outgoing connections — a port merely bound and released there can be
/// taken by another test's client before the server binds it (seen in CI:
/// "cannot listen for C-MOVE … Address already in use"). Each call in a
/// process gets another port (a counter from a per-process start), and one
/// that cannot be bound now is passed over.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LO: u32 = 20000;
    const SPAN: u32 = 12000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919) % SPAN;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (LO + (start + n) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!(
        "no free TCP port on 127.0.0.1 between {LO} and {}",
        LO + SPAN
    );
}

/// Wait (bounded: 10 s) until something listens on 127.0.0.1:`port`.
pub fn wait_port(port: u16, what: &str) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{what} did not open port {port}");
}

/// Run the `lightbox` binary with `config` as its configuration file (and no
/// `LIGHTBOX_CACHE` from the environment), to completion.
pub fn lightbox(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lightbox"))
        .args(args)
        .env("LIGHTBOX_CONFIG", config)
        .env_remove("LIGHTBOX_CACHE")
        .output()
        .expect("run lightbox")
}

/// What a command wrote, stdout then stderr.
pub fn all_output(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A tmpfs mounted at `at` (the tests run as root in CI), unmounted on drop.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).expect("mount point");
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .expect("run mount");
        assert!(
            o.status.success(),
            "this test mounts a tmpfs and must run as root (CI does): {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Tmpfs(at.to_path_buf())
    }

    pub fn remount(&self, options: &str) {
        let o = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .output()
            .expect("run mount");
        assert!(
            o.status.success(),
            "remount: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A child process killed (SIGKILL) and reaped when dropped: tests stop what they start.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Synthetic series covering the display pipeline's cases: CT (12-bit with rescale
/// and two windows), MR, MONOCHROME1 CR with Presentation LUT Shape INVERSE, signed
/// 16-bit, signed 12-bit with a fractional rescale, MONOCHROME1 with a window,
/// window width 1, a VOI LUT Sequence and a Modality LUT Sequence.
pub fn write_display_cases(dir: &Path) {
    use lightbox::synth::{self, SeriesSpec};
    synth::write_ct(
        &dir.join("ct"),
        &synth::CtSpec {
            slices: 3,
            size: 96,
            ..Default::default()
        },
    )
    .expect("ct");
    synth::write_mr(
        &dir.join("mr"),
        &synth::MrSpec {
            slices: 2,
            size: 64,
            ..Default::default()
        },
    )
    .expect("mr");
    synth::write_cr(&dir.join("cr")).expect("cr");
    // Signed 16-bit values, no rescale; two windows.
    let mut signed = SeriesSpec::axial("signed16", 2, 48, 1.0);
    signed.bits_stored = 16;
    signed.signed = true;
    signed.rescale = None;
    signed.windows = vec![(0.0, 2000.0, "A".into()), (-500.0, 300.0, "B".into())];
    synth::write_series(&dir.join("signed"), &signed, |k, c, r| {
        (c as i32 - 24) * 700 + (r as i32 - 24) * 13 + k as i32
    })
    .expect("signed");
    // Signed 12-bit in 16 with a fractional rescale.
    let mut s12 = SeriesSpec::axial("signed12", 1, 40, 1.0);
    s12.signed = true;
    s12.rescale = Some((0.5, -20.0));
    s12.windows = vec![(10.0, 700.0, "W".into())];
    synth::write_series(&dir.join("s12"), &s12, |_, c, r| {
        ((c * 40 + r) as i32 * 5) % 4096 - 2048
    })
    .expect("s12");
    // MONOCHROME1 with a window and no presentation LUT shape.
    let mut m1 = SeriesSpec::axial("mono1", 1, 40, 1.0);
    m1.photometric = "MONOCHROME1".into();
    m1.rescale = None;
    m1.windows = vec![(1000.0, 1500.0, "W".into())];
    synth::write_series(&dir.join("m1"), &m1, |_, c, r| ((c * 40 + r) * 3) as i32).expect("m1");
    // Window width 1 (a threshold).
    let mut w1 = SeriesSpec::axial("width1", 1, 32, 1.0);
    w1.rescale = None;
    w1.windows = vec![(500.0, 1.0, "THRESHOLD".into())];
    synth::write_series(&dir.join("w1"), &w1, |_, c, r| (c * 32 + r) as i32).expect("w1");
    // A VOI LUT Sequence (12-bit entries, a gamma-like curve) on 12-bit data.
    let mut voi = SeriesSpec::axial("voilut", 1, 40, 1.0);
    voi.rescale = None;
    voi.windows = vec![];
    let curve: Vec<u16> = (0..4096u32)
        .map(|i| ((i as f64 / 4095.0).powf(0.6) * 4095.0).round() as u16)
        .collect();
    voi.voi_lut = Some((0, 12, curve));
    synth::write_series(&dir.join("voilut"), &voi, |_, c, r| {
        ((c * 40 + r) * 2) as i32
    })
    .expect("voilut");
    // A Modality LUT Sequence (piecewise, 16-bit output) with a window on its output.
    let mut mlut = SeriesSpec::axial("modlut", 1, 40, 1.0);
    mlut.rescale = None;
    mlut.windows = vec![(30000.0, 40000.0, "W".into())];
    let table: Vec<u16> = (0..4096u32)
        .map(|i| {
            if i < 2048 {
                (i * 4) as u16
            } else {
                (8192 + (i - 2048) * 24) as u16
            }
        })
        .collect();
    mlut.modality_lut = Some((0, 16, table));
    synth::write_series(&dir.join("modlut"), &mlut, |_, c, r| {
        ((c * 40 + r) * 2) as i32
    })
    .expect("modlut");
    // Display shutters: rectangle and circle together (mid-grey outside), and a
    // concave polygon on a MONOCHROME1 image (white outside: a P-value, after
    // the inversion).
    let mut sh = SeriesSpec::axial("shutter-rc", 1, 64, 1.0);
    sh.rescale = None;
    synth::write_series(&dir.join("shutter-rc"), &sh, |_, c, r| {
        (c * 40 + r * 7) as i32
    })
    .expect("shutter");
    let mut sp = SeriesSpec::axial("shutter-poly", 1, 64, 1.0);
    sp.rescale = None;
    sp.photometric = "MONOCHROME1".into();
    synth::write_series(&dir.join("shutter-poly"), &sp, |_, c, r| {
        (c * 31 + r * 17) as i32
    })
    .expect("shutter");
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    let edit = |folder: &str, f: &dyn Fn(&mut dicom_object::DefaultDicomObject)| {
        for p in lightbox::scan::list_files(&dir.join(folder)).expect("list") {
            let mut o = dicom_object::open_file(&p).expect("open");
            f(&mut o);
            o.write_to_file(&p).expect("write");
        }
    };
    let put = |o: &mut dicom_object::DefaultDicomObject, tag, vr, v: PrimitiveValue| {
        o.put(DataElement::new(tag, vr, v));
    };
    edit("shutter-rc", &|o| {
        put(
            o,
            tags::SHUTTER_SHAPE,
            VR::CS,
            PrimitiveValue::from("RECTANGULAR\\CIRCULAR"),
        );
        put(
            o,
            tags::SHUTTER_LEFT_VERTICAL_EDGE,
            VR::IS,
            PrimitiveValue::from("6"),
        );
        put(
            o,
            tags::SHUTTER_RIGHT_VERTICAL_EDGE,
            VR::IS,
            PrimitiveValue::from("58"),
        );
        put(
            o,
            tags::SHUTTER_UPPER_HORIZONTAL_EDGE,
            VR::IS,
            PrimitiveValue::from("3"),
        );
        put(
            o,
            tags::SHUTTER_LOWER_HORIZONTAL_EDGE,
            VR::IS,
            PrimitiveValue::from("50"),
        );
        put(
            o,
            tags::CENTER_OF_CIRCULAR_SHUTTER,
            VR::IS,
            PrimitiveValue::from("30\\33"),
        );
        put(
            o,
            tags::RADIUS_OF_CIRCULAR_SHUTTER,
            VR::IS,
            PrimitiveValue::from("27"),
        );
        put(
            o,
            tags::SHUTTER_PRESENTATION_VALUE,
            VR::US,
            PrimitiveValue::from(0x8000u16),
        );
    });
    edit("shutter-poly", &|o| {
        put(
            o,
            tags::SHUTTER_SHAPE,
            VR::CS,
            PrimitiveValue::from("POLYGONAL"),
        );
        put(
            o,
            tags::VERTICES_OF_THE_POLYGONAL_SHUTTER,
            VR::IS,
            PrimitiveValue::from("4\\4\\4\\60\\60\\60\\32\\32\\60\\4"),
        );
        put(
            o,
            tags::SHUTTER_PRESENTATION_VALUE,
            VR::US,
            PrimitiveValue::from(0xFFFFu16),
        );
    });
}

/// The data set of a Part 10 file: what follows its meta group.
pub fn dataset(bytes: &[u8]) -> &[u8] {
    assert_eq!(&bytes[128..132], b"DICM", "a Part 10 file");
    let mut i = 132;
    while i + 8 <= bytes.len() && u16::from_le_bytes([bytes[i], bytes[i + 1]]) == 2 {
        let vr = &bytes[i + 4..i + 6];
        let (len, header) = if matches!(vr, b"OB" | b"OW" | b"UN" | b"SQ" | b"UT") {
            (
                u32::from_le_bytes([bytes[i + 8], bytes[i + 9], bytes[i + 10], bytes[i + 11]])
                    as usize,
                12,
            )
        } else {
            (u16::from_le_bytes([bytes[i + 6], bytes[i + 7]]) as usize, 8)
        };
        i += header + len;
    }
    &bytes[i..]
}

/// Write a synthetic CT into `dir`; its files, sorted.
pub fn write_ct(dir: &Path, spec: &lightbox::synth::CtSpec) -> Vec<PathBuf> {
    lightbox::synth::write_ct(dir, spec).expect("synthetic CT");
    let mut v = lightbox::scan::list_files(dir).expect("list");
    v.sort();
    v
}

/// A TCP proxy in front of 127.0.0.1:`upstream` that passes the server's
/// answers on at about `bytes_per_s` (in 4 KiB pieces) — a slow link to a PACS,
/// DIMSE or HTTP alike, so a test can look at what arrived before the rest. Its
/// port; the proxy stops when dropped.
pub fn throttle(dir: &Path, upstream: u16, bytes_per_s: usize) -> (KillOnDrop, u16) {
    let port = free_port();
    let script = dir.join(format!("throttle-{port}.py"));
    std::fs::write(
        &script,
        r#"
import socket, sys, threading, time
port, up, rate = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def pump(a, b, slow):
    try:
        while True:
            x = a.recv(4096 if slow else 65536)
            if not x:
                break
            b.sendall(x)
            if slow:
                time.sleep(len(x) / rate)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
def serve(c):
    s = socket.create_connection(("127.0.0.1", up))
    threading.Thread(target=pump, args=(c, s, False), daemon=True).start()
    pump(s, c, True)
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", port)); l.listen(64)
while True:
    c, _ = l.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#,
    )
    .expect("throttle script");
    let child = Command::new(python())
        .arg(&script)
        .args([
            port.to_string(),
            upstream.to_string(),
            bytes_per_s.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the throttling proxy");
    wait_port(port, "the throttling proxy");
    (KillOnDrop(child), port)
}
