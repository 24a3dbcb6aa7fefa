"""A classes file with classes that no video of the list uses is used, with a warning."""

from __future__ import annotations

import logging

from octvideo.data import load_annotations


def test_a_classes_file_of_another_dataset_is_named_in_a_warning(tmp_path, caplog):
    (tmp_path / "train.txt").write_text("a.mp4 0\nb.mp4 1\n")
    classes = tmp_path / "classes.txt"
    classes.write_text("jump\nwalk\nabseiling\nzumba\nyoga\n")
    with caplog.at_level(logging.WARNING, logger="octvideo.data.annotations"):
        found = load_annotations(tmp_path / "train.txt", classes_file=classes)
    assert found.classes == ["jump", "walk", "abseiling", "zumba", "yoga"]
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert str(classes) in message and "3 of its 5 classes" in message
    assert "'abseiling', 'zumba', 'yoga'" in message


def test_no_warning_when_every_class_is_used_or_the_classes_come_from_training(tmp_path, caplog):
    (tmp_path / "train.txt").write_text("a.mp4 0\nb.mp4 1\n")
    (tmp_path / "val.txt").write_text("c.mp4 1\n")
    classes = tmp_path / "classes.txt"
    classes.write_text("jump\nwalk\n")
    with caplog.at_level(logging.WARNING, logger="octvideo.data.annotations"):
        train = load_annotations(tmp_path / "train.txt", classes_file=classes)
        # a validation list needs not hold every class of the training list
        load_annotations(tmp_path / "val.txt", classes_file=classes, classes=train.classes)
        # a classes file written from the list itself
        load_annotations(tmp_path / "train.txt", classes_file=tmp_path / "new.txt")
    assert not caplog.records
