//! Purge: the backups a retention policy no longer keeps, and the leftovers of interrupted
//! jobs, removed node by node under the node's lock.
//!
//! Plan, then execute (so `--dry-run` is the plan): the node lock is tried, never waited for (a
//! node whose lock a running job holds is skipped and reported); its backups are listed again
//! under the lock and judged by [`retention::select`]; then the doomed backups are renamed out
//! of sight, dropped from the node index, and removed, and the leftovers are collected.
//! Backups are complete trees sharing unchanged files by hard link, so removing one never takes
//! a byte from a backup that stays.
//!
//! Leftovers ("garbage"): `.deleting-*` directories of a delete or purge that was killed,
//! `*.partial` files that a killed run left in a complete backup's `cassette-meta` (the resumed
//! run removes those of the table directories itself) or in the node directory, and restore
//! staging directories (`<root>/.restore-staging/<host_id>/<run>`) older than the grace period.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::delete::{self, DELETING_PREFIX, DeleteSummary};
use crate::error::{RepoError, Result};
use crate::layout::{META_DIR, PARTIAL_SUFFIX, RESTORE_STAGING_DIR};
use crate::list::{BackupSummary, list_node, node_dirs};
use crate::lock::NodeLock;
use crate::manifest::{Manifest, ManifestFile};
use crate::retention::{self, Policy, Reason};
use crate::{fault, index};

/// What to purge.
#[derive(Clone, Debug)]
pub struct PurgeOptions {
    /// The retention policy.
    pub policy: Policy,
    /// Plan only: nothing is renamed or removed.
    pub dry_run: bool,
    /// The time ages are measured from.
    pub now: DateTime<Utc>,
    /// Only backups whose names start with this (a schedule's backups); the others are left
    /// alone and do not count for the policy.
    pub name_prefix: Option<String>,
    /// Only backups with these names (a schedule's, as its runs recorded them); the others are
    /// left alone and do not count for the policy.
    pub names: Option<std::collections::BTreeSet<String>>,
}

/// The purge of one node.
#[derive(Clone, Debug, Serialize)]
pub struct NodePurge {
    /// Cluster name (directory name).
    pub cluster: String,
    /// Host ID (directory name).
    pub host_id: String,
    /// Why the node was left alone: a job holds its lock.
    pub skipped: Option<String>,
    /// Why the node could not be purged (it could not be read or locked).
    pub error: Option<String>,
    /// Every backup of the node, kept or deleted, with the reason.
    pub backups: Vec<PlannedBackup>,
    /// Leftovers of interrupted jobs.
    pub garbage: Vec<Leftover>,
}

/// One backup and what purge does with it.
#[derive(Clone, Debug, Serialize)]
pub struct PlannedBackup {
    /// Backup name.
    pub name: String,
    /// Whether it has a manifest.
    pub complete: bool,
    /// Its manifest is there but cannot be read: kept (see `BackupSummary::damaged`).
    pub damaged: bool,
    /// When it finished (complete backups).
    pub finished_at: Option<DateTime<Utc>>,
    /// Kept or not.
    pub keep: bool,
    /// Why, as a code.
    pub reason: Reason,
    /// Why, in words.
    pub why: String,
    /// What its removal freed (`None` when kept, planned only, or failed).
    pub deleted: Option<DeleteSummary>,
    /// Why its removal failed.
    pub error: Option<String>,
}

/// A leftover of an interrupted job.
#[derive(Clone, Debug, Serialize)]
pub struct Leftover {
    /// Its path.
    pub path: PathBuf,
    /// What it is.
    pub kind: LeftoverKind,
    /// Whether it was removed.
    pub removed: bool,
    /// Why its removal failed.
    pub error: Option<String>,
}

/// Kinds of leftovers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeftoverKind {
    /// A `.deleting-*` directory: a delete or purge killed between its rename and its removal.
    InterruptedDelete,
    /// A `*.partial` file that no manifest lists.
    PartialFile,
    /// A restore staging directory older than the grace period.
    RestoreStaging,
    /// Objects (on object storage) of a deleted or abandoned backup that no manifest references.
    UnreferencedObjects,
}

impl NodePurge {
    /// The backups deleted (or, with `dry_run`, to delete).
    pub fn doomed(&self) -> impl Iterator<Item = &PlannedBackup> {
        self.backups.iter().filter(|b| !b.keep)
    }

    /// Whether a removal failed.
    pub fn failed(&self) -> bool {
        self.error.is_some()
            || self.backups.iter().any(|b| b.error.is_some())
            || self.garbage.iter().any(|g| g.error.is_some())
    }
}

impl PurgeOptions {
    /// The backups this purge is about: all, or those with its name prefix.
    pub fn selected(&self, backups: Vec<BackupSummary>) -> Vec<BackupSummary> {
        backups
            .into_iter()
            .filter(|b| self.name_prefix.as_ref().is_none_or(|p| b.name.starts_with(p.as_str())))
            .filter(|b| self.names.as_ref().is_none_or(|n| n.contains(&b.name)))
            .collect()
    }
}

/// What the policy does with each of a node's `backups`; `restoring` says whether a restore
/// is using one (it is then kept whatever its age).
pub fn plan(
    backups: &[BackupSummary],
    opts: &PurgeOptions,
    restoring: impl Fn(&BackupSummary) -> bool,
) -> Vec<PlannedBackup> {
    let reasons = retention::select(backups, &opts.policy, opts.now);
    backups
        .iter()
        .zip(reasons)
        .map(|(b, mut reason)| {
            if !reason.keeps() && b.object_lock.is_some_and(|l| l.holds_at(opts.now)) {
                reason = Reason::Locked;
            } else if !reason.keeps() && restoring(b) {
                reason = Reason::RestoreActive;
            }
            PlannedBackup {
                name: b.name.clone(),
                complete: b.complete,
                damaged: b.damaged,
                finished_at: b.finished_at,
                keep: reason.keeps(),
                why: reason.describe(b, &opts.policy, opts.now),
                reason,
                deleted: None,
                error: None,
            }
        })
        .collect()
}

/// Purges every node under `root` (optionally one cluster and/or host).
pub fn purge(root: &Path, cluster: Option<&str>, host: Option<&str>, opts: &PurgeOptions) -> Result<Vec<NodePurge>> {
    Ok(node_dirs(root, cluster, host)?.iter().map(|d| purge_node(d, opts)).collect())
}

/// Purges one node directory (`<root>/<cluster>/<host_id>`). Never waits for a lock: a node
/// whose lock is held is reported as skipped.
pub fn purge_node(node_dir: &Path, opts: &PurgeOptions) -> NodePurge {
    let name = |p: Option<&Path>| p.and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
    let mut out = NodePurge {
        cluster: name(node_dir.parent()).unwrap_or_default(),
        host_id: name(Some(node_dir)).unwrap_or_default(),
        skipped: None,
        error: None,
        backups: Vec::new(),
        garbage: Vec::new(),
    };
    match plan_and_run(node_dir, opts, &mut out) {
        Ok(()) => {}
        Err(RepoError::LockHeld { pid, since, .. }) => {
            out.skipped = Some(format!(
                "skipped, a job is running (pid {}, since {}): run purge again once it has finished",
                pid.map_or("unknown".into(), |p| p.to_string()),
                since.as_deref().unwrap_or("unknown")
            ))
        }
        Err(e) => out.error = Some(e.to_string()),
    }
    out
}

fn plan_and_run(node_dir: &Path, opts: &PurgeOptions, out: &mut NodePurge) -> Result<()> {
    // The repository lock keeps backups of this node out; the Cassandra-node lock, when this
    // machine runs the node's jobs, also keeps a restore reading these backups out.
    let _lock = NodeLock::acquire(node_dir)?;
    let _job_lock = NodeLock::acquire_host(&out.host_id)?;
    let backups = opts.selected(list_node(node_dir)?);
    out.backups = plan(&backups, opts, |b| restored_recently(&b.path, opts));
    out.garbage = leftovers(node_dir, &out.host_id, &backups, out, opts);
    if opts.dry_run {
        return Ok(());
    }

    // Out of sight first: after the renames (and a crash anywhere later) no listing shows them.
    let mut hidden = Vec::new();
    for (i, b) in out.backups.iter_mut().enumerate().filter(|(_, b)| !b.keep) {
        match delete::hide(node_dir, &b.name) {
            Ok(path) => hidden.push((i, path)),
            Err(e) => b.error = Some(e.to_string()),
        }
        fault::point("purge-hidden");
    }
    if !hidden.is_empty() {
        crate::sync_dir(node_dir)?;
        let names: Vec<&str> = hidden.iter().map(|(i, _)| out.backups[*i].name.as_str()).collect();
        if let Err(e) = index::forget(node_dir, &names) {
            tracing::warn!(node = %node_dir.display(), error = %e, "could not update the node index");
        }
        fault::point("purge-index-updated");
    }
    for (i, path) in hidden {
        match delete::remove_hidden(&path) {
            Ok(summary) => out.backups[i].deleted = Some(summary),
            Err(e) => out.backups[i].error = Some(e.to_string()),
        }
        fault::point("purge-removed");
    }
    // Beneath the repository root, never through a link (`beneath`): a staging directory
    // that is a link to a live keyspace directory is refused, its target untouched.
    let root = node_dir.parent().and_then(Path::parent).unwrap_or(node_dir);
    for g in &mut out.garbage {
        match crate::beneath::remove_all(root, &g.path) {
            Ok(()) => g.removed = true,
            Err(e) => g.error = Some(e.to_string()),
        }
    }
    Ok(())
}

/// Whether a restore journal of the backup was written within the grace period: a restore
/// from another machine may still be reading it.
fn restored_recently(backup_dir: &Path, opts: &PurgeOptions) -> bool {
    let Ok(entries) = std::fs::read_dir(backup_dir.join(META_DIR)) else { return false };
    entries.flatten().any(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        name.starts_with("restore-")
            && name.ends_with(".jsonl")
            && e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| opts.now - DateTime::<Utc>::from(t) < opts.policy.grace())
    })
}

fn leftovers(
    node_dir: &Path,
    host_id: &str,
    backups: &[BackupSummary],
    plan: &NodePurge,
    opts: &PurgeOptions,
) -> Vec<Leftover> {
    let leftover = |path, kind| Leftover { path, kind, removed: false, error: None };
    let mut out = Vec::new();
    // In the node directory: interrupted deletes (the node lock is ours, so no delete runs), and
    // partial files (such as an index being rewritten when its writer was killed).
    for e in std::fs::read_dir(node_dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(DELETING_PREFIX) {
            out.push(leftover(e.path(), LeftoverKind::InterruptedDelete));
        } else if name.ends_with(PARTIAL_SUFFIX) && e.file_type().is_ok_and(|t| t.is_file()) {
            out.push(leftover(e.path(), LeftoverKind::PartialFile));
        }
    }
    // Partial files in kept complete backups: only `cassette-meta` can hold them.
    for (b, p) in backups.iter().zip(&plan.backups) {
        if !(b.complete && p.keep) {
            continue;
        }
        let partials = partial_files(&b.path.join(META_DIR));
        if partials.is_empty() {
            continue;
        }
        // A configuration file may really be named `*.partial`: keep what the manifest lists.
        let Ok(m) = Manifest::read(&b.path) else { continue };
        for p in partials {
            if !m.files().any(|f| b.path.join(&f.path) == p) {
                out.push(leftover(p, LeftoverKind::PartialFile));
            }
        }
    }
    // Restore staging of this node, older than the grace period (no restore of it runs here:
    // the caller holds its job lock).
    let staging = node_dir.parent().and_then(Path::parent).map(|root| root.join(RESTORE_STAGING_DIR).join(host_id));
    for e in staging.and_then(|s| std::fs::read_dir(s).ok()).into_iter().flatten().flatten() {
        let started =
            e.file_name().to_str().and_then(|n| n.parse::<i64>().ok()).and_then(DateTime::from_timestamp_millis);
        if started.is_some_and(|t| opts.now - t > opts.policy.grace()) {
            out.push(leftover(e.path(), LeftoverKind::RestoreStaging));
        }
    }
    out
}

fn partial_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() && e.file_name().to_string_lossy().ends_with(PARTIAL_SUFFIX) => {
                    found.push(e.path())
                }
                _ => {}
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::tests::sample;
    use chrono::Duration;
    use std::fs;

    /// A complete backup `name` of node `node` that finished `days` days ago, with one file of
    /// its own and one shared (hard link) with `shares_with`.
    fn backup(node: &Path, name: &str, days: i64, shares_with: Option<&str>) {
        let dir = node.join(name);
        fs::create_dir_all(dir.join("ks1/t1")).unwrap();
        fs::write(dir.join("ks1/t1/own-Data.db"), name.as_bytes()).unwrap();
        match shares_with {
            Some(other) => {
                fs::hard_link(node.join(other).join("ks1/t1/shared-Data.db"), dir.join("ks1/t1/shared-Data.db"))
                    .unwrap()
            }
            None => fs::write(dir.join("ks1/t1/shared-Data.db"), b"shared bytes").unwrap(),
        }
        let mut m = sample();
        m.backup_name = name.into();
        m.finished_at = Utc::now() - Duration::days(days);
        m.started_at = m.finished_at - Duration::minutes(1);
        m.write_atomically(&dir).unwrap();
        index::record(node, &m).unwrap();
    }

    fn opts(keep_last: usize, dry_run: bool) -> PurgeOptions {
        PurgeOptions {
            policy: Policy { keep_last: Some(keep_last), keep_days: None, grace: std::time::Duration::from_secs(3600) },
            dry_run,
            now: Utc::now(),
            name_prefix: None,
            names: None,
        }
    }

    fn names(node: &Path) -> Vec<String> {
        list_node(node).unwrap().into_iter().map(|b| b.name).collect()
    }

    #[test]
    fn purge_deletes_what_the_policy_drops_and_keeps_shared_files() {
        let root = tempfile::tempdir().unwrap();
        let node = root.path().join("c/h");
        for d in 0..5 {
            backup(&node, &format!("b{d}"), 5 - d, (d > 0).then_some("b0"));
        }
        // A dry run plans and touches nothing.
        let plan = purge_node(&node, &opts(2, true));
        assert_eq!(plan.doomed().map(|b| b.name.as_str()).collect::<Vec<_>>(), ["b0", "b1", "b2"]);
        assert_eq!(names(&node).len(), 5);

        let manifests: u64 =
            ["b0", "b1", "b2"].iter().map(|b| fs::metadata(node.join(b).join("manifest.json")).unwrap().len()).sum();
        let done = purge_node(&node, &opts(2, false));
        assert!(done.skipped.is_none() && !done.failed(), "{done:?}");
        assert_eq!(names(&node), ["b3", "b4"]);
        let freed: u64 = done.doomed().map(|b| b.deleted.as_ref().unwrap().bytes_freed).sum();
        assert_eq!(freed, manifests + 6, "manifests and own files (2 bytes each): the shared file lives on");
        assert_eq!(fs::read(node.join("b3/ks1/t1/shared-Data.db")).unwrap(), b"shared bytes");
        assert_eq!(index::load(&node).entries().keys().collect::<Vec<_>>(), ["b3", "b4"]);
    }

    #[test]
    fn a_node_whose_lock_is_held_is_skipped() {
        let root = tempfile::tempdir().unwrap();
        // A host ID of its own: the other tests' purges of host `h` take its job lock too.
        let node = root.path().join("c/h-held");
        backup(&node, "old", 9, None);
        backup(&node, "new", 1, None);
        let held = NodeLock::acquire(&node).unwrap();
        let p = purge_node(&node, &opts(1, false));
        assert!(p.skipped.as_deref().unwrap().starts_with("skipped, a job is running"), "{p:?}");
        assert_eq!(names(&node), ["old", "new"]);
        drop(held);
        assert!(purge_node(&node, &opts(1, false)).skipped.is_none());
        assert_eq!(names(&node), ["new"]);
    }

    #[test]
    fn leftovers_are_collected_and_listed_files_are_not() {
        let root = tempfile::tempdir().unwrap();
        let node = root.path().join("c/h");
        backup(&node, "b", 1, None);
        fs::create_dir_all(node.join(".deleting-x-42/ks/t")).unwrap();
        fs::create_dir_all(node.join("b/cassette-meta/tables")).unwrap();
        fs::write(node.join("b/cassette-meta/tables/ks.t.cql.partial"), b"CREATE").unwrap();
        // Listed by the manifest: a configuration file really named so.
        let mut m = Manifest::read(&node.join("b")).unwrap();
        m.config_dirs[0].files[0].path = "cassette-meta/conf/0-cassandra/odd.partial".into();
        m.write_atomically(&node.join("b")).unwrap();
        index::record(&node, &m).unwrap(); // the index describes this manifest file: no repair
        fs::write(node.join(".index.json.partial"), b"{").unwrap();
        fs::create_dir_all(node.join("b/cassette-meta/conf/0-cassandra")).unwrap();
        fs::write(node.join("b/cassette-meta/conf/0-cassandra/odd.partial"), b"7 bytes").unwrap();
        let staging = root.path().join(".restore-staging/h");
        let old = (Utc::now() - Duration::hours(2)).timestamp_millis();
        let recent = (Utc::now() - Duration::minutes(2)).timestamp_millis();
        fs::create_dir_all(staging.join(old.to_string()).join("ks/t")).unwrap();
        fs::create_dir_all(staging.join(recent.to_string())).unwrap();

        let p = purge_node(&node, &opts(1, false));
        let mut kinds: Vec<_> = p.garbage.iter().map(|g| (g.kind, g.removed)).collect();
        kinds.sort_by_key(|k| format!("{k:?}"));
        assert_eq!(kinds.len(), 4, "{:?}", p.garbage);
        assert!(p.garbage.iter().all(|g| g.removed && !g.path.exists()));
        assert!(node.join("b/cassette-meta/conf/0-cassandra/odd.partial").exists());
        assert!(staging.join(recent.to_string()).exists());
        assert!(node.join("b/manifest.json").exists());
    }

    #[test]
    fn a_recently_restored_backup_is_kept() {
        let root = tempfile::tempdir().unwrap();
        let node = root.path().join("c/h");
        backup(&node, "old", 9, None);
        backup(&node, "new", 1, None);
        fs::create_dir_all(node.join("old/cassette-meta")).unwrap();
        fs::write(node.join("old/cassette-meta/restore-h.jsonl"), b"{}\n").unwrap();
        let p = purge_node(&node, &opts(1, false));
        assert_eq!(p.backups.iter().find(|b| b.name == "old").unwrap().reason, Reason::RestoreActive);
        assert_eq!(names(&node), ["old", "new"]);
    }

    #[test]
    fn a_backup_whose_lock_holds_is_planned_kept_and_one_whose_lock_passed_is_not() {
        let opts = opts(1, true);
        let finished = |days: i64| {
            let mut m = cassette_format::manifest::samples::named("x", 1);
            m.finished_at = opts.now - Duration::days(days);
            m
        };
        let locked = |name: &str, days: i64, until: chrono::DateTime<Utc>| {
            let mut m = finished(days);
            m.backup_name = name.into();
            m.object_lock = Some(crate::ObjectLock::new(crate::LockMode::Compliance, until));
            BackupSummary::of_manifest("c", "h", name, &m)
        };
        let backups = [
            locked("held", 9, opts.now + Duration::hours(1)),
            locked("passed", 8, opts.now - Duration::hours(1)),
            BackupSummary { name: "new".into(), ..BackupSummary::of_manifest("c", "h", "new", &finished(1)) },
        ];
        let planned = plan(&backups, &opts, |_| false);
        let held = &planned[0];
        assert_eq!((held.keep, &held.reason), (true, &Reason::Locked));
        assert!(held.why.starts_with("locked until ") && held.why.contains("compliance mode"), "{}", held.why);
        assert_eq!((planned[1].keep, &planned[1].reason), (false, &Reason::Expired));
        assert!(planned[2].keep);
    }
}
