"""Scale-out: what one more web process or one more worker buys, with the web side and the workers on cores of
their own (a stand-in for machines).

    python -m bench.scaleout [--configs 1x1,2x1,1x2,2x2,2x3] [--rate 900] [--seconds 90]
                             [--web-cpus 0] [--worker-cpus 1]

Each configuration (WEBxWORKERS: granian worker processes x `retorno worker`s) runs the moonshot's load
(`bench.moonshot`: whole conversations on both channels, 10% duplicates, open-loop) at a rate above what the machine
takes, with every web process pinned to `--web-cpus` and every worker to `--worker-cpus` (taskset's affinity,
inherited at start). PostgreSQL, Redis and the load generator run on any core, as a database machine and the
providers would. Per configuration: messages/s stored, processed and replied, lag, backlog, CPU ms per message by
program. The processed rate against `1x1` in the same run is what the added process buys.
"""

from __future__ import annotations

import argparse

from bench import moonshot
from bench.common import machine, print_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="1x1,2x1,1x2,2x2,2x3", help="WEBxWORKERS, comma-separated")
    parser.add_argument("--rate", type=float, default=900, help="distinct messages/s offered")
    parser.add_argument("--seconds", type=float, default=90)
    parser.add_argument("--web-cpus", default="0")
    parser.add_argument("--worker-cpus", default="1")
    parser.add_argument("--telegram", type=float, default=0.3)
    parser.add_argument("--duplicates", type=float, default=0.1)
    options = parser.parse_args()
    print_json("machine", machine())
    baseline = None
    for config in options.configs.split(","):
        web_processes, workers = (int(n) for n in config.split("x"))
        run = argparse.Namespace(**vars(options), workers=workers, web_workers=web_processes, server="granian")
        result = moonshot.run_rate(options.rate, run)
        baseline = baseline or result["processed_per_s"]
        result["processed_vs_first"] = round(result["processed_per_s"] / max(baseline, 1e-9), 2)
        print_json(f"scale-out {web_processes} web + {workers} workers", result)


if __name__ == "__main__":
    main()
