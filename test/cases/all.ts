// Every shared case file, imported once for its side effect of registering cases.
import "./core_customer_service.ts";
import "./core_token.ts";
import "./core_portability.ts";
import "./core_stores.ts";
import "./publish_exports.ts";
import "./push_crypto.ts";
import "./push_receiver.ts";
import "./push_fuzz.ts";
import "./push_xml.ts";
import "./security.ts";
import "./push_claims.ts";
import "./emulator_tokens.ts";
import "./emulator_send.ts";
import "./emulator_api.ts";
import "./emulator_push.ts";
import "./emulator_sdk.ts";
