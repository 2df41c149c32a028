"""Claim 14 (beyond the seeds): how close do SGD variants come to a real Bayesian posterior?

Linear regression on scikit-learn's diabetes data (standardised). With a flat prior and Gaussian
noise of variance s² (the least-squares residual variance), the posterior is exactly
``N(θ*, T_post H⁻¹)`` with ``T_post = s²/N`` and ``H = XᵀX/N`` (our loss is the mean ½ r²). For
each run and for its iterate averages over windows of ``W = N/B`` steps the exact stationary law
(discrete Lyapunov; window means from the joint recursion) and the measured law (sample mean and
covariance, bootstrap SE over chains) are compared with the posterior by
``KL(q ‖ p) = ½[tr(Σ_p⁻¹Σ_q) + (μ_p − μ_q)ᵀΣ_p⁻¹(μ_p − μ_q) − D + ln(det Σ_p/det Σ_q)]``.

Reference rates: Mandt, Hoffman & Blei (2017) minimise this KL over a scalar rate for the
first-order (continuous-time, OU) law, ``η* = 2 B D T_post / tr Σ_1(θ*)``; with the exact discrete
law the KL-optimal scalar rate is smaller (diabetes, B = 32: KL 4.39 at η = 0.10, 4.24 at 0.13,
4.54 at Mandt's 0.162, 5.42 at 0.20), and is reported beside Mandt's (``exact_optimal_rate``).
η'/σ² preconditioning puts every coordinate at ``T_post`` with ``η' = 2 B T_post``.

The plug-in KL of an estimated covariance is biased up by about ``D(D+1)/(4n)`` for n independent
draws; draws of a chain are not independent, so n is the effective sample size of the second
moments, ``C·n/τ̄`` with τ̄ the mean integrated time of the squared centred coordinates.
Averaging over W = N/B steps targets ``(1/W) H⁻¹ C H⁻¹ = T_post H⁻¹`` whenever ``C = s² H/B``.
"""

from __future__ import annotations

import numpy as np

from ...sampler.models import Model
from ..diagnostics.estimators import integrated_time
from ..record import RunAnalysis
from ..theory.linear import stationary_theory
from .common import FAILS, HOLDS, Z_MAX, ClaimResult, data, fmt, theory


def exact_optimal_rate(run: RunAnalysis, mp: np.ndarray, sp: np.ndarray) -> tuple[float, float]:
    """The SGD rate minimising KL(exact discrete law ‖ posterior), and that KL.

    Searched over ``(0.01·η, 2/h_max)`` by bounded scalar minimisation in ``log η``; NaN when the
    run has no exact law.
    """
    base = theory(run)
    h = run.model.exact_hessian()
    if base is None or not base.exact or h is None:
        return float("nan"), float("nan")
    lr = run.spec.rule.param("lr")  # the caller passes an SGD run
    top = 2.0 / float(np.linalg.eigvalsh(h).max()) / lr  # stability limit as a factor

    def kl_at(log_factor: float) -> float:
        th = theory(run, float(np.exp(log_factor)))
        return kl_gauss(th.mean, th.cov, mp, sp) if th is not None else 1e300

    import scipy.optimize  # only for this claim (0.2 s of imports)

    res = scipy.optimize.minimize_scalar(kl_at, bounds=(np.log(0.01), np.log(0.999 * top)),
                                         method="bounded", options={"xatol": 1e-4})
    return lr * float(np.exp(res.x)), float(res.fun)


def effective_draws(samples: np.ndarray) -> float:
    """``C·n/τ̄`` with τ̄ the mean IAT of the squared centred coordinates of ``[C, n, D]``."""
    x = samples - samples.mean(axis=(0, 1))
    if samples.shape[1] < 4:
        return float(samples.shape[0] * samples.shape[1])
    tau = float(np.mean(np.maximum(integrated_time(x**2), 1e-3)))
    return samples.shape[0] * samples.shape[1] / max(tau, 1.0)


def posterior(run: RunAnalysis) -> tuple[np.ndarray, np.ndarray, float]:
    """Posterior mean, covariance and T_post = s²/N for the run's data."""
    x, y = data(run)
    n, d = x.shape
    theta = np.linalg.lstsq(x, y, rcond=None)[0]
    s2 = float(((x @ theta - y) ** 2).sum() / (n - d))
    t_post = s2 / n
    return theta, t_post * np.linalg.inv(x.T @ x / n), t_post


def optimal_rate_matrix(model: Model, batch_size: int, t_post: float) -> np.ndarray:
    """Mandt's discrete-exact rate matrix ``Λ* = 2T(T·H + C̄(T·H⁻¹))⁻¹`` (``rules.matrix``).

    With it the exact stationary law of SGD ``θ' = θ − Λg_B`` is ``N(θ*, T·H⁻¹)``: for least
    squares C̄ is the minibatch noise covariance at the posterior's second moment, which closes
    (``sampler.linear_forms``), so the fixed point of the stationary equations is the posterior.
    """
    form = model.linear_gradient(batch_size, "iid")
    if form is None:
        raise ValueError("model.kind: the optimal rate matrix needs a linear-gradient model")
    dense = form.dense()
    h = np.asarray(dense.hessian)
    c_bar = dense.noise_cov(t_post * np.linalg.inv(h))
    lam = 2 * t_post * np.linalg.inv(t_post * h + c_bar)
    return 0.5 * (lam + lam.T)


def kl_gauss(mq: np.ndarray, sq: np.ndarray, mp: np.ndarray, sp: np.ndarray) -> float:
    """KL(N(mq, sq) ‖ N(mp, sp))."""
    inv = np.linalg.inv(sp)
    dm = mp - mq
    return 0.5 * float(np.trace(inv @ sq) + dm @ inv @ dm - len(mq)
                       + np.linalg.slogdet(sp)[1] - np.linalg.slogdet(sq)[1])


def window_cov(a: np.ndarray, sz: np.ndarray, d: int, w: int) -> np.ndarray:
    """Exact covariance of the mean of W consecutive states of ``z' = Az + noise``."""
    acc, power = np.zeros_like(sz), np.eye(len(a))
    for k in range(1, w):
        power = power @ a
        acc += (1 - k / w) * (power @ sz)
    full = (sz + acc + acc.T) / w
    return full[:d, :d]


def _measured_kl(samples: np.ndarray, mp: np.ndarray, sp: np.ndarray,
                 rng: np.random.Generator) -> tuple[float, float]:
    flat = samples.reshape(-1, samples.shape[-1])
    kl = kl_gauss(flat.mean(0), np.cov(flat, rowvar=False), mp, sp)
    boots = []
    for _ in range(40):
        pick = samples[rng.integers(0, samples.shape[0], samples.shape[0])]
        f = pick.reshape(-1, samples.shape[-1])
        boots.append(kl_gauss(f.mean(0), np.cov(f, rowvar=False), mp, sp))
    return kl, float(np.std(boots, ddof=1))


def posterior_claim(runs: list[RunAnalysis]) -> ClaimResult:
    """KL to the exact posterior of each run's iterates and of their window averages."""
    rng = np.random.default_rng(0)
    rows, zs, numbers = [], [], []
    for run in runs:
        mp, sp, t_post = posterior(run)
        d = len(mp)
        theta = np.asarray(run.posterior()["theta"].values)[~run.diverged_chains()]
        th = stationary_theory(run.model, run.rule, run.spec.run)
        thin, n_ex, b = run.spec.run.thin, run.model.n_examples, run.spec.run.batch_size
        w = max(1, round(n_ex / b / thin))  # window in draws
        kinds = [("iterates", theta, th.cov if th else None)]
        n_win = theta.shape[1] // w
        means = theta[:, : n_win * w].reshape(theta.shape[0], n_win, w, d).mean(axis=2)
        window = None
        if th is not None and th.transition is not None and th.state_cov is not None:
            a_t = np.linalg.matrix_power(th.transition, thin)
            window = window_cov(a_t, th.state_cov, d, w)
        kinds.append((f"averages over W = {w * thin} steps", means, window))
        for kind, samples, cov in kinds:
            kl, kl_se = _measured_kl(samples, mp, sp, rng)
            exact = kl_gauss(th.mean, cov, mp, sp) if (th is not None and cov is not None) \
                else float("nan")
            bias = d * (d + 1) / (4 * effective_draws(samples))  # plug-in bias at the ESS
            z = (kl - bias - exact) / kl_se if np.isfinite(exact) else float("nan")
            if np.isfinite(z) and th is not None and th.exact:
                zs.append(z)  # approximate theories (adaptive rates) are shown, not tested
            spread = np.trace(np.cov(samples.reshape(-1, d), rowvar=False)) / np.trace(sp)
            label = fmt(exact) + ("" if th is None or th.exact else " (approx.)")
            rows.append([run.label, kind, fmt(kl, kl_se), label if np.isfinite(exact)
                         else "–", f"{z:+.1f}" if np.isfinite(z) else "–", f"{spread:.3g}"])
            numbers.append({"run": run.index, "rule": run.spec.rule.kind,
                            "name": f"{run.spec.rule.kind} η = {run.spec.rule.param('lr'):g}",
                            "kind": kind,
                            "kl": kl, "kl_se": kl_se, "exact": exact})
    verdict = HOLDS if zs and all(abs(z) < Z_MAX for z in zs) else FAILS
    mp, sp, t_post = posterior(runs[0])
    sgd_run = next((r for r in runs if r.spec.rule.kind == "sgd"), None)
    x, y = data(runs[0])
    resid = x * (x @ mp - y)[:, None]
    b0 = runs[0].spec.run.batch_size
    mandt = 2 * b0 * len(mp) * t_post / float(np.trace(np.cov(resid, rowvar=False)))
    best, best_kl = exact_optimal_rate(sgd_run, mp, sp) if sgd_run else (np.nan, np.nan)
    rates = (f" Among scalar SGD rates the exact discrete law is closest to the posterior at "
             f"η = {best:.3g} (KL {best_kl:.3g}); Mandt's first-order optimum is η* = "
             f"{mandt:.3g}." if np.isfinite(best) else "")
    matrix_runs = [n for n in numbers if n["rule"] == "matrix" and n["kind"] == "iterates"]
    if matrix_runs:
        rates += (f" The full preconditioner at the discrete-exact Λ* = 2T(T·H + C̄)⁻¹ has exact "
                  f"KL {matrix_runs[0]['exact']:.2g} (its stationary law is the posterior) and "
                  f"measures {matrix_runs[0]['kl']:.3g} ± {matrix_runs[0]['kl_se']:.2g} before "
                  "the plug-in bias correction.")
    ranked = sorted(numbers, key=lambda n: n["kl"])
    ranking = " < ".join(f"{n['name']} {n['kind']} ({n['kl']:.3g})" for n in ranked)
    return ClaimResult(
        "posterior", "Constant SGD over η, η'/σ², the full preconditioner Λ* and iterate "
        "averaging against an exact posterior (diabetes)",
        "beyond the seeds (Mandt, Hoffman & Blei 2017)",
        "KL(stationary law ‖ posterior) from the exact discrete law; Mandt's η* minimises it "
        "among scalar rates to first order", verdict,
        (f"Measured KLs agree with the exact discrete laws where those are exact "
         f"(bias-corrected, |z| < {Z_MAX:g}). Ranking by measured KL: {ranking}. With "
         "C ≈ s²H/B the first-order SGD covariance solves HΣ + ΣH = ηC, i.e. Σ ≈ ηs²/(2B)·I: "
         "isotropic, while the posterior is T_post·H⁻¹, so on ill-conditioned data no scalar "
         "rate matches it (last column: total variance relative to the posterior's). "
         "Averaging reshapes the law towards H⁻¹C H⁻¹ ∝ H⁻¹ only for windows much longer "
         "than the slowest autocorrelation time." + rates)
        if verdict == HOLDS else "Some measured KL disagrees with its exact law." + rates,
        ["run", "law", "KL measured (bootstrap SE)", "KL exact", "z",
         "tr Σ / tr Σ_post"], rows,
        {"runs": numbers, "closest": ranked[0], "mandt_rate": mandt,
         "exact_optimal_rate": best, "exact_optimal_kl": best_kl})
