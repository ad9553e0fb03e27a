//! Listing the backups of a repository on object storage, fast with thousands of backups:
//! one LIST (with delimiter) per node for its backup prefixes, the node index for the complete
//! ones (each confirmed by a HEAD of its manifest, done concurrently), and a manifest read or a
//! listing only for what the index does not describe.

use cassette_repo::BackupSummary;
use futures::StreamExt;
use object_store::path::Path as Key;

use crate::error::{ObjectError, Result};
use crate::repo::{RemoteBackup, RemoteRepo, TOMBSTONE};

/// Names directly under `prefix` (its "directories").
pub(crate) async fn children(repo: &RemoteRepo, prefix: &Key) -> Result<Vec<String>> {
    let listing = repo
        .store
        .list_with_delimiter(Some(prefix))
        .await
        .map_err(|e| ObjectError::store("list", repo.url_of(prefix), e))?;
    let mut names: Vec<String> = listing
        .common_prefixes
        .iter()
        .filter_map(|p| p.filename().map(|f| f.to_string()))
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    Ok(names)
}

/// The backup names under a node's prefix (its archived commitlog segments are not a backup).
pub(crate) async fn backup_names(repo: &RemoteRepo, node: &Key) -> Result<Vec<String>> {
    Ok(children(repo, node).await?.into_iter().filter(|n| cassette_repo::layout::is_backup_dir(n)).collect())
}

/// The backups of every node (optionally one cluster and/or host), sorted like a local listing.
pub async fn list_backups(repo: &RemoteRepo, cluster: Option<&str>, host: Option<&str>) -> Result<Vec<BackupSummary>> {
    let mut out = Vec::new();
    for (c, h) in nodes(repo, cluster, host).await? {
        out.extend(list_node(repo, &c, &h).await?);
    }
    Ok(out)
}

/// The (cluster, host ID) pairs of the repository, optionally only those given.
pub(crate) async fn nodes(
    repo: &RemoteRepo,
    cluster: Option<&str>,
    host: Option<&str>,
) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for c in children(repo, repo.root()).await?.into_iter().filter(|c| cluster.is_none_or(|w| w == c)) {
        for h in children(repo, &repo.root().clone().join(c.as_str())).await? {
            if host.is_none_or(|w| w == h) {
                out.push((c.clone(), h));
            }
        }
    }
    Ok(out)
}

/// The backups of one node, sorted by start time (unknown last), then name. Backups being
/// deleted (tombstone) are not listed.
pub async fn list_node(repo: &RemoteRepo, cluster: &str, host_id: &str) -> Result<Vec<BackupSummary>> {
    let node = repo.node_key(cluster, host_id)?;
    let names = backup_names(repo, &node).await?;
    let index = repo.load_index(&node).await;
    // Collected first: a stream over a borrowing closure trips rustc's Send inference.
    let jobs: Vec<_> = names
        .into_iter()
        .map(|name| {
            let entry = index.get(&name).cloned();
            let b = RemoteBackup { node: node.clone(), prefix: node.clone().join(name.as_str()), name: name.clone() };
            async move { describe(repo, cluster, host_id, &b, entry).await }
        })
        .collect();
    let summaries = futures::stream::iter(jobs).buffered(32).collect::<Vec<_>>().await;
    let mut out = Vec::new();
    let mut read = Vec::new();
    let mut damaged = Vec::new();
    for s in summaries {
        let (summary, from_manifest) = s?;
        let Some(summary) = summary else { continue };
        if let Some(entry) = from_manifest {
            read.push(entry);
        }
        if summary.damaged {
            damaged.push(summary.name.clone());
        }
        out.push(summary);
    }
    if !read.is_empty() || !damaged.is_empty() {
        // Complete backups the index lacked or described from another manifest file: recorded
        // as read now; damaged ones dropped from the index.
        if let Err(e) = repo
            .update_index(&node, |entries| {
                for name in &damaged {
                    entries.remove(name);
                }
                for entry in read {
                    entries.insert(entry.name.clone(), entry);
                }
            })
            .await
        {
            tracing::warn!(error = %e, "could not update the node index");
        }
    }
    out.sort_by(|a, b| {
        (a.started_at.is_none(), a.started_at, &a.name).cmp(&(b.started_at.is_none(), b.started_at, &b.name))
    });
    Ok(out)
}

/// One backup: `(None, _)` if it is being deleted; `(_, Some(entry))` if its manifest had to be
/// read (the index did not describe it, or described another manifest object: a cache must not
/// vouch for what it has not read), with the index entry to record.
async fn describe(
    repo: &RemoteRepo,
    cluster: &str,
    host_id: &str,
    b: &RemoteBackup,
    indexed: Option<cassette_repo::IndexEntry>,
) -> Result<(Option<BackupSummary>, Option<cassette_repo::IndexEntry>)> {
    let mut s = BackupSummary::incomplete(cluster, host_id, &b.name, repo.url_of(&b.prefix));
    if let Some(stamp) = repo.stamp(&b.manifest()).await? {
        let (entry, read) = match indexed {
            Some(e) if e.manifest == Some(stamp) => (Some(e), None),
            _ => match repo.read_manifest(b).await {
                Ok(m) => {
                    let e = cassette_repo::IndexEntry::stamped(&m, Some(stamp));
                    (Some(e.clone()), Some(e))
                }
                Err(e) => {
                    s.error = Some(e.to_string());
                    s.damaged = true;
                    (None, None)
                }
            },
        };
        if let Some(e) = entry {
            s = BackupSummary::complete(cluster, host_id, s.path, &e);
        }
        return Ok((Some(s), read));
    }
    let objects = repo.objects(&b.prefix).await?;
    let tombstone = b.key(TOMBSTONE);
    if objects.iter().any(|o| o.location == tombstone) {
        return Ok((None, None));
    }
    s.files = objects.len() as u64;
    s.bytes = objects.iter().map(|o| o.size).sum();
    s.bytes_added = s.bytes;
    s.last_written_at = objects.iter().map(|o| o.last_modified).max();
    s.started_at = s.last_written_at.and(objects.iter().map(|o| o.last_modified).min());
    Ok((Some(s), None))
}
