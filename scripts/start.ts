// `npm start`: the local dev server (see _dev_server.ts). Extra arguments go to `wrangler dev`,
// e.g. `npm start -- --port 8788` or `npm start -- --var WELCOME_TEXT:Hello`.
import { start } from "./_dev_server.ts";

process.exitCode = await start(process.argv.slice(2));
