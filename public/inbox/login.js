// @ts-check
// The inbox's login page: says why the last attempt was refused (`?error=invalid|limited`).

/** What each refusal says. */
const MESSAGES = /** @type {Record<string, string>} */ ({
  invalid: "Wrong name or password.",
  limited: "Too many attempts: wait 15 minutes, then try again.",
});

const reason = new URLSearchParams(location.search).get("error");
const shown = document.getElementById("login-error");
if (shown !== null && reason !== null) {
  shown.textContent = MESSAGES[reason] ?? "Sign-in failed.";
  shown.hidden = false;
}

export {};
