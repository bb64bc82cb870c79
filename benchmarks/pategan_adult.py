"""PATE-GAN against its peers on UCI Adult (raw) and HMEQ: utility, speed, memory, ε spent.

    python benchmarks/pategan_adult.py                               # every table, impl, ε ∈ {1, 3, 10}
    python benchmarks/pategan_adult.py --tables adult --only pategan snsynth --epsilons 1
    python benchmarks/pategan_adult.py --tables hmeq --only pategan --pategan-teachers 300
    # parts side by side or on other days, then merged:
    python benchmarks/pategan_adult.py --only pategan --out R/ours.json
    python benchmarks/pategan_adult.py --only synthcity --out R/sc.json
    python benchmarks/pategan_adult.py --merge R/ours.json R/sc.json     # into --out (default below)
    python benchmarks/pategan_adult.py --render-only                      # rewrite the .md from the .json

Implementations (``--only``):

* ``pategan``: ``dpsynth.generators.PATEGAN`` with its default plan (k teachers from the
  policy's max_records, σ ≈ k/3, Q label queries bought by the budget, all charged before any
  teacher trains); ``--pategan-teachers K`` runs a variant with K teachers (recorded as such);
* ``dpctgan``: ``dpsynth.generators.DPCTGAN``, 8 epochs, batch 500 (as in dpctgan_adult.py);
* ``mst``, ``aim``: ``dpsynth.generators.MST`` / ``AIM`` on the same public schema with the
  numeric columns binned at declared edges;
* ``snsynth``: smartnoise-synth 1.0.8's PATEGAN (``benchmarks/peers/snsynth_pategan.py``
  under ``$SNSYNTH_PYTHON``, default /work/venv-snsynth/bin/python), given our declared
  bounds (so it spends nothing on private bounds);
* ``synthcity``: synthcity 0.2.12's pategan plugin (``benchmarks/peers/synthcity_pategan.py``
  under ``$SYNTHCITY_PYTHON``, default /work/venv-synthcity/bin/python), which reads its
  encoders off the data and ignores the δ passed to it.

A missing peer interpreter is recorded as skipped.  Tables (``--tables``): ``adult`` (the
official split) and ``hmeq`` (a fixed-seed 70/30 split); their public schemas are in
``pategan_tables.py``.  δ = 1e-6 for every run (synthcity ignores it).

Each run is one subprocess (``marginal.run_child``: peak RSS = the child's own VmHWM from
/proc, CPU = the child's user + system seconds, killed and recorded DNF past ``--timeout``)
under ``nice``, with ``--threads`` threads (OMP/MKL and torch), one run at a time.  Ours run
on a fresh test ledger each (``accountant.testing.make_test_gate``: real keys, signed policy,
SQLite; the table's CSPRNG noise), and the ε we report for them is the ledger's.  The peers'
ε is reported as claimed (the ε asked for) and as their own accountant says they spent.
The child writes its synthetic table (n = len(train) rows) to CSV; the parent scores it
train-on-synthetic, test-on-real with ``dpsynth.evaluate.utility`` (logistic regression and
histogram gradient boosting; accuracy and ROC-AUC), beside train-on-real.

Results merge run by run into ``benchmarks/results/pategan_adult.json`` (keyed
table/impl/ε/seed) and render to ``pategan_adult.md``; a hand-written discussion,
``pategan_adult_discussion.md`` beside it, is appended to the rendering when present.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
BENCH = REPO / "benchmarks"
if str(BENCH) not in sys.path:
    sys.path.append(str(BENCH))  # appended: benchmarks/accountant.py must not shadow the package

import marginal as harness  # noqa: E402  (run_child: VmHWM peak RSS, CPU seconds, DNF on timeout)
from pategan_tables import TABLES, describe  # noqa: E402

DELTA = 1e-6
EPSILONS = (1.0, 3.0, 10.0)
OURS = ("pategan", "dpctgan", "mst", "aim")
PEERS = ("snsynth", "synthcity")
IMPLS = OURS + PEERS
LABELS = {"pategan": "dpsynth PATEGAN", "dpctgan": "dpsynth DPCTGAN", "mst": "dpsynth MST", "aim": "dpsynth AIM",
          "snsynth": "smartnoise-synth 1.0.8 PATEGAN", "synthcity": "synthcity 0.2.12 pategan"}
DPCTGAN_EPOCHS = 8
RESULTS = BENCH / "results" / "pategan_adult.json"
DISCUSSION = BENCH / "results" / "pategan_adult_discussion.md"
PEER_RUNNERS = {"snsynth": BENCH / "peers" / "snsynth_pategan.py", "synthcity": BENCH / "peers" / "synthcity_pategan.py"}
PEER_ENV = {"snsynth": ("SNSYNTH_PYTHON", "/work/venv-snsynth/bin/python"),
            "synthcity": ("SYNTHCITY_PYTHON", "/work/venv-synthcity/bin/python")}


def run_key(table: str, impl: str, epsilon: float, seed: int, variant: str = "") -> str:
    return f"{table}/{impl}{variant}/eps={epsilon:g}/seed={seed}"


def variant_of(impl: str, teachers: int | None, labels: bool = False) -> str:
    if impl != "pategan":
        return ""
    parts = ([f"teachers={teachers}"] if teachers else []) + (["labels"] if labels else [])
    return f"[{','.join(parts)}]" if parts else ""


# --------------------------------------------------------------------------- the child (ours)


def cpu_seconds() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def child_ours(argv: list[str]) -> None:
    """``pategan_adult.py child ...``: fit one of our generators on a fresh ledger, sample
    n = len(train) rows to ``--out``, print ``RESULT {json}``."""
    p = argparse.ArgumentParser(prog="pategan_adult.py child")
    p.add_argument("--table", required=True, choices=sorted(TABLES))
    p.add_argument("--impl", required=True, choices=OURS)
    p.add_argument("--epsilon", type=float, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--teachers", type=int, default=None)
    p.add_argument("--labels", action="store_true", help="PATE-GAN: label the table's target with label teachers")
    p.add_argument("--pategan-options", default="{}", help="PATE-GAN: more keyword arguments, as JSON")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)

    import torch

    torch.set_num_threads(a.threads)
    from accountant.testing import make_test_gate
    from dpsynth.generators import AIM, DPCTGAN, MST, PATEGAN
    from dpsynth.generators.pategan.plan import PlanError
    from dpsynth.table import PrivateTable

    table = TABLES[a.table]
    train, _ = table.load()
    schema = table.marginal_schema() if a.impl in ("mst", "aim") else table.schema()
    if a.impl == "pategan":
        model = PATEGAN(epsilon=a.epsilon, teachers=a.teachers, seed=a.seed, progress=False, device="cpu",
                        target=table.target if a.labels else None, **json.loads(a.pategan_options))
    elif a.impl == "dpctgan":
        model = DPCTGAN(epsilon=a.epsilon, epochs=DPCTGAN_EPOCHS, batch_size=500, seed=a.seed, progress=False,
                        device="cpu")
    else:
        model = (AIM if a.impl == "aim" else MST)(epsilon=a.epsilon)
    out: dict = {"n_train": len(train), "threads": a.threads, "max_records": table.max_records, "delta_used": DELTA}
    with tempfile.TemporaryDirectory(prefix="pategan-bench-ledger-") as tmp:
        ledger = make_test_gate(tmp, epsilon=a.epsilon, delta=DELTA, max_records=table.max_records, frame=train)
        gate = ledger.gate
        # Real (CSPRNG) noise; the private steps run inside the table.
        private = PrivateTable(train, schema, gate, dataset_key=ledger.dataset_key)
        if a.impl == "pategan":
            try:
                model.preflight(private)
            except PlanError as e:  # refused before any charge: nothing spent, nothing to sample
                out.update(refused=str(e), epsilon_spent_curve=0.0, epsilon_spent_filter=0.0,
                           ledger_charges=len(gate.spent_costs()))
                print("RESULT " + json.dumps(out), flush=True)
                return
        t0, c0 = time.perf_counter(), cpu_seconds()
        model.fit(private)
        out.update(fit_seconds=time.perf_counter() - t0, fit_cpu_seconds=cpu_seconds() - c0)
        t0 = time.perf_counter()
        synthetic = model.sample(len(train), seed=a.seed)
        out["sample_seconds"] = time.perf_counter() - t0
        charges = [r for r in model.receipts if r.kind == "charge"]
        out.update(epsilon_spent_curve=charges[-1].epsilon_curve,  # the ledger's, after the run's last charge
                   epsilon_spent_filter=gate.filter.epsilon_spent(gate.spent_costs()),
                   ledger_charges=len(gate.spent_costs()), epsilon_spent_model=model.epsilon_spent())
    if a.impl == "pategan":
        plan = model.plan
        out["plan"] = {**plan.to_dict(), "unanimous_error": plan.unanimous_error}
        out["training"] = {"iterations_done": model.log.iterations_done, "queries_done": model.log.queries_done,
                           "mean_label_first": model.log.mean_label[:3], "mean_label_last": model.log.mean_label[-3:],
                           "last_losses": list(model.log.losses[-1]) if model.log.losses else None}
        out["settings"] = {"teachers": a.teachers} if a.teachers else {}
    elif a.impl == "dpctgan":
        plan = model.plan
        out["plan"] = {"epochs": DPCTGAN_EPOCHS, "batch_size": 500, "steps": plan.steps,
                       "sampling_rate": plan.sampling_rate, "noise_multiplier": plan.noise_multiplier,
                       "frequency_noise_multiplier": plan.frequency_noise_multiplier}
    else:
        out["plan"] = {k: v for k, v in getattr(model, "fit_log", {}).items() if isinstance(v, (int, float, str))}
    synthetic.to_csv(a.out, index=False)
    print("RESULT " + json.dumps(out, default=str), flush=True)


# --------------------------------------------------------------------------- one run (parent)


def parse_result(log_text: str) -> dict | None:
    """The last ``RESULT {json}`` line of a child's output (peers print other things too)."""
    for line in reversed(log_text.splitlines()):
        if line.startswith("RESULT "):
            try:
                return json.loads(line[len("RESULT "):])
            except json.JSONDecodeError:
                return None
    return None


def peer_python(impl: str, args) -> str | None:
    given = getattr(args, f"{impl}_python", None)
    var, default = PEER_ENV[impl]
    return given or os.environ.get(var) or default


def build_command(impl: str, table, epsilon: float, seed: int, args, train_csv: Path, out: Path
                  ) -> tuple[list[str] | None, str]:
    """The child's command line (without the nice prefix), or (None, why it is skipped)."""
    if impl in OURS:
        cmd = [sys.executable, str(Path(__file__).resolve()), "child", "--table", table.name, "--impl", impl,
               "--epsilon", repr(epsilon), "--seed", str(seed), "--threads", str(args.threads), "--out", str(out)]
        if impl == "pategan" and args.pategan_teachers:
            cmd += ["--teachers", str(args.pategan_teachers)]
        if impl == "pategan" and args.pategan_labels:
            cmd += ["--labels"]
        return cmd, ""
    python = peer_python(impl, args)
    if not python or not Path(python).exists():
        var = PEER_ENV[impl][0]
        return None, f"no {impl} Python at {python!r} (--{impl}-python / ${var})"
    cmd = [python, str(PEER_RUNNERS[impl]), "--train", str(train_csv), "--out", str(out), "--epsilon", repr(epsilon),
           "--delta", repr(DELTA), "--target", table.target, "--categorical", ",".join(table.peer_categorical()),
           "--samples", str(args.samples or 0), "--seed", str(seed), "--threads", str(args.threads)]
    if impl == "snsynth":  # the same declared bounds as ours: no budget spent on private bounds
        cmd += ["--bounds", json.dumps({c: list(b) for c, b in table.bounds.items()})]
    return cmd, ""


def summarise(impl: str, info: dict) -> dict:
    """Uniform fields across implementations: ε (ours: the ledger's; peers: as claimed and by their
    own accounting), δ used, and the PATE schedule (k, vote noise, Q, iterations)."""
    s: dict = {}
    if impl in OURS:
        s["epsilon_spent"] = info.get("epsilon_spent_curve")
        s["epsilon_spent_filter"] = info.get("epsilon_spent_filter")
        s["delta_used"] = DELTA
        plan = info.get("plan") or {}
        if impl == "pategan" and "teachers" in plan:
            s["schedule"] = {"teachers": plan["teachers"], "vote_noise": f"Gaussian σ = {plan['noise_multiplier']:.1f}"
                             " on each count", "queries": plan["queries"], "iterations": plan["iterations"],
                             "unanimous_error": plan["unanimous_error"],
                             "label_queries": plan.get("label_queries", 0)}
    elif impl == "snsynth":
        hp = info.get("hyperparameters", {})
        k = hp.get("num_teachers")
        scale = hp.get("laplace_scale")
        s["epsilon_claimed"] = info.get("claimed_epsilon")
        # its accountant covers training only; the preprocessor's share (0 with public bounds) adds
        s["epsilon_own_accounting"] = (None if info.get("eps_hat_final") is None else
                                       info["eps_hat_final"] + (info.get("preprocessor_eps") or 0.0))
        s["delta_used"] = info.get("delta")
        if k and scale:
            s["schedule"] = {"teachers": k, "vote_noise": f"Laplace scale {scale:g} on the 'real' count",
                             "queries": hp.get("student_queries"), "iterations": hp.get("iterations"),
                             "unanimous_error": 0.5 * math.exp(-k / (2 * scale))}
    elif impl == "synthcity":
        hp = info.get("hyperparameters", {})
        k = hp.get("n_teachers")
        scale = hp.get("laplace_scale")
        s["epsilon_claimed"] = info.get("claimed_epsilon")
        s["epsilon_own_accounting"] = info.get("eps_hat_final")
        s["delta_used"] = info.get("delta_effective")
        if k and scale:
            s["schedule"] = {"teachers": k, "vote_noise": f"Laplace scale {scale:g} on the 'real' count",
                             "queries": hp.get("teacher_label_queries"), "charged_queries": hp.get("charged_queries"),
                             "iterations": hp.get("iterations_run"), "unanimous_error": 0.5 * math.exp(-k / (2 * scale))}
    return s


def one_run(impl: str, table, epsilon: float, seed: int, args, train_csv: Path, test, logs: Path) -> dict:
    """Run one child, read its RESULT, score its synthetic table; the record for the results file."""
    from dpsynth.evaluate.utility import evaluate_classifier

    variant = variant_of(impl, args.pategan_teachers, args.pategan_labels)
    key = run_key(table.name, impl, epsilon, seed, variant)
    record = {"table": table.name, "impl": impl, "variant": variant, "system": LABELS[impl] + (f" {variant}" if variant
                                                                                               else ""),
              "epsilon": float(epsilon), "seed": seed, "delta_requested": DELTA, "timeout_s": args.timeout,
              "threads": args.threads, "code_commit": harness.code_commit(),
              "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "loadavg_at_start": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory(prefix="pategan-bench-") as tmp:
        out = Path(tmp) / "synth.csv"
        cmd, why = build_command(impl, table, epsilon, seed, args, train_csv, out)
        if cmd is None:
            print(f"[skipped] {key}: {why}", flush=True)
            return {**record, "status": "skipped", "reason": why}
        cmd = ["nice", "-n", str(args.nice), *cmd]
        log = logs / (key.replace("/", "_") + ".log")
        print(f"[start] {key}", flush=True)
        res = harness.run_child(cmd, args.timeout, log)
        record.update(res, command=" ".join(cmd), log_tail=harness.tail(log),
                      loadavg_at_end=round(os.getloadavg()[0], 2))
        info = parse_result(log.read_text(errors="replace")) if log.exists() else None
        if res["timed_out"]:
            record["status"] = "DNF"
        elif info is not None and info.get("refused"):
            record.update(status="refused", reason=info["refused"], result=info, **summarise(impl, info))
        elif res["rc"] != 0 or info is None or not out.exists():
            record["status"] = "failed"
        else:
            record.update(status="ok", result=info, **summarise(impl, info))
            synthetic = table.read_synthetic(out, peer=impl in PEERS)
            record["n_synthetic"] = int(len(synthetic))
            record["tstr"] = tstr(synthetic, test, table, evaluate_classifier)
    t = record.get("tstr", {})
    print(f"[{record['status']}] {key}: wall {record.get('wall_s', 0):.1f} s, CPU {record.get('cpu_s', 0):.1f} s, "
          f"RSS {record.get('peak_rss_mb') or 0:.0f} MB"
          + (f", GB AUC {t['gboost']['roc_auc']:.3f}" if t.get("gboost") else "")
          + (f" ({record.get('reason')})" if record.get("reason") else ""), flush=True)
    return record


def tstr(train, test, table, evaluate=None) -> dict:
    """Accuracy and ROC-AUC of logistic regression and gradient boosting trained on `train`,
    tested on the real `test` (dpsynth.evaluate.utility)."""
    if evaluate is None:
        from dpsynth.evaluate.utility import evaluate_classifier as evaluate
    out = {}
    for key, model in (("logistic", "logistic_regression"), ("gboost", "gradient_boosting")):
        score = evaluate(train, test, table.column_spec(), model)
        out[key] = {"accuracy": score.accuracy, "roc_auc": score.roc_auc}
        if score.note:
            out[key]["note"] = score.note
    return out


# --------------------------------------------------------------------------- results file


def empty_results() -> dict:
    return {"benchmark": "pategan_adult", "runs": {}, "references": {}, "tables": {}, "environment": {}}


def load_results(path: Path) -> dict:
    if path.exists():
        return {**empty_results(), **json.loads(path.read_text())}
    return empty_results()


def merge_results(into: dict, other: dict) -> dict:
    """Runs by key (a later file's run replaces an earlier one's), references and tables by name."""
    for section in ("runs", "references", "tables"):
        into.setdefault(section, {}).update(other.get(section, {}))
    if other.get("environment"):
        into["environment"] = other["environment"]
    return into


def save_results(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".json.tmp{os.getpid()}")
    tmp.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)
    path.with_suffix(".md").write_text(render_markdown(results))


def update_results(path: Path, update) -> None:
    """Apply `update(results)` under a lock and save (after every run: a crash keeps what finished)."""
    import fcntl

    with open(Path(tempfile.gettempdir()) / f"{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = load_results(path)
        update(results)
        save_results(path, results)


# --------------------------------------------------------------------------- rendering


def _f(v, spec: str = ".3f") -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def epsilon_cell(r: dict) -> str:
    """ε spent as each kind of implementation can state it."""
    if r["impl"] in OURS:
        if r["status"] == "refused":
            return "0 (refused before any charge)"
        if r.get("epsilon_spent") is None:
            return "–"
        return f"{r['epsilon_spent']:.3f} (ledger; filter {r['epsilon_spent_filter']:.3f})"
    claimed = r.get("epsilon_claimed", r["epsilon"])
    own = r.get("epsilon_own_accounting")
    return f"claimed {_f(claimed, 'g')}; own accountant {_f(own)}*"


def status_cell(r: dict) -> str:
    if r["status"] == "DNF":
        return f"DNF (> {r.get('wall_s', r.get('timeout_s', 0)):.0f} s)"
    if r["status"] == "refused":
        return "refused (plan)"
    return r["status"]


IMPL_ORDER = {impl: i for i, impl in enumerate(IMPLS)}


def _sorted_runs(runs: list[dict]) -> list[dict]:
    return sorted(runs, key=lambda r: (r["epsilon"], IMPL_ORDER.get(r["impl"], 99), r.get("variant", ""), r["seed"]))


def run_rows(runs: list[dict]) -> list[str]:
    rows = []
    for r in _sorted_runs(runs):
        res = r.get("result") or {}
        t = r.get("tstr", {})
        lr, gb = t.get("logistic", {}), t.get("gboost", {})
        rows.append(
            f"| {r['system']} | {r['epsilon']:g} | {r['seed']} | {epsilon_cell(r)} | {_f(r.get('delta_used'), '.3g')}"
            f" | {status_cell(r)} | {_f(res.get('fit_seconds'), '.1f')} | {_f(res.get('fit_cpu_seconds'), '.1f')}"
            f" | {_f(res.get('sample_seconds'), '.1f')} | {_f(r.get('wall_s'), '.0f')} | {_f(r.get('cpu_s'), '.0f')}"
            f" | {_f(r.get('peak_rss_mb'), '.0f')} | {_f(lr.get('accuracy'))} | {_f(lr.get('roc_auc'))}"
            f" | {_f(gb.get('accuracy'))} | {_f(gb.get('roc_auc'))} |")
    return rows


def schedule_rows(runs: list[dict]) -> list[str]:
    rows = []
    for r in _sorted_runs(runs):
        s = r.get("schedule")
        if not s:
            continue
        n = (r.get("result") or {}).get("n_train")
        per = f"{n / s['teachers']:.0f}" if n else "–"
        extra = f" ({s['charged_queries']:,} charged)" if s.get("charged_queries") is not None else ""
        if s.get("label_queries"):
            extra += f" (of which {s['label_queries']:,} to the label teachers)"
        rows.append(f"| {r['system']} | {r['epsilon']:g} | {r['seed']} | {s['teachers']} | {per} | {s['vote_noise']}"
                    f" | {100 * s['unanimous_error']:.1f} % | {_f(s.get('queries'), ',')}{extra}"
                    f" | {_f(s.get('iterations'), ',')} |")
    return rows


def render_markdown(results: dict) -> str:
    runs = [r for r in results.get("runs", {}).values()]
    env = results.get("environment", {})
    lines = [
        "# PATE-GAN against its peers: UCI Adult (raw) and HMEQ",
        "",
        "Generated by `benchmarks/pategan_adult.py` (see `benchmarks/README.md`).  Every run is one subprocess "
        f"under `nice`, {env.get('threads', '?')} thread(s), one run at a time, on a shared 2-core machine; "
        "δ = 1e-6 asked of every implementation.  *fit s* / *fit CPU s* / *sample s* are timed inside the child "
        "(imports and data loading excluded); *child wall s* / *child CPU s* / *peak RSS* are the whole child's "
        "(user + system CPU; RSS = its own VmHWM).  Utility: train on the synthetic table (n = the training "
        "rows), test on the real test split; LR = logistic regression, GB = histogram gradient boosting "
        "(`dpsynth.evaluate.utility`).  A single seed per setting unless the seed column says otherwise: "
        "GAN utility varies a lot from run to run (see results/dpctgan_adult.md), so read differences of a "
        "few AUC points as noise.",
        "",
        "**The ε columns are not comparable across implementations.**  Ours: the ε the run's fresh ledger "
        "recorded (its events' full RDP curve at δ = 1e-6, and the gate's Rényi filter), charged before any "
        "teacher trains, from a plan fixed on public numbers.  Peers (*): the ε they were asked for "
        "(*claimed*) and what their own accountant says they spent — data-dependent moments accountants with "
        "known bugs (`benchmarks/peers/*_pategan.py` list them), which a worst-case black-box audit "
        "(arXiv 2406.13985; ../shared/research/pategan.md §1.1) found to leak at least ε ≈ 4.68 empirically "
        "at a claimed ε = 1 (δ = 1e-5) for both smartnoise and synthcity.  synthcity ignores the δ passed "
        "and uses 1/(n·√n) (the δ column shows what it used), trains its student discriminator on real rows, "
        "re-draws its teacher partitions every iteration and reads its encoders off the data; smartnoise "
        "reads its category sets off the data.  Neither peer's figure is a guarantee.",
        "",
    ]
    for name in [t for t in TABLES if t in {r["table"] for r in runs} | set(results.get("references", {}))]:
        table_runs = [r for r in runs if r["table"] == name and r["status"] != "skipped"]
        facts = results.get("tables", {}).get(name) or describe(TABLES[name])
        ref = results.get("references", {}).get(name, {})
        lines += [f"## {name}", "", facts.get("source", ""), "",
                  f"Public bound max_records = {facts.get('max_records', '?'):,} (ours); target "
                  f"`{facts.get('target', '?')}`.", "",
                  "| implementation | ε asked | seed | ε spent | δ used | status | fit s | fit CPU s | sample s "
                  "| child wall s | child CPU s | peak RSS MB | LR acc | LR AUC | GB acc | GB AUC |",
                  "|---|---:|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        if ref:
            lr, gb = ref.get("logistic", {}), ref.get("gboost", {})
            lines.append(f"| *train on real (reference)* | – | – | – | – | – | – | – | – | – | – | – "
                         f"| {_f(lr.get('accuracy'))} | {_f(lr.get('roc_auc'))} | {_f(gb.get('accuracy'))} "
                         f"| {_f(gb.get('roc_auc'))} |")
            if ref.get("majority_accuracy") is not None:
                lines.append(f"| *majority class (reference)* | – | – | – | – | – | – | – | – | – | – | – "
                             f"| {ref['majority_accuracy']:.3f} | 0.500 | {ref['majority_accuracy']:.3f} | 0.500 |")
        lines += run_rows(table_runs)
        sched = schedule_rows([r for r in table_runs if r["impl"] in ("pategan", *PEERS)])
        if sched:
            lines += ["", "PATE schedules (the teacher ensemble, its vote noise, the label queries it answered):", "",
                      "| implementation | ε asked | seed | k teachers | training rows per teacher | vote noise "
                      "| a unanimous vote flipped | label queries | iterations |",
                      "|---|---:|---:|---:|---:|---|---:|---:|---:|"]
            lines += sched
        refused = [r for r in table_runs if r["status"] == "refused"]
        for r in refused:
            lines += ["", f"* {r['system']} at ε = {r['epsilon']:g}: refused before any charge — {r['reason']}"]
        bad = [r for r in table_runs if r["status"] in ("DNF", "failed")]
        for r in bad:
            lines += ["", f"* {r['system']} at ε = {r['epsilon']:g}: {status_cell(r)}; last lines of its output:", "",
                      "  ```", *("  " + x[:300] for x in r.get("log_tail", [])[-6:]), "  ```"]
        lines.append("")
    skipped = [r for r in runs if r["status"] == "skipped"]
    if skipped:
        lines += ["Skipped: " + "; ".join(f"{r['table']} {r['system']} ε={r['epsilon']:g} ({r['reason']})"
                                         for r in skipped), ""]
    lines += [
        "Notes:",
        "",
        "* *a unanimous vote flipped*: the probability that a vote on which all k teachers agree comes out the "
        "other way after the noise — ours Φ(−k/(σ√2)) (Gaussian on both counts, argmax; the student is "
        "trained on the noisy share of 'real' votes), the peers 0.5·exp(−k/(2b)) (Laplace of scale b on the "
        "'real' count, thresholded at k/2).  At the peers' b = 1000 their labels are close to coin flips.",
        "* *label queries*: ours Q, every one charged (`GNMaxEvent(σ, Q)`) before the first teacher trains; "
        "smartnoise's student queries (charged to its accountant); synthcity's teacher labels asked, of which "
        "only the *charged* ones reach its accountant (a batch whose noisy labels are mostly 'real' is "
        "returned without being charged).",
        "* The peers stop when their data-dependent ε estimate passes the target, checked before (smartnoise) "
        "or after (synthcity) a whole iteration: their iteration counts depend on the data, and synthcity's "
        "single iteration at ε = 1 already ends far past the target by its own accounting.",
        "* MST and AIM see the numeric columns binned at declared edges (`pategan_tables.py`); decoding draws "
        "uniformly within a bin.  DP-CTGAN: 8 epochs, batch 500, as in results/dpctgan_adult.md.",
        "* Peers get the same train split as CSV (`pategan_tables.TableSpec.to_peer`: a missing category as "
        "the token `?`, a missing number as the declared lower bound plus a `<column>__missing` flag column, "
        "undone before scoring); smartnoise also gets our declared bounds (it spends nothing on private "
        "bounds).",
        f"* Machine: {env.get('machine', '?')}; load averages at the start / end of each run are in the JSON "
        "(another job shared the machine: CPU seconds are steadier than wall time).",
        "",
        "How to reproduce: see `benchmarks/README.md` (section *PATE-GAN*).",
    ]
    if DISCUSSION.exists():
        lines += ["", DISCUSSION.read_text().rstrip()]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tables", nargs="+", choices=sorted(TABLES), default=list(TABLES))
    p.add_argument("--only", nargs="+", choices=IMPLS, default=list(IMPLS), help="implementations to run")
    p.add_argument("--epsilons", nargs="+", type=float, default=list(EPSILONS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--pategan-teachers", type=int, default=None,
                   help="run our PATEGAN with this many teachers (a variant, recorded as such)")
    p.add_argument("--pategan-labels", action="store_true",
                   help="run our PATEGAN with label teachers for the table's target (target=…; a variant)")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per run before it is recorded DNF")
    p.add_argument("--threads", type=int, default=1, help="threads per child (OMP/MKL, torch)")
    p.add_argument("--nice", type=int, default=10)
    p.add_argument("--snsynth-python", default=None, help="default $SNSYNTH_PYTHON or /work/venv-snsynth/bin/python")
    p.add_argument("--synthcity-python", default=None,
                   help="default $SYNTHCITY_PYTHON or /work/venv-synthcity/bin/python")
    p.add_argument("--out", type=Path, default=RESULTS, help="results JSON (the .md goes beside it)")
    p.add_argument("--merge", nargs="+", type=Path, default=None, help="merge these result files into --out")
    p.add_argument("--render-only", action="store_true", help="rewrite the .md from --out and exit")
    p.add_argument("--logs", type=Path, default=None, help="child logs (default: a temp dir)")
    args = p.parse_args(argv)
    args.samples = None
    return args


def reference(table, train, test) -> dict:
    """Train-on-real scores and the majority-class accuracy on the test split."""
    ref = tstr(train, test, table)
    labels = test[table.target].astype(str)
    ref["majority_accuracy"] = float((labels == train[table.target].astype(str).mode()[0]).mean())
    return ref


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["child"]:
        return child_ours(argv[1:])
    args = parse_args(argv)
    if args.render_only:
        return save_results(args.out, load_results(args.out))
    if args.merge:
        def merge(results):
            for f in args.merge:
                merge_results(results, load_results(f))
        update_results(args.out, merge)
        print(f"merged {len(args.merge)} file(s) into {args.out} and {args.out.with_suffix('.md')}")
        return
    harness.THREADS = args.threads  # the children's OMP/MKL/OPENBLAS threads (marginal.child_env)
    logs = args.logs or Path(tempfile.mkdtemp(prefix="pategan-bench-logs-"))
    logs.mkdir(parents=True, exist_ok=True)
    environment = {"machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs",
                   "threads": args.threads, "nice": args.nice, "logs": str(logs)}
    print(f"logs in {logs}", flush=True)
    for name in args.tables:
        table = TABLES[name]
        train, test = table.load()
        args.samples = len(train)
        known = load_results(args.out)["references"]
        if name not in known:
            ref = reference(table, train, test)
            update_results(args.out, lambda r: (r["references"].__setitem__(name, ref),
                                                r["tables"].__setitem__(name, describe(table))))
        with tempfile.TemporaryDirectory(prefix="pategan-bench-data-") as tmp:
            train_csv = Path(tmp) / f"{name}_train.csv"
            table.to_peer(train).to_csv(train_csv, index=False)
            for eps in args.epsilons:
                for seed in args.seeds:
                    for impl in args.only:
                        rec = one_run(impl, table, float(eps), seed, args, train_csv, test, logs)
                        key = run_key(name, impl, float(eps), seed, rec.get("variant", ""))

                        def update(results, key=key, rec=rec):
                            results["runs"][key] = rec
                            results["tables"][name] = describe(table)
                            results["environment"] = environment
                        update_results(args.out, update)
    print(f"results: {args.out} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
