//! Image build and pull progress: a spinner with the current step on a terminal, plain lines
//! otherwise (logs, CI).

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sandpit::image::Progress;

/// Where progress goes while an image is made; [`Reporter::finish`] clears the spinner.
pub struct Reporter {
    bar: Option<ProgressBar>,
    sink: Progress,
}

impl Reporter {
    /// A reporter whose plain lines start with `prefix`.
    pub fn new(prefix: &'static str) -> Self {
        if !std::io::stderr().is_terminal() {
            return Reporter {
                bar: None,
                sink: Arc::new(move |line: &str| {
                    eprintln!("{prefix}{}", crate::progress_line(line))
                }),
            };
        }
        let bar = ProgressBar::hidden();
        let shown = bar.clone();
        let started = std::sync::Once::new();
        Reporter {
            bar: Some(bar),
            sink: Arc::new(move |line: &str| {
                started.call_once(|| {
                    shown.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                    shown.set_style(
                        ProgressStyle::with_template("{spinner} [{elapsed}] {wide_msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    shown.enable_steady_tick(Duration::from_millis(120));
                });
                shown.set_message(crate::progress_line(line.trim()));
            }),
        }
    }

    /// The sink to hand to the library.
    pub fn sink(&self) -> Progress {
        self.sink.clone()
    }

    /// Clears the spinner.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
