/**
 * One address in front of several coordinator replicas, as a Kubernetes Service or a TCP load balancer
 * puts it: each connection goes to the first backend that accepts it. A standby replica does not
 * listen, so connections reach whichever replica drives.
 */
import { connect, createServer, type Server, type Socket } from "node:net";

export interface TcpForwarder {
  port: number;
  /** Backend ports each accepted connection went to, in order. */
  routed: number[];
  close(): Promise<void>;
}

export async function startTcpForwarder(backendPorts: number[], port = 0): Promise<TcpForwarder> {
  const routed: number[] = [];
  const sockets = new Set<Socket>();
  const dial = (i: number, onReady: (s: Socket, port: number) => void, onFail: () => void) => {
    if (i >= backendPorts.length) return onFail();
    const upstream = connect(backendPorts[i], "127.0.0.1");
    upstream.once("connect", () => onReady(upstream, backendPorts[i]));
    upstream.once("error", () => { if (!upstream.readyState.startsWith("open")) dial(i + 1, onReady, onFail); });
  };
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.pause();
    dial(0, (upstream, to) => {
      routed.push(to);
      sockets.add(upstream);
      upstream.on("close", () => sockets.delete(upstream));
      upstream.on("error", () => client.destroy());
      client.on("error", () => upstream.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    }, () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    routed,
    close: () => new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}
