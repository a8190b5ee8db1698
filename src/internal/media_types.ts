// Private to kefu-edge (see README.md beside this file): media types and file extensions,
// for naming uploads and downloads.

const EXT_BY_TYPE: Record<string, string> = {
  "image/jpeg": ".jpg",
  "image/jpg": ".jpg",
  "image/pjpeg": ".jpg",
  "image/png": ".png",
  "image/gif": ".gif",
  "image/bmp": ".bmp",
  "image/webp": ".webp",
  "audio/amr": ".amr",
  "audio/mpeg": ".mp3",
  "video/mp4": ".mp4",
};

const TYPE_BY_EXT: Record<string, string> = {
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  png: "image/png",
  gif: "image/gif",
  bmp: "image/bmp",
  webp: "image/webp",
};

/**
 * The image types WeChat takes as temporary media. [UNCERTAIN] the mini-program docs name
 * none; these are the Official Account temp-media formats (PNG, JPEG, JPG, GIF), the spec's
 * closest source. The emulator accepts these and no others.
 */
export const WECHAT_IMAGE_TYPES: ReadonlySet<string> = new Set(["image/jpeg", "image/png", "image/gif"]);

/** `image/JPEG; charset=x` → `image/jpeg`. */
export function normaliseType(type: string): string {
  return type.split(";")[0]?.trim().toLowerCase() ?? "";
}

/** The extension (with its dot) for a Content-Type, or `undefined`. */
export function extensionForType(type: string): string | undefined {
  return EXT_BY_TYPE[normaliseType(type)];
}

/** The image type a file name's extension stands for, or `undefined`. */
export function typeForFileName(name: string | undefined): string | undefined {
  const ext = /\.([A-Za-z0-9]+)$/.exec(name ?? "")?.[1]?.toLowerCase();
  return ext === undefined ? undefined : TYPE_BY_EXT[ext];
}
