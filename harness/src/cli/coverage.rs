//! `harness coverage`: the coverage matrix (each documented rule, the defect that breaks it, the check that
//! catches it), and with `--run` the proof: every defect run through the reference pipeline and scored.
//! Exit 0 when every row is caught (or only printed), 2 when a defect went uncaught, 3 on a harness error.

use std::sync::Arc;

use pipeline::cli::Exit;

use crate::coverage::{self, MATRIX, Observed};
use crate::postgres::PostgresServer;

#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Examples:\n  harness coverage                # the matrix\n  harness coverage --run          # run every defect and show what caught it (about a minute)\n  harness coverage --run --json"
)]
pub struct CoverageArgs {
    /// Run every defect through the reference pipeline (a generated market of 4 pairs, a fresh database each)
    /// and show the checks that failed; exit 2 when a row's check did not catch its defect.
    #[arg(long)]
    pub run: bool,
    /// With --run: the seed of the generated market.
    #[arg(long, default_value_t = 42, requires = "run")]
    pub seed: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: CoverageArgs) -> anyhow::Result<Exit> {
    if !args.run {
        if args.json {
            println!("{}", serde_json::to_string_pretty(MATRIX)?);
        } else {
            print!("{}", table(&[]));
        }
        return Ok(Exit::Pass);
    }
    let server = Arc::new(PostgresServer::provision().await?);
    let mut observed = Vec::new();
    for (n, &defect) in crate::defects::Defect::ALL.iter().enumerate() {
        eprintln!("harness coverage: [{}/{}] {defect}", n + 1, crate::defects::Defect::ALL.len());
        observed.push(coverage::observe_defect(Arc::clone(&server), args.seed, defect).await?);
    }
    let missed: Vec<&str> = MATRIX
        .iter()
        .filter(|r| !observed.iter().any(|o| o.defect == r.defect && o.catches(r)))
        .map(|r| r.id)
        .collect();
    if args.json {
        let rows: Vec<serde_json::Value> = MATRIX
            .iter()
            .map(|r| {
                let seen = observed.iter().find(|o| o.defect == r.defect);
                serde_json::json!({
                    "rule": r, "caught": seen.is_some_and(|o| o.catches(r)),
                    "failed_checks": seen.map(|o| o.findings.iter().map(|(id, ..)| id.clone()).collect::<Vec<_>>()),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"rows": rows, "missed": missed}))?);
    } else {
        print!("{}", table(&observed));
        if missed.is_empty() {
            println!(
                "every rule's defect was caught by its check ({} rules, {} defects)",
                MATRIX.len(),
                observed.len()
            );
        } else {
            println!("NOT CAUGHT: {}", missed.join(", "));
        }
    }
    Ok(if missed.is_empty() { Exit::Pass } else { Exit::Fail })
}

/// The matrix as a text table; with observations, whether each row was caught and what else failed.
fn table(observed: &[Observed]) -> String {
    let mut out = String::new();
    for r in MATRIX {
        out.push_str(&format!(
            "{}  [{}]\n  rule:      {}\n  defect:    {} ({})\n  caught by: {}",
            r.id,
            r.table,
            r.rule,
            r.defect,
            r.defect.description(),
            r.check
        ));
        if let Some(seen) = observed.iter().find(|o| o.defect == r.defect) {
            let verdict = if seen.catches(r) { "yes" } else { "NO" };
            let sample = seen
                .findings
                .iter()
                .find(|(id, ..)| id == r.check)
                .and_then(|(_, _, samples)| samples.iter().find(|s| s.contains(r.finding)).or(samples.first()))
                .map_or(String::new(), |s| format!(": {s}"));
            let others: Vec<&str> =
                seen.findings.iter().map(|(id, ..)| id.as_str()).filter(|id| *id != r.check).collect();
            out.push_str(&format!(" — caught: {verdict}{sample}"));
            if !others.is_empty() {
                out.push_str(&format!("\n  also:      {}", others.join(", ")));
            }
        }
        out.push_str("\n\n");
    }
    out
}
