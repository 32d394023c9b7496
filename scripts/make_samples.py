"""Regenerate the bundled sample documents in ``samples/`` (committed; run this only to change them).

    .venv/bin/python scripts/make_samples.py

* ``solar_report.pdf``: two pages of text and a raster bar chart (a real embedded image).
* ``inverter_fault.png``: a screenshot of an inverter app showing fault E-217 (text only OCR reads).
* ``maintenance.md``: a Markdown page with a linked image (``images/panel_cleaning.png``).
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from PIL import Image, ImageDraw, ImageFont

OUT = Path(__file__).resolve().parents[1] / "samples"
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
OUTPUT_KWH = [182, 240, 365, 448, 530, 571, 596, 540, 420, 301, 196, 158]

REPORT_PAGES = [
    (
        "Rooftop Solar Report 2025",
        "This report covers the 6.2 kWp rooftop installation at the Lindenweg community centre. "
        "The array has 16 monocrystalline panels facing south at a tilt of 35 degrees, connected to "
        "a single string inverter.\n\n"
        "Total production in 2025 was 4,547 kWh, 6 percent above the installer's estimate. July was "
        "the best month with 596 kWh; December the weakest with 158 kWh. Figure 1 shows the monthly "
        "output.\n\n"
        "Self-consumption reached 71 percent thanks to the daytime heat pump schedule; the rest was "
        "exported to the grid.",
    ),
    (
        "Faults and maintenance",
        "The inverter logged fault E-217 (grid voltage too high) on nine summer afternoons, each time "
        "disconnecting for about fifteen minutes. The grid operator confirmed high local voltage and "
        "adjusted the transformer tap in September; no E-217 faults occurred afterwards.\n\n"
        "The panels were cleaned once, in April, which raised output by roughly 3 percent. See the "
        "maintenance page for the cleaning procedure.",
    ),
]


def bar_chart_png() -> Image.Image:
    fig, ax = plt.subplots(figsize=(6, 3), dpi=120)
    ax.bar(MONTHS, OUTPUT_KWH, color="#f2a900")
    ax.set_title("Figure 1: Monthly solar output 2025 (kWh)")
    ax.set_ylabel("kWh")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def report_pdf(path: Path) -> None:
    from matplotlib.backends.backend_pdf import PdfPages

    plt.rcParams["pdf.fonttype"] = 42  # real text, extractable
    chart = bar_chart_png()
    with PdfPages(path) as pdf:
        for number, (title, body) in enumerate(REPORT_PAGES, start=1):
            fig = plt.figure(figsize=(8.27, 11.69))  # A4
            fig.text(0.08, 0.94, title, fontsize=18, weight="bold")
            import textwrap

            lines = []
            for para in body.split("\n\n"):
                lines += [*textwrap.wrap(para, 88), ""]
            fig.text(0.08, 0.90, "\n".join(lines), fontsize=10.5, va="top", linespacing=1.5)
            if number == 1:
                ax = fig.add_axes((0.08, 0.22, 0.84, 0.36))
                ax.imshow(chart)  # embedded as a raster image
                ax.axis("off")
            fig.text(0.5, 0.03, f"page {number}", ha="center", fontsize=8)
            pdf.savefig(fig)
            plt.close(fig)


def fault_screenshot(path: Path) -> None:
    img = Image.new("RGB", (900, 420), (245, 246, 248))
    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, 900, 70], fill=(32, 45, 64))
    d.text((24, 18), "SolarView  -  Inverter status", font=ImageFont.load_default(size=30), fill="white")
    big, mid = ImageFont.load_default(size=40), ImageFont.load_default(size=28)
    d.rectangle([24, 100, 876, 380], outline=(200, 40, 40), width=4, fill="white")
    d.text((50, 125), "FAULT E-217", font=big, fill=(200, 40, 40))
    d.text((50, 195), "Grid voltage too high", font=mid, fill=(30, 30, 30))
    d.text((50, 245), "Inverter disconnected from the grid", font=mid, fill=(30, 30, 30))
    d.text((50, 305), "Reconnecting in 15 minutes", font=mid, fill=(90, 90, 90))
    img.save(path)


def cleaning_diagram(path: Path) -> None:
    img = Image.new("RGB", (640, 360), (225, 238, 250))
    d = ImageDraw.Draw(img)
    for row in range(2):
        for col in range(4):
            x, y = 60 + col * 135, 60 + row * 120
            d.rectangle([x, y, x + 120, y + 100], fill=(25, 55, 120), outline=(200, 200, 200), width=3)
    d.line([(40, 320), (600, 40)], fill=(0, 150, 255), width=8)
    d.text((40, 330), "soft brush + deionised water, top to bottom", font=ImageFont.load_default(size=20), fill="black")
    img.save(path)


MAINTENANCE_MD = """\
# Panel maintenance

Clean the panels once or twice a year, early in the morning while they are cool. Use a soft brush
and deionised water; never use a pressure washer or detergents, which damage the anti-reflective
coating.

![Cleaning diagram: brush the panels from top to bottom with deionised water](images/panel_cleaning.png)

## Inverter faults

If the inverter shows **fault E-217**, the grid voltage at the connection point is above the limit
(253 V). The inverter disconnects by itself and reconnects after 15 minutes. Nothing on the roof
needs fixing: if the fault repeats, ask the grid operator to check the local voltage or the
transformer tap setting.
"""


def main() -> None:
    (OUT / "images").mkdir(parents=True, exist_ok=True)
    report_pdf(OUT / "solar_report.pdf")
    fault_screenshot(OUT / "inverter_fault.png")
    cleaning_diagram(OUT / "images" / "panel_cleaning.png")
    (OUT / "maintenance.md").write_text(MAINTENANCE_MD)
    print(f"samples written to {OUT}")


if __name__ == "__main__":
    main()
