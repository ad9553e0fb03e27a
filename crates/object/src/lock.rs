//! S3 Object Lock: the client that puts a locked backup's objects, and the check that a
//! backup's lock no longer holds before it is deleted.
//!
//! Every object a locked backup writes is put with `x-amz-object-lock-mode` and
//! `x-amz-object-lock-retain-until-date` (signed like any header: object_store signs its
//! client's default headers), and with a SHA-256 checksum, which S3 requires of locked puts.
//! The bucket must have been made with Object Lock enabled (which turns versioning on). S3
//! then refuses to delete those object versions before the date, whatever tool asks; cassette
//! refuses earlier, from the manifest, so that a delete or a purge never fails halfway.

use std::sync::Arc;

use object_store::aws::AmazonS3ConfigKey;
use object_store::{ClientOptions, ObjectStore};

use cassette_format::ObjectLock;

/// Why only S3 repositories take a lock.
pub(crate) const UNSUPPORTED: &str = "object lock is supported on S3 buckets made with Object Lock enabled (s3://); Azure Blob Storage's version-level immutability and GCS's object retention are not supported by cassette yet: use a container or bucket retention policy there, or back up without --object-lock-days";

/// The clients a locked backup puts its objects through.
#[derive(Clone)]
pub(crate) struct Locking {
    /// For single PUTs: these also say `x-amz-sdk-checksum-algorithm`, as the AWS SDKs do
    /// beside their checksum (S3 wants Content-MD5 or that header on a locked PutObject).
    pub whole: Arc<dyn ObjectStore>,
    /// For multipart uploads, whose CompleteMultipartUpload carries no checksum header for
    /// `x-amz-sdk-checksum-algorithm` to name: the lock headers go on CreateMultipartUpload,
    /// a SHA-256 checksum on every part.
    pub multipart: Arc<dyn ObjectStore>,
}

/// The S3 client options of the environment (`AWS_ALLOW_HTTP`, proxies, timeouts, as
/// `AmazonS3Builder::from_env` reads them), with the lock headers on every request (and, for
/// `whole` object puts, the checksum algorithm's).
pub(crate) fn client_options(lock: &ObjectLock, whole: bool) -> ClientOptions {
    let mut options = ClientOptions::new();
    for (key, value) in std::env::vars() {
        if key.starts_with("AWS_")
            && let Ok(AmazonS3ConfigKey::Client(k)) = key.to_ascii_lowercase().parse()
        {
            options = options.with_config(k, value);
        }
    }
    let mut headers = http::HeaderMap::new();
    let value = |v: &str| http::HeaderValue::from_str(v).expect("an ASCII header value");
    headers.insert("x-amz-object-lock-mode", value(lock.mode.s3_name()));
    headers.insert("x-amz-object-lock-retain-until-date", value(&lock.until_rfc3339()));
    if whole {
        headers.insert("x-amz-sdk-checksum-algorithm", value("SHA256"));
    }
    options.with_default_headers(headers)
}
