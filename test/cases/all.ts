// Every shared case file, imported once for its side effect of registering cases.
import "./core_customer_service.ts";
