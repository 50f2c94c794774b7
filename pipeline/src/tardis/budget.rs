//! The request budget a Tardis client draws on: one token before every HTTP request, and a pause for every
//! client sharing the budget when Tardis answers 429.
//!
//! The client only knows this trait. The pipeline's implementation is a token bucket in Postgres
//! (`store::SharedBudget`), shared by every process on the database, so a 429 seen by one worker slows all of
//! them and `TARDIS_RATE_LIMIT` bounds their sum. A client without a budget (`pipeline candles`, tests without
//! a database) sends at will and only its own retries wait.
//!
//! A budget never fails a request: if it cannot do its job (its database is unreachable), it says so in the
//! logs and lets the request go.

use std::fmt;
use std::time::Duration;

#[async_trait::async_trait]
pub trait RequestBudget: Send + Sync + fmt::Debug {
    /// Waits until one more request may be sent: no pause in force and, with a rate limit, a token taken.
    async fn acquire(&self);

    /// Tells every client sharing the budget to send nothing for `wait` from now (a pause in force for longer
    /// is kept).
    async fn pause(&self, wait: Duration);
}
