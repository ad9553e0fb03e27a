//! One object put from pool buffers: a single PUT, or a multipart upload whose parts are sent
//! as they come, each holding its buffer's place until the store acknowledges it. The plain
//! and the encoded upload paths both put through here.

use bytes::Bytes;
use object_store::path::Path as Key;
use object_store::{MultipartUpload, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use tokio::sync::OwnedSemaphorePermit as Permit;
use tokio::task::JoinSet;

use crate::error::{ObjectError, Result};
use crate::repo::RemoteRepo;

impl RemoteRepo {
    /// Puts `bytes` as the whole object `key`, paced.
    pub(crate) async fn put_whole(&self, key: &Key, bytes: Bytes) -> Result<()> {
        self.pace(bytes.len()).await;
        let opts = PutOptions { mode: PutMode::Overwrite, ..Default::default() };
        self.backup_puts()
            .put_opts(key, PutPayload::from(bytes), opts)
            .await
            .map_err(|e| ObjectError::store("upload", self.url_of(key), e))?;
        Ok(())
    }

    /// Starts a multipart upload of `key`.
    pub(crate) async fn start_parts(&self, key: &Key) -> Result<Parts<'_>> {
        let url = self.url_of(key);
        let upload = self
            .backup_multipart()
            .put_multipart(key)
            .await
            .map_err(|e| ObjectError::store("start upload", &url, e))?;
        Ok(Parts { repo: self, upload, in_flight: JoinSet::new(), count: 0, url })
    }
}

/// A multipart upload in progress.
pub(crate) struct Parts<'a> {
    repo: &'a RemoteRepo,
    upload: Box<dyn MultipartUpload>,
    in_flight: JoinSet<object_store::Result<()>>,
    count: usize,
    url: String,
}

impl Parts<'_> {
    /// Sends the next part, paced. Its buffer's place (`permit`) is given back once the part is
    /// acknowledged; its allocation returns to the pool when the store drops the bytes. Parts
    /// already finished are reaped, so an error stops the upload early.
    pub(crate) async fn send(&mut self, bytes: Bytes, permit: Permit) -> Result<()> {
        self.repo.pace(bytes.len()).await;
        self.count += 1;
        let part = self.upload.put_part(PutPayload::from(bytes));
        self.in_flight.spawn(async move {
            let r = part.await;
            drop(permit);
            r
        });
        while let Some(r) = self.in_flight.try_join_next() {
            r.expect("part task").map_err(|e| ObjectError::store("upload part of", &self.url, e))?;
        }
        Ok(())
    }

    /// Waits for every part. Then completes the upload if `outcome` (what the caller found
    /// while reading: a CRC mismatch, a read error) and every part succeeded, else aborts it.
    /// Returns the number of parts.
    pub(crate) async fn finish(mut self, outcome: Result<()>) -> Result<usize> {
        let mut outcome = outcome;
        if outcome.is_ok() {
            while let Some(r) = self.in_flight.join_next().await {
                if let Err(e) = r.expect("part task") {
                    outcome = Err(ObjectError::store("upload part of", &self.url, e));
                    break;
                }
            }
        }
        match outcome {
            Ok(()) => {
                self.upload.complete().await.map_err(|e| ObjectError::store("complete upload", &self.url, e))?;
                Ok(self.count)
            }
            Err(e) => {
                self.in_flight.abort_all();
                if let Err(abort) = self.upload.abort().await {
                    tracing::warn!(object = %self.url, error = %abort, "could not abort a failed multipart upload; the bucket's lifecycle rule for incomplete uploads removes it");
                }
                Err(e)
            }
        }
    }
}
