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
async fn a_backup_started_from_the_dashboard_shows_progress_and_completes() {
    let setup =
        Command::new(repo_root().join("harness/browser/setup.sh")).output().expect("run harness/browser/setup.sh");
    assert!(
        setup.status.success(),
        "the browser test needs chromium and Playwright (harness/browser/setup.sh failed):\n{}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let python = String::from_utf8_lossy(&setup.stdout).trim().to_string();
    let chromium = ["chromium", "chromium-browser"]
        .iter()
        .find_map(|b| {
            let out = Command::new("sh").args(["-c", &format!("command -v {b}")]).output().ok()?;
            out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        })
        .expect("chromium (apt install chromium)");

    let cluster = Cluster::trio();
    let session = cluster.session().await;
    let ks = unique_name("dash");
    dataset::load(&session, cluster, &ks, 3, &dataset::Shape::small()).await;
    let root = other_disk_dir();
    let _turn = serial();
    // Each node's copy of this small keyspace takes milliseconds: the agents pause 2 s after it
    // (a test hook), so that the page polls a job with files done and a node still to go.
    let pause = ("CASSETTE_FAULT_PAUSE_AT".to_string(), "keyspace-copied:2000".to_string());
    let s = Services::start_with_env(root.path(), Vec::new(), vec![pause]);
    let shots = repo_root().join("target/test-artifacts/dashboard");
    let _ = std::fs::remove_dir_all(&shots);

    let out = Command::new(&python)
        .arg(repo_root().join("crates/cli/tests/browser/dashboard.py"))
        .env("DASHBOARD_URL", s.url("/"))
        .env("CASSETTE_TOKEN", TOKEN)
        .env("BACKUP_NAME", "from-the-dashboard")
        .env("KEYSPACE", &ks)
        .env("SCREENSHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("run the Playwright script");
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
}
