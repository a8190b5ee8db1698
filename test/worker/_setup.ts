// Runs in every workerd test file: no log line of a test app may carry a credential or a stack.
import { afterEach } from "vitest";
import { expectCleanLogs, takeLogs } from "./_helpers.ts";

afterEach(() => expectCleanLogs(takeLogs()));
