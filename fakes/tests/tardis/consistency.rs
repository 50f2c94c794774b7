//! The data types tell one market, checked on the served files of a whole day: the quote in force at every
//! trade brackets it, book level 0 is the quote, and the derivative ticker follows the trades.

use fixtures::Decimal;
use market::TradingDay;

use crate::support::{World, day, file_path, table};

/// A served file's rows (header checked by the caller's `columns`).
async fn rows(world: &World, exchange: &str, data_type: &str, d: TradingDay, symbol: &str) -> Vec<Vec<String>> {
    let answer = world.get_keyed(&file_path(exchange, data_type, d, symbol)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    table(&answer.gunzip()).1
}

fn decimal(cell: &str) -> Decimal {
    Decimal::parse(cell).unwrap_or_else(|| panic!("{cell:?} is not a decimal"))
}

fn micros(cell: &str) -> i64 {
    cell.parse().unwrap_or_else(|_| panic!("{cell:?} is not µs"))
}

const PAIRS: [(&str, &str, &str); 3] =
    [("binance-futures", "BTCUSDT", "0.1"), ("bitmex", "XBTUSD", "0.5"), ("deribit", "ETH-PERPETUAL", "0.05")];

#[tokio::test]
async fn the_quote_in_force_at_every_trade_of_a_day_brackets_it() {
    let world = World::start_with(0.2, fakes::tardis::TardisOptions::exported_through(day().succ())).await;
    for (exchange, symbol, tick) in PAIRS {
        let tick = decimal(tick);
        // Quotes of the day's file and the next one (quotes of the last milliseconds arrive after midnight),
        // in exchange-time order.
        let mut quotes: Vec<(i64, Decimal, Decimal)> = Vec::new();
        for d in [day(), day().succ()] {
            for q in rows(&world, exchange, "quotes", d, symbol).await {
                quotes.push((micros(&q[2]), decimal(&q[6]), decimal(&q[5])));
            }
        }
        quotes.sort_by_key(|q| q.0);
        assert!(quotes.windows(2).all(|w| w[0].0 < w[1].0), "{symbol}: one quote per exchange time");
        let trades = rows(&world, exchange, "trades", day(), symbol).await;
        let mut checked = 0;
        for trade in trades.iter().filter(|t| day().contains_us(micros(&t[2]))) {
            let (time, price) = (micros(&trade[2]), decimal(&trade[6]));
            let before = quotes.partition_point(|q| q.0 <= time);
            assert!(before > 0, "{symbol}: no quote before {trade:?}");
            let (_, bid, ask) = quotes[before - 1];
            assert!(bid <= price && price <= ask, "{symbol}: {trade:?} outside {bid}..{ask}");
            // Both on the tick grid and apart: a spread of at least one tick.
            assert!(bid < ask && bid.is_multiple_of(tick) && ask.is_multiple_of(tick), "{symbol}: {bid}..{ask}");
            checked += 1;
        }
        assert!(checked > 1_000, "{symbol}: {checked} trades checked");
    }
}

#[tokio::test]
async fn book_level_zero_is_the_quote_and_deeper_levels_worsen() {
    let world = World::start().await;
    for (exchange, symbol, tick) in PAIRS {
        let tick = decimal(tick);
        let quotes = rows(&world, exchange, "quotes", day(), symbol).await;
        let books = rows(&world, exchange, "book_snapshot_5", day(), symbol).await;
        assert_eq!(quotes.len(), books.len(), "{symbol}: one snapshot per quote");
        for (quote, book) in quotes.iter().zip(&books) {
            assert_eq!(quote[..4], book[..4], "{symbol}: same exchange, symbol and times");
            // quotes: ask_amount, ask_price, bid_price, bid_amount; book: asks[0].price, asks[0].amount, ...
            assert_eq!((&book[4], &book[5], &book[6], &book[7]), (&quote[5], &quote[4], &quote[6], &quote[7]));
            let level = |side: usize, i: usize| (decimal(&book[4 + i * 4 + side]), decimal(&book[5 + i * 4 + side]));
            for i in 1..5 {
                let (ask, previous_ask) = (level(0, i), level(0, i - 1));
                let (bid, previous_bid) = (level(2, i), level(2, i - 1));
                assert!(ask.0 > previous_ask.0 && bid.0 < previous_bid.0, "{symbol}: {book:?}");
                for (price, amount) in [ask, bid] {
                    assert!(price.is_multiple_of(tick) && amount > Decimal::new(0, 0), "{symbol}: {book:?}");
                }
            }
        }
    }
}

#[tokio::test]
async fn the_derivative_ticker_follows_the_trades_and_leaves_unpublished_columns_empty() {
    let world = World::start().await;
    // exchange, symbol, has funding_timestamp, has predicted_funding_rate
    for (exchange, symbol, has_funding_time, has_predicted) in [
        ("binance-futures", "BTCUSDT", true, false),
        ("bitmex", "XBTUSD", true, true),
        ("deribit", "ETH-PERPETUAL", false, false),
    ] {
        let mut trades: Vec<(i64, Decimal)> = Vec::new();
        for d in [day().pred(), day(), day().succ()] {
            trades.extend(
                rows(&world, exchange, "trades", d, symbol).await.iter().map(|t| (micros(&t[2]), decimal(&t[6]))),
            );
        }
        trades.sort_by_key(|t| t.0);
        let ticker = rows(&world, exchange, "derivative_ticker", day(), symbol).await;
        assert!(ticker.len() > 500, "{symbol}: {}", ticker.len());
        for row in &ticker {
            let time = micros(&row[2]);
            assert_eq!(!row[4].is_empty(), has_funding_time, "{symbol}: {row:?}");
            if has_funding_time {
                let next = micros(&row[4]);
                let eight_hours = 8 * 3_600_000_000;
                assert!(next % eight_hours == 0 && next > time && next - time <= eight_hours, "{symbol}: {row:?}");
            }
            let rate = decimal(&row[5]).to_f64();
            assert!(rate != 0.0 && rate.abs() < 0.01, "{symbol}: funding rate {rate}");
            assert_eq!(!row[6].is_empty(), has_predicted, "{symbol}: {row:?}");
            assert!(decimal(&row[7]) > Decimal::new(0, 0), "{symbol}: open interest {row:?}");
            let last = decimal(&row[8]);
            let before = trades.partition_point(|t| t.0 <= time);
            let last_time = trades[before - 1].0;
            assert!(
                trades[..before].iter().rev().take_while(|t| t.0 == last_time).any(|t| t.1 == last),
                "{symbol}: last_price {last} is not the last trade before {time}"
            );
            for cell in [&row[9], &row[10]] {
                let ratio = decimal(cell).to_f64() / last.to_f64();
                assert!((0.99..1.01).contains(&ratio), "{symbol}: index or mark {cell} far from {last}");
            }
        }
    }
}
