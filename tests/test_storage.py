"""storage.py on local disk and on a real GCS emulator over HTTP, through the same tests."""

import threading

import pytest

from components.common import storage


@pytest.fixture(params=["local", "gcs"])
def root(request, tmp_path):
    if request.param == "local":
        return str(tmp_path)
    return request.getfixturevalue("bucket")


def test_write_read_exists_list_delete(root):
    a = storage.join(root, "dir/a.txt")
    b = storage.join(root, "dir/sub/b.bin")
    storage.write_text(a, "hello")
    storage.write_bytes(b, b"\x00\x01")
    assert storage.read_text(a) == "hello"
    assert storage.exists(a) and storage.is_dir(storage.join(root, "dir"))
    infos = storage.list_files(storage.join(root, "dir"), with_md5=True)
    assert [i.uri for i in infos] == [a, b]
    assert [i.size for i in infos] == [5, 2]
    assert all(i.md5 for i in infos)
    storage.delete(a)
    assert not storage.exists(a)
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(a)


def test_md5_is_the_same_on_both_backends(root, tmp_path):
    local = str(tmp_path / "x" / "f")
    storage.write_bytes(local, b"same bytes")
    remote = storage.join(root, "f")
    storage.write_bytes(remote, b"same bytes")
    assert storage.list_files(str(tmp_path / "x"), with_md5=True)[0].md5 == \
        storage.list_files(root, with_md5=True)[0].md5


def test_create_only_refuses_an_existing_object(root):
    uri = storage.join(root, "pointer")
    storage.write_text(uri, "first", create_only=True)
    with pytest.raises(storage.AlreadyExists):
        storage.write_text(uri, "second", create_only=True)
    assert storage.read_text(uri) == "first"


def test_racing_create_only_has_exactly_one_winner(root):
    uri = storage.join(root, "race")
    results = []

    def attempt(i):
        try:
            storage.write_text(uri, f"writer {i}", create_only=True)
            results.append(i)
        except storage.AlreadyExists:
            pass

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 1
    assert storage.read_text(uri) == f"writer {results[0]}"


def test_emulator_answers_412_like_gcs(bucket, gcs):
    """The fixture's enforcement: a failed ifGenerationMatch is HTTP 412, as on GCS."""
    from google.api_core.exceptions import PreconditionFailed

    blob = gcs.bucket(bucket[5:]).blob("obj")
    blob.upload_from_string(b"v1", if_generation_match=0)
    with pytest.raises(PreconditionFailed) as err:
        blob.upload_from_string(b"v2", if_generation_match=0)
    assert err.value.code == 412
    blob.reload()
    blob.upload_from_string(b"v3", if_generation_match=blob.generation)


def test_copy_tree_between_backends(root, tmp_path):
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "a" / "x.txt").write_text("x")
    (src / "y.txt").write_text("y")
    storage.copy_tree(str(src), storage.join(root, "copy"))
    back = tmp_path / "back"
    storage.copy_tree(storage.join(root, "copy"), str(back))
    assert (back / "a" / "x.txt").read_text() == "x" and (back / "y.txt").read_text() == "y"
