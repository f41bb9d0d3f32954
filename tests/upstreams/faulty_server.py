"""A hand-written stdio MCP server (standard library only, starts fast) that misbehaves on
demand: `faulty_server.py MODE[,MODE...]`. Newline-delimited JSON-RPC 2.0 on stdin/stdout.

Always: initialize, ping, tools/list, tools/call with tools `echo(text)` and `sleep(seconds)`
(answered from a timer thread, so other requests go on meanwhile). Every start appends
its pid as one line to the file named by FAULTY_STARTS_FILE (when set), so tests can count
starts and restarts; every tool call appends "called <tool>" to FAULTY_RECORD_FILE.

Modes:
- crash-on-call: tool `crash` exits with code 3 without replying.
- spawn-child: at start spawns a grandchild that sleeps forever holding our stdout open and
  writes its pid to FAULTY_CHILD_PID_FILE; tool `die` exits this process only (code 4)
  without replying.
- flood: tool `big(size)` replies with one JSON line whose text is `size` bytes (default
  50 MB), written in chunks; tool `stderr_flood(size)` writes that many bytes of lines to
  stderr, then replies.
- slow-start: sleeps FAULTY_START_DELAY seconds (default 2) before answering anything.
- list-changing: tool `add_tool(name)` adds a tool (listed, echoes) and sends
  notifications/tools/list_changed before replying; tool `burst(n)` sends n of them.
- ping-hang: tool `stop_ping` makes later pings go unanswered (other requests still answer).
- garbage: writes non-JSON lines (and JSON that is not JSON-RPC) to stdout before replies;
  tool `junk(n)` writes n more non-JSON lines first.
- chaos: tool `chaos(text)` echoes, except that with probability FAULTY_CHAOS_RATE (default
  0.01) it fails (JSON-RPC error), hangs (never answers) or crashes (exit 5), a third each.
- hostile: tool `deep(depth)` replies with a result nested `depth` levels deep; `binary`
  writes a line of invalid UTF-8 (and one with a lone surrogate escape) before replying;
  `drip(seconds)` writes its reply one byte at a time, `seconds` apart; `non_finite(literal)`
  replies with a result holding the raw number `literal` (NaN, 1e400: not JSON).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from typing import Any

MODES = {"crash-on-call", "spawn-child", "flood", "slow-start", "list-changing"}
MODES |= {"ping-hang", "garbage", "hostile", "chaos"}
CHUNK = 1024 * 1024


def tool(name: str, description: str, /, **properties: str) -> dict[str, Any]:
    schema = {key: {"type": kind} for key, kind in properties.items()}
    return {
        "name": name,
        "description": description,
        "inputSchema": {"type": "object", "properties": schema},
    }


MODE_TOOLS: dict[str, list[dict[str, Any]]] = {
    "crash-on-call": [tool("crash", "Exit with code 3 without replying.")],
    "spawn-child": [tool("die", "Exit (code 4) leaving the grandchild alive.")],
    "flood": [
        tool("big", "Reply with one line of `size` bytes of text.", size="integer"),
        tool("big_stall", "Start a `size`-byte reply line, then stall.", size="integer"),
        tool("stderr_flood", "Write `size` bytes to stderr, then reply.", size="integer"),
    ],
    "list-changing": [
        tool("add_tool", "Add an echo tool called `name`.", name="string"),
        tool("burst", "Send `n` tools/list_changed notifications.", n="integer"),
    ],
    "ping-hang": [tool("stop_ping", "Leave later pings unanswered.")],
    "garbage": [tool("junk", "Write `n` non-JSON lines to stdout, then reply.", n="integer")],
    "chaos": [tool("chaos", "Echo `text`; now and then fail, hang or crash.", text="string")],
    "hostile": [
        tool("deep", "Reply with a result nested `depth` levels deep.", depth="integer"),
        tool("binary", "Write invalid UTF-8 and a lone surrogate, then reply."),
        tool("drip", "Write the reply a byte every `seconds`.", seconds="number"),
        tool(
            "non_finite", "Reply with the raw JSON number `literal` (NaN, 1e400).", literal="string"
        ),
    ],
}


class Server:
    def __init__(self, modes: set[str]) -> None:
        self.modes = modes
        self.tools = [
            tool("echo", "Return the text unchanged.", text="string"),
            tool("sleep", "Reply after `seconds`.", seconds="number"),
        ]
        for mode in sorted(modes):
            self.tools += MODE_TOOLS.get(mode, [])
        self.added: set[str] = set()
        self.ping_answered = True
        self.writing = threading.Lock()  # timer threads reply too

    def send(self, message: dict[str, Any]) -> None:
        with self.writing:
            if "garbage" in self.modes:
                sys.stdout.write("Loading model weights... done\n")
                sys.stdout.write('{"progress": "50%"}\n')
            sys.stdout.write(json.dumps(message) + "\n")
            sys.stdout.flush()

    def reply(self, request_id: Any, result: dict[str, Any]) -> None:
        self.send({"jsonrpc": "2.0", "id": request_id, "result": result})

    def error(self, request_id: Any, code: int, message: str) -> None:
        self.send({"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}})

    def list_changed(self) -> None:
        self.send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})

    def handle(self, request: dict[str, Any]) -> None:
        if "id" not in request:
            return  # notifications (initialized, cancelled) need no answer
        request_id, method = request["id"], request.get("method")
        params = request.get("params") or {}
        if method == "initialize":
            self.reply(
                request_id,
                {
                    "protocolVersion": params.get("protocolVersion", "2025-06-18"),
                    "capabilities": {"tools": {"listChanged": True}},
                    "serverInfo": {"name": "faulty", "version": "0"},
                },
            )
        elif method == "ping":
            if self.ping_answered:
                self.reply(request_id, {})
        elif method == "tools/list":
            extra = [
                tool(name, "An added echo tool.", text="string") for name in sorted(self.added)
            ]
            self.reply(request_id, {"tools": self.tools + extra})
        elif method == "tools/call":
            self.call(request_id, params.get("name"), params.get("arguments") or {})
        else:
            self.error(request_id, -32601, f"method not found: {method}")

    def text(self, request_id: Any, text: str) -> None:
        self.reply(request_id, {"content": [{"type": "text", "text": text}], "isError": False})

    def call(self, request_id: Any, name: Any, args: dict[str, Any]) -> None:
        record("FAULTY_RECORD_FILE", f"called {name}")
        known = {entry["name"] for entry in self.tools} | self.added
        if name not in known:
            self.error(request_id, -32602, f"unknown tool: {name}")
        elif name == "echo" or name in self.added:
            self.text(request_id, str(args.get("text", "")))
        elif name == "sleep":
            seconds = float(args.get("seconds", 1))
            timer = threading.Timer(seconds, self.text, (request_id, f"slept {seconds:g} s"))
            timer.daemon = True
            timer.start()
        elif name == "junk":
            with self.writing:
                for index in range(int(args.get("n", 100))):
                    sys.stdout.write(f"progress {index}: still loading\n")
            self.text(request_id, "wrote junk")
        elif name == "crash":
            os._exit(3)
        elif name == "die":
            os._exit(4)
        elif name == "big":
            self.big(request_id, int(args.get("size", 50 * 1024 * 1024)))
        elif name == "big_stall":
            self.big(request_id, int(args.get("size", 50 * 1024 * 1024)), finish=False)
        elif name == "stderr_flood":
            size = int(args.get("size", 1024 * 1024))
            line = "x" * 99 + "\n"
            for _ in range(size // len(line)):
                sys.stderr.write(line)
            sys.stderr.write("y" * (size % len(line)))
            sys.stderr.flush()
            self.text(request_id, f"wrote {size} bytes to stderr")
        elif name == "add_tool":
            self.added.add(str(args["name"]))
            self.list_changed()
            self.text(request_id, f"added {args['name']}")
        elif name == "burst":
            count = int(args.get("n", 10))
            for _ in range(count):
                self.list_changed()
            self.text(request_id, f"sent {count} notifications")
        elif name == "chaos":
            rate = float(os.environ.get("FAULTY_CHAOS_RATE", "0.01"))
            draw = random.random() / rate if rate > 0 else 1.0  # rate 0: always behave
            if draw < 1 / 3:
                self.error(request_id, -32000, "chaos: this call failed on purpose")
            elif draw < 2 / 3:
                pass  # hang: never answered
            elif draw < 1:
                os._exit(5)
            else:
                self.text(request_id, str(args.get("text", "")))
        elif name == "deep":
            depth = int(args.get("depth", 5000))
            with self.writing:
                head = json.dumps({"jsonrpc": "2.0", "id": request_id})[:-1]
                sys.stdout.write(head + ', "result": {"x": ' + "[" * depth + "]" * depth + "}}\n")
                sys.stdout.flush()
        elif name == "non_finite":
            literal = str(args.get("literal", "NaN"))
            with self.writing:
                head = json.dumps({"jsonrpc": "2.0", "id": request_id})[:-1]
                result = '{"content": [], "structuredContent": {"value": ' + literal + "}}"
                sys.stdout.write(head + ', "result": ' + result + "}\n")
                sys.stdout.flush()
        elif name == "binary":
            with self.writing:
                sys.stdout.buffer.write(b"\xff\xfe\x80 not utf-8\n")
                sys.stdout.buffer.write(b'{"jsonrpc": "2.0", "method": "x", "params": "\\ud800"}\n')
                sys.stdout.buffer.flush()
            self.text(request_id, "after binary")
        elif name == "drip":
            seconds = float(args.get("seconds", 0.2))
            line = json.dumps({"jsonrpc": "2.0", "id": request_id, "result": {"content": []}})

            def drip() -> None:
                with self.writing:  # the stream is blocked meanwhile, as a real pipe would be
                    for char in line + "\n":
                        sys.stdout.write(char)
                        sys.stdout.flush()
                        time.sleep(seconds)

            threading.Thread(target=drip, daemon=True).start()
        elif name == "stop_ping":
            self.ping_answered = False
            self.text(request_id, "pings will go unanswered")

    def big(self, request_id: Any, size: int, *, finish: bool = True) -> None:
        """One JSON line of `size` text bytes, written in chunks (never held whole); with
        `finish=False` the line is left unfinished and the server stalls."""
        head = json.dumps({"jsonrpc": "2.0", "id": request_id})[:-1]
        chunk = "x" * CHUNK
        with self.writing:
            out = sys.stdout
            out.write(head + ', "result": {"content": [{"type": "text", "text": "')
            for _ in range(size // CHUNK):
                out.write(chunk)
            out.write("x" * (size % CHUNK))
            if not finish:
                out.flush()
                time.sleep(3600)
            out.write('"}], "isError": false}}\n')
            out.flush()


def record(env_name: str, line: object) -> None:
    path = os.environ.get(env_name)
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(f"{line}\n")


def main() -> None:
    modes = {mode for mode in (sys.argv[1] if len(sys.argv) > 1 else "").split(",") if mode}
    unknown = modes - MODES
    if unknown:
        print(f"faulty_server: unknown mode(s) {sorted(unknown)}", file=sys.stderr)
        sys.exit(2)
    record("FAULTY_STARTS_FILE", os.getpid())
    if "spawn-child" in modes:
        # Inherits stdout (and stderr): the pipe stays open after this process dies.
        child = subprocess.Popen(
            [sys.executable, "-c", "import time\nwhile True: time.sleep(3600)"],
            stdin=subprocess.DEVNULL,
        )
        record("FAULTY_CHILD_PID_FILE", child.pid)
    if "slow-start" in modes:
        time.sleep(float(os.environ.get("FAULTY_START_DELAY", "2")))
    server = Server(modes)
    for line in sys.stdin:
        if line.strip():
            server.handle(json.loads(line))


if __name__ == "__main__":
    main()
