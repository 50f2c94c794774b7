//! `pipeline runs`: the recorded runs of a date.

use market::TradingDay;

use super::Exit;
use crate::config::Config;
use crate::store::Store;

#[derive(Debug, Clone, clap::Args)]
pub struct RunsArgs {
    /// The date, YYYY-MM-DD.
    #[arg(long, value_parser = TradingDay::parse)]
    pub date: TradingDay,
    /// Print the runs as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: RunsArgs) -> anyhow::Result<Exit> {
    let day = args.date;
    let store = Store::connect(Config::from_env()?.database_url.expose()).await?;
    let runs = store.runs_of_day(day).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(Exit::Pass);
    }
    if runs.is_empty() {
        println!("No runs recorded for {day}.");
    }
    for r in runs {
        let scores = r.scores.map_or_else(
            || "-".to_owned(),
            |s| format!("completeness {:.4} quality {:.4} consistency {:.4}", s.completeness, s.quality, s.consistency),
        );
        println!(
            "run {} ({}) {} started {} {} trades {} candles {} {}",
            r.id,
            r.trigger,
            r.status.as_str(),
            r.started_at.format("%Y-%m-%d %H:%M:%S"),
            r.validation.as_deref().unwrap_or("-"),
            r.trades.unwrap_or(0),
            r.candles.unwrap_or(0),
            scores
        );
        if let Some(error) = r.error {
            println!("  error: {error}");
        }
    }
    Ok(Exit::Pass)
}
