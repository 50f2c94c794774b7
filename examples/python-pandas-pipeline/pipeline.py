"""An external daily market-data pipeline written the way most data teams write one: pandas and BigQuery SQL.

One UTC date: download the trades files of the configured symbols with `tardis-dev`, fetch the exchanges'
instruments, build 1-minute candles with pandas exactly per the table contract (README "Table layout"), load
each table's rows with `load_table_from_dataframe` (Parquet, the client's default) into a staging table, move
them into the date with SQL (a MERGE for candles, delete-then-insert for instruments), check with COUNT(*)
queries that the date holds what was built, and drop the staging tables. Rerunning a date replaces it.

It reads the same environment as the reference pipeline (TARDIS_*, BIGQUERY_*, PIPELINE_SYMBOLS,
PIPELINE_DATA_DIR) and therefore runs unchanged against the real services or under the harness:

    harness run --pipeline-cmd "python3 examples/python-pandas-pipeline/pipeline.py --date {date}"

Exit codes: 0 the date was loaded, 2 it failed (download, load, SQL or the final count), 3 bad input or
configuration. It keeps no run records (DATABASE_URL is not used).
"""

import argparse
import datetime as dt
import os
import sys
import time
import traceback
import warnings

import pandas
import tardis_dev
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

# google-cloud-bigquery announces that DataFrame loads will move to the pandas-gbq package; they work as they are.
warnings.filterwarnings("ignore", message="Loading pandas DataFrame into BigQuery will require pandas-gbq")

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


def read_trades(path):
    """A trades file as a frame in file order, with `row` numbering it; an empty gzip (a quiet day) is empty."""
    try:
        frame = pandas.read_csv(
            path,
            compression="gzip",
            dtype={"exchange": str, "symbol": str, "timestamp": "int64", "local_timestamp": "int64", "id": str,
                   "side": str, "price": "float64", "amount": "float64"},
        )
    except pandas.errors.EmptyDataError:
        return pandas.DataFrame(columns=TRADES_HEADER)
    except (ValueError, KeyError) as error:
        raise Failed(f"{path}: unreadable trades file: {error}") from error
    if list(frame.columns) != TRADES_HEADER:
        raise Failed(f"{path}: unexpected header {list(frame.columns)}")
    frame["row"] = range(len(frame))
    return frame


def candles_of_file(path, exchange, symbol, day):
    """The 1-minute candles of one trades file as a frame, with the rows outside the date counted.

    A trade belongs to the minute of its exchange `timestamp` (files are split by arrival time, so a file opens
    with late trades of the day before: counted, never bucketed). Open is the trade with the smallest exchange
    time (the first in file order on ties), close the one with the largest (the last on ties); the sums follow
    file order; no candle for a minute without trades.
    """
    day_start = int(dt.datetime.combine(day, dt.time(), dt.timezone.utc).timestamp()) * 1_000_000
    trades = read_trades(path)
    offset = trades["timestamp"] - day_start
    before, after = int((offset < 0).sum()), int((offset >= DAY_US).sum())
    trades = trades[(offset >= 0) & (offset < DAY_US)].copy()
    if trades.empty:
        return pandas.DataFrame(columns=[field.name for field in CANDLES_1M["schema"]]), before, after
    trades["minute"] = (trades["timestamp"] - day_start) // MINUTE_US
    trades["notional"] = trades["price"] * trades["amount"]
    trades["buy"] = trades["amount"].where(trades["side"] == "buy", 0.0)
    trades["sell"] = trades["amount"].where(trades["side"] == "sell", 0.0)
    # Exchange-time order, file order on ties (a stable sort keeps it).
    ordered = trades.sort_values(["minute", "timestamp", "row"], kind="stable")
    by_minute = ordered.groupby("minute", sort=True)
    sums = trades.groupby("minute", sort=True)
    candles = pandas.DataFrame(
        {
            "open": by_minute["price"].first(),
            "high": sums["price"].max(),
            "low": sums["price"].min(),
            "close": by_minute["price"].last(),
            "volume": sums["amount"].sum(),
            "quote_volume": sums["notional"].sum(),
            "trade_count": sums["price"].size().astype("int64"),
            "buy_volume": sums["buy"].sum(),
            "sell_volume": sums["sell"].sum(),
        }
    )
    candles["vwap"] = candles["quote_volume"] / candles["volume"]
    candles = candles.reset_index()
    candles["open_time"] = pandas.to_datetime(day_start + candles["minute"] * MINUTE_US, unit="us", utc=True)
    candles["exchange"], candles["symbol"] = exchange, symbol
    return candles[[field.name for field in CANDLES_1M["schema"]]], before, after


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
        if found.get(field.name) != field.field_type:
            raise Failed(f"{name}: column {field.name} is {found.get(field.name, 'missing')}, expected {field.field_type}")
    return name


def stage(client, name, table, day, frame):
    """Loads `frame` into a fresh staging table beside the target (Parquet, the client's default for frames)."""
    staging = f"{name}_staging_{day:%Y%m%d}"
    job_config = bigquery.LoadJobConfig(
        schema=table["schema"],
        write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
    )
    try:
        job = client.load_table_from_dataframe(frame, staging, job_config=job_config)
        job.result()
    except Exception as error:
        raise Failed(f"staging load into {staging} failed: {error}") from error
    if job.output_rows != len(frame):
        raise Failed(f"staging load into {staging} wrote {job.output_rows} rows of {len(frame)}")
    return staging


def sql(client, statement, day):
    """Runs one statement with `@day` bound; its job (for the DML counts)."""
    config = bigquery.QueryJobConfig(query_parameters=[bigquery.ScalarQueryParameter("day", "DATE", day)])
    try:
        job = client.query(statement, job_config=config)
        job.result()
    except Exception as error:
        raise Failed(f"query failed: {error}\n{statement}") from error
    return job


def merge_candles(client, name, staging, day):
    """MERGE the staged candles into the date: update the minutes that exist, insert the new ones, delete the
    date's minutes the rerun no longer has."""
    columns = [field.name for field in CANDLES_1M["schema"]]
    updates = ", ".join(f"{column} = S.{column}" for column in columns if column not in ("exchange", "symbol", "open_time"))
    job = sql(
        client,
        f"MERGE `{name}` T USING `{staging}` S "
        "ON T.exchange = S.exchange AND T.symbol = S.symbol AND T.open_time = S.open_time "
        f"WHEN MATCHED THEN UPDATE SET {updates} "
        f"WHEN NOT MATCHED THEN INSERT ({', '.join(columns)}) VALUES ({', '.join('S.' + c for c in columns)}) "
        "WHEN NOT MATCHED BY SOURCE AND DATE(T.open_time) = @day THEN DELETE",
        day,
    )
    return job.num_dml_affected_rows


def replace_instruments(client, name, staging, day):
    """Delete-then-insert: the date's snapshot replaced by the staged one."""
    deleted = sql(client, f"DELETE FROM `{name}` WHERE date = @day", day).num_dml_affected_rows
    inserted = sql(client, f"INSERT INTO `{name}` SELECT * FROM `{staging}`", day).num_dml_affected_rows
    return deleted, inserted


def count(client, statement, day):
    config = bigquery.QueryJobConfig(query_parameters=[bigquery.ScalarQueryParameter("day", "DATE", day)])
    rows = list(client.query_and_wait(statement, job_config=config))
    return rows[0]["n"]


def instruments_frame(listed, day):
    frame = pandas.DataFrame([instrument_row(instrument, day) for instrument in listed], columns=[f.name for f in INSTRUMENTS["schema"]])
    frame["date"] = day
    for column in ("available_since", "available_to"):
        frame[column] = pandas.to_datetime(frame[column], utc=True)
    frame["contract_multiplier"] = frame["contract_multiplier"].astype("float64")
    return frame


# --- the date -------------------------------------------------------------------------------------------------


def run(config, day):
    started = time.monotonic()
    files = download(config, day)
    log(f"download: {len(files)} files")
    listed = instruments(config)
    log(f"instruments: {len(listed)}")

    frames, before, after = [], 0, 0
    for (exchange, symbol), path in sorted(files.items()):
        frame, file_before, file_after = candles_of_file(path, exchange, symbol, day)
        frames.append(frame)
        before, after = before + file_before, after + file_after
    candles = pandas.concat(frames, ignore_index=True) if frames else pandas.DataFrame()
    candles["trade_count"] = candles["trade_count"].astype("int64")
    trades = int(candles["trade_count"].sum())
    log(f"candles: {len(candles)} from {trades} trades ({before} rows before the day, {after} after)")

    client = bigquery_client(config)
    client.create_dataset(bigquery.Dataset(f"{config.project}.{config.dataset}"), exists_ok=True)
    candles_table = ensure_table(client, config, CANDLES_1M)
    instruments_table = ensure_table(client, config, INSTRUMENTS)
    staged = []
    try:
        staged.append(stage(client, candles_table, CANDLES_1M, day, candles))
        merged = merge_candles(client, candles_table, staged[-1], day)
        staged.append(stage(client, instruments_table, INSTRUMENTS, day, instruments_frame(listed, day)))
        deleted, inserted = replace_instruments(client, instruments_table, staged[-1], day)
    finally:
        for staging in staged:
            client.delete_table(staging, not_found_ok=True)
    log(f"sql: MERGE changed {merged} candles; instruments {deleted} deleted, {inserted} inserted")

    # The spot check every loader ends with: the date holds exactly what was built.
    landed = count(client, f"SELECT COUNT(*) AS n FROM `{candles_table}` WHERE DATE(open_time) = @day", day)
    snapshot = count(client, f"SELECT COUNT(*) AS n FROM `{instruments_table}` WHERE date = @day", day)
    if (landed, snapshot) != (len(candles), len(listed)):
        raise Failed(f"{day} holds {landed} candles and {snapshot} instruments, built {len(candles)} and {len(listed)}")
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
