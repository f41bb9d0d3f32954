// The official TypeScript SDK's Client against a gateway, for tests/clients.
//
//   node sdk_client.mjs COMMAND [ARGS...]
//
// Spawns the gateway (COMMAND ARGS, this process's environment passed on) and, over stdio:
// lists tools, calls toolbox_echo twice (the listing made the upstream known, so the lane
// serves them) and toolbox_slow with a progress handler. When the gateway's stderr names its
// streamable-HTTP URL (`--transport both`), it does the same over HTTP while the stdio
// session stays open, then reads the gateway's /metrics. Prints one JSON object:
// {"stdio": RUN, "http": RUN | null, "metrics": TEXT | null}.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [command, ...args] = process.argv.slice(2);
const URL_PATTERN = /serving MCP over streamable HTTP at (http:\/\/\S+)/;

async function exercise(transport) {
  const client = new Client({ name: "archon-tests-ts", version: "0" });
  await client.connect(transport);
  const run = { server: client.getServerVersion(), echoes: [], progress: [] };
  run.tools = (await client.listTools()).tools.map((tool) => tool.name);
  for (const text of ["one", "two"]) {
    run.echoes.push(await client.callTool({ name: "toolbox_echo", arguments: { text } }));
  }
  run.slow = await client.callTool(
    { name: "toolbox_slow", arguments: { steps: 3, delay: 0.01 } },
    undefined,
    { onprogress: (note) => run.progress.push(note) },
  );
  return { run, client };
}

let stderrText = "";
const stdio = new StdioClientTransport({ command, args, env: { ...process.env }, stderr: "pipe" });
stdio.stderr.on("data", (chunk) => {
  stderrText += chunk.toString();
});
const output = { http: null, metrics: null };
const overStdio = await exercise(stdio);
output.stdio = overStdio.run;
const url = stderrText.match(URL_PATTERN)?.[1];
if (url) {
  const overHttp = await exercise(new StreamableHTTPClientTransport(new URL(url)));
  output.http = overHttp.run;
  await overHttp.client.close();
  output.metrics = await (await fetch(url.replace(/\/mcp$/, "/metrics"))).text();
}
await overStdio.client.close();
console.log(JSON.stringify(output));
