"""A worst-case black-box audit of PATEGAN, in the style of the 2024 PATE-GAN audit.

Setting (research/pategan.md §1.1; research/auditing.md §2): three binary columns,
world OUT D′ = four records (0,0,0), world IN D = D′ + one record (1,1,1); a small
number of teachers (2 by default); many fits per world.  Each fit releases N
synthetic rows; the attack is the query-based one of that audit reduced to the query
that matters: the score of a fit is the number of synthetic rows equal to (1,1,1).
For each world the first half of the fits picks the threshold (and the direction)
that maximises the bound, the second half gives FP and FN at that threshold and the
Clopper–Pearson ε lower bound `eps_lb_cp` (research/auditing.md Appendix A; its
`alpha=0.05` is privacy_estimates' `alpha=0.1`, the 2024 audit's level).

Every fit is a real one: its own `PrivateTable` on a test ledger that governs the
world's frame (one ledger per world and worker, keyed to that frame, with a budget
large enough for all of its fits), secure noise unless a seed is given, the plan
charged before any teacher trains, the model sealed and its receipts verified when it
samples.  Claimed ε = 1 at δ = 1e-5 with 2 teachers is refused by dpsynth's plan as
useless (a unanimous vote of 2 teachers under the noise ε = 1 buys comes out wrong
more than 40 % of the time); the harness lifts that usefulness guard
(`plan.MAX_UNANIMOUS_ERROR`), which is no part of the privacy argument, so the
published setting can be audited as it is.

Canaries (variants the audit must catch; test-only patches applied in this process,
never in the library):

* `noiseless_votes` — the session's vote noise is zero while the charge stays as
  planned (the noise draw of `PateSession.votes` patched to zeros);
* `teacher_sees_all` — teacher 0 trains on every record (its partition replaced by
  the whole table), the other partitions as they were; votes noised as planned;
* `student_sees_real` — the student also trains on the real rows labelled "real"
  (synthcity's PATE-GAN: its student discriminator sees real records), votes noised
  as planned;
* `labeller_sees_real` (with `--target`) — the labeller also fits the real rows' own
  labels after fitting the noisy label votes.

CLI:

    python benchmarks/pategan_audit.py --runs 400 --variants honest noiseless_votes \
        teacher_sees_all student_sees_real --jobs 2

writes benchmarks/results/pategan_audit.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # this checkout's dpsynth, not an installed one
    sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
COLUMNS = ("a", "b", "c")
TARGET = (1, 1, 1)
WORLDS = ("out", "in")

# The 2024 audit's ε lower bounds at a claim of ε = 1, δ = 1e-5 (research/pategan.md §1.1,
# spalabucr/pategan-audit `code/nb_plot.ipynb` cell 67; 400 evaluation fits per world).
PUBLIC_2024 = {"original": 4.68, "updated": 2.18, "synthcity": 4.68, "turing": 4.68, "borealis": 4.53,
               "smartnoise": 4.68}


# -- the bounds: dpsynth.audit.bounds (research/auditing.md Appendix A) -------------------------------------
from dpsynth.audit.bounds import auc, ceiling as max_auditable_eps, eps_lb_cp, mu_from_eps, mu_lb_gdp  # noqa: E402,F401
from dpsynth.audit.bounds import split_audit  # noqa: E402
from dpsynth.audit.statistics import target_count  # noqa: E402
from dpsynth.audit.worlds import worst_case_pair  # noqa: E402


def audit(scores_out: Sequence[float], scores_in: Sequence[float], *, alpha: float = 0.05,
          delta: float = 0.0) -> dict[str, Any]:
    """Threshold and direction on the first half of each world's fits, FP/FN and the CP ε bound on
    the second half (dpsynth.audit.bounds.split_audit)."""
    return split_audit(scores_out, scores_in, alpha=alpha, delta=delta)


# -- the worlds ---------------------------------------------------------------------------------------------
def schema():
    return worst_case_pair("pategan").schema


def world_frame(world: str) -> pd.DataFrame:
    """dpsynth.audit's worst-case pair for PATE-GAN (add/remove-one)."""
    return worst_case_pair("pategan").frame(world)


@dataclass(frozen=True)
class AuditConfig:
    """Everything a fit depends on (public numbers)."""

    epsilon: float = 1.0            # claimed ε of one fit
    delta: float = 1e-5             # the policy's δ (the plan converts at it)
    teachers: int = 2
    queries: int = 64
    queries_per_iteration: int = 8
    n_synth: int = 1000             # synthetic rows per fit
    alpha: float = 0.05             # eps_lb_cp's α (each rate bounded at α/2)
    max_records: int = 8            # the policy's public bound on n (≥ 5)
    lift_usefulness_guard: bool = True
    target: str | None = None       # PATEGAN(target=…): label teachers for this column (label_share default)
    model: dict = field(default_factory=lambda: dict(
        teacher_hidden=(16,), teacher_lr=1e-2, teacher_batch=8, teacher_steps=4, student_dims=(32,),
        student_lr=1e-2, student_steps=5, generator_dims=(32,), embedding_dim=8, generator_lr=1e-2,
        generator_steps=5, batch_size=64))

    def pategan_kwargs(self) -> dict[str, Any]:
        kw = dict(self.model)
        for key in ("teacher_hidden", "student_dims", "generator_dims"):
            if key in kw:
                kw[key] = tuple(kw[key])
        if self.target is not None:
            kw["target"] = self.target
        return dict(epsilon=self.epsilon, teachers=self.teachers, queries=self.queries,
                    queries_per_iteration=self.queries_per_iteration, device="cpu", progress=False, **kw)


# -- canaries (patches of this process only; never part of dpsynth) ---------------------------------------------
LEAK_STEPS = 20  # the leaky student's extra steps per iteration (loud enough to reach the generator)

@contextlib.contextmanager
def _patched(obj: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


@contextlib.contextmanager
def noiseless_votes() -> Iterator[None]:
    """The vote noise drawn as zeros (the discriminator's and the label teachers' votes alike); the
    session is charged for σ as planned."""
    import dpsynth.noise.discrete_gaussian as dg
    from dpsynth.table.pate import PateSession

    honest_sampler, honest_votes, honest_labels = dg.sample_discrete_gaussian, PateSession.votes, PateSession.label_votes
    in_votes = [False]

    def sampler(scale, size, source):
        if in_votes[0]:
            return np.zeros(int(size), dtype=np.int64)
        return honest_sampler(scale, size, source)

    def votes(self, queries):
        in_votes[0] = True
        try:
            return honest_votes(self, queries)
        finally:
            in_votes[0] = False

    def label_votes(self, queries):
        in_votes[0] = True
        try:
            return honest_labels(self, queries)
        finally:
            in_votes[0] = False

    with _patched(dg, "sample_discrete_gaussian", sampler), _patched(PateSession, "votes", votes), \
            _patched(PateSession, "label_votes", label_votes):
        yield


@contextlib.contextmanager
def teacher_sees_all() -> Iterator[None]:
    """Teacher 0's partition is the whole table (the others keep theirs): the record is seen by
    two teachers when its own partition is another's (the 'updated' and 'turing' PATE-GANs'
    overlapping teacher data)."""
    import torch

    from dpsynth.table.pate import PateSession

    honest_init = PateSession.__init__

    def init(self, table, receipt, layout, *args, **kwargs):
        honest_init(self, table, receipt, layout, *args, **kwargs)
        with table._open_rows(receipt) as rows:  # reaches inside the table: what the canary is about
            features = np.asarray(layout.transform(rows.frame), dtype=np.float32)
        parts = self._PateSession__parts.cpu().numpy()
        sizes = self._PateSession__sizes.cpu().numpy().copy()
        n = features.shape[0]
        grown = np.zeros((parts.shape[0], max(parts.shape[1], n), parts.shape[2]), dtype=np.float32)
        grown[:, :parts.shape[1]] = parts
        grown[0, :] = 0.0
        grown[0, :n] = features
        sizes[0] = n
        self._PateSession__parts = torch.as_tensor(grown).to(self.device)
        self._PateSession__sizes = torch.as_tensor(sizes).to(self.device)

    with _patched(PateSession, "__init__", init):
        yield


@contextlib.contextmanager
def student_sees_real(as_teacher: bool = False, steps: int = LEAK_STEPS) -> Iterator[None]:
    """After each iteration's votes the student also takes `steps` Adam steps on the real rows
    labelled real (synthcity's student discriminator sees real records); with `as_teacher`, on
    the real rows labelled real against the iteration's generated queries labelled fake: a
    teacher trained on all the data, and the judge the generator learns from is that teacher
    (the 2018 original: no partition, the generator trains against the teacher).  Its noisy
    votes are still asked and used as planned."""
    import torch
    from torch.nn import functional as F

    from dpsynth.generators.pategan import model as model_module
    from dpsynth.generators.pategan import trainer as trainer_module

    honest_train = trainer_module.train

    class LeakySession:
        def __init__(self, session, nets, transformer, steps, lr):
            self._session = session
            with session._table._open_rows(session.receipt) as rows:  # the leak
                self._real = torch.as_tensor(np.asarray(transformer.transform(rows.frame), dtype=np.float32))
            self._student = nets.student
            self._steps = steps
            self._opt = torch.optim.Adam(nets.student.parameters(), lr=lr, betas=(0.5, 0.9))

        def __getattr__(self, name):
            return getattr(self._session, name)

        def votes(self, queries):
            out = self._session.votes(queries)
            x, y = self._real, torch.ones(self._real.shape[0])
            if as_teacher:
                fake = torch.as_tensor(queries, dtype=torch.float32)
                x, y = torch.cat([x, fake]), torch.cat([y, torch.zeros(fake.shape[0])])
            for _ in range(self._steps):  # the student learns the real rows as "real"
                loss = F.binary_cross_entropy_with_logits(self._student(x), y)
                self._opt.zero_grad(set_to_none=True)
                loss.backward()
                self._opt.step()
            return out

    def leaky_train(nets, sampler, transformer, plan, session, **kw):
        leaky = LeakySession(session, nets, transformer, steps, kw["student_lr"])
        return honest_train(nets, sampler, transformer, plan, leaky, **kw)

    with _patched(trainer_module, "train", leaky_train), _patched(model_module, "train", leaky_train):
        yield


@contextlib.contextmanager
def labeller_sees_real(steps: int = 200) -> Iterator[None]:
    """The labeller also learns the target from the real rows with their real labels (a teacher's
    data reaching the released model outside the votes); with `--target` only."""
    import torch

    from dpsynth.generators.pategan import model as model_module
    from dpsynth.generators.pategan import trainer as trainer_module

    honest = trainer_module.fit_labeller

    def leaky(nets, sampler, transformer, plan, session, **kw):
        labeller = honest(nets, sampler, transformer, plan, session, **kw)
        with session._table._open_rows(session.receipt) as rows:  # the leak
            real = torch.as_tensor(np.asarray(transformer.transform(rows.frame), dtype=np.float32))
        a, b = labeller.block
        labeller.fit(real, real[:, a:b], steps=steps)
        return labeller

    with _patched(trainer_module, "fit_labeller", leaky), _patched(model_module, "fit_labeller", leaky):
        yield


VARIANTS: dict[str, Callable[[], Any]] = {
    "honest": contextlib.nullcontext,
    "noiseless_votes": noiseless_votes,
    "teacher_sees_all": teacher_sees_all,
    "student_sees_real": student_sees_real,
    "judge_sees_all": lambda: student_sees_real(as_teacher=True),
    "labeller_sees_real": labeller_sees_real,
}
CANARIES = tuple(v for v in VARIANTS if v != "honest")


@contextlib.contextmanager
def usefulness_guard_lifted(lift: bool) -> Iterator[None]:
    """dpsynth refuses plans whose unanimous votes would be wrong > 40 % of the time (a utility
    check, not a privacy one); the 2024 setting (2 teachers at ε = 1) is such a plan."""
    if not lift:
        yield
        return
    from dpsynth.generators.pategan import plan as plan_module

    with _patched(plan_module, "MAX_UNANIMOUS_ERROR", 1.0):
        yield


# -- fitting ----------------------------------------------------------------------------------------------
def score(frame: pd.DataFrame) -> int:
    """The attack's statistic: how many synthetic rows equal the target."""
    return target_count(frame, dict(zip(COLUMNS, TARGET)))


def run_world(world: str, run_ids: Sequence[int], config: AuditConfig, variant: str = "honest", *,
              seed: int | None = None, workdir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Fit PATEGAN once per id in `run_ids` on the world's frame; return the scores (and facts).

    One test ledger governs the world's frame for all of these fits (fresh key and policy, a
    budget of ε = 10⁶, max_records = config.max_records); each fit has its own PrivateTable.
    With `seed` None the tables use secure noise and the models and samples fresh seeds;
    otherwise fit i of world w draws its table's SeededRandomSource seed, its model seed and its
    sampling seed from SeedSequence([seed, i, w])."""
    import torch

    from accountant.testing import make_test_gate
    from dpsynth.generators import PATEGAN
    from dpsynth.noise.randomness import SeededRandomSource
    from dpsynth.table import PrivateTable

    torch.set_num_threads(1)
    sch = schema()
    frame = world_frame(world)
    if config.max_records < len(frame):
        raise ValueError("the policy's max_records must bound the data's n")
    own_dir = None
    if workdir is None:
        own_dir = tempfile.TemporaryDirectory(prefix=f"pategan-audit-{world}-")
        workdir = own_dir.name
    try:
        tl = make_test_gate(Path(workdir) / f"{world}-{variant}-{run_ids[0] if run_ids else 0}", epsilon=1e6,
                            delta=config.delta, frame=sch.validate(frame), max_records=config.max_records)
        scores, spent = [], set()
        w = WORLDS.index(world)
        t0 = time.perf_counter()
        with usefulness_guard_lifted(config.lift_usefulness_guard), VARIANTS[variant]():
            for i in run_ids:
                s = [None] * 3 if seed is None else [
                    int(x) for x in np.random.SeedSequence([seed, int(i), w]).generate_state(3, dtype=np.uint32)]
                table = PrivateTable(frame, sch, tl.gate, dataset_key=tl.dataset_key,
                                     random_source=None if s[0] is None else SeededRandomSource(s[0]))
                model = PATEGAN(seed=s[1], **config.pategan_kwargs()).fit(table)
                spent.add(round(model.epsilon_spent(), 9))
                scores.append(score(model.sample(config.n_synth, seed=s[2])))
        plan = model.plan if run_ids else None
        return {"world": world, "variant": variant, "run_ids": list(map(int, run_ids)), "scores": scores,
                "seconds": time.perf_counter() - t0, "epsilon_spent": sorted(spent),
                "plan": None if plan is None else plan.to_dict()}
    finally:
        if own_dir is not None:
            own_dir.cleanup()


def run_variant(variant: str, runs: int, config: AuditConfig, *, jobs: int = 1, seed: int | None = None,
                chunk: int = 50) -> dict[str, Any]:
    """`runs` fits per world (chunks spread over `jobs` processes), then the audit."""
    tasks = [(world, list(range(a, min(runs, a + chunk)))) for world in WORLDS for a in range(0, runs, chunk)]
    t0 = time.perf_counter()
    if jobs <= 1:
        parts = [run_world(w, ids, config, variant, seed=seed) for w, ids in tasks]
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(run_world, w, ids, config, variant, seed=seed) for w, ids in tasks]
            parts = [f.result() for f in futures]
    wall = time.perf_counter() - t0
    scores = {w: [s for p in parts if p["world"] == w for s in p["scores"]] for w in WORLDS}
    result = audit(scores["out"], scores["in"], alpha=config.alpha, delta=config.delta)
    spent = sorted({e for p in parts for e in p["epsilon_spent"]})
    return {"variant": variant, "runs_per_world": runs, "wall_seconds": wall,
            "fit_cpu_seconds": sum(p["seconds"] for p in parts), "epsilon_spent": spent,
            "plan": parts[0]["plan"], "scores": scores, "audit": result,
            "mean_score": {w: float(np.mean(scores[w])) / config.n_synth for w in WORLDS}}


# -- the CLI ------------------------------------------------------------------------------------------------
NOTES = {
    "honest": "dpsynth's PATEGAN as shipped",
    "noiseless_votes": "(a) vote noise drawn as zeros, σ still charged",
    "teacher_sees_all": "(b) teacher 0 trains on every record, votes noised",
    "student_sees_real": "student also trains on the real rows as real (synthcity), votes noised",
    "judge_sees_all": "(b) strengthened: the generator's judge is a teacher on all the data (2018 original)",
    "labeller_sees_real": "with --target: the labeller also fits the real rows' own labels (a label leak)",
}


def render(report: dict[str, Any]) -> str:
    cfg = report["config"]
    eps = cfg["epsilon"]
    lines = [
        "# PATEGAN: worst-case black-box audit",
        "",
        "Written by `benchmarks/pategan_audit.py` from `pategan_audit.json` (do not edit by hand). The 2024 "
        "audit's setting (research/pategan.md §1.1): three binary columns, D′ = 4 × (0,0,0), D = D′ + (1,1,1); "
        f"each fit releases {cfg['n_synth']} synthetic rows and its score is how many equal (1,1,1). The first "
        "half of each world's fits picks the threshold and direction, the second half gives FP/FN and the "
        "Clopper–Pearson ε lower bound (each rate bounded one-sided at "
        f"{100 * (1 - cfg['alpha'] / 2):g} %, i.e. privacy_estimates' alpha = {2 * cfg['alpha']:g}, the 2024 "
        f"audit's level) at δ = {cfg['delta']:g}. *ceiling*: the bound with perfect separation of the evaluation "
        "fits. μ_lb (GDP) is for reference only (a valid bound only for Gaussian trade-offs).",
        "",
        f"Claimed: **ε = {eps:g}** at δ = {cfg['delta']:g} per fit (μ-GDP equivalent "
        f"{mu_from_eps(eps, cfg['delta']):.3f}). Teachers k = {cfg['teachers']}; Q = {cfg['queries']} label "
        f"queries ({cfg['queries_per_iteration']} per iteration, {cfg['queries'] // cfg['queries_per_iteration']} "
        f"iterations); model {json.dumps(cfg['model'])}; policy max_records = {cfg['max_records']}; plan "
        f"usefulness guard lifted: {cfg['lift_usefulness_guard']}.",
    ]
    plan = next((v["plan"] for v in report["variants"].values() if v.get("plan")), None)
    if plan:
        lines.append("")
        lines.append(f"Plan charged per fit: GNMax σ = {plan['noise_multiplier']:.4g} per count (a unanimous vote "
                     f"of {plan['teachers']} flips with probability "
                     f"{0.5 * math.erfc(plan['teachers'] / (plan['noise_multiplier'] * 2)):.2f}), category counts "
                     f"z = {plan['frequency_noise_multiplier']:.4g}, α_run = {plan['order']:.4g}.")
        if plan.get("label_queries"):
            lines.append("")
            lines.append(f"With label teachers for column `{cfg.get('target')}` (`PATEGAN(target=…)`): of the Q "
                         f"queries, {plan['label_queries']} go to the label teachers after the last of "
                         f"{plan['iterations']} iterations (not the Q / {plan['queries_per_iteration']} the line "
                         "above assumes); same σ, same charge." + (f" Note: {report['note']}" if report.get("note")
                                                                  else ""))
    lines += ["", "| variant | what | fits/world (eval) | FP | FN | **ε_lb (CP)** | ceiling | μ_lb | AUC | "
              "mean share of (1,1,1) OUT / IN | ε charged | verdict | wall s |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, v in report["variants"].items():
        a = v["audit"]
        verdict = "**VIOLATION** (ε_lb > claim)" if a["eps_lb"] > eps else "ε_lb ≤ claim"
        lines.append(
            f"| {name} | {NOTES.get(name, '')} | {v['runs_per_world']} ({a['n_out']}) | {a['fp']} | {a['fn']} | "
            f"**{a['eps_lb']:.2f}** | {a['ceiling']:.2f} | {a['mu_lb']:.2f} | {a['auc']:.3f} | "
            f"{v['mean_score']['out']:.3f} / {v['mean_score']['in']:.3f} | "
            f"{', '.join(f'{e:.4g}' for e in v['epsilon_spent'])} | {verdict} | {v['wall_seconds']:.0f} |")
    lines += ["", "The six public implementations audited in 2024 at the same claim (ε = 1, δ = 1e-5, 2 teachers, "
              "1000 fits per world of which 400 bound ε; ceiling 4.68; a query-based random-forest attack), "
              "research/pategan.md §1.1:", "", "| implementation | ε_lb |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in PUBLIC_2024.items()]
    lines += ["", f"Machine: {report['machine']}; total wall {report['wall_seconds']:.0f} s; started "
              f"{report['started']}.", "", "Reproduce (from the repository root):", "", "```sh", report["command"],
              "```", ""]
    return "\n".join(lines)


def _variant_runs(spec: str, default: int) -> tuple[str, int]:
    name, _, runs = spec.partition(":")
    if name not in VARIANTS:
        raise argparse.ArgumentTypeError(f"unknown variant {name!r} (one of {', '.join(VARIANTS)})")
    return name, int(runs) if runs else default


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    d = AuditConfig()
    p.add_argument("--runs", type=int, default=200, help="fits per world for a variant given without :RUNS")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS),
                   help=f"variants to audit, each NAME or NAME:RUNS (names: {', '.join(VARIANTS)})")
    p.add_argument("--epsilon", type=float, default=d.epsilon, help="claimed ε of one fit")
    p.add_argument("--delta", type=float, default=d.delta)
    p.add_argument("--teachers", type=int, default=d.teachers)
    p.add_argument("--queries", type=int, default=d.queries)
    p.add_argument("--queries-per-iteration", type=int, default=d.queries_per_iteration)
    p.add_argument("--max-records", type=int, default=d.max_records)
    p.add_argument("--target", default=None, choices=COLUMNS,
                   help="PATEGAN(target=…): audit with label teachers for this column (teacher_sees_all then "
                        "gives teacher 0's label teacher every record too)")
    p.add_argument("--n-synth", type=int, default=d.n_synth)
    p.add_argument("--alpha", type=float, default=d.alpha)
    p.add_argument("--keep-usefulness-guard", action="store_true",
                   help="do not lift the plan's refusal of useless plans")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--seed", type=int, default=None, help="seeded (test) noise and models; default: secure")
    p.add_argument("--out", type=Path, default=RESULTS / "pategan_audit", help="writes OUT.json and OUT.md")
    p.add_argument("--render-only", action="store_true")
    p.add_argument("--add", action="store_true",
                   help="keep the variants already in OUT.json (same configuration only) and add these")
    args = p.parse_args(argv)
    json_path, md_path = args.out.with_suffix(".json"), args.out.with_suffix(".md")
    if args.render_only:
        md_path.write_text(render(json.loads(json_path.read_text())))
        return 0
    variants = [_variant_runs(v, args.runs) for v in args.variants]
    config = replace(d, epsilon=args.epsilon, delta=args.delta, teachers=args.teachers, queries=args.queries,
                     queries_per_iteration=args.queries_per_iteration, max_records=args.max_records,
                     n_synth=args.n_synth, alpha=args.alpha, lift_usefulness_guard=not args.keep_usefulness_guard,
                     target=args.target)
    t0 = time.perf_counter()
    argv_shown = list(argv) if argv is not None else sys.argv[1:]
    report: dict[str, Any] = {
        "config": asdict(config), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join(["python", "benchmarks/pategan_audit.py", *argv_shown]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} at start, "
                   f"{args.jobs} worker processes",
        "variants": {}}
    if args.add and json_path.exists():
        earlier = json.loads(json_path.read_text())
        if earlier["config"] != json.loads(json.dumps(asdict(config))):
            p.error(f"--add: {json_path} was run with another configuration")
        report["variants"] = earlier["variants"]
        report["command"] = earlier["command"] + " ; then " + report["command"]
    for variant, runs in variants:
        v = run_variant(variant, runs, config, jobs=args.jobs, seed=args.seed)
        report["variants"][variant] = v
        a = v["audit"]
        print(f"{variant}: eps_lb {a['eps_lb']:.3f} (FP {a['fp']}/{a['n_out']}, FN {a['fn']}/{a['n_in']}, ceiling "
              f"{a['ceiling']:.2f}, mu_lb {a['mu_lb']:.2f}, AUC {a['auc']:.3f}) claim {config.epsilon:g}; "
              f"target share OUT {v['mean_score']['out']:.3f} IN {v['mean_score']['in']:.3f}; "
              f"{v['wall_seconds']:.0f} s", flush=True)
        report["wall_seconds"] = time.perf_counter() - t0
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=1))  # after every variant: a cut run keeps its results
        md_path.write_text(render(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
