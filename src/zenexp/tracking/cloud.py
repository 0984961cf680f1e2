"""Whether SwanLab's cloud can be reached now, asked within a time bound, before a cloud run starts."""

from __future__ import annotations

import os
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import SplitResult, urlsplit

API_KEY_VARIABLE = "SWANLAB_API_KEY"
API_HOST_VARIABLE = "SWANLAB_API_HOST"
DEFAULT_API_HOST = "https://api.swanlab.cn"


def cloud_problem(timeout_s: float) -> str | None:
    """Why a cloud run cannot start right now, found within `timeout_s` seconds; None when it may.

    The server must answer an HTTP request in time: one that accepts the connection and then trickles bytes
    would hold `swanlab.init` for minutes. The probe runs in a daemon thread, so no socket state can stretch
    the bound."""
    if not os.environ.get(API_KEY_VARIABLE):
        return f"no API key in {API_KEY_VARIABLE}"
    host = os.environ.get(API_HOST_VARIABLE) or DEFAULT_API_HOST
    problem = host_problem(host)
    if problem:
        return problem
    url = urlsplit(host)
    port = url.port or (443 if url.scheme == "https" else 80)
    answers: list[str | None] = []
    probe = threading.Thread(target=lambda: answers.append(_probe(url, port, timeout_s)), daemon=True)
    probe.start()
    probe.join(timeout_s)
    return answers[0] if answers else _no_answer(url.hostname or "", port, timeout_s)


def host_problem(host: str) -> str | None:
    try:
        url = urlsplit(host)
        url.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError as error:
        return f"{API_HOST_VARIABLE}={host} is not a URL ({error})"
    if url.scheme not in ("http", "https") or not url.hostname:
        return f"{API_HOST_VARIABLE}={host} is not an http(s) URL"
    return None


@contextmanager
def without_malformed_host() -> Iterator[None]:
    """SwanLab parses SWANLAB_API_HOST even offline and records nothing when it is malformed: hide such a
    host while SwanLab starts (an offline run never uses it; `swanlab sync` reads it again later)."""
    host = os.environ.get(API_HOST_VARIABLE)
    if host is None or host_problem(host) is None:
        yield
        return
    del os.environ[API_HOST_VARIABLE]
    try:
        yield
    finally:
        os.environ[API_HOST_VARIABLE] = host


def _no_answer(hostname: str, port: int, timeout_s: float) -> str:
    return f"{hostname}:{port} did not answer within {timeout_s:g} s"


def _probe(url: SplitResult, port: int, timeout_s: float) -> str | None:
    hostname = url.hostname or ""
    try:
        with socket.create_connection((hostname, port), timeout=timeout_s) as raw:
            sock = (
                ssl.create_default_context().wrap_socket(raw, server_hostname=hostname)
                if url.scheme == "https"
                else raw
            )
            sock.sendall(f"HEAD / HTTP/1.1\r\nHost: {hostname}\r\nConnection: close\r\n\r\n".encode())
            received = b""
            while b"\r\n" not in received:
                chunk = sock.recv(256)
                if not chunk:
                    return f"{hostname}:{port} closed the connection without answering"
                received += chunk
    except TimeoutError:  # the same bound as the caller's wait, which this may win by a hair
        return _no_answer(hostname, port, timeout_s)
    except OSError as error:
        return f"cannot reach {hostname}:{port} ({error})"
    return None
