//! The README's sections on CI, the nightly run, Slack and benchmarks stay true: every variable the scripts read
//! is documented, and every `harness notify` example is a command line the harness accepts.

use clap::Parser;
use harness::cli::Cli;

use super::read;

/// `NIGHTLY_*` and `BENCH_*` variables a script reads.
fn variables(script: &str) -> Vec<String> {
    let mut names: Vec<String> = script
        .match_indices("${")
        .map(|(i, _)| &script[i + 2..])
        .map(|rest| rest.chars().take_while(|c| c.is_ascii_uppercase() || *c == '_').collect::<String>())
        .filter(|name| name.starts_with("NIGHTLY_") || name.starts_with("BENCH_"))
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn every_variable_the_scripts_read_is_in_the_readme() {
    let readme = read("README.md");
    for script in ["scripts/nightly.sh", "scripts/bench.sh"] {
        let names = variables(&read(script));
        assert!(!names.is_empty(), "{script} reads variables");
        for name in names {
            assert!(readme.contains(&name), "{name} (read by {script}) is documented in the README");
        }
    }
    for name in ["SLACK_WEBHOOK_URL", "HARNESS_BIN"] {
        assert!(readme.contains(name), "{name}");
    }
}

#[test]
fn the_readme_has_a_section_per_use_with_its_commands() {
    let readme = read("README.md");
    for (section, command) in [
        ("### CI", "bash .ci/run"),
        ("### The nightly run", "bash scripts/nightly.sh"),
        ("### Slack", "harness notify"),
        ("### Benchmarks", "bash scripts/bench.sh"),
    ] {
        let start = readme.find(section).unwrap_or_else(|| panic!("README section {section:?}"));
        let body = &readme[start..];
        let end = body[section.len()..].find("\n### ").map_or(body.len(), |i| i + section.len());
        assert!(body[..end].contains(command), "{section} shows `{command}`");
    }
}

#[test]
fn every_harness_notify_example_in_the_readme_parses() {
    let readme = read("README.md");
    let examples: Vec<&str> =
        readme.lines().filter_map(|l| l.split_once("harness notify ").map(|(_, rest)| rest)).collect();
    assert!(!examples.is_empty(), "the README shows `harness notify`");
    for example in examples {
        let line = example.split(" #").next().unwrap_or_default().trim().trim_end_matches('`');
        let argv = ["harness", "notify"].into_iter().chain(line.split_whitespace());
        Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("README example `harness notify {line}`: {e}"));
    }
}

#[test]
fn the_configuration_table_lists_exactly_the_environment_contract() {
    let readme = read("README.md");
    let start = readme.find("## Configuration").expect("a Configuration section");
    let section = &readme[start..];
    let section = &section[..section[2..].find("\n## ").map_or(section.len(), |i| i + 2)];
    let documented: std::collections::BTreeSet<&str> =
        section.lines().filter_map(|line| line.strip_prefix("| `")).filter_map(|rest| rest.split('`').next()).collect();
    let contract: std::collections::BTreeSet<&str> = pipeline::env::Var::ALL.iter().map(|v| v.name()).collect();
    assert_eq!(documented, contract, "README's Configuration table and pipeline::env::Var");
}

#[test]
fn the_exit_code_contract_is_documented_once_with_every_code() {
    use pipeline::cli::Exit;
    let readme = read("README.md");
    assert_eq!(readme.matches("## Exit codes").count(), 1, "one section");
    let start = readme.find("## Exit codes").expect("section");
    let section = &readme[start..];
    let section = &section[..section[2..].find("\n## ").map_or(section.len(), |i| i + 2)];
    for exit in [Exit::Pass, Exit::Warn, Exit::Fail, Exit::Error, Exit::Interrupted] {
        let row = format!("| {} |", exit.code());
        assert!(section.contains(&row), "the Exit codes table has a row for {exit:?} ({row})");
    }
}

#[test]
fn the_readme_coverage_table_has_every_row_of_the_matrix_and_the_command_prints_it() {
    let readme = read("README.md");
    for rule in harness::coverage::MATRIX {
        let short = rule.check.split('.').nth(1).unwrap_or(rule.check);
        let row = readme.lines().find(|line| line.contains(&format!("| {} |", rule.defect)));
        let row = row.unwrap_or_else(|| panic!("no README row for {}", rule.defect));
        assert!(row.contains(short), "the README row of {} names {short}: {row}", rule.defect);
    }
    let out = std::process::Command::new(super::harness_binary())
        .args(["coverage", "--json"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("harness runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(printed.len(), harness::coverage::MATRIX.len());
    assert_eq!(printed[0]["defect"], harness::coverage::MATRIX[0].defect.name());
}
