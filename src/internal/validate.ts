// Private to kefu-edge (see README.md beside this file): turns zod failures into
// ValidationError naming the field.
import * as z from "./zod.ts";
import { ValidationError } from "../errors.ts";

/**
 * Parses `value` with `schema`; on failure throws {@link ValidationError} whose
 * `field` is `root` joined with the path of the first issue (e.g. `link.url`).
 */
export function validate<S extends z.core.$ZodType>(schema: S, value: unknown, root: string): z.output<S> {
  const result = z.safeParse(schema, value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  throw new ValidationError(
    issue === undefined ? root || "input" : issueField(issue, root),
    issue?.message ?? "invalid value",
  );
}

/**
 * The dotted name of the field a zod issue is about, under `root`: `text.content`; for an
 * unknown key its full path (`text.contnet`); `root` (or `body`) for the whole input. The SDK
 * and the HTTP API name fields with this one function.
 */
export function issueField(issue: z.core.$ZodIssue, root = ""): string {
  const path = [root, ...issue.path.map(String)];
  if (issue.code === "unrecognized_keys" && issue.keys[0] !== undefined) path.push(issue.keys[0]);
  const field = path.filter((part) => part !== "").join(".");
  return field === "" ? "body" : field;
}
