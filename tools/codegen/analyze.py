"""code_analyze: a structure summary of one Python module (stdlib `ast` only)."""

from __future__ import annotations

import ast
import sys

from archon_gateway.tools.codegen.checks import (
    FunctionNode,
    class_kind,
    complexity,
    dotted,
    node_classes,
    parse,
)
from archon_gateway.tools.codegen.models import (
    Analysis,
    ClassInfo,
    Finding,
    FunctionInfo,
    ImportInfo,
    NodeKind,
)

# What the code does, from the modules it imports and the methods it calls.
TRAIT_MODULES: dict[str, tuple[str, ...]] = {
    "network": ("httpx", "aiohttp", "requests", "urllib", "urllib3", "grpc", "websockets"),
    "database": (
        "sqlalchemy",
        "asyncpg",
        "psycopg",
        "psycopg2",
        "aiosqlite",
        "sqlite3",
        "pymongo",
        "motor",
    ),
    "cache": ("redis", "aiocache", "cachetools"),
    "events": ("aiokafka", "kafka", "confluent_kafka", "nats", "aio_pika", "pika"),
    "filesystem": ("pathlib", "shutil", "aiofiles", "tempfile"),
    "vectors": ("qdrant_client", "faiss", "chromadb"),
    "llm": ("openai", "anthropic", "litellm"),
    "hashing": ("hashlib", "hmac"),
    "retry": ("tenacity", "backoff"),
}
# (method names, hints one of which the receiver must contain; empty: any receiver).
# `contract.get(...)` is a dict lookup, `self._client.get(...)` an HTTP request.
TRAIT_CALLS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "events": (("publish", "emit", "send_event", "produce", "send_and_wait", "subscribe"), ()),
    "database": (
        ("execute", "executemany", "fetch", "fetchrow", "fetchval", "fetchall", "commit"),
        ("conn", "db", "session", "cursor", "pool", "engine", "tx", "transaction"),
    ),
    "network": (
        ("get", "post", "put", "patch", "delete", "request", "stream"),
        ("client", "session", "http", "api", "requests", "aiohttp"),
    ),
    "filesystem": (("open", "read_text", "write_text", "read_bytes", "write_bytes"), ()),
    "state": (("transition", "apply_event", "dispatch"), ()),
}


def _function_info(function: FunctionNode) -> FunctionInfo:
    args = function.args
    params = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    if args.vararg:
        params.append("*" + args.vararg.arg)
    if args.kwarg:
        params.append("**" + args.kwarg.arg)
    return FunctionInfo(
        name=function.name,
        line=function.lineno,
        is_async=isinstance(function, ast.AsyncFunctionDef),
        parameters=params,
        returns=ast.unparse(function.returns) if function.returns else None,
        complexity=complexity(function),
    )


def _imports(tree: ast.Module) -> list[ImportInfo]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [ImportInfo(module=a.name, names=[], line=node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            names = [a.name for a in node.names]
            found.append(ImportInfo(module=module, names=names, line=node.lineno))
    return sorted(found, key=lambda i: i.line)


def traits_of(tree: ast.Module, imports: list[ImportInfo]) -> list[str]:
    roots = {i.module.split(".", 1)[0] for i in imports if not i.module.startswith(".")}
    traits = {trait for trait, mods in TRAIT_MODULES.items() if roots & set(mods)}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        receiver, _, method = dotted(node.func).lower().rpartition(".")
        for trait, (methods, hints) in TRAIT_CALLS.items():
            if method in methods and (not hints or any(hint in receiver for hint in hints)):
                traits.add(trait)
    if any(isinstance(node, ast.Await) for node in ast.walk(tree)):
        traits.add("async")
    if not traits & {"network", "database", "cache", "events", "filesystem", "vectors", "llm"}:
        traits.add("pure")
    return sorted(traits)


def analyze(code: str, filename: str | None = None, node_kind: NodeKind | None = None) -> Analysis:
    parsed = parse(code, filename or "<code>")
    lines = len(code.splitlines())
    if isinstance(parsed, Finding):
        return Analysis(
            parses=False,
            syntax_error=f"line {parsed.line}, column {parsed.column}: {parsed.message}",
            lines=lines,
            node_kind=node_kind,
            node_class=None,
            classes=[],
            functions=[],
            imports=[],
            dependencies=[],
            stdlib=[],
            mixins=[],
            traits=[],
            max_complexity=0,
        )
    tree = parsed
    classes = [
        ClassInfo(
            name=node.name,
            line=node.lineno,
            bases=[dotted(base) for base in node.bases],
            methods=[_function_info(item) for item in node.body if isinstance(item, FunctionNode)],
            node_kind=class_kind(node),
        )
        for node in tree.body
        if isinstance(node, ast.ClassDef)
    ]
    functions = [_function_info(node) for node in tree.body if isinstance(node, FunctionNode)]
    imports = _imports(tree)
    absolute = {i.module.split(".", 1)[0] for i in imports if not i.module.startswith(".")}
    stdlib = sorted(absolute & sys.stdlib_module_names - {"__future__"})
    nodes = node_classes(tree, node_kind)
    kind = node_kind or next((k for _, k in nodes if k), None)
    all_functions = [f for c in classes for f in c.methods] + functions
    docstring = ast.get_docstring(tree)
    return Analysis(
        parses=True,
        docstring=docstring.strip().splitlines()[0] if docstring else None,
        lines=lines,
        node_kind=kind,
        node_class=nodes[0][0].name if nodes else None,
        classes=classes,
        functions=functions,
        imports=imports,
        dependencies=sorted(absolute - sys.stdlib_module_names - {"__future__"}),
        stdlib=stdlib,
        mixins=sorted(
            {
                name
                for c in classes
                for name in (base.rsplit(".", 1)[-1] for base in c.bases)
                if name.startswith("Mixin")
            }
        ),
        traits=traits_of(tree, imports),
        max_complexity=max((f.complexity for f in all_functions), default=0),
    )
