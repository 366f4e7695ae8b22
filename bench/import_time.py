"""How light is ``import voiceagent``? Import time and peak RSS, each against a bare
``python`` started the same way in the same run (the baseline), plus the heavy path
(``voiceagent.llm``, which loads openai) for comparison.

Run: ``.venv/bin/python bench/import_time.py [--runs N]``
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys

PROBES = {
    "bare python": "pass",
    "import voiceagent": "import voiceagent",
    "import voiceagent.llm": "import voiceagent.llm",
}
RSS = "import resource; {stmt}; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"


def import_time_us(stmt: str) -> int:
    """Cumulative microseconds python -X importtime reports for the statement's imports."""
    if stmt == "pass":
        return 0
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", stmt], capture_output=True, text=True, check=True
    )
    top = stmt.split()[-1]
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s*(\S+)$", line)
        if match and match.group(2) == top:
            return int(match.group(1))
    raise RuntimeError(f"no importtime line for {top}")


def peak_rss_kib(stmt: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", RSS.format(stmt=stmt)], capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs

    rows = {}
    for name, stmt in PROBES.items():
        times = [import_time_us(stmt) for _ in range(runs)]
        rss = [peak_rss_kib(stmt) for _ in range(runs)]
        rows[name] = (statistics.median(times) / 1000, statistics.median(rss) / 1024)

    _, base_mb = rows["bare python"]
    print(f"python {sys.version.split()[0]}, median of {runs} runs each")
    print(f"{'':24} {'import ms':>10} {'peak RSS MB':>12} {'RSS vs bare':>12}")
    for name, (ms, mb) in rows.items():
        print(f"{name:24} {ms:10.1f} {mb:12.1f} {mb / base_mb:11.2f}x")
    print("anchors (their figures): pipecat 600-800 ms / 70-83 MB, LiveKit Agents 1200 ms / 123 MB")


if __name__ == "__main__":
    main()
