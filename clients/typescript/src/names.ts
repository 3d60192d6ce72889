// The name rules of the v1 wire contract (docs/protocol.md, "Names"), mirroring
// subjects/names.go, so that a bad name is rejected before it is sent.

const MAX_TYPE_NAME_LEN = 128;
const MAX_TYPE_SEGMENTS = 8;
const SEGMENT = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
const RESERVED = "sys";

/**
 * Returns why typeName may not be requested by a client, or undefined if it
 * may: 1–8 segments joined by "/", each [A-Za-z][A-Za-z0-9_-]{0,63}, at most
 * 128 characters, and a first segment other than "sys".
 */
export function routeNameProblem(typeName: string): string | undefined {
  if (typeof typeName !== "string" || typeName.length === 0) return "invalid typeName: empty";
  if (typeName.length > MAX_TYPE_NAME_LEN) {
    return `invalid typeName: longer than ${MAX_TYPE_NAME_LEN} characters`;
  }
  const segments = typeName.split("/");
  if (segments.length > MAX_TYPE_SEGMENTS) {
    return `invalid typeName: more than ${MAX_TYPE_SEGMENTS} segments`;
  }
  for (let i = 0; i < segments.length; i++) {
    if (!SEGMENT.test(segments[i] ?? "")) {
      return `invalid typeName: segment ${i + 1} must match [A-Za-z][A-Za-z0-9_-]{0,63}`;
    }
  }
  if (segments[0] === RESERVED) {
    return `reserved typeName: the first segment "${RESERVED}" is reserved for control frames`;
  }
  return undefined;
}

/** The suffix of an event type ("finish" for "demo/count:finish"), or "" if it has none. */
export function suffixOf(type: string): string {
  const i = type.lastIndexOf(":");
  return i < 0 ? "" : type.slice(i + 1);
}
