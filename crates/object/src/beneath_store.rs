//! A local directory as an object store, under the directory repository's path rules: every
//! object is read, written, listed and removed beneath the root with no symbolic link followed
//! (`cassette_repo::beneath`), and only regular files are objects. object_store's own
//! `LocalFileSystem` follows links when it lists and reads, so a link planted in a shared
//! repository could make a purge delete files outside it; this store is what an encoded
//! directory repository is served through instead.
//!
//! Objects are files at their key's path, the key's parts percent-decoded (as object_store
//! encodes them). A put writes a hidden temporary file beside its object and renames it into
//! place (create-only with `RENAME_NOREPLACE`), so an object is whole or absent; parts of a
//! multipart upload are written at their offsets. Only what cassette uses is implemented:
//! whole gets and heads, no conditional requests or ranges.

use std::fmt;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use cassette_repo::beneath::{self, FoundFile};
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyMode, CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};

/// How much of an object one read takes.
const READ_CHUNK: usize = 256 << 10;
/// What the names of temporary files start with: listings leave them out.
const TEMP_PREFIX: &str = ".cassette-put-";

/// A directory whose regular files are the objects.
#[derive(Debug)]
pub struct BeneathStore {
    root: PathBuf,
}

impl fmt::Display for BeneathStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "directory {}", self.root.display())
    }
}

impl BeneathStore {
    /// The objects under `root` (which must exist).
    pub fn new(root: &FsPath) -> BeneathStore {
        BeneathStore { root: root.to_path_buf() }
    }

    /// The file of `location`.
    fn file_of(&self, location: &Path) -> object_store::Result<PathBuf> {
        let mut path = self.root.clone();
        for part in location.parts() {
            let name = percent_encoding::percent_decode_str(part.as_ref())
                .decode_utf8()
                .map_err(|e| generic(format!("key {location}: {e}")))?;
            if name.contains('/') || name.is_empty() {
                return Err(generic(format!("key {location}: a part decodes to {name:?}")));
            }
            path.push(name.as_ref());
        }
        Ok(path)
    }

    /// A temporary file beside `path`, for a write in progress.
    fn temp_beside(path: &FsPath) -> PathBuf {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        path.with_file_name(format!("{TEMP_PREFIX}{}-{n}-{name}", std::process::id()))
    }

    fn key_of(prefix: Option<&Path>, rel: &FsPath) -> Option<Path> {
        let mut parts: Vec<String> =
            prefix.map(|p| p.parts().map(|p| p.as_ref().to_owned()).collect()).unwrap_or_default();
        for c in rel.components() {
            parts.push(object_store::path::PathPart::from(c.as_os_str().to_str()?).as_ref().to_owned());
        }
        Path::parse(parts.join("/")).ok()
    }

    fn meta(prefix: Option<&Path>, f: &FoundFile) -> Option<ObjectMeta> {
        Some(ObjectMeta {
            location: BeneathStore::key_of(prefix, &f.path)?,
            last_modified: f.modified.into(),
            size: f.size,
            e_tag: None,
            version: None,
        })
    }
}

fn generic(detail: String) -> object_store::Error {
    object_store::Error::Generic { store: "directory", source: detail.into() }
}

/// object_store's error for a repository error at `location`: a missing file is NotFound.
fn store_error(location: &Path, e: cassette_repo::RepoError) -> object_store::Error {
    match &e {
        cassette_repo::RepoError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            object_store::Error::NotFound { path: location.to_string(), source: Box::new(e) }
        }
        _ => object_store::Error::Generic { store: "directory", source: Box::new(e) },
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> object_store::Result<T> + Send + 'static,
) -> object_store::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| object_store::Error::JoinError { source: e })?
}

/// Moves the finished temporary file `temp` to `dest`; `create` refuses an existing object.
fn place(root: &FsPath, temp: &FsPath, dest: &FsPath, location: &Path, create: bool) -> object_store::Result<()> {
    let placed = beneath::rename(root, temp, dest, !create).map_err(|e| store_error(location, e));
    match placed {
        Ok(true) => Ok(()),
        Ok(false) => {
            let _ = beneath::remove_all(root, temp);
            Err(object_store::Error::AlreadyExists { path: location.to_string(), source: "it exists".into() })
        }
        Err(e) => {
            let _ = beneath::remove_all(root, temp);
            Err(e)
        }
    }
}

#[async_trait]
impl ObjectStore for BeneathStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let create = match opts.mode {
            PutMode::Overwrite => false,
            PutMode::Create => true,
            PutMode::Update(_) => {
                return Err(object_store::Error::NotImplemented {
                    operation: "conditional update".into(),
                    implementer: self.to_string(),
                });
            }
        };
        let (root, dest, location) = (self.root.clone(), self.file_of(location)?, location.clone());
        blocking(move || {
            let temp = BeneathStore::temp_beside(&dest);
            let written = (|| {
                let mut f = beneath::create_new(&root, &temp)?;
                for chunk in payload.iter() {
                    f.write_all(chunk).map_err(|e| cassette_repo::RepoError::io("write", &temp, e))?;
                }
                f.sync_all().map_err(|e| cassette_repo::RepoError::io("sync", &temp, e))
            })();
            if let Err(e) = written {
                let _ = beneath::remove_all(&root, &temp);
                return Err(store_error(&location, e));
            }
            place(&root, &temp, &dest, &location, create)?;
            Ok(PutResult { e_tag: None, version: None, extensions: Default::default() })
        })
        .await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        _opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let (root, dest, key) = (self.root.clone(), self.file_of(location)?, location.clone());
        let temp = BeneathStore::temp_beside(&dest);
        let file = {
            let (root, temp, key) = (root.clone(), temp.clone(), key.clone());
            blocking(move || beneath::create_new(&root, &temp).map_err(|e| store_error(&key, e))).await?
        };
        Ok(Box::new(BeneathUpload { root, temp, dest, location: key, file: Arc::new(file), offset: 0 }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        let conditional = options.if_match.is_some()
            || options.if_none_match.is_some()
            || options.if_modified_since.is_some()
            || options.if_unmodified_since.is_some()
            || options.range.is_some()
            || options.version.is_some();
        if conditional {
            return Err(object_store::Error::NotImplemented {
                operation: "conditional or ranged get".into(),
                implementer: self.to_string(),
            });
        }
        let (root, path, key) = (self.root.clone(), self.file_of(location)?, location.clone());
        let (file, meta) = blocking(move || {
            let file = beneath::open_regular(&root, &path).map_err(|e| store_error(&key, e))?;
            let st = file.metadata().map_err(|e| generic(format!("stat {key}: {e}")))?;
            let modified = st.modified().map_err(|e| generic(format!("stat {key}: {e}")))?;
            let meta = ObjectMeta {
                location: key,
                last_modified: modified.into(),
                size: st.len(),
                e_tag: None,
                version: None,
            };
            Ok((file, meta))
        })
        .await?;
        let size = meta.size;
        let payload =
            if options.head { futures::stream::empty().boxed() } else { read_chunks(file, meta.location.clone()) };
        Ok(GetResult {
            payload: GetResultPayload::Stream(payload),
            meta,
            range: 0..size,
            attributes: Default::default(),
            extensions: Default::default(),
        })
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let root = self.root.clone();
        locations
            .then(move |location| {
                let root = root.clone();
                async move {
                    let location = location?;
                    let path = BeneathStore { root: root.clone() }.file_of(&location)?;
                    let key = location.clone();
                    blocking(move || beneath::remove_all(&root, &path).map_err(|e| store_error(&key, e))).await?;
                    Ok(location)
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let (root, prefix) = (self.root.clone(), prefix.cloned());
        let dir = match prefix.as_ref().map(|p| self.file_of(p)).transpose() {
            Ok(d) => d.unwrap_or_else(|| root.clone()),
            Err(e) => return futures::stream::once(async move { Err(e) }).boxed(),
        };
        futures::stream::once(async move {
            blocking(move || {
                let key = prefix.clone().unwrap_or_default();
                let found = beneath::walk_files(&root, &dir).map_err(|e| store_error(&key, e))?;
                Ok(found
                    .iter()
                    .filter(|f| !f.path.file_name().is_some_and(|n| n.to_string_lossy().starts_with(TEMP_PREFIX)))
                    .filter_map(|f| BeneathStore::meta(prefix.as_ref(), f))
                    .map(Ok)
                    .collect::<Vec<_>>())
            })
            .await
        })
        .map(|listed| match listed {
            Ok(items) => futures::stream::iter(items).boxed(),
            Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
        })
        .flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let (root, prefix) = (self.root.clone(), prefix.cloned());
        let dir = match &prefix {
            Some(p) => self.file_of(p)?,
            None => root.clone(),
        };
        blocking(move || {
            let key = prefix.clone().unwrap_or_default();
            let (files, dirs) = beneath::read_dir(&root, &dir).map_err(|e| store_error(&key, e))?;
            let objects = files
                .iter()
                .filter(|f| !f.path.to_string_lossy().starts_with(TEMP_PREFIX))
                .filter_map(|f| BeneathStore::meta(prefix.as_ref(), f))
                .collect();
            let common_prefixes = dirs.iter().filter_map(|d| BeneathStore::key_of(prefix.as_ref(), d)).collect();
            Ok(ListResult { common_prefixes, objects, extensions: Default::default() })
        })
        .await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        let (root, src, key) = (self.root.clone(), self.file_of(from)?, from.clone());
        let bytes = blocking(move || {
            let mut f = beneath::open_regular(&root, &src).map_err(|e| store_error(&key, e))?;
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).map_err(|e| generic(format!("read {key}: {e}")))?;
            Ok(bytes)
        })
        .await?;
        let mode = match options.mode {
            CopyMode::Overwrite => PutMode::Overwrite,
            CopyMode::Create => PutMode::Create,
        };
        self.put_opts(to, PutPayload::from(bytes), PutOptions { mode, ..Default::default() }).await.map(|_| ())
    }
}

/// An object's bytes, read on blocking threads one chunk at a time.
fn read_chunks(file: std::fs::File, key: Path) -> BoxStream<'static, object_store::Result<Bytes>> {
    futures::stream::unfold(Some(file), move |file| {
        let key = key.clone();
        async move {
            let mut file = file?;
            let read = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; READ_CHUNK];
                let n = file.read(&mut buf)?;
                buf.truncate(n);
                Ok::<_, std::io::Error>((buf, file))
            })
            .await;
            match read {
                Ok(Ok((buf, _))) if buf.is_empty() => None,
                Ok(Ok((buf, file))) => Some((Ok(Bytes::from(buf)), Some(file))),
                Ok(Err(e)) => Some((Err(generic(format!("read {key}: {e}"))), None)),
                Err(e) => Some((Err(object_store::Error::JoinError { source: e }), None)),
            }
        }
    })
    .boxed()
}

/// A multipart upload: each part written at its offset in the temporary file as it comes.
#[derive(Debug)]
struct BeneathUpload {
    root: PathBuf,
    temp: PathBuf,
    dest: PathBuf,
    location: Path,
    file: Arc<std::fs::File>,
    offset: u64,
}

#[async_trait]
impl MultipartUpload for BeneathUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let (file, at, key) = (self.file.clone(), self.offset, self.location.clone());
        self.offset += data.content_length() as u64;
        Box::pin(blocking(move || {
            let mut at = at;
            for chunk in data.iter() {
                file.write_all_at(chunk, at).map_err(|e| generic(format!("write {key}: {e}")))?;
                at += chunk.len() as u64;
            }
            Ok(())
        }))
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let (root, temp, dest, key, file) =
            (self.root.clone(), self.temp.clone(), self.dest.clone(), self.location.clone(), self.file.clone());
        blocking(move || {
            file.sync_all().map_err(|e| generic(format!("sync {key}: {e}")))?;
            place(&root, &temp, &dest, &key, false)?;
            Ok(PutResult { e_tag: None, version: None, extensions: Default::default() })
        })
        .await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        let (root, temp, key) = (self.root.clone(), self.temp.clone(), self.location.clone());
        blocking(move || beneath::remove_all(&root, &temp).map_err(|e| store_error(&key, e))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;

    fn key(s: &str) -> Path {
        Path::from(s)
    }

    #[tokio::test]
    async fn objects_round_trip_create_only_and_multipart() {
        let d = tempfile::tempdir().unwrap();
        let store = BeneathStore::new(d.path());
        store.put(&key("c/h/b/manifest.json"), PutPayload::from(b"one".to_vec())).await.unwrap();
        let got = store.get(&key("c/h/b/manifest.json")).await.unwrap().bytes().await.unwrap();
        assert_eq!(&got[..], b"one");
        let create = PutOptions { mode: PutMode::Create, ..Default::default() };
        let again = store.put_opts(&key("c/h/b/manifest.json"), PutPayload::from(b"two".to_vec()), create).await;
        assert!(matches!(again, Err(object_store::Error::AlreadyExists { .. })), "{again:?}");

        let mut up = store.put_multipart(&key("c/h/b/ks/t/nb-1-big-Data.db")).await.unwrap();
        let (a, b) = (up.put_part(PutPayload::from(vec![1u8; 1000])), up.put_part(PutPayload::from(vec![2u8; 10])));
        b.await.unwrap();
        a.await.unwrap();
        up.complete().await.unwrap();
        let data = std::fs::read(d.path().join("c/h/b/ks/t/nb-1-big-Data.db")).unwrap();
        assert_eq!(data.len(), 1010);
        assert!(data[..1000].iter().all(|&x| x == 1) && data[1000..].iter().all(|&x| x == 2));

        let mut listed: Vec<String> =
            store.list(Some(&key("c/h"))).map(|m| m.unwrap().location.to_string()).collect().await;
        listed.sort();
        assert_eq!(listed, ["c/h/b/ks/t/nb-1-big-Data.db", "c/h/b/manifest.json"]);
        let top = store.list_with_delimiter(Some(&key("c/h/b"))).await.unwrap();
        assert_eq!(top.common_prefixes, [key("c/h/b/ks")]);
        assert_eq!(top.objects.len(), 1);

        store.delete(&key("c/h/b/manifest.json")).await.unwrap();
        assert!(matches!(store.head(&key("c/h/b/manifest.json")).await, Err(object_store::Error::NotFound { .. })));
    }

    /// A link planted in the repository is neither followed by a listing, nor read, nor
    /// deleted through: what it points at is untouched.
    #[tokio::test]
    async fn a_planted_symbolic_link_is_never_followed() {
        let d = tempfile::tempdir().unwrap();
        let live = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(live.path().join("t")).unwrap();
        std::fs::write(live.path().join("t/nb-1-big-Data.db"), b"live data").unwrap();
        std::fs::create_dir_all(d.path().join("c/h/b")).unwrap();
        std::os::unix::fs::symlink(live.path(), d.path().join("c/h/b/ks")).unwrap();
        std::os::unix::fs::symlink(live.path().join("t/nb-1-big-Data.db"), d.path().join("c/h/b/file")).unwrap();
        let store = BeneathStore::new(d.path());

        let listed: Vec<_> = store.list(Some(&key("c"))).collect().await;
        assert!(listed.is_empty(), "{listed:?}");
        assert!(store.get(&key("c/h/b/ks/t/nb-1-big-Data.db")).await.is_err());
        assert!(store.get(&key("c/h/b/file")).await.is_err());
        let deleted = store.delete(&key("c/h/b/ks/t/nb-1-big-Data.db")).await;
        assert!(deleted.is_err(), "a delete through a link is refused");
        let put = store.put(&key("c/h/b/ks/t/new"), PutPayload::from(b"x".to_vec())).await;
        assert!(put.is_err(), "a put through a link is refused");
        assert_eq!(std::fs::read(live.path().join("t/nb-1-big-Data.db")).unwrap(), b"live data");
        assert!(!live.path().join("t/new").exists());
        store.delete(&key("c/h/b/file")).await.unwrap();
        assert!(live.path().join("t/nb-1-big-Data.db").exists(), "removing the link leaves its target");
    }
}
