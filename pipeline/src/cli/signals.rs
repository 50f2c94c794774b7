//! Stopping long commands (`backfill`, `worker`, `schedule`, and `run`, which abandons its date at the first
//! one): the first SIGINT or SIGTERM flips the
//! library's stop switch, so workers finish their current date and claim no more; a second one exits at once
//! with [`Exit::Interrupted`], like a kill: the current date's queue lease then expires and the date runs
//! again elsewhere. (Once tokio handles a signal, its default action no longer ends the process, so the
//! second signal must be handled too.)

use tokio::sync::watch;

use super::Exit;
use crate::worker;

/// A stop switch flipped by the first SIGINT or SIGTERM; the handler lives as long as the returned task.
pub fn stop_on_signals() -> std::io::Result<(watch::Receiver<bool>, tokio::task::JoinHandle<()>)> {
    let (stop, stopped) = worker::stop_switch();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let task = tokio::spawn(async move {
        for nth in 0.. {
            let signal = tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            };
            if nth == 0 {
                tracing::info!(
                    signal,
                    "Stop requested: the dates in progress finish, no new date starts (signal again to abort)."
                );
                stop.send_replace(true);
            } else {
                tracing::warn!(
                    signal,
                    "Second stop request: exiting now; the dates in progress run again once their leases expire."
                );
                std::process::exit(Exit::Interrupted.code().into());
            }
        }
    });
    Ok((stopped, task))
}
