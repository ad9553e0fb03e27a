//! A dry run: what an offline restore would do, given its plan and what the journal says an
//! interrupted run already did. Nothing is touched.

use super::node_control::NodeControl;
use super::place::backup_files;
use super::plan::OfflineTable;
use super::quarantine::{TABLE_SKIP, count_files};
use super::report::{OfflineStep, OfflineTableOutcome, step};
use crate::journal::OfflineState;
use crate::select::Planned;

/// The steps after `verify`, and what would happen to each table.
pub(super) fn describe(
    state: &OfflineState,
    planned: &[Planned<'_>],
    node: &NodeControl<'_>,
    repair: bool,
) -> (Vec<OfflineStep>, Vec<OfflineTableOutcome>) {
    let (p, opts, address) = (&state.plan, node.opts, &node.address);
    let mut steps = Vec::new();
    steps.push(step(
        "drain",
        if state.drained {
            "skip: already drained (journal)".into()
        } else {
            let (jmx_host, jmx_port) = node.nodetool.jmx_address();
            format!("nodetool drain (JMX {jmx_host}:{jmx_port})")
        },
    ));
    steps.push(step(
        "stop",
        if state.stopped {
            "skip: already stopped (journal)".into()
        } else {
            format!("sh -c '{}', then wait until CQL {address} and JMX stop answering", opts.stop_command)
        },
    ));
    for (item, mv) in p.node_moves() {
        let detail = if state.quarantined.contains(item) {
            "skip: already quarantined (journal)".into()
        } else {
            format!("move {} files of {} to {}", count_files(&mv.source, &[]), mv.source.display(), mv.dest.display())
        };
        steps.push(step("quarantine", detail));
    }
    let tables = p.tables.iter().map(|t| describe_table(state, planned, t)).collect();
    steps.push(step(
        "start",
        format!("sh -c '{}', then wait for CQL {address} and UN {}", opts.start_command, p.node_address),
    ));
    if repair {
        steps.push(step("repair", "nodetool repair -pr --full, per keyspace".into()));
    }
    (steps, tables)
}

fn describe_table(state: &OfflineState, planned: &[Planned<'_>], t: &OfflineTable) -> OfflineTableOutcome {
    let (p, name) = (&state.plan, t.live_name());
    let mut out = OfflineTableOutcome::nothing_yet(t, p.live_dir(t));
    let mut notes = Vec::new();
    if state.quarantined.contains(&name) {
        notes.push("already quarantined (journal)");
    } else {
        out.quarantined_files = p.data.iter().map(|mv| count_files(&t.dir_in(&mv.source), TABLE_SKIP)).sum();
    }
    if state.placed.contains(&name) {
        notes.push("already placed (journal)");
        out.skipped = Some(format!("dry run: {}", notes.join(", ")));
        return out;
    }
    let placed = backup_files(planned, t);
    out.placed_files = placed.len() as u64;
    out.placed_bytes = placed.iter().map(|(f, _)| f.size).sum();
    let quarantine = if notes.is_empty() {
        format!("quarantine {} live files, then ", out.quarantined_files)
    } else {
        String::new()
    };
    out.skipped = Some(format!(
        "dry run: would {quarantine}place {} backed-up files in {}",
        out.placed_files,
        out.live_dir.display()
    ));
    out
}
