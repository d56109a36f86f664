#!/usr/bin/env node
/**
 * A minimal HTTP CONNECT proxy, like the one a hospital runs at its edge: it opens a TCP tunnel to the
 * target a client names (only to targets in its allow list, when it has one), answers
 * "200 Connection Established" and relays bytes both ways. TLS runs inside the tunnel, end to end.
 *
 * As a module: `startConnectProxy({ host, port, allow })` (test/proxy.test.ts uses it on loopback).
 * As a command (deploy/netns/firewalled-study.sh runs it in the proxy's network namespace):
 *
 *   node connect-proxy.mjs --listen 10.77.0.3:3128 [--allow 10.77.0.2:7070 ...]
 *
 * It prints "connect-proxy listening on HOST:PORT" once it serves, then one line per tunnel
 * ("tunnel CLIENT -> TARGET"), refusal ("refused CLIENT -> TARGET: not allowed") or upstream failure.
 */
import { createServer } from "node:http";
import { connect } from "node:net";
import { fileURLToPath } from "node:url";

/**
 * @param {{ host?: string; port?: number; allow?: string[]; log?: (line: string) => void }} [opts]
 * @returns {Promise<{ server: import("node:http").Server; port: number; tunnels: string[]; refused: string[] }>}
 */
export function startConnectProxy(opts = {}) {
  const { host = "127.0.0.1", port = 0, allow, log = () => undefined } = opts;
  /** Every target a tunnel was opened to, in order. */
  const tunnels = [];
  /** Every target refused by the allow list, in order. */
  const refused = [];
  const sockets = new Set();
  const server = createServer((_req, res) => res.writeHead(405, { allow: "CONNECT" }).end());
  server.on("connect", (req, client, head) => {
    const target = req.url ?? "";
    const from = `${client.remoteAddress}:${client.remotePort}`;
    sockets.add(client);
    client.on("error", () => undefined);
    client.on("close", () => sockets.delete(client));
    if (allow && !allow.includes(target)) {
      refused.push(target);
      log(`refused ${from} -> ${target}: not allowed`);
      client.end("HTTP/1.1 403 Forbidden\r\n\r\n");
      return;
    }
    const sep = target.lastIndexOf(":");
    const targetHost = target.slice(0, sep).replace(/^\[(.*)\]$/, "$1");
    const targetPort = Number(target.slice(sep + 1));
    let established = false;
    const upstream = connect(targetPort, targetHost, () => {
      established = true;
      tunnels.push(target);
      log(`tunnel ${from} -> ${target}`);
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on("close", () => sockets.delete(upstream));
    upstream.on("error", (err) => {
      if (established) return;
      log(`upstream ${from} -> ${target} failed: ${err.message}`);
      client.end("HTTP/1.1 502 Bad Gateway\r\n\r\n");
    });
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  server.on("close", () => sockets.forEach((s) => s.destroy()));
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve({ server, port: /** @type {import("node:net").AddressInfo} */ (server.address()).port, tunnels, refused }));
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  let listen = "127.0.0.1:3128";
  const allow = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--listen") listen = args[++i];
    else if (args[i] === "--allow") allow.push(args[++i]);
    else {
      process.stderr.write(`connect-proxy: unknown argument ${args[i]}\nusage: connect-proxy.mjs --listen HOST:PORT [--allow HOST:PORT ...]\n`);
      process.exit(2);
    }
  }
  const sep = listen.lastIndexOf(":");
  const proxy = await startConnectProxy({
    host: listen.slice(0, sep), port: Number(listen.slice(sep + 1)), allow: allow.length > 0 ? allow : undefined,
    log: (line) => process.stdout.write(`${new Date().toISOString()} ${line}\n`),
  });
  process.stdout.write(`connect-proxy listening on ${listen.slice(0, sep)}:${proxy.port}${allow.length > 0 ? ` (allowed: ${allow.join(", ")})` : ""}\n`);
  for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => proxy.server.close(() => process.exit(0)));
}
