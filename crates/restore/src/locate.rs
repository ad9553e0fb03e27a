//! Stage `locate`: which backup, in which store, and its manifest.

use cassette_repo::BackupName;
use cassette_store::locate::{LocateError, Located};
use cassette_store::{BackupId, Store};

use crate::{RestoreError, RestoreRequest};

/// Opens the repository of `req` and finds the backup `req.name` of `host_id` in `cluster`.
/// Not found: the error lists the backups that exist for that node, and the nodes that have a
/// backup of that name.
pub(crate) async fn locate(req: &RestoreRequest, cluster: &str, host_id: &str) -> Result<Located, RestoreError> {
    let name = BackupName::parse(&req.name).map_err(|e| RestoreError::InvalidInput(e.to_string()))?;
    let store = open_store(req)?;
    let id = BackupId { cluster: cluster.to_string(), host_id: host_id.to_string(), name };
    match cassette_store::locate::locate(&*store, &id).await {
        Ok(located) => Ok(located),
        Err(LocateError::NotFound { location, hint }) => Err(RestoreError::NotFound {
            name: req.name.clone(),
            cluster: cluster.to_string(),
            host_id: host_id.to_string(),
            path: location,
            hint,
        }),
        Err(LocateError::Incomplete { location }) => Err(RestoreError::Incomplete { path: location }),
        Err(LocateError::Store(e)) => Err(e.into()),
    }
}

/// The repository a restore reads.
pub(crate) fn open_store(req: &RestoreRequest) -> Result<std::sync::Arc<dyn Store>, RestoreError> {
    Ok(cassette_store::open(&req.backup_root, req.transfer.clone())?)
}
