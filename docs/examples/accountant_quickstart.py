"""What does a DP-SGD run cost, and how much noise does a target need?

Run:  python docs/examples/accountant_quickstart.py
"""

from accountant import (
    ExponentialMechanismEvent,
    GaussianEvent,
    PoissonSubsampledGaussianEvent,
    RDPAccountant,
    RenyiFilter,
    calibrate_dpsgd_noise,
)

DELTA = 1e-6

# 1. A DP-SGD run: 30 epochs at batch 256 of 48,842 records (Poisson sampling).
q = 256 / 48_842
steps = 30 * round(1 / q)
run = PoissonSubsampledGaussianEvent(sampling_rate=q, noise_multiplier=1.1, steps=steps)
eps, order = RDPAccountant().compose(run).get_epsilon_and_order(DELTA)
print(f"DP-SGD, q={q:.5f}, sigma=1.1, {steps} steps: epsilon = {eps:.4f} at delta={DELTA:g} (order {order})")

# 2. The noise multiplier that makes the same plan (1.0, 1e-6)-DP; it never overshoots.
sigma = calibrate_dpsgd_noise(1.0, DELTA, q, steps)
check = RDPAccountant().compose(PoissonSubsampledGaussianEvent(q, sigma, steps)).get_epsilon(DELTA)
print(f"noise multiplier for epsilon=1: {sigma:.6f} (gives epsilon = {check:.9f})")

# 3. A marginal-based run: 1-way marginals, a selection, 2-way marginals (MST-like).
mst = RDPAccountant()
mst.compose(GaussianEvent(20.0), count=15).compose(ExponentialMechanismEvent(0.05), count=14)
mst.compose(GaussianEvent(20.0), count=14)
print(f"MST-like run: rho = {mst.rho:.6f}, epsilon = {mst.get_epsilon(DELTA):.4f}")

# 4. The gate's filter for a policy of (3, 1e-6): fixed order, budget, what remains.
f = RenyiFilter(3.0, DELTA)
spent = [f.cost(run)]
print(f"filter order {f.order:.3f}, budget {f.budget:.4f}; after the DP-SGD run: "
      f"epsilon spent {f.epsilon_spent(spent):.4f}, zCDP rho left {f.remaining_rho(spent):.5f}")
