"""/readyz tells an orchestrator whether the store works, and tells nobody where it is."""

from __future__ import annotations

import asyncpg
import httpx
from structlog.testing import capture_logs

from agentkit.service import RunOptions, Service
from agentkit.settings import Secret, Settings
from tests.stores import POSTGRES_URL


async def test_failed_store_is_unavailable_without_host_or_driver_text(database: str) -> None:
    """With its database gone, /readyz is 503 "the store is unavailable"; the log has why."""
    settings = Settings(api_key=Secret("ps_live_readyz_0123456789"),
                        webhook_secrets=(Secret("whsec_" + "r" * 32),), database_url=database)
    service = Service(settings, RunOptions(port=0, role="receiver"))
    await service.start()
    try:
        assert service.server is not None
        async with httpx.AsyncClient(base_url=service.server.url) as http:
            assert (await http.get("/readyz")).status_code == 200
            admin = await asyncpg.connect(POSTGRES_URL)
            name = database.rsplit("/", 1)[1]
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            await admin.close()
            with capture_logs() as logs:
                answer = await http.get("/readyz")
    finally:
        await service.stop()
    assert answer.status_code == 503
    assert answer.json() == {"status": "unavailable", "reason": "the store is unavailable"}
    (logged,) = [e for e in logs if e["event"] == "agentkit.store_unavailable"]
    assert "127.0.0.1" in logged["error"]
