/** OperatorService for the CLI: protobuf stays in this file; commands get plain values. */
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import {
  OperatorService, StudyState, type Study, type Site, type ExportModelResponse,
  CreateStudyRequestSchema, StartStudyRequestSchema, CancelStudyRequestSchema, ListStudiesRequestSchema, GetStudyRequestSchema,
  ListSitesRequestSchema, ExportModelRequestSchema, IssueEnrollmentTokenRequestSchema, RevokeSiteRequestSchema, SecureAggregationMode, ExportLedgerRequestSchema, type ExportLedgerResponse, BudgetSplit,
} from "../gen/fedsynth/v1/operator_pb.js";
import type { BudgetSplit as BudgetSplitName } from "../shared/engines/engine.js";
import { grpcClientConstructor } from "../shared/transport/grpc-service.js";
import { fromGrpcError, type ChannelKind } from "../shared/transport/status.js";
import { FedsynthError } from "../shared/errors.js";
import { sha256Hex } from "../shared/util/vector-bytes.js";

export interface StudyView {
  studyId: string;
  name: string;
  engine: string;
  engineReason: string;
  epsilon: number;
  delta: number;
  rounds: number;
  completedRounds: number;
  state: "created" | "running" | "completed" | "failed" | "cancelled" | "unknown";
  statusMessage: string;
  minSites: number;
  /** 0: each site's update goes up noised; otherwise secure aggregation with this threshold. */
  secureThreshold: number;
  /** How the rounds share each site's budget (a coordinator that does not say splits it equally). */
  budgetSplit: BudgetSplitName;
  participants: { siteName: string; state: string; epsilonCharged: number; deltaCharged: number; message: string }[];
  roundDetails: { round: number; state: string; submitted: string[]; pending: string[] }[];
}

export interface SiteView {
  name: string;
  siteId: string;
  connected: boolean;
  lastContact: Date | null;
  agentVersion: string;
  certificateFingerprint: string;
  revoked: boolean;
  revokedReason: string;
}

const STATE_NAMES: Record<number, StudyView["state"]> = {
  [StudyState.CREATED]: "created",
  [StudyState.RUNNING]: "running",
  [StudyState.COMPLETED]: "completed",
  [StudyState.FAILED]: "failed",
  [StudyState.CANCELLED]: "cancelled",
};

function view(s: Study | undefined): StudyView {
  if (!s) throw new FedsynthError("internal", "the coordinator answered without a study");
  return {
    studyId: s.studyId, name: s.name, engine: s.engine, engineReason: s.engineReason, epsilon: s.epsilon, delta: s.delta, rounds: s.rounds,
    completedRounds: s.completedRounds, state: STATE_NAMES[s.state] ?? "unknown", statusMessage: s.statusMessage,
    minSites: s.minSitesPerRound, secureThreshold: s.secureAggregationThreshold, budgetSplit: s.budgetSplit === BudgetSplit.ANNEALED ? "annealed" : "equal",
    participants: s.participants.map((p) => ({ siteName: p.siteName, state: p.state, epsilonCharged: p.epsilonCharged, deltaCharged: p.deltaCharged, message: p.message })),
    roundDetails: s.roundDetails.map((r) => ({ round: r.round, state: r.state, submitted: [...r.submitted], pending: [...r.pending] })),
  };
}

function siteView(s: Site): SiteView {
  return {
    name: s.name, siteId: s.siteId, connected: s.connected, agentVersion: s.agentVersion,
    lastContact: s.lastContactUnixMs > 0n ? new Date(Number(s.lastContactUnixMs)) : null,
    certificateFingerprint: s.certificateFingerprint, revoked: s.revoked, revokedReason: s.revokedReason,
  };
}

export class OperatorClient {
  private client: grpc.Client & Record<string, any>;
  /** Whether the channel is plaintext: a failed connection means something else then (see fromGrpcError). */
  private readonly channel: ChannelKind;

  constructor(address: string, credentials: grpc.ChannelCredentials) {
    const Ctor = grpcClientConstructor(OperatorService);
    this.client = new Ctor(address, credentials) as any;
    this.channel = { plaintext: !credentials._isSecure() };
  }

  close(): void {
    this.client.close();
  }

  private unary<T>(method: string, request: unknown, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      this.client[method](request, { deadline: Date.now() + 30_000 }, (err: grpc.ServiceError | null, res: T) =>
        err ? reject(fromGrpcError(err, what, this.channel)) : resolve(res));
    });
  }

  async createStudy(input: {
    name: string; schemaJson: string; engine: string; epsilon: number; delta: number; rounds: number; sites: string[];
    minSites: number; roundDeadlineSeconds: number; secureAggregation?: "auto" | "on" | "off"; secureThreshold?: number;
    expectedRows?: number; budgetSplit?: BudgetSplitName;
  }): Promise<StudyView> {
    const mode = { auto: SecureAggregationMode.UNSPECIFIED, on: SecureAggregationMode.ON, off: SecureAggregationMode.OFF }[input.secureAggregation ?? "auto"];
    const res = await this.unary<any>("createStudy", create(CreateStudyRequestSchema, {
      name: input.name, schemaJson: input.schemaJson, engine: input.engine, epsilon: input.epsilon, delta: input.delta,
      rounds: input.rounds, sites: input.sites, minSitesPerRound: input.minSites, roundDeadlineSeconds: input.roundDeadlineSeconds,
      secureAggregation: mode, secureAggregationThreshold: input.secureThreshold ?? 0, expectedRows: BigInt(input.expectedRows ?? 0),
      budgetSplit: input.budgetSplit === undefined ? BudgetSplit.UNSPECIFIED : input.budgetSplit === "annealed" ? BudgetSplit.ANNEALED : BudgetSplit.EQUAL,
    }), "create study");
    return view(res.study);
  }

  async startStudy(studyId: string): Promise<StudyView> {
    return view((await this.unary<any>("startStudy", create(StartStudyRequestSchema, { studyId }), `start study ${studyId}`)).study);
  }

  async cancelStudy(studyId: string, reason: string): Promise<StudyView> {
    return view((await this.unary<any>("cancelStudy", create(CancelStudyRequestSchema, { studyId, reason }), `cancel study ${studyId}`)).study);
  }

  async getStudy(studyId: string): Promise<StudyView> {
    return view((await this.unary<any>("getStudy", create(GetStudyRequestSchema, { studyId }), `study ${studyId}`)).study);
  }

  async listStudies(): Promise<StudyView[]> {
    return (await this.unary<any>("listStudies", create(ListStudiesRequestSchema, {}), "list studies")).studies.map(view);
  }

  async listSites(): Promise<SiteView[]> {
    const res = await this.unary<any>("listSites", create(ListSitesRequestSchema, {}), "list sites");
    return res.sites.map(siteView);
  }

  /** `ttlSeconds`: a whole number of seconds, at least 1 (0 on the wire would mean the coordinator's default). */
  async issueEnrollmentToken(siteName: string, ttlSeconds: number): Promise<{ token: string; expiresAt: Date; caFingerprint: string }> {
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
      throw new FedsynthError("invalid-argument", `a token's lifetime must be a whole number of seconds, at least 1; got ${ttlSeconds}`, {
        hint: "round a fraction of a second up (fedsynth site token --ttl-hours does)",
      });
    }
    const res = await this.unary<any>("issueEnrollmentToken", create(IssueEnrollmentTokenRequestSchema, { siteName, ttlSeconds: BigInt(ttlSeconds) }), `issue a token for site ${siteName}`);
    return { token: res.token, expiresAt: new Date(Number(res.expiresAtUnixMs)), caFingerprint: res.caFingerprint };
  }

  async revokeSite(siteName: string, reason: string): Promise<SiteView> {
    const res = await this.unary<any>("revokeSite", create(RevokeSiteRequestSchema, { siteName, reason }), `revoke site ${siteName}`);
    return siteView(res.site);
  }

  /** The study's latest pooled model file, reassembled from its chunks and checked against its hash. */
  /** The coordinator's privacy ledger as JSONL, checked against the hash it announced. */
  exportLedger(): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      const parts: Buffer[] = [];
      let sha = "";
      const call: grpc.ClientReadableStream<ExportLedgerResponse> = this.client.exportLedger(create(ExportLedgerRequestSchema, {}));
      call.on("data", (chunk: ExportLedgerResponse) => {
        parts.push(Buffer.from(chunk.data));
        sha = chunk.sha256;
      });
      call.on("error", (err) => reject(fromGrpcError(err, "export the ledger", this.channel)));
      call.on("end", () => {
        const bytes = Buffer.concat(parts);
        if (sha256Hex(bytes) !== sha) {
          reject(new FedsynthError("unavailable", "the ledger arrived incomplete", { hint: "run the export again" }));
          return;
        }
        resolve(new Uint8Array(bytes));
      });
    });
  }

  exportModel(studyId: string): Promise<{ bytes: Uint8Array; round: number; engine: string }> {
    return new Promise((resolve, reject) => {
      const parts: Buffer[] = [];
      let last: ExportModelResponse | undefined;
      const call: grpc.ClientReadableStream<ExportModelResponse> = this.client.exportModel(create(ExportModelRequestSchema, { studyId }));
      call.on("data", (chunk: ExportModelResponse) => {
        parts.push(Buffer.from(chunk.data));
        last = chunk;
      });
      call.on("error", (err) => reject(fromGrpcError(err, `export the model of study ${studyId}`, this.channel)));
      call.on("end", () => {
        const bytes = Buffer.concat(parts);
        if (!last || sha256Hex(bytes) !== last.sha256) {
          reject(new FedsynthError("unavailable", `the model of study ${studyId} arrived incomplete`, { hint: "run the export again" }));
          return;
        }
        resolve({ bytes: new Uint8Array(bytes), round: last.round, engine: last.engine });
      });
    });
  }
}
