//! Which backups of a node a retention policy keeps, and why: the format's pure planning
//! (`cassette_format::retention`), re-exported under the path callers use.

pub use cassette_format::retention::{Policy, Reason, age, select};
