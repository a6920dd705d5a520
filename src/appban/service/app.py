"""The HTTP API and the dashboard. Each route checks its caller and calls one method of `Desk`.

appban serve [--db URL] [--host H] [--port P] [--workers N] [--open-reads]
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import shutil
import tempfile
import threading
import unicodedata
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pyarrow as pa
from fastapi import Depends, FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from appban.audited import Desk, arrow_bytes
from appban.engine.batch import TableInputError
from appban.engine.decide import DecisionInputError
from appban.engine.instants import InstantError
from appban.engine.timeline import Timeline
from appban.knowledge.install import bundle_of
from appban.rulebook.views import instrument_summaries, item_view
from appban.screen.jobs import ScreenOptionError, check_options, describe_screens, option_parameters
from appban.service.audit_view import overview
from appban.service.auth import Caller, read_caller, reader, writer
from appban.service.bodies import JSONLines, lines_named, read_arrow_stream, rows_as_json_lines
from appban.service.findings import FindingsQuery, FindingsView, FindingsViews, Order, csv_chunks, json_chunks
from appban.service.limits import BodyLimit, Turns
from appban.service.reload import install_sighup, load_knowledge, reload_routes, remove_sighup
from appban.service.schemas import (
    BATCH_ARROW,
    BATCH_LINES,
    AppOut,
    AuditRecordOut,
    DecideRequest,
    DecisionOut,
    ErrorOut,
    FindingsPage,
    Health,
    ReplayOut,
    RunOut,
    RunStarted,
    ScreenInfo,
)
from appban.service.settings import ServiceSettings
from appban.store import AuditStore, DecisionRecord, RunRecord

STATIC = Path(__file__).with_name("static")
# The files `serve --demo` screens at start: package data, so an installed wheel has them (not only a checkout).
DEMO_SAMPLES = Path(__file__).with_name("demo")
ARROW_STREAM = "application/vnd.apache.arrow.stream"
NDJSON = "application/x-ndjson"
JSON_LINES = (NDJSON, "application/jsonl", "application/json-lines")
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut} for status in (400, 401, 403, 404, 408, 413, 415, 422, 429, 431)
}
MAX_OFFSET = 2**53 - 1  # pages further than this are not asked for; beyond 64 bits the store could not say
_BLOCK = 1 << 20  # JSON lines are decoded a block of about this many bytes at a time, as they arrive


_DECIDE_REQUEST = "#/components/schemas/DecideRequest"
DOCS_ASSETS = "/static-offline-docs"  # where fastapi-offline's copies of Swagger UI and ReDoc are served
# The docs pages load only from this server: ReDoc's sidebar would otherwise fetch its vendor's logo from a CDN.
_DOCS_POLICY = "default-src 'self' 'unsafe-inline' blob: data:; img-src 'self' data:; connect-src 'self'"


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """The application, for uvicorn (`create_app` is its factory) and for tests."""
    settings = settings or ServiceSettings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        book = load_knowledge(settings)  # and again on SIGHUP or POST /v1/admin/reload (appban.service.reload)
        store = AuditStore(settings.db_url)
        app.state.desk = Desk(store, book, settings.screen_workers)
        install_sighup(app)
        app.state.store = store
        app.state.findings_views = FindingsViews(store)
        app.state.batch_turns = Turns(settings.batch_workers, settings.batch_queue)
        if settings.demo and not store.runs(limit=1):
            app.state.desk.screen_samples(DEMO_SAMPLES)
        # The rulebook, the compiled law and the imports are long-lived: move them out of the collector's
        # sight, so that its full collections stay short and do not show up as request latency.
        gc.collect()
        gc.freeze()
        yield
        remove_sighup()
        app.state.desk.close()
        store.close()

    # Swagger UI (/docs) and ReDoc (/redoc) with their scripts and styles served from the fastapi-offline
    # package, not a CDN: the pages work on a machine without outside access. The pages themselves are
    # made here (`_docs_pages`), to send them with a policy that keeps them on this server.
    app = FastAPIOffline(
        docs_url=None,
        redoc_url=None,
        static_url=DOCS_ASSETS,
        title="appban",
        version=package_version("appban"),
        summary="Government orders against specific mobile apps, as time-aware, cited rules; with an audit trail.",
        lifespan=lifespan,
        responses=_ERRORS,
    )
    app.state.settings = settings
    app.add_middleware(BodyLimit, settings=settings)
    _errors(app)
    _routes(app)
    reload_routes(app)
    _docs_pages(app)
    _describe_undeclared_models(app, DecideRequest)
    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


async def desk(request: Request) -> Desk:
    found: Desk = request.app.state.desk
    return found


DeskDep = Annotated[Desk, Depends(desk)]
ReadCaller = Annotated[Caller, Depends(reader)]
WriteCaller = Annotated[Caller, Depends(writer)]


def _routes(app: FastAPI) -> None:
    @app.get("/healthz", response_model=Health, tags=["service"])
    def health(request: Request) -> Health:
        store: AuditStore = request.app.state.store
        version = request.app.state.desk.rulebook.version
        return Health(status="ok", rulebook_version=version, store=store.dialect, worker=os.getpid())

    @app.post(
        "/v1/decide",
        response_model=DecisionOut,
        tags=["decisions"],
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": _DECIDE_REQUEST}}}},
            "security": [{"HTTPBearer": []}],
        },
    )
    async def decide_one(request: Request) -> Response:
        """Is this transaction prohibited at this instant, and why; the answer is recorded.

        `at` may be `now`, or left out: the answer's `at` then states the instant decided, and the audit record
        keeps that instant, so that a replay decides it again rather than a later now."""
        # The busiest route declares no parameters: solving FastAPI's dependencies and body field took more
        # time than the decision. It does what they did: the caller's token, then the body's model.
        caller = read_caller(request)
        try:
            body = DecideRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
            raise RequestValidationError(errors) from None
        office: Desk = request.app.state.desk
        # On the event loop, not in a thread: the decision takes a fraction of a millisecond, and its record
        # shares one commit with those of the requests that arrived with it.
        decision_id, answer = await office.decide_answer(
            body.app, body.transaction, body.where, body.at, body.facts or {}, body.tz, caller.name
        )
        # The answer is already JSON (FastAPI would validate and serialise the model again).
        members = f'"decision_id":{json.dumps(decision_id)},'.encode()
        return Response(answer.template.fill_utf8(answer.values, members), media_type="application/json")

    @app.post(
        "/v1/decide/batch",
        tags=["decisions"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    NDJSON: {"schema": {"type": "string", "description": BATCH_LINES}},
                    ARROW_STREAM: {"schema": {"type": "string", "format": "binary", "description": BATCH_ARROW}},
                },
            }
        },
        responses={200: {"content": {NDJSON: {}, ARROW_STREAM: {}}, "description": "the rows with their decisions"}},
    )
    async def decide_batch(request: Request, office: DeskDep, caller: ReadCaller) -> Response:
        """Many decisions at once: JSON lines or an Arrow IPC stream in, the same format out.

        A server decides `batch_workers` batches at a time, off its event loop; further batches wait their
        turn (up to `batch_queue` of them, then 429). JSON lines may be a quarter of `max_batch_bytes`."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != ARROW_STREAM and kind not in JSON_LINES:
            raise HTTPException(415, f"send {NDJSON} or {ARROW_STREAM}, not {kind[:100] or 'no content type'!r}")
        settings: ServiceSettings = request.app.state.settings
        turns: Turns = request.app.state.batch_turns
        async with turns.turn():
            # The body is read in its turn: waiting batches hold a connection each, not their rows.
            try:
                async with asyncio.timeout(settings.batch_read_seconds):
                    if kind == ARROW_STREAM:
                        body = await _body(request)
                        table = await run_in_threadpool(read_arrow_stream, body, settings.max_batch_bytes)
                        lines = None
                    else:
                        table, lines = await _json_lines(request)
            except TimeoutError:
                raise HTTPException(408, f"the batch did not arrive within {settings.batch_read_seconds:g} s") from None
            batch_id, decided = await run_in_threadpool(
                _decided, office, table, lines, caller.name, settings.max_batch_questions
            )
            # The version the batch was decided under (its table says so), not the one in force now: a reload
            # may have swapped the rulebook while the batch was being decided.
            version = (decided.schema.metadata or {}).get(b"appban.rulebook_version", b"").decode()
            headers = {"X-Appban-Batch": batch_id, "X-Appban-Rulebook": version or office.rulebook.version}
            if kind == ARROW_STREAM:
                answer = await run_in_threadpool(arrow_bytes, decided, None)
                return Response(answer, media_type=ARROW_STREAM, headers=headers)
        # Encoded a block at a time as it is sent (in threads: Starlette iterates a plain iterator in one).
        return StreamingResponse(rows_as_json_lines(decided), media_type=NDJSON, headers=headers)

    @app.get("/v1/timeline", response_model=Timeline, tags=["decisions"])
    def get_timeline(
        office: DeskDep,
        caller: ReadCaller,
        app_name: Annotated[str, Query(alias="app", min_length=1, max_length=200)],
        where: Annotated[str, Query(min_length=2, max_length=10)] = "US",
        start: Annotated[str | None, Query(alias="from", max_length=64)] = None,
        end: Annotated[str | None, Query(alias="to", max_length=64)] = None,
        tz: Annotated[str | None, Query(max_length=64)] = None,
    ) -> Timeline:
        """Every instant at which the verdict of any category changes for an app, with the instruments.
        `from` and `to` take ISO 8601 instants or `now`; the answer's `from` and `to` state the instants used."""
        return office.timeline(app_name, where, start, end, tz)

    @app.get("/v1/apps", response_model=list[AppOut], tags=["rules"])
    def apps(office: DeskDep, caller: ReadCaller) -> list[AppOut]:
        subjects = office.rulebook.subjects.subjects
        return [AppOut(id=key, name=s.name, company=s.company, aliases=list(s.aliases)) for key, s in subjects.items()]

    @app.get("/v1/rules", tags=["rules"])
    def rules(office: DeskDep, caller: ReadCaller) -> dict[str, Any]:
        """Every instrument in the rulebook, oldest first."""
        book = office.rulebook  # one rulebook for the whole answer, whatever a reload swaps in meanwhile
        return {"rulebook_version": book.version, "bundle": bundle_of(book), "instruments": instrument_summaries(book)}

    @app.get("/v1/rules/{item_id}", tags=["rules"])
    def rule(item_id: str, office: DeskDep, caller: ReadCaller) -> dict[str, Any]:
        """One instrument, or one prohibition, exception or change, with its citation."""
        found = item_view(office.rulebook, item_id)
        if found is None:
            raise HTTPException(404, f"no instrument or item {item_id[:100]!r}")
        return found

    @app.get("/v1/screens", response_model=list[ScreenInfo], tags=["screens"])
    def screens(caller: ReadCaller) -> list[dict[str, Any]]:
        """Each screen's options and the file names it reads (for a file input's `accept`)."""
        return describe_screens()

    @app.post(
        "/v1/screens/{kind}",
        status_code=202,
        response_model=RunStarted,
        tags=["screens"],
        openapi_extra={"parameters": option_parameters()},
    )
    def screen(
        kind: str, request: Request, office: DeskDep, caller: WriteCaller, file: Annotated[UploadFile, File()]
    ) -> RunStarted:
        """Upload a file to screen (inventory, code, network or payments); the run goes on in the background.
        The screen's options are query parameters (e.g. `?role=cdn` for network, `?at=...&where=...&fleet=personal`
        for an inventory without dates), checked before the run is queued: a bad one is a 400 naming it.
        `at=now` is this instant: the answer's `options` and the run's record give the instant it stands for.
        `GET /v1/screens` lists each screen's options."""
        options = dict(request.query_params)
        check_options(kind, options)
        folder = Path(tempfile.mkdtemp(prefix="appban-upload-", dir=request.app.state.settings.upload_dir))
        upload = folder / "upload"
        with upload.open("wb") as handle:
            shutil.copyfileobj(file.file, handle, 1 << 20)
        try:
            run_id = office.start_screen(kind, upload, upload_name(file.filename), options, caller.name)
        except Exception:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        queued = office.run(run_id)  # its options as recorded: an `at` of now is written as the instant
        recorded = queued.options if queued is not None else options
        return RunStarted(id=run_id, status="queued", status_url=f"/v1/runs/{run_id}", options=recorded)

    @app.get("/v1/runs", response_model=list[RunOut], tags=["screens"])
    def runs(office: DeskDep, caller: ReadCaller, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[RunOut]:
        return [_run_out(office, run) for run in office.runs(limit)]

    @app.get("/v1/runs/{run_id}", response_model=RunOut, tags=["screens"])
    def run(
        run_id: str,
        office: DeskDep,
        caller: ReadCaller,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
        limit: Annotated[int, Query(ge=0, le=1000)] = 100,
    ) -> RunOut:
        """A run's status, progress and a page of its findings."""
        found = office.run(run_id)
        if found is None:
            raise HTTPException(404, f"no run {run_id[:100]!r}")
        return _run_out(office, found, offset, limit)

    @app.get("/v1/runs/{run_id}/findings", response_model=FindingsPage, tags=["screens"])
    def findings(
        request: Request,
        run_id: str,
        office: DeskDep,
        caller: ReadCaller,
        verdict: Annotated[str | None, Query(max_length=1000, description="verdicts, separated by commas")] = None,
        app_name: Annotated[
            str | None, Query(alias="app", max_length=1000, description="app ids or names, separated by commas")
        ] = None,
        q: Annotated[str | None, Query(max_length=200, description="text in any field, without case")] = None,
        sort: Annotated[str | None, Query(max_length=64, description="the field to order by")] = None,
        order: Annotated[Order, Query(description="asc or desc; findings without the field come last")] = "asc",
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
        limit: Annotated[int, Query(ge=0, le=1000)] = 100,
    ) -> FindingsPage:
        """A page of a run's findings, filtered and sorted over all of them (not only one page)."""
        found, views, view = _findings_view(request, office, run_id, verdict, app_name, q, sort, order)
        page = view.seqs[offset : offset + limit]
        following = offset + len(page)
        return FindingsPage(
            run_id=run_id,
            status=found.status,
            findings_total=view.total,
            matched=len(view.seqs),
            offset=offset,
            limit=limit,
            next_offset=following if limit and following < len(view.seqs) else None,
            columns=view.columns,
            sort=sort,
            order=order,
            findings=views.rows(run_id, page),
        )

    @app.get(
        "/v1/runs/{run_id}/findings/export",
        tags=["screens"],
        responses={200: {"content": {"text/csv": {}, "application/json": {}}, "description": "the findings"}},
    )
    def findings_export(
        request: Request,
        run_id: str,
        office: DeskDep,
        caller: ReadCaller,
        format: Annotated[Literal["csv", "json"], Query(description="csv or json (an array)")] = "csv",
        verdict: Annotated[str | None, Query(max_length=1000)] = None,
        app_name: Annotated[str | None, Query(alias="app", max_length=1000)] = None,
        q: Annotated[str | None, Query(max_length=200)] = None,
        sort: Annotated[str | None, Query(max_length=64)] = None,
        order: Annotated[Order, Query()] = "asc",
    ) -> StreamingResponse:
        """Every finding of a run that passes the filters, in order, as a CSV or JSON download (streamed)."""
        found, views, view = _findings_view(request, office, run_id, verdict, app_name, q, sort, order)
        rows = views.each(run_id, view)
        body = csv_chunks(rows, view.columns) if format == "csv" else json_chunks(rows)
        media = "text/csv; charset=utf-8" if format == "csv" else "application/json"
        name = f"appban-{found.kind}-{run_id[:8]}-findings.{format}"
        headers = {"Content-Disposition": f'attachment; filename="{name}"', "X-Appban-Findings": str(len(view.seqs))}
        return StreamingResponse(body, media_type=media, headers=headers)

    @app.get("/v1/audit", response_model=list[AuditRecordOut], tags=["audit"])
    def audit(
        office: DeskDep,
        caller: ReadCaller,
        start: Annotated[str | None, Query(alias="from", max_length=64)] = None,
        end: Annotated[str | None, Query(alias="to", max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> list[AuditRecordOut]:
        """Recorded decisions, newest first, asked in [from, to); each with the overview its kind shows."""
        return [_record_out(record) for record in office.audit(start, end, limit, offset)]

    @app.get("/v1/audit/{decision_id}/replay", response_model=ReplayOut, tags=["audit"])
    def audit_replay(decision_id: str, office: DeskDep, caller: ReadCaller) -> ReplayOut:
        """Decide a recorded question again under the rulebook version it was answered with."""
        done = office.replay(decision_id)
        return ReplayOut(
            id=decision_id,
            recorded_version=done.recorded_version,
            identical=done.identical,
            differences=done.differences,
            recorded=done.decision.result,
            replayed=done.replayed,
        )

    impact_turn = threading.Lock()  # one impact report at a time: each reads the whole store

    @app.get("/v1/audit/impact", tags=["audit"])
    def audit_impact(
        office: DeskDep,
        caller: ReadCaller,
        rules: Annotated[Literal["installed", "packaged"], Query(description="the knowledge B to decide under")],
        since: Annotated[str | None, Query(max_length=64, description="records asked (runs created) from")] = None,
        until: Annotated[str | None, Query(max_length=64, description="records asked (runs created) before")] = None,
        examples: Annotated[int, Query(ge=0, le=20)] = 3,
    ) -> dict[str, Any]:
        """Every recorded decision and finding decided again under B (the installed knowledge, or the packaged
        one); the answers that would change, grouped by app, category and change (`appban audit impact`).
        One report is worked out at a time (429 while another is); it reads the whole store."""
        from appban.engine.instants import parse_instant
        from appban.store.impact import impact, rules_from

        first = parse_instant(since, "UTC") if since else None
        last = parse_instant(until, "UTC") if until else None
        if not impact_turn.acquire(blocking=False):
            raise HTTPException(429, "another impact report is being worked out; try again when it is done")
        try:
            with rules_from(rules) as (book, label):
                report = impact(office.store, book, knowledge=label, since=first, until=last, examples=examples)
        finally:
            impact_turn.release()
        return report.to_json_dict()

    @app.get("/", include_in_schema=False)
    def dashboard() -> Response:
        index = STATIC / "index.html"
        if not index.is_file():
            return JSONResponse({"service": "appban", "api": "/docs", "openapi": "/openapi.json"})
        return FileResponse(index)


def _docs_pages(app: FastAPI) -> None:
    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )
        page.headers["Content-Security-Policy"] = _DOCS_POLICY
        return page

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = _DOCS_POLICY
        return page


def _describe_undeclared_models(app: FastAPI, *models: type[BaseModel]) -> None:
    """Add to the OpenAPI document the schemas of bodies that routes validate themselves."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()  # FastAPI keeps it as app.openapi_schema
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                schemas.setdefault(model.__name__, model.model_json_schema(ref_template="#/components/schemas/{model}"))
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


async def _body(request: Request) -> bytearray:
    """The body, gathered in one growing buffer (an Arrow stream is then read where it lies)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
    return body


async def _json_lines(request: Request) -> tuple[pa.Table, np.ndarray]:
    """JSON lines decoded as they arrive, a block of whole lines at a time, in a thread."""
    decoder = JSONLines()
    pending = bytearray()
    async for chunk in request.stream():
        pending += chunk
        if len(pending) >= _BLOCK:
            cut = pending.rfind(b"\n") + 1
            if cut:
                block = bytes(pending[:cut])
                del pending[:cut]
                await run_in_threadpool(decoder.feed, block)
    if pending:
        await run_in_threadpool(decoder.feed, bytes(pending))
    return await run_in_threadpool(decoder.table)


def _decided(
    office: Desk, table: pa.Table, lines: np.ndarray | None, caller: str, max_questions: int
) -> tuple[str, pa.Table]:
    try:
        return office.decide_batch(table, caller, max_questions=max_questions)
    except TableInputError as exc:
        raise lines_named(exc, lines) if lines is not None else exc from None


def upload_name(sent: str | None) -> str:
    """The name an upload is known by: the caller's file name without folders or control characters, and
    never one a folder could be confused with (".", "..")."""
    name = (sent or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()[-200:]
    return "upload" if name.strip(".") == "" else name


def _run_out(office: Desk, run: RunRecord, offset: int = 0, limit: int = 0) -> RunOut:
    total = office.store.count_findings(run.id)
    findings = office.store.findings(run.id, offset=offset, limit=limit) if limit else []
    following = offset + len(findings)
    page = {
        "findings_total": total,
        "findings": findings,
        "offset": offset,
        "next_offset": following if limit and following < total else None,
    }
    return RunOut.model_validate(run.to_json_dict() | page)


def _record_out(record: DecisionRecord) -> AuditRecordOut:
    values = record.to_json_dict()
    return AuditRecordOut.model_validate(values | {"overview": overview(values)})


def _findings_view(
    request: Request,
    office: Desk,
    run_id: str,
    verdict: str | None,
    app_name: str | None,
    q: str | None,
    sort: str | None,
    order: Order,
) -> tuple[RunRecord, FindingsViews, FindingsView]:
    query = FindingsQuery.parse(verdict, app_name, q, sort, order)  # before any look-up: a bad query is a 400
    found = office.run(run_id)
    if found is None:
        raise HTTPException(404, f"no run {run_id[:100]!r}")
    views: FindingsViews = request.app.state.findings_views
    return found, views, views.view(run_id, office.store.count_findings(run_id), query)


def _error(
    status: int, message: str, details: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"status": status, "message": message, "details": details or []}}
    return JSONResponse(body, status_code=status, headers=headers)


def _errors(app: FastAPI) -> None:
    """Every failure is JSON {"error": {"status", "message", "details"}}; bad input is a 4xx, never a 500."""

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "error"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path[:200]}"
        return _error(exc.status_code, message, headers=dict(exc.headers) if exc.headers else None)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors()
        ]
        summary = "; ".join(f"{d['where']}: {d['message']}" for d in details[:5])
        return _error(422, f"invalid request: {summary}", details)

    handled: list[tuple[type[Exception], int]] = [
        (DecisionInputError, 400),
        (InstantError, 400),
        (ScreenOptionError, 400),
        (TableInputError, 400),
        (LookupError, 404),
        (ValueError, 400),
    ]
    for kind, status in handled:
        app.add_exception_handler(kind, _plain(status))


def _plain(status: int) -> Callable[[Request, Exception], Any]:
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        message = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
        return _error(status, message)

    return handler
