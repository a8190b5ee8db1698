// Preloaded by `deno test --doc` (package.json test:deno): what a doc example prints with
// console.log is checked against the comment on that line (`console.log(x); // "shown"`)
// instead of being printed. An example's n-th console.log call is its n-th console.log
// line; the comment must equal the output, with strings either raw or quoted. A comment in
// words ("40 hex digits") describes the output and is not compared; a line without a
// comment only has its output kept off the test log. Output from anything but an example
// (the library, the runner) is printed as usual.
const EXAMPLE = /(file:\/\/[^\s#)]+)#(\d+)-(\d+)\.ts:\d+:\d+/;
const PROSE = /^[A-Za-z0-9]+( [A-Za-z]+)+$/;
const print = console.log.bind(console);
const calls = new Map<string, number>();
const blocks = new Map<string, (string | undefined)[]>();

/** The output comment of each console.log line of the example at `file` lines `from`..`to`. */
function outputComments(file: string, from: number, to: number): (string | undefined)[] {
  const lines = Deno.readTextFileSync(new URL(file)).split("\n").slice(from - 1, to);
  return lines.filter((line) => line.includes("console.log(")).map((line) => {
    const at = line.lastIndexOf(" // ");
    return at < 0 ? undefined : line.slice(at + 4).trim();
  });
}

/** The output as console.log shows it, strings raw or quoted; `[ 1 ]` reads as `[1]`. */
function render(args: unknown[], quote: boolean): string {
  return args.map((a) => typeof a === "string" ? (quote ? JSON.stringify(a) : a) : Deno.inspect(a)).join(" ")
    .replace(/\[\s+/g, "[").replace(/\s+\]/g, "]");
}

console.log = (...args: unknown[]): void => {
  const caller = new Error().stack?.split("\n")[2] ?? "";
  const match = EXAMPLE.exec(caller);
  if (match === null) return print(...args);
  const [, file, from, to] = match as unknown as [string, string, string, string];
  const key = `${file}#${from}-${to}`;
  const index = calls.get(key) ?? 0;
  calls.set(key, index + 1);
  let comments = blocks.get(key);
  if (comments === undefined) blocks.set(key, comments = outputComments(file, Number(from), Number(to)));
  const shown = comments[index];
  if (shown === undefined || PROSE.test(shown)) return;
  const raw = render(args, false);
  if (shown !== raw && shown !== render(args, true)) {
    throw new Error(`${file.replace(/^file:\/\//, "")}:${from}: the example prints ${raw}, its comment shows ${shown}`);
  }
};
