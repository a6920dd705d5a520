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
    max_body_bytes: int = Field(default=1 * _MB, gt=0)  # JSON bodies
    # Arrow IPC batches, as sent and as decoded (a compressed stream may not decode to more); JSON-lines batches
    # may be a quarter of it (64 MB by default), decoded as they arrive.
    max_batch_bytes: int = Field(default=256 * _MB, gt=0)
    # Batches read and decided at once per server process (in threads, off the event loop), and how many more
    # may wait for their turn before a batch is answered 429.
    batch_workers: int = Field(default=1, ge=1)
    batch_queue: int = Field(default=16, ge=0)
    batch_read_seconds: float = Field(default=300.0, gt=0)  # for a batch body to arrive once its turn has come
    max_batch_questions: int = Field(default=20_000, gt=0)  # distinct (app, transaction, where, facts) per batch
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
        for name in _NUMBERS:
            if env.get(f"APPBAN_{name.upper()}"):
                values[name] = env[f"APPBAN_{name.upper()}"]
        for name in ("upload_dir", "rulebook"):
            if env.get(f"APPBAN_{name.upper()}"):
                values[name] = Path(env[f"APPBAN_{name.upper()}"])
        return cls.model_validate(values)

    def to_env(self) -> dict[str, str]:
        """The environment that makes `from_env` give these settings back (for worker processes)."""
        env = {"APPBAN_OPEN_READS": "1" if self.open_reads else "0", "APPBAN_DEMO": "1" if self.demo else "0"}
        if self.db_url:
            env["APPBAN_DB"] = self.db_url
        for name in _NUMBERS:
            env[f"APPBAN_{name.upper()}"] = str(getattr(self, name))
        for name in ("upload_dir", "rulebook"):
            if getattr(self, name) is not None:
                env[f"APPBAN_{name.upper()}"] = str(getattr(self, name))
        return env


_NUMBERS = ("max_body_bytes", "max_batch_bytes", "max_upload_bytes", "screen_workers", "batch_workers", "batch_queue",
            "batch_read_seconds", "max_batch_questions")  # fmt: skip
