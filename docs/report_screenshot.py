"""The README's picture of the evaluation report: the whole page, shot in headless Chromium.

    unetkit evaluate runs/hela/best.pt sample:heldout --report runs/hela/report.html
    python docs/report_screenshot.py runs/hela/report.html docs/images/report.png

Needs Playwright (the ``dev`` extra) and Debian's ``chromium``. The shot is reduced to 256
colours, which keeps it under 300 KB.
"""

from __future__ import annotations

import argparse
import io
import shutil
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright


def screenshot(report: Path, width: int = 1100) -> Image.Image:
    """The whole page of ``report`` as it shows at ``width`` CSS pixels."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium")
        page = browser.new_page(viewport={"width": width, "height": 800})
        page.goto(report.resolve().as_uri(), wait_until="load")
        png = page.screenshot(full_page=True)
        browser.close()
    return Image.open(io.BytesIO(png)).convert("RGB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("png", type=Path)
    args = parser.parse_args()
    picture = screenshot(args.report).quantize(256, method=Image.Quantize.MEDIANCUT)
    picture.save(args.png, optimize=True)
    print(f"wrote {args.png}: {picture.size[0]} x {picture.size[1]}, {args.png.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
