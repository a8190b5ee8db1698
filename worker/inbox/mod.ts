/**
 * The agent inbox: a page in the worker where people see every conversation live, take over
 * from the bot and answer inside the send window (see docs/inbox.md).
 *
 * @module
 */
export { CLOSE_EXPIRED, type HubSocket, type HubState, LiveHub, type LiveMessage } from "./live.ts";
