// Private: reads a request body once, for both the handler and the call record.

/** A request body in the forms the handlers and the call record need. */
export interface ParsedBody {
  /** The body as UTF-8 text ("" for none or for a multipart form). */
  readonly text: string;
  /** The parsed multipart form, when the body is one and parses. */
  readonly form: FormData | undefined;
  /** What the call record shows: JSON, raw text, a form summary, or undefined. */
  readonly summary: unknown;
}

const EMPTY: ParsedBody = { text: "", form: undefined, summary: undefined };

/** Reads `request`'s body (GET and HEAD have none). */
export async function readBody(request: Request): Promise<ParsedBody> {
  if (request.method === "GET" || request.method === "HEAD" || request.body === null) return EMPTY;
  const type = request.headers.get("content-type") ?? "";
  const bytes = await request.arrayBuffer();
  if (/^multipart\/form-data/i.test(type)) {
    const form = await new Response(bytes, { headers: { "content-type": type } }).formData().catch(() => undefined);
    return { text: "", form, summary: form === undefined ? undefined : summarise(form) };
  }
  const text = new TextDecoder().decode(bytes);
  return { text, form: undefined, summary: text === "" ? undefined : parseOrText(text) };
}

function parseOrText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function summarise(form: FormData): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of form) {
    out[name] = typeof value === "string" ? value : { filename: value.name, type: value.type, size: value.size };
  }
  return out;
}
