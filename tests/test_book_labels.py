"""focal.book.labels: one name and one order for every loss setting."""
import pytest

from focal.book.labels import LOSS_LABELS, LOSS_SETTINGS, book_order, loss_label
from focal.engine.config import LOSSES


def test_loss_labels():
    assert LOSS_LABELS == ("CE", "focal γ=0.5", "focal γ=1", "focal γ=2", "focal γ=3", "FLSD-53", "CB focal γ=1",
                           "sigmoid focal γ=1")
    assert loss_label("ce", 2.0) == "CE" and loss_label("focal-flsd53", 1.0) == "FLSD-53"
    with pytest.raises(ValueError, match="loss must be one of"):
        loss_label("mse")


def test_every_engine_loss_has_a_label_and_settings_are_labelled_uniquely():
    assert {loss_label(loss, 1.0) for loss in LOSSES} <= set(LOSS_LABELS) | {loss_label("focal", 1.0)}
    assert len(set(LOSS_LABELS)) == len(LOSS_LABELS)
    assert [loss_label(*s) for s in LOSS_SETTINGS] == list(LOSS_LABELS[:len(LOSS_SETTINGS)])


def test_book_order_puts_known_labels_first_in_the_book_order():
    assert book_order(["mine", "CB focal γ=1", "CE", "other", "CE"]) == ["CE", "CB focal γ=1", "mine", "other"]
