//! Every WGSL file under `shaders/` parses and validates with naga, the
//! shader compiler wgpu uses, independently of any GPU. Libraries under
//! `shaders/lib/` are validated alone, and each kernel that the host loads
//! with a library in front is validated as that same concatenation.

use std::path::Path;

/// Kernels loaded with a library prepended (`concat!` in the host code):
/// (kernel file, library file under `shaders/`).
const PRELUDES: &[(&str, &[&str])] = &[
    ("detect_classic.wgsl", &["lib/step.wgsl"]),
    ("detect_compact.wgsl", &["lib/step.wgsl"]),
    ("detect_recursive.wgsl", &["lib/step.wgsl"]),
    ("detect_threshold.wgsl", &["lib/step.wgsl"]),
    ("fft_real.wgsl", &["lib/fft_core.wgsl"]),
    ("fft_stockham.wgsl", &["lib/fft_core.wgsl"]),
    ("fir_direct.wgsl", &["lib/step.wgsl"]),
    (
        "fir_overlap_save.wgsl",
        &["lib/step.wgsl", "lib/fft_core.wgsl"],
    ),
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
        if let Some((_, libs)) = PRELUDES.iter().find(|(k, _)| *k == name) {
            for lib in *libs {
                source += &std::fs::read_to_string(dir.join(lib)).expect("readable library");
            }
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

/// `struct Step` in WGSL has the fields of `StepParams`, in the same order,
/// at the same offsets (naga's layout), and the same size.
#[cfg(feature = "gpu")]
#[test]
fn the_wgsl_step_struct_mirrors_step_params() {
    use sigstream::backend::gpu::{STEP_PARAMS_SIZE, StepParams};
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders/lib/step.wgsl");
    let source = std::fs::read_to_string(&path).expect("readable library");
    let module = naga::front::wgsl::parse_str(&source).expect("step.wgsl parses");
    let (_, ty) = module
        .types
        .iter()
        .find(|(_, t)| t.name.as_deref() == Some("Step"))
        .expect("struct Step");
    let naga::TypeInner::Struct { members, span } = &ty.inner else {
        panic!("Step is a struct")
    };
    let got: Vec<(String, u32)> = members
        .iter()
        .map(|m| (m.name.clone().unwrap_or_default(), m.offset))
        .collect();
    // StepParams' fields and offsets, written out from its definition;
    // `pad: [u32; 2]` appears in WGSL as pad0, pad1.
    let p = StepParams::default();
    let base = std::ptr::addr_of!(p) as usize;
    let offset = |f: *const u32| (f as usize - base) as u32;
    let want = vec![
        ("frames".to_owned(), offset(&p.frames)),
        ("drop".to_owned(), offset(&p.drop)),
        ("out_frames".to_owned(), offset(&p.out_frames)),
        ("warm_up".to_owned(), offset(&p.warm_up)),
        ("base_lo".to_owned(), offset(&p.base_lo)),
        ("base_hi".to_owned(), offset(&p.base_hi)),
        ("pad0".to_owned(), offset(&p.pad[0])),
        ("pad1".to_owned(), offset(&p.pad[1])),
    ];
    assert_eq!(got, want);
    assert_eq!(u64::from(*span), STEP_PARAMS_SIZE);
}
