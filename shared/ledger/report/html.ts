/**
 * Markup built so that ledger text can never become markup. Everything in a ledger is untrusted input —
 * a site names itself, a refusal carries the site's own message — so the report is written only with the
 * `html` template tag, which escapes every interpolated value unless it is already Html (made by `html`
 * itself). Nothing else in this folder concatenates strings into markup.
 */

/** Markup that is safe to insert as is: only `html` and `trusted` make one. */
export class Html {
  private constructor(readonly text: string) {}

  /** @internal Used by `html` and `trusted` only. */
  static of(text: string): Html {
    return new Html(text);
  }

  toString(): string {
    return this.text;
  }
}

/** What may be interpolated: text and numbers are escaped; lists are joined; null, undefined and false are nothing. */
export type HtmlPart = Html | string | number | boolean | null | undefined | readonly HtmlPart[];

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/**
 * Text made safe for element content and for quoted attribute values alike (every attribute in this
 * folder is double-quoted, and single quotes are escaped too in case one is not).
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

export function html(strings: TemplateStringsArray, ...values: HtmlPart[]): Html {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += partText(values[i]) + strings[i + 1];
  return Html.of(out);
}

/**
 * Constant markup written in this folder (the style sheet): never pass it anything read from a ledger.
 */
export function trusted(constant: string): Html {
  return Html.of(constant);
}

function partText(part: HtmlPart): string {
  if (part instanceof Html) return part.text;
  if (part === null || part === undefined || part === false) return "";
  if (Array.isArray(part)) return part.map(partText).join("");
  return escapeHtml(String(part));
}
