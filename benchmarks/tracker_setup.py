"""How long a cloud run waits on a bad SwanLab server before it records offline: the bound of issue 10.

    python benchmarks/tracker_setup.py [--timeout 10]

Starts, on this machine, a server that accepts connections and trickles one byte every 2 s (the worst
case: every read succeeds, none finishes an answer), and times zenexp's set-up against it, against a
closed port, and against a malformed host. Prints seconds.
"""

from __future__ import annotations

import argparse
import os
import socket
import threading
import time

from zenexp.tracking.cloud import API_HOST_VARIABLE, API_KEY_VARIABLE, cloud_problem


def trickling_server() -> int:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def trickle(connection: socket.socket) -> None:
        try:
            for byte in b"HTTP/1.1 200 OK":
                time.sleep(2)
                connection.send(bytes([byte]))
        except OSError:
            pass

    def serve() -> None:
        while True:
            connection, _ = listener.accept()
            threading.Thread(target=trickle, args=(connection,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return int(listener.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=10.0, help="tracker.setup_timeout_s (default 10)")
    timeout = parser.parse_args().timeout
    os.environ[API_KEY_VARIABLE] = "a-key"
    hosts = {
        "trickling server": f"http://127.0.0.1:{trickling_server()}",
        "closed port": "http://127.0.0.1:9",
        "malformed host": "http://127.0.0.1:abc",
    }
    for label, host in hosts.items():
        os.environ[API_HOST_VARIABLE] = host
        started = time.perf_counter()
        problem = cloud_problem(timeout)
        print(f"{label:<18} {time.perf_counter() - started:6.2f} s   {problem}")


if __name__ == "__main__":
    main()
