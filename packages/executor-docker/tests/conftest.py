"""A real container engine for the tests: Podman's Docker-API service on a temporary socket.

With ``APFLOW_TEST_DOCKER_HOST`` set (``unix:///var/run/docker.sock``), the same tests run
against that engine instead. The test image ``localhost/busybox:test`` is imported through the
Docker API from Debian's ``busybox-static`` (no registry is needed). A missing engine fails
the tests: ``.ci/run`` installs ``podman runc busybox-static``.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aipartnerupflow.core.settings import reload_settings

IMAGE = "localhost/busybox:test"
_APPLETS = ("sh", "echo", "cat", "sleep", "ls", "env", "id", "pwd", "head", "yes", "dd", "true")


def _rootfs_tar() -> bytes:
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(busybox):
        pytest.fail("busybox is not installed: apt-get install busybox-static (see .ci/run)")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in ("bin", "tmp", "data"):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if name == "tmp" else 0o755
            tar.addfile(info)
        tar.add(busybox, arcname="bin/busybox")
        for applet in _APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    return buffer.getvalue()


def _start_podman(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    podman = shutil.which("podman")
    if podman is None:
        pytest.fail(
            "podman is not installed, and the docker executor's tests need a real engine: "
            "apt-get install podman runc busybox-static (.ci/run does), or set "
            "APFLOW_TEST_DOCKER_HOST to a Docker engine"
        )
    (folder / "containers.conf").write_text(
        '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
        '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n'
    )
    (folder / "storage.conf").write_text(
        f'[storage]\ndriver = "vfs"\nrunroot = "{folder}/run"\ngraphroot = "{folder}/graph"\n'
    )
    env = {
        **os.environ,
        "CONTAINERS_CONF": str(folder / "containers.conf"),
        "CONTAINERS_STORAGE_CONF": str(folder / "storage.conf"),
        "XDG_RUNTIME_DIR": str(folder / "xdg"),
    }
    (folder / "xdg").mkdir()
    socket = folder / "podman.sock"
    with (folder / "podman.log").open("wb") as log:
        process = subprocess.Popen(
            [podman, "system", "service", "--time=0", f"unix://{socket}"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 30
    while not socket.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(
                f"podman system service did not start: {(folder / 'podman.log').read_text()}"
            )
        time.sleep(0.05)
    return process, f"unix://{socket}"


@pytest.fixture(scope="session")
def engine_url() -> Iterator[str]:
    """The Docker-API URL of a running engine holding the test image."""
    import docker

    given = os.environ.get("APFLOW_TEST_DOCKER_HOST")
    process = None
    folder = Path(tempfile.mkdtemp(prefix="apflow-podman-"))
    try:
        if given:
            url = given
        else:
            process, url = _start_podman(folder)
        client = docker.DockerClient(base_url=url, version="auto", timeout=60)
        try:
            answer = client.api.import_image_from_data(_rootfs_tar())
            image_id = json.loads(answer.strip().splitlines()[-1])["status"]
            client.images.get(image_id).tag("localhost/busybox", "test")  # engines differ on tags
            client.images.get(IMAGE)
        finally:
            client.close()
        yield url
    finally:
        if process is not None:
            os.killpg(process.pid, 15)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def engine(engine_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Points the executor at the test engine and enables it (it is dangerous)."""
    monkeypatch.setenv("AIPARTNERUPFLOW_DOCKER_HOST", engine_url)
    # The contract's cancellation test registers a probe subclass under its own id.
    monkeypatch.setenv(
        "AIPARTNERUPFLOW_ENABLED_EXECUTORS", "docker_executor,docker_executor__contract_probe"
    )
    reload_settings()
    yield engine_url
    reload_settings()


@pytest.fixture
def docker_client(engine_url: str) -> Iterator[object]:
    import docker

    client = docker.DockerClient(base_url=engine_url, version="auto", timeout=60)
    yield client
    client.close()
