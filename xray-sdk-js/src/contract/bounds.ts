/**
 * Bounding text as the Python contract does (xray_sdk/contract/bounds.py). Lengths are in
 * characters (code points), as the server counts them: a JavaScript string's `length` counts
 * UTF-16 units, and cutting by units could split a surrogate pair into unstorable halves.
 */
import { TRUNCATION_MARKER, UNSTORABLE_TEXT, UNSTORABLE_TEXT_ALL } from "../vocabulary.generated.js";

/** `text` with NUL characters and unpaired surrogates replaced by U+FFFD. */
export function cleanText(text: string): string {
  return UNSTORABLE_TEXT.test(text) ? text.replace(UNSTORABLE_TEXT_ALL, "\ufffd") : text;
}

/** The number of characters (code points) in `text`. */
export function charCount(text: string): number {
  let count = text.length;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        count--;
        i++;
      }
    }
  }
  return count;
}

/** The first `max` characters of `text` (whole code points). */
export function firstChars(text: string, max: number): string {
  if (text.length <= max) return text; // units >= code points: nothing to cut
  return Array.from(text).slice(0, max).join("");
}

/** Cut `text` to at most `maxChars` characters, marker included; say whether it was cut. */
export function truncateText(text: string, maxChars: number): [string, boolean] {
  if (text.length <= maxChars) return [text, false];
  const chars = Array.from(text);
  if (chars.length <= maxChars) return [text, false];
  const marker = (dropped: number) => TRUNCATION_MARKER.replace("{dropped}", String(dropped));
  const keep = Math.max(0, maxChars - charCount(marker(chars.length)));
  return [chars.slice(0, keep).join("") + marker(chars.length - keep), true];
}
