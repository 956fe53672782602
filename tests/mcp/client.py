#!/usr/bin/env python3
"""Drives Sandpit's MCP server with the official MCP Python SDK (`mcp` on PyPI), as a real
client would, and prints what it saw as one JSON object on stdout.

    client.py stdio SANDPIT_BIN [ARG...]   < steps.json
    client.py http  URL KEY                < steps.json

steps.json is a list of steps, each {"tool": NAME, "args": {...}} or {"list_tools": true};
the text "{session}" in any string argument is replaced by the session_id the last
create_session returned. The answer: {"protocol_version": ..., "steps": [...]} with, per step,
the tool list (name, description, inputSchema, annotations) or the call's result as the SDK
parsed it ({"isError": ..., "content": [...]}, content blocks as the protocol names them),
plus "seconds", the call's round trip.
"""

import asyncio
import json
import os
import re
import sys
import time

from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def substitute(value, session):
    if isinstance(value, str):
        return value.replace("{session}", session or "")
    if isinstance(value, list):
        return [substitute(v, session) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, session) for k, v in value.items()}
    return value


def server_of(argv):
    kind = argv[1]
    if kind == "stdio":
        # The SDK hands a server only a safe subset of the environment: pass the engine's
        # address and Sandpit's settings on.
        env = {k: v for k, v in os.environ.items() if k.startswith(("SANDPIT_", "DOCKER_"))}
        return StdioServerParameters(command=argv[2], args=argv[3:], env=env)
    if kind == "http":
        url, key = argv[2], argv[3]
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
        return streamable_http_client(url, http_client=http)
    raise SystemExit(f"client.py: unknown transport {kind!r}: use stdio or http")


async def main(argv):
    steps = json.load(sys.stdin)
    out = {"steps": []}
    session = None
    async with Client(server_of(argv), read_timeout_seconds=600) as client:
        out["protocol_version"] = getattr(client.session, "protocol_version", None)
        for step in steps:
            started = time.monotonic()
            if step.get("list_tools"):
                listed = await client.list_tools()
                record = {
                    "tools": [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in listed.tools]
                }
            else:
                args = substitute(step.get("args", {}), session)
                result = await client.call_tool(step["tool"], args)
                record = result.model_dump(mode="json", by_alias=True, exclude_none=True)
                if step["tool"] == "create_session" and not result.is_error:
                    text = "".join(c.text for c in result.content if getattr(c, "type", "") == "text")
                    found = re.search(r"session_id: (\S+)", text)
                    session = found.group(1) if found else None
            record["seconds"] = time.monotonic() - started
            out["steps"].append(record)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    asyncio.run(main(sys.argv))
