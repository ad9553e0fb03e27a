//! Names that become directory names in the repository: the rule lives in `cassette-format`
//! (re-exported here under the paths callers use).

pub use cassette_format::name::{BackupName, MAX_BACKUP_NAME_LEN, path_component};
