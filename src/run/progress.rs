//! Progress bars on stderr (indicatif), hidden when stderr is not a terminal or when asked:
//! bytes read against the input size, resources per second, records per sink.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// The bars of one run.
pub struct Progress {
    _multi: MultiProgress,
    /// Bytes read from storage.
    pub read: ProgressBar,
    /// Resources parsed and checked.
    pub records: ProgressBar,
    /// Records per sink, in plan order (dead letter last).
    pub sinks: Vec<ProgressBar>,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl Progress {
    /// Bars drawn on stderr when `show` and stderr is a terminal; hidden otherwise.
    pub fn new(show: bool, total_bytes: u64, sinks: &[String]) -> Self {
        let visible = show && std::io::stderr().is_terminal();
        let multi = MultiProgress::with_draw_target(if visible {
            ProgressDrawTarget::stderr_with_hz(8)
        } else {
            ProgressDrawTarget::hidden()
        });
        let read = multi.add(ProgressBar::new(total_bytes));
        read.set_style(style(
            "{prefix:>12} [{bar:32}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ));
        read.set_prefix("read");
        let records = multi.add(ProgressBar::no_length());
        records.set_style(style("{prefix:>12} {human_pos} resources, {per_sec}"));
        records.set_prefix("checked");
        let sinks = sinks
            .iter()
            .map(|name| {
                let b = multi.add(ProgressBar::no_length());
                b.set_style(style("{prefix:>12} {human_pos} records {msg}"));
                b.set_prefix(name.clone());
                b
            })
            .collect();
        Progress {
            _multi: multi,
            read,
            records,
            sinks,
        }
    }

    /// Removes the bars before the summary is printed.
    pub fn finish(&self) {
        self.read.finish_and_clear();
        self.records.finish_and_clear();
        for s in &self.sinks {
            s.finish_and_clear();
        }
    }
}
