//! The `lightbox` command line: see `lightbox --help`.

fn main() -> std::process::ExitCode {
    let _ = lightbox::ui::PROCESS_START.set(std::time::Instant::now());
    lightbox::cli::main()
}
