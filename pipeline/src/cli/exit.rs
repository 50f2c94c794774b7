//! The exit-code contract of every command of the workspace's binaries (`pipeline`, `harness`), documented
//! once in the README ("Exit codes"), and the one place that maps an outcome to a code.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | pass: everything asked for was done and judged good (or there was nothing to judge) |
//! | 1 | warn: the data landed, some checks warn |
//! | 2 | fail: a check failed, or a run (a date) failed |
//! | 3 | error: bad input or configuration, or the tool itself could not work; nothing was judged |
//! | 130 | interrupted: stopped by SIGINT or SIGTERM before finishing (a rerun completes the work) |
//!
//! `harness exec` passes its command's own status through instead.

use std::process::ExitCode;

use market::checks::Status;

use crate::backfill::Summary;
use crate::preflight::PreflightReport;
use crate::run::RunOutcome;
use crate::schedule::DateOutcome;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    Pass,
    Warn,
    Fail,
    Error,
    Interrupted,
    /// A child command's own status, passed through (`harness exec`).
    Child(u8),
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Pass => 0,
            Exit::Warn => 1,
            Exit::Fail => 2,
            Exit::Error => 3,
            Exit::Interrupted => 130,
            Exit::Child(code) => code,
        }
    }

    /// The exit of a validation status.
    pub fn of_status(status: Status) -> Exit {
        match status {
            Status::Pass => Exit::Pass,
            Status::Warn => Exit::Warn,
            Status::Fail => Exit::Fail,
            Status::Error => Exit::Error,
        }
    }

    /// A run fails unless it succeeded and validated; then its validation decides.
    pub fn of_run(outcome: &RunOutcome) -> Exit {
        match (&outcome.error, &outcome.validation) {
            (None, Some(validation)) => Exit::of_status(validation.status),
            _ => Exit::Fail,
        }
    }

    /// A scheduled date: completed (as its validation says), enqueued or left queued by a stop pass; failed,
    /// held back by preflight or given up on fail.
    pub fn of_date(outcome: &DateOutcome) -> Exit {
        match outcome {
            DateOutcome::Completed { validation: Some(Status::Warn), .. } => Exit::Warn,
            DateOutcome::Completed { .. } | DateOutcome::Enqueued | DateOutcome::Interrupted { .. } => Exit::Pass,
            DateOutcome::Failed { .. } | DateOutcome::NotRun { .. } | DateOutcome::GaveUp { .. } => Exit::Fail,
        }
    }

    /// A backfill: interrupted (by a signal, or cancelled by an operator), failed when a date failed or is
    /// unfinished, else passed.
    pub fn of_backfill(summary: &Summary) -> Exit {
        if summary.interrupted || summary.cancelled_by.is_some() {
            Exit::Interrupted
        } else if summary.totals.failed > 0 || summary.unfinished > 0 {
            Exit::Fail
        } else {
            Exit::Pass
        }
    }

    pub fn of_preflight(report: &PreflightReport) -> Exit {
        if report.passed { Exit::Pass } else { Exit::Fail }
    }

    /// The worst of several exits (pass < warn < fail < error < interrupted); pass when there are none.
    pub fn worst(exits: impl IntoIterator<Item = Exit>) -> Exit {
        exits.into_iter().max().unwrap_or(Exit::Pass)
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

/// Parses the command line of `C`. Bad arguments are bad input: the message is printed and the exit is
/// [`Exit::Error`] (clap's own code would be 2, which here means "a check failed"); `--help` and
/// `--version` print and exit 0.
pub fn parse<C: clap::Parser>() -> Result<C, Exit> {
    C::try_parse().map_err(|err| {
        let _ = err.print();
        if err.use_stderr() { Exit::Error } else { Exit::Pass }
    })
}

/// Ends a command: an error is printed once, with its causes, as `error: ...` and exits 3.
pub fn finish(result: anyhow::Result<Exit>) -> ExitCode {
    match result {
        Ok(exit) => exit.into(),
        Err(error) => {
            eprintln!("error: {error:#}");
            Exit::Error.into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_documented_contract() {
        let codes: Vec<u8> =
            [Exit::Pass, Exit::Warn, Exit::Fail, Exit::Error, Exit::Interrupted, Exit::Child(7)].map(Exit::code).into();
        assert_eq!(codes, [0, 1, 2, 3, 130, 7]);
        let statuses = [Status::Pass, Status::Warn, Status::Fail, Status::Error].map(Exit::of_status);
        assert_eq!(statuses, [Exit::Pass, Exit::Warn, Exit::Fail, Exit::Error]);
        assert_eq!(Exit::worst([Exit::Warn, Exit::Pass, Exit::Fail]), Exit::Fail);
        assert_eq!(Exit::worst([]), Exit::Pass);
    }
}
