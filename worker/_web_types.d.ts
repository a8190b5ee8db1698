// @cloudflare/workers-types is stricter than the WHATWG/HTML standards in two places the
// portable core relies on; these declarations restore the standard signatures (workerd
// accepts both at run time).
// - TextDecoder options: both members are optional (https://encoding.spec.whatwg.org/#textdecoderoptions).
interface TextDecoderConstructorOptions {
  fatal: boolean;
  ignoreBOM?: boolean;
}
// - clearTimeout takes an optional id (https://html.spec.whatwg.org/#dom-cleartimeout).
declare function clearTimeout(timeoutId?: number | null): void;
