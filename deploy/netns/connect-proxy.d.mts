/** Types for connect-proxy.mjs (a minimal HTTP CONNECT proxy; see the comment there). */
import type { Server } from "node:http";

export interface ConnectProxy {
  server: Server;
  port: number;
  /** Every target a tunnel was opened to, in order. */
  tunnels: string[];
  /** Every target the allow list refused, in order. */
  refused: string[];
}

export function startConnectProxy(opts?: { host?: string; port?: number; allow?: string[]; log?: (line: string) => void }): Promise<ConnectProxy>;
