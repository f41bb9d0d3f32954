"""A real stdio MCP server exposing one namespace of the synthetic catalog
(`python synthetic_server.py github`); each tool answers with its name and arguments."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from fastmcp import FastMCP
from fastmcp.tools import Tool, ToolResult

sys.path.insert(0, str(Path(__file__).parent))
from synthetic import definitions


class SyntheticTool(Tool):
    async def run(self, arguments: dict[str, Any], context: Any = None) -> ToolResult:
        return ToolResult(content=json.dumps({"tool": self.name, "arguments": arguments}))


def main() -> None:
    namespace = sys.argv[1]
    server = FastMCP(f"synthetic-{namespace}")
    for definition in definitions(namespace)[namespace]:
        server.add_tool(
            SyntheticTool(
                name=definition["name"],
                description=definition["description"],
                parameters=definition["inputSchema"],
            )
        )
    server.run(show_banner=False)


if __name__ == "__main__":
    main()
