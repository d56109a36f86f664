import { describe, expect, it } from "vitest";
import { escapeHtml, html, trusted } from "./html.js";

describe("html", () => {
  it("escapes every character that could open markup or leave an attribute", () => {
    expect(escapeHtml(`<script>alert("x")</script> & 'y'`)).toBe("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;");
  });

  it("escapes interpolated text in content and in attributes, but not markup it made itself", () => {
    const name = `"><script>alert(1)</script>`;
    const cell = html`<td title="${name}">${name}</td>`;
    expect(html`<tr>${cell}</tr>`.toString()).toBe(
      "<tr><td title=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\">&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;</td></tr>",
    );
  });

  it("joins lists, writes numbers, and leaves out null, undefined and false", () => {
    expect(html`${["<a>", html`<b>`, 1.5]}|${null}${undefined}${false}|`.toString()).toBe("&lt;a&gt;<b>1.5||");
  });

  it("passes constant markup through trusted, and only that", () => {
    expect(html`<style>${trusted("a > b {}")}</style>`.toString()).toBe("<style>a > b {}</style>");
    expect(html`<style>${"a > b {}"}</style>`.toString()).toBe("<style>a &gt; b {}</style>");
  });
});
