//! `sigstream bench`: the same `process` job on every backend, compared.

use std::path::PathBuf;

use clap::Args;

use super::{BackendArg, out};
use sigstream::error::{Error, Result};

/// `sigstream bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The input file.
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,
    /// Backends to run, the first being the reference others are compared
    /// to (default: cpu, then gpu when an adapter exists).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub backends: Vec<BackendArg>,
    /// Runs per backend; the table shows the median time.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub repeat: usize,
    /// `process` options for the job (filter, detector, input format,
    /// chunk size...), as for `sigstream process`; outputs and --backend are
    /// set by bench. Everything after INPUT goes to `process`, so bench's own
    /// options (--backends, --repeat) come before INPUT.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "OPS"
    )]
    pub ops: Vec<String>,
}

/// `sigstream bench`: runs the job on every backend and prints the table.
pub fn run(args: &BenchArgs) -> Result<i32> {
    const OWN: [&str; 6] = [
        "-o",
        "--output",
        "--events",
        "--report",
        "--backend",
        "--gpu-adapter",
    ];
    if let Some(bad) = args.ops.iter().find(|o| {
        OWN.iter()
            .any(|own| o.as_str() == *own || o.starts_with(&format!("{own}=")))
    }) {
        return Err(Error::usage(format!(
            "bench sets {bad} itself; give only the job's options"
        )));
    }
    if args.repeat == 0 {
        return Err(Error::usage("--repeat must be at least 1"));
    }
    if !args.input.is_file() {
        return Err(match std::fs::metadata(&args.input) {
            Err(e) => Error::open(&args.input, e),
            Ok(_) => Error::format(
                &args.input,
                "not a regular file (bench reads it several times)",
            ),
        });
    }
    let backends: Vec<String> = if args.backends.is_empty() {
        super::bench_run::available_backends()
    } else {
        args.backends.iter().map(|b| b.name().to_owned()).collect()
    };
    let results = super::bench_run::run(&args.input, &args.ops, &backends, args.repeat)?;
    out(&super::bench_run::table(&results))?;
    Ok(0)
}
