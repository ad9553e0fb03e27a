//! The restore journal: which tables a restore truncated and loaded, so it can be resumed,
//! and so a truncation that would wipe restored data is refused.
//!
//! One JSON line per event, appended and fsynced, in the backup being restored:
//!
//! ```text
//! <root>/<cluster>/<host ID of the backup>/<name>/cassette-meta/restore-<host ID restored>.jsonl
//! ```
//!
//! A *run* is the records after the last `finished` or `reset` line. Within the current
//! (unfinished) run, a table recorded `loaded` is skipped and a table recorded `truncated` is
//! not truncated again. Before truncating, the journals of every node's backup of that name are
//! read: a table loaded after its latest truncation (by another node, or by this node in a
//! load-only run) must not be truncated, since TRUNCATE is cluster-wide. `--new-restore` writes
//! a `reset` line, after which earlier records count for nothing.
//!
//! TRUNCATE is cluster-wide, not wider: only the journals of nodes of the cluster being restored
//! count (the same backup may be restored into `prod` and into `staging`). Each `started` line
//! records the restored node's cluster: its name and the host IDs of its ring. A journal counts
//! when its node is in the ring now, or when it recorded a cluster of the same name whose ring
//! shares a host ID with this one (a node since removed). A journal of an older cassette, which
//! recorded no cluster, counts only when its node is in the ring now: host IDs are unique, so a
//! node outside the ring did not load into this cluster, unless it has since left the ring
//! (then its old journal cannot be told from another cluster's, and is not counted).
//!
//! An offline restore (`--offline`) journals its own steps in the same file: the plan
//! (`offline_planned`: directories, quarantine, live table ids; everything a rerun needs when
//! the node is down), `drained`, `node_stopped`, one `quarantined` per directory or table whose
//! live files were moved to the quarantine, one `placed` per table whose backed-up files are
//! in place, `node_started`, then `finished`. A rerun continues after the last step recorded:
//! what was quarantined is never quarantined again (that would quarantine the restored files).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Mode;
use crate::offline::OfflinePlan;

/// One line of a restore journal. Keyspace and table are the live names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    /// A restore started (or resumed).
    Started {
        /// When.
        at: DateTime<Utc>,
        /// What it does.
        mode: Mode,
        /// The cluster of the node restored (absent in journals of older versions).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cluster: Option<ClusterRef>,
    },
    /// `TRUNCATE keyspace.table` succeeded.
    Truncated {
        /// When.
        at: DateTime<Utc>,
        /// Live keyspace.
        keyspace: String,
        /// Live table.
        table: String,
        /// The snapshot the truncation left on this node, if found.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        snapshot: Option<String>,
    },
    /// `nodetool import` of the table's backed-up SSTables succeeded.
    Loaded {
        /// When.
        at: DateTime<Utc>,
        /// Live keyspace.
        keyspace: String,
        /// Live table.
        table: String,
        /// The mode of the run that loaded it.
        mode: Mode,
        /// Files loaded.
        files: u64,
        /// Bytes loaded.
        bytes: u64,
    },
    /// An offline restore is about to drain and stop the node: what it will do, and where.
    OfflinePlanned {
        /// When.
        at: DateTime<Utc>,
        /// The plan (a rerun with the node down continues from it).
        plan: OfflinePlan,
    },
    /// `nodetool drain` succeeded (offline restore).
    Drained {
        /// When.
        at: DateTime<Utc>,
    },
    /// The node's process is down: its CQL and JMX ports no longer answer (offline restore).
    NodeStopped {
        /// When.
        at: DateTime<Utc>,
    },
    /// The live files of `item` were moved into the quarantine (offline restore). `item` is
    /// `commitlog`, `saved_caches` or `keyspace.table` (live names).
    Quarantined {
        /// When.
        at: DateTime<Utc>,
        /// What.
        item: String,
        /// Files moved.
        files: u64,
    },
    /// The backed-up files of a table are in its live directory (offline restore).
    Placed {
        /// When.
        at: DateTime<Utc>,
        /// Live keyspace.
        keyspace: String,
        /// Live table.
        table: String,
        /// Files placed.
        files: u64,
        /// Bytes placed.
        bytes: u64,
    },
    /// The start command ran and the node is up (CQL, `UN`) (offline restore).
    NodeStarted {
        /// When.
        at: DateTime<Utc>,
    },
    /// Every selected table of the run succeeded: the next restore starts a new run.
    Finished {
        /// When.
        at: DateTime<Utc>,
    },
    /// `--new-restore`: earlier records of every journal of this backup no longer count.
    Reset {
        /// When.
        at: DateTime<Utc>,
    },
}

/// Which cluster a node is in: its name, and the host IDs of its ring when the journal was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRef {
    /// `cluster_name`.
    pub name: String,
    /// The host IDs of every node of the ring (the node's own, and its peers').
    pub host_ids: Vec<String>,
}

impl ClusterRef {
    /// Whether the journal of `host` (its records) was written by a node of this cluster.
    fn holds(&self, host: &str, records: &[Record]) -> bool {
        self.host_ids.iter().any(|h| h == host)
            || records.iter().any(|r| match r {
                Record::Started { cluster: Some(c), .. } => {
                    c.name == self.name && c.host_ids.iter().any(|h| self.host_ids.contains(h))
                }
                _ => false,
            })
    }
}

impl Record {
    fn at(&self) -> DateTime<Utc> {
        match self {
            Record::Started { at, .. }
            | Record::Truncated { at, .. }
            | Record::Loaded { at, .. }
            | Record::Finished { at }
            | Record::Reset { at }
            | Record::OfflinePlanned { at, .. }
            | Record::Drained { at }
            | Record::NodeStopped { at }
            | Record::Quarantined { at, .. }
            | Record::Placed { at, .. }
            | Record::NodeStarted { at } => *at,
        }
    }
}

/// The journal file of restoring `host_id` from the backup at `backup_dir`.
pub fn journal_path(backup_dir: &Path, host_id: &str) -> PathBuf {
    cassette_store::restore_journal_in(backup_dir, host_id)
}

/// Reads a journal; a missing file is empty, a torn or unreadable line (a crash while writing
/// it) is skipped.
pub fn load(path: &Path) -> Vec<Record> {
    // A link or a FIFO planted as a journal is neither followed nor waited on.
    let Ok(Some(bytes)) = cassette_repo::fsutil::read_regular(path) else { return Vec::new() };
    String::from_utf8_lossy(&bytes).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// What the current run of this node's journal already did.
#[derive(Debug, Default)]
pub(crate) struct RunState {
    pub truncated: BTreeMap<String, Option<String>>,
    pub loaded: BTreeSet<String>,
    /// The offline restore of this run: its latest plan and the steps done since.
    pub offline: Option<OfflineState>,
}

/// The steps an unfinished offline restore did since its latest plan.
#[derive(Debug, Clone, Default)]
pub(crate) struct OfflineState {
    pub plan: OfflinePlan,
    pub drained: bool,
    pub stopped: bool,
    pub quarantined: BTreeSet<String>,
    pub placed: BTreeSet<String>,
    pub started: bool,
}

impl RunState {
    /// The records after the last `finished` or `reset`.
    pub fn of(records: &[Record]) -> RunState {
        let start = records
            .iter()
            .rposition(|r| matches!(r, Record::Finished { .. } | Record::Reset { .. }))
            .map_or(0, |i| i + 1);
        let mut state = RunState::default();
        for r in &records[start..] {
            match r {
                Record::Truncated { keyspace, table, snapshot, .. } => {
                    state.truncated.insert(format!("{keyspace}.{table}"), snapshot.clone());
                }
                Record::Loaded { keyspace, table, .. } => {
                    state.loaded.insert(format!("{keyspace}.{table}"));
                }
                Record::OfflinePlanned { plan, .. } => {
                    state.offline = Some(OfflineState { plan: plan.clone(), ..Default::default() });
                }
                Record::Drained { .. } => state.offline.iter_mut().for_each(|o| o.drained = true),
                Record::NodeStopped { .. } => state.offline.iter_mut().for_each(|o| o.stopped = true),
                Record::Quarantined { item, .. } => state.offline.iter_mut().for_each(|o| {
                    o.quarantined.insert(item.clone());
                }),
                Record::Placed { keyspace, table, .. } => state.offline.iter_mut().for_each(|o| {
                    o.placed.insert(format!("{keyspace}.{table}"));
                }),
                Record::NodeStarted { .. } => state.offline.iter_mut().for_each(|o| o.started = true),
                _ => {}
            }
        }
        state
    }

    pub fn is_empty(&self) -> bool {
        self.truncated.is_empty() && self.loaded.is_empty() && self.offline.is_none()
    }
}

/// For each table (`keyspace.table`) that must not be truncated, the journal and time of the
/// load that forbids it. `journals` are `(host ID restored, records)` of every node's backup of
/// this name; `me` is the node about to truncate, in `cluster`: only the journals of that
/// cluster's nodes count (see the module documentation).
pub(crate) fn loads_a_truncation_would_wipe(
    journals: &[(String, Vec<Record>)],
    me: &str,
    cluster: &ClusterRef,
) -> BTreeMap<String, String> {
    let journals: Vec<&(String, Vec<Record>)> = journals.iter().filter(|(h, rs)| cluster.holds(h, rs)).collect();
    let reset =
        journals.iter().flat_map(|(_, rs)| rs).filter(|r| matches!(r, Record::Reset { .. })).map(Record::at).max();
    let mut last_truncate: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    for r in journals.iter().flat_map(|(_, rs)| rs) {
        if let Record::Truncated { at, keyspace, table, .. } = r {
            let e = last_truncate.entry(format!("{keyspace}.{table}")).or_insert(*at);
            *e = (*e).max(*at);
        }
    }
    let mut out = BTreeMap::new();
    for (host, records) in journals {
        for r in records {
            let Record::Loaded { at, keyspace, table, mode, .. } = r else { continue };
            let name = format!("{keyspace}.{table}");
            let after_truncate = last_truncate.get(&name).is_none_or(|t| at > t);
            let after_reset = reset.is_none_or(|t| *at > t);
            // This node's own truncate-and-load runs are complete restores of their own:
            // truncating again restores the same backup again.
            let own_complete_restore = host == me && *mode == Mode::TruncateAndLoad;
            if after_truncate && after_reset && !own_complete_restore {
                out.insert(name, format!("the restore of host ID {host} loaded it from this backup at {at} (journal restore-{host}.jsonl)"));
            }
        }
    }
    out
}

/// An open journal: appends one fsynced line per record.
pub(crate) struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    pub fn open(path: &Path) -> Result<Journal, cassette_repo::RepoError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| cassette_repo::RepoError::io("create directory", parent, e))?;
        }
        // Never through a symbolic link, only a regular file of its own (the repository path
        // policy, `cassette_repo::beneath`).
        let file = cassette_repo::fsutil::open_append_nofollow(path)?;
        // A torn last line (crash while writing) would glue onto the next record: cut it off.
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut (&file), &mut text)
            .map_err(|e| cassette_repo::RepoError::io("read", path, e))?;
        if !text.is_empty() && !text.ends_with(b"\n") {
            let keep = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            file.set_len(keep as u64).map_err(|e| cassette_repo::RepoError::io("truncate", path, e))?;
        }
        Ok(Journal { file, path: path.to_owned() })
    }

    pub fn append(&mut self, record: &Record) -> Result<(), cassette_repo::RepoError> {
        let mut line = serde_json::to_vec(record).expect("journal records serialize");
        line.push(b'\n');
        self.file.write_all(&line).map_err(|e| cassette_repo::RepoError::io("append to", &self.path, e))?;
        self.file.sync_data().map_err(|e| cassette_repo::RepoError::io("sync", &self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }
    fn truncated(s: i64, table: &str) -> Record {
        Record::Truncated { at: t(s), keyspace: "ks".into(), table: table.into(), snapshot: None }
    }
    fn loaded(s: i64, table: &str, mode: Mode) -> Record {
        Record::Loaded { at: t(s), keyspace: "ks".into(), table: table.into(), mode, files: 1, bytes: 1 }
    }

    #[test]
    fn run_state_starts_after_finished() {
        let records = vec![
            truncated(1, "a"),
            loaded(2, "a", Mode::TruncateAndLoad),
            Record::Finished { at: t(3) },
            truncated(4, "b"),
        ];
        let s = RunState::of(&records);
        assert!(s.loaded.is_empty());
        assert_eq!(s.truncated.keys().collect::<Vec<_>>(), ["ks.b"]);
    }

    fn ring(name: &str, hosts: &[&str]) -> ClusterRef {
        ClusterRef { name: name.into(), host_ids: hosts.iter().map(|h| h.to_string()).collect() }
    }

    #[test]
    fn guard_refuses_truncating_what_a_cluster_restore_loaded() {
        let prod = ring("prod", &["n1", "n2", "n3"]);
        // Node 1 truncated once, nodes 1 and 2 loaded: truncating again (anywhere) would wipe it.
        let journals = vec![
            ("n1".to_string(), vec![truncated(1, "a"), Record::Finished { at: t(2) }, loaded(3, "a", Mode::LoadOnly)]),
            ("n2".to_string(), vec![loaded(4, "a", Mode::LoadOnly)]),
        ];
        let wiped = loads_a_truncation_would_wipe(&journals, "n3", &prod);
        assert!(wiped["ks.a"].contains("host ID"), "{wiped:?}");
        assert!(loads_a_truncation_would_wipe(&journals, "n1", &prod).contains_key("ks.a"));
        // A reset (--new-restore) forgets it.
        let mut with_reset = journals.clone();
        with_reset[0].1.push(Record::Reset { at: t(5) });
        assert!(loads_a_truncation_would_wipe(&with_reset, "n1", &prod).is_empty());
        // Loads before the latest truncation were already wiped: no objection.
        let journals = vec![("n1".to_string(), vec![loaded(1, "a", Mode::LoadOnly), truncated(2, "a")])];
        assert!(loads_a_truncation_would_wipe(&journals, "n2", &prod).is_empty());
        // This node's own complete restore may be repeated.
        let journals = vec![("n1".to_string(), vec![truncated(1, "a"), loaded(2, "a", Mode::TruncateAndLoad)])];
        assert!(loads_a_truncation_would_wipe(&journals, "n1", &prod).is_empty());
        assert!(!loads_a_truncation_would_wipe(&journals, "n2", &prod).is_empty());
    }

    #[test]
    fn guard_counts_only_the_journals_of_the_cluster_restored() {
        let started = |cluster: &ClusterRef| Record::Started {
            at: t(0),
            mode: Mode::TruncateAndLoad,
            cluster: Some(cluster.clone()),
        };
        let prod = ring("prod", &["p1", "p2"]);
        let staging = ring("staging", &["s1"]);
        let journals = vec![
            ("p1".to_string(), vec![started(&prod), truncated(1, "a"), loaded(2, "a", Mode::TruncateAndLoad)]),
            ("s1".to_string(), vec![started(&staging), truncated(3, "a"), loaded(4, "a", Mode::TruncateAndLoad)]),
        ];
        // Each cluster may restore again: the other's loads and truncations are not its own.
        assert!(loads_a_truncation_would_wipe(&journals, "p1", &prod).is_empty());
        assert!(loads_a_truncation_would_wipe(&journals, "s1", &staging).is_empty());
        // A truncation on p2 would wipe p1's load, not because of s1's.
        let wiped = loads_a_truncation_would_wipe(&journals, "p2", &prod);
        assert!(wiped["ks.a"].contains("host ID p1"), "{wiped:?}");
        // A reset in staging does not forget prod's loads.
        let mut reset = journals.clone();
        reset[1].1.push(Record::Reset { at: t(5) });
        assert!(loads_a_truncation_would_wipe(&reset, "p2", &prod).contains_key("ks.a"));
        // Two clusters with the same (default) name are told apart by their host IDs.
        let other = ring("prod", &["x1"]);
        assert!(loads_a_truncation_would_wipe(&journals, "x1", &other).is_empty());
        // A node that left the ring still counts when its journal recorded this cluster.
        let shrunk = ring("prod", &["p2"]);
        assert!(loads_a_truncation_would_wipe(&journals, "p2", &shrunk).contains_key("ks.a"));
        // An older journal (no cluster recorded) counts when its node is in the ring.
        let old = vec![("p1".to_string(), vec![truncated(1, "a"), loaded(2, "a", Mode::LoadOnly)])];
        assert!(loads_a_truncation_would_wipe(&old, "p2", &prod).contains_key("ks.a"));
        assert!(loads_a_truncation_would_wipe(&old, "s1", &staging).is_empty());
        // Started lines of older versions still parse.
        let r: Record =
            serde_json::from_str(r#"{"record":"started","at":"2026-01-01T00:00:00Z","mode":"truncate_and_load"}"#)
                .unwrap();
        assert!(matches!(r, Record::Started { cluster: None, .. }));
    }

    #[test]
    fn offline_steps_count_from_the_latest_plan() {
        let plan = |host: &str| Record::OfflinePlanned {
            at: t(1),
            plan: OfflinePlan { host_id: host.into(), ..Default::default() },
        };
        let records = vec![
            plan("a"),
            Record::Drained { at: t(2) },
            Record::NodeStopped { at: t(3) },
            plan("b"),
            Record::Drained { at: t(4) },
            Record::NodeStopped { at: t(5) },
            Record::Quarantined { at: t(6), item: "commitlog".into(), files: 2 },
            Record::Placed { at: t(7), keyspace: "ks".into(), table: "a".into(), files: 1, bytes: 1 },
        ];
        let o = RunState::of(&records).offline.unwrap();
        assert_eq!(o.plan.host_id, "b");
        assert!(o.drained && o.stopped && !o.started);
        assert!(o.quarantined.contains("commitlog") && o.placed.contains("ks.a"));
        // Written and read back as JSON lines.
        let d = tempfile::tempdir().unwrap();
        let p = journal_path(d.path(), "h1");
        let mut j = Journal::open(&p).unwrap();
        for r in &records {
            j.append(r).unwrap();
        }
        assert_eq!(load(&p), records);
        let mut finished = records.clone();
        finished.push(Record::Finished { at: t(8) });
        assert!(RunState::of(&finished).offline.is_none());
    }

    #[test]
    fn torn_last_line_is_cut_before_appending() {
        let d = tempfile::tempdir().unwrap();
        let p = journal_path(d.path(), "h1");
        let mut j = Journal::open(&p).unwrap();
        j.append(&truncated(1, "a")).unwrap();
        drop(j);
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"record\":\"loa").unwrap();
        let mut j = Journal::open(&p).unwrap();
        j.append(&loaded(2, "a", Mode::TruncateAndLoad)).unwrap();
        assert_eq!(load(&p), vec![truncated(1, "a"), loaded(2, "a", Mode::TruncateAndLoad)]);
        assert!(p.ends_with("cassette-meta/restore-h1.jsonl"));
    }
}
