"""focal.book.claims (chapter 6's verdicts on paired differences) and the published numbers they are held against."""
import numpy as np
import pandas as pd
import pytest

from focal.book import claims, published

SEEDS = range(5)


def _runs(ce, focal, column="top1_error", **extra):
    rows = [dict(loss=lab, seed=s, **{column: v}, **extra) for lab, vals in (("CE", ce), ("focal γ=1", focal))
            for s, v in zip(SEEDS, vals)]
    return pd.DataFrame(rows)


CE = (30.0, 31.0, 29.0, 30.5, 29.5)


@pytest.mark.parametrize("delta, noise, verdict", [
    (0.1, 0.1, "reproduced"),  # interval well inside ±1
    (0.1, 1.5, "inconclusive"),  # no significant difference, but the interval is wider than the margin
    (3.0, 0.2, "contradicted"),  # surely more than a point worse
    (-3.0, 0.2, "contradicted"),  # surely more than a point better: also not "about as accurate"
])
def test_claim_accuracy_is_an_equivalence_test(delta, noise, verdict):
    jitter = noise * np.array([1.0, -1.0, 0.5, -0.5, 0.0])
    e = claims.claim_accuracy(_runs(CE, np.array(CE) + delta + jitter), "cpu")
    assert e["verdict"] == verdict
    d = e["numbers"]["diff"]
    assert d.mean == pytest.approx(delta) and d.n == 5
    assert f"{d.mean:+.2f}" in e["evidence"] and "±1" in e["rule"]


def test_claim_accuracy_smoke_and_one_seed_are_inconclusive():
    focal = np.array(CE) + 5
    assert claims.claim_accuracy(_runs(CE, focal), "smoke")["verdict"] == "inconclusive"
    one = _runs(CE[:1], focal[:1])
    e = claims.claim_accuracy(one, "cpu")
    assert e["verdict"] == "inconclusive" and "one seed" in e["reason"]


def test_claim_accuracy_pairs_by_seed():
    runs = _runs(CE, np.array(CE) + 0.2 + np.array([0.02, -0.02, 0.0, 0.01, -0.01]))
    shuffled = runs.sample(frac=1.0, random_state=0)
    a, b = (claims.claim_accuracy(r, "cpu")["numbers"]["diff"] for r in (runs, shuffled))
    assert (a.low, a.high) == pytest.approx((b.low, b.high)) and a.high - a.low < 0.1


def _groups(ce_tail, focal_tail, cb_tail, cb_head=80.0, tail="tail", head="head"):
    rows = []
    for lab, tail_vals, head_val in (("CE", ce_tail, 90.0), ("focal γ=1", focal_tail, 90.0),
                                     ("CB focal γ=1", cb_tail, cb_head)):
        for s, v in zip(SEEDS, tail_vals):
            rows.append(dict(loss=lab, seed=s, group=tail, accuracy=v))
            rows.append(dict(loss=lab, seed=s, group=head, accuracy=head_val + 0.1 * s + 0.05 * (s % 2) * len(lab)))
    return pd.DataFrame(rows)


TAIL = np.array([40.0, 42.0, 41.0, 39.0, 43.0])


def test_claim_tail_focal_and_cb():
    g = _groups(TAIL, TAIL + 0.3 + np.array([0.1, -0.1, 0.0, 0.05, -0.05]), TAIL + 10 + np.array([0.5, -0.5, 0.2, 0.0, -0.2]))
    focal = claims.claim_tail_focal(g, "cpu")
    assert focal["verdict"] == "reproduced" and focal["numbers"]["tail_group"] == "tail"
    cb = claims.claim_tail_cb(g, "cpu")
    assert cb["verdict"] == "reproduced"
    assert cb["numbers"]["head_cost"].mean == pytest.approx(-10.0, abs=0.2)  # what it costs the head is reported
    assert "head-group accuracy" in cb["evidence"]


def test_claim_tail_cb_lowering_the_tail_is_contradicted():
    g = _groups(TAIL, TAIL, TAIL - 8 + np.array([0.5, -0.5, 0.2, 0.0, -0.2]))
    assert claims.claim_tail_cb(g, "cpu")["verdict"] == "contradicted"


def test_claim_tail_uses_the_few_shot_group_when_present():
    g = _groups(TAIL, TAIL + 0.3, TAIL + 10, tail="few", head="many")
    assert claims.claim_tail_focal(g, "cpu")["numbers"]["tail_group"] == "few"
    assert claims.claim_tail_cb(g, "cpu")["numbers"]["head_group"] == "many"


def _calib(ce, focal, label="FLSD-53"):
    return pd.DataFrame([dict(loss=lab, seed=s, metric="ECE", stage="before T", value=v)
                         for lab, vals in (("CE", ce), (label, focal)) for s, v in zip(SEEDS, vals)])


ECE_CE = np.array([4.0, 4.4, 3.8, 4.1, 4.2])


@pytest.mark.parametrize("shift, verdict", [(-2.0, "reproduced"), (2.0, "contradicted"), (0.0, "inconclusive")])
def test_claim_calibration_directional(shift, verdict):
    noise = np.array([0.3, -0.3, 0.1, -0.1, 0.0])
    e = claims.claim_calibration(_calib(ECE_CE, ECE_CE + shift + noise), "cpu")
    assert e["verdict"] == verdict
    if verdict == "contradicted":  # significantly worse is said as such, not as "does not lower"
        assert "significantly worse" in e["reason"]
    assert "Mukhoti" in e["published"] and "1.55" in e["published"]


def test_claim_calibration_for_focal_gamma_3():
    e = claims.claim_calibration(_calib(ECE_CE, ECE_CE - 1, "focal γ=3"), "cpu", focal="focal γ=3", number="3b")
    assert e["claim"].startswith("3b. focal γ=3") and "1.48" in e["published"]


def test_claim_temperature_compares_distance_from_one():
    temps = pd.DataFrame([dict(loss=lab, seed=s, temperature=t * (1 + 0.01 * s * (lab == "CE")))
                          for lab, t in (("CE", 2.0), ("FLSD-53", 1.1)) for s in SEEDS])
    assert claims.claim_temperature(temps, "cpu")["verdict"] == "reproduced"
    jitter = 1 + 0.01 * temps["seed"].to_numpy()
    under = temps.assign(temperature=np.where(temps["loss"] == "CE", 1.1 * jitter, 0.3))  # far below 1 is not closer
    assert claims.claim_temperature(under, "cpu")["verdict"] == "contradicted"


def test_claims_name_a_missing_loss():
    with pytest.raises(ValueError, match="no rows for loss 'focal γ=1'"):
        claims.claim_accuracy(_runs(CE, CE).query("loss != 'focal γ=1'"), "cpu")


def test_verdict_table_keeps_every_cell_whole():
    e = claims.claim_accuracy(_runs(CE, np.array(CE) + 0.1 + np.array([0.05, -0.05, 0.0, 0.02, -0.02])), "cpu")
    table = claims.verdict_table([e])
    assert table.loc[0, "verdict"].startswith("reproduced: ") and table.loc[0, "claim"] == e["claim"]
    assert table.loc[0, "our evidence (mean difference [95 % CI])"] == e["evidence"]


def test_published_gaps_count_each_source_once():
    rows = published.focal_minus_ce()
    sources = {(r["source"], r["lt_profile"]) for r in rows}
    assert ("Cao et al. 2019, Table 2", "exp") not in sources  # reprints of Cui et al. are not a second source
    for ds in ("cifar10-lt", "cifar100-lt"):  # ... and they really are reprints
        for imb in (100, 10):
            cao = published.CAO2019_TOP1_ERROR[(ds, "exp")]
            cui = published.CUI2019_TOP1_ERROR[ds]
            assert abs(cao["Focal"][imb] - cui["Focal (γ=1)"][imb]) < 0.015
            assert abs(cao["ERM (CE)"][imb] - cui["Softmax CE"][imb]) < 0.015
    g = claims.published_gaps()
    assert (g["low"], g["high"]) == ("-1.90", "+1.17")
    assert "+0.02" not in g["at_100"] and "-0.02 (CIFAR-10-LT)" in g["at_100"]
