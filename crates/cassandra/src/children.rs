//! Child processes that die with cassette: a `nodetool import` left running by a killed
//! restore would keep loading files that the next run removes and loads again.
//!
//! Each child gets `PR_SET_PDEATHSIG` = `SIGKILL` (the kernel kills it when cassette dies, even
//! by `kill -9`), and is killed when the future waiting for it is dropped (an aborted job).
//! Linux sends the signal when the *thread* that forked the child ends, not the process, and a
//! tokio worker thread can end; so children are forked from one thread that lives as long as
//! the process. A nodetool script that runs Java without `exec` leaves the JVM as a grandchild,
//! which the signal does not reach: [`running_with_arg_under`] finds such leftovers by their
//! command line.

use std::io;
use std::path::Path;
use std::process::Output;
use std::sync::OnceLock;

use tokio::process::Command;

/// Runs `cmd` to its end (as [`Command::output`]), as a child that dies with cassette.
pub(crate) async fn output(mut cmd: Command) -> io::Result<Output> {
    bind_to_this_process(&mut cmd);
    cmd.kill_on_drop(true);
    let task = AbortOnDrop(forker().spawn(async move { cmd.output().await }));
    let mut task = task;
    (&mut task.0).await.map_err(io::Error::other)?
}

/// Makes `cmd`'s process receive `SIGKILL` when cassette ends (Linux; elsewhere nothing).
pub(crate) fn bind_to_this_process(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        let parent = nix::unistd::getpid();
        // SAFETY: between fork and exec the closure calls only prctl and getppid, which are
        // async-signal-safe system calls, and allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(io::Error::from)?;
                // cassette died between fork and prctl: do not run orphaned.
                if nix::unistd::getppid() != parent {
                    return Err(io::Error::other("cassette exited before its child started"));
                }
                Ok(())
            });
        }
    }
}

/// The runtime of the thread children are forked from: it runs until the process ends.
fn forker() -> &'static tokio::runtime::Handle {
    static HANDLE: OnceLock<tokio::runtime::Handle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
        let handle = rt.handle().clone();
        std::thread::Builder::new()
            .name("cassette-children".into())
            .spawn(move || rt.block_on(std::future::pending::<()>()))
            .expect("a thread for child processes");
        handle
    })
}

/// Aborts the task when dropped: its child is then killed (`kill_on_drop`).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The processes (pid, command line) of this machine with an argument that is a path under
/// `dir`: the `nodetool import` of an interrupted restore, still reading its staging directory.
pub fn running_with_arg_under(dir: &Path) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else { return out };
    let me = std::process::id();
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let Ok(raw) = std::fs::read(p.path().join("cmdline")) else { continue };
        let args: Vec<String> =
            raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if args.iter().skip(1).any(|a| Path::new(a).starts_with(dir) && Path::new(a) != dir) && !is_zombie(&p.path()) {
            out.push((pid, args.join(" ")));
        }
    }
    out
}

/// The processes (pid, command line) that have a file under `dir` open. Cassandra itself is one
/// while it imports from a staging directory: an import runs inside the node, so it goes on
/// after the nodetool (or JMX client) that asked for it is gone. Processes of other users are
/// not readable and not seen.
pub fn with_open_file_under(dir: &Path) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else { return out };
    let me = std::process::id();
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else { continue };
        let open_under = fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t.starts_with(dir)));
        if open_under {
            let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            let cmd: Vec<String> = cmdline
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            out.push((pid, cmd.join(" ")));
        }
    }
    out
}

fn is_zombie(proc_dir: &Path) -> bool {
    std::fs::read_to_string(proc_dir.join("stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn finds_a_process_by_a_path_argument() {
        let d = tempfile::tempdir().unwrap();
        let arg = d.path().join("1234/ks/t");
        // The path is sh's $0: in its command line while it waits for sleep.
        let mut child = std::process::Command::new("sh").arg("-c").arg("sleep 30; :").arg(&arg).spawn().unwrap();
        // Until sh has exec'd, its /proc cmdline is still the test binary's: wait for it.
        let mut found = Vec::new();
        for _ in 0..100 {
            found = running_with_arg_under(d.path());
            if found.iter().any(|(pid, _)| *pid == child.id()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(found.iter().any(|(pid, _)| *pid == child.id()), "{found:?}");
        assert!(running_with_arg_under(&d.path().join("other")).is_empty());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(running_with_arg_under(d.path()).is_empty());
    }

    #[test]
    fn finds_a_process_by_a_file_it_holds_open() {
        let d = tempfile::tempdir().unwrap();
        let held = d.path().join("nb-1-big-Data.db");
        std::fs::write(&held, b"x").unwrap();
        let mut child =
            std::process::Command::new("sleep").arg("30").stdin(std::fs::File::open(&held).unwrap()).spawn().unwrap();
        let found = with_open_file_under(d.path());
        assert!(found.iter().any(|(pid, _)| *pid == child.id()), "{found:?}");
        assert!(with_open_file_under(&d.path().join("other")).is_empty());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(with_open_file_under(d.path()).is_empty());
    }

    #[tokio::test]
    async fn output_runs_and_is_killed_when_dropped() {
        let mut echo = Command::new("echo");
        echo.arg("hi");
        let out = output(echo).await.unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
        let d = tempfile::tempdir().unwrap();
        let marker = d.path().join("m");
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg("sleep 30; :").arg(&marker);
        let fut = output(cmd);
        let _ = tokio::time::timeout(std::time::Duration::from_millis(300), fut).await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(running_with_arg_under(d.path()).is_empty(), "the child is killed with its job");
    }
}
