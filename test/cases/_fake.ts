// Inline fake fetch for unit tests: records every Request and answers with a handler.
export interface Recorded {
  request: Request;
  url: URL;
  /** The body when it is text (JSON, form fields, text/*); empty for multipart and binary bodies: read `request`. */
  body: string;
}

export type FakeHandler = (request: Request, url: URL, index: number) => Response | Promise<Response>;

export interface FakeFetch {
  fetch: typeof fetch;
  calls: Recorded[];
  /** Calls whose path is `path`. */
  to(path: string): Recorded[];
}

export const TOKEN_PATH = "/cgi-bin/stable_token";

/** A fake that answers stable_token with `ACCESS_TOKEN_1` and everything else with `handler`. */
export function fakeFetch(handler: FakeHandler = () => json({ errcode: 0, errmsg: "ok" })): FakeFetch {
  const calls: Recorded[] = [];
  let tokenCount = 0;
  const fetchFn = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = input instanceof Request && init === undefined ? input : new Request(input, init);
    const url = new URL(request.url);
    const body = request.method === "GET" || !isText(request.headers.get("content-type"))
      ? ""
      : await request.clone().text();
    calls.push({ request, url, body });
    if (url.pathname === TOKEN_PATH) {
      tokenCount++;
      return json({ access_token: `ACCESS_TOKEN_${tokenCount}`, expires_in: 7200 });
    }
    return handler(request, url, calls.length - 1);
  };
  return {
    fetch: fetchFn as typeof fetch,
    calls,
    to: (path) => calls.filter((c) => c.url.pathname === path),
  };
}

/** Whether a body of this Content-Type is text to compare as a string (no type: the SDK's JSON calls). */
function isText(contentType: string | null): boolean {
  const type = (contentType ?? "").toLowerCase();
  return type === "" || type.startsWith("text/") || type.includes("json") || type.includes("x-www-form-urlencoded");
}

export function json(body: unknown, init: ResponseInit = {}): Response {
  return new Response(JSON.stringify(body), {
    ...init,
    headers: { "content-type": "application/json; encoding=utf-8", ...(init.headers ?? {}) },
  });
}

export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
