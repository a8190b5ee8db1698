// The AI bot against the fake model in process (its fetch injected), on every runtime.
import { createFakeChatModel } from "../../src/testing/mod.ts";
import { botCases } from "./_bot_suite.ts";
import { test } from "./_registry.ts";

for (const [name, fn] of botCases) {
  test(`AI bot: ${name}`, () =>
    fn((options) => {
      const model = createFakeChatModel(options);
      // No server: the URL is never dialled, the fake answers through the injected fetch.
      return Promise.resolve({
        baseUrl: "http://127.0.0.1:9/v1",
        fetch: model.fetch as typeof fetch,
        requests: model.requests,
        close: () => Promise.resolve(),
      });
    }));
}
