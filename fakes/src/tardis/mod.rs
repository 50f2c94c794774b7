//! A mock Tardis.dev on 127.0.0.1: the datasets API (`trades`, `quotes`, `derivative_ticker` and
//! `book_snapshot_5` gzip CSV files, grouped `PERPETUALS`-style files, quiet days as empty gzips) and the
//! metadata API (exchanges, instruments with `?filter=`), with Tardis' authentication rules and error
//! bodies. Files come from a seeded [`fixtures::Generator`], generated on request, or from a directory of
//! real files (replay mode).
//!
//! Built on wiremock: each route is a mock whose responder computes the answer from shared state. Faults
//! come from `MockTardis::fail_next` and `fail_every` plans (logged with the other requests, each with its
//! arrival time) or from higher-priority mocks tests mount on the same server. It does not hold whole days in memory beyond a bounded cache of
//! generated files, and it cannot break a connection mid-body.

mod faults;
mod filter;
mod options;
mod paths;
mod replay;
mod responders;
mod server;
mod source;
mod wire;

pub use faults::{DatasetMatch, Fault, FaultTarget};
pub use options::{IncidentReport, IncidentStatus, QuietFile, TardisOptions};
pub use replay::ReplayError;
pub use server::{MockTardis, TardisRequest};
