// Private: the emulated user — actions that open the send window and the pushes they cause.
import type { MediaStore } from "./_media.ts";
import type { UserState } from "./_user_state.ts";
import { buildPush, type BuiltPush, deliverPush, deliverySettings, type PushTarget } from "./push.ts";
import type { SendWindow } from "../customer_service/send_window.ts";
// The core's typed push kinds: a push the emulator builds is checked against the kind's type.
import { kindDiscriminant, type KindFields, type KnownPushMessages } from "../push/types.ts";
import type {
  DeliverOptions,
  DeliveryOutcome,
  EmulatedUser,
  InboxEntry,
  MiniProgramPageInput,
  PushAction,
  PushBuildOptions,
  PushFields,
  RequestHandler,
  SubscribeChoice,
} from "./types.ts";

/** What every user of one emulator shares. */
export interface UserContext {
  readonly appId: string;
  readonly originalId: string;
  readonly media: MediaStore;
  /** The push config, or undefined when the emulator has none. */
  readonly target: (PushTarget & { timeoutMs?: number; retries?: number }) | undefined;
  /** The subscribe-message templates, or undefined to accept any. */
  readonly templates: Readonly<Record<string, readonly string[]>> | undefined;
  now(): number;
  nextMsgId(): string;
}

/** What the user sees when WeChat gives up on a push (spec §6.5). */
export const UNAVAILABLE_NOTICE = "该小程序客服暂时无法提供服务，请稍后再试";

// A 1×1 PNG: the default cover of a mini-program card a user sends.
const PIXEL_PNG = Uint8Array.from(
  atob("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="),
  (c) => c.charCodeAt(0),
);

/** The public face of a {@link UserState}. */
export class User implements EmulatedUser {
  readonly openId: string;
  readonly #state: UserState;
  readonly #context: UserContext;

  constructor(state: UserState, context: UserContext) {
    this.openId = state.openId;
    this.#state = state;
    this.#context = context;
  }

  get window(): SendWindow | undefined {
    return this.#state.window;
  }

  get typing(): boolean {
    return this.#state.typing;
  }

  says(text: string, options?: PushBuildOptions): Promise<PushAction> {
    this.#state.act("message");
    return this.#push("text", { Content: text, MsgId: this.#context.nextMsgId() }, options);
  }

  sendsImage(bytes: Uint8Array, contentType = "image/jpeg", options?: PushBuildOptions): Promise<PushAction> {
    this.#state.act("message");
    const media = this.#context.media.store(bytes, contentType, "user");
    return this.#push("image", {
      PicUrl: cdnUrl(media.mediaId),
      MediaId: media.mediaId,
      MsgId: this.#context.nextMsgId(),
    }, options);
  }

  sendsMiniProgramPage(page: MiniProgramPageInput, options?: PushBuildOptions): Promise<PushAction> {
    this.#state.act("message");
    const thumb = this.#context.media.store(page.thumb ?? PIXEL_PNG, page.thumbContentType ?? "image/png", "user");
    return this.#push("miniprogrampage", {
      MsgId: this.#context.nextMsgId(),
      Title: page.title,
      AppId: page.appId ?? this.#context.appId,
      PagePath: page.pagePath,
      ThumbUrl: cdnUrl(thumb.mediaId),
      ThumbMediaId: thumb.mediaId,
    }, options);
  }

  visits(): void {
    this.#state.visit();
  }

  entersSession(sessionFrom = "", options?: PushBuildOptions): Promise<PushAction> {
    this.#state.act("session");
    return this.#push("user_enter_tempsession", { SessionFrom: sessionFrom }, options);
  }

  subscribes(
    choices: string | SubscribeChoice | readonly SubscribeChoice[],
    options?: PushBuildOptions,
  ): Promise<PushAction> {
    const list: readonly SubscribeChoice[] = typeof choices === "string"
      ? [{ templateId: choices }]
      : Array.isArray(choices)
      ? choices
      : [choices as SubscribeChoice];
    if (list.length === 0) throw new TypeError("subscribes needs at least one template");
    const items = list.map((choice) => {
      const status = choice.status ?? "accept";
      this.#requireTemplate(choice.templateId);
      this.#state.subscribe(choice.templateId, status, choice.longTerm === true);
      // [UNCERTAIN] PopupScene: 2 is "other pages", where a contact session's popup appears.
      return { TemplateId: choice.templateId, SubscribeStatusString: status, PopupScene: "2" };
    });
    return this.#push("subscribe_msg_popup_event", { List: items }, options);
  }

  changesSubscription(
    templateId: string,
    status: "accept" | "reject",
    options?: PushBuildOptions,
  ): Promise<PushAction> {
    this.#requireTemplate(templateId);
    this.#state.subscribe(templateId, status, true);
    return this.#push("subscribe_msg_change_event", {
      List: [{ TemplateId: templateId, SubscribeStatusString: status }],
    }, options);
  }

  takeSubscribeSentEvents(): Promise<PushAction[]> {
    return Promise.all(
      this.#state.takeSent().map(({ templateId, msgid }) =>
        this.#push("subscribe_msg_sent_event", {
          List: [{ TemplateId: templateId, MsgID: msgid, ErrorCode: "0", ErrorStatus: "success" }],
        })
      ),
    );
  }

  #requireTemplate(templateId: string): void {
    if (typeof templateId !== "string" || !/^[A-Za-z0-9_-]{1,128}$/.test(templateId)) {
      throw new TypeError("templateId must be a template id");
    }
    const templates = this.#context.templates;
    if (templates !== undefined && !Object.hasOwn(templates, templateId)) {
      throw new TypeError(`Unknown template: ${templateId} (give it in createEmulator's templates)`);
    }
  }

  inbox(): InboxEntry[] {
    return [...this.#state.entries];
  }

  async #push<K extends keyof KnownPushMessages>(
    kind: K,
    fields: KindFields<K> & PushFields,
    options: PushBuildOptions = {},
  ): Promise<PushAction> {
    const { target, originalId, now } = this.#context;
    const createTime = Math.floor(now() / 1000);
    const message: PushFields = {
      ToUserName: originalId,
      FromUserName: this.openId,
      CreateTime: createTime,
      ...kindDiscriminant(kind),
      ...fields,
    };
    const built = target === undefined
      ? undefined
      : await buildPush(target, message, { ...options, timestamp: options.timestamp ?? String(createTime) });
    return new Push(message, built, target, () => {
      // Only messages make WeChat show the failure notice; events are silent.
      if (message.MsgId !== undefined) this.#state.notice(UNAVAILABLE_NOTICE);
    });
  }
}

class Push implements PushAction {
  readonly message: PushFields;
  readonly msgId: string | undefined;
  readonly #built: BuiltPush | undefined;
  readonly #target: UserContext["target"];
  readonly #onGiveUp: () => void;

  constructor(message: PushFields, built: BuiltPush | undefined, target: UserContext["target"], onGiveUp: () => void) {
    this.message = message;
    this.msgId = message.MsgId === undefined ? undefined : String(message.MsgId);
    this.#built = built;
    this.#target = target;
    this.#onGiveUp = onGiveUp;
  }

  request(): Request {
    return this.#require().request();
  }

  async deliver(handler?: RequestHandler, options?: DeliverOptions): Promise<DeliveryOutcome> {
    const built = this.#require();
    const target = this.#target;
    if (target === undefined) throw new Error("Cannot deliver the push: createEmulator was given no push config");
    let send = handler;
    if (send === undefined && target.url !== undefined) send = (request) => globalThis.fetch(request);
    if (send === undefined) throw new Error("Cannot deliver the push: pass a handler or set push.url");
    const outcome = await deliverPush(built, send, deliverySettings(target, options));
    if (!outcome.ok) this.#onGiveUp();
    return outcome;
  }

  #require(): BuiltPush {
    if (this.#built === undefined) throw new Error("Cannot build the push: createEmulator was given no push config");
    return this.#built;
  }
}

function cdnUrl(mediaId: string): string {
  return `http://mmbiz.qpic.cn/mmbiz_jpg/${mediaId}/0`;
}
