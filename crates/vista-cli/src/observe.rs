//! The binary's [`Observer`]: a progress bar on stderr for each task, the epoch tables
//! on stdout, notes and warnings on stderr. `--quiet` keeps the warnings only.

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use vista_format::{EpochMetrics, GanEpoch, Observer, Observers};

/// Shows what the library calls report on the terminal.
#[derive(Debug)]
pub struct Terminal {
    /// Bars, tables and notes; warnings show either way.
    show: bool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    bar: Option<ProgressBar>,
    /// Which table's header was printed last: a table starts again after a note (a new
    /// fold, a resumed run) or when the other kind of epoch comes.
    header: Option<Table>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Train,
    Gan,
}

/// The observer of a command: shows everything, or (`--quiet`) warnings only.
pub fn terminal(progress: bool) -> Observers {
    Observers::new(Terminal {
        show: progress,
        state: Mutex::default(),
    })
}

impl Terminal {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves nothing half-written here.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn row(&self, table: Table, header: String, row: String) {
        if !self.show {
            return;
        }
        let mut state = self.state();
        let print = |text: &str| match &state.bar {
            Some(bar) => bar.suspend(|| println!("{text}")),
            None => println!("{text}"),
        };
        if state.header != Some(table) {
            print(&header);
        }
        print(&row);
        state.header = Some(table);
    }

    fn line(&self, text: &str) {
        let state = self.state();
        match &state.bar {
            Some(bar) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }
}

impl Observer for Terminal {
    fn begin(&self, task: &str, len: u64) {
        if !self.show {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>18} [{bar:30}] {pos}/{len} {msg} ({per_sec}, eta {eta})",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(task.to_string());
        if let Some(old) = self.state().bar.replace(bar) {
            old.finish_and_clear();
        }
    }

    fn step(&self, n: u64) {
        if let Some(bar) = &self.state().bar {
            bar.inc(n);
        }
    }

    fn status(&self, text: &str) {
        if let Some(bar) = &self.state().bar {
            bar.set_message(text.to_string());
        }
    }

    fn end(&self) {
        if let Some(bar) = self.state().bar.take() {
            bar.finish_and_clear();
        }
    }

    fn epoch(&self, m: &EpochMetrics) {
        self.row(Table::Train, EpochMetrics::table_header(), m.table_row());
    }

    fn gan_epoch(&self, m: &GanEpoch) {
        self.row(Table::Gan, GanEpoch::table_header(), m.table_row());
    }

    fn note(&self, text: &str) {
        if self.show {
            self.line(text);
            self.state().header = None;
        }
    }

    fn warn(&self, text: &str) {
        self.line(&format!("warning: {text}"));
    }
}
