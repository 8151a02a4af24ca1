//! Every WGSL file under `shaders/` parses and validates with naga, the
//! shader compiler wgpu uses, independently of any GPU. Libraries under
//! `shaders/lib/` are validated alone, and each kernel that the host loads
//! with a library in front is validated as that same concatenation.

use std::path::Path;

/// Kernels loaded with a library prepended (`concat!` in the host code):
/// (kernel file, library file under `shaders/`).
const PRELUDES: &[(&str, &str)] = &[
    ("fft_real.wgsl", "lib/fft_core.wgsl"),
    ("fft_stockham.wgsl", "lib/fft_core.wgsl"),
    ("fir_overlap_save.wgsl", "lib/fft_core.wgsl"),
];

fn validate(name: &str, source: &str) {
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    )
    .validate(&module)
    .unwrap_or_else(|e| panic!("{name}: {e:?}"));
}

fn wgsl_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("directory exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wgsl"))
        .collect();
    entries.sort();
    entries
}

#[test]
fn every_shader_parses_and_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut checked = 0;
    for path in wgsl_files(&dir) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        let mut source = String::new();
        if let Some((_, lib)) = PRELUDES.iter().find(|(k, _)| *k == name) {
            source += &std::fs::read_to_string(dir.join(lib)).expect("readable library");
        }
        source += &std::fs::read_to_string(&path).expect("readable shader");
        validate(&path.display().to_string(), &source);
        checked += 1;
    }
    assert!(checked > 0, "no shaders found in {}", dir.display());
}

#[test]
fn every_shader_library_validates_alone() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders/lib");
    for path in wgsl_files(&dir) {
        let source = std::fs::read_to_string(&path).expect("readable library");
        validate(&path.display().to_string(), &source);
    }
}
