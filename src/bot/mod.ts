/**
 * The AI customer-service bot: {@link aiBot} answers users from their conversation with an
 * OpenAI-compatible chat model and hands them to a person when it cannot help. The package's
 * entry (`mod.ts`) names what of it is public.
 *
 * @module
 */
export * from "./ai_bot.ts";
export * from "./chat_model.ts";
export * from "./turns.ts";
