"""1-minute candles of one Tardis trades file with polars: the same day's candles `pipeline candles` builds, the
way a data team would write them (scripts/perf-compare.sh times it against ours).

Usage: polars_candles.py FILE.csv.gz [--date YYYY-MM-DD]

`pl.read_csv` reads the gzip file itself (polars decompresses gzip input in memory before parsing, so the whole
CSV text is held at once: that is polars' memory, and part of what the comparison shows). Then: exchange
timestamps (µs) as Datetime, the trades of --date only (the pipeline's rule: a trade belongs to the bucket of its
exchange time, rows of other days are not candles), a stable sort by exchange time (so the open is the earliest
trade and the first in file order on ties, the close the latest and the last on ties, as the pipeline's rules
say), and `group_by_dynamic` every minute: open, high, low, close, volume, quote volume (Σ price × amount), trade
count, VWAP, buy volume, sell volume. No candle for a minute without trades, as in the pipeline.

Prints one JSON object: rows read, candles, trades and volume in candles (to compare with ours), and the seconds
spent reading and grouping. Exit status 1 with a message when the file cannot be read.
"""

import argparse
import datetime
import json
import sys
import time

import polars as pl


def candles(trades: pl.DataFrame, day: datetime.date | None) -> pl.DataFrame:
    trades = trades.with_columns(pl.col("timestamp").cast(pl.Datetime("us")).alias("ts"))
    if day is not None:
        start = datetime.datetime.combine(day, datetime.time())
        trades = trades.filter((pl.col("ts") >= start) & (pl.col("ts") < start + datetime.timedelta(days=1)))
    trades = trades.sort("ts", maintain_order=True)
    amount, price = pl.col("amount"), pl.col("price")
    return (
        trades.group_by_dynamic("ts", every="1m")
        .agg(
            price.first().alias("open"),
            price.max().alias("high"),
            price.min().alias("low"),
            price.last().alias("close"),
            amount.sum().alias("volume"),
            (price * amount).sum().alias("quote_volume"),
            pl.len().alias("trades"),
            amount.filter(pl.col("side") == "buy").sum().alias("buy_volume"),
            amount.filter(pl.col("side") == "sell").sum().alias("sell_volume"),
        )
        .with_columns((pl.col("quote_volume") / pl.col("volume")).alias("vwap"))
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file")
    parser.add_argument("--date", type=datetime.date.fromisoformat, help="keep the trades of this UTC day only")
    args = parser.parse_args()

    started = time.perf_counter()
    try:
        trades = pl.read_csv(
            args.file,
            schema_overrides={
                "timestamp": pl.Int64,
                "local_timestamp": pl.Int64,
                "id": pl.String,
                "price": pl.Float64,
                "amount": pl.Float64,
            },
        )
    except (OSError, pl.exceptions.PolarsError) as error:
        print(f"polars_candles.py: cannot read {args.file}: {error}", file=sys.stderr)
        return 1
    read = time.perf_counter()
    result = candles(trades, args.date)
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "polars": pl.__version__,
                "rows": trades.height,
                "candles": result.height,
                "trades_in_candles": int(result["trades"].sum()),
                "volume": float(result["volume"].sum()),
                "read_seconds": read - started,
                "candles_seconds": done - read,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
