"""The HTTP service: a thin FastAPI layer over `appban.audited.Desk`, and the dashboard's static files."""

from appban.extras import require

# FastAPI and uvicorn come with the service extra, not the core install: say so rather than fail below.
require("service", "the HTTP service", ("fastapi", "fastapi_offline", "uvicorn", "sqlalchemy"))
