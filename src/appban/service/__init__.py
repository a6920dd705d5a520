"""The HTTP service: a thin FastAPI layer over `appban.audited.Desk`, and the dashboard's static files."""
