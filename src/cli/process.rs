//! `sigstream process`: the library's [`sigstream::process`] with a
//! progress bar, warnings on stderr, a summary line per input and the
//! report.

use std::path::Path;

use indicatif::ProgressBar;

use super::{group, progress_bar, report_failure, write_report};
use sigstream::error::Result;
use sigstream::process::{Observer, ProcessOptions};
use sigstream::report::Report;

/// Shows an input's progress on a bar and its warnings on stderr, unless
/// `--quiet`.
struct Terminal {
    quiet: bool,
    bar: Option<ProgressBar>,
}

impl Observer for Terminal {
    fn warn(&mut self, input: &Path, msg: &str, is_note: bool) {
        if !self.quiet {
            let kind = if is_note { "note" } else { "warning" };
            eprintln!("sigstream: {kind}: {}: {msg}", input.display());
        }
    }

    fn start(&mut self, input: &Path, total: Option<u64>) {
        self.bar = Some(progress_bar(
            self.quiet,
            &input.display().to_string(),
            total,
        ));
    }

    fn progress(&mut self, done: u64) -> Result<()> {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
        Ok(())
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// `sigstream process`: returns the exit code.
pub fn run(args: &ProcessOptions) -> Result<i32> {
    let prepared = args.prepare()?;
    let backend = prepared.backend();
    let mut report = Report::new("process");
    report.set_backend(backend.name(), &backend.device());
    let mut terminal = Terminal {
        quiet: args.run.quiet,
        bar: None,
    };
    let mut code = 0;
    for input in prepared.inputs() {
        match prepared.process(input, &mut terminal) {
            Ok((entry, stats)) => {
                if !args.run.quiet && args.report.is_none() {
                    eprintln!(
                        "{}: {} samples × {} ch, {} events, {:.2} s, {:.0} MB/s, peak {:.1} MiB",
                        input.display(),
                        group(stats.samples),
                        stats.channels,
                        group(stats.events),
                        stats.seconds,
                        stats.throughput_mb_s,
                        stats.peak_rss_mb
                    );
                }
                report.push(entry);
            }
            Err(e) => {
                report_failure(&e, &mut code);
                report.push_error(input, &e);
            }
        }
    }
    if let Some(path) = &args.report {
        write_report(path, &report.finish())?;
    }
    Ok(code)
}
