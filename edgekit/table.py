"""Plain-text tables for people (JSON is for machines)."""


def _fmt(value, digits):
    if isinstance(value, float):
        return ("%." + str(digits) + "f") % value
    if value is None:
        return "-"
    return str(value)


def format_table(rows, headers, digits=2, title=None):
    """rows: list of lists (or dicts keyed by header). Numbers right-aligned."""
    cells = []
    for row in rows:
        if isinstance(row, dict):
            row = [row.get(h) for h in headers]
        cells.append([_fmt(v, digits) for v in row])
    numeric = []
    for i, h in enumerate(headers):
        values = [(r.get(h) if isinstance(r, dict) else r[i]) for r in rows]
        present = [v for v in values if v is not None]
        numeric.append(bool(present) and all(isinstance(v, (int, float)) for v in present))
    widths = [max([len(str(h))] + [len(c[i]) for c in cells]) for i, h in enumerate(headers)]

    def line(values):
        out = []
        for i, v in enumerate(values):
            out.append(v.rjust(widths[i]) if numeric[i] else v.ljust(widths[i]))
        return "  ".join(out).rstrip()

    lines = []
    if title:
        lines.append(title)
    lines.append(line([str(h) for h in headers]))
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(line(c) for c in cells)
    return "\n".join(lines)


def format_markdown(rows, headers, digits=2):
    out = ["| " + " | ".join(str(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        if isinstance(row, dict):
            row = [row.get(h) for h in headers]
        out.append("| " + " | ".join(_fmt(v, digits) for v in row) + " |")
    return "\n".join(out)
