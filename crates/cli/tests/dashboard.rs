//! The web dashboard in headless Chromium (Debian's `chromium`, driven by Playwright from
//! PyPI; `harness/browser/setup.sh` installs Playwright), against a server running on the real
//! 3-node cluster. Screenshots are kept in `target/test-artifacts/dashboard/`.

// Jobs on the shared cluster take turns: the guard is held across awaits on purpose.
#![allow(clippy::await_holding_lock)]

mod common;

use std::process::Command;

use cassette_testkit::{Cluster, dataset, repo_root, unique_name};
use common::services::*;
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_started_from_the_dashboard_shows_progress_and_completes_and_an_agent_down_blanks_nothing() {
    let (python, chromium) = browser();

    let cluster = Cluster::trio();
    let session = cluster.session().await;
    let ks = unique_name("dash");
    dataset::load(&session, cluster, &ks, 3, &dataset::Shape::small()).await;
    let root = other_disk_dir();
    let _turn = serial();
    // Each node's copy of this small keyspace takes milliseconds: the agents pause 2 s after it
    // (a test hook), so that the page polls a job with files done and a node still to go.
    let pause = ("CASSETTE_FAULT_PAUSE_AT".to_string(), "keyspace-copied:2000".to_string());
    let mut s = Services::start_with_env(root.path(), Vec::new(), vec![pause]);
    let host_ids = s.host_ids().await;
    let shots = repo_root().join("target/test-artifacts/dashboard");
    let _ = std::fs::remove_dir_all(&shots);

    let dashboard_url = s.url("/");
    let page = |env: &[(&str, &str)]| {
        Command::new(&python)
            .arg(repo_root().join("crates/cli/tests/browser/dashboard.py"))
            .env("DASHBOARD_URL", &dashboard_url)
            .env("CASSETTE_TOKEN", TOKEN)
            .env("BACKUP_NAME", "from-the-dashboard")
            .env("KEYSPACE", &ks)
            .env("SCREENSHOTS", &shots)
            .env("CHROMIUM", &chromium)
            .envs(env.iter().copied())
            .output()
            .expect("run the Playwright script")
    };
    let out = page(&[]);
    assert!(
        out.status.success(),
        "the dashboard test failed:\n{}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.logs()
    );
    // What the page showed is what happened.
    let last = s.get("/cluster/backup/last").await;
    assert_eq!(last["backup"]["backupName"], "from-the-dashboard");
    assert_eq!(last["backup"]["state"], "succeeded");
    for shot in ["1-dashboard.png", "2-progress.png", "3-done.png"] {
        assert!(shots.join(shot).metadata().is_ok_and(|m| m.len() > 1000), "screenshot {shot}");
    }

    // One agent stopped: the page still shows every node, marks that one, and lists the
    // backups the other agents have.
    s.kill_agent(1);
    let down_agent = s.agent_url(1);
    let out = page(&[("MODE", "agent-down"), ("DOWN_AGENT", &down_agent), ("DOWN_HOST_ID", &host_ids[1])]);
    assert!(
        out.status.success(),
        "the dashboard with an agent down failed:\n{}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.logs()
    );
    assert!(shots.join("4-agent-down.png").metadata().is_ok_and(|m| m.len() > 1000), "screenshot 4-agent-down.png");
}
