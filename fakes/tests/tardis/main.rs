//! The mock Tardis over real HTTP on loopback: every test starts its own mock and talks to it the way the
//! official clients do. One module per topic; `support` holds the shared world and helpers.

mod auth;
mod consistency;
mod datasets;
mod faults;
mod filters;
mod front;
mod grouped;
mod metadata;
mod quiet;
mod replay;
mod support;
