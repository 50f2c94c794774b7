"""An external daily market-data pipeline in Python, built on the vendors' official clients.

One UTC date: download the trades files of the configured symbols with `tardis-dev`, fetch the exchanges'
instruments, build 1-minute candles exactly per the table contract (README "Table layout"), and load both
tables into their date partition with `google-cloud-bigquery` (one WRITE_TRUNCATE load job per table into
`table$YYYYMMDD`, so rerunning a date replaces it and never duplicates a row).

It reads the same environment as the reference pipeline (TARDIS_*, BIGQUERY_*, PIPELINE_SYMBOLS,
PIPELINE_DATA_DIR) and therefore runs unchanged against the real services or under the harness:

    harness run --pipeline-cmd "python3 examples/python-pipeline/pipeline.py --date {date}"

Exit codes: 0 the date was loaded, 2 it failed (download, load or schema), 3 bad input or configuration.
It keeps no run records (DATABASE_URL is not used) and does no validation of its own: `pipeline validate`
and the harness do that.
"""

import argparse
import csv
import datetime as dt
import gzip
import os
import sys
import time
import traceback

import tardis_dev
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 2, 3

DEFAULT_SYMBOLS = (
    "binance-futures:BTCUSDT,ETHUSDT,SOLUSDT,XRPUSDT;"
    "bitmex:XBTUSD,ETHUSD,SOLUSD,XRPUSD;"
    "deribit:BTC-PERPETUAL,ETH-PERPETUAL,SOL_USDC-PERPETUAL,XRP_USDC-PERPETUAL"
)
MINUTE_US = 60_000_000
DAY_US = 24 * 60 * MINUTE_US
TRADES_HEADER = ["exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount"]

# The table contract (pipeline/src/bigquery/schema.rs; README "Table layout").
CANDLES_1M = {
    "name": "candles_1m",
    "partition_field": "open_time",
    "clustering": ["exchange", "symbol"],
    "schema": [
        bigquery.SchemaField("exchange", "STRING", mode="REQUIRED"),
        bigquery.SchemaField("symbol", "STRING", mode="REQUIRED"),
        bigquery.SchemaField("open_time", "TIMESTAMP", mode="REQUIRED"),
        bigquery.SchemaField("open", "FLOAT", mode="REQUIRED"),
        bigquery.SchemaField("high", "FLOAT", mode="REQUIRED"),
        bigquery.SchemaField("low", "FLOAT", mode="REQUIRED"),
        bigquery.SchemaField("close", "FLOAT", mode="REQUIRED"),
        bigquery.SchemaField("volume", "FLOAT", mode="REQUIRED"),
        bigquery.SchemaField("quote_volume", "FLOAT", mode="REQUIRED"),
        bigquery.SchemaField("trade_count", "INTEGER", mode="REQUIRED"),
        bigquery.SchemaField("vwap", "FLOAT", mode="REQUIRED"),
        bigquery.SchemaField("buy_volume", "FLOAT", mode="REQUIRED"),
        bigquery.SchemaField("sell_volume", "FLOAT", mode="REQUIRED"),
    ],
}
INSTRUMENTS = {
    "name": "instruments",
    "partition_field": "date",
    "clustering": ["exchange"],
    "schema": [
        bigquery.SchemaField("date", "DATE", mode="REQUIRED"),
        bigquery.SchemaField("exchange", "STRING", mode="REQUIRED"),
        bigquery.SchemaField("id", "STRING", mode="REQUIRED"),
        bigquery.SchemaField("dataset_id", "STRING", mode="REQUIRED"),
        bigquery.SchemaField("base_currency", "STRING", mode="REQUIRED"),
        bigquery.SchemaField("quote_currency", "STRING", mode="REQUIRED"),
        bigquery.SchemaField("type", "STRING", mode="REQUIRED"),
        bigquery.SchemaField("contract_type", "STRING", mode="NULLABLE"),
        bigquery.SchemaField("active", "BOOLEAN", mode="REQUIRED"),
        bigquery.SchemaField("available_since", "TIMESTAMP", mode="REQUIRED"),
        bigquery.SchemaField("available_to", "TIMESTAMP", mode="NULLABLE"),
        bigquery.SchemaField("price_increment", "FLOAT", mode="REQUIRED"),
        bigquery.SchemaField("amount_increment", "FLOAT", mode="REQUIRED"),
        bigquery.SchemaField("min_trade_amount", "FLOAT", mode="REQUIRED"),
        bigquery.SchemaField("inverse", "BOOLEAN", mode="REQUIRED"),
        bigquery.SchemaField("contract_multiplier", "FLOAT", mode="NULLABLE"),
    ],
}
# tables.get answers in the legacy spelling; a table created by hand may use the standard one.
SAME_TYPE = {"INT64": "INTEGER", "FLOAT64": "FLOAT", "BOOL": "BOOLEAN"}


class BadInput(Exception):
    """Bad arguments or configuration: nothing was done."""


class Failed(Exception):
    """The date could not be completed."""


def log(message):
    print(f"{dt.datetime.now(dt.timezone.utc):%H:%M:%S} {message}", file=sys.stderr, flush=True)


def env(name, default=None):
    value = os.environ.get(name, "").strip()
    return value or default


def normalize_symbol(symbol):
    """Tardis' own normalisation (the official clients do the same to URLs and file names)."""
    return symbol.replace(":", "-").replace("/", "-").upper()


def parse_symbols(text):
    """`exchange:SYM1,SYM2;exchange2:SYM3` -> {exchange: [symbols]} in the given order, without repeats."""
    selection = {}
    for group in (g.strip() for g in text.replace("\n", ";").split(";")):
        if not group:
            continue
        exchange, sep, symbols = group.partition(":")
        if not sep or not exchange.strip():
            raise BadInput(f"PIPELINE_SYMBOLS: {group!r} should look like exchange:SYMBOL1,SYMBOL2")
        listed = selection.setdefault(exchange.strip(), [])
        for symbol in (normalize_symbol(s.strip()) for s in symbols.split(",")):
            if symbol and symbol not in listed:
                listed.append(symbol)
    selection = {exchange: symbols for exchange, symbols in selection.items() if symbols}
    if not selection:
        raise BadInput("PIPELINE_SYMBOLS: no exchange:symbol pairs given")
    return selection


def parse_date(text):
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise BadInput(f"--date {text!r} is not a date (YYYY-MM-DD)") from None
    if len(text) != 10:
        raise BadInput(f"--date {text!r} is not a date (YYYY-MM-DD)")
    if day >= dt.datetime.now(dt.timezone.utc).date():
        raise BadInput(f"{day} is not over yet (UTC): only past dates can be processed")
    return day


class Config:
    def __init__(self):
        self.datasets_url = env("TARDIS_DATASETS_URL", tardis_dev.DEFAULT_DATASETS_ENDPOINT).rstrip("/")
        self.api_url = env("TARDIS_API_URL", tardis_dev.DEFAULT_ENDPOINT).rstrip("/")
        self.api_key = env("TARDIS_API_KEY", "")
        self.bigquery_url = env("BIGQUERY_API_URL")
        self.project = env("BIGQUERY_PROJECT")
        if not self.project:
            raise BadInput("BIGQUERY_PROJECT is required")
        self.dataset = env("BIGQUERY_DATASET", "market_data")
        self.location = env("BIGQUERY_LOCATION", "US")
        self.table_suffix = env("BIGQUERY_TABLE_SUFFIX", "")
        self.data_dir = env("PIPELINE_DATA_DIR", "data")
        self.selection = parse_symbols(env("PIPELINE_SYMBOLS", DEFAULT_SYMBOLS))


def bigquery_client(config):
    """The official client: the real service with Application Default Credentials, or a fake at BIGQUERY_API_URL
    (a loopback fake takes any token, so no credentials are looked up at all)."""
    url = config.bigquery_url
    if url and "googleapis.com" not in url:
        return bigquery.Client(
            project=config.project,
            location=config.location,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=url),
        )
    credentials = None
    token = env("BIGQUERY_ACCESS_TOKEN")
    if token:
        from google.oauth2.credentials import Credentials

        credentials = Credentials(token)
    options = ClientOptions(api_endpoint=url) if url else None
    return bigquery.Client(
        project=config.project, location=config.location, credentials=credentials, client_options=options
    )


# --- download -------------------------------------------------------------------------------------------------


def ensure_exported(config, exchange, day):
    """A day Tardis has not exported yet fails the date instead of looking empty."""
    details = tardis_dev.get_exchange_details(exchange, endpoint=config.api_url)
    until = (details.get("datasets") or {}).get("exportedUntil")
    day_end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
    if not until or dt.datetime.fromisoformat(until.replace("Z", "+00:00")) < day_end:
        raise Failed(f"{exchange}: trades of {day} are not exported yet (exportedUntil {until})")


def download(config, day):
    """Every configured trades file of `day`, as {(exchange, symbol): path}."""
    directory = os.path.join(config.data_dir, "tardis")
    os.makedirs(directory, exist_ok=True)
    paths = {}
    for exchange, symbols in config.selection.items():
        ensure_exported(config, exchange, day)
        try:
            tardis_dev.download_datasets(
                exchange=exchange,
                data_types=["trades"],
                symbols=symbols,
                from_date=day.isoformat(),
                to_date=(day + dt.timedelta(days=1)).isoformat(),
                api_key=config.api_key,
                download_dir=directory,
                endpoint=config.datasets_url,
            )
        except Exception as error:  # the client raises urllib's HTTPError, aiohttp's and its own errors
            raise Failed(f"{exchange}: download of {', '.join(symbols)} on {day} failed: {error}") from error
        for symbol in symbols:
            name = tardis_dev.default_file_name(exchange, "trades", dt.datetime.combine(day, dt.time()), symbol, "csv")
            path = os.path.join(directory, name)
            if not os.path.isfile(path):
                raise Failed(f"{exchange} {symbol}: {path} is missing after the download")
            paths[(exchange, symbol)] = path
    return paths


def instruments(config):
    """Every instrument of every configured exchange (one snapshot per processed date)."""
    found = []
    for exchange in config.selection:
        try:
            found.extend(tardis_dev.get_instrument_info(exchange, api_key=config.api_key, endpoint=config.api_url))
        except Exception as error:
            raise Failed(f"{exchange}: instruments could not be fetched: {error}") from error
    return found


# --- candles --------------------------------------------------------------------------------------------------

# One bucket: [open_ts, open, close_ts, close, high, low, volume, quote_volume, trade_count, buy_volume, sell_volume]
OPEN_TS, OPEN, CLOSE_TS, CLOSE, HIGH, LOW, VOLUME, QUOTE_VOLUME, COUNT, BUY, SELL = range(11)


def candles_of_file(path, exchange, symbol, day):
    """The 1-minute candles of one trades file, with the rows outside the date counted.

    A trade belongs to the minute of its exchange `timestamp` (Tardis splits files by arrival, so a file starts
    with late trades of the day before: those are counted, never bucketed). Open is the trade with the smallest
    exchange time (the first in file order on ties), close the one with the largest (the last on ties); the sums
    are accumulated in file order; no candle for a minute without trades.
    """
    day_start = int(dt.datetime.combine(day, dt.time(), dt.timezone.utc).timestamp()) * 1_000_000
    buckets = {}
    before = after = 0
    with gzip.open(path, "rt", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:  # a quiet day: an empty gzip
            return [], 0, 0
        if header != TRADES_HEADER:
            raise Failed(f"{path}: unexpected header {header}")
        for line, row in enumerate(reader, start=2):
            try:
                timestamp = int(row[2])
                side, price, amount = row[5], float(row[6]), float(row[7])
            except (IndexError, ValueError) as error:
                raise Failed(f"{path}:{line}: unreadable trade {row}: {error}") from error
            offset = timestamp - day_start
            if offset < 0:
                before += 1
                continue
            if offset >= DAY_US:
                after += 1
                continue
            minute = offset // MINUTE_US
            bucket = buckets.get(minute)
            if bucket is None:
                bucket = [timestamp, price, timestamp, price, price, price, 0.0, 0.0, 0, 0.0, 0.0]
                buckets[minute] = bucket
            else:
                if timestamp < bucket[OPEN_TS]:
                    bucket[OPEN_TS], bucket[OPEN] = timestamp, price
                if timestamp >= bucket[CLOSE_TS]:
                    bucket[CLOSE_TS], bucket[CLOSE] = timestamp, price
                if price > bucket[HIGH]:
                    bucket[HIGH] = price
                if price < bucket[LOW]:
                    bucket[LOW] = price
            bucket[VOLUME] += amount
            bucket[QUOTE_VOLUME] += price * amount
            bucket[COUNT] += 1
            if side == "buy":
                bucket[BUY] += amount
            elif side == "sell":
                bucket[SELL] += amount
    rows = []
    for minute in sorted(buckets):
        b = buckets[minute]
        open_time = dt.datetime.fromtimestamp((day_start + minute * MINUTE_US) // 1_000_000, dt.timezone.utc)
        rows.append(
            {
                "exchange": exchange,
                "symbol": symbol,
                "open_time": open_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "open": b[OPEN],
                "high": b[HIGH],
                "low": b[LOW],
                "close": b[CLOSE],
                "volume": b[VOLUME],
                "quote_volume": b[QUOTE_VOLUME],
                "trade_count": b[COUNT],
                "vwap": b[QUOTE_VOLUME] / b[VOLUME],
                "buy_volume": b[BUY],
                "sell_volume": b[SELL],
            }
        )
    return rows, before, after


def instrument_row(instrument, day):
    """One `instruments` row of the snapshot for `day` (Tardis' camelCase fields, snake_case columns)."""
    return {
        "date": day.isoformat(),
        "exchange": instrument["exchange"],
        "id": instrument["id"],
        "dataset_id": normalize_symbol(instrument.get("datasetId") or instrument["id"]),
        "base_currency": instrument["baseCurrency"],
        "quote_currency": instrument["quoteCurrency"],
        "type": instrument["type"],
        "contract_type": instrument.get("contractType"),
        "active": bool(instrument["active"]),
        "available_since": instrument["availableSince"],
        "available_to": instrument.get("availableTo"),
        "price_increment": float(instrument["priceIncrement"]),
        "amount_increment": float(instrument["amountIncrement"]),
        "min_trade_amount": float(instrument.get("minTradeAmount") or 0.0),
        "inverse": bool(instrument.get("inverse") or False),
        "contract_multiplier": instrument.get("contractMultiplier"),
    }


# --- upload ---------------------------------------------------------------------------------------------------


def ensure_table(client, config, table):
    """Creates the table (DAY-partitioned, clustered) unless it exists; an existing one must have every column."""
    name = f"{config.project}.{config.dataset}.{table['name']}{config.table_suffix}"
    resource = bigquery.Table(name, schema=table["schema"])
    resource.time_partitioning = bigquery.TimePartitioning(
        type_=bigquery.TimePartitioningType.DAY, field=table["partition_field"]
    )
    resource.clustering_fields = table["clustering"]
    existing = client.create_table(resource, exists_ok=True)
    found = {field.name: SAME_TYPE.get(field.field_type, field.field_type) for field in existing.schema}
    for field in table["schema"]:
        if field.name not in found:
            raise Failed(f"{name}: column {field.name} is missing")
        if found[field.name] != field.field_type:
            raise Failed(f"{name}: column {field.name} is {found[field.name]}, expected {field.field_type}")
    return name


def load_partition(client, name, table, day, rows):
    """Replaces the date's partition with `rows` in one load job."""
    destination = f"{name}${day:%Y%m%d}"
    job_config = bigquery.LoadJobConfig(
        schema=table["schema"],
        source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
        write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
        create_disposition=bigquery.CreateDisposition.CREATE_NEVER,
    )
    try:
        job = client.load_table_from_json(rows, destination, job_config=job_config)
        job.result()
    except Exception as error:
        raise Failed(f"load into {destination} failed: {error}") from error
    if job.output_rows != len(rows):
        raise Failed(f"load into {destination} wrote {job.output_rows} rows of {len(rows)}")
    return job.job_id


# --- the date -------------------------------------------------------------------------------------------------


def run(config, day):
    started = time.monotonic()
    files = download(config, day)
    log(f"download: {len(files)} files")
    listed = instruments(config)
    log(f"instruments: {len(listed)}")

    candles, before, after = [], 0, 0
    for (exchange, symbol), path in sorted(files.items()):
        rows, file_before, file_after = candles_of_file(path, exchange, symbol, day)
        candles.extend(rows)
        before, after = before + file_before, after + file_after
    trades = sum(row["trade_count"] for row in candles)
    log(f"candles: {len(candles)} from {trades} trades ({before} rows before the day, {after} after)")

    client = bigquery_client(config)
    client.create_dataset(bigquery.Dataset(f"{config.project}.{config.dataset}"), exists_ok=True)
    candles_table = ensure_table(client, config, CANDLES_1M)
    instruments_table = ensure_table(client, config, INSTRUMENTS)
    load_partition(client, candles_table, CANDLES_1M, day, candles)
    load_partition(client, instruments_table, INSTRUMENTS, day, [instrument_row(i, day) for i in listed])
    log(f"upload: {len(candles)} candles, {len(listed)} instruments")
    print(
        f"{day} ok: {len(files)} files, {trades} trades, {len(candles)} candles, {len(listed)} instruments "
        f"in {time.monotonic() - started:.1f}s"
    )


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--date", help="the UTC date to process, YYYY-MM-DD (default: yesterday)")
    args = parser.parse_args(argv)
    try:
        yesterday = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
        day = parse_date(args.date) if args.date else yesterday
        config = Config()
    except BadInput as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        run(config, day)
    except Failed as error:
        print(f"error: {day} failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    except Exception:  # anything unexpected fails the date too, with its traceback
        traceback.print_exc()
        print(f"error: {day} failed", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
