//! Which keyspaces are Cassandra's own, and which of those a backup may include.

/// Keyspaces local to each node or virtual: never backed up (they describe the node itself,
/// and Cassandra rebuilds them).
pub const LOCAL_SYSTEM_KEYSPACES: &[&str] = &["system", "system_schema", "system_views", "system_virtual_schema"];

/// Replicated system keyspaces: skipped by default, can be opted in (roles live in `system_auth`).
pub const REPLICATED_SYSTEM_KEYSPACES: &[&str] = &["system_auth", "system_distributed", "system_traces"];

/// True for every keyspace that Cassandra itself owns.
pub fn is_system(keyspace: &str) -> bool {
    LOCAL_SYSTEM_KEYSPACES.contains(&keyspace) || REPLICATED_SYSTEM_KEYSPACES.contains(&keyspace)
}

/// True for the system keyspaces that can never be restored from a backup.
pub fn is_local_system(keyspace: &str) -> bool {
    LOCAL_SYSTEM_KEYSPACES.contains(&keyspace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_system_keyspaces() {
        assert!(is_system("system_auth"));
        assert!(is_local_system("system_schema"));
        assert!(!is_local_system("system_auth"));
        assert!(!is_system("shop"));
        assert!(!is_system("system_of_records"));
    }
}
