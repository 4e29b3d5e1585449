"""Tilings and launch shapes of the Triton kernels (plain arithmetic, no kernel runs)."""
import pytest
import torch

from imbfocal.kernels import common
from imbfocal.kernels.common import LaunchShape, Tiling, launch_shape


def test_tiling_parse_and_str():
    assert Tiling.parse('2048x4') == Tiling(2048, 4, Tiling().row_tiles)
    assert Tiling.parse('512X2x64') == Tiling(512, 2, 64)
    assert str(Tiling(1024, 4, 32)) == '1024x4x32'
    assert Tiling.parse(str(common.DEFAULT_TILING)) == common.DEFAULT_TILING


@pytest.mark.parametrize('text', ['1000x4', '1024x3', '1024x4x0', '1024', 'ax4', '1x2x4x8'])
def test_tiling_parse_rejects(text):
    with pytest.raises(ValueError, match='ELEMENTSxWARPS'):
        Tiling.parse(text)


def test_use_tiling_restores_on_error():
    with pytest.raises(KeyError):
        with common.use_tiling(Tiling(512, 2, 2)):
            assert common.current_tiling() == Tiling(512, 2, 2)
            raise KeyError
    assert common.current_tiling() == common.DEFAULT_TILING


def _shape(n, c, sms, monkeypatch):
    monkeypatch.setattr(common, 'multiprocessor_count', lambda device: sms)
    return launch_shape(torch.empty(n, c))


def test_cpu_takes_every_row_tile_allowed(monkeypatch):
    """37 x 300 at 512 elements: 4 x 128 tiles, cdiv(37, 4) = 10 row tiles, 3 column tiles;
    no SMs, so one program takes all 10 (fewer than the 64 allowed)."""
    assert _shape(37, 300, 0, monkeypatch) == LaunchShape(4, 128, 10, 4, (1, 3))


def test_coco_scale_gives_up_row_tiles_for_programs(monkeypatch):
    """240,000 x 80 on 132 SMs: 4 x 128 tiles, 60,000 row tiles, one column tile; 64 * 132 =
    8,448 programs wanted: 64 row tiles make cdiv(60000, 64) = 938 programs, 32 make 1,875,
    16 make 3,750, 8 make 7,500, all too few; 4 make 15,000."""
    assert _shape(240_000, 80, 132, monkeypatch) == LaunchShape(4, 128, 4, 4, (15_000, 1))


def test_lvis_scale_keeps_every_row_tile(monkeypatch):
    """240,000 x 1203 on 132 SMs: 10 column tiles, so 64 row tiles already make
    938 * 10 = 9,380 >= 8,448 programs."""
    assert _shape(240_000, 1203, 132, monkeypatch) == LaunchShape(4, 128, 64, 4, (938, 10))


def test_small_class_count_spans_whole_rows(monkeypatch):
    """C = 5: 8-class tiles (the next power of two) of 512 / 8 = 64 rows; 1000 rows make
    cdiv(1000, 64) = 16 row tiles, all in one program."""
    assert _shape(1000, 5, 0, monkeypatch) == LaunchShape(64, 8, 16, 4, (1, 1))


def test_tiling_of_a_few_classes_per_program(monkeypatch):
    """The 1024x4x32 tiling at 240,000 x 1203 on 132 SMs: 8 x 128 tiles, 30,000 row tiles;
    32 per program make 938 * 10 = 9,380 programs, enough."""
    with common.use_tiling(Tiling(1024, 4, 32)):
        assert _shape(240_000, 1203, 132, monkeypatch) == LaunchShape(8, 128, 32, 4, (938, 10))
