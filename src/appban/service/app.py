"""The HTTP API and the dashboard. Each route checks its caller and calls one method of `Desk`.

appban serve [--db URL] [--host H] [--port P] [--workers N] [--open-reads]
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
import pyarrow.ipc as ipc
from fastapi import Depends, FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException

from appban.audited import Desk, arrow_bytes
from appban.engine.batch import TableInputError
from appban.engine.decide import DecisionInputError, default_rulebook
from appban.engine.instants import InstantError
from appban.engine.timeline import Timeline
from appban.rulebook.loader import load_rulebook
from appban.rulebook.views import instrument_summaries, item_view
from appban.screen.jobs import ScreenOptionError
from appban.service.auth import Caller, read_caller, reader, writer
from appban.service.limits import BodyLimit
from appban.service.schemas import (
    AppOut,
    AuditRecordOut,
    DecideRequest,
    DecisionOut,
    ErrorOut,
    Health,
    ReplayOut,
    RunOut,
    RunStarted,
)
from appban.service.settings import ServiceSettings
from appban.store import AuditStore, DecisionRecord, RunRecord

STATIC = Path(__file__).with_name("static")
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"  # the repository's sample data (a source checkout)
ARROW_STREAM = "application/vnd.apache.arrow.stream"
NDJSON = "application/x-ndjson"
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut} for status in (400, 401, 403, 404, 413, 415, 422)
}


_DECIDE_REQUEST = "#/components/schemas/DecideRequest"


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """The application, for uvicorn (`create_app` is its factory) and for tests."""
    settings = settings or ServiceSettings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        book = load_rulebook(settings.rulebook) if settings.rulebook else default_rulebook()
        store = AuditStore(settings.db_url)
        app.state.desk = Desk(store, book, settings.screen_workers)
        app.state.store = store
        if settings.demo and not store.runs(limit=1):
            app.state.desk.screen_samples(EXAMPLES)
        # The rulebook, the compiled law and the imports are long-lived: move them out of the collector's
        # sight, so that its full collections stay short and do not show up as request latency.
        gc.collect()
        gc.freeze()
        yield
        app.state.desk.close()
        store.close()

    app = FastAPI(
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
        """Is this transaction prohibited at this instant, and why; the answer is recorded."""
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
            body.app, body.transaction, body.where, body.at, body.facts, body.tz, caller.name
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
                    NDJSON: {"schema": {"type": "string", "description": "one DecideRequest JSON object per line"}},
                    ARROW_STREAM: {
                        "schema": {
                            "type": "string",
                            "format": "binary",
                            "description": "columns app, transaction, where, at (and optional facts)",
                        }
                    },
                },
            }
        },
        responses={200: {"content": {NDJSON: {}, ARROW_STREAM: {}}, "description": "the rows with their decisions"}},
    )
    async def decide_batch(request: Request, office: DeskDep, caller: ReadCaller) -> Response:
        """Many decisions at once: JSON lines or an Arrow IPC stream in, the same format out."""
        kind = request.headers.get("content-type", "").split(";")[0].strip()
        body = await request.body()
        table = _batch_table(kind, body)
        batch_id, decided = office.decide_batch(table, caller.name)
        headers = {"X-Appban-Batch": batch_id, "X-Appban-Rulebook": office.rulebook.version}
        if kind == ARROW_STREAM:
            return Response(arrow_bytes(decided, compression=None), media_type=ARROW_STREAM, headers=headers)
        lines = (json.dumps(row, ensure_ascii=False, default=str) for row in _rows(decided))
        return Response("\n".join(lines) + "\n", media_type=NDJSON, headers=headers)

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
        """Every instant at which the verdict of any category changes for an app, with the instruments."""
        return office.timeline(app_name, where, start, end, tz)

    @app.get("/v1/apps", response_model=list[AppOut], tags=["rules"])
    def apps(office: DeskDep, caller: ReadCaller) -> list[AppOut]:
        subjects = office.rulebook.subjects.subjects
        return [AppOut(id=key, name=s.name, company=s.company, aliases=list(s.aliases)) for key, s in subjects.items()]

    @app.get("/v1/rules", tags=["rules"])
    def rules(office: DeskDep, caller: ReadCaller) -> dict[str, Any]:
        """Every instrument in the rulebook, oldest first."""
        return {"rulebook_version": office.rulebook.version, "instruments": instrument_summaries(office.rulebook)}

    @app.get("/v1/rules/{item_id}", tags=["rules"])
    def rule(item_id: str, office: DeskDep, caller: ReadCaller) -> dict[str, Any]:
        """One instrument, or one prohibition, exception or change, with its citation."""
        found = item_view(office.rulebook, item_id)
        if found is None:
            raise HTTPException(404, f"no instrument or item {item_id!r}")
        return found

    @app.post("/v1/screens/{kind}", status_code=202, response_model=RunStarted, tags=["screens"])
    def screen(
        kind: str, request: Request, office: DeskDep, caller: WriteCaller, file: Annotated[UploadFile, File()]
    ) -> RunStarted:
        """Upload a file to screen (inventory, code, network or payments); the run goes on in the background.
        The screen's options are query parameters (e.g. `?role=cdn` for network)."""
        options = dict(request.query_params)
        folder = Path(tempfile.mkdtemp(prefix="appban-upload-", dir=request.app.state.settings.upload_dir))
        upload = folder / "upload"
        with upload.open("wb") as handle:
            shutil.copyfileobj(file.file, handle, 1 << 20)
        try:
            run_id = office.start_screen(kind, upload, Path(file.filename or "upload").name, options, caller.name)
        except Exception:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return RunStarted(id=run_id, status="queued", status_url=f"/v1/runs/{run_id}")

    @app.get("/v1/runs", response_model=list[RunOut], tags=["screens"])
    def runs(office: DeskDep, caller: ReadCaller, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[RunOut]:
        return [_run_out(office, run) for run in office.runs(limit)]

    @app.get("/v1/runs/{run_id}", response_model=RunOut, tags=["screens"])
    def run(
        run_id: str,
        office: DeskDep,
        caller: ReadCaller,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=0, le=1000)] = 100,
    ) -> RunOut:
        """A run's status, progress and a page of its findings."""
        found = office.run(run_id)
        if found is None:
            raise HTTPException(404, f"no run {run_id!r}")
        return _run_out(office, found, offset, limit)

    @app.get("/v1/audit", response_model=list[AuditRecordOut], tags=["audit"])
    def audit(
        office: DeskDep,
        caller: ReadCaller,
        start: Annotated[str | None, Query(alias="from", max_length=64)] = None,
        end: Annotated[str | None, Query(alias="to", max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> list[AuditRecordOut]:
        """Recorded decisions, newest first, asked in [from, to)."""
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

    @app.get("/", include_in_schema=False)
    def dashboard() -> Response:
        index = STATIC / "index.html"
        if not index.is_file():
            return JSONResponse({"service": "appban", "api": "/docs", "openapi": "/openapi.json"})
        return FileResponse(index)


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


def _batch_table(kind: str, body: bytes) -> pa.Table:
    if kind == ARROW_STREAM:
        try:
            return ipc.open_stream(pa.py_buffer(body)).read_all()
        except (pa.ArrowInvalid, OSError) as exc:
            raise HTTPException(400, f"not an Arrow IPC stream: {exc}") from None
    if kind in (NDJSON, "application/jsonl", "application/json-lines"):
        rows = []
        for number, line in enumerate(body.decode("utf-8", "replace").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise HTTPException(400, f"line {number}: not JSON: {exc}") from None
            if not isinstance(row, dict):
                raise HTTPException(400, f"line {number}: not a JSON object")
            if isinstance(row.get("facts"), dict):
                row["facts"] = json.dumps(row["facts"])
            rows.append(row)
        if not rows:
            raise HTTPException(400, "no rows")
        try:
            return pa.Table.from_pylist(rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise HTTPException(400, f"rows do not form a table: {exc}") from None
    raise HTTPException(415, f"send {NDJSON} or {ARROW_STREAM}, not {kind or 'no content type'!r}")


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    from appban.tables import to_records

    return to_records(table)


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
    return AuditRecordOut.model_validate(record.to_json_dict())


def _error(status: int, message: str, details: list[dict[str, Any]] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "message": message, "details": details or []}}, status_code=status)


def _errors(app: FastAPI) -> None:
    """Every failure is JSON {"error": {"status", "message", "details"}}; bad input is a 4xx, never a 500."""

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "error"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        return _error(exc.status_code, message)

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
