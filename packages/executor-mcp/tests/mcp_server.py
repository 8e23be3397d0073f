"""A FastMCP server for the executor's tests: run as a stdio server (``python mcp_server.py``)
or served over streamable HTTP (``build().streamable_http_app()``).

Tools: add, echo, progress (reports N steps), fail (isError), hang (until cancelled; writes
``cancelled`` to the file named by ``marker`` when the cancellation arrives), big (N bytes
of text), image (N bytes of binary), structured, embedded, pid, header (echoes a request
header over HTTP). Resources: memo://readme (text), memo://logo (binary). Prompt: greet.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from mcp.server.fastmcp import Context, FastMCP, Image
from mcp.types import EmbeddedResource, TextResourceContents
from pydantic import AnyUrl

#: Set (in the HTTP server's process) when a hang call was cancelled by the client.
HANG_STARTED: Any = None
HANG_CANCELLED: Any = None
#: Calls of ``add`` served by this process.
CALLS = {"add": 0}


def build() -> FastMCP:
    mcp = FastMCP("apflow-test", host="127.0.0.1", log_level="WARNING")

    @mcp.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        CALLS["add"] += 1
        return a + b

    @mcp.tool()
    def echo(text: str) -> str:
        """Return the text."""
        return text

    @mcp.tool()
    async def progress(steps: int, ctx: Context) -> str:  # type: ignore[type-arg]
        """Report progress steps, then finish."""
        for i in range(1, steps + 1):
            await ctx.report_progress(i, steps, f"step {i} of {steps}")
        return f"did {steps} steps"

    @mcp.tool()
    async def steps(count: int, ctx: Context) -> str:  # type: ignore[type-arg]
        """Report progress without a total."""
        for i in range(1, count + 1):
            await ctx.report_progress(i)
        return "done"

    @mcp.tool()
    def fail(message: str) -> str:
        """Fail with the message."""
        raise ValueError(message)

    @mcp.tool()
    async def hang(marker: str = "") -> str:
        """Run until cancelled."""
        if HANG_STARTED is not None:
            HANG_STARTED.set()
        if marker:
            with open(marker + ".started", "w") as fh:
                fh.write(str(os.getpid()))
        try:
            await asyncio.sleep(3600)
        except BaseException:
            if marker:
                with open(marker, "w") as fh:
                    fh.write("cancelled")
            if HANG_CANCELLED is not None:
                HANG_CANCELLED.set()
            raise
        return "never"

    @mcp.tool()
    def big(size: int) -> str:
        """``size`` bytes of text."""
        return "x" * size

    @mcp.tool()
    def image(size: int) -> Image:
        """``size`` bytes of binary (a fake PNG)."""
        return Image(data=bytes(i % 256 for i in range(size)), format="png")

    @mcp.tool()
    def structured(city: str) -> dict[str, Any]:
        """Structured content."""
        return {"city": city, "temperature": 21.5}

    @mcp.tool()
    def embedded() -> EmbeddedResource:
        """An embedded text resource."""
        return EmbeddedResource(
            type="resource",
            resource=TextResourceContents(
                uri=AnyUrl("memo://inline"), text="inline", mimeType="text/plain"
            ),
        )

    @mcp.tool()
    def pid() -> int:
        """The server's process id."""
        return os.getpid()

    @mcp.tool()
    def header(name: str, ctx: Context) -> str:  # type: ignore[type-arg]
        """A request header (HTTP only)."""
        request = ctx.request_context.request
        return str(request.headers.get(name, "")) if request is not None else ""

    @mcp.resource("memo://readme", mime_type="text/plain")
    def readme() -> str:
        return "read me"

    @mcp.resource("memo://logo", mime_type="image/png")
    def logo() -> bytes:
        return b"\x89PNG\r\n\x1a\n" + bytes(range(256))

    @mcp.prompt()
    def greet(name: str) -> str:
        """Greet someone."""
        return f"Say hello to {name}."

    return mcp


if __name__ == "__main__":
    sys.stderr.write("test server starting\n")
    build().run("stdio")
