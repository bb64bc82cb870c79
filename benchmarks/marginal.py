"""MST and AIM on the AIM-paper tables (hd-datasets coding): ours against the reference.

    python benchmarks/marginal.py                                 # adult_hd, everything it can find
    python benchmarks/marginal.py --impls mbi --methods mst --epsilons 0.1 1 10
    python benchmarks/marginal.py --datasets adult_hd titanic_hd salary_hd nltcs \
        --impls ours --methods mst --epsilons 0.1 1 10 --seeds 0 1 2
    python benchmarks/marginal.py --impls ours mbi snsynth --methods aim --epsilons 1 --timeout 600
    python benchmarks/marginal.py --render-only                   # rewrite the .md from the .json

Tables: ``../shared/data/<dataset>/`` (one CSV of integer codes and its ``*-domain.json``;
``--datasets``, default adult_hd), δ = 1e-9.  For every (dataset, implementation, method,
ε, seed) one subprocess fits and samples n = len(real) rows; we record

- fit+sample seconds (timed inside the child, imports and CSV loading excluded) and the
  child's whole wall time, and its peak RSS (``wait4`` rusage);
- mean TVD (half L1 between normalised marginals) over all 1-, 2- and 3-way marginals
  (455 3-way on adult_hd), via ``dpsynth.evaluate``;
- AIM's workload error on the all-3-way workload with weight 1
  (``dpsynth.evaluate.workload_error``; with unit weights it equals the 3-way mean);
- DNF with the elapsed time when a run passes ``--timeout`` (default 600 s).

Every child runs with OMP/MKL/OPENBLAS threads = 2 and, where ``taskset`` exists, pinned
to two CPUs (``--cpus``), to mimic the 2-core target.  At most two runs at a time.

Implementations:

- ``ours``: ``dpsynth.generators.MST`` / ``AIM`` on a fresh test ledger
  (``accountant.testing.make_test_gate``, real keys and signed policy) and a
  ``dpsynth.table.PrivateTable``; see :func:`run_ours`.
- ``mbi``: the authors' scripts ``mechanisms/mst.py`` / ``aim.py`` of the
  mbi / private-pgm repository, run by ``benchmarks/peers/mbi_marginal.py`` under the
  peer's Python.  Give ``--mbi-python`` / ``--mbi-repo`` (or ``$MBI_PYTHON`` /
  ``$MBI_REPO``); skipped (recorded as such) when absent.
- ``snsynth``: smartnoise-synth's packaged MST / AIM (``benchmarks/peers/snsynth_marginal.py``)
  under ``--snsynth-python`` (``$SNSYNTH_PYTHON``); skipped when absent.

Results are merged by (dataset, impl, method, ε, seed) into ``benchmarks/results/marginal.json``
(so runs can be added piecemeal) and the whole file is rendered to ``marginal.md``, with
ratios ours / peer and, per dataset, two reference rows scored the same way: a resample of
the real table (sampling noise only) and independent 1-way marginals (all dependence lost).
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
BENCH = REPO / "benchmarks"
if str(BENCH) not in sys.path:
    # Appended, not prepended: benchmarks/accountant.py must not shadow the accountant package.
    sys.path.append(str(BENCH))

DEFAULT_DATASET = "adult_hd"
DATASETS = ("adult_hd", "titanic_hd", "salary_hd", "nltcs")
DELTA = 1e-9
RESULTS = BENCH / "results" / "marginal.json"
DEFAULT_EPSILONS = {"mst": (0.1, 1.0, 10.0), "aim": (1.0, 10.0)}
IMPLS = ("ours", "mbi", "snsynth")
PEERS = ("mbi", "snsynth")
THREADS = 2


@dataclass(frozen=True)
class RunSpec:
    impl: str
    method: str
    epsilon: float
    seed: int
    dataset: str = DEFAULT_DATASET

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.impl}/{self.method}/eps={self.epsilon:g}/seed={self.seed}"


# --------------------------------------------------------------------------- ours


def run_ours(name: str, epsilon: float, seed: int, *, dataset: str = DEFAULT_DATASET,
             data_dir: Path | None = None):
    """Fit our generator ``name`` ("mst" | "aim") at ``epsilon`` (δ = 1e-9) and sample n rows.

    Returns ``(synthetic DataFrame of integer codes, {"fit_s", "sample_s", "fit_sample_s",
    "epsilon_spent", ...})``.  Imports ``dpsynth`` lazily so that the peers can be
    benchmarked before (or without) our generators.  The ledger is a fresh test ledger
    whose total budget is exactly this run's ε; noise comes from the seeded test source,
    so a run is reproducible (the ledger records ``noise_source = "seeded-test"``).
    """
    import pandas as pd  # noqa: F401  (the frame type)

    from accountant.testing import make_test_gate
    from common_tvd import load_coded
    from dpsynth.generators import GENERATORS
    from dpsynth.noise.randomness import SeededRandomSource
    from dpsynth.schema import Column, Schema
    from dpsynth.table import PrivateTable

    real, domain = load_coded(dataset) if data_dir is None else _load_from(data_dir)
    real = real[list(domain)]
    # The coding is public (the hd-datasets domain file): code i of a column is category i.
    schema = Schema([Column(col, "categorical", categories=list(range(size))) for col, size in domain.items()])
    with tempfile.TemporaryDirectory(prefix="dpsynth-bench-ledger-") as tmp:
        ledger = make_test_gate(tmp, epsilon=epsilon, delta=DELTA, max_records=100_000, frame=real)
        table = PrivateTable(real, schema, ledger.gate, random_source=SeededRandomSource(seed),
                             dataset_key=ledger.dataset_key)
        generator = GENERATORS[name](epsilon=epsilon)
        t0 = time.perf_counter()
        generator.fit(table)
        t1 = time.perf_counter()
        synth = generator.sample(len(real), seed=seed)
        t2 = time.perf_counter()
        spent = generator.epsilon_spent()
    meta = {"fit_s": t1 - t0, "sample_s": t2 - t1, "fit_sample_s": t2 - t0, "epsilon_spent": spent,
            "peer": f"dpsynth {name} (device {generator.device})",
            "fit_log": {k: v for k, v in generator.fit_log.items() if isinstance(v, (int, float, str))}}
    return synth, meta


def _load_from(folder: Path):
    import pandas as pd

    domain = json.loads(next(folder.glob("*-domain.json")).read_text())
    return pd.read_csv(next(folder.glob("*.csv"))), domain


def _child_ours(argv: list[str]) -> None:
    """``marginal.py child-ours ...``: one run of ours, in its own process."""
    p = argparse.ArgumentParser(prog="marginal.py child-ours")
    p.add_argument("--dataset", default=DEFAULT_DATASET)
    p.add_argument("--method", required=True)
    p.add_argument("--epsilon", type=float, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--meta", type=Path, required=True)
    a = p.parse_args(argv)
    synth, meta = run_ours(a.method, a.epsilon, a.seed, dataset=a.dataset)
    synth.to_csv(a.out, index=False)
    a.meta.write_text(json.dumps(meta))


# --------------------------------------------------------------------------- subprocess runs


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[var] = str(THREADS)
    env["PYTHONUNBUFFERED"] = "1"  # a killed (DNF) run still leaves its progress in the log
    env["JAX_PLATFORMS"] = env.get("JAX_PLATFORMS", "cpu")
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                        f" intra_op_parallelism_threads={THREADS}").strip()
    return env


def pin_prefix(cpus: str | None) -> list[str]:
    if not cpus or shutil.which("taskset") is None:
        return []
    return ["taskset", "-c", cpus]


def build_command(spec: RunSpec, args, data_csv: Path, domain_json: Path, out: Path, meta: Path
                  ) -> tuple[list[str] | None, str]:
    """The child's command line, or (None, why it is skipped)."""
    common = ["--epsilon", repr(spec.epsilon), "--seed", str(spec.seed), "--out", str(out), "--meta", str(meta)]
    peer_common = ["--method", spec.method, "--delta", repr(DELTA), "--data", str(data_csv),
                   "--domain", str(domain_json), *common]
    if spec.impl == "ours":
        return [args.python, str(Path(__file__).resolve()), "child-ours", "--dataset", spec.dataset,
                "--method", spec.method, *common], ""
    if spec.impl == "mbi":
        if not args.mbi_python or not Path(args.mbi_python).exists():
            return None, "no mbi Python (--mbi-python / $MBI_PYTHON)"
        if not args.mbi_repo or not (Path(args.mbi_repo) / "mechanisms" / f"{spec.method}.py").exists():
            return None, "no private-pgm checkout with mechanisms/ (--mbi-repo / $MBI_REPO)"
        return [args.mbi_python, str(BENCH / "peers" / "mbi_marginal.py"), "--repo", str(args.mbi_repo),
                *peer_common], ""
    if spec.impl == "snsynth":
        if not args.snsynth_python or not Path(args.snsynth_python).exists():
            return None, "no smartnoise-synth Python (--snsynth-python / $SNSYNTH_PYTHON)"
        return [args.snsynth_python, str(BENCH / "peers" / "snsynth_marginal.py"), *peer_common], ""
    raise ValueError(f"unknown implementation {spec.impl!r}")


def _vm_hwm_mb(pid: int) -> float | None:
    """The child's own peak RSS so far (VmHWM of its address space), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def run_child(cmd: list[str], timeout: float, log: Path) -> dict:
    """Run ``cmd`` in its own session; return rc, wall time, peak RSS, and whether it timed out.

    Peak RSS is the child's own: polled from /proc (VmHWM, a high-water mark), because the
    ``ru_maxrss`` that wait4 reports starts from the parent's peak at fork (Linux carries the
    forked address space's high-water mark across exec), so a child of a large parent — a
    pytest worker with torch loaded — would report the parent's memory.  ``ru_maxrss`` is the
    fallback when /proc is not readable."""
    t0 = time.perf_counter()
    peak = None
    with open(log, "wb") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=child_env(), cwd=REPO,
                                start_new_session=True)
        timed_out = False
        while True:
            hwm = _vm_hwm_mb(proc.pid)
            if hwm is not None:
                peak = hwm if peak is None else max(peak, hwm)
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - t0 > timeout:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
    # CPU seconds (user + system) are less sensitive than wall time to other load on a shared box.
    return {"rc": proc.returncode, "wall_s": time.perf_counter() - t0, "timed_out": timed_out,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mb": peak if peak is not None else usage.ru_maxrss / 1024.0}  # ru_maxrss: KiB on Linux


def tail(path: Path, lines: int = 12) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def score(csv: Path, real, domain) -> dict[str, float]:
    import pandas as pd

    from common_tvd import workload
    from dpsynth.evaluate import mean_tvds, workload_error

    synth = pd.read_csv(csv)
    missing = [c for c in domain if c not in synth.columns]
    if missing:
        raise ValueError(f"synthetic table lacks column {missing[0]!r}")
    synth = synth[list(domain)]
    tvd = mean_tvds(real, synth, domain, (1, 2, 3))
    return {"n_synth": int(len(synth)), "tvd_1way": tvd[1], "tvd_2way": tvd[2], "tvd_3way": tvd[3],
            "workload_error_3way": workload_error(real, synth, domain, workload(domain, 3))}


def code_commit() -> str | None:
    """The commit of this checkout (ours is measured as committed; '+dirty' if files differ)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "dpsynth", "accountant"],
                               cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ("+dirty" if dirty else "")) or None


def one_run(spec: RunSpec, args, real, domain, data_csv: Path, domain_json: Path, logs: Path) -> dict:
    record = {**asdict(spec), "delta": DELTA, "timeout_s": args.timeout, "code_commit": code_commit(),
              "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "loadavg_at_start": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory(prefix="marginal-bench-") as tmp:
        out, meta = Path(tmp) / "synth.csv", Path(tmp) / "meta.json"
        cmd, why = build_command(spec, args, data_csv, domain_json, out, meta)
        if cmd is None:
            return {**record, "status": "skipped", "reason": why}
        cmd = pin_prefix(args.cpus) + cmd
        log = logs / (spec.key.replace("/", "_") + ".log")
        print(f"[start] {spec.key}", flush=True)
        res = run_child(cmd, args.timeout, log)
        record.update(res, command=" ".join(cmd), log_tail=tail(log))
        if res["timed_out"]:
            record["status"] = "DNF"
        elif res["rc"] != 0 or not out.exists():
            record["status"] = "failed"
        else:
            record["status"] = "ok"
            record.update(json.loads(meta.read_text()))
            try:
                record.update(score(out, real, domain))
            except ValueError as e:
                record["status"], record["reason"] = "failed", f"scoring: {e}"
    tvd = record.get("tvd_3way")
    print(f"[{record['status']}] {spec.key}: wall {record['wall_s']:.1f} s"
          + (f", fit+sample {record['fit_sample_s']:.1f} s" if "fit_sample_s" in record else "")
          + f", RSS {record['peak_rss_mb']:.0f} MB" + (f", 3-way TVD {tvd:.4f}" if tvd is not None else ""),
          flush=True)
    return record


# --------------------------------------------------------------------------- results


def migrate(results: dict) -> dict:
    """Key runs recorded before the dataset key existed (adult_hd only) by dataset too."""
    runs = {}
    for key, record in results.get("runs", {}).items():
        record.setdefault("dataset", DEFAULT_DATASET)
        if not key.startswith(f"{record['dataset']}/"):
            key = f"{record['dataset']}/{key}"
        runs[key] = record
    results["runs"] = runs
    results["benchmark"] = "marginal"
    results.setdefault("references", {})
    return results


def load_results(path: Path) -> dict:
    if path.exists():
        return migrate(json.loads(path.read_text()))
    return {"benchmark": "marginal", "runs": {}, "references": {}}


def reference_scores(real, domain, seed: int = 0) -> dict[str, dict]:
    """The two rows every synthetic table is read against, scored like the runs."""
    from common_tvd import independent_baseline, resample_baseline
    from dpsynth.evaluate import mean_tvds

    out = {}
    for name, make in (("resample", resample_baseline), ("independent", independent_baseline)):
        tvd = mean_tvds(real, make(real, seed)[list(domain)], domain, (1, 2, 3))
        out[name] = {"seed": seed, "tvd_1way": tvd[1], "tvd_2way": tvd[2], "tvd_3way": tvd[3]}
    return out


def _locked_update(path: Path, update) -> None:
    """Apply ``update(results)`` to the results file under a lock: two invocations may run at once."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(Path(tempfile.gettempdir()) / f"{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = load_results(path)
        update(results)
        save_results(path, results)


def record_run(path: Path, key: str, record: dict, environment: dict) -> None:
    """Merge one run into the results file (after every run: a crash keeps what finished)."""
    def update(results):
        results["runs"][key] = record
        results["environment"] = environment
    _locked_update(path, update)


def record_references(path: Path, dataset: str, refs: dict) -> None:
    _locked_update(path, lambda results: results["references"].__setitem__(dataset, refs))


def save_results(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".json.tmp{os.getpid()}")
    tmp.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)
    path.with_suffix(".md").write_text(render_markdown(results))


def _fmt(v, spec=".4f") -> str:
    return "—" if v is None else format(v, spec)


def _summary(runs: list[dict]) -> dict:
    ok = [r for r in runs if r["status"] == "ok"]
    dnf = [r for r in runs if r["status"] == "DNF"]

    def mean(k):
        values = [r[k] for r in ok if r.get(k) is not None]
        return statistics.fmean(values) if values else None

    return {"n_ok": len(ok), "n_dnf": len(dnf), "n": len(runs), "time": mean("fit_sample_s"),
            "wall": mean("wall_s"), "cpu": mean("cpu_s"), "rss": max((r["peak_rss_mb"] for r in ok), default=None),
            "tvd1": mean("tvd_1way"), "tvd3": mean("tvd_3way"), "tvd2": mean("tvd_2way"),
            "wl": mean("workload_error_3way"), "dnf_after": max((r["wall_s"] for r in dnf), default=None)}


def _dataset_order(names) -> list[str]:
    known = [d for d in DATASETS if d in names]
    return known + sorted(n for n in names if n not in DATASETS)


def _summary_rows(dataset: str, groups: dict, references: dict) -> list[str]:
    rows = []
    for method in ("mst", "aim"):
        for eps in sorted({k[2] for k in groups if k[0] == dataset and k[1] == method}):
            ours_runs = groups.get((dataset, method, eps, "ours"))
            ours = _summary(ours_runs) if ours_runs else None
            for impl in IMPLS:
                rs = groups.get((dataset, method, eps, impl))
                if not rs:
                    continue
                s = _summary(rs)
                t = (_fmt(s["time"], ".1f") if s["n_ok"]
                     else f"DNF (> {s['dnf_after']:.0f} s)" if s["n_dnf"] else "failed")
                tr = cr = qr = "—"
                if impl != "ours" and ours and ours["n_ok"]:
                    if s["n_ok"]:
                        tr = f"{ours['time'] / s['time']:.3f}"
                        cr = f"{ours['cpu'] / s['cpu']:.3f}" if ours["cpu"] and s["cpu"] else "—"
                        qr = f"{ours['tvd3'] / s['tvd3']:.3f}"
                    elif s["n_dnf"]:
                        tr = f"< {ours['time'] / s['dnf_after']:.3f}"
                rows.append(f"| {dataset} | {eps:g} | {method} | {impl} | {s['n_ok']}/{s['n']} | {t}"
                            f" | {_fmt(s['cpu'], '.1f')} | {_fmt(s['rss'], '.0f')} | {_fmt(s['tvd1'])}"
                            f" | {_fmt(s['tvd2'])} | {_fmt(s['tvd3'])} | {tr} | {cr} | {qr} |")
    for name, ref in sorted(references.get(dataset, {}).items(), key=lambda kv: kv[0] != "resample"):
        rows.append(f"| {dataset} | — | *{name} (reference)* | real data | — | — | — | —"
                    f" | {_fmt(ref['tvd_1way'])} | {_fmt(ref['tvd_2way'])} | {_fmt(ref['tvd_3way'])} | — | — | — |")
    return rows


def render_markdown(results: dict) -> str:
    runs = [r for r in results["runs"].values() if r["status"] != "skipped"]
    references = results.get("references", {})
    env = results.get("environment", {})
    lines = ["# MST and AIM on the AIM-paper tables (δ = 1e-9)", "",
             "Generated by `benchmarks/marginal.py` (see `benchmarks/README.md`); every run is one subprocess"
             " with 2 threads (OMP/MKL/OPENBLAS = 2, pinned with taskset where available). Time = fit+sample"
             " inside the child (imports and CSV load excluded); child CPU s = user+system of the whole child;"
             " peak RSS = the child's. TVD = mean half-L1 distance between real and synthetic normalised"
             " marginals over all 1-, 2-, 3-way marginals (455 3-way on adult_hd). Ratios are ours / peer"
             " (below 1: ours faster / closer). Reference rows: a resample of the real table with replacement"
             " (the floor: sampling noise only) and independent real 1-way marginals (no dependence kept).", "",
             f"Machine: {env.get('machine', '?')}; load average at start of the last invocation:"
             f" {env.get('loadavg', '?')} (each run's own is in the per-run table). Timings were taken on a"
             " shared 2-core machine: CPU seconds are steadier than wall time; compare implementations on the"
             " same dataset, not across sessions.", "",
             "## Summary: dataset × ε × generator × impl (mean over seeds)", "",
             "| dataset | ε | generator | impl | runs ok/all | fit+sample s | child CPU s | peak RSS MB | 1-way"
             " | 2-way | 3-way TVD | time ratio | CPU ratio | 3-way ratio |",
             "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["dataset"], r["method"], r["epsilon"], r["impl"]), []).append(r)
    for dataset in _dataset_order({r["dataset"] for r in runs} | set(references)):
        lines += _summary_rows(dataset, groups, references)
    lines += ["", "## Every run", "",
              "| dataset | method | ε | impl | seed | status | fit+sample s | wall s | CPU s | peak RSS MB"
              " | 1-way | 2-way | 3-way | workload err | ε spent (ours) | load avg | started (UTC) |",
              "|---|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    order = {m: i for i, m in enumerate(("mst", "aim"))}
    datasets = _dataset_order({r["dataset"] for r in runs})
    for r in sorted(runs, key=lambda r: (datasets.index(r["dataset"]), order.get(r["method"], 9), r["epsilon"],
                                         IMPLS.index(r["impl"]), r["seed"])):
        lines.append(f"| {r['dataset']} | {r['method']} | {r['epsilon']:g} | {r['impl']} | {r['seed']} | {r['status']}"
                     f" | {_fmt(r.get('fit_sample_s'), '.1f')} | {_fmt(r.get('wall_s'), '.1f')}"
                     f" | {_fmt(r.get('cpu_s'), '.1f')}"
                     f" | {_fmt(r.get('peak_rss_mb'), '.0f')} | {_fmt(r.get('tvd_1way'))} | {_fmt(r.get('tvd_2way'))}"
                     f" | {_fmt(r.get('tvd_3way'))} | {_fmt(r.get('workload_error_3way'))}"
                     f" | {_fmt(r.get('epsilon_spent'), '.6f')} | {_fmt(r.get('loadavg_at_start'), '.1f')}"
                     f" | {r.get('started_utc', '')} |")
    skipped = [r for r in results["runs"].values() if r["status"] == "skipped"]
    if skipped:
        lines += ["", "Skipped: " + "; ".join(f"{r['dataset']} {r['impl']} {r['method']} ε={r['epsilon']:g}"
                                              f" ({r['reason']})" for r in skipped)]
    notes = [r for r in runs if r["status"] in ("DNF", "failed")]
    if notes:
        lines += ["", "## DNF / failed runs: last lines of their output", ""]
        for r in notes:
            lines += [f"- {r['dataset']} {r['impl']} {r['method']} ε={r['epsilon']:g} seed {r['seed']}: {r['status']}"
                      f" after {r['wall_s']:.0f} s" + (f" ({r['reason']})" if r.get("reason") else ""), "",
                      "  ```", *("  " + x[:300] for x in r.get("log_tail", [])[-6:]), "  ```"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str]):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=[DEFAULT_DATASET],
                   help=f"folders of ../shared/data (the AIM-paper ones: {' '.join(DATASETS)})")
    p.add_argument("--impls", nargs="+", choices=IMPLS, default=list(IMPLS))
    p.add_argument("--methods", nargs="+", choices=("mst", "aim"), default=["mst", "aim"])
    p.add_argument("--epsilons", nargs="+", type=float, default=None,
                   help="default: MST 0.1 1 10, AIM 1 10")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per run before it is recorded DNF")
    p.add_argument("--jobs", type=int, default=1, choices=(1, 2), help="runs at once (the machine is shared)")
    p.add_argument("--cpus", default="0,1", help="taskset CPU list for every child ('' = no pinning)")
    p.add_argument("--python", default=sys.executable, help="our Python (for the 'ours' children)")
    p.add_argument("--mbi-python", default=os.environ.get("MBI_PYTHON"))
    p.add_argument("--mbi-repo", default=os.environ.get("MBI_REPO"))
    p.add_argument("--snsynth-python", default=os.environ.get("SNSYNTH_PYTHON", "/work/venv-snsynth/bin/python"))
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--logs", type=Path, default=None, help="child logs (default: a temp dir)")
    p.add_argument("--render-only", action="store_true", help="rewrite the .md from the .json and exit")
    return p.parse_args(argv)


def load_dataset(name: str):
    """``(real frame in domain column order, domain, csv path, domain-json path)`` of one data folder."""
    from common_tvd import DATA, load_coded

    real, domain = load_coded(name)
    folder = DATA / name
    return real[list(domain)], domain, next(folder.glob("*.csv")), next(folder.glob("*-domain.json"))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["child-ours"]:
        return _child_ours(argv[1:])
    args = parse_args(argv)
    if args.render_only:
        return save_results(args.results, load_results(args.results))
    if args.cpus and shutil.which("taskset") and os.cpu_count() and os.cpu_count() < 2:
        args.cpus = ""

    data = {name: load_dataset(name) for name in args.datasets}  # fail early on a missing folder
    known = load_results(args.results)["references"]
    for name, (real, domain, _, _) in data.items():
        if name not in known:
            record_references(args.results, name, reference_scores(real, domain))
    logs = args.logs or Path(tempfile.mkdtemp(prefix="marginal-bench-logs-"))
    logs.mkdir(parents=True, exist_ok=True)

    specs = [RunSpec(impl, method, float(eps), seed, dataset)
             for dataset in args.datasets
             for method in args.methods
             for eps in (args.epsilons or DEFAULT_EPSILONS[method])
             for seed in args.seeds
             for impl in args.impls]
    environment = {"machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs",
                   "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
                   "threads": THREADS, "cpus": args.cpus or "unpinned",
                   "mbi_repo": args.mbi_repo, "logs": str(logs)}
    print(f"{len(specs)} runs, {args.jobs} at a time, logs in {logs}", flush=True)
    with futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        pending = [pool.submit(one_run, s, args, *data[s.dataset][:2], *data[s.dataset][2:], logs) for s in specs]
        for fut in futures.as_completed(pending):
            rec = fut.result()
            spec = RunSpec(rec["impl"], rec["method"], rec["epsilon"], rec["seed"], rec["dataset"])
            record_run(args.results, spec.key, rec, environment)
    print(f"results: {args.results} and {args.results.with_suffix('.md')}")


if __name__ == "__main__":
    main()
