"""An upstream that fails before speaking MCP, the way a misconfigured server does."""

import sys

print("fatal: missing configuration file toolbox.yaml", file=sys.stderr)
sys.exit(3)
