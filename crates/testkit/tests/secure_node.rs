//! The secured test node (`Cluster::solo_secure`) is secured as a production node is: CQL wants
//! TLS with a client certificate of its CA and a valid login, and JMX wants a login.

use std::process::{Command, Output};

use cassette_cassandra::{Cql, CqlTarget, CqlTls};
use cassette_testkit::{Cluster, SecureNode};

fn secured() -> (&'static Cluster, &'static SecureNode) {
    let cluster = Cluster::solo_secure();
    (cluster, cluster.secure.as_ref().expect("the secure cluster's cluster.json has a `secure` object"))
}

/// Connecting with `target` must fail; returns the error's text.
async fn refused(target: &CqlTarget, what: &str) -> String {
    match Cql::connect(target).await {
        Ok(_) => panic!("the secured node accepted a CQL connection {what}"),
        Err(e) => {
            eprintln!("refused {what}: {e}");
            e.to_string()
        }
    }
}

fn nodetool(cluster: &Cluster, args: &[&str]) -> Output {
    let node = &cluster.nodes[0];
    Command::new(&cluster.nodetool)
        .args(["-h", "127.0.0.1", "-p", &node.jmx_port.to_string()])
        .args(args)
        .output()
        .expect("run the cluster's nodetool")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Whether a refused connection's error says the node ended the TLS handshake.
fn ended_the_handshake(e: &str) -> bool {
    e.contains("alert") || e.contains("the node closed the TLS connection")
}

#[tokio::test]
async fn cql_wants_the_right_certificate_and_password() {
    let (cluster, secure) = secured();
    let node = &cluster.nodes[0];

    let cql = node.cql().await;
    let rows = cql.session().query_unpaged("SELECT release_version FROM system.local", ()).await.unwrap();
    let (release,) = rows.into_rows_result().unwrap().single_row::<(String,)>().unwrap();
    assert_eq!(release, cluster.cassandra_version);
    let session = cluster.session().await;
    session.query_unpaged("SELECT release_version FROM system.local", ()).await.unwrap();

    let good = secure.cql_target(&node.ip);

    let plain = CqlTarget { tls: None, ..good.clone() };
    refused(&plain, "without TLS").await;

    let no_cert = CqlTarget { tls: Some(CqlTls::new(&secure.ca)), ..good.clone() };
    // The node ends the TLS handshake with an alert; when the client is still writing, it sees
    // the connection reset instead, and cassette says the node closed it.
    let e = refused(&no_cert, "without a client certificate").await;
    assert!(ended_the_handshake(&e), "{e}");

    let other_ca = CqlTarget {
        tls: Some(CqlTls {
            client_cert: Some((secure.other_client_cert.clone(), secure.other_client_key.clone())),
            ..CqlTls::new(&secure.ca)
        }),
        ..good.clone()
    };
    let e = refused(&other_ca, "with a client certificate of another CA").await;
    assert!(ended_the_handshake(&e), "{e}");

    let wrong_password =
        CqlTarget { credentials: Some((secure.cql_user.clone(), format!("{}x", secure.cql_password))), ..good.clone() };
    let e = refused(&wrong_password, "with a wrong password").await;
    assert!(e.contains("bad credentials"), "{e}");
    assert!(!e.contains(&secure.cql_password), "the error shows the password: {e}");

    let no_login = CqlTarget { credentials: None, ..good.clone() };
    let e = refused(&no_login, "without a login").await;
    assert!(e.contains("Authentication is required"), "{e}");
}

#[test]
fn jmx_wants_a_login() {
    let (cluster, secure) = secured();
    let node = &cluster.nodes[0];

    let out = nodetool(cluster, &["status"]);
    assert!(!out.status.success(), "nodetool status without a login succeeded:\n{}", text(&out));
    assert!(text(&out).contains("Authentication failed"), "{}", text(&out));

    let out = nodetool(cluster, &["-u", &secure.jmx_user, "-pw", &format!("{}x", secure.jmx_password), "status"]);
    assert!(!out.status.success(), "nodetool status with a wrong password succeeded:\n{}", text(&out));
    assert!(text(&out).contains("Invalid username or password"), "{}", text(&out));

    let pwf = secure.jmx_password_file.display().to_string();
    let out = nodetool(cluster, &["-u", &secure.jmx_user, "-pwf", &pwf, "status"]);
    assert!(out.status.success(), "nodetool status with the login failed:\n{}", text(&out));
    let up = String::from_utf8_lossy(&out.stdout);
    assert!(up.lines().any(|l| l.starts_with("UN ") && l.contains(&node.ip)), "{up}");

    // The fixture's own helpers log in.
    assert!(node.nodetool(&["status"]).contains(&node.ip));
}

#[tokio::test]
async fn cassettes_nodetool_client_logs_in() {
    let (cluster, _) = secured();
    let out = cluster.nodes[0].nodetool_client().run(&["version"]).await.unwrap();
    assert!(out.contains(&cluster.cassandra_version), "{out}");
}

#[test]
fn secrets_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let (_, secure) = secured();
    let dir = secure.ca.parent().unwrap();
    assert_eq!(std::fs::metadata(dir).unwrap().permissions().mode() & 0o777, 0o700);
    for file in [&secure.client_key, &secure.other_client_key, &secure.jmx_password_file, &secure.cql_password_file] {
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
}

#[test]
fn jmx_over_tls_wants_tls_and_a_login() {
    let cluster = Cluster::solo_secure_jmx_tls();
    let secure = cluster.secure.as_ref().expect("the securetls cluster's cluster.json has a `secure` object");
    assert!(secure.jmx_tls);
    let node = &cluster.nodes[0];
    let pwf = secure.jmx_password_file.display().to_string();
    let login = ["-u", secure.jmx_user.as_str(), "-pwf", pwf.as_str()];
    let run = |extra: &[&str], properties: &std::path::Path| {
        Command::new(&cluster.nodetool)
            .args(["-h", "127.0.0.1", "-p", &node.jmx_port.to_string()])
            .args(login)
            .args(extra)
            .arg("status")
            .env("NODETOOL_SSL_PROPERTIES", properties)
            .output()
            .expect("run the cluster's nodetool")
    };

    let out = run(&[], &secure.nodetool_ssl_properties);
    assert!(!out.status.success(), "nodetool without --ssl reached a JMX over TLS:\n{}", text(&out));

    let out = run(&["--ssl"], std::path::Path::new("/nonexistent/nodetool-ssl.properties"));
    assert!(!out.status.success(), "nodetool --ssl trusted the node without its CA:\n{}", text(&out));
    assert!(text(&out).contains("certification path"), "{}", text(&out));

    let out = run(&["--ssl"], &secure.nodetool_ssl_properties);
    assert!(out.status.success(), "nodetool --ssl with the CA and the login failed:\n{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).lines().any(|l| l.starts_with("UN ") && l.contains(&node.ip)));

    assert!(node.nodetool(&["status"]).contains(&node.ip));
}
