"""Metrics on known answers: identical sets, closed-form Fréchet distances, the published N(0, I) density/coverage
example, the mode-collapse protocol, class histograms, feature specs and the Metric contract."""

from __future__ import annotations

import math

import pytest
import torch

from gantoolkit.builtin.metrics import distances
from gantoolkit.builtin.metrics.distances import expected_coverage, kth_neighbour_distances, prdc
from gantoolkit.builtin.metrics.features import InceptionFeatures, parse_features
from gantoolkit.builtin.metrics.fidelity import KernelDistance
from gantoolkit.builtin.metrics.labels import class_histogram_scores
from gantoolkit.builtin.metrics.mixture import mixture_scores
from gantoolkit.data import VECTOR, DataInfo, Dataset
from gantoolkit.errors import ConfigError
from gantoolkit.evaluation import EvalContext, Metric, MetricError, create_metrics, parse_metric_list, run_metrics


def vector_context(real: torch.Tensor, fake: torch.Tensor, **extra) -> EvalContext:
    """A context whose 'model' returns `fake` and whose data is `real` (raw features for vectors)."""
    info = DataInfo("test", VECTOR, (real.shape[1],), extra=extra)
    return EvalContext(Dataset(info, real), lambda n, seed: (fake[:n], None), n=len(fake))


def compute(names: str, ctx: EvalContext) -> dict:
    metrics = create_metrics(parse_metric_list(names))
    if "kid" in metrics:
        metrics["kid"] = KernelDistance(subsets=10, subset_size=500)  # the default 100 x 1,000 is slow for a test
    values, _ = run_metrics(ctx, metrics, explicit=True)
    return values


def gaussian(n: int, mean, std, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.tensor(mean) + torch.randn(n, len(mean), generator=g, dtype=torch.float64) * torch.tensor(std)


# -- Fréchet distance and KID ---------------------------------------------------------------------------------------


def test_identical_sets_give_precision_recall_one_and_fd_zero():
    x = gaussian(2000, [0.0, 0.0, 0.0], [1.0, 2.0, 0.5], seed=0).float()
    values = compute("fd,precision,recall,density,coverage", vector_context(x, x.clone()))
    assert values["precision"] == 1.0 and values["recall"] == 1.0 and values["coverage"] == 1.0
    assert abs(values["fd"]) < 1e-6
    assert values["density"] == pytest.approx(1.2, abs=0.05)  # each sample sits in its own ball and ~k others


def test_fd_of_two_gaussians_matches_the_closed_form():
    # N((0,0), diag(1, 1)) against N((1,2), diag(4, 0.25)): |mu1-mu2|^2 + sum (s1 - s2)^2 = 5 + 1 + 0.25
    real = gaussian(40_000, [0.0, 0.0], [1.0, 1.0], seed=1).float()
    fake = gaussian(40_000, [1.0, 2.0], [2.0, 0.5], seed=2).float()
    values = compute("fd", vector_context(real, fake))
    assert values["fd"] == pytest.approx(6.25, abs=0.1)


def test_fd_of_correlated_gaussians_matches_scipy_sqrtm():
    from scipy.linalg import sqrtm

    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(4, 4, generator=g, dtype=torch.float64), torch.randn(4, 4, generator=g, dtype=torch.float64)
    real = torch.randn(30_000, 4, generator=g, dtype=torch.float64) @ a.T
    fake = torch.randn(30_000, 4, generator=g, dtype=torch.float64) @ b.T + 0.5
    c1, c2 = torch.cov(real.T).numpy(), torch.cov(fake.T).numpy()
    mu = (real.mean(0) - fake.mean(0)).numpy()
    expected = float(mu @ mu + (c1 + c2 - 2 * sqrtm(c1 @ c2).real).trace())
    values = compute("fd", vector_context(real.float(), fake.float()))
    assert values["fd"] == pytest.approx(expected, rel=1e-3)


def test_kid_grows_with_the_gap_between_distributions():
    real = gaussian(3000, [0.0] * 8, [1.0] * 8, seed=4).float()
    near = gaussian(3000, [0.1] * 8, [1.0] * 8, seed=5).float()
    far = gaussian(3000, [1.0] * 8, [1.0] * 8, seed=6).float()
    same = compute("kid", vector_context(real, gaussian(3000, [0.0] * 8, [1.0] * 8, seed=7).float()))
    assert abs(same["kid"]) < 3 * same["kid_std"] + 1e-3
    assert compute("kid", vector_context(real, near))["kid"] < compute("kid", vector_context(real, far))["kid"]


# -- precision, recall, density, coverage ----------------------------------------------------------------------------


def test_prdc_reproduces_the_published_standard_normal_example():
    """clovaai/prdc README: 10,000 real and fake from N(0, I) in 1,000-D, k = 5 give precision 0.4772,
    recall 0.4705, density 1.0555, coverage 0.9735 ("may fluctuate"); E[coverage] = 1 - 1/2^k (Lemma 2)."""
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(10_000, 1000, generator=g), torch.randn(10_000, 1000, generator=g)
    out = prdc(real, fake, k_pr=5, k_dc=5)
    assert out["precision"] == pytest.approx(0.4772, abs=0.02)
    assert out["recall"] == pytest.approx(0.4705, abs=0.02)
    assert out["density"] == pytest.approx(1.0, abs=0.06)
    assert out["coverage"] == pytest.approx(expected_coverage(10_000, 10_000, 5), abs=0.01)
    assert expected_coverage(10_000, 10_000, 5) == pytest.approx(1 - 0.5**5, abs=1e-3)


def test_a_sample_on_a_balls_boundary_counts_as_inside_unlike_clovaai_prdc():
    """Reals at 0, 1, ..., 9 on a line: the real at 3 has its 5th neighbour 3 away (at 0), so samples at 0 lie
    exactly on its ball's boundary. The README says so: `<=`, where clovaai/prdc's `<` leaves them out."""
    real = torch.arange(10.0)[:, None]
    fake = torch.zeros(6, 1)  # duplicates of the real point 0
    values = prdc(real, fake, k_pr=3, k_dc=5)
    radii = kth_neighbour_distances(real, (5,))[5]
    d = (fake - real.T).abs()  # fakes x reals, exact on integers
    assert values["density"] == pytest.approx(float((d <= radii).sum()) / (5 * len(fake)))
    assert values["density"] > float((d < radii).sum()) / (5 * len(fake))  # prdc's strict < counts fewer
    assert values["coverage"] == pytest.approx(float((d.min(0).values <= radii).float().mean()))
    assert values["coverage"] > float((d.min(0).values < radii).float().mean())


def test_prdc_sees_mode_dropping_and_outliers():
    real = gaussian(2000, [0.0, 0.0], [1.0, 1.0], seed=8).float()
    half = real[real[:, 0] > 0]  # a generator that drops half the distribution
    values = prdc(real, half)
    assert values["precision"] > 0.95 and values["coverage"] < 0.6 and values["recall"] < 0.6
    outliers = torch.cat([real[:1000], real[:1000] + 20])
    values = prdc(real, outliers)
    assert values["precision"] == pytest.approx(0.5, abs=0.02) and values["density"] < 0.7


def test_chunked_distances_equal_one_block(monkeypatch):
    g = torch.Generator().manual_seed(9)
    real, fake = torch.randn(300, 5, generator=g), torch.randn(250, 5, generator=g) + 0.3
    whole = prdc(real, fake)
    radii = kth_neighbour_distances(real, (3, 5))
    monkeypatch.setattr(distances, "BLOCK_ENTRIES", 700)  # blocks of 2 rows
    assert prdc(real, fake) == pytest.approx(whole)
    chunked = kth_neighbour_distances(real, (3, 5))
    assert torch.allclose(chunked[3], radii[3]) and torch.allclose(chunked[5], radii[5])
    exact = torch.cdist(real.double(), real.double()).sort(dim=1).values[:, 5].float()
    assert torch.allclose(radii[5], exact, atol=1e-4)


# -- the mode-collapse protocol -------------------------------------------------------------------------------------


RING = [[math.cos(2 * math.pi * i / 8), math.sin(2 * math.pi * i / 8)] for i in range(8)]


def test_mixture_scores_on_known_answers():
    modes = torch.tensor(RING)
    perfect = modes.repeat(10, 1) + 0.02 * torch.tensor([1.0, 0.0])  # 0.02 < 3 std = 0.03 from every mode
    assert mixture_scores(perfect, modes, 0.01) == {"modes": 8, "hq": 1.0, "rkl": pytest.approx(0.0, abs=1e-12)}
    collapsed = torch.cat([modes[:1].repeat(90, 1), torch.zeros(10, 2)])  # one mode, 10% at the centre
    assert mixture_scores(collapsed, modes, 0.01) == {"modes": 1, "hq": 0.9, "rkl": pytest.approx(math.log(8))}
    two = torch.cat([modes[:1].repeat(30, 1), modes[1:2].repeat(10, 1)])
    p = torch.tensor([0.75, 0.25])
    assert mixture_scores(two, modes, 0.01)["rkl"] == pytest.approx(float((p * (p * 8).log()).sum()))
    nowhere = mixture_scores(torch.zeros(5, 2), modes, 0.01)
    assert nowhere["modes"] == 0 and nowhere["hq"] == 0.0 and math.isnan(nowhere["rkl"])


def test_mode_metrics_on_the_real_ring_and_undefined_rkl_is_null():
    from gantoolkit.builtin.datasets.toy import Mixture
    from gantoolkit.data import DataRequest

    ring = Mixture(5000).load(DataRequest(argument="ring"))
    values = compute("modes,hq,rkl", vector_context(ring.data, ring.data[:2500], **ring.info.extra))
    assert values["modes"] == 8 and values["hq"] > 0.98 and values["rkl"] < 0.01  # 1 - exp(-9/2) = 98.9%
    far = compute("rkl", vector_context(ring.data, torch.full((10, 2), 5.0), **ring.info.extra))
    assert far == {"rkl": None}


def test_class_histogram_scores():
    even = class_histogram_scores(torch.arange(100) % 10, 10)
    assert even == {"classes": 10, "class_kl": pytest.approx(0.0, abs=1e-12)}
    one = class_histogram_scores(torch.full((50,), 3), 10)
    assert one == {"classes": 1, "class_kl": pytest.approx(math.log(10))}


# -- the contract and its errors ------------------------------------------------------------------------------------


def test_metrics_that_do_not_apply_are_skipped_or_refused():
    x = torch.randn(50, 2)
    ctx = vector_context(x, x)
    values, skipped = run_metrics(ctx, create_metrics(None), explicit=False)
    assert {"fd", "precision", "coverage"} <= set(values)
    assert {"modes", "nn", "cond-acc"} <= set(skipped) and "it needs images" in skipped["nn"]
    with pytest.raises(MetricError, match="metric 'modes' does not apply: it needs a 2-D Gaussian mixture"):
        compute("modes", ctx)
    with pytest.raises(ConfigError, match=r"unknown metric 'precison'.*'precision'"):
        create_metrics(parse_metric_list("precison"))
    assert parse_metric_list("cond_acc, fd,fd") == ["cond-acc", "fd"]


def test_every_registered_metric_builds_a_metric_with_keys():
    for name, metric in create_metrics(None).items():
        assert isinstance(metric, Metric) and metric.keys, name


@pytest.mark.parametrize("spec, message", [
    ("incepton:x", "unknown --features"),
    ("raw:x", "takes no path"),
    ("inception", "needs a local weights file"),
    ("classifier:/no/such/file.safetensors", "is not a file"),
])
def test_bad_feature_specs_are_one_clear_error(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_features(spec)


def test_inception_features_from_a_local_file(tmp_path):
    from safetensors.torch import save_file
    from torchvision.models import inception_v3

    net = inception_v3(weights=None, aux_logits=True, init_weights=False)
    path = tmp_path / "inception.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    spec = parse_features(f"inception:{path}")
    extractor = InceptionFeatures(spec.path).eval()
    features = extractor.extract(torch.rand(2, 1, 8, 8) * 2 - 1, torch.device("cpu"))
    assert features.shape == (2, 2048) and torch.isfinite(features).all()
    wrong = tmp_path / "wrong.safetensors"
    save_file({"weight": torch.zeros(3)}, str(wrong))
    with pytest.raises(ConfigError, match="does not hold torchvision Inception-v3 weights"):
        InceptionFeatures(wrong)


def test_rejection_sampling_with_an_exact_log_ratio_recovers_the_target():
    """Draws from N(0, 1) kept with probability exp(log N(x; 1, 0.5²)/N(x; 0, 1) − M) follow N(1, 0.5²)."""
    from gantoolkit.sampling.drs import rejection_sample

    def draw(k, round_):
        return torch.randn(k, 1, generator=torch.Generator().manual_seed(round_)), None

    def log_ratio(x, labels):
        x = x[:, 0].double()
        return (-0.5 * ((x - 1) / 0.5) ** 2 - math.log(0.5) + 0.5 * x**2).float()

    samples, labels, drawn, _ = rejection_sample(draw, log_ratio, 20_000, -math.inf, seed=0)
    assert samples.shape == (20_000, 1) and labels is None and drawn > 20_000
    assert float(samples.mean()) == pytest.approx(1.0, abs=0.02)
    assert float(samples.std()) == pytest.approx(0.5, abs=0.02)
    # the acceptance rate n / drawn is 1 / exp(sup of the log ratio), about 0.257
    sup = float(log_ratio(torch.linspace(-3, 5, 80_001)[:, None], None).max())
    assert 20_000 / drawn == pytest.approx(math.exp(-sup), rel=0.03)
    _, _, everything, _ = rejection_sample(draw, lambda x, labels: torch.zeros(len(x)), 100, 0.0, seed=0)
    assert everything == 100  # a critic that keeps all: 100 drawn for 100 kept, however many a chunk holds
    again = rejection_sample(draw, log_ratio, 20_000, -math.inf, seed=0)[0]
    assert torch.equal(samples, again)


def test_latent_ascent_follows_the_gradient_exactly():
    """On −|z − c|² each step of size η shrinks z − c by 1 − 2η: after k steps z = c + (1 − 2η)^k (z₀ − c)."""
    from gantoolkit.sampling.refine import ascend

    z0, c = torch.randn(6, 3, generator=torch.Generator().manual_seed(0)), torch.tensor([1.0, -2.0, 0.5])
    moved = ascend(z0, lambda z: -((z - c) ** 2).sum(1), steps=4, rate=0.1)
    assert torch.allclose(moved, c + 0.8**4 * (z0 - c), atol=1e-6)
    assert not moved.requires_grad


def test_nearest_training_images_are_found_block_by_block(monkeypatch):
    from gantoolkit.builtin.metrics import nearest
    from gantoolkit.builtin.metrics.nearest import nearest_neighbours

    g = torch.Generator().manual_seed(0)
    train, queries = torch.randn(500, 7, generator=g), torch.randn(40, 7, generator=g)
    exact = torch.cdist(queries, train).topk(5, largest=False)
    monkeypatch.setattr(nearest, "BLOCK_ENTRIES", 300)  # blocks of 6 training rows
    dist, index = nearest_neighbours(queries, lambda a, b: train[a:b], len(train), 5)
    assert torch.allclose(dist, exact.values, atol=1e-4) and torch.equal(index, exact.indices)
    probe = torch.tensor([3, 10, 499])
    dist, index = nearest_neighbours(train[probe], lambda a, b: train[a:b], len(train), 1, exclude=probe)
    others = torch.cdist(train[probe], train)
    others[torch.arange(3), probe] = math.inf  # a training image is not its own neighbour
    assert torch.equal(index[:, 0], others.argmin(1)) and torch.allclose(dist[:, 0], others.min(1).values, atol=1e-4)
