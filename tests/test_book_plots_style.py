"""focal.book.plots.style: one colour per loss label, the theme applied once, new figures kept out of pyplot."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from focal.book.labels import LOSS_LABELS  # noqa: E402
from focal.book.plots.style import figure_axes, loss_palette, new_figure, set_style  # noqa: E402


def test_loss_palette_is_fixed_per_label():
    pal = loss_palette(list(reversed(LOSS_LABELS)) + ["new loss"])
    again = loss_palette(LOSS_LABELS)
    assert all(pal[lab] == again[lab] for lab in LOSS_LABELS)
    assert len(set(pal.values())) == len(pal)  # distinct colours


def test_set_style_applies_once_unless_forced(monkeypatch):
    set_style(force=True)
    calls = []
    monkeypatch.setattr(sns, "set_theme", lambda **kw: calls.append(kw))
    set_style()
    set_style()
    assert calls == []
    set_style(force=True)
    assert len(calls) == 1


def test_new_figures_are_not_registered_with_pyplot():
    before = plt.get_fignums()
    fig, axes = new_figure(3, 2, width=2.0, height=1.0)
    assert axes.shape == (2, 3) and fig.get_size_inches().tolist() == [6.0, 2.0]
    ax = axes[0, 0]
    assert figure_axes(ax) == (fig, ax)
    assert plt.get_fignums() == before
