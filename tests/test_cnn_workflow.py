"""The CNN of the founding papers inside the case workflow, through the command line.

Small simulated cameras (two units of model A, one of model B; a unit of B enrolled later),
trained for two epochs with few patches per file: what is checked is the plumbing (records,
rows, resume, staleness, report, verify) and that the numbers it stores are consistent; the
accuracy figures of the method are in benchmarks/cnn_case.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sensorprint.cli import app
from sensorprint.simulate import make_cameras
from sensorprint.store import Case

runner = CliRunner()
SIZE = dict(width=512, height=384)
TRAIN = ("--epochs", "2", "--units-per-file", "8", "--seed", "0")


def cli(*args) -> str:
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def cli_fails(*args) -> str:
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 2, result.output
    return result.output


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """Cameras A0, A1, B0 enrolled with their model; B1 kept aside; a seized folder with a video.

    seized/early (the video and one image) is scanned before any network exists (PRNU only), so
    the scan after training classifies those files with the networks alone; the rest gets PRNU
    and CNN in the same worker.
    """
    root = tmp_path_factory.mktemp("cnn")
    cameras = make_cameras(n_models=2, units_per_model=2, seed=11, **SIZE)
    truth = {}
    for camera in cameras:
        for i in range(3):
            camera.save_jpeg(root / "refs" / camera.name / f"ref{i}.jpg", flat=i % 2 == 0, seed=i)
    enrolled, late = cameras[:3], cameras[3]
    for camera in enrolled:
        for i in range(2):
            path = (
                root / "seized" / ("early" if camera is enrolled[1] and i == 0 else "rest") / f"{camera.name}_{i}.jpg"
            )
            camera.save_jpeg(path, seed=500 + i)
            truth[path.name] = camera
    video = root / "seized" / "early" / "clip.mp4"
    enrolled[0].record_video(video, seconds=1, fps=10, size=(SIZE["width"], SIZE["height"]), seed=3)
    truth[video.name] = enrolled[0]
    late.save_jpeg(root / "later" / "late.jpg", seed=900)
    case = root / "case"
    cli("init", case)
    for camera in enrolled:
        cli(
            "enroll",
            case,
            root / "refs" / camera.name,
            "--device",
            camera.name,
            "--model",
            camera.model.name,
            "--workers",
            "1",
        )
    outputs = {
        "early": cli("scan", case, root / "seized" / "early", "--workers", "1"),
        "device": cli("train", case, "--target", "device", *TRAIN),
        "model": cli("train", case, "--target", "model", *TRAIN),
    }
    outputs["scan"] = cli("scan", case, root / "seized", "--workers", "2")
    report = root / "report.json"
    cli("report", case, "--format", "json", "--out", report)
    return {
        "root": root,
        "case": case,
        "cameras": cameras,
        "late": late,
        "truth": truth,
        "outputs": outputs,
        "report": json.loads(report.read_text()),
    }


def test_train_registers_networks_with_their_record(world):
    assert "camera-device network" in world["outputs"]["device"]
    assert "camera-model network" in world["outputs"]["model"]
    with Case.open(world["case"], read_only=True) as case:
        references = {m.sha256 for m in case.list_media(role="reference", status="ok")}
        run_commands = [r.command for r in case.runs()]
        for target, classes in (
            ("device", sorted(c.name for c in world["cameras"][:3])),
            ("model", ["SimCam-A", "SimCam-B"]),
        ):
            model = case.latest_model(target)
            assert model is not None and not model.stale
            assert model.classes == classes
            record = model.record
            assert {m["sha256"] for m in record["media"]} == references  # every enrolled reference, nothing else
            assert {m["split"] for m in record["media"]} == {"train", "validation"}
            assert all(m["path"] for m in record["media"])
            assert record["seed"] == 0 and record["epochs_run"] <= 2 and record["target"] == target
            assert 0.0 <= record["validation"]["file_accuracy"] <= 1.0
            assert record["open_set"]["threshold"] > float("-inf")
            assert record["tool_version"] and record["case_run_id"] in [r.id for r in case.runs()]
            assert (model.path / "weights.pt").is_file() and (model.path / "training.json").is_file()
    assert run_commands.count("train") == 2


def test_scan_without_network_is_prnu_only_and_says_so(world):
    assert "2 scanned now" in world["outputs"]["early"] and "no trained network" in world["outputs"]["early"]
    assert "classified now" not in world["outputs"]["early"]


def test_scan_classifies_every_file_beside_prnu(world):
    assert "7 scanned now" in world["outputs"]["scan"]  # two of them for the networks only
    assert "camera-device network 1: 7 files classified now" in world["outputs"]["scan"]
    assert "camera-model network 2: 7 files classified now" in world["outputs"]["scan"]
    caveats: dict[int, int] = {}
    with Case.open(world["case"], read_only=True) as case:
        networks = {m.target: m for m in case.models()}
        for medium in case.list_media(role="evidence"):
            rows = case.results(medium_id=medium.id)
            assert {r.method for r in rows} == {"prnu", "cnn"}
            for target, network in networks.items():
                mine = [r for r in rows if r.method == "cnn" and r.target_kind == target]
                assert sorted(r.target for r in mine) == network.classes  # one row per class
                assert abs(sum(r.score for r in mine) - 1.0) < 1e-3  # probabilities
                decisions = sorted(r.decision for r in mine)
                assert decisions.count("match") == 1 or set(decisions) == {"unknown"}
                details = mine[0].details
                assert details["model_id"] == network.id
                assert details["unknown_threshold"] == pytest.approx(network.record["open_set"]["threshold"])
                if set(decisions) != {"unknown"}:
                    (match,) = [r for r in mine if r.decision == "match"]
                    assert match.score == max(r.score for r in mine)
                    assert details["evidence"] >= details["unknown_threshold"]
                else:
                    assert details["evidence"] < details["unknown_threshold"] or details["units"] == 0
                # the content caveat follows the recorded rule: less flat than every reference file
                if network.record["kind"] == "patches":
                    outside = details["flat_share"] < network.record["reference_flat_share"]["min"]
                    assert ("content_caveat" in details) == outside
                    caveats[network.id] = caveats.get(network.id, 0) + outside
                if medium.kind == "video":
                    assert len(details["frames"]) >= 1 and details["units"] >= 1
                    # classified after its PRNU scan: the frame weights PRNU recorded are kept
                    assert medium.details["frames"] and all("weight" in f for f in medium.details["frames"])
                    # the networks see the first frames PRNU read (a weak clip gets more for PRNU)
                    read = [f["index"] for f in medium.details["frames"]]
                    assert details["frames"] == read[: len(details["frames"])]
    for network_id, n in caveats.items():
        said = f"{n} less flat than every reference file" in world["outputs"]["scan"]
        assert said == (n > 0), (network_id, n)


def test_stored_probabilities_reproduce_from_the_saved_network(world):
    """The rows a scan stored are what the saved network gives again for the same file (reproducible)."""
    from sensorprint.learn import load_classifier
    from sensorprint.media import read_image

    with Case.open(world["case"], read_only=True) as case:
        networks = {m.target: m for m in case.models()}
        classifiers = {target: load_classifier(network.path, backend="torch") for target, network in networks.items()}
        checked = 0
        for medium in case.list_media(role="evidence")[:4]:
            if medium.kind != "image":
                continue
            pixels = read_image(Path(medium.path)).pixels
            for target, classifier in classifiers.items():
                prediction = classifier.predict_image(pixels)
                stored = {
                    r.target: r.score for r in case.results(medium_id=medium.id, method="cnn", target_kind=target)
                }
                assert stored == pytest.approx(prediction.probabilities, abs=1e-4)
                checked += 1
    assert checked >= 4


def test_json_report_has_cnn_block_and_fused_verdict(world):
    records = world["report"]["records"]
    assert len(records) == 7
    for record in records:
        for target in ("device", "model"):
            block = record["cnn"][target]
            assert block["model_id"] is not None and block["unknown_threshold"] is not None
            assert abs(sum(block["probabilities"].values()) - 1.0) < 1e-3
            assert block["label"] == "unknown" or block["label"] == block["top"]
        assert "CNN" in record["verdict"] and "PRNU" in record["verdict"]
        device_label = record["cnn"]["device"]["label"]
        prnu = record["best_device"] or "no match"
        cnn = device_label if device_label != "unknown" else "no match"
        if record["verdict"].startswith("PRNU: inconclusive"):  # PRNU gave no answer: the CNN's stands alone
            assert record["agreement"] == "cnn only"
            continue
        assert record["agreement"] in ("agree", "disagree")
        assert (record["agreement"] == "disagree") == (prnu != cnn or record["verdict"].startswith("DISAGREE"))
        if record["agreement"] == "disagree":
            assert record["verdict"].startswith("DISAGREE")  # a disagreement is never hidden
    video = next(r for r in records if r["kind"] == "video")
    assert video["cnn"]["device"]["frames"]
    assert any(
        m["target"] == "device" and m["summary"]["validation_accuracy"] is not None for m in world["report"]["models"]
    )


def test_html_report_shows_the_networks_and_their_answers(world, tmp_path):
    cli("report", world["case"], "--format", "html", "--out", tmp_path / "report.html")
    html = (tmp_path / "report.html").read_text()
    assert "CNN networks" in html
    assert "not as proof" in html  # the limits of a network trained on reference media are stated
    assert html.count("CNN, camera device:") == 7 and html.count("CNN, camera model:") == 7


def test_second_scan_classifies_nothing_again(world):
    output = cli("scan", world["case"], world["root"] / "seized")
    assert "0 scanned now" in output and "7 already done" in output
    with Case.open(world["case"], read_only=True) as case:
        assert all(r.run_id != case.runs()[-1].id for r in case.results(method="cnn"))


def test_verify_with_case_shows_the_cnn_beside_prnu(world):
    camera = world["cameras"][0]
    image = world["root"] / "seized" / "rest" / f"{camera.name}_0.jpg"
    output = cli("verify", image, camera.name, "--case", world["case"])
    assert "CNN camera-device network 1 on A" in output
    assert "CNN camera-model network 2 on A" in output
    assert "PRNU and CNN" in output
    with Case.open(world["case"], read_only=True) as case:  # recorded as a scan records it: PRNU and CNN
        run = case.runs()[-1]
        medium = case.find_medium("evidence", str(image.resolve()))
        recorded = {(r.method, r.target_kind) for r in case.results(medium.id) if r.run_id == run.id}
        assert run.command == "verify" and recorded == {("prnu", "device"), ("cnn", "device"), ("cnn", "model")}


def test_enrolling_a_device_marks_networks_stale_and_scan_says_so(world, tmp_path):
    case = tmp_path / "case"
    shutil.copytree(world["case"], case)
    late = world["late"]
    cli(
        "enroll",
        case,
        world["root"] / "refs" / late.name,
        "--device",
        late.name,
        "--model",
        late.model.name,
        "--workers",
        "1",
    )
    with Case.open(case, read_only=True) as opened:
        assert all(m.stale and late.name in m.stale_reason for m in opened.models())
    output = cli("scan", case, world["root"] / "later", "--workers", "1")
    assert "camera-device network 1 is stale" in output and "camera-model network 2 is stale" in output
    with Case.open(case, read_only=True) as opened:
        medium = opened.find_medium("evidence", str((world["root"] / "later" / "late.jpg").resolve()))
        rows = opened.results(medium_id=medium.id, method="cnn")
        assert rows and all(late.name in r.details["network_stale"] for r in rows)
        assert late.name not in {r.target for r in rows}  # the stale network cannot name the new device


def test_train_needs_two_classes_and_model_labels(tmp_path, world):
    case = tmp_path / "case"
    cli("init", case)
    first, second = world["cameras"][0], world["cameras"][2]
    cli("enroll", case, world["root"] / "refs" / first.name, "--device", first.name, "--workers", "1")
    output = cli_fails("train", case, "--target", "device")
    assert "error:" in output and "at least 2 devices" in output and "Traceback" not in output
    assert len(output.strip().splitlines()) == 1
    cli(
        "enroll",
        case,
        world["root"] / "refs" / second.name,
        "--device",
        second.name,
        "--model",
        second.model.name,
        "--workers",
        "1",
    )
    output = cli_fails("train", case, "--target", "model")
    assert "without a camera model" in output and first.name in output and second.name not in output


def test_reference_videos_are_read_through_media_and_checked_against_their_hash(tmp_path):
    from sensorprint.errors import CaseError
    from sensorprint.media import sha256_file
    from sensorprint.workflow.train import ReferenceFile, load_reference

    camera = make_cameras(n_models=1, units_per_model=1, seed=3, width=320, height=240)[0]
    video = camera.record_video(tmp_path / "ref.mp4", seconds=1, fps=10, size=(320, 240), seed=1)
    reference = ReferenceFile("A", "A", str(video), sha256_file(video), "video")
    frames = load_reference(reference, "frames")
    assert 5 <= len(frames) <= 20 and all(f.shape == (240, 320, 3) and f.dtype.name == "float32" for f in frames)
    assert len(load_reference(reference, "patches")) == 5  # a few frames: their patches are thinned anyway
    changed = ReferenceFile("A", "A", str(video), "0" * 64, "video")
    with pytest.raises(CaseError, match="changed since it was enrolled"):
        load_reference(changed, "frames")


def test_train_summary_warns_when_every_reference_is_flat():
    from sensorprint.cli.text import train_lines
    from sensorprint.workflow.train import TrainSummary

    flat = train_lines(TrainSummary(run_id=1, target="model", least_flat_share=0.998))
    assert "every reference file is at least 99.8% flat" in flat[-1]
    for share in (0.3, None):  # scenes among the references, or a frame network: nothing to say
        assert not any(
            "flat" in line for line in train_lines(TrainSummary(run_id=1, target="model", least_flat_share=share))
        )
