//! cassette's repository on object storage: the same logical layout and the same manifest as a
//! local repository (`cassette-repo`), in an S3 bucket (AWS or any S3-compatible server), a GCS
//! bucket or an Azure container, through the `object_store` crate.
//!
//! ```text
//! <url prefix>/<cluster_name>/<host_id>/
//!     .index.json                          node index (a cache, as on a local repository)
//!     <backup_name>/
//!         <keyspace>/<table>/<SSTable files>   uploaded by this backup
//!         cassette-meta/schema.cql, tables/, conf/
//!         cassette-meta/deleted.json       tombstone: the backup is being deleted
//!         manifest.json                    written last, create-only: its presence = complete
//! ```
//!
//! What differs from a local repository, and why:
//! - **Deduplication by reference.** Object stores have no hard links: a file the node's
//!   previous complete backup already stored is not uploaded again; its manifest entry says
//!   where the bytes are (`object`, relative to the node prefix). Deleting a backup therefore
//!   deletes only the objects no remaining manifest references ([`gc`]).
//! - **Create-only manifest.** `manifest.json` is put with `PutMode::Create`, so two writers can
//!   never both complete the same backup; the second gets [`ObjectError::AlreadyComplete`].
//! - **Resume without local state.** An interrupted backup is resumed by listing what its prefix
//!   already holds: a PUT (or a completed multipart upload) is atomic, so an object that exists
//!   is whole; files whose object exists with the right size are not uploaded again.
//! - **Bounded memory.** Every byte in flight sits in one of a fixed number of part buffers
//!   ([`Transfer`]), whatever the number and size of the files.
//!
//! Main types: [`RemoteRepo`] (a parsed URL and its store), [`Transfer`] (part size, buffers,
//! bandwidth), [`RemoteBackup`] (the keys of one backup).

#![deny(missing_docs)]

pub mod beneath_store;
pub mod error;
pub mod gc;
pub mod limit;
pub mod list;
mod lock;
pub mod meta;
mod parts;
pub mod repo;
mod sealed;
pub mod transfer;
pub mod verify;

pub use error::{ObjectError, Result};
pub use list::{list_backups, list_node};
pub use object_store::PutMode;
pub use repo::{RemoteBackup, RemoteRepo, Transfer, is_remote_url};
pub use transfer::Uploaded;
