//! A running job's live view: the engines' progress callbacks write it, the API reads it.

use std::sync::{Arc, Mutex};

use crate::model::{AgentJobView, KeyspaceRun, KeyspaceStatus};

/// The shared view of one agent job.
#[derive(Clone)]
pub struct Live(pub Arc<Mutex<AgentJobView>>);

impl Live {
    /// A copy of the view as it is now.
    pub fn snapshot(&self) -> AgentJobView {
        self.lock().clone()
    }

    /// Changes the view.
    pub fn update(&self, f: impl FnOnce(&mut AgentJobView)) {
        f(&mut self.lock());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AgentJobView> {
        // A panicking engine thread must not take the job's view with it.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stage(&self, stage: impl serde::Serialize, detail: &str) {
        let stage = serde_json::to_value(stage).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        self.update(|v| {
            v.progress.stage = stage;
            v.progress.detail = detail.to_string();
        });
    }

    fn selected(&self, keyspaces: &[String]) {
        self.update(|v| v.remaining_keyspaces = keyspaces.to_vec());
    }

    /// A keyspace finished: moved from remaining to processed.
    pub fn keyspace_done(&self, name: &str, ok: bool, duration_ms: u64, error: Option<String>) {
        self.update(|v| {
            v.remaining_keyspaces.retain(|k| k != name);
            let status = if ok { KeyspaceStatus::Success } else { KeyspaceStatus::Failure };
            v.keyspaces.insert(name.to_string(), KeyspaceRun { status, duration_millis: duration_ms, error });
        });
    }

    fn add_total(&self, files: u64, bytes: u64) {
        self.update(|v| {
            v.progress.files_total += files;
            v.progress.bytes_total += bytes;
        });
    }

    fn file_done(&self, bytes: u64) {
        self.update(|v| {
            v.progress.files_done += 1;
            v.progress.bytes_done += bytes;
        });
    }
}

impl cassette_backup::Progress for Live {
    fn stage(&self, stage: cassette_backup::Stage, detail: &str) {
        Live::stage(self, stage, detail);
    }
    fn add_total(&self, files: u64, bytes: u64) {
        Live::add_total(self, files, bytes);
    }
    fn file_stored(&self, bytes: u64, _copied: bool) {
        self.file_done(bytes);
    }
    fn keyspaces_selected(&self, keyspaces: &[String]) {
        self.selected(keyspaces);
    }
    fn keyspace_finished(&self, o: &cassette_backup::KeyspaceOutcome) {
        self.keyspace_done(&o.name, o.status == cassette_backup::Status::Success, o.duration_ms, o.error.clone());
    }
}

impl cassette_restore::Progress for Live {
    fn stage(&self, stage: cassette_restore::Stage, detail: &str) {
        Live::stage(self, stage, detail);
    }
    fn add_total(&self, files: u64, bytes: u64) {
        Live::add_total(self, files, bytes);
    }
    fn file_verified(&self, bytes: u64) {
        self.file_done(bytes);
    }
    fn keyspaces_selected(&self, keyspaces: &[String]) {
        self.selected(keyspaces);
    }
    fn keyspace_finished(&self, o: &cassette_restore::KeyspaceOutcome) {
        self.keyspace_done(&o.name, o.status == cassette_restore::Status::Success, o.duration_ms, o.error.clone());
    }
}
