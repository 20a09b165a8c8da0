"""The baseline for benchmarks/ingest.py: a Quart app that reads the body and answers 200.

Served two ways:

- ``python benchmarks/bare_quart.py --port N`` serves it with agentkit's own
  ``EmbeddedServer`` (uvicorn, httptools, no access log) on the event loop
  ``agentkit run`` uses (uvloop), so the server settings cannot drift from
  agentkit's. It prints ``{"listening": "<url>"}`` when ready.
- ``hypercorn benchmarks.bare_quart:app --bind 127.0.0.1:N`` serves it on
  Hypercorn with its CLI defaults (one worker, asyncio), which is what a plain
  Quart app gets by default.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

from quart import Quart, Response, request

app = Quart(__name__)


@app.post("/webhooks/odygy")
async def receive() -> Response:
    await request.get_data(as_text=False)
    return Response(b'{"status":"ok"}', status=200, mimetype="application/json")


async def serve(host: str, port: int) -> None:
    from agentkit.serving import EmbeddedServer

    server = EmbeddedServer(app, host=host, port=port)
    await server.start()
    print(json.dumps({"listening": server.url}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    from agentkit.serving import event_loop_factory

    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
