//! A child process that is killed when the test drops it, so no stand-in outlives its test.

use std::process::{Child, Command, Stdio};

pub struct ChildGuard {
    name: String,
    child: Option<Child>,
}

impl ChildGuard {
    /// Spawns `command` with stdout/stderr sent to a log file next to the test's temp data, so a
    /// failing test can show what the server said.
    pub fn spawn(name: &str, command: &mut Command, log: &std::path::Path) -> Self {
        let out = std::fs::File::create(log).expect("create log file");
        let err = out.try_clone().expect("clone log file handle");
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {name} ({command:?}): {e}; is it installed? run scripts/test")
            });
        Self {
            name: name.to_string(),
            child: Some(child),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends a signal (e.g. `libc::SIGTERM`, `SIGKILL`, `SIGSTOP`, `SIGCONT`).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on a pid we spawned and have not reaped.
        unsafe {
            libc::kill(self.pid() as i32, signal);
        }
    }

    /// Waits for the process to exit and returns its exit code (None when killed by a signal).
    pub fn wait(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        child.wait().ok().and_then(|s| s.code())
    }

    /// Non-blocking: Some(exit code or None for a signal) once the process has exited.
    pub fn try_wait(&mut self) -> Option<Option<i32>> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(status.code()),
            _ => None,
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGCONT first: a stopped process cannot act on SIGKILL's cleanup otherwise.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGCONT);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}
