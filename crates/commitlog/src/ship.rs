//! The shipper: every spooled segment into the repository, oldest first, then out of the
//! spool. It stops at the first failure (an unreachable repository fails every segment the
//! same way) and leaves that segment and the newer ones waiting for the next run.

use cassette_store::Store;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::Result;
use crate::spool::{Spool, SpoolDepth};

/// What one run of the shipper did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ShipReport {
    /// The repository location of the node's segments.
    pub location: String,
    /// Segments stored by this run.
    pub shipped: Vec<String>,
    /// Segments that were archived already (a shipper killed after storing them): removed from
    /// the spool without being stored again.
    pub already_archived: Vec<String>,
    /// Bytes stored by this run.
    pub bytes: u64,
    /// The last write of the newest segment this run archived.
    pub last_shipped_write: Option<DateTime<Utc>>,
    /// What still waits in the spool.
    pub waiting: SpoolDepth,
    /// Why the run stopped early, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Ships every segment of `spool` into `store`. Fails only when the spool itself cannot be
/// used (not set up, another shipper running); a store failure stops the run and is in the
/// report's `error`, with the segments still waiting.
pub async fn ship(spool: &Spool, store: &dyn Store) -> Result<ShipReport> {
    let _lock = spool.lock()?;
    let id = spool.identity()?;
    let archive = store.segments(&id.cluster, &id.host_id)?;
    let mut report = ShipReport { location: archive.location(), ..Default::default() };
    for segment in spool.segments(id.installed_at)? {
        match archive.put(&segment).await {
            Ok((record, stored)) => {
                // A kill here leaves the segment archived and still spooled: the rerun must
                // not store it twice.
                cassette_repo::fault::point("segment-archived");
                spool.remove(&segment)?;
                report.last_shipped_write = report.last_shipped_write.max(Some(record.last_write));
                if stored {
                    report.bytes += record.size;
                    report.shipped.push(record.name);
                } else {
                    report.already_archived.push(record.name);
                }
            }
            Err(e) => {
                tracing::warn!(segment = %segment.name, error = %e, "could not ship a commitlog segment; it waits in the spool");
                report.error = Some(format!("{}: {e}", segment.name));
                break;
            }
        }
    }
    report.waiting = spool.depth()?;
    tracing::info!(
        shipped = report.shipped.len(),
        already = report.already_archived.len(),
        waiting = report.waiting.segments,
        "commitlog segments shipped"
    );
    Ok(report)
}
