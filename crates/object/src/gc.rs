//! Deleting backups on object storage, and collecting the objects nothing references.
//!
//! A backup's manifest may reference objects an earlier backup uploaded (deduplication by
//! reference), so deleting a backup cannot mean deleting its prefix. Deletion order:
//!
//! 1. a tombstone (`cassette-meta/deleted.json`) is put in the backup: from now on no listing
//!    shows it and no restore finds it;
//! 2. its node index entry is removed, then its `manifest.json` is deleted;
//! 3. garbage collection of the node: every complete manifest of the node is read, and the
//!    objects of tombstoned backups that none references are deleted in batches (S3
//!    DeleteObjects, 1,000 keys a request); so are the objects of incomplete backups untouched
//!    for longer than the grace period (never a running backup's). A tombstone goes last, once
//!    its prefix holds nothing else.
//!
//! A crash anywhere leaves a tombstoned backup that the next delete or purge finishes.

use std::collections::HashSet;
use std::path::Path;

use cassette_repo::purge::{Leftover, LeftoverKind, NodePurge, PurgeOptions};
use cassette_repo::{BackupName, DeleteSummary, Manifest, ManifestFile};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use object_store::path::Path as Key;
use object_store::{ObjectMeta, ObjectStoreExt, PutMode};

use crate::error::{ObjectError, Result};
use crate::list::{list_node, nodes};
use crate::repo::{RemoteBackup, RemoteRepo};

/// What one garbage collection removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Collected {
    /// Objects deleted.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Backup prefixes whose objects were deleted, with (objects, bytes) each.
    pub prefixes: Vec<(String, u64, u64)>,
}

/// Deletes one backup (complete or not) and the objects only it referenced.
pub async fn delete_backup(
    repo: &RemoteRepo,
    cluster: &str,
    host_id: &str,
    name: &BackupName,
) -> Result<DeleteSummary> {
    let b = repo.backup(cluster, host_id, name)?;
    if repo.objects(&b.prefix).await?.is_empty() {
        return Err(ObjectError::NotFound { url: repo.url_of(&b.prefix) });
    }
    refuse_locked(repo, &b, Utc::now()).await?;
    hide(repo, &b).await?;
    let collected = collect_garbage(repo, &b.node, chrono::Duration::MAX, Utc::now()).await?;
    let (objects, bytes) =
        collected.prefixes.iter().find(|(p, _, _)| *p == b.name).map(|(_, o, by)| (*o, *by)).unwrap_or((0, 0));
    Ok(DeleteSummary { files: objects, bytes_freed: bytes })
}

/// Refuses a backup whose manifest records an object lock that holds at `now`: the store
/// would keep its objects, so nothing is tombstoned or deleted.
async fn refuse_locked(repo: &RemoteRepo, b: &RemoteBackup, now: DateTime<Utc>) -> Result<()> {
    let Some(bytes) = repo.get_small(&b.manifest()).await? else { return Ok(()) };
    let manifest = Manifest::parse(Path::new(&repo.url_of(&b.manifest())), &bytes)?;
    match manifest.object_lock {
        Some(lock) if lock.holds_at(now) => {
            Err(ObjectError::Locked { url: repo.url_of(&b.prefix), until: lock.until, mode: lock.mode })
        }
        _ => Ok(()),
    }
}

/// Steps 1 and 2: tombstone, index entry, manifest.
async fn hide(repo: &RemoteRepo, b: &RemoteBackup) -> Result<()> {
    let stone = serde_json::json!({"deleted_at": Utc::now(), "by": "cassette"});
    repo.put_small(&b.tombstone(), stone.to_string().into_bytes(), PutMode::Overwrite).await?;
    cassette_repo::fault::point("remote-delete-tombstoned");
    if let Err(e) = repo
        .update_index(&b.node, |entries| {
            entries.remove(&b.name);
        })
        .await
    {
        tracing::warn!(error = %e, "could not update the node index");
    }
    match repo.store.delete(&b.manifest()).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(ObjectError::store("delete", repo.url_of(&b.manifest()), e)),
    }
}

/// Step 3 for one node: deletes the objects of tombstoned backups that no complete manifest
/// references, and those of incomplete backups last written more than `grace` ago.
pub async fn collect_garbage(
    repo: &RemoteRepo,
    node: &Key,
    grace: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<Collected> {
    // Every backup's manifest, or for those without one its objects, 32 reads at a time.
    let names = crate::list::backup_names(repo, node).await?;
    let mut found = futures::stream::iter(names.into_iter().map(|name| async move {
        let b = RemoteBackup { node: node.clone(), prefix: node.clone().join(name.as_str()), name };
        let listed = match repo.get_small(&b.manifest()).await? {
            Some(bytes) => Listed::Complete(Box::new(Manifest::parse(Path::new(&repo.url_of(&b.manifest())), &bytes)?)),
            None => Listed::Objects(repo.objects(&b.prefix).await?),
        };
        Ok::<_, ObjectError>((b, listed))
    }))
    .buffer_unordered(32);
    let mut referenced: HashSet<Key> = HashSet::new();
    let mut doomed: Vec<(RemoteBackup, Vec<ObjectMeta>, bool)> = Vec::new();
    while let Some(r) = found.next().await {
        match r? {
            (b, Listed::Complete(m)) => referenced.extend(m.files().map(|f| b.data_key(f))),
            (b, Listed::Objects(objects)) => {
                let tombstoned = objects.iter().any(|o| o.location == b.tombstone());
                let newest = objects.iter().map(|o| o.last_modified).max();
                let abandoned = newest.is_some_and(|t| now.signed_duration_since(t) > grace);
                if tombstoned || abandoned {
                    doomed.push((b, objects, tombstoned));
                }
            }
        }
    }
    let mut out = Collected::default();
    for (b, objects, tombstoned) in doomed {
        let stone = b.tombstone();
        let garbage: Vec<&ObjectMeta> =
            objects.iter().filter(|o| o.location != stone && !referenced.contains(&o.location)).collect();
        let kept = objects.iter().filter(|o| o.location != stone && referenced.contains(&o.location)).count();
        let bytes: u64 = garbage.iter().map(|o| o.size).sum();
        delete_many(repo, garbage.iter().map(|o| o.location.clone()).collect()).await?;
        cassette_repo::fault::point("remote-gc-deleted");
        if tombstoned && kept == 0 {
            delete_many(repo, vec![stone]).await?;
        }
        out.objects += garbage.len() as u64;
        out.bytes += bytes;
        out.prefixes.push((b.name.clone(), garbage.len() as u64, bytes));
    }
    Ok(out)
}

/// What garbage collection finds in a backup's prefix.
enum Listed {
    Complete(Box<Manifest>),
    Objects(Vec<ObjectMeta>),
}

/// Deletes `keys` through the store's batch delete (S3: DeleteObjects, up to 1,000 keys a
/// request), several batches at once.
pub async fn delete_many(repo: &RemoteRepo, keys: Vec<Key>) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let stream = futures::stream::iter(keys.into_iter().map(Ok)).boxed();
    let mut results = repo.store.delete_stream(stream);
    while let Some(r) = results.next().await {
        match r {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(ObjectError::store("delete objects under", repo.url(), e)),
        }
    }
    Ok(())
}

/// Puts or refreshes `host_id`'s restore marker in `backup`: purge keeps a backup marked within
/// the grace period (see [`RemoteBackup::restore_marker`]).
pub async fn mark_restoring(repo: &RemoteRepo, backup: &RemoteBackup, host_id: &str) -> Result<()> {
    let body = serde_json::json!({ "host_id": host_id, "at": Utc::now() }).to_string();
    repo.put_small(&backup.restore_marker(host_id), body.into_bytes(), PutMode::Overwrite).await
}

/// Which of `names` (backups of the node at `node`) a restore marked within the grace period.
async fn restored_recently(
    repo: &RemoteRepo,
    node: &Key,
    names: &[String],
    opts: &PurgeOptions,
) -> Result<HashSet<String>> {
    let (grace, now) = (opts.policy.grace(), opts.now);
    let checks: Vec<_> = names
        .iter()
        .map(|name| {
            let meta = node.clone().join(name.as_str()).join("cassette-meta");
            let name = name.clone();
            async move {
                let objects = repo.objects(&meta).await?;
                let marked = objects.iter().any(|o| {
                    o.location.filename().is_some_and(|f| f.starts_with("restore-"))
                        && now.signed_duration_since(o.last_modified) < grace
                });
                Ok::<_, ObjectError>(marked.then_some(name))
            }
        })
        .collect();
    let mut found = HashSet::new();
    let mut results = futures::stream::iter(checks).buffer_unordered(16);
    while let Some(r) = results.next().await {
        found.extend(r?);
    }
    Ok(found)
}

/// Purges every node of the repository (optionally one cluster and/or host) by `opts`, as
/// `cassette_repo::purge` does on a local repository: the same policy, the same report.
pub async fn purge(
    repo: &RemoteRepo,
    cluster: Option<&str>,
    host: Option<&str>,
    opts: &PurgeOptions,
) -> Result<Vec<NodePurge>> {
    let mut out = Vec::new();
    for (c, h) in nodes(repo, cluster, host).await? {
        out.push(purge_node(repo, &c, &h, opts).await);
    }
    Ok(out)
}

/// Purges one node. The node-wide job lock of this machine is tried (never waited for), so a
/// backup running here is never purged under; backups running on other machines are protected
/// by the grace period (their objects are new) and by "never the newest complete backup" (the
/// one they reference).
pub async fn purge_node(repo: &RemoteRepo, cluster: &str, host_id: &str, opts: &PurgeOptions) -> NodePurge {
    let mut out = NodePurge {
        cluster: cluster.to_string(),
        host_id: host_id.to_string(),
        skipped: None,
        error: None,
        backups: Vec::new(),
        garbage: Vec::new(),
    };
    let _lock = match cassette_repo::NodeLock::acquire_host(host_id) {
        Ok(l) => l,
        Err(e) => {
            out.skipped =
                Some(format!("skipped, a job is running on this node ({e}): run purge again once it has finished"));
            return out;
        }
    };
    if let Err(e) = purge_node_locked(repo, cluster, host_id, opts, &mut out).await {
        out.error = Some(e.to_string());
    }
    out
}

async fn purge_node_locked(
    repo: &RemoteRepo,
    cluster: &str,
    host_id: &str,
    opts: &PurgeOptions,
    out: &mut NodePurge,
) -> Result<()> {
    let node = repo.node_key(cluster, host_id)?;
    let backups = opts.selected(list_node(repo, cluster, host_id).await?);
    // Of the backups the policy would delete, those a restore (from any machine) marked within
    // the grace period are kept.
    let doomed: Vec<String> =
        cassette_repo::purge::plan(&backups, opts, |_| false).into_iter().filter(|b| !b.keep).map(|b| b.name).collect();
    let restoring = restored_recently(repo, &node, &doomed, opts).await?;
    out.backups = cassette_repo::purge::plan(&backups, opts, |b| restoring.contains(&b.name));
    if opts.dry_run {
        return Ok(());
    }
    let jobs: Vec<_> = out
        .backups
        .iter()
        .enumerate()
        .filter(|(_, b)| !b.keep)
        .map(|(i, b)| {
            let rb =
                RemoteBackup { node: node.clone(), prefix: node.clone().join(b.name.as_str()), name: b.name.clone() };
            async move { (i, hide(repo, &rb).await) }
        })
        .collect();
    let hidden: Vec<usize> = futures::stream::iter(jobs)
        .buffer_unordered(16)
        .filter_map(|(i, r)| async move { r.is_ok().then_some(i) })
        .collect()
        .await;
    let grace = opts.policy.grace();
    let collected = collect_garbage(repo, &node, grace, opts.now).await?;
    for (name, objects, bytes) in &collected.prefixes {
        match out.backups.iter().position(|b| b.name == *name) {
            Some(i) if hidden.contains(&i) => {
                out.backups[i].deleted = Some(DeleteSummary { files: *objects, bytes_freed: *bytes })
            }
            _ => out.garbage.push(Leftover {
                path: repo.url_of(&node.clone().join(name.as_str())).into(),
                kind: LeftoverKind::UnreferencedObjects,
                removed: true,
                error: None,
            }),
        }
    }
    for i in hidden {
        if out.backups[i].deleted.is_none() {
            out.backups[i].deleted = Some(DeleteSummary::default());
        }
    }
    Ok(())
}
