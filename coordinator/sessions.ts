/**
 * The agents connected right now, each by the stream it opened. A site has at most one live session: a
 * reconnecting agent replaces its stale one. Messages are plain values; the transport encodes them.
 */
import type { StudySpec, TaskAssignment } from "../shared/federation/task.js";

export type AgentBound =
  | { kind: "invitation"; study: StudySpec; answerBy: number }
  | { kind: "task"; task: TaskAssignment }
  | { kind: "result-ack"; taskId: string; accepted: boolean; message: string }
  | { kind: "study-closed"; studyId: string; state: string; message: string }
  | { kind: "secagg-relay"; taskId: string; message: Uint8Array };

export interface SiteSession {
  readonly siteName: string;
  readonly connectedAt: number;
  send(message: AgentBound): void;
  /** Ends the session from the coordinator's side (e.g. replaced by a newer one). */
  close(reason: string): void;
}

export class SessionHub {
  private sessions = new Map<string, SiteSession>();

  attach(session: SiteSession): void {
    const previous = this.sessions.get(session.siteName);
    this.sessions.set(session.siteName, session);
    if (previous && previous !== session) previous.close("replaced by a newer connection from the same site");
  }

  detach(session: SiteSession): void {
    if (this.sessions.get(session.siteName) === session) this.sessions.delete(session.siteName);
  }

  get(siteName: string): SiteSession | undefined {
    return this.sessions.get(siteName);
  }

  isConnected(siteName: string): boolean {
    return this.sessions.has(siteName);
  }

  send(siteName: string, message: AgentBound): boolean {
    const session = this.sessions.get(siteName);
    if (!session) return false;
    session.send(message);
    return true;
  }

  /** Ends one site's session, if it has one (its certificate was revoked, say). */
  closeSite(siteName: string, reason: string): void {
    const session = this.sessions.get(siteName);
    if (!session) return;
    this.sessions.delete(siteName);
    session.close(reason);
  }

  closeAll(reason: string): void {
    for (const s of [...this.sessions.values()]) s.close(reason);
    this.sessions.clear();
  }
}
