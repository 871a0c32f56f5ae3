"""`leadgenius-etl export`: the bulk list (SPEC A4), page by page, into a CSV / Parquet / JSONL file.

One loop: read a page (5,000 leads, retried by the client on 429/5xx/dropped connections), shape it
into the stable columns, append it to the sink. Memory is one page plus the Parquet row-group buffer,
whatever the size of the export. The file appears at `out` only when the last page is written.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx

from etl.config import Settings
from etl.errors import UsageError, unwrapped_errors
from etl.extract.leadgenius import resolve_company_id, with_bulk_credentials
from etl.load.api import LeadGeniusApi
from etl.log import get_logger
from etl.report import Progress
from etl.sinks import export_columns, format_for, open_sink, page_frame


async def run_export(
    settings: Settings,
    *,
    company_id: str | None,
    client_id: str | None,
    table: Literal["enrich", "source"],
    fields: Sequence[str] | None,
    out: Path,
    transport: httpx.AsyncBaseTransport | None = None,
    progress: Progress | None = None,
    page_size: int = 5000,
    rate: float | None = None,
) -> dict[str, Any]:
    """Export one company (or one client of it) to `out`; return the export report."""
    started = time.perf_counter()
    notify = progress or (lambda _e, _n: None)
    log = get_logger(stage="export")
    # Usage errors first: nothing touches the network or the disk before the command line is sane.
    fmt = format_for(out)
    columns = export_columns(fields)
    if table not in ("enrich", "source"):
        raise UsageError(f"--table must be enrich or source, not {table!r}")
    if not 1 <= page_size <= 5000:
        raise UsageError("page size must be between 1 and 5000 (SPEC A4)")
    settings = with_bulk_credentials(settings)
    if not settings.api_key:
        raise UsageError(
            "export reads the bulk list, which needs an API key: set LEADGENIUS_API_KEY and LEADGENIUS_USER_ID "
            "(or add api_key and user_id to the auth file)"
        )
    server_fields = [c for c in columns if c != "id"] if fields else None
    pages = 0
    async with LeadGeniusApi(settings, transport=transport, concurrency=1, rate_per_min=rate) as api:
        company = await resolve_company_id(api, company_id)
        with open_sink(out, columns) as sink:
            # The next page is fetched while this one is converted and written in a worker thread:
            # an export is bound by page latency, not by our CPU.
            send, receive = anyio.create_memory_object_stream[list[dict[str, Any]]](max_buffer_size=1)

            async def fetch() -> None:
                async with send:
                    async for page in api.iter_bulk(
                        company, client_id=client_id, table=table, fields=server_fields, page_size=page_size
                    ):
                        await send.send(page)

            def write(page: list[dict[str, Any]]) -> int:
                frame = page_frame(page, columns)
                sink.write(frame)
                return frame.height

            with unwrapped_errors():
                async with anyio.create_task_group() as tg:
                    tg.start_soon(fetch)
                    async with receive:
                        async for page in receive:
                            rows = await anyio.to_thread.run_sync(write, page)
                            pages += 1
                            notify("exported", rows)
                            log.debug("page written", page=pages, rows=rows, total=sink.rows)
                            del page
        requests = api.stats.to_dict()
    duration = time.perf_counter() - started
    report: dict[str, Any] = {
        "command": "export",
        "out": str(out),
        "format": fmt,
        "company_id": company,
        "client_id": client_id or "ALL",
        "table": table,
        "columns": columns,
        "pages": pages,
        "rows": sink.rows,
        "bytes": sink.bytes,
        "requests": requests,
        "duration_s": round(duration, 3),
        "rows_per_s": round(sink.rows / duration, 1) if duration > 0 else None,
    }
    if sink.unparsed_timestamps:
        report["unparsed_timestamps"] = sink.unparsed_timestamps
    log.info("export finished", rows=sink.rows, pages=pages, out=str(out))
    return report


__all__ = ["run_export"]
