//! The outcome words a backup and a restore both report: the format's
//! (`cassette_format::report`), re-exported under the path callers use.

pub use cassette_format::report::{KeyspaceOutcome, Status};
