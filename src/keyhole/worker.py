"""``keyhole worker``: a process that runs jobs from the PostgreSQL queue (procrastinate).

It builds every service, like ``keyhole serve``, so it sits beside the command line rather than
in ``jobs``, which the services are built from."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from keyhole.errors import InvalidRequest
from keyhole.jobs.engines.procrastinate import ProcrastinateEngine
from keyhole.jobs.queues import ALL_QUEUES
from keyhole.services import Services
from keyhole.settings import Settings


async def run_worker(settings: Settings, queues: Sequence[str] = ALL_QUEUES) -> None:
    if settings.job_engine != "procrastinate":
        raise InvalidRequest(
            "keyhole worker runs the distributed engine: set KEYHOLE_JOB_ENGINE=procrastinate and a "
            "PostgreSQL KEYHOLE_DATABASE_URL (the embedded engine runs inside keyhole serve)",
            key="invalid_configuration",
        )
    if settings.log_level.upper() != "DEBUG":  # one line per job and per sweep otherwise
        logging.getLogger("procrastinate").setLevel(logging.WARNING)
    services = Services.build(settings)
    try:
        await services.prepare()
        services.start("worker", queues)
        engine = services.jobs.engine
        assert isinstance(engine, ProcrastinateEngine)
        await engine.run_worker(queues)
    finally:
        await services.close()
