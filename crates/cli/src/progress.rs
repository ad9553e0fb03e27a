//! The terminal progress bar of a backup (bytes, files, throughput), hidden off a terminal.

use cassette_backup::{Progress, Stage, TableOutcome};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::atomic::{AtomicU64, Ordering};

pub struct BarProgress {
    bar: ProgressBar,
    files_done: AtomicU64,
    files_total: AtomicU64,
}

impl BarProgress {
    pub fn new(enabled: bool) -> Self {
        let target = if enabled { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let bar = ProgressBar::with_draw_target(Some(0), target);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {prefix:>9} {wide_msg}\n  [{bar:40}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        BarProgress { bar, files_done: AtomicU64::new(0), files_total: AtomicU64::new(0) }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn files_msg(&self) -> String {
        format!("files {}/{}", self.files_done.load(Ordering::Relaxed), self.files_total.load(Ordering::Relaxed))
    }
}

impl Progress for BarProgress {
    fn stage(&self, stage: Stage, detail: &str) {
        self.bar.set_prefix(format!("{stage:?}").to_lowercase());
        self.bar.set_message(format!("{detail} {}", self.files_msg()));
    }
    fn add_total(&self, files: u64, bytes: u64) {
        self.files_total.fetch_add(files, Ordering::Relaxed);
        self.bar.inc_length(bytes);
    }
    fn file_stored(&self, bytes: u64, _copied: bool) {
        self.files_done.fetch_add(1, Ordering::Relaxed);
        self.bar.inc(bytes);
    }
    fn table_finished(&self, outcome: &TableOutcome) {
        self.bar.set_message(format!("{}.{} {}", outcome.keyspace, outcome.table, self.files_msg()));
        if let Some(e) = &outcome.error {
            self.bar.suspend(|| eprintln!("table {}.{} FAILED: {e}", outcome.keyspace, outcome.table));
        }
    }
}
