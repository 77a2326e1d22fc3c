"""The registry on local disk, a real GCS emulator (412 enforced by the fixture) and a real
S3 server (moto)."""

import json
import multiprocessing
import threading
from pathlib import Path

import pytest

from components.common import storage
from components.registry.checks import ConflictError, RegistryError
from components.registry.storage_registry import StorageRegistry


@pytest.fixture
def root(any_root):
    return storage.join(any_root, "registry")


def test_versions_are_numbered_immutable_and_idempotent(root, model):
    reg = StorageRegistry(root, "flowers")
    assert reg.production_saved_model() is None
    v1 = reg.register(model("graph"), "run-1", {"metrics": {"accuracy": 0.9}})
    again = reg.register(model("graph"), "run-1")
    v2 = reg.register(model("graph-2"), "run-2")
    assert (v1["version"], again["version"], v2["version"]) == (1, 1, 2)
    same_bytes = reg.register(model("graph"), "run-3")
    assert same_bytes["version"] == 1 and same_bytes["run_id"] == "run-1", \
        "never two versions with the same bytes"
    assert [r["version"] for r in reg.list_versions()] == [1, 2]
    assert storage.read_bytes(storage.join(reg.version_uri(2), "saved_model.pb")) == \
        storage.read_bytes(storage.join(model("graph-2"), "saved_model.pb"))
    assert reg.get_version(1)["metrics"] == {"accuracy": 0.9}


def test_promote_and_rollback_move_only_the_pointer(root, model):
    reg = StorageRegistry(root, "flowers")
    for run in ("a", "b"):
        reg.promote(reg.register(model(run), run)["version"], run)
    assert reg.current() == 2
    assert reg.production_saved_model() == reg.version_uri(2)
    entry = reg.rollback()
    assert (entry["version"], entry["previous_version"], entry["action"]) == (1, 2, "rollback")
    assert reg.current() == 1
    assert [h["version"] for h in reg.history()] == [1, 2, 1]
    assert [r["version"] for r in reg.list_versions()] == [1, 2]
    assert reg.promote(1)["seq"] == 3, "promoting the current version writes nothing"


def test_an_uncommitted_version_is_invisible(root, model):
    reg = StorageRegistry(root, "flowers")
    storage.write_text(storage.join(reg.version_uri(1), "saved_model.pb"), "partial")
    assert reg.list_versions() == []
    assert reg.register(model(), "run-1")["version"] == 1


def test_racing_promotions_have_one_winner_and_a_clear_conflict(root, model):
    reg = StorageRegistry(root, "flowers")
    versions = [reg.register(model(str(i)), f"run-{i}")["version"] for i in range(6)]
    outcomes = []

    def promote(version):
        try:
            outcomes.append(("won", StorageRegistry(root, "flowers").promote(
                version, expected_version=None)["version"]))
        except ConflictError as err:
            outcomes.append(("conflict", str(err)))

    threads = [threading.Thread(target=promote, args=(v,)) for v in versions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if o[0] == "won"]
    assert len(winners) == 1
    assert all("re-read and retry" in o[1] or "not None" in o[1] for o in outcomes
               if o[0] == "conflict")
    assert reg.current() == winners[0][1]
    assert len(reg.history()) == 1


def _register_in_process(args):
    root, saved_model, run_id = args
    return StorageRegistry(root, "flowers").register(saved_model, run_id)["version"]


def test_concurrent_registrations_in_processes_get_distinct_numbers(root, model):
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        numbers = pool.map(_register_in_process, [(root, model(str(i)), f"r{i}")
                                                  for i in range(8)])
    assert sorted(numbers) == list(range(1, 9))


def test_corrupt_or_missing_objects_are_named(root, model):
    reg = StorageRegistry(root, "flowers")
    reg.promote(reg.register(model(), "a")["version"])
    record = storage.join(reg.base, "records", "1.json")
    storage.write_text(record, "{not json")
    with pytest.raises(RegistryError, match="corrupt.*records/1.json"):
        reg.production_saved_model()
    pointer = storage.join(reg.base, "aliases", "production", "00000002.json")
    storage.write_text(pointer, json.dumps({"version": 7, "previous_version": 1}))
    with pytest.raises(RegistryError, match="missing.*records/7.json"):
        reg.resolve("production")
    with pytest.raises(RegistryError, match="alias 'staging'"):
        reg.resolve("staging")


def test_the_run_log_has_one_record_per_run(root):
    reg = StorageRegistry(root, "flowers")
    reg.log_run("r1", "lineage", {"decision": "changed", "data_fingerprint": "f1",
                                  "production_version": None, "reasons": ["first"]})
    reg.log_run("r1", "evaluate", {"decision": "promote", "reasons": ["ok"]})
    reg.log_run("r1", "promote", {"version": 1, "previous_version": None})
    reg.log_run("r1", "final", {"status": "SUCCEEDED"})
    reg.log_run("r2", "lineage", {"decision": "unchanged", "data_fingerprint": "f1",
                                  "production_version": 1, "reasons": ["same"]})
    reg.log_run("r2", "final", {"status": "SUCCEEDED"})
    reg.log_run("r3", "final", {"status": "FAILED", "error": "train failed"})
    runs = reg.runs()
    assert [(r["run_id"], r["status"], r["decision"]) for r in runs] == [
        ("r1", "SUCCEEDED", "promoted"), ("r2", "SUCCEEDED", "unchanged"),
        ("r3", "FAILED", None)]
    assert runs[0]["promoted_version"] == 1 and runs[1]["production_version"] == 1
    assert runs[2]["error"] == "train failed"
    for bad in ("a/b", ".", "..", ""):
        with pytest.raises(RegistryError, match="use letters, digits"):
            reg.log_run(bad, "final", {})


def test_a_version_whose_files_changed_is_refused_before_it_is_read(root, model):
    """Evaluate reads production through ``saved_model_copy``: bytes that no longer match
    the recorded content hash (a signature swapped in, a file gone) are never loaded."""
    reg = StorageRegistry(root, "flowers")
    reg.promote(reg.register(model("good"), "a")["version"])
    with reg.saved_model_copy(1) as local:
        assert storage.exists(storage.join(local, "saved_model.pb"))
    pb = storage.join(reg.version_uri(1), "saved_model.pb")
    storage.write_bytes(pb, storage.read_bytes(storage.join(model("evil"), "saved_model.pb")))
    with pytest.raises(RegistryError, match="do not match the recorded content hash"):
        with reg.saved_model_copy(1):
            raise AssertionError("a tampered version was handed out")


@pytest.mark.parametrize("make,message", [
    (lambda f: (f / "notes.txt").write_text("not a model"), "not a SavedModel"),
    (lambda f: (f / "saved_model.pb").write_bytes(b"\xff\xff\xff"), "does not parse"),
    (lambda f: (f / "saved_model.pb").write_bytes(b""), "no serving_default"),
    (lambda f: (f / "_STARTED").write_text(""), "export did not finish"),
])
def test_only_a_complete_servable_saved_model_is_registered(tmp_path, make, message):
    folder = tmp_path / "candidate"
    folder.mkdir()
    make(folder)
    reg = StorageRegistry(str(tmp_path / "registry"), "flowers")
    with pytest.raises(RegistryError, match=message):
        reg.register(str(folder), "run-1")
    assert reg.list_versions() == []


@pytest.mark.parametrize("name", ["..", ".", "a/b", "", "-x", "a b"])
def test_a_model_name_that_is_not_a_plain_name_is_refused_before_any_write(tmp_path, name):
    from components.registry.schemes import open_registry

    with pytest.raises(RegistryError, match="model name"):
        open_registry(str(tmp_path / "registry"), name)
    assert not any(tmp_path.iterdir())


def test_a_registration_cut_short_never_carries_the_completion_marker(tmp_path, model,
                                                                     monkeypatch):
    """Cut the copy after each of its writes (a killed pod, a full disk): a version folder
    that holds ``_SUCCESS`` always holds every file, ``saved_model.pb`` included."""
    from components.common import outputs

    source = model("exported")
    storage.write_text(storage.join(source, outputs.STARTED_MARKER), "")
    outputs.finish(source)
    files = len(storage.list_files(source))
    write = storage.write_bytes
    for cut in range(files):
        root = str(tmp_path / f"registry-{cut}")
        calls = []

        def failing(uri, data, *args, calls=calls, cut=cut, **kwargs):
            if "/versions/" in uri:
                if len(calls) == cut:
                    raise OSError(28, "No space left on device")
                calls.append(uri)
            return write(uri, data, *args, **kwargs)

        monkeypatch.setattr(storage, "write_bytes", failing)
        with pytest.raises(OSError, match="No space left"):
            StorageRegistry(root, "flowers").register(source, "run-1")
        monkeypatch.setattr(storage, "write_bytes", write)
        copied = Path(root, "flowers", "versions", "1")
        names = {str(p.relative_to(copied)) for p in copied.rglob("*") if p.is_file()}
        assert "_SUCCESS" not in names, (cut, names)
        assert ("saved_model.pb" in names) == (cut >= files - 2), (cut, names)
        assert StorageRegistry(root, "flowers").list_versions() == [], "no record: invisible"


def test_racing_registrations_of_identical_bytes_make_one_version(root, model):
    """Four runs register the same bytes at once (a retried pod and a re-run, say): on
    every store, one version; each run gets it (S3 created four before the claim)."""
    source = model("same-bytes")
    results, errors = [], []

    def register(run_id):
        try:
            results.append(StorageRegistry(root, "flowers").register(source, run_id)["version"])
        except Exception as err:  # noqa: BLE001 - the assertion below reports it
            errors.append(err)

    threads = [threading.Thread(target=register, args=(f"run-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and results == [1, 1, 1, 1]
    assert [v["version"] for v in StorageRegistry(root, "flowers").list_versions()] == [1]
