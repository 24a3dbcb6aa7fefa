"""``ShareSampler``: the test views split into contiguous shares, each view on one rank once, so
a clip's crops stay on one rank and are decoded once."""

from __future__ import annotations

import shutil

import pytest
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler

from octvideo.data import VideoDataModule
from octvideo.data import datamodule as datamodule_module
from octvideo.data.datamodule import ShareSampler
from octvideo.errors import UsageError
from tests.data.media_helpers import small_config


class Views:
    """Test views of ``videos`` videos x ``clips`` clips x ``crops`` crops, in the dataset's
    order (``VideoDataset._eval_item``)."""

    def __init__(self, videos: int, clips: int, crops: int) -> None:
        self.clips, self.crops = clips, crops
        self.size = videos * clips * crops

    def __len__(self) -> int:
        return self.size

    def clip_of(self, index: int) -> tuple[int, int]:
        video, view = divmod(index, self.clips * self.crops)
        return video, view // self.crops


@pytest.mark.parametrize("world", [1, 2, 3, 8])
@pytest.mark.parametrize("videos", [1, 7, 20])
def test_shares_cover_every_view_once_and_keep_clips_together(world, videos):
    views = Views(videos, clips=10, crops=3)
    shares = [list(ShareSampler(views, world, rank)) for rank in range(world)]
    assert [len(ShareSampler(views, world, rank)) for rank in range(world)] == list(
        map(len, shares)
    )
    assert sorted(i for share in shares for i in share) == list(range(len(views)))
    # decodes: one per clip per rank that holds any of its crops; a share boundary can split
    # at most one clip
    decodes = sum(len({views.clip_of(i) for i in share}) for share in shares)
    assert decodes <= videos * 10 + world - 1
    if world > 1:  # the round-robin deal decoded each clip on up to 3 ranks
        dealt = [
            list(UnrepeatedDistributedSampler(views, num_replicas=world, rank=r, shuffle=False))
            for r in range(world)
        ]
        assert sum(len({views.clip_of(i) for i in share}) for share in dealt) > decodes


def test_fewer_views_than_processes_is_refused():
    with pytest.raises(UsageError) as err:
        ShareSampler(Views(1, clips=2, crops=1), 4, 0)
    assert str(err.value) == (
        "data: 2 test views for 4 processes; evaluate with at most 2 processes (trainer.devices "
        "x trainer.num_nodes), or list more videos"
    )


def test_fewer_validation_videos_than_processes_is_refused(tmp_path, media, monkeypatch):
    # Lightning's sampler asserted; a rank without a video would not join the metrics' sync
    for i in range(2):
        (tmp_path / "val" / "jump").mkdir(parents=True, exist_ok=True)
        shutil.copy(media["h264.mp4"], tmp_path / "val" / "jump" / f"{i}.mp4")
    monkeypatch.setattr(datamodule_module, "_world", lambda: (4, 1))
    dm = VideoDataModule(small_config(val_list=str(tmp_path / "val")))
    with pytest.raises(UsageError, match="data: 2 validation videos for 4 processes; evaluate"):
        dm.val_dataloader()
