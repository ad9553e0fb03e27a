//! The certificates and logins of a secured test cluster (`cassandra.sh start --secure`):
//! `PasswordAuthenticator`, client-to-node TLS with `require_client_auth`, JMX authentication.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cassette_cassandra::{Cql, CqlTarget, CqlTls, JmxSecurity};
use serde::Deserialize;

/// The CQL role the fixture creates (LOGIN, SUPERUSER) for tests and for cassette to log in as.
pub const CQL_ROLE: &str = "cassette_backup";

/// The superuser every new Cassandra cluster has.
const DEFAULT_SUPERUSER: (&str, &str) = ("cassandra", "cassandra");

/// The `secure` object of `cluster.json`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SecureFiles {
    ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    other_client_cert: PathBuf,
    other_client_key: PathBuf,
    jmx_user: String,
    jmx_password_file: PathBuf,
    jmx_tls: bool,
    nodetool_ssl_properties: PathBuf,
}

/// How to reach a secured test cluster, as a user of it would: its CA, a client certificate it
/// accepts and one it refuses, the JMX login, and the CQL login of role [`CQL_ROLE`].
#[derive(Clone)]
pub struct SecureNode {
    /// PEM of the cluster's test CA, which signed the nodes' and the client's certificates.
    pub ca: PathBuf,
    /// PEM client certificate (CN=cassette) signed by the cluster's CA.
    pub client_cert: PathBuf,
    /// Its PEM private key.
    pub client_key: PathBuf,
    /// PEM client certificate signed by another CA: the nodes must refuse it.
    pub other_client_cert: PathBuf,
    /// Its PEM private key.
    pub other_client_key: PathBuf,
    /// The JMX user (`cassette`, readwrite).
    pub jmx_user: String,
    /// Its password.
    pub jmx_password: String,
    /// The same login in nodetool's `--password-file` format (`USER PASSWORD`), mode 0600.
    pub jmx_password_file: PathBuf,
    /// JMX over TLS too (`cassandra.sh start --jmx-tls`): nodetool needs `--ssl`.
    pub jmx_tls: bool,
    /// nodetool's TLS settings (the cluster's CA as trust store), in the format of
    /// `~/.cassandra/nodetool-ssl.properties`; the harness nodetool reads it when
    /// `NODETOOL_SSL_PROPERTIES` names it.
    pub nodetool_ssl_properties: PathBuf,
    /// The CQL role the fixture created ([`CQL_ROLE`]).
    pub cql_user: String,
    /// Its password.
    pub cql_password: String,
    /// The file holding that password alone, mode 0600.
    pub cql_password_file: PathBuf,
}

/// Never prints the passwords.
impl std::fmt::Debug for SecureNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureNode")
            .field("ca", &self.ca)
            .field("client_cert", &self.client_cert)
            .field("other_client_cert", &self.other_client_cert)
            .field("jmx_user", &self.jmx_user)
            .field("jmx_password_file", &self.jmx_password_file)
            .field("jmx_tls", &self.jmx_tls)
            .field("cql_user", &self.cql_user)
            .field("cql_password_file", &self.cql_password_file)
            .finish_non_exhaustive()
    }
}

impl SecureNode {
    /// TLS as a client the cluster accepts: its CA, the client certificate, names checked.
    pub fn cql_tls(&self) -> CqlTls {
        CqlTls { client_cert: Some((self.client_cert.clone(), self.client_key.clone())), ..CqlTls::new(&self.ca) }
    }

    /// CQL to `host`:9042 over [`SecureNode::cql_tls`], logged in as [`CQL_ROLE`].
    pub fn cql_target(&self, host: &str) -> CqlTarget {
        CqlTarget {
            credentials: Some((self.cql_user.clone(), self.cql_password.clone())),
            tls: Some(self.cql_tls()),
            ..CqlTarget::new(host, 9042)
        }
    }

    /// The JMX login (and TLS) for cassette's nodetool client.
    pub fn jmx_security(&self) -> JmxSecurity {
        let login = JmxSecurity::from_password_file(Some(self.jmx_user.clone()), &self.jmx_password_file)
            .unwrap_or_else(|e| panic!("the secured test cluster's JMX login: {e}"));
        if !self.jmx_tls {
            return login;
        }
        JmxSecurity { tls: true, ssl_properties: Some(self.nodetool_ssl_properties.clone()), ..login }
    }

    /// nodetool's login arguments: `-u USER -pwf FILE`, and `--ssl` for JMX over TLS (which
    /// also needs [`SecureNode::nodetool_env`]).
    pub fn nodetool_login_args(&self) -> Vec<String> {
        let mut args =
            vec!["-u".into(), self.jmx_user.clone(), "-pwf".into(), self.jmx_password_file.display().to_string()];
        if self.jmx_tls {
            args.push("--ssl".into());
        }
        args
    }

    /// The environment the harness nodetool reads its TLS settings from (`NODETOOL_SSL_PROPERTIES`).
    pub fn nodetool_env(&self) -> Vec<(&'static str, PathBuf)> {
        if self.jmx_tls { vec![("NODETOOL_SSL_PROPERTIES", self.nodetool_ssl_properties.clone())] } else { Vec::new() }
    }

    /// Reads the JMX login and makes sure role [`CQL_ROLE`] exists with the password of
    /// `cql.password` (made on first use), logging in to `host` as the default superuser.
    /// Blocking: it runs on a runtime of its own, so any caller (async tests too) can use it.
    pub(crate) fn provision(files: &SecureFiles, host: &str) -> Result<SecureNode, String> {
        let jmx_text = std::fs::read_to_string(&files.jmx_password_file)
            .map_err(|e| format!("cannot read {}: {e}", files.jmx_password_file.display()))?;
        let jmx_password = jmx_text
            .split_whitespace()
            .nth(1)
            .ok_or_else(|| format!("{} has no `USER PASSWORD` line", files.jmx_password_file.display()))?
            .to_string();
        let dir = files.ca.parent().unwrap_or(Path::new("."));
        let cql_password_file = dir.join("cql.password");
        let cql_password = read_or_make_password(&cql_password_file)?;
        let node = SecureNode {
            ca: files.ca.clone(),
            client_cert: files.client_cert.clone(),
            client_key: files.client_key.clone(),
            other_client_cert: files.other_client_cert.clone(),
            other_client_key: files.other_client_key.clone(),
            jmx_user: files.jmx_user.clone(),
            jmx_password,
            jmx_password_file: files.jmx_password_file.clone(),
            jmx_tls: files.jmx_tls,
            nodetool_ssl_properties: files.nodetool_ssl_properties.clone(),
            cql_user: CQL_ROLE.to_string(),
            cql_password,
            cql_password_file,
        };
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| format!("cannot start a tokio runtime: {e}"))?;
                    runtime.block_on(node.create_role(host))
                })
                .join()
                .map_err(|_| "the CQL role set-up panicked".to_string())?
        })?;
        Ok(node)
    }

    /// Makes sure role [`CQL_ROLE`] logs in with `cql_password`: creates it, or resets its
    /// password when it has another (Cassandra allows a role's password to change only every
    /// 5 s, so a role that already logs in is left alone).
    async fn create_role(&self, host: &str) -> Result<(), String> {
        let target = self.cql_target(host);
        if Cql::connect(&target).await.is_ok() {
            return Ok(());
        }
        let (user, password) = DEFAULT_SUPERUSER;
        let admin = CqlTarget {
            credentials: Some((user.into(), password.into())),
            tls: Some(self.cql_tls()),
            ..CqlTarget::new(host, 9042)
        };
        let admin = connect_with_retries(&admin, "the default superuser cassandra").await?;
        let exists = !admin
            .rows(&format!("SELECT role FROM system_auth.roles WHERE role = '{CQL_ROLE}'"))
            .await
            .map_err(|e| e.to_string())?
            .is_empty();
        // The password is hex: nothing to quote. The statement is not echoed (it holds it).
        let options = format!("PASSWORD = '{}' AND LOGIN = true AND SUPERUSER = true", self.cql_password);
        let statement = if exists {
            format!("ALTER ROLE {CQL_ROLE} WITH {options}")
        } else {
            format!("CREATE ROLE {CQL_ROLE} WITH {options}")
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match admin.session().query_unpaged(statement.as_str(), ()).await {
                Ok(_) => break,
                Err(e) if e.to_string().contains("can only be changed every") && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_secs(1)).await
                }
                Err(e) => {
                    let verb = if exists { "resetting the password of" } else { "creating" };
                    return Err(format!("{verb} role {CQL_ROLE} as cassandra failed: {e}"));
                }
            }
        }
        connect_with_retries(&target, &format!("the role {CQL_ROLE}")).await?;
        Ok(())
    }
}

/// Logs in, retrying for a minute: the default superuser is made shortly after the node opens
/// its CQL port, and a new role's login may lag its creation.
async fn connect_with_retries(target: &CqlTarget, who: &str) -> Result<Cql, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Cql::connect(target).await {
            Ok(cql) => return Ok(cql),
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_secs(1)).await,
            Err(e) => return Err(format!("cannot log in over TLS as {who} for a minute: {e}")),
        }
    }
}

/// The password in `path`, or a new random one written there (mode 0600).
fn read_or_make_password(path: &Path) -> Result<String, String> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    let password = random_hex(16)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    file.write_all(format!("{password}\n").as_bytes()).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(password)
}

/// `bytes` random bytes from the kernel, as hex.
fn random_hex(bytes: usize) -> Result<String, String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
