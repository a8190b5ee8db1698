// Private: turns zod failures into ValidationError naming the field.
import * as z from "./_zod.ts";
import { ValidationError } from "./errors.ts";

/**
 * Parses `value` with `schema`; on failure throws {@link ValidationError} whose
 * `field` is `root` joined with the path of the first issue (e.g. `link.url`).
 */
export function validate<S extends z.core.$ZodType>(schema: S, value: unknown, root: string): z.output<S> {
  const result = z.safeParse(schema, value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = [root, ...(issue?.path ?? []).map(String)].filter((part) => part !== "").join(".");
  throw new ValidationError(path || "input", issue?.message ?? "invalid value");
}
