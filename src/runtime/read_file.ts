// Adapter: reads an upload from a file path on Deno, Bun and Node, all of which
// provide node:fs/promises through `process.getBuiltinModule` (Node >= 20.16).
// No import statement names it, so bundlers for Workers (where there is no file
// system) leave it alone, JSR can analyse the module graph, and the core still
// type-checks with Web libs only.
import { MediaTooLargeError, ValidationError } from "../errors.ts";

interface FsLike {
  stat(path: string): Promise<{ size: number; isFile(): boolean }>;
  readFile(path: string): Promise<Uint8Array>;
}

interface ProcessLike {
  getBuiltinModule?(id: string): unknown;
}

/**
 * Reads `path` into memory after checking its size against `limit`.
 * Throws {@link ValidationError} when the runtime has no file system or the file is missing.
 */
export async function readFileFromPath(path: string, limit: number): Promise<Uint8Array<ArrayBuffer>> {
  const runtime = (globalThis as { process?: ProcessLike }).process;
  const fs = runtime?.getBuiltinModule?.("node:fs/promises") as FsLike | undefined;
  if (fs === undefined) {
    throw new ValidationError(
      "media",
      "this runtime has no file system: pass the bytes, a Blob or a File with { filename } instead of a path",
    );
  }
  let size: number;
  try {
    const stat = await fs.stat(path);
    if (!stat.isFile()) throw new Error("not a file");
    size = stat.size;
  } catch {
    // Workers with nodejs_compat have a node:fs without the deployer's files.
    throw new ValidationError(
      "media",
      `cannot read file ${
        JSON.stringify(path)
      } (where there is no file system, as on Workers, pass the bytes, a Blob or a File with { filename })`,
    );
  }
  if (size > limit) throw new MediaTooLargeError(size, limit);
  const bytes = await fs.readFile(path);
  return new Uint8Array(bytes);
}
