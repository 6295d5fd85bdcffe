//! The terminal, lent to the launched command while it runs, the way a shell lends it to a job.
//!
//! The command runs in a process group of its own, so that `cairn run` decides what reaches it.
//! A process group that is not the terminal's foreground is stopped (SIGTTIN) as soon as it reads
//! the terminal, so a command that asks for input would hang. When standard input is the
//! controlling terminal and `cairn run` is in its foreground, the command's group is made the
//! foreground instead: it reads the terminal, and Ctrl-C reaches the command alone (once), while
//! signals sent to `cairn run` itself are still forwarded. Ctrl-Z stops the command; `cairn run`
//! then takes the terminal back and stops itself too, so the shell regains control, and `fg`
//! resumes both.

use std::io::IsTerminal;

use nix::sys::signal::{SigSet, Signal, kill, killpg};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::{Pid, getpgrp, tcgetpgrp, tcsetpgrp};

/// The terminal's foreground, given to the command's group until dropped.
pub struct Lent {
    child: Pid,
    own_group: Pid,
}

impl Lent {
    /// Makes `child`'s process group (its pid: it leads its own group) the terminal's
    /// foreground, when standard input is a terminal whose foreground is this process's group.
    /// A `cairn run` in a background job or without a terminal lends nothing.
    pub fn to(child: Pid) -> Option<Lent> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return None;
        }
        let own_group = getpgrp();
        if tcgetpgrp(&stdin).ok()? != own_group {
            return None;
        }
        let lent = Lent { child, own_group };
        lent.give()?;
        Some(lent)
    }

    fn give(&self) -> Option<()> {
        tcsetpgrp(std::io::stdin(), self.child).ok()?;
        // The command may have read the terminal before it was its own and been stopped for it;
        // now it may go on.
        let _ = killpg(self.child, Signal::SIGCONT);
        Some(())
    }

    /// Takes the foreground back. This process is in the background at that moment, and a
    /// background process that sets the foreground gets SIGTTOU unless it blocks it.
    fn take_back(&self) {
        let mut ttou = SigSet::empty();
        ttou.add(Signal::SIGTTOU);
        let _ = ttou.thread_block();
        let _ = tcsetpgrp(std::io::stdin(), self.own_group);
        let _ = ttou.thread_unblock();
    }

    /// Called when a child changed state (SIGCHLD): if the command was stopped (Ctrl-Z), takes
    /// the terminal back and stops this process as well, so that the shell sees the job stop.
    /// When the shell resumes the job (`fg`), the terminal goes back to the command and it
    /// continues.
    pub fn follow_stop(&self) {
        let stopped = waitid(Id::Pid(self.child), WaitPidFlag::WSTOPPED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT);
        if !matches!(stopped, Ok(WaitStatus::Stopped(..))) {
            return;
        }
        self.take_back();
        // SIGSTOP cannot be caught: this process stops here until the shell sends SIGCONT.
        let _ = kill(Pid::this(), Signal::SIGSTOP);
        let _ = self.give();
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        self.take_back();
    }
}
