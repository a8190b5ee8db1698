// Private to kefu-edge (see README.md beside this file): the package's one zod import.
// zod/mini has functions where classic zod has methods, so a bundler keeps only what is
// used: the deployed worker is about 20 KiB gzip smaller than with classic zod, whose every
// schema carries `.toJSONSchema()` and the rest. Messages stay the English ones classic zod gives by default; a locale the
// application configured itself is left alone.
import { config } from "zod/mini";
import { en } from "zod/locales";

if (config().localeError === undefined) config(en());

export * from "zod/mini";
