// Private: faults on demand — the next N matching calls fail the chosen way.
import { errorResponse } from "./_responses.ts";
import type { EmulatorFaults, FaultKind, FaultOptions } from "./types.ts";

const KINDS: readonly FaultKind[] = ["system_busy", "http_500", "hang", "invalid_token"];

interface Rule {
  kind: FaultKind;
  path: string | undefined;
  remaining: number;
}

/** The queue of injected faults. */
export class FaultQueue implements EmulatorFaults {
  readonly #rules: Rule[] = [];

  next(n: number, kind: FaultKind, options: FaultOptions = {}): void {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`Invalid fault count: ${n}`);
    if (!KINDS.includes(kind)) throw new RangeError(`Unknown fault kind: ${String(kind)}`);
    this.#rules.push({ kind, path: options.path, remaining: n });
  }

  clear(): void {
    this.#rules.length = 0;
  }

  get pending(): number {
    return this.#rules.reduce((sum, rule) => sum + rule.remaining, 0);
  }

  /** Uses up one fault for a call to `path`, the oldest rule that matches; undefined when none does. */
  take(path: string): FaultKind | undefined {
    const index = this.#rules.findIndex((rule) => rule.path === undefined || rule.path === path);
    const rule = this.#rules[index];
    if (rule === undefined) return undefined;
    if (--rule.remaining === 0) this.#rules.splice(index, 1);
    return rule.kind;
  }
}

/** The answer a fault gives; a hang settles only when `signal` aborts, rejecting as fetch does. */
export function faultResponse(kind: FaultKind, signal: AbortSignal): Promise<Response> {
  switch (kind) {
    case "system_busy":
      return Promise.resolve(errorResponse(-1));
    case "invalid_token":
      return Promise.resolve(errorResponse(40001));
    case "http_500":
      return Promise.resolve(
        new Response("<html><body><h1>500 Internal Server Error</h1></body></html>", {
          status: 500,
          headers: { "content-type": "text/html" },
        }),
      );
    case "hang":
      return new Promise((_resolve, reject) => {
        if (signal.aborted) reject(signal.reason);
        else signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
  }
}
