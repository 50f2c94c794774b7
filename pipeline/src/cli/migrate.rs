//! `pipeline migrate`: apply the database migrations (connecting does) and exit.

use super::Exit;
use crate::config::Config;
use crate::store::Store;

pub async fn run() -> anyhow::Result<Exit> {
    Store::connect(Config::from_env()?.database_url.expose()).await?;
    println!("Database migrated.");
    Ok(Exit::Pass)
}
