//! The `sigstream` binary: parse the command line, run, map errors to exit
//! codes (2 for bad input or usage, 1 for failures at run time).
//!
//! The command-line front ([`cli`]) lives in the binary, not the library:
//! it can use only the library's public API, so everything a command checks
//! or computes is available to every other front as well.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::Cli;

/// Buffers above 128 KiB come from their own mappings, given back to the
/// OS when freed, for the whole run. By default glibc raises that
/// threshold each time such a buffer is freed (up to 32 MiB), so the next
/// buffers of that size come from the heap and stay resident after they
/// are freed: a run whose passes free large buffers before the next pass
/// allocates its own (the zero-phase passes, then the streaming pass)
/// would hold both, past the memory budget that counts them one at a time.
/// Setting the threshold turns that adjustment off.
fn pin_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter, under glibc's own
    // arena locks (it is thread-safe), before any buffer is allocated.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

fn main() -> ExitCode {
    // First, before any thread starts: the interruption signals are taken
    // by one thread that removes temporary files.
    cli::signals::install();
    pin_mmap_threshold();
    // A panic is a bug; say so in one line instead of a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("sigstream: internal error: {info}");
    }));
    let cli = Cli::parse();
    let result = cli::run(&cli);
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("sigstream: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
