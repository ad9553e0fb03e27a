//! The harness fails loudly: a node that cannot start makes `cassandra.sh start` fail with the
//! reason and the node's log tail, never a silent skip.

use std::process::Command;

#[test]
fn a_node_that_cannot_start_fails_with_its_log_tail() {
    let root = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(cassette_testkit::harness_script())
        // A heap too small for the JVM to start: the node dies at once. (An address and port no
        // shared test cluster uses: `secure` lives on 127.0.6.1, `securetls` on JMX 7800.)
        .args([
            "start",
            "--name",
            "broken",
            "--nodes",
            "1",
            "--first-ip",
            "127.0.9.1",
            "--jmx-base",
            "8800",
            "--heap",
            "1m",
        ])
        .env("CASSETTE_CLUSTER_ROOT", root.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "start must fail:\n{stderr}");
    assert!(stderr.contains("exited during start-up"), "{stderr}");
    assert!(
        stderr.contains("tail of") && stderr.to_lowercase().contains("heap"),
        "the log tail shows the cause:\n{stderr}"
    );
    let _ = Command::new("bash")
        .arg(cassette_testkit::harness_script())
        .args(["stop", "--name", "broken"])
        .env("CASSETTE_CLUSTER_ROOT", root.path())
        .output();
}
