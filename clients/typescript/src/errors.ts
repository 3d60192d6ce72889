import type { Message } from "./types.js";

/**
 * A request that failed: an :error event arrived (code and message from its
 * payload), or the gateway rejected the request frame with sys/error
 * (code "bad_request"), or the client rejected it before sending.
 */
export class FabricError extends Error {
  /** The error code: one of ErrorCode, or a worker's own. */
  readonly code: string;
  /** The :error payload's details, if any. */
  readonly details?: unknown;
  /** Every message of the request received so far, the :error and :finish included. */
  readonly messages: Message[];

  constructor(code: string, message: string, details?: unknown, messages: Message[] = []) {
    super(message);
    this.name = "FabricError";
    this.code = code;
    if (details !== undefined) this.details = details;
    this.messages = messages;
  }
}

/**
 * The client closed before the request finished: close() was called, or the
 * connection ended for good (a close code that forbids reconnecting, reconnect
 * disabled, or the first connection failed). Its code is "closed".
 */
export class ClosedError extends FabricError {
  /** The WebSocket close code that ended the client. */
  readonly closeCode: number;
  /** Its reason. */
  readonly reason: string;

  constructor(closeCode: number, reason: string, messages: Message[] = []) {
    super("closed", `fabric client closed (${closeCode}${reason ? ` ${reason}` : ""})`, undefined, messages);
    this.name = "ClosedError";
    this.closeCode = closeCode;
    this.reason = reason;
  }
}

/** The FabricError of an :error or sys/error payload. */
export function errorFromPayload(payload: unknown, messages: Message[], fallbackCode: string): FabricError {
  if (payload !== null && typeof payload === "object") {
    const p = payload as { code?: unknown; message?: unknown; details?: unknown };
    if (typeof p.code === "string" && p.code !== "") {
      const message = typeof p.message === "string" ? p.message : p.code;
      return new FabricError(p.code, message, p.details, messages);
    }
  }
  return new FabricError(fallbackCode, "unreadable error event", undefined, messages);
}
