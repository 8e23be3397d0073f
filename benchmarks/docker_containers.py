"""docker_executor vs the docker SDK directly: 20 short containers, in one run.

    python benchmarks/docker_containers.py [--containers 20] [--concurrency 4]

Starts Podman's Docker-API service on a temporary socket and imports the busybox test image,
as the executor's tests do (``packages/executor-docker/tests/conftest.py``; needs
``podman runc busybox-static``), or uses ``APFLOW_TEST_DOCKER_HOST``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from _fanout import load_module, time_fanout

COMMAND = ["sh", "-c", "echo hello"]


def _fixtures() -> Any:
    return load_module("packages/executor-docker/tests/conftest.py", "docker_test_engine")


async def _engine(n: int, concurrency: int, image: str) -> float:
    return await time_fanout(
        "docker_executor", lambda i: {"image": image, "command": COMMAND}, n, concurrency
    )


def _direct(url: str, n: int, concurrency: int, image: str) -> float:
    from concurrent.futures import ThreadPoolExecutor

    import docker

    client = docker.DockerClient(base_url=url, version="auto", timeout=60)

    def one(_: int) -> None:
        out = client.containers.run(image, COMMAND, remove=True, network_mode="none")
        assert out == b"hello\n"

    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(one, range(n)))
        return time.perf_counter() - started
    finally:
        client.close()


def main(n: int, concurrency: int) -> None:
    import docker

    fixtures = _fixtures()
    folder = Path(tempfile.mkdtemp(prefix="apflow-bench-podman-"))
    process = None
    url = os.environ.get("APFLOW_TEST_DOCKER_HOST")
    if not url:
        process, url = fixtures._start_podman(folder)
    try:
        client = docker.DockerClient(base_url=url, version="auto", timeout=60)
        answer = client.api.import_image_from_data(fixtures._rootfs_tar())
        client.images.get(json.loads(answer.strip().splitlines()[-1])["status"]).tag(
            "localhost/busybox", "test"
        )
        client.close()
        os.environ["AIPARTNERUPFLOW_DOCKER_HOST"] = url
        os.environ["AIPARTNERUPFLOW_ENABLED_EXECUTORS"] = "docker_executor"
        image = fixtures.IMAGE
        asyncio.run(_engine(2, concurrency, image))  # warm-up
        engine = asyncio.run(_engine(n, concurrency, image))
        direct = _direct(url, n, concurrency, image)
    finally:
        if process is not None:
            os.killpg(process.pid, 15)
            process.wait(10)
    print(f"{n} containers (echo hello), concurrency {concurrency}:")
    print(f"  docker_executor through the engine: {engine:.2f} s ({engine / n * 1000:.0f} ms each)")
    print(f"  docker SDK directly (run, remove):  {direct:.2f} s ({direct / n * 1000:.0f} ms each)")
    print(f"  ratio engine / direct:              {engine / direct:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--containers", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    main(args.containers, args.concurrency)
