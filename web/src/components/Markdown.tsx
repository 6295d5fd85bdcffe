// A small Markdown renderer for run descriptions that builds elements, never HTML strings:
// whatever the text contains ends up as text nodes, so it cannot inject markup. It covers
// headings, paragraphs, lists, code blocks, inline code, emphasis and http(s) links.

import type { ComponentChildren } from "preact";

function inline(text: string): ComponentChildren[] {
  const out: ComponentChildren[] = [];
  const pattern = /(`[^`]+`)|(\*\*[^*]+\*\*)|(\*[^*]+\*)|(\[[^\]]+\]\([^)\s]+\))/g;
  let last = 0;
  for (let m = pattern.exec(text); m; m = pattern.exec(text)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    const token = m[0];
    if (m[1]) out.push(<code>{token.slice(1, -1)}</code>);
    else if (m[2]) out.push(<strong>{token.slice(2, -2)}</strong>);
    else if (m[3]) out.push(<em>{token.slice(1, -1)}</em>);
    else {
      const close = token.indexOf("](");
      const label = token.slice(1, close);
      const href = token.slice(close + 2, -1);
      // Only web links: a `javascript:` address must never become clickable.
      out.push(/^https?:\/\//i.test(href) ? <a href={href} rel="noopener noreferrer" target="_blank">{label}</a> : token);
    }
    last = m.index + token.length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

export function Markdown({ text }: { text: string }) {
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  const blocks: ComponentChildren[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.startsWith("```")) {
      const body: string[] = [];
      i++;
      while (i < lines.length && !lines[i]!.startsWith("```")) body.push(lines[i++]!);
      i++;
      blocks.push(<pre><code>{body.join("\n")}</code></pre>);
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading) {
      const level = Math.min(heading[1]!.length + 2, 6);
      const Tag = `h${level}` as "h3";
      blocks.push(<Tag>{inline(heading[2]!)}</Tag>);
      i++;
      continue;
    }
    if (/^\s*[-*]\s+/.test(line)) {
      const items: ComponentChildren[] = [];
      while (i < lines.length && /^\s*[-*]\s+/.test(lines[i]!)) items.push(<li>{inline(lines[i++]!.replace(/^\s*[-*]\s+/, ""))}</li>);
      blocks.push(<ul>{items}</ul>);
      continue;
    }
    if (line.trim() === "") {
      i++;
      continue;
    }
    const para: string[] = [];
    while (i < lines.length && lines[i]!.trim() !== "" && !/^(#{1,6}\s|```|\s*[-*]\s)/.test(lines[i]!)) para.push(lines[i++]!);
    blocks.push(<p>{inline(para.join(" "))}</p>);
  }
  return <div class="markdown">{blocks}</div>;
}
