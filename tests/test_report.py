"""The HTML evaluation report: pictures of errors, the page, the CLI's refusals, and the page in Chromium."""

from __future__ import annotations

import base64
import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unetkit import TrainConfig, UNet, make_checkpoint, save_checkpoint, train
from unetkit.cli import main
from unetkit.evaluation import EvaluationReport
from unetkit.metrics import MetricAccumulator
from unetkit.report import ErrorMasks, error_picture, image_pictures, pixel_errors, write_report

from helpers import disks, snapshot, write_dataset

QUIET = lambda text: None  # noqa: E731
CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run directory of a tiny model trained for 2 epochs: config.json, log.csv, best.pt."""
    root = tmp_path_factory.mktemp("run")
    data = write_dataset(root / "data", count=3, size=(48, 48))
    train(TrainConfig(out=str(root / "run"), data=str(data), depth=2, base_width=2, epochs=2, steps_per_epoch=2,
                      batch_size=2, patch_size=32, val_tile_size=64, progress=False, augment="flips"), report=QUIET)
    return root / "run"


@pytest.fixture(scope="module")
def run_report(run_dir, tmp_path_factory) -> Path:
    """The report of ``unetkit evaluate RUN/best.pt DATA --report``, with pictures of 4 of 5 images."""
    root = tmp_path_factory.mktemp("evaluation")
    test_data = write_dataset(root / "test", count=5, size=(96, 128), seed=20)
    code = main(["evaluate", str(run_dir / "best.pt"), str(test_data), "--report", str(root / "report.html"),
                 "--report-images", "4", "--precision", "fp32"])
    assert code == 0
    return root / "report.html"


@pytest.fixture(scope="module")
def drawn_report(run_dir, tmp_path_factory) -> Path:
    """A report of known errors: disks found by a threshold, against a truth moved 3 pixels right."""
    accumulator, pictures, names = MetricAccumulator(2), {}, []
    for index in range(3):
        image, mask = disks((120, 160), seed=index, count=8)
        predicted, truth = (image > 115).astype(np.uint8), np.roll(mask, 3, axis=1)
        image = image[None].astype(np.float32) / 255
        accumulator.update(predicted, truth)
        pictures[index] = image_pictures(image, predicted, truth)
        names.append(f"disks{index}.png")
    path = tmp_path_factory.mktemp("drawn") / "report.html"
    write_report(EvaluationReport(names, accumulator, str(run_dir / "best.pt"), "disks", pictures), path)
    return path


def decode_data_uri(uri: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


# --- pictures -------------------------------------------------------------------------

def test_error_colours_land_on_the_right_pixels():
    predicted = np.array([[1, 1, 0, 0, 2, 1]])
    truth = np.array([[1, 0, 1, 0, 1, 9]])
    errors = pixel_errors(predicted, truth, ignore_index=9)
    picture = error_picture(np.zeros((1, 1, 6), np.float32), errors)  # a black image: the colours alone
    assert picture[0].tolist() == [
        [0, 70, 0],      # true positive: green, faint
        [204, 0, 204],   # false positive: magenta
        [0, 204, 204],   # false negative: cyan
        [0, 0, 0],       # true negative: untouched
        [204, 120, 0],   # foreground of the wrong class: orange
        [0, 0, 0],       # ignored in the truth: untouched
    ]


def test_a_task_can_mark_whole_objects_and_the_legend_follows():
    def object_errors(predicted, truth):  # what an instance task will supply: one missed object
        missed = truth == 2
        return ErrorMasks(truth == 1, np.zeros_like(missed), missed, unit="objects")

    pictures = image_pictures(np.zeros((1, 8, 8), np.float32), np.zeros((8, 8), int),
                              np.repeat([[1] * 4 + [2] * 4], 8, axis=0), find_errors=object_errors)
    assert [text for _, text in pictures.legend][2] == "false negative objects: true, missed"
    large = np.asarray(decode_data_uri(pictures.errors))
    assert large[4, 1, 1] > 40 > large[4, 1, 0] and large[4, 6, 2] > 150 > large[4, 6, 0]  # faint green; cyan


def test_pictures_are_bounded_in_size_however_large_the_image():
    image = np.random.default_rng(0).random((1, 3000, 2000), dtype=np.float32)
    labels = (image[0] > 0.5).astype(np.uint8)
    pictures = image_pictures(image, labels, np.zeros_like(labels))
    assert decode_data_uri(pictures.errors).size == (683, 1024)
    assert decode_data_uri(pictures.image).size == (683, 1024)
    assert decode_data_uri(pictures.thumbnail).size == (171, 256)
    assert pictures.size < 3_000_000


def he_tile(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An H&E-like RGB tile (dark purple nuclei on pink) saved as PNG: (tile, its channels normalised one by one,
    its nuclei mask)."""
    from unetkit.data.normalize import Normalization, to_channels_first

    mask = disks((48, 64), 0)[1].astype(np.uint8)
    tile = np.where(mask[..., None] > 0, np.array([90, 40, 130], np.uint8), np.array([235, 190, 210], np.uint8))
    tile = np.clip(tile + np.random.default_rng(0).normal(0, 8, tile.shape), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(tile).save(path)
    return tile, Normalization().apply(to_channels_first(tile)), mask


def test_an_rgb_tiles_report_picture_and_overlay_keep_its_colours(tmp_path):
    # each channel normalised on its own turned the pink background beige-grey and the purple nuclei black in the
    # report's pictures and predict's overlays: an H&E tile is shown as it is stored
    from unetkit.data.dataset import Sample
    from unetkit.report.pictures import WorstImagePictures
    from unetkit.tasks import SemanticTask

    tile, normalised, mask = he_tile(tmp_path / "images" / "he.png")
    background = mask == 0
    keep = WorstImagePictures(1)
    keep(Sample("he.png", normalised, mask, files=(tmp_path / "images" / "he.png",)), np.zeros_like(mask))
    plain = np.asarray(decode_data_uri(keep.pictures()[0].image).convert("RGB"), np.float32)
    expected = tile[background].mean(axis=0)
    assert np.abs(plain[background].mean(axis=0) - expected).max() < 4, (plain[background].mean(axis=0), expected)
    task = SemanticTask(1)
    files = {"overlay": tmp_path / "out" / "he_overlay.png"}
    files["overlay"].parent.mkdir()
    task.write_outputs(files, tile, normalised, np.zeros_like(mask), replace=False)
    overlay = np.asarray(Image.open(files["overlay"]), np.float32)
    assert np.abs(overlay[background].mean(axis=0) - expected).max() < 1, overlay[background].mean(axis=0)


def test_an_image_without_a_score_does_not_push_the_worst_image_out_of_the_pictures():
    # its NaN rank compared false with everything: with one picture to keep, the n/a image took the Dice-0 one's place
    from unetkit.data.dataset import Sample
    from unetkit.report.pictures import WorstImagePictures
    from unetkit.scoring import image_score
    from unetkit.tasks import SemanticTask

    keep = WorstImagePictures(1, image_score(SemanticTask(1), ignore_index=255))
    image = np.zeros((1, 8, 8), np.float32)
    keep(Sample("missed", image, np.ones((8, 8), np.uint8)), np.zeros((8, 8), int))  # Dice 0
    keep(Sample("all ignored", image, np.full((8, 8), 255, np.uint8)), np.zeros((8, 8), int))  # n/a
    assert list(keep.pictures()) == [0]


def test_the_pooled_row_says_n_a_for_a_class_in_no_image_as_the_mean_row_does():
    # class 2 is in no mask and no prediction: the mean row said n/a, the pooled row 1.0000
    from unetkit.report.page import report_html

    accumulator = MetricAccumulator(num_classes=3)
    accumulator.update(np.array([[1, 0]]), np.array([[1, 1]]))
    accumulator.update(np.array([[0, 0]]), np.array([[1, 0]]))
    foot = re.search(r"<tfoot>.*</tfoot>", report_html(EvaluationReport(["a", "b"], accumulator)), re.S).group(0)
    pooled = re.findall(r"<td>([^<]*)</td>", foot.split("pooled (all pixels together)")[1])
    assert pooled == ["0.5000", "0.3333", "0.5000", "n/a", "0.3333", "n/a"], pooled


@pytest.mark.parametrize("classes", [2, 3])
def test_the_pooled_scores_say_n_a_where_every_pixel_of_every_image_is_ignored(classes):
    # the images' rows said n/a, the header's pooled Dice and the pooled row 1.0000
    from unetkit.report.page import report_html

    accumulator = MetricAccumulator(num_classes=classes, ignore_index=255)
    accumulator.update(np.array([[1, 0]]), np.array([[255, 255]]))
    html = report_html(EvaluationReport(["a"], accumulator))
    assert "pooled Dice <b>n/a</b>" in html
    foot = re.search(r"<tfoot>.*</tfoot>", html, re.S).group(0)
    pooled = re.findall(r"<td>([^<]*)</td>", foot.split("pooled (all pixels together)")[1])
    assert pooled == ["n/a"] * (2 if classes == 2 else 6), pooled


def test_the_header_and_captions_say_n_a_for_an_undefined_score_not_nan():
    from unetkit.instances.scores import ObjectAccumulator
    from unetkit.report.page import report_html

    accumulator = ObjectAccumulator(ignore_border_objects=True)
    strip = np.zeros((8, 8), np.uint16)
    strip[0, :3] = 1  # its only object is on the border: nothing left to score
    accumulator.update(strip, strip)
    evaluation = EvaluationReport(["edge.tif"], accumulator, score_name="f1")
    evaluation.pictures[0] = image_pictures(np.zeros((1, 8, 8), np.float32), strip, strip)
    html = report_html(evaluation)
    assert "mean F1 <b>n/a</b>" in html and "Dice n/a · IoU n/a" in html
    assert ">nan<" not in html and " nan" not in html


# --- the page ---------------------------------------------------------------------------

def hand_made_report(dice_targets: dict[str, int]) -> EvaluationReport:
    """Images of 20,000 true pixels of which the prediction finds ``n``: Dice 2n / (20,000 + n)."""
    accumulator = MetricAccumulator(2)
    for found in dice_targets.values():
        truth = np.ones((1, 20_000), int)
        accumulator.update((np.arange(20_000) < found).astype(int)[None], truth)
    return EvaluationReport(list(dice_targets), accumulator)


def test_the_page_holds_nothing_a_browser_would_fetch(run_report):
    html = run_report.read_text()
    assert "http://" not in html and "https://" not in html and "@import" not in html
    targets = re.findall(r"""\s(?:src|href|srcset|poster|action)\s*=\s*["']?([^"'\s>]*)""", html)
    assert targets and all(t.startswith(("data:", "#")) for t in targets), sorted({t[:20] for t in targets})
    assert all(u.startswith("data:") for u in re.findall(r"url\(\s*['\"]?([^)'\"]*)", html))


def test_the_page_shows_the_run_settings_and_curves_and_the_worst_images_first(run_report):
    html = run_report.read_text()
    assert "<dt>base_width</dt><dd>2</dd>" in html and 'class="curves" src="data:image/png;base64,' in html
    for shown in ("<dt>schedule</dt><dd>cosine</dd>", "<dt>loss</dt><dd>dice+bce</dd>",  # what the run used, not a dash
                  "<dt>padding</dt><dd>same</dd>", "<dt>batch_norm</dt><dd>false</dd>"):
        assert shown in html, shown
    assert "&mdash;" not in html.split('class="settings"')[1].split("</dl>")[0]
    assert "No training log" not in html
    dice = [float(v) for v in re.findall(r'<tr><td>.*?</td><td data-value="([^"]+)"', html)]
    assert len(dice) == 5 and dice == sorted(dice)
    assert html.count('<figure class="card"') == 4 and "the table lists all 5" in html


def test_a_checkpoint_outside_a_run_directory_says_that_no_training_log_was_found(tmp_path):
    save_checkpoint(tmp_path / "model.pt", make_checkpoint(UNet(depth=2, base_width=2)))
    data = write_dataset(tmp_path / "data", count=1)
    assert main(["evaluate", str(tmp_path / "model.pt"), str(data), "--report", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text()
    assert "No training log was found" in html and "<dl" not in html and 'class="curves"' not in html


def test_names_are_escaped(tmp_path):
    write_report(hand_made_report({"<script>alert(1)</script>.png": 5}), tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;.png" in html


# --- refusals before the work -----------------------------------------------------------

@pytest.fixture
def scoring_forbidden(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("the model was loaded or scored before the outputs were checked")

    monkeypatch.setattr("unetkit.evaluation.load_predictor", forbidden)
    monkeypatch.setattr("unetkit.evaluation.evaluate_samples", forbidden)


def test_an_existing_report_is_refused_before_anything_is_scored(tmp_path, scoring_forbidden, capsys):
    (tmp_path / "report.html").write_text("an earlier report")
    before = snapshot(tmp_path)
    code = main(["evaluate", str(tmp_path / "model.pt"), "sample:heldout", "--report", str(tmp_path / "report.html")])
    assert code == 2 and snapshot(tmp_path) == before
    error = capsys.readouterr().err
    assert "report.html: output exists already" in error and "--overwrite" in error


def test_a_report_in_a_folder_that_cannot_be_written_is_refused_before_anything_is_scored(
    tmp_path, scoring_forbidden, capsys
):
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    code = main(["evaluate", str(tmp_path / "model.pt"), "sample:heldout",
                 "--report", str(tmp_path / "notes.txt" / "report.html"), "--csv", str(tmp_path / "scores.csv")])
    assert code == 2
    error = capsys.readouterr().err
    assert "notes.txt/report.html" in error and "it is a file, not a folder" in error and "fix:" in error


def test_a_negative_number_of_report_images_is_refused_before_anything_is_scored(tmp_path, scoring_forbidden, capsys):
    code = main(["evaluate", str(tmp_path / "model.pt"), "sample:heldout", "--report", str(tmp_path / "r.html"),
                 "--report-images", "-1"])
    assert code == 2 and "--report-images must be 0 or more, got -1" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


# --- in Chromium --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is missing: pip install -e '.[dev]'")
    if not CHROMIUM.is_file():
        pytest.skip(f"Chromium not found at {CHROMIUM}: apt-get install chromium")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()


class OpenPage:
    """A report opened from its file:// URL, with every console error, page error and request."""

    def __init__(self, browser, path: Path):
        self.console_errors: list[str] = []
        self.requests: list[str] = []
        self.failed: list[str] = []
        self.page = browser.new_page(viewport={"width": 1200, "height": 900})
        self.page.set_default_timeout(5000)
        self.page.on("console", lambda message: message.type == "error" and self.console_errors.append(message.text))
        self.page.on("pageerror", lambda error: self.console_errors.append(str(error)))
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("requestfailed", lambda request: self.failed.append(request.url))
        self.page.goto(path.resolve().as_uri(), wait_until="load")


@pytest.fixture
def open_page(browser):
    pages = []

    def open_(path: Path) -> OpenPage:
        pages.append(OpenPage(browser, path))
        return pages[-1]

    yield open_
    for opened in pages:
        opened.page.close()


@pytest.mark.browser
@pytest.mark.parametrize("report", ["run_report", "drawn_report"])
def test_the_page_loads_from_a_file_url_with_no_console_error_and_no_request_beyond_itself(report, request, open_page):
    path = request.getfixturevalue(report)
    opened = open_page(path)
    opened.page.click(".card .thumb")  # run the lightbox's script too
    opened.page.keyboard.press("ArrowRight")
    opened.page.keyboard.press("Escape")
    opened.page.click("#scores th:has-text('Dice')")
    assert opened.console_errors == [] and opened.failed == []
    assert [url for url in opened.requests if not url.startswith("data:")] == [path.resolve().as_uri()]


@pytest.mark.browser
def test_the_table_sorts_by_a_clicked_column_and_reverses_on_a_second_click(tmp_path, open_page):
    # Dice 1e-4 prints as 9.9995e-05: a text sort would put it last; img10 must follow img2.
    write_report(hand_made_report({"img2.png": 1, "img10.png": 20_000, "img1.png": 5_000, "img3.png": 12_000}),
                 tmp_path / "r.html")
    page = open_page(tmp_path / "r.html").page

    def column(index: int) -> list:
        cells = page.locator(f"#scores tbody tr td:nth-child({index + 1})")
        values = cells.evaluate_all("cells => cells.map(c => c.getAttribute('data-value') ?? c.textContent.trim())")
        return values if index == 0 else [float(v) for v in values]

    assert column(1) == sorted(column(1)) and column(0)[0] == "img2.png"  # worst first
    page.click("#scores th:has-text('IoU')")
    assert column(2) == sorted(column(2))
    page.click("#scores th:has-text('IoU')")
    assert column(2) == sorted(column(2), reverse=True)
    assert page.get_attribute("#scores th:has-text('IoU')", "aria-sort") == "descending"
    page.click("#scores th:has-text('image')")
    assert column(0) == ["img1.png", "img2.png", "img3.png", "img10.png"]
    page.click("#scores th:has-text('image')")
    assert column(0) == ["img10.png", "img3.png", "img2.png", "img1.png"]


@pytest.mark.browser
def test_every_image_shows_and_a_thumbnail_opens_large(run_report, open_page):
    page = open_page(run_report).page
    widths = page.eval_on_selector_all("img", "images => images.map(i => i.complete ? i.naturalWidth : 0)")
    assert len(widths) == 5 and all(width > 0 for width in widths)  # the curves and 4 thumbnails
    page.click(".card .thumb")
    assert page.is_visible("#lightbox")
    large = page.locator("#lightbox-picture")
    natural_width = "i => i.decode().then(() => i.naturalWidth)"
    assert large.evaluate(natural_width) == 128  # the 96 x 128 image, not shrunk
    errors_source = large.get_attribute("src")
    page.click("#lightbox [data-kind=image]")
    assert large.get_attribute("src") != errors_source and large.evaluate(natural_width) == 128
    page.keyboard.press("Escape")
    assert not page.is_visible("#lightbox")


@pytest.mark.browser
def test_a_screenshot_of_the_page_is_not_blank_and_shows_the_error_colours(drawn_report, open_page):
    page = open_page(drawn_report).page
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("RGB")).astype(int)
    assert shot.std() > 30
    assert len(np.unique(shot.reshape(-1, 3) // 32, axis=0)) > 12  # text, table, curves, pictures
    gallery = np.asarray(Image.open(io.BytesIO(page.locator(".gallery").screenshot())).convert("RGB")).astype(int)
    red, green, blue = gallery[..., 0], gallery[..., 1], gallery[..., 2]  # the thumbnails, not the legend
    assert np.sum((red > 150) & (green < 90) & (blue > 150)) > 20  # false positives (magenta) drawn
    assert np.sum((red < 90) & (green > 150) & (blue > 150)) > 20  # false negatives (cyan) drawn
    assert np.sum((green > red + 40) & (green > blue + 40)) > 20  # true positives (green) drawn
