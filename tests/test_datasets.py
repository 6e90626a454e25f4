"""Loading MNIST, CIFAR-10 and .npz datasets: layouts, lookup order, checksums, downloads.

The real files come from the ``data_dir`` fixture (``$HALFCONV_DATA_DIR`` or
``shared/datasets`` beside the repository, see ``tests/environment.py``); tests that need
them are skipped without them, and fail when CI runs. Broken or moved files
are built in ``tmp_path`` (copies and symlinks), never in the shared folder. ``HOME`` is
pointed at a temporary folder so the user's cache is never read or written, and the URL
opener is replaced in every test: one that reaches for the network fails the test.

The CIFAR-10 archive built here cannot have the official md5, so the archive tests put its
md5 into the checksum table with ``monkeypatch``; its members are still checked against
the real sha256 values, which is what protects the unpickling.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import shutil
import tarfile
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest

from halfconv.core import DatasetError, UsageError
from halfconv.datasets import DATA_DIR_ENV, Dataset, _download, _files, data_dir_candidates, load_dataset
from halfconv.datasets import _load as _datasets

# From shared/datasets/README.md. The loader hashes every file it reads, so the split tests
# below check these published values against the real bytes, through the module's table.
README_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    "data_batch_1": "54636561a3ce25bd3e19253c6b0d8538147b0ae398331ac4a2d86c6d987368cd",
    "data_batch_2": "766b2cef9fbc745cf056b3152224f7cf77163b330ea9a15f9392beb8b89bc5a8",
    "data_batch_3": "0f00d98ebfb30b3ec0ad19f9756dc2630b89003e10525f5e148445e82aa6a1f9",
    "data_batch_4": "3f7bb240661948b8f4d53e36ec720d8306f5668bd0071dcb4e6c947f78e9682b",
    "data_batch_5": "d91802434d8376bbaeeadf58a737e3a1b12ac839077e931237e0dcd43adcb154",
    "test_batch": "f53d8d457504f7cff4ea9e021afcf0e0ad8e24a91f3fc42091b8adef61157831",
    "batches.meta": "f962466ef690d46b226450fb9aadc74ba4bc64a76aa526b5827fe4bc5c7125cb",
}
MNIST_TEST = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
CIFAR_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No user cache, no data-dir variable, no network, no bundled MNIST test set; returns the cache folder."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.setattr(_datasets, "BUNDLED_DIR", tmp_path / "no-bundle")

    def no_network(url: str, timeout_s: float) -> None:
        raise AssertionError(f"the test reached for the network: {url}")

    monkeypatch.setattr(_download, "_open_url", no_network)
    return tmp_path / "home" / ".cache" / "halfconv" / "datasets"


@pytest.fixture(scope="session")
def cifar_archive(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cifar-10-python.tar.gz with the official layout, holding the test split only."""
    path = tmp_path_factory.mktemp("archive") / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for name in ("batches.meta", "test_batch"):
            tar.add(data_dir / "cifar-10-batches-py" / name, arcname=f"cifar-10-batches-py/{name}")
    return path


def link_files(source: Path, destination: Path, subdir: str, names: tuple[str, ...]) -> Path:
    destination.mkdir(parents=True, exist_ok=True)
    for name in names:
        (destination / name).symlink_to(source / subdir / name)
    return destination


def accept_checksum(
    monkeypatch: pytest.MonkeyPatch, name: str, data: bytes, *, md5_only: bool = False
) -> None:
    """Put ``data``'s checksums into the module's table under ``name``."""
    checksum = _download.Checksum(
        None if md5_only else len(data),
        hashlib.md5(data).hexdigest(),
        None if md5_only else hashlib.sha256(data).hexdigest(),
    )
    monkeypatch.setitem(_files.CHECKSUMS, name, checksum)


def files_under(directory: Path) -> list[Path]:
    """Every file below ``directory``, which must exist."""
    assert directory.is_dir(), f"{directory} does not exist"
    return sorted(p for p in directory.rglob("*") if not p.is_dir())


# -- the real files ---------------------------------------------------------------------------


def test_mnist_test_split(data_dir: Path) -> None:
    dataset = load_dataset("mnist", "test", data_dir=data_dir, download=False)

    assert (dataset.name, dataset.split) == ("mnist", "test")
    assert dataset.images.shape == (10000, 28, 28) and dataset.images.dtype == np.uint8
    assert dataset.labels.shape == (10000,) and dataset.labels.dtype == np.int64
    assert np.bincount(dataset.labels).tolist() == MNIST_TEST_COUNTS
    assert dataset.class_names == tuple("0123456789")
    # The pixels, read independently: a 16-byte IDX header, then rows of 28x28 bytes.
    raw = gzip.decompress((data_dir / "mnist" / MNIST_TEST[0]).read_bytes())
    assert np.array_equal(dataset.images.reshape(-1), np.frombuffer(raw, np.uint8, offset=16))
    assert [(Path(f.path).name, f.sha256) for f in dataset.files] == [
        (name, README_SHA256[name]) for name in MNIST_TEST
    ]
    assert [f.size_bytes for f in dataset.files] == [1648877, 4542]
    assert dataset.files[0].path == str(data_dir.absolute() / "mnist" / MNIST_TEST[0])


def test_mnist_train_split(data_dir: Path) -> None:
    dataset = load_dataset("mnist", "train", data_dir=data_dir, download=False)

    assert dataset.images.shape == (60000, 28, 28) and dataset.images.dtype == np.uint8
    assert dataset.labels.shape == (60000,) and dataset.labels.dtype == np.int64
    assert dataset.labels.min() == 0 and dataset.labels.max() == 9
    assert np.bincount(dataset.labels).tolist()[:2] == [5923, 6742]
    assert {Path(f.path).name: f.sha256 for f in dataset.files} == {
        name: README_SHA256[name] for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
    }


def test_cifar10_test_split(data_dir: Path) -> None:
    dataset = load_dataset("cifar10", "test", data_dir=data_dir, download=False)

    assert (dataset.name, dataset.split) == ("cifar10", "test")
    assert dataset.images.shape == (10000, 32, 32, 3) and dataset.images.dtype == np.uint8
    assert dataset.labels.dtype == np.int64
    assert np.bincount(dataset.labels).tolist() == [1000] * 10
    assert dataset.class_names == CIFAR_NAMES
    # HWC from the stored rows: plane c of row i is channel c, 32x32 row-major.
    batch = pickle.loads((data_dir / "cifar-10-batches-py" / "test_batch").read_bytes(), encoding="bytes")
    for i in (0, 4321, 9999):
        for channel in range(3):
            plane = batch[b"data"][i, channel * 1024 : (channel + 1) * 1024].reshape(32, 32)
            assert np.array_equal(dataset.images[i, :, :, channel], plane)
    assert dataset.labels[:5].tolist() == batch[b"labels"][:5]
    assert [(Path(f.path).name, f.sha256) for f in dataset.files] == [
        ("test_batch", README_SHA256["test_batch"]),
        ("batches.meta", README_SHA256["batches.meta"]),
    ]


def test_cifar10_train_split(data_dir: Path) -> None:
    dataset = load_dataset("cifar10", "train", data_dir=data_dir, download=False)

    assert dataset.images.shape == (50000, 32, 32, 3) and dataset.images.dtype == np.uint8
    assert np.bincount(dataset.labels).tolist() == [5000] * 10
    assert dataset.class_names == CIFAR_NAMES
    assert {Path(f.path).name: f.sha256 for f in dataset.files} == {
        name: README_SHA256[name] for name in [f"data_batch_{i}" for i in range(1, 6)] + ["batches.meta"]
    }


# -- where files are looked for ---------------------------------------------------------------


def test_candidates_are_data_dir_then_env_then_cache(tmp_path: Path, monkeypatch, isolated: Path) -> None:
    assert data_dir_candidates(None) == [isolated]
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "env"))
    assert data_dir_candidates(None) == [tmp_path / "env", isolated]
    assert data_dir_candidates(tmp_path / "flag") == [tmp_path / "flag", tmp_path / "env", isolated]


def test_data_dir_beats_env_beats_cache(data_dir: Path, tmp_path: Path, monkeypatch, isolated: Path) -> None:
    flag, env = tmp_path / "flag", tmp_path / "env"
    for directory in (flag / "mnist", env / "mnist", isolated / "mnist"):
        link_files(data_dir, directory, "mnist", MNIST_TEST)
    monkeypatch.setenv(DATA_DIR_ENV, str(env))

    def source(**kwargs) -> Path:
        return Path(load_dataset("mnist", download=False, **kwargs).files[0].path).parent.parent

    assert source(data_dir=flag) == flag
    assert source() == env
    monkeypatch.delenv(DATA_DIR_ENV)
    assert source() == isolated
    # A directory without the files is passed over.
    assert source(data_dir=tmp_path / "empty") == isolated


def test_the_first_directory_with_every_file_wins(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    link_files(data_dir, tmp_path / "flag" / "mnist", "mnist", MNIST_TEST[:1])  # labels missing here
    link_files(data_dir, tmp_path / "env" / "mnist", "mnist", MNIST_TEST)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "env"))

    dataset = load_dataset("mnist", data_dir=tmp_path / "flag", download=False)

    assert {Path(f.path).parent for f in dataset.files} == {tmp_path / "env" / "mnist"}


def test_flat_layout(data_dir: Path, tmp_path: Path) -> None:
    link_files(data_dir, tmp_path, "mnist", MNIST_TEST)
    link_files(data_dir, tmp_path, "cifar-10-batches-py", ("test_batch", "batches.meta"))

    mnist = load_dataset("mnist", data_dir=tmp_path, download=False)
    cifar = load_dataset("cifar10", data_dir=tmp_path, download=False)

    assert [f.path for f in mnist.files] == [str(tmp_path / name) for name in MNIST_TEST]
    assert np.bincount(mnist.labels).tolist() == MNIST_TEST_COUNTS
    assert cifar.images.shape == (10000, 32, 32, 3)


# -- the CIFAR-10 archive ---------------------------------------------------------------------


def test_cifar10_read_from_the_archive(data_dir: Path, cifar_archive: Path, tmp_path: Path, monkeypatch) -> None:
    shutil.copy(cifar_archive, tmp_path / "cifar-10-python.tar.gz")
    accept_checksum(monkeypatch, "cifar-10-python.tar.gz", cifar_archive.read_bytes(), md5_only=True)

    from_archive = load_dataset("cifar10", data_dir=tmp_path, download=False)
    from_folder = load_dataset("cifar10", data_dir=data_dir, download=False)

    assert np.array_equal(from_archive.images, from_folder.images)
    assert np.array_equal(from_archive.labels, from_folder.labels)
    assert from_archive.class_names == CIFAR_NAMES
    archive_digest, *members = from_archive.files
    assert archive_digest.path == str(tmp_path / "cifar-10-python.tar.gz")
    assert archive_digest.sha256 == hashlib.sha256(cifar_archive.read_bytes()).hexdigest()
    assert [(m.path, m.sha256) for m in members] == [
        (f"{tmp_path}/cifar-10-python.tar.gz/cifar-10-batches-py/{name}", README_SHA256[name])
        for name in ("test_batch", "batches.meta")
    ]
    assert files_under(tmp_path) == [tmp_path / "cifar-10-python.tar.gz"]  # nothing extracted


def test_archive_with_unknown_md5_is_refused(cifar_archive: Path, tmp_path: Path) -> None:
    shutil.copy(cifar_archive, tmp_path / "cifar-10-python.tar.gz")

    expected = (
        r"cifar-10-python.tar.gz has the wrong checksum \(md5 [0-9a-f]{32}, "
        r"expected c58f30108f718f92721af3b95e74349a\) and was not used - delete it"
    )
    with pytest.raises(DatasetError, match=expected):
        load_dataset("cifar10", data_dir=tmp_path, download=False)


def test_archive_member_with_wrong_sha256_is_refused(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    archive = tmp_path / "cifar-10-python.tar.gz"
    meta = bytearray((data_dir / "cifar-10-batches-py" / "batches.meta").read_bytes())
    meta[-5] ^= 1
    # The broken member is refused as soon as it is read, before test_batch is missed.
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/batches.meta")
        info.size = len(meta)
        tar.addfile(info, io.BytesIO(bytes(meta)))
    accept_checksum(monkeypatch, "cifar-10-python.tar.gz", archive.read_bytes(), md5_only=True)

    expected = r"batches.meta has the wrong checksum \(sha256 [0-9a-f]{16}\.\.\., expected f962466ef690d46b"
    with pytest.raises(DatasetError, match=expected):
        load_dataset("cifar10", data_dir=tmp_path, download=False)


# -- broken files -----------------------------------------------------------------------------


def broken_mnist(source: Path, directory: Path, labels: bytes) -> Path:
    link_files(source, directory / "mnist", "mnist", MNIST_TEST[:1])
    (directory / "mnist" / MNIST_TEST[1]).write_bytes(labels)
    return directory / "mnist" / MNIST_TEST[1]


def test_wrong_checksum_is_refused_not_skipped(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    labels = bytearray((data_dir / "mnist" / MNIST_TEST[1]).read_bytes())
    labels[100] ^= 0xFF
    path = broken_mnist(data_dir, tmp_path / "flag", bytes(labels))
    # A good copy later in the lookup order must not hide the broken file.
    monkeypatch.setenv(DATA_DIR_ENV, str(data_dir))

    with pytest.raises(DatasetError) as caught:
        load_dataset("mnist", data_dir=tmp_path / "flag")

    actual = hashlib.sha256(labels).hexdigest()
    assert str(caught.value) == (
        f"{path} has the wrong checksum (sha256 {actual[:16]}..., expected f7ae60f92e00ec6d...)"
        " and was not used - delete it and run again to download it afresh, or restore the original file"
    )
    assert caught.value.exit_code == 9


def test_truncated_file_reports_its_size(data_dir: Path, tmp_path: Path) -> None:
    labels = (data_dir / "mnist" / MNIST_TEST[1]).read_bytes()[:-10]
    broken_mnist(data_dir, tmp_path, labels)

    with pytest.raises(DatasetError, match=r"wrong checksum .*, 4532 bytes instead of 4542\)"):
        load_dataset("mnist", data_dir=tmp_path, download=False)


def test_corrupt_gzip(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    corrupt = b"\x1f\x8b\x08\x00" + os.urandom(64)
    broken_mnist(data_dir, tmp_path, corrupt)
    with pytest.raises(DatasetError, match="wrong checksum"):
        load_dataset("mnist", data_dir=tmp_path, download=False)

    # Should a corrupt file ever match the table, the parser still refuses it.
    accept_checksum(monkeypatch, MNIST_TEST[1], corrupt)
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte.gz is not a valid gzip file"):
        load_dataset("mnist", data_dir=tmp_path, download=False)


def test_bad_idx_magic(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    labels = gzip.compress((2051).to_bytes(4, "big") + (10000).to_bytes(4, "big") + bytes(10000))
    broken_mnist(data_dir, tmp_path, labels)
    accept_checksum(monkeypatch, MNIST_TEST[1], labels)

    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte\.gz has IDX magic 2051, expected 2049"):
        load_dataset("mnist", data_dir=tmp_path, download=False)


def test_idx_with_wrong_count(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    labels = gzip.compress((2049).to_bytes(4, "big") + (500).to_bytes(4, "big") + bytes(500))
    broken_mnist(data_dir, tmp_path, labels)
    accept_checksum(monkeypatch, MNIST_TEST[1], labels)

    with pytest.raises(DatasetError, match=r"hold 10000 images and 500 labels, expected 10000"):
        load_dataset("mnist", data_dir=tmp_path, download=False)


def test_unpicklable_batch(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    link_files(data_dir, tmp_path / "cifar-10-batches-py", "cifar-10-batches-py", ("test_batch",))
    garbage = b"\x80\x02not a pickle"
    (tmp_path / "cifar-10-batches-py" / "batches.meta").write_bytes(garbage)
    accept_checksum(monkeypatch, "batches.meta", garbage)

    with pytest.raises(DatasetError, match=r"batches\.meta is not a readable CIFAR-10 pickle"):
        load_dataset("cifar10", data_dir=tmp_path, download=False)


# -- missing files and downloads --------------------------------------------------------------


def test_missing_without_download(tmp_path: Path, isolated: Path) -> None:
    with pytest.raises(DatasetError) as caught:
        load_dataset("mnist", data_dir=tmp_path / "flag", download=False)

    assert str(caught.value) == (
        "MNIST test files (t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) not found in"
        f" {tmp_path / 'flag'}, {isolated} - put the files in {tmp_path / 'flag' / 'mnist'}/"
        f" or set {DATA_DIR_ENV} to a folder that holds them"
    )


def test_the_mnist_test_set_ships_with_the_package(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    """Offline, with no data directory, MNIST's test split is read from the package, verified like any file."""
    monkeypatch.undo()  # the real bundle, but still no network and no data directory
    monkeypatch.setattr(_download, "_open_url", lambda url, timeout_s: pytest.fail(f"the test reached for {url}"))
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("HOME", "/nonexistent")
    bundled = load_dataset("mnist", "test", download=False)
    canonical = load_dataset("mnist", "test", data_dir=data_dir)
    assert [Path(f.path).parent for f in bundled.files] == [_datasets.BUNDLED_DIR / "mnist"] * 2
    assert [f.sha256 for f in bundled.files] == [f.sha256 for f in canonical.files]
    assert np.array_equal(bundled.images, canonical.images) and np.array_equal(bundled.labels, canonical.labels)
    # A data directory that holds the split still comes first; the training split is not bundled.
    assert load_dataset("mnist", "test", data_dir=data_dir).files[0].path.startswith(str(data_dir))
    with pytest.raises(DatasetError, match="MNIST train files"):
        load_dataset("mnist", "train", download=False)
    license_text = (_datasets.BUNDLED_DIR / "mnist" / "README.md").read_text()
    assert "Creative Commons Attribution-Share Alike 3.0" in license_text


def test_missing_cifar_without_download_names_the_archive(isolated: Path) -> None:
    with pytest.raises(DatasetError) as caught:
        load_dataset("cifar10", "train", download=False)

    message = str(caught.value)
    assert message.startswith("CIFAR-10 train files (data_batch_1, ")
    assert message.endswith(
        f"or cifar-10-python.tar.gz) not found in {isolated} - put cifar-10-python.tar.gz in {isolated}/"
        f" or its files in {isolated / 'cifar-10-batches-py'}/ or set {DATA_DIR_ENV} to a folder that holds them"
    )


def test_download_when_offline(tmp_path: Path, monkeypatch, isolated: Path) -> None:
    tried = []

    def offline(url: str, timeout_s: float) -> None:
        tried.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(_download, "_open_url", offline)

    with pytest.raises(DatasetError) as caught:
        load_dataset("mnist", progress=True)

    reason = "[Errno -3] Temporary failure in name resolution"
    assert str(caught.value) == (
        f"MNIST test files (t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) not found in {isolated};"
        f" download failed (ossci-datasets.s3.amazonaws.com: {reason}; yann.lecun.com: {reason})"
        f" - put the files in {isolated / 'mnist'}/ or set {DATA_DIR_ENV} to a folder that holds them"
    )
    assert tried == [
        "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz",
        "http://yann.lecun.com/exdb/mnist/t10k-images-idx3-ubyte.gz",
    ]
    assert files_under(tmp_path) == []


def serve_from(directory: Path, fail_hosts: tuple[str, ...] = (), tried: list[str] | None = None):
    def open_url(url: str, timeout_s: float) -> io.BytesIO:
        assert timeout_s > 0
        if tried is not None:
            tried.append(url)
        if any(host in url for host in fail_hosts):
            raise urllib.error.HTTPError(url, 403, "Forbidden", {}, None)
        return io.BytesIO((directory / url.rsplit("/", 1)[1]).read_bytes())

    return open_url


def test_download_verifies_and_places_the_files(data_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    tried: list[str] = []
    monkeypatch.setattr(_download, "_open_url", serve_from(data_dir / "mnist", ("amazonaws",), tried))

    dataset = load_dataset("mnist", data_dir=tmp_path / "flag", progress=True)

    assert np.bincount(dataset.labels).tolist() == MNIST_TEST_COUNTS
    assert files_under(tmp_path) == [tmp_path / "flag" / "mnist" / name for name in MNIST_TEST]
    assert [f.sha256 for f in dataset.files] == [README_SHA256[name] for name in MNIST_TEST]
    assert [u.split("/")[2] for u in tried] == ["ossci-datasets.s3.amazonaws.com", "yann.lecun.com"] * 2
    assert "t10k-images-idx3-ubyte.gz" in capsys.readouterr().err  # the progress bar


def test_download_goes_to_the_cache_without_data_dir(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: Path
) -> None:
    monkeypatch.setattr(_download, "_open_url", serve_from(data_dir / "mnist"))

    load_dataset("mnist")

    assert files_under(tmp_path) == [isolated / "mnist" / name for name in MNIST_TEST]


def test_download_with_wrong_bytes_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    served = tmp_path / "served"
    served.mkdir()
    (served / MNIST_TEST[0]).write_bytes(b"<html>a captive portal</html>")
    monkeypatch.setattr(_download, "_open_url", serve_from(served))

    expected = (
        r"download failed \(ossci-datasets.s3.amazonaws.com: wrong checksum, "
        r"sha256 [0-9a-f]{16}\.\.\., expected 8d422c7b0a1c1c79\.\.\.; yann.lecun.com: wrong"
    )
    with pytest.raises(DatasetError, match=expected):
        load_dataset("mnist", data_dir=tmp_path / "flag")

    # No file; only the empty folder the files were meant for is left.
    assert sorted((tmp_path / "flag").rglob("*")) == [tmp_path / "flag" / "mnist"]


def test_interrupted_download_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    class Interrupted(io.BytesIO):
        def read(self, size: int = -1) -> bytes:
            if self.tell() > 0:
                raise KeyboardInterrupt
            return super().read(1000)

    monkeypatch.setattr(_download, "_open_url", lambda url, timeout_s: Interrupted(b"x" * 5000))

    with pytest.raises(KeyboardInterrupt):
        load_dataset("mnist", data_dir=tmp_path / "flag")

    # No file, not even a partial one; only the empty folder the files were meant for is left.
    assert sorted((tmp_path / "flag").rglob("*")) == [tmp_path / "flag" / "mnist"]


def test_cifar_download_extracts_the_archive(cifar_archive: Path, tmp_path: Path, monkeypatch) -> None:
    accept_checksum(monkeypatch, "cifar-10-python.tar.gz", cifar_archive.read_bytes(), md5_only=True)
    monkeypatch.setattr(_download, "_open_url", serve_from(cifar_archive.parent))

    dataset = load_dataset("cifar10", data_dir=tmp_path / "flag")

    folder = tmp_path / "flag" / "cifar-10-batches-py"
    assert files_under(tmp_path / "flag") == [folder / "batches.meta", folder / "test_batch"]
    assert [f.path for f in dataset.files] == [str(folder / "test_batch"), str(folder / "batches.meta")]
    assert np.bincount(dataset.labels).tolist() == [1000] * 10


def test_download_target_skips_unwritable_data_dir(tmp_path: Path, monkeypatch, isolated: Path) -> None:
    monkeypatch.setattr(_datasets, "_writable", lambda d: d != tmp_path / "flag")
    candidates = data_dir_candidates(tmp_path / "flag")

    assert _datasets._download_target(tmp_path / "flag", candidates) == isolated
    assert _datasets._download_target(None, data_dir_candidates(None)) == isolated


# -- .npz datasets ----------------------------------------------------------------------------


def test_npz_dataset(tmp_path: Path) -> None:
    images = np.arange(5 * 4 * 4, dtype=np.float32).reshape(5, 4, 4)
    path = tmp_path / "digits.npz"
    np.savez(path, x=images, y=np.array([0, 1, 2, 1, 0], np.int32), class_names=np.array(["a", "b", "c"]))

    dataset = load_dataset(str(path), "train")

    assert isinstance(dataset, Dataset)
    assert (dataset.name, dataset.split) == ("digits", "train")
    assert np.array_equal(dataset.images, images) and dataset.images.dtype == np.float32
    assert dataset.labels.dtype == np.int64 and dataset.labels.tolist() == [0, 1, 2, 1, 0]
    assert dataset.class_names == ("a", "b", "c")
    assert dataset.files[0].path == str(path)
    assert dataset.files[0].sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert dataset.files[0].size_bytes == path.stat().st_size


def test_npz_without_class_names_and_with_keras_labels(tmp_path: Path) -> None:
    path = tmp_path / "mine.npz"
    np.savez(path, x=np.zeros((3, 2, 2, 3), np.uint8), y=np.array([[3], [0], [1]], np.uint8))

    dataset = load_dataset(path)  # type: ignore[arg-type]

    assert dataset.labels.tolist() == [3, 0, 1]
    assert dataset.class_names == ("0", "1", "2", "3")


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.zeros((3, 2))}, r"has no array 'y' - save it with numpy.savez"),
        ({"images": np.zeros((3, 2))}, r"has no array 'x' or 'y'"),
        ({"x": np.zeros((3, 2)), "y": np.zeros(4, np.int64)}, r"x holds 3 images but y holds 4 labels"),
        ({"x": np.zeros((3, 2)), "y": np.zeros(3, np.float32)}, r"y must be a 1-D integer array, got float"),
        ({"x": np.zeros((0, 2)), "y": np.zeros(0, np.int64)}, r"holds no images"),
        ({"x": np.zeros((2, 2)), "y": np.array([0, -1])}, r"y holds a negative label \(-1\)"),
        (
            {"x": np.zeros((2, 2)), "y": np.array([0, 2]), "class_names": np.array(["a", "b"])},
            r"y holds label 2 but class_names has only 2 names",
        ),
        ({"x": np.array([{}, {}], dtype=object), "y": np.array([0, 1])}, r"array x.npy holds objects"),
        ({"x": np.array([["a"], ["b"]]), "y": np.array([0, 1])}, r"x must hold numbers, not <U1"),
        # The per-class table is sized by the largest label.
        ({"x": np.zeros((2, 2)), "y": np.array([0, 10**9])}, r"y holds label 1,000,000,000; halfconv takes at most 100,000 classes"),
    ],
)
def test_bad_npz(tmp_path: Path, arrays: dict[str, np.ndarray], message: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)

    with pytest.raises(DatasetError, match=message):
        load_dataset(str(path))


def test_npz_whose_header_promises_more_than_it_holds(tmp_path: Path) -> None:
    """A header that claims 2**40 float32 elements in a 3 KB file is refused before anything is allocated."""
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as archive:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (2**20, 2**20)})
        archive.writestr("x.npy", header.getvalue() + bytes(3000))
        labels = io.BytesIO()
        np.save(labels, np.zeros(2, np.int64))
        archive.writestr("y.npy", labels.getvalue())
    with pytest.raises(DatasetError, match=r"huge.npz: array x.npy declares 4,398,046,511,104 bytes but holds 3,000"):
        load_dataset(str(path))


def test_a_bare_npy_named_npz(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros((2, 2)))
    (tmp_path / "a.npz").write_bytes((tmp_path / "a.npy").read_bytes())
    with pytest.raises(DatasetError, match=r"a.npz is a single .npy array, not an .npz archive"):
        load_dataset(str(tmp_path / "a.npz"))


def test_npz_that_is_not_an_archive(tmp_path: Path) -> None:
    (tmp_path / "text.npz").write_text("not numpy at all")
    with pytest.raises(DatasetError, match=r"text.npz is not a readable .npz file"):
        load_dataset(str(tmp_path / "text.npz"))
    with pytest.raises(DatasetError, match=r"dataset file .*missing.npz not found - check the path"):
        load_dataset(str(tmp_path / "missing.npz"))


# -- names ------------------------------------------------------------------------------------


def test_unknown_dataset_name() -> None:
    with pytest.raises(UsageError) as caught:
        load_dataset("imagenet")

    assert str(caught.value) == (
        "unknown dataset 'imagenet' - use mnist, cifar10 or a path to an .npz with arrays x and y"
    )
    assert caught.value.exit_code == 2


def test_unknown_split() -> None:
    with pytest.raises(UsageError, match="unknown split 'validation' - use test or train"):
        load_dataset("mnist", "validation")
