export { SecAggClient, type SecAggClientOptions, type ClientState } from "./client.js";
export { SecAggServer, type AggregateResult, type ServerState } from "./server.js";
export { SECAGG_PHASES, SecAggError, type SecAggPhase } from "./errors.js";
export { newSessionNonce, compareSiteIds, sortSites, type SecAggParams, type SessionContext } from "./session.js";
export { checkThreshold, defaultThreshold, thresholdGuarantees, type ThresholdGuarantees } from "./threshold.js";
export { decodeMessage, encodeMessage, encodedSize, isClientMessage, maskedInputDigest, type ClientMessage, type ServerMessage, type SecAggMessage } from "./messages.js";
export type * from "./messages.js";
