//! JMX authentication and JMX over TLS, for nodetool and for the long-lived JMX client.
//!
//! A node started with `com.sun.management.jmxremote.authenticate=true` wants a user and a
//! password; with `com.sun.management.jmxremote.ssl=true` it wants TLS. nodetool takes them as
//! `-u USER --password-file FILE` and `--ssl` (its trust store from the JVM's `javax.net.ssl.*`
//! properties, which the stock nodetool script reads from `~/.cassandra/nodetool-ssl.properties`).
//! The password never goes on a command line: nodetool gets a password file (the operator's own,
//! or one that lives only in this process's memory, see [`PasswordFile`]), and the JMX client
//! gets it in its environment.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::CassandraError;

/// How to log in to a node's JMX.
#[derive(Clone, Default)]
pub struct JmxSecurity {
    /// The JMX user (`-u`).
    pub user: Option<String>,
    /// Its password, read once.
    pub password: Option<String>,
    /// The operator's password file, in nodetool's `--password-file` format (`USER PASSWORD` lines).
    pub password_file: Option<PathBuf>,
    /// JMX over TLS (`--ssl`).
    pub tls: bool,
    /// `-Dname=value` lines of JVM properties for TLS (trust store, key store), in the format of
    /// `~/.cassandra/nodetool-ssl.properties`; read by the JMX client. Default: that file.
    pub ssl_properties: Option<PathBuf>,
}

/// Never prints the password.
impl std::fmt::Debug for JmxSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JmxSecurity")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "********"))
            .field("password_file", &self.password_file)
            .field("tls", &self.tls)
            .field("ssl_properties", &self.ssl_properties)
            .finish()
    }
}

impl JmxSecurity {
    /// Authentication with `user` whose password is in `file` (nodetool's format). With no user,
    /// the file's first user. The password is read now: a missing user or file is an error here.
    pub fn from_password_file(user: Option<String>, file: impl Into<PathBuf>) -> Result<Self, CassandraError> {
        let file = file.into();
        let text = std::fs::read_to_string(&file).map_err(|e| CassandraError::io(&file, e))?;
        let (user, password) = password_of(&text, user.as_deref()).ok_or_else(|| CassandraError::JmxCredentials {
            message: match &user {
                Some(u) => format!("{} has no line for the JMX user {u:?} (lines are `USER PASSWORD`)", file.display()),
                None => format!("{} has no `USER PASSWORD` line", file.display()),
            },
        })?;
        Ok(JmxSecurity { user: Some(user), password: Some(password), password_file: Some(file), ..Default::default() })
    }

    /// True when the node's JMX is reached with a login or TLS.
    pub fn is_secured(&self) -> bool {
        self.user.is_some() || self.tls
    }

    /// The nodetool arguments before the command (`-u USER -pwf FILE --ssl`), and the password
    /// file they name when this process had to write one (kept alive as long as they are used).
    pub(crate) fn nodetool_args(&self) -> Result<(Vec<String>, Option<Arc<PasswordFile>>), CassandraError> {
        let mut args = Vec::new();
        let mut held = None;
        if let Some(user) = &self.user {
            args.extend(["-u".to_string(), user.clone()]);
            let path = match (&self.password_file, &self.password) {
                (Some(file), _) => Some(file.display().to_string()),
                (None, Some(password)) => {
                    let file = Arc::new(PasswordFile::new(user, password)?);
                    let path = file.path();
                    held = Some(file);
                    Some(path)
                }
                (None, None) => None,
            };
            if let Some(path) = path {
                args.extend(["-pwf".to_string(), path]);
            }
        }
        if self.tls {
            args.push("--ssl".to_string());
        }
        Ok((args, held))
    }

    /// The environment the JMX client reads its login and TLS settings from.
    pub(crate) fn client_env(&self) -> Vec<(&'static str, String)> {
        let mut env = Vec::new();
        if let Some(user) = &self.user {
            env.push(("CASSETTE_JMX_USER", user.clone()));
            env.push(("CASSETTE_JMX_PASSWORD", self.password.clone().unwrap_or_default()));
        }
        if self.tls {
            env.push(("CASSETTE_JMX_TLS", "1".to_string()));
            let props = self.ssl_properties.clone().or_else(default_ssl_properties);
            if let Some(props) = props.filter(|p| p.is_file()) {
                env.push(("CASSETTE_JMX_SSL_PROPERTIES", props.display().to_string()));
            }
        }
        env
    }
}

/// `~/.cassandra/nodetool-ssl.properties`, where the stock nodetool script reads its TLS options.
fn default_ssl_properties() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| Path::new(&home).join(".cassandra/nodetool-ssl.properties"))
}

/// The (user, password) of `user`'s line, or of the first line, as nodetool reads the file:
/// blank and `#` lines skipped, fields split on whitespace.
fn password_of(text: &str, user: Option<&str>) -> Option<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut fields = l.split_whitespace();
            Some((fields.next()?.to_string(), fields.next()?.to_string()))
        })
        .find(|(u, _)| user.is_none_or(|want| want == u))
}

/// A nodetool password file that exists only in this process's memory (`memfd_create`), named
/// by its `/proc/<pid>/fd/<n>` path: nothing on disk, and gone when cassette exits, even killed.
#[derive(Debug)]
pub(crate) struct PasswordFile {
    fd: std::os::fd::OwnedFd,
}

impl PasswordFile {
    fn new(user: &str, password: &str) -> Result<Self, CassandraError> {
        use std::io::Write;
        let fd = nix::sys::memfd::memfd_create(c"cassette-jmx-password", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| CassandraError::JmxCredentials {
                message: format!("cannot hold the JMX password for nodetool: {e}"),
            })?;
        let mut file = std::fs::File::from(fd);
        file.write_all(format!("{user} {password}\n").as_bytes()).map_err(|e| CassandraError::JmxCredentials {
            message: format!("cannot hold the JMX password for nodetool: {e}"),
        })?;
        Ok(PasswordFile { fd: file.into() })
    }

    fn path(&self) -> String {
        use std::os::fd::AsRawFd;
        format!("/proc/{}/fd/{}", std::process::id(), self.fd.as_raw_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_password_file_as_nodetool_does() {
        let text = "# JMX users\n\nmonitor  m0n\ncassette s3cret extra\n";
        assert_eq!(password_of(text, Some("cassette")), Some(("cassette".into(), "s3cret".into())));
        assert_eq!(password_of(text, None), Some(("monitor".into(), "m0n".into())));
        assert_eq!(password_of(text, Some("nobody")), None);
    }

    #[test]
    fn an_in_memory_password_file_reads_back_and_is_not_on_disk() {
        let file = PasswordFile::new("cassette", "pa ss").unwrap();
        assert_eq!(std::fs::read_to_string(file.path()).unwrap(), "cassette pa ss\n");
        let link = std::fs::read_link(file.path()).unwrap();
        assert!(link.to_string_lossy().starts_with("/memfd:"), "{link:?}");
    }

    #[test]
    fn debug_output_masks_the_password() {
        let s = JmxSecurity { user: Some("u".into()), password: Some("hunter2".into()), ..Default::default() };
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
