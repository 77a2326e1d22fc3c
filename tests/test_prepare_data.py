"""The data step end to end: real Beam (DirectRunner), real TFRecords, real decoding."""

import json
import os
import shutil
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import tensorflow as tf

from components.common import outputs, storage
from components.common.beam_work import WriteRows, read_rows
from components.common.errors import ConfigError, RunFailed
from components.common.examples import parse, shard_files
from components.prepare_data.config import SPLITS, PrepareConfig
from components.prepare_data.run import run
from components.prepare_data.split import target_counts
from tests.images_factory import invalid_variants, rgb, valid_variants


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def read_examples(out: Path, split: str) -> list[dict]:
    records = tf.data.TFRecordDataset(shard_files(str(out), split)).map(parse)
    return [{k: v.numpy() for k, v in r.items()} for r in records]


@pytest.fixture
def messy_source(tmp_path, demo_dir):
    """Demo images plus one file for every skip reason and every accepted colour mode."""
    src = tmp_path / "messy"
    shutil.copytree(demo_dir, src)
    cls = sorted(p.name for p in src.iterdir())
    for name, data in valid_variants().items():
        (src / cls[0] / name).write_bytes(data)
    for name, (data, _reason) in invalid_variants().items():
        (src / cls[1] / name).write_bytes(data)
    (src / cls[0] / ".DS_Store").write_bytes(b"junk")
    (src / "README.txt").write_text("not in a class folder")
    dup = rgb(50, 50, 42, "PNG")
    (src / cls[0] / "dup_a.png").write_bytes(dup)
    (src / cls[0] / "dup_b.png").write_bytes(dup)
    conflict = rgb(50, 50, 43, "PNG")
    (src / cls[1] / "conflict.png").write_bytes(conflict)
    (src / cls[2] / "conflict.png").write_bytes(conflict)
    return src


def test_every_input_is_accounted_for(messy_source, tmp_path):
    out = tmp_path / "examples"
    stats = run(PrepareConfig(source=str(messy_source), output=str(out), max_pixels=4_000_000))
    rows = manifest(out)
    inputs = sorted(str(p) for p in messy_source.rglob("*") if p.is_file())
    assert sorted(r["uri"] for r in rows) == inputs
    assert stats["inputs"] == len(inputs) == stats["accepted"] + stats["skipped"]
    reasons = {Path(r["uri"]).name: r["reason"] for r in rows if r["status"] == "skipped"}
    for name, (_data, reason) in invalid_variants().items():
        assert reasons[name].startswith(reason), name
    assert reasons[".DS_Store"] == "hidden file"
    assert reasons["README.txt"] == "not inside a class folder"
    assert reasons["dup_b.png"].startswith("exact duplicate of")
    assert "dup_a.png" not in reasons
    conflicts = [r for r in rows if Path(r["uri"]).name == "conflict.png"]
    assert all("conflicting labels" in r["reason"] for r in conflicts) and len(conflicts) == 2
    for name in valid_variants():
        assert name not in reasons, name
    written = sum(len(read_examples(out, s)) for s in SPLITS)
    assert written == stats["accepted"]
    assert (out / "_SUCCESS").exists()
    assert "too many pixels" in (out / "data_report.md").read_text()


def test_special_files_and_links_get_a_manifest_line_and_are_never_read(tmp_path, demo_dir):
    """A FIFO or a link to /dev/zero would block or never end a read; a link out of the
    source is not followed; a dangling link and a linked class folder are not silently
    dropped. Each gets its line and reason; the run goes on (an alarm fails a hang)."""
    import signal

    src = tmp_path / "src"
    shutil.copytree(demo_dir, src)
    cls = sorted(p for p in src.iterdir())
    outside = tmp_path / "outside.png"
    outside.write_bytes((cls[0] / sorted(os.listdir(cls[0]))[0]).read_bytes())
    os.mkfifo(cls[0] / "pipe.png")
    (cls[0] / "zeros.png").symlink_to("/dev/zero")
    (cls[0] / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (cls[1] / "escape.png").symlink_to(outside)
    (src / "linked_class").symlink_to(cls[2], target_is_directory=True)

    def hung(*_args):
        raise TimeoutError("the data step blocked on a special file")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(300)
    try:
        stats = run(PrepareConfig(source=str(src), output=str(tmp_path / "out")))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    reasons = {Path(r["uri"]).name: r["reason"] for r in manifest(tmp_path / "out")
               if r["status"] == "skipped"}
    assert reasons["pipe.png"].startswith("not a regular file")
    assert "outside the source" in reasons["zeros.png"]
    assert reasons["gone.png"].startswith("dangling symbolic link")
    assert "outside the source" in reasons["escape.png"]
    assert reasons["linked_class"].startswith("symbolic link to a folder")
    assert stats["skipped"] >= 5 and stats["accepted"] > 0


def test_no_image_in_two_splits_and_examples_decode(examples_dir):
    seen = defaultdict(set)
    labels = (examples_dir / "labels.txt").read_text().split()
    for split in SPLITS:
        for ex in read_examples(examples_dir, split):
            seen[ex["image/sha256"]].add(split)
            assert labels[ex["image/class/label"]] == ex["image/class/text"].decode()
            image = tf.io.decode_image(ex["image/encoded"], channels=3)
            assert image.shape[-1] == 3
    assert all(len(splits) == 1 for splits in seen.values())


def test_split_is_stratified_within_one_image_per_class(examples_dir):
    stats = json.loads((examples_dir / "stats.json").read_text())
    fractions = dict(zip(SPLITS, (0.8, 0.1, 0.1), strict=True))
    for label, total in stats["class_totals"].items():
        targets = target_counts(total, fractions)
        for split in SPLITS:
            assert abs(stats["counts"][split][label] - targets[split]) <= 1


def test_adding_files_never_moves_existing_ones(demo_dir, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(demo_dir, src)
    state = tmp_path / "split_state.jsonl"
    run(PrepareConfig(source=str(src), output=str(tmp_path / "v1"), split_state=str(state)))
    before = {r["sha256"]: r["split"] for r in manifest(tmp_path / "v1")}
    for c, cls in enumerate(sorted(src.iterdir())):
        for i in range(6):
            (cls / f"new_{i}.png").write_bytes(rgb(48, 48, 7_000 + 10 * c + i))
    run(PrepareConfig(source=str(src), output=str(tmp_path / "v2"), split_state=str(state)))
    after = {r["sha256"]: r["split"] for r in manifest(tmp_path / "v2")}
    assert {sha: after[sha] for sha in before} == before
    assert len(after) == len(before) + 18
    assert set(Counter(after.values())) == set(SPLITS)


def test_near_duplicates_share_a_split(tmp_path, demo_dir):
    from PIL import Image

    src = tmp_path / "src"
    shutil.copytree(demo_dir, src)
    for cls in sorted(src.iterdir()):
        original = next(iter(sorted(cls.glob("*.jpg"))))
        Image.open(original).resize((80, 80)).save(cls / "near_copy.png")
    out = tmp_path / "out"
    run(PrepareConfig(source=str(src), output=str(out)))
    rows = {Path(r["uri"]).parent.name + "/" + Path(r["uri"]).name: r for r in manifest(out)}
    for cls in sorted(src.iterdir()):
        original = next(iter(sorted(cls.glob("*.jpg"))))
        assert rows[f"{cls.name}/near_copy.png"]["split"] == rows[f"{cls.name}/{original.name}"][
            "split"]


def test_csv_source_and_its_faults(tmp_path, demo_dir):
    files = sorted(p for p in demo_dir.rglob("*") if p.is_file())
    lines = ["path,label"] + [f"{p},{p.parent.name}" for p in files]
    lines += ["missing.jpg,class_x", f"{files[0]},", f"{tmp_path / 'pipe.png'},class_x"]
    os.mkfifo(tmp_path / "pipe.png")
    csv = tmp_path / "data.csv"
    csv.write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")  # Excel's BOM
    out = tmp_path / "out"
    stats = run(PrepareConfig(source=str(csv), output=str(out)))
    reasons = Counter(r["reason"] for r in manifest(out) if r["status"] == "skipped")
    assert reasons == {"listed in the CSV but missing": 1, "empty label in the CSV": 1,
                       "not a regular file (a FIFO, socket or device): not read": 1}
    assert stats["accepted"] == len(files)
    csv.write_bytes("path,label\nbild-ä.png,Bären\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8 text.*save the CSV as UTF-8"):
        run(PrepareConfig(source=str(csv), output=str(tmp_path / "out-2")))


def test_a_corrupt_split_state_is_one_line_naming_the_file(tmp_path, demo_dir):
    state = tmp_path / "state.jsonl"
    state.write_text('{"sha256": "ab", "split": "train"}\nnot json\n')
    with pytest.raises(ConfigError, match=r"--split-state .*state.jsonl: line 2 is not a split"):
        run(PrepareConfig(source=str(demo_dir), output=str(tmp_path / "out"),
                          split_state=str(state)))


@pytest.mark.parametrize("store", ["bucket", "s3_bucket"])
def test_bucket_source_and_output(store, request, demo_dir):
    """GCS (emulator) and S3 (moto server): source, output, split state and the Beam work
    (Beam's --temp_location, where workers on other machines leave it) in the bucket."""
    bucket = request.getfixturevalue(store)
    uploaded = sorted(demo_dir.rglob("*.png")) + sorted(demo_dir.rglob("*.jpg"))[:30]
    for p in uploaded:
        storage.write_bytes(f"{bucket}/images/{p.parent.name}/{p.name}", p.read_bytes())
    storage.write_bytes(f"{bucket}/images/notes.txt", b"not in a class folder")
    out = f"{bucket}/examples"
    stats = run(PrepareConfig(source=f"{bucket}/images", output=out, allow_small_classes=True,
                              split_state=f"{bucket}/split_state.jsonl",
                              beam_args=(f"--temp_location={bucket}/beam-temp",)))
    assert stats["inputs"] == len(uploaded) + 1 and stats["accepted"] == len(uploaded)
    rows = [json.loads(line) for line in
            storage.read_text(f"{out}/manifest.jsonl").splitlines()]
    assert sorted(r["uri"] for r in rows) == sorted(
        [f"{bucket}/images/{p.parent.name}/{p.name}" for p in uploaded]
        + [f"{bucket}/images/notes.txt"])
    assert outputs.is_complete(out)
    assert sum(len(storage.list_files(f"{out}/{s}")) for s in SPLITS) >= 3
    assert len(storage.read_text(f"{bucket}/split_state.jsonl").splitlines()) == len(uploaded)
    assert not storage.list_files(f"{bucket}/beam-temp"), "the step's Beam work is deleted"


def test_rows_the_workers_left_where_the_step_cannot_read_are_one_error_naming_the_fix(
        tmp_path):
    """Workers on other machines without --temp_location write to their own disks: the
    step reads fewer rows than files, and says so instead of judging an empty data set."""
    writer = WriteRows(str(tmp_path / "inspected"))
    writer.start_bundle()
    for key in (0, 1, 1):  # a retried bundle's row again
        writer.process({"key": key})
    writer.finish_bundle()
    assert read_rows(str(tmp_path / "inspected"), "key", 2) == [{"key": 0}, {"key": 1}]
    with pytest.raises(RunFailed, match=r"left 2 of 3 rows .* give Beam's --temp_location"):
        read_rows(str(tmp_path / "inspected"), "key", 3)


@pytest.mark.parametrize(
    "change,message",
    [
        (dict(train_fraction=0.9), "sum to 1.1"),
        (dict(test_fraction=0.0, train_fraction=0.9), "test fractions must be > 0"),
        (dict(source=""), "--source is empty"),
        (dict(resize_max_side=8), "--resize-max-side 8"),
        (dict(beam_args=("--temp_location=ftp://host/tmp",)), "--temp_location 'ftp://host/tmp'"),
    ],
)
def test_bad_settings_fail_before_reading(change, message, tmp_path):
    cfg = PrepareConfig(source="/does/not/matter", output=str(tmp_path / "o"))
    with pytest.raises(ConfigError, match=message):
        run(PrepareConfig(**{**cfg.__dict__, **change}))


def test_bad_sources_name_the_value_and_leave_nothing(tmp_path, demo_dir):
    one_class = tmp_path / "one"
    shutil.copytree(next(demo_dir.iterdir()), one_class / "only")
    empty = tmp_path / "empty"
    empty.mkdir()
    small = tmp_path / "small"
    shutil.copytree(demo_dir, small)
    for p in sorted((small / sorted(p.name for p in small.iterdir())[0]).iterdir())[3:]:
        p.unlink()
    cases = [(tmp_path / "missing", "not a directory"), (empty, "no files found"),
             (one_class, "at least 2"), (small, "too few for a")]
    for source, message in cases:
        out = tmp_path / f"out_{source.name}"
        with pytest.raises(ConfigError, match=message) as err:
            run(PrepareConfig(source=str(source), output=str(out)))
        assert str(source) in str(err.value) or "class" in str(err.value)
        assert not out.exists()


@pytest.mark.parametrize("name", ["line1\nline2", "tab\tname", "zero\u200bwidth"])
def test_a_class_name_that_cannot_round_trip_through_labels_txt_is_refused(name, tmp_path,
                                                                          demo_dir):
    src = tmp_path / "src"
    shutil.copytree(demo_dir, src)
    first = sorted(src.iterdir())[0]
    first.rename(src / name)
    with pytest.raises(ConfigError, match=r"line break or control character") as err:
        run(PrepareConfig(source=str(src), output=str(tmp_path / "out")))
    assert repr(name) in str(err.value)
    assert not (tmp_path / "out").exists()


def test_refuses_a_non_empty_output(tmp_path, demo_dir):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="not empty"):
        run(PrepareConfig(source=str(demo_dir), output=str(out)))
    assert (out / "keep.txt").read_text() == "precious"


def test_a_retry_clears_its_own_partial_output_and_a_complete_one_is_kept(tmp_path, demo_dir):
    out = tmp_path / "out"
    out.mkdir()
    (out / outputs.STARTED_MARKER).write_text("")
    (out / "train").mkdir()
    (out / "train" / "half-written.tfrecord").write_bytes(b"partial")
    run(PrepareConfig(source=str(demo_dir), output=str(out)))
    assert not (out / "train" / "half-written.tfrecord").exists()
    assert outputs.is_complete(str(out))
    before = sorted(p.stat().st_mtime_ns for p in out.rglob("*"))
    with pytest.raises(FileExistsError, match="complete artifact"):
        run(PrepareConfig(source=str(demo_dir), output=str(out)))
    assert sorted(p.stat().st_mtime_ns for p in out.rglob("*")) == before


def test_writes_in_place_where_directory_renames_fail(no_directory_renames, tmp_path,
                                                      demo_dir):
    out = tmp_path / "fuse" / "examples"
    run(PrepareConfig(source=str(demo_dir), output=str(out)))
    assert outputs.is_complete(str(out)) and shard_files(str(out), "train")


def test_a_near_duplicate_chain_cannot_swallow_a_class():
    """Low-detail images chain through dHash collisions; a chain larger than a few percent
    of the class is not a duplicate set and must not put the whole class in one split."""
    from components.prepare_data.split import Candidate, assign_splits

    fractions = dict(zip(SPLITS, (0.8, 0.1, 0.1), strict=True))
    candidates = [Candidate(key, f"{label}/{i}", label, f"{label}{i:04d}", dhash=f"{i % 2:016x}")
                  for key, (label, i) in enumerate((lb, i) for lb in "ab" for i in range(100))]
    label_of = {c.key: c.label for c in candidates}
    splits = Counter((label_of[d.key], d.split) for d in assign_splits(candidates, fractions))
    assert splits[("a", "test")] == 10 and splits[("b", "val")] == 10


def test_small_classes_allowed_still_cannot_leave_a_split_empty():
    """--allow-small-classes lets one class miss a split; it never writes a complete
    artifact whose validation or test split holds no image at all."""
    from components.prepare_data.split import Candidate, assign_splits

    fractions = dict(zip(SPLITS, (0.8, 0.1, 0.1), strict=True))
    tiny = [Candidate(key, f"{label}/{i}", label, f"{label}{i:04d}")
            for key, (label, i) in enumerate((lb, i) for lb in "ab" for i in range(2))]
    with pytest.raises(ConfigError, match="val/test.*would be empty"):
        assign_splits(tiny, fractions, allow_small_classes=True)
    enough = tiny + [Candidate(10 + i, f"a/x{i}", "a", f"ax{i:04d}") for i in range(10)]
    decisions = assign_splits(enough, fractions, allow_small_classes=True)
    assert {d.split for d in decisions} == set(SPLITS)
