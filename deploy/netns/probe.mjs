#!/usr/bin/env node
/**
 * TCP probes for deploy/netns/firewalled-study.sh.
 *
 *   node probe.mjs listen HOST PORT        serve; print "listening on HOST:PORT", then "accepted FROM" per connection
 *   node probe.mjs connect HOST PORT MS    print "open" if a TCP connection is made within MS milliseconds,
 *                                          "refused (...)" on a reset, else "blocked (REASON)" (no answer,
 *                                          or the local firewall refused to send: EPERM); exits 0 in every
 *                                          case (2 on bad usage)
 */
import { connect, createServer } from "node:net";

const [mode, host, portText, msText] = process.argv.slice(2);
const port = Number(portText);
if (!host || !Number.isInteger(port) || (mode !== "listen" && mode !== "connect")) {
  process.stderr.write("usage: probe.mjs listen HOST PORT | probe.mjs connect HOST PORT TIMEOUT_MS\n");
  process.exit(2);
}

if (mode === "listen") {
  const server = createServer((socket) => {
    process.stdout.write(`${new Date().toISOString()} accepted ${socket.remoteAddress}:${socket.remotePort}\n`);
    socket.on("error", () => undefined);
    socket.end();
  });
  server.listen(port, host, () => process.stdout.write(`listening on ${host}:${port}\n`));
  for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
} else {
  const timeoutMs = Number(msText ?? 3000);
  const started = Date.now();
  const socket = connect({ host, port });
  const done = (result) => {
    process.stdout.write(`${result}\n`);
    socket.destroy();
    process.exit(0);
  };
  const timer = setTimeout(() => done(`blocked (no answer within ${timeoutMs} ms)`), timeoutMs);
  socket.once("connect", () => { clearTimeout(timer); done("open"); });
  socket.once("error", (err) => {
    clearTimeout(timer);
    // A refusal means a reset came back: the packet reached the host, so no firewall dropped it.
    const verdict = err.code === "ECONNREFUSED" ? "refused" : "blocked";
    done(`${verdict} (${err.code ?? err.message} after ${Date.now() - started} ms)`);
  });
}
