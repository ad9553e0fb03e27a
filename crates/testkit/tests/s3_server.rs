//! What the S3 test servers do, through object_store's S3 client (signed requests, as cassette
//! sends them). Each test starts its own server (`cassette_testkit::s3::S3Server`).
//!
//! | | s3s-fs 0.14.1 | moto 5 |
//! |---|---|---|
//! | signed PUT/GET/HEAD/LIST/DELETE | yes | yes |
//! | wrong secret key | refused: 403 `SignatureDoesNotMatch`, `PermissionDenied` in object_store | accepted: moto checks no signatures |
//! | `PutMode::Create` on an existing key | `AlreadyExists` (412 to `If-None-Match: *`) | `AlreadyExists` |
//! | `PutMode::Update` with a stale ETag | `Precondition` | `Precondition` |
//! | 16 racing `PutMode::Create` of one key | several may succeed (check, then write) | one did in every round measured (not guaranteed) |
//! | multipart, 5 MiB + small part | yes, ETag `<md5>-2` | yes, ETag `<md5>-2` |
//! | multipart, non-last part < 5 MiB | refused at complete (`EntityTooSmall`) | refused at complete (`EntityTooSmall`) |
//! | user metadata (`Attribute::Metadata`) and Content-Type | stored, returned by GET/HEAD | stored, returned by GET/HEAD |

use cassette_testkit::s3::{S3Kind, S3Server};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, Error, GetOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig, UpdateVersion,
};

/// An S3 client for the server's bucket, signing with `secret`. No retries, so that request
/// counts are exact and a broken server fails fast.
fn client(s3: &S3Server, secret: &str) -> AmazonS3 {
    AmazonS3Builder::new()
        .with_endpoint(&s3.endpoint)
        .with_bucket_name(&s3.bucket)
        .with_access_key_id(&s3.access_key)
        .with_secret_access_key(secret)
        .with_region("us-east-1")
        .with_allow_http(true)
        .with_retry(RetryConfig { max_retries: 0, ..Default::default() })
        .build()
        .expect("build the S3 client")
}

fn store(s3: &S3Server) -> AmazonS3 {
    client(s3, &s3.secret_key)
}

async fn get_bytes(store: &AmazonS3, path: &Path) -> Vec<u8> {
    store.get(path).await.unwrap_or_else(|e| panic!("GET {path}: {e}")).bytes().await.expect("read body").to_vec()
}

fn mib(n: usize, fill: u8) -> Vec<u8> {
    (0..n * 1024 * 1024).map(|i| fill.wrapping_add((i % 251) as u8)).collect()
}

// ---- put, get, head, list, delete -------------------------------------------------------------

async fn put_get_list_delete(kind: S3Kind) {
    let s3 = S3Server::start(kind);
    let store = store(&s3);
    let path = Path::from("backups/node1/a.txt");
    store
        .put(&path, PutPayload::from_static(b"hello s3"))
        .await
        .unwrap_or_else(|e| panic!("PUT: {e}\n{}", s3.log_tail(30)));
    assert_eq!(get_bytes(&store, &path).await, b"hello s3");
    assert_eq!(store.head(&path).await.expect("HEAD").size, 8);
    store.put(&Path::from("backups/node2/b.txt"), PutPayload::from_static(b"b")).await.expect("PUT b");

    let listing = store.list_with_delimiter(Some(&Path::from("backups"))).await.expect("LIST");
    let dirs: Vec<String> = listing.common_prefixes.iter().map(|p| p.to_string()).collect();
    assert_eq!(dirs, ["backups/node1", "backups/node2"]);

    store.delete(&path).await.expect("DELETE");
    assert!(matches!(store.get(&path).await, Err(Error::NotFound { .. })), "a deleted object is gone");
}

#[tokio::test]
async fn s3s_fs_put_get_list_delete() {
    put_get_list_delete(S3Kind::S3sFs).await;
}

#[tokio::test]
async fn moto_put_get_list_delete() {
    put_get_list_delete(S3Kind::Moto).await;
}

// ---- conditional puts -------------------------------------------------------------------------

async fn create_only_and_update(kind: S3Kind) {
    let s3 = S3Server::start(kind);
    let store = store(&s3);
    let path = Path::from("manifest.json");
    let first = store
        .put_opts(&path, PutPayload::from_static(b"v1"), PutMode::Create.into())
        .await
        .unwrap_or_else(|e| panic!("create-only PUT of a new key: {e}\n{}", s3.log_tail(30)));
    match store.put_opts(&path, PutPayload::from_static(b"v2"), PutMode::Create.into()).await {
        Err(Error::AlreadyExists { .. }) => {}
        other => panic!("{}: create-only PUT of an existing key gave {other:?}, not AlreadyExists", kind.name()),
    }
    assert_eq!(get_bytes(&store, &path).await, b"v1", "the refused PUT changed nothing");

    // If-Match: the current ETag replaces, a stale one is refused.
    let current = UpdateVersion { e_tag: first.e_tag.clone(), version: None };
    let second = store
        .put_opts(&path, PutPayload::from_static(b"v2"), PutMode::Update(current.clone()).into())
        .await
        .unwrap_or_else(|e| panic!("PUT If-Match with the current ETag: {e}"));
    assert_ne!(second.e_tag, first.e_tag);
    match store.put_opts(&path, PutPayload::from_static(b"v3"), PutMode::Update(current).into()).await {
        Err(Error::Precondition { .. }) => {}
        other => panic!("{}: PUT If-Match with a stale ETag gave {other:?}, not Precondition", kind.name()),
    }
    assert_eq!(get_bytes(&store, &path).await, b"v2");
}

#[tokio::test]
async fn s3s_fs_create_only_and_update() {
    create_only_and_update(S3Kind::S3sFs).await;
}

#[tokio::test]
async fn moto_create_only_and_update() {
    create_only_and_update(S3Kind::Moto).await;
}

// ---- multipart --------------------------------------------------------------------------------

async fn multipart(kind: S3Kind) -> S3Server {
    let s3 = S3Server::start(kind);
    let store = store(&s3);
    let path = Path::from("big/Data.db");
    let (a, b) = (mib(5, 1), b"the small last part".to_vec());
    let mut upload = store.put_multipart(&path).await.unwrap_or_else(|e| panic!("CreateMultipartUpload: {e}"));
    upload.put_part(PutPayload::from(a.clone())).await.expect("part 1");
    upload.put_part(PutPayload::from(b.clone())).await.expect("part 2");
    let done = upload.complete().await.unwrap_or_else(|e| panic!("CompleteMultipartUpload: {e}\n{}", s3.log_tail(30)));
    let etag = done.e_tag.expect("an ETag");
    assert!(etag.trim_matches('"').ends_with("-2"), "{}: AWS-style multipart ETag <md5>-2, got {etag}", kind.name());
    let got = get_bytes(&store, &path).await;
    assert_eq!(got.len(), a.len() + b.len());
    assert!(got[..a.len()] == a[..] && got[a.len()..] == b[..], "the parts are joined in order");

    // A non-last part under 5 MiB is refused when the upload is completed.
    let mut small = store.put_multipart(&Path::from("big/small-parts")).await.expect("create");
    small.put_part(PutPayload::from_static(b"too small")).await.expect("a small part is accepted");
    small.put_part(PutPayload::from_static(b"last")).await.expect("part 2");
    let err = small.complete().await.expect_err("a 9-byte first part must be refused");
    assert!(format!("{err:?}").contains("EntityTooSmall"), "{}: {err:?}", kind.name());
    s3
}

#[tokio::test]
async fn s3s_fs_multipart() {
    let s3 = multipart(S3Kind::S3sFs).await;
    let files = s3.object_files();
    assert_eq!(
        files,
        [s3.root.join("cassette/big/Data.db")],
        "the upload left one object file; internals: {:?}",
        s3.internal_files()
    );
    assert_eq!(std::fs::metadata(&files[0]).unwrap().len(), 5 * 1024 * 1024 + 19);
}

#[tokio::test]
async fn moto_multipart_request_counts() {
    let s3 = multipart(S3Kind::Moto).await;
    // Per upload: POST ?uploads, PUT per part, POST ?uploadId= (complete); then one GET.
    assert_eq!(s3.requests("POST"), 4, "{:#?}", s3.request_log());
    assert_eq!(s3.requests("PUT"), 4, "{:#?}", s3.request_log());
    assert_eq!(s3.requests("GET"), 1, "{:#?}", s3.request_log());
    assert!(
        s3.request_log().iter().any(|r| r.method == "POST" && r.path.contains("big/small-parts") && r.status == 400)
    );
}

// ---- signatures -------------------------------------------------------------------------------

#[tokio::test]
async fn s3s_fs_refuses_a_wrong_secret() {
    let s3 = S3Server::start(S3Kind::S3sFs);
    let bad = client(&s3, "not-the-secret");
    let path = Path::from("x");
    match bad.put(&path, PutPayload::from_static(b"x")).await {
        Err(Error::PermissionDenied { .. }) => {}
        other => panic!("s3s-fs accepted or mis-refused a PUT signed with a wrong secret: {other:?}"),
    }
    assert!(s3.object_files().is_empty(), "nothing was stored");
    match bad.get(&path).await {
        Err(Error::PermissionDenied { .. }) => {}
        other => panic!("s3s-fs answered a GET signed with a wrong secret: {other:?}"),
    }
}

/// Documents a limit of moto: it does not check signatures, so a wrong secret works. Tests of
/// authentication failures must use s3s-fs.
#[tokio::test]
async fn moto_accepts_a_wrong_secret() {
    let s3 = S3Server::start(S3Kind::Moto);
    let bad = client(&s3, "not-the-secret");
    bad.put(&Path::from("x"), PutPayload::from_static(b"x")).await.expect("moto checks no signatures");
    assert_eq!(s3.requests("PUT"), 1);
}

// ---- user metadata ----------------------------------------------------------------------------

async fn user_metadata(kind: S3Kind) {
    let s3 = S3Server::start(kind);
    let store = store(&s3);
    let path = Path::from("with-meta");
    let mut attributes = Attributes::new();
    attributes.insert(Attribute::Metadata("cassette-blake3".into()), "af1349b9".into());
    attributes.insert(Attribute::ContentType, "application/octet-stream".into());
    let opts = PutOptions { attributes, ..Default::default() };
    store.put_opts(&path, PutPayload::from_static(b"m"), opts).await.expect("PUT with metadata");

    let got = store.get_opts(&path, GetOptions { head: true, ..Default::default() }).await.expect("HEAD");
    let meta = got.attributes.get(&Attribute::Metadata("cassette-blake3".into())).map(|v| v.as_ref().to_string());
    assert_eq!(meta.as_deref(), Some("af1349b9"), "{}: {:?}", kind.name(), got.attributes);
    let ct = got.attributes.get(&Attribute::ContentType).map(|v| v.as_ref().to_string());
    assert_eq!(ct.as_deref(), Some("application/octet-stream"));
    let got = store.get(&path).await.expect("GET");
    assert!(got.attributes.get(&Attribute::Metadata("cassette-blake3".into())).is_some(), "GET returns it too");
}

#[tokio::test]
async fn s3s_fs_user_metadata() {
    user_metadata(S3Kind::S3sFs).await;
}

#[tokio::test]
async fn moto_user_metadata() {
    user_metadata(S3Kind::Moto).await;
}

// ---- the fixture ------------------------------------------------------------------------------

#[tokio::test]
async fn s3s_fs_stores_objects_as_plain_files() {
    let s3 = S3Server::start(S3Kind::S3sFs);
    let store = store(&s3);
    store.put(&Path::from("c/n/ks/t/nb-1-big-Data.db"), PutPayload::from_static(b"sstable")).await.expect("PUT");
    let f = s3.root.join("cassette/c/n/ks/t/nb-1-big-Data.db");
    assert_eq!(s3.object_files(), std::slice::from_ref(&f));
    assert_eq!(std::fs::read(&f).unwrap(), b"sstable");
    // Its attributes and ETag are kept in two hidden files directly under the root, not beside it.
    let internal: Vec<String> =
        s3.internal_files().iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(internal.len(), 2, "{internal:?}");
    assert!(internal.iter().any(|n| n.starts_with(".bucket-") && n.ends_with(".metadata.json")), "{internal:?}");
    assert!(internal.iter().any(|n| n.starts_with(".bucket-") && n.ends_with(".internal.json")), "{internal:?}");
}

#[test]
fn each_server_has_its_own_port_and_is_stopped_on_drop() {
    let a = S3Server::start(S3Kind::Moto);
    let b = S3Server::start(S3Kind::S3sFs);
    assert_ne!(a.port, b.port);
    assert_eq!(a.url("x/y"), "s3://cassette/x/y");
    let env = b.env();
    assert!(env.contains(&("AWS_ENDPOINT".into(), b.endpoint.clone())));
    let ports = [a.port, b.port];
    drop(a);
    drop(b);
    for p in ports {
        assert!(std::net::TcpStream::connect(("127.0.0.1", p)).is_err(), "port {p} still answers after drop");
    }
}

/// Documents an s3s-fs quirk: it answers 412 to `If-None-Match: *` before reading the request
/// body, then closes the connection with the body unread, so the client, still sending, often
/// sees a reset (`error sending request`: broken pipe or incomplete message) instead of the 412.
/// Measured with object_store, one client, bodies up to 1 MiB: always `AlreadyExists`; 5 MiB:
/// 4 of 5 attempts a transport error (`Generic`), with or without object_store's retries (a
/// non-idempotent PUT interrupted mid-body is not retried). Never a success: the object keeps its
/// first body. moto reads the whole body first and always answers `AlreadyExists`.
#[tokio::test]
async fn s3s_fs_refused_large_create_may_reset_the_connection() {
    let s3 = S3Server::start(S3Kind::S3sFs);
    let store = store(&s3);
    let path = Path::from("large");
    store.put(&path, PutPayload::from(mib(5, 1))).await.expect("PUT");
    for _ in 0..3 {
        match store.put_opts(&path, PutPayload::from(mib(5, 2)), PutMode::Create.into()).await {
            Err(Error::AlreadyExists { .. } | Error::Generic { .. }) => {}
            other => panic!("a create-only PUT of an existing 5 MiB key gave {other:?}"),
        }
    }
    assert_eq!(get_bytes(&store, &path).await, mib(5, 1), "the object kept its first body");
}

// ---- concurrent create-only puts --------------------------------------------------------------

/// 16 clients create the same key at once with `PutMode::Create`, 10 times. Both servers check
/// `If-None-Match: *` and then write, without a lock between the two, so the check is not
/// atomic: on s3s-fs several creates of one key usually succeed (measured: 1 to 16 of 16 per
/// round; the last rename wins), on moto exactly one did in every round of 6 runs (its window is
/// short, but it is not guaranteed either). Bodies are 4 KiB: with 64 KiB bodies s3s-fs also
/// resets some refused requests (see `s3s_fs_refused_large_create_may_reset_the_connection`).
/// Moto also answers a loser with 500 now and then: it computes the ETag of the key's previous
/// body after another thread has closed it (`ValueError: I/O operation on closed file` in its
/// log, seen once in CI). What holds on both, and is asserted: at least one create succeeds, the
/// others fail with `AlreadyExists` (or, on moto only, that 500), and the object is one writer's
/// body, whole. Tests that need a create-only put to exclude a second writer must not race two
/// writers on these servers.
async fn racing_creates(kind: S3Kind) {
    let s3 = S3Server::start(kind);
    let store = std::sync::Arc::new(store(&s3));
    let (mut winners, mut moto_errors) = (Vec::new(), 0);
    for round in 0..10 {
        let path = Path::from(format!("race/{round}"));
        let tasks: Vec<_> = (0..16u8)
            .map(|i| {
                let (store, path) = (store.clone(), path.clone());
                tokio::spawn(async move {
                    store.put_opts(&path, PutPayload::from(vec![i; 4096]), PutMode::Create.into()).await
                })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            match t.await.expect("task") {
                Ok(_) => ok += 1,
                Err(Error::AlreadyExists { .. }) => {}
                Err(e) if kind == S3Kind::Moto && format!("{e:?}").contains("status: 500") => moto_errors += 1,
                Err(e) => panic!("{}: a racing create-only PUT failed with {e:?}", kind.name()),
            }
        }
        assert!(ok >= 1, "{}: no create-only PUT of a new key succeeded", kind.name());
        let body = get_bytes(&store, &path).await;
        assert!(body.len() == 4096 && body.iter().all(|b| *b == body[0]), "{}: a mixed body", kind.name());
        winners.push(ok);
    }
    eprintln!("{}: create-only PUTs that succeeded per round of 16 racing: {winners:?}", kind.name());
    eprintln!("{}: losers answered 500 by the server: {moto_errors}", kind.name());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3s_fs_racing_creates() {
    racing_creates(S3Kind::S3sFs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moto_racing_creates() {
    racing_creates(S3Kind::Moto).await;
}
