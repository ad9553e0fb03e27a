//! Checking the objects of a remote backup against its manifest: presence and size from
//! listings (quick), or every byte read again and hashed (full), several objects at once.

use std::collections::HashMap;

use cassette_repo::{BadFile, Depth, FileEntry, VerifyReport};
use futures::StreamExt;
use object_store::path::Path as Key;

use crate::error::Result;
use crate::repo::{RemoteBackup, RemoteRepo};

/// Checks `files` of backup `b`; `on_file` is called with each file's size as it is done.
/// Returns the bad ones in the order given.
pub async fn check_files(
    repo: &RemoteRepo,
    b: &RemoteBackup,
    files: &[&FileEntry],
    depth: Depth,
    on_file: &(dyn Fn(u64) + Sync),
) -> Result<Vec<BadFile>> {
    // The listed size of every file's object: one listing per directory the files live in (a
    // table's, an index's), several at once, each held only while its files are looked up. One
    // listing of the whole backup would be pages of 1,000 keys one after the other (some servers
    // walk the whole prefix for every page), and a map of every key would hold them all.
    let mut by_dir: HashMap<Key, Vec<usize>> = HashMap::new();
    for (i, f) in files.iter().enumerate() {
        by_dir.entry(parent(&b.data_key(f))).or_default().push(i);
    }
    // Collected first: a stream over a lazy `map` of borrowing futures is not `Send` enough
    // for the agent's spawned jobs.
    let listings: Vec<_> = by_dir
        .iter()
        .map(|(dir, members)| async move { repo.objects_in(dir).await.map(|objects| (members, objects)) })
        .collect();
    let mut listings = futures::stream::iter(listings).buffer_unordered(repo.transfer.parallel_files.max(1));
    let mut sizes: Vec<Option<u64>> = vec![None; files.len()];
    while let Some(listing) = listings.next().await {
        let (members, objects) = listing?;
        let listed: HashMap<Key, u64> = objects.into_iter().map(|o| (o.location, o.size)).collect();
        for &i in members {
            sizes[i] = listed.get(&b.data_key(files[i])).copied();
        }
    }
    drop(listings);
    drop(by_dir);
    if depth == Depth::Quick {
        // Sizes only: a plain loop (a future per file held 50,000 of them at once).
        let mut bad = Vec::new();
        for (f, size) in files.iter().zip(sizes) {
            let problem = size_problem(size, f);
            on_file(f.size);
            if let Some(problem) = problem {
                bad.push(BadFile { path: f.path.clone(), problem });
            }
        }
        return Ok(bad);
    }
    let jobs: Vec<_> = files
        .iter()
        .zip(sizes)
        .map(|(f, size)| {
            let key = b.data_key(f);
            async move {
                let problem = match size_problem(size, f) {
                    Some(problem) => Some(problem),
                    None => repo.check_object(&key, f).await?,
                };
                on_file(f.size);
                Ok(problem.map(|problem| BadFile { path: f.path.clone(), problem }))
            }
        })
        .collect();
    let results: Vec<Result<Option<BadFile>>> =
        futures::stream::iter(jobs).buffered(repo.transfer.parallel_files.max(1)).collect().await;
    let mut bad = Vec::new();
    for r in results {
        if let Some(b) = r? {
            bad.push(b);
        }
    }
    Ok(bad)
}

/// What is wrong with a stored object of the listed `size` (`None`: not listed), on size alone.
fn size_problem(size: Option<u64>, f: &FileEntry) -> Option<String> {
    match size {
        None => Some("missing".to_string()),
        Some(s) if s != stored_size(f) => {
            Some(format!("size {s} bytes, the manifest says {} (truncated or replaced)", stored_size(f)))
        }
        Some(_) => None,
    }
}

/// The size of a file's object: the file's own, or its encoded size.
fn stored_size(f: &FileEntry) -> u64 {
    f.encoded.as_ref().map_or(f.size, |e| e.stored_size)
}

/// The "directory" of a key: every part but the last.
fn parent(key: &Key) -> Key {
    let parts: Vec<_> = key.parts().collect();
    Key::from_iter(parts[..parts.len().saturating_sub(1)].iter().cloned())
}

/// Reads the backup's manifest (refusing an incomplete backup) and checks every file it lists.
pub async fn verify_backup(
    repo: &RemoteRepo,
    b: &RemoteBackup,
    depth: Depth,
    on_file: &(dyn Fn(u64) + Sync),
) -> Result<VerifyReport> {
    let manifest = repo.read_manifest(b).await?;
    let files: Vec<&FileEntry> = manifest.files().collect();
    let bad = check_files(repo, b, &files, depth, on_file).await?;
    Ok(VerifyReport { files: files.len() as u64, bytes: files.iter().map(|f| f.size).sum(), bad })
}
