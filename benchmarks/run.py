"""Run every benchmark (benchmarks/bench_*.py), or those named: python benchmarks/run.py export daemon."""

import importlib.util
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv):
    sys.path.insert(0, HERE)
    names = sorted(f[6:-3] for f in os.listdir(HERE) if f.startswith("bench_") and f.endswith(".py"))
    wanted = argv or names
    unknown = [n for n in wanted if n not in names]
    if unknown:
        print("unknown benchmark(s): %s; have: %s" % (", ".join(unknown), ", ".join(names)), file=sys.stderr)
        return 2
    failed = []
    for name in wanted:
        print("== %s ==" % name, flush=True)
        start = time.perf_counter()
        spec = importlib.util.spec_from_file_location("bench_" + name, os.path.join(HERE, "bench_%s.py" % name))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        try:
            module.main()
        except Exception as exc:  # report and go on with the others
            failed.append(name)
            print("benchmark %s failed: %s: %s" % (name, type(exc).__name__, exc), flush=True)
        print("(%s took %.0f s)" % (name, time.perf_counter() - start), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
