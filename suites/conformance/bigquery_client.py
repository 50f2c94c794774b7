"""Google's own BigQuery Python client (google-cloud-bigquery) against the fake BigQuery, unchanged.

Usage: bigquery_client.py PLAN_JSON, where the plan names a scenario, the fake's URL, the project and dataset,
and the data and expectations of that scenario (suites/tests/conformance/python_bigquery.rs writes it). Each
scenario makes the calls a real user would make, asserts what real BigQuery would answer, and prints one JSON
line with what it saw. Any mismatch exits with status 1 and a message naming the call; the Rust test then
checks the fake's side (stored rows, request log).
"""

import datetime
import io
import json
import sys

from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from scenario import Mismatch, expect, expect_equal, main


def expect_error(what, exception_type, status, reason, call):
    """`call()` must raise `exception_type` with HTTP `status` and `errors[0].reason == reason`."""
    try:
        call()
    except exception_type as error:
        expect_equal(f"{what}: HTTP status", error.code, status)
        reasons = [item.get("reason") for item in (error.errors or [])]
        expect_equal(f"{what}: error reasons", reasons[:1], [reason])
        return {"status": error.code, "reason": reason, "message": error.message}
    except exceptions.GoogleAPICallError as error:
        raise Mismatch(f"{what}: raised {type(error).__name__} ({error}), expected {exception_type.__name__}")
    raise Mismatch(f"{what}: no exception, expected {exception_type.__name__}")


def client(plan):
    return bigquery.Client(
        project=plan["project"],
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": plan["endpoint"]},
    )


CANDLE_SCHEMA = [
    bigquery.SchemaField("exchange", "STRING", mode="REQUIRED"),
    bigquery.SchemaField("symbol", "STRING", mode="REQUIRED"),
    bigquery.SchemaField("open_time", "TIMESTAMP", mode="REQUIRED"),
    bigquery.SchemaField("close", "FLOAT64"),
    bigquery.SchemaField("trade_count", "INT64"),
]


def candles_table(plan, name):
    table = bigquery.Table(f"{plan['project']}.{plan['dataset']}.{name}", schema=CANDLE_SCHEMA)
    table.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY, field="open_time")
    table.clustering_fields = ["exchange", "symbol"]
    return table


def comparable(row):
    """A row as the plan spells it: TIMESTAMP as RFC 3339 with `Z`, the other scalars as they are."""
    out = {}
    for key, value in dict(row).items():
        if isinstance(value, datetime.datetime):
            value = value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        out[key] = value
    return out


def sorted_rows(rows):
    return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True))


def table_id(plan, name):
    return f"{plan['project']}.{plan['dataset']}.{name}"


def load_json(bq, rows, destination, **config):
    job_config = bigquery.LoadJobConfig(write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE, **config)
    return bq.load_table_from_json(rows, destination, job_config=job_config)


def round_trip(plan):
    """Dataset and partitioned table creation, WRITE_TRUNCATE loads into partitions, and reading back."""
    bq = client(plan)
    dataset = bq.create_dataset(plan["dataset"], exists_ok=True)
    reference = (dataset.project, dataset.dataset_id)
    expect_equal("create_dataset: datasetReference", reference, (plan["project"], plan["dataset"]))
    # The second create gets 409 duplicate, which exists_ok turns into a get_dataset.
    again = bq.create_dataset(plan["dataset"], exists_ok=True)
    expect_equal("create_dataset(exists_ok) on an existing dataset", again.dataset_id, plan["dataset"])
    expect_equal("dataset location", again.location, "US")

    table = bq.create_table(candles_table(plan, plan["table"]))
    expect_equal(
        "create_table: schema in the legacy spelling",
        [(field.name, field.field_type, field.mode) for field in table.schema],
        [
            ("exchange", "STRING", "REQUIRED"),
            ("symbol", "STRING", "REQUIRED"),
            ("open_time", "TIMESTAMP", "REQUIRED"),
            ("close", "FLOAT", "NULLABLE"),
            ("trade_count", "INTEGER", "NULLABLE"),
        ],
    )
    partitioning = (table.time_partitioning.type_, table.time_partitioning.field)
    expect_equal("create_table: time partitioning", partitioning, ("DAY", "open_time"))
    expect_equal("create_table: clustering", table.clustering_fields, ["exchange", "symbol"])

    jobs = {}
    for name, rows, partition in [
        ("first", plan["first_day"], plan["first_partition"]),
        ("second", plan["second_day"], plan["second_partition"]),
        ("rerun", plan["rerun_first_day"], plan["first_partition"]),
    ]:
        destination = table_id(plan, f"{plan['table']}${partition}")
        job = load_json(bq, rows, destination)
        job.result()
        expect_equal(f"{name} load: state", job.state, "DONE")
        expect_equal(f"{name} load: output_rows", job.output_rows, len(rows))
        expect_equal(f"{name} load: destination", job.destination.table_id, f"{plan['table']}${partition}")
        expect_equal(f"{name} load: write disposition", job.write_disposition, "WRITE_TRUNCATE")
        jobs[name] = job.job_id

    newest = [job.job_id for job in bq.list_jobs(max_results=2)]
    expect_equal("list_jobs(max_results=2): the two newest jobs", newest, [jobs["rerun"], jobs["second"]])
    expect_equal("list_tables", [item.table_id for item in bq.list_tables(plan["dataset"])], [plan["table"]])
    expect_equal("list_datasets", [item.dataset_id for item in bq.list_datasets()], [plan["dataset"]])

    fetched = bq.get_job(jobs["rerun"])
    expect_equal("get_job: job type", fetched.job_type, "load")
    expect_equal("get_job: state", fetched.state, "DONE")
    expect_equal("get_job: output_rows", fetched.output_rows, len(plan["rerun_first_day"]))

    expected_all = plan["second_day"] + plan["rerun_first_day"]
    table = bq.get_table(table_id(plan, plan["table"]))
    expect_equal("get_table: num_rows after the rerun replaced its partition", table.num_rows, len(expected_all))
    expect("get_table: modified after created", table.modified >= table.created)

    rows = [comparable(row) for row in bq.list_rows(table, page_size=plan["page_size"])]
    expect_equal("list_rows: every row", sorted_rows(rows), sorted_rows(expected_all))

    partition = bq.list_rows(table_id(plan, f"{plan['table']}${plan['first_partition']}"))
    expect_equal(
        "list_rows of a partition decorator",
        sorted_rows([comparable(row) for row in partition]),
        sorted_rows(plan["rerun_first_day"]),
    )

    fields = [bigquery.SchemaField("symbol", "STRING"), bigquery.SchemaField("close", "FLOAT")]
    selected = bq.list_rows(table, selected_fields=fields)
    expect_equal(
        "list_rows with selected_fields",
        sorted_rows([dict(row) for row in selected]),
        sorted_rows([{"symbol": row["symbol"], "close": row["close"]} for row in expected_all]),
    )
    return {"jobs": jobs, "num_rows": table.num_rows}


def streaming(plan):
    """insert_rows_json: all or nothing with per-row errors, skip_invalid_rows, ignore_unknown_values, dedupe."""
    bq = client(plan)
    bq.create_dataset(plan["dataset"])
    table = bq.create_table(candles_table(plan, plan["table"]))
    good, extra, bad = plan["good"], plan["extra"], plan["bad_row"]

    expect_equal("insert_rows_json of valid rows", bq.insert_rows_json(table, good, row_ids=plan["row_ids"]), [])

    batch = [extra[0], bad, extra[1]]
    errors = bq.insert_rows_json(table, batch)
    by_index = {error["index"]: error["errors"] for error in errors}
    expect_equal("insert_rows_json with a bad row: indexes reported", sorted(by_index), [0, 1, 2])
    expect_equal("the bad row's reason", [e["reason"] for e in by_index[1]], ["invalid"])
    expect_equal("the bad row's location", by_index[1][0]["location"], "bogus")
    expect_equal("the bad row's message", by_index[1][0]["message"], "no such field: bogus.")
    expect_equal("the valid rows' reason", [by_index[0][0]["reason"], by_index[2][0]["reason"]], ["stopped", "stopped"])

    skipped = bq.insert_rows_json(table, batch, skip_invalid_rows=True)
    expect_equal("skip_invalid_rows: only the bad row", [error["index"] for error in skipped], [1])

    ignored = bq.insert_rows_json(table, [bad], ignore_unknown_values=True)
    expect_equal("ignore_unknown_values drops the unknown field", ignored, [])

    wrong_type = dict(extra[0], trade_count="many")
    errors = bq.insert_rows_json(table, [wrong_type])
    reported = [(e["index"], e["errors"][0]["reason"], e["errors"][0]["location"]) for e in errors]
    expect_equal("a value of the wrong type", reported, [(0, "invalid", "trade_count")])
    missing = {key: value for key, value in extra[0].items() if key != "symbol"}
    errors = bq.insert_rows_json(table, [missing])
    expect_equal("a missing REQUIRED field", [(e["index"], e["errors"][0]["reason"]) for e in errors], [(0, "invalid")])

    expect_equal("a repeated insertId", bq.insert_rows_json(table, good[:1], row_ids=plan["row_ids"][:1]), [])

    stored = good + [extra[0], extra[1]] + [{key: value for key, value in bad.items() if key != "bogus"}]
    table = bq.get_table(table)
    expect_equal("get_table: num_rows", table.num_rows, len(stored))
    expect("get_table: streaming buffer", table.streaming_buffer is not None, "no streamingBuffer after insertAll")
    expect_equal("get_table: streaming buffer rows", table.streaming_buffer.estimated_rows, len(stored))
    rows = [comparable(row) for row in bq.list_rows(table)]
    expect_equal("list_rows after streaming", sorted_rows(rows), sorted_rows(stored))
    return {"stored": len(stored)}


def errors(plan):
    """NotFound, Conflict and BadRequest where real BigQuery raises them, and failed jobs raising from result()."""
    bq = client(plan)
    bq.create_dataset(plan["dataset"])
    table = bq.create_table(candles_table(plan, plan["table"]))
    missing = table_id(plan, "missing")

    def partition_on_a_string():
        bad = bigquery.Table(table_id(plan, "bad_partitioning"), schema=CANDLE_SCHEMA)
        bad.time_partitioning = bigquery.TimePartitioning(field="symbol")
        bq.create_table(bad)

    not_found, conflict, bad_request = exceptions.NotFound, exceptions.Conflict, exceptions.BadRequest
    cases = [
        ("get_dataset", not_found, 404, "notFound", lambda: bq.get_dataset("missing")),
        ("get_table", not_found, 404, "notFound", lambda: bq.get_table(missing)),
        ("list_rows", not_found, 404, "notFound", lambda: list(bq.list_rows(missing))),
        ("insert_rows_json", not_found, 404, "notFound", lambda: bq.insert_rows_json(missing, plan["rows"])),
        ("delete_table", not_found, 404, "notFound", lambda: bq.delete_table(missing)),
        ("get_job", not_found, 404, "notFound", lambda: bq.get_job("no_such_job")),
        ("create_dataset", conflict, 409, "duplicate", lambda: bq.create_dataset(plan["dataset"])),
        ("create_table", conflict, 409, "duplicate", lambda: bq.create_table(candles_table(plan, plan["table"]))),
        ("bad_partitioning", bad_request, 400, "invalid", partition_on_a_string),
        ("delete_dataset", bad_request, 400, "resourceInUse", lambda: bq.delete_dataset(plan["dataset"])),
    ]
    seen = {name: expect_error(name, kind, status, reason, call) for name, kind, status, reason, call in cases}
    bq.delete_table(missing, not_found_ok=True)

    destination = table_id(plan, f"{plan['table']}${plan['partition']}")
    truncate = bigquery.LoadJobConfig(write_disposition="WRITE_TRUNCATE")
    bq.load_table_from_json(plan["rows"], destination, job_id=plan["job_id"], job_config=truncate).result()
    seen["job_id_reused"] = expect_error(
        "a load with a job id already used",
        conflict,
        409,
        "duplicate",
        lambda: bq.load_table_from_json(plan["rows"], destination, job_id=plan["job_id"]),
    )

    job = load_json(bq, plan["rows_outside_partition"], destination)
    seen["rows_outside_partition"] = expect_error("rows outside the partition", bad_request, 400, "invalid", job.result)
    expect_equal("the failed job's error_result reason", job.error_result["reason"], "invalid")
    expect("the failed job's message", "partition" in job.error_result["message"], job.error_result["message"])

    never = bigquery.LoadJobConfig(create_disposition="CREATE_NEVER", write_disposition="WRITE_APPEND")
    job = bq.load_table_from_json(plan["rows"], table_id(plan, "never_created"), job_config=never)
    seen["create_never"] = expect_error("CREATE_NEVER into a missing table", not_found, 404, "notFound", job.result)

    table = bq.get_table(table)
    expect_equal("num_rows after the failed loads", table.num_rows, len(plan["rows"]))
    return {"errors": seen}


def resumable(plan):
    """load_table_from_file of more than 5 MB, which the client sends as a resumable upload."""
    bq = client(plan)
    bq.create_dataset(plan["dataset"])
    bq.create_table(candles_table(plan, plan["table"]))
    day = datetime.datetime.strptime(plan["partition"], "%Y%m%d").replace(tzinfo=datetime.timezone.utc)
    lines = []
    for index in range(plan["rows"]):
        at = day + datetime.timedelta(minutes=index % 1440)
        row = {
            "exchange": "binance-futures",
            "symbol": f"S{index % 500:04d}USDT",
            "open_time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "close": index * 0.25,
            "trade_count": index,
        }
        lines.append(json.dumps(row, separators=(",", ":")))
    data = ("\n".join(lines) + "\n").encode()
    expect("the file is over the 5 MB multipart limit", len(data) > 5 * 1024 * 1024, f"only {len(data)} bytes")
    job_config = bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
        write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
        schema=CANDLE_SCHEMA,
    )
    destination = table_id(plan, f"{plan['table']}${plan['partition']}")
    job = bq.load_table_from_file(io.BytesIO(data), destination, job_config=job_config)
    job.result()
    expect_equal("resumable load: state", job.state, "DONE")
    expect_equal("resumable load: output_rows", job.output_rows, plan["rows"])
    expect_equal("resumable load: input_file_bytes", job.input_file_bytes, len(data))
    table = bq.get_table(table_id(plan, plan["table"]))
    expect_equal("get_table: num_rows", table.num_rows, plan["rows"])
    return {"bytes": len(data), "job_id": job.job_id}


def jobs(plan):
    """Jobs that report RUNNING are polled with jobs.get until DONE; failed jobs raise from result()."""
    bq = client(plan)
    bq.create_dataset(plan["dataset"])
    bq.create_table(candles_table(plan, plan["table"]))
    destination = table_id(plan, f"{plan['table']}${plan['partition']}")
    seen = {}

    job = load_json(bq, plan["rows"], destination)
    expect_equal("a job inserted while RUNNING", job.state, "RUNNING")
    seen["backend_error"] = expect_error(
        "a job that ends in backendError", exceptions.InternalServerError, 500, "backendError", job.result
    )

    job = load_json(bq, plan["rows"], destination)
    job.result()
    expect_equal("a polled job: state", job.state, "DONE")
    expect_equal("a polled job: output_rows", job.output_rows, len(plan["rows"]))
    expect("a polled job: ended", job.ended is not None and job.started is not None and job.created is not None)
    seen["done"] = job.job_id
    table = bq.get_table(table_id(plan, plan["table"]))
    expect_equal("num_rows after the polled job", table.num_rows, len(plan["rows"]))
    return seen


def csv_loads(plan):
    """load_table_from_file with CSV: a header skipped with an explicit schema into a partition, autodetect, a
    custom delimiter and null marker; a bad cell raises BadRequest from result() naming the row and the field."""
    bq = client(plan)
    bq.create_dataset(plan["dataset"])
    bq.create_table(candles_table(plan, plan["table"]))
    header = "exchange,symbol,open_time,close,trade_count\n"
    body = "".join(
        f"binance-futures,{row['symbol']},{row['open_time']},{row['close']},{row['trade_count']}\n" for row in plan["rows"]
    )
    explicit = bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.CSV,
        skip_leading_rows=1,
        schema=CANDLE_SCHEMA,
        write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
    )
    destination = table_id(plan, f"{plan['table']}${plan['partition']}")
    job = bq.load_table_from_file(io.BytesIO((header + body).encode()), destination, job_config=explicit)
    job.result()
    expect_equal("CSV load: output_rows", job.output_rows, len(plan["rows"]))
    landed = sorted_rows([comparable(row) for row in bq.list_rows(table_id(plan, plan["table"]))])
    expect_equal("CSV load: rows read back", landed, sorted_rows(plan["rows"]))

    detected = bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.CSV, autodetect=True)
    job = bq.load_table_from_file(io.BytesIO(b"day,n,ok\n2024-06-03,1,true\n2024-06-04,2,false\n"), table_id(plan, "detected"), job_config=detected)
    job.result()
    types = [(field.name, field.field_type) for field in bq.get_table(table_id(plan, "detected")).schema]
    expect_equal("autodetect: schema", types, [("day", "DATE"), ("n", "INTEGER"), ("ok", "BOOLEAN")])

    piped = bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.CSV,
        field_delimiter="|",
        null_marker="NULL",
        schema=[bigquery.SchemaField("symbol", "STRING"), bigquery.SchemaField("close", "FLOAT64")],
    )
    job = bq.load_table_from_file(io.BytesIO(b"BTCUSDT|1.5\nETHUSDT|NULL\n"), table_id(plan, "piped"), job_config=piped)
    job.result()
    rows = sorted_rows([dict(row) for row in bq.list_rows(table_id(plan, "piped"))])
    expect_equal("delimiter and null marker", rows, [{"symbol": "BTCUSDT", "close": 1.5}, {"symbol": "ETHUSDT", "close": None}])

    bad = bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.CSV,
        skip_leading_rows=1,
        schema=[bigquery.SchemaField("symbol", "STRING"), bigquery.SchemaField("trades", "INT64")],
    )
    job = bq.load_table_from_file(io.BytesIO(b"symbol,trades\nBTCUSDT,12\nETHUSDT,many\n"), table_id(plan, "bad"), job_config=bad)
    seen = expect_error("a bad CSV cell", exceptions.BadRequest, 400, "invalid", job.result)
    details = " ".join(item.get("message", "") for item in (job.errors or []))
    expect("the error names the row and the field", "(line 3)" in details and "field trades" in details, details)
    return {"bad": seen, "details": details}


def copies(plan):
    """copy_table: a table to a new one (WRITE_EMPTY, the default), a partition into a partition with
    WRITE_TRUNCATE, a second copy into a non-empty table refused as Conflict from result()."""
    bq = client(plan)
    bq.create_dataset(plan["dataset"])
    bq.create_table(candles_table(plan, plan["table"]))
    load_json(bq, plan["rows"], table_id(plan, f"{plan['table']}${plan['partition']}")).result()
    job = bq.copy_table(table_id(plan, plan["table"]), table_id(plan, "copied"))
    job.result()
    expect_equal("copy: job type", job.job_type, "copy")
    copied = sorted_rows([comparable(row) for row in bq.list_rows(table_id(plan, "copied"))])
    expect_equal("copy: rows", copied, sorted_rows(plan["rows"]))
    partitioned = bq.get_table(table_id(plan, "copied")).time_partitioning
    expect_equal("copy: partitioning of the new table", partitioned.field, "open_time")

    config = bigquery.CopyJobConfig(write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE)
    partition = f"${plan['partition']}"
    bq.copy_table(table_id(plan, plan["table"] + partition), table_id(plan, "copied" + partition), job_config=config).result()
    expect_equal("partition copy with WRITE_TRUNCATE: num_rows", bq.get_table(table_id(plan, "copied")).num_rows, len(plan["rows"]))

    again = bq.copy_table(table_id(plan, plan["table"]), table_id(plan, "copied"))
    seen = expect_error("a copy into a non-empty table (WRITE_EMPTY)", exceptions.Conflict, 409, "duplicate", again.result)
    return {"conflict": seen}


def dataframes(plan):
    """load_table_from_dataframe with its defaults (Parquet, Snappy), and as CSV: with WRITE_TRUNCATE and no schema the client
    derives an all-NULLABLE schema from the dtypes, which a table with REQUIRED columns refuses as real BigQuery
    does; with the table's schema it lands in the partition; into a new table the frame's dtypes make the schema."""
    import pandas

    bq = client(plan)
    bq.create_dataset(plan["dataset"])
    bq.create_table(candles_table(plan, plan["table"]))
    frame = pandas.DataFrame(plan["rows"])
    frame["open_time"] = pandas.to_datetime(frame["open_time"], utc=True)
    destination = table_id(plan, f"{plan['table']}${plan['partition']}")
    config = bigquery.LoadJobConfig(write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE)
    job = bq.load_table_from_dataframe(frame, destination, job_config=config)
    relaxed = expect_error("a frame's NULLABLE schema against REQUIRED columns", exceptions.BadRequest, 400, "invalid", job.result)
    expect("the refusal names the column", "Field exchange has changed mode from REQUIRED to NULLABLE" in relaxed["message"], relaxed["message"])
    config = bigquery.LoadJobConfig(write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE, schema=CANDLE_SCHEMA)
    job = bq.load_table_from_dataframe(frame, destination, job_config=config)
    job.result()
    expect_equal("dataframe load: source format", job.source_format, "PARQUET")
    expect_equal("dataframe load: output_rows", job.output_rows, len(plan["rows"]))
    landed = sorted_rows([comparable(row) for row in bq.list_rows(table_id(plan, plan["table"]))])
    expect_equal("dataframe load: rows read back", landed, sorted_rows(plan["rows"]))

    # The same frame as CSV, which the client writes with pandas' to_csv when asked for it.
    config = bigquery.LoadJobConfig(
        write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE, schema=CANDLE_SCHEMA, source_format="CSV"
    )
    job = bq.load_table_from_dataframe(frame, destination, job_config=config)
    job.result()
    expect_equal("dataframe load as CSV: source format", job.source_format, "CSV")
    as_csv = sorted_rows([comparable(row) for row in bq.list_rows(table_id(plan, plan["table"]))])
    expect_equal("dataframe load as CSV: rows read back", as_csv, sorted_rows(plan["rows"]))

    fresh = pandas.DataFrame({"symbol": ["BTCUSDT", "ETHUSDT"], "close": [1.5, None], "trades": [3, 4]})
    bq.load_table_from_dataframe(fresh, table_id(plan, "fresh")).result()
    types = {field.name: field.field_type for field in bq.get_table(table_id(plan, "fresh")).schema}
    expect_equal("a new table from a frame: types", types, {"symbol": "STRING", "close": "FLOAT", "trades": "INTEGER"})
    return {"rows": len(landed)}


def queries(plan):
    """SQL the way daily loaders use it: a COUNT(*) ... GROUP BY spot check through query().result() and
    query_and_wait(), named and array parameters, paging, to_dataframe(), delete-then-insert and MERGE from a
    staging table with num_dml_affected_rows, INFORMATION_SCHEMA, a destination table, and invalidQuery for a bad
    or unsupported statement."""
    bq = client(plan)
    bq.create_dataset(plan["dataset"])
    bq.create_table(candles_table(plan, plan["table"]))
    staging = bigquery.Table(table_id(plan, "staging"), schema=CANDLE_SCHEMA)
    bq.create_table(staging)
    load_json(bq, plan["rows"], table_id(plan, plan["table"]), schema=CANDLE_SCHEMA).result()
    target = f"`{plan['project']}.{plan['dataset']}.{plan['table']}`"

    counts = bq.query(f"SELECT DATE(open_time) AS day, COUNT(*) AS n FROM {target} GROUP BY day ORDER BY day").result()
    per_day = {row["day"].isoformat(): row["n"] for row in counts}
    expect_equal("COUNT(*) GROUP BY DATE(open_time)", per_day, plan["per_day"])

    day = bigquery.ScalarQueryParameter("day", "DATE", datetime.date.fromisoformat(plan["day"]))
    symbols = bigquery.ArrayQueryParameter("symbols", "STRING", plan["symbols"])
    config = bigquery.QueryJobConfig(query_parameters=[day, symbols])
    waited = bq.query_and_wait(
        f"SELECT symbol, MIN(open_time) AS first, MAX(close) AS high, SUM(trade_count) AS trades FROM {target} "
        "WHERE DATE(open_time) = @day AND symbol IN UNNEST(@symbols) GROUP BY symbol ORDER BY symbol",
        job_config=config,
    )
    spot = [comparable(row) for row in waited]
    expect_equal("query_and_wait with parameters", spot, plan["spot_check"])

    paged = bq.query(f"SELECT symbol, open_time FROM {target} ORDER BY open_time, symbol").result(page_size=2)
    pages = [len(list(page)) for page in paged.pages]
    expect_equal("pages of a query result", pages, plan["pages"])
    frame = bq.query(f"SELECT symbol, close, trade_count FROM {target} ORDER BY open_time, symbol").to_dataframe()
    expect_equal("to_dataframe: rows", len(frame), len(plan["rows"]))
    expect_equal("to_dataframe: dtypes", [str(t) for t in frame.dtypes], ["str", "float64", "Int64"])

    # Delete-then-insert for one day, through a staging table.
    load_json(bq, plan["reload"], table_id(plan, "staging"), schema=CANDLE_SCHEMA).result()
    deleted = bq.query(f"DELETE FROM {target} WHERE DATE(open_time) = @day", job_config=bigquery.QueryJobConfig(query_parameters=[day]))
    deleted.result()
    expect_equal("DELETE: num_dml_affected_rows", deleted.num_dml_affected_rows, plan["per_day"][plan["day"]])
    expect_equal("DELETE: statement_type", deleted.statement_type, "DELETE")
    inserted = bq.query(f"INSERT INTO {target} SELECT * FROM `{plan['project']}.{plan['dataset']}.staging`")
    inserted.result()
    expect_equal("INSERT ... SELECT: num_dml_affected_rows", inserted.num_dml_affected_rows, len(plan["reload"]))

    # MERGE from the staging table: matches update, the rest insert.
    load_json(bq, plan["merge"], table_id(plan, "staging"), schema=CANDLE_SCHEMA).result()
    merged = bq.query(
        f"MERGE {target} T USING {plan['dataset']}.staging S "
        "ON T.exchange = S.exchange AND T.symbol = S.symbol AND T.open_time = S.open_time "
        "WHEN MATCHED THEN UPDATE SET close = S.close, trade_count = S.trade_count "
        "WHEN NOT MATCHED THEN INSERT ROW"
    )
    merged.result()
    expect_equal("MERGE: num_dml_affected_rows", merged.num_dml_affected_rows, len(plan["merge"]))

    tables = bq.query_and_wait(
        f"SELECT table_name FROM `{plan['project']}.{plan['dataset']}.INFORMATION_SCHEMA.TABLES` ORDER BY table_name"
    )
    expect_equal("INFORMATION_SCHEMA.TABLES", [row["table_name"] for row in tables], ["candles", "staging"])
    partitions = bq.query_and_wait(
        f"SELECT partition_id, total_rows FROM {plan['dataset']}.INFORMATION_SCHEMA.PARTITIONS "
        f"WHERE table_name = '{plan['table']}' ORDER BY partition_id"
    )
    partition_rows = {row["partition_id"]: row["total_rows"] for row in partitions}

    summary = bigquery.QueryJobConfig(
        destination=table_id(plan, "daily_summary"), write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE
    )
    bq.query(f"SELECT symbol, COUNT(*) AS n FROM {target} GROUP BY symbol", job_config=summary).result()
    summary_rows = sorted((row["symbol"], row["n"]) for row in bq.list_rows(table_id(plan, "daily_summary")))

    bad = expect_error("a misspelt column", exceptions.BadRequest, 400, "invalidQuery", lambda: bq.query(f"SELECT clsoe FROM {target}").result())
    expect("the error names the column", "Unrecognized name: clsoe" in bad["message"], bad["message"])
    window = expect_error(
        "a window function", exceptions.BadRequest, 400, "invalidQuery",
        lambda: bq.query_and_wait(f"SELECT ROW_NUMBER() OVER (ORDER BY open_time) FROM {target}"),
    )
    expect("the error says it is unsupported", "not supported by the fake BigQuery" in window["message"], window["message"])
    missing = expect_error("a missing table", exceptions.NotFound, 404, "notFound", lambda: bq.query_and_wait(f"SELECT 1 FROM {plan['dataset']}.nope"))
    return {"partitions": partition_rows, "summary": summary_rows, "missing": missing["message"]}


SCENARIOS = {
    "copies": copies,
    "dataframes": dataframes,
    "csv_loads": csv_loads,
    "round_trip": round_trip,
    "streaming": streaming,
    "errors": errors,
    "resumable": resumable,
    "jobs": jobs,
    "queries": queries,
}


if __name__ == "__main__":
    sys.exit(main(SCENARIOS))
