//! One node as cassette drives it: CQL and nodetool.

use crate::{Cql, Nodetool};

/// A node: a CQL session pinned to it and its nodetool.
pub struct Node {
    /// CQL pinned to the node.
    pub cql: Cql,
    /// The node's nodetool.
    pub nodetool: Nodetool,
}
