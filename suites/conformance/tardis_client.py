"""The official Tardis.dev Python client (tardis-dev >= 5) against the mock Tardis, unchanged.

Usage: tardis_client.py PLAN_JSON, where the plan names a scenario, the mock's `/v1` endpoint, the API key and
the expectations of that scenario (suites/tests/conformance/python_tardis.rs writes it). Each scenario calls
the client the way its documentation says, asserts what real Tardis would answer, and prints one JSON line
with what it saw. Any mismatch exits with status 1 and a message naming the call; the Rust test then compares
the saved files with the generator's bytes and reads the mock's request log.
"""

import json
import os
import sys
import urllib.error

import tardis_dev

from scenario import Mismatch, expect_equal, main


def download(plan):
    """download_datasets saves every requested file under the client's own file names."""
    for request in plan["downloads"]:
        tardis_dev.download_datasets(
            exchange=request["exchange"],
            data_types=request.get("data_types", ["trades"]),
            symbols=request["symbols"],
            from_date=request["from_date"],
            to_date=request["to_date"],
            api_key=request["api_key"],
            download_dir=plan["download_dir"],
            endpoint=plan["endpoint"],
        )
    names = sorted(os.listdir(plan["download_dir"]))
    expect_equal("files saved by download_datasets", names, sorted(plan["expect_files"]))
    sizes = {name: os.path.getsize(os.path.join(plan["download_dir"], name)) for name in names}
    empty = [name for name, size in sizes.items() if size == 0]
    expect_equal("empty files", empty, [])
    return {"files": sizes}


def instrument_view(instrument, keys):
    return {key: instrument.get(key) for key in keys}


def metadata(plan):
    """get_exchange_details and get_instrument_info (list, one symbol, several exchanges) decode what the mock says."""
    endpoint, key = plan["endpoint"], plan["api_key"]
    seen = {}
    for expected in plan["exchanges"]:
        exchange = expected["id"]
        details = tardis_dev.get_exchange_details(exchange, endpoint=endpoint)
        expect_equal(f"{exchange}: id", details["id"], exchange)
        expect_equal(f"{exchange}: name", details["name"], expected["name"])
        expect_equal(f"{exchange}: enabled", details["enabled"], True)
        datasets = details["datasets"]
        expect_equal(f"{exchange}: datasets.exportedUntil", datasets["exportedUntil"], expected["exported_until"])
        # Real Tardis also lists grouped symbols (PERPETUALS, SPOT, ...) among the dataset symbols.
        listed = [symbol["id"] for symbol in datasets["symbols"]]
        expect_equal(
            f"{exchange}: datasets.symbols[].id without the grouped ones",
            [symbol for symbol in listed if symbol not in plan["grouped_symbols"]],
            expected["dataset_symbols"],
        )
        with_trades = all("trades" in symbol["dataTypes"] for symbol in datasets["symbols"])
        expect_equal(f"{exchange}: every dataset symbol has trades", with_trades, True)
        native = [symbol["id"] for symbol in details["availableSymbols"]]
        expect_equal(f"{exchange}: availableSymbols[].id", native, expected["native_symbols"])

        instruments = tardis_dev.get_instrument_info(exchange, api_key=key, endpoint=endpoint)
        keys = sorted(expected["instruments"][0])
        views = [instrument_view(instrument, keys) for instrument in instruments]
        expect_equal(f"{exchange}: get_instrument_info", views, expected["instruments"])
        first = expected["instruments"][0]
        one = tardis_dev.get_instrument_info(exchange, symbol=first["id"], api_key=key, endpoint=endpoint)
        expect_equal(f"{exchange}: get_instrument_info(symbol={first['id']!r})", instrument_view(one, keys), first)
        seen[exchange] = {"instruments": len(instruments), "exported_until": datasets["exportedUntil"]}

    every = [instrument["id"] for expected in plan["exchanges"] for instrument in expected["instruments"]]
    exchanges = [expected["id"] for expected in plan["exchanges"]]
    together = tardis_dev.get_instrument_info(exchanges, api_key=key, endpoint=endpoint)
    expect_equal("get_instrument_info of several exchanges", [instrument["id"] for instrument in together], every)
    return {"exchanges": seen}


def filters(plan):
    """get_instrument_info(filter=...) and find_instrument_symbols return only the matching instruments."""
    endpoint, key = plan["endpoint"], plan["api_key"]
    seen = {}
    for case in plan["cases"]:
        instruments = tardis_dev.get_instrument_info(
            case["exchange"], filter=case["filter"], api_key=key, endpoint=endpoint
        )
        ids = [instrument["id"] for instrument in instruments]
        expect_equal(f"get_instrument_info({case['exchange']!r}, filter={case['filter']})", ids, case["expect_ids"])
        seen[json.dumps(case["filter"], sort_keys=True)] = len(instruments)
    find = plan["find"]
    found = tardis_dev.find_instrument_symbols(
        find["exchanges"], find["filter"], selector="datasetId", api_key=key, endpoint=endpoint
    )
    expect_equal("find_instrument_symbols", found, find["expect"])
    return {"filters": seen}


def call(plan, case):
    endpoint = plan["endpoint"]
    if case["call"] == "download":
        tardis_dev.download_datasets(
            exchange=case["exchange"],
            data_types=["trades"],
            symbols=[case["symbol"]],
            from_date=case["from_date"],
            to_date=case["to_date"],
            api_key=case["api_key"],
            download_dir=plan["download_dir"],
            endpoint=endpoint,
        )
    elif case["call"] == "exchange_details":
        tardis_dev.get_exchange_details(case["exchange"], endpoint=endpoint)
    elif case["call"] == "instrument_info":
        tardis_dev.get_instrument_info(
            case["exchange"], symbol=case.get("symbol"), api_key=case["api_key"], endpoint=endpoint
        )
    else:
        raise ValueError(f"unknown call {case['call']}")


def errors(plan):
    """Tardis' errors reach the caller as HTTPError with the status and the `{code, message}` body, at once."""
    seen = {}
    for case in plan["cases"]:
        name, status = case["name"], case["expect_status"]
        try:
            call(plan, case)
        except urllib.error.HTTPError as error:
            expect_equal(f"{name}: HTTP status", error.code, status)
            try:
                body = json.loads(error.msg)
            except ValueError:
                raise Mismatch(f"{name}: the error body is not JSON: {error.msg!r}") from None
            expect_equal(f"{name}: body.code", body.get("code"), status)
            message = body.get("message")
            expect_equal(f"{name}: body.message is text", isinstance(message, str) and message != "", True)
            seen[name] = {"status": error.code, "message": message}
            continue
        raise Mismatch(f"{name}: no HTTPError, expected {status}")
    leftovers = sorted(os.listdir(plan["download_dir"])) if os.path.isdir(plan["download_dir"]) else []
    expect_equal("files left behind by failed downloads", leftovers, [])
    return {"errors": seen}


SCENARIOS = {"download": download, "metadata": metadata, "filters": filters, "errors": errors}


if __name__ == "__main__":
    sys.exit(main(SCENARIOS))
