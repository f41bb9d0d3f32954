"""A stand-in Qdrant server for tests: Qdrant's REST API (the part the gateway uses) over
real HTTP, answered by qdrant-client's own local engine.

No Qdrant server can be installed on this machine (it is not on PyPI or Debian), so this
real process lets the server adapter's tests exercise the real `AsyncQdrantClient` REST
path, and lets a test kill the "server" and start it again on the same port.

    python -m tests.patterns.qdrant_standin [--port 0] [--path DIR]

Prints `listening on http://127.0.0.1:PORT` on stdout once it accepts connections.
"""

from __future__ import annotations

import argparse
import socket
import sys
import warnings
from typing import Any

import uvicorn
from qdrant_client import AsyncQdrantClient, models
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def build_app(client: AsyncQdrantClient) -> Starlette:
    def ok(result: Any) -> JSONResponse:
        dumped = [_dump(item) for item in result] if isinstance(result, list) else _dump(result)
        return JSONResponse({"result": dumped, "status": "ok", "time": 0.0})

    def done() -> JSONResponse:
        return ok({"operation_id": 0, "status": "completed"})

    async def exists(request: Request) -> JSONResponse:
        name = request.path_params["name"]
        return ok({"exists": await client.collection_exists(name)})

    async def collection(request: Request) -> JSONResponse:
        name = request.path_params["name"]
        if request.method == "GET":
            if not await client.collection_exists(name):
                return _error(404, f"Collection `{name}` doesn't exist!")
            return ok(await client.get_collection(name))
        if await client.collection_exists(name):
            return _error(409, f"Collection `{name}` already exists!")
        body = await request.json()
        await client.create_collection(
            name,
            vectors_config=models.VectorParams(**body["vectors"]),
            metadata=body.get("metadata"),
        )
        return ok(True)

    async def field_index(request: Request) -> JSONResponse:
        body = await request.json()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            await client.create_payload_index(
                request.path_params["name"], body["field_name"], body.get("field_schema")
            )
        return done()

    async def upsert(request: Request) -> JSONResponse:
        body = await request.json()
        points = [models.PointStruct(**point) for point in body["points"]]
        await client.upsert(request.path_params["name"], points)
        return done()

    async def retrieve(request: Request) -> JSONResponse:
        body = await request.json()
        records = await client.retrieve(
            request.path_params["name"],
            body["ids"],
            with_payload=body.get("with_payload", True),
            with_vectors=body.get("with_vector", False),
        )
        return ok(records)

    async def query(request: Request) -> JSONResponse:
        body = models.QueryRequest(**await request.json())
        response = await client.query_points(
            request.path_params["name"],
            query=body.query,
            limit=body.limit or 10,
            score_threshold=body.score_threshold,
            query_filter=body.filter,
            with_payload=body.with_payload if body.with_payload is not None else True,
        )
        return ok(response)

    async def delete(request: Request) -> JSONResponse:
        body = await request.json()
        selector = models.PointIdsList(points=body["points"])
        await client.delete(request.path_params["name"], selector)
        return done()

    async def count(request: Request) -> JSONResponse:
        return ok(await client.count(request.path_params["name"], exact=True))

    async def facet(request: Request) -> JSONResponse:
        body = await request.json()
        response = await client.facet(
            request.path_params["name"], body["key"], limit=body.get("limit", 10), exact=True
        )
        return ok(response)

    async def set_payload(request: Request) -> JSONResponse:
        body = await request.json()
        await client.set_payload(request.path_params["name"], body["payload"], body["points"])
        return done()

    base = "/collections/{name}"
    return Starlette(
        routes=[
            Route(f"{base}/exists", exists, methods=["GET"]),
            Route(base, collection, methods=["GET", "PUT"]),
            Route(f"{base}/index", field_index, methods=["PUT"]),
            Route(f"{base}/points", upsert, methods=["PUT"]),
            Route(f"{base}/points", retrieve, methods=["POST"]),
            Route(f"{base}/points/query", query, methods=["POST"]),
            Route(f"{base}/points/delete", delete, methods=["POST"]),
            Route(f"{base}/points/count", count, methods=["POST"]),
            Route(f"{base}/points/payload", set_payload, methods=["POST"]),
            Route(f"{base}/facet", facet, methods=["POST"]),
        ]
    )


def _dump(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    return value


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"status": {"error": message}, "time": 0.0}, status_code=status)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--path", default=None, help="persist here (default: in memory)")
    args = parser.parse_args()
    client = (
        AsyncQdrantClient(path=args.path) if args.path else AsyncQdrantClient(location=":memory:")
    )
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # A test may hold the port (bound, not listening) across our restarts: see
    # tests.support.refusing_port.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
    config = uvicorn.Config(build_app(client), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    server.run(sockets=[sock])
    sys.exit(0)


if __name__ == "__main__":
    main()
