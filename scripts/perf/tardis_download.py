"""The official Tardis.dev Python client (tardis-dev) downloading one date's trades files, N at a time: the
other side of scripts/perf-compare.sh's download table.

Usage: tardis_download.py --endpoint URL --api-key KEY --date YYYY-MM-DD --symbols 'ex:A,B;ex:C' --concurrency N
       --dir DIR

`download_datasets` fetches the days of one symbol concurrently but the symbols one after another, so a date of
several symbols is fetched here the way its documentation allows for that: one `download_datasets_async` per
(exchange, symbol), at most N at once (an asyncio semaphore), all in one event loop. The client saves each body
as it arrives; it neither decompresses nor parses it (the pipeline's client does both, to verify the file).
Prints one JSON object: files, gzip_bytes (their size on disk), concurrency, seconds (first request to last file
saved). Any failure propagates (exit status 1).
"""

import argparse
import asyncio
import datetime
import json
import os
import sys
import time

import tardis_dev


def pairs(text):
    """`ex:A,B;ex2:C` (PIPELINE_SYMBOLS' form) as [(exchange, symbol)]."""
    out = []
    for group in filter(None, (g.strip() for g in text.replace("\n", ";").split(";"))):
        exchange, symbols = group.split(":", 1)
        out += [(exchange.strip(), s.strip()) for s in symbols.split(",") if s.strip()]
    return out


async def download_all(args):
    limit = asyncio.Semaphore(args.concurrency)
    day = args.date
    next_day = day + datetime.timedelta(days=1)

    async def one(exchange, symbol):
        async with limit:
            await tardis_dev.download_datasets_async(
                exchange=exchange,
                data_types=["trades"],
                symbols=[symbol],
                from_date=day.isoformat(),
                to_date=next_day.isoformat(),
                api_key=args.api_key,
                download_dir=os.path.join(args.dir, exchange),
                endpoint=args.endpoint,
                skip_if_exists=False,
            )

    await asyncio.gather(*(one(exchange, symbol) for exchange, symbol in pairs(args.symbols)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True, help="the datasets API, e.g. http://127.0.0.1:9001/v1")
    parser.add_argument("--api-key", default="")
    parser.add_argument("--date", required=True, type=datetime.date.fromisoformat)
    parser.add_argument("--symbols", required=True)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()

    started = time.perf_counter()
    asyncio.run(download_all(args))
    seconds = time.perf_counter() - started
    files = [os.path.join(root, name) for root, _, names in os.walk(args.dir) for name in names]
    print(
        json.dumps(
            {
                "files": len(files),
                "gzip_bytes": sum(os.path.getsize(f) for f in files),
                "concurrency": args.concurrency,
                "seconds": seconds,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
