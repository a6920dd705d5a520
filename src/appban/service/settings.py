"""The service's settings: where the audit store is, who may read, and how large a request may be.

Read from the environment (APPBAN_*) so that every worker process `appban serve` starts sees the same ones.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field

_MB = 1 << 20


class ServiceSettings(BaseModel):
    db_url: str | None = None  # None: the default SQLite file (see appban.store)
    open_reads: bool = False  # reads without a token; writes always need one
    max_body_bytes: int = Field(default=1 * _MB, gt=0)  # JSON and JSON-lines bodies
    max_batch_bytes: int = Field(default=256 * _MB, gt=0)  # Arrow IPC batches
    max_upload_bytes: int = Field(default=1024 * _MB, gt=0)  # files uploaded for screening
    upload_dir: Path | None = None  # where uploads wait for their run (default: a temporary directory)
    screen_workers: int = Field(default=1, ge=1)  # screening runs at once per server process
    rulebook: Path | None = None  # a rulebook directory other than the packaged one
    demo: bool = False  # screen the bundled examples on start when the store has no runs yet

    @classmethod
    def from_env(cls) -> ServiceSettings:
        env = os.environ
        values: dict[str, object] = {
            "db_url": env.get("APPBAN_DB") or None,
            "open_reads": env.get("APPBAN_OPEN_READS", "") in ("1", "true", "yes"),
            "demo": env.get("APPBAN_DEMO", "") in ("1", "true", "yes"),
        }
        for name in ("max_body_bytes", "max_batch_bytes", "max_upload_bytes", "screen_workers"):
            if env.get(f"APPBAN_{name.upper()}"):
                values[name] = int(env[f"APPBAN_{name.upper()}"])
        for name in ("upload_dir", "rulebook"):
            if env.get(f"APPBAN_{name.upper()}"):
                values[name] = Path(env[f"APPBAN_{name.upper()}"])
        return cls.model_validate(values)

    def to_env(self) -> dict[str, str]:
        """The environment that makes `from_env` give these settings back (for worker processes)."""
        env = {"APPBAN_OPEN_READS": "1" if self.open_reads else "0", "APPBAN_DEMO": "1" if self.demo else "0"}
        if self.db_url:
            env["APPBAN_DB"] = self.db_url
        for name in ("max_body_bytes", "max_batch_bytes", "max_upload_bytes", "screen_workers"):
            env[f"APPBAN_{name.upper()}"] = str(getattr(self, name))
        for name in ("upload_dir", "rulebook"):
            if getattr(self, name) is not None:
                env[f"APPBAN_{name.upper()}"] = str(getattr(self, name))
        return env
