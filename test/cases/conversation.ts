// The conversation contract on the in-memory engine, with a clock the test moves.
import { MemoryConversationStore } from "../../mod.ts";
import { conversationCases } from "./_conversation_suite.ts";
import { test } from "./_registry.ts";

for (const [name, fn] of conversationCases) {
  test(`conversation (memory): ${name}`, () =>
    fn((settings = {}) => {
      let now = Date.now();
      const store = new MemoryConversationStore({ ...settings, now: () => now });
      return Promise.resolve({ store, advance: (ms: number) => Promise.resolve(void (now += ms)) });
    }));
}
