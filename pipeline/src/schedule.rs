//! `pipeline schedule`: the daily service. At each fire of a cron expression (09:00 UTC by default) it
//! catches up every date from the day after the latest completed one through the day before the fire
//! (yesterday), at most `catch_up_days` of them, oldest first; on start it does the same at once for
//! the dates already due (started at 08:59, it leaves yesterday to the 09:00 fire). Each date is preflighted,
//! then enqueued and run through the shared date queue (so the scheduler, backfills and workers never
//! process a date twice). One scheduler is active per database, by a Postgres advisory lock; the others
//! stay passive, retrying the lock, and take over when the active one goes.
//!
//! Time comes from the injected [`Clock`], and every wait is a `Clock::sleep_until`, so a test moves a
//! manual clock instead of sleeping. A date whose preflight fails (typically: Tardis has not exported it
//! yet) is recorded as not run with the cause and never touches the queue, so it spends no queue retry;
//! the scheduler checks it again after `preflight_retry`, up to `preflight_retries` times per fire, and
//! at the next fire anyway. Stopping (SIGTERM, SIGINT) claims nothing more, lets the current date
//! finish, releases the lock and returns.
//!
//! This module does not decide how a date is processed (`run`, `worker`), and never retries a date the
//! queue gave up on (`pipeline backfill --force` does).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use market::checks::Status;
use market::{DateRange, TradingDay};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::preflight::preflight;
use crate::run::Pipeline;
use crate::store::{ClaimOptions, JobStatus, Lanes, Order, SchedulerLock, StoreError};
use crate::worker::{self, WorkerOptions};

/// Every day at 09:00 UTC: Tardis has exported yesterday by then.
pub const DEFAULT_CRON: &str = "0 9 * * *";

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("invalid cron expression {expression:?}: {reason}")]
    Cron { expression: String, reason: String },
    #[error("cron expression {expression:?} has no fire time after {after}")]
    NoNextFire { expression: String, after: DateTime<Utc> },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A parsed cron expression, evaluated in UTC: 5 fields (minute hour day-of-month month day-of-week),
/// or 6 with leading seconds; `@daily` and the like work too.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    cron: croner::Cron,
    expression: String,
}

impl CronSchedule {
    /// Parses `expression` and checks that it fires at all (`0 9 30 2 *` never does).
    pub fn parse(expression: &str) -> Result<CronSchedule, ScheduleError> {
        let invalid = |reason: String| ScheduleError::Cron { expression: expression.to_owned(), reason };
        let cron = croner::Cron::from_str(expression).map_err(|e| invalid(e.to_string()))?;
        let schedule = CronSchedule { cron, expression: expression.trim().to_owned() };
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        if schedule.next_fire(epoch).is_none() {
            return Err(invalid("it never fires".to_owned()));
        }
        Ok(schedule)
    }

    /// The first fire strictly after `after`; `None` when there is none.
    pub fn next_fire(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&after, false).ok()
    }

    /// The latest date due at `now`: the day before the latest fire at or before `now` (at 08:59 on
    /// June 4 with the default cron, June 2; from 09:00, June 3). `None` when it never fired before.
    pub fn due_through(&self, now: DateTime<Utc>) -> Option<TradingDay> {
        let fire = self.cron.find_previous_occurrence(&now, true).ok()?;
        Some(TradingDay::from_date(fire.date_naive()).pred())
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }
}

/// The dates one pass runs: from the day after `latest_completed` (`through` alone without history)
/// through `through` (the latest due date, normally yesterday), and at most `window` dates (`through`
/// included). `None` when all are done.
pub fn catch_up_range(latest_completed: Option<TradingDay>, through: TradingDay, window: u32) -> Option<DateRange> {
    let window = window.max(1);
    let oldest_allowed = (1..window).fold(through, |day, _| day.pred());
    let start = match latest_completed {
        Some(done) if done >= through => return None,
        Some(done) => done.succ().max(oldest_allowed),
        None => through,
    };
    DateRange::new(start, through).ok()
}

/// How a scheduler behaves.
#[derive(Debug, Clone)]
pub struct ScheduleOptions {
    pub cron: CronSchedule,
    /// At most this many dates per pass, yesterday included (`--catch-up-days`).
    pub catch_up_days: u32,
    /// The scheduler's name: its worker id in the queue and its name in `schedule_dates`.
    pub scheduler_id: String,
    /// Interval between attempts to take the lock while passive.
    pub lock_retry: Duration,
    /// Interval before checking a date held back by a failed preflight again...
    pub preflight_retry: Duration,
    /// ...and how many times per fire.
    pub preflight_retries: u32,
    /// Enqueue dates and leave running them to `pipeline worker` processes.
    pub enqueue_only: bool,
    /// The queue lease of a running date (renewed by heartbeats).
    pub lease: Duration,
    /// Delay before a failed run of a date is tried again by the queue: doubled per retry.
    pub retry_backoff: Duration,
    /// Interval between polls while another worker holds a date this scheduler waits for.
    pub idle_poll: Duration,
}

impl ScheduleOptions {
    pub fn new(cron: CronSchedule, scheduler_id: &str) -> ScheduleOptions {
        ScheduleOptions {
            cron,
            catch_up_days: 7,
            scheduler_id: scheduler_id.to_owned(),
            lock_retry: Duration::from_secs(60),
            preflight_retry: Duration::from_secs(15 * 60),
            preflight_retries: 8,
            enqueue_only: false,
            lease: Duration::from_secs(300),
            retry_backoff: Duration::from_secs(60),
            idle_poll: Duration::from_secs(5),
        }
    }
}

/// What a scheduler is doing, for logs and for tests to wait on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SchedulerStatus {
    Starting,
    /// Another scheduler holds the lock; the next attempt at `retry_at`.
    Passive {
        retry_at: DateTime<Utc>,
    },
    /// Active, preflighting or running `day`.
    Working {
        day: TradingDay,
    },
    /// Active and idle until `wake_at` (the next fire, or a preflight retry). `passes` counts the
    /// passes made since this scheduler became active.
    Waiting {
        wake_at: DateTime<Utc>,
        passes: u64,
    },
    Stopped,
}

/// What became of one date in a pass.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DateOutcome {
    /// Run and completed (its run succeeded and validation did not fail).
    Completed { run_id: Option<i64>, validation: Option<Status> },
    /// Run and failed; the queue retries it (`retry`) or gave up on it (`failed`).
    Failed { error: String, queue: JobStatus },
    /// Its preflight failed: not enqueued, checked again later.
    NotRun { cause: String },
    /// Enqueued for workers (`--enqueue-only`).
    Enqueued,
    /// The queue gave up on it earlier: left alone until a backfill forces it.
    GaveUp { error: String },
    /// Left unfinished because a stop was requested (it stays in the queue).
    Interrupted { queue: JobStatus },
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DateReport {
    pub day: TradingDay,
    #[serde(flatten)]
    pub outcome: DateOutcome,
}

/// One pass over the catch-up range.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Pass {
    pub dates: Vec<DateReport>,
    /// The lock was found lost during the pass, which then stopped.
    pub lock_lost: bool,
}

impl Pass {
    fn held_back(&self) -> bool {
        self.dates.iter().any(|d| matches!(d.outcome, DateOutcome::NotRun { .. }))
    }
}

/// How an active period ended.
enum Active {
    Stopped,
    LockLost,
}

/// The scheduler: one pipeline, its options, a clock.
#[derive(Debug)]
pub struct Scheduler {
    pipeline: Pipeline,
    options: ScheduleOptions,
    clock: Arc<dyn Clock>,
    status: watch::Sender<SchedulerStatus>,
}

/// Waits for a stop request; never returns when nobody can request one any more.
async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|stopped| *stopped).await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn to_delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

impl Scheduler {
    pub fn new(pipeline: Pipeline, options: ScheduleOptions, clock: Arc<dyn Clock>) -> Scheduler {
        Scheduler { pipeline, options, clock, status: watch::Sender::new(SchedulerStatus::Starting) }
    }

    /// Follows what the scheduler is doing.
    pub fn status(&self) -> watch::Receiver<SchedulerStatus> {
        self.status.subscribe()
    }

    fn set_status(&self, status: SchedulerStatus) {
        self.status.send_replace(status);
    }

    /// Waits until `t` by the clock. `true` when a stop was requested instead.
    async fn wait_until(&self, t: DateTime<Utc>, stop: &mut watch::Receiver<bool>) -> bool {
        if *stop.borrow() {
            return true;
        }
        tokio::select! {
            () = self.clock.sleep_until(t) => *stop.borrow(),
            () = stop_requested(stop) => true,
        }
    }

    /// Runs as a service until a stop is requested: passive while another scheduler holds the lock,
    /// active (a pass at once, then one per fire) while this one does.
    pub async fn run(&self, mut stop: watch::Receiver<bool>) -> Result<(), ScheduleError> {
        let result = self.serve(&mut stop).await;
        self.set_status(SchedulerStatus::Stopped);
        tracing::info!(scheduler = %self.options.scheduler_id, "Scheduler stopped.");
        result
    }

    async fn serve(&self, stop: &mut watch::Receiver<bool>) -> Result<(), ScheduleError> {
        loop {
            let Some(mut lock) = self.acquire(stop).await? else {
                return Ok(());
            };
            let ended = self.lead(&mut lock, stop).await;
            lock.release().await;
            match ended? {
                Active::Stopped => return Ok(()),
                Active::LockLost => {
                    tracing::warn!(scheduler = %self.options.scheduler_id, "Scheduler lock lost; passive until it is taken again.");
                }
            }
        }
    }

    /// Takes the lock, retrying every `lock_retry` while another scheduler holds it (or the database
    /// cannot be reached). `None` when a stop was requested first.
    async fn acquire(&self, stop: &mut watch::Receiver<bool>) -> Result<Option<SchedulerLock>, ScheduleError> {
        let id = &self.options.scheduler_id;
        let mut announced = false;
        loop {
            if *stop.borrow() {
                return Ok(None);
            }
            match self.pipeline.store().try_scheduler_lock().await {
                Ok(Some(lock)) => {
                    tracing::info!(scheduler = %id, cron = %self.options.cron.expression(), "Scheduler active: this one holds the lock.");
                    return Ok(Some(lock));
                }
                Ok(None) if !announced => {
                    tracing::info!(scheduler = %id, retry_s = self.options.lock_retry.as_secs(), "Another scheduler is active on this database; passive, retrying the lock.");
                    announced = true;
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::error!(scheduler = %id, error = %err, "Could not try the scheduler lock; retrying.")
                }
            }
            let retry_at = self.clock.now() + to_delta(self.options.lock_retry);
            self.set_status(SchedulerStatus::Passive { retry_at });
            if self.wait_until(retry_at, stop).await {
                return Ok(None);
            }
        }
    }

    /// Active: a pass now, then a pass per fire, with bounded preflight retries in between.
    async fn lead(&self, lock: &mut SchedulerLock, stop: &mut watch::Receiver<bool>) -> Result<Active, ScheduleError> {
        let mut passes = 0u64;
        let mut retries_left = self.options.preflight_retries;
        let mut pass = self.pass(lock, stop, self.options.cron.due_through(self.clock.now())).await?;
        loop {
            passes += 1;
            if pass.lock_lost {
                return Ok(Active::LockLost);
            }
            if *stop.borrow() {
                return Ok(Active::Stopped);
            }
            let now = self.clock.now();
            let fire = self.options.cron.next_fire(now).ok_or_else(|| ScheduleError::NoNextFire {
                expression: self.options.cron.expression().to_owned(),
                after: now,
            })?;
            let retry = (pass.held_back() && retries_left > 0).then(|| now + to_delta(self.options.preflight_retry));
            let wake_at = retry.map_or(fire, |r| r.min(fire));
            tracing::info!(wake_at = %wake_at.to_rfc3339(), next_fire = %fire.to_rfc3339(), "Scheduler waiting.");
            self.set_status(SchedulerStatus::Waiting { wake_at, passes });
            if self.wait_until(wake_at, stop).await {
                return Ok(Active::Stopped);
            }
            if !lock.is_held().await {
                return Ok(Active::LockLost);
            }
            if self.clock.now() >= fire {
                retries_left = self.options.preflight_retries;
            } else {
                retries_left = retries_left.saturating_sub(1);
            }
            pass = self.pass(lock, stop, self.options.cron.due_through(self.clock.now())).await?;
        }
    }

    /// Runs one pass when this scheduler can take the lock; `None` (nothing done) when another
    /// scheduler is active. Dates held back by preflight are checked again, as in the service, before
    /// returning (`--once`).
    pub async fn once(&self, mut stop: watch::Receiver<bool>) -> Result<Option<Pass>, ScheduleError> {
        let Some(mut lock) = self.pipeline.store().try_scheduler_lock().await? else {
            tracing::info!(scheduler = %self.options.scheduler_id, "Another scheduler is active on this database; nothing to do.");
            self.set_status(SchedulerStatus::Stopped);
            return Ok(None);
        };
        let result = self.once_locked(&mut lock, &mut stop).await;
        lock.release().await;
        self.set_status(SchedulerStatus::Stopped);
        result.map(Some)
    }

    async fn once_locked(
        &self,
        lock: &mut SchedulerLock,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Pass, ScheduleError> {
        let through = Some(self.clock.yesterday());
        let mut pass = self.pass(lock, stop, through).await?;
        let mut passes = 1;
        let mut retries_left = self.options.preflight_retries;
        while pass.held_back() && retries_left > 0 && !pass.lock_lost {
            let wake_at = self.clock.now() + to_delta(self.options.preflight_retry);
            self.set_status(SchedulerStatus::Waiting { wake_at, passes });
            if self.wait_until(wake_at, stop).await {
                break;
            }
            retries_left -= 1;
            let next = self.pass(lock, stop, through).await?;
            // Keep the latest word on every date of either pass.
            for report in next.dates {
                match pass.dates.iter_mut().find(|d| d.day == report.day) {
                    Some(slot) => *slot = report,
                    None => pass.dates.push(report),
                }
            }
            pass.lock_lost = next.lock_lost;
            passes += 1;
        }
        pass.dates.sort_by_key(|d| d.day);
        Ok(pass)
    }

    /// One pass: every date of the catch-up range through `through`, oldest first (so each date's
    /// anomaly checks see the dates before it), while the lock is held and no stop is requested.
    async fn pass(
        &self,
        lock: &mut SchedulerLock,
        stop: &watch::Receiver<bool>,
        through: Option<TradingDay>,
    ) -> Result<Pass, ScheduleError> {
        let store = self.pipeline.store();
        let mut pass = Pass::default();
        let Some(through) = through else {
            return Ok(pass);
        };
        let latest = store.latest_completed_day().await?;
        let Some(range) = catch_up_range(latest, through, self.options.catch_up_days) else {
            tracing::info!(%through, "Nothing to catch up: every due date is completed.");
            return Ok(pass);
        };
        tracing::info!(from = %range.start(), to = %range.end(), latest_completed = ?latest.map(|d| d.to_string()), "Scheduler pass.");
        for day in range.days() {
            if *stop.borrow() {
                break;
            }
            if !lock.is_held().await {
                pass.lock_lost = true;
                break;
            }
            self.set_status(SchedulerStatus::Working { day });
            let outcome = self.date(day, stop).await?;
            match &outcome {
                DateOutcome::Completed { run_id, validation } => {
                    tracing::info!(%day, run_id, validation = ?validation, "Scheduled date completed.");
                }
                DateOutcome::Enqueued => tracing::info!(%day, "Scheduled date enqueued for workers."),
                DateOutcome::Interrupted { queue } => {
                    tracing::info!(%day, queue = queue.as_str(), "Stopped before the date finished; it stays queued.");
                }
                DateOutcome::NotRun { cause } => tracing::warn!(%day, %cause, "Preflight failed; date not run."),
                DateOutcome::Failed { error, queue } => {
                    tracing::error!(%day, queue = queue.as_str(), %error, "Scheduled date failed.");
                }
                DateOutcome::GaveUp { error } => {
                    tracing::error!(%day, %error, "The queue gave up on this date; `pipeline backfill --force` runs it again.");
                }
            }
            pass.dates.push(DateReport { day, outcome });
        }
        Ok(pass)
    }

    /// One date: preflight, enqueue, run through the queue (unless enqueue-only).
    async fn date(&self, day: TradingDay, stop: &watch::Receiver<bool>) -> Result<DateOutcome, ScheduleError> {
        let store = self.pipeline.store();
        let id = &self.options.scheduler_id;
        if let Some(job) = store.job(day).await?
            && job.status == JobStatus::Failed
        {
            return Ok(DateOutcome::GaveUp { error: job.error_message.unwrap_or_default() });
        }
        let report = preflight(&self.pipeline, DateRange::single(day)).await;
        if !report.passed {
            let cause = report.cause();
            let checks = serde_json::to_value(&report).unwrap_or_default();
            store.record_not_run(day, id, &cause, &checks).await?;
            return Ok(DateOutcome::NotRun { cause });
        }
        let single = DateRange::single(day);
        store.record_enqueued(day, id).await?;
        // The daily lane: claimed before any backfill date, by any worker or a slot kept for it.
        store.seed_daily(day).await?;
        if self.options.enqueue_only {
            return Ok(DateOutcome::Enqueued);
        }
        let options = WorkerOptions {
            worker_id: id.clone(),
            claim: ClaimOptions {
                order: Order::OldestFirst,
                range: Some(single),
                lease: self.options.lease,
                retry_backoff: self.options.retry_backoff,
                lanes: Lanes::All,
            },
            follow: false,
            idle_poll: self.options.idle_poll,
            trigger: "schedule".to_owned(),
        };
        let results = worker::work(&self.pipeline, &options, stop.clone(), |_| {}).await?;
        let validation =
            results.iter().rev().find_map(|r| r.outcome.as_ref().and_then(|o| o.validation.as_ref()).map(|v| v.status));
        let job = store.job(day).await?;
        Ok(match job {
            Some(job) => match job.status {
                JobStatus::Completed => DateOutcome::Completed { run_id: job.run_id, validation },
                JobStatus::Failed => {
                    DateOutcome::Failed { error: job.error_message.unwrap_or_default(), queue: JobStatus::Failed }
                }
                JobStatus::Retry if !*stop.borrow() => {
                    DateOutcome::Failed { error: job.error_message.unwrap_or_default(), queue: JobStatus::Retry }
                }
                queue => DateOutcome::Interrupted { queue },
            },
            None => DateOutcome::Interrupted { queue: JobStatus::Pending },
        })
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn day(text: &str) -> TradingDay {
        TradingDay::parse(text).expect("valid day")
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("valid instant").with_timezone(&Utc)
    }

    #[rstest]
    #[case::no_history_is_yesterday_alone(None, 7, Some(("2024-06-03", "2024-06-03")))]
    #[case::yesterday_done(Some("2024-06-03"), 7, None)]
    #[case::one_missed(Some("2024-06-02"), 7, Some(("2024-06-03", "2024-06-03")))]
    #[case::three_missed(Some("2024-05-31"), 7, Some(("2024-06-01", "2024-06-03")))]
    #[case::bounded(Some("2024-05-01"), 7, Some(("2024-05-28", "2024-06-03")))]
    #[case::window_of_one(Some("2024-05-01"), 1, Some(("2024-06-03", "2024-06-03")))]
    #[case::history_after_yesterday(Some("2024-06-05"), 7, None)]
    fn catch_up_runs_the_dates_after_the_latest_completed_one_within_the_window(
        #[case] latest: Option<&str>,
        #[case] window: u32,
        #[case] expected: Option<(&str, &str)>,
    ) {
        let range = catch_up_range(latest.map(day), day("2024-06-03"), window);
        assert_eq!(
            range.map(|r| (r.start().to_string(), r.end().to_string())),
            expected.map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
    }

    #[rstest]
    #[case::just_before("0 9 * * *", "2024-06-04T08:59:59Z", "2024-06-04T09:00:00Z")]
    #[case::exactly_at_is_the_next_day("0 9 * * *", "2024-06-04T09:00:00Z", "2024-06-05T09:00:00Z")]
    #[case::after("0 9 * * *", "2024-06-04T09:00:01Z", "2024-06-05T09:00:00Z")]
    #[case::month_end("30 7 * * *", "2024-06-30T23:00:00Z", "2024-07-01T07:30:00Z")]
    #[case::seconds("15 0 9 * * *", "2024-06-04T08:00:00Z", "2024-06-04T09:00:15Z")]
    #[case::nickname("@daily", "2024-06-04T08:00:00Z", "2024-06-05T00:00:00Z")]
    fn next_fire_is_the_first_instant_strictly_after(#[case] cron: &str, #[case] after: &str, #[case] next: &str) {
        let schedule = CronSchedule::parse(cron).expect("valid cron");
        assert_eq!(schedule.next_fire(at(after)), Some(at(next)));
    }

    #[rstest]
    #[case::before_the_fire("0 9 * * *", "2024-06-04T08:59:59Z", "2024-06-02")]
    #[case::at_the_fire("0 9 * * *", "2024-06-04T09:00:00Z", "2024-06-03")]
    #[case::after_the_fire("0 9 * * *", "2024-06-04T23:59:59Z", "2024-06-03")]
    #[case::weekly_on_mondays("0 9 * * 1", "2024-06-05T12:00:00Z", "2024-06-02")]
    fn the_due_dates_end_the_day_before_the_latest_fire(#[case] cron: &str, #[case] now: &str, #[case] due: &str) {
        let schedule = CronSchedule::parse(cron).expect("valid cron");
        assert_eq!(schedule.due_through(at(now)), Some(day(due)));
    }

    #[rstest]
    #[case::garbage("every morning")]
    #[case::out_of_range("0 25 * * *")]
    #[case::never("0 9 30 2 *")]
    #[case::empty("")]
    fn bad_cron_expressions_are_rejected_with_the_expression(#[case] cron: &str) {
        let err = CronSchedule::parse(cron).expect_err("invalid");
        assert!(err.to_string().contains("invalid cron expression"), "{err}");
    }
}
