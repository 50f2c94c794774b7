//! A mock Tardis.dev on 127.0.0.1: the datasets API (gzip CSV files generated on demand from a seeded
//! [`fixtures::Generator`]) and the metadata API (exchanges, instruments), with Tardis' authentication
//! rules and error bodies.
//!
//! Built on wiremock: each route is a mock whose responder computes the answer from shared state, and
//! tests mount higher-priority mocks on the same server to inject faults (429s, 5xx, corrupt bodies).
//! It does not hold whole days in memory: a file is generated when it is requested.

mod responders;
mod server;
mod wire;

pub use server::{MockTardis, TardisOptions, TardisRequest};
