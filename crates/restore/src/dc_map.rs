//! `--dc-map SOURCE=TARGET`: the data centre names of a `NetworkTopologyStrategy` keyspace that
//! `--create-schema` creates, mapped to the target cluster's (a cluster restored into another
//! one whose data centres have other names). A keyspace replicated to a data centre the target
//! does not have is refused before any statement runs: Cassandra would refuse the `CREATE
//! KEYSPACE` itself, after the other keyspaces had been created.

use std::collections::{BTreeMap, BTreeSet};

use cassette_cassandra::Cql;

use crate::RestoreError;

/// The data centre renames of one restore.
#[derive(Debug, Default, Clone)]
pub(crate) struct DcMap(BTreeMap<String, String>);

impl DcMap {
    /// Parses `SOURCE=TARGET` entries: both names non-empty, each source once, no two
    /// sources onto one target (their replication factors could not both hold).
    pub(crate) fn parse(entries: &[String]) -> Result<DcMap, RestoreError> {
        let mut map = BTreeMap::new();
        let mut targets = BTreeSet::new();
        for e in entries {
            let bad = |why: &str| RestoreError::InvalidInput(format!("--dc-map '{e}': {why}"));
            let (from, to) = e.split_once('=').ok_or_else(|| bad("give SOURCE_DC=TARGET_DC"))?;
            let (from, to) = (from.trim(), to.trim());
            if from.is_empty() || to.is_empty() {
                return Err(bad("give SOURCE_DC=TARGET_DC, both names non-empty"));
            }
            if map.insert(from.to_string(), to.to_string()).is_some() {
                return Err(bad(&format!("data centre '{from}' is mapped twice")));
            }
            if !targets.insert(to.to_string()) {
                return Err(bad(&format!(
                    "two data centres map onto '{to}': a keyspace replicated to both would need two replication factors there"
                )));
            }
        }
        Ok(DcMap(map))
    }

    /// The target's name of source data centre `dc`.
    pub(crate) fn target(&self, dc: &str) -> String {
        self.0.get(dc).cloned().unwrap_or_else(|| dc.to_string())
    }
}

/// Refuses creating keyspaces (backup name, target data centre) replicated to a data centre the
/// cluster of `cql` lacks, naming the ones it has and the flag that maps them.
pub(crate) async fn check_target(cql: &Cql, needed: &[(String, String)]) -> Result<(), RestoreError> {
    if needed.is_empty() {
        return Ok(());
    }
    let mut have: BTreeSet<String> = cql.peers().await?.into_iter().map(|p| p.datacenter).collect();
    have.insert(cql.local_node().await?.datacenter);
    let absent: Vec<String> =
        needed.iter().filter(|(_, dc)| !have.contains(dc)).map(|(ks, dc)| format!("'{dc}' (keyspace {ks})")).collect();
    if absent.is_empty() {
        return Ok(());
    }
    let have: Vec<&str> = have.iter().map(String::as_str).collect();
    Err(RestoreError::InvalidInput(format!(
        "--create-schema would replicate to data centre(s) {} that this cluster does not have (it has: {}); nothing was run. Map each to one of this cluster's with --dc-map SOURCE_DC=TARGET_DC (e.g. --dc-map {}={}), or create the keyspace yourself first",
        absent.join(", "),
        have.join(", "),
        needed.iter().find(|(_, dc)| !have.contains(&dc.as_str())).map_or("", |(_, dc)| dc.as_str()),
        have[0],
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(entries: &[&str]) -> Result<DcMap, String> {
        DcMap::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).map_err(|e| e.to_string())
    }

    #[test]
    fn maps_the_named_data_centres_and_keeps_the_others() {
        let m = parse(&["dc-east=dc1", " dc-west = dc2 "]).unwrap();
        assert_eq!(
            (m.target("dc-east"), m.target("dc-west"), m.target("dc3")),
            ("dc1".into(), "dc2".into(), "dc3".into())
        );
    }

    #[test]
    fn refuses_what_cannot_be_meant() {
        for (entries, says) in [
            (&["dc1"][..], "SOURCE_DC=TARGET_DC"),
            (&["=dc1"][..], "non-empty"),
            (&["dc1="][..], "non-empty"),
            (&["a=x", "a=y"][..], "mapped twice"),
            (&["a=x", "b=x"][..], "two data centres map onto 'x'"),
        ] {
            let e = parse(entries).unwrap_err();
            assert!(e.contains(says), "{entries:?}: {e}");
        }
    }
}
