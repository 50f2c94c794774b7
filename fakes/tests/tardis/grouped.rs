//! Grouped symbols: `PERPETUALS` holds every perpetual of the exchange in one file, merged by arrival time,
//! each row keeping its own symbol; quiet members are left out; other groups without instruments are 404.

use fakes::tardis::TardisOptions;
use fixtures::DataType;

use crate::support::{World, day, exchange, file_path, generated_csv, last_exported, symbol, table};

const MEMBERS: [&str; 4] = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"];

#[tokio::test]
async fn perpetuals_merge_every_perpetual_by_arrival_and_rows_keep_their_symbol() {
    let world = World::start().await;
    for data_type in DataType::ALL {
        let answer = world.get_keyed(&file_path("binance-futures", data_type.as_str(), day(), "PERPETUALS")).await;
        assert_eq!(answer.status, 200, "{data_type}: {}", answer.text());
        let text = answer.gunzip();
        assert_eq!(text.lines().next(), Some(data_type.header().trim_end()));
        let (_, rows) = table(&text);
        let locals: Vec<i64> = rows.iter().map(|r| r[3].parse().expect("µs")).collect();
        assert!(locals.windows(2).all(|w| w[0] <= w[1]), "{data_type}: ordered by local_timestamp");
        let mut total = 0;
        for member in MEMBERS {
            let own = generated_csv(&world.generator, data_type, "binance-futures", member, day());
            let own_rows: Vec<&str> = own.lines().skip(1).collect();
            let picked: Vec<&str> = text.lines().skip(1).filter(|l| l.split(',').nth(1) == Some(member)).collect();
            assert_eq!(picked, own_rows, "{data_type} {member}: the member's file, in its order");
            total += own_rows.len();
        }
        assert_eq!(rows.len(), total, "{data_type}: nothing but the members");
    }
}

#[tokio::test]
async fn a_quiet_member_is_left_out_of_the_group() {
    let options = TardisOptions::exported_through(last_exported()).with_quiet(
        exchange("binance-futures"),
        symbol("ETHUSDT"),
        day(),
    );
    let world = World::start_with(0.1, options).await;
    let text = world.get_keyed(&file_path("binance-futures", "trades", day(), "PERPETUALS")).await.gunzip();
    let symbols: std::collections::BTreeSet<&str> = text.lines().skip(1).filter_map(|l| l.split(',').nth(1)).collect();
    assert_eq!(symbols.into_iter().collect::<Vec<_>>(), ["BTCUSDT", "SOLUSDT", "XRPUSDT"]);
}

#[tokio::test]
async fn groups_without_instruments_and_lower_case_groups_are_404() {
    let world = World::start().await;
    for group in ["SPOT", "FUTURES", "OPTIONS", "perpetuals"] {
        let answer = world.get_keyed(&file_path("bitmex", "trades", day(), group)).await;
        assert_eq!(answer.status, 404, "{group}");
        assert_eq!(answer.json()["message"], format!("Unknown symbol '{group}' for bitmex"));
    }
}
