"""Synthetic receipts and invoices with known text, rendered small and noisy (for bench_ocr_quality).

Everything is generated from a seed: the same seed gives the same documents, the same pixels and
the same queries. Nothing is downloaded; fonts are the DejaVu TTFs when installed, else PIL's
default font at a size.

Documents are built so that the queries a user would type have exactly one right answer while
distractors exist:

* company names come from a small word list and a few templates ("SYARIKAT MAJU JAYA SDN BHD",
  "MAJU SINAR TRADING", "SILVER OAK PRINTING LLC"), so companies share words, and street names
  use the same words; no two companies have the same set of words, and none's words are a subset
  of another's;
* totals are unique amounts, but a third of them are near copies of another total (digits
  swapped, 0.10 or 1.00 apart); no amount printed anywhere else equals another document's total;
* dates are printed in several formats (25/12/2018, 2018-12-25, 25-12-18, 25.12.2018,
  Dec 25, 2018), each day on one document only (03/12/2018 and 12/03/2018 may both occur);
* invoice and receipt numbers are near-sequential (INV-00421, INV-00423 ...).
"""

from __future__ import annotations

import io
import math
import random
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
MONO = ("DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf")
PROPORTIONAL = ("DejaVuSans.ttf", "DejaVuSansCondensed.ttf", "DejaVuSerif.ttf", "DejaVuSerifCondensed.ttf")

MALAY_WORDS = (
    "MAJU", "JAYA", "SINAR", "MEGAH", "INDAH", "SETIA", "CAHAYA", "MUTIARA", "PERDANA", "GEMILANG",
    "BINTANG", "MAKMUR", "SENTOSA", "EMAS", "BARU", "TIMUR", "KENCANA", "PERMATA", "HARAPAN", "MESRA",
)
MALAY_TEMPLATES = (
    "SYARIKAT {a} {b} SDN BHD", "{a} {b} TRADING", "{a} {b} ENTERPRISE", "KEDAI RUNCIT {a} {b}",
    "{a} {b} HARDWARE SDN BHD", "RESTORAN {a} {b}", "{a} {b} (M) SDN BHD", "{a} {b} BAKERY",
)
EN_ADJ = ("NORTH", "BLUE", "SILVER", "GREEN", "PACIFIC", "SUMMIT", "RIVER", "CEDAR", "HARBOR", "EAGLE",
          "PIONEER", "MAPLE")
EN_NOUN = ("OAK", "STONE", "BRIDGE", "FIELD", "POINT", "LAKE", "HILL", "VALLEY")
EN_TRADE = ("SUPPLY", "LOGISTICS", "PRINTING", "ELECTRIC", "PLUMBING", "CATERING", "MEDIA", "TOOLS")
EN_SUFFIX = ("INC", "LLC", "LTD", "CO")
CITIES_MY = (("SHAH ALAM", "SELANGOR"), ("PETALING JAYA", "SELANGOR"), ("KLANG", "SELANGOR"),
             ("KUALA LUMPUR", "W.P."), ("JOHOR BAHRU", "JOHOR"), ("IPOH", "PERAK"), ("SEREMBAN", "N.SEMBILAN"),
             ("KAJANG", "SELANGOR"), ("MELAKA", "MELAKA"))
CITIES_US = (("Springfield", "IL"), ("Riverton", "WY"), ("Fairview", "OR"), ("Madison", "WI"),
             ("Georgetown", "TX"), ("Salem", "MA"), ("Franklin", "TN"), ("Clinton", "IA"))
STREET_US = ("Street", "Avenue", "Road", "Drive", "Lane")
ITEMS_MY = ("NASI LEMAK", "TEH TARIK", "MILO AIS", "ROTI CANAI", "MEE GORENG", "AYAM GORENG", "KOPI O",
            "KUEH LAPIS", "ROTI BAKAR", "TELUR SEPARUH MASAK", "PAPER A4 80GSM", "CABLE TIE 8IN",
            "PVC PIPE 1/2", "SCREW 4X25MM", "CAT DINDING 5L", "BERUS CAT 2IN", "GULA PASIR 1KG",
            "BERAS WANGI 5KG", "MINYAK MASAK 2KG", "SABUN BASUH", "AIR MINERAL 1.5L", "ROTI GARDENIA")
ITEMS_EN = ("Printer toner cartridge", "A4 copy paper (box)", "Delivery charge", "Installation labour",
            "Copper pipe 15mm", "LED panel 600x600", "Catering: lunch set", "Design services (hours)",
            "Network cable Cat6 305m", "Office chair", "Stapler heavy duty", "Monthly maintenance")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
DATE_FORMATS = ("dd/mm/yyyy", "yyyy-mm-dd", "dd-mm-yy", "dd.mm.yyyy", "Mon dd, yyyy")


@dataclass
class Receipt:
    """One generated document and the ground truth the queries are built from."""

    name: str  # file stem
    kind: str  # "receipt" | "invoice"
    company: str
    address: list[str]
    street: str  # the address fragment a user would type
    date: str  # as printed
    date_format: str
    number: str  # receipt or invoice number as printed
    total: str  # as printed, with its currency ("RM12.50", "RM 12.50", "$1,234.50")
    items: list[tuple[str, str, str]]  # (description, qty x unit, amount)
    lines: list[str] = field(default_factory=list)  # the whole printed text, line by line
    render: dict[str, Any] = field(default_factory=dict)  # size, font and noise used

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------------ text
def _fmt_date(d: date, fmt: str) -> str:
    return {
        "dd/mm/yyyy": f"{d.day:02d}/{d.month:02d}/{d.year}",
        "yyyy-mm-dd": d.isoformat(),
        "dd-mm-yy": f"{d.day:02d}-{d.month:02d}-{d.year % 100:02d}",
        "dd.mm.yyyy": f"{d.day:02d}.{d.month:02d}.{d.year}",
        "Mon dd, yyyy": f"{MONTHS[d.month - 1]} {d.day:02d}, {d.year}",
    }[fmt]


def _money(cents: int, dollars: bool) -> str:
    return f"{cents / 100:,.2f}" if dollars else f"{cents / 100:.2f}"


def _near(cents: int, rng: random.Random) -> int:
    """An amount a reader could confuse with *cents*: two digits swapped, or 0.10 / 1.00 apart."""
    s = f"{cents:d}"
    if len(s) >= 3 and rng.random() < 0.5:
        i = rng.randrange(len(s) - 1)
        if s[i] != s[i + 1]:
            swapped = s[:i] + s[i + 1] + s[i] + s[i + 2 :]
            if not swapped.startswith("0"):
                return int(swapped)
    return max(50, cents + rng.choice((-100, -10, 10, 100)))


def _companies(n: int, rng: random.Random) -> list[tuple[str, str]]:
    """*n* unique (company, kind) pairs; word sets pairwise distinct and never nested."""
    out: list[tuple[str, str]] = []
    sets: list[frozenset[str]] = []
    while len(out) < n:
        if rng.random() < 0.3:
            kind = "invoice"
            name = f"{rng.choice(EN_ADJ)} {rng.choice(EN_NOUN)} {rng.choice(EN_TRADE)} {rng.choice(EN_SUFFIX)}"
        else:
            kind = "receipt"
            a, b = rng.sample(MALAY_WORDS, 2)
            name = rng.choice(MALAY_TEMPLATES).format(a=a, b=b)
        words = frozenset(name.replace("(M)", "").split())
        if any(words <= s or s <= words for s in sets):
            continue
        sets.append(words)
        out.append((name, kind))
    return out


def _items(kind: str, rng: random.Random, target: int | None) -> tuple[list[tuple[str, int, int]], int]:
    """Items (description, qty, unit cents) whose sum is *target* when given (else random)."""
    names = ITEMS_EN if kind == "invoice" else ITEMS_MY
    count = rng.randint(2, 6)
    unit_hi = 45_000 if kind == "invoice" else 2_500
    items = [(d, rng.randint(1, 4), rng.randint(80, unit_hi) // 5 * 5) for d in rng.sample(names, count)]
    total = sum(q * u for _, q, u in items)
    if target is not None:
        rest = sum(q * u for _, q, u in items[:-1])
        if target - rest < 50:
            return _items(kind, rng, None)  # cannot reach it: a fresh random total instead
        items[-1] = (items[-1][0], 1, target - rest)
        total = target
    return items, total


def make_receipts(n: int, seed: int = 0) -> list[Receipt]:
    """*n* receipts and invoices (about 70 / 30) with their ground truth (not yet rendered)."""
    rng = random.Random(seed)
    companies = _companies(n, rng)
    used_days: set[date] = set()
    used_streets: set[str] = set()
    totals: dict[str, list[int]] = {"receipt": [], "invoice": []}
    docs: list[Receipt] = []
    inv_no, rcpt_no = 400 + rng.randint(0, 50), 10_000_000 + rng.randint(0, 99_999)
    start = date(2017, 1, 1)
    for i, (company, kind) in enumerate(companies):
        dollars = kind == "invoice"
        # date: a day used once (a tokenizer that reads dates may match any format of it)
        while True:
            d = start + timedelta(days=rng.randint(0, 3 * 365))
            if d not in used_days:
                used_days.add(d)
                break
        fmt = rng.choice(DATE_FORMATS[:4] if kind == "receipt" else DATE_FORMATS)
        printed = _fmt_date(d, fmt)
        # address
        while True:
            if dollars:
                num = rng.randint(10, 9999)
                street = f"{num} {rng.choice(EN_ADJ).title()} {rng.choice(STREET_US)}"
                city, state = rng.choice(CITIES_US)
                address = [street, f"Suite {rng.randint(100, 950)}" if rng.random() < 0.4 else "",
                           f"{city}, {state} {rng.randint(10_000, 99_999)}"]
            else:
                w = rng.choice(MALAY_WORDS)
                street = (f"JALAN {w} {rng.randint(1, 12)}/{rng.randint(1, 9)}" if rng.random() < 0.6
                          else f"LORONG {w} {rng.randint(1, 30)}")
                taman = f"TAMAN {rng.choice(MALAY_WORDS)} {rng.choice(('UTAMA', 'INDAH', 'BARU', 'JAYA'))}"
                city, state = rng.choice(CITIES_MY)
                address = [f"NO {rng.randint(1, 250)}, {street},", f"{taman},",
                           f"{rng.randint(10_000, 99_999)} {city}, {state}"]
            if street not in used_streets:
                used_streets.add(street)
                address = [a for a in address if a]
                break
        # number
        if dollars:
            inv_no += rng.randint(1, 3)
            number = f"INV-{inv_no:05d}"
        else:
            rcpt_no += rng.randint(1, 40)
            number = rng.choice((f"CS{rcpt_no:08d}", f"OR{rcpt_no}", f"R-{rcpt_no % 1_000_000:06d}"))
        # amounts: a third are near copies of an earlier total
        same = totals[kind]
        target = _near(rng.choice(same), rng) if same and rng.random() < 0.33 else None
        items, total = _items(kind, rng, target)
        same.append(total)
        docs.append(_assemble(f"{kind}_{i:03d}", kind, company, address, street, printed, fmt, number,
                              items, total, rng))
    _make_amounts_unambiguous(docs, rng)
    return docs


def _assemble(name: str, kind: str, company: str, address: list[str], street: str, printed_date: str,
              fmt: str, number: str, items: list[tuple[str, int, int]], total: int, rng: random.Random,
              ) -> Receipt:
    dollars = kind == "invoice"
    money = [(d, f"{q} x {_money(u, dollars)}", _money(q * u, dollars)) for d, q, u in items]
    if dollars:
        total_s = f"${_money(total, True)}"
    else:
        total_s = rng.choice((f"RM{_money(total, False)}", f"RM {_money(total, False)}"))
    r = Receipt(name=name, kind=kind, company=company, address=address, street=street, date=printed_date,
                date_format=fmt, number=number, total=total_s, items=money)
    r.lines = _text_lines(r, total, rng)
    return r


def _text_lines(r: Receipt, total: int, rng: random.Random) -> list[str]:
    """The printed text, one string per line ("<<" / ">>" mark right-aligned parts)."""
    dollars = r.kind == "invoice"
    if dollars:
        tax = round(total * 0.08)
        lines = [f"#B {r.company}", *r.address, f"Phone: ({rng.randint(200, 989)}) 555-{rng.randint(1000, 9999)}",
                 "", "#T INVOICE", f"Invoice No: {r.number}", f"Date: {r.date}",
                 f"Bill To: {rng.choice(EN_ADJ).title()} {rng.choice(EN_NOUN).title()} Holdings", "",
                 "Description>>Amount", "-"]
        for desc, qty, amount in r.items:
            lines += [f"{desc}>>{amount}", f"  {qty}"]
        lines += ["-", f"Subtotal>>{_money(total - tax, True)}", f"Tax 8% (incl.)>>{_money(tax, True)}",
                  f"#B TOTAL>>{r.total}", "", f"Payment due {rng.choice((15, 30, 45))} days. Thank you!"]
        return lines
    gst = round(total * 6 / 106)
    cash = next((c for c in (500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000) if c >= total), total)
    cash_line = [] if cash == total else [f"CASH>>{_money(cash, False)}", f"CHANGE>>{_money(cash - total, False)}"]
    lines = [f"#B {r.company}", f"({rng.randint(100_000, 1_299_999)}-{rng.choice('ADHKMPTUVWX')})",
             *r.address, f"TEL: 0{rng.randint(3, 9)}-{rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
             f"GST ID: 00{rng.randint(1_000_000_000, 9_999_999_999)}", "-", "#T TAX INVOICE" if rng.random() < 0.5 else
             "#T RECEIPT", f"No: {r.number}", f"Date: {r.date}  {rng.randint(8, 22):02d}:{rng.randint(0, 59):02d}",
             f"Cashier: {rng.choice(('AINA', 'SITI', 'RAJ', 'LEE', 'AHMAD', 'MEI'))}", "-"]
    for desc, qty, amount in r.items:
        lines += [desc, f"  {qty}>>{amount}"]
    lines += ["-", f"GST 6% (incl.)>>{_money(gst, False)}", f"#B TOTAL>>{r.total}", *cash_line, "-",
              "THANK YOU. PLEASE COME AGAIN"]
    return lines


def _amounts(r: Receipt) -> set[str]:
    return set(re.findall(r"(?<![\d.])\d[\d,]*\.\d\d(?![\d.])", "\n".join(r.lines)))  # not dates


def _make_amounts_unambiguous(docs: list[Receipt], rng: random.Random) -> None:
    """Re-draw the items of documents whose total is printed as an amount on another document."""
    for _ in range(50):
        seen: Counter[str] = Counter()
        for r in docs:
            seen.update(_amounts(r))
        bad = [r for r in docs if seen[r.total.lstrip("RM$ ")] > 1]
        if not bad:
            return
        for r in bad:
            items, total = _items(r.kind, rng, None)
            fresh = _assemble(r.name, r.kind, r.company, r.address, r.street, r.date, r.date_format, r.number,
                              items, total, rng)
            r.items, r.total, r.lines = fresh.items, fresh.total, fresh.lines
    raise RuntimeError("could not make the totals unambiguous")


# ------------------------------------------------------------------------------------ pixels
def _font(name: str, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = FONT_DIR / name
    if path.is_file():
        return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)  # Pillow >= 10.1: its bundled scalable font


def render(r: Receipt, path: Path, seed: int, *, camera: bool = False) -> Path:
    """Draw *r* small and noisy into *path* (JPEG); records the settings in ``r.render``.

    ``camera``: the same drawing (same layout, fonts and size as with ``camera=False``) degraded as a
    thermal receipt photographed with a phone is (:func:`photograph`) instead of the scanner-like
    noise."""
    rng = random.Random(seed)
    invoice = r.kind == "invoice"
    width = rng.randint(420, 600) if invoice else rng.randint(300, 480)
    mono = not invoice and rng.random() < 0.7
    regular = MONO[0] if mono else rng.choice(PROPORTIONAL)
    bold = MONO[1] if mono else regular.replace(".ttf", "-Bold.ttf").replace("Bold-Bold", "Bold")
    margin = max(8, width // 30)
    chars = rng.randint(34, 42) if not invoice else rng.randint(48, 60)
    size = max(8, int((width - 2 * margin) / (chars * 0.6)))
    f_reg, f_bold = _font(regular, size), _font(bold, size)
    f_title = _font(bold, int(size * 1.3))
    line_h = int(size * 1.35)
    inner = width - 2 * margin
    height = margin * 2 + line_h * (len(r.lines) + 2)
    img = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(img)
    y = margin
    center = not invoice  # receipts centre their header (the lines before the first rule)
    for raw in r.lines:
        font = f_reg
        text = raw
        if text.startswith("#B "):
            font, text = f_bold, text[3:]
        elif text.startswith("#T "):
            font, text = f_title, text[3:]
        if text == "-":
            center = False
            draw.line([(margin, y + line_h // 2), (width - margin, y + line_h // 2)], fill=60, width=1)
        elif ">>" in text:
            left, right = text.split(">>")
            draw.text((margin, y), left, font=font, fill=0)
            draw.text((width - margin - draw.textlength(right, font=font), y), right, font=font, fill=0)
        elif text:
            while draw.textlength(text, font=font) > inner and font.size > 8:
                font = _font(bold if font in (f_bold, f_title) else regular, font.size - 1)
            x = (width - draw.textlength(text, font=font)) / 2 if center or font is f_title else margin
            draw.text((x, y), text, font=font, fill=0)
        y += int(line_h * (1.3 if font is f_title else 1.0))
    img = img.crop((0, 0, width, min(height, y + margin)))
    if camera:
        img, noise = photograph(img, seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path, "JPEG", quality=noise["jpeg_quality"])
        r.render = {"file": path.name, "width": img.width, "height": img.height, "font": regular,
                    "font_px": size, "camera": True, **noise}
        return path
    noise = {"blur": round(rng.uniform(0.0, 0.9), 2), "jpeg_quality": rng.randint(25, 75),
             "rotate_deg": round(rng.uniform(-2.5, 2.5), 2), "light_min": round(rng.uniform(0.55, 0.95), 2),
             "salt": round(rng.uniform(0.0, 0.012), 4)}
    img = _degrade(img, noise, np.random.default_rng(seed))
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=noise["jpeg_quality"])
    path.write_bytes(buf.getvalue())
    r.render = {"file": path.name, "width": img.width, "height": img.height, "font": regular,
                "font_px": size, **noise}
    return path


def _degrade(img: Image.Image, noise: dict[str, float], rng: np.random.Generator) -> Image.Image:
    """Paper tint, uneven lighting, slight rotation, blur and salt-and-pepper noise."""
    img = img.rotate(noise["rotate_deg"], resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    if noise["blur"] > 0.05:
        img = img.filter(ImageFilter.GaussianBlur(noise["blur"]))
    a = np.asarray(img, dtype=np.float32)
    h, w = a.shape
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:h, 0:w]
    ramp = (np.cos(angle) * xx / w + np.sin(angle) * yy / h)
    ramp = (ramp - ramp.min()) / max(1e-6, float(ramp.max() - ramp.min()))
    light = noise["light_min"] + (1 - noise["light_min"]) * ramp
    a = a * light * rng.uniform(0.9, 1.0)  # paper never quite white
    mask = rng.random(a.shape)
    a[mask < noise["salt"] / 2] = 0
    a[mask > 1 - noise["salt"] / 2] = 255
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L").convert("RGB")


# ------------------------------------------------------------------------------------ camera / thermal
def photograph(img: Image.Image, seed: int) -> tuple[Image.Image, dict[str, Any]]:
    """A clean receipt drawing (greyscale, black on white) degraded as a thermal receipt photographed
    with a phone is, deterministically from *seed*: the print faded (low contrast, unevenly, with
    lighter streaks along the paper where the print head wore), the paper crumpled and folded
    (smooth shading, a fold line, local warps of a few pixels), laid on a table and photographed at
    an angle (the receipt a quadrilateral inside a larger background), uneven light and a soft
    shadow, defocus or motion blur, a lower resolution, and phone JPEG quality. Returns the RGB image
    and the parameters drawn."""
    rng = np.random.default_rng([seed, 33])
    p: dict[str, Any] = {
        "fade": round(float(rng.uniform(0.5, 0.85)), 2),  # ink darkness kept (1: black)
        "streaks": int(rng.integers(0, 4)),
        "crumple": round(float(rng.uniform(0.05, 0.2)), 3),  # depth of the shading
        "warp_px": round(float(rng.uniform(0.5, 2.5)), 2),
        "fold": bool(rng.random() < 0.5),
        "tilt": round(float(rng.uniform(0.03, 0.12)), 3),  # corner displacement, share of the side
        "rotate_deg": round(float(rng.uniform(-4.0, 4.0)), 2),
        "background": int(rng.integers(60, 150)),
        "shadow": round(float(rng.uniform(0.0, 0.35)), 2),
        "blur": str(rng.choice(["defocus", "motion", "none"], p=[0.5, 0.3, 0.2])),
        "blur_px": round(float(rng.uniform(0.5, 1.2)), 2),
        "motion_px": int(rng.integers(2, 4)),
        "scale": round(float(rng.uniform(0.8, 1.0)), 2),
        "jpeg_quality": int(rng.integers(45, 90)),
    }
    a = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    h, w = a.shape
    ink = 1.0 - a  # 1 where printed
    # thermal fade: weaker everywhere, more in places, lighter streaks down the paper
    ink *= p["fade"] * (0.75 + 0.25 * _smooth_field(h, w, 3, rng))
    for _ in range(p["streaks"]):
        x, sw = int(rng.integers(0, w)), int(rng.integers(2, max(3, w // 12)))
        ink[:, x : x + sw] *= float(rng.uniform(0.35, 0.7))
    paper = float(rng.uniform(0.88, 0.97))
    a = paper * (1.0 - ink)
    # crumples: smooth shading, a fold line, local warp
    a *= 1.0 - p["crumple"] * _smooth_field(h, w, 5, rng)
    if p["fold"]:
        fy = int(rng.integers(h // 4, 3 * h // 4))
        a[fy:] *= float(rng.uniform(0.85, 0.95))
        a[max(0, fy - 1) : fy + 1] *= 0.8
    a = _warp(a, p["warp_px"], rng)
    # on a table, photographed at an angle
    pad = int(0.25 * max(w, h))
    cw, ch = w + 2 * pad, h + 2 * pad
    table = p["background"] / 255.0 * (0.85 + 0.3 * _smooth_field(ch, cw, 4, rng))
    table = table + rng.normal(0.0, 0.02, table.shape)
    canvas = Image.fromarray(np.clip(table * 255, 0, 255).astype(np.uint8), "L")
    receipt = Image.fromarray(np.clip(a * 255, 0, 255).astype(np.uint8), "L")
    mask = Image.new("L", receipt.size, 255)
    receipt = receipt.rotate(p["rotate_deg"], resample=Image.Resampling.BICUBIC, expand=True, fillcolor=0)
    mask = mask.rotate(p["rotate_deg"], resample=Image.Resampling.BICUBIC, expand=True, fillcolor=0)
    ox, oy = (cw - receipt.width) // 2, (ch - receipt.height) // 2
    canvas.paste(receipt, (ox, oy), mask)
    canvas = _tilt(canvas, p["tilt"], rng)
    cw, ch = canvas.size
    # light: a gradient and a soft shadow (a hand, a phone)
    b = np.asarray(canvas, dtype=np.float32) / 255.0
    yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
    angle = float(rng.uniform(0, 2 * math.pi))
    ramp = math.cos(angle) * xx / cw + math.sin(angle) * yy / ch
    ramp = (ramp - ramp.min()) / max(1e-6, float(ramp.max() - ramp.min()))
    b *= 0.7 + 0.3 * ramp
    if p["shadow"] > 0:
        edge = math.cos(angle + 1.3) * (xx - cw / 2) + math.sin(angle + 1.3) * (yy - ch / 2)
        edge -= float(rng.uniform(-0.2, 0.2)) * max(cw, ch)
        b *= 1.0 - p["shadow"] / (1.0 + np.exp(-edge / (0.04 * max(cw, ch))))
    out = Image.fromarray(np.clip(b * 255, 0, 255).astype(np.uint8), "L")
    # camera: blur, resolution
    if p["blur"] == "defocus":
        out = out.filter(ImageFilter.GaussianBlur(p["blur_px"]))
    elif p["blur"] == "motion":
        out = _motion_blur(out, p["motion_px"], float(rng.uniform(0, math.pi)))
    if p["scale"] < 1.0:
        out = out.resize((round(cw * p["scale"]), round(ch * p["scale"])), Image.Resampling.BILINEAR)
    rgb = np.repeat(np.asarray(out)[:, :, None], 3, axis=2).astype(np.float32)
    rgb *= np.array([1.0, float(rng.uniform(0.95, 1.0)), float(rng.uniform(0.85, 0.97))], dtype=np.float32)  # warm light
    rgb += rng.normal(0.0, 3.0, rgb.shape)  # sensor noise
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB"), p


def _smooth_field(h: int, w: int, cells: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth random field in [0, 1] of shape (h, w): *cells* x *cells* random values, upscaled."""
    coarse = (rng.random((cells, cells)) * 255).astype(np.uint8)
    field_ = Image.fromarray(coarse, "L").resize((w, h), Image.Resampling.BICUBIC)
    return np.asarray(field_, dtype=np.float32) / 255.0


def _warp(a: np.ndarray, px: float, rng: np.random.Generator) -> np.ndarray:
    """*a* displaced by a smooth random field of up to *px* pixels (nearest neighbour)."""
    h, w = a.shape
    dy = (_smooth_field(h, w, 6, rng) - 0.5) * 2 * px
    dx = (_smooth_field(h, w, 6, rng) - 0.5) * 2 * px
    yy, xx = np.mgrid[0:h, 0:w]
    sy = np.clip(np.rint(yy + dy), 0, h - 1).astype(np.intp)
    sx = np.clip(np.rint(xx + dx), 0, w - 1).astype(np.intp)
    return a[sy, sx]


def _tilt(img: Image.Image, share: float, rng: np.random.Generator) -> Image.Image:
    """*img* seen at an angle: each corner moved inwards by up to *share* of the sides."""
    w, h = img.size
    src = [(0, 0), (w, 0), (w, h), (0, h)]
    moved = [(x + (1 if x == 0 else -1) * float(rng.uniform(0, share)) * w,
              y + (1 if y == 0 else -1) * float(rng.uniform(0, share)) * h) for x, y in src]
    # PIL's PERSPECTIVE maps output pixels to input ones: solve for the output corners -> input corners
    m = []
    for (x, y), (u, v) in zip(moved, src, strict=True):
        m.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        m.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    coeffs = np.linalg.solve(np.array(m, dtype=np.float64), np.array(src, dtype=np.float64).ravel())
    out = img.transform(img.size, Image.Transform.PERSPECTIVE, tuple(coeffs.tolist()), Image.Resampling.BICUBIC)
    cut_x, cut_y = math.ceil(share * w), math.ceil(share * h)  # the table only, no empty corners
    return out.crop((cut_x, cut_y, w - cut_x, h - cut_y))


def _motion_blur(img: Image.Image, length: int, angle: float) -> Image.Image:
    """The mean of *length* copies of *img* shifted along *angle* (a shaken hand)."""
    a = np.asarray(img, dtype=np.float32)
    acc = np.zeros_like(a)
    for i in range(length):
        t = i - (length - 1) / 2
        acc += np.roll(a, (round(t * math.sin(angle)), round(t * math.cos(angle))), axis=(0, 1))
    return Image.fromarray(np.clip(acc / length, 0, 255).astype(np.uint8), "L")
