"""A small, generic vocabulary of software actions and objects that mean the same thing to
someone asking for a tool ("fetch" a file a tool says it "reads", a "folder" its "directory").

It is applied at index time: a tool whose text says "read" is also found by "fetch" (at a
lower weight than its own words), so a query costs nothing more. The groups are ordinary
software and office vocabulary, written as such, not taken from any labelled query or tool
catalog; a word may sit in several groups ("show" reads one thing and lists many).
"""

from __future__ import annotations

SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    # actions
    ("get", "fetch", "read", "retrieve", "show", "view", "display", "load", "cat"),
    ("list", "enumerate", "show", "browse", "all"),
    ("find", "search", "lookup", "look", "query", "locate", "grep", "seek"),
    ("create", "add", "new", "make", "insert", "register"),
    ("delete", "remove", "drop", "destroy", "erase", "purge", "unlink"),
    ("clean", "cleanup", "prune", "purge", "tidy"),
    ("update", "edit", "modify", "change", "alter", "patch", "set"),
    ("run", "execute", "exec", "invoke", "launch", "start", "trigger"),
    ("stop", "kill", "terminate", "cancel", "halt", "abort"),
    ("restart", "rerun", "retry", "reboot", "reload"),
    ("send", "post", "publish", "notify", "tell", "announce", "message"),
    ("reply", "respond", "answer", "comment"),
    ("copy", "duplicate", "clone"),
    ("move", "rename", "relocate", "transfer"),
    ("download", "export", "pull", "save"),
    ("upload", "import", "put", "push"),
    ("write", "save", "store", "persist", "record", "remember", "memorize"),
    ("compare", "diff", "difference", "changes"),
    ("merge", "combine", "join", "squash"),
    ("check", "verify", "validate", "lint", "inspect"),
    ("fix", "correct", "repair", "autofix", "resolve"),
    ("summarize", "summary", "analyze", "analyse", "describe", "explain", "overview"),
    ("schedule", "plan", "book", "reschedule"),
    ("compress", "zip", "archive", "gzip", "tar"),
    ("undo", "revert", "rollback", "restore"),
    ("approve", "accept", "review"),
    ("share", "link", "url"),
    ("assign", "allocate", "delegate"),
    ("count", "measure", "size", "stats", "statistics", "metrics", "usage"),
    # objects
    ("issue", "ticket", "bug", "task", "defect"),
    ("pr", "pull", "merge"),
    ("repository", "repo", "project", "codebase"),
    ("folder", "directory", "dir"),
    ("file", "document", "doc"),
    ("url", "link", "address", "uri", "webpage"),
    ("image", "picture", "photo", "screenshot", "snapshot"),
    ("error", "exception", "failure", "crash", "fault"),
    ("log", "logs", "output", "trace"),
    ("email", "mail", "inbox", "mailbox"),
    ("message", "chat", "conversation", "thread"),
    ("meeting", "event", "appointment", "calendar"),
    ("user", "account", "member", "person", "people"),
    ("team", "group", "org", "organization"),
    ("database", "db", "sql"),
    ("row", "record", "entry"),
    ("column", "field", "attribute"),
    ("secret", "token", "password", "credential", "key"),
    ("ci", "pipeline", "workflow", "build", "actions", "job"),
    ("deploy", "deployment", "release", "rollout", "ship"),
    ("payment", "charge", "transaction"),
    ("invoice", "bill", "billing"),
    ("wiki", "page", "documentation", "docs", "notes"),
    ("graph", "chart", "plot", "dashboard"),
    ("alert", "alarm", "notification", "incident"),
    ("size", "big", "large", "bytes", "space"),
    ("modified", "modification", "changed", "updated"),
    ("function", "method", "class", "symbol", "definition", "code"),
    ("memory", "knowledge", "remember", "recall"),
)
