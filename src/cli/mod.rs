//! `lightbox` subcommands: thin wrappers over the library. Each prints its result
//! on stdout; failures are one line on stderr naming the file and the reason.
//! Exit codes: 0 success, 1 failure, 2 partial success (some files unreadable).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::dicom::{self, Image, ReadMode};

/// `println!` that ends the program quietly when stdout is closed (`| head`), as a
/// command-line tool killed by SIGPIPE would, instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}
mod net;

use crate::error::{Error, Result};
use crate::imaging::lut::{VoiFunction, Window};
use crate::imaging::render::{self, RenderOptions, VoiChoice};
use crate::model::{self, Patient};
use crate::{scan, synth, volume};

#[derive(Debug, Parser)]
#[command(
    name = "lightbox",
    version,
    about = "Lightbox: a diagnostic DICOM display workstation"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Files, folders or CD/USB roots to open in the viewer (imported into the
    /// cache first). With nothing, the viewer opens on the cache's study list.
    paths: Vec<PathBuf>,
    /// Cache folder for the viewer.
    #[arg(long)]
    cache: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Open the viewer on the synthetic demo studies (CT with its prior side by
    /// side, MR, CR), generating them into the cache on first use.
    Demo {
        /// Cache folder.
        #[arg(long)]
        cache: Option<PathBuf>,
        /// CT slices (the prior has half).
        #[arg(long, default_value_t = 400)]
        slices: usize,
        /// CT matrix size.
        #[arg(long, default_value_t = 512)]
        size: usize,
        /// Viewport grid, e.g. 2x2 (default: the hanging protocol's).
        #[arg(long, value_parser = parse_layout)]
        layout: Option<(usize, usize)>,
    },
    /// Open the viewer (on files, folders or CDs, or on the cache's study list).
    View {
        paths: Vec<PathBuf>,
        /// Cache folder.
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Viewport grid, e.g. 2x2 (default: the hanging protocol's).
        #[arg(long, value_parser = parse_layout)]
        layout: Option<(usize, usize)>,
    },
    /// Render one frame through the CPU display pipeline to a PNG.
    Render(RenderArgs),
    /// Print a file's header (text, or the DICOM JSON model with --json).
    Dump {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// List patients, studies, series and display sets under a folder, with geometry checks.
    Series {
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Load a series into a 16-bit volume and report its geometry, range, time and memory.
    Volume {
        dir: PathBuf,
        /// Series Instance UID (default: the largest stack found).
        #[arg(long)]
        series: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Write deterministic synthetic studies (CT phantom, MR, CR) into a folder.
    Synth(SynthArgs),
    /// Import files, folders or CD/USB roots (DICOMDIR) into the local cache.
    Import {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Index the files where they are instead of copying them (read-only media).
        #[arg(long)]
        link: bool,
        /// Cache folder (default: $LIGHTBOX_CACHE or ~/.local/share/lightbox/cache).
        #[arg(long)]
        cache: Option<PathBuf>,
    },
    /// Run the Storage SCP: receive C-STORE (and answer C-ECHO) into the cache.
    Listen {
        /// Port (default: scp_port from the configuration, 11112).
        #[arg(long)]
        port: Option<u16>,
        /// Our AE title (default: ae_title from the configuration, LIGHTBOX).
        #[arg(long)]
        aet: Option<String>,
        /// Address to listen on.
        #[arg(long, default_value = "0.0.0.0")]
        bind: String,
        /// Cache folder.
        #[arg(long)]
        cache: Option<PathBuf>,
    },
    /// List the PACS nodes in the configuration.
    Nodes {
        #[arg(long)]
        json: bool,
    },
    /// Verify a PACS node (C-ECHO): round trip and the services it accepts.
    Echo(net::EchoArgs),
    /// Query a PACS node (C-FIND) at patient, study, series or image level.
    Find(net::FindArgs),
    /// Retrieve a study or series from a PACS node into the cache (C-MOVE or C-GET).
    Retrieve(net::RetrieveArgs),
    /// De-identify DICOM files or folders into a new folder (DICOM PS3.15 Basic
    /// Application Level Confidentiality Profile: names, IDs, dates and UIDs
    /// replaced, private tags and overlays removed).
    Anonymize(AnonymizeArgs),
    /// Show the effective configuration and where each value came from.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Inspect and repair the local cache.
    Cache {
        #[command(subcommand)]
        action: CacheAction,
        /// Cache folder (default: $LIGHTBOX_CACHE or ~/.local/share/lightbox/cache).
        #[arg(long, global = true)]
        cache: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
struct AnonymizeArgs {
    /// Files or folders to export.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// A new or empty folder for the de-identified files.
    #[arg(long, short)]
    out: PathBuf,
    /// The pseudonym for Patient's Name.
    #[arg(long, default_value = "ANONYMOUS")]
    patient_name: String,
    /// The pseudonym for Patient ID.
    #[arg(long, default_value = "ANON")]
    patient_id: String,
    /// Keep dates and times (Retain Longitudinal Temporal Information option).
    #[arg(long)]
    keep_dates: bool,
    /// Keep study and series descriptions and protocol names (review them first).
    #[arg(long)]
    keep_descriptions: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum ConfigAction {
    /// Print the effective configuration.
    Show {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum CacheAction {
    /// List cached studies with patient, counts and UIDs.
    Ls {
        /// Also list each study's series.
        #[arg(long)]
        series: bool,
        /// Also list each series' instances (implies --series).
        #[arg(long)]
        instances: bool,
        #[arg(long)]
        json: bool,
    },
    /// Check every indexed file (present, size, CRC-32) and find unindexed files.
    Verify,
    /// Recreate the index from the files alone.
    Rebuild,
    /// Totals: patients, studies, series, instances, size, pins.
    Stats,
    /// Pin a study: it is never evicted.
    Pin { study: String },
    /// Unpin a study.
    Unpin { study: String },
    /// Remove a study (rows first, then files).
    Rm { study: String },
    /// Evict least recently opened, unpinned studies down to a size cap.
    Evict {
        /// Size cap in megabytes (default: cache_max_mb from the configuration).
        #[arg(long)]
        max_mb: Option<u64>,
    },
}

#[derive(Debug, Args)]
struct RenderArgs {
    /// A DICOM file, or a folder: then the largest stack found in it is used.
    file: PathBuf,
    /// Frame number, counting from 0.
    #[arg(long, default_value_t = 0)]
    frame: u32,
    /// With a folder: the slice to render, counting from 0 in position order
    /// (feet to head for axial stacks); default the middle slice.
    #[arg(long)]
    slice: Option<usize>,
    /// Explicit window as CENTER,WIDTH (e.g. 40,400 or -600,1500).
    #[arg(long, value_name = "C,W", allow_hyphen_values = true, conflicts_with_all = ["voi", "minmax", "preset", "no_voi"])]
    window: Option<String>,
    /// The file's N-th VOI (1-based): its windows first, then its VOI LUTs.
    #[arg(long, value_name = "N", conflicts_with_all = ["minmax", "preset", "no_voi"])]
    voi: Option<usize>,
    /// Window from the frame's smallest and largest values.
    #[arg(long, conflicts_with_all = ["preset", "no_voi"])]
    minmax: bool,
    /// Named preset: brain, subdural, stroke, lung, mediastinum, abdomen, liver, bone.
    #[arg(long, conflicts_with = "no_voi")]
    preset: Option<String>,
    /// No VOI: map the full range of the stored format.
    #[arg(long)]
    no_voi: bool,
    /// Override the VOI LUT Function.
    #[arg(long, value_enum)]
    function: Option<FunctionArg>,
    /// Invert (in addition to MONOCHROME1 / Presentation LUT Shape).
    #[arg(long)]
    invert: bool,
    /// Write 16-bit levels instead of 8-bit.
    #[arg(long = "16bit")]
    sixteen_bit: bool,
    /// Leave the overlay planes (60xx) out (they are burned in white by default,
    /// as DCMTK does).
    #[arg(long)]
    no_overlays: bool,
    /// Show the whole image, ignoring its Display Shutter.
    #[arg(long)]
    no_shutter: bool,
    /// Output PNG (default: FILE name with .png in the current folder).
    #[arg(long, short)]
    out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FunctionArg {
    Linear,
    LinearExact,
    Sigmoid,
}

#[derive(Debug, Args)]
struct SynthArgs {
    /// Output folder (created).
    out: PathBuf,
    /// What to write.
    #[arg(long, value_enum, default_value = "all")]
    what: SynthWhat,
    /// CT slices.
    #[arg(long, default_value_t = 400)]
    slices: usize,
    /// CT matrix size (columns = rows).
    #[arg(long, default_value_t = 512)]
    size: usize,
    /// CR matrix rows (3000 with --cr-columns 2500: a full-size radiograph).
    #[arg(long, default_value_t = 1248)]
    cr_rows: usize,
    /// CR matrix columns.
    #[arg(long, default_value_t = 1024)]
    cr_columns: usize,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum SynthWhat {
    All,
    Ct,
    Mr,
    Cr,
}

/// Entry point used by `main`.
pub fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LIGHTBOX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let Some(command) = cli.command else {
        return finish(cmd_view(&cli.paths, cli.cache, None));
    };
    let result = match command {
        Command::Demo {
            cache,
            slices,
            size,
            layout,
        } => cmd_demo(cache, slices, size, layout),
        Command::View {
            paths,
            cache,
            layout,
        } => cmd_view(&paths, cache, layout),
        Command::Render(a) => cmd_render(a),
        Command::Dump { file, json } => cmd_dump(&file, json),
        Command::Series { dir, json } => cmd_series(&dir, json),
        Command::Volume { dir, series, json } => cmd_volume(&dir, series.as_deref(), json),
        Command::Synth(a) => cmd_synth(a),
        Command::Import { paths, link, cache } => cmd_import(&paths, link, cache),
        Command::Cache { action, cache } => cmd_cache(action, cache),
        Command::Anonymize(a) => cmd_anonymize(a),
        Command::Config {
            action: ConfigAction::Show { json },
        } => cmd_config_show(json),
        Command::Listen {
            port,
            aet,
            bind,
            cache,
        } => cmd_listen(port, aet, &bind, cache),
        Command::Nodes { json } => net::cmd_nodes(json),
        Command::Echo(a) => net::cmd_echo(a),
        Command::Find(a) => net::cmd_find(a),
        Command::Retrieve(a) => net::cmd_retrieve(a),
    };
    finish(result)
}

fn finish(result: Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lightbox: {e}");
            ExitCode::from(1)
        }
    }
}

fn viewer_cache(cache: Option<PathBuf>) -> Result<PathBuf> {
    Ok(match cache {
        Some(c) => c,
        None => {
            crate::config::load(&crate::config::default_path())?
                .cache_root
                .0
        }
    })
}

/// `lightbox [PATH...]` / `lightbox view`: import what is given, open the viewer.
/// "2x2", "1×3": rows and columns, 1 to 6 each.
fn parse_layout(s: &str) -> std::result::Result<(usize, usize), String> {
    let (r, c) = s
        .split_once(['x', 'X', '×'])
        .ok_or_else(|| format!("{s:?}: give rows x columns, e.g. 2x2"))?;
    let n = |v: &str| -> std::result::Result<usize, String> {
        v.trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=6).contains(n))
            .ok_or_else(|| format!("{s:?}: rows and columns are 1 to 6"))
    };
    Ok((n(r)?, n(c)?))
}

fn cmd_view(
    paths: &[PathBuf],
    cache: Option<PathBuf>,
    layout: Option<(usize, usize)>,
) -> Result<ExitCode> {
    let root = viewer_cache(cache)?;
    let mut open = Vec::new();
    if !paths.is_empty() {
        let mut store = crate::store::Store::open(&root)?;
        for p in paths {
            if !p.exists() {
                return Err(Error::Usage(format!(
                    "{}: no such file or folder",
                    p.display()
                )));
            }
        }
        let report = store.import(paths, crate::store::ImportMode::Copy)?;
        report_failures(&report.failures);
        // The studies of what was given, found by scanning it (already in the cache
        // if these were duplicates).
        let mut uids = std::collections::BTreeSet::new();
        for p in paths {
            if let Ok(s) = scan::scan(p) {
                uids.extend(s.headers.into_iter().map(|h| h.study_uid));
            }
        }
        open.extend(uids);
    }
    let initial = if open.len() > 1 { (1, 2) } else { (1, 1) };
    run_viewer(root, open, initial, layout)
}

/// Open the viewer with the user's configuration (PACS nodes, hanging protocols,
/// annotations, export folder).
fn run_viewer(
    cache: PathBuf,
    open_studies: Vec<String>,
    initial: (usize, usize),
    force_layout: Option<(usize, usize)>,
) -> Result<ExitCode> {
    crate::ui::run(crate::ui::Launch {
        open_studies,
        layout: initial,
        pacs: pacs_settings(),
        protocol_dir: crate::hanging::user_dir(),
        force_layout,
        annotation_file: crate::ui::default_annotation_file(),
        ..crate::ui::Launch::new(cache)
    })?;
    Ok(ExitCode::SUCCESS)
}

fn cmd_anonymize(a: AnonymizeArgs) -> Result<ExitCode> {
    let mut files = Vec::new();
    for p in &a.inputs {
        if p.is_dir() {
            files.extend(scan::list_files(p).map_err(|e| Error::Io {
                path: p.clone(),
                source: e,
            })?);
        } else if p.exists() {
            files.push(p.clone());
        } else {
            return Err(Error::Usage(format!(
                "{}: no such file or folder",
                p.display()
            )));
        }
    }
    let opts = crate::dicom::anonymize::Options {
        patient_name: a.patient_name.clone(),
        patient_id: a.patient_id.clone(),
        keep_dates: a.keep_dates,
        keep_descriptions: a.keep_descriptions,
    };
    let r = crate::dicom::anonymize::export(&files, &a.out, &opts)?;
    if a.json {
        out!(
            "{}",
            serde_json::to_string_pretty(&r).map_err(|e| Error::Usage(e.to_string()))?
        );
    } else {
        out!(
            "{} file(s) de-identified into {}",
            r.written.len(),
            a.out.display()
        );
    }
    for (f, why) in &r.refused {
        eprintln!("not exported: {}: {why}", f.display());
    }
    // Partial success exits 2, as everywhere else.
    Ok(match (r.written.is_empty(), r.refused.is_empty()) {
        (_, true) => ExitCode::SUCCESS,
        (false, false) => ExitCode::from(2),
        (true, false) => ExitCode::from(1),
    })
}

/// `lightbox demo`: the synthetic studies, generated into the cache on first use,
/// opened with the CT and its prior side by side.
fn cmd_demo(
    cache: Option<PathBuf>,
    slices: usize,
    size: usize,
    layout: Option<(usize, usize)>,
) -> Result<ExitCode> {
    let root = viewer_cache(cache)?;
    let mut store = crate::store::Store::open(&root)?;
    let current = synth::uid("lightbox-ct.study");
    let prior = synth::uid("lightbox-ct-prior.study");
    let cached = store.studies()?;
    let have = |uid: &str| cached.iter().any(|s| s.study_uid == uid);
    if !have(&current) || !have(&prior) {
        eprintln!(
            "writing the demo studies into {} (first use)…",
            root.display()
        );
        let src = root
            .join("tmp")
            .join(format!("demo-{}", std::process::id()));
        let (n, c, p) = synth::write_demo(&src, slices, size)?;
        debug_assert_eq!((c.as_str(), p.as_str()), (current.as_str(), prior.as_str()));
        let r = store.import(std::slice::from_ref(&src), crate::store::ImportMode::Copy);
        let _ = std::fs::remove_dir_all(&src);
        let r = r?;
        eprintln!("{n} file(s) generated, {} imported", r.stored);
    }
    drop(store);
    run_viewer(root, vec![current, prior], (1, 2), layout)
}

/// The PACS nodes, AE title and SCP port of the configuration, for the viewer's
/// browser (none when the configuration cannot be read: the viewer still opens,
/// and says why on stderr).
fn pacs_settings() -> crate::ui::pacs::PacsSettings {
    match crate::config::load(&crate::config::default_path()) {
        Ok(c) => crate::ui::pacs::PacsSettings {
            nodes: c.nodes,
            ae_title: c.ae_title.0,
            scp_port: c.scp_port.0,
            durability: c.durability.0,
        },
        Err(e) => {
            eprintln!("configuration: {e} (no PACS tabs)");
            crate::ui::pacs::PacsSettings::default()
        }
    }
}

fn parse_window(s: &str) -> Result<Window> {
    let bad = || {
        Error::Usage(format!(
            "--window expects CENTER,WIDTH with WIDTH > 0, got {s:?}"
        ))
    };
    let (c, w) = s.split_once(',').ok_or_else(bad)?;
    let c: f64 = c.trim().parse().map_err(|_| bad())?;
    let w: f64 = w.trim().parse().map_err(|_| bad())?;
    if !(c.is_finite() && w.is_finite() && w > 0.0) {
        return Err(bad());
    }
    Ok(Window::new(c, w))
}

fn render_options(a: &RenderArgs) -> Result<RenderOptions> {
    let voi = if let Some(w) = &a.window {
        VoiChoice::Explicit(parse_window(w)?)
    } else if let Some(n) = a.voi {
        VoiChoice::FromFile(n)
    } else if a.minmax {
        VoiChoice::MinMax
    } else if let Some(p) = &a.preset {
        VoiChoice::Preset(p.clone())
    } else if a.no_voi {
        VoiChoice::None
    } else {
        VoiChoice::Auto
    };
    Ok(RenderOptions {
        voi,
        function: a.function.map(|f| match f {
            FunctionArg::Linear => VoiFunction::Linear,
            FunctionArg::LinearExact => VoiFunction::LinearExact,
            FunctionArg::Sigmoid => VoiFunction::Sigmoid,
        }),
        invert: a.invert,
        sixteen_bit: a.sixteen_bit,
        overlays: !a.no_overlays,
        ignore_shutter: a.no_shutter,
    })
}

/// Render a file's frame with the given options (the library call behind `render`).
pub fn render_file(path: &Path, frame: u32, opts: &RenderOptions) -> Result<render::Rendered> {
    let image = Image::open(path)?;
    let pixels = image.frame(frame)?;
    render::render(&image.header, frame, &pixels, opts)
}

fn cmd_render(a: RenderArgs) -> Result<ExitCode> {
    let opts = render_options(&a)?;
    let out = a.out.clone().unwrap_or_else(|| {
        let stem = a
            .file
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "image".into());
        PathBuf::from(format!("{stem}.png"))
    });
    let (file, frame) = if a.file.is_dir() {
        pick_slice(&a.file, a.slice)?
    } else {
        (a.file.clone(), a.frame)
    };
    let r = render_file(&file, frame, &opts)?;
    r.write_png(&out)?;
    out!(
        "{} frame {frame}: {}×{} {}, VOI {} → {}",
        file.display(),
        r.width,
        r.height,
        if r.channels == 1 { "grey" } else { "RGB" },
        r.voi_description,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The file and frame of slice `index` (default: middle) of the largest stack in a folder.
fn pick_slice(dir: &Path, index: Option<usize>) -> Result<(PathBuf, u32)> {
    let scan = scan_dir(dir)?;
    let patients = model::build(&scan.headers);
    let set = patients
        .iter()
        .flat_map(|p| p.studies.iter())
        .flat_map(|s| s.series.iter())
        .flat_map(|s| s.display_sets.iter())
        .max_by_key(|d| d.frames.len())
        .ok_or_else(|| Error::Series(format!("{}: no images found", dir.display())))?;
    let n = set.frames.len();
    let i = index.unwrap_or(n / 2);
    let r = set.frames.get(i).ok_or_else(|| {
        Error::Usage(format!(
            "--slice {i} does not exist: the stack has {n} slices (0 to {})",
            n - 1
        ))
    })?;
    Ok((scan.headers[r.instance].path.clone(), r.frame))
}

fn cmd_dump(file: &Path, json: bool) -> Result<ExitCode> {
    let obj = dicom::open(file, ReadMode::HeaderOnly)?;
    if json {
        let s = dicom::dump::to_json(&obj).map_err(|e| Error::NotDicom {
            path: file.to_path_buf(),
            reason: e,
        })?;
        out!("{s}");
    } else {
        use std::io::Write as _;
        if std::io::stdout()
            .write_all(dicom::dump::to_text(&obj).as_bytes())
            .is_err()
        {
            std::process::exit(0);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn scan_dir(dir: &Path) -> Result<scan::Scan> {
    if !dir.exists() {
        return Err(Error::Usage(format!(
            "{}: no such file or folder",
            dir.display()
        )));
    }
    scan::scan(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })
}

fn report_failures(failures: &[(PathBuf, String)]) {
    if !failures.is_empty() {
        eprintln!("{} file(s) skipped:", failures.len());
        for (_, reason) in failures {
            eprintln!("  {reason}");
        }
    }
}

fn cmd_series(dir: &Path, json: bool) -> Result<ExitCode> {
    let t = Instant::now();
    let scan = scan_dir(dir)?;
    let patients = model::build(&scan.headers);
    if json {
        let v = serde_json::json!({
            "patients": patients,
            "files": scan.headers.iter().map(|h| h.path.display().to_string()).collect::<Vec<_>>(),
            "failures": scan.failures.iter().map(|(p, r)| serde_json::json!({"file": p.display().to_string(), "reason": r})).collect::<Vec<_>>(),
        });
        out!(
            "{}",
            serde_json::to_string_pretty(&v).map_err(|e| Error::Usage(e.to_string()))?
        );
    } else {
        if let Some((path, counts)) = &scan.dicomdir {
            let counts: Vec<String> = counts.iter().map(|(t, n)| format!("{n} {t}")).collect();
            out!("Read through {} ({})", path.display(), counts.join(", "));
        }
        print_tree(&patients, &scan.headers);
        out!(
            "{} file(s) read in {:.0} ms, {} unreadable",
            scan.headers.len(),
            t.elapsed().as_secs_f64() * 1e3,
            scan.failures.len()
        );
    }
    report_failures(&scan.failures);
    Ok(exit_for(&scan))
}

fn exit_for(scan: &scan::Scan) -> ExitCode {
    match (scan.headers.is_empty(), scan.failures.is_empty()) {
        (_, true) => ExitCode::SUCCESS,
        (true, false) => ExitCode::from(1),
        (false, false) => ExitCode::from(2),
    }
}

fn print_tree(patients: &[Patient], headers: &[dicom::ImageHeader]) {
    for p in patients {
        out!(
            "Patient {} ({})",
            p.name.as_deref().unwrap_or("(no name)"),
            p.id.as_deref().unwrap_or("no ID")
        );
        for s in &p.studies {
            out!(
                "  Study {} {} {}",
                s.date.as_deref().unwrap_or("(no date)"),
                s.description
                    .as_deref()
                    .map(|d| format!("\"{d}\""))
                    .unwrap_or_default(),
                s.uid
            );
            for se in &s.series {
                out!(
                    "    Series {} {} {} — {} instance(s){}  {}",
                    se.number
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| "-".into()),
                    se.modality.as_deref().unwrap_or("??"),
                    se.description
                        .as_deref()
                        .map(|d| format!("\"{d}\""))
                        .unwrap_or_default(),
                    se.instances.len(),
                    if se.non_image.is_empty() {
                        String::new()
                    } else {
                        format!(", {} without pixel data", se.non_image.len())
                    },
                    se.uid
                );
                for w in &se.warnings {
                    out!("      ! {w}");
                }
                for (i, ds) in se.display_sets.iter().enumerate() {
                    let h = &headers[ds.frames[0].instance];
                    let cal = &h.calibration;
                    let spacing = cal
                        .spacing_mm
                        .map(|s| {
                            format!("pixel {:.3}×{:.3} mm ({})", s[0], s[1], cal.basis.label())
                        })
                        .unwrap_or_else(|| "no pixel spacing (measurements in pixels)".into());
                    let geo = match &ds.geometry {
                        Some(g) => format!(
                            "{}, sorted by position, slice spacing {}",
                            g.plane,
                            g.spacing_mm
                                .map(|s| format!("{s:.3} mm"))
                                .unwrap_or_else(|| "n/a".into())
                        ),
                        None => "no geometry, sorted by Instance Number".into(),
                    };
                    out!(
                        "      Display set {}: {} {} {}×{}, {}; {}",
                        i + 1,
                        ds.frames.len(),
                        if ds.multiframe {
                            "frame(s) of one multi-frame image"
                        } else {
                            "image(s)"
                        },
                        ds.columns,
                        ds.rows,
                        geo,
                        spacing
                    );
                    if let Some(g) = &ds.geometry {
                        if let Some(f) = headers[ds.frames[0].instance].frames.first()
                            && let (Some(p), Some(o)) = (f.image_position, f.image_orientation)
                            && let Some(plane) =
                                crate::imaging::geometry::ImagePlane::new(p, o, [1.0, 1.0])
                        {
                            let l = plane.edge_labels();
                            out!(
                                "        orientation: left {} right {} top {} bottom {}",
                                l.left,
                                l.right,
                                l.top,
                                l.bottom
                            );
                        }
                        for issue in &g.issues {
                            out!("        ! {issue}");
                        }
                    }
                }
            }
        }
    }
}

fn cmd_volume(dir: &Path, series: Option<&str>, json: bool) -> Result<ExitCode> {
    let t0 = Instant::now();
    let scan = scan_dir(dir)?;
    let t_scan = t0.elapsed();
    let patients = model::build(&scan.headers);
    let mut candidates: Vec<(&model::Series, &model::DisplaySet)> = patients
        .iter()
        .flat_map(|p| p.studies.iter())
        .flat_map(|s| s.series.iter())
        .filter(|s| series.is_none_or(|u| s.uid == u))
        .flat_map(|s| s.display_sets.iter().map(move |d| (s, d)))
        .filter(|(_, d)| d.geometry.is_some())
        .collect();
    candidates.sort_by_key(|(_, d)| std::cmp::Reverse(d.frames.len()));
    let Some((se, set)) = candidates.first() else {
        report_failures(&scan.failures);
        return Err(Error::Series(match series {
            Some(u) => format!("{}: no series {u} with positioned images", dir.display()),
            None => format!("{}: no series with positioned images", dir.display()),
        }));
    };
    let t1 = Instant::now();
    let vol = volume::load(set, &scan.headers)?;
    let t_load = t1.elapsed();
    let range = vol.modality_range();
    let peak = volume::peak_rss_bytes();
    if json {
        let v = serde_json::json!({
            "series_uid": se.uid,
            "volume": vol,
            "voxel_bytes": vol.voxel_bytes(),
            "modality_range": range,
            "scan_ms": t_scan.as_secs_f64() * 1e3,
            "load_ms": t_load.as_secs_f64() * 1e3,
            "peak_rss_bytes": peak,
        });
        out!(
            "{}",
            serde_json::to_string_pretty(&v).map_err(|e| Error::Usage(e.to_string()))?
        );
    } else {
        out!("Series      {}", se.uid);
        out!(
            "Dimensions  {} × {} × {} (columns × rows × slices)",
            vol.dims[0],
            vol.dims[1],
            vol.dims[2]
        );
        out!(
            "Spacing     {:.4} × {:.4} × {:.4} mm",
            vol.spacing_mm[0],
            vol.spacing_mm[1],
            vol.spacing_mm[2]
        );
        out!("Affine      patient (LPS, mm) from voxel (x, y, z, 1):");
        for r in 0..4 {
            let m = &vol.patient_from_voxel;
            out!(
                "            [{:>10.4} {:>10.4} {:>10.4} {:>10.4}]",
                m[(r, 0)],
                m[(r, 1)],
                m[(r, 2)],
                m[(r, 3)]
            );
        }
        if let Some((lo, hi)) = range {
            out!(
                "Values      {lo} … {hi} (modality units; rescale slope {} intercept {})",
                vol.rescale.slope,
                vol.rescale.intercept
            );
        }
        for issue in &vol.issues {
            out!("Warning     {issue}");
        }
        out!(
            "Time        header scan {:.1} ms ({} files), volume load {:.1} ms ({} of {} slices on the fast path)",
            t_scan.as_secs_f64() * 1e3,
            scan.headers.len(),
            t_load.as_secs_f64() * 1e3,
            vol.fast_slices,
            vol.dims[2]
        );
        let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
        if let Some(p) = peak {
            out!(
                "Memory      peak RSS {:.1} MiB for {:.1} MiB of voxels ({:.2}×)",
                mb(p),
                mb(vol.voxel_bytes() as u64),
                p as f64 / vol.voxel_bytes() as f64
            );
        }
    }
    report_failures(&scan.failures);
    Ok(exit_for(&scan))
}

fn cmd_synth(a: SynthArgs) -> Result<ExitCode> {
    std::fs::create_dir_all(&a.out).map_err(|e| Error::Write {
        path: a.out.clone(),
        reason: e.to_string(),
    })?;
    let t = Instant::now();
    let mut written = 0;
    if matches!(a.what, SynthWhat::All | SynthWhat::Ct) {
        let spec = synth::CtSpec {
            slices: a.slices,
            size: a.size,
            ..synth::CtSpec::default()
        };
        written += synth::write_ct(&a.out.join("ct"), &spec)?;
    }
    if matches!(a.what, SynthWhat::All | SynthWhat::Mr) {
        written += synth::write_mr(&a.out.join("mr"), &synth::MrSpec::default())?;
    }
    if matches!(a.what, SynthWhat::All | SynthWhat::Cr) {
        written += synth::write_cr_sized(&a.out.join("cr"), a.cr_rows, a.cr_columns)?;
    }
    out!(
        "{written} file(s) written under {} in {:.1} s",
        a.out.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

fn open_store(cache: Option<PathBuf>) -> Result<crate::store::Store> {
    let root = match cache {
        Some(c) => c,
        None => {
            crate::config::load(&crate::config::default_path())?
                .cache_root
                .0
        }
    };
    crate::store::Store::open(&root)
}

fn cmd_config_show(json: bool) -> Result<ExitCode> {
    let path = crate::config::default_path();
    let c = crate::config::load(&path)?;
    if json {
        out!(
            "{}",
            serde_json::to_string_pretty(&c).map_err(|e| Error::Usage(e.to_string()))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    match &c.file {
        Some(f) => out!("# from {}", f.display()),
        None => out!("# {} does not exist: defaults", path.display()),
    }
    let o = |o: crate::config::Origin| format!("{o:?}").to_lowercase();
    out!("ae_title     = {:?}  ({})", c.ae_title.0, o(c.ae_title.1));
    out!("scp_port     = {}  ({})", c.scp_port.0, o(c.scp_port.1));
    out!(
        "allowed_aes  = {:?}  ({})",
        c.allowed_aes.0,
        o(c.allowed_aes.1)
    );
    out!(
        "cache_root   = {:?}  ({})",
        c.cache_root.0.display().to_string(),
        o(c.cache_root.1)
    );
    match c.cache_max_mb.0 {
        Some(v) => out!("cache_max_mb = {v}  ({})", o(c.cache_max_mb.1)),
        None => out!("cache_max_mb = none  (default: no cap)"),
    }
    out!(
        "durability   = {:?}  ({})",
        format!("{:?}", c.durability.0).to_lowercase(),
        o(c.durability.1)
    );
    for n in &c.nodes {
        out!(
            "node {:?}: {}@{}:{} retrieve={:?} parallel={}  (file)",
            n.name,
            n.ae_title,
            n.host,
            n.port,
            n.retrieve,
            n.parallel
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_import(paths: &[PathBuf], link: bool, cache: Option<PathBuf>) -> Result<ExitCode> {
    for p in paths {
        if !p.exists() {
            return Err(Error::Usage(format!(
                "{}: no such file or folder",
                p.display()
            )));
        }
    }
    let mut store = open_store(cache)?;
    let t = Instant::now();
    let mode = if link {
        crate::store::ImportMode::Link
    } else {
        crate::store::ImportMode::Copy
    };
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} files {per_sec} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let r = store.import_with_progress(paths, mode, &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let r = r?;
    out!(
        "{} instance(s) stored in {} series of {} study(ies) in {:.2} s; {} duplicate(s) skipped; {} new version(s); cache {}",
        r.stored,
        r.series,
        r.studies,
        t.elapsed().as_secs_f64(),
        r.duplicates,
        r.new_versions.len(),
        store.root().display()
    );
    for w in &r.new_versions {
        eprintln!("warning: {w}");
    }
    report_failures(&r.failures);
    Ok(if r.failures.is_empty() {
        ExitCode::SUCCESS
    } else if r.stored + r.duplicates + r.new_versions.len() > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::from(1)
    })
}

fn cmd_cache(action: CacheAction, cache: Option<PathBuf>) -> Result<ExitCode> {
    let mut store = open_store(cache)?;
    match action {
        CacheAction::Ls {
            series,
            instances,
            json,
        } => {
            let rows = store.studies()?;
            let series = series || instances;
            if json {
                let mut v = Vec::new();
                for r in &rows {
                    let mut st =
                        serde_json::to_value(r).map_err(|e| Error::Usage(e.to_string()))?;
                    if series {
                        let mut list = Vec::new();
                        for se in store.series_of(&r.study_uid)? {
                            let mut sv = serde_json::to_value(&se)
                                .map_err(|e| Error::Usage(e.to_string()))?;
                            if instances {
                                sv["instance_list"] =
                                    serde_json::to_value(store.instances_of(&se.series_uid)?)
                                        .map_err(|e| Error::Usage(e.to_string()))?;
                            }
                            list.push(sv);
                        }
                        st["series_list"] = serde_json::Value::Array(list);
                    }
                    v.push(st);
                }
                out!(
                    "{}",
                    serde_json::to_string_pretty(&v).map_err(|e| Error::Usage(e.to_string()))?
                );
                return Ok(ExitCode::SUCCESS);
            }
            for r in &rows {
                out!(
                    "{} ({})  {}  {}  {}  {} series, {} instances, {:.1} MB{}{}  {}",
                    r.patient_name,
                    r.patient_id,
                    r.date.as_deref().unwrap_or("-"),
                    r.modalities_label(),
                    r.description.as_deref().unwrap_or(""),
                    r.series,
                    r.instances,
                    r.bytes as f64 / 1e6,
                    if r.pinned { ", pinned" } else { "" },
                    match r.retrieval {
                        Some(crate::store::RetrievalState::Incomplete) => ", INCOMPLETE retrieve",
                        Some(crate::store::RetrievalState::InProgress) => {
                            ", retrieve in progress or interrupted"
                        }
                        Some(crate::store::RetrievalState::Complete) | None => "",
                    },
                    r.study_uid
                );
                if !series {
                    continue;
                }
                for se in store.series_of(&r.study_uid)? {
                    out!(
                        "    Series {} {} {} — {} instance(s)  {}",
                        se.number
                            .map(|n| n.to_string())
                            .unwrap_or_else(|| "-".into()),
                        se.modality.as_deref().unwrap_or("??"),
                        se.description.as_deref().unwrap_or(""),
                        se.instances,
                        se.series_uid
                    );
                    if instances {
                        for i in store.instances_of(&se.series_uid)? {
                            out!(
                                "        #{} {}  {}  {} bytes{}{}  {}",
                                i.instance_number
                                    .map(|n| n.to_string())
                                    .unwrap_or_else(|| "-".into()),
                                i.sop_uid,
                                crate::dicom::pixels::transfer_syntax_name(&i.transfer_syntax),
                                i.size,
                                if i.version > 1 {
                                    format!(", version {}", i.version)
                                } else {
                                    String::new()
                                },
                                if i.linked { ", linked" } else { "" },
                                i.path
                            );
                        }
                    }
                }
            }
            out!("{} study(ies) in {}", rows.len(), store.root().display());
            Ok(ExitCode::SUCCESS)
        }
        CacheAction::Verify => {
            let v = store.verify()?;
            for m in &v.missing {
                out!("missing file: {m}");
            }
            for c in &v.corrupt {
                out!("checksum mismatch: {c}");
            }
            for o in &v.orphaned {
                out!("not indexed: {}", o.display());
            }
            out!(
                "{} instance(s) checked: {} missing, {} corrupt, {} unindexed file(s)",
                v.checked,
                v.missing.len(),
                v.corrupt.len(),
                v.orphaned.len()
            );
            Ok(if v.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        CacheAction::Rebuild => {
            let n = store.rebuild()?;
            out!("index rebuilt from the files: {n} instance(s)");
            Ok(ExitCode::SUCCESS)
        }
        CacheAction::Stats => {
            let s = store.stats()?;
            out!(
                "{} patient(s), {} study(ies) ({} pinned), {} series, {} instance(s), {:.1} MB in {}",
                s.patients,
                s.studies,
                s.pinned_studies,
                s.series,
                s.instances,
                s.bytes as f64 / 1e6,
                store.root().display()
            );
            Ok(ExitCode::SUCCESS)
        }
        CacheAction::Pin { study } => {
            store.set_pinned(&study, true)?;
            out!("pinned {study}");
            Ok(ExitCode::SUCCESS)
        }
        CacheAction::Unpin { study } => {
            store.set_pinned(&study, false)?;
            out!("unpinned {study}");
            Ok(ExitCode::SUCCESS)
        }
        CacheAction::Rm { study } => {
            let n = store.remove_study(&study)?;
            out!("removed {study} ({n} file(s))");
            Ok(ExitCode::SUCCESS)
        }
        CacheAction::Evict { max_mb } => {
            let cap = match max_mb {
                Some(v) => v,
                None => crate::config::load(&crate::config::default_path())?
                    .cache_max_mb
                    .0
                    .ok_or_else(|| {
                        Error::Usage(
                            "no cap: give --max-mb or set cache_max_mb in the configuration".into(),
                        )
                    })?,
            };
            let removed = store.evict(cap * 1_000_000)?;
            for u in &removed {
                out!("evicted {u}");
            }
            let s = store.stats()?;
            out!(
                "{} study(ies) evicted; {:.1} MB remain",
                removed.len(),
                s.bytes as f64 / 1e6
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn cmd_listen(
    port: Option<u16>,
    aet: Option<String>,
    bind: &str,
    cache: Option<PathBuf>,
) -> Result<ExitCode> {
    let cfg = crate::config::load(&crate::config::default_path())?;
    let port = port.unwrap_or(cfg.scp_port.0);
    let ae = aet.unwrap_or(cfg.ae_title.0);
    if !crate::config::valid_ae_title(&ae) {
        return Err(Error::Usage(format!("{ae:?} is not a valid AE title")));
    }
    let root = cache.unwrap_or(cfg.cache_root.0);
    // Open once up front: a cache that cannot be opened is reported before listening.
    drop(crate::store::Store::open(&root)?);
    let listener = std::net::TcpListener::bind((bind, port))
        .map_err(|e| Error::Usage(format!("cannot listen on {bind}:{port}: {e}")))?;
    let mut scp = crate::net::ScpConfig::new(&ae, &root);
    scp.allowed_aes = cfg.allowed_aes.0;
    scp.durability = cfg.durability.0;
    out!(
        "Storage SCP {ae} listening on {bind}:{port}, storing into {}{}",
        root.display(),
        if scp.allowed_aes.is_empty() {
            String::new()
        } else {
            format!(", accepting {}", scp.allowed_aes.join(", "))
        }
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stats = std::sync::Arc::new(crate::net::ScpStats::default());
    crate::net::serve(listener, scp, stop, stats)?;
    Ok(ExitCode::SUCCESS)
}
