"""Render a report (a list of blocks) as Markdown or as one self-contained HTML file.

Blocks: ("h1"|"h2"|"p", text), ("ul", [items]), ("table", header, rows, note),
("figure", key, caption). HTML embeds each figure as a base64 ``data:image/svg+xml`` image
(no network, no scripts, element ids isolated per plot); Markdown links the SVG files
written beside it, or says why a plot is missing.
"""

from __future__ import annotations

import base64
import html

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       margin: 2em auto; max-width: 1180px; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { font-size: 1.25em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .6em 0; font-size: .85em; }
th, td { border: 1px solid #ccc; padding: .25em .5em; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; white-space: normal; vertical-align: bottom; }
div.wide { overflow-x: auto; }
td:first-child, th:first-child, td:nth-child(2), th:nth-child(2) { text-align: left; }
tr.bad td { color: #a00; }
td.span { text-align: left; }
p.note { font-size: .85em; color: #555; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: .85em; color: #555; }
code { background: #f4f4f4; padding: 0 .2em; }
"""


def _md_cell(x) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list, figure_files: dict[str, str | None], figure_notes: dict[str, str]) -> str:
    out: list[str] = []
    for b in blocks:
        kind = b[0]
        if kind == "h1":
            out += [f"# {b[1]}", ""]
        elif kind == "h2":
            out += [f"## {b[1]}", ""]
        elif kind == "p":
            out += [b[1], ""]
        elif kind == "ul":
            out += [f"- {item}" for item in b[1]] + [""]
        elif kind == "table":
            header, rows, note = b[1], b[2], b[3]
            out.append("| " + " | ".join(_md_cell(h) for h in header) + " |")
            out.append("|" + "|".join(["---", "---"] + ["---:"] * (len(header) - 2)) + "|")
            for r in rows:
                cells = list(r["cells"]) + [""] * (len(header) - len(r["cells"]))
                out.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
            out.append("")
            if note:
                out += [f"*{note}*", ""]
        elif kind == "figure":
            key, caption = b[1], b[2]
            f = figure_files.get(key)
            if f:
                out += [f"![{caption}]({f})", "", f"*{caption}*", ""]
            else:
                out += [f"*Plot omitted ({figure_notes.get(key, 'not rendered')}): {caption}*", ""]
    return "\n".join(out).rstrip() + "\n"


def to_html(title: str, blocks: list, figures: dict[str, str | None], figure_notes: dict[str, str]) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{e(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>"]
    for b in blocks:
        kind = b[0]
        if kind in ("h1", "h2"):
            out.append(f"<{kind}>{e(b[1])}</{kind}>")
        elif kind == "p":
            out.append(f"<p>{_inline(b[1])}</p>")
        elif kind == "ul":
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in b[1]) + "</ul>")
        elif kind == "table":
            header, rows, note = b[1], b[2], b[3]
            out.append('<div class="wide"><table><thead><tr>' + "".join(f"<th>{e(str(h))}</th>" for h in header) + "</tr></thead><tbody>")
            for r in rows:
                cls = ' class="bad"' if r.get("bad") else ""
                cells = [f"<td>{e(str(c))}</td>" for c in r["cells"]]
                short = len(header) - len(r["cells"])
                if short > 0:  # a status row: its last cell spans the rest
                    cells[-1] = f'<td colspan="{short + 1}" class="span">{e(str(r["cells"][-1]))}</td>'
                out.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
            out.append("</tbody></table></div>")
            if note:
                out.append(f'<p class="note">{_inline(note)}</p>')
        elif kind == "figure":
            key, caption = b[1], b[2]
            svg = figures.get(key)
            if svg:
                data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
                out.append(f'<figure id="fig-{e(key)}"><img alt="{e(caption)}" src="data:image/svg+xml;base64,{data}">'
                           f"<figcaption>{e(caption)}</figcaption></figure>")
            else:
                out.append(f'<p class="note">Plot omitted ({e(figure_notes.get(key, "not rendered"))}): '
                           f"{e(caption)}</p>")
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def _inline(text: str) -> str:
    """Escape, then turn `code` spans into <code> (the only inline markup we use)."""
    parts = html.escape(text).split("`")
    text = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
    parts = text.split("**")
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))
