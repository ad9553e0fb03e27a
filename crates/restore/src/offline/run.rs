//! An offline restore under way, past its dry-run point: each step is journaled as soon as it
//! is done, and the run's state is only ever what its journal says (as a rerun would read it).

use std::path::{Path, PathBuf};

use super::report::{OfflineStep, step};
use crate::journal::{Journal, OfflineState, Record};
use crate::{Progress, RestoreError};

pub(super) struct Run<'a> {
    journal: Journal,
    journal_path: PathBuf,
    /// What the journal says is done (including by an interrupted run).
    pub state: OfflineState,
    /// The steps reported so far.
    pub steps: Vec<OfflineStep>,
    pub progress: &'a dyn Progress,
}

impl<'a> Run<'a> {
    pub fn open(
        journal_path: &Path,
        state: OfflineState,
        steps: Vec<OfflineStep>,
        progress: &'a dyn Progress,
    ) -> Result<Self, RestoreError> {
        let journal = Journal::open(journal_path)?;
        Ok(Run { journal, journal_path: journal_path.into(), state, steps, progress })
    }

    pub fn journal_path(&self) -> &Path {
        &self.journal_path
    }

    /// Journals `record`, then counts what it records as done.
    pub fn record(&mut self, record: Record) -> Result<(), RestoreError> {
        self.journal.append(&record)?;
        match record {
            Record::Drained { .. } => self.state.drained = true,
            Record::NodeStopped { .. } => self.state.stopped = true,
            Record::Quarantined { item, .. } => {
                self.state.quarantined.insert(item);
            }
            Record::Placed { keyspace, table, .. } => {
                self.state.placed.insert(format!("{keyspace}.{table}"));
            }
            Record::NodeStarted { .. } => self.state.started = true,
            _ => {}
        }
        Ok(())
    }

    pub fn step(&mut self, name: &str, detail: String) {
        self.steps.push(step(name, detail));
    }
}
